"""Bucket lifecycle with real clients (boto3, the aws CLI) against a server whose lifecycle
"day" is two seconds (STRATA_LIFECYCLE_DAY_SECONDS, a test-only setting) and whose cycles start
every second: the configuration API and AWS's validation errors, the x-amz-expiration header,
and rules acting on current versions, noncurrent versions (NewerNoncurrentVersions), expired
delete markers and incomplete uploads, with object-lock-protected versions kept."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

import conftest
from conftest import StrataServer, empty_and_delete_bucket, error_of, unique_bucket_name

DAY_SECONDS = 2
# A rule due "1 day" after a write acts within two days, plus a cycle and its pacing.
ACT_WITHIN_SECONDS = 4 * DAY_SECONDS + 6


@pytest.fixture(scope="module")
def server(tmp_module):
    srv = StrataServer(tmp_module / "server", env={
        "STRATA_LIFECYCLE_DAY_SECONDS": str(DAY_SECONDS),
        "STRATA_LIFECYCLE_INTERVAL_SECONDS": "1",
        "STRATA_METRICS_AUTH": "public",
    })
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.kill()


@pytest.fixture
def versioned(s3):
    name = unique_bucket_name("lcv")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name
    for v in s3.list_object_versions(Bucket=name).get("Versions", []) + \
            s3.list_object_versions(Bucket=name).get("DeleteMarkers", []):
        try:
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        except ClientError:
            pass
    empty_and_delete_bucket(s3, name)


def expect_error(call, code: str, status: int) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response


def wait_until(check, timeout: float = ACT_WITHIN_SECONDS, what: str = "") -> None:
    conftest.wait_until(check, timeout, what)


def exists(s3, bucket: str, key: str, version_id: str | None = None) -> bool:
    try:
        kw = {"VersionId": version_id} if version_id else {}
        s3.head_object(Bucket=bucket, Key=key, **kw)
        return True
    except ClientError as e:
        if error_of(e)[1] in (404, 405):
            return False
        raise


def version_ids(s3, bucket: str, key: str) -> list[tuple[str, bool]]:
    out = s3.list_object_versions(Bucket=bucket, Prefix=key)
    entries = [(v["VersionId"], False, v["LastModified"]) for v in out.get("Versions", []) if v["Key"] == key]
    entries += [(m["VersionId"], True, m["LastModified"]) for m in out.get("DeleteMarkers", []) if m["Key"] == key]
    entries.sort(key=lambda e: e[2], reverse=True)
    return [(vid, marker) for vid, marker, _ in entries]


# ---------------------------------------------------------------- the API

RULES = [
    {"ID": "logs", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "logs/", "Tags": [{"Key": "team", "Value": "a"}],
                        "ObjectSizeGreaterThan": 10}},
     "Expiration": {"Days": 30}},
    {"ID": "legacy", "Status": "Disabled", "Prefix": "old/",
     "Expiration": {"Date": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)}},
    {"ID": "versions", "Status": "Enabled", "Filter": {},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 3},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
    {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "m/"},
     "Expiration": {"ExpiredObjectDeleteMarker": True}},
]


def test_configuration_round_trip(s3, bucket):
    expect_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration", 404)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES})
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    rules = {r["ID"]: r for r in got["Rules"]}
    assert rules["logs"]["Filter"] == RULES[0]["Filter"]
    assert rules["logs"]["Expiration"] == {"Days": 30}
    assert rules["legacy"]["Prefix"] == "old/" and rules["legacy"]["Status"] == "Disabled"
    assert rules["legacy"]["Expiration"]["Date"] == RULES[1]["Expiration"]["Date"]
    assert rules["versions"]["NoncurrentVersionExpiration"] == RULES[2]["NoncurrentVersionExpiration"]
    assert rules["versions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert rules["markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    # A rule without an ID gets one.
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"Status": "Enabled", "Filter": {"Prefix": "x/"}, "Expiration": {"Days": 1}}]})
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert len(rule["ID"]) > 0
    s3.delete_bucket_lifecycle(Bucket=bucket)
    expect_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration", 404)
    expect_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=unique_bucket_name("none")),
                 "NoSuchBucket", 404)


@pytest.mark.parametrize("rule,code", [
    ({"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}}, "InvalidArgument"),
    ({"ID": "a", "Status": "Enabled", "Filter": {},
      "Expiration": {"Date": dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone.utc)}}, "InvalidArgument"),
    ({"ID": "a", "Status": "Enabled", "Filter": {},
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "InvalidStorageClass"),
    ({"ID": "a", "Status": "Enabled", "Filter": {}}, "InvalidRequest"),
    ({"ID": "a", "Status": "Enabled", "Expiration": {"Days": 1}}, "MalformedXML"),
    ({"ID": "a", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1, "ExpiredObjectDeleteMarker": True}},
     "MalformedXML"),
    ({"ID": "a", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
      "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, "InvalidRequest"),
    ({"ID": "a", "Status": "Enabled", "Filter": {},
      "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 101}}, "InvalidArgument"),
    ({"ID": "x" * 256, "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}, "InvalidArgument"),
])
def test_invalid_configurations_are_refused(s3, bucket, rule, code):
    expect_error(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}), code, 400)
    expect_error(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
                 "NoSuchLifecycleConfiguration", 404)


def test_duplicate_ids_are_refused(s3, bucket):
    rule = {"ID": "same", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}
    expect_error(lambda: s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [rule, dict(rule)]}), "InvalidArgument", 400)


def test_aws_cli_sets_and_reads_rules(aws, s3, bucket, tmp_path):
    doc = tmp_path / "lifecycle.json"
    doc.write_text(json.dumps({"Rules": [
        {"ID": "cli", "Status": "Enabled", "Filter": {"Prefix": "cli/"}, "Expiration": {"Days": 10}}]}))
    aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
        "--lifecycle-configuration", f"file://{doc}")
    out = json.loads(aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket).stdout)
    assert out["Rules"] == [{"ID": "cli", "Status": "Enabled", "Filter": {"Prefix": "cli/"},
                             "Expiration": {"Days": 10}}]
    aws("s3api", "delete-bucket-lifecycle", "--bucket", bucket)
    failed = aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket, check=False)
    assert failed.returncode != 0 and "NoSuchLifecycleConfiguration" in failed.stderr


def test_expiration_header(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "far", "Status": "Enabled", "Filter": {"Prefix": "a/"}, "Expiration": {"Days": 1000}},
        {"ID": "dated", "Status": "Enabled", "Filter": {"Tag": {"Key": "t", "Value": "1"}},
         "Expiration": {"Date": dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)}},
    ]})
    put = s3.put_object(Bucket=bucket, Key="a/x", Body=b"x")
    assert 'rule-id="far"' in put["Expiration"] and put["Expiration"].startswith('expiry-date="')
    head = s3.head_object(Bucket=bucket, Key="a/x")
    assert head["Expiration"] == put["Expiration"]
    assert s3.get_object(Bucket=bucket, Key="a/x")["Expiration"] == put["Expiration"]
    tagged = s3.put_object(Bucket=bucket, Key="b/x", Body=b"x", Tagging="t=1")
    assert tagged["Expiration"] == 'expiry-date="Thu, 01 Jan 2099 00:00:00 GMT", rule-id="dated"'
    assert "Expiration" not in s3.put_object(Bucket=bucket, Key="b/y", Body=b"x")


# ---------------------------------------------------------------- rules acting

def test_current_versions_expire(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "big", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 100}, "Expiration": {"Days": 1}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}},
    ]})
    for key, body in [("tmp/a", b"a"), ("tmp/b", b"b"), ("keep/a", b"a"), ("other/big", b"x" * 200),
                      ("other/small", b"x")]:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    # Less than a day old: still there.
    assert exists(s3, bucket, "tmp/a")
    wait_until(lambda: not exists(s3, bucket, "tmp/a") and not exists(s3, bucket, "tmp/b")
               and not exists(s3, bucket, "other/big"), what="tmp/ and big objects expire")
    assert exists(s3, bucket, "keep/a") and exists(s3, bucket, "other/small")


def test_past_date_expires_new_writes_at_once(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "past", "Status": "Enabled", "Filter": {"Prefix": "gone/"},
         "Expiration": {"Date": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}}]})
    put = s3.put_object(Bucket=bucket, Key="gone/a", Body=b"a")
    assert 'expiry-date="Wed, 01 Jan 2020 00:00:00 GMT"' in put["Expiration"]
    wait_until(lambda: not exists(s3, bucket, "gone/a"), timeout=5, what="a write already due goes at once")


def test_versioned_expiration_noncurrent_and_markers(s3, versioned):
    s3.put_bucket_lifecycle_configuration(Bucket=versioned, LifecycleConfiguration={"Rules": [
        {"ID": "current", "Status": "Enabled", "Filter": {"Prefix": "cur/"}, "Expiration": {"Days": 1}},
        {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "nc/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "dm/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]})
    cur = s3.put_object(Bucket=versioned, Key="cur/a", Body=b"a")["VersionId"]
    nc = [s3.put_object(Bucket=versioned, Key="nc/a", Body=str(i).encode())["VersionId"] for i in range(4)]
    dm_version = s3.put_object(Bucket=versioned, Key="dm/a", Body=b"a")["VersionId"]
    s3.delete_object(Bucket=versioned, Key="dm/a")
    s3.delete_object(Bucket=versioned, Key="dm/a", VersionId=dm_version)
    assert [m for _, m in version_ids(s3, versioned, "dm/a")] == [True]

    # Current expiration in a versioned bucket: a delete marker over the kept version.
    wait_until(lambda: version_ids(s3, versioned, "cur/a") and version_ids(s3, versioned, "cur/a")[0][1],
               what="a delete marker over cur/a")
    assert (cur, False) in version_ids(s3, versioned, "cur/a")
    # Noncurrent: the newest noncurrent version stays (NewerNoncurrentVersions=1), older ones go.
    wait_until(lambda: [v for v, _ in version_ids(s3, versioned, "nc/a")] == [nc[3], nc[2]],
               what="nc/a keeps its current and newest noncurrent version")
    # The lone delete marker is removed.
    wait_until(lambda: version_ids(s3, versioned, "dm/a") == [], what="the expired delete marker goes")
    assert s3.get_object(Bucket=versioned, Key="nc/a")["Body"].read() == b"3"


def test_object_lock_keeps_protected_versions(s3):
    name = unique_bucket_name("lcl")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    try:
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
            {"ID": "nc", "Status": "Enabled", "Filter": {},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1}}]})
        held = s3.put_object(Bucket=name, Key="k", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
        free = s3.put_object(Bucket=name, Key="k", Body=b"free")["VersionId"]
        s3.put_object(Bucket=name, Key="k", Body=b"current")
        wait_until(lambda: free not in [v for v, _ in version_ids(s3, name, "k")],
                   what="the unprotected noncurrent version goes")
        time.sleep(2 * DAY_SECONDS)
        assert held in [v for v, _ in version_ids(s3, name, "k")]
        assert s3.get_object(Bucket=name, Key="k", VersionId=held)["Body"].read() == b"held"
        s3.put_object_legal_hold(Bucket=name, Key="k", VersionId=held, LegalHold={"Status": "OFF"})
        wait_until(lambda: held not in [v for v, _ in version_ids(s3, name, "k")],
                   what="the version goes once its hold is lifted")
    finally:
        for v in s3.list_object_versions(Bucket=name).get("Versions", []):
            try:
                s3.put_object_legal_hold(Bucket=name, Key=v["Key"], VersionId=v["VersionId"],
                                         LegalHold={"Status": "OFF"})
                s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
            except ClientError:
                pass
        empty_and_delete_bucket(s3, name)


def test_incomplete_uploads_are_aborted(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "mpu", "Status": "Enabled", "Filter": {"Prefix": "up/"},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]})
    stale = s3.create_multipart_upload(Bucket=bucket, Key="up/a")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="up/a", UploadId=stale, PartNumber=1, Body=b"p" * 1024)
    other = s3.create_multipart_upload(Bucket=bucket, Key="other/a")["UploadId"]

    def uploads():
        return {u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}

    assert stale in uploads()
    wait_until(lambda: stale not in uploads(), what="the stale upload is aborted")
    assert other in uploads()
    expect_error(lambda: s3.list_parts(Bucket=bucket, Key="up/a", UploadId=stale), "NoSuchUpload", 404)


def test_metrics_count_actions(server, s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]})
    s3.put_object(Bucket=bucket, Key="m", Body=b"m")
    wait_until(lambda: not exists(s3, bucket, "m"), what="m expires")
    with urllib.request.urlopen(server.endpoint + "/metrics/node", timeout=10) as resp:
        text = resp.read().decode()
    lines = [l for l in text.splitlines() if l.startswith('strata_lifecycle_actions_total{action="expire_current"}')]
    assert lines and float(lines[0].split()[-1]) >= 1, text[:2000]
    assert "strata_lifecycle_cycles_total" in text


def test_strata_ilm_cli(server, s3, bucket, tmp_path):
    from conftest import StrataCli
    cli = StrataCli(tmp_path / "cli")
    cli("alias", "set", "local", server.endpoint, server.access_key, server.secret_key)
    target = f"local/{bucket}"
    assert "No lifecycle rules" in cli("ilm", "rule", "ls", target).stdout
    cli("ilm", "rule", "add", target, "--id", "logs", "--prefix", "logs/", "--expire-days", "30",
        "--noncurrent-expire-days", "7", "--noncurrent-keep", "2")
    cli("ilm", "rule", "add", target, "--id", "tmp", "--tags", "team=a&kind=tmp", "--expire-date", "2030-01-01",
        "--abort-uploads-days", "3", check=False)  # AWS refuses aborts with tag filters
    cli("ilm", "rule", "add", target, "--id", "tmp", "--tags", "team=a&kind=tmp", "--expire-date", "2030-01-01")
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["logs"]["Filter"] == {"Prefix": "logs/"}
    assert rules["logs"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2}
    assert rules["tmp"]["Expiration"]["Date"].year == 2030
    assert len(rules["tmp"]["Filter"]["And"]["Tags"]) == 2
    listed = cli.json("ilm", "rule", "ls", target)
    assert [r["id"] for r in listed["rules"]] == ["logs", "tmp"]
    assert "logs" in cli("ilm", "rule", "ls", target).stdout
    dup = cli("ilm", "rule", "add", target, "--id", "logs", "--expire-days", "1", check=False)
    assert dup.returncode != 0
    bad = cli("ilm", "rule", "add", target, "--id", "x", "--transition-days", "1", "--transition-tier", "GLACIER",
              check=False)
    assert bad.returncode != 0 and "InvalidStorageClass" in bad.stderr
    cli("ilm", "rule", "rm", target, "--id", "tmp")
    assert [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]] == ["logs"]
    cli("ilm", "rule", "rm", target, "--all")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert error_of(e.value) == ("NoSuchLifecycleConfiguration", 404)
