//! AWS's combination of policies into one decision for one request.
//!
//! - The deployment's root user may do everything, in every account (it is the operator).
//! - An account's root may do everything in its own account (AWS's root user), but nothing
//!   deployment-wide: of the `admin:*` actions only those that manage its own account's
//!   identities ([`ACCOUNT_ADMIN_ACTIONS`]); the same bound holds for every identity of an
//!   account other than the deployment's, whatever its policies say.
//! - Across accounts (the bucket belongs to another account than the caller), both sides must
//!   agree: the caller's identity policies must allow it, and so must the bucket's policy (or
//!   its ACL, which the front door checks on [`Reason::NeedsResourceGrant`]).
//! - An explicit `Deny` in any policy that applies (the caller's identity policies, a service
//!   account's embedded policy, the bucket policy) wins over every `Allow`.
//! - Otherwise the request is allowed when the caller's identity policies allow it, or when
//!   the bucket policy allows it for this caller's principal; for a service account with an
//!   embedded policy, that policy must allow it as well (it bounds every grant, the bucket
//!   policy's to its parent included).
//! - Anonymous callers have no identity policies: only a bucket policy naming `*` allows them.
//!
//! Invariant: a decision names what decided it, so a denial can be explained to an operator
//! (statement index and Sid), and never names a secret.

use std::sync::Arc;

use crate::policy::{Context, Policy, Request, Verdict};

/// Who the caller is, for condition keys and for the statements that apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The deployment's root credentials.
    Root,
    /// An account's root credentials (an account other than the deployment's).
    AccountRoot,
    /// A user.
    User,
    /// A service account of a user (or of root).
    ServiceAccount,
    /// Temporary credentials of a user (an STS session).
    Session,
    /// No signature.
    Anonymous,
}

impl PrincipalKind {
    /// The value of `aws:PrincipalType`.
    pub fn principal_type(self) -> &'static str {
        match self {
            PrincipalKind::Root | PrincipalKind::AccountRoot => "Account",
            PrincipalKind::User | PrincipalKind::ServiceAccount => "User",
            PrincipalKind::Session => "AssumedRole",
            PrincipalKind::Anonymous => "Anonymous",
        }
    }
}

/// An authenticated (or anonymous) caller with the policies that apply to it.
#[derive(Clone, Debug)]
pub struct Caller {
    /// What kind of identity signed.
    pub kind: PrincipalKind,
    /// The access key that signed (empty when anonymous).
    pub access_key: String,
    /// The user the rights come from: the user itself, a service account's parent.
    pub user: String,
    /// The parent is the root user (a service account of root).
    pub parent_is_root: bool,
    /// Has its account root's rights (an account root, or its service account).
    pub account_root: bool,
    /// Belongs to an account other than the deployment's own.
    pub tenant: bool,
    /// The identity policies, by name (the user's own and its enabled groups').
    pub policies: Vec<(String, Arc<Policy>)>,
    /// A service account's embedded policy or a session's policy, which narrows `policies`.
    pub embedded: Option<Arc<Policy>>,
    /// Identifiers a bucket policy's `Principal` may name this caller by.
    pub principal_ids: Vec<String>,
    /// The account id.
    pub account_id: String,
    /// An STS session's name.
    pub session_name: Option<String>,
    /// Condition keys a web identity brings (`jwt:sub`, `jwt:iss`).
    pub token_claims: Vec<(String, String)>,
}

impl Caller {
    /// The anonymous caller.
    pub fn anonymous(account_id: &str) -> Caller {
        Caller {
            kind: PrincipalKind::Anonymous,
            access_key: String::new(),
            user: String::new(),
            parent_is_root: false,
            account_root: false,
            tenant: false,
            policies: Vec::new(),
            embedded: None,
            principal_ids: Vec::new(),
            account_id: account_id.to_string(),
            session_name: None,
            token_claims: Vec::new(),
        }
    }

    /// Whether this caller has the root user's rights (root, or a service account of root
    /// without an embedded policy).
    pub fn is_root(&self) -> bool {
        self.kind == PrincipalKind::Root || (self.parent_is_root && self.embedded.is_none())
    }

