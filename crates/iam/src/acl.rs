//! S3 access control lists (ACLs), Object Ownership and Block Public Access, as pure logic.
//!
//! An [`Acl`] is an owner and up to [`MAX_GRANTS`] grants of a [`Permission`] to a [`Grantee`]
//! (an account by canonical id, one of AWS's three predefined groups, or an e-mail address).
//! It comes from a canned ACL ([`Acl::canned`], `x-amz-acl`), from `x-amz-grant-*` headers
//! ([`Acl::from_grant_headers`]) or from an `AccessControlPolicy` body the front door has
//! decoded; [`Acl::validate`] applies AWS's checks to the last two before one is stored. The
//! object layer stores an ACL as an opaque JSON string ([`Acl::to_json`]).
//!
//! Evaluation ([`Acl::allows`]) answers "does this ACL grant this permission to this caller";
//! [`acl_permission_for`] says which permission an action needs (AWS's mapping of ACL
//! permissions to policy actions). **The owner gets no implicit rights here**: an owner's
//! access comes from policies (and from the grants an ACL names explicitly), exactly as an
//! owner who removed its own grant from an ACL keeps its policy rights in AWS.
//!
//! Invariant: no HTTP or XML: the front door converts s3s DTOs to and from these types and
//! maps each [`AclError`] to the S3 error a client sees (each variant names it).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most grants one ACL may hold (AWS: "You can grant up to 100 permissions in an ACL").
pub const MAX_GRANTS: usize = 100;

/// Why an ACL, a canned ACL name or a grant header is not acceptable. The front door maps each
/// variant to an S3 error code (noted per variant). Messages never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// An ACL body that does not describe an ACL (no owner id, an unknown permission):
    /// `MalformedACLError`.
    #[error("The XML you provided was not well-formed or did not validate against our published schema")]
    MalformedAcl,
    /// An unknown canned ACL, a malformed `x-amz-grant-*` value, an unknown group URI or a
    /// canonical user id that names no account: `InvalidArgument`, with the message.
    #[error("{0}")]
    InvalidArgument(String),
    /// A grant to an e-mail address: Strata has no e-mail directory:
    /// `UnresolvableGrantByEmailAddress`.
    #[error("The e-mail address you provided does not match any account on record.")]
    UnresolvableGrantByEmail,
    /// The ACL's owner is not the resource's owner: `AccessDenied`.
    #[error("Access Denied")]
    AccessDenied,
    /// An ACL set on a bucket whose Object Ownership is `BucketOwnerEnforced`:
    /// `AccessControlListNotSupported` (`InvalidBucketAclWithObjectOwnership` for
    /// `CreateBucket`).
    #[error("The bucket does not allow ACLs")]
    AclNotSupported,
    /// More than [`MAX_GRANTS`] grants (AWS has no code of its own for it; `MalformedACLError`
    /// fits).
    #[error("An access control list may hold at most 100 grants")]
    TooManyGrants,
}

fn invalid(message: impl Into<String>) -> AclError {
    AclError::InvalidArgument(message.into())
}

