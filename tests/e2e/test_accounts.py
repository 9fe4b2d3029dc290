"""Accounts (tenants): created with `strata admin account`, each with its own root
credentials, users (managed through MinIO's admin API by the account root) and buckets.
Bucket names stay global; an account sees and reaches only its own buckets unless a bucket
policy or ACL of the other account grants it; the deployment's root remains the operator."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider
from minio.error import MinioAdminException

from conftest import StrataCli, empty_and_delete_bucket, error_of, make_s3_client, unique_bucket_name

APP_SECRET = "tenant-app-secret-1"


def expect_error(call, code: str, status: int) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response


def admin_as(server, access_key: str, secret_key: str) -> MinioAdmin:
    return MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(access_key, secret_key),
                      secure=False, region=server.region)


@pytest.fixture(scope="module")
def cli(server, tmp_module) -> StrataCli:
    cli = StrataCli(tmp_module / "accounts-cli")
    cli("alias", "set", "op", server.endpoint, server.access_key, server.secret_key)
    return cli


@pytest.fixture
def tenant(cli):
    """A fresh account: its id, canonical id and root credentials; removed afterwards."""
    out = cli.json("admin", "account", "add", "op", unique_bucket_name("acct"))
    account, creds = out["account"], out["credentials"]
    yield {"id": account["id"], "canonical_id": account["canonical_id"], "name": account["name"],
           "access_key": creds["accessKey"], "secret_key": creds["secretKey"]}
    cli("admin", "account", "remove", "op", account["id"], check=False)


def test_account_lifecycle_through_the_cli(cli, server, tenant):
    listed = cli.json("admin", "account", "list", "op")
    assert tenant["id"] in [a["id"] for a in listed]
    info = cli.json("admin", "account", "info", "op", tenant["id"])
    assert info["name"] == tenant["name"] and info["status"] == "Enabled"
    assert len(info["canonical_id"]) == 64
    # The secret key is never shown again.
    assert tenant["secret_key"] not in json.dumps(listed) + json.dumps(info)
    root = make_s3_client(server.endpoint, tenant["access_key"], tenant["secret_key"])
    assert root.list_buckets()["Buckets"] == []

    cli("admin", "account", "disable", "op", tenant["id"])
    expect_error(lambda: root.list_buckets(), "InvalidAccessKeyId", 403)
    cli("admin", "account", "enable", "op", tenant["id"])
    root.list_buckets()

    # An account with a bucket cannot be removed.
    bucket = unique_bucket_name("own")
    root.create_bucket(Bucket=bucket)
    p = cli("admin", "account", "remove", "op", tenant["id"], check=False)
    assert p.returncode != 0 and "AccountNotEmpty" in p.stderr + p.stdout
    root.delete_bucket(Bucket=bucket)
    cli("admin", "account", "remove", "op", tenant["id"])
    assert tenant["id"] not in [a["id"] for a in cli.json("admin", "account", "list", "op")]


def test_buckets_belong_to_accounts(server, s3, tenant):
    root = make_s3_client(server.endpoint, tenant["access_key"], tenant["secret_key"])
    bucket = unique_bucket_name("tenant")
    root.create_bucket(Bucket=bucket)
    try:
        root.put_object(Bucket=bucket, Key="k", Body=b"tenant data")
        assert [b["Name"] for b in root.list_buckets()["Buckets"]] == [bucket]
        # The owner is the account.
        assert root.get_bucket_acl(Bucket=bucket)["Owner"]["ID"] == tenant["canonical_id"]
        # Names are global: anyone else gets BucketAlreadyExists; the owner, in us-east-1, 200.
        expect_error(lambda: s3.create_bucket(Bucket=bucket), "BucketAlreadyExists", 409)
        assert root.create_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
        # The deployment's root is the operator: it sees and reaches every account's buckets.
        assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"tenant data"
        # The account root does not see the deployment account's buckets, nor reach them.
        home = unique_bucket_name("home")
        s3.create_bucket(Bucket=home)
        try:
            s3.put_object(Bucket=home, Key="k", Body=b"home data")
            assert home not in [b["Name"] for b in root.list_buckets()["Buckets"]]
            expect_error(lambda: root.get_object(Bucket=home, Key="k"), "AccessDenied", 403)
            expect_error(lambda: root.list_objects_v2(Bucket=home), "AccessDenied", 403)
            expect_error(lambda: root.put_bucket_policy(Bucket=home, Policy="{}"), "AccessDenied", 403)
        finally:
            empty_and_delete_bucket(s3, home)
    finally:
        empty_and_delete_bucket(root, bucket)


def test_account_root_manages_its_own_users_only(server, cli, tenant):
    admin = admin_as(server, tenant["access_key"], tenant["secret_key"])
    operator = admin_as(server, server.access_key, server.secret_key)
    app = unique_bucket_name("app")
    admin.user_add(app, APP_SECRET)
    try:
        assert app in json.loads(admin.user_list())
        # The deployment's account does not list the tenant's users.
        assert app not in json.loads(operator.user_list())
        admin.attach_policy(["readwrite"], user=app)
        root = make_s3_client(server.endpoint, tenant["access_key"], tenant["secret_key"])
        bucket = unique_bucket_name("tb")
        root.create_bucket(Bucket=bucket)
        user = make_s3_client(server.endpoint, app, APP_SECRET)
        user.put_object(Bucket=bucket, Key="by-user", Body=b"x")
        assert [b["Name"] for b in user.list_buckets()["Buckets"]] == [bucket]
        # readwrite is s3:* on every bucket, yet other accounts' buckets need their grant.
        home = unique_bucket_name("home")
        s3 = make_s3_client(server.endpoint, server.access_key, server.secret_key)
        s3.create_bucket(Bucket=home)
        try:
            expect_error(lambda: user.put_object(Bucket=home, Key="x", Body=b"x"), "AccessDenied", 403)
        finally:
            empty_and_delete_bucket(s3, home)
        empty_and_delete_bucket(root, bucket)
        # The operator cannot be reached through another account's names.
        with pytest.raises(MinioAdminException):
            admin.user_info(server.access_key)
        # A user holding admin:CreateServiceAccount still cannot mint credentials carrying the
        # account root's rights.
        admin.policy_add(f"{app}-svc", policy={"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["admin:CreateServiceAccount", "admin:ListServiceAccounts"],
             "Resource": ["arn:aws:s3:::*"]}]})
        admin.attach_policy([f"{app}-svc"], user=app)
        cli("alias", "set", "tenant-app", server.endpoint, app, APP_SECRET)
        refused = cli("admin", "svcacct", "add", "tenant-app", tenant["access_key"], check=False)
        assert refused.returncode != 0, refused.stdout
        # Its own service account is fine, and the account root may make its own.
        cli("admin", "svcacct", "add", "tenant-app", app)
        cli("alias", "set", "tenant-root", server.endpoint, tenant["access_key"], tenant["secret_key"])
        cli("admin", "svcacct", "add", "tenant-root", tenant["access_key"])
    finally:
        admin.user_remove(app)
        try:
            admin.policy_remove(f"{app}-svc")
        except MinioAdminException:
            pass
        for parent in (tenant["access_key"], app):
            for svc in json.loads(admin.list_service_account(parent)).get("accounts") or []:
                admin.delete_service_account(svc["accessKey"])


def test_account_root_has_no_deployment_admin(cli, server, tenant):
    cli("alias", "set", "tenant", server.endpoint, tenant["access_key"], tenant["secret_key"])
    for args in (["admin", "info", "tenant"], ["admin", "account", "list", "tenant"],
                 ["admin", "heal", "tenant", "--dry-run", "--json"]):
        p = cli(*args, check=False)
        assert p.returncode != 0, args
        assert "AccessDenied" in p.stderr + p.stdout or "denied" in (p.stderr + p.stdout).lower(), p.stderr


def test_cross_account_grants(server, s3, tenant):
    """A bucket policy or an ACL of the deployment's account grants the tenant; both the
    grant and the tenant's own identity policy are needed for its users."""
    root = make_s3_client(server.endpoint, tenant["access_key"], tenant["secret_key"])
    home = unique_bucket_name("shared")
    s3.create_bucket(Bucket=home)
    try:
        s3.put_object(Bucket=home, Key="doc", Body=b"shared doc")
        expect_error(lambda: root.get_object(Bucket=home, Key="doc"), "AccessDenied", 403)
        s3.put_bucket_policy(Bucket=home, Policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{tenant['id']}:root"},
                           "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{home}/*"}]}))
        assert root.get_object(Bucket=home, Key="doc")["Body"].read() == b"shared doc"
        expect_error(lambda: root.put_object(Bucket=home, Key="x", Body=b"x"), "AccessDenied", 403)
        s3.delete_bucket_policy(Bucket=home)
        expect_error(lambda: root.get_object(Bucket=home, Key="doc"), "AccessDenied", 403)
        # An ACL grant to the account's canonical id.
        s3.put_object_acl(Bucket=home, Key="doc", GrantRead=f'id="{tenant["canonical_id"]}"')
        assert root.get_object(Bucket=home, Key="doc")["Body"].read() == b"shared doc"
        grants = s3.get_object_acl(Bucket=home, Key="doc")["Grants"]
        assert {"ID": tenant["canonical_id"], "Permission": "READ"} in [
            {"ID": g["Grantee"].get("ID"), "Permission": g["Permission"]} for g in grants]
        # A user of the tenant without its own policy is not granted by the ACL alone.
        admin = admin_as(server, tenant["access_key"], tenant["secret_key"])
        app = unique_bucket_name("app")
        admin.user_add(app, APP_SECRET)
        try:
            user = make_s3_client(server.endpoint, app, APP_SECRET)
            expect_error(lambda: user.get_object(Bucket=home, Key="doc"), "AccessDenied", 403)
            admin.attach_policy(["readonly"], user=app)
            assert user.get_object(Bucket=home, Key="doc")["Body"].read() == b"shared doc"
        finally:
            admin.user_remove(app)
    finally:
        empty_and_delete_bucket(s3, home)
