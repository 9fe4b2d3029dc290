"""TLS against real `strata` processes, with a self-signed certificate for 127.0.0.1 made by
the openssl command line.

What is checked: a single node started with `--certs-dir` serves S3 over https (boto3 verifying
the certificate: bucket, 5 MiB object, listing); it speaks TLS 1.2 and 1.3 but not 1.1, offers
ALPN h2 and http/1.1, and a plain http request to its port gets no HTTP answer; a bad
certificate directory stops startup with the file named. Then a 2-node deployment over https://
endpoints (node-to-node RPC over TLS on the same port): an object written through node 1 reads
back through node 2; and https endpoints without certificates, or certificates with http
endpoints, refuse to start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import (STRATA_BIN, StrataCli, StrataCluster, StrataServer, free_port, make_s3_client,
                      unique_bucket_name)

MIB = 1024 * 1024
OPENSSL_TIMEOUT_SECS = 60
STARTUP_FAIL_TIMEOUT_SECS = 30


def make_certs_dir(path: Path) -> Path:
    """A certificate directory with a fresh self-signed certificate for IP 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command line is needed to make test certificates", pytrace=False)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(path / "private.key"), "-out", str(path / "public.crt"),
         "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         # A leaf, not a CA: rustls refuses a CA certificate as a server's own.
         "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True, capture_output=True, timeout=OPENSSL_TIMEOUT_SECS)
    return path


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    return make_certs_dir(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    srv = StrataServer(tmp_path_factory.mktemp("tls-server"), certs_dir=certs)
    try:
        yield srv.start()
    finally:
        srv.stop()
        srv.kill()


def handshake(port: int, cafile: Path, version: ssl.TLSVersion,
              alpn: list[str] | None = None) -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1:`port` pinned to exactly `version`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cafile))
    # The system policy may forbid old versions at the default security level.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = version
    ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    except BaseException:
        sock.close()
        raise


def test_s3_over_https(tls_server):
    assert tls_server.endpoint.startswith("https://")
    s3 = tls_server.client()
    name = unique_bucket_name("tls")
    s3.create_bucket(Bucket=name)
    data = os.urandom(5 * MIB)
    s3.put_object(Bucket=name, Key="big", Body=data)
    got = s3.get_object(Bucket=name, Key="big")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    listed = s3.list_objects_v2(Bucket=name)
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("big", 5 * MIB)]

    # A client that does not trust the certificate is refused by its own verification.
    untrusting = make_s3_client(tls_server.endpoint, tls_server.access_key, tls_server.secret_key)
    with pytest.raises(Exception, match="(?i)certificate"):
        untrusting.list_buckets()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_versions_and_alpn(tls_server):
    ca = tls_server.ca_file
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with handshake(tls_server.port, ca, version, alpn=["h2", "http/1.1"]) as tls:
            assert tls.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
            assert tls.selected_alpn_protocol() == "h2"
    with handshake(tls_server.port, ca, ssl.TLSVersion.TLSv1_3, alpn=["http/1.1"]) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"
        tls.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert tls.recv(64).startswith(b"HTTP/1.1 200")
    with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
        handshake(tls_server.port, ca, ssl.TLSVersion.TLSv1_1).close()
    # Refused by the server, not by this client's own policy.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), refused.value
    # The refused handshake did not hurt the listener.
    ctx = ssl.create_default_context(cafile=str(ca))
    with urllib.request.urlopen(f"{tls_server.endpoint}/health/live", context=ctx, timeout=5) as r:
        assert r.status == 200


def test_admin_cli_over_https(tls_server, tmp_path):
    cli = StrataCli(tmp_path / "strata-config")
    cli("alias", "set", "tls", tls_server.endpoint, tls_server.access_key, tls_server.secret_key)
    # The self-signed certificate is not among the system's roots: refused without the CA file.
    untrusted = cli("admin", "info", "tls", check=False)
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stderr.lower(), untrusted.stderr
    cli.env["STRATA_CA_FILE"] = str(tls_server.ca_file)
    info = cli.json("admin", "info", "tls")
    assert info["health"]["write_quorum"] is True


def test_plain_http_to_the_tls_port_fails(tls_server):
    with pytest.raises(Exception):
        with urllib.request.urlopen(f"http://{tls_server.hostport}/health/live", timeout=5) as r:
            r.read()
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionError, socket.timeout):
            pass
        assert not answer.startswith(b"HTTP/"), answer[:64]


