"""Observability against a real `strata`: Prometheus metrics, scrape auth, audit webhooks.

What is checked:
- a real Prometheus (Debian package `prometheus`) scrapes `/metrics/cluster` with the bearer
  token `strata admin prometheus generate` printed, and its query API reports request counts
  equal to the requests this test made; without (or with a wrong) token the endpoints answer 403;
- both metrics endpoints parse with `prometheus_client`'s text-format parser, every family has
  HELP text, and no series appears twice;
- audit records of a scripted sequence (including a failed signature and a 404) reach an HTTP
  receiver started by the test, with the expected fields and without any secret;
- with the receiver down and then back (spill directory on), no record is lost, and S3 latency
  while it is down stays within a small factor of the latency while it is up (a ratio within
  one run, never an absolute time).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from conftest import STRATA_BIN, free_port, make_s3_client, unique_bucket_name

CLI_TIMEOUT_SECS = 60
WAIT_SECS = 30.0
PROMETHEUS_BIN = shutil.which("prometheus")
DASHBOARD = Path(__file__).resolve().parents[2] / "helm" / "strata" / "dashboards" / "strata-dashboard.json"


def wait_until(pred, what: str, timeout: float = WAIT_SECS, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_with(srv, *flags: str):
    """Starts `srv` with extra `strata server` flags (clap accepts them among the drives)."""
    srv.drive_args = [*flags, *srv.drive_args]
    return srv.start()


def generate_scrape_config(srv, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["STRATA_CONFIG_DIR"] = str(tmp_path / "strata-config")
    for args in (["alias", "set", "obs", srv.endpoint, srv.access_key, srv.secret_key],
                 ["admin", "prometheus", "generate", "obs"]):
        p = subprocess.run([str(STRATA_BIN), *args], env=env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=CLI_TIMEOUT_SECS)
        assert p.returncode == 0, p.stderr
    assert srv.secret_key not in p.stdout + p.stderr
    return p.stdout


# ---------------------------------------------------------------- audit receiver

class Receiver:
    """An HTTP server on a fixed port that keeps every POSTed audit record (JSON or NDJSON).
    `stop()` closes the port (connections are refused); `start()` opens it again."""

    def __init__(self, port: int):
        self.port = port
        self.records: list[dict] = []
        self.raw: list[str] = []
        self.lock = threading.Lock()
        self.httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/audit"

    def start(self) -> "Receiver":
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n).decode()
                with owner.lock:
                    owner.raw.append(body)
                    owner.records.extend(json.loads(l) for l in body.splitlines() if l.strip())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def by_request_id(self) -> dict[str, dict]:
        with self.lock:
            return {r["request_id"]: r for r in self.records}


@pytest.fixture
def receiver():
    r = Receiver(free_port()).start()
    yield r
    r.stop()


def request_id_of(resp_or_exc) -> str:
    if isinstance(resp_or_exc, ClientError):
        return resp_or_exc.response["ResponseMetadata"]["RequestId"]
    return resp_or_exc["ResponseMetadata"]["RequestId"]


# ---------------------------------------------------------------- tests

def test_metrics_need_the_token(server_factory, tmp_path):
    srv = server_factory()
    srv.start()
    for path in ("/metrics/node", "/metrics/cluster"):
        status, _ = http_get(srv.endpoint + path)
        assert status == 403
        status, _ = http_get(srv.endpoint + path, {"Authorization": "Bearer not.a.token"})
        assert status == 403
    config = generate_scrape_config(srv, tmp_path)
    token = next(l.split(":", 1)[1].strip() for l in config.splitlines()
                 if l.strip().startswith("bearer_token:"))
    # A token signed with another secret key is refused.
    other = server_factory()
    other.secret_key = "another-secret-key-0123456789"
    other.start()
    other_token = next(l.split(":", 1)[1].strip()
                       for l in generate_scrape_config(other, tmp_path / "o").splitlines()
                       if l.strip().startswith("bearer_token:"))
    assert http_get(srv.endpoint + "/metrics/node", {"Authorization": f"Bearer {other_token}"})[0] == 403
    status, body = http_get(srv.endpoint + "/metrics/node", {"Authorization": f"Bearer {token}"})
    assert status == 200 and "strata_s3_requests_total" in body


@pytest.mark.skipif(PROMETHEUS_BIN is None, reason="Debian package prometheus not installed")
def test_prometheus_scrapes_request_counts(server_factory, tmp_path):
    srv = server_factory()
    # An audit file and a quick usage walk, so that every family the dashboard uses has series.
    start_with(srv, "--audit-file", str(tmp_path / "audit.log"), "--usage-interval-secs", "1")
    s3 = srv.client()
    bucket = unique_bucket_name("prom")
    s3.create_bucket(Bucket=bucket)
    n_put, n_get, n_missing = 5, 3, 2
    for i in range(n_put):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x" * 1000)
    for i in range(n_get):
        assert s3.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == b"x" * 1000
    for i in range(n_missing):
        with pytest.raises(ClientError):
            s3.get_object(Bucket=bucket, Key=f"missing{i}")

    scrape = generate_scrape_config(srv, tmp_path)
    prom_port = free_port()
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    (prom_dir / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n" + scrape)
    log = open(prom_dir / "prometheus.log", "wb")
    prom = subprocess.Popen(
        [PROMETHEUS_BIN, f"--config.file={prom_dir / 'prometheus.yml'}",
         f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def query(q: str) -> dict[str, float]:
            try:
                status, body = http_get(f"{api}/query?" + urllib.parse.urlencode({"query": q}))
            except OSError:
                return {}
            if status != 200:
                return {}
            return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
                    for r in json.loads(body)["data"]["result"]}

        def single(q: str) -> float | None:
            got = query(q)
            return next(iter(got.values())) if len(got) == 1 else None

        wait_until(lambda: single('up{job="strata-job"}') == 1.0, "Prometheus to scrape strata")
        wait_until(lambda: single(f'strata_bucket_objects{{bucket="{bucket}"}}') == n_put,
                   "the bucket usage walk")
        assert wait_until(
            lambda: single('strata_s3_requests_total{api="PutObject",status="200"}') == n_put,
            "PutObject count")
        assert single('strata_s3_requests_total{api="GetObject",status="200"}') == n_get
        assert single('strata_s3_requests_total{api="GetObject",status="404"}') == n_missing
        assert single('strata_s3_errors_total{api="GetObject",code="NoSuchKey"}') == n_missing
        assert single('strata_s3_requests_total{api="CreateBucket",status="200"}') == 1
        assert single('sum(strata_s3_received_bytes_total{api="PutObject"})') == n_put * 1000
        assert single('sum(strata_s3_sent_bytes_total{api="GetObject"})') >= n_get * 1000
        assert single('strata_s3_ttfb_seconds_count{api="GetObject"}') == n_get + n_missing
        assert single("sum(strata_drive_online)") == 4
        assert single("strata_cluster_drives_online") == 4
        # The bucket usage walk runs at start and then every 300 s: the bucket may not be in
        # it yet, but the family is there.
        assert single("strata_cluster_usage_last_update_seconds") is not None
        assert single("process_resident_memory_bytes") > 0
        targets = json.loads(http_get(f"{api}/targets")[1])["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"]

        # The Grafana dashboard: every expression is valid PromQL and every metric it names is
        # one the server exports.
        token = next(l.split(":", 1)[1].strip() for l in scrape.splitlines()
                     if l.strip().startswith("bearer_token:"))
        exported = {f.name for f in text_string_to_metric_families(
            http_get(srv.endpoint + "/metrics/cluster", {"Authorization": f"Bearer {token}"})[1])}
        exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
                 for t in p.get("targets", [])]
        assert len(exprs) > 20
        for expr in exprs:
            q = expr.replace("$__rate_interval", "1m").replace("$job", ".*")
            status, body = http_get(f"{api}/query?" + urllib.parse.urlencode({"query": q}))
            assert status == 200 and json.loads(body)["status"] == "success", (expr, body)
            for name in re.findall(r"\b((?:strata|process)_[a-z0-9_]+)", expr):
                base = re.sub(r"_(bucket|sum|count|total)$", "", name)
                assert base in exported, (name, expr)
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=15)
        except subprocess.TimeoutExpired:
            prom.kill()
        log.close()


def test_metrics_parse_without_duplicates(server_factory):
    srv = server_factory()
    start_with(srv, "--metrics-auth", "public", "--usage-interval-secs", "1")
    s3 = srv.client()
    bucket = unique_bucket_name("parse")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1" * (2 << 20))  # shard files: erasure coding
    s3.get_object(Bucket=bucket, Key="a")["Body"].read()
    s3.put_object(Bucket=bucket, Key="b", Body=b"22")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="nothing")
    wait_until(lambda: f'strata_bucket_objects{{bucket="{bucket}"}} 2'
               in http_get(srv.endpoint + "/metrics/cluster")[1], "bucket usage in the cluster metrics")
    for path in ("/metrics/node", "/metrics/cluster"):
        status, text = http_get(srv.endpoint + path)
        assert status == 200
        seen: set[tuple] = set()
        names = set()
        for family in text_string_to_metric_families(text):
            assert family.documentation, f"{family.name} has no HELP"
            names.add(family.name)
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in seen, f"duplicate series {key} in {path}"
                seen.add(key)
        expected = {"strata_s3_requests", "strata_s3_request_duration_seconds", "strata_s3_ttfb_seconds",
                    "strata_s3_received_bytes", "strata_s3_sent_bytes", "strata_s3_requests_inflight",
                    "strata_s3_errors", "strata_drive_online", "strata_drive_free_bytes",
                    "strata_drive_used_bytes", "strata_drive_io_errors", "strata_set_drives_online",
                    "strata_set_write_quorum_drives", "strata_scanner_objects_scanned",
                    "strata_heal_sequence_objects_healed", "strata_drive_metadata_commit_seconds",
                    "strata_drive_metadata_commit_batches", "strata_erasure_block_seconds",
                    "process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds"}
        if path == "/metrics/cluster":
            expected |= {"strata_cluster_capacity_raw_total_bytes", "strata_bucket_bytes",
                         "strata_bucket_objects", "strata_cluster_write_quorum_ok"}
        assert expected <= names, sorted(expected - names)
    values = {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
              for fam in text_string_to_metric_families(text) for smp in fam.samples}
    assert values[("strata_bucket_bytes", (("bucket", bucket),))] == (2 << 20) + 2
    assert values[("strata_bucket_objects", (("bucket", bucket),))] == 2


def test_audit_records_reach_the_webhook(server_factory, receiver, tmp_path):
    srv = server_factory()
    start_with(srv, "--audit-webhook-endpoint", receiver.url,
               "--audit-webhook-spill-dir", str(tmp_path / "spill"))
    s3 = srv.client()
    bucket = unique_bucket_name("audit")
    expected: list[tuple[str, dict]] = []
    expected.append((request_id_of(s3.create_bucket(Bucket=bucket)),
                     {"api": "CreateBucket", "bucket": bucket, "status_code": 200}))
    body = b"audit-me" * 100
    expected.append((request_id_of(s3.put_object(Bucket=bucket, Key="dir/obj", Body=body)),
                     {"api": "PutObject", "bucket": bucket, "object": "dir/obj", "status_code": 200,
                      "rx_bytes": len(body)}))
    got = s3.get_object(Bucket=bucket, Key="dir/obj")
    assert got["Body"].read() == body
    expected.append((request_id_of(got), {"api": "GetObject", "object": "dir/obj", "status_code": 200,
                                          "tx_bytes": len(body)}))
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="nope")
    expected.append((request_id_of(missing.value),
                     {"api": "GetObject", "object": "nope", "status_code": 404,
                      "error_code": "NoSuchKey"}))
    wrong = make_s3_client(srv.endpoint, srv.access_key, "wrong-secret-key-000000000")
    with pytest.raises(ClientError) as denied:
        wrong.get_object(Bucket=bucket, Key="dir/obj")
    expected.append((request_id_of(denied.value),
                     {"api": "GetObject", "status_code": 403, "error_code": "SignatureDoesNotMatch",
                      "access_key": srv.access_key, "authenticated": False}))
    expected.append((request_id_of(s3.delete_object(Bucket=bucket, Key="dir/obj")),
                     {"api": "DeleteObject", "status_code": 204}))

    records = wait_until(
        lambda: (lambda got: got if all(rid in got for rid, _ in expected) else None)(
            receiver.by_request_id()),
        "every audit record at the receiver")
    for rid, fields in expected:
        rec = records[rid]
        for k, v in fields.items():
            assert rec[k] == v, (k, rec)
        for k in ("version", "time", "deployment_id", "method", "rx_bytes", "tx_bytes", "ttfb_ns",
                  "duration_ns", "remote_ip", "request_headers", "response_headers"):
            assert k in rec, (k, rec)
        assert rec["remote_ip"] == "127.0.0.1"
        assert "Boto3" in rec["user_agent"] or "botocore" in rec["user_agent"]
        assert rec["duration_ns"] >= rec["ttfb_ns"] > 0
        assert rec["response_headers"]["x-amz-request-id"] == rid
        if rec["status_code"] < 400:
            assert rec["access_key"] == srv.access_key and rec["user"] == "root"
            assert rec["authenticated"] is True
    assert "user" not in records[expected[4][0]]
    raw = "\n".join(receiver.raw)
    for secret in (srv.secret_key, "wrong-secret-key", "Signature=", "authorization",
                   "Authorization", "x-amz-security-token"):
        assert secret not in raw
    # The probes of the harness are counted in the metrics, not audited.
    assert not any(r["api"] == "Health" for r in receiver.records)


def test_audit_survives_receiver_outage_without_slowing_requests(server_factory, receiver, tmp_path):
    srv = server_factory()
    spill = tmp_path / "spill"
    start_with(srv, "--audit-webhook-endpoint", receiver.url, "--audit-webhook-spill-dir", str(spill),
               "--metrics-auth", "public")
    s3 = srv.client()
    bucket = unique_bucket_name("outage")
    s3.create_bucket(Bucket=bucket)
    n = 40

    def puts(prefix: str) -> tuple[list[str], list[float]]:
        ids, secs = [], []
        for i in range(n):
            t0 = time.perf_counter()
            resp = s3.put_object(Bucket=bucket, Key=f"{prefix}{i}", Body=b"v" * 512)
            secs.append(time.perf_counter() - t0)
            ids.append(request_id_of(resp))
        return ids, secs

    up_ids, up_secs = puts("up")
    wait_until(lambda: all(r in receiver.by_request_id() for r in up_ids), "records while up")
    receiver.stop()
    # First a target that accepts connections and never answers (slow), then none at all (dead).
    hole = socket.socket()
    hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hole.bind(("127.0.0.1", receiver.port))
    hole.listen(64)
    held: list[socket.socket] = []
    stop_hole = threading.Event()

    def swallow():
        hole.settimeout(0.1)
        while not stop_hole.is_set():
            try:
                held.append(hole.accept()[0])
            except OSError:
                pass

    threading.Thread(target=swallow, daemon=True).start()
    slow_ids, slow_secs = puts("slow")
    stop_hole.set()
    for c in held:
        c.close()
    hole.close()
    dead_ids, dead_secs = puts("down")
    down_ids, down_secs = slow_ids + dead_ids, slow_secs + dead_secs
    # The target failed and records wait in the spill directory.
    metrics = http_get(srv.endpoint + "/metrics/node")[1]
    assert 'strata_audit_failed_total{target="webhook"}' in metrics
    wait_until(lambda: any(spill.iterdir()), "records spilled to disk")
    receiver.start()
    after_ids, _ = puts("after")
    all_ids = up_ids + down_ids + after_ids
    got = wait_until(
        lambda: (lambda g: g if all(r in g for r in all_ids) else None)(receiver.by_request_id()),
        "every record after the receiver came back")
    assert all(got[r]["api"] == "PutObject" for r in all_ids)
    # Delivered in order: the outage's records arrive before the ones made after it.
    order = [r["request_id"] for r in receiver.records]
    assert order.index(slow_ids[0]) < order.index(dead_ids[0]) < order.index(after_ids[0])
    families = {f.name: f for f in text_string_to_metric_families(http_get(srv.endpoint + "/metrics/node")[1])}
    dropped = [s.value for s in families["strata_audit_dropped"].samples if s.name.endswith("_total")]
    assert dropped == [0.0]
    for what, secs in (("slow", slow_secs), ("dead", dead_secs)):
        ratio = statistics.median(secs) / statistics.median(up_secs)
        assert ratio < 3.0, f"PUT median latency grew {ratio:.2f}x while the audit target was {what}"
    wait_until(lambda: not any(spill.iterdir()), "spill directory drained")