/// The canonical user id of an account: the lowercase hex SHA-256 of
/// `"strata-account:" + account_id` (64 hex digits, the shape of AWS's canonical ids).
///
/// Every identity of an account (root, users, service accounts, sessions) has the account's
/// canonical id, as in AWS, where ACLs grant to accounts.
pub fn canonical_id(account_id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::new()
        .chain_update(b"strata-account:")
        .chain_update(account_id.as_bytes())
        .finalize();
    let mut out = String::with_capacity(64);
    for byte in digest.iter() {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// The owner of a bucket or object: an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The account's canonical user id (64 lowercase hex digits, see [`canonical_id`]).
    pub id: String,
    /// The name shown next to the id in ACLs and listings.
    pub display_name: String,
}

impl Owner {
    /// An owner from its canonical id and display name.
    pub fn new(id: impl Into<String>, display_name: impl Into<String>) -> Owner {
        Owner {
            id: id.into(),
            display_name: display_name.into(),
        }
    }

    /// The owner that is the account `account_id` (its id is [`canonical_id`]).
    pub fn for_account(account_id: &str, display_name: impl Into<String>) -> Owner {
        Owner::new(canonical_id(account_id), display_name)
    }
}

/// AWS's predefined groups of grantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    /// Everyone, anonymous callers included (`.../groups/global/AllUsers`).
    AllUsers,
    /// Every signed caller, of any account (`.../groups/global/AuthenticatedUsers`).
    AuthenticatedUsers,
    /// The server access log delivery service (`.../groups/s3/LogDelivery`).
    LogDelivery,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 3] = [Group::AllUsers, Group::AuthenticatedUsers, Group::LogDelivery];

    /// The group's URI, as ACLs and grant headers name it.
    pub fn uri(self) -> &'static str {
        match self {
            Group::AllUsers => "http://acs.amazonaws.com/groups/global/AllUsers",
            Group::AuthenticatedUsers => "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
            Group::LogDelivery => "http://acs.amazonaws.com/groups/s3/LogDelivery",
        }
    }

    /// The group a URI names (exact match), None for any other URI.
    pub fn from_uri(uri: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.uri() == uri)
    }

    /// The group with `uri`, or AWS's `InvalidArgument` ("Invalid group uri").
    pub fn parse_uri(uri: &str) -> Result<Group, AclError> {
        Group::from_uri(uri).ok_or_else(|| invalid("Invalid group uri"))
    }

    /// Whether a grant to this group makes an ACL public (AWS's definition: `AllUsers` and
    /// `AuthenticatedUsers`; `LogDelivery` is not public).
    pub fn is_public(self) -> bool {
        matches!(self, Group::AllUsers | Group::AuthenticatedUsers)
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// An account, by canonical user id.
    CanonicalUser {
        /// The canonical user id.
        id: String,
        /// Its display name, when known (filled in by [`Acl::validate`]).
        display_name: Option<String>,
    },
    /// A predefined group.
    Group(Group),
    /// An account by e-mail address; never resolved by Strata ([`Acl::validate`] refuses it)
    /// and never matched by [`Acl::allows`].
    Email(String),
}

impl Grantee {
    /// The account with canonical id `id`, display name unknown.
    pub fn user(id: impl Into<String>) -> Grantee {
        Grantee::CanonicalUser {
            id: id.into(),
            display_name: None,
        }
    }

    /// The account that is `owner`, with its display name (None when empty).
    pub fn owner(owner: &Owner) -> Grantee {
        Grantee::CanonicalUser {
            id: owner.id.clone(),
            display_name: non_empty(&owner.display_name),
        }
    }

    /// The canonical id of a `CanonicalUser` grantee.
    pub fn canonical_id(&self) -> Option<&str> {
        match self {
            Grantee::CanonicalUser { id, .. } => Some(id),
            Grantee::Group(_) | Grantee::Email(_) => None,
        }
    }

    /// Whether a grant to this grantee makes an ACL public (`AllUsers`, `AuthenticatedUsers`).
    pub fn is_public(&self) -> bool {
        matches!(self, Grantee::Group(g) if g.is_public())
    }

