"""Remote tiers against real servers started here: a second `strata` is the S3 tier. Tiers are
managed with `strata admin tier`; lifecycle rules (two-second days) transition versions to
them; GETs and range GETs stay transparent (SSE-C objects included, whose bytes stay sealed
in the tier); deletes remove the remote object; with the tier stopped, reads of transitioned
objects answer 503 with a clear message while deletes are journaled and completed when the
tier returns, and nothing else is affected."""

from __future__ import annotations

import base64
import hashlib
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import (StrataCli, StrataServer, empty_and_delete_bucket, error_of, pattern_body as body,
                      unique_bucket_name, wait_until)

DAY_SECONDS = 2
MIB = 1024 * 1024
TIER = "COLDS3"
REMOTE_BUCKET = "cold-tier"
PREFIX = "strata-tier"


@pytest.fixture(scope="module")
def remote(tmp_module):
    srv = StrataServer(tmp_module / "remote")
    try:
        srv.start()
        srv.client().create_bucket(Bucket=REMOTE_BUCKET)
        yield srv
    finally:
        srv.stop()
        srv.kill()


@pytest.fixture(scope="module")
def server(tmp_module, remote):
    srv = StrataServer(tmp_module / "server", env={
        "STRATA_LIFECYCLE_DAY_SECONDS": str(DAY_SECONDS),
        "STRATA_LIFECYCLE_INTERVAL_SECONDS": "1",
        "STRATA_SSE_C_ALLOW_HTTP": "true",
        "STRATA_METRICS_AUTH": "public",
    })
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.kill()


@pytest.fixture(scope="module")
def cli(server, tmp_module, remote) -> StrataCli:
    cli = StrataCli(tmp_module / "cli")
    cli("alias", "set", "local", server.endpoint, server.access_key, server.secret_key)
    cli("admin", "tier", "add", "local", TIER, "--type", "s3", "--endpoint", remote.endpoint,
        "--bucket", REMOTE_BUCKET, "--prefix", PREFIX, "--access-key", remote.access_key,
        "--secret-key", remote.secret_key)
    return cli






def remote_objects(remote: StrataServer) -> dict[str, int]:
    out = {}
    for page in remote.client().get_paginator("list_objects_v2").paginate(Bucket=REMOTE_BUCKET):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def transition_rule(prefix: str = "") -> dict:
    return {"Rules": [{"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": prefix},
                       "Transitions": [{"Days": 1, "StorageClass": TIER}]}]}


@pytest.fixture
def versioned(s3):
    name = unique_bucket_name("tv")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    for v in s3.list_object_versions(Bucket=name).get("Versions", []):
        try:
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        except ClientError:
            pass
    empty_and_delete_bucket(s3, name)


def test_tier_admin(cli, server, remote):
    listed = cli.json("admin", "tier", "ls", "local")
    assert [t["name"] for t in listed] == [TIER]
    assert listed[0]["type"] == "s3" and listed[0]["bucket"] == REMOTE_BUCKET
    assert remote.secret_key not in cli("admin", "tier", "ls", "local", "--json").stdout
    cli("admin", "tier", "verify", "local", TIER)
    # A wrong secret is caught by the probe; a second tier of one name is refused.
    bad = cli("admin", "tier", "add", "local", "BROKEN", "--type", "s3", "--endpoint", remote.endpoint,
              "--bucket", REMOTE_BUCKET, "--access-key", remote.access_key, "--secret-key", "wrong-secret-key",
              check=False)
    # (The answer quotes the tier's own refusal.)
    assert bad.returncode != 0 and "SignatureDoesNotMatch" in bad.stderr + bad.stdout
    assert "wrong-secret-key" not in bad.stderr + bad.stdout
    dup = cli("admin", "tier", "add", "local", TIER, "--type", "s3", "--endpoint", remote.endpoint,
              "--bucket", REMOTE_BUCKET, "--access-key", remote.access_key, "--secret-key", remote.secret_key,
              check=False)
    assert dup.returncode != 0 and "TierExists" in dup.stderr + dup.stdout
    lower = cli("admin", "tier", "add", "local", "cold", "--type", "s3", "--endpoint", remote.endpoint,
                "--bucket", REMOTE_BUCKET, "--access-key", "a", "--secret-key", "b", check=False)
    assert lower.returncode != 0
    # The tier name is a storage class for lifecycle rules, never for a PUT.
    s3 = server.client()
    name = unique_bucket_name("ta")
    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=transition_rule())
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=name, Key="k", Body=b"x", StorageClass=TIER)
        assert error_of(e.value) == ("InvalidStorageClass", 400)
    finally:
        empty_and_delete_bucket(s3, name)
    # The server's log never shows the tier's secret.
    assert remote.secret_key not in (server.workdir / "strata.log").read_text()


