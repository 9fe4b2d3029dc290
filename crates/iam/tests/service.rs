//! [`Iam`] over an in-memory store: identities, policies, decisions, and the re-seal of
//! secrets when the root credentials change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use strata_iam::policy::Context;
use strata_iam::{
    Entity, Iam, IamError, MemoryStore, NewServiceAccount, RootKeys, Secret, ServiceAccountUpdate, Status,
    authorize,
};

const ACCOUNT: &str = "123456789012";

fn root(secret: &str) -> RootKeys {
    RootKeys {
        access_key: "rootuser".into(),
        secret_key: secret.into(),
    }
}

async fn iam_over(store: &Arc<MemoryStore>, secret: &str) -> Result<Arc<Iam>, IamError> {
    Iam::load(
        root(secret),
        None,
        ACCOUNT,
        Arc::clone(store) as Arc<dyn strata_iam::SystemStore>,
    )
    .await
}

fn allowed(iam: &Iam, access_key: &str, action: &str, resource: &str) -> bool {
    let caller = iam.caller(access_key).expect("a usable access key");
    let mut context = Context::new();
    caller.fill_context(&mut context);
    authorize(&caller, action, resource, &context, None).allowed
}

#[tokio::test]
async fn users_groups_and_policies_decide() {
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    iam.add_user(iam.account_id(), "alice", &Secret::new("alice-secret".into()))
        .await
        .unwrap();
    assert_eq!(iam.secret_key("alice").unwrap().expose(), "alice-secret");
    assert!(
        !allowed(&iam, "alice", "s3:GetObject", "arn:aws:s3:::b/k"),
        "no policy: nothing"
    );
    iam.attach_policies(
        iam.account_id(),
        &Entity::User("alice".into()),
        &["readonly".into()],
        false,
    )
    .await
    .unwrap();
    assert!(allowed(&iam, "alice", "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&iam, "alice", "s3:PutObject", "arn:aws:s3:::b/k"));
    // Through a group.
    iam.update_group_members(iam.account_id(), "writers", &["alice".into()], false)
        .await
        .unwrap();
    iam.set_policies(
        iam.account_id(),
        &Entity::Group("writers".into()),
        &["writeonly".into()],
    )
    .await
    .unwrap();
    assert!(allowed(&iam, "alice", "s3:PutObject", "arn:aws:s3:::b/k"));
    iam.set_group_status(iam.account_id(), "writers", Status::Disabled)
        .await
        .unwrap();
    assert!(!allowed(&iam, "alice", "s3:PutObject", "arn:aws:s3:::b/k"));
    // A custom policy with a variable, and removing it detaches it everywhere.
    iam.add_policy(iam.account_id(),
        "home",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/home/${aws:username}/*"}]}"#,
    )
    .await
    .unwrap();
    iam.attach_policies(
        iam.account_id(),
        &Entity::User("alice".into()),
        &["home".into()],
        false,
    )
    .await
    .unwrap();
    assert!(allowed(
        &iam,
        "alice",
        "s3:DeleteObject",
        "arn:aws:s3:::b/home/alice/x"
    ));
    assert!(!allowed(
        &iam,
        "alice",
        "s3:DeleteObject",
        "arn:aws:s3:::b/home/bob/x"
    ));
    iam.remove_policy(iam.account_id(), "home").await.unwrap();
    assert_eq!(
        iam.user_info(iam.account_id(), "alice").unwrap().policies,
        vec!["readonly".to_string()]
    );
    // Errors.
    assert!(matches!(
        iam.add_policy(iam.account_id(), "bad", "{").await,
        Err(IamError::MalformedPolicy(_))
    ));
    assert!(matches!(
        iam.remove_policy(iam.account_id(), "readwrite").await,
        Err(IamError::InvalidArgument { .. })
    ));
    assert!(matches!(
        iam.update_group_members(iam.account_id(), "writers", &[], true)
            .await,
        Err(IamError::GroupNotEmpty { .. })
    ));
    // Disabled and removed users cannot sign.
    iam.set_user_status(iam.account_id(), "alice", Status::Disabled)
        .await
        .unwrap();
    assert!(iam.secret_key("alice").is_none());
    iam.set_user_status(iam.account_id(), "alice", Status::Enabled)
        .await
        .unwrap();
    iam.remove_user(iam.account_id(), "alice").await.unwrap();
    assert!(iam.secret_key("alice").is_none());
    assert!(
        iam.group_info(iam.account_id(), "writers")
            .unwrap()
            .members
            .is_empty()
    );
}

#[tokio::test]
async fn service_accounts_narrow_and_follow_their_parent() {
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    iam.add_user(iam.account_id(), "bob", &Secret::new("bob-secret-1".into()))
        .await
        .unwrap();
    iam.set_policies(
        iam.account_id(),
        &Entity::User("bob".into()),
        &["readwrite".into()],
    )
    .await
    .unwrap();
    let (key, secret) = iam.add_service_account(iam.account_id(), NewServiceAccount {
            parent: "bob".into(),
            policy: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#
                    .into(),
            ),
            ..NewServiceAccount::default()
        })
        .await
        .unwrap();
    assert_eq!(iam.secret_key(&key).unwrap(), secret);
    assert!(allowed(&iam, &key, "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(
        !allowed(&iam, &key, "s3:PutObject", "arn:aws:s3:::b/k"),
        "narrowed"
    );
    assert!(!allowed(&iam, &key, "s3:GetObject", "arn:aws:s3:::other/k"));
    // The embedded policy cannot widen the parent's rights.
    iam.set_policies(
        iam.account_id(),
        &Entity::User("bob".into()),
        &["writeonly".into()],
    )
    .await
    .unwrap();
    assert!(!allowed(&iam, &key, "s3:GetObject", "arn:aws:s3:::b/k"));
    iam.set_user_status(iam.account_id(), "bob", Status::Disabled)
        .await
        .unwrap();
    assert!(
        iam.secret_key(&key).is_none(),
        "a disabled parent disables its service accounts"
    );
    iam.set_user_status(iam.account_id(), "bob", Status::Enabled)
        .await
        .unwrap();
    iam.update_service_account(
        iam.account_id(),
        &key,
        ServiceAccountUpdate {
            expiry_unix: Some(Some(1)),
            ..ServiceAccountUpdate::default()
        },
    )
    .await
    .unwrap();
    assert!(iam.secret_key(&key).is_none(), "expired");
    iam.remove_user(iam.account_id(), "bob").await.unwrap();
    assert!(
        iam.service_account_info(iam.account_id(), &key).is_err(),
        "removed with its parent"
    );
}

#[tokio::test]
async fn secrets_are_sealed_and_resealed_when_root_changes() {
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    iam.add_user(
        iam.account_id(),
        "carol",
        &Secret::new("carol-plaintext-secret".into()),
    )
    .await
    .unwrap();
    let raw = store.raw("user/carol").unwrap();
    assert!(
        !raw.windows(b"carol-plaintext-secret".len())
            .any(|w| w == b"carol-plaintext-secret"),
        "the secret is never stored in plaintext"
    );
    drop(iam);
    // New root credentials alone cannot open the store: refused, nothing rewritten.
    let err = iam_over(&store, "root-secret-2").await.unwrap_err();
    assert_eq!(err, IamError::SealedWithOtherRoot);
    assert_eq!(store.raw("user/carol").unwrap(), raw);
    // With the previous ones given, every secret is re-sealed under the new ones.
    let iam = Iam::load(
        root("root-secret-2"),
        Some(root("root-secret-1")),
        ACCOUNT,
        Arc::clone(&store) as Arc<dyn strata_iam::SystemStore>,
    )
    .await
    .unwrap();
    assert_eq!(
        iam.secret_key("carol").unwrap().expose(),
        "carol-plaintext-secret"
    );
    drop(iam);
    // From then on the new credentials alone work, and the old ones no longer do.
    let iam = iam_over(&store, "root-secret-2").await.unwrap();
    assert_eq!(
        iam.secret_key("carol").unwrap().expose(),
        "carol-plaintext-secret"
    );
    assert_eq!(
        iam_over(&store, "root-secret-1").await.unwrap_err(),
        IamError::SealedWithOtherRoot
    );
}

#[tokio::test]
async fn debug_output_never_shows_secrets() {
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-visible?").await.unwrap();
    iam.add_user(
        iam.account_id(),
        "dave",
        &Secret::new("dave-secret-visible?".into()),
    )
    .await
    .unwrap();
    let shown = format!("{iam:?} {:?} {:?}", iam.secret_key("dave"), iam.caller("dave"));
    assert!(!shown.contains("visible?"), "{shown}");
}

#[tokio::test]
async fn a_bucket_policy_grant_is_bounded_by_an_embedded_policy() {
    use strata_iam::policy::{Policy, PolicyKind};
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    iam.add_user(iam.account_id(), "erin", &Secret::new("erin-secret-1".into()))
        .await
        .unwrap();
    let (key, _) = iam.add_service_account(iam.account_id(), NewServiceAccount {
            parent: "erin".into(),
            policy: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/public/*"}]}"#
                    .into(),
            ),
            ..NewServiceAccount::default()
        })
        .await
        .unwrap();
    let bucket_policy = Policy::parse(
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/erin"}},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}]}}"#
        )
        .as_bytes(),
        PolicyKind::Bucket { bucket: "b" },
    )
    .unwrap();
    let decide = |access_key: &str, action: &str, resource: &str| {
        let caller = iam.caller(access_key).unwrap();
        let mut context = Context::new();
        caller.fill_context(&mut context);
        authorize(&caller, action, resource, &context, Some(&bucket_policy)).allowed
    };
    // The user itself gets the bucket policy's grant...
    assert!(decide("erin", "s3:PutObject", "arn:aws:s3:::b/x"));
    // ...its service account only within its embedded policy.
    assert!(!decide(&key, "s3:PutObject", "arn:aws:s3:::b/x"));
    assert!(decide(&key, "s3:GetObject", "arn:aws:s3:::b/public/x"));
    // A bare access key or account id in a Principal names nobody but root.
    let by_key = Policy::parse(
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["erin","{key}"]}},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}}]}}"#
        )
        .as_bytes(),
        PolicyKind::Bucket { bucket: "b" },
    )
    .unwrap();
    let caller = iam.caller("erin").unwrap();
    assert!(
        !authorize(
            &caller,
            "s3:GetObject",
            "arn:aws:s3:::b/x",
            &Context::new(),
            Some(&by_key)
        )
        .allowed
    );
}

#[tokio::test]
async fn an_unreadable_policy_denies_everything() {
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    iam.add_user(iam.account_id(), "fay", &Secret::new("fay-secret-12".into()))
        .await
        .unwrap();
    iam.add_policy(iam.account_id(),
        "guard",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#,
    )
    .await
    .unwrap();
    iam.set_policies(
        iam.account_id(),
        &Entity::User("fay".into()),
        &["readwrite".into(), "guard".into()],
    )
    .await
    .unwrap();
    assert!(allowed(&iam, "fay", "s3:GetObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&iam, "fay", "s3:DeleteObject", "arn:aws:s3:::b/k"));
    // Damage the stored policy: its Deny must not silently disappear.
    use strata_iam::SystemStore;
    store
        .put("policy/guard", bytes::Bytes::from_static(b"\xc1garbage"))
        .await
        .unwrap();
    iam.reload().await.unwrap();
    assert!(!allowed(&iam, "fay", "s3:DeleteObject", "arn:aws:s3:::b/k"));
    assert!(!allowed(&iam, "fay", "s3:GetObject", "arn:aws:s3:::b/k"));
}

#[tokio::test]
async fn sessions_carry_their_parents_rights_until_they_end() {
    use strata_iam::sts::{SessionClaims, SessionKeys};
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    iam.add_user(iam.account_id(), "gil", &Secret::new("gil-secret-12".into()))
        .await
        .unwrap();
    iam.set_policies(
        iam.account_id(),
        &Entity::User("gil".into()),
        &["readwrite".into()],
    )
    .await
    .unwrap();
    let user = iam.caller("gil").unwrap();
    let creds = iam
        .assume_role(
            &user,
            Some(900),
            Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#),
            "job",
        )
        .unwrap();
    assert_eq!(
        iam.secret_key(&creds.access_key).unwrap().expose(),
        creds.secret_key
    );
    let session = iam
        .session_caller(&creds.access_key, &creds.session_token)
        .unwrap();
    let decide = |action: &str| {
        let mut context = Context::new();
        session.fill_context(&mut context);
        authorize(&session, action, "arn:aws:s3:::b/k", &context, None).allowed
    };
    assert!(decide("s3:GetObject"));
    assert!(!decide("s3:PutObject"), "the session policy narrows the parent");
    // Bounds, who may ask, and the end of a session.
    assert!(iam.assume_role(&user, Some(899), None, "x").is_err());
    assert!(iam.assume_role(&user, Some(43_201), None, "x").is_err());
    assert!(
        iam.assume_role(&iam.caller("rootuser").unwrap(), None, None, "x")
            .is_err()
    );
    let keys = SessionKeys::from_root("rootuser", "root-secret-1").unwrap();
    let expired = keys
        .issue(&SessionClaims {
            parent: "gil".into(),
            expiry_unix: 1,
            session_name: "old".into(),
            policy: None,
            federated: None,
        })
        .unwrap();
    assert_eq!(
        iam.session_caller(&expired.access_key, &expired.session_token)
            .unwrap_err(),
        IamError::ExpiredSessionToken
    );
    iam.set_user_status(iam.account_id(), "gil", Status::Disabled)
        .await
        .unwrap();
    assert_eq!(
        iam.session_caller(&creds.access_key, &creds.session_token)
            .unwrap_err(),
        IamError::InvalidSessionToken
    );
}

#[tokio::test]
async fn ldap_mappings_give_sessions_their_policies() {
    use strata_iam::ldap::LdapIdentity;
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    let readers = "cn=Readers, ou=groups,dc=example,dc=com";
    let changed = iam
        .attach_ldap_policies(&Entity::Group(readers.into()), &["readonly".into()], false)
        .await
        .unwrap();
    assert_eq!(changed, vec!["readonly".to_string()]);
    assert!(matches!(
        iam.attach_ldap_policies(&Entity::User("not a dn".into()), &["readonly".into()], false)
            .await,
        Err(IamError::InvalidArgument { .. })
    ));
    assert!(matches!(
        iam.attach_ldap_policies(
            &Entity::User("uid=x,dc=example,dc=com".into()),
            &["nope".into()],
            false
        )
        .await,
        Err(IamError::NoSuchPolicy { .. })
    ));
    let alice = LdapIdentity {
        username: "alice".into(),
        user_dn: "uid=alice,ou=people,dc=example,dc=com".into(),
        // Compared normalized: case and spaces do not matter.
        group_dns: vec!["CN=readers,ou=Groups,dc=example,dc=com".into()],
    };
    assert_eq!(iam.ldap_policies(&alice), vec!["readonly".to_string()]);
    let creds = iam
        .assume_role_with_ldap(&alice, "ldap.example.com:636", None, None, "alice")
        .unwrap();
    let session = iam
        .session_caller(&creds.access_key, &creds.session_token)
        .unwrap();
    let mut context = Context::new();
    session.fill_context(&mut context);
    assert_eq!(context.get("ldap:username").unwrap(), ["alice"]);
    assert!(authorize(&session, "s3:GetObject", "arn:aws:s3:::b/k", &context, None).allowed);
    assert!(!authorize(&session, "s3:PutObject", "arn:aws:s3:::b/k", &context, None).allowed);
    // Unmapped: refused; detached: refused too.
    let bob = LdapIdentity {
        username: "bob".into(),
        user_dn: "uid=bob,ou=people,dc=example,dc=com".into(),
        group_dns: vec![],
    };
    assert!(iam.assume_role_with_ldap(&bob, "x", None, None, "bob").is_err());
    iam.attach_ldap_policies(&Entity::Group(readers.into()), &["readonly".into()], true)
        .await
        .unwrap();
    assert!(iam.ldap_policies(&alice).is_empty());
}

#[tokio::test]
async fn accounts_are_tenants_with_their_own_identities() {
    use strata_iam::{NewAccount, PrincipalKind, Reason, authorize_admin, authorize_in};
    let store = Arc::new(MemoryStore::default());
    let iam = iam_over(&store, "root-secret-1").await.unwrap();
    let (acme, acme_secret) = iam
        .create_account(NewAccount {
            name: "acme".into(),
            ..NewAccount::default()
        })
        .await
        .unwrap();
    assert_eq!(acme.id.len(), 12);
    assert_ne!(acme.id, ACCOUNT);
    assert_eq!(acme.canonical_id, strata_iam::acl::canonical_id(&acme.id));
    assert!(iam.account_exists(&acme.id) && iam.account_exists(ACCOUNT));
    // Names are unique.
    let dup = iam
        .create_account(NewAccount {
            name: "acme".into(),
            ..NewAccount::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(dup, IamError::NameInUse { .. }), "{dup:?}");

    // The account root signs, and acts in its account.
    assert_eq!(iam.secret_key(&acme.root_access_key).unwrap(), acme_secret);
    let acme_root = iam.caller(&acme.root_access_key).unwrap();
    assert_eq!(acme_root.kind, PrincipalKind::AccountRoot);
    assert_eq!(acme_root.account_id, acme.id);
    assert!(!acme_root.is_root());
    let cx = Context::new();
    let own = authorize_in(
        &acme_root,
        "s3:GetObject",
        "arn:aws:s3:::a/k",
        &cx,
        None,
        Some(&acme.id),
    );
    assert!(own.allowed);
    let other = authorize_in(
        &acme_root,
        "s3:GetObject",
        "arn:aws:s3:::b/k",
        &cx,
        None,
        Some(ACCOUNT),
    );
    assert!(!other.allowed);
    assert_eq!(other.reason, Reason::NeedsResourceGrant);
    // Identity admin within its account; nothing deployment-wide.
    assert!(authorize_admin(&acme_root, "admin:CreateUser", Context::new()).allowed);
    assert!(!authorize_admin(&acme_root, "admin:ServerInfo", Context::new()).allowed);
    assert!(!authorize_admin(&acme_root, "admin:CreateAccount", Context::new()).allowed);

    // Its users are invisible to the deployment's account and the other way round.
    iam.add_user(&acme.id, "acme-app", &Secret::new("acme-app-secret".into()))
        .await
        .unwrap();
    iam.add_user(ACCOUNT, "home-app", &Secret::new("home-app-secret".into()))
        .await
        .unwrap();
    let names =
        |account: &str| -> Vec<String> { iam.list_users(account).into_iter().map(|u| u.name).collect() };
    assert_eq!(names(&acme.id), vec!["acme-app".to_string()]);
    assert_eq!(names(ACCOUNT), vec!["home-app".to_string()]);
    assert!(matches!(
        iam.user_info(ACCOUNT, "acme-app").unwrap_err(),
        IamError::NoSuchUser { .. }
    ));
    assert!(matches!(
        iam.remove_user(ACCOUNT, "acme-app").await.unwrap_err(),
        IamError::NoSuchUser { .. }
    ));
    // An access key is global: the other account cannot take it over.
    assert!(matches!(
        iam.add_user(ACCOUNT, "acme-app", &Secret::new("takeover-secret".into()))
            .await
            .unwrap_err(),
        IamError::AccessKeyInUse { .. }
    ));
    // Custom policies and groups are per account; built-ins are everyone's.
    iam.add_policy(
        &acme.id,
        "acme-read",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    )
    .await
    .unwrap();
    assert!(iam.policy_info(ACCOUNT, "acme-read").is_err());
    assert!(iam.policy_info(&acme.id, "readwrite").is_ok());
    assert!(matches!(
        iam.attach_policies(
            ACCOUNT,
            &Entity::User("home-app".into()),
            &["acme-read".into()],
            false
        )
        .await
        .unwrap_err(),
        IamError::NoSuchPolicy { .. }
    ));
    iam.attach_policies(
        &acme.id,
        &Entity::User("acme-app".into()),
        &["readwrite".into()],
        false,
    )
    .await
    .unwrap();
    iam.update_group_members(&acme.id, "team", &["acme-app".into()], false)
        .await
        .unwrap();
    assert!(matches!(
        iam.update_group_members(ACCOUNT, "team", &["home-app".into()], false)
            .await
            .unwrap_err(),
        IamError::NameInUse { .. }
    ));
    assert!(iam.list_groups(ACCOUNT).is_empty());

    // A user of the account: its account's buckets by its policy; others' need their grant.
    let app = iam.caller("acme-app").unwrap();
    assert_eq!(app.account_id, acme.id);
    assert!(app.tenant);
    assert!(
        authorize_in(
            &app,
            "s3:PutObject",
            "arn:aws:s3:::a/k",
            &cx,
            None,
            Some(&acme.id)
        )
        .allowed
    );
    assert!(!authorize_in(&app, "s3:PutObject", "arn:aws:s3:::b/k", &cx, None, Some(ACCOUNT)).allowed);
    let grant = strata_iam::policy::Policy::parse(
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:user/acme-app"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}]}}"#,
            acme.id
        )
        .as_bytes(),
        strata_iam::policy::PolicyKind::Bucket { bucket: "b" },
    )
    .unwrap();
    assert!(
        authorize_in(
            &app,
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            &cx,
            Some(&grant),
            Some(ACCOUNT)
        )
        .allowed
    );
    // Users of the deployment's account do not reach the tenant's buckets either.
    let home = iam.caller("home-app").unwrap();
    assert!(!home.tenant);

    // A disabled account's identities cannot sign; removal waits for it to be empty.
    iam.set_account_status(&acme.id, Status::Disabled).await.unwrap();
    assert!(iam.secret_key(&acme.root_access_key).is_none());
    assert!(iam.secret_key("acme-app").is_none());
    assert!(iam.caller("acme-app").is_none());
    iam.set_account_status(&acme.id, Status::Enabled).await.unwrap();
    assert!(iam.secret_key("acme-app").is_some());
    let not_empty = iam.remove_account(&acme.id).await.unwrap_err();
    assert!(
        matches!(not_empty, IamError::AccountNotEmpty { .. }),
        "{not_empty:?}"
    );

    // Accounts survive a reload (sealed secrets included) and a root-credential change.
    let again = iam_over(&store, "root-secret-1").await.unwrap();
    assert_eq!(again.secret_key(&acme.root_access_key).unwrap(), acme_secret);
    assert_eq!(again.list_accounts().len(), 1);

    iam.remove_user(&acme.id, "acme-app").await.unwrap();
    iam.update_group_members(&acme.id, "team", &[], true)
        .await
        .unwrap();
    iam.remove_policy(&acme.id, "acme-read").await.unwrap();
    iam.remove_account(&acme.id).await.unwrap();
    assert!(iam.list_accounts().is_empty());
    assert!(iam.secret_key(&acme.root_access_key).is_none());
}