    /// Whether `who` is this grantee; groups that make an ACL public are skipped when
    /// `ignore_public`.
    fn matches(&self, who: AclSubject<'_>, ignore_public: bool) -> bool {
        match self {
            Grantee::CanonicalUser { id, .. } => who.canonical_id == Some(id.as_str()),
            Grantee::Group(Group::AllUsers) => !ignore_public,
            Grantee::Group(Group::AuthenticatedUsers) => !ignore_public && who.canonical_id.is_some(),
            // No caller of Strata is AWS's log delivery service.
            Grantee::Group(Group::LogDelivery) => false,
            Grantee::Email(_) => false,
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// What a grant allows; the JSON and string forms are AWS's (`FULL_CONTROL`, `READ`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// `FULL_CONTROL`: every other permission.
    #[serde(rename = "FULL_CONTROL")]
    FullControl,
    /// `WRITE`: on a bucket, create, overwrite and delete objects; not used on objects.
    #[serde(rename = "WRITE")]
    Write,
    /// `WRITE_ACP`: replace the ACL.
    #[serde(rename = "WRITE_ACP")]
    WriteAcp,
    /// `READ`: on a bucket, list it; on an object, read its data and metadata.
    #[serde(rename = "READ")]
    Read,
    /// `READ_ACP`: read the ACL.
    #[serde(rename = "READ_ACP")]
    ReadAcp,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 5] = [
        Permission::FullControl,
        Permission::Write,
        Permission::WriteAcp,
        Permission::Read,
        Permission::ReadAcp,
    ];

    /// AWS's name: `FULL_CONTROL`, `WRITE`, `WRITE_ACP`, `READ`, `READ_ACP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullControl => "FULL_CONTROL",
            Permission::Write => "WRITE",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::Read => "READ",
            Permission::ReadAcp => "READ_ACP",
        }
    }

    /// The request header that grants this permission (lowercase): `x-amz-grant-full-control`,
    /// `x-amz-grant-write`, `x-amz-grant-write-acp`, `x-amz-grant-read`, `x-amz-grant-read-acp`.
    pub fn grant_header(self) -> &'static str {
        match self {
            Permission::FullControl => "x-amz-grant-full-control",
            Permission::Write => "x-amz-grant-write",
            Permission::WriteAcp => "x-amz-grant-write-acp",
            Permission::Read => "x-amz-grant-read",
            Permission::ReadAcp => "x-amz-grant-read-acp",
        }
    }

    /// The permission a grant header name (any case) grants, None for any other header.
    pub fn from_grant_header(name: &str) -> Option<Permission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.grant_header().eq_ignore_ascii_case(name))
    }

    /// Whether a grant of `self` allows `wanted`: `FULL_CONTROL` allows everything, any other
    /// permission only itself.
    pub fn implies(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = AclError;

    /// AWS's name (exact case); anything else is [`AclError::MalformedAcl`] (the value comes
    /// from an ACL body).
    fn from_str(text: &str) -> Result<Permission, AclError> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or(AclError::MalformedAcl)
    }
}

/// One grant: a permission for a grantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

impl Grant {
    /// A grant of `permission` to `grantee`.
    pub fn new(grantee: Grantee, permission: Permission) -> Grant {
        Grant { grantee, permission }
    }
}

/// A canned ACL, as `x-amz-acl` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CannedAcl {
    /// `private`: the owner gets `FULL_CONTROL`, no one else anything (the default).
    Private,
    /// `public-read`: and `AllUsers` gets `READ`.
    PublicRead,
    /// `public-read-write`: and `AllUsers` gets `READ` and `WRITE`.
    PublicReadWrite,
    /// `authenticated-read`: and `AuthenticatedUsers` gets `READ`.
    AuthenticatedRead,
    /// `aws-exec-read`: in AWS, and Amazon EC2 gets `READ` (for AMI bundles). Strata has no
    /// EC2 account, so this is the owner's `FULL_CONTROL` only.
    AwsExecRead,
    /// `bucket-owner-read`: the object owner gets `FULL_CONTROL` and the bucket owner `READ`;
    /// ignored (the same as `private`) for a bucket.
    BucketOwnerRead,
    /// `bucket-owner-full-control`: the object owner and the bucket owner get `FULL_CONTROL`;
    /// ignored (the same as `private`) for a bucket.
    BucketOwnerFullControl,
    /// `log-delivery-write`: for a bucket, and `LogDelivery` gets `WRITE` and `READ_ACP`; the
    /// same as `private` for an object (AWS applies it to buckets only).
    LogDeliveryWrite,
}

impl CannedAcl {
    /// Every canned ACL.
    pub const ALL: [CannedAcl; 8] = [
        CannedAcl::Private,
        CannedAcl::PublicRead,
        CannedAcl::PublicReadWrite,
        CannedAcl::AuthenticatedRead,
        CannedAcl::AwsExecRead,
        CannedAcl::BucketOwnerRead,
        CannedAcl::BucketOwnerFullControl,
        CannedAcl::LogDeliveryWrite,
    ];

