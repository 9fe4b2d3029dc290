"""Additional checksums (x-amz-checksum-*): sent as headers and as aws-chunked trailers,
verified before anything is stored, returned with ChecksumMode=ENABLED; multipart composite
and full-object checksums; GetObjectAttributes.

Reference values come from zlib, hashlib and awscrt (implementations independent of the
server's crc-fast and RustCrypto)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import zlib
from urllib.parse import urlsplit

import pytest
from awscrt import checksums as crt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, StrataServer, error_of, unique_bucket_name
from test_tls import make_certs_dir

MIB = 1 << 20
ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]


def digest(algorithm: str, data: bytes) -> bytes:
    if algorithm == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algorithm == "CRC32C":
        return crt.crc32c(data).to_bytes(4, "big")
    if algorithm == "CRC64NVME":
        return crt.crc64nvme(data).to_bytes(8, "big")
    return hashlib.new(algorithm.lower(), data).digest()


def b64(algorithm: str, data: bytes) -> str:
    return base64.b64encode(digest(algorithm, data)).decode()


def field(algorithm: str) -> str:
    return "Checksum" + algorithm


@pytest.fixture
def bucket(s3):
    name = unique_bucket_name("ck")
    s3.create_bucket(Bucket=name)
    return name


def expect_error(fn, code: str, status: int, **kw) -> None:
    with pytest.raises(ClientError) as exc:
        fn(**kw)
    assert error_of(exc.value) == (code, status), exc.value.response


def absent(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        return error_of(e)[1] == 404
    return False


def test_single_put_each_algorithm_stored_and_returned(s3, bucket):
    data = os.urandom(300 * 1024)
    for algorithm in ALGORITHMS:
        key = f"obj-{algorithm}"
        put = s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=algorithm)
        assert put[field(algorithm)] == b64(algorithm, data)
        assert put["ChecksumType"] == "FULL_OBJECT"
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got[field(algorithm)] == b64(algorithm, data)
        assert got["ChecksumType"] == "FULL_OBJECT"
        assert got["Body"].read() == data
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head[field(algorithm)] == b64(algorithm, data)
        # Without ChecksumMode, or for a range, no checksum is returned.
        assert field(algorithm) not in s3.head_object(Bucket=bucket, Key=key)
        ranged = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-9", ChecksumMode="ENABLED")
        assert field(algorithm) not in ranged


def test_object_without_checksum_gets_crc64nvme(s3, bucket):
    # A client that sends no checksum (Content-MD5 only) still gets S3's default CRC64NVME.
    data = b"no checksum sent"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3_plain = StrataClientWithoutChecksums(s3)
    s3_plain.put(bucket, "plain", data, md5)
    head = s3.head_object(Bucket=bucket, Key="plain", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == b64("CRC64NVME", data)
    assert head["ChecksumType"] == "FULL_OBJECT"


class StrataClientWithoutChecksums:
    """Sends a signed PUT with only Content-MD5, as older SDKs do."""

    def __init__(self, s3):
        self.endpoint = s3.meta.endpoint_url
        creds = s3._request_signer._credentials
        self.credentials = Credentials(creds.access_key, creds.secret_key)

    def put(self, bucket: str, key: str, data: bytes, md5: str) -> None:
        status, body = signed_request(self.endpoint, self.credentials, "PUT", f"/{bucket}/{key}",
                                      {"Content-MD5": md5}, data)
        assert status == 200, body


def signed_request(endpoint: str, credentials: Credentials, method: str, path: str,
                   headers: dict[str, str], body: bytes, payload_hash: str | None = None):
    url = endpoint + path
    headers = dict(headers)
    headers["X-Amz-Content-SHA256"] = payload_hash or hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, "s3", REGION).add_auth(req)
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def aws_chunked(data: bytes, trailer: str, value: str) -> bytes:
    """An aws-chunked body (STREAMING-UNSIGNED-PAYLOAD-TRAILER) with a checksum trailer."""
    chunks = b""
    for i in range(0, len(data), 64 * 1024):
        piece = data[i:i + 64 * 1024]
        chunks += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    return chunks + b"0\r\n" + f"{trailer}:{value}\r\n\r\n".encode()


def test_wrong_or_malformed_checksums_store_nothing(s3, bucket):
    data = os.urandom(200 * 1024)
    for algorithm in ALGORITHMS:
        key = f"bad-{algorithm}"
        kw = {field(algorithm): b64(algorithm, b"other")}
        expect_error(s3.put_object, "BadDigest", 400, Bucket=bucket, Key=key, Body=data, **kw)
        assert absent(s3, bucket, key)
        kw = {field(algorithm): "not-base64!"}
        expect_error(s3.put_object, "InvalidRequest", 400, Bucket=bucket, Key=key, Body=data, **kw)
        assert absent(s3, bucket, key)
    # An existing object is not touched by a failed overwrite.
    s3.put_object(Bucket=bucket, Key="keep", Body=b"original")
    expect_error(s3.put_object, "BadDigest", 400, Bucket=bucket, Key="keep", Body=data,
                 ChecksumSHA256=b64("SHA256", b"other"))
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"original"


def test_aws_chunked_trailer_checksums(s3, bucket):
    """The body and its checksum as current SDKs send them over HTTPS: aws-chunked with the
    checksum in a trailer. A wrong trailer stores nothing."""
    creds = s3._request_signer._credentials
    credentials = Credentials(creds.access_key, creds.secret_key)
    data = os.urandom(300 * 1024 + 7)
    for algorithm in ALGORITHMS:
        trailer = f"x-amz-checksum-{algorithm.lower()}"
        for value, want in [(b64(algorithm, b"other"), 400), (b64(algorithm, data), 200)]:
            body = aws_chunked(data, trailer, value)
            status, text = signed_request(
                s3.meta.endpoint_url, credentials, "PUT", f"/{bucket}/tr-{algorithm}",
                {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data)),
                 "X-Amz-Trailer": trailer, "X-Amz-Sdk-Checksum-Algorithm": algorithm},
                body, payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            assert status == want, text
            if want == 400:
                assert "<Code>BadDigest</Code>" in text
                assert absent(s3, bucket, f"tr-{algorithm}")
        got = s3.get_object(Bucket=bucket, Key=f"tr-{algorithm}", ChecksumMode="ENABLED")
        assert got[field(algorithm)] == b64(algorithm, data)
        assert got["Body"].read() == data
    # A trailer announced but not sent.
    body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
    status, text = signed_request(
        s3.meta.endpoint_url, credentials, "PUT", f"/{bucket}/no-trailer",
        {"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(len(data)),
         "X-Amz-Trailer": "x-amz-checksum-crc32"},
        body, payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert status == 400 and "<Code>InvalidRequest</Code>" in text, text
    assert absent(s3, bucket, "no-trailer")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    srv = StrataServer(tmp_path_factory.mktemp("ck-tls"),
                       certs_dir=make_certs_dir(tmp_path_factory.mktemp("ck-certs")))
    try:
        yield srv.start()
    finally:
        srv.stop()
        srv.kill()


def test_boto3_defaults_over_https_use_trailers(tls_server):
    """boto3's default integrity protection over HTTPS: CRC32 in an aws-chunked trailer for
    PUTs and parts (upload_file), validated by boto3 on GET."""
    s3 = tls_server.client()
    name = unique_bucket_name("cktls")
    s3.create_bucket(Bucket=name)
    trailers: list[str] = []

    def capture(request, **_):
        trailers.append(request.headers.get("x-amz-trailer", b"").__str__())

    s3.meta.events.register("before-send.s3.PutObject", capture)
    s3.meta.events.register("before-send.s3.UploadPart", capture)
    data = os.urandom(3 * MIB + 11)
    put = s3.put_object(Bucket=name, Key="single", Body=data)
    assert "x-amz-checksum-crc32" in trailers[0], trailers
    assert put["ChecksumCRC32"] == b64("CRC32", data)
    got = s3.get_object(Bucket=name, Key="single", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == b64("CRC32", data)
    assert got["Body"].read() == data

    from boto3.s3.transfer import TransferConfig
    big = os.urandom(12 * MIB + 5)
    path = tls_server.workdir / "big.bin"
    path.write_bytes(big)
    s3.upload_file(str(path), name, "multi",
                   Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    assert len(trailers) == 4 and all("x-amz-checksum-crc32" in t for t in trailers), trailers
    head = s3.head_object(Bucket=name, Key="multi", ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"')
    assert head["ChecksumCRC32"].endswith("-3") and head["ChecksumType"] == "COMPOSITE"
    assert head["ContentLength"] == len(big)
    assert s3.get_object(Bucket=name, Key="multi")["Body"].read() == big


def upload_parts(s3, bucket: str, key: str, parts: list[bytes], algorithm: str | None,
                 **create_kw) -> tuple[str, list[dict]]:
    kw = dict(create_kw)
    if algorithm:
        kw["ChecksumAlgorithm"] = algorithm
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)
    if algorithm:
        assert upload["ChecksumAlgorithm"] == algorithm
    listed = []
    for number, part in enumerate(parts, start=1):
        part_kw = {"ChecksumAlgorithm": algorithm} if algorithm else {}
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number,
                           Body=part, **part_kw)
        entry = {"PartNumber": number, "ETag": r["ETag"]}
        if algorithm:
            assert r[field(algorithm)] == b64(algorithm, part)
            entry[field(algorithm)] = r[field(algorithm)]
        listed.append(entry)
    return upload["UploadId"], listed


def test_multipart_composite_checksum_and_object_attributes(s3, bucket):
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(MIB // 3)]
    whole = b"".join(parts)
    for algorithm in ["SHA256", "SHA1", "CRC32", "CRC32C"]:
        key = f"composite-{algorithm}"
        upload_id, listed = upload_parts(s3, bucket, key, parts, algorithm)
        page = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
        assert page["ChecksumAlgorithm"] == algorithm
        assert page["ChecksumType"] == "COMPOSITE"
        assert [p[field(algorithm)] for p in page["Parts"]] == [b64(algorithm, p) for p in parts]
        # Composite uploads need every part's checksum in the completion.
        missing = [dict(listed[0])] + [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]}
                                       for p in listed[1:]]
        expect_error(s3.complete_multipart_upload, "InvalidRequest", 400, Bucket=bucket, Key=key,
                     UploadId=upload_id, MultipartUpload={"Parts": missing})
        # A listed checksum that is not the part's.
        wrong = [dict(p) for p in listed]
        wrong[1][field(algorithm)] = b64(algorithm, b"other")
        expect_error(s3.complete_multipart_upload, "InvalidPart", 400, Bucket=bucket, Key=key,
                     UploadId=upload_id, MultipartUpload={"Parts": wrong})
        composite = base64.b64encode(
            hashlib.new(algorithm.lower(), b"".join(digest(algorithm, p) for p in parts)).digest()
            if algorithm.startswith("SHA") else
            digest(algorithm, b"".join(digest(algorithm, p) for p in parts))).decode()
        # The whole object's composite value, sent with the completion, must name 3 parts.
        expect_error(s3.complete_multipart_upload, "BadDigest", 400, Bucket=bucket, Key=key,
                     UploadId=upload_id, MultipartUpload={"Parts": listed},
                     **{field(algorithm): f"{composite}-2"})
        done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                            MultipartUpload={"Parts": listed},
                                            **{field(algorithm): f"{composite}-3"})
        assert done[field(algorithm)] == f"{composite}-3"
        assert done["ChecksumType"] == "COMPOSITE"
        # Completing again with the same parts answers the same object.
        again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                             MultipartUpload={"Parts": listed})
        assert (again["ETag"], again[field(algorithm)]) == (done["ETag"], done[field(algorithm)])
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head[field(algorithm)] == f"{composite}-3"
        assert head["ChecksumType"] == "COMPOSITE"
        # With partNumber, the part's own checksum.
        part2 = s3.head_object(Bucket=bucket, Key=key, PartNumber=2, ChecksumMode="ENABLED")
        assert part2[field(algorithm)] == b64(algorithm, parts[1])
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == whole

        attrs = s3.get_object_attributes(
            Bucket=bucket, Key=key, MaxParts=2,
            ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"])
        assert attrs["ETag"].strip('"') == done["ETag"].strip('"')
        assert attrs["ObjectSize"] == len(whole)
        assert attrs["StorageClass"] == "STANDARD"
        assert attrs["Checksum"][field(algorithm)] == f"{composite}-3"
        assert attrs["Checksum"]["ChecksumType"] == "COMPOSITE"
        op = attrs["ObjectParts"]
        assert (op["TotalPartsCount"], op["IsTruncated"], op["MaxParts"]) == (3, True, 2)
        assert [(p["PartNumber"], p["Size"], p[field(algorithm)]) for p in op["Parts"]] == [
            (1, len(parts[0]), b64(algorithm, parts[0])), (2, len(parts[1]), b64(algorithm, parts[1]))]
        rest = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["ObjectParts"],
                                        PartNumberMarker=op["NextPartNumberMarker"])
        assert [p["PartNumber"] for p in rest["ObjectParts"]["Parts"]] == [3]
        assert rest["ObjectParts"]["IsTruncated"] is False
        assert "ETag" not in rest and "ObjectSize" not in rest


def test_multipart_full_object_checksum(s3, bucket):
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB + 3), os.urandom(1000)]
    whole = b"".join(parts)
    for algorithm in ["CRC32", "CRC32C", "CRC64NVME"]:
        key = f"full-{algorithm}"
        upload_id, listed = upload_parts(s3, bucket, key, parts, algorithm,
                                         ChecksumType="FULL_OBJECT")
        # The whole object's checksum sent with the completion is checked.
        expect_error(s3.complete_multipart_upload, "BadDigest", 400, Bucket=bucket, Key=key,
                     UploadId=upload_id, MultipartUpload={"Parts": listed},
                     ChecksumType="FULL_OBJECT", **{field(algorithm): b64(algorithm, b"x")})
        done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                            MultipartUpload={"Parts": listed},
                                            ChecksumType="FULL_OBJECT",
                                            **{field(algorithm): b64(algorithm, whole)})
        assert done[field(algorithm)] == b64(algorithm, whole)
        assert done["ChecksumType"] == "FULL_OBJECT"
        # boto3 validates a full-object checksum while reading.
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got[field(algorithm)] == b64(algorithm, whole)
        assert got["Body"].read() == whole
    # SHA cannot be full-object; CRC64NVME cannot be composite.
    expect_error(s3.create_multipart_upload, "InvalidRequest", 400, Bucket=bucket, Key="x",
                 ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT")
    expect_error(s3.create_multipart_upload, "InvalidRequest", 400, Bucket=bucket, Key="x",
                 ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE")


def test_multipart_without_algorithm_gets_full_object_crc64nvme(s3, bucket):
    parts = [os.urandom(5 * MIB), os.urandom(77)]
    whole = b"".join(parts)
    upload_id, listed = upload_parts(s3, bucket, "default", parts, None)
    s3.complete_multipart_upload(Bucket=bucket, Key="default", UploadId=upload_id,
                                 MultipartUpload={"Parts": listed})
    head = s3.head_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == b64("CRC64NVME", whole)
    assert head["ChecksumType"] == "FULL_OBJECT"


def test_part_with_another_algorithm_is_refused(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mix", ChecksumAlgorithm="CRC32")
    expect_error(s3.upload_part, "InvalidRequest", 400, Bucket=bucket, Key="mix",
                 UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024,
                 ChecksumAlgorithm="SHA256")
    assert s3.list_parts(Bucket=bucket, Key="mix", UploadId=upload["UploadId"]).get("Parts", []) == []


def test_copy_keeps_or_changes_the_algorithm(s3, bucket):
    data = os.urandom(2 * MIB + 1)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ChecksumAlgorithm="SHA256")
    kept = s3.copy_object(Bucket=bucket, Key="kept", CopySource={"Bucket": bucket, "Key": "src"})
    assert kept["CopyObjectResult"]["ChecksumSHA256"] == b64("SHA256", data)
    changed = s3.copy_object(Bucket=bucket, Key="changed", ChecksumAlgorithm="CRC32C",
                             CopySource={"Bucket": bucket, "Key": "src"})
    assert changed["CopyObjectResult"]["ChecksumCRC32C"] == b64("CRC32C", data)
    head = s3.head_object(Bucket=bucket, Key="changed", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == b64("CRC32C", data)
    # Copying onto itself to change only the algorithm is allowed.
    s3.copy_object(Bucket=bucket, Key="src", ChecksumAlgorithm="CRC32",
                   CopySource={"Bucket": bucket, "Key": "src"})
    head = s3.head_object(Bucket=bucket, Key="src", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == b64("CRC32", data)


def test_get_object_attributes_errors_and_single_part(s3, bucket):
    s3.put_object(Bucket=bucket, Key="one", Body=b"hello", ChecksumAlgorithm="CRC32")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="one",
                                     ObjectAttributes=["ObjectParts", "Checksum", "ObjectSize"])
    assert "ObjectParts" not in attrs  # single PUTs have no parts to list
    assert attrs["Checksum"] == {"ChecksumCRC32": b64("CRC32", b"hello"), "ChecksumType": "FULL_OBJECT"}
    assert attrs["ObjectSize"] == 5
    expect_error(s3.get_object_attributes, "NoSuchKey", 404, Bucket=bucket, Key="missing",
                 ObjectAttributes=["ETag"])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_aws_cli_cp_with_checksum_algorithm(aws, s3, tmp_path, algorithm):
    name = unique_bucket_name("ckcli")
    s3.create_bucket(Bucket=name)
    src = tmp_path / "big.bin"
    data = os.urandom(100 * MIB)
    src.write_bytes(data)
    aws("s3", "cp", str(src), f"s3://{name}/big", "--checksum-algorithm", algorithm)
    head = json.loads(aws("s3api", "head-object", "--bucket", name, "--key", "big",
                          "--checksum-mode", "ENABLED").stdout)
    assert head["ContentLength"] == len(data)
    value = head[field(algorithm)]
    if head["ChecksumType"] == "FULL_OBJECT":
        assert value == b64(algorithm, data)
    else:
        assert value.endswith("-" + head["ETag"].strip('"').split("-")[1])
    dst = tmp_path / "back.bin"
    aws("s3", "cp", f"s3://{name}/big", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()
