"""Durability across a graceful restart: SIGTERM, start again on the same drives, read back."""

from __future__ import annotations

import hashlib
import os

MiB = 1024 * 1024


def test_objects_survive_graceful_restart(server_factory):
    srv = server_factory()
    srv.start()
    s3 = srv.client()
    s3.create_bucket(Bucket="keep")
    s3.create_bucket(Bucket="empty-bucket")

    small = b"small object body"
    medium = os.urandom(3 * MiB + 333)
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(2 * MiB + 1)]
    objects: dict[str, bytes] = {"small.txt": small, "dir/medium.bin": medium, "empty": b""}
    s3.put_object(Bucket="keep", Key="small.txt", Body=small, ContentType="text/plain",
                  Metadata={"note": "small"})
    s3.put_object(Bucket="keep", Key="dir/medium.bin", Body=medium,
                  ContentType="application/x-medium", Metadata={"note": "medium"},
                  CacheControl="no-store")
    s3.put_object(Bucket="keep", Key="empty", Body=b"")

    up = s3.create_multipart_upload(Bucket="keep", Key="multi/part.bin",
                                    ContentType="application/x-mp", Metadata={"note": "mp"})
    uid = up["UploadId"]
    etags = [s3.upload_part(Bucket="keep", Key="multi/part.bin", UploadId=uid, PartNumber=i,
                            Body=b)["ETag"] for i, b in enumerate(parts, 1)]
    s3.complete_multipart_upload(Bucket="keep", Key="multi/part.bin", UploadId=uid,
                                 MultipartUpload={"Parts": [{"PartNumber": i, "ETag": e}
                                                            for i, e in enumerate(etags, 1)]})
    objects["multi/part.bin"] = b"".join(parts)

    # An upload left in progress survives too.
    pending = s3.create_multipart_upload(Bucket="keep", Key="pending")["UploadId"]
    pending_etag = s3.upload_part(Bucket="keep", Key="pending", UploadId=pending, PartNumber=1,
                                  Body=b"pending part")["ETag"]

    before = {}
    for key in objects:
        h = s3.head_object(Bucket="keep", Key=key)
        before[key] = {f: h.get(f) for f in ("ETag", "ContentLength", "ContentType", "Metadata",
                                              "CacheControl", "LastModified")}
    listing_before = [(o["Key"], o["ETag"], o["Size"])
                      for o in s3.list_objects_v2(Bucket="keep")["Contents"]]

    code = srv.stop()
    assert code == 0, f"strata did not exit cleanly on SIGTERM (exit code {code})"

    srv.start()
    s3 = srv.client()
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "keep" in names and "empty-bucket" in names
    for key, data in objects.items():
        got = s3.get_object(Bucket="keep", Key=key)
        body = got["Body"].read()
        assert hashlib.md5(body).hexdigest() == hashlib.md5(data).hexdigest(), key
        assert body == data, key
        h = s3.head_object(Bucket="keep", Key=key)
        after = {f: h.get(f) for f in before[key]}
        assert after == before[key], key
    assert before["multi/part.bin"]["ETag"].strip('"').endswith("-3")
    assert before["small.txt"]["Metadata"] == {"note": "small"}
    listing_after = [(o["Key"], o["ETag"], o["Size"])
                     for o in s3.list_objects_v2(Bucket="keep")["Contents"]]
    assert listing_after == listing_before

    lp = s3.list_parts(Bucket="keep", Key="pending", UploadId=pending)
    assert [(p["PartNumber"], p["ETag"]) for p in lp["Parts"]] == [(1, pending_etag)]
    s3.complete_multipart_upload(Bucket="keep", Key="pending", UploadId=pending,
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": pending_etag}]})
    assert s3.get_object(Bucket="keep", Key="pending")["Body"].read() == b"pending part"

    # And the restarted server still takes writes and a second clean stop.
    s3.put_object(Bucket="keep", Key="after-restart", Body=b"new")
    assert srv.stop() == 0