    /// The `x-amz-acl` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::PublicReadWrite => "public-read-write",
            CannedAcl::AuthenticatedRead => "authenticated-read",
            CannedAcl::AwsExecRead => "aws-exec-read",
            CannedAcl::BucketOwnerRead => "bucket-owner-read",
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
            CannedAcl::LogDeliveryWrite => "log-delivery-write",
        }
    }

    /// The canned ACL an `x-amz-acl` value names (exact, as AWS spells them); any other value
    /// is [`AclError::InvalidArgument`].
    pub fn parse(text: &str) -> Result<CannedAcl, AclError> {
        CannedAcl::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| invalid("Invalid canned ACL"))
    }
}

impl fmt::Display for CannedAcl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CannedAcl {
    type Err = AclError;

    fn from_str(text: &str) -> Result<CannedAcl, AclError> {
        CannedAcl::parse(text)
    }
}

/// The caller an ACL is evaluated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AclSubject<'a> {
    /// The caller's account canonical id ([`canonical_id`]); None for an anonymous caller.
    pub canonical_id: Option<&'a str>,
}

impl<'a> AclSubject<'a> {
    /// An anonymous (unsigned) caller.
    pub const ANONYMOUS: AclSubject<'static> = AclSubject { canonical_id: None };

    /// A signed caller whose account no grant can name for it: a user of the resource
    /// owner's own account. A grant to an account delegates to that account, whose users
    /// still need their own policies (AWS's rule), so only the group grants
    /// (`AuthenticatedUsers`, `AllUsers`) can match such a caller.
    pub const AUTHENTICATED: AclSubject<'static> = AclSubject {
        canonical_id: Some(""),
    };

    /// A signed caller of the account with canonical id `canonical_id`.
    pub fn user(canonical_id: &'a str) -> AclSubject<'a> {
        AclSubject {
            canonical_id: Some(canonical_id),
        }
    }
}

/// An access control list: the owner of a bucket or object and its grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// The resource's owner.
    pub owner: Owner,
    /// The grants, in order (duplicates are kept, as AWS keeps them).
    pub grants: Vec<Grant>,
}

impl Acl {
    /// The default ACL of a new bucket or object: the owner gets `FULL_CONTROL`.
    pub fn private(owner: &Owner) -> Acl {
        Acl {
            owner: owner.clone(),
            grants: vec![Grant::new(Grantee::owner(owner), Permission::FullControl)],
        }
    }

    /// The ACL a canned ACL stands for, as AWS expands it: `owner` (the resource's owner)
    /// gets `FULL_CONTROL`, plus the canned ACL's grants ([`CannedAcl`] documents each).
    ///
    /// `bucket_owner` matters for `bucket-owner-read` and `bucket-owner-full-control` on an
    /// object only, and adds a grant only when it is not the object's owner. `for_bucket`
    /// says whether the ACL is a bucket's (then the `bucket-owner-*` ACLs are `private`) or an
    /// object's (then `log-delivery-write` is `private`).
    pub fn canned(canned: CannedAcl, owner: &Owner, bucket_owner: &Owner, for_bucket: bool) -> Acl {
        let mut acl = Acl::private(owner);
        let group = |g: Group, p: Permission| Grant::new(Grantee::Group(g), p);
        let other_bucket_owner = !for_bucket && bucket_owner.id != owner.id;
        match canned {
            CannedAcl::Private | CannedAcl::AwsExecRead => {}
            CannedAcl::PublicRead => acl.grants.push(group(Group::AllUsers, Permission::Read)),
            CannedAcl::PublicReadWrite => {
                acl.grants.push(group(Group::AllUsers, Permission::Read));
                acl.grants.push(group(Group::AllUsers, Permission::Write));
            }
            CannedAcl::AuthenticatedRead => {
                acl.grants
                    .push(group(Group::AuthenticatedUsers, Permission::Read));
            }
            CannedAcl::BucketOwnerRead if other_bucket_owner => {
                acl.grants
                    .push(Grant::new(Grantee::owner(bucket_owner), Permission::Read));
            }
            CannedAcl::BucketOwnerFullControl if other_bucket_owner => {
                acl.grants
                    .push(Grant::new(Grantee::owner(bucket_owner), Permission::FullControl));
            }
            CannedAcl::BucketOwnerRead | CannedAcl::BucketOwnerFullControl => {}
            CannedAcl::LogDeliveryWrite if for_bucket => {
                acl.grants.push(group(Group::LogDelivery, Permission::Write));
                acl.grants.push(group(Group::LogDelivery, Permission::ReadAcp));
            }
            CannedAcl::LogDeliveryWrite => {}
        }
        acl
    }

