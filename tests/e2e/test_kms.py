"""The KMS against real `strata` processes: the built-in keyring, key administration with the
`strata admin kms` commands and MinIO's Python SDK (`MinioAdmin.kms_key_create/kms_key_status`),
key rotation without rewriting data, and one keyring shared by a 4-node deployment.

What is checked: `kms key create|list|status` and `kms status`; MinIO's admin client creates a
key and reads its status; a rotation over 10,000 objects of mixed modes (SSE-S3, SSE-KMS with the
rotated and with another key, SSE-C, none; two buckets, one versioned) re-seals exactly the data
keys sealed by the rotated key, while readers check objects throughout, and it survives a
restart in the middle (it resumes; the count stays exact); afterwards the rotated key's old
version is destroyed in the keyring and every object still reads (so every one was re-sealed);
in a 4-node deployment with one keyring, objects written through one node read through another.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider

from conftest import StrataCli, StrataCluster, StrataServer

CUSTOMER_KEY = bytes(range(32))
ROTATION_RATE = 400  # re-seals per second: the 10,000-object job takes ~20 s
N_OBJECTS = 10_000
ROTATION_TIMEOUT_SECS = 240


def write_keyring(path: Path, keys: dict[str, list[bytes]], default: str) -> Path:
    path.write_text(json.dumps({
        "default": default,
        "keys": {name: [base64.b64encode(v).decode() for v in versions]
                 for name, versions in keys.items()},
    }))
    path.chmod(0o600)
    return path


def mode_of(i: int) -> str:
    return ["sse-s3", "sse-s3", "sse-s3", "sse-s3", "kms-default", "kms-default", "kms-default",
            "kms-app", "sse-c", "none"][i % 10]


def write_args(mode: str) -> dict:
    return {
        "sse-s3": {"ServerSideEncryption": "AES256"},
        "kms-default": {"ServerSideEncryption": "aws:kms"},
        "kms-app": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "app-key"},
        "sse-c": {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CUSTOMER_KEY},
        "none": {},
    }[mode]


def read_args(mode: str) -> dict:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CUSTOMER_KEY} if mode == "sse-c" else {}


def body_of(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (1 + i % 40)


def key_of(i: int) -> tuple[str, str]:
    return ("rot-a" if i % 2 else "rot-b", f"obj/{i:05d}")


def cli_for(srv: StrataServer, workdir: Path) -> StrataCli:
    cli = StrataCli(workdir / "cli")
    cli("alias", "set", "local", srv.endpoint, srv.access_key, srv.secret_key)
    return cli


def rotation_of(cli: StrataCli, name: str) -> dict:
    return cli.json("admin", "kms", "key", "status", "local", name)["rotation"]


def test_key_administration_with_the_cli_and_minio_admin(tmp_path):
    ring = write_keyring(tmp_path / "keyring.json", {"main": [os.urandom(32)]}, "main")
    srv = StrataServer(tmp_path / "srv", env={"STRATA_KMS_KEYRING": str(ring)}).start()
    try:
        cli = cli_for(srv, tmp_path)
        status = cli.json("admin", "kms", "status", "local")
        assert status["backend"] == "builtin" and status["default_key"] == "main"
        cli("admin", "kms", "key", "create", "local", "backups")
        listed = {k["name"]: k["versions"] for k in cli.json("admin", "kms", "key", "list", "local")}
        assert listed == {"main": 1, "backups": 1}
        key = cli.json("admin", "kms", "key", "status", "local", "backups")
        assert key["encryption_error"] == "" and key["decryption_error"] == ""
        assert "seal: ok  open: ok" in cli("admin", "kms", "key", "status", "local", "backups").stdout
        again = cli("admin", "kms", "key", "create", "local", "backups", check=False)
        assert again.returncode != 0 and "exists" in again.stderr
        # The keyring file took the new key (a restart keeps it).
        assert "backups" in json.loads(ring.read_text())["keys"]

        admin = MinioAdmin(endpoint=srv.hostport, credentials=StaticProvider(srv.access_key, srv.secret_key),
                           secure=False)
        admin.kms_key_create("from-minio")
        answer = json.loads(admin.kms_key_status("from-minio"))
        assert answer["key-id"] == "from-minio"
        assert "encryption-error" not in answer and "decryption-error" not in answer
        assert json.loads(admin.kms_key_status())["key-id"] == "main"
        # The new key encrypts objects.
        c = srv.client()
        c.create_bucket(Bucket="kms-bucket")
        put = c.put_object(Bucket="kms-bucket", Key="o", Body=b"x", ServerSideEncryption="aws:kms",
                           SSEKMSKeyId="from-minio")
        assert put["SSEKMSKeyId"] == "from-minio"
        assert c.get_object(Bucket="kms-bucket", Key="o")["Body"].read() == b"x"
    finally:
        srv.stop()
        srv.kill()


def test_rotation_rewraps_ten_thousand_objects_through_a_restart_with_reads_running(tmp_path):
    old_default = os.urandom(32)
    ring = write_keyring(tmp_path / "keyring.json",
                         {"strata-default": [old_default], "app-key": [os.urandom(32)]},
                         "strata-default")
    srv = StrataServer(tmp_path / "srv", env={
        "STRATA_KMS_KEYRING": str(ring), "STRATA_SSE_C_ALLOW_HTTP": "true",
        "STRATA_KMS_ROTATION_RATE": str(ROTATION_RATE), "RUST_LOG": "warn"}).start()
    try:
        c = srv.client(max_pool_connections=16)
        c.create_bucket(Bucket="rot-a")
        c.create_bucket(Bucket="rot-b")
        c.put_bucket_versioning(Bucket="rot-b", VersioningConfiguration={"Status": "Enabled"})

        def put(i: int) -> None:
            bucket, key = key_of(i)
            c.put_object(Bucket=bucket, Key=key, Body=body_of(i), **write_args(mode_of(i)))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(N_OBJECTS)))
        # An older version in the versioned bucket, sealed by the rotated key too.
        c.put_object(Bucket="rot-b", Key="obj/00000", Body=body_of(0), ServerSideEncryption="AES256")
        expected = sum(1 for i in range(N_OBJECTS) if mode_of(i) in ("sse-s3", "kms-default")) + 1

        # Readers check random objects all along (paused while the server restarts).
        stop = threading.Event()
        up = threading.Event()
        up.set()
        failures: list[str] = []
        reads = [0]

        def reader(seed: int) -> None:
            rnd = random.Random(seed)
            client = srv.client()
            while not stop.is_set():
                up.wait()
                i = rnd.randrange(N_OBJECTS)
                bucket, key = key_of(i)
                try:
                    got = client.get_object(Bucket=bucket, Key=key, **read_args(mode_of(i)))["Body"].read()
                    if got != body_of(i):
                        failures.append(f"{key}: wrong bytes")
                    reads[0] += 1
                except Exception as e:  # noqa: BLE001 - a read during the restart window
                    if up.is_set():
                        failures.append(f"{key}: {e}")

        readers = [threading.Thread(target=reader, args=(s,), daemon=True) for s in range(3)]
        for t in readers:
            t.start()

        cli = cli_for(srv, tmp_path)
        started = cli.json("admin", "kms", "key", "rotate", "local", "strata-default", "--no-wait")
        assert started["target_version"] == 2 and started["running"]
        # Restart while the job is part-way.
        deadline = time.monotonic() + ROTATION_TIMEOUT_SECS
        while rotation_of(cli, "strata-default")["rewrapped"] < 1500:
            assert time.monotonic() < deadline, "the rotation does not progress"
            time.sleep(0.2)
        up.clear()
        time.sleep(0.3)
        srv.stop()
        srv.start()
        up.set()
        mid = rotation_of(cli, "strata-default")
        assert mid["running"], mid
        while (status := rotation_of(cli, "strata-default"))["running"]:
            assert time.monotonic() < deadline, f"the rotation did not finish: {status}"
            time.sleep(0.5)
        stop.set()
        for t in readers:
            t.join(timeout=30)
        assert failures == [], failures[:5]
        assert reads[0] > 100
        assert status["counted"] and status["total"] == expected, status
        assert status["rewrapped"] == expected and status["failed"] == 0, status
        assert status["target_version"] == 2
        # The CLI's summary of a finished rotation.
        assert "re-sealed" in cli("admin", "kms", "status", "local").stdout

        # Destroy the old version: every object must still read (each was re-sealed).
        srv.stop()
        keyring = json.loads(ring.read_text())
        assert len(keyring["keys"]["strata-default"]) == 2
        keyring["keys"]["strata-default"][0] = base64.b64encode(os.urandom(32)).decode()
        ring.write_text(json.dumps(keyring))
        srv.start()
        c = srv.client(max_pool_connections=16)

        def check(i: int) -> None:
            bucket, key = key_of(i)
            got = c.get_object(Bucket=bucket, Key=key, **read_args(mode_of(i)))["Body"].read()
            assert got == body_of(i), key

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(check, range(N_OBJECTS)))
        versions = c.list_object_versions(Bucket="rot-b", Prefix="obj/00000")["Versions"]
        assert len(versions) == 2
        for v in versions:
            got = c.get_object(Bucket="rot-b", Key="obj/00000", VersionId=v["VersionId"])["Body"].read()
            assert got == body_of(0)
        # The control: with the new version destroyed instead, nothing sealed under it opens:
        # not even the configuration key (IAM, bucket settings), so the server refuses to start
        # rather than serve without its configuration.
        keyring["keys"]["strata-default"] = [base64.b64encode(old_default).decode(),
                                             base64.b64encode(os.urandom(32)).decode()]
        srv.stop()
        ring.write_text(json.dumps(keyring))
        srv.start(ready_path=None)
        deadline = time.monotonic() + 30
        while srv.proc.poll() is None:
            assert time.monotonic() < deadline, "the server started with its keys destroyed"
            time.sleep(0.2)
        assert "configuration key" in srv.log_tail()
    finally:
        srv.stop()
        srv.kill()


def test_one_keyring_across_a_four_node_deployment(tmp_path):
    ring = write_keyring(tmp_path / "keyring.json",
                         {"shared": [os.urandom(32)], "other": [os.urandom(32)]}, "shared")
    cluster = StrataCluster(tmp_path / "cluster")
    for node in cluster.nodes:
        node.env = {"STRATA_KMS_KEYRING": str(ring), "STRATA_SSE_C_ALLOW_HTTP": "true"}
    cluster.start()
    try:
        clients = [n.client() for n in cluster.nodes]
        clients[0].create_bucket(Bucket="shared")
        bodies = {}
        for i, mode in enumerate(["sse-s3", "kms-default", "sse-c"]):
            body = os.urandom(3 * 1024 * 1024 + i)
            bodies[mode] = body
            clients[i % 4].put_object(Bucket="shared", Key=mode, Body=body, **write_args(mode))
        clients[1].put_object(Bucket="shared", Key="other", Body=b"o", ServerSideEncryption="aws:kms",
                              SSEKMSKeyId="other")
        for reader in clients:
            for mode, body in bodies.items():
                assert reader.get_object(Bucket="shared", Key=mode, **read_args(mode))["Body"].read() == body
            assert reader.get_object(Bucket="shared", Key="other")["Body"].read() == b"o"
        # The keyring is one file per node here: changes go through the file, not one node.
        cli = cli_for(cluster.nodes[2], tmp_path)
        refused = cli("admin", "kms", "key", "create", "local", "new", check=False)
        assert refused.returncode != 0 and "read-only" in refused.stderr
    finally:
        cluster.stop()


class TransitServer:
    """The Vault Transit test server (tests/e2e/transit_server.py): a mock, since no Vault can
    run here. Its state file survives a stop, so stopping it is a KMS outage."""

    def __init__(self, workdir: Path, token: str):
        from conftest import free_port
        self.port = free_port()
        self.state = workdir / "transit-state.json"
        self.token = token
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "TransitServer":
        import subprocess
        import sys
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "transit_server.py"), str(self.port),
             str(self.state), self.token], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout.readline().strip() == "ready"
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def test_vault_transit_backend_with_an_outage_and_a_rotation(tmp_path):
    token = "test-vault-token-" + os.urandom(6).hex()
    vault = TransitServer(tmp_path, token).start()
    srv = StrataServer(tmp_path / "srv", env={
        "STRATA_KMS_VAULT_ENDPOINT": vault.endpoint, "STRATA_KMS_VAULT_TOKEN": token,
        "STRATA_KMS_VAULT_KEY": "strata-key", "STRATA_KMS_ROTATION_RATE": "1000"})
    srv.start()
    try:
        cli = cli_for(srv, tmp_path)
        cli("admin", "kms", "key", "create", "local", "strata-key")
        cli("admin", "kms", "key", "create", "local", "app-key")
        assert cli.json("admin", "kms", "status", "local")["backend"] == "vault"
        keys = {k["name"]: k["versions"] for k in cli.json("admin", "kms", "key", "list", "local")}
        assert keys == {"strata-key": 1, "app-key": 1}
        c = srv.client()
        c.create_bucket(Bucket="vault")
        bodies = {f"o{i}": os.urandom(100 + i * 50_000) for i in range(20)}
        for i, (key, body) in enumerate(bodies.items()):
            args = {"ServerSideEncryption": "AES256"} if i % 2 else {
                "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "app-key"}
            c.put_object(Bucket="vault", Key=key, Body=body, **args)
        c.put_object(Bucket="vault", Key="plain", Body=b"plain")
        c.put_object(Bucket="vault", Key="unread", Body=b"never read", ServerSideEncryption="AES256")
        for key, body in bodies.items():
            assert c.get_object(Bucket="vault", Key=key)["Body"].read() == body
        # No Vault token or key material in the server's log.
        assert token not in srv.log_path.read_text()

        # The KMS goes down: encrypted reads and writes are 503, nothing else is affected;
        # objects read within the last minute still read (their opened keys are cached).
        vault.stop()
        assert c.get_object(Bucket="vault", Key="o1")["Body"].read() == bodies["o1"]
        for call in (lambda: c.get_object(Bucket="vault", Key="unread"),
                     lambda: c.put_object(Bucket="vault", Key="new", Body=b"x", ServerSideEncryption="AES256")):
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "ServiceUnavailable"
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert c.get_object(Bucket="vault", Key="plain")["Body"].read() == b"plain"
        c.put_object(Bucket="vault", Key="plain2", Body=b"still")
        assert c.head_object(Bucket="vault", Key="o1")["ServerSideEncryption"] == "AES256"
        # ... and up again: everything reads.
        vault.start()
        assert c.get_object(Bucket="vault", Key="unread")["Body"].read() == b"never read"

        # A rotation re-wraps through Vault's rewrap.
        done = cli.json("admin", "kms", "key", "rotate", "local", "strata-key")
        assert done["target_version"] == 2 and not done["running"]
        assert done["rewrapped"] == done["total"] == 11 and done["failed"] == 0, done
        for key, body in bodies.items():
            assert c.get_object(Bucket="vault", Key=key)["Body"].read() == body
    finally:
        srv.stop()
        srv.kill()
        vault.stop()


def openssl(*args: str) -> None:
    import subprocess
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_kmip_pki(d: Path) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate (KMIP
    servers authenticate clients by certificate; PyKMIP wants the clientAuth usage). The
    server's key is ECDSA: PyKMIP's TLS 1.2 suites offer AES-GCM only with ECDSA."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(d / "ca.key"),
            "-out", str(d / "ca.crt"), "-subj", "/CN=strata-test-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    for name, usage, san in (("server", "serverAuth", "subjectAltName=IP:127.0.0.1"),
                             ("client", "clientAuth", "subjectAltName=DNS:strata")):
        ext = d / f"{name}.ext"
        ext.write_text(f"extendedKeyUsage={usage}\n{san}\nbasicConstraints=CA:FALSE\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", str(d / f"{name}.key"),
                "-out", str(d / f"{name}.csr"), "-subj", f"/CN=strata-{name}")
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"),
                "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                "-out", str(d / f"{name}.crt"), "-extfile", str(ext))
    return {n: d / n for n in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")}


class KmipServer:
    """The real PyKMIP server (PyPI pykmip, `pykmip-server`) over TLS 1.2 with client
    certificates, its database in a temp dir (kept across a stop: stopping it is an outage)."""

    def __init__(self, workdir: Path, pki: dict[str, Path]):
        from conftest import free_port
        self.port = free_port()
        self.workdir = workdir
        (workdir / "policies").mkdir(parents=True, exist_ok=True)
        self.config = workdir / "server.conf"
        self.config.write_text(
            "[server]\n"
            f"hostname=127.0.0.1\nport={self.port}\n"
            f"certificate_path={pki['server.crt']}\nkey_path={pki['server.key']}\n"
            f"ca_path={pki['ca.crt']}\nauth_suite=TLS1.2\n"
            f"policy_path={workdir / 'policies'}\nenable_tls_client_auth=True\n"
            "logging_level=INFO\n"
            f"database_path={workdir / 'kmip.db'}\n")
        self.proc = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "KmipServer":
        import shutil
        import socket
        import subprocess
        import sys
        exe = shutil.which("pykmip-server") or str(Path(sys.executable).parent / "pykmip-server")
        self.proc = subprocess.Popen([exe, "-f", str(self.config), "-l", str(self.workdir / "kmip.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.workdir / "kmip.log").read_text()[-2000:]
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("pykmip-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


def test_kmip_backend_against_pykmip(tmp_path):
    pki = make_kmip_pki(tmp_path / "pki")
    kmip = KmipServer(tmp_path / "kmip", pki).start()
    srv = StrataServer(tmp_path / "srv", env={
        "STRATA_KMS_KMIP_ADDRESS": kmip.address, "STRATA_KMS_KMIP_CA": str(pki["ca.crt"]),
        "STRATA_KMS_KMIP_CERT": str(pki["client.crt"]), "STRATA_KMS_KMIP_CLIENT_KEY": str(pki["client.key"]),
        "STRATA_KMS_KMIP_KEY": "strata-key"})
    srv.start()
    try:
        cli = cli_for(srv, tmp_path)
        cli("admin", "kms", "key", "create", "local", "strata-key")
        status = cli.json("admin", "kms", "key", "status", "local", "strata-key")
        assert status["key"]["versions"] == 1
        assert status["encryption_error"] == "" and status["decryption_error"] == ""
        c = srv.client()
        c.create_bucket(Bucket="kmip")
        bodies = {f"o{i}": os.urandom(1000 + i * 70_000) for i in range(6)}
        for key, body in bodies.items():
            c.put_object(Bucket="kmip", Key=key, Body=body, ServerSideEncryption="aws:kms")
        for key, body in bodies.items():
            got = c.get_object(Bucket="kmip", Key=key)
            assert got["Body"].read() == body and got["ServerSideEncryption"] == "aws:kms"
        # Rotation creates version 2 on the KMIP server and re-seals every data key under it.
        done = cli.json("admin", "kms", "key", "rotate", "local", "strata-key")
        assert done["target_version"] == 2 and done["rewrapped"] == done["total"] == 6, done
        # A restart forgets the material; everything is fetched again from the KMIP server.
        srv.stop()
        srv.start()
        for key, body in bodies.items():
            assert c.get_object(Bucket="kmip", Key=key)["Body"].read() == body
        # A fresh start while the KMIP server is down: the configuration (IAM, bucket
        # settings) is sealed with it, so the server waits for it instead of serving without
        # its users; once the KMIP server is back, it starts and reads.
        srv.stop()
        kmip.stop()
        srv.start(ready_path=None)
        time.sleep(5)
        assert srv.proc.poll() is None, srv.log_tail()
        assert "cannot open the configuration key yet" in srv.log_tail()
        kmip.start()
        srv.wait_ready()
        assert c.get_object(Bucket="kmip", Key="o1")["Body"].read() == bodies["o1"]
    finally:
        srv.stop()
        srv.kill()
        kmip.stop()


def test_kes_backend_over_mutual_tls(tmp_path):
    """KES's API against tests/e2e/kes_server.py (a mock: no KES can run here), over TLS
    with a client certificate as KES requires."""
    import subprocess
    import sys
    from conftest import free_port
    pki = make_kmip_pki(tmp_path / "pki")
    port = free_port()
    kes = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "kes_server.py"), str(port), str(tmp_path / "kes.json"),
         str(pki["server.crt"]), str(pki["server.key"]), str(pki["ca.crt"])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert kes.stdout.readline().strip() == "ready"
    srv = StrataServer(tmp_path / "srv", env={
        "STRATA_KMS_KES_ENDPOINT": f"https://127.0.0.1:{port}", "STRATA_KMS_KES_CA": str(pki["ca.crt"]),
        "STRATA_KMS_KES_CERT": str(pki["client.crt"]), "STRATA_KMS_KES_CLIENT_KEY": str(pki["client.key"]),
        "STRATA_KMS_KES_KEY": "strata-key"})
    srv.start()
    try:
        cli = cli_for(srv, tmp_path)
        cli("admin", "kms", "key", "create", "local", "strata-key")
        assert [k["name"] for k in cli.json("admin", "kms", "key", "list", "local")] == ["strata-key"]
        status = cli.json("admin", "kms", "key", "status", "local", "strata-key")
        assert status["encryption_error"] == "" and status["decryption_error"] == ""
        c = srv.client()
        c.create_bucket(Bucket="kes")
        body = os.urandom(300_000)
        c.put_object(Bucket="kes", Key="o", Body=body, ServerSideEncryption="aws:kms")
        assert c.get_object(Bucket="kes", Key="o")["Body"].read() == body
        # KES keys do not rotate: the refusal says what to do instead.
        refused = cli("admin", "kms", "key", "rotate", "local", "strata-key", check=False)
        assert refused.returncode != 0 and "do not rotate" in refused.stderr
        # KES down: encrypted writes are 503, plain ones go on.
        kes.terminate()
        kes.wait(timeout=10)
        c.put_object(Bucket="kes", Key="o2", Body=b"x")
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket="kes", Key="o3", Body=b"x", ServerSideEncryption="aws:kms")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        srv.stop()
        srv.kill()
        if kes.poll() is None:
            kes.terminate()


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_configuration_is_sealed_at_rest_once_a_kms_is_configured(tmp_path):
    """IAM records and bucket configuration are sealed with the KMS's configuration key:
    written without a KMS they are on the drives in the clear (the control), written with
    one they are not, and what was written before still reads."""
    ring = write_keyring(tmp_path / "keyring.json", {"main": [os.urandom(32)]}, "main")
    drives = [tmp_path / f"d{i}" for i in range(1, 5)]
    plain_marker = "PlainMarker" + os.urandom(4).hex()
    sealed_marker = "SealedMarker" + os.urandom(4).hex()
    policy = lambda sid: json.dumps({"Version": "2012-10-17", "Statement": [{  # noqa: E731
        "Sid": sid, "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::cfg/*"}]})

    def signs(srv: StrataServer, access: str, secret: str) -> bool:
        """Whether the credentials sign valid requests (a user without policies is denied,
        but not as an unknown key or a bad signature)."""
        from conftest import make_s3_client
        c = make_s3_client(srv.endpoint, access, secret)
        try:
            c.list_buckets()
            return True
        except ClientError as e:
            return e.response["Error"]["Code"] == "AccessDenied"

    srv = StrataServer(tmp_path / "plain", drives=drives)
    srv.start()
    try:
        cli = cli_for(srv, tmp_path)
        cli("admin", "user", "add", "local", "alice", plain_marker)
        c = srv.client()
        c.create_bucket(Bucket="cfg")
        c.put_bucket_policy(Bucket="cfg", Policy=policy(plain_marker))
        srv.stop()
        assert any(files_holding(d, plain_marker.encode()) for d in drives), "the control finds nothing"

        srv = StrataServer(tmp_path / "sealed", drives=drives, env={"STRATA_KMS_KEYRING": str(ring)})
        srv.start()
        cli = cli_for(srv, tmp_path / "2")
        assert signs(srv, "alice", plain_marker), "a record written before the KMS no longer reads"
        cli("admin", "user", "add", "local", "bob", sealed_marker)
        c = srv.client()
        c.put_bucket_policy(Bucket="cfg", Policy=policy(sealed_marker))
        srv.stop()
        for d in drives:
            assert files_holding(d, sealed_marker.encode()) == [], "configuration in the clear on a drive"

        srv.start()
        assert signs(srv, "bob", sealed_marker)
        assert sealed_marker in srv.client().get_bucket_policy(Bucket="cfg")["Policy"]
    finally:
        srv.stop()
        srv.kill()
