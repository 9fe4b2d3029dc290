"""Input limits and integrity checks of issue 16 (items 3, 4, 5), with AWS S3 as the oracle,
through boto3 and through raw signed HTTP:

- user metadata over 2 KiB is `400 MetadataTooLarge` and nothing is stored; a header value over
  8 KiB or a header section over the documented bound is `400 RequestHeaderSectionTooLarge`;
- DeleteObjects needs a Content-MD5 or an x-amz-checksum-* that matches its body, and deletes
  nothing when the check fails;
- a syntactically invalid Range is ignored (200, whole object); an unsatisfiable one is 416.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, error_of

USER_METADATA_BYTES_MAX = 2048
HEADER_VALUE_BYTES_MAX = 8 * 1024
HEADER_SECTION_BYTES_MAX = 32 * 1024

INVALID_RANGES = ["bytes=5-2", "bytes=abc", "items=0-1", "bytes=0-1,3-4", "bytes=--1", "bytes 0-1"]


# ---------------------------------------------------------------- helpers

def expect_error(fn, code: str, status: int, **kw) -> ClientError:
    with pytest.raises(ClientError) as ei:
        fn(**kw)
    got_code, got_status = error_of(ei.value)
    assert (got_code, got_status) == (code, status), ei.value.response
    return ei.value


def exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if error_of(e)[1] == 404:
            return False
        raise


def signed(server, method: str, path: str, headers: dict[str, str] | None = None,
           body: bytes = b"", unsigned_headers: dict[str, str] | None = None) -> requests.Response:
    """Sends a SigV4-signed request (headers signed, `unsigned_headers` added after signing)."""
    headers = dict(headers or {})
    headers.setdefault("X-Amz-Content-SHA256", hashlib.sha256(body).hexdigest())
    req = AWSRequest(method=method, url=server.endpoint + path, headers=headers, data=body)
    botocore.auth.SigV4Auth(Credentials(server.access_key, server.secret_key), "s3", REGION).add_auth(req)
    sent = dict(req.headers)
    sent.update(unsigned_headers or {})
    return requests.request(method, req.url, headers=sent, data=body, timeout=30)


def error_code(resp: requests.Response) -> str:
    text = resp.text
    start = text.find("<Code>")
    return text[start + 6:text.find("</Code>")] if start >= 0 else ""


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _crc_reflected(data: bytes, poly: int, width: int) -> int:
    mask = (1 << width) - 1
    crc = mask
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ mask


def checksum(algorithm: str, data: bytes) -> str:
    """The base64 x-amz-checksum-* value S3 expects for `data`."""
    if algorithm == "crc32":
        return b64(zlib.crc32(data).to_bytes(4, "big"))
    if algorithm == "crc32c":
        return b64(_crc_reflected(data, 0x82F63B78, 32).to_bytes(4, "big"))
    if algorithm == "crc64nvme":
        return b64(_crc_reflected(data, 0x9A6C9329AC4BC9B5, 64).to_bytes(8, "big"))
    return b64(hashlib.new(algorithm, data).digest())


def test_checksum_helper_matches_reference_values():
    # The CRC catalogue's check values for "123456789".
    assert checksum("crc32c", b"123456789") == b64(bytes.fromhex("e3069283"))
    assert checksum("crc64nvme", b"123456789") == b64(bytes.fromhex("ae8b14860a799888"))
    assert checksum("crc32", b"123456789") == b64(bytes.fromhex("cbf43926"))


def delete_xml(keys: list[str]) -> bytes:
    objects = "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
    return f'<?xml version="1.0" encoding="UTF-8"?><Delete>{objects}</Delete>'.encode()


# ---------------------------------------------------------------- user metadata and headers

def metadata_of_size(n_bytes: int, n_keys: int = 1) -> dict[str, str]:
    """`n_keys` keys whose keys plus values make `n_bytes` in all."""
    meta = {}
    per_key = n_bytes // n_keys
    for i in range(n_keys):
        key = f"k{i:03d}"
        size = per_key if i < n_keys - 1 else n_bytes - per_key * (n_keys - 1)
        meta[key] = "v" * (size - len(key))
    assert sum(len(k) + len(v) for k, v in meta.items()) == n_bytes
    return meta


@pytest.mark.parametrize("n_keys", [1, 16])
def test_put_object_metadata_limit_issue_16(s3, bucket, n_keys):
    ok = metadata_of_size(USER_METADATA_BYTES_MAX, n_keys)
    s3.put_object(Bucket=bucket, Key="at-limit", Body=b"x", Metadata=ok)
    assert s3.head_object(Bucket=bucket, Key="at-limit")["Metadata"] == ok

    over = metadata_of_size(USER_METADATA_BYTES_MAX + 1, n_keys)
    expect_error(s3.put_object, "MetadataTooLarge", 400, Bucket=bucket, Key="over", Body=b"x",
                 Metadata=over)
    assert not exists(s3, bucket, "over")


def test_create_multipart_upload_metadata_limit(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp",
                                    Metadata=metadata_of_size(USER_METADATA_BYTES_MAX))
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"])
    expect_error(s3.create_multipart_upload, "MetadataTooLarge", 400, Bucket=bucket, Key="mp-over",
                 Metadata=metadata_of_size(USER_METADATA_BYTES_MAX + 1))
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_copy_object_replace_metadata_limit(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"source", Metadata={"a": "b"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata=metadata_of_size(USER_METADATA_BYTES_MAX))
    expect_error(s3.copy_object, "MetadataTooLarge", 400, Bucket=bucket, Key="dst-over",
                 CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE",
                 Metadata=metadata_of_size(USER_METADATA_BYTES_MAX + 1))
    assert not exists(s3, bucket, "dst-over")
    # COPY keeps the source's metadata; metadata headers sent with it are ignored, as by AWS.
    s3.copy_object(Bucket=bucket, Key="dst-copy", CopySource={"Bucket": bucket, "Key": "src"},
                   Metadata=metadata_of_size(USER_METADATA_BYTES_MAX + 1))
    assert s3.head_object(Bucket=bucket, Key="dst-copy")["Metadata"] == {"a": "b"}


def test_header_value_and_section_limits_boto3(s3, bucket):
    expect_error(s3.put_object, "RequestHeaderSectionTooLarge", 400, Bucket=bucket, Key="big-value",
                 Body=b"x", Metadata={"k": "v" * (HEADER_VALUE_BYTES_MAX + 1)})
    assert not exists(s3, bucket, "big-value")
    # Five values of 7 KiB: none over the per-value bound, together over the section bound.
    expect_error(s3.put_object, "RequestHeaderSectionTooLarge", 400, Bucket=bucket,
                 Key="big-section", Body=b"x",
                 Metadata={f"k{i}": "v" * (7 * 1024) for i in range(5)})
    assert not exists(s3, bucket, "big-section")


def test_metadata_and_header_limits_raw_http(server, s3, bucket):
    meta = {f"x-amz-meta-{k}": v for k, v in metadata_of_size(USER_METADATA_BYTES_MAX, 4).items()}
    r = signed(server, "PUT", f"/{bucket}/raw-ok", meta, b"body")
    assert r.status_code == 200, r.text
    meta = {f"x-amz-meta-{k}": v for k, v in metadata_of_size(USER_METADATA_BYTES_MAX + 1, 4).items()}
    r = signed(server, "PUT", f"/{bucket}/raw-over", meta, b"body")
    assert (r.status_code, error_code(r)) == (400, "MetadataTooLarge"), r.text
    assert not exists(s3, bucket, "raw-over")

    # Non-metadata headers count too, signed or not, and on any operation.
    r = signed(server, "GET", f"/{bucket}/raw-ok",
               unsigned_headers={"x-padding": "p" * (HEADER_VALUE_BYTES_MAX + 1)})
    assert (r.status_code, error_code(r)) == (400, "RequestHeaderSectionTooLarge"), r.text
    padding = {f"x-padding-{i}": "p" * (7 * 1024) for i in range(5)}
    r = signed(server, "GET", f"/{bucket}/raw-ok", unsigned_headers=padding)
    assert (r.status_code, error_code(r)) == (400, "RequestHeaderSectionTooLarge"), r.text
    # Just under the bounds is served.
    padding = {f"x-padding-{i}": "p" * (6 * 1024) for i in range(3)}
    r = signed(server, "GET", f"/{bucket}/raw-ok",
               unsigned_headers={**padding, "x-one": "p" * HEADER_VALUE_BYTES_MAX})
    assert r.status_code == 200, r.text
    # Unsigned requests are refused for their size too (the limit is checked before access).
    r = requests.get(f"{server.endpoint}/{bucket}/raw-ok",
                     headers={"x-padding": "p" * (HEADER_VALUE_BYTES_MAX + 1)}, timeout=30)
    assert (r.status_code, error_code(r)) == (400, "RequestHeaderSectionTooLarge"), r.text


# ---------------------------------------------------------------- DeleteObjects integrity

def put_keys(s3, bucket: str, keys: list[str]) -> None:
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())


def client_with_headers(server, edit):
    """A boto3 client whose DeleteObjects headers `edit(headers, body)` changes before signing."""
    client = server.client()

    def before_sign(request, **_):
        edit(request.headers, request.body if isinstance(request.body, bytes) else b"")

    client.meta.events.register("before-sign.s3.DeleteObjects", before_sign)
    return client


def drop_checksums(headers) -> None:
    for name in list(headers.keys()):
        if name.lower().startswith("x-amz-checksum-") or name.lower() in (
                "x-amz-sdk-checksum-algorithm", "content-md5"):
            del headers[name]


def test_delete_objects_boto3_default_checksum_works(s3, bucket):
    put_keys(s3, bucket, ["a", "b"])
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "b"]
    assert not exists(s3, bucket, "a") and not exists(s3, bucket, "b")


def _wrong_crc32(headers, body):
    drop_checksums(headers)
    headers["x-amz-sdk-checksum-algorithm"] = "CRC32"
    headers["x-amz-checksum-crc32"] = checksum("crc32", body + b" ")


def _wrong_md5(headers, body):
    drop_checksums(headers)
    headers["Content-MD5"] = b64(hashlib.md5(body + b" ").digest())


def _malformed_md5(headers, body):
    drop_checksums(headers)
    headers["Content-MD5"] = "not-a-digest"


def _no_integrity_header(headers, body):
    drop_checksums(headers)


def _good_md5(headers, body):
    drop_checksums(headers)
    headers["Content-MD5"] = b64(hashlib.md5(body).digest())


@pytest.mark.parametrize("edit,code", [
    (_wrong_crc32, "BadDigest"),
    (_wrong_md5, "BadDigest"),
    (_malformed_md5, "InvalidDigest"),
    (_no_integrity_header, "InvalidRequest"),
])
def test_delete_objects_refused_deletes_nothing_boto3_issue_16(server, s3, bucket, edit, code):
    keys = ["x1", "x2"]
    put_keys(s3, bucket, keys)
    client = client_with_headers(server, edit)
    expect_error(client.delete_objects, code, 400, Bucket=bucket,
                 Delete={"Objects": [{"Key": k} for k in keys]})
    assert all(exists(s3, bucket, k) for k in keys)


def test_delete_objects_content_md5_only_boto3(server, s3, bucket):
    put_keys(s3, bucket, ["m1"])
    client = client_with_headers(server, _good_md5)
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "m1"}]})
    assert not exists(s3, bucket, "m1")


@pytest.mark.parametrize("headers_of,code", [
    (lambda body: {}, "InvalidRequest"),
    (lambda body: {"Content-MD5": b64(hashlib.md5(body + b"x").digest())}, "BadDigest"),
    (lambda body: {"Content-MD5": "AAAA"}, "InvalidDigest"),
    (lambda body: {"Content-MD5": "%%%%"}, "InvalidDigest"),
    (lambda body: {"x-amz-checksum-crc32": checksum("crc32", body + b"x")}, "BadDigest"),
    (lambda body: {"x-amz-checksum-crc32c": checksum("crc32c", body + b"x")}, "BadDigest"),
    (lambda body: {"x-amz-checksum-crc64nvme": checksum("crc64nvme", body + b"x")}, "BadDigest"),
    (lambda body: {"x-amz-checksum-sha1": checksum("sha1", body + b"x")}, "BadDigest"),
    (lambda body: {"x-amz-checksum-sha256": checksum("sha256", body + b"x")}, "BadDigest"),
    (lambda body: {"x-amz-sdk-checksum-algorithm": "SHA256",
                   "Content-MD5": b64(hashlib.md5(body).digest())}, "InvalidRequest"),
    (lambda body: {"Content-MD5": b64(hashlib.md5(body).digest()),
                   "x-amz-checksum-crc32": checksum("crc32", body + b"x")}, "BadDigest"),
])
def test_delete_objects_refused_deletes_nothing_raw_http_issue_16(server, s3, bucket, headers_of, code):
    keys = ["r1", "r2"]
    put_keys(s3, bucket, keys)
    body = delete_xml(keys)
    r = signed(server, "POST", f"/{bucket}?delete", headers_of(body), body)
    assert (r.status_code, error_code(r)) == (400, code), r.text
    assert all(exists(s3, bucket, k) for k in keys)


@pytest.mark.parametrize("algorithm", ["md5", "crc32", "crc32c", "crc64nvme", "sha1", "sha256"])
def test_delete_objects_with_matching_digest_raw_http(server, s3, bucket, algorithm):
    keys = ["g1", "g2"]
    put_keys(s3, bucket, keys)
    body = delete_xml(keys)
    if algorithm == "md5":
        headers = {"Content-MD5": b64(hashlib.md5(body).digest())}
    else:
        headers = {"x-amz-sdk-checksum-algorithm": algorithm.upper(),
                   f"x-amz-checksum-{algorithm}": checksum(algorithm, body)}
    r = signed(server, "POST", f"/{bucket}?delete", headers, body)
    assert r.status_code == 200, r.text
    assert r.text.count("<Deleted>") == 2, r.text
    assert not any(exists(s3, bucket, k) for k in keys)


def test_delete_objects_unsigned_is_refused(server, s3, bucket):
    put_keys(s3, bucket, ["u1"])
    body = delete_xml(["u1"])
    r = requests.post(f"{server.endpoint}/{bucket}?delete", data=body,
                      headers={"Content-MD5": b64(hashlib.md5(body).digest())}, timeout=30)
    assert (r.status_code, error_code(r)) == (403, "AccessDenied"), r.text
    assert exists(s3, bucket, "u1")


# ---------------------------------------------------------------- Range

BODY = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture
def ranged(s3, bucket):
    s3.put_object(Bucket=bucket, Key="r", Body=BODY)
    return bucket


@pytest.mark.parametrize("range_header", INVALID_RANGES)
def test_invalid_range_is_ignored_boto3_issue_16(s3, ranged, range_header):
    r = s3.get_object(Bucket=ranged, Key="r", Range=range_header)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Body"].read() == BODY
    assert "ContentRange" not in r
    h = s3.head_object(Bucket=ranged, Key="r", Range=range_header)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert h["ContentLength"] == len(BODY)


def test_valid_ranges_still_apply_boto3(s3, ranged):
    r = s3.get_object(Bucket=ranged, Key="r", Range="bytes=2-5")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["Body"].read() == BODY[2:6]
    expect_error(s3.get_object, "InvalidRange", 416, Bucket=ranged, Key="r", Range="bytes=1024-")
    expect_error(s3.get_object, "InvalidRange", 416, Bucket=ranged, Key="r", Range="bytes=5000-6000")


@pytest.mark.parametrize("range_header", INVALID_RANGES)
def test_invalid_range_is_ignored_raw_http(server, ranged, range_header):
    for method in ("GET", "HEAD"):
        # Signed, as SDKs sign Range.
        r = signed(server, method, f"/{ranged}/r", {"Range": range_header})
        assert r.status_code == 200, (method, r.text)
        assert int(r.headers["Content-Length"]) == len(BODY)
        assert "Content-Range" not in r.headers
        if method == "GET":
            assert r.content == BODY


def test_invalid_range_raw_http_edge_cases(server, s3, ranged):
    r = signed(server, "GET", f"/{ranged}/r", {"Range": "bytes=2000-3000"})
    assert (r.status_code, error_code(r)) == (416, "InvalidRange"), r.text
    r = signed(server, "GET", f"/{ranged}/r", {"Range": "bytes=1-2"})
    assert r.status_code == 206 and r.content == BODY[1:3]
    # A presigned URL with an invalid (unsigned) Range: the whole object.
    url = s3.generate_presigned_url("get_object", Params={"Bucket": ranged, "Key": "r"})
    r = requests.get(url, headers={"Range": "bytes=9-1"}, timeout=30)
    assert r.status_code == 200 and r.content == BODY, r.text
    # Without a signature an invalid Range changes nothing about the refusal.
    r = requests.get(f"{server.endpoint}/{ranged}/r", headers={"Range": "bytes=9-1"}, timeout=30)
    assert (r.status_code, error_code(r)) == (403, "AccessDenied"), r.text
    # A missing key with an invalid Range is still 404.
    r = signed(server, "GET", f"/{ranged}/missing", {"Range": "bytes=9-1"})
    assert (r.status_code, error_code(r)) == (404, "NoSuchKey"), r.text
