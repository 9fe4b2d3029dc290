"""Server-side encryption (SSE-S3, SSE-KMS, SSE-C) against real `strata` processes, with boto3
and the aws CLI.

What is checked: every mode round-trips objects of sizes around the 64 KiB package and the 1 MiB
erasure block (inline, single-block and multi-block objects), single PUT and multipart, with the
response headers and ETags AWS gives each mode; range reads starting and ending just before, at
and just after package and part boundaries are byte-compared; copies between every pair of
modes (and to a new SSE-C key), and UploadPartCopy between modes; SSE-C's refusals (no key,
wrong key, a key for an unencrypted object, a bad key MD5, plain HTTP without the operator's
consent); bucket default encryption (Put/Get/DeleteBucketEncryption) and the server's
encrypt-everything setting; no KMS: SSE-S3 refused with 501; after a restart encrypted objects
still read; sealed bytes moved from one version to another make the GET fail (never return the
other version's bytes); and on the drives, no file holds a plaintext marker written with SSE,
while the same scan finds it for an unencrypted object (so the scan can fail).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import StrataServer, error_of, make_s3_client, run_cli, unique_bucket_name

KIB = 1024
MIB = 1024 * KIB
PACKAGE = 64 * KIB - 16  # plaintext bytes of a sealed package (64 KiB with its tag)

CUSTOMER_KEY = bytes(range(32))
OTHER_CUSTOMER_KEY = bytes(range(1, 33))


def keyring(path: Path) -> Path:
    """A keyring with two keys: the default one and `app-key` (two versions)."""
    keys = {
        "strata-default": [base64.b64encode(os.urandom(32)).decode()],
        "app-key": [base64.b64encode(os.urandom(32)).decode(),
                    base64.b64encode(os.urandom(32)).decode()],
    }
    path.write_text(json.dumps({"default": "strata-default", "keys": keys}))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def sse_server(tmp_module):
    ring = keyring(tmp_module / "keyring.json")
    srv = StrataServer(tmp_module / "sse-server",
                       env={"STRATA_KMS_KEYRING": str(ring), "STRATA_SSE_C_ALLOW_HTTP": "true"})
    try:
        yield srv.start()
    finally:
        srv.stop()
        srv.kill()


@pytest.fixture(scope="module")
def c(sse_server):
    return sse_server.client()


@pytest.fixture
def b(c):
    name = unique_bucket_name("sse")
    c.create_bucket(Bucket=name)
    yield name
    for page in c.get_paginator("list_object_versions").paginate(Bucket=name):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            c.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    for u in c.list_multipart_uploads(Bucket=name).get("Uploads", []):
        c.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    c.delete_bucket(Bucket=name)


def customer(key: bytes = CUSTOMER_KEY, prefix: str = "SSECustomer") -> dict:
    """boto3's SSE-C arguments (boto3 computes the key MD5 itself)."""
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": key}


MODES = {
    "none": {},
    "sse-s3": {"ServerSideEncryption": "AES256"},
    "sse-kms-default": {"ServerSideEncryption": "aws:kms"},
    "sse-kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "app-key",
                "SSEKMSEncryptionContext": base64.b64encode(b'{"team":"data"}').decode()},
    "sse-c": customer(),
}


def read_args(mode: str) -> dict:
    return customer() if mode == "sse-c" else {}