def test_transition_reads_and_deletes(cli, server, remote, s3, versioned):
    objects = {"small": body(200 * 1024, 1), "mid": body(3 * MIB, 2), "big": body(20 * MIB + 7, 3)}
    before = set(remote_objects(remote))
    for key, data in objects.items():
        s3.put_object(Bucket=versioned, Key=key, Body=data)
    customer_key = bytes(range(32))
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(customer_key).decode(),
             "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(customer_key).digest()).decode()}
    secret = body(2 * MIB, 4)
    s3.put_object(Bucket=versioned, Key="sealed", Body=secret, **sse_c)
    s3.put_bucket_lifecycle_configuration(Bucket=versioned, LifecycleConfiguration=transition_rule())

    def moved():
        return all(s3.head_object(Bucket=versioned, Key=k).get("StorageClass") == TIER for k in objects) and \
            s3.head_object(Bucket=versioned, Key="sealed", **sse_c).get("StorageClass") == TIER

    wait_until(moved, 8 * DAY_SECONDS + 20, "every object moved to the remote tier")
    added = {k: v for k, v in remote_objects(remote).items() if k not in before}
    assert len(added) == 4 and all(k.startswith(PREFIX + "/") for k in added)
    assert not any(name in k for k in added for name in objects), "remote names are opaque"
    for key, data in objects.items():
        assert s3.get_object(Bucket=versioned, Key=key)["Body"].read() == data
        got = s3.get_object(Bucket=versioned, Key=key, Range="bytes=12345-1234567")["Body"].read()
        assert got == data[12345:1234568]
    assert s3.get_object(Bucket=versioned, Key="sealed", **sse_c)["Body"].read() == secret
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=versioned, Key="sealed")
    assert error_of(e.value)[1] == 400
    # The tier holds sealed bytes: nothing of the plaintext, and no key.
    rs3 = remote.client()
    for name in added:
        data = rs3.get_object(Bucket=REMOTE_BUCKET, Key=name)["Body"].read()
        assert secret[:4096] not in data
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=versioned)["Contents"]}
    assert set(listed.values()) == {TIER}
    stats = cli.json("admin", "tier", "stats", "local")
    assert stats["tiers"][TIER]["objects"] >= 4

    # A tier in use is not removed without force.
    rm = cli("admin", "tier", "rm", "local", TIER, check=False)
    assert rm.returncode != 0 and "TierInUse" in rm.stderr + rm.stdout

    # Deleting a transitioned version removes its remote object.
    version = s3.list_object_versions(Bucket=versioned, Prefix="mid")["Versions"][0]["VersionId"]
    count = len(remote_objects(remote))
    s3.delete_object(Bucket=versioned, Key="mid", VersionId=version)
    wait_until(lambda: len(remote_objects(remote)) == count - 1, 15,
               f"the remote object of the deleted version goes ({cli.json('admin', 'tier', 'stats', 'local')})")


