"""Connections that hold the server's resources without using them (issue 16, item 2): silent
sockets, stalled request bodies, one client holding too many connections, and a descriptor
limit smaller than the number of sockets a client opens.

Each test starts its own `strata` on 127.0.0.1 with the connection timeouts shortened through
STRATA_* environment variables (set by an `env` command prefix, since the harness clears the
STRATA_* variables of the test process), and each would fail against a server that never
closes silent connections: it waits a bounded time for the server to act, never longer.
"""

from __future__ import annotations

import re
import resource
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conftest import REGION, error_of

# Shortened timeouts for the tests (defaults: first byte 10 s, idle 60 s).
FIRST_BYTE_SECS = 2
IDLE_SECS = 3
# How late the server may act after a timeout (scheduling, a loaded CI machine).
SLACK_SECS = 4.0
N_SILENT = 300
N_FLOOD = 600
NOFILE_LIMIT = 256


def env_prefix(**settings: int | str) -> list[str]:
    return ["env", *(f"STRATA_{k.upper()}={v}" for k, v in settings.items())]


def quick_client(srv, timeout: float = 15.0):
    """A boto3 client with short timeouts and no retries (a refused connection surfaces)."""
    cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                 retries={"total_max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout)
    return boto3.session.Session().client(
        "s3", endpoint_url=srv.endpoint, aws_access_key_id=srv.access_key,
        aws_secret_access_key=srv.secret_key, region_name=REGION, config=cfg)


def open_silent(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    return socks


def is_closed_by_peer(s: socket.socket) -> bool:
    """Reads what is there without blocking: True on EOF or reset."""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except (ConnectionResetError, ConnectionAbortedError):
        return True


def wait_closed(socks: list[socket.socket], deadline: float) -> tuple[list[float], int]:
    """Waits until the server closed every socket or the deadline passed. Returns the
    monotonic times at which closes were seen, and how many are still open."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed_at: list[float] = []
    try:
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                if is_closed_by_peer(key.fileobj):
                    closed_at.append(time.monotonic())
                    sel.unregister(key.fileobj)
        return closed_at, len(sel.get_map())
    finally:
        sel.close()


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


class Traffic:
    """A boto3 client doing PUT and GET in a loop on a thread; records what failed."""

    def __init__(self, client, bucket: str):
        self.client = client
        self.bucket = bucket
        self.n_ok = 0
        self.failures: list[str] = []
        self.slowest_secs = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            key = f"k{i % 8}"
            body = f"object {i}".encode()
            started = time.monotonic()
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
                got = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                if got != body:
                    self.failures.append(f"GET {key}: wrong body")
                else:
                    self.n_ok += 1
            except (BotoCoreError, ClientError) as e:
                self.failures.append(f"{type(e).__name__}: {e}")
            self.slowest_secs = max(self.slowest_secs, time.monotonic() - started)
            i += 1
            time.sleep(0.05)


def server_log(srv) -> str:
    """The server's log without colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", srv.log_path.read_text(errors="replace"))


def http_get(url: str, timeout: float = 20.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def short_timeout_server_with_bucket(server_factory):
    """A server with the test's short first-byte and idle timeouts, a client, and a bucket."""
    srv = server_factory(prefix=env_prefix(connection_first_byte_timeout_secs=FIRST_BYTE_SECS,
                                           connection_idle_timeout_secs=IDLE_SECS,
                                           metrics_auth="public"))
    srv.start()
    s3 = quick_client(srv)
    bucket = f"c-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return srv, s3, bucket


def connections_closed(srv, reason: str) -> float:
    """strata_connections_closed_total{reason=...} from the node's metrics."""
    with urllib.request.urlopen(f"{srv.endpoint}/metrics/node", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(f'strata_connections_closed_total{{reason="{reason}"}}'):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no strata_connections_closed_total for {reason}")


def test_silent_connections_are_closed_while_a_client_is_served(server_factory):
    srv, s3, bucket = short_timeout_server_with_bucket(server_factory)
    with Traffic(s3, bucket) as traffic:
        opened_at = time.monotonic()
        socks = open_silent(srv.port, N_SILENT)
        try:
            closed_at, n_open = wait_closed(socks, opened_at + FIRST_BYTE_SECS + SLACK_SECS)
        finally:
            close_all(socks)
        time.sleep(0.5)
    assert n_open == 0, (f"{n_open} of {N_SILENT} silent connections still open "
                         f"{FIRST_BYTE_SECS + SLACK_SECS} s after connecting")
    # Closed by the first-byte timeout, not refused at accept.
    assert min(closed_at) - opened_at >= FIRST_BYTE_SECS - 0.5
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.n_ok >= 10, f"only {traffic.n_ok} PUT+GET rounds while the sockets were open"
    assert traffic.slowest_secs < 2.0, f"a PUT+GET round took {traffic.slowest_secs:.1f} s"
    assert connections_closed(srv, "first_byte_timeout") >= N_SILENT


def signed_put(srv, bucket: str, key: str, body: bytes) -> bytes:
    """The head of a SigV4-signed PUT (payload hash of `body`), as raw HTTP/1.1."""
    url = f"{srv.endpoint}/{bucket}/{key}"
    req = botocore.awsrequest.AWSRequest(method="PUT", url=url, data=body,
                                         headers={"Content-Length": str(len(body))})
    creds = botocore.credentials.Credentials(srv.access_key, srv.secret_key)
    botocore.auth.S3SigV4Auth(creds, "s3", REGION).add_auth(req)
    lines = [f"PUT /{bucket}/{key} HTTP/1.1", f"Host: {srv.hostport}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_until_closed(s: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Reads until the server closes (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return got, False
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            return got, False
        except ConnectionResetError:
            return got, True
        if not data:
            return got, True
        got += data


@pytest.mark.parametrize("n_body_bytes_sent", [0, 1000])
def test_a_stalled_request_body_is_ended(server_factory, n_body_bytes_sent):
    srv, s3, bucket = short_timeout_server_with_bucket(server_factory)
    body = bytes(range(256)) * 4096  # 1 MiB

    # The request is good: sent whole, it is stored.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(signed_put(srv, bucket, "whole", body) + body)
        s.settimeout(10)
        assert s.recv(65536).startswith(b"HTTP/1.1 200"), "the signed PUT was not accepted"
    assert s3.get_object(Bucket=bucket, Key="whole")["Body"].read() == body

    # The same request whose body stops arriving.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(signed_put(srv, bucket, "stalled", body) + body[:n_body_bytes_sent])
        started = time.monotonic()
        answer, closed = read_until_closed(s, IDLE_SECS + SLACK_SECS)
        elapsed = time.monotonic() - started
    assert closed, (f"the connection was still open {IDLE_SECS + SLACK_SECS} s after its body "
                    f"stalled (got {answer[:200]!r})")
    assert elapsed >= IDLE_SECS - 0.5, f"closed after {elapsed:.1f} s: before the idle timeout"
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="stalled")
    assert error_of(e.value)[1] == 404


def test_the_per_client_limit_refuses_extra_connections(server_factory):
    per_client = 8
    srv = server_factory(prefix=env_prefix(connections_per_client_max=per_client,
                                           connection_first_byte_timeout_secs=60,
                                           connection_idle_timeout_secs=60))
    srv.start()
    s3 = quick_client(srv, timeout=5)
    bucket = f"c-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)  # its connection stays open in the client's pool
    held = open_silent(srv.port, per_client - 1)
    extra: list[socket.socket] = []
    try:
        time.sleep(0.5)
        extra = open_silent(srv.port, 20)
        closed_at, n_open = wait_closed(extra, time.monotonic() + 3)
        assert n_open == 0, f"{n_open} of 20 connections beyond the per-client limit were served"
        # The client's admitted connection keeps working; a new client is refused.
        s3.put_object(Bucket=bucket, Key="a", Body=b"a")
        with pytest.raises(BotoCoreError):
            quick_client(srv, timeout=5).list_objects_v2(Bucket=bucket)
        # Served again once some connections are closed.
        close_all(held[:2])
        deadline = time.monotonic() + 5
        while True:
            try:
                assert quick_client(srv, timeout=5).get_object(Bucket=bucket, Key="a")["Body"].read() == b"a"
                break
            except BotoCoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        close_all(held)
        close_all(extra)
    log = server_log(srv)
    n_lines = log.count("connections refused")
    # 21 refusals in a few seconds: one line (the report interval is 10 s).
    assert n_lines == 1, f"{n_lines} log lines about refused connections"
    assert re.search(r"connections_per_client_max=8\b", log) and re.search(r"refused_total=\d+", log)


def drive_metrics(srv) -> tuple[list[float], float]:
    """(strata_drive_online of each drive, sum of strata_drive_io_errors_total)."""
    status, text = http_get(f"{srv.endpoint}/metrics/node")
    assert status == 200, text[:500]
    online, io_errors = [], 0.0
    for line in text.splitlines():
        if line.startswith("strata_drive_online{"):
            online.append(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("strata_drive_io_errors_total{"):
            io_errors += float(line.rsplit(" ", 1)[1])
    return online, io_errors


def test_a_flood_beyond_the_descriptor_limit_takes_no_drive_offline(server_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < N_FLOOD + 200:
        pytest.skip(f"the test process may open only {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prefix = ["prlimit", f"--nofile={NOFILE_LIMIT}:{NOFILE_LIMIT}", "--"]
    prefix += env_prefix(connection_first_byte_timeout_secs=FIRST_BYTE_SECS,
                         connection_idle_timeout_secs=IDLE_SECS,
                         connections_per_client_max=4096, metrics_auth="public")
    srv = server_factory(prefix=prefix)
    try:
        srv.start()
        s3 = quick_client(srv, timeout=30)
        bucket = f"c-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        ready_answers: list[int] = []

        def probe_ready():
            while not stop.is_set():
                try:
                    ready_answers.append(http_get(f"{srv.endpoint}/health/ready", timeout=30)[0])
                except OSError as e:
                    ready_answers.append(-1)
                    print(f"/health/ready: {e!r}")
                time.sleep(0.5)

        stop = threading.Event()
        prober = threading.Thread(target=probe_ready, daemon=True)
        prober.start()
        with Traffic(s3, bucket) as traffic:
            opened_at = time.monotonic()
            socks = open_silent(srv.port, N_FLOOD)
            try:
                # Each wave of silent connections the server admits is closed after the
                # first-byte timeout; a flood of N_FLOOD takes a few waves.
                _, n_open = wait_closed(socks, opened_at + 30)
            finally:
                close_all(socks)
            time.sleep(1)
        stop.set()
        prober.join(timeout=40)
        assert n_open == 0, f"{n_open} of {N_FLOOD} silent connections still open after 30 s"
        assert traffic.failures == [], traffic.failures[:5]
        assert traffic.n_ok >= 3
        assert ready_answers and set(ready_answers) == {200}, ready_answers
        # Served afterwards, every drive online, no drive I/O error.
        s3.put_object(Bucket=bucket, Key="after", Body=b"after")
        assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"after"
        assert http_get(f"{srv.endpoint}/health/ready")[0] == 200
        online, io_errors = drive_metrics(srv)
        assert online == [1.0] * 4, online
        assert io_errors == 0, f"{io_errors} drive I/O errors"
        log = server_log(srv)
        assert "file descriptor limit" in log and f"soft={NOFILE_LIMIT}" in log
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