def start_should_fail(workdir: Path, args: list[str], config: Path | None = None,
                      port: int | None = None) -> str:
    """Runs `strata server` expecting it to exit non-zero at startup; its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["STRATA_ROOT_USER"] = "strata-e2e-root"
    env["STRATA_ROOT_PASSWORD"] = "strata-e2e-secret-0123456789abcdef"
    cmd = [str(STRATA_BIN), "server", "--address", f"127.0.0.1:{port or free_port()}", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    p = subprocess.run(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=STARTUP_FAIL_TIMEOUT_SECS)
    assert p.returncode != 0, f"strata started: {p.stdout}\n{p.stderr}"
    return p.stderr


def test_bad_certificate_directories_stop_startup(tmp_path, certs):
    drives = str(tmp_path / "d{1...4}")
    empty = tmp_path / "empty-certs"
    empty.mkdir()
    err = start_should_fail(tmp_path, ["--certs-dir", str(empty), drives])
    assert "public.crt" in err, err
    no_key = tmp_path / "no-key"
    no_key.mkdir()
    shutil.copy(certs / "public.crt", no_key / "public.crt")
    err = start_should_fail(tmp_path, ["--certs-dir", str(no_key), drives])
    assert "private.key" in err, err
    bad_ca = tmp_path / "bad-ca"
    shutil.copytree(certs, bad_ca)
    (bad_ca / "CAs").mkdir()
    (bad_ca / "CAs" / "junk.pem").write_text("not a certificate\n")
    err = start_should_fail(tmp_path, ["--certs-dir", str(bad_ca), drives])
    assert "junk.pem" in err, err


def test_endpoint_scheme_must_match_the_certificates(tmp_path, certs):
    p1, p2 = free_port(), free_port()

    def config(scheme: str) -> Path:
        path = tmp_path / f"{scheme}.toml"
        path.write_text(f'pools = [["{scheme}://127.0.0.1:{p1}{tmp_path}/n1/d{{1...4}}", '
                        f'"{scheme}://127.0.0.1:{p2}{tmp_path}/n2/d{{1...4}}"]]\n')
        return path

    err = start_should_fail(tmp_path, [], config("https"), port=p1)
    assert "certs-dir" in err, err
    err = start_should_fail(tmp_path, ["--certs-dir", str(certs)], config("http"), port=p1)
    assert "https://" in err, err


def test_two_node_cluster_over_https(tmp_path, certs):
    cluster = StrataCluster(tmp_path / "cluster", n_nodes=2, drives_per_node=4, certs_dir=certs)
    assert "https://127.0.0.1:" in cluster.config.read_text()
    try:
        cluster.start()
        n1, n2 = cluster.nodes
        c1, c2 = n1.client(), n2.client()
        c1.create_bucket(Bucket="tls-cluster")
        data = os.urandom(3 * MIB + 17)
        c1.put_object(Bucket="tls-cluster", Key="via-node-1", Body=data)
        got = c2.get_object(Bucket="tls-cluster", Key="via-node-1")["Body"].read()
        assert got == data
        small = b"small object, inline on the drives"
        c2.put_object(Bucket="tls-cluster", Key="via-node-2", Body=small)
        assert c1.get_object(Bucket="tls-cluster", Key="via-node-2")["Body"].read() == small
        keys = [o["Key"] for o in c2.list_objects_v2(Bucket="tls-cluster")["Contents"]]
        assert keys == ["via-node-1", "via-node-2"]
        # Peers really talked TLS: no node logged a refused RPC call or a failed handshake
        # with its peer.
        for node in cluster.nodes:
            log = node.log_path.read_text(errors="replace")
            assert "RPC call refused" not in log, node.log_tail()
    finally:
        cluster.stop()


def served_certificate(port: int, sni: str = "127.0.0.1") -> bytes:
    """The DER certificate 127.0.0.1:`port` presents (not verified) to a client naming `sni`
    (an IP address sends no server name)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            return tls.getpeercert(binary_form=True)


def wait_for_certificate(port: int, want: bytes, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served_certificate(port) == want:
            return True
        time.sleep(0.5)
    return False


def pem_to_der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def test_certificate_rotation_without_restart(tmp_path):
    """A certificate manager replacing public.crt and private.key is picked up by the running
    server (new connections get the new certificate, S3 keeps working); files that do not load
    are ignored and the previous certificate stays."""
    certs = make_certs_dir(tmp_path / "certs")
    srv = StrataServer(tmp_path / "rotating", certs_dir=certs)
    try:
        srv.start()
        port = int(srv.endpoint.rsplit(":", 1)[1])
        first = pem_to_der(certs / "public.crt")
        assert served_certificate(port) == first
        # Rotate: write the new pair next to the old one, then move it in (as cert-manager
        # and Kubernetes Secret updates do, atomically).
        fresh = make_certs_dir(tmp_path / "fresh")
        shutil.copy(fresh / "private.key", certs / "private.key.new")
        shutil.copy(fresh / "public.crt", certs / "public.crt.new")
        os.replace(certs / "private.key.new", certs / "private.key")
        os.replace(certs / "public.crt.new", certs / "public.crt")
        second = pem_to_der(certs / "public.crt")
        assert second != first
        assert wait_for_certificate(port, second), "the new certificate was not served"
        s3 = make_s3_client(srv.endpoint, srv.access_key, srv.secret_key, verify=certs / "public.crt")
        name = unique_bucket_name("rot")
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="k", Body=b"after rotation")
        assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"after rotation"
        # A broken certificate file is not served: the last good one stays.
        (certs / "public.crt").write_text("not a certificate")
        time.sleep(12)
        assert served_certificate(port) == second
        assert "do not load" in srv.log_tail()
    finally:
        srv.stop()
        srv.kill()


