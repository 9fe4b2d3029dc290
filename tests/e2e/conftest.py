"""End-to-end harness: owns every `strata` process the suite starts, and the S3 clients.

Invariants kept here:
- Each `strata` process belongs to exactly one `StrataServer`; it is started on a free port on
  127.0.0.1 with fresh temporary drives and test-owned root credentials, and it is always stopped
  (SIGTERM, then SIGKILL after a bound) in fixture teardown, also when a test failed.
- Server stdout/stderr go to a log file; when a test fails, the tail of every server log that was
  live during that test is attached to the failure report.
- Client configuration lives in temporary files (aws CLI, rclone, s3cmd); the user's ~/.aws,
  ~/.config/rclone and ~/.s3cfg are never read or written.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import hashlib
import json
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
STRATA_BIN = Path(os.environ.get("STRATA_BIN", REPO_ROOT / "target" / "debug" / "strata"))
VENV_BIN = Path(sys.executable).parent

ROOT_USER = "strata-e2e-root"
ROOT_PASSWORD = "strata-e2e-secret-0123456789abcdef"
REGION = "us-east-1"

READY_TIMEOUT_SECS = 60.0
STOP_TIMEOUT_SECS = 30.0
LOG_TAIL_LINES = 60
CLI_TIMEOUT_SECS = 120
N_DRIVES = 4

_ALL_SERVERS: list["StrataServer"] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports on 127.0.0.1 that were free a moment ago (held open together while
    picked: picked one by one, the kernel may hand out the same port twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class StrataServer:
    """One `strata server` process on fresh (or given) drives."""

    def __init__(self, workdir: Path, region: str = REGION, drives: list[Path] | None = None,
                 drive_args: list[str] | None = None, config: Path | None = None,
                 host: str = "127.0.0.1", prefix: list[str] | None = None,
                 certs_dir: Path | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.workdir = workdir
        # Environment variables set for the process (on top of a STRATA_*-free environment).
        self.env = env or {}
        # TLS: a certificate directory (`--certs-dir`) whose public.crt is also the CA the
        # harness trusts; the endpoint is then https://. Extra arguments go after the others.
        self.certs_dir = certs_dir
        self.extra_args = extra_args or []
        # A config file (cluster pools), the listen host, and a command prefix (for example
        # `ip netns exec NS` to run the node inside a network namespace).
        self.config = config
        self.host = host
        self.prefix = prefix or []
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.region = region
        if drives is None:
            drives = [workdir / f"disk{i}" for i in range(1, N_DRIVES + 1)]
        self.drives = drives
        for d in self.drives:
            d.mkdir(parents=True, exist_ok=True)
        # What is passed on the command line; by default the drive paths themselves.
        self.drive_args = drive_args if drive_args is not None else [str(d) for d in drives]
        self.access_key = ROOT_USER
        self.secret_key = ROOT_PASSWORD
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = workdir / "strata.log"
        self.started_at = 0.0
        self.stopped_at: float | None = None
        self.n_starts = 0
        _ALL_SERVERS.append(self)

    @property
    def endpoint(self) -> str:
        scheme = "http" if self.certs_dir is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The certificate clients trust for this server (None without TLS)."""
        return None if self.certs_dir is None else self.certs_dir / "public.crt"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, port: int | None = None, ready_path: str | None = "/health/ready") -> "StrataServer":
        """Starts the process and waits until `ready_path` answers 200 (use "/health/live" for a
        server that is expected to come up without write quorum; None to not wait)."""
        if not STRATA_BIN.exists():
            pytest.fail(f"strata binary not found at {STRATA_BIN}; build it with "
                        "`cargo build --bin strata` or set STRATA_BIN", pytrace=False)
        assert self.proc is None, "server already running"
        self.port = port or self.port or free_port()
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("STRATA_") and k != "STRATA_BIN":
                del env[k]
        env["STRATA_ROOT_USER"] = self.access_key
        env["STRATA_ROOT_PASSWORD"] = self.secret_key
        env.update(self.env)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        cmd = [*self.prefix, str(STRATA_BIN), "server", "--address", self.hostport,
               "--region", self.region, *self.drive_args]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        if self.certs_dir is not None:
            cmd += ["--certs-dir", str(self.certs_dir)]
        cmd += self.extra_args
        self.n_starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.n_starts}: {' '.join(cmd)}\n".encode())
        log.flush()
        self.started_at = time.time()
        self.stopped_at = None
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        if ready_path is None:
            return self
        try:
            self.wait_ready(ready_path)
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, path: str = "/health/ready") -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECS
        last_err = "no attempt"
        context = None if self.ca_file is None else ssl.create_default_context(cafile=str(self.ca_file))
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"strata exited with code {self.proc.returncode} before it was ready\n"
                            f"{self.log_tail()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{self.endpoint}{path}", timeout=2,
                                            context=context) as r:
                    if r.status == 200:
                        return
                    last_err = f"status {r.status}"
            except urllib.error.HTTPError as e:
                last_err = f"status {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last_err = repr(e)
            time.sleep(0.1)
        pytest.fail(f"strata not ready within {READY_TIMEOUT_SECS}s ({last_err})\n"
                    f"{self.log_tail()}", pytrace=False)

    def stop(self, timeout: float = STOP_TIMEOUT_SECS) -> int | None:
        """SIGTERM and wait; returns the exit code, or None if it had to be killed."""
        if self.proc is None:
            return None
        proc = self.proc
        code: int | None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                code = None
        else:
            code = proc.returncode
        self.proc = None
        self.stopped_at = time.time()
        return code

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc = None
        self.stopped_at = time.time()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = LOG_TAIL_LINES) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"(no server log at {self.log_path})"
        return f"--- last {min(n, len(lines))} lines of {self.log_path} ---\n" + "\n".join(lines[-n:])

    def client(self, **kw):
        return make_s3_client(self.endpoint, self.access_key, self.secret_key,
                              region=kw.pop("region", self.region), verify=self.ca_file, **kw)


