"""STS AssumeRoleWithWebIdentity against a real OpenID Connect provider (the certified npm
`oidc-provider`, started on 127.0.0.1 by tests/e2e/oidc.py): tokens verified by signature,
issuer, audience and expiry, policies from the token's claim, key rotation followed, two
providers at once, and role ARNs (arn:minio:iam:::role/<provider>) that pick a provider."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import StrataServer, error_of
from oidc import OidcProvider

AUDIENCE = "https://strata.test"
# Not a role of any provider: the AWS SDKs require some RoleArn, and beside a provider that
# reads policies from a claim such an ARN counts as none.
ROLE = "arn:aws:iam::123456789012:role/web"
# The second provider of role_server: same issuer, its own audience, a role policy.
APP_AUDIENCE = "https://app.strata.test"
APP_ROLE = "arn:minio:iam:::role/app"
SHORT_TTL_SECS = 3


@pytest.fixture(scope="module")
def providers(tmp_module):
    main = OidcProvider(tmp_module / "oidc-main").start()
    short = OidcProvider(tmp_module / "oidc-short", ttl_secs=SHORT_TTL_SECS).start()
    yield main, short
    main.stop()
    short.stop()


@pytest.fixture(scope="module")
def oidc_server(providers, tmp_module):
    main, short = providers
    srv = StrataServer(tmp_module / "oidc-strata", prefix=[
        "env",
        f"STRATA_IDENTITY_OPENID_CONFIG_URL={main.config_url}",
        f"STRATA_IDENTITY_OPENID_CLIENT_ID={AUDIENCE}",
        f"STRATA_IDENTITY_OPENID_CONFIG_URL_SHORT={short.config_url}",
        f"STRATA_IDENTITY_OPENID_CLIENT_ID_SHORT={AUDIENCE}",
    ])
    srv.start()
    s3 = srv.client()
    s3.create_bucket(Bucket="web")
    s3.put_object(Bucket="web", Key="doc.txt", Body=b"for web identities")
    yield srv
    srv.stop()
    srv.kill()


def sts_of(server):
    return boto3.session.Session().client(
        "sts", endpoint_url=server.endpoint, region_name=server.region,
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}))


def assume(server, token: str, role: str = ROLE, **kw):
    return sts_of(server).assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="pod-1", WebIdentityToken=token, **kw)


def s3_with(server, creds):
    return boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, region_name=server.region,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


def sts_error(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_policies_come_from_the_token(oidc_server, providers):
    main, _ = providers
    out = assume(oidc_server, main.token("reader"))
    assert out["SubjectFromWebIdentityToken"] == "reader"
    assert out["Audience"] == AUDIENCE
    assert out["Provider"] == main.issuer
    reader = s3_with(oidc_server, out["Credentials"])
    assert reader.get_object(Bucket="web", Key="doc.txt")["Body"].read() == b"for web identities"
    with pytest.raises(ClientError) as e:
        reader.put_object(Bucket="web", Key="x", Body=b"x")
    assert error_of(e.value) == ("AccessDenied", 403)
    # An array claim: readonly and writeonly together.
    both = s3_with(oidc_server, assume(oidc_server, main.token("groups"))["Credentials"])
    both.put_object(Bucket="web", Key="from-groups", Body=b"g")
    assert both.get_object(Bucket="web", Key="from-groups")["Body"].read() == b"g"
    # A session policy narrows further.
    narrow = assume(oidc_server, main.token("writer"), Policy=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'))
    with pytest.raises(ClientError):
        s3_with(oidc_server, narrow["Credentials"]).put_object(Bucket="web", Key="y", Body=b"y")


def test_tokens_that_must_be_refused(oidc_server, providers):
    main, short = providers
    # No policy claim: nothing to grant.
    assert sts_error(lambda: assume(oidc_server, main.token("nobody"))) == "AccessDenied"
    # Issued for another audience.
    assert sts_error(lambda: assume(oidc_server, main.token("reader", resource="https://other.test"))) \
        == "InvalidIdentityToken"
    # Tampered: the claims changed after signing.
    header, payload, signature = main.token("reader").split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    assert sts_error(lambda: assume(oidc_server, f"{header}.{flipped}.{signature}")) == "InvalidIdentityToken"
    # Not a JWT at all.
    assert sts_error(lambda: assume(oidc_server, "not-a-token")) == "InvalidIdentityToken"
    # Expired (the second provider's tokens live SHORT_TTL_SECS; the leeway is 5 s).
    token = short.token("reader")
    assume(oidc_server, token)  # fine while fresh: a second provider works side by side
    time.sleep(SHORT_TTL_SECS + 6)
    assert sts_error(lambda: assume(oidc_server, token)) == "ExpiredTokenException"
    # DurationSeconds bounds.
    assert sts_error(lambda: assume(oidc_server, main.token("reader"), DurationSeconds=43201)) \
        == "InvalidParameterValue"


def test_rotated_signing_key_is_followed(oidc_server, providers):
    main, _ = providers
    before = main.token("reader")
    assume(oidc_server, before)
    main.rotate_keys("k2")
    time.sleep(2.1)  # the key set is fetched again at most every 2 s
    after = main.token("reader")
    creds = assume(oidc_server, after)["Credentials"]
    assert s3_with(oidc_server, creds).get_object(Bucket="web", Key="doc.txt")["Body"].read()
    # The old key is gone from the provider's key set: its tokens no longer verify.
    assert sts_error(lambda: assume(oidc_server, before)) == "InvalidIdentityToken"


def test_without_a_provider_the_action_is_refused(server):
    # The shared module server has no provider configured.
    assert sts_error(lambda: assume(server, "x.y.z")) == "InvalidAction"


@pytest.fixture(scope="module")
def role_server(providers, tmp_module):
    """Two providers on the main test provider (one issuer): `openid` takes policies from the
    token's claim (audience AUDIENCE), `app` has a role (audience APP_AUDIENCE, readwrite)."""
    main, _ = providers
    srv = StrataServer(tmp_module / "oidc-roles", prefix=[
        "env",
        f"STRATA_IDENTITY_OPENID_CONFIG_URL={main.config_url}",
        f"STRATA_IDENTITY_OPENID_CLIENT_ID={AUDIENCE}",
        f"STRATA_IDENTITY_OPENID_CONFIG_URL_APP={main.config_url}",
        f"STRATA_IDENTITY_OPENID_CLIENT_ID_APP={APP_AUDIENCE}",
        "STRATA_IDENTITY_OPENID_ROLE_POLICY_APP=readwrite",
    ])
    srv.start()
    srv.client().create_bucket(Bucket="web")
    yield srv
    srv.stop()
    srv.kill()


