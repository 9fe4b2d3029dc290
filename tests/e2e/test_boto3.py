"""S3 API behaviour through boto3, with AWS S3 as the oracle (error code AND HTTP status)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import socket
import urllib.parse
from unittest import mock

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, error_of, make_s3_client, unique_bucket_name, empty_and_delete_bucket

MiB = 1024 * 1024


def md5_hex(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def etag(resp) -> str:
    return resp["ETag"].strip('"')


def expect_error(fn, code: str | None, status: int, **kw):
    with pytest.raises(ClientError) as ei:
        fn(**kw)
    got_code, got_status = error_of(ei.value)
    assert got_status == status, f"status {got_status} ({got_code}), want {status} ({code})"
    if code is not None:
        assert got_code == code, f"code {got_code!r}, want {code!r} (status {got_status})"
    return ei.value


def rand_bytes(n: int, seed: int = 0) -> bytes:
    # Deterministic, incompressible-enough payload without spending time in os.urandom.
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    return (block * (n // len(block) + 1))[:n]


# ---------------------------------------------------------------- buckets

def test_list_buckets_shows_created_bucket(s3, bucket):
    resp = s3.list_buckets()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    names = [b["Name"] for b in resp["Buckets"]]
    assert bucket in names
    mine = next(b for b in resp["Buckets"] if b["Name"] == bucket)
    assert isinstance(mine["CreationDate"], dt.datetime)
    assert "Owner" in resp


def test_create_bucket_without_location_constraint(s3):
    name = unique_bucket_name()
    resp = s3.create_bucket(Bucket=name)
    try:
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert resp["Location"] == f"/{name}"
        # us-east-1 buckets report a null LocationConstraint.
        assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "")
    finally:
        s3.delete_bucket(Bucket=name)


def test_create_bucket_with_location_constraint_in_other_region(server_factory):
    srv = server_factory(region="eu-west-1")
    srv.start()
    s3 = srv.client()
    name = unique_bucket_name()
    resp = s3.create_bucket(Bucket=name,
                            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
    s3.head_bucket(Bucket=name)
    s3.delete_bucket(Bucket=name)


def test_head_bucket_200_and_404(s3, bucket):
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    # HEAD responses have no body: botocore reports the status as the code.
    expect_error(s3.head_bucket, "404", 404, Bucket=unique_bucket_name("missing"))


def test_delete_bucket_not_empty_and_missing(s3):
    name = unique_bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="x", Body=b"1")
    expect_error(s3.delete_bucket, "BucketNotEmpty", 409, Bucket=name)
    s3.delete_object(Bucket=name, Key="x")
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3.delete_bucket, "NoSuchBucket", 404, Bucket=name)
    expect_error(s3.head_bucket, "404", 404, Bucket=name)


def test_recreating_an_owned_bucket_in_us_east_1_answers_200(s3, bucket):
    # AWS's legacy rule in us-east-1 (issue 12); other regions answer 409
    # BucketAlreadyOwnedByYou (crates/s3/tests/front_door.rs covers that).
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    assert s3.create_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_object(Bucket=bucket, Key="kept")["Body"].read() == b"x"


@pytest.mark.parametrize("name", ["ab", "a" * 64, "UpperCase", "under_score", "bad..dots",
                                  "-leading-dash", "trailing-dash-", "192.168.5.4"])
def test_invalid_bucket_name(s3, name):
    expect_error(s3.create_bucket, "InvalidBucketName", 400, Bucket=name)


def test_no_such_bucket(s3):
    missing = unique_bucket_name("missing")
    expect_error(s3.get_object, "NoSuchBucket", 404, Bucket=missing, Key="k")
    expect_error(s3.put_object, "NoSuchBucket", 404, Bucket=missing, Key="k", Body=b"x")
    expect_error(s3.list_objects_v2, "NoSuchBucket", 404, Bucket=missing)
    expect_error(s3.get_bucket_location, "NoSuchBucket", 404, Bucket=missing)


def test_refused_expect_continue_request_closes_the_connection(server):
    # A PUT refused before its body is read: the client may still send the body, so the server
    # must not read the connection's next bytes as a new request (it closes it instead).
    host, port = server.hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"PUT /no-such-bucket-expect/k HTTP/1.1\r\nHost: " + server.hostport.encode()
                     + b"\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n")
        head = conn.recv(65536).split(b"\r\n\r\n", 1)[0].lower()
    # Unsigned, to a bucket that does not exist: NoSuchBucket, as AWS answers anonymous callers.
    assert head.startswith(b"http/1.1 404"), head
    assert b"\r\nconnection: close" in head, head


def test_get_bucket_versioning_on_new_bucket_is_empty(s3, bucket):
    resp = s3.get_bucket_versioning(Bucket=bucket)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Status" not in resp
    assert "MFADelete" not in resp


def test_mfa_delete_cannot_be_enabled_without_an_mfa_device(s3, bucket):
    # Enabling MFA delete needs x-amz-mfa; Strata has no MFA devices to check one against.
    expect_error(s3.put_bucket_versioning, "InvalidRequest", 400, Bucket=bucket,
                 VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    expect_error(s3.put_bucket_versioning, "AccessDenied", 403, Bucket=bucket,
                 VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"},
                 MFA="arn:aws:iam::123456789012:mfa/root 123456")
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    # MFADelete Disabled is the state every bucket is in: accepted.
    s3.put_bucket_versioning(Bucket=bucket,
                             VersioningConfiguration={"Status": "Enabled", "MFADelete": "Disabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_put_bucket_website_not_implemented(s3, bucket):
    # Static website hosting is outside Strata's scope (see ROADMAP): 501 NotImplemented.
    expect_error(s3.put_bucket_website, "NotImplemented", 501, Bucket=bucket,
                 WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})


# ---------------------------------------------------------------- put / get / head / delete

def test_put_get_head_with_metadata_and_content_type(s3, bucket):
    body = b"hello strata\n"
    put = s3.put_object(Bucket=bucket, Key="docs/hello.txt", Body=body,
                        ContentType="text/plain; charset=utf-8",
                        Metadata={"Color": "blue", "x-y": "z 1"},
                        CacheControl="max-age=60", ContentDisposition="inline",
                        ContentLanguage="en")
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert etag(put) == md5_hex(body)

    got = s3.get_object(Bucket=bucket, Key="docs/hello.txt")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "text/plain; charset=utf-8"
    assert got["Metadata"] == {"color": "blue", "x-y": "z 1"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == "inline"
    assert got["ContentLanguage"] == "en"
    assert etag(got) == md5_hex(body)
    assert got["ResponseMetadata"]["HTTPHeaders"].get("accept-ranges") == "bytes"

    head = s3.head_object(Bucket=bucket, Key="docs/hello.txt")
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "text/plain; charset=utf-8"
    assert head["Metadata"] == {"color": "blue", "x-y": "z 1"}
    assert etag(head) == md5_hex(body)
    assert head["LastModified"] == got["LastModified"]


def test_put_default_content_type_and_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0
    assert etag(got) == md5_hex(b"")
    # AWS's default for an object stored without a Content-Type.
    assert got["ContentType"] in ("binary/octet-stream", "application/octet-stream")


def test_put_overwrite_replaces_content(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"one", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second"
    assert got["Metadata"] == {}


def test_put_content_md5_good_and_bad(s3, bucket):
    body = b"integrity matters"
    good = base64.b64encode(hashlib.md5(body).digest()).decode()
    s3.put_object(Bucket=bucket, Key="md5", Body=body, ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    expect_error(s3.put_object, "BadDigest", 400, Bucket=bucket, Key="md5-bad", Body=body,
                 ContentMD5=bad)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="md5-bad")
    assert s3.get_object(Bucket=bucket, Key="md5")["Body"].read() == body


def test_put_larger_object_roundtrip(s3, bucket):
    body = rand_bytes(7 * MiB + 123, seed=7)
    put = s3.put_object(Bucket=bucket, Key="big", Body=body)
    assert etag(put) == md5_hex(body)
    got = s3.get_object(Bucket=bucket, Key="big")
    data = got["Body"].read()
    assert len(data) == len(body)
    assert data == body


def test_get_no_such_key(s3, bucket):
    err = expect_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="nope")
    assert err.response["Error"].get("Key") in (None, "nope")
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="nope")


def test_error_has_request_id(s3, bucket):
    err = expect_error(s3.get_object, "NoSuchKey", 404, Bucket=bucket, Key="nope")
    headers = err.response["ResponseMetadata"]["HTTPHeaders"]
    assert headers.get("x-amz-request-id"), headers
    assert err.response["ResponseMetadata"].get("RequestId")
    # Successful responses carry one too.
    ok = s3.head_bucket(Bucket=bucket)
    assert ok["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")


def test_delete_object_and_missing_key(s3, bucket):
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    assert s3.delete_object(Bucket=bucket, Key="gone")["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="gone")
    assert s3.delete_object(Bucket=bucket, Key="never")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_objects_quiet_and_verbose(s3, bucket):
    for k in ("a", "b", "c", "d"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    verbose = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}]})
    assert sorted(d["Key"] for d in verbose["Deleted"]) == ["a", "b", "missing"]
    assert not verbose.get("Errors")
    quiet = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": "c"}, {"Key": "d"}], "Quiet": True})
    assert not quiet.get("Deleted")
    assert not quiet.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# ---------------------------------------------------------------- ranges, conditionals, overrides

def test_get_ranges(s3, bucket):
    body = bytes(range(256)) * 4  # 1024 bytes
    s3.put_object(Bucket=bucket, Key="r", Body=body)

    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == body[10:20]
    assert r["ContentRange"] == "bytes 10-19/1024"
    assert r["ContentLength"] == 10

    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=-100")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == body[-100:]
    assert r["ContentRange"] == "bytes 924-1023/1024"

    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=1000-")
    assert r["Body"].read() == body[1000:]
    assert r["ContentRange"] == "bytes 1000-1023/1024"

    # An end past the object is clamped to the last byte.
    r = s3.get_object(Bucket=bucket, Key="r", Range="bytes=1020-5000")
    assert r["Body"].read() == body[1020:]
    assert r["ContentRange"] == "bytes 1020-1023/1024"

    expect_error(s3.get_object, "InvalidRange", 416, Bucket=bucket, Key="r",
                 Range="bytes=1024-")
    expect_error(s3.get_object, "InvalidRange", 416, Bucket=bucket, Key="r",
                 Range="bytes=5000-6000")


def test_get_range_across_erasure_blocks(s3, bucket):
    body = rand_bytes(3 * MiB + 17, seed=3)
    s3.put_object(Bucket=bucket, Key="blocks", Body=body)
    start, end = MiB - 5, 2 * MiB + 5
    r = s3.get_object(Bucket=bucket, Key="blocks", Range=f"bytes={start}-{end}")
    assert r["Body"].read() == body[start:end + 1]


def test_get_conditionals(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    tag = put["ETag"]
    head = s3.head_object(Bucket=bucket, Key="c")
    lm = head["LastModified"]
    past = lm - dt.timedelta(days=1)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)

    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=tag)["Body"].read() == b"conditional"
    expect_error(s3.get_object, "PreconditionFailed", 412, Bucket=bucket, Key="c",
                 IfMatch='"0123456789abcdef0123456789abcdef"')
    expect_error(s3.get_object, "304", 304, Bucket=bucket, Key="c", IfNoneMatch=tag)
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"ffff"')["Body"].read()

    expect_error(s3.get_object, "304", 304, Bucket=bucket, Key="c", IfModifiedSince=future)
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=past)["Body"].read()

    expect_error(s3.get_object, "PreconditionFailed", 412, Bucket=bucket, Key="c",
                 IfUnmodifiedSince=past)
    assert s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=future)["Body"].read()

    # HEAD follows the same rules (no body, so only the status is visible).
    expect_error(s3.head_object, None, 412, Bucket=bucket, Key="c", IfMatch='"nope"')
    expect_error(s3.head_object, None, 304, Bucket=bucket, Key="c", IfNoneMatch=tag)


def test_get_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"override", ContentType="text/plain")
    r = s3.get_object(Bucket=bucket, Key="o",
                      ResponseContentType="application/x-custom",
                      ResponseContentDisposition='attachment; filename="f.bin"',
                      ResponseCacheControl="no-cache",
                      ResponseContentLanguage="fr",
                      ResponseContentEncoding="identity",
                      ResponseExpires=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    assert r["ContentType"] == "application/x-custom"
    assert r["ContentDisposition"] == 'attachment; filename="f.bin"'
    assert r["CacheControl"] == "no-cache"
    assert r["ContentLanguage"] == "fr"
    assert r["ContentEncoding"] == "identity"
    assert r["ResponseMetadata"]["HTTPHeaders"]["expires"].startswith("Tue, 01 Jan 2030")
    assert r["Body"].read() == b"override"


def test_get_part_number(s3, bucket):
    p1, p2 = rand_bytes(5 * MiB, 1), rand_bytes(1234, 2)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    total = len(p1) + len(p2)

    r = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == p2
    assert r["PartsCount"] == 2
    assert r["ContentRange"] == f"bytes {len(p1)}-{total - 1}/{total}"

    h = s3.head_object(Bucket=bucket, Key="mp", PartNumber=1)
    assert h["ContentLength"] == len(p1)
    assert h["PartsCount"] == 2

    expect_error(s3.get_object, "InvalidPartNumber", 400, Bucket=bucket, Key="mp", PartNumber=3)


# ---------------------------------------------------------------- copy

def test_copy_object_copy_and_replace_directives(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/x-src",
                  Metadata={"origin": "src"})
    src = {"Bucket": bucket, "Key": "src"}

    c = s3.copy_object(Bucket=bucket, Key="dst-copy", CopySource=src)
    assert c["CopyObjectResult"]["ETag"].strip('"') == md5_hex(b"copy me")
    got = s3.get_object(Bucket=bucket, Key="dst-copy")
    assert got["Body"].read() == b"copy me"
    assert got["Metadata"] == {"origin": "src"}
    assert got["ContentType"] == "text/x-src"

    s3.copy_object(Bucket=bucket, Key="dst-replace", CopySource=src, MetadataDirective="REPLACE",
                   Metadata={"fresh": "yes"}, ContentType="text/x-new")
    got = s3.get_object(Bucket=bucket, Key="dst-replace")
    assert got["Body"].read() == b"copy me"
    assert got["Metadata"] == {"fresh": "yes"}
    assert got["ContentType"] == "text/x-new"


def test_copy_object_across_buckets_and_missing_source(s3, bucket):
    other = unique_bucket_name()
    s3.create_bucket(Bucket=other)
    try:
        body = rand_bytes(2 * MiB + 5, seed=11)
        s3.put_object(Bucket=bucket, Key="a/b", Body=body)
        s3.copy_object(Bucket=other, Key="c", CopySource={"Bucket": bucket, "Key": "a/b"})
        assert s3.get_object(Bucket=other, Key="c")["Body"].read() == body
        expect_error(s3.copy_object, "NoSuchKey", 404, Bucket=other, Key="d",
                     CopySource={"Bucket": bucket, "Key": "missing"})
    finally:
        empty_and_delete_bucket(s3, other)


def test_copy_source_if_match_failure(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="s", Body=b"x")
    src = {"Bucket": bucket, "Key": "s"}
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="t",
                 CopySource=src, CopySourceIfMatch='"00000000000000000000000000000000"')
    expect_error(s3.copy_object, "PreconditionFailed", 412, Bucket=bucket, Key="t",
                 CopySource=src, CopySourceIfNoneMatch=put["ETag"])
    s3.copy_object(Bucket=bucket, Key="t", CopySource=src, CopySourceIfMatch=put["ETag"])
    assert s3.get_object(Bucket=bucket, Key="t")["Body"].read() == b"x"


def test_copy_onto_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"same", Metadata={"v": "1"})
    src = {"Bucket": bucket, "Key": "self"}
    expect_error(s3.copy_object, "InvalidRequest", 400, Bucket=bucket, Key="self", CopySource=src)
    s3.copy_object(Bucket=bucket, Key="self", CopySource=src, MetadataDirective="REPLACE",
                   Metadata={"v": "2"}, ContentType="text/x-two")
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Body"].read() == b"same"
    assert got["Metadata"] == {"v": "2"}
    assert got["ContentType"] == "text/x-two"


# ---------------------------------------------------------------- listing

TREE = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "d/4.txt", "e.txt", "f/g/h/5.txt"]


@pytest.fixture
def tree_bucket(s3, bucket):
    for k in TREE:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    return bucket


def test_list_objects_v1(s3, tree_bucket):
    b = tree_bucket
    r = s3.list_objects(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == sorted(TREE)
    assert r["IsTruncated"] is False
    o = next(o for o in r["Contents"] if o["Key"] == "a.txt")
    assert o["Size"] == len(b"a.txt")
    assert o["ETag"].strip('"') == md5_hex(b"a.txt")
    assert "Owner" in o  # v1 always includes the owner

    r = s3.list_objects(Bucket=b, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "e.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "d/", "f/"]

    r = s3.list_objects(Bucket=b, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/c/"]

    r = s3.list_objects(Bucket=b, Marker="b/2.txt")
    assert [o["Key"] for o in r["Contents"]] == [k for k in sorted(TREE) if k > "b/2.txt"]

    # Paging with MaxKeys and a delimiter: NextMarker is returned and resumes correctly.
    seen, marker = [], ""
    for _ in range(20):
        r = s3.list_objects(Bucket=b, Delimiter="/", MaxKeys=2, Marker=marker)
        # Within a page, keys and common prefixes interleave in key order.
        seen += sorted([o["Key"] for o in r.get("Contents", [])] +
                       [p["Prefix"] for p in r.get("CommonPrefixes", [])])
        if not r["IsTruncated"]:
            break
        marker = r["NextMarker"]
    assert seen == ["a.txt", "b/", "d/", "e.txt", "f/"]


def test_list_objects_v2_prefix_delimiter(s3, tree_bucket):
    b = tree_bucket
    r = s3.list_objects_v2(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == sorted(TREE)
    assert r["KeyCount"] == len(TREE)
    assert "Owner" not in r["Contents"][0]

    r = s3.list_objects_v2(Bucket=b, Prefix="b/")
    assert [o["Key"] for o in r["Contents"]] == ["b/1.txt", "b/2.txt", "b/c/3.txt"]

    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a.txt", "e.txt"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/", "d/", "f/"]
    assert r["KeyCount"] == 5

    r = s3.list_objects_v2(Bucket=b, Prefix="f/", Delimiter="/")
    assert "Contents" not in r
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["f/g/"]

    r = s3.list_objects_v2(Bucket=b, Prefix="zzz")
    assert r["KeyCount"] == 0
    assert "Contents" not in r


def test_list_objects_v2_pagination(s3, tree_bucket):
    b = tree_bucket
    keys, token, pages = [], None, 0
    while True:
        kw = {"ContinuationToken": token} if token else {}
        r = s3.list_objects_v2(Bucket=b, MaxKeys=2, **kw)
        pages += 1
        assert r["MaxKeys"] == 2
        assert r["KeyCount"] == len(r.get("Contents", []))
        keys += [o["Key"] for o in r.get("Contents", [])]
        if not r["IsTruncated"]:
            assert "NextContinuationToken" not in r
            break
        token = r["NextContinuationToken"]
        assert pages < 20
    assert keys == sorted(TREE)
    assert pages == 4

    # Paginator (what most applications use) agrees.
    pk = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(
        Bucket=b, PaginationConfig={"PageSize": 3}) for o in p.get("Contents", [])]
    assert pk == sorted(TREE)


def test_list_objects_v2_start_after_and_fetch_owner(s3, tree_bucket):
    b = tree_bucket
    r = s3.list_objects_v2(Bucket=b, StartAfter="b/c/3.txt")
    assert [o["Key"] for o in r["Contents"]] == ["d/4.txt", "e.txt", "f/g/h/5.txt"]
    assert r["StartAfter"] == "b/c/3.txt"
    r = s3.list_objects_v2(Bucket=b, FetchOwner=True, MaxKeys=1)
    assert r["Contents"][0]["Owner"].get("ID")


ODD_KEYS = ["with space/a b.txt", "unicodé/ключ/日本.txt", "plus+sign", "percent%20x",
            "tilde~and=eq&amp", "emoji-😀", "nested/ dir /x"]


def test_list_objects_v2_encoding_type_url(s3, bucket):
    for k in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    # Explicit EncodingType: botocore leaves the keys as the server sent them.
    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url")
    assert r.get("EncodingType") == "url"
    raw = [o["Key"] for o in r["Contents"]]
    for k in raw:
        assert " " not in k and k.isascii(), f"key not URL-encoded: {k!r}"
    assert sorted(urllib.parse.unquote_plus(k) for k in raw) == sorted(ODD_KEYS)

    r = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Delimiter="/")
    prefixes = sorted(urllib.parse.unquote_plus(p["Prefix"]) for p in r["CommonPrefixes"])
    assert prefixes == ["nested/", "unicodé/", "with space/"]

    # Without it (botocore asks for url encoding itself and decodes): plain keys back.
    r = s3.list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in r["Contents"]) == sorted(ODD_KEYS)


def test_list_object_versions_never_versioned(s3, bucket):
    for k in ("v1", "v2", "v3"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.list_object_versions(Bucket=bucket)
    vs = r["Versions"]
    assert [v["Key"] for v in vs] == ["v1", "v2", "v3"]
    for v in vs:
        assert v["VersionId"] == "null"
        assert v["IsLatest"] is True
    assert not r.get("DeleteMarkers")

    r = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    assert r["IsTruncated"] is True
    assert [v["Key"] for v in r["Versions"]] == ["v1"]
    assert r["NextKeyMarker"] == "v1"
    assert r["NextVersionIdMarker"] == "null"
    r = s3.list_object_versions(Bucket=bucket, MaxKeys=1, KeyMarker=r["NextKeyMarker"],
                                VersionIdMarker=r["NextVersionIdMarker"])
    assert [v["Key"] for v in r["Versions"]] == ["v2"]
    r = s3.list_object_versions(Bucket=bucket, KeyMarker="v2")
    assert [v["Key"] for v in r["Versions"]] == ["v3"]
    assert r["IsTruncated"] is False

    # The null version is addressable by its id.
    got = s3.get_object(Bucket=bucket, Key="v2", VersionId="null")
    assert got["Body"].read() == b"v2"


# ---------------------------------------------------------------- multipart

def _mp_etag(part_bodies: list[bytes]) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in part_bodies)).hexdigest()
    return f"{digest}-{len(part_bodies)}"


def test_multipart_full_flow(s3, bucket):
    key = "mp/obj.bin"
    parts = [rand_bytes(5 * MiB, 21), rand_bytes(5 * MiB, 22), rand_bytes(MiB + 7, 23)]
    cr = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-mp",
                                    Metadata={"kind": "multipart"})
    up = cr["UploadId"]
    assert cr["Bucket"] == bucket and cr["Key"] == key and up

    ups = s3.list_multipart_uploads(Bucket=bucket)
    assert any(u["UploadId"] == up and u["Key"] == key for u in ups.get("Uploads", []))

    etags = []
    for i, body in enumerate(parts, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i, Body=body)
        assert etag(r) == md5_hex(body)
        etags.append(r["ETag"])

    lp = s3.list_parts(Bucket=bucket, Key=key, UploadId=up)
    assert [p["PartNumber"] for p in lp["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in lp["Parts"]] == [len(p) for p in parts]
    assert [p["ETag"] for p in lp["Parts"]] == etags

    lp1 = s3.list_parts(Bucket=bucket, Key=key, UploadId=up, MaxParts=1)
    assert lp1["IsTruncated"] is True and [p["PartNumber"] for p in lp1["Parts"]] == [1]
    lp2 = s3.list_parts(Bucket=bucket, Key=key, UploadId=up,
                        PartNumberMarker=lp1["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in lp2["Parts"]] == [2, 3]

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    assert etag(done) == _mp_etag(parts)
    assert done["Key"] == key

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"".join(parts)
    assert etag(got) == _mp_etag(parts)
    assert got["ContentType"] == "application/x-mp"
    assert got["Metadata"] == {"kind": "multipart"}

    ups = s3.list_multipart_uploads(Bucket=bucket)
    assert not any(u["UploadId"] == up for u in ups.get("Uploads", []))
    expect_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key=key, UploadId=up)


def test_multipart_part_overwrite_uses_last(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="ow")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ow", UploadId=up, PartNumber=1, Body=b"first")
    e = s3.upload_part(Bucket=bucket, Key="ow", UploadId=up, PartNumber=1, Body=b"second")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="ow", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert s3.get_object(Bucket=bucket, Key="ow")["Body"].read() == b"second"


def test_upload_part_copy_with_range(s3, bucket):
    src = rand_bytes(7 * MiB, 31)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    e1 = r1["CopyPartResult"]["ETag"]
    assert e1.strip('"') == md5_hex(src[:5 * MiB])
    middle = rand_bytes(5 * MiB, 32)
    e2 = s3.upload_part(Bucket=bucket, Key="dst", UploadId=up, PartNumber=2, Body=middle)["ETag"]
    # The last part may be small: a 1 MiB range from the middle of the source.
    r3 = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=3,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange=f"bytes={6 * MiB}-{7 * MiB - 1}")
    e3 = r3["CopyPartResult"]["ETag"]
    assert e3.strip('"') == md5_hex(src[6 * MiB:7 * MiB])
    lp = s3.list_parts(Bucket=bucket, Key="dst", UploadId=up)
    assert [p["Size"] for p in lp["Parts"]] == [5 * MiB, 5 * MiB, MiB]
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                  {"PartNumber": 3, "ETag": e3}]})
    want = src[:5 * MiB] + middle + src[6 * MiB:7 * MiB]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == want
    expect_error(s3.upload_part_copy, "NoSuchUpload", 404, Bucket=bucket, Key="dst", UploadId=up,
                 PartNumber=4, CopySource={"Bucket": bucket, "Key": "src"})


def test_upload_part_copy_range_must_lie_within_the_source(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x" * 100)
    up = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    for bad in ("bytes=50-100", "bytes=100-150", "bytes=0-1000"):
        expect_error(s3.upload_part_copy, "InvalidArgument", 400, Bucket=bucket, Key="dst", UploadId=up,
                     PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=bad)
    r = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=up, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange="bytes=0-99")
    assert r["CopyPartResult"]["ETag"].strip('"') == md5_hex(b"x" * 100)
    assert s3.list_parts(Bucket=bucket, Key="dst", UploadId=up)["Parts"][0]["Size"] == 100


def test_abort_multipart_then_no_such_upload(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=up, PartNumber=1, Body=b"x" * 100)
    r = s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=up)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    expect_error(s3.list_parts, "NoSuchUpload", 404, Bucket=bucket, Key="ab", UploadId=up)
    expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=bucket, Key="ab", UploadId=up,
                 PartNumber=2, Body=b"y")
    expect_error(s3.complete_multipart_upload, "NoSuchUpload", 404, Bucket=bucket, Key="ab",
                 UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]})
    expect_error(s3.abort_multipart_upload, "NoSuchUpload", 404, Bucket=bucket, Key="ab",
                 UploadId=up)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="ab")


def test_multipart_entity_too_small(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=1,
                        Body=rand_bytes(MiB, 41))["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=up, PartNumber=2,
                        Body=rand_bytes(MiB, 42))["ETag"]
    expect_error(s3.complete_multipart_upload, "EntityTooSmall", 400, Bucket=bucket, Key="small",
                 UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                         {"PartNumber": 2, "ETag": e2}]})
    # The upload is still there after a failed complete.
    s3.list_parts(Bucket=bucket, Key="small", UploadId=up)
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=up)


def test_multipart_invalid_part_and_order(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="bad")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=up, PartNumber=1,
                        Body=rand_bytes(5 * MiB, 51))["ETag"]
    # Both parts are large enough, so only the order or identity of parts can be wrong.
    e2 = s3.upload_part(Bucket=bucket, Key="bad", UploadId=up, PartNumber=2,
                        Body=rand_bytes(5 * MiB, 52))["ETag"]
    wrong = '"' + "0" * 32 + '"'
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="bad",
                 UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                         {"PartNumber": 2, "ETag": wrong}]})
    expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key="bad",
                 UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                         {"PartNumber": 7, "ETag": e2}]})
    expect_error(s3.complete_multipart_upload, "InvalidPartOrder", 400, Bucket=bucket, Key="bad",
                 UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                                         {"PartNumber": 1, "ETag": e1}]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="bad", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert etag(done).endswith("-2")


def test_multipart_subset_of_parts(s3, bucket):
    """Completing with parts 1 and 3 of 1..3 stores exactly those parts."""
    bodies = {i: rand_bytes(5 * MiB, 60 + i) for i in (1, 2, 3)}
    up = s3.create_multipart_upload(Bucket=bucket, Key="subset")["UploadId"]
    et = {i: s3.upload_part(Bucket=bucket, Key="subset", UploadId=up, PartNumber=i,
                            Body=b)["ETag"] for i, b in bodies.items()}
    s3.complete_multipart_upload(Bucket=bucket, Key="subset", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": et[1]}, {"PartNumber": 3, "ETag": et[3]}]})
    got = s3.get_object(Bucket=bucket, Key="subset")["Body"].read()
    assert got == bodies[1] + bodies[3]


# ---------------------------------------------------------------- keys

@pytest.mark.parametrize("key", [
    "ünïcödé/日本語/ключ.txt", "spaces in the key.txt", "a+b+c", "100%", "%2F%20literal",
    "semi;colon,comma=eq&and?q#hash", "dir//double/slash", "trailing/", "~tilde!*'()",
    "x" * 1024,
])
def test_odd_keys_roundtrip(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(key.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == [key]
    s3.copy_object(Bucket=bucket, Key=key + ".copy" if len(key) < 1000 else "copy",
                   CopySource={"Bucket": bucket, "Key": key})
    s3.delete_object(Bucket=bucket, Key=key)
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key=key)


def test_key_too_long(s3, bucket):
    expect_error(s3.put_object, "KeyTooLongError", 400, Bucket=bucket, Key="y" * 1025, Body=b"")


def test_1024_byte_multibyte_key(s3, bucket):
    key = "é" * 512  # 1024 bytes in UTF-8
    assert len(key.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=key, Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"ok"


# ---------------------------------------------------------------- auth

def test_signature_does_not_match(server, bucket):
    bad = make_s3_client(server.endpoint, server.access_key, "wrong-" + server.secret_key)
    err = expect_error(bad.list_objects_v2, "SignatureDoesNotMatch", 403, Bucket=bucket)
    assert err.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    expect_error(bad.put_object, "SignatureDoesNotMatch", 403, Bucket=bucket, Key="k", Body=b"x")
    expect_error(bad.list_buckets, "SignatureDoesNotMatch", 403)


def test_invalid_access_key_id(server, bucket):
    bad = make_s3_client(server.endpoint, "AKIDNOTAUSER0000", server.secret_key)
    expect_error(bad.list_objects_v2, "InvalidAccessKeyId", 403, Bucket=bucket)
    expect_error(bad.list_buckets, "InvalidAccessKeyId", 403)


def test_anonymous_request_denied(server, bucket):
    r = requests.get(f"{server.endpoint}/{bucket}?list-type=2", timeout=10)
    assert r.status_code == 403, r.text
    assert "<Code>AccessDenied</Code>" in r.text


@contextlib.contextmanager
def shifted_clock(delta: dt.timedelta):
    """The signing clock moved by `delta`, for botocore's own signer and for the CRT signer
    botocore uses when awscrt is installed."""
    real = botocore.auth.get_current_datetime

    def fake(*a, **kw):
        return real(*a, **kw) + delta

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(botocore.auth, "get_current_datetime", fake))
        try:
            import botocore.crt.auth as crt_auth
        except ImportError:
            crt_auth = None
        if crt_auth is not None:
            stack.enter_context(mock.patch.object(crt_auth, "get_current_datetime", fake))
        yield


def test_request_time_too_skewed(s3, bucket):
    with shifted_clock(dt.timedelta(minutes=-20)):
        expect_error(s3.list_objects_v2, "RequestTimeTooSkewed", 403, Bucket=bucket)
    with shifted_clock(dt.timedelta(minutes=20)):
        expect_error(s3.put_object, "RequestTimeTooSkewed", 403, Bucket=bucket, Key="k", Body=b"x")
    s3.list_objects_v2(Bucket=bucket)


def test_presigned_get_and_put_with_plain_http(s3, bucket):
    body = b"presigned payload \x00\xff"
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/s k"},
                                        ExpiresIn=300)
    r = requests.put(put_url, data=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"].strip('"') == md5_hex(body)

    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/s k"},
                                        ExpiresIn=300)
    r = requests.get(get_url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == body

    # A tampered signature (same length, one hex digit changed) is refused.
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(get_url).query)["X-Amz-Signature"][0]
    bad_sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    r = requests.get(get_url.replace(f"X-Amz-Signature={sig}", f"X-Amz-Signature={bad_sig}"),
                     timeout=30)
    assert r.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_put_with_transfer_encoding_chunked_and_no_content_length(s3, bucket):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "chunked"},
                                    ExpiresIn=300)
    pieces = [b"a" * 1000, b"b" * 70_000, b"c"]
    # A generator body makes requests send Transfer-Encoding: chunked without Content-Length.
    r = requests.put(url, data=(p for p in pieces), timeout=30)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in r.request.headers
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == b"".join(pieces)


def test_presigned_url_expires_bounds(s3, bucket):
    s3.put_object(Bucket=bucket, Key="p", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    assert requests.get(url, timeout=30).status_code == 200
    for bad in ("604801", "0"):
        r = requests.get(url.replace("X-Amz-Expires=60", f"X-Amz-Expires={bad}"), timeout=30)
        assert r.status_code == 400, r.text
        assert "<Code>AuthorizationQueryParametersError</Code>" in r.text
    # Seven days is the longest lifetime accepted.
    week = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=604800)
    assert requests.get(week, timeout=30).status_code == 200
    # At the expiry instant the URL no longer works.
    with shifted_clock(dt.timedelta(seconds=-60)):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60)
    r = requests.get(url, timeout=30)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, r.text


def test_presigned_url_expired(s3, bucket):
    s3.put_object(Bucket=bucket, Key="old", Body=b"x")
    with shifted_clock(dt.timedelta(hours=-1)):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "old"},
                                        ExpiresIn=60)
    r = requests.get(url, timeout=30)
    assert r.status_code == 403, r.text
    assert "<Code>AccessDenied</Code>" in r.text
    assert r.headers.get("x-amz-request-id")


# ---------------------------------------------------------------- payload signing modes

def _sigv4_signing_key(secret: str, date: str, region: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _signed_request(server, method: str, path: str, headers: dict[str, str]) -> AWSRequest:
    req = AWSRequest(method=method, url=server.endpoint + path, headers=headers)
    creds = Credentials(server.access_key, server.secret_key)
    # Plain SigV4Auth keeps the caller's X-Amz-Content-SHA256 (the streaming marker).
    botocore.auth.SigV4Auth(creds, "s3", REGION).add_auth(req)
    return req


def test_streaming_signed_aws_chunked_upload(server, s3, bucket):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as the AWS SDKs send over plain HTTP."""
    payload = rand_bytes(200 * 1024 + 5, seed=77)
    chunk_size = 64 * 1024
    chunks = [payload[i:i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]

    def encoded_len() -> int:
        return sum(len(f"{len(c):x};chunk-signature=") + 64 + 2 + len(c) + 2 for c in chunks)

    headers = {
        "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(payload)),
        "Content-Length": str(encoded_len()),
        "Content-Type": "application/x-streamed",
    }
    req = _signed_request(server, "PUT", f"/{bucket}/streamed", headers)
    amz_date = req.headers["X-Amz-Date"]
    date = amz_date[:8]
    scope = f"{date}/{REGION}/s3/aws4_request"
    prev = req.headers["Authorization"].rsplit("Signature=", 1)[1]
    key = _sigv4_signing_key(server.secret_key, date, REGION)
    empty_hash = hashlib.sha256(b"").hexdigest()
    body = bytearray()
    for c in chunks:
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty_hash,
                         hashlib.sha256(c).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        body += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + b"\r\n"
        prev = sig
    assert len(body) == encoded_len()
    r = requests.put(req.url, data=bytes(body), headers=dict(req.headers), timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"].strip('"') == md5_hex(payload)
    got = s3.get_object(Bucket=bucket, Key="streamed")
    assert got["Body"].read() == payload
    assert got["ContentType"] == "application/x-streamed"
    assert got.get("ContentEncoding") in (None, "")  # aws-chunked is not stored

    # Payload bytes that no longer match their chunk signature: rejected, nothing stored.
    # (The same body is re-sent under a fresh seed signature, so every chunk signature is
    # wrong for it; additionally one payload byte is flipped.)
    req2 = _signed_request(server, "PUT", f"/{bucket}/streamed-bad", dict(headers))
    tampered = bytearray(body)
    tampered[body.index(b"\r\n") + 2 + 10] ^= 0xFF
    r = requests.put(req2.url, data=bytes(tampered), headers=dict(req2.headers), timeout=60)
    assert r.status_code == 403, r.text
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="streamed-bad")


def test_unsigned_payload_trailer_checksum_upload(server, s3, bucket):
    """STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer: boto3's default over HTTPS."""
    payload = rand_bytes(100 * 1024 + 3, seed=88)
    crc = base64.b64encode(binascii.crc32(payload).to_bytes(4, "big")).decode()
    body = (f"{len(payload):x}\r\n".encode() + payload + b"\r\n" + b"0\r\n" +
            f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode())
    headers = {
        "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(payload)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "Content-Length": str(len(body)),
    }
    req = _signed_request(server, "PUT", f"/{bucket}/trailer", headers)
    r = requests.put(req.url, data=body, headers=dict(req.headers), timeout=60)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == payload


def test_boto3_default_checksum_upload(s3, bucket):
    """boto3's defaults (flexible checksums, x-amz-checksum-crc32) from a file object."""
    import io
    payload = rand_bytes(3 * MiB + 1, seed=99)
    s3.put_object(Bucket=bucket, Key="default", Body=io.BytesIO(payload))
    s3.upload_fileobj(io.BytesIO(payload), bucket, "default-transfer")
    for k in ("default", "default-transfer"):
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == payload


def test_unsigned_payload_header(server, s3, bucket):
    payload = b"unsigned payload body"
    req = _signed_request(server, "PUT", f"/{bucket}/unsigned",
                          {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD",
                           "Content-Length": str(len(payload))})
    r = requests.put(req.url, data=payload, headers=dict(req.headers), timeout=30)
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == payload


def test_payload_hash_mismatch_rejected(server, s3, bucket):
    payload = b"actual body"
    claimed = hashlib.sha256(b"different body").hexdigest()
    req = _signed_request(server, "PUT", f"/{bucket}/mismatch",
                          {"X-Amz-Content-SHA256": claimed, "Content-Length": str(len(payload))})
    r = requests.put(req.url, data=payload, headers=dict(req.headers), timeout=30)
    assert r.status_code == 400, r.text
    assert "<Code>XAmzContentSHA256Mismatch</Code>" in r.text
    expect_error(s3.head_object, "404", 404, Bucket=bucket, Key="mismatch")


def test_many_small_objects_listing(s3, bucket):
    n = 120
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"many/{i:04d}", Body=os.urandom(16))
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="many/", PaginationConfig={"PageSize": 50}) for o in p["Contents"]]
    assert keys == [f"many/{i:04d}" for i in range(n)]


