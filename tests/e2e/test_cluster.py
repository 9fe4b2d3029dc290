"""Distributed mode against real `strata` processes: 4 nodes × 4 drives on 127.0.0.1 (one 12+4
erasure set spread over all nodes), and for the partition test 4 nodes in network namespaces
this test creates.

What is checked: objects and buckets written through one node read back through every other at
once; a SIGKILLed node costs neither reads nor writes and catches up when it returns (proven by
then losing another node); two of four nodes down makes writes fail fast with 503 and recover
when a node returns; a node cut off from its peers refuses writes it cannot make durable and
nothing of them becomes visible; a rolling restart under steady load loses no acknowledged write
and fails no request sent to a node that was up; nodes started with different topologies refuse
to start.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from conftest import (StrataCli, StrataCluster, StrataServer, error_of, free_ports,
                      wait_all_drives_online, wait_until)
from netns import Netns

MIB = 1024 * 1024
BUCKET = "cluster"
# A request to a deployment without quorum must fail within this (no hang).
FAIL_FAST_SECS = 30.0


@pytest.fixture
def cluster(tmp_path):
    c = StrataCluster(tmp_path / "cluster")
    try:
        yield c.start()
    finally:
        c.stop()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def put_objects(client, prefix: str, n: int, sizes=(10, 100_000, 3 * MIB + 17)) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        data = os.urandom(sizes[i % len(sizes)])
        key = f"{prefix}/obj-{i}"
        client.put_object(Bucket=BUCKET, Key=key, Body=data)
        out[key] = data
    return out


def assert_readable(client, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        got = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert hashlib.md5(got).hexdigest() == hashlib.md5(data).hexdigest(), key


def heal_all(node: StrataServer, tmp_path: Path) -> dict:
    cli = StrataCli(tmp_path / f"strata-config-{node.port}")
    cli("alias", "set", "c", node.endpoint, node.access_key, node.secret_key)
    report = cli.json("admin", "heal", "c")
    assert report["state"] == "done", report
    assert report["counters"]["objects_failed"] == 0, report
    return report


def test_every_node_serves_the_same_deployment(cluster):
    clients = [n.client() for n in cluster.nodes]
    clients[1].create_bucket(Bucket=BUCKET)
    # The bucket exists on every node at once.
    for c in clients:
        c.head_bucket(Bucket=BUCKET)
        assert BUCKET in [b["Name"] for b in c.list_buckets()["Buckets"]]
    objects = {}
    for i, c in enumerate(clients):
        objects.update(put_objects(c, f"via-{i}", 3))
    # A multipart upload through one node, completed through another.
    mp = clients[0].create_multipart_upload(Bucket=BUCKET, Key="mp")
    parts, blob = [], b""
    for n in (1, 2):
        data = os.urandom(5 * MIB + n)
        blob += data
        via = clients[n]
        r = via.upload_part(Bucket=BUCKET, Key="mp", UploadId=mp["UploadId"], PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    clients[3].complete_multipart_upload(Bucket=BUCKET, Key="mp", UploadId=mp["UploadId"],
                                         MultipartUpload={"Parts": parts})
    objects["mp"] = blob
    for c in clients:
        assert_readable(c, objects)
        listed = c.list_objects_v2(Bucket=BUCKET)
        assert sorted(o["Key"] for o in listed["Contents"]) == sorted(objects)
    # Versioning switched on through one node applies to writes through another.
    clients[2].put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    v1 = clients[3].put_object(Bucket=BUCKET, Key="versioned", Body=b"one")["VersionId"]
    v2 = clients[0].put_object(Bucket=BUCKET, Key="versioned", Body=b"two")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    versions = clients[1].list_object_versions(Bucket=BUCKET, Prefix="versioned")["Versions"]
    assert [v["VersionId"] for v in versions] == [v2, v1]
    # A bucket deleted through one node is gone on every node at once.
    clients[0].create_bucket(Bucket="short-lived")
    clients[3].delete_bucket(Bucket="short-lived")
    for c in clients:
        with pytest.raises(ClientError) as e:
            c.head_bucket(Bucket="short-lived")
        assert error_of(e.value)[1] == 404
    for node in cluster.nodes:
        assert status_of(f"{node.endpoint}/health/cluster") == 200
        # Safe to take a node down once the heals owed since the nodes met have run.
        wait_until(lambda n=node: status_of(f"{n.endpoint}/health/cluster?maintenance=true") == 200,
                   60, f"{node.endpoint} safe for maintenance")


def test_conditional_writes_and_object_lock_hold_across_nodes(cluster):
    """Two nodes race If-None-Match writes to one key: exactly one wins (the key lock is the
    deployment's). A version locked through one node cannot be deleted through another."""
    import concurrent.futures
    import datetime as dt
    from botocore.exceptions import ClientError

    clients = [n.client() for n in cluster.nodes]
    bucket = "cas-lock"
    clients[0].create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)

    def attempt(i: int) -> bool:
        try:
            clients[i % len(clients)].put_object(Bucket=bucket, Key="leader", Body=f"node-{i}".encode(),
                                                 IfNoneMatch="*")
            return True
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"), e.response
            return False

    for round_ in range(3):
        key_results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            key_results = list(pool.map(attempt, range(8)))
        assert sum(key_results) == (1 if round_ == 0 else 0), key_results
    versions = clients[2].list_object_versions(Bucket=bucket, Prefix="leader").get("Versions", [])
    assert len(versions) == 1

    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    v = clients[1].put_object(Bucket=bucket, Key="locked", Body=b"x", ObjectLockMode="COMPLIANCE",
                              ObjectLockRetainUntilDate=until)["VersionId"]
    for c in clients:
        with pytest.raises(ClientError) as e:
            c.delete_object(Bucket=bucket, Key="locked", VersionId=v, BypassGovernanceRetention=True)
        assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert clients[3].get_object(Bucket=bucket, Key="locked", VersionId=v)["Body"].read() == b"x"