    /// Whether a service account's embedded policy or a session policy (none: nothing to
    /// narrow) allows `action` on `resource`: resource-based grants (ACLs) stay inside it.
    pub fn embedded_allows(&self, action: &str, resource: &str, context: &Context) -> bool {
        self.embedded.as_ref().is_none_or(|embedded| {
            matches!(
                embedded.evaluate(&Request {
                    action,
                    resource,
                    principal: None,
                    context,
                }),
                Verdict::Allow { .. }
            )
        })
    }

    /// Adds the caller's condition keys (`aws:username`, `aws:userid`, `aws:PrincipalType`,
    /// `aws:PrincipalAccount`) to `context`.
    pub fn fill_context(&self, context: &mut Context) {
        if self.kind != PrincipalKind::Anonymous {
            // AWS has no aws:username for a role session; MinIO keeps the parent's, and policies
            // written for users' home prefixes should keep working for their sessions.
            context.set("aws:username", vec![self.user.clone()]);
            context.set("aws:userid", vec![self.access_key.clone()]);
            context.set("aws:PrincipalAccount", vec![self.account_id.clone()]);
        }
        context.set("aws:PrincipalType", vec![self.kind.principal_type().to_string()]);
        for (key, value) in &self.token_claims {
            context.set(key, vec![value.clone()]);
        }
    }
}

/// Which policy decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A policy attached to the caller (or its group), by name.
    Identity(String),
    /// A service account's embedded policy.
    Embedded,
    /// The bucket policy.
    Bucket,
}

/// What decided a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The root user.
    Root,
    /// An `Allow` statement.
    Allowed {
        /// The policy.
        source: Source,
        /// The statement's index in it.
        statement: usize,
        /// The statement's Sid, if any.
        sid: Option<String>,
    },
    /// An explicit `Deny` statement.
    Denied {
        /// The policy.
        source: Source,
        /// The statement's index in it.
        statement: usize,
        /// The statement's Sid, if any.
        sid: Option<String>,
    },
    /// The caller's account root.
    AccountRoot,
    /// No policy allows it (implicit deny).
    NoAllow,
    /// Across accounts: the caller's policies allow it, but no grant of the bucket's account
    /// does (its policy; the front door then asks its ACL).
    NeedsResourceGrant,
    /// A service account's parent allows it but its embedded policy does not.
    NotInEmbeddedPolicy,
}

/// The decision on one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    fn allow(reason: Reason) -> Decision {
        Decision {
            allowed: true,
            reason,
        }
    }

    fn deny(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }
}

fn sid_of(policy: &Policy, statement: usize) -> Option<String> {
    policy
        .statements()
        .get(statement)
        .and_then(|s| s.sid())
        .map(str::to_string)
}

/// The resource of deployment-wide actions (`admin:*`, `s3:ListAllMyBuckets`).
pub const DEPLOYMENT_RESOURCE: &str = "arn:aws:s3:::*";

/// The `admin:*` actions an account other than the deployment's may hold: managing its own
/// users, groups, policies and service accounts. Every other admin action is deployment-wide.
pub const ACCOUNT_ADMIN_ACTIONS: &[&str] = &[
    "admin:CreateUser",
    "admin:DeleteUser",
    "admin:ListUsers",
    "admin:GetUser",
    "admin:EnableUser",
    "admin:DisableUser",
    "admin:AddUserToGroup",
    "admin:RemoveUserFromGroup",
    "admin:ListGroups",
    "admin:GetGroup",
    "admin:EnableGroup",
    "admin:DisableGroup",
    "admin:CreatePolicy",
    "admin:DeletePolicy",
    "admin:GetPolicy",
    "admin:AttachUserOrGroupPolicy",
    "admin:ListUserPolicies",
    "admin:CreateServiceAccount",
    "admin:UpdateServiceAccount",
    "admin:RemoveServiceAccount",
    "admin:ListServiceAccounts",
];

/// Decides a deployment-wide action (`admin:*`) for `caller`, with the request's condition
/// keys in `context` (an empty one when the request offers none); the caller's are added.
/// Identities of an account other than the deployment's get only [`ACCOUNT_ADMIN_ACTIONS`].
pub fn authorize_admin(caller: &Caller, action: &str, mut context: Context) -> Decision {
    if caller.tenant
        && !ACCOUNT_ADMIN_ACTIONS
            .iter()
            .any(|a| a.eq_ignore_ascii_case(action))
    {
        return Decision::deny(Reason::NoAllow);
    }
    caller.fill_context(&mut context);
    authorize(caller, action, DEPLOYMENT_RESOURCE, &context, None)
}