class StrataCli:
    """Runs the `strata` client commands with a private config directory."""

    def __init__(self, config_dir: Path):
        self.config_dir = config_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
        self.env["STRATA_CONFIG_DIR"] = str(config_dir)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([str(STRATA_BIN), *args], env=self.env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=CLI_TIMEOUT_SECS)
        if check and p.returncode != 0:
            raise AssertionError(f"strata {' '.join(args)} failed ({p.returncode})\n"
                                 f"--- stdout ---\n{p.stdout}\n--- stderr ---\n{p.stderr}")
        return p

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "--json").stdout)


def wait_all_drives_online(nodes: list[StrataServer], workdir: Path,
                           timeout: float = READY_TIMEOUT_SECS) -> None:
    """Waits until each running node of a deployment reports every drive online."""
    cli = StrataCli(workdir / "strata-config")
    deadline = time.monotonic() + timeout
    for node in nodes:
        if not node.running:
            continue
        if node.ca_file is not None:
            cli.env["STRATA_CA_FILE"] = str(node.ca_file)
        cli("alias", "set", "wait", node.endpoint, node.access_key, node.secret_key)
        while True:
            health = cli.json("admin", "info", "wait")["health"]
            if health["drives_online"] == health["drives_total"]:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{node.endpoint} sees {health['drives_online']} of "
                            f"{health['drives_total']} drives online\n{node.log_tail()}", pytrace=False)
            time.sleep(0.2)


