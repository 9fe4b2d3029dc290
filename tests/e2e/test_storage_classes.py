"""Storage classes on media-class pools (boto3, the aws CLI): one server with an "NVME" pool
and an "HDD" pool (directories standing in for each), storage classes WARM and STANDARD_IA on
the HDD pool. Objects land on their class's pool when written with x-amz-storage-class, and
move there by lifecycle transition (two-second lifecycle days); their shard files are checked
on the drives; GETs and range GETs stay byte-identical before, during and after a move."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import (StrataServer, empty_and_delete_bucket, error_of, pattern_body as body,
                      unique_bucket_name, wait_until)

DAY_SECONDS = 2
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_module):
    root = tmp_module / "server"
    nvme = [root / f"nvme{i}" for i in range(1, 5)]
    hdd = [root / f"hdd{i}" for i in range(1, 5)]
    srv = StrataServer(root, drives=nvme + hdd,
                       drive_args=[f"{root}/nvme{{1...4}}", f"{root}/hdd{{1...4}}"],
                       env={
                           "STRATA_POOL_CLASSES": "NVME,HDD",
                           "STRATA_STORAGE_CLASSES": "WARM=HDD,STANDARD_IA=HDD",
                           "STRATA_LIFECYCLE_DAY_SECONDS": str(DAY_SECONDS),
                           "STRATA_LIFECYCLE_INTERVAL_SECONDS": "1",
                       })
    srv.nvme, srv.hdd = nvme, hdd
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        srv.kill()


def shard_files(drives: list[Path]) -> set[str]:
    """Data directories holding shard files on these drives (names, without the drive)."""
    found = set()
    for drive in drives:
        for dirpath, _, files in os.walk(drive / "data"):
            if any(f.startswith("part.") for f in files):
                found.add(os.path.relpath(dirpath, drive))
    return found






def test_writes_land_on_their_class_pool(server, s3, bucket):
    before_nvme, before_hdd = shard_files(server.nvme), shard_files(server.hdd)
    s3.put_object(Bucket=bucket, Key="hot", Body=body(3 * MIB, 1))
    s3.put_object(Bucket=bucket, Key="warm", Body=body(3 * MIB, 2), StorageClass="WARM")
    assert len(shard_files(server.nvme) - before_nvme) == 1
    assert len(shard_files(server.hdd) - before_hdd) == 1
    assert s3.head_object(Bucket=bucket, Key="warm")["StorageClass"] == "WARM"
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="hot")
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {"hot": "STANDARD", "warm": "WARM"}
    got = s3.get_object(Bucket=bucket, Key="warm", Range="bytes=100-2000000")
    assert got["Body"].read() == body(3 * MIB, 2)[100:2000001]
    assert got["StorageClass"] == "WARM"
    attrs = s3.get_object_attributes(Bucket=bucket, Key="warm", ObjectAttributes=["StorageClass"])
    assert attrs["StorageClass"] == "WARM"
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="glacier", Body=b"x", StorageClass="GLACIER")
    assert error_of(e.value) == ("InvalidStorageClass", 400)


def test_multipart_and_copy_take_the_class(server, s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", StorageClass="STANDARD_IA")["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["StorageClass"] for u in uploads] == ["STANDARD_IA"]
    parts = [s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=n,
                            Body=body(5 * MIB, 10 + n))["ETag"] for n in (1, 2)]
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in zip((1, 2), parts)]})
    assert s3.head_object(Bucket=bucket, Key="mp")["StorageClass"] == "STANDARD_IA"
    # A copy takes the request's class (STANDARD when it names none), and a copy onto itself
    # that changes the class is allowed.
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="mp-copy")
    nvme_before = shard_files(server.nvme)
    s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp-copy"},
                   StorageClass="WARM")
    assert s3.head_object(Bucket=bucket, Key="mp-copy")["StorageClass"] == "WARM"
    # The key lives on the NVME pool: its WARM version's data is moved to the HDD pool.
    wait_until(lambda: not (shard_files(server.nvme) - nvme_before), 30,
               "the re-classed copy's data leaves the NVME pool")
    expected = body(5 * MIB, 11) + body(5 * MIB, 12)
    assert s3.get_object(Bucket=bucket, Key="mp-copy")["Body"].read() == expected


def test_lifecycle_transition_moves_data_between_pools(server, s3):
    name = unique_bucket_name("tier")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    try:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
                {"ID": "g", "Status": "Enabled", "Filter": {},
                 "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]})
        assert error_of(e.value) == ("InvalidStorageClass", 400)
        objects = {f"obj{i}": body(size, 100 + i)
                   for i, size in enumerate([MIB // 2, 2 * MIB, 7 * MIB + 123, 64 * 1024])}
        nvme_before, hdd_before = shard_files(server.nvme), shard_files(server.hdd)
        for key, data in objects.items():
            s3.put_object(Bucket=name, Key=key, Body=data)
        nvme_written = shard_files(server.nvme) - nvme_before
        assert nvme_written and not (shard_files(server.hdd) - hdd_before)

        stop = threading.Event()
        errors: list[str] = []
        reads = [0]

        def reader():
            # GETs and range GETs throughout the transition: always the same bytes.
            while not stop.is_set():
                for key, data in objects.items():
                    try:
                        assert s3.get_object(Bucket=name, Key=key)["Body"].read() == data
                        got = s3.get_object(Bucket=name, Key=key, Range="bytes=1000-300000")["Body"].read()
                        assert got == data[1000:300001]
                        reads[0] += 1
                    except Exception as exc:  # noqa: BLE001 - reported below
                        errors.append(f"{key}: {exc!r}")

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [
                {"ID": "warm", "Status": "Enabled", "Filter": {},
                 "Transitions": [{"Days": 1, "StorageClass": "WARM"}]}]})

            def all_warm():
                return all(s3.head_object(Bucket=name, Key=k).get("StorageClass") == "WARM"
                           for k in objects if len(objects[k]) >= 128 * 1024)

            wait_until(all_warm, 8 * DAY_SECONDS + 10, "every object of 128 KiB or more is WARM")
            # The old data leaves the NVME pool's drives once the grace (a day here) passed.
            wait_until(lambda: not (shard_files(server.nvme) & nvme_written), 4 * DAY_SECONDS + 5,
                       "the transitioned data left the NVME drives")
        finally:
            stop.set()
            thread.join()
        assert not errors, errors[:5]
        assert reads[0] > 0
        assert shard_files(server.hdd) - hdd_before, "the data is on the HDD drives"
        # The small object stays STANDARD (AWS's 128 KiB transition minimum).
        assert "StorageClass" not in s3.head_object(Bucket=name, Key="obj3")
        for key, data in objects.items():
            assert s3.get_object(Bucket=name, Key=key)["Body"].read() == data
        listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=name)["Contents"]}
        assert listed == {"obj0": "WARM", "obj1": "WARM", "obj2": "WARM", "obj3": "STANDARD"}
        # The hidden tier bucket is nobody's bucket.
        assert all(not b["Name"].startswith(".") for b in s3.list_buckets()["Buckets"])
        # Deleting a transitioned version frees its data on the HDD pool.
        hdd_now = shard_files(server.hdd)
        versions = s3.list_object_versions(Bucket=name, Prefix="obj2")["Versions"]
        s3.delete_object(Bucket=name, Key="obj2", VersionId=versions[0]["VersionId"])
        wait_until(lambda: len(hdd_now - shard_files(server.hdd)) == 1, 10,
                   "the deleted version's shard files left the HDD drives")
    finally:
        for v in s3.list_object_versions(Bucket=name).get("Versions", []):
            s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
        empty_and_delete_bucket(s3, name)


def test_aws_cli_sets_transition_rules(aws, s3, bucket, tmp_path):
    doc = tmp_path / "rules.json"
    doc.write_text(json.dumps({"Rules": [
        {"ID": "ia", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 7, "StorageClass": "WARM"}]}]}))
    aws("s3api", "put-bucket-lifecycle-configuration", "--bucket", bucket,
        "--lifecycle-configuration", f"file://{doc}")
    rule = json.loads(aws("s3api", "get-bucket-lifecycle-configuration", "--bucket", bucket).stdout)["Rules"][0]
    assert rule["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert rule["NoncurrentVersionTransitions"] == [{"NoncurrentDays": 7, "StorageClass": "WARM"}]
    src = tmp_path / "f"
    src.write_bytes(b"x" * 1000)
    # `aws s3 cp` offers AWS's class names only; STANDARD_IA is one this deployment has.
    aws("s3", "cp", str(src), f"s3://{bucket}/cli-ia", "--storage-class", "STANDARD_IA")
    assert s3.head_object(Bucket=bucket, Key="cli-ia")["StorageClass"] == "STANDARD_IA"


def data_dirs(drives: list[Path]) -> dict[str, int]:
    """Shard-file data directories per drive."""
    return {str(d): len(shard_files([d])) for d in drives}


def test_kill_during_transitions_leaves_one_copy(server_factory, tmp_path):
    """kill -9 while a lifecycle rule moves objects between pools: after the restart every
    object reads back exactly once, from one place, and once the moves and a scanner cycle are
    done, no data is left behind on either pool."""
    root = tmp_path / "k"
    nvme = [root / f"nvme{i}" for i in range(1, 5)]
    hdd = [root / f"hdd{i}" for i in range(1, 5)]
    env = {
        "STRATA_POOL_CLASSES": "NVME,HDD",
        "STRATA_STORAGE_CLASSES": "WARM=HDD",
        "STRATA_LIFECYCLE_DAY_SECONDS": "1",
        "STRATA_LIFECYCLE_INTERVAL_SECONDS": "1",
        "STRATA_SCANNER_CYCLE_PAUSE_SECONDS": "1",
        "STRATA_ORPHAN_AGE_SECONDS": "2",
    }
    srv = server_factory(drives=nvme + hdd,
                         drive_args=[f"{root}/nvme{{1...4}}", f"{root}/hdd{{1...4}}"], env=env)
    srv.start()
    s3 = srv.client()
    s3.create_bucket(Bucket="moving")
    objects = {f"o{i:02d}": body(6 * MIB + i, 500 + i) for i in range(16)}
    for key, data in objects.items():
        s3.put_object(Bucket="moving", Key=key, Body=data)
    s3.put_bucket_lifecycle_configuration(Bucket="moving", LifecycleConfiguration={"Rules": [
        {"ID": "warm", "Status": "Enabled", "Filter": {}, "Transitions": [{"Days": 1, "StorageClass": "WARM"}]}]})

    def warm() -> int:
        return sum(1 for o in s3.list_objects_v2(Bucket="moving")["Contents"] if o["StorageClass"] == "WARM")

    wait_until(lambda: warm() >= 2, 30, "transitions under way")
    srv.kill()
    srv.start()
    s3 = srv.client()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket="moving")["Contents"]]
    assert listed == sorted(objects), "every object listed exactly once"
    versions = s3.list_object_versions(Bucket="moving").get("Versions", [])
    assert len(versions) == len(objects)
    for key, data in objects.items():
        assert s3.get_object(Bucket="moving", Key=key)["Body"].read() == data, key
    wait_until(lambda: warm() == len(objects), 60, "every object moved after the restart")
    # One copy each: on the HDD pool (a tier object per version), nothing left on the NVME pool
    # (old data removed after its grace, or by the orphan sweep for moves the kill cut short).
    wait_until(lambda: all(n == 0 for n in data_dirs(nvme).values()), 60,
               f"the NVME pool holds no data any more ({data_dirs(nvme)})")
    wait_until(lambda: all(n == len(objects) for n in data_dirs(hdd).values()), 60,
               f"each HDD drive holds exactly one shard of each object ({data_dirs(hdd)})")
    for key, data in objects.items():
        assert s3.get_object(Bucket="moving", Key=key)["Body"].read() == data, key
