"""Test hosts in network namespaces: a bridge in the test's namespace and one namespace per host,
wired with veth pairs (iproute2, run as root). Host i is at 10.213.<n>.<10+i>, the test itself at
10.213.<n>.1. Used by the partition tests and by the Kubernetes chart's deployment test."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NETNS_ETC = Path("/etc/netns")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Netns:
    """`n_hosts` namespaces on one bridge; always torn down. With `hosts_file`, each namespace
    gets it as its /etc/hosts (`ip netns exec` bind-mounts /etc/netns/<name>/hosts)."""

    def __init__(self, n_hosts: int, tag: str = ""):
        self.tag = f"{tag}{os.getpid() % 10000}"
        self.subnet = f"10.213.{(os.getpid() + len(tag)) % 250}"
        self.bridge = f"stbr{self.tag}"
        self.names = [f"strata-{self.tag}-{i}" for i in range(n_hosts)]
        self.hosts = [f"{self.subnet}.{10 + i}" for i in range(n_hosts)]
        self.gateway = f"{self.subnet}.1"

    def __enter__(self) -> "Netns":
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for i, (ns, host) in enumerate(zip(self.names, self.hosts)):
                outer, inner = f"stv{self.tag}o{i}", f"stv{self.tag}i{i}"
                ip("netns", "add", ns)
                ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                ip("link", "set", inner, "netns", ns)
                ip("link", "set", outer, "master", self.bridge)
                ip("link", "set", outer, "up")
                ip("-n", ns, "addr", "add", f"{host}/24", "dev", inner)
                ip("-n", ns, "link", "set", inner, "up")
                ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for ns in self.names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)

    def write_hosts(self, lines: list[str]) -> None:
        """Gives every namespace this /etc/hosts (localhost entries added)."""
        text = "127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{line}\n" for line in lines)
        for ns in self.names:
            (NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
            (NETNS_ETC / ns / "hosts").write_text(text)

    def exec_prefix(self, idx: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[idx]]

    def cut_off(self, idx: int) -> None:
        """Host idx can no longer exchange packets with the other hosts (the test still reaches
        it): its replies to peers and its own calls to them are dropped."""
        for j, host in enumerate(self.hosts):
            if j != idx:
                ip("-n", self.names[idx], "route", "add", "blackhole", f"{host}/32")

    def heal(self, idx: int) -> None:
        for j, host in enumerate(self.hosts):
            if j != idx:
                ip("-n", self.names[idx], "route", "del", "blackhole", f"{host}/32")