def test_max_keys_zero_lists_nothing_and_is_not_truncated(s3, bucket):
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    v2 = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert v2["KeyCount"] == 0 and v2["IsTruncated"] is False and "Contents" not in v2
    assert "NextContinuationToken" not in v2
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=0)
    assert v1["IsTruncated"] is False and "Contents" not in v1
    versions = s3.list_object_versions(Bucket=bucket, MaxKeys=0)
    assert versions["IsTruncated"] is False and "Versions" not in versions


def test_list_buckets_pages_with_max_buckets(s3):
    names = sorted(unique_bucket_name("page") for _ in range(3))
    for name in names:
        s3.create_bucket(Bucket=name)
    try:
        seen, token = [], None
        while True:
            kwargs = {"MaxBuckets": 1, "Prefix": "page"}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3.list_buckets(**kwargs)
            assert len(page["Buckets"]) <= 1
            seen += [b["Name"] for b in page["Buckets"]]
            token = page.get("ContinuationToken")
            if not token:
                break
        assert [n for n in seen if n in names] == names
        assert s3.list_buckets(BucketRegion="us-east-1", Prefix=names[0])["Buckets"][0]["Name"] == names[0]
        assert s3.list_buckets(BucketRegion="eu-west-3", Prefix=names[0])["Buckets"] == []
        with pytest.raises(ClientError) as e:
            s3.list_buckets(MaxBuckets=10001)
        assert error_of(e.value) == ("InvalidArgument", 400)
    finally:
        for name in names:
            s3.delete_bucket(Bucket=name)
