"""The admin API and the `strata alias` / `strata admin` commands, against a real `strata`.

What is checked: the alias file (modes, no secrets printed), `admin info` (drives, quorum),
`admin heal` repairing bitrot found only by a deep heal (a dry run counts but writes nothing,
a second heal finds nothing left), and that only the root user's signature opens the API
(anonymous and wrong-secret requests get 403; errors after authentication are JSON).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import STRATA_BIN, StrataCli, StrataServer

MIB = 1024 * 1024
ALIAS = "e2e"


def cli_for(srv: StrataServer, tmp_path: Path) -> StrataCli:
    cli = StrataCli(tmp_path / "strata-config")
    cli("alias", "set", ALIAS, srv.endpoint, srv.access_key, srv.secret_key)
    return cli


def test_alias_file_and_info(server_factory, tmp_path):
    srv = server_factory()
    srv.start()
    cli = cli_for(srv, tmp_path)

    cfg_dir = cli.config_dir
    assert stat.S_IMODE(cfg_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((cfg_dir / "config.json").stat().st_mode) == 0o600
    listed = cli("alias", "list")
    assert ALIAS in listed.stdout and srv.access_key in listed.stdout
    assert srv.secret_key not in listed.stdout + listed.stderr
    listed_json = cli.json("alias", "list")
    assert listed_json[ALIAS]["url"] == srv.endpoint
    assert "secret_key" not in listed_json[ALIAS]

    info = cli.json("admin", "info", ALIAS)
    assert info["health"] == {"write_quorum": True, "read_quorum": True,
                              "drives_online": 4, "drives_total": 4}
    assert len(info["drives"]) == 4
    assert all(d["online"] and not d["healing"] for d in info["drives"])
    assert sorted(d["endpoint"] for d in info["drives"]) == sorted(str(d) for d in srv.drives)
    assert info["version"] and info["deployment_id"]

    human = cli("admin", "info", ALIAS)
    assert "4/4 online" in human.stdout
    assert info["deployment_id"] in human.stdout

    cli("alias", "remove", ALIAS)
    gone = cli("admin", "info", ALIAS, check=False)
    assert gone.returncode != 0 and "no alias" in gone.stderr


def flip(path: Path, offsets: list[int]) -> None:
    data = bytearray(path.read_bytes())
    for off in offsets:
        data[off % len(data)] ^= 0xA5
    path.write_bytes(bytes(data))


def shard_files(drive: Path) -> list[Path]:
    return sorted(p for p in (drive / "data").rglob("part.*") if p.is_file())


def test_deep_heal_repairs_bitrot_and_dry_run_writes_nothing(server_factory, tmp_path):
    srv = server_factory()
    srv.start()
    s3 = srv.client()
    s3.create_bucket(Bucket="rot")
    objects = {f"obj-{i}": os.urandom(2 * MIB + i * 1000) for i in range(3)}
    for key, data in objects.items():
        s3.put_object(Bucket="rot", Key=key, Body=data)
    assert srv.stop() == 0
    damaged = shard_files(srv.drives[0])
    assert damaged, "no shard files on the first drive"
    for f in damaged:
        flip(f, [100, 5000, 300000])
    srv.start()
    cli = cli_for(srv, tmp_path)
    target = f"{ALIAS}/rot"

    # A shallow heal checks presence and sizes only: bitrot stays unseen.
    shallow = cli.json("admin", "heal", target)
    assert shallow["state"] == "done"
    assert shallow["counters"]["objects_scanned"] == len(objects)
    assert shallow["counters"]["shards_healed"] == 0

    dry = cli.json("admin", "heal", target, "--deep", "--dry-run")
    assert dry["state"] == "done" and dry["dry_run"] is True
    assert dry["counters"]["shards_healed"] >= len(damaged)
    assert dry["counters"]["objects_failed"] == 0

    # The dry run wrote nothing: the real heal finds the same damage, in plain-line output.
    real = cli("admin", "heal", target, "--deep")
    lines = real.stdout.splitlines()
    assert lines[0].startswith("heal ") and "started: bucket rot" in lines[0], real.stdout
    progress = [line for line in lines if line.startswith("heal ") and ": " in line]
    assert len(progress) < 50, f"one line per change, not a flood:\n{real.stdout}"
    assert f"shards healed    {dry['counters']['shards_healed']}\n" in real.stdout, real.stdout
    assert "objects failed   0\n" in real.stdout
    assert " done in " in real.stdout

    again = cli.json("admin", "heal", target, "--deep")
    assert again["state"] == "done"
    assert again["counters"]["shards_healed"] == 0
    assert again["counters"]["objects_failed"] == 0
    assert again["id"] == dry["id"] + 2

    # Whole-deployment heal: same answer, and the data reads back.
    everything = cli.json("admin", "heal", ALIAS, "--deep")
    assert everything["scope"] == {"bucket": None, "prefix": ""}
    assert everything["counters"]["shards_healed"] == 0
    s3 = srv.client()  # the restarted server listens on a new port
    for key, data in objects.items():
        assert s3.get_object(Bucket="rot", Key=key)["Body"].read() == data

    status = cli.json("admin", "info", ALIAS)
    assert status["health"]["drives_online"] == 4


def test_heal_errors(server_factory, tmp_path):
    srv = server_factory()
    srv.start()
    cli = cli_for(srv, tmp_path)
    missing = cli("admin", "heal", f"{ALIAS}/no-such-bucket", check=False)
    assert missing.returncode != 0
    assert "404" in missing.stderr and "NoSuchBucket" in missing.stderr


def signed(srv: StrataServer, method: str, path: str, secret: str | None = None):
    """A SigV4-signed request with urllib; returns (status, body bytes, content type)."""
    url = f"{srv.endpoint}{path}"
    req = AWSRequest(method=method, url=url, data=b"")
    creds = Credentials(srv.access_key, secret or srv.secret_key)
    S3SigV4Auth(creds, "s3", srv.region).add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, method=method, headers=dict(prepared.headers),
                               data=None)
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("content-type")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type")


def test_only_root_signatures_open_the_admin_api(server_factory, tmp_path):
    srv = server_factory()
    srv.start()
    for method, path in [("POST", "/strata/admin/v1/heal"), ("GET", "/strata/admin/v1/heal"),
                         ("GET", "/strata/admin/v1/info"), ("GET", "/strata/admin/v1/nothing")]:
        req = urllib.request.Request(f"{srv.endpoint}{path}", method=method)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 403, f"anonymous {method} {path}"

    status, body, _ = signed(srv, "POST", "/strata/admin/v1/heal", secret="wrong-secret-0000000000")
    assert status == 403, body
    assert srv.secret_key.encode() not in body

    # Wrong secret through the CLI: refused, and the secret is not echoed.
    cli = StrataCli(tmp_path / "bad-config")
    cli("alias", "set", "bad", srv.endpoint, srv.access_key, "wrong-secret-0000000000")
    bad = cli("admin", "heal", "bad", check=False)
    assert bad.returncode != 0 and "access denied" in bad.stderr
    assert "wrong-secret" not in bad.stdout + bad.stderr

    # Signed by root: JSON answers, JSON errors with their status.
    status, body, ctype = signed(srv, "GET", "/strata/admin/v1/heal")
    assert status == 200 and ctype == "application/json"
    reply = json.loads(body)
    assert set(reply) == {"sequence", "scanner", "drives"}
    assert reply["sequence"]["state"] == "idle"
    for method, path, want_status, want_code in [
        ("GET", "/strata/admin/v1/nothing", 404, "NotFound"),
        ("POST", "/strata/admin/v1/heal?prefix=x", 400, "InvalidParameter"),
        ("POST", "/strata/admin/v1/heal?deep=maybe", 400, "InvalidParameter"),
        ("DELETE", "/strata/admin/v1/heal", 405, "MethodNotAllowed"),
    ]:
        status, body, ctype = signed(srv, method, path)
        assert (status, ctype) == (want_status, "application/json"), (method, path, body)
        err = json.loads(body)
        assert err["code"] == want_code and err["message"], err