    /// The ACL that `x-amz-grant-*` headers describe: each `(permission, header value)` pair
    /// parsed with [`parse_grant_header`], the grants concatenated in order.
    ///
    /// As in AWS, the owner gets no grant the headers do not name. The result still needs
    /// [`Acl::validate`] (known canonical ids, the grant limit).
    pub fn from_grant_headers(owner: &Owner, headers: &[(Permission, &str)]) -> Result<Acl, AclError> {
        let mut grants = Vec::new();
        for (permission, value) in headers {
            grants.extend(parse_grant_header(*permission, value)?);
        }
        Ok(Acl {
            owner: owner.clone(),
            grants,
        })
    }

    /// AWS's checks of an ACL a client sets (a `PutBucketAcl` / `PutObjectAcl` body, or
    /// grant headers), returning the ACL to store, with the owner's and the grantees' display
    /// names filled in.
    ///
    /// In order: an owner without an id is [`AclError::MalformedAcl`]; an owner other than
    /// `resource_owner` is [`AclError::AccessDenied`]; more than [`MAX_GRANTS`] grants is
    /// [`AclError::TooManyGrants`]; then per grant, an e-mail grantee is
    /// [`AclError::UnresolvableGrantByEmail`] and a canonical id that `resolve` does not know
    /// (it returns the account's display name) is [`AclError::InvalidArgument`].
    pub fn validate(
        self,
        resource_owner: &Owner,
        resolve: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Acl, AclError> {
        if self.owner.id.is_empty() {
            return Err(AclError::MalformedAcl);
        }
        if self.owner.id != resource_owner.id {
            return Err(AclError::AccessDenied);
        }
        if self.grants.len() > MAX_GRANTS {
            return Err(AclError::TooManyGrants);
        }
        let mut grants = Vec::with_capacity(self.grants.len());
        for grant in self.grants {
            let grantee = match grant.grantee {
                Grantee::CanonicalUser { id, .. } => {
                    let name = resolve(&id).ok_or_else(|| invalid("Invalid id"))?;
                    Grantee::CanonicalUser {
                        display_name: non_empty(&name),
                        id,
                    }
                }
                Grantee::Email(_) => return Err(AclError::UnresolvableGrantByEmail),
                group @ Grantee::Group(_) => group,
            };
            grants.push(Grant::new(grantee, grant.permission));
        }
        Ok(Acl {
            owner: resource_owner.clone(),
            grants,
        })
    }

    /// Whether a grant of this ACL gives `who` the permission `permission`.
    ///
    /// A `FULL_CONTROL` grant gives every permission; `AllUsers` is everyone, anonymous
    /// callers included; `AuthenticatedUsers` is every signed caller; a canonical user is the
    /// caller with that id; `LogDelivery` and e-mail grantees match no caller of Strata.
    ///
    /// **The owner has no implicit rights here**: only the grants count. The owner's rights
    /// come from policies; the front door checks those first and uses the ACL only as a
    /// further source of an allow.
    pub fn allows(&self, who: AclSubject<'_>, permission: Permission) -> bool {
        self.allows_with(who, permission, false)
    }

    /// [`Acl::allows`], skipping the grants to `AllUsers` and `AuthenticatedUsers` when
    /// `ignore_public` (Block Public Access's `IgnorePublicAcls`).
    pub fn allows_with(&self, who: AclSubject<'_>, permission: Permission, ignore_public: bool) -> bool {
        self.grants
            .iter()
            .any(|g| g.permission.implies(permission) && g.grantee.matches(who, ignore_public))
    }

    /// Whether the ACL is public in AWS's sense (what `BlockPublicAcls` refuses and
    /// `IgnorePublicAcls` ignores): it grants any permission to `AllUsers` or
    /// `AuthenticatedUsers`.
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|g| g.grantee.is_public())
    }

    /// The JSON form the object layer stores.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// An ACL from its stored JSON form ([`Acl::to_json`]).
    pub fn from_json(text: &str) -> Result<Acl, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The grants one `x-amz-grant-*` header value names, all of `permission`.
