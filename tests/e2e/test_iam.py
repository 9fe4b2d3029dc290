"""Identity and access: users, groups, canned policies and service accounts managed through
MinIO's admin API (MinIO's own Python SDK, `MinioAdmin`), then used with boto3; bucket
policies naming users and anonymous callers; a change made through one node of a 4-node
deployment enforced by another within a second."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider
from minio.error import MinioAdminException

from conftest import (StrataCluster, empty_and_delete_bucket, error_of, make_s3_client,
                      unique_bucket_name)

SECRET = "user-secret-key-1"


def admin_of(server) -> MinioAdmin:
    return MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(server.access_key, server.secret_key),
                      secure=False, region=server.region)


def client_as(server, access_key: str, secret_key: str = SECRET):
    return make_s3_client(server.endpoint, access_key, secret_key)


def denied(call) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == ("AccessDenied", 403), e.value.response


def account_id(admin: MinioAdmin) -> str:
    return json.loads(admin.account_info())["AccountId"]


@pytest.fixture(scope="module")
def admin(server) -> MinioAdmin:
    return admin_of(server)


@pytest.fixture
def data_bucket(s3):
    name = unique_bucket_name("iam")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="shared/readme.txt", Body=b"hello")
    yield name
    try:
        s3.delete_bucket_policy(Bucket=name)
    except ClientError:
        pass
    empty_and_delete_bucket(s3, name)


@pytest.fixture
def user(admin):
    """A fresh user with no policy; removed afterwards."""
    name = unique_bucket_name("u")
    admin.user_add(name, SECRET)
    yield name
    try:
        admin.user_remove(name)
    except MinioAdminException:
        pass


def test_user_lifecycle_through_minio_admin(server, admin, user):
    users = json.loads(admin.user_list())
    assert users[user]["status"] == "enabled"
    info = json.loads(admin.user_info(user))
    assert info["status"] == "enabled" and info["policyName"] == ""
    c = client_as(server, user)
    # No policy yet: signed correctly, but nothing is allowed.
    denied(lambda: c.list_buckets())
    admin.policy_set("readwrite", user=user)
    c.list_buckets()
    admin.user_disable(user)
    with pytest.raises(ClientError) as e:
        c.list_buckets()
    assert error_of(e.value) == ("InvalidAccessKeyId", 403)
    admin.user_enable(user)
    c.list_buckets()
    admin.user_remove(user)
    with pytest.raises(ClientError) as e:
        c.list_buckets()
    assert error_of(e.value) == ("InvalidAccessKeyId", 403)
    assert user not in json.loads(admin.user_list())


def test_wrong_secret_is_refused(server, user, admin):
    admin.policy_set("readwrite", user=user)
    c = client_as(server, user, "not-the-secret")
    with pytest.raises(ClientError) as e:
        c.list_buckets()
    assert error_of(e.value) == ("SignatureDoesNotMatch", 403)


def test_builtin_policies_allow_and_deny(server, admin, user, data_bucket):
    c = client_as(server, user)
    admin.policy_set("readonly", user=user)
    assert c.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"
    denied(lambda: c.put_object(Bucket=data_bucket, Key="x", Body=b"x"))
    denied(lambda: c.delete_object(Bucket=data_bucket, Key="shared/readme.txt"))
    admin.policy_set("writeonly", user=user)
    c.put_object(Bucket=data_bucket, Key="w", Body=b"w")
    denied(lambda: c.get_object(Bucket=data_bucket, Key="w"))


def test_custom_policy_home_prefix_and_list_condition(server, admin, user, data_bucket, s3):
    name = f"home-{user}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListOwnHome", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{data_bucket}"],
             "Condition": {"StringLike": {"s3:prefix": ["home/${aws:username}/*"]}}},
            {"Sid": "RwOwnHome", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": [f"arn:aws:s3:::{data_bucket}/home/${{aws:username}}/*"]},
        ],
    }
    admin.policy_add(name, policy=policy)
    try:
        admin.attach_policy([name], user=user)
        c = client_as(server, user)
        c.put_object(Bucket=data_bucket, Key=f"home/{user}/a.txt", Body=b"mine")
        assert c.get_object(Bucket=data_bucket, Key=f"home/{user}/a.txt")["Body"].read() == b"mine"
        s3.put_object(Bucket=data_bucket, Key="home/someone/b.txt", Body=b"theirs")
        denied(lambda: c.get_object(Bucket=data_bucket, Key="home/someone/b.txt"))
        denied(lambda: c.put_object(Bucket=data_bucket, Key="home/someone/c.txt", Body=b"x"))
        listed = c.list_objects_v2(Bucket=data_bucket, Prefix=f"home/{user}/")
        assert [o["Key"] for o in listed["Contents"]] == [f"home/{user}/a.txt"]
        denied(lambda: c.list_objects_v2(Bucket=data_bucket, Prefix="home/"))
        denied(lambda: c.list_objects_v2(Bucket=data_bucket))
        info = json.loads(admin.policy_info(name))
        assert info["Statement"][0]["Sid"] == "ListOwnHome"
        entities = json.loads(admin.get_policy_entities(users=[user], groups=[], policies=[name]))
        assert entities["policyMappings"][0]["users"] == [user]
        admin.detach_policy([name], user=user)
        denied(lambda: c.get_object(Bucket=data_bucket, Key=f"home/{user}/a.txt"))
    finally:
        admin.policy_remove(name)


def test_explicit_deny_wins_and_ip_condition(server, admin, user, data_bucket):
    name = f"deny-{user}"
    admin.policy_add(name, policy={
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::*"]},
            {"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/*"],
             "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8"]}}},
        ],
    })
    try:
        admin.policy_set(f"readwrite,{name}", user=user)
        c = client_as(server, user)
        c.get_object(Bucket=data_bucket, Key="shared/readme.txt")
        denied(lambda: c.delete_object(Bucket=data_bucket, Key="shared/readme.txt"))
        # The test talks over 127.0.0.1: the IP-conditioned deny applies.
        denied(lambda: c.put_object(Bucket=data_bucket, Key="y", Body=b"y"))
        # DeleteObjects is decided key by key: each key is refused, nothing is deleted.
        out = c.delete_objects(Bucket=data_bucket, Delete={"Objects": [{"Key": "shared/readme.txt"}]})
        assert [e["Code"] for e in out.get("Errors", [])] == ["AccessDenied"]
        c.head_object(Bucket=data_bucket, Key="shared/readme.txt")
    finally:
        admin.policy_set("", user=user)
        admin.policy_remove(name)


def test_groups_grant_and_disabled_groups_do_not(server, admin, user, data_bucket):
    group = f"g-{user}"
    admin.group_add(group, [user])
    try:
        admin.policy_set("readonly", group=group)
        c = client_as(server, user)
        c.get_object(Bucket=data_bucket, Key="shared/readme.txt")
        info = json.loads(admin.group_info(group))
        assert info["members"] == [user] and info["policy"] == "readonly"
        assert json.loads(admin.user_info(user))["memberOf"] == [group]
        admin.group_disable(group)
        denied(lambda: c.get_object(Bucket=data_bucket, Key="shared/readme.txt"))
        admin.group_enable(group)
        c.get_object(Bucket=data_bucket, Key="shared/readme.txt")
        assert group in json.loads(admin.group_list())
    finally:
        admin.group_remove(group, [user])
        admin.group_remove(group)
    assert group not in json.loads(admin.group_list())


def test_service_account_narrows_its_parent(server, admin, user, data_bucket):
    admin.policy_set("readwrite", user=user)
    narrow = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/shared/*"]}]}
    out = json.loads(admin.add_service_account(
        access_key=f"sa{user}", secret_key="sa-secret-key-1", name="backup", description="nightly",
        policy=narrow))
    creds = out["credentials"]
    assert creds["accessKey"] == f"sa{user}"
    # Created by root for root; re-home it under the user: MinIO's targetUser is what mc uses.
    admin.delete_service_account(creds["accessKey"])
    user_admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(user, SECRET), secure=False,
                            region=server.region)
    out = json.loads(user_admin.add_service_account(
        access_key=f"sa{user}", secret_key="sa-secret-key-1", policy=narrow))
    sa = client_as(server, out["credentials"]["accessKey"], "sa-secret-key-1")
    assert sa.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"
    denied(lambda: sa.put_object(Bucket=data_bucket, Key="shared/z", Body=b"z"))
    listed = json.loads(admin.list_service_account(user))
    assert [a["accessKey"] for a in listed["accounts"]] == [f"sa{user}"]
    info = json.loads(admin.get_service_account(f"sa{user}"))
    assert info["parentUser"] == user and info["impliedPolicy"] is False
    # Disabling the parent disables its service accounts.
    admin.user_disable(user)
    with pytest.raises(ClientError) as e:
        sa.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    assert error_of(e.value)[1] == 403
    admin.user_enable(user)
    admin.update_service_account(access_key=f"sa{user}", status="disabled")
    with pytest.raises(ClientError):
        sa.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    admin.delete_service_account(f"sa{user}")
    assert json.loads(admin.list_service_account(user))["accounts"] == []


def test_non_root_admin_needs_admin_actions(server, admin, user):
    user_admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(user, SECRET), secure=False,
                            region=server.region)
    with pytest.raises(MinioAdminException) as e:
        user_admin.user_list()
    assert e.value._code == "403"
    name = f"useradmin-{user}"
    admin.policy_add(name, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["admin:ListUsers", "admin:CreateUser"], "Resource": ["arn:aws:s3:::*"]}]})
    try:
        admin.policy_set(name, user=user)
        assert user in json.loads(user_admin.user_list())
        with pytest.raises(MinioAdminException):
            user_admin.user_remove(user)
    finally:
        admin.policy_set("", user=user)
        admin.policy_remove(name)


def test_bucket_policy_names_a_user(server, admin, user, data_bucket, s3):
    acct = account_id(admin)
    c = client_as(server, user)
    denied(lambda: c.get_object(Bucket=data_bucket, Key="shared/readme.txt"))
    s3.put_bucket_policy(Bucket=data_bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{acct}:user/{user}"]},
                       "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/shared/*"]}],
    }))
    assert c.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"
    denied(lambda: c.put_object(Bucket=data_bucket, Key="shared/x", Body=b"x"))
    # A bucket-policy Deny overrides the user's own Allow.
    admin.policy_set("readwrite", user=user)
    s3.put_bucket_policy(Bucket=data_bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": {"AWS": [f"arn:aws:iam::{acct}:user/{user}"]},
                       "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/*"]}],
    }))
    denied(lambda: c.put_object(Bucket=data_bucket, Key="shared/x", Body=b"x"))
    c.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    assert s3.get_bucket_policy_status(Bucket=data_bucket)["PolicyStatus"]["IsPublic"] is False


def test_anonymous_access_through_a_public_read_policy(server, s3, data_bucket):
    url = f"{server.endpoint}/{data_bucket}/shared/readme.txt"

    def anon(u: str, method: str = "GET") -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(u, method=method), timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    assert anon(url) == 403
    assert anon(f"{server.endpoint}/{unique_bucket_name('nope')}/k") == 404
    public = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                       "Resource": [f"arn:aws:s3:::{data_bucket}/shared/*"]}],
    }
    s3.put_bucket_policy(Bucket=data_bucket, Policy=json.dumps(public))
    assert json.loads(s3.get_bucket_policy(Bucket=data_bucket)["Policy"]) == public
    assert s3.get_bucket_policy_status(Bucket=data_bucket)["PolicyStatus"]["IsPublic"] is True
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"hello"
    # A Range header RFC 9110 says to ignore goes through the intercept: the same decision.
    req = urllib.request.Request(url, headers={"Range": "bytes=5-2"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.read() == b"hello"
    assert anon(f"{server.endpoint}/{data_bucket}") == 403, "listing is not granted"
    assert anon(url, "DELETE") == 403
    s3.delete_bucket_policy(Bucket=data_bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=data_bucket)
    assert error_of(e.value) == ("NoSuchBucketPolicy", 404)
    deadline = time.monotonic() + 5
    while anon(url) != 403:
        assert time.monotonic() < deadline


@pytest.mark.parametrize("policy,reason", [
    ("{not json", "not JSON"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}), "empty statement"),
    (json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}), "no principal"),
    (json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:NoSuchAction", "Resource": "arn:aws:s3:::b/*"}]}),
     "unknown action"),
    (json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}),
     "bad effect"),
])
def test_malformed_bucket_policies_are_refused(s3, data_bucket, policy, reason):
    policy = policy.replace("arn:aws:s3:::b/", f"arn:aws:s3:::{data_bucket}/")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=data_bucket, Policy=policy)
    assert error_of(e.value) == ("MalformedPolicy", 400), reason
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=data_bucket)
    assert error_of(e.value) == ("NoSuchBucketPolicy", 404)


def test_policy_for_another_bucket_is_malformed(s3, data_bucket):
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other-bucket/*"}]}
    with pytest.raises(ClientError) as e:
        s3.put_bucket_policy(Bucket=data_bucket, Policy=json.dumps(policy))
    assert error_of(e.value) == ("MalformedPolicy", 400)


def test_changes_made_through_one_node_apply_on_another_within_a_second(tmp_path):
    cluster = StrataCluster(tmp_path / "cluster", n_nodes=4, drives_per_node=2)
    try:
        cluster.start()
        n1, n4 = cluster.nodes[0], cluster.nodes[3]
        n1.client().create_bucket(Bucket="shared")
        n1.client().put_object(Bucket="shared", Key="k", Body=b"v")
        name = "clusteruser"
        admin_of(n1).user_add(name, SECRET)
        admin_of(n1).policy_set("readonly", user=name)
        started = time.monotonic()
        c4 = client_as(n4, name)
        while True:
            try:
                assert c4.get_object(Bucket="shared", Key="k")["Body"].read() == b"v"
                break
            except ClientError:
                assert time.monotonic() - started < 1.0, "user not usable on node 4 within 1 s"
                time.sleep(0.05)
        c1 = client_as(n1, name)
        assert c1.get_object(Bucket="shared", Key="k")["Body"].read() == b"v"
        admin_of(n4).user_disable(name)
        started = time.monotonic()
        while True:
            try:
                c1.get_object(Bucket="shared", Key="k")
            except ClientError:
                break
            assert time.monotonic() - started < 1.0, "disable through node 4 not enforced on node 1 within 1 s"
            time.sleep(0.05)
    finally:
        cluster.stop()


def test_copy_needs_read_on_the_source_however_it_is_spelled(server, admin, user, data_bucket, s3):
    name = f"copy-{user}"
    admin.policy_add(name, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/*"]},
        # Reading is allowed everywhere but under secret/: a source check that mis-parses the
        # header would see another resource, matched by the Allow and not by the Deny.
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*"]},
        {"Effect": "Deny", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/secret/*"]}]})
    try:
        admin.policy_set(name, user=user)
        s3.put_object(Bucket=data_bucket, Key="secret/k", Body=b"classified")
        c = client_as(server, user)
        c.copy_object(Bucket=data_bucket, Key="mine/copy", CopySource={"Bucket": data_bucket, "Key": "shared/readme.txt"})
        denied(lambda: c.copy_object(Bucket=data_bucket, Key="mine/leak",
                                     CopySource={"Bucket": data_bucket, "Key": "secret/k"}))
        for spelling in (f"/{data_bucket}/secret/k", f"%2F{data_bucket}/secret/k", f"{data_bucket}%2Fsecret%2Fk"):
            def rewrite(request, spelling=spelling, **_):
                del request.headers["x-amz-copy-source"]
                request.headers["x-amz-copy-source"] = spelling
            c.meta.events.register("before-sign.s3.CopyObject", rewrite)
            try:
                with pytest.raises(ClientError) as e:
                    c.copy_object(Bucket=data_bucket, Key="mine/leak", CopySource=f"{data_bucket}/shared/readme.txt")
                assert error_of(e.value) == ("AccessDenied", 403), (spelling, e.value.response)
            finally:
                c.meta.events.unregister("before-sign.s3.CopyObject", rewrite)
        with pytest.raises(ClientError):
            s3.head_object(Bucket=data_bucket, Key="mine/leak")
    finally:
        admin.policy_set("", user=user)
        admin.policy_remove(name)


def test_browser_post_is_decided_on_the_form_key(server, admin, user, data_bucket, s3):
    import requests
    name = f"post-{user}"
    admin.policy_add(name, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/uploads/*"]}]})
    try:
        admin.policy_set(name, user=user)
        c = client_as(server, user)
        for key, expected in (("uploads/ok.txt", 204), ("elsewhere/no.txt", 403)):
            post = c.generate_presigned_post(Bucket=data_bucket, Key=key, ExpiresIn=300)
            r = requests.post(post["url"], data=post["fields"], files={"file": ("f.txt", b"form body")}, timeout=10)
            assert r.status_code == expected, (key, r.status_code, r.text)
        assert s3.get_object(Bucket=data_bucket, Key="uploads/ok.txt")["Body"].read() == b"form body"
        with pytest.raises(ClientError):
            s3.head_object(Bucket=data_bucket, Key="elsewhere/no.txt")
    finally:
        admin.policy_set("", user=user)
        admin.policy_remove(name)


def test_service_accounts_cannot_escape_their_policy(server, admin, user, data_bucket):
    admin.policy_set("readwrite", user=user)
    user_admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(user, SECRET), secure=False,
                            region=server.region)
    narrow = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/shared/*"]}]}
    user_admin.add_service_account(access_key=f"sb{user}", secret_key="sb-secret-key-1", policy=narrow)
    sa_admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(f"sb{user}", "sb-secret-key-1"),
                          secure=False, region=server.region)
    # Neither a sibling without the embedded policy, nor stripping its own.
    with pytest.raises(MinioAdminException) as e:
        sa_admin.add_service_account(access_key=f"sc{user}", secret_key="sc-secret-key-1")
    assert e.value._code == "403"
    with pytest.raises(MinioAdminException) as e:
        sa_admin.update_service_account(access_key=f"sb{user}", policy={"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]})
    assert e.value._code == "403"
    # The user itself may (its own), and the new one is its parent's, not the service account's.
    user_admin.add_service_account(access_key=f"sd{user}", secret_key="sd-secret-key-1")
    assert sorted(a["accessKey"] for a in json.loads(admin.list_service_account(user))["accounts"]) == [
        f"sb{user}", f"sd{user}"]


def sts_client(server, access_key: str, secret_key: str):
    import boto3
    from botocore.config import Config
    return boto3.session.Session().client(
        "sts", endpoint_url=server.endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        region_name=server.region, config=Config(retries={"total_max_attempts": 1}))


def test_assume_role_issues_session_credentials(server, admin, user, data_bucket, s3):
    admin.policy_set("readwrite", user=user)
    sts = sts_client(server, user, SECRET)
    narrow = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/shared/*"]}]}
    out = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="nightly-job",
                          DurationSeconds=900, Policy=json.dumps(narrow))
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SecretAccessKey"]) == 40
    assert out["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/{user}/nightly-job")
    import boto3
    from botocore.config import Config
    session = boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
        region_name=server.region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))
    assert session.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"
    # The session policy narrows the user's readwrite.
    denied(lambda: session.put_object(Bucket=data_bucket, Key="shared/x", Body=b"x"))
    # A presigned URL made with the session carries its token.
    url = session.generate_presigned_url("get_object", Params={"Bucket": data_bucket, "Key": "shared/readme.txt"})
    assert "X-Amz-Security-Token" in url
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"hello"
    # Without its token, or with another session's, the key is refused.
    bare = make_s3_client(server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        bare.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    assert error_of(e.value) == ("InvalidToken", 400)
    other = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="other")["Credentials"]
    swapped = boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=other["SessionToken"],
        region_name=server.region, config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        swapped.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    assert error_of(e.value) == ("InvalidToken", 400)
    # Disabling the parent ends its sessions at once.
    admin.user_disable(user)
    with pytest.raises(ClientError) as e:
        session.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    assert error_of(e.value)[1] in (400, 403)
    admin.user_enable(user)
    assert session.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"


def test_assume_role_errors_as_sts_sends_them(server, admin, user):
    admin.policy_set("readwrite", user=user)
    sts = sts_client(server, user, SECRET)
    for kwargs, code in (
        ({"DurationSeconds": 899}, "ValidationError"),  # botocore checks the minimum itself
        ({"DurationSeconds": 43201}, "InvalidParameterValue"),
        ({"Policy": "{not json"}, "MalformedPolicyDocument"),
    ):
        with pytest.raises(Exception) as e:
            sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="sess", **kwargs)
        err = e.value
        got = err.response["Error"]["Code"] if isinstance(err, ClientError) else "ValidationError"
        assert got == code, (kwargs, err)
    # Root has long-term credentials and cannot assume a role; nor can an unknown key.
    root_sts = sts_client(server, server.access_key, server.secret_key)
    with pytest.raises(ClientError) as e:
        root_sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="sess")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as e:
        sts_client(server, user, "wrong-secret-123").assume_role(
            RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="sess")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_audit_records_name_the_principal(server_factory, tmp_path):
    audit = tmp_path / "audit.log"
    srv = server_factory(extra_args=["--audit-file", str(audit)])
    srv.start()
    admin = admin_of(srv)
    admin.user_add("audited", SECRET)
    admin.policy_set("readwrite", user="audited")
    root = srv.client()
    root.create_bucket(Bucket="audited")
    client_as(srv, "audited").put_object(Bucket="audited", Key="by-user", Body=b"u")
    MinioAdmin(endpoint=srv.hostport, credentials=StaticProvider("audited", SECRET), secure=False,
               region=srv.region).add_service_account(access_key="auditedsvc", secret_key="auditedsvc-secret")
    client_as(srv, "auditedsvc", "auditedsvc-secret").get_object(Bucket="audited", Key="by-user")
    creds = sts_client(srv, "audited", SECRET).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="etl")["Credentials"]
    import boto3
    from botocore.config import Config
    boto3.session.Session().client(
        "s3", endpoint_url=srv.endpoint, aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
        region_name=srv.region, config=Config(s3={"addressing_style": "path"})).head_object(
            Bucket="audited", Key="by-user")
    # Records are written behind the requests: wait for the last one before stopping.
    deadline = time.monotonic() + 10
    while creds["AccessKeyId"] not in (audit.read_text() if audit.exists() else ""):
        assert time.monotonic() < deadline, "the session's record never reached the audit file"
        time.sleep(0.05)
    srv.stop()
    records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]

    def one(api: str, access_key: str) -> dict:
        found = [r for r in records if r["api"] == api and r.get("access_key") == access_key]
        assert found, (api, access_key, [(r["api"], r.get("access_key")) for r in records])
        return found[-1]

    assert one("PutObject", "audited").get("user") == "audited", one("PutObject", "audited")
    assert one("PutObject", "audited")["principal_type"] == "User"
    svc = one("GetObject", "auditedsvc")
    assert (svc["user"], svc["principal_type"]) == ("audited", "ServiceAccount")
    session = one("HeadObject", creds["AccessKeyId"])
    assert (session["user"], session["principal_type"], session["session_name"]) == ("audited", "AssumedRole", "etl")
    root_rec = one("CreateBucket", srv.access_key)
    assert (root_rec["user"], root_rec["principal_type"]) == ("root", "Root")
    text = audit.read_text()
    for secret in (SECRET, "auditedsvc-secret", creds["SecretAccessKey"], creds["SessionToken"]):
        assert secret not in text


def scrape_token(access_key: str, secret_key: str) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    claims = b64(json.dumps({"exp": int(time.time()) + 3600, "sub": access_key, "iss": "prometheus"}).encode())
    signature = hmac.new(secret_key.encode(), f"{header}.{claims}".encode(), hashlib.sha512).digest()
    return f"{header}.{claims}.{b64(signature)}"


def test_metrics_scraped_by_a_user_holding_admin_prometheus(server, admin):
    import base64
    admin.user_add("scraper", SECRET)
    admin.user_add("noscrape", SECRET)
    admin.policy_add("prometheus-only", policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["admin:Prometheus"]}]})
    try:
        admin.policy_set("prometheus-only", user="scraper")
        admin.policy_set("readwrite", user="noscrape")

        def scrape(authorization: str) -> int:
            req = urllib.request.Request(f"{server.endpoint}/metrics/node", headers={"Authorization": authorization})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    assert b"strata_" in r.read()
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        def basic(user: str, secret: str) -> str:
            return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

        assert scrape("Bearer " + scrape_token("scraper", SECRET)) == 200
        assert scrape(basic("scraper", SECRET)) == 200
        assert scrape("Bearer " + scrape_token(server.access_key, server.secret_key)) == 200
        assert scrape("Bearer " + scrape_token("noscrape", SECRET)) == 403, "readwrite is no admin right"
        assert scrape(basic("noscrape", SECRET)) == 403
        assert scrape(basic("scraper", "wrong-secret-1")) == 403
        assert scrape("Bearer " + scrape_token("scraper", "wrong-secret-1")) == 403
        admin.user_disable("scraper")
        assert scrape(basic("scraper", SECRET)) == 403
    finally:
        admin.user_remove("scraper")
        admin.user_remove("noscrape")
        admin.policy_remove("prometheus-only")


def test_strata_admin_cli_manages_identities(server, data_bucket, tmp_path):
    from conftest import StrataCli
    cli = StrataCli(tmp_path / "strata-config")
    cli("alias", "set", "t", server.endpoint, server.access_key, server.secret_key)
    cli("admin", "user", "add", "t", "cliuser", SECRET)
    assert cli.json("admin", "user", "list", "t")["cliuser"]["status"] == "enabled"
    policy_file = tmp_path / "shared-read.json"
    policy_file.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{data_bucket}/shared/*"]}]}))
    cli("admin", "policy", "create", "t", "cli-shared-read", str(policy_file))
    assert "cli-shared-read" in cli("admin", "policy", "list", "t").stdout.split()
    assert cli.json("admin", "policy", "info", "t", "cli-shared-read")["PolicyName"] == "cli-shared-read"
    c = client_as(server, "cliuser")
    denied(lambda: c.get_object(Bucket=data_bucket, Key="shared/readme.txt"))
    cli("admin", "policy", "attach", "t", "cli-shared-read", "--user", "cliuser")
    assert c.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"
    entities = cli.json("admin", "policy", "entities", "t", "--policy", "cli-shared-read")
    assert entities["policyMappings"][0]["users"] == ["cliuser"]
    assert cli("admin", "policy", "attach", "t", "readonly", check=False).returncode != 0, "needs --user or --group"
    # Groups.
    cli("admin", "group", "add", "t", "cli-group", "cliuser")
    assert cli.json("admin", "group", "info", "t", "cli-group")["members"] == ["cliuser"]
    assert "cli-group" in cli("admin", "group", "list", "t").stdout.split()
    cli("admin", "group", "disable", "t", "cli-group")
    assert cli.json("admin", "group", "info", "t", "cli-group")["status"] == "disabled"
    cli("admin", "group", "remove", "t", "cli-group", "cliuser")
    cli("admin", "group", "remove", "t", "cli-group")
    # Service accounts: a generated secret is printed once, never by info or list.
    out = cli.json("admin", "svcacct", "add", "t", "cliuser", "--name", "backup")
    sa_key, sa_secret = out["credentials"]["accessKey"], out["credentials"]["secretKey"]
    sa = client_as(server, sa_key, sa_secret)
    assert sa.get_object(Bucket=data_bucket, Key="shared/readme.txt")["Body"].read() == b"hello"
    info = cli("admin", "svcacct", "info", "t", sa_key).stdout
    assert "cliuser" in info and sa_secret not in info
    listed = cli("admin", "svcacct", "list", "t", "cliuser").stdout
    assert sa_key in listed and sa_secret not in listed
    cli("admin", "svcacct", "disable", "t", sa_key)
    with pytest.raises(ClientError):
        sa.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    cli("admin", "svcacct", "enable", "t", sa_key)
    sa.get_object(Bucket=data_bucket, Key="shared/readme.txt")
    cli("admin", "svcacct", "remove", "t", sa_key)
    # Users: disable, enable, remove; errors exit non-zero with the server's reason.
    cli("admin", "user", "disable", "t", "cliuser")
    assert cli.json("admin", "user", "info", "t", "cliuser")["status"] == "disabled"
    cli("admin", "user", "enable", "t", "cliuser")
    cli("admin", "policy", "detach", "t", "cli-shared-read", "--user", "cliuser")
    cli("admin", "policy", "remove", "t", "cli-shared-read")
    cli("admin", "user", "remove", "t", "cliuser")
    missing = cli("admin", "user", "info", "t", "cliuser", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr, missing.stderr
