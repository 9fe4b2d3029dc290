"""Smoke test of the OpenID Connect provider fixture (tests/e2e/oidc.py, tests/oidc/provider.mjs):
discovery, RS256 JWT access tokens from the client_credentials grant with the policy claim,
and key rotation. Needs no strata server."""
from __future__ import annotations

import time

from oidc import OidcProvider, decode_jwt


def test_oidc_provider_tokens_and_key_rotation(tmp_path):
    op = OidcProvider(tmp_path / "oidc", ttl_secs=120)
    try:
        op.start()
        assert op.issuer.startswith("http://127.0.0.1:")
        conf = op.discovery()
        assert conf["issuer"] == op.issuer
        assert conf["jwks_uri"].startswith(op.issuer)
        assert [k["kid"] for k in op.jwks()["keys"]] == ["k1"]

        now = int(time.time())
        header, claims = decode_jwt(op.token("reader"))
        assert header["alg"] == "RS256" and header["kid"] == "k1"
        assert claims["iss"] == op.issuer
        assert claims["aud"] == "https://strata.test"
        assert claims["sub"] == "reader" and claims["client_id"] == "reader"
        assert claims["policy"] == "readonly"
        assert now - 5 <= claims["iat"] <= now + 5
        assert claims["exp"] == claims["iat"] + 120

        _, claims = decode_jwt(op.token("groups", resource="https://other.test"))
        assert claims["aud"] == "https://other.test"
        assert claims["sub"] == "groups"
        assert claims["policy"] == ["readonly", "writeonly"]
        _, claims = decode_jwt(op.token("nobody"))
        assert "policy" not in claims

        issuer = op.issuer
        op.rotate_keys("k2")
        assert op.issuer == issuer
        assert [k["kid"] for k in op.jwks()["keys"]] == ["k2"]
        header, claims = decode_jwt(op.token("writer"))
        assert header["kid"] == "k2"
        assert claims["iss"] == issuer and claims["policy"] == "readwrite"
    finally:
        op.stop()
        op.stop()
    assert not op.running