def test_tier_down_reads_fail_clearly_and_deletes_wait(cli, server, remote, s3, versioned):
    data = body(MIB, 9)
    s3.put_object(Bucket=versioned, Key="far/x", Body=data)
    s3.put_object(Bucket=versioned, Key="far/y", Body=data)
    s3.put_object(Bucket=versioned, Key="near", Body=b"local data")
    s3.put_bucket_lifecycle_configuration(Bucket=versioned, LifecycleConfiguration=transition_rule("far/"))
    wait_until(lambda: all(s3.head_object(Bucket=versioned, Key=k).get("StorageClass") == TIER
                           for k in ("far/x", "far/y")), 8 * DAY_SECONDS + 20, "far/ moved")
    remote_before = len(remote_objects(remote))
    port = remote.port
    remote.stop()
    try:
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=versioned, Key="far/x")["Body"].read()
        assert error_of(e.value) == ("ServiceUnavailable", 503)
        assert TIER in e.value.response["Error"]["Message"]
        # Everything else works; a delete is acknowledged and journaled.
        assert s3.get_object(Bucket=versioned, Key="near")["Body"].read() == b"local data"
        s3.put_object(Bucket=versioned, Key="new", Body=b"new")
        version = s3.list_object_versions(Bucket=versioned, Prefix="far/y")["Versions"][0]["VersionId"]
        s3.delete_object(Bucket=versioned, Key="far/y", VersionId=version)
        with urllib.request.urlopen(server.endpoint + "/metrics/node", timeout=10) as resp:
            metrics = resp.read().decode()
        backlog = [l for l in metrics.splitlines() if l.startswith("strata_tier_journal_backlog ")]
        assert backlog and float(backlog[0].split()[-1]) >= 1, metrics[-3000:]
    finally:
        remote.start(port=port)
    wait_until(lambda: len(remote_objects(remote)) == remote_before - 1, 40,
               "the journaled delete completes once the tier is back")
    assert s3.get_object(Bucket=versioned, Key="far/x")["Body"].read() == data
    assert cli.json("admin", "tier", "stats", "local")["journal_backlog"] == 0


def test_archival_tier_needs_a_restore(cli, server, remote, s3, versioned):
    cli("admin", "tier", "add", "local", "ARCHIVE", "--type", "s3", "--endpoint", remote.endpoint,
        "--bucket", REMOTE_BUCKET, "--prefix", "archive", "--access-key", remote.access_key,
        "--secret-key", remote.secret_key, "--archival")
    data = body(3 * MIB + 17, 31)
    s3.put_object(Bucket=versioned, Key="deep/x", Body=data)
    s3.put_object(Bucket=versioned, Key="plain", Body=b"not archived")
    with pytest.raises(ClientError) as e:
        s3.restore_object(Bucket=versioned, Key="plain", RestoreRequest={"Days": 1})
    assert error_of(e.value) == ("InvalidObjectState", 403)
    s3.put_bucket_lifecycle_configuration(Bucket=versioned, LifecycleConfiguration={"Rules": [
        {"ID": "deep", "Status": "Enabled", "Filter": {"Prefix": "deep/"},
         "Transitions": [{"Days": 1, "StorageClass": "ARCHIVE"}]}]})
    wait_until(lambda: s3.head_object(Bucket=versioned, Key="deep/x").get("StorageClass") == "ARCHIVE",
               8 * DAY_SECONDS + 20, "deep/x archived")
    head = s3.head_object(Bucket=versioned, Key="deep/x")
    assert "Restore" not in head
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=versioned, Key="deep/x")
    assert error_of(e.value) == ("InvalidObjectState", 403)

    started = s3.restore_object(Bucket=versioned, Key="deep/x", RestoreRequest={"Days": 2})
    assert started["ResponseMetadata"]["HTTPStatusCode"] == 202

    def restored() -> bool:
        restore = s3.head_object(Bucket=versioned, Key="deep/x").get("Restore", "")
        return restore.startswith('ongoing-request="false", expiry-date="')

    wait_until(restored, 20, "the restore finishes")
    assert s3.get_object(Bucket=versioned, Key="deep/x")["Body"].read() == data
    assert s3.get_object(Bucket=versioned, Key="deep/x", Range="bytes=5-99")["Body"].read() == data[5:100]
    # Asked again while the copy is readable: only the expiry moves (200).
    again = s3.restore_object(Bucket=versioned, Key="deep/x", RestoreRequest={"Days": 3})
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.head_object(Bucket=versioned, Key="deep/x")["StorageClass"] == "ARCHIVE"