def test_killed_node_costs_nothing_and_catches_up(cluster, tmp_path):
    nodes = cluster.nodes
    c0 = nodes[0].client()
    c0.create_bucket(Bucket=BUCKET)
    before = put_objects(c0, "before", 6)
    nodes[3].kill()
    # Reads and writes keep working through every surviving node.
    during = {}
    for i in range(3):
        c = nodes[i].client()
        assert_readable(c, before)
        during.update(put_objects(c, f"during-{i}", 3))
        c.delete_object(Bucket=BUCKET, Key=f"before/obj-{i}")
        del before[f"before/obj-{i}"]
    assert status_of(f"{nodes[0].endpoint}/health/ready") == 200
    # With one node gone, taking another down would lose write quorum.
    assert status_of(f"{nodes[0].endpoint}/health/cluster?maintenance=true") == 503

    nodes[3].start(ready_path="/health/ready")
    cluster.wait_cluster_healthy()
    heal_all(nodes[3], tmp_path)
    # Full redundancy again: with node 1 gone, reads need every drive of nodes 2-4, including
    # what node 4 missed while it was down.
    nodes[0].kill()
    c3 = nodes[3].client()
    assert_readable(c3, before | during)
    for key in (f"before/obj-{i}" for i in range(3)):
        with pytest.raises(ClientError) as e:
            c3.head_object(Bucket=BUCKET, Key=key)
        assert error_of(e.value)[1] == 404


def test_two_nodes_down_fails_fast_and_recovers(cluster):
    nodes = cluster.nodes
    c0 = nodes[0].client()
    c0.create_bucket(Bucket=BUCKET)
    objects = put_objects(c0, "kept", 3)
    nodes[2].kill()
    nodes[3].kill()
    for attempt in ("put", "get"):
        started = time.monotonic()
        with pytest.raises(ClientError) as e:
            if attempt == "put":
                c0.put_object(Bucket=BUCKET, Key="lost-quorum", Body=b"x" * 1000)
            else:
                c0.get_object(Bucket=BUCKET, Key="kept/obj-0")["Body"].read()
        assert error_of(e.value)[1] == 503, (attempt, e.value.response)
        assert time.monotonic() - started < FAIL_FAST_SECS
    assert status_of(f"{nodes[0].endpoint}/health/ready") == 503
    assert status_of(f"{nodes[0].endpoint}/health/cluster") == 503
    assert status_of(f"{nodes[0].endpoint}/health/live") == 200
    # The refused write left nothing behind once quorum is back.
    nodes[2].start(ready_path="/health/ready")
    for node in nodes[:3]:
        node.wait_ready("/health/ready")
    with pytest.raises(ClientError) as e:
        c0.head_object(Bucket=BUCKET, Key="lost-quorum")
    assert error_of(e.value)[1] == 404
    c0.put_object(Bucket=BUCKET, Key="after", Body=b"back")
    assert_readable(nodes[1].client(), objects | {"after": b"back"})