def test_a_role_arn_picks_its_provider(role_server, providers):
    main, short = providers
    assert APP_ROLE in role_server.log_path.read_text(errors="replace"), "role ARNs are logged at start"
    # `nobody` tokens name no policy: only the role grants anything.
    out = assume(role_server, main.token("nobody", resource=APP_AUDIENCE), role=APP_ROLE)
    assert out["Audience"] == APP_AUDIENCE
    assert ":assumed-role/app/pod-1" in out["AssumedRoleUser"]["Arn"]
    s3 = s3_with(role_server, out["Credentials"])
    s3.put_object(Bucket="web", Key="by-role", Body=b"r")
    assert s3.get_object(Bucket="web", Key="by-role")["Body"].read() == b"r"
    # The role's provider alone verifies the token: one for the other provider's audience is
    # refused (though that provider would take it), and so is one from another issuer.
    assert sts_error(lambda: assume(role_server, main.token("reader"), role=APP_ROLE)) \
        == "InvalidIdentityToken"
    assert sts_error(lambda: assume(role_server, short.token("reader", resource=APP_AUDIENCE),
                                    role=APP_ROLE)) == "InvalidIdentityToken"
    # Without the role ARN the token goes to the provider of its issuer as before: the
    # claim-based one, for which this token has the wrong audience.
    assert sts_error(lambda: assume(role_server, main.token("nobody", resource=APP_AUDIENCE))) \
        == "InvalidIdentityToken"
    reader = assume(role_server, main.token("reader"))  # ROLE is no role: the claim decides
    assert reader["AssumedRoleUser"]["Arn"].endswith(":assumed-role/openid/pod-1")


def test_an_unknown_role_arn_is_refused(role_server, providers):
    main, _ = providers
    for unknown in ("arn:minio:iam:::role/nope", "arn:minio:iam:::role/openid"):  # openid has no role
        with pytest.raises(ClientError) as e:
            assume(role_server, main.token("reader"), role=unknown)
        assert error_of(e.value) == ("InvalidParameterValue", 400), unknown
    # No RoleArn at all (boto3 always sends one; MinIO's SDKs do not): as before.
    import requests
    r = requests.post(role_server.endpoint + "/", timeout=10, data={
        "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
        "WebIdentityToken": main.token("reader")})
    assert r.status_code == 200, r.text
    assert "<AccessKeyId>" in r.text
