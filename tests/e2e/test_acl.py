"""Access control lists, Object Ownership and Block Public Access with boto3, the aws CLI and
s3cmd: canned ACLs and grant headers on buckets and objects, ACL bodies with AWS's
validation, anonymous and authenticated access through ACL grants, BucketOwnerEnforced
turning ACLs off, and Block Public Access overriding ACLs and bucket policies."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider

from conftest import empty_and_delete_bucket, error_of, make_s3_client, unique_bucket_name

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
SECRET = "acl-user-secret-1"


def expect_error(call, code: str, status: int) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response


@pytest.fixture(scope="module")
def anon(server):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name=server.region,
                        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def plain_user(server):
    """A user with no policy at all: only ACL grants to AuthenticatedUsers reach it."""
    admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(server.access_key, server.secret_key),
                       secure=False, region=server.region)
    name = unique_bucket_name("aclu")
    admin.user_add(name, SECRET)
    yield make_s3_client(server.endpoint, name, SECRET)
    admin.user_remove(name)


@pytest.fixture
def acl_bucket(s3):
    name = unique_bucket_name("acl")
    s3.create_bucket(Bucket=name)
    yield name
    for cleanup in (s3.delete_public_access_block, s3.delete_bucket_policy):
        try:
            cleanup(Bucket=name)
        except ClientError:
            pass
    empty_and_delete_bucket(s3, name)


def grants_of(resp) -> set[tuple[str, str]]:
    out = set()
    for g in resp["Grants"]:
        who = g["Grantee"].get("URI") or g["Grantee"].get("ID")
        out.add((who, g["Permission"]))
    return out


def test_defaults_are_private_to_the_owner(s3, anon, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x")
    bucket_acl = s3.get_bucket_acl(Bucket=acl_bucket)
    owner = bucket_acl["Owner"]["ID"]
    assert len(owner) == 64
    assert grants_of(bucket_acl) == {(owner, "FULL_CONTROL")}
    assert grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="k")) == {(owner, "FULL_CONTROL")}
    listed = s3.list_objects_v2(Bucket=acl_bucket, FetchOwner=True)["Contents"][0]["Owner"]["ID"]
    assert listed == owner
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="k"), "AccessDenied", 403)
    expect_error(lambda: s3.get_bucket_ownership_controls(Bucket=acl_bucket), "OwnershipControlsNotFoundError", 404)


def test_public_read_object_acl(s3, anon, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="public", Body=b"open", ACL="public-read")
    s3.put_object(Bucket=acl_bucket, Key="private", Body=b"closed")
    assert anon.get_object(Bucket=acl_bucket, Key="public")["Body"].read() == b"open"
    assert anon.head_object(Bucket=acl_bucket, Key="public")["ContentLength"] == 4
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="private"), "AccessDenied", 403)
    # READ on an object does not let anyone read its ACL, change it, or list the bucket.
    expect_error(lambda: anon.get_object_acl(Bucket=acl_bucket, Key="public"), "AccessDenied", 403)
    expect_error(lambda: anon.put_object(Bucket=acl_bucket, Key="public", Body=b"x"), "AccessDenied", 403)
    expect_error(lambda: anon.list_objects_v2(Bucket=acl_bucket), "AccessDenied", 403)
    assert (ALL_USERS, "READ") in grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="public"))
    # PutObjectAcl back to private closes it.
    s3.put_object_acl(Bucket=acl_bucket, Key="public", ACL="private")
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="public"), "AccessDenied", 403)


def test_grant_headers_and_authenticated_read(s3, anon, plain_user, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"data")
    expect_error(lambda: plain_user.get_object(Bucket=acl_bucket, Key="k"), "AccessDenied", 403)
    s3.put_object_acl(Bucket=acl_bucket, Key="k", ACL="authenticated-read")
    assert plain_user.get_object(Bucket=acl_bucket, Key="k")["Body"].read() == b"data"
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="k"), "AccessDenied", 403)
    s3.put_object_acl(Bucket=acl_bucket, Key="k", GrantRead=f'uri="{ALL_USERS}"')
    assert anon.get_object(Bucket=acl_bucket, Key="k")["Body"].read() == b"data"
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="k", ACL="public-read",
                                           GrantRead=f'uri="{ALL_USERS}"'), "InvalidRequest", 400)
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="k", GrantRead='uri="http://example.com/x"'),
                 "InvalidArgument", 400)
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="k", ACL="no-such-acl"), "InvalidArgument", 400)
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="missing", ACL="private"), "NoSuchKey", 404)


def test_acl_bodies_are_validated(s3, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x")
    owner = s3.get_bucket_acl(Bucket=acl_bucket)["Owner"]

    def body(grants, owner_id=owner["ID"]):
        return {"Owner": {"ID": owner_id}, "Grants": grants}

    full = {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"}
    public = {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}
    s3.put_object_acl(Bucket=acl_bucket, Key="k", AccessControlPolicy=body([full, public]))
    assert grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="k")) == {(owner["ID"], "FULL_CONTROL"),
                                                                      (ALL_USERS, "READ")}
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="k", AccessControlPolicy=body([full], "0" * 64)),
                 "AccessDenied", 403)
    stranger = {"Grantee": {"Type": "CanonicalUser", "ID": "f" * 64}, "Permission": "READ"}
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="k", AccessControlPolicy=body([full, stranger])),
                 "InvalidArgument", 400)
    email = {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "a@example.com"}, "Permission": "READ"}
    expect_error(lambda: s3.put_object_acl(Bucket=acl_bucket, Key="k", AccessControlPolicy=body([full, email])),
                 "UnresolvableGrantByEmailAddress", 400)
    # Nothing of the refused bodies was applied.
    assert grants_of(s3.get_object_acl(Bucket=acl_bucket, Key="k")) == {(owner["ID"], "FULL_CONTROL"),
                                                                      (ALL_USERS, "READ")}


def test_bucket_acls(s3, anon, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x")
    s3.put_bucket_acl(Bucket=acl_bucket, ACL="public-read")
    assert (ALL_USERS, "READ") in grants_of(s3.get_bucket_acl(Bucket=acl_bucket))
    assert [o["Key"] for o in anon.list_objects_v2(Bucket=acl_bucket)["Contents"]] == ["k"]
    # Bucket READ lists; it does not read objects (their own ACLs decide) or write.
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="k"), "AccessDenied", 403)
    expect_error(lambda: anon.put_object(Bucket=acl_bucket, Key="new", Body=b"x"), "AccessDenied", 403)
    s3.put_bucket_acl(Bucket=acl_bucket, ACL="public-read-write")
    anon.put_object(Bucket=acl_bucket, Key="new", Body=b"anonymous")
    assert s3.get_object(Bucket=acl_bucket, Key="new")["Body"].read() == b"anonymous"
    anon.delete_object(Bucket=acl_bucket, Key="new")
    s3.put_bucket_acl(Bucket=acl_bucket, ACL="private")
    expect_error(lambda: anon.list_objects_v2(Bucket=acl_bucket), "AccessDenied", 403)
    expect_error(lambda: s3.put_bucket_acl(Bucket=acl_bucket), "MissingSecurityHeader", 400)


def test_explicit_deny_beats_an_acl_grant(s3, anon, acl_bucket):
    s3.put_object(Bucket=acl_bucket, Key="k", Body=b"x", ACL="public-read")
    s3.put_bucket_policy(Bucket=acl_bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{acl_bucket}/*"}]}))
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="k"), "AccessDenied", 403)


def test_bucket_owner_enforced_turns_acls_off(s3, anon):
    name = unique_bucket_name("enf")
    expect_error(lambda: s3.create_bucket(Bucket=name, ACL="public-read", ObjectOwnership="BucketOwnerEnforced"),
                 "InvalidBucketAclWithObjectOwnership", 400)
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerEnforced")
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        expect_error(lambda: s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read"),
                     "AccessControlListNotSupported", 400)
        s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
        expect_error(lambda: s3.put_bucket_acl(Bucket=name, ACL="public-read"), "AccessControlListNotSupported", 400)
        expect_error(lambda: s3.put_object_acl(Bucket=name, Key="k", ACL="public-read"),
                     "AccessControlListNotSupported", 400)
        owner = s3.get_bucket_acl(Bucket=name)["Owner"]["ID"]
        assert grants_of(s3.get_object_acl(Bucket=name, Key="k")) == {(owner, "FULL_CONTROL")}

        # Switching an ACL-enabled bucket to enforced makes its public objects private.
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]})
        s3.put_object(Bucket=name, Key="pub", Body=b"p", ACL="public-read")
        assert anon.get_object(Bucket=name, Key="pub")["Body"].read() == b"p"
        s3.put_bucket_ownership_controls(Bucket=name,
                                         OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        expect_error(lambda: anon.get_object(Bucket=name, Key="pub"), "AccessDenied", 403)
        # A bucket whose own ACL grants others cannot be switched.
        s3.delete_bucket_ownership_controls(Bucket=name)
        expect_error(lambda: s3.get_bucket_ownership_controls(Bucket=name), "OwnershipControlsNotFoundError", 404)
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
        expect_error(lambda: s3.put_bucket_ownership_controls(
            Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
            "InvalidBucketAclWithObjectOwnership", 400)
    finally:
        empty_and_delete_bucket(s3, name)


def test_block_public_access(s3, anon, acl_bucket):
    expect_error(lambda: s3.get_public_access_block(Bucket=acl_bucket), "NoSuchPublicAccessBlockConfiguration", 404)
    s3.put_object(Bucket=acl_bucket, Key="pub", Body=b"p", ACL="public-read")
    public_policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{acl_bucket}/policy/*"}]})
    s3.put_bucket_policy(Bucket=acl_bucket, Policy=public_policy)
    s3.put_object(Bucket=acl_bucket, Key="policy/doc", Body=b"d")
    assert anon.get_object(Bucket=acl_bucket, Key="policy/doc")["Body"].read() == b"d"

    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    cfg = s3.get_public_access_block(Bucket=acl_bucket)["PublicAccessBlockConfiguration"]
    assert cfg == {"BlockPublicAcls": True, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
                   "RestrictPublicBuckets": False}
    expect_error(lambda: s3.put_object(Bucket=acl_bucket, Key="new", Body=b"x", ACL="public-read"), "AccessDenied", 403)
    expect_error(lambda: s3.put_bucket_acl(Bucket=acl_bucket, ACL="public-read"), "AccessDenied", 403)
    s3.put_object(Bucket=acl_bucket, Key="new", Body=b"x", ACL="private")
    # Existing public ACLs still work until IgnorePublicAcls.
    assert anon.get_object(Bucket=acl_bucket, Key="pub")["Body"].read() == b"p"

    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={
        "IgnorePublicAcls": True, "BlockPublicPolicy": True})
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="pub"), "AccessDenied", 403)
    expect_error(lambda: s3.put_bucket_policy(Bucket=acl_bucket, Policy=public_policy), "AccessDenied", 403)
    # The stored public policy still applies: BlockPublicPolicy only refuses new ones.
    assert anon.get_object(Bucket=acl_bucket, Key="policy/doc")["Body"].read() == b"d"

    s3.put_public_access_block(Bucket=acl_bucket, PublicAccessBlockConfiguration={"RestrictPublicBuckets": True})
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="policy/doc"), "AccessDenied", 403)
    # Root is not affected.
    assert s3.get_object(Bucket=acl_bucket, Key="policy/doc")["Body"].read() == b"d"

    s3.delete_public_access_block(Bucket=acl_bucket)
    expect_error(lambda: s3.get_public_access_block(Bucket=acl_bucket), "NoSuchPublicAccessBlockConfiguration", 404)
    assert anon.get_object(Bucket=acl_bucket, Key="pub")["Body"].read() == b"p"


def test_aws_cli_and_s3cmd_acls(aws, s3cmd, s3, anon, acl_bucket, tmp_path):
    src = tmp_path / "f.txt"
    src.write_bytes(b"cli")
    aws("s3", "cp", str(src), f"s3://{acl_bucket}/cli.txt", "--acl", "public-read")
    assert anon.get_object(Bucket=acl_bucket, Key="cli.txt")["Body"].read() == b"cli"
    s3.put_object(Bucket=acl_bucket, Key="s3cmd.txt", Body=b"s3cmd")
    s3cmd("setacl", "--acl-public", f"s3://{acl_bucket}/s3cmd.txt")
    assert anon.get_object(Bucket=acl_bucket, Key="s3cmd.txt")["Body"].read() == b"s3cmd"
    s3cmd("setacl", "--acl-private", f"s3://{acl_bucket}/s3cmd.txt")
    expect_error(lambda: anon.get_object(Bucket=acl_bucket, Key="s3cmd.txt"), "AccessDenied", 403)