/// Decides whether `caller` may do `action` on `resource` of its own account, given the
/// request's condition keys and the bucket's policy (if the request addresses a bucket that
/// has one).
pub fn authorize(
    caller: &Caller,
    action: &str,
    resource: &str,
    context: &Context,
    bucket_policy: Option<&Policy>,
) -> Decision {
    authorize_in(caller, action, resource, context, bucket_policy, None)
}

/// [`authorize`] for a resource that belongs to `resource_account` (none: the caller's own,
/// or nobody's, as deployment-wide actions): across accounts, the caller's identity and the
/// bucket's policy must both allow it.
pub fn authorize_in(
    caller: &Caller,
    action: &str,
    resource: &str,
    context: &Context,
    bucket_policy: Option<&Policy>,
    resource_account: Option<&str>,
) -> Decision {
    if caller.is_root() {
        return Decision::allow(Reason::Root);
    }
    let cross_account = caller.kind != PrincipalKind::Anonymous
        && resource_account.is_some_and(|owner| owner != caller.account_id);
    let identity_request = Request {
        action,
        resource,
        principal: None,
        context,
    };
    let mut identity_allow: Option<Reason> = None;
    for (name, policy) in &caller.policies {
        match policy.evaluate(&identity_request) {
            Verdict::Deny { statement } => {
                return Decision::deny(Reason::Denied {
                    source: Source::Identity(name.clone()),
                    statement,
                    sid: sid_of(policy, statement),
                });
            }
            Verdict::Allow { statement } if identity_allow.is_none() => {
                identity_allow = Some(Reason::Allowed {
                    source: Source::Identity(name.clone()),
                    statement,
                    sid: sid_of(policy, statement),
                });
            }
            _ => {}
        }
    }
    if caller.parent_is_root && caller.kind == PrincipalKind::ServiceAccount && identity_allow.is_none() {
        // A service account of root with an embedded policy: the parent allows everything.
        identity_allow = Some(Reason::Root);
    }
    if caller.account_root && identity_allow.is_none() {
        // An account's root (or its service account): everything, as AWS's root user; other
        // accounts' resources still need their grant, and the admin bound is authorize_admin's.
        identity_allow = Some(Reason::AccountRoot);
    }
    let mut embedded_allows = true;
    if let Some(embedded) = &caller.embedded {
        match embedded.evaluate(&identity_request) {
            Verdict::Deny { statement } => {
                return Decision::deny(Reason::Denied {
                    source: Source::Embedded,
                    statement,
                    sid: sid_of(embedded, statement),
                });
            }
            Verdict::Allow { .. } => {}
            Verdict::NotApplicable => embedded_allows = false,
        }
    }
    let mut bucket_allow: Option<Reason> = None;
    if let Some(policy) = bucket_policy {
        let request = Request {
            action,
            resource,
            principal: Some(&caller.principal_ids),
            context,
        };
        match policy.evaluate(&request) {
            Verdict::Deny { statement } => {
                return Decision::deny(Reason::Denied {
                    source: Source::Bucket,
                    statement,
                    sid: sid_of(policy, statement),
                });
            }
            Verdict::Allow { statement } => {
                bucket_allow = Some(Reason::Allowed {
                    source: Source::Bucket,
                    statement,
                    sid: sid_of(policy, statement),
                });
            }
            Verdict::NotApplicable => {}
        }
    }
    // A service account's embedded policy bounds everything it does, whichever policy allows
    // it (as a session policy bounds a session, resource-based grants to its parent included).
    if cross_account {
        return match (identity_allow, bucket_allow) {
            (Some(_), Some(reason)) if embedded_allows => Decision::allow(reason),
            (Some(_), None) if embedded_allows => Decision::deny(Reason::NeedsResourceGrant),
            (Some(_), _) => Decision::deny(Reason::NotInEmbeddedPolicy),
            (None, _) => Decision::deny(Reason::NoAllow),
        };
    }
    match (identity_allow, bucket_allow) {
        (Some(reason), _) | (None, Some(reason)) if embedded_allows => Decision::allow(reason),
        (None, None) => Decision::deny(Reason::NoAllow),
        _ => Decision::deny(Reason::NotInEmbeddedPolicy),
    }
}