class StrataCluster:
    """A distributed deployment of `n_nodes` strata processes with `drives_per_node` drives each,
    one pool, every node on its own port of 127.0.0.1 (or its own host, e.g. an address inside a
    network namespace) and its own drive directories under `workdir`."""

    def __init__(self, workdir: Path, n_nodes: int = 4, drives_per_node: int = 4,
                 hosts: list[str] | None = None, prefixes: list[list[str]] | None = None,
                 certs_dir: Path | None = None):
        self.workdir = workdir
        # With a certificate directory (shared by every node), endpoints are https://.
        self.certs_dir = certs_dir
        scheme = "http" if certs_dir is None else "https"
        workdir.mkdir(parents=True, exist_ok=True)
        hosts = hosts or ["127.0.0.1"] * n_nodes
        ports = free_ports(n_nodes) if len(set(hosts)) == 1 else [9000] * n_nodes
        endpoints = [f"{scheme}://{hosts[i]}:{ports[i]}{workdir}/n{i + 1}/d{{1...{drives_per_node}}}"
                     for i in range(n_nodes)]
        self.config = workdir / "cluster.toml"
        self.config.write_text("pools = [[\n" + "".join(f'  "{e}",\n' for e in endpoints) + "]]\n")
        self.nodes = [
            StrataServer(workdir / f"n{i + 1}", drives=[], drive_args=[], config=self.config,
                         host=hosts[i], prefix=(prefixes[i] if prefixes else None),
                         certs_dir=certs_dir)
            for i in range(n_nodes)
        ]
        for i, (node, port) in enumerate(zip(self.nodes, ports)):
            node.port = port
            node.drives = [workdir / f"n{i + 1}" / f"d{d}" for d in range(1, drives_per_node + 1)]

    def start(self) -> "StrataCluster":
        """Starts every node at once (as pods do) and waits until each is ready and sees every
        drive of the deployment."""
        for node in self.nodes:
            node.start(ready_path=None)
        for node in self.nodes:
            node.wait_ready()
        self.wait_all_drives_online()
        return self

    def wait_all_drives_online(self, timeout: float = READY_TIMEOUT_SECS) -> None:
        """Waits until every running node reports every drive of the deployment online."""
        wait_all_drives_online(self.nodes, self.workdir, timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
            node.kill()

    def wait_cluster_healthy(self) -> None:
        """Waits until every running node reports deployment-wide write quorum and sees every
        drive of every running node."""
        for node in self.nodes:
            if node.running:
                node.wait_ready("/health/cluster")
        self.wait_all_drives_online()


def make_s3_client(endpoint: str, access_key: str, secret_key: str, region: str = REGION,
                   verify: Path | None = None, **config_kw):
    """A boto3 S3 client the way a user configures one for an S3-compatible server:
    path-style addressing, SigV4, default checksum behaviour, no retries (errors surface)."""
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=120,
                 **config_kw)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, region_name=region, config=cfg,
        verify=(str(verify) if verify is not None else None))


# ---------------------------------------------------------------- failure reporting

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._strata_started = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    since = getattr(item, "_strata_started", 0.0)
    for srv in _ALL_SERVERS:
        if srv.running or (srv.stopped_at is not None and srv.stopped_at >= since):
            report.sections.append((f"strata server log ({srv.workdir.name})", srv.log_tail()))


def pytest_sessionfinish(session, exitstatus):
    for srv in _ALL_SERVERS:
        srv.kill()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory, request) -> Path:
    """A module's directory (its servers' drives and logs); removed after the module when none of
    its tests failed, so a whole session's data never piles up on the disk."""
    path = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    failed_before = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed_before:
        shutil.rmtree(path, ignore_errors=True)


# With STRATA_E2E_CLUSTER=1 the shared `server` is one node of a 4-node × 4-drive deployment
# (which node differs by module), so the client suites run against a distributed deployment.
E2E_CLUSTER = os.environ.get("STRATA_E2E_CLUSTER") == "1"


@pytest.fixture(scope="module")
def server(tmp_module):
    """A running strata on fresh drives, shared by the tests of one module."""
    if E2E_CLUSTER:
        cluster = StrataCluster(tmp_module / "cluster")
        try:
            cluster.start()
            yield cluster.nodes[sum(tmp_module.name.encode()) % len(cluster.nodes)]
        finally:
            cluster.stop()
        return
    srv = StrataServer(tmp_module / "server")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.kill()


@pytest.fixture
def server_factory(tmp_path):
    """Start extra servers owned by one test; all are stopped at teardown."""
    made: list[StrataServer] = []

    def make(**kw) -> StrataServer:
        srv = StrataServer(tmp_path / f"server{len(made)}", **kw)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()
        srv.kill()


@pytest.fixture(scope="module")
def s3(server):
    return server.client()


def unique_bucket_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def empty_and_delete_bucket(client, name: str) -> None:
    """Best effort: the bucket may already be gone or the server broken."""
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for up in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
    except Exception:
        pass
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objs:
                client.delete_objects(Bucket=name, Delete={"Objects": objs, "Quiet": True})
    except Exception:
        pass
    try:
        client.delete_bucket(Bucket=name)
    except Exception:
        pass


@pytest.fixture
def bucket(s3):
    """A fresh bucket for one test, emptied and deleted afterwards."""
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