def data(n: int, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed) % 251 for i in range(n)) if n < 4 * MIB else \
        (bytes(range(251)) * (n // 251 + 1))[seed:seed + n]


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_round_trips_objects_around_package_and_block_sizes(c, b, mode):
    # Around a package, a sealed block (16 packages) and a MiB.
    for n in [0, 1, PACKAGE - 1, PACKAGE, PACKAGE + 1, 16 * PACKAGE - 1, 16 * PACKAGE,
              16 * PACKAGE + 1, MIB - 1, MIB, MIB + 17, 3 * MIB + 5]:
        body = data(n, seed=n % 7)
        key = f"obj-{n}"
        put = c.put_object(Bucket=b, Key=key, Body=body, **MODES[mode])
        got = c.get_object(Bucket=b, Key=key, **read_args(mode))
        assert got["Body"].read() == body, f"{mode} {n}"
        assert got["ContentLength"] == n
        head = c.head_object(Bucket=b, Key=key, **read_args(mode))
        assert head["ContentLength"] == n
        md5 = hashlib.md5(body).hexdigest()
        if mode in ("none", "sse-s3"):
            assert put["ETag"] == f'"{md5}"', "SSE-S3 ETags are the content's MD5"
        else:
            assert put["ETag"] != f'"{md5}"', "SSE-KMS and SSE-C ETags are not the MD5"
        assert head["ETag"] == put["ETag"] == got["ETag"]
        for resp in (put, got, head):
            if mode == "sse-s3":
                assert resp["ServerSideEncryption"] == "AES256"
            elif mode.startswith("sse-kms"):
                assert resp["ServerSideEncryption"] == "aws:kms"
                if mode == "sse-kms":
                    assert resp["SSEKMSKeyId"] == "app-key"
                else:
                    assert resp["SSEKMSKeyId"].endswith(":key/strata-default")
            elif mode == "sse-c":
                assert resp["SSECustomerAlgorithm"] == "AES256"
                assert resp["SSECustomerKeyMD5"] == base64.b64encode(
                    hashlib.md5(CUSTOMER_KEY).digest()).decode()
            else:
                assert "ServerSideEncryption" not in resp
    listed = {o["Key"]: o["Size"] for o in c.list_objects_v2(Bucket=b)["Contents"]}
    assert listed[f"obj-{PACKAGE + 1}"] == PACKAGE + 1 and listed["obj-0"] == 0, \
        "listings report content sizes"


def boundary_ranges(size: int, part_sizes: list[int]) -> list[tuple[int, int]]:
    """(first, last) byte ranges starting and ending around package and part boundaries."""
    points = {0, size - 1}
    start = 0
    for p in part_sizes:
        for edge in (start, start + p):
            points |= {edge - 1, edge, edge + 1}
        for k in range(1, p // PACKAGE + 1):
            edge = start + k * PACKAGE
            points |= {edge - 1, edge, edge + 1}
        start += p
    points = sorted(x for x in points if 0 <= x < size)
    ranges = []
    for i, first in enumerate(points[::3]):
        for last in (first, first + 1, first + PACKAGE, first + PACKAGE + 1, size - 1,
                     points[min(len(points) - 1, i * 3 + 5)]):
            if first <= last < size:
                ranges.append((first, last))
    return ranges


@pytest.mark.parametrize("mode", ["sse-kms", "sse-c"])
def test_range_reads_around_package_and_part_boundaries(c, b, mode):
    # A single PUT over several packages and erasure blocks.
    single = data(2 * MIB + 3 * PACKAGE + 123, seed=3)
    c.put_object(Bucket=b, Key="single", Body=single, **MODES[mode])
    # A multipart object whose parts do not end on package boundaries.
    part_sizes = [5 * MIB + 100, 5 * MIB + PACKAGE - 1, MIB + 7]
    parts_data = [data(n, seed=i) for i, n in enumerate(part_sizes)]
    whole = b"".join(parts_data)
    up = c.create_multipart_upload(Bucket=b, Key="multi", **MODES[mode])
    done = []
    for i, chunk in enumerate(parts_data, start=1):
        r = c.upload_part(Bucket=b, Key="multi", UploadId=up["UploadId"], PartNumber=i, Body=chunk,
                          **read_args(mode))
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    listed = c.list_parts(Bucket=b, Key="multi", UploadId=up["UploadId"])["Parts"]
    assert [p["Size"] for p in listed] == part_sizes
    c.complete_multipart_upload(Bucket=b, Key="multi", UploadId=up["UploadId"],
                                MultipartUpload={"Parts": done})
    for key, body, sizes in (("single", single, [len(single)]), ("multi", whole, part_sizes)):
        size = len(body)
        assert c.get_object(Bucket=b, Key=key, **read_args(mode))["Body"].read() == body
        for first, last in boundary_ranges(size, sizes):
            got = c.get_object(Bucket=b, Key=key, Range=f"bytes={first}-{last}", **read_args(mode))
            assert got["Body"].read() == body[first:last + 1], f"{key} {first}-{last}"
            assert got["ContentRange"] == f"bytes {first}-{last}/{size}"
        got = c.get_object(Bucket=b, Key=key, Range="bytes=-70000", **read_args(mode))
        assert got["Body"].read() == body[-70000:]
        got = c.get_object(Bucket=b, Key=key, Range=f"bytes={size - PACKAGE - 3}-", **read_args(mode))
        assert got["Body"].read() == body[size - PACKAGE - 3:]
    # Whole parts by number.
    start = 0
    for i, n in enumerate(part_sizes, start=1):
        got = c.get_object(Bucket=b, Key="multi", PartNumber=i, **read_args(mode))
        assert got["Body"].read() == whole[start:start + n]
        assert got["PartsCount"] == 3
        start += n
    head = c.head_object(Bucket=b, Key="multi", **read_args(mode))
    assert head["ContentLength"] == len(whole)
    assert head["ETag"].endswith('-3"')


def test_sse_c_uploads_need_their_key_on_every_part(c, b):
    up = c.create_multipart_upload(Bucket=b, Key="k", **customer())
    with pytest.raises(ClientError) as e:
        c.upload_part(Bucket=b, Key="k", UploadId=up["UploadId"], PartNumber=1, Body=b"x")
    assert error_of(e.value) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        c.upload_part(Bucket=b, Key="k", UploadId=up["UploadId"], PartNumber=1, Body=b"x",
                      **customer(OTHER_CUSTOMER_KEY))
    assert error_of(e.value) == ("AccessDenied", 403)
    # And a plain upload's parts take no key.
    up2 = c.create_multipart_upload(Bucket=b, Key="plain")
    with pytest.raises(ClientError) as e:
        c.upload_part(Bucket=b, Key="plain", UploadId=up2["UploadId"], PartNumber=1, Body=b"x",
                      **customer())
    assert error_of(e.value) == ("InvalidRequest", 400)


COPY_MODES = ["none", "sse-s3", "sse-kms", "sse-c", "sse-c-new-key"]


def write_args(mode: str) -> dict:
    if mode == "sse-c-new-key":
        return customer(OTHER_CUSTOMER_KEY)
    return MODES[mode]


def get_args(mode: str) -> dict:
    if mode == "sse-c-new-key":
        return customer(OTHER_CUSTOMER_KEY)
    return read_args(mode)


def copy_source_args(mode: str) -> dict:
    if mode == "sse-c":
        return customer(prefix="CopySourceSSECustomer")
    if mode == "sse-c-new-key":
        return customer(OTHER_CUSTOMER_KEY, prefix="CopySourceSSECustomer")
    return {}


def test_copies_between_every_pair_of_modes(c, b):
    body = data(PACKAGE * 3 + 999, seed=9)
    for src_mode in COPY_MODES:
        c.put_object(Bucket=b, Key=f"src-{src_mode}", Body=body, **write_args(src_mode))
    for src_mode in COPY_MODES:
        for dst_mode in COPY_MODES:
            dst = f"dst-{src_mode}-{dst_mode}"
            r = c.copy_object(Bucket=b, Key=dst, CopySource={"Bucket": b, "Key": f"src-{src_mode}"},
                              **write_args(dst_mode), **copy_source_args(src_mode))
            if dst_mode == "sse-kms":
                assert r["ServerSideEncryption"] == "aws:kms"
            got = c.get_object(Bucket=b, Key=dst, **get_args(dst_mode))
            assert got["Body"].read() == body, f"{src_mode} -> {dst_mode}"
            assert got["ContentLength"] == len(body)
    # An SSE-C source needs its key to be copied; a wrong one is refused.
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=b, Key="x", CopySource={"Bucket": b, "Key": "src-sse-c"})
    assert error_of(e.value) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        c.copy_object(Bucket=b, Key="x", CopySource={"Bucket": b, "Key": "src-sse-c"},
                      **copy_source_args("sse-c-new-key"))
    assert error_of(e.value) == ("AccessDenied", 403)
    # Re-encrypting an object in place with a new customer key.
    c.copy_object(Bucket=b, Key="src-sse-c", CopySource={"Bucket": b, "Key": "src-sse-c"},
                  **copy_source_args("sse-c"), **customer(OTHER_CUSTOMER_KEY))
    assert c.get_object(Bucket=b, Key="src-sse-c", **customer(OTHER_CUSTOMER_KEY))["Body"].read() == body
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=b, Key="src-sse-c", **customer())
    assert error_of(e.value)[1] == 403


def test_upload_part_copy_between_modes(c, b):
    first = data(5 * MIB + 11, seed=1)
    second = data(PACKAGE * 2 + 5, seed=2)
    c.put_object(Bucket=b, Key="src-c", Body=first, **customer())
    c.put_object(Bucket=b, Key="src-s3", Body=second, ServerSideEncryption="AES256")
    up = c.create_multipart_upload(Bucket=b, Key="assembled", ServerSideEncryption="aws:kms",
                                   SSEKMSKeyId="app-key")
    p1 = c.upload_part_copy(Bucket=b, Key="assembled", UploadId=up["UploadId"], PartNumber=1,
                            CopySource={"Bucket": b, "Key": "src-c"},
                            **customer(prefix="CopySourceSSECustomer"))
    # A range of the second source, starting inside a package.
    p2 = c.upload_part_copy(Bucket=b, Key="assembled", UploadId=up["UploadId"], PartNumber=2,
                            CopySource={"Bucket": b, "Key": "src-s3"},
                            CopySourceRange=f"bytes=100-{PACKAGE + 200}")
    c.complete_multipart_upload(
        Bucket=b, Key="assembled", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                                   {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    got = c.get_object(Bucket=b, Key="assembled")
    assert got["ServerSideEncryption"] == "aws:kms"
    assert got["Body"].read() == first + second[100:PACKAGE + 201]


def test_sse_c_refusals(c, b):
    c.put_object(Bucket=b, Key="c", Body=b"secret", **customer())
    c.put_object(Bucket=b, Key="plain", Body=b"open")
    for call in (lambda **kw: c.get_object(Bucket=b, Key="c", **kw),
                 lambda **kw: c.head_object(Bucket=b, Key="c", **kw)):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e.value) == ("InvalidRequest", 400) or error_of(e.value)[1] == 400
        with pytest.raises(ClientError) as e:
            call(**customer(OTHER_CUSTOMER_KEY))
        assert error_of(e.value)[1] == 403
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=b, Key="plain", **customer())
    assert error_of(e.value) == ("InvalidRequest", 400)
    # A key MD5 that is not the key's (given explicitly, boto3 sends the key as it is).
    bad_md5 = base64.b64encode(hashlib.md5(OTHER_CUSTOMER_KEY).digest()).decode()
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="bad", Body=b"x", SSECustomerAlgorithm="AES256",
                     SSECustomerKey=base64.b64encode(CUSTOMER_KEY).decode(), SSECustomerKeyMD5=bad_md5)
    assert error_of(e.value) == ("InvalidArgument", 400)
    # Two modes at once.
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="both", Body=b"x", ServerSideEncryption="AES256", **customer())
    assert error_of(e.value) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms",
                     SSEKMSKeyId="no-such-key")
    assert error_of(e.value) == ("KMS.NotFoundException", 400)
    # A key id no backend could hold is the same 400, not a server error.
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/no such")
    assert error_of(e.value) == ("KMS.NotFoundException", 400)
    # Dual-layer SSE is not offered (rather than stored as plain aws:kms).
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=b, Key="k", Body=b"x", ServerSideEncryption="aws:kms:dsse")
    assert error_of(e.value) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        c.get_object_attributes(Bucket=b, Key="c", ObjectAttributes=["ObjectSize"])
    assert error_of(e.value) == ("InvalidRequest", 400)
    # botocore does not encode SSE-C keys for this call: give the key and its MD5 in base64.
    attrs = c.get_object_attributes(
        Bucket=b, Key="c", ObjectAttributes=["ObjectSize"], SSECustomerAlgorithm="AES256",
        SSECustomerKey=base64.b64encode(CUSTOMER_KEY).decode(),
        SSECustomerKeyMD5=base64.b64encode(hashlib.md5(CUSTOMER_KEY).digest()).decode())
    assert attrs["ObjectSize"] == len(b"secret")