///
/// The value is a comma-separated list of `key=value` entries, `key` one of `id` (a canonical
/// user id), `uri` (a group URI) or `emailAddress` (any case), the value optionally in double
/// quotes; whitespace around entries, keys and values is ignored:
/// `id="79a5...", uri="http://acs.amazonaws.com/groups/global/AllUsers"`.
///
/// An empty value or entry, an unknown key, a missing `=`, an unterminated quote or an
/// unknown group URI is [`AclError::InvalidArgument`]; an `emailAddress` entry is
/// [`AclError::UnresolvableGrantByEmail`]. Canonical ids are not checked here
/// ([`Acl::validate`] does).
pub fn parse_grant_header(permission: Permission, value: &str) -> Result<Vec<Grant>, AclError> {
    let malformed = |why: &str| {
        invalid(format!(
            "Invalid {} header value: {why}",
            permission.grant_header()
        ))
    };
    let mut grants = Vec::new();
    let mut rest = value.trim_start();
    if rest.trim_end().is_empty() {
        return Err(malformed("no grantee"));
    }
    loop {
        let eq = rest.find('=').ok_or_else(|| malformed("expected key=value"))?;
        let (key, after_key) = rest.split_at(eq);
        let key = key.trim();
        let after_eq = after_key.get(1..).unwrap_or_default().trim_start();
        let (text, after_value) = if let Some(quoted) = after_eq.strip_prefix('"') {
            let end = quoted.find('"').ok_or_else(|| malformed("unterminated quote"))?;
            let (inner, closing) = quoted.split_at(end);
            (inner.trim(), closing.get(1..).unwrap_or_default())
        } else {
            let end = after_eq.find(',').unwrap_or(after_eq.len());
            let (bare, tail) = after_eq.split_at(end);
            let bare = bare.trim_end();
            if bare.contains(['"', '=']) || bare.contains(char::is_whitespace) {
                return Err(malformed("unexpected character in a value"));
            }
            (bare, tail)
        };
        if text.is_empty() {
            return Err(malformed("empty value"));
        }
        let grantee = if key.eq_ignore_ascii_case("id") {
            Grantee::user(text)
        } else if key.eq_ignore_ascii_case("uri") {
            Grantee::Group(Group::parse_uri(text)?)
        } else if key.eq_ignore_ascii_case("emailAddress") {
            return Err(AclError::UnresolvableGrantByEmail);
        } else {
            return Err(malformed("unknown grantee type"));
        };
        grants.push(Grant::new(grantee, permission));
        rest = after_value.trim_start();
        if rest.is_empty() {
            return Ok(grants);
        }
        rest = rest
            .strip_prefix(',')
            .ok_or_else(|| malformed("expected a comma between grantees"))?
            .trim_start();
        if rest.is_empty() {
            return Err(malformed("empty entry"));
        }
    }
}