def issue(ca: Path, out: Path, name: str, san: str) -> tuple[Path, Path]:
    """A leaf certificate and key for `san`, signed by the CA in `ca` (ca.crt, ca.key)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=OPENSSL_TIMEOUT_SECS)
    out.mkdir(parents=True, exist_ok=True)
    ext = out / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(out / f"{name}.key"),
        "-out", str(out / f"{name}.csr"), "-subj", f"/CN={name}")
    run("x509", "-req", "-in", str(out / f"{name}.csr"), "-CA", str(ca / "ca.crt"), "-CAkey", str(ca / "ca.key"),
        "-CAcreateserial", "-days", "2", "-out", str(out / f"{name}.crt"), "-extfile", str(ext))
    return out / f"{name}.crt", out / f"{name}.key"


def test_rotation_under_load_and_sni(tmp_path):
    """Clients that trust the CA keep connecting (a new TLS connection each time) while the
    certificate is replaced: none fails, and new connections get the new certificate. A
    host subdirectory's certificate is served to clients naming that host (SNI)."""
    ca = tmp_path / "ca"
    ca.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(ca / "ca.key"), "-out", str(ca / "ca.crt"), "-subj", "/CN=test-ca",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
                   check=True, capture_output=True, timeout=OPENSSL_TIMEOUT_SECS)
    certs = tmp_path / "certs"
    crt, key = issue(ca, tmp_path / "leaf1", "leaf1", "IP:127.0.0.1")
    certs.mkdir()
    shutil.copy(crt, certs / "public.crt")
    shutil.copy(key, certs / "private.key")
    host_crt, host_key = issue(ca, certs / "s3.strata.test", "s3.strata.test", "DNS:s3.strata.test")
    shutil.copy(host_crt, certs / "s3.strata.test" / "public.crt")
    shutil.copy(host_key, certs / "s3.strata.test" / "private.key")
    srv = StrataServer(tmp_path / "loaded", certs_dir=certs)
    try:
        # The harness trusts public.crt itself; here clients trust the CA that issued it.
        srv.start(ready_path=None)
        port = int(srv.endpoint.rsplit(":", 1)[1])
        ca_ctx = ssl.create_default_context(cafile=str(ca / "ca.crt"))
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/health/live", timeout=2,
                                            context=ca_ctx) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, srv.log_tail()
            time.sleep(0.2)
        assert served_certificate(port, "s3.strata.test") == pem_to_der(host_crt)
        assert served_certificate(port) == pem_to_der(crt)
        assert served_certificate(port, "unknown.example") == pem_to_der(crt)

        import threading
        stop = threading.Event()
        outcomes = {"ok": 0, "failed": []}

        def client() -> None:
            ctx = ssl.create_default_context(cafile=str(ca / "ca.crt"))
            while not stop.is_set():
                try:
                    with urllib.request.urlopen(f"https://127.0.0.1:{port}/health/live", timeout=5,
                                                context=ctx) as r:
                        assert r.status == 200
                    outcomes["ok"] += 1
                except Exception as e:  # noqa: BLE001 - any failure counts
                    outcomes["failed"].append(repr(e))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(1)
        crt2, key2 = issue(ca, tmp_path / "leaf2", "leaf2", "IP:127.0.0.1")
        shutil.copy(key2, certs / "private.key.new")
        shutil.copy(crt2, certs / "public.crt.new")
        os.replace(certs / "private.key.new", certs / "private.key")
        os.replace(certs / "public.crt.new", certs / "public.crt")
        assert wait_for_certificate(port, pem_to_der(crt2)), "the new certificate was not served"
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        assert outcomes["failed"] == [], outcomes["failed"][:3]
        assert outcomes["ok"] > 20
        # The host's certificate is still served to its name.
        assert served_certificate(port, "s3.strata.test") == pem_to_der(host_crt)
    finally:
        srv.stop()
        srv.kill()
