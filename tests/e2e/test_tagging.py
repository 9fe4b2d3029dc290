"""Object and bucket tagging with boto3 and the aws CLI: tags on PUT, multipart and copy,
Put/Get/DeleteObjectTagging by version, x-amz-tagging-count, AWS's limits and errors, bucket
tags, and policies that test s3:ExistingObjectTag and s3:RequestObjectTag."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider

from conftest import error_of, make_s3_client, unique_bucket_name

SECRET = "tag-user-secret-1"


def tags_of(s3, bucket: str, key: str, **kw) -> dict[str, str]:
    resp = s3.get_object_tagging(Bucket=bucket, Key=key, **kw)
    return {t["Key"]: t["Value"] for t in resp["TagSet"]}


def tag_set(tags: dict[str, str]) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def expect_error(call, code: str, status: int) -> None:
    with pytest.raises(ClientError) as e:
        call()
    assert error_of(e.value) == (code, status), e.value.response


def test_tags_on_put_get_head_and_in_place_changes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", Tagging="project=blue&owner=a%20b")
    assert tags_of(s3, bucket, "k") == {"project": "blue", "owner": "a b"}
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["TagCount"] == 2
    assert got["Body"].read() == b"data"
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    etag = head["ETag"]

    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set({"stage": "prod"}))
    assert tags_of(s3, bucket, "k") == {"stage": "prod"}
    # The data and its ETag do not change with the tags.
    assert s3.head_object(Bucket=bucket, Key="k")["ETag"] == etag
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"

    resp = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "k") == {}
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="k")

    expect_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"), "NoSuchKey", 404)
    expect_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging=tag_set({"a": "b"})),
                 "NoSuchKey", 404)


def test_tags_by_version(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="v", Body=b"1", Tagging="gen=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="v", Body=b"2", Tagging="gen=2")["VersionId"]
    assert tags_of(s3, bucket, "v", VersionId=v1) == {"gen": "1"}
    assert tags_of(s3, bucket, "v") == {"gen": "2"}
    resp = s3.put_object_tagging(Bucket=bucket, Key="v", VersionId=v1, Tagging=tag_set({"gen": "one"}))
    assert resp["VersionId"] == v1
    assert tags_of(s3, bucket, "v", VersionId=v1) == {"gen": "one"}
    assert tags_of(s3, bucket, "v", VersionId=v2) == {"gen": "2"}
    # A delete marker has no tags to change: 405 by id, 404 as the latest.
    marker = s3.delete_object(Bucket=bucket, Key="v")["VersionId"]
    expect_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="v", VersionId=marker), "MethodNotAllowed", 405)
    expect_error(lambda: s3.get_object_tagging(Bucket=bucket, Key="v"), "NoSuchKey", 404)
    expect_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="v", VersionId="00000000-0000-0000-0000-000000000000",
                                               Tagging=tag_set({"a": "b"})), "NoSuchVersion", 404)


@pytest.mark.parametrize("tags", [
    {f"k{i}": "v" for i in range(11)},
    {"k" * 129: "v"},
    {"k": "v" * 257},
    {"bad*key": "v"},
    {"aws:reserved": "v"},
])
def test_invalid_tag_sets_are_refused_and_change_nothing(s3, bucket, tags):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="keep=me")
    expect_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(tags)), "InvalidTag", 400)
    assert tags_of(s3, bucket, "k") == {"keep": "me"}


def test_invalid_tagging_header_refuses_the_put(s3, bucket):
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="n", Body=b"x", Tagging="a=1&a=2"), "InvalidTag", 400)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="n", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11))),
                 "InvalidTag", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="n"), "404", 404)
    # Duplicate keys in a body.
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    body = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    expect_error(lambda: s3.put_object_tagging(Bucket=bucket, Key="d", Tagging=body), "InvalidTag", 400)


def test_multipart_and_copy_carry_tags(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="kind=multipart")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 1024)
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert tags_of(s3, bucket, "mp") == {"kind": "multipart"}

    # COPY (the default) keeps the source's tags; REPLACE takes the request's.
    s3.copy_object(Bucket=bucket, Key="c1", CopySource={"Bucket": bucket, "Key": "mp"})
    assert tags_of(s3, bucket, "c1") == {"kind": "multipart"}
    s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "mp"},
                   TaggingDirective="REPLACE", Tagging="kind=copy")
    assert tags_of(s3, bucket, "c2") == {"kind": "copy"}
    s3.copy_object(Bucket=bucket, Key="c3", CopySource={"Bucket": bucket, "Key": "mp"}, TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "c3") == {}


def test_bucket_tagging(s3, bucket):
    expect_error(lambda: s3.get_bucket_tagging(Bucket=bucket), "NoSuchTagSet", 404)
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({"cost-center": "42", "team": "storage"}))
    got = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert got == {"cost-center": "42", "team": "storage"}
    # 50 tags are allowed on a bucket, 51 are not.
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({f"k{i}": "v" for i in range(50)}))
    expect_error(lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set({f"k{i}": "v" for i in range(51)})),
                 "InvalidTag", 400)
    s3.delete_bucket_tagging(Bucket=bucket)
    expect_error(lambda: s3.get_bucket_tagging(Bucket=bucket), "NoSuchTagSet", 404)
    expect_error(lambda: s3.get_bucket_tagging(Bucket=unique_bucket_name("none")), "NoSuchBucket", 404)


def test_aws_cli_tagging(aws, s3, bucket):
    s3.put_object(Bucket=bucket, Key="cli", Body=b"x")
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "cli",
             "--tagging", "TagSet=[{Key=env,Value=test}]")
    out = json.loads(aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "cli").stdout)
    assert out["TagSet"] == [{"Key": "env", "Value": "test"}]


def test_policies_on_existing_and_request_tags(server, s3, bucket):
    """A user may read only objects tagged public=yes, and may write only with
    classification=open; tags are read from the object before the decision."""
    admin = MinioAdmin(endpoint=server.hostport, credentials=StaticProvider(server.access_key, server.secret_key),
                       secure=False, region=server.region)
    user = unique_bucket_name("tagu")
    admin.user_add(user, SECRET)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectTagging"],
             "Resource": f"arn:aws:s3:::{bucket}/*",
             "Condition": {"StringEquals": {"s3:ExistingObjectTag/public": "yes"}}},
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:PutObjectTagging"],
             "Resource": f"arn:aws:s3:::{bucket}/*",
             "Condition": {"StringEquals": {"s3:RequestObjectTag/classification": "open"}}},
        ],
    }
    admin.policy_add(f"{user}-tags", policy=policy)
    try:
        admin.attach_policy([f"{user}-tags"], user=user)
        s3.put_object(Bucket=bucket, Key="open", Body=b"o", Tagging="public=yes")
        s3.put_object(Bucket=bucket, Key="closed", Body=b"c", Tagging="public=no")
        s3.put_object(Bucket=bucket, Key="untagged", Body=b"u")
        c = make_s3_client(server.endpoint, user, SECRET)
        assert c.get_object(Bucket=bucket, Key="open")["Body"].read() == b"o"
        for key in ("closed", "untagged"):
            expect_error(lambda: c.get_object(Bucket=bucket, Key=key), "AccessDenied", 403)
        # Retagging through root flips the decision.
        s3.put_object_tagging(Bucket=bucket, Key="closed", Tagging=tag_set({"public": "yes"}))
        assert c.get_object(Bucket=bucket, Key="closed")["Body"].read() == b"c"
        c.put_object(Bucket=bucket, Key="new", Body=b"n", Tagging="classification=open")
        expect_error(lambda: c.put_object(Bucket=bucket, Key="new2", Body=b"n", Tagging="classification=secret"),
                     "AccessDenied", 403)
        expect_error(lambda: c.put_object(Bucket=bucket, Key="new3", Body=b"n"), "AccessDenied", 403)
    finally:
        admin.user_remove(user)
        admin.policy_remove(f"{user}-tags")
