//! Table-driven tests of S3 ACLs: canned expansion, `x-amz-grant-*` parsing, validation,
//! evaluation per grantee (with and without `IgnorePublicAcls`), "is public", the action to
//! permission mapping, Object Ownership, Block Public Access and the stored JSON form.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_iam::acl::{
    Acl, AclError, AclSubject, CannedAcl, Grant, Grantee, Group, MAX_GRANTS, ObjectOwnership, Owner,
    Permission, PublicAccessBlock, RequestedAcl, acl_permission_for, canonical_id, parse_grant_header,
};

use Permission::{FullControl, Read, ReadAcp, Write, WriteAcp};

const ALICE: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const BOB: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
const CAROL: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTH_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

fn alice() -> Owner {
    Owner::new(ALICE, "alice")
}

fn bob() -> Owner {
    Owner::new(BOB, "bob")
}

fn named(id: &str, name: &str) -> Grantee {
    Grantee::CanonicalUser {
        id: id.to_owned(),
        display_name: Some(name.to_owned()),
    }
}

fn grant(grantee: Grantee, permission: Permission) -> Grant {
    Grant::new(grantee, permission)
}

fn group(g: Group, permission: Permission) -> Grant {
    Grant::new(Grantee::Group(g), permission)
}

/// Knows alice, bob and carol.
fn resolve(id: &str) -> Option<String> {
    match id {
        ALICE => Some("alice".to_owned()),
        BOB => Some("bob".to_owned()),
        CAROL => Some("carol".to_owned()),
        _ => None,
    }
}

#[test]
fn canonical_id_is_the_hex_sha256_of_the_prefixed_account_id() {
    let cases = [
        (
            "123456789012",
            "9c8b74a43932af830be947dc52bc976b8d9dea2541003fab93aff654ea83a174",
        ),
        (
            "",
            "f959bfdf294f70dae55830348a7d9b31b3cbf62c7385d3786f37e45a81ff8776",
        ),
    ];
    for (account, want) in cases {
        assert_eq!(canonical_id(account), want, "account {account:?}");
    }
    assert_ne!(canonical_id("1"), canonical_id("2"));
    let id = canonical_id("000000000000");
    assert_eq!(id.len(), 64);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(Owner::for_account("123456789012", "root").id, cases[0].1);
}

