#!/usr/bin/env python3
"""Transition throughput between local pools, with a foreground 4 KiB GET load.

Usage (from the repository root, after `cargo build --release --bin strata`, with the test
venv from tests/run.sh):
    .venv-tests/bin/python benches/tier-bench.py [--objects 48] [--rounds 2]

One sitting: a fresh server over two pools of four directories each ("NVME" and "HDD", both on
this machine's one disk), 2+2 erasure sets, lifecycle days of one second. Each round:
  1. `fio` sequential 1 MiB O_DIRECT writes in the bench directory: the drive's write limit
     now;
  2. the foreground load alone: `strata bench get` of 4 KiB objects, 8 clients, 20 s;
  3. the same load while a lifecycle rule moves N prefilled 64 MiB objects to WARM (the HDD
     pool): the transition's throughput (object bytes over the time from the rule to the last
     object reporting WARM) and the foreground's ops/s.
Prints one JSON line per round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

BIN = os.environ.get("STRATA_BIN", "target/release/strata")
DIR = Path(os.environ.get("BENCH_DIR", "/tmp/bench-tier"))
PORT = 9703
USER, SECRET = "benchroot", "benchroot-secret"
MIB = 1024 * 1024


def start_server() -> subprocess.Popen:
    shutil.rmtree(DIR, ignore_errors=True)
    for pool in ("nvme", "hdd"):
        for i in range(1, 5):
            (DIR / f"{pool}{i}").mkdir(parents=True)
    env = dict(os.environ, STRATA_ROOT_USER=USER, STRATA_ROOT_PASSWORD=SECRET,
               STRATA_POOL_CLASSES="NVME,HDD", STRATA_STORAGE_CLASSES="WARM=HDD",
               STRATA_LIFECYCLE_DAY_SECONDS="1", STRATA_LIFECYCLE_INTERVAL_SECONDS="1",
               STRATA_LIFECYCLE_ACTIONS_PER_SECOND="1000", RUST_LOG="warn")
    log = open(f"{DIR}.log", "wb")
    proc = subprocess.Popen([BIN, "server", "--address", f"127.0.0.1:{PORT}",
                             f"{DIR}/nvme{{1...4}}", f"{DIR}/hdd{{1...4}}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            subprocess.run(["curl", "-sf", f"http://127.0.0.1:{PORT}/health/ready"], check=True,
                           capture_output=True)
            return proc
        except subprocess.CalledProcessError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def fio_write_limit() -> float:
    out = subprocess.run(["fio", "--name=w", "--rw=write", "--bs=1M", "--size=1G", "--direct=1",
                          "--iodepth=16", "--ioengine=libaio", "--runtime=10", "--time_based",
                          f"--directory={DIR}", "--output-format=json"],
                         capture_output=True, text=True, check=True).stdout
    bw_kib = json.loads(out)["jobs"][0]["write"]["bw"]
    for f in DIR.glob("w.*"):
        f.unlink()
    return bw_kib / 1024


def foreground(result: dict) -> None:
    out = subprocess.run([BIN, "bench", "get", "--endpoint", f"http://127.0.0.1:{PORT}",
                          "--access-key", USER, "--secret-key", SECRET, "--bucket", "fgload",
                          "--size", "4KiB", "--concurrency", "8", "--duration", "20s",
                          "--objects", "1000", "--warmup", "2s", "--json"],
                         capture_output=True, text=True, check=True).stdout
    result.update(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    for round_ in range(args.rounds):
        proc = start_server()
        try:
            s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{PORT}", aws_access_key_id=USER,
                              aws_secret_access_key=SECRET, region_name="us-east-1",
                              config=Config(s3={"addressing_style": "path"}))
            limit = fio_write_limit()
            alone: dict = {}
            foreground(alone)
            s3.create_bucket(Bucket="move")
            body = os.urandom(64 * MIB)
            for i in range(args.objects):
                s3.put_object(Bucket="move", Key=f"o{i:03d}", Body=body)
            during: dict = {}
            fg = threading.Thread(target=foreground, args=(during,))
            fg.start()
            time.sleep(3)  # the foreground's warm-up, then the moves start under it
            start = time.time()
            s3.put_bucket_lifecycle_configuration(Bucket="move", LifecycleConfiguration={"Rules": [
                {"ID": "warm", "Status": "Enabled", "Filter": {},
                 "Transitions": [{"Days": 1, "StorageClass": "WARM"}]}]})
            while True:
                listed = s3.list_objects_v2(Bucket="move")["Contents"]
                if all(o["StorageClass"] == "WARM" for o in listed):
                    break
                time.sleep(0.1)
            took = time.time() - start
            fg.join()
            moved_mib = args.objects * 64
            print(json.dumps({
                "round": round_ + 1,
                "fio_write_mib_s": round(limit),
                "transition_object_mib_s": round(moved_mib / took),
                "transition_shard_write_mib_s": round(2 * moved_mib / took),
                "fraction_of_write_limit": round(2 * moved_mib / took / limit, 2),
                "fg_get_ops_alone": round(alone["total"]["ops_per_s"]),
                "fg_get_ops_during": round(during["total"]["ops_per_s"]),
                "transition_secs": round(took, 1),
            }), flush=True)
        finally:
            proc.terminate()
            proc.wait()
    shutil.rmtree(DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