def test_mismatched_topology_refuses_to_start(tmp_path):
    cluster = StrataCluster(tmp_path / "cluster", n_nodes=2, drives_per_node=2)
    other = tmp_path / "other.toml"
    # Same nodes, but this node believes in a different drive list.
    other.write_text(cluster.config.read_text().replace("d{1...2}", "e{1...2}", 1))
    rogue = StrataServer(tmp_path / "rogue", drives=[], drive_args=[], config=other)
    rogue.port = cluster.nodes[1].port
    try:
        cluster.nodes[0].start(ready_path=None)
        rogue.start(ready_path=None)
        # Whichever side asks first sees the mismatch; the side that was asked must
        # refuse as well, even when the asker is gone before it could ask back.
        for server in (cluster.nodes[0], rogue):
            assert server.proc is not None
            code = server.proc.wait(timeout=60)
            assert code != 0
            log = server.log_path.read_text()
            assert "different topology" in log, server.log_tail()
    finally:
        cluster.stop()
        rogue.stop()
        rogue.kill()


def test_rolling_restart_under_load_loses_nothing(cluster, tmp_path):
    nodes = cluster.nodes
    nodes[0].client().create_bucket(Bucket=BUCKET)
    down: set[int] = set()
    lock = threading.Lock()
    acked: dict[str, bytes] = {}
    failures: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        clients = {}
        rng = random.Random(worker)
        seq = 0
        while not stop.is_set():
            with lock:
                up = [i for i in range(len(nodes)) if i not in down]
            idx = rng.choice(up)
            if idx not in clients:
                clients[idx] = nodes[idx].client()
            key = f"load/{worker}/{seq}"
            data = os.urandom(rng.choice([100, 20_000, 300_000]))
            seq += 1
            try:
                clients[idx].put_object(Bucket=BUCKET, Key=key, Body=data)
            except (ClientError, EndpointConnectionError, ReadTimeoutError) as e:
                with lock:
                    # A node that went down while the request was in flight is not a failure
                    # of a request that had quorum; anything else is.
                    if idx not in down:
                        failures.append(f"PUT {key} via node {idx + 1}: {e}")
                clients.pop(idx, None)
                continue
            with lock:
                acked[key] = data
            time.sleep(0.02)  # steady, not saturating: the heal between restarts keeps up

    workers = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(3)]
    for w in workers:
        w.start()
    try:
        time.sleep(2)
        for i, node in enumerate(nodes):
            with lock:
                down.add(i)
            time.sleep(0.5)  # let requests already routed to this node finish
            assert node.stop() == 0, node.log_tail()
            time.sleep(1)
            node.start(ready_path="/health/ready")
            cluster.wait_cluster_healthy()
            # Catch up before the next node goes (what an operator's runbook does).
            heal_all(node, tmp_path)
            with lock:
                down.discard(i)
            time.sleep(1)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    assert not failures, "\n".join(failures[:10])
    assert len(acked) > 50, f"only {len(acked)} writes acknowledged"
    for node in nodes:
        client = node.client()
        for key, data in random.Random(7).sample(sorted(acked.items()), min(40, len(acked))):
            assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data, key
    listed = set()
    pager = nodes[2].client().get_paginator("list_objects_v2")
    for page in pager.paginate(Bucket=BUCKET, Prefix="load/"):
        listed.update(o["Key"] for o in page.get("Contents", []))
    assert set(acked) <= listed


# ---------------------------------------------------------------- partition (network namespaces)