# ---------------------------------------------------------------- Azure and GCS emulators

@pytest.fixture(scope="module")
def azurite(tmp_module):
    from conftest import free_port
    from emulators import Azurite
    emu = Azurite(tmp_module / "azurite", free_port()).start()
    try:
        emu.create_container("cold")
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def gcs(tmp_module):
    from conftest import free_port
    from emulators import GcsEmulator
    emu = GcsEmulator(tmp_module / "gcs", free_port(), "cold").start()
    try:
        yield emu
    finally:
        emu.stop()


def cloud_transition(s3, bucket: str, tier: str, listing, size: int) -> tuple[bytes, set[str]]:
    """Transition c/obj by rule to `tier` and read it back whole and in ranges: the remote
    side holds one more object, under an opaque name."""
    data = body(size, 77)
    before = set(listing())
    s3.put_object(Bucket=bucket, Key="c/obj", Body=data)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "cloud", "Status": "Enabled", "Filter": {"Prefix": "c/"},
         "Transitions": [{"Days": 1, "StorageClass": tier}]}]})
    wait_until(lambda: s3.head_object(Bucket=bucket, Key="c/obj").get("StorageClass") == tier,
               8 * DAY_SECONDS + 20, f"c/obj moved to {tier}")
    added = set(listing()) - before
    assert len(added) == 1 and "obj" not in next(iter(added))
    assert s3.get_object(Bucket=bucket, Key="c/obj")["Body"].read() == data
    got = s3.get_object(Bucket=bucket, Key="c/obj", Range="bytes=4194300-4194400")["Body"].read()
    assert got == data[4194300:4194401]
    return data, added


def delete_current(s3, bucket: str, key: str) -> None:
    version = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][0]["VersionId"]
    s3.delete_object(Bucket=bucket, Key=key, VersionId=version)


def test_azure_tier(cli, s3, versioned, azurite):
    from emulators import AZURE_ACCOUNT, AZURE_KEY
    cli("admin", "tier", "add", "local", "AZURE-COLD", "--type", "azure", "--endpoint", azurite.endpoint,
        "--account", AZURE_ACCOUNT, "--secret-key", AZURE_KEY, "--bucket", "cold", "--prefix", "t")
    assert [t["type"] for t in cli.json("admin", "tier", "ls", "local") if t["name"] == "AZURE-COLD"] == ["azure"]
    # Above the single-request limit: a multipart (block list) upload.
    _, added = cloud_transition(s3, versioned, "AZURE-COLD", lambda: azurite.blobs("cold"), 9 * MIB + 5)
    delete_current(s3, versioned, "c/obj")
    wait_until(lambda: not (set(azurite.blobs("cold")) & added), 15, "the remote blob goes with its version")