def error_of(exc: ClientError) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ClientError."""
    return (exc.response.get("Error", {}).get("Code", ""),
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


# ---------------------------------------------------------------- CLI clients

def run_cli(cmd: list[str], env: dict[str, str], check: bool = True, timeout: float = 600,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"command failed ({p.returncode}): {' '.join(cmd)}\n"
                             f"--- stdout ---\n{p.stdout[-4000:]}\n--- stderr ---\n{p.stderr[-4000:]}")
    return p


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_", "S3CMD"))}
    env["HOME"] = str(home)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


class AwsCli:
    def __init__(self, server: StrataServer, cfgdir: Path):
        cfgdir.mkdir(parents=True, exist_ok=True)
        (cfgdir / "config").write_text(
            "[default]\n"
            f"region = {server.region}\n"
            "output = json\n"
            "s3 =\n"
            "    addressing_style = path\n"
            "    signature_version = s3v4\n")
        (cfgdir / "credentials").write_text(
            "[default]\n"
            f"aws_access_key_id = {server.access_key}\n"
            f"aws_secret_access_key = {server.secret_key}\n")
        self.server = server
        self.env = _clean_env(cfgdir)
        self.env.update({
            "AWS_CONFIG_FILE": str(cfgdir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(cfgdir / "credentials"),
            "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true",
        })

    def __call__(self, *args: str, check: bool = True, cwd: Path | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = [str(VENV_BIN / "aws"), "--endpoint-url", self.server.endpoint, *args]
        return run_cli(cmd, self.env, check=check, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def aws(server, tmp_module) -> AwsCli:
    """Runs the aws CLI against the module's server with temp config/credentials files."""
    return AwsCli(server, tmp_module / "awscfg")


class Rclone:
    REMOTE = "strata"

    def __init__(self, server: StrataServer, cfgdir: Path):
        cfgdir.mkdir(parents=True, exist_ok=True)
        self.conf = cfgdir / "rclone.conf"
        self.conf.write_text(
            f"[{self.REMOTE}]\n"
            "type = s3\n"
            "provider = Other\n"
            "env_auth = false\n"
            f"access_key_id = {server.access_key}\n"
            f"secret_access_key = {server.secret_key}\n"
            f"endpoint = {server.endpoint}\n"
            f"region = {server.region}\n"
            "force_path_style = true\n")
        self.env = _clean_env(cfgdir)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        rclone = shutil.which("rclone") or "rclone"
        cmd = [rclone, "--config", str(self.conf), "--low-level-retries", "1", "--retries", "1",
               *args]
        return run_cli(cmd, self.env, check=check)


@pytest.fixture(scope="module")
def rclone(server, tmp_module) -> Rclone:
    return Rclone(server, tmp_module / "rclonecfg")


class S3cmd:
    def __init__(self, server: StrataServer, cfgdir: Path):
        cfgdir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfgdir / "s3cfg"
        self.cfg.write_text(
            "[default]\n"
            f"access_key = {server.access_key}\n"
            f"secret_key = {server.secret_key}\n"
            f"host_base = {server.hostport}\n"
            f"host_bucket = {server.hostport}\n"
            f"bucket_location = {server.region}\n"
            "use_https = False\n"
            "signature_v2 = False\n"
            "check_ssl_certificate = False\n"
            "guess_mime_type = True\n")
        self.env = _clean_env(cfgdir)

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(VENV_BIN / "s3cmd"), "-c", str(self.cfg), *args]
        return run_cli(cmd, self.env, check=check)


@pytest.fixture(scope="module")
def s3cmd(server, tmp_module) -> S3cmd:
    return S3cmd(server, tmp_module / "s3cmdcfg")


@pytest.fixture(scope="module")
def minio_client(server):
    from minio import Minio
    return Minio(server.hostport, access_key=server.access_key, secret_key=server.secret_key,
                 secure=False, region=server.region)


def wait_until(check, timeout: float, what: str = "") -> None:
    """Polls `check` every quarter second until it holds; fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout}s: {what}")


def pattern_body(size: int, seed: int) -> bytes:
    """`size` bytes that differ by `seed` (a SHA-256 block repeated)."""
    block = hashlib.sha256(str(seed).encode()).digest() * (1024 * 1024 // 32)
    return (block * (size // len(block) + 1))[:size]