def test_partitioned_node_refuses_writes_it_cannot_make_durable(tmp_path):
    with Netns(4) as net:
        cluster = StrataCluster(tmp_path / "cluster", hosts=net.hosts,
                                prefixes=[["ip", "netns", "exec", ns] for ns in net.names])
        try:
            cluster.start()
            nodes = cluster.nodes
            nodes[0].client().create_bucket(Bucket=BUCKET)
            kept = put_objects(nodes[3].client(), "kept", 3)
            net.cut_off(3)
            isolated = nodes[3].client()
            started = time.monotonic()
            with pytest.raises(ClientError) as e:
                isolated.put_object(Bucket=BUCKET, Key="from-the-island", Body=b"x" * 5000)
            assert error_of(e.value)[1] == 503, e.value.response
            assert time.monotonic() - started < FAIL_FAST_SECS + 15
            # The majority side keeps serving reads and writes.
            majority = nodes[0].client()
            majority.put_object(Bucket=BUCKET, Key="from-the-majority", Body=b"ok")
            assert_readable(majority, kept)
            net.heal(3)
            cluster.wait_cluster_healthy()
            # Nothing of the refused write became visible, anywhere.
            for node in nodes:
                with pytest.raises(ClientError) as e:
                    node.client().head_object(Bucket=BUCKET, Key="from-the-island")
                assert error_of(e.value)[1] == 404
            deadline = time.monotonic() + 60
            while True:
                try:
                    isolated.put_object(Bucket=BUCKET, Key="after-heal", Body=b"back")
                    break
                except ClientError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            assert nodes[1].client().get_object(Bucket=BUCKET, Key="after-heal")["Body"].read() == b"back"
        finally:
            cluster.stop()


# ---------------------------------------------------------------- growth (a second pool)

def pool_config(path: Path, ports: list[int], root: Path, n_pools: int) -> None:
    pools = []
    for p in range(n_pools):
        pools.append(", ".join(f'"http://127.0.0.1:{port}{root}/n{i + 1}/pool{p}-d{{1...2}}"'
                               for i, port in enumerate(ports)))
    path.write_text("pools = [\n" + "".join(f"  [{p}],\n" for p in pools) + "]\n")


def pool_nodes(tmp_path: Path, config: Path, ports: list[int]) -> list[StrataServer]:
    """One node per port, all configured by `config` (see `pool_config`); not started."""
    nodes = [StrataServer(tmp_path / f"node{i + 1}", drives=[], drive_args=[], config=config)
             for i in range(len(ports))]
    for node, port in zip(nodes, ports):
        node.port = port
    return nodes


def start_pool_nodes(nodes: list[StrataServer], tmp_path: Path) -> None:
    """Starts every node together (they settle the deployment among themselves)."""
    for node in nodes:
        node.start(ready_path=None)
    for node in nodes:
        node.wait_ready()
    wait_all_drives_online(nodes, tmp_path)


def shard_files_under(root: Path) -> int:
    """Shard files a drive serves (its trash, emptied in the background, not counted)."""
    return sum(1 for f in (root / "data").rglob("part.*") if f.is_file())


def test_added_pool_takes_new_writes_and_old_objects_stay(tmp_path):
    root = tmp_path / "grow"
    config = tmp_path / "grow.toml"
    ports = free_ports(2)
    pool_config(config, ports, root, n_pools=1)
    nodes = pool_nodes(tmp_path, config, ports)
    try:
        start_pool_nodes(nodes, tmp_path)
        c = nodes[0].client()
        c.create_bucket(Bucket=BUCKET)
        old = {f"old/{i}": os.urandom(600_000 + i) for i in range(6)}
        for key, data in old.items():
            c.put_object(Bucket=BUCKET, Key=key, Body=data)
        # Grow: every node restarts with the second pool in its config.
        for node in nodes:
            assert node.stop() == 0
        pool_config(config, ports, root, n_pools=2)
        start_pool_nodes(nodes, tmp_path)
        added = [root / f"n{i + 1}" / f"pool1-d{d}" for i in range(2) for d in (1, 2)]
        assert all(shard_files_under(d) == 0 for d in added)
        c = nodes[1].client()
        new = {f"new/{i}": os.urandom(600_000 + i) for i in range(24)}
        for key, data in new.items():
            c.put_object(Bucket=BUCKET, Key=key, Body=data)
        # Both pools have the same free space here, so about half the new objects land in the
        # added pool (the chance that none does is 2^-24).
        assert sum(shard_files_under(d) for d in added) > 0
        # Overwriting an old object keeps it in its pool: still one object under its name.
        c.put_object(Bucket=BUCKET, Key="old/0", Body=b"replaced")
        old["old/0"] = b"replaced"
        for node in nodes:
            client = node.client()
            assert_readable(client, old | new)
            listed = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]]
            assert sorted(listed) == sorted(old | new)
        assert status_of(f"{nodes[0].endpoint}/health/cluster") == 200
    finally:
        for node in nodes:
            node.stop()
            node.kill()


