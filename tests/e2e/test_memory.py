"""The memory budget (issue 16, item 9): a server given 512 MiB on 8 drives stays under it
while it walks a large listing and serves concurrent 64 MiB PUTs and GETs.

The old server kept a 256 MiB metadata cache per drive and admitted every request's buffers,
so the same load took it past the budget. RSS is read from the process itself (VmHWM, the
peak resident set). The listing covers 100,000 keys rather than the issue's 1,000,000: a
debug build prefills about 1,500 keys/s, and 100,000 keys already hold more metadata per drive
than the budget leaves each drive's cache.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.request

from conftest import STRATA_BIN, StrataServer

BUDGET_BYTES = 512 * 1024 * 1024
N_KEYS = 100_000
N_PUTS = 24
PUT_BYTES = 64 * 1024 * 1024


def peak_rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def metric(server: StrataServer, name: str) -> float:
    with urllib.request.urlopen(f"{server.endpoint}/metrics/node", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


def test_rss_stays_under_a_512_mib_budget_on_8_drives(tmp_path):
    config = tmp_path / "strata.toml"
    config.write_text('memory_budget = "512MiB"\nmetrics_auth = "public"\n')
    drives = [tmp_path / f"disk{i}" for i in range(1, 9)]
    server = StrataServer(tmp_path / "srv", drives=drives, config=config)
    try:
        server.start()
        assert metric(server, "strata_memory_budget_bytes") == BUDGET_BYTES
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
        env.update(STRATA_ROOT_USER=server.access_key, STRATA_ROOT_PASSWORD=server.secret_key)
        prefill = subprocess.run(
            [str(STRATA_BIN), "bench", "list", "--endpoint", server.endpoint, "--size", "0",
             "--objects", str(N_KEYS), "--concurrency", "32", "--duration", "1s",
             "--bucket", "walk", "--keep"],
            env=env, capture_output=True, text=True, timeout=600)
        assert prefill.returncode == 0, prefill.stderr

        s3 = server.client()
        s3.create_bucket(Bucket="big")
        body = os.urandom(PUT_BYTES)
        s3.put_object(Bucket="big", Key="seed", Body=body)
        errors: list[BaseException] = []
        n_listed = [0]

        def walk() -> None:
            try:
                client = server.client()
                for page in client.get_paginator("list_objects_v2").paginate(Bucket="walk"):
                    n_listed[0] += len(page.get("Contents", []))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def put(i: int) -> None:
            try:
                client = server.client()
                client.put_object(Bucket="big", Key=f"p{i}", Body=body)
                got = client.get_object(Bucket="big", Key="seed")["Body"].read()
                assert got == body
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=walk)] + [
            threading.Thread(target=put, args=(i,)) for i in range(N_PUTS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        assert n_listed[0] == N_KEYS
        # A second walk over a warm cache, then the peak.
        walk()
        assert not errors, errors
        peak = peak_rss_bytes(server.proc.pid)
        print(f"peak RSS {peak >> 20} MiB of a {BUDGET_BYTES >> 20} MiB budget "
              f"({time.monotonic() - started:.0f} s of load)")
        assert peak < BUDGET_BYTES, f"peak RSS {peak >> 20} MiB is over the 512 MiB budget"
    finally:
        server.stop()
        server.kill()
