"""rclone (Debian's 1.60, provider=Other) copying, syncing and checking a small tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import empty_and_delete_bucket, unique_bucket_name

FILES = {
    "readme.txt": b"rclone was here\n",
    "docs/a.md": b"# a\n" * 100,
    "docs/deep/er/b.bin": os.urandom(70_000),
    "media/clip.bin": os.urandom(6 * 1024 * 1024 + 11),  # below rclone's 200 MiB cutoff: one PUT
    "spaced name/ünï.txt": b"unicode path",
}


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


@pytest.fixture
def rc_bucket(s3):
    name = unique_bucket_name("rc")
    yield name
    empty_and_delete_bucket(s3, name)


def test_copy_lsf_check(rclone, rc_bucket, tmp_path, s3):
    src = tmp_path / "src"
    make_tree(src, FILES)
    remote = f"{rclone.REMOTE}:{rc_bucket}"
    rclone("mkdir", remote)
    rclone("copy", str(src), remote)

    lsf = rclone("lsf", "-R", "--files-only", remote).stdout.splitlines()
    assert sorted(lsf) == sorted(FILES)
    top = rclone("lsf", remote).stdout.splitlines()
    assert sorted(top) == sorted(["readme.txt", "docs/", "media/", "spaced name/"])

    rclone("check", str(src), remote)  # size + md5 (ETag) comparison
    rclone("check", "--download", str(src), remote)  # byte comparison

    for rel, data in FILES.items():
        assert s3.get_object(Bucket=rc_bucket, Key=rel)["Body"].read() == data

    back = tmp_path / "back"
    rclone("copy", remote, str(back))
    for rel, data in FILES.items():
        assert (back / rel).read_bytes() == data


def test_sync_and_check_detects_difference(rclone, rc_bucket, tmp_path):
    src = tmp_path / "src"
    make_tree(src, FILES)
    remote = f"{rclone.REMOTE}:{rc_bucket}/mirror"
    rclone("mkdir", f"{rclone.REMOTE}:{rc_bucket}")
    rclone("sync", str(src), remote)
    rclone("check", str(src), remote)

    (src / "readme.txt").write_bytes(b"changed\n")
    (src / "docs/a.md").unlink()
    (src / "new.txt").write_bytes(b"new")
    differs = rclone("check", str(src), remote, check=False)
    assert differs.returncode != 0

    rclone("sync", str(src), remote)
    rclone("check", str(src), remote)
    lsf = sorted(rclone("lsf", "-R", "--files-only", remote).stdout.splitlines())
    want = sorted((set(FILES) - {"docs/a.md"}) | {"new.txt"})
    assert lsf == want


def test_multipart_upload_via_rclone(rclone, rc_bucket, tmp_path, s3):
    big = tmp_path / "big" / "blob.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(12 * 1024 * 1024 + 3))
    remote = f"{rclone.REMOTE}:{rc_bucket}"
    rclone("mkdir", remote)
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", str(big.parent), remote)
    head = s3.head_object(Bucket=rc_bucket, Key="blob.bin")
    assert head["ContentLength"] == big.stat().st_size
    assert head["ETag"].strip('"').endswith("-3"), head["ETag"]
    rclone("check", "--download", str(big.parent), remote)
