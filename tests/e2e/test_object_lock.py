"""Object lock as a backup tool uses it (boto3): a lock-enabled bucket, default retention,
retention and legal hold per version, deletes refused while protected, governance bypass only
with the permission for it, compliance retention extended but never shortened, retention that
lapses, and AWS's errors."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider

from conftest import error_of, make_s3_client, unique_bucket_name

SECRET = "lock-user-secret-1"


def expect_error(call, code: str, status: int) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response


def in_seconds(n: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=n)


@pytest.fixture
def locked(s3):
    name = unique_bucket_name("lock")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    # Versions still protected stay behind; lift what can be lifted and remove the rest.
    for v in s3.list_object_versions(Bucket=name).get("Versions", []):
        try:
            s3.put_object_legal_hold(Bucket=name, Key=v["Key"], VersionId=v["VersionId"],
                                     LegalHold={"Status": "OFF"})
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"], BypassGovernanceRetention=True)
        except ClientError:
            pass


def test_lock_enabled_bucket_and_default_retention(s3, locked):
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    cfg = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert cfg == {"ObjectLockEnabled": "Enabled"}
    expect_error(lambda: s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"}),
                 "InvalidBucketState", 409)
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    cfg = s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"]
    assert cfg["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    v = s3.put_object(Bucket=locked, Key="backup.tar", Body=b"backup")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="backup.tar", VersionId=v)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert in_seconds(86_000) < head["ObjectLockRetainUntilDate"] < in_seconds(86_500)
    got = s3.get_object_retention(Bucket=locked, Key="backup.tar", VersionId=v)["Retention"]
    assert got["Mode"] == "GOVERNANCE"
    # Protected: the version cannot go, but a delete marker can be added (nothing is lost).
    expect_error(lambda: s3.delete_object(Bucket=locked, Key="backup.tar", VersionId=v), "AccessDenied", 403)
    marker = s3.delete_object(Bucket=locked, Key="backup.tar")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=locked, Key="backup.tar", VersionId=v)["Body"].read() == b"backup"
    # Root holds s3:BypassGovernanceRetention.
    s3.delete_object(Bucket=locked, Key="backup.tar", VersionId=v, BypassGovernanceRetention=True)
    expect_error(lambda: s3.head_object(Bucket=locked, Key="backup.tar", VersionId=v), "404", 404)
    # Invalid rules.
    for rule in ({"Mode": "GOVERNANCE"}, {"Mode": "GOVERNANCE", "Days": 1, "Years": 1},
                 {"Mode": "GOVERNANCE", "Days": 0}):
        with pytest.raises(ClientError) as e:
            s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}})
        assert error_of(e.value)[1] == 400


def test_compliance_extends_never_shortens_and_lapses(s3, locked):
    until = in_seconds(4)
    v = s3.put_object(Bucket=locked, Key="k", Body=b"c", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=until)["VersionId"]
    for bypass in (False, True):
        expect_error(lambda: s3.delete_object(Bucket=locked, Key="k", VersionId=v, BypassGovernanceRetention=bypass),
                     "AccessDenied", 403)
    expect_error(lambda: s3.put_object_retention(
        Bucket=locked, Key="k", VersionId=v, BypassGovernanceRetention=True,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": in_seconds(2)}), "AccessDenied", 403)
    expect_error(lambda: s3.put_object_retention(
        Bucket=locked, Key="k", VersionId=v, BypassGovernanceRetention=True,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_seconds(3600)}), "AccessDenied", 403)
    later = until + dt.timedelta(seconds=1)
    s3.put_object_retention(Bucket=locked, Key="k", VersionId=v,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})
    got = s3.get_object_retention(Bucket=locked, Key="k", VersionId=v)["Retention"]["RetainUntilDate"]
    assert abs((got - later).total_seconds()) < 1
    time.sleep(max(0.0, (later - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.5)
    s3.delete_object(Bucket=locked, Key="k", VersionId=v)


def test_legal_hold_blocks_until_lifted(s3, locked):
    v = s3.put_object(Bucket=locked, Key="held", Body=b"h", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=locked, Key="held", VersionId=v)["LegalHold"]["Status"] == "ON"
    assert s3.head_object(Bucket=locked, Key="held")["ObjectLockLegalHoldStatus"] == "ON"
    expect_error(lambda: s3.delete_object(Bucket=locked, Key="held", VersionId=v, BypassGovernanceRetention=True),
                 "AccessDenied", 403)
    s3.put_object_legal_hold(Bucket=locked, Key="held", VersionId=v, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=locked, Key="held", VersionId=v)["LegalHold"]["Status"] == "OFF"
    s3.delete_object(Bucket=locked, Key="held", VersionId=v)


def test_delete_objects_respects_locks(s3, locked):
    kept = s3.put_object(Bucket=locked, Key="a", Body=b"a", ObjectLockLegalHoldStatus="ON")["VersionId"]
    free = s3.put_object(Bucket=locked, Key="b", Body=b"b")["VersionId"]
    out = s3.delete_objects(Bucket=locked, Delete={"Objects": [{"Key": "a", "VersionId": kept},
                                                              {"Key": "b", "VersionId": free}]})
    assert [d["Key"] for d in out.get("Deleted", [])] == ["b"]
    assert [(e["Key"], e["Code"]) for e in out.get("Errors", [])] == [("a", "AccessDenied")]


def test_governance_bypass_needs_the_permission(server, s3, locked):
    admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(server.access_key, server.secret_key),
                       secure=False, region=server.region)
    user = unique_bucket_name("locku")
    admin.user_add(user, SECRET)
    base = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:ListBucket",
            "s3:ListBucketVersions", "s3:PutObjectRetention", "s3:GetObjectRetention"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": base, "Resource": [f"arn:aws:s3:::{locked}", f"arn:aws:s3:::{locked}/*"]}]}
    admin.policy_add(f"{user}-p", policy=policy)
    try:
        admin.attach_policy([f"{user}-p"], user=user)
        c = make_s3_client(server.endpoint, user, SECRET)
        v = c.put_object(Bucket=locked, Key="g", Body=b"g", ObjectLockMode="GOVERNANCE",
                         ObjectLockRetainUntilDate=in_seconds(3600))["VersionId"]
        expect_error(lambda: c.delete_object(Bucket=locked, Key="g", VersionId=v, BypassGovernanceRetention=True),
                     "AccessDenied", 403)
        expect_error(lambda: c.put_object_retention(Bucket=locked, Key="g", VersionId=v,
                                                    BypassGovernanceRetention=True, Retention={}),
                     "AccessDenied", 403)
        policy["Statement"][0]["Action"] = base + ["s3:BypassGovernanceRetention"]
        admin.policy_add(f"{user}-p", policy=policy)
        c.delete_object(Bucket=locked, Key="g", VersionId=v, BypassGovernanceRetention=True)
    finally:
        admin.user_remove(user)
        admin.policy_remove(f"{user}-p")


def test_lock_requests_on_buckets_without_lock(s3, bucket):
    expect_error(lambda: s3.get_object_lock_configuration(Bucket=bucket),
                 "ObjectLockConfigurationNotFoundError", 404)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE",
                                       ObjectLockRetainUntilDate=in_seconds(60)), "InvalidRequest", 400)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    expect_error(lambda: s3.get_object_retention(Bucket=bucket, Key="k"), "InvalidRequest", 400)
    # Object lock needs versioning enabled; then it can be turned on for an existing bucket.
    expect_error(lambda: s3.put_object_lock_configuration(
        Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}), "InvalidBucketState", 409)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    v = s3.put_object(Bucket=bucket, Key="k2", Body=b"x")["VersionId"]
    expect_error(lambda: s3.get_object_retention(Bucket=bucket, Key="k2", VersionId=v),
                 "NoSuchObjectLockConfiguration", 404)
    # A retain-until date in the past, or a mode without a date.
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="k3", Body=b"x", ObjectLockMode="GOVERNANCE",
                                       ObjectLockRetainUntilDate=in_seconds(-60)), "InvalidArgument", 400)
    for v in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])


def test_lock_and_tag_options_need_their_own_permissions(server, s3, locked):
    """AWS: retention on a write needs s3:PutObjectRetention, a legal hold
    s3:PutObjectLegalHold, tags s3:PutObjectTagging; s3:PutObject alone writes plain objects."""
    admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(server.access_key, server.secret_key),
                       secure=False, region=server.region)
    user = unique_bucket_name("lockw")
    admin.user_add(user, SECRET)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{locked}/*"]}]}
    admin.policy_add(f"{user}-w", policy=policy)
    try:
        admin.attach_policy([f"{user}-w"], user=user)
        c = make_s3_client(server.endpoint, user, SECRET)
        c.put_object(Bucket=locked, Key="plain", Body=b"p")
        expect_error(lambda: c.put_object(Bucket=locked, Key="r", Body=b"r", ObjectLockMode="COMPLIANCE",
                                          ObjectLockRetainUntilDate=in_seconds(3600)), "AccessDenied", 403)
        expect_error(lambda: c.put_object(Bucket=locked, Key="h", Body=b"h", ObjectLockLegalHoldStatus="ON"),
                     "AccessDenied", 403)
        expect_error(lambda: c.put_object(Bucket=locked, Key="t", Body=b"t", Tagging="a=b"), "AccessDenied", 403)
        policy["Statement"][0]["Action"] = ["s3:PutObject", "s3:PutObjectRetention", "s3:PutObjectLegalHold",
                                            "s3:PutObjectTagging"]
        admin.policy_add(f"{user}-w", policy=policy)
        c.put_object(Bucket=locked, Key="r", Body=b"r", ObjectLockMode="GOVERNANCE",
                     ObjectLockRetainUntilDate=in_seconds(3600))
        c.put_object(Bucket=locked, Key="t", Body=b"t", Tagging="a=b")
    finally:
        admin.user_remove(user)
        admin.policy_remove(f"{user}-w")