def test_bucket_default_encryption(c, b):
    with pytest.raises(ClientError) as e:
        c.get_bucket_encryption(Bucket=b)
    assert error_of(e.value) == ("ServerSideEncryptionConfigurationNotFoundError", 404)
    c.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "app-key"},
         "BucketKeyEnabled": True}]})
    got = c.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert got["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                         "KMSMasterKeyID": "app-key"}
    assert got["BucketKeyEnabled"] is True
    put = c.put_object(Bucket=b, Key="defaulted", Body=b"abc")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "app-key"
    assert put["BucketKeyEnabled"] is True
    # The request's own encryption wins over the default.
    put = c.put_object(Bucket=b, Key="own", Body=b"abc", ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    up = c.create_multipart_upload(Bucket=b, Key="mp")
    assert up["ServerSideEncryption"] == "aws:kms"
    c.abort_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"])
    c.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert c.put_object(Bucket=b, Key="s3", Body=b"abc")["ServerSideEncryption"] == "AES256"
    with pytest.raises(ClientError) as e:
        c.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256", "KMSMasterKeyID": "k"}}]})
    assert error_of(e.value) == ("InvalidArgument", 400)
    c.delete_bucket_encryption(Bucket=b)
    assert "ServerSideEncryption" not in c.put_object(Bucket=b, Key="after", Body=b"abc")
    assert c.get_object(Bucket=b, Key="defaulted")["Body"].read() == b"abc"


def test_aws_cli_encrypts_uploads_and_downloads(sse_server, c, b, tmp_path):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=sse_server.access_key,
               AWS_SECRET_ACCESS_KEY=sse_server.secret_key, AWS_DEFAULT_REGION=sse_server.region,
               AWS_CONFIG_FILE=str(tmp_path / "cfg"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "creds"))
    src = tmp_path / "src.bin"
    body = data(9 * MIB + 3, seed=4)  # over the CLI's multipart threshold
    src.write_bytes(body)
    key_file = tmp_path / "key.bin"
    key_file.write_bytes(CUSTOMER_KEY)
    base = ["aws", "--endpoint-url", sse_server.endpoint, "s3", "cp"]
    for key, args in (("s3", ["--sse", "AES256"]),
                      ("kms", ["--sse", "aws:kms", "--sse-kms-key-id", "app-key"]),
                      ("c", ["--sse-c", "AES256", "--sse-c-key", f"fileb://{key_file}"])):
        run_cli(base + [str(src), f"s3://{b}/{key}", *args], env)
        out = tmp_path / f"out-{key}"
        down = ["--sse-c", "AES256", "--sse-c-key", f"fileb://{key_file}"] if key == "c" else []
        run_cli(base + [f"s3://{b}/{key}", str(out), *down], env)
        assert out.read_bytes() == body, key
    assert c.head_object(Bucket=b, Key="kms")["ServerSideEncryption"] == "aws:kms"
    assert c.head_object(Bucket=b, Key="s3")["ServerSideEncryption"] == "AES256"


def data_dirs(drives: list[Path]) -> set[str]:
    return {p.name for d in drives for p in (d / "data").glob("*/*") if p.is_dir()}


def test_sealed_bytes_moved_between_versions_fail_to_open(sse_server, c, b):
    c.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    size = 2 * MIB + 5  # not inline: part files on the drives
    before = data_dirs(sse_server.drives)
    v1 = c.put_object(Bucket=b, Key="k", Body=data(size, seed=1), ServerSideEncryption="AES256")
    mid = data_dirs(sse_server.drives)
    c.put_object(Bucket=b, Key="k", Body=data(size, seed=2), ServerSideEncryption="AES256")
    after = data_dirs(sse_server.drives)
    (dir1,) = mid - before
    (dir2,) = after - mid
    # Version 1's record now points at version 2's sealed bytes (valid erasure and bitrot
    # frames, the same shard on each drive): only the encryption can tell.
    for drive in sse_server.drives:
        d1 = drive / "data" / dir1[:2] / dir1
        d2 = drive / "data" / dir2[:2] / dir2
        shutil.copyfile(d2 / "part.1", d1 / "part.1")
    # The first package fails before the response starts: an error status, no bytes.
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=b, Key="k", VersionId=v1["VersionId"])
    assert error_of(e.value)[1] == 500
    # A range starting past the first package fails the same way.
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=b, Key="k", VersionId=v1["VersionId"], Range=f"bytes={MIB}-{MIB + 10}")
    assert error_of(e.value)[1] == 500
    # Version 2, untouched, still reads.
    assert c.get_object(Bucket=b, Key="k")["Body"].read() == data(size, seed=2)


