"""Browser form uploads (PostObject) as boto3's generate_presigned_post builds them: policy
conditions, ${filename} keys, success actions, metadata and checksum fields, and the errors
for a bad or expired policy."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import urllib.parse

import pytest
import requests

from conftest import unique_bucket_name


@pytest.fixture
def bucket(s3):
    name = unique_bucket_name("post")
    s3.create_bucket(Bucket=name)
    return name


def post(s3, bucket: str, key: str, body: bytes, fields: dict | None = None,
         conditions: list | None = None, filename: str = "file.bin", expires: int = 300,
         extra: dict | None = None) -> requests.Response:
    form = s3.generate_presigned_post(Bucket=bucket, Key=key, Fields=fields or {},
                                      Conditions=conditions or [], ExpiresIn=expires)
    data = dict(form["fields"])
    data.update(extra or {})
    return requests.post(form["url"], data=data, files={"file": (filename, body)}, timeout=30)


def test_success_actions(s3, bucket):
    r = post(s3, bucket, "a", b"hello")
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"hello"

    r = post(s3, bucket, "b", b"x", fields={"success_action_status": "201"},
             conditions=[{"success_action_status": "201"}])
    assert r.status_code == 201, r.text
    assert "<Key>b</Key>" in r.text and f"<Bucket>{bucket}</Bucket>" in r.text
    assert hashlib.md5(b"x").hexdigest() in r.text

    r = post(s3, bucket, "c", b"x", fields={"success_action_status": "200"},
             conditions=[{"success_action_status": "200"}])
    assert r.status_code == 200 and r.text == ""

    target = "https://example.com/done"
    form = s3.generate_presigned_post(Bucket=bucket, Key="d",
                                      Fields={"success_action_redirect": target},
                                      Conditions=[{"success_action_redirect": target}], ExpiresIn=300)
    r = requests.post(form["url"], data=form["fields"], files={"file": ("f", b"x")},
                      allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    location = urllib.parse.urlsplit(r.headers["Location"])
    query = urllib.parse.parse_qs(location.query)
    assert location.netloc == "example.com"
    assert query["bucket"] == [bucket] and query["key"] == ["d"]


def test_filename_key_and_metadata_fields(s3, bucket):
    r = post(s3, bucket, "uploads/${filename}", b"photo", filename="cat.jpg",
             fields={"x-amz-meta-owner": "alice", "Content-Type": "image/jpeg"},
             conditions=[["starts-with", "$key", "uploads/"], {"x-amz-meta-owner": "alice"},
                         ["starts-with", "$Content-Type", "image/"]])
    assert r.status_code == 204, r.text
    head = s3.head_object(Bucket=bucket, Key="uploads/cat.jpg")
    assert head["Metadata"] == {"owner": "alice"}
    assert head["ContentType"] == "image/jpeg"


def test_policy_conditions_refuse(s3, bucket):
    # A field that breaks an eq / starts-with condition.
    r = post(s3, bucket, "k", b"x", conditions=[{"x-amz-meta-owner": "alice"}],
             extra={"x-amz-meta-owner": "mallory"})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    r = post(s3, bucket, "other/k", b"x", conditions=[["starts-with", "$key", "uploads/"]])
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    # A body outside content-length-range.
    r = post(s3, bucket, "big", b"x" * 100, conditions=[["content-length-range", 1, 10]])
    assert r.status_code == 400 and "<Code>EntityTooLarge</Code>" in r.text, r.text
    r = post(s3, bucket, "small", b"x", conditions=[["content-length-range", 5, 10]])
    assert r.status_code == 400 and "<Code>EntityTooSmall</Code>" in r.text, r.text
    # A field the policy does not mention.
    r = post(s3, bucket, "k2", b"x", extra={"x-amz-meta-extra": "1"})
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text
    for key in ["k", "other/k", "big", "small", "k2"]:
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=key)


def test_expired_or_malformed_policy(s3, bucket):
    form = s3.generate_presigned_post(Bucket=bucket, Key="late", ExpiresIn=300)
    fields = dict(form["fields"])
    policy = json.loads(base64.b64decode(fields["policy"]))
    policy["expiration"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    fields["policy"] = base64.b64encode(json.dumps(policy).encode()).decode()
    r = requests.post(form["url"], data=fields, files={"file": ("f", b"x")}, timeout=30)
    # The policy was changed after signing: refused either way, never stored.
    assert r.status_code in (400, 403), r.text
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="late")

    # Signed properly but already expired.
    r = post(s3, bucket, "late2", b"x", expires=-60)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text

    fields = dict(form["fields"])
    fields["policy"] = "not base64 json!"
    r = requests.post(form["url"], data=fields, files={"file": ("f", b"x")}, timeout=30)
    assert r.status_code == 400, r.text


def test_checksum_field(s3, bucket):
    body = b"form body with a checksum"
    good = base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = post(s3, bucket, "ck", body, fields={"x-amz-checksum-sha256": good},
             conditions=[{"x-amz-checksum-sha256": good}])
    assert r.status_code == 204, r.text
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == good
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = post(s3, bucket, "ck-bad", body, fields={"x-amz-checksum-sha256": bad},
             conditions=[{"x-amz-checksum-sha256": bad}])
    assert r.status_code == 400 and "<Code>BadDigest</Code>" in r.text, r.text
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="ck-bad")


def test_tagging_field(s3, bucket):
    tagging = ("<Tagging><TagSet><Tag><Key>team</Key><Value>web</Value></Tag>"
               "<Tag><Key>tier</Key><Value>hot</Value></Tag></TagSet></Tagging>")
    r = post(s3, bucket, "tagged", b"x", fields={"tagging": tagging}, conditions=[{"tagging": tagging}])
    assert r.status_code == 204, r.text
    tags = s3.get_object_tagging(Bucket=bucket, Key="tagged")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("team", "web"), ("tier", "hot")]
    bad = "<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>"
    r = post(s3, bucket, "bad-tags", b"x", fields={"tagging": bad}, conditions=[{"tagging": bad}])
    assert r.status_code == 400 and "<Code>InvalidTag</Code>" in r.text, r.text
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="bad-tags")
