"""The MinIO Python SDK against strata."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from minio.error import S3Error

from conftest import empty_and_delete_bucket, unique_bucket_name

MiB = 1024 * 1024


@pytest.fixture
def mbucket(minio_client, s3):
    name = unique_bucket_name("minio")
    minio_client.make_bucket(name)
    yield name
    empty_and_delete_bucket(s3, name)


def test_bucket_exists(minio_client, mbucket):
    assert minio_client.bucket_exists(mbucket)
    assert not minio_client.bucket_exists(unique_bucket_name("missing"))
    assert mbucket in [b.name for b in minio_client.list_buckets()]


def test_put_get_stat(minio_client, mbucket):
    data = b"minio sdk payload"
    res = minio_client.put_object(mbucket, "dir/obj.txt", io.BytesIO(data), len(data),
                                  content_type="text/plain", metadata={"x-amz-meta-team": "qa"})
    assert res.etag == hashlib.md5(data).hexdigest()
    resp = minio_client.get_object(mbucket, "dir/obj.txt")
    try:
        assert resp.read() == data
    finally:
        resp.close()
        resp.release_conn()
    st = minio_client.stat_object(mbucket, "dir/obj.txt")
    assert st.size == len(data)
    assert st.etag == hashlib.md5(data).hexdigest()
    assert st.content_type == "text/plain"
    assert st.metadata.get("x-amz-meta-team") == "qa"

    # Ranged read via offset/length.
    resp = minio_client.get_object(mbucket, "dir/obj.txt", offset=6, length=3)
    try:
        assert resp.read() == data[6:9]
    finally:
        resp.close()
        resp.release_conn()

    with pytest.raises(S3Error) as ei:
        minio_client.stat_object(mbucket, "nope")
    assert ei.value.code in ("NoSuchKey", "ResponseCode")  # HEAD: no body to carry a code
    assert ei.value.response.status == 404


def test_list_objects_recursive_and_not(minio_client, mbucket):
    keys = ["a", "p/b", "p/c", "p/q/d", "z"]
    for k in keys:
        minio_client.put_object(mbucket, k, io.BytesIO(k.encode()), len(k))
    # The SDK yields a page's objects, then its common prefixes.
    flat = {o.object_name: o.is_dir for o in minio_client.list_objects(mbucket)}
    assert flat == {"a": False, "p/": True, "z": False}
    rec = [o.object_name for o in minio_client.list_objects(mbucket, recursive=True)]
    assert rec == sorted(keys)
    pre = sorted(o.object_name for o in minio_client.list_objects(mbucket, prefix="p/"))
    assert pre == ["p/b", "p/c", "p/q/"]
    v1 = [o.object_name for o in minio_client.list_objects(mbucket, recursive=True,
                                                          use_api_v1=True)]
    assert v1 == sorted(keys)


def test_fput_object_multipart(minio_client, mbucket, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(13 * MiB + 77))
    res = minio_client.fput_object(mbucket, "big.bin", str(src), part_size=5 * MiB)
    assert res.etag.endswith("-3"), res.etag
    st = minio_client.stat_object(mbucket, "big.bin")
    assert st.size == src.stat().st_size
    dst = tmp_path / "big.out"
    minio_client.fget_object(mbucket, "big.bin", str(dst))
    assert dst.read_bytes() == src.read_bytes()


def test_remove_objects(minio_client, mbucket):
    from minio.deleteobjects import DeleteObject
    for i in range(3):
        minio_client.put_object(mbucket, f"r{i}", io.BytesIO(b"x"), 1)
    errors = list(minio_client.remove_objects(mbucket, [DeleteObject(f"r{i}") for i in range(3)]))
    assert errors == []
    minio_client.remove_object(mbucket, "never-existed")
    assert list(minio_client.list_objects(mbucket, recursive=True)) == []