MARKER = b"STRATA-PLAINTEXT-MARKER-7f3a9c"


def files_containing(root: Path, needle: bytes) -> list[Path]:
    found = []
    for p in root.rglob("*"):
        if p.is_file():
            if needle in p.read_bytes():
                found.append(p)
    return found


def test_no_plaintext_on_the_drives(tmp_path):
    """A server of its own: after writing with each mode (inline, large, multipart) and
    stopping it, no file on any drive holds the marker; the unencrypted control does."""
    ring = keyring(tmp_path / "keyring.json")
    srv = StrataServer(tmp_path / "scan", env={"STRATA_KMS_KEYRING": str(ring),
                                                "STRATA_SSE_C_ALLOW_HTTP": "true"})
    srv.start()
    try:
        c = srv.client()
        c.create_bucket(Bucket="scan")
        small = MARKER * 10
        large = MARKER * (3 * MIB // len(MARKER))
        for mode in ("sse-s3", "sse-kms", "sse-c"):
            c.put_object(Bucket="scan", Key=f"small-{mode}", Body=small, **MODES[mode])
            c.put_object(Bucket="scan", Key=f"large-{mode}", Body=large, **MODES[mode])
            up = c.create_multipart_upload(Bucket="scan", Key=f"mp-{mode}", **MODES[mode])
            part = c.upload_part(Bucket="scan", Key=f"mp-{mode}", UploadId=up["UploadId"],
                                 PartNumber=1, Body=large, **read_args(mode))
            c.complete_multipart_upload(Bucket="scan", Key=f"mp-{mode}", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
            assert c.get_object(Bucket="scan", Key=f"small-{mode}", **read_args(mode))["Body"].read() == small
        srv.stop()
        for drive in srv.drives:
            assert files_containing(drive, MARKER) == [], "plaintext found on a drive"
        srv.start()
        c = srv.client()
        c.put_object(Bucket="scan", Key="control", Body=large)
        srv.stop()
        assert any(files_containing(d, MARKER) for d in srv.drives), "the scan cannot find plaintext"
        # And everything still reads after the restarts.
        srv.start()
        c = srv.client()
        for mode in ("sse-s3", "sse-kms", "sse-c"):
            assert c.get_object(Bucket="scan", Key=f"mp-{mode}", **read_args(mode))["Body"].read() == large
    finally:
        srv.stop()
        srv.kill()


def test_without_a_kms_sse_s3_is_refused_and_sse_c_needs_tls(server, s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256")
    assert error_of(e.value) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert error_of(e.value) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", **customer())
    assert error_of(e.value) == ("InvalidRequest", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")


def test_encrypt_everything_setting(tmp_path):
    key = base64.b64encode(os.urandom(32)).decode()
    srv = StrataServer(tmp_path / "auto", env={"STRATA_KMS_SECRET_KEY": f"only-key:{key}",
                                                "STRATA_SSE_AUTO": "true"})
    srv.start()
    try:
        c = srv.client()
        c.create_bucket(Bucket="auto")
        put = c.put_object(Bucket="auto", Key="k", Body=b"hello")
        assert put["ServerSideEncryption"] == "AES256"
        assert c.get_object(Bucket="auto", Key="k")["Body"].read() == b"hello"
        # SSE-C is still the client's choice (here refused: plain HTTP without consent).
        with pytest.raises(ClientError) as e:
            c.put_object(Bucket="auto", Key="c", Body=b"x", **customer())
        assert error_of(e.value) == ("InvalidRequest", 400)
    finally:
        srv.stop()
        srv.kill()
