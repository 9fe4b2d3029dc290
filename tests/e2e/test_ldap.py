"""STS AssumeRoleWithLDAPIdentity against a real OpenLDAP (`slapd`, started on 127.0.0.1 by
tests/e2e/ldap.py): MinIO's SDK logs users in with their directory password, policies mapped to
user and group DNs through MinIO's admin API decide what the session may do; nested groups
(followed only when configured) and the settings in the config file's [identity.ldap]."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from minio import MinioAdmin
from minio.credentials import StaticProvider
from minio.credentials.providers import LdapIdentityProvider

from conftest import StrataServer, error_of
from ldap import BASE_DN, LOOKUP_DN, LOOKUP_PASSWORD, Slapd


@pytest.fixture(scope="module")
def slapd(tmp_module):
    directory = Slapd(tmp_module / "slapd").start()
    yield directory
    directory.stop()


GROUP_FILTER = "(&(objectclass=groupOfNames)(member=%d))"


def ldap_env(slapd, *extra: str) -> list[str]:
    """The `env` prefix that configures the test directory through STRATA_IDENTITY_LDAP_*."""
    return [
        "env",
        f"STRATA_IDENTITY_LDAP_SERVER_ADDR={slapd.addr}",
        "STRATA_IDENTITY_LDAP_SERVER_INSECURE=on",
        f"STRATA_IDENTITY_LDAP_LOOKUP_BIND_DN={LOOKUP_DN}",
        f"STRATA_IDENTITY_LDAP_LOOKUP_BIND_PASSWORD={LOOKUP_PASSWORD}",
        f"STRATA_IDENTITY_LDAP_USER_DN_SEARCH_BASE_DN=ou=people,{BASE_DN}",
        "STRATA_IDENTITY_LDAP_USER_DN_SEARCH_FILTER=(uid=%s)",
        f"STRATA_IDENTITY_LDAP_GROUP_SEARCH_BASE_DN=ou=groups,{BASE_DN}",
        f"STRATA_IDENTITY_LDAP_GROUP_SEARCH_FILTER={GROUP_FILTER}",
        *extra,
    ]


def admin_of(srv) -> MinioAdmin:
    return MinioAdmin(endpoint=srv.hostport, credentials=StaticProvider(srv.access_key, srv.secret_key),
                      secure=False, region=srv.region)


def with_handbook(srv) -> None:
    s3 = srv.client()
    s3.create_bucket(Bucket="corp")
    s3.put_object(Bucket="corp", Key="handbook.txt", Body=b"welcome")


@pytest.fixture(scope="module")
def ldap_server(slapd, tmp_module):
    srv = StrataServer(tmp_module / "ldap-strata", prefix=ldap_env(slapd))
    srv.start()
    with_handbook(srv)
    admin = admin_of(srv)
    # Policies mapped to DNs: readers read, writers write, carol (by her user DN) reads too.
    admin.attach_policy_ldap(["readonly"], group=slapd.group_dn("readers"))
    admin.attach_policy_ldap(["writeonly"], group=slapd.group_dn("writers"))
    admin.attach_policy_ldap(["readonly"], user=slapd.user_dn("carol"))
    yield srv
    srv.stop()
    srv.kill()


def login(server, username: str, password: str):
    return LdapIdentityProvider(server.endpoint, username, password).retrieve()


def s3_as(server, creds):
    return boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint, region_name=server.region,
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.session_token,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


def test_group_and_user_mappings_decide(ldap_server):
    alice = s3_as(ldap_server, login(ldap_server, "alice", "alice-pass"))  # readers + writers
    assert alice.get_object(Bucket="corp", Key="handbook.txt")["Body"].read() == b"welcome"
    alice.put_object(Bucket="corp", Key="by-alice", Body=b"a")
    bob = s3_as(ldap_server, login(ldap_server, "bob", "bob-pass"))  # writers only
    bob.put_object(Bucket="corp", Key="by-bob", Body=b"b")
    with pytest.raises(ClientError) as e:
        bob.get_object(Bucket="corp", Key="handbook.txt")
    assert error_of(e.value) == ("AccessDenied", 403)
    carol = s3_as(ldap_server, login(ldap_server, "carol", "carol-pass"))  # her own DN's mapping
    assert carol.get_object(Bucket="corp", Key="by-bob")["Body"].read() == b"b"
    with pytest.raises(ClientError):
        carol.put_object(Bucket="corp", Key="by-carol", Body=b"c")


def sts_error(server, username: str, password: str) -> tuple[int, str]:
    """The status and STS error code of a refused login (raw, to see the code)."""
    import re

    import requests
    r = requests.post(server.endpoint + "/", timeout=10, data={
        "Action": "AssumeRoleWithLDAPIdentity", "Version": "2011-06-15",
        "LDAPUsername": username, "LDAPPassword": password})
    code = re.search(r"<Code>([^<]+)</Code>", r.text)
    assert password not in r.text or not password
    return r.status_code, code.group(1) if code else r.text


def test_wrong_passwords_unknown_users_and_unmapped_users_are_refused(ldap_server, slapd):
    assert sts_error(ldap_server, "alice", "wrong-password") == (403, "AccessDenied")
    assert sts_error(ldap_server, "nobody-here", "x-password") == (403, "AccessDenied")
    assert sts_error(ldap_server, "alice", "") == (400, "MissingParameter")
    slapd.add_user("dave", "dave-pass")  # in the directory, but no policy is mapped to him
    assert sts_error(ldap_server, "dave", "dave-pass") == (403, "AccessDenied")
    # A filter-injection attempt is escaped: it names no user.
    assert sts_error(ldap_server, "*)(uid=*", "alice-pass") == (403, "AccessDenied")
    assert sts_error(ldap_server, "*", "alice-pass") == (403, "AccessDenied")
    # The SDK sees the refusal too.
    with pytest.raises(ValueError):
        login(ldap_server, "alice", "wrong-password")


def test_mappings_change_through_the_admin_api(ldap_server, slapd):
    admin = admin_of(ldap_server)
    slapd.add_user("erin", "erin-pass")
    admin.attach_policy_ldap(["readwrite"], user=slapd.user_dn("erin"))
    erin = s3_as(ldap_server, login(ldap_server, "erin", "erin-pass"))
    erin.put_object(Bucket="corp", Key="by-erin", Body=b"e")
    admin.detach_policy_ldap(["readwrite"], user=slapd.user_dn("erin"))
    with pytest.raises(Exception):
        login(ldap_server, "erin", "erin-pass")


def test_a_user_in_200_groups_logs_in_quickly(ldap_server, slapd):
    dn = slapd.add_user("frank", "frank-pass")
    groups = [f"team-{i:03d}" for i in range(200)]
    slapd.add_groups({g: [dn] for g in groups})
    admin = admin_of(ldap_server)
    admin.attach_policy_ldap(["readonly"], group=slapd.group_dn("team-199"))
    started = time.monotonic()
    creds = login(ldap_server, "frank", "frank-pass")
    elapsed = time.monotonic() - started
    assert s3_as(ldap_server, creds).get_object(Bucket="corp", Key="handbook.txt")["Body"].read()
    # A sanity bound only (the figure is recorded in docs/IAM.md): one group search, not 200.
    print(f"login with 200 groups: {elapsed * 1000:.1f} ms")
    assert elapsed < 2.0, elapsed


@pytest.fixture(scope="module")
def nested_server(slapd, tmp_module):
    """Like ldap_server, with nested groups followed."""
    srv = StrataServer(tmp_module / "ldap-nested",
                       prefix=ldap_env(slapd, "STRATA_IDENTITY_LDAP_GROUP_SEARCH_NESTED=on"))
    srv.start()
    with_handbook(srv)
    yield srv
    srv.stop()
    srv.kill()


def test_nested_groups_bring_the_outer_groups_policies(ldap_server, nested_server, slapd):
    # gina is in nest-inner, nest-inner in nest-outer, and nest-outer in nest-inner (a cycle,
    # which the walk must end). Writing is mapped to the inner group, reading to the outer one.
    gina = slapd.add_user("gina", "gina-pass")
    inner, outer = slapd.group_dn("nest-inner"), slapd.group_dn("nest-outer")
    slapd.add_groups({"nest-inner": [gina, outer], "nest-outer": [inner]})
    for srv in (ldap_server, nested_server):
        admin_of(srv).attach_policy_ldap(["writeonly"], group=inner)
        admin_of(srv).attach_policy_ldap(["readonly"], group=outer)
    # Nesting off (the default): only the inner group's policy.
    flat = s3_as(ldap_server, login(ldap_server, "gina", "gina-pass"))
    flat.put_object(Bucket="corp", Key="by-gina", Body=b"g")
    with pytest.raises(ClientError) as e:
        flat.get_object(Bucket="corp", Key="handbook.txt")
    assert error_of(e.value) == ("AccessDenied", 403)
    # Nesting on: the outer group's policy applies too.
    started = time.monotonic()
    creds = login(nested_server, "gina", "gina-pass")
    elapsed = time.monotonic() - started
    nested = s3_as(nested_server, creds)
    assert nested.get_object(Bucket="corp", Key="handbook.txt")["Body"].read() == b"welcome"
    nested.put_object(Bucket="corp", Key="by-gina", Body=b"g")
    print(f"login with nested groups (a cycle of two): {elapsed * 1000:.1f} ms")
    assert elapsed < 2.0, elapsed


def test_ldap_settings_from_the_config_file(slapd, tmp_path):
    """[identity.ldap] in the config file configures the directory (the lookup password
    included); a STRATA_IDENTITY_LDAP_* variable overrides its key."""
    config = tmp_path / "strata.toml"
    config.write_text(
        "[identity.ldap]\n"
        f'server_addr = "{slapd.addr}"\n'
        "server_insecure = true\n"
        f'lookup_bind_dn = "{LOOKUP_DN}"\n'
        f'lookup_bind_password = "{LOOKUP_PASSWORD}"\n'
        f'user_dn_search_base_dn = "ou=people,{BASE_DN}"\n'
        # Finds no one: the variable below must win for anyone to log in.
        'user_dn_search_filter = "(cn=nobody-%s)"\n'
        f'group_search_base_dn = "ou=groups,{BASE_DN}"\n'
        f'group_search_filter = "{GROUP_FILTER}"\n')
    srv = StrataServer(tmp_path / "strata", config=config,
                       prefix=["env", "STRATA_IDENTITY_LDAP_USER_DN_SEARCH_FILTER=(uid=%s)"])
    try:
        srv.start()
        with_handbook(srv)
        admin_of(srv).attach_policy_ldap(["readonly"], group=slapd.group_dn("readers"))
        alice = s3_as(srv, login(srv, "alice", "alice-pass"))  # readonly through her group
        assert alice.get_object(Bucket="corp", Key="handbook.txt")["Body"].read() == b"welcome"
        with pytest.raises(ClientError):
            alice.put_object(Bucket="corp", Key="x", Body=b"x")
        assert sts_error(srv, "alice", "wrong-password") == (403, "AccessDenied")
        log = srv.log_path.read_text(errors="replace")
        assert "LDAP directory configured" in log
        assert LOOKUP_PASSWORD not in log
    finally:
        srv.stop()
        srv.kill()
