"""s3cmd (SigV4, path-style via host_bucket = host_base) basics: mb, put, get, ls, del."""

from __future__ import annotations

import os

from conftest import unique_bucket_name


def test_s3cmd_basics(s3cmd, tmp_path, s3):
    name = unique_bucket_name("s3cmd")
    s3cmd("mb", f"s3://{name}")
    try:
        assert f"s3://{name}" in s3cmd("ls").stdout

        small = tmp_path / "small.txt"
        small.write_text("s3cmd small object\n")
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(20 * 1024 * 1024 + 5))  # s3cmd goes multipart above 15 MiB
        s3cmd("put", str(small), f"s3://{name}/dir/small.txt")
        s3cmd("put", str(big), f"s3://{name}/big.bin")

        ls = s3cmd("ls", f"s3://{name}").stdout
        assert "DIR" in ls and f"s3://{name}/dir/" in ls
        assert f"s3://{name}/big.bin" in ls
        rls = s3cmd("ls", "--recursive", f"s3://{name}").stdout
        assert f"s3://{name}/dir/small.txt" in rls

        got_small = tmp_path / "got-small.txt"
        got_big = tmp_path / "got-big.bin"
        s3cmd("get", f"s3://{name}/dir/small.txt", str(got_small))
        s3cmd("get", f"s3://{name}/big.bin", str(got_big))
        assert got_small.read_bytes() == small.read_bytes()
        assert got_big.read_bytes() == big.read_bytes()
        head = s3.head_object(Bucket=name, Key="big.bin")
        assert head["ETag"].strip('"').endswith("-2"), head["ETag"]

        info = s3cmd("info", f"s3://{name}/dir/small.txt").stdout
        assert "MD5 sum" in info

        s3cmd("del", f"s3://{name}/dir/small.txt")
        s3cmd("del", f"s3://{name}/big.bin")
        assert s3cmd("ls", "--recursive", f"s3://{name}").stdout.strip() == ""

        missing = s3cmd("get", f"s3://{name}/nope", str(tmp_path / "nope"), check=False)
        assert missing.returncode != 0
    finally:
        s3cmd("rb", "--recursive", "--force", f"s3://{name}", check=False)
    assert f"s3://{name}" not in s3cmd("ls").stdout
