"""Smoke test of the OpenLDAP fixture (tests/e2e/ldap.py): the lookup account searches, users
bind with their passwords, group membership searches, and bulk adds of users and groups.
Needs no strata server."""
from __future__ import annotations

import time

from ldap import (ADMIN_DN, ADMIN_PASSWORD, BASE_DN, GROUPS_DN, LOOKUP_DN, LOOKUP_PASSWORD,
                  PEOPLE_DN, Slapd)


def member_of(ldap: Slapd, dn: str) -> set[str]:
    return {d for d, _ in ldap.search(f"(&(objectclass=groupOfNames)(member={dn}))",
                                      base=GROUPS_DN, attrs=["cn"])}


def test_slapd_fixture(tmp_path):
    ldap = Slapd(tmp_path / "ldap")
    try:
        t0 = time.monotonic()
        ldap.start()
        print(f"slapd ready in {time.monotonic() - t0:.2f}s at {ldap.url}")
        assert ldap.url == f"ldap://{ldap.addr}" and ldap.addr.startswith("127.0.0.1:")
        assert ldap.port != 389

        alice = ldap.user_dn("alice")
        assert alice == f"uid=alice,{PEOPLE_DN}" == "uid=alice,ou=people,dc=strata,dc=test"
        found = ldap.search("(uid=alice)", base=PEOPLE_DN, attrs=["uid", "cn", "objectClass"])
        assert [d for d, _ in found] == [alice]
        assert found[0][1]["uid"] == ["alice"]
        assert "inetOrgPerson" in found[0][1]["objectClass"]
        # The lookup account may read password hashes; anonymous sees nothing (slapd answers
        # noSuchObject, so as not to disclose the base entry either).
        (_, attrs), = ldap.search("(uid=bob)", base=PEOPLE_DN, attrs=["userPassword"])
        assert attrs["userPassword"][0].startswith("{SSHA}")
        assert ldap.search("(uid=alice)", base=BASE_DN, bind_dn="", password="") == []

        assert ldap.whoami(alice, "alice-pass").returncode == 0
        assert ldap.whoami(alice, "alice-pass").stdout.strip() == f"dn:{alice}"
        assert ldap.whoami(alice, "wrong-pass").returncode == 49
        assert ldap.whoami(alice, "").returncode != 0
        assert ldap.whoami(ldap.user_dn("nobody"), "alice-pass").returncode == 49
        assert ldap.whoami(LOOKUP_DN, LOOKUP_PASSWORD).returncode == 0
        assert ldap.whoami(ADMIN_DN, ADMIN_PASSWORD).returncode == 0
        assert ldap.whoami(ldap.user_dn("carol"), "carol-pass").returncode == 0

        assert member_of(ldap, alice) == {ldap.group_dn("readers"), ldap.group_dn("writers")}
        assert member_of(ldap, ldap.user_dn("bob")) == {ldap.group_dn("writers")}
        assert member_of(ldap, ldap.user_dn("carol")) == {"cn=admins,ou=groups,dc=strata,dc=test"}

        dave = ldap.add_user("dave", "dave-pass")
        assert dave == "uid=dave,ou=people,dc=strata,dc=test"
        assert ldap.whoami(dave, "dave-pass").returncode == 0
        assert ldap.add_group("auditors", [dave, alice]) == "cn=auditors,ou=groups,dc=strata,dc=test"
        assert ldap.group_dn("auditors") in member_of(ldap, alice)

        many = ldap.add_user("many", "many-pass")
        t0 = time.monotonic()
        dns = ldap.add_groups({f"g{i:03d}": [many] for i in range(200)})
        secs = time.monotonic() - t0
        print(f"200 groups added in {secs:.2f}s")
        assert secs < 5, f"adding 200 groups took {secs:.1f}s"
        assert len(dns) == 200 and member_of(ldap, many) == set(dns)

        ldap.set_password("dave", "dave-pass-2")
        assert ldap.whoami(dave, "dave-pass").returncode == 49
        assert ldap.whoami(dave, "dave-pass-2").returncode == 0
        ldap.remove_member("auditors", alice)
        assert ldap.group_dn("auditors") not in member_of(ldap, alice)
        ldap.delete(dave)
        assert ldap.whoami(dave, "dave-pass-2").returncode == 49
    finally:
        ldap.stop()
        ldap.stop()
    assert not ldap.running
