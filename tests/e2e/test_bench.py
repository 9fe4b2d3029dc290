"""The load generator (`strata bench`) against a real server: every mode runs briefly and
reports sane results with no errors. This proves the tool works; it asserts no speed (figures
live in docs/BENCHMARKS.md, measured on a quiet machine, never in CI)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import STRATA_BIN

MODES = [
    ("put", ["--size", "4KiB"]),
    ("get", ["--size", "4KiB", "--objects", "50"]),
    ("stat", ["--size", "4KiB", "--objects", "50"]),
    ("delete", ["--size", "4KiB", "--objects", "400"]),
    ("mixed", ["--size", "64KiB", "--objects", "50"]),
    ("list", ["--size", "0", "--objects", "2500"]),
    ("multipart", ["--part-size", "5MiB", "--parts", "2"]),
]


@pytest.mark.parametrize("mode,args", MODES, ids=[m for m, _ in MODES])
def test_bench_mode_runs_clean(server, mode, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRATA_"))}
    env["STRATA_ROOT_USER"] = server.access_key
    env["STRATA_ROOT_PASSWORD"] = server.secret_key
    cmd = [str(STRATA_BIN), "bench", mode, *args, "--endpoint", server.endpoint,
           "--concurrency", "4", "--duration", "2s", "--warmup", "0s", "--json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["mode"] == mode
    total = report["total"]
    assert total["errors"] == 0, report
    assert total["ops"] > 0, report
    lat = total["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"], lat
    if mode == "list":
        assert total["keys"] >= 2500, report
    # The run cleans up after itself: no bench bucket is left behind.
    buckets = [b["Name"] for b in server.client().list_buckets()["Buckets"]]
    assert report["bucket"] not in buckets