/// The ACL permission that allows `action` (an AWS action name such as `s3:GetObject`, any
/// case), from AWS's "mapping of ACL permissions and access policy permissions"; None when
/// no ACL grants the action (then only policies can allow it).
///
/// `on_object` says which ACL is consulted: the object's (`true`) or the bucket's (`false`).
/// Writing and deleting objects is a bucket permission, so `s3:PutObject` needs `WRITE` in
/// the bucket's ACL and has no object permission (AWS does not use `WRITE` on objects):
///
/// - bucket ACL: `READ` allows `s3:ListBucket`, `s3:ListBucketVersions` and
///   `s3:ListBucketMultipartUploads`; `WRITE` allows `s3:PutObject` and `s3:DeleteObject`;
///   `READ_ACP` allows `s3:GetBucketAcl`; `WRITE_ACP` allows
///   `s3:PutBucketAcl`;
/// - object ACL: `READ` allows `s3:GetObject`, `s3:GetObjectVersion` and `s3:GetObjectTorrent`;
///   `READ_ACP` allows `s3:GetObjectAcl` and `s3:GetObjectVersionAcl`; `WRITE_ACP` allows
///   `s3:PutObjectAcl` and `s3:PutObjectVersionAcl`; `WRITE` allows nothing.
///
/// `FULL_CONTROL` allows everything its ACL's list names ([`Permission::implies`]). AWS
/// grants `s3:DeleteObjectVersion` through bucket `WRITE` only to the bucket owner, whose own
/// policies decide for it anyway, so no ACL grants a permanent delete of a version here.
pub fn acl_permission_for(action: &str, on_object: bool) -> Option<Permission> {
    use Permission::{Read, ReadAcp, Write, WriteAcp};
    const BUCKET: &[(&str, Permission)] = &[
        ("s3:ListBucket", Read),
        ("s3:ListBucketVersions", Read),
        ("s3:ListBucketMultipartUploads", Read),
        ("s3:PutObject", Write),
        ("s3:DeleteObject", Write),
        ("s3:GetBucketAcl", ReadAcp),
        ("s3:PutBucketAcl", WriteAcp),
    ];
    const OBJECT: &[(&str, Permission)] = &[
        ("s3:GetObject", Read),
        ("s3:GetObjectVersion", Read),
        ("s3:GetObjectTorrent", Read),
        ("s3:GetObjectAcl", ReadAcp),
        ("s3:GetObjectVersionAcl", ReadAcp),
        ("s3:PutObjectAcl", WriteAcp),
        ("s3:PutObjectVersionAcl", WriteAcp),
    ];
    let table = if on_object { OBJECT } else { BUCKET };
    table
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(action))
        .map(|&(_, permission)| permission)
}

/// A bucket's Object Ownership setting: who owns uploaded objects, and whether ACLs apply.
///
/// AWS's default for a new bucket is `BucketOwnerEnforced` ([`Default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ObjectOwnership {
    /// ACLs are disabled: the bucket owner owns every object, only policies grant access.
    #[default]
    BucketOwnerEnforced,
    /// The bucket owner owns objects uploaded with `bucket-owner-full-control`; ACLs apply.
    BucketOwnerPreferred,
    /// The uploading account owns the object; ACLs apply.
    ObjectWriter,
}

/// An ACL a request asks for, for [`ObjectOwnership::check_requested_acl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedAcl<'a> {
    /// `x-amz-acl`.
    Canned(CannedAcl),
    /// `x-amz-grant-*` headers or an `AccessControlPolicy` body.
    Grants(&'a [Grant]),
}

impl ObjectOwnership {
    /// Every setting.
    pub const ALL: [ObjectOwnership; 3] = [
        ObjectOwnership::BucketOwnerEnforced,
        ObjectOwnership::BucketOwnerPreferred,
        ObjectOwnership::ObjectWriter,
    ];