def test_gcs_tier(cli, server, s3, versioned, gcs, tmp_path):
    """The GCS emulators that can run here do not serve the XML API `object_store` speaks to
    GCS (gcp-storage-emulator's PUT answers without an ETag and it has no XML DELETE or
    multipart; fake-gcs-server has no XML PUT). What is checked: the probe refuses the tier
    with a clear message, a tier added anyway fails transitions safely (the data stays where
    it is, readable, and the failure is counted), and it can be removed."""
    from emulators import GcsEmulator
    creds = tmp_path / "sa.json"
    creds.write_text(GcsEmulator.CREDENTIALS)
    args = ["admin", "tier", "add", "local", "GCS-COLD", "--type", "gcs", "--endpoint", gcs.endpoint,
            "--bucket", "cold", "--credentials-file", str(creds)]
    refused = cli(*args, check=False)
    assert refused.returncode != 0 and "GCS-COLD" in refused.stderr
    assert "private_key" not in refused.stderr
    cli(*args, "--skip-verify")
    data = body(MIB, 55)
    s3.put_object(Bucket=versioned, Key="g/obj", Body=data)
    s3.put_bucket_lifecycle_configuration(Bucket=versioned, LifecycleConfiguration={"Rules": [
        {"ID": "gcs", "Status": "Enabled", "Filter": {"Prefix": "g/"},
         "Transitions": [{"Days": 1, "StorageClass": "GCS-COLD"}]}]})

    def lifecycle_failures() -> float:
        with urllib.request.urlopen(server.endpoint + "/metrics/node", timeout=10) as resp:
            lines = [l for l in resp.read().decode().splitlines()
                     if l.startswith("strata_lifecycle_failures_total ")]
        return float(lines[0].split()[-1]) if lines else 0.0

    failed_before = lifecycle_failures()
    wait_until(lambda: lifecycle_failures() > failed_before, 8 * DAY_SECONDS + 20,
               "the transition to the GCS emulator is attempted and fails")
    assert "StorageClass" not in s3.head_object(Bucket=versioned, Key="g/obj")
    assert s3.get_object(Bucket=versioned, Key="g/obj")["Body"].read() == data
    s3.delete_bucket_lifecycle(Bucket=versioned)
    cli("admin", "tier", "rm", "local", "GCS-COLD")
    assert "GCS-COLD" not in [t["name"] for t in cli.json("admin", "tier", "ls", "local")]


def test_minio_admin_tier_api(server, remote):
    """MinIO's admin API tier endpoints, as madmin speaks them (bodies sealed with the caller's
    secret key), through MinioAdmin's own signed transport (the Python client has no tier
    methods of its own)."""
    import json as _json
    from types import SimpleNamespace

    from minio import MinioAdmin
    from minio.credentials import StaticProvider
    from minio.crypto import encrypt

    admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(server.access_key, server.secret_key),
                       secure=False)

    def call(method: str, path: str, body: dict | None = None, query: dict | None = None):
        sealed = encrypt(_json.dumps(body).encode(), server.secret_key) if body is not None else None
        return admin._url_open(method=method, command=SimpleNamespace(value=path),
                               query_params=query, body=sealed)

    config = {"Version": "v1", "Type": "minio", "Name": "MINIO-COLD",
              "MinIO": {"Endpoint": remote.endpoint, "AccessKey": remote.access_key,
                        "SecretKey": remote.secret_key, "Bucket": REMOTE_BUCKET, "Prefix": "madmin"}}
    assert call("PUT", "tier", config, {"force": "false"}).status == 204
    listed = _json.loads(call("GET", "tier").data)
    mine = [t for t in listed if t["Name"] == "MINIO-COLD"]
    assert mine and mine[0]["S3"]["SecretKey"] == "REDACTED"
    assert remote.secret_key not in _json.dumps(listed)
    assert call("GET", "tier/MINIO-COLD").status == 204
    stats = _json.loads(call("GET", "tier-stats").data)
    assert any(s["Name"] == "MINIO-COLD" and s["Stats"]["NumObjects"] == 0 for s in stats)
    edited = call("POST", "tier/MINIO-COLD", {"access": remote.access_key, "secret": remote.secret_key})
    assert edited.status == 204
    assert call("DELETE", "tier/MINIO-COLD", query={"force": "false"}).status == 204
    assert not [t for t in _json.loads(call("GET", "tier").data) if t["Name"] == "MINIO-COLD"]