#[test]
fn strings_of_permissions_groups_and_canned_acls() {
    let permissions = [
        (FullControl, "FULL_CONTROL", "x-amz-grant-full-control"),
        (Write, "WRITE", "x-amz-grant-write"),
        (WriteAcp, "WRITE_ACP", "x-amz-grant-write-acp"),
        (Read, "READ", "x-amz-grant-read"),
        (ReadAcp, "READ_ACP", "x-amz-grant-read-acp"),
    ];
    for (permission, name, header) in permissions {
        assert_eq!(permission.as_str(), name);
        assert_eq!(permission.to_string(), name);
        assert_eq!(name.parse::<Permission>(), Ok(permission));
        assert_eq!(permission.grant_header(), header);
        assert_eq!(Permission::from_grant_header(header), Some(permission));
        assert_eq!(
            Permission::from_grant_header(&header.to_ascii_uppercase()),
            Some(permission)
        );
    }
    for bad in ["read", "FULLCONTROL", "", "READ "] {
        assert_eq!(bad.parse::<Permission>(), Err(AclError::MalformedAcl), "{bad:?}");
    }
    assert_eq!(Permission::from_grant_header("x-amz-acl"), None);

    for (g, uri) in [
        (Group::AllUsers, ALL_USERS),
        (Group::AuthenticatedUsers, AUTH_USERS),
        (Group::LogDelivery, LOG_DELIVERY),
    ] {
        assert_eq!(g.uri(), uri);
        assert_eq!(Group::from_uri(uri), Some(g));
        assert_eq!(Group::parse_uri(uri), Ok(g));
    }
    for bad in [
        "http://acs.amazonaws.com/groups/global/LogDelivery",
        "https://acs.amazonaws.com/groups/global/AllUsers",
        "http://acs.amazonaws.com/groups/global/allusers",
        "",
    ] {
        assert_eq!(Group::from_uri(bad), None, "{bad:?}");
        assert!(matches!(Group::parse_uri(bad), Err(AclError::InvalidArgument(_))));
    }

    let canned = [
        (CannedAcl::Private, "private"),
        (CannedAcl::PublicRead, "public-read"),
        (CannedAcl::PublicReadWrite, "public-read-write"),
        (CannedAcl::AuthenticatedRead, "authenticated-read"),
        (CannedAcl::AwsExecRead, "aws-exec-read"),
        (CannedAcl::BucketOwnerRead, "bucket-owner-read"),
        (CannedAcl::BucketOwnerFullControl, "bucket-owner-full-control"),
        (CannedAcl::LogDeliveryWrite, "log-delivery-write"),
    ];
    for (c, name) in canned {
        assert_eq!(c.as_str(), name);
        assert_eq!(c.to_string(), name);
        assert_eq!(CannedAcl::parse(name), Ok(c));
        assert_eq!(name.parse::<CannedAcl>(), Ok(c));
    }
    for bad in [
        "",
        "Private",
        "public",
        "public-write",
        "private ",
        "bucket-owner",
    ] {
        assert!(
            matches!(CannedAcl::parse(bad), Err(AclError::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn canned_acls_expand_as_aws_does() {
    let owner_fc = || grant(named(ALICE, "alice"), FullControl);
    // (canned, bucket owner, for bucket, expected grants)
    let cases: Vec<(CannedAcl, Owner, bool, Vec<Grant>)> = vec![
        (CannedAcl::Private, bob(), false, vec![owner_fc()]),
        (CannedAcl::Private, bob(), true, vec![owner_fc()]),
        (
            CannedAcl::PublicRead,
            bob(),
            false,
            vec![owner_fc(), group(Group::AllUsers, Read)],
        ),
        (
            CannedAcl::PublicRead,
            alice(),
            true,
            vec![owner_fc(), group(Group::AllUsers, Read)],
        ),
        (
            CannedAcl::PublicReadWrite,
            alice(),
            true,
            vec![
                owner_fc(),
                group(Group::AllUsers, Read),
                group(Group::AllUsers, Write),
            ],
        ),
        (
            CannedAcl::AuthenticatedRead,
            alice(),
            false,
            vec![owner_fc(), group(Group::AuthenticatedUsers, Read)],
        ),
        (CannedAcl::AwsExecRead, alice(), false, vec![owner_fc()]),
        // bucket-owner-*: a grant for the bucket owner when it is another account ...
        (
            CannedAcl::BucketOwnerRead,
            bob(),
            false,
            vec![owner_fc(), grant(named(BOB, "bob"), Read)],
        ),
        (
            CannedAcl::BucketOwnerFullControl,
            bob(),
            false,
            vec![owner_fc(), grant(named(BOB, "bob"), FullControl)],
        ),
        // ... none when the object owner owns the bucket ...
        (CannedAcl::BucketOwnerRead, alice(), false, vec![owner_fc()]),
        (
            CannedAcl::BucketOwnerFullControl,
            alice(),
            false,
            vec![owner_fc()],
        ),
        // ... and ignored for a bucket.
        (CannedAcl::BucketOwnerRead, bob(), true, vec![owner_fc()]),
        (CannedAcl::BucketOwnerFullControl, bob(), true, vec![owner_fc()]),
        // log-delivery-write: buckets only.
        (
            CannedAcl::LogDeliveryWrite,
            alice(),
            true,
            vec![
                owner_fc(),
                group(Group::LogDelivery, Write),
                group(Group::LogDelivery, ReadAcp),
            ],
        ),
        (CannedAcl::LogDeliveryWrite, bob(), false, vec![owner_fc()]),
    ];
    for (canned, bucket_owner, for_bucket, want) in cases {
        let acl = Acl::canned(canned, &alice(), &bucket_owner, for_bucket);
        assert_eq!(acl.owner, alice(), "{canned} for_bucket={for_bucket}");
        assert_eq!(
            acl.grants, want,
            "{canned} bucket owner {} for_bucket={for_bucket}",
            bucket_owner.display_name
        );
    }
    assert_eq!(
        Acl::private(&alice()),
        Acl::canned(CannedAcl::Private, &alice(), &bob(), false)
    );

    // An owner without a display name gets a grant without one.
    let anonymous_name = Owner::new(CAROL, "");
    let acl = Acl::canned(CannedAcl::Private, &anonymous_name, &anonymous_name, true);
    assert_eq!(acl.grants, vec![grant(Grantee::user(CAROL), FullControl)]);
}

#[test]
fn grant_headers_that_parse() {
    let cases: Vec<(&str, Vec<Grantee>)> = vec![
        (r#"id="a1b2""#, vec![Grantee::user("a1b2")]),
        ("id=a1b2", vec![Grantee::user("a1b2")]),
        (
            r#"id="a1b2", id="c3d4""#,
            vec![Grantee::user("a1b2"), Grantee::user("c3d4")],
        ),
        (
            r#"  id = "a1b2" ,uri="http://acs.amazonaws.com/groups/global/AllUsers"  "#,
            vec![Grantee::user("a1b2"), Grantee::Group(Group::AllUsers)],
        ),
        (
            "uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers,id=x",
            vec![Grantee::Group(Group::AuthenticatedUsers), Grantee::user("x")],
        ),
        (
            r#"URI="http://acs.amazonaws.com/groups/s3/LogDelivery""#,
            vec![Grantee::Group(Group::LogDelivery)],
        ),
        (r#"ID=" spaced ""#, vec![Grantee::user("spaced")]),
        ("\tid=a1b2\t", vec![Grantee::user("a1b2")]),
    ];
    for (value, want) in cases {
        for permission in Permission::ALL {
            let got = parse_grant_header(permission, value)
                .unwrap_or_else(|e| panic!("{value:?} should parse: {e}"));
            let want: Vec<Grant> = want.iter().map(|g| grant(g.clone(), permission)).collect();
            assert_eq!(got, want, "{value:?}");
        }
    }
}

#[test]
fn grant_headers_that_do_not_parse() {
    let invalid = |e: &AclError| matches!(e, AclError::InvalidArgument(_));
    let email = |e: &AclError| *e == AclError::UnresolvableGrantByEmail;
    type Check<'a> = &'a dyn Fn(&AclError) -> bool;
    let cases: Vec<(&str, Check<'_>)> = vec![
        ("", &invalid),
        ("   ", &invalid),
        ("a1b2", &invalid),
        ("id", &invalid),
        ("id=", &invalid),
        (r#"id="""#, &invalid),
        (r#"id="a1b2"#, &invalid),
        (r#"id="a1b2" x"#, &invalid),
        ("id=a1b2,", &invalid),
        ("id=a1b2,,id=c3d4", &invalid),
        (",id=a1b2", &invalid),
        ("id=a1b2 id=c3d4", &invalid),
        ("id=a=b", &invalid),
        (r#"id=a"b"#, &invalid),
        ("name=a1b2", &invalid),
        (r#""id"="a1b2""#, &invalid),
        (r#"=a1b2"#, &invalid),
        (
            r#"uri="http://acs.amazonaws.com/groups/global/Everyone""#,
            &invalid,
        ),
        (
            r#"uri="http://acs.amazonaws.com/groups/global/LogDelivery""#,
            &invalid,
        ),
        (r#"emailAddress="someone@example.com""#, &email),
        (r#"id="a1b2", emailaddress="someone@example.com""#, &email),
    ];
    for (value, expected) in cases {
        match parse_grant_header(Read, value) {
            Ok(grants) => panic!("{value:?} should not parse, got {grants:?}"),
            Err(e) => assert!(expected(&e), "{value:?}: unexpected error {e:?}"),
        }
    }
}

#[test]
fn acl_from_grant_headers_concatenates_and_grants_the_owner_nothing_implicitly() {
    let headers = [
        (FullControl, format!(r#"id="{BOB}""#)),
        (Read, format!(r#"uri="{ALL_USERS}", id="{CAROL}""#)),
    ];
    let headers: Vec<(Permission, &str)> = headers.iter().map(|(p, v)| (*p, v.as_str())).collect();
    let acl = Acl::from_grant_headers(&alice(), &headers).unwrap();
    assert_eq!(acl.owner, alice());
    assert_eq!(
        acl.grants,
        vec![
            grant(Grantee::user(BOB), FullControl),
            group(Group::AllUsers, Read),
            grant(Grantee::user(CAROL), Read),
        ]
    );
    assert!(!acl.allows(AclSubject::user(ALICE), WriteAcp));
    assert!(acl.allows(AclSubject::user(BOB), WriteAcp));

    // Validation fills in display names.
    let acl = acl.validate(&alice(), &resolve).unwrap();
    assert_eq!(acl.grants[0].grantee, named(BOB, "bob"));
    assert_eq!(acl.grants[2].grantee, named(CAROL, "carol"));

    // One bad header fails the whole request.
    let headers = [(Read, "id=x"), (Write, "uri=http://example.com/group")];
    assert!(matches!(
        Acl::from_grant_headers(&alice(), &headers),
        Err(AclError::InvalidArgument(_))
    ));
}

#[test]
fn validation_of_a_client_acl() {
    let with = |owner: Owner, grants: Vec<Grant>| Acl { owner, grants };
    let ok_grants = vec![
        grant(Grantee::user(ALICE), FullControl),
        grant(Grantee::user(BOB), Read),
        group(Group::LogDelivery, Write),
    ];
    let cases: Vec<(&str, Acl, Result<(), AclError>)> = vec![
        ("valid", with(Owner::new(ALICE, ""), ok_grants.clone()), Ok(())),
        ("no grants", with(alice(), vec![]), Ok(())),
        (
            "owner id missing",
            with(Owner::new("", "alice"), ok_grants.clone()),
            Err(AclError::MalformedAcl),
        ),
        (
            "another owner",
            with(bob(), ok_grants.clone()),
            Err(AclError::AccessDenied),
        ),
        (
            "owner id in another case",
            with(Owner::new(ALICE.to_ascii_uppercase(), "alice"), vec![]),
            Err(AclError::AccessDenied),
        ),
        (
            "unknown canonical id",
            with(alice(), vec![grant(Grantee::user("f00d"), Read)]),
            Err(AclError::InvalidArgument("Invalid id".to_owned())),
        ),
        (
            "empty canonical id",
            with(alice(), vec![grant(Grantee::user(""), Read)]),
            Err(AclError::InvalidArgument("Invalid id".to_owned())),
        ),
        (
            "e-mail grantee",
            with(
                alice(),
                vec![grant(Grantee::Email("someone@example.com".to_owned()), Read)],
            ),
            Err(AclError::UnresolvableGrantByEmail),
        ),
        (
            "100 grants",
            with(alice(), vec![group(Group::AllUsers, Read); MAX_GRANTS]),
            Ok(()),
        ),
        (
            "101 grants",
            with(alice(), vec![group(Group::AllUsers, Read); MAX_GRANTS + 1]),
            Err(AclError::TooManyGrants),
        ),
        (
            "owner checked before grants",
            with(bob(), vec![grant(Grantee::user("f00d"), Read)]),
            Err(AclError::AccessDenied),
        ),
    ];
    for (name, acl, want) in cases {
        let got = acl.clone().validate(&alice(), &resolve).map(|_| ());
        assert_eq!(got, want, "{name}");
    }

    let stored = with(
        Owner::new(ALICE, "stale"),
        vec![
            grant(named(BOB, "stale"), Read),
            grant(Grantee::user(ALICE), FullControl),
            group(Group::AllUsers, Read),
        ],
    )
    .validate(&alice(), &resolve)
    .unwrap();
    assert_eq!(
        stored,
        Acl {
            owner: alice(),
            grants: vec![
                grant(named(BOB, "bob"), Read),
                grant(named(ALICE, "alice"), FullControl),
                group(Group::AllUsers, Read),
            ],
        }
    );
}

#[test]
fn evaluation_per_grantee() {
    let anonymous = AclSubject::ANONYMOUS;
    let bob = AclSubject::user(BOB);
    let carol = AclSubject::user(CAROL);
    // (grant, caller, wanted, allowed)
    let cases: Vec<(Grant, AclSubject<'_>, Permission, bool)> = vec![
        // A canonical user: that account only.
        (grant(Grantee::user(BOB), Read), bob, Read, true),
        (grant(Grantee::user(BOB), Read), carol, Read, false),
        (grant(Grantee::user(BOB), Read), anonymous, Read, false),
        (grant(Grantee::user(BOB), Read), bob, Write, false),
        (grant(Grantee::user(BOB), Read), bob, ReadAcp, false),
        (grant(Grantee::user(BOB), WriteAcp), bob, WriteAcp, true),
        (grant(Grantee::user(BOB), WriteAcp), bob, FullControl, false),
        // FULL_CONTROL implies everything.
        (grant(Grantee::user(BOB), FullControl), bob, Read, true),
        (grant(Grantee::user(BOB), FullControl), bob, Write, true),
        (grant(Grantee::user(BOB), FullControl), bob, ReadAcp, true),
        (grant(Grantee::user(BOB), FullControl), bob, WriteAcp, true),
        (grant(Grantee::user(BOB), FullControl), bob, FullControl, true),
        (grant(Grantee::user(BOB), FullControl), carol, Read, false),
        // AllUsers: everyone, anonymous included.
        (group(Group::AllUsers, Read), anonymous, Read, true),
        (group(Group::AllUsers, Read), bob, Read, true),
        (group(Group::AllUsers, Read), bob, Write, false),
        (group(Group::AllUsers, FullControl), anonymous, WriteAcp, true),
        // AuthenticatedUsers: every signed caller.
        (group(Group::AuthenticatedUsers, Read), bob, Read, true),
        (group(Group::AuthenticatedUsers, Read), carol, Read, true),
        (group(Group::AuthenticatedUsers, Read), anonymous, Read, false),
        (group(Group::AuthenticatedUsers, Write), bob, Read, false),
        // LogDelivery and e-mail grantees match no caller.
        (group(Group::LogDelivery, FullControl), bob, Write, false),
        (group(Group::LogDelivery, FullControl), anonymous, Write, false),
        (
            grant(Grantee::Email("bob@example.com".to_owned()), FullControl),
            bob,
            Read,
            false,
        ),
    ];
    for (g, who, wanted, allowed) in cases {
        let acl = Acl {
            owner: alice(),
            grants: vec![g.clone()],
        };
        assert_eq!(
            acl.allows(who, wanted),
            allowed,
            "{g:?} for {who:?} wanting {wanted}"
        );
        assert_eq!(acl.allows_with(who, wanted, false), allowed, "{g:?}");
    }

    // Several grants: any one is enough.
    let acl = Acl {
        owner: alice(),
        grants: vec![
            grant(Grantee::user(CAROL), Read),
            grant(Grantee::user(BOB), ReadAcp),
        ],
    };
    assert!(acl.allows(bob, ReadAcp));
    assert!(!acl.allows(bob, Read));
    assert!(acl.allows(carol, Read));
}

#[test]
fn the_owner_has_no_implicit_rights() {
    let acl = Acl {
        owner: alice(),
        grants: vec![grant(Grantee::user(BOB), FullControl)],
    };
    for permission in Permission::ALL {
        assert!(!acl.allows(AclSubject::user(ALICE), permission), "{permission}");
    }
    let private = Acl::private(&alice());
    assert!(private.allows(AclSubject::user(ALICE), WriteAcp));
    assert!(!private.allows(AclSubject::user(BOB), Read));
    assert!(!private.allows(AclSubject::ANONYMOUS, Read));
}

#[test]
fn ignore_public_skips_the_public_groups_only() {
    let acl = Acl {
        owner: alice(),
        grants: vec![
            group(Group::AllUsers, Read),
            group(Group::AuthenticatedUsers, FullControl),
            grant(Grantee::user(BOB), ReadAcp),
        ],
    };
    let anonymous = AclSubject::ANONYMOUS;
    let bob = AclSubject::user(BOB);
    let carol = AclSubject::user(CAROL);
    // (caller, wanted, allowed when honoured, allowed when ignored)
    let cases = [
        (anonymous, Read, true, false),
        (anonymous, ReadAcp, false, false),
        (carol, Read, true, false),
        (carol, Write, true, false),
        (bob, Write, true, false),
        (bob, ReadAcp, true, true),
    ];
    for (who, wanted, honoured, ignored) in cases {
        assert_eq!(acl.allows_with(who, wanted, false), honoured, "{who:?} {wanted}");
        assert_eq!(
            acl.allows_with(who, wanted, true),
            ignored,
            "{who:?} {wanted} ignoring"
        );
    }
}

#[test]
fn public_acls() {
    let cases: Vec<(Vec<Grant>, bool)> = vec![
        (vec![], false),
        (vec![grant(Grantee::user(ALICE), FullControl)], false),
        (
            vec![
                group(Group::LogDelivery, Write),
                group(Group::LogDelivery, ReadAcp),
            ],
            false,
        ),
        (
            vec![grant(Grantee::Email("x@example.com".to_owned()), Read)],
            false,
        ),
        (vec![group(Group::AllUsers, Read)], true),
        (vec![group(Group::AllUsers, ReadAcp)], true),
        (vec![group(Group::AuthenticatedUsers, WriteAcp)], true),
        (
            vec![
                grant(Grantee::user(ALICE), FullControl),
                group(Group::AuthenticatedUsers, Read),
            ],
            true,
        ),
    ];
    for (grants, public) in cases {
        let acl = Acl {
            owner: alice(),
            grants: grants.clone(),
        };
        assert_eq!(acl.is_public(), public, "{grants:?}");
    }
    for (canned, public) in [
        (CannedAcl::Private, false),
        (CannedAcl::PublicRead, true),
        (CannedAcl::PublicReadWrite, true),
        (CannedAcl::AuthenticatedRead, true),
        (CannedAcl::AwsExecRead, false),
        (CannedAcl::BucketOwnerRead, false),
        (CannedAcl::BucketOwnerFullControl, false),
        (CannedAcl::LogDeliveryWrite, false),
    ] {
        for for_bucket in [false, true] {
            let acl = Acl::canned(canned, &alice(), &bob(), for_bucket);
            assert_eq!(acl.is_public(), public, "{canned}");
        }
    }
}

#[test]
fn action_to_acl_permission() {
    // (action, on object, permission)
    let cases: &[(&str, bool, Option<Permission>)] = &[
        // Bucket ACL.
        ("s3:ListBucket", false, Some(Read)),
        ("s3:ListBucketVersions", false, Some(Read)),
        ("s3:ListBucketMultipartUploads", false, Some(Read)),
        ("s3:PutObject", false, Some(Write)),
        ("s3:DeleteObject", false, Some(Write)),
        ("s3:DeleteObjectVersion", false, None),
        ("s3:GetBucketAcl", false, Some(ReadAcp)),
        ("s3:PutBucketAcl", false, Some(WriteAcp)),
        ("s3:GetObject", false, None),
        ("s3:GetObjectAcl", false, None),
        ("s3:DeleteBucket", false, None),
        ("s3:PutBucketPolicy", false, None),
        ("s3:GetBucketLocation", false, None),
        ("s3:ListAllMyBuckets", false, None),
        // Object ACL.
        ("s3:GetObject", true, Some(Read)),
        ("s3:GetObjectVersion", true, Some(Read)),
        ("s3:GetObjectTorrent", true, Some(Read)),
        ("s3:GetObjectAcl", true, Some(ReadAcp)),
        ("s3:GetObjectVersionAcl", true, Some(ReadAcp)),
        ("s3:PutObjectAcl", true, Some(WriteAcp)),
        ("s3:PutObjectVersionAcl", true, Some(WriteAcp)),
        // WRITE is not used on objects.
        ("s3:PutObject", true, None),
        ("s3:DeleteObject", true, None),
        ("s3:DeleteObjectVersion", true, None),
        ("s3:ListBucket", true, None),
        ("s3:GetBucketAcl", true, None),
        ("s3:GetObjectTagging", true, None),
        ("s3:PutObjectTagging", true, None),
        ("s3:GetObjectRetention", true, None),
        ("s3:AbortMultipartUpload", true, None),
        // Case-insensitive, like policy actions; unknown names map to nothing.
        ("S3:GETOBJECT", true, Some(Read)),
        ("s3:listbucket", false, Some(Read)),
        ("s3:*", true, None),
        ("", false, None),
    ];
    for &(action, on_object, want) in cases {
        assert_eq!(
            acl_permission_for(action, on_object),
            want,
            "{action} on_object={on_object}"
        );
    }

    // FULL_CONTROL covers every mapped action.
    let acl = Acl {
        owner: alice(),
        grants: vec![grant(Grantee::user(BOB), FullControl)],
    };
    for &(action, on_object, want) in cases {
        if let Some(permission) = want {
            assert!(
                acl.allows(AclSubject::user(BOB), permission),
                "{action} {on_object}"
            );
        }
    }
}

#[test]
fn object_ownership_settings() {
    for (o, name, enabled) in [
        (ObjectOwnership::BucketOwnerEnforced, "BucketOwnerEnforced", false),
        (
            ObjectOwnership::BucketOwnerPreferred,
            "BucketOwnerPreferred",
            true,
        ),
        (ObjectOwnership::ObjectWriter, "ObjectWriter", true),
    ] {
        assert_eq!(o.as_str(), name);
        assert_eq!(o.to_string(), name);
        assert_eq!(ObjectOwnership::parse(name), Ok(o));
        assert_eq!(name.parse::<ObjectOwnership>(), Ok(o));
        assert_eq!(o.acls_enabled(), enabled, "{name}");
        assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{name}\""));
    }
    for bad in ["", "bucketownerenforced", "BucketOwner", "Enforced"] {
        assert!(
            matches!(ObjectOwnership::parse(bad), Err(AclError::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    assert_eq!(ObjectOwnership::default(), ObjectOwnership::BucketOwnerEnforced);

    // Who owns an upload by bob into alice's bucket.
    let cases = [
        (ObjectOwnership::BucketOwnerEnforced, None, ALICE),
        (
            ObjectOwnership::BucketOwnerEnforced,
            Some(CannedAcl::Private),
            ALICE,
        ),
        (ObjectOwnership::BucketOwnerPreferred, None, BOB),
        (
            ObjectOwnership::BucketOwnerPreferred,
            Some(CannedAcl::PublicRead),
            BOB,
        ),
        (
            ObjectOwnership::BucketOwnerPreferred,
            Some(CannedAcl::BucketOwnerRead),
            BOB,
        ),
        (
            ObjectOwnership::BucketOwnerPreferred,
            Some(CannedAcl::BucketOwnerFullControl),
            ALICE,
        ),
        (
            ObjectOwnership::ObjectWriter,
            Some(CannedAcl::BucketOwnerFullControl),
            BOB,
        ),
        (ObjectOwnership::ObjectWriter, None, BOB),
    ];
    for (o, canned, owner) in cases {
        assert_eq!(
            o.object_owner(&bob(), &alice(), canned).id,
            owner,
            "{o} {canned:?}"
        );
    }
}

#[test]
fn requested_acls_under_bucket_owner_enforced() {
    // Bob writes into alice's bucket.
    let not_supported = Err(AclError::AclNotSupported);
    let bucket_owner_fc = [grant(Grantee::user(ALICE), FullControl)];
    let both_fc = [
        grant(Grantee::user(BOB), FullControl),
        grant(named(ALICE, "alice"), FullControl),
    ];
    let writer_only = [grant(Grantee::user(BOB), FullControl)];
    let bucket_owner_read = [grant(Grantee::user(ALICE), Read)];
    let with_third = [
        grant(Grantee::user(ALICE), FullControl),
        grant(Grantee::user(CAROL), FullControl),
    ];
    let with_public = [
        grant(Grantee::user(ALICE), FullControl),
        group(Group::AllUsers, Read),
    ];
    let with_read_too = [
        grant(Grantee::user(ALICE), FullControl),
        grant(Grantee::user(ALICE), Read),
    ];
    let email = [grant(Grantee::Email("alice@example.com".to_owned()), FullControl)];
    let mut cases: Vec<(String, Option<RequestedAcl<'_>>, Result<(), AclError>)> = vec![
        ("none".to_owned(), None, Ok(())),
        (
            "bucket owner FULL_CONTROL".to_owned(),
            Some(RequestedAcl::Grants(&bucket_owner_fc)),
            Ok(()),
        ),
        (
            "writer and bucket owner FULL_CONTROL".to_owned(),
            Some(RequestedAcl::Grants(&both_fc)),
            Ok(()),
        ),
        (
            "no grants".to_owned(),
            Some(RequestedAcl::Grants(&[])),
            not_supported.clone(),
        ),
        (
            "writer only".to_owned(),
            Some(RequestedAcl::Grants(&writer_only)),
            not_supported.clone(),
        ),
        (
            "bucket owner READ".to_owned(),
            Some(RequestedAcl::Grants(&bucket_owner_read)),
            not_supported.clone(),
        ),
        (
            "a third account".to_owned(),
            Some(RequestedAcl::Grants(&with_third)),
            not_supported.clone(),
        ),
        (
            "a public grant".to_owned(),
            Some(RequestedAcl::Grants(&with_public)),
            not_supported.clone(),
        ),
        (
            "an extra READ".to_owned(),
            Some(RequestedAcl::Grants(&with_read_too)),
            not_supported.clone(),
        ),
        (
            "e-mail".to_owned(),
            Some(RequestedAcl::Grants(&email)),
            not_supported.clone(),
        ),
    ];
    for canned in CannedAcl::ALL {
        let accepted = matches!(canned, CannedAcl::Private | CannedAcl::BucketOwnerFullControl);
        let want = if accepted { Ok(()) } else { not_supported.clone() };
        cases.push((canned.to_string(), Some(RequestedAcl::Canned(canned)), want));
    }
    for (name, requested, want) in cases {
        assert_eq!(
            ObjectOwnership::BucketOwnerEnforced.check_requested_acl(requested, BOB, ALICE),
            want,
            "{name}"
        );
        for enabled in [
            ObjectOwnership::BucketOwnerPreferred,
            ObjectOwnership::ObjectWriter,
        ] {
            assert_eq!(
                enabled.check_requested_acl(requested, BOB, ALICE),
                Ok(()),
                "{name} {enabled}"
            );
        }
    }

    // The bucket's own ACL: the writer is the bucket owner.
    let own = [grant(Grantee::user(ALICE), FullControl)];
    assert_eq!(
        ObjectOwnership::BucketOwnerEnforced.check_requested_acl(
            Some(RequestedAcl::Grants(&own)),
            ALICE,
            ALICE
        ),
        Ok(())
    );
}

#[test]
fn public_access_block() {
    let none = PublicAccessBlock::default();
    assert!(none.is_empty());
    assert_eq!(PublicAccessBlock::from_json("{}").unwrap(), none);

    let bucket = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: false,
        block_public_policy: true,
        restrict_public_buckets: false,
    };
    let account = PublicAccessBlock {
        block_public_acls: false,
        ignore_public_acls: true,
        block_public_policy: false,
        restrict_public_buckets: false,
    };
    let merged = PublicAccessBlock::merge(&bucket, &account);
    assert_eq!(
        merged,
        PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: false,
        }
    );
    assert!(!merged.is_empty());
    assert_eq!(PublicAccessBlock::merge(&none, &none), none);
    assert_eq!(PublicAccessBlock::merge(&none, &account), account);
    assert_eq!(PublicAccessBlock::merge(&bucket, &none), bucket);

    let json = merged.to_json().unwrap();
    assert_eq!(PublicAccessBlock::from_json(&json).unwrap(), merged);
    assert_eq!(
        PublicAccessBlock::from_json(r#"{"restrict_public_buckets":true}"#).unwrap(),
        PublicAccessBlock {
            restrict_public_buckets: true,
            ..PublicAccessBlock::default()
        }
    );

    let public = Acl::canned(CannedAcl::PublicRead, &alice(), &alice(), true);
    let private = Acl::private(&alice());
    assert!(bucket.blocks_acl(&public));
    assert!(!bucket.blocks_acl(&private));
    assert!(!account.blocks_acl(&public));
    assert!(!public.allows_with(AclSubject::ANONYMOUS, Read, merged.ignore_public_acls));
}

#[test]
fn json_round_trip() {
    let acl = Acl {
        owner: alice(),
        grants: vec![
            grant(named(ALICE, "alice"), FullControl),
            grant(Grantee::user(BOB), Write),
            group(Group::AllUsers, Read),
            group(Group::AuthenticatedUsers, ReadAcp),
            group(Group::LogDelivery, WriteAcp),
            grant(Grantee::Email("someone@example.com".to_owned()), Read),
        ],
    };
    let json = acl.to_json().unwrap();
    assert_eq!(Acl::from_json(&json).unwrap(), acl);

    // The stored form is stable.
    let small = Acl {
        owner: Owner::new("ab", "alice"),
        grants: vec![
            grant(Grantee::user("ab"), FullControl),
            group(Group::AllUsers, Read),
        ],
    };
    assert_eq!(
        small.to_json().unwrap(),
        r#"{"owner":{"id":"ab","display_name":"alice"},"grants":[{"grantee":{"CanonicalUser":{"id":"ab","display_name":null}},"permission":"FULL_CONTROL"},{"grantee":{"Group":"AllUsers"},"permission":"READ"}]}"#
    );

    for bad in [
        "",
        "{}",
        "[]",
        r#"{"owner":{"id":"ab","display_name":"a"},"grants":[{"grantee":{"Group":"Everyone"},"permission":"READ"}]}"#,
    ] {
        assert!(Acl::from_json(bad).is_err(), "{bad:?}");
    }
}