    /// AWS's name: `BucketOwnerEnforced`, `BucketOwnerPreferred`, `ObjectWriter`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectOwnership::BucketOwnerEnforced => "BucketOwnerEnforced",
            ObjectOwnership::BucketOwnerPreferred => "BucketOwnerPreferred",
            ObjectOwnership::ObjectWriter => "ObjectWriter",
        }
    }

    /// The setting AWS's name (exact) stands for; anything else is
    /// [`AclError::InvalidArgument`].
    pub fn parse(text: &str) -> Result<ObjectOwnership, AclError> {
        ObjectOwnership::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| invalid("Invalid x-amz-object-ownership value"))
    }

    /// Whether ACLs apply (everything but `BucketOwnerEnforced`). With ACLs disabled, stored
    /// ACLs are not consulted and reading an ACL shows the bucket owner's `FULL_CONTROL`.
    pub fn acls_enabled(self) -> bool {
        self != ObjectOwnership::BucketOwnerEnforced
    }

    /// Who owns an object `writer` uploads with the canned ACL `canned` (None when the
    /// request names none): the bucket owner under `BucketOwnerEnforced`, and under
    /// `BucketOwnerPreferred` when the canned ACL is `bucket-owner-full-control`; otherwise
    /// the writer.
    pub fn object_owner(self, writer: &Owner, bucket_owner: &Owner, canned: Option<CannedAcl>) -> Owner {
        let to_bucket_owner = match self {
            ObjectOwnership::BucketOwnerEnforced => true,
            ObjectOwnership::BucketOwnerPreferred => canned == Some(CannedAcl::BucketOwnerFullControl),
            ObjectOwnership::ObjectWriter => false,
        };
        if to_bucket_owner { bucket_owner } else { writer }.clone()
    }

    /// Whether a request may set the ACL it asks for (None: it asks for none), AWS's rule:
    /// with ACLs enabled every ACL may be set; under `BucketOwnerEnforced` only requests
    /// without an ACL, with `bucket-owner-full-control` or `private`, or with grants
    /// equivalent to them are accepted. Equivalent grants are all `FULL_CONTROL`, include the
    /// bucket owner, and name no one but the bucket owner and the writer (`writer_id`; pass
    /// the bucket owner's id for a bucket's own ACL). Anything else is
    /// [`AclError::AclNotSupported`].
    pub fn check_requested_acl(
        self,
        requested: Option<RequestedAcl<'_>>,
        writer_id: &str,
        bucket_owner_id: &str,
    ) -> Result<(), AclError> {
        if self.acls_enabled() {
            return Ok(());
        }
        let accepted = match requested {
            None => true,
            Some(RequestedAcl::Canned(canned)) => {
                matches!(canned, CannedAcl::Private | CannedAcl::BucketOwnerFullControl)
            }
            Some(RequestedAcl::Grants(grants)) => {
                let full_control_to = |id: &str| {
                    grants.iter().any(|g| {
                        g.permission == Permission::FullControl && g.grantee.canonical_id() == Some(id)
                    })
                };
                full_control_to(bucket_owner_id)
                    && grants.iter().all(|g| {
                        g.permission == Permission::FullControl
                            && g.grantee
                                .canonical_id()
                                .is_some_and(|id| id == bucket_owner_id || id == writer_id)
                    })
            }
        };
        if accepted {
            Ok(())
        } else {
            Err(AclError::AclNotSupported)
        }
    }
}

impl fmt::Display for ObjectOwnership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectOwnership {
    type Err = AclError;

    fn from_str(text: &str) -> Result<ObjectOwnership, AclError> {
        ObjectOwnership::parse(text)
    }
}

/// A Block Public Access configuration (a bucket's or the account's); every setting off by
/// default, and absent JSON fields read as off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PublicAccessBlock {
    /// Refuse setting a public ACL ([`Acl::is_public`]) on the bucket or its objects
    /// (`PutBucketAcl`, `PutObjectAcl`, and `PutObject` / `CreateBucket` with one).
    pub block_public_acls: bool,
    /// Ignore public grants when evaluating ACLs ([`Acl::allows_with`]).
    pub ignore_public_acls: bool,
    /// Refuse setting a public bucket policy.
    pub block_public_policy: bool,
    /// Only the owner's account and AWS services may use a bucket whose policy is public.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// The settings in force for a bucket: each one on when the bucket's or the account's
    /// configuration turns it on (AWS applies the most restrictive combination).
    pub fn merge(bucket: &PublicAccessBlock, account: &PublicAccessBlock) -> PublicAccessBlock {
        PublicAccessBlock {
            block_public_acls: bucket.block_public_acls || account.block_public_acls,
            ignore_public_acls: bucket.ignore_public_acls || account.ignore_public_acls,
            block_public_policy: bucket.block_public_policy || account.block_public_policy,
            restrict_public_buckets: bucket.restrict_public_buckets || account.restrict_public_buckets,
        }
    }

    /// Whether every setting is off.
    pub fn is_empty(&self) -> bool {
        *self == PublicAccessBlock::default()
    }

    /// Whether `BlockPublicAcls` refuses setting `acl` (the front door answers
    /// `AccessDenied`).
    pub fn blocks_acl(&self, acl: &Acl) -> bool {
        self.block_public_acls && acl.is_public()
    }

    /// The JSON form the object layer stores.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// A configuration from its stored JSON form ([`PublicAccessBlock::to_json`]).
    pub fn from_json(text: &str) -> Result<PublicAccessBlock, serde_json::Error> {
        serde_json::from_str(text)
    }
}