def test_decommissioned_pool_empties_while_everything_stays_readable(tmp_path):
    root = tmp_path / "decom"
    config = tmp_path / "decom.toml"
    ports = free_ports(2)
    pool_config(config, ports, root, n_pools=2)
    nodes = pool_nodes(tmp_path, config, ports)
    try:
        start_pool_nodes(nodes, tmp_path)
        c = nodes[0].client()
        c.create_bucket(Bucket=BUCKET)
        c.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        latest: dict[str, bytes] = {}
        for i in range(16):
            key = f"obj-{i}"
            for generation in range(2):
                data = os.urandom([40, 300_000, 1_200_000][i % 3] + generation)
                c.put_object(Bucket=BUCKET, Key=key, Body=data)
                latest[key] = data
        c.delete_object(Bucket=BUCKET, Key="obj-0")  # a delete marker on top
        del latest["obj-0"]
        mp = c.create_multipart_upload(Bucket=BUCKET, Key="multi")
        parts, blob = [], b""
        for n in (1, 2):
            data = os.urandom(5 * MIB + n)
            blob += data
            r = c.upload_part(Bucket=BUCKET, Key="multi", UploadId=mp["UploadId"], PartNumber=n, Body=data)
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        c.complete_multipart_upload(Bucket=BUCKET, Key="multi", UploadId=mp["UploadId"],
                                    MultipartUpload={"Parts": parts})
        latest["multi"] = blob

        def versions_of(client):
            out = []
            for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
                out += [(v["Key"], v["VersionId"], v["ETag"], v["Size"]) for v in page.get("Versions", [])]
                out += [(m["Key"], m["VersionId"], "marker", 0) for m in page.get("DeleteMarkers", [])]
            return sorted(out)

        before = versions_of(c)
        leaving = [root / f"n{i + 1}" / f"pool1-d{d}" for i in range(2) for d in (1, 2)]
        assert sum(shard_files_under(d) for d in leaving) > 0, "nothing landed in pool 1"

        cli = StrataCli(tmp_path / "strata-config")
        cli("alias", "set", "c", nodes[1].endpoint, nodes[1].access_key, nodes[1].secret_key)
        stop = threading.Event()
        read_errors: list[str] = []

        def reader():
            client = nodes[0].client()
            while not stop.is_set():
                for key, data in latest.items():
                    try:
                        got = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                        if got != data:
                            read_errors.append(f"{key}: wrong bytes")
                    # Any failure counts, a body cut short (botocore's ResponseStreamingError)
                    # as much as an error status.
                    except Exception as e:  # noqa: BLE001
                        read_errors.append(f"{key}: {e!r}")

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            started = cli.json("admin", "pool", "decommission", "c", "1")
            assert started["state"] == "running"
            refused = cli("admin", "pool", "decommission", "c", "1", check=False)
            assert refused.returncode != 0 and "DecommissionRefused" in refused.stderr
            deadline = time.monotonic() + 180
            while True:
                pools = cli.json("admin", "pool", "list", "c")
                state = pools[1]["decommission"]["state"]
                if state != "running":
                    break
                assert time.monotonic() < deadline, pools
                time.sleep(0.5)
            assert state == "done", pools
            assert pools[1]["decommission"]["objects_failed"] == 0
            # New objects avoid the decommissioned pool.
            for i in range(8):
                c.put_object(Bucket=BUCKET, Key=f"after-{i}", Body=os.urandom(300_000))
        finally:
            stop.set()
            t.join(timeout=60)
        assert not read_errors, read_errors[:5]
        assert sum(shard_files_under(d) for d in leaving) == 0
        for client in (c, nodes[1].client()):
            assert [v for v in versions_of(client) if not v[0].startswith("after-")] == before

        # The emptied pool leaves the topology: everything is still there without it.
        for node in nodes:
            assert node.stop() == 0
        pool_config(config, ports, root, n_pools=1)
        start_pool_nodes(nodes, tmp_path)
        for node in nodes:
            client = node.client()
            assert_readable(client, latest)
            assert len([v for v in versions_of(client) if not v[0].startswith("after-")]) == len(before)
    finally:
        for node in nodes:
            node.stop()
            node.kill()
