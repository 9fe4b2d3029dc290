"""The aws CLI (v1, pinned) against strata: high-level `aws s3` and low-level `aws s3api`."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import requests

from conftest import unique_bucket_name

MiB = 1024 * 1024


def md5_file(p: Path) -> str:
    h = hashlib.md5()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def write_random(p: Path, size: int) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n


@pytest.fixture
def cli_bucket(aws):
    name = unique_bucket_name("cli")
    out = aws("s3", "mb", f"s3://{name}")
    assert f"make_bucket: {name}" in out.stdout
    yield name
    aws("s3", "rb", f"s3://{name}", "--force", check=False)


def test_mb_ls_rb(aws):
    name = unique_bucket_name("cli")
    aws("s3", "mb", f"s3://{name}")
    assert name in aws("s3", "ls").stdout
    # mb of one's own existing bucket succeeds in us-east-1, as on AWS (other regions: 409).
    dup = aws("s3", "mb", f"s3://{name}", check=False)
    assert dup.returncode == 0, dup.stderr
    out = aws("s3", "rb", f"s3://{name}")
    assert f"remove_bucket: {name}" in out.stdout
    assert name not in aws("s3", "ls").stdout


def test_cp_ls_rm(aws, cli_bucket, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("hello from the aws cli\n")
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/dir/hello.txt")
    ls = aws("s3", "ls", f"s3://{cli_bucket}/dir/").stdout
    assert "hello.txt" in ls
    assert str(src.stat().st_size) in ls
    top = aws("s3", "ls", f"s3://{cli_bucket}").stdout
    assert "PRE dir/" in top

    dst = tmp_path / "back.txt"
    aws("s3", "cp", f"s3://{cli_bucket}/dir/hello.txt", str(dst))
    assert dst.read_bytes() == src.read_bytes()

    # stdin/stdout streaming
    p = aws("s3", "cp", f"s3://{cli_bucket}/dir/hello.txt", "-")
    assert p.stdout == src.read_text()

    aws("s3", "rm", f"s3://{cli_bucket}/dir/hello.txt")
    assert "hello.txt" not in aws("s3", "ls", f"s3://{cli_bucket}", "--recursive").stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cp_100mib_multipart(aws, cli_bucket, tmp_path, s3):
    src = tmp_path / "big.bin"
    write_random(src, 100 * MiB)
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/big.bin", timeout=900)
    head = s3.head_object(Bucket=cli_bucket, Key="big.bin")
    assert head["ContentLength"] == 100 * MiB
    # The CLI's default 8 MiB chunks make this a 13-part multipart upload.
    assert head["ETag"].strip('"').endswith("-13"), head["ETag"]
    dst = tmp_path / "big.back"
    aws("s3", "cp", f"s3://{cli_bucket}/big.bin", str(dst), timeout=900)
    assert dst.stat().st_size == 100 * MiB
    assert md5_file(dst) == md5_file(src)


def test_sync_tree_and_noop_resync(aws, cli_bucket, tmp_path):
    tree = tmp_path / "tree"
    files = {
        "top.txt": b"top",
        "a/one.txt": b"one",
        "a/b/two.txt": b"two" * 1000,
        "a/b/c/three.bin": os.urandom(300 * 1024),
        "d e/with space.txt": b"space",
        "ünï/cödé.txt": b"unicode",
    }
    an_hour_ago = time.time() - 3600
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
        # Files older than the upload, as in a real tree: `aws s3 sync` compares the local
        # mtime with LastModified (whole seconds), so a file written in the same second as
        # its upload would look newer than the stored copy on any S3, AWS included.
        os.utime(tree / rel, (an_hour_ago, an_hour_ago))

    out = aws("s3", "sync", str(tree), f"s3://{cli_bucket}/backup").stdout
    assert out.count("upload:") == len(files), out

    listing = aws("s3api", "list-objects-v2", "--bucket", cli_bucket, "--prefix", "backup/").stdout
    keys = sorted(o["Key"] for o in json.loads(listing)["Contents"])
    assert keys == sorted(f"backup/{k}" for k in files)

    again = aws("s3", "sync", str(tree), f"s3://{cli_bucket}/backup").stdout
    assert "upload:" not in again, again

    # A changed file is the only one uploaded next time.
    (tree / "a/one.txt").write_bytes(b"one, changed and longer")
    third = aws("s3", "sync", str(tree), f"s3://{cli_bucket}/backup").stdout
    assert third.count("upload:") == 1 and "a/one.txt" in third, third

    # Sync down into an empty directory reproduces the tree.
    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{cli_bucket}/backup", str(down))
    for rel in files:
        assert (down / rel).read_bytes() == (tree / rel).read_bytes(), rel

    # --delete removes what vanished locally.
    (tree / "top.txt").unlink()
    out = aws("s3", "sync", "--delete", str(tree), f"s3://{cli_bucket}/backup").stdout
    assert "delete:" in out and "top.txt" in out
    ls = aws("s3", "ls", f"s3://{cli_bucket}/backup/").stdout
    assert "top.txt" not in ls


def test_presign(aws, cli_bucket, tmp_path):
    src = tmp_path / "p.txt"
    src.write_bytes(b"presigned via cli")
    aws("s3", "cp", str(src), f"s3://{cli_bucket}/p.txt")
    url = aws("s3", "presign", f"s3://{cli_bucket}/p.txt", "--expires-in", "300").stdout.strip()
    assert "X-Amz-Signature=" in url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content == b"presigned via cli"


def test_s3api_object_commands(aws, cli_bucket, tmp_path):
    body = tmp_path / "body.bin"
    body.write_bytes(b"s3api body bytes")
    put = json.loads(aws("s3api", "put-object", "--bucket", cli_bucket, "--key", "k1",
                         "--body", str(body), "--content-type", "text/x-test",
                         "--metadata", "owner=tests,purpose=e2e").stdout)
    assert put["ETag"].strip('"') == hashlib.md5(body.read_bytes()).hexdigest()

    head = json.loads(aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "k1").stdout)
    assert head["ContentLength"] == len(body.read_bytes())
    assert head["ContentType"] == "text/x-test"
    assert head["Metadata"] == {"owner": "tests", "purpose": "e2e"}

    out = tmp_path / "out.bin"
    got = json.loads(aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "k1",
                         str(out)).stdout)
    assert out.read_bytes() == body.read_bytes()
    assert got["ETag"] == put["ETag"]

    missing = aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "nope", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr

    listing = json.loads(aws("s3api", "list-objects-v2", "--bucket", cli_bucket).stdout)
    assert [o["Key"] for o in listing["Contents"]] == ["k1"]


def test_s3api_multipart_commands(aws, cli_bucket, tmp_path):
    p1 = tmp_path / "p1"
    p2 = tmp_path / "p2"
    write_random(p1, 5 * MiB)
    write_random(p2, 123_456)
    cr = json.loads(aws("s3api", "create-multipart-upload", "--bucket", cli_bucket,
                        "--key", "mp").stdout)
    up = cr["UploadId"]
    parts = []
    for n, p in ((1, p1), (2, p2)):
        r = json.loads(aws("s3api", "upload-part", "--bucket", cli_bucket, "--key", "mp",
                           "--upload-id", up, "--part-number", str(n), "--body", str(p)).stdout)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    mpu = tmp_path / "mpu.json"
    mpu.write_text(json.dumps({"Parts": parts}))
    done = json.loads(aws("s3api", "complete-multipart-upload", "--bucket", cli_bucket,
                          "--key", "mp", "--upload-id", up,
                          "--multipart-upload", f"file://{mpu}").stdout)
    digests = b"".join(hashlib.md5(p.read_bytes()).digest() for p in (p1, p2))
    assert done["ETag"].strip('"') == f"{hashlib.md5(digests).hexdigest()}-2"
    out = tmp_path / "mp.out"
    aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "mp", str(out))
    assert out.read_bytes() == p1.read_bytes() + p2.read_bytes()


def test_rb_force_removes_contents(aws, tmp_path):
    name = unique_bucket_name("cli")
    aws("s3", "mb", f"s3://{name}")
    for i in range(5):
        f = tmp_path / f"f{i}"
        f.write_bytes(b"x" * i)
        aws("s3", "cp", str(f), f"s3://{name}/n/{i}")
    plain = aws("s3", "rb", f"s3://{name}", check=False)
    assert plain.returncode != 0 and "BucketNotEmpty" in plain.stderr
    aws("s3", "rb", f"s3://{name}", "--force")
    assert name not in aws("s3", "ls").stdout


def test_wrong_credentials_fail_cleanly(aws, server, tmp_path):
    env = dict(aws.env)
    cred = tmp_path / "badcreds"
    cred.write_text(f"[default]\naws_access_key_id = {server.access_key}\n"
                    "aws_secret_access_key = not-the-secret\n")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(cred)
    from conftest import run_cli, VENV_BIN
    p = run_cli([str(VENV_BIN / "aws"), "--endpoint-url", server.endpoint, "s3", "ls"], env,
                check=False)
    assert p.returncode != 0
    assert "SignatureDoesNotMatch" in p.stderr
