"""Conditional writes (compare-and-swap) with boto3: If-None-Match: * creates only when the key
has no current object, If-Match replaces only the version it names; the same on
CompleteMultipartUpload; racing writers to one key, exactly one wins."""

from __future__ import annotations

import concurrent.futures

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def expect_error(call, code: str, status: int) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response


def test_if_none_match_creates_once(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*"),
                 "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"
    # A deleted key may be created again.
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"again", IfNoneMatch="*")


def test_if_match_replaces_only_the_named_version(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="cas", Body=b"v1")["ETag"]
    new = s3.put_object(Bucket=bucket, Key="cas", Body=b"v2", IfMatch=etag)["ETag"]
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=etag), "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="cas")["Body"].read() == b"v2"
    s3.put_object(Bucket=bucket, Key="cas", Body=b"v3", IfMatch=new)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="missing", Body=b"x", IfMatch=etag), "NoSuchKey", 404)


def test_conditional_multipart_completion(s3, bucket):
    s3.put_object(Bucket=bucket, Key="mp", Body=b"existing")
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 100)
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    expect_error(lambda: s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                                      MultipartUpload=parts, IfNoneMatch="*"),
                 "PreconditionFailed", 412)
    # The upload is still there; completing it without the condition works.
    assert s3.list_parts(Bucket=bucket, Key="mp", UploadId=up["UploadId"])["Parts"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"], MultipartUpload=parts)
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"p" * 100


def test_racing_creators_exactly_one_wins(s3, bucket):
    def attempt(i: int) -> bool:
        try:
            s3.put_object(Bucket=bucket, Key="lock-file", Body=f"writer-{i}".encode(), IfNoneMatch="*")
            return True
        except ClientError as e:
            assert error_of(e) == ("PreconditionFailed", 412), e.response
            return False

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(attempt, range(32)))
    assert sum(results) == 1


def test_conditional_delete_if_match(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="d", Body=b"v1")["ETag"]
    # Another ETag: 412, the object stays.
    expect_error(lambda: s3.delete_object(Bucket=bucket, Key="d", IfMatch='"0123456789abcdef0123456789abcdef"'),
                 "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"v1"
    s3.delete_object(Bucket=bucket, Key="d", IfMatch=etag)
    # Gone: a conditional delete of a missing key is NoSuchKey (an unconditional one succeeds).
    expect_error(lambda: s3.delete_object(Bucket=bucket, Key="d", IfMatch=etag), "NoSuchKey", 404)
    expect_error(lambda: s3.delete_object(Bucket=bucket, Key="d", IfMatch="*"), "NoSuchKey", 404)
    s3.delete_object(Bucket=bucket, Key="d")
    # If-Match: * deletes whatever is there.
    s3.put_object(Bucket=bucket, Key="any", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="any", IfMatch="*")
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="any"), "404", 404)


def test_conditional_delete_in_versioned_bucket_and_delete_objects(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    etag = s3.put_object(Bucket=bucket, Key="v", Body=b"v1")["ETag"]
    expect_error(lambda: s3.delete_object(Bucket=bucket, Key="v", IfMatch='"ffffffffffffffffffffffffffffffff"'),
                 "PreconditionFailed", 412)
    r = s3.delete_object(Bucket=bucket, Key="v", IfMatch=etag)
    assert r["DeleteMarker"] is True
    # The current version is now a delete marker: nothing to match.
    expect_error(lambda: s3.delete_object(Bucket=bucket, Key="v", IfMatch="*"), "NoSuchKey", 404)

    a = s3.put_object(Bucket=bucket, Key="a", Body=b"a")["ETag"]
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "a", "ETag": a},
        {"Key": "b", "ETag": '"00000000000000000000000000000000"'},
    ]})
    assert [d["Key"] for d in out.get("Deleted", [])] == ["a"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("b", "PreconditionFailed")]
    assert s3.get_object(Bucket=bucket, Key="b")["Body"].read() == b"b"


def test_conditional_copy_destination(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source")
    existing = s3.put_object(Bucket=bucket, Key="dst", Body=b"old")["ETag"]
    src = {"Bucket": bucket, "Key": "src"}
    # boto3 has no parameters for these: add the headers to the request.
    def copy_with(headers: dict):
        def add(request, **_):
            for name, value in headers.items():
                request.headers[name] = value
        s3.meta.events.register_first("before-sign.s3.CopyObject", add)
        try:
            return s3.copy_object(Bucket=bucket, Key="dst", CopySource=src)
        finally:
            s3.meta.events.unregister("before-sign.s3.CopyObject", add)
    expect_error(lambda: copy_with({"If-None-Match": "*"}), "PreconditionFailed", 412)
    expect_error(lambda: copy_with({"If-Match": '"00000000000000000000000000000000"'}),
                 "PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    copy_with({"If-Match": existing})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source"
    s3.delete_object(Bucket=bucket, Key="dst")
    copy_with({"If-None-Match": "*"})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source"
