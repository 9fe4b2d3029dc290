//! Access control beside policies: bucket and object ACLs, Object Ownership and Block Public
//! Access (Get/PutBucketAcl, Get/PutObjectAcl, Put/Get/DeleteBucketOwnershipControls,
//! Put/Get/DeletePublicAccessBlock), the ACL a write asks for, and the per-bucket cache of
//! everything an authorization decision reads ([`BucketAccess`]). The ACL model itself (canned
//! ACLs, grant headers, evaluation) is [`strata_iam::acl`]; this module converts it to and from
//! s3s's types and S3's errors.
//!
//! Storage: a bucket's ACL, ownership setting and Block Public Access setting are its `acl`,
//! `ownership` and `public-access-block` configuration blobs; an object's ACL is in its version
//! record (`ObjectMetadata::acl`, changed in place by PutObjectAcl). A bucket or object without
//! a stored ACL is private: its owner has `FULL_CONTROL`, nobody else anything.
//!
//! Defaults: a bucket without an ownership setting has ACLs enabled (`ObjectWriter`, what AWS
//! means by no setting, and Ceph RGW's default). Unlike AWS since April 2023, CreateBucket
//! does not turn on `BucketOwnerEnforced` unless it asks for it (`x-amz-object-ownership`), so
//! tools that set canned ACLs keep working; no Block Public Access setting applies until one
//! is put. Under `BucketOwnerEnforced` ACLs grant nothing and writes that ask for one other
//! than the owner's full control are refused with `AccessControlListNotSupported`.
//!
//! Owners are accounts ([`strata_iam::acl::canonical_id`]): a bucket belongs to the account
//! that created it, an object to the account that wrote it (`ObjectWriter`) or to the bucket's
//! (`BucketOwnerEnforced`, `BucketOwnerPreferred` with `bucket-owner-full-control`). A grant
//! to an account's canonical id reaches that account's identities only across accounts, and
//! only with their own policies' allow too (AWS's rule: an account delegates to its users);
//! within the owner's account ACL grants reach callers through the `AllUsers` and
//! `AuthenticatedUsers` groups. [`crate::authz`] consults ACLs when no policy decided.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use s3s::dto::{self, *};
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_iam::acl::{
    Acl, AclError, AclSubject, CannedAcl, Grant as AclGrant, Grantee as AclGrantee, Group,
    ObjectOwnership as Ownership, Owner as AclOwner, Permission as AclPermission, PublicAccessBlock,
    RequestedAcl, acl_permission_for,
};
use strata_iam::policy::{Policy, PolicyKind};
use strata_object::{GetOptions, ObjectError, ObjectLayer};

use crate::service::{StrataS3, err_mapper};

/// Name of the bucket configuration blob that holds the bucket policy.
pub(crate) const BUCKET_POLICY_CONFIG: &str = "policy";
/// Name of the bucket configuration blob that holds the bucket's ACL (JSON).
pub(crate) const BUCKET_ACL_CONFIG: &str = "acl";
/// Name of the bucket configuration blob that holds its Object Ownership setting (AWS's name).
pub(crate) const OWNERSHIP_CONFIG: &str = "ownership";
/// Name of the bucket configuration blob that holds its Block Public Access setting (JSON).
pub(crate) const PUBLIC_ACCESS_BLOCK_CONFIG: &str = "public-access-block";
/// How long a node serves a bucket's access settings from its cache before reading them
/// again: a change made through another node is enforced here within this time.
const ACCESS_TTL: Duration = Duration::from_secs(1);

/// Everything about a bucket an authorization decision reads.
#[derive(Debug, Default)]
pub(crate) struct AccessConfig {
    /// The account owning the bucket.
    pub(crate) owner_account: String,
    /// The bucket policy, if any.
    pub(crate) policy: Option<Arc<Policy>>,
    /// The bucket's stored ACL; None: private to its owner.
    pub(crate) acl: Option<Acl>,
    /// The Object Ownership setting; None: never set (ACLs enabled, `ObjectWriter`).
    pub(crate) ownership: Option<Ownership>,
    /// The Block Public Access setting (all off when never set).
    pub(crate) public_access_block: PublicAccessBlock,
    /// The bucket's default encryption (read with the rest: every write needs it).
    pub(crate) default_encryption: Option<crate::encryption::BucketDefault>,
    /// The bucket's lifecycle rules (every write reports its `x-amz-expiration`).
    pub(crate) lifecycle: Option<Arc<strata_lifecycle::LifecycleConfig>>,
}

impl AccessConfig {
    /// The effective Object Ownership.
    pub(crate) fn ownership(&self) -> Ownership {
        self.ownership.unwrap_or(Ownership::ObjectWriter)
    }

    /// `RestrictPublicBuckets` is on and the bucket policy is public: only the owner's
    /// account may act through the bucket (no anonymous or cross-account access).
    pub(crate) fn restricts_public_access(&self) -> bool {
        self.public_access_block.restrict_public_buckets
            && self.policy.as_ref().is_some_and(|p| p.is_public())
    }

    /// The bucket's ACL as clients see it: the stored one, or private to `owner`; under
    /// `BucketOwnerEnforced` always the owner's full control.
    pub(crate) fn bucket_acl(&self, owner: &AclOwner) -> Acl {
        match &self.acl {
            Some(acl) if self.ownership().acls_enabled() => acl.clone(),
            _ => Acl::private(owner),
        }
    }

    /// The bucket owner as ACLs name it.
    pub(crate) fn owner(&self, s3: &StrataS3) -> AclOwner {
        s3.account_owner(&self.owner_account)
    }

    /// Whether the bucket's ACL grants `action` to `subject` (ACLs enabled, Block Public
    /// Access's `IgnorePublicAcls` honoured).
    pub(crate) fn bucket_acl_allows(&self, subject: AclSubject<'_>, action: &str) -> bool {
        let Some(permission) = acl_permission_for(action, false) else {
            return false;
        };
        self.ownership().acls_enabled()
            && self.acl.as_ref().is_some_and(|acl| {
                acl.allows_with(subject, permission, self.public_access_block.ignore_public_acls)
            })
    }
}

/// A bucket's cached access settings: when they were read, and what they are.
type CachedAccess = (Instant, Arc<AccessConfig>);

/// Bucket access settings (policy, ACL, ownership, Block Public Access), read together and
/// cached per bucket for [`ACCESS_TTL`].
#[derive(Debug)]
pub(crate) struct BucketAccess {
    layer: Arc<ObjectLayer>,
    /// The deployment's own account: the owner of buckets that name none.
    account_id: String,
    cache: Mutex<HashMap<String, CachedAccess>>,
}

impl BucketAccess {
    pub(crate) fn new(layer: Arc<ObjectLayer>, account_id: &str) -> BucketAccess {
        BucketAccess {
            layer,
            account_id: account_id.to_owned(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn layer(&self) -> &Arc<ObjectLayer> {
        &self.layer
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedAccess>> {
        match self.cache.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The bucket's settings, from the cache when fresh enough.
    pub(crate) async fn get(&self, bucket: &str) -> Result<Arc<AccessConfig>, ObjectError> {
        if let Some((at, config)) = self.cache().get(bucket)
            && at.elapsed() < ACCESS_TTL
        {
            return Ok(Arc::clone(config));
        }
        self.fresh(bucket).await
    }

    /// The bucket's settings as stored now (handlers that change or show them read these).
    pub(crate) async fn fresh(&self, bucket: &str) -> Result<Arc<AccessConfig>, ObjectError> {
        let read = |name| self.layer.get_bucket_config(bucket, name);
        let (info, policy, acl, ownership, block, encryption, lifecycle) = futures::try_join!(
            self.layer.bucket_info(bucket),
            read(BUCKET_POLICY_CONFIG),
            read(BUCKET_ACL_CONFIG),
            read(OWNERSHIP_CONFIG),
            read(PUBLIC_ACCESS_BLOCK_CONFIG),
            read(crate::encryption::BUCKET_ENCRYPTION_CONFIG),
            read(strata_lifecycle::BUCKET_LIFECYCLE_CONFIG)
        )?;
        let config = Arc::new(AccessConfig {
            owner_account: info.owner.unwrap_or_else(|| self.account_id.clone()),
            policy: policy.and_then(|blob| parse_stored_policy(bucket, &blob)),
            acl: acl.and_then(|blob| stored(bucket, "ACL", &blob, Acl::from_json)),
            // An unreadable setting fails closed: ACLs off, public access blocked.
            ownership: ownership.map(|blob| {
                stored(bucket, "ownership", &blob, |s| {
                    Ownership::parse(s).map_err(|e| e.to_string())
                })
                .unwrap_or(Ownership::BucketOwnerEnforced)
            }),
            public_access_block: block
                .map(|blob| stored_public_access_block(bucket, &blob))
                .unwrap_or_default(),
            default_encryption: encryption
                .and_then(|blob| crate::encryption::BucketDefault::from_blob(bucket, &blob)),
            lifecycle: lifecycle.and_then(|blob| crate::lifecycle::stored(bucket, &blob)),
        });
        let mut cache = self.cache();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(bucket.to_owned(), (Instant::now(), Arc::clone(&config)));
        Ok(config)
    }

    /// Forgets a bucket's cached settings (they were just changed through this node).
    pub(crate) fn invalidate(&self, bucket: &str) {
        self.cache().remove(bucket);
    }

    /// Whether the ACL of the object `bucket/key` grants `action` to `subject` (read from the
    /// object: only asked when no policy and no bucket grant decided).
    pub(crate) async fn object_acl_allows(
        &self,
        config: &AccessConfig,
        subject: AclSubject<'_>,
        action: &str,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
    ) -> bool {
        let Some(permission) = acl_permission_for(action, true) else {
            return false;
        };
        if !config.ownership().acls_enabled() {
            return false;
        }
        let opts = GetOptions {
            version_id,
            ..Default::default()
        };
        let Ok(info) = self.layer.head_object(bucket, key, opts).await else {
            return false;
        };
        info.metadata
            .acl
            .as_deref()
            .and_then(|json| stored(bucket, "object ACL", json.as_bytes(), Acl::from_json))
            .is_some_and(|acl| {
                acl.allows_with(subject, permission, config.public_access_block.ignore_public_acls)
            })
    }
}

/// A stored bucket policy. Stored policies were validated on the way in; one the parser now
/// refuses must not lose its Deny statements: it denies everyone but root until it is
/// replaced or deleted.
fn parse_stored_policy(bucket: &str, blob: &[u8]) -> Option<Arc<Policy>> {
    match Policy::parse(blob, PolicyKind::Bucket { bucket }) {
        Ok(policy) => Some(Arc::new(policy)),
        Err(err) => {
            tracing::error!(bucket, %err, "stored bucket policy does not parse; denying access to the bucket");
            let deny_all = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
            );
            Policy::parse(deny_all.as_bytes(), PolicyKind::Bucket { bucket })
                .ok()
                .map(Arc::new)
        }
    }
}

/// A stored Block Public Access setting; one that does not decode fails closed (all on).
fn stored_public_access_block(bucket: &str, blob: &[u8]) -> PublicAccessBlock {
    stored(bucket, "public access block", blob, PublicAccessBlock::from_json).unwrap_or(PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    })
}

/// Decodes a stored setting; None (logged) when it does not decode.
fn stored<T, E: std::fmt::Display>(
    bucket: &str,
    what: &str,
    blob: &[u8],
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Option<T> {
    let text = std::str::from_utf8(blob).map_err(|e| e.to_string());
    match text.and_then(|t| parse(t).map_err(|e| e.to_string())) {
        Ok(value) => Some(value),
        Err(err) => {
            tracing::error!(bucket, what, %err, "stored access setting does not decode");
            None
        }
    }
}

/// The S3 error for an ACL refusal.
pub(crate) fn acl_error(err: AclError) -> S3Error {
    let (code, message) = match &err {
        AclError::MalformedAcl | AclError::TooManyGrants => (
            S3ErrorCode::MalformedACLError,
            "The XML you provided was not well-formed or did not validate against our published schema"
                .to_owned(),
        ),
        AclError::InvalidArgument(why) => (S3ErrorCode::InvalidArgument, why.clone()),
        AclError::UnresolvableGrantByEmail => (
            S3ErrorCode::UnresolvableGrantByEmailAddress,
            "The e-mail address you provided does not match any account on record.".to_owned(),
        ),
        AclError::AccessDenied => (S3ErrorCode::AccessDenied, "Access Denied".to_owned()),
        AclError::AclNotSupported => (
            S3ErrorCode::AccessControlListNotSupported,
            "The bucket does not allow ACLs".to_owned(),
        ),
    };
    S3Error::with_message(code, message)
}

fn access_denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

/// The `x-amz-grant-full-control|read|read-acp|write|write-acp` headers of a request, each
/// with the permission it grants (what [`AskedAcl::from_headers`] takes).
pub(crate) fn grant_headers<'a>(
    full_control: Option<&'a str>,
    read: Option<&'a str>,
    read_acp: Option<&'a str>,
    write: Option<&'a str>,
    write_acp: Option<&'a str>,
) -> [(AclPermission, Option<&'a str>); 5] {
    [
        (AclPermission::FullControl, full_control),
        (AclPermission::Read, read),
        (AclPermission::ReadAcp, read_acp),
        (AclPermission::Write, write),
        (AclPermission::WriteAcp, write_acp),
    ]
}

/// What ACL a request asks for through its headers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AskedAcl {
    /// None.
    Nothing,
    /// `x-amz-acl`.
    Canned(CannedAcl),
    /// `x-amz-grant-*`.
    Grants(Vec<AclGrant>),
}

impl AskedAcl {
    /// Reads `x-amz-acl` and the `x-amz-grant-*` headers (each with its permission); both
    /// kinds at once is AWS's `InvalidRequest`.
    pub(crate) fn from_headers(
        canned: Option<&str>,
        grants: &[(AclPermission, Option<&str>)],
        owner: &AclOwner,
    ) -> S3Result<AskedAcl> {
        let given: Vec<(AclPermission, &str)> =
            grants.iter().filter_map(|(p, v)| Some((*p, (*v)?))).collect();
        match (canned, given.is_empty()) {
            (Some(_), false) => Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed",
            )),
            (Some(canned), true) => CannedAcl::parse(canned).map(AskedAcl::Canned).map_err(acl_error),
            (None, false) => Acl::from_grant_headers(owner, &given)
                .map(|acl| AskedAcl::Grants(acl.grants))
                .map_err(acl_error),
            (None, true) => Ok(AskedAcl::Nothing),
        }
    }

    fn requested(&self) -> Option<RequestedAcl<'_>> {
        match self {
            AskedAcl::Nothing => None,
            AskedAcl::Canned(canned) => Some(RequestedAcl::Canned(*canned)),
            AskedAcl::Grants(grants) => Some(RequestedAcl::Grants(grants)),
        }
    }

    /// The full ACL asked for on a resource owned by `owner` in a bucket of `bucket_owner`
    /// (None: nothing asked); grantees must be accounts `resolve` knows.
    fn to_acl(
        &self,
        owner: &AclOwner,
        bucket_owner: &AclOwner,
        for_bucket: bool,
        resolve: &dyn Fn(&str) -> Option<String>,
    ) -> S3Result<Option<Acl>> {
        Ok(match self {
            AskedAcl::Nothing => None,
            AskedAcl::Canned(canned) => Some(Acl::canned(*canned, owner, bucket_owner, for_bucket)),
            AskedAcl::Grants(grants) => Some(
                Acl {
                    owner: owner.clone(),
                    grants: grants.clone(),
                }
                .validate(owner, resolve)
                .map_err(acl_error)?,
            ),
        })
    }
}

/// The ACL headers of an object write (PutObject, CreateMultipartUpload, CopyObject).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ObjectAclHeaders<'a> {
    pub(crate) canned: Option<&'a str>,
    pub(crate) full_control: Option<&'a str>,
    pub(crate) read: Option<&'a str>,
    pub(crate) read_acp: Option<&'a str>,
    pub(crate) write_acp: Option<&'a str>,
}

impl<'a> ObjectAclHeaders<'a> {
    /// The headers as s3s parsed them into a write's input.
    pub(crate) fn of(
        canned: Option<&'a ObjectCannedACL>,
        full_control: Option<&'a str>,
        read: Option<&'a str>,
        read_acp: Option<&'a str>,
        write_acp: Option<&'a str>,
    ) -> ObjectAclHeaders<'a> {
        ObjectAclHeaders {
            canned: canned.map(ObjectCannedACL::as_str),
            full_control,
            read,
            read_acp,
            write_acp,
        }
    }
}

/// The ACL to store with an object a request writes into `bucket` (None: the default), or
/// the error AWS gives for the ACL it asks for ([`object_acl_for_write`]).
pub(crate) async fn acl_for_object_write(
    s3: &StrataS3,
    bucket: &str,
    writer_account: Option<&str>,
    headers: ObjectAclHeaders<'_>,
    map_err: impl Fn(ObjectError) -> S3Error,
) -> S3Result<Option<String>> {
    let asked = AskedAcl::from_headers(
        headers.canned,
        // Objects take no WRITE grant (AWS).
        &grant_headers(
            headers.full_control,
            headers.read,
            headers.read_acp,
            None,
            headers.write_acp,
        ),
        &s3.account_owner(writer_account.unwrap_or(&s3.account_id)),
    )?;
    let config = s3.access.get(bucket).await.map_err(&map_err)?;
    // An anonymous writer's objects belong to the bucket's owner.
    let writer_account = writer_account.unwrap_or(&config.owner_account);
    if asked == AskedAcl::Nothing && config.owner_account == writer_account {
        return Ok(None);
    }
    let writer = s3.account_owner(writer_account);
    object_acl_for_write(&config, &writer, &config.owner(s3), &asked, &|id| {
        s3.resolve_canonical_id(id)
    })
}

/// The ACL to store with an object `writer` writes into a bucket of `bucket_owner` with
/// `config`, or the error AWS gives: `AccessControlListNotSupported` for an ACL a
/// `BucketOwnerEnforced` bucket does not take, `AccessDenied` for a public one under
/// `BlockPublicAcls`. None: the default (private to the bucket owner), which is not stored.
fn object_acl_for_write(
    config: &AccessConfig,
    writer: &AclOwner,
    bucket_owner: &AclOwner,
    asked: &AskedAcl,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> S3Result<Option<String>> {
    let ownership = config.ownership();
    ownership
        .check_requested_acl(asked.requested(), &writer.id, &bucket_owner.id)
        .map_err(acl_error)?;
    if !ownership.acls_enabled() {
        return Ok(None);
    }
    let canned = match asked {
        AskedAcl::Canned(canned) => Some(*canned),
        _ => None,
    };
    let owner = ownership.object_owner(writer, bucket_owner, canned);
    let acl = match asked.to_acl(&owner, bucket_owner, false, resolve)? {
        Some(acl) => acl,
        // Nothing asked: private to whoever owns it (stored when that is not the bucket owner).
        None => Acl::private(&owner),
    };
    if config.public_access_block.blocks_acl(&acl) {
        return Err(access_denied());
    }
    stored_form(&acl, bucket_owner)
}

/// The JSON to store for `acl`; None when it is the default (private to the resource's
/// default owner, `default_owner`).
fn stored_form(acl: &Acl, default_owner: &AclOwner) -> S3Result<Option<String>> {
    if *acl == Acl::private(default_owner) {
        return Ok(None);
    }
    acl.to_json()
        .map(Some)
        .map_err(|_| S3Error::new(S3ErrorCode::InternalError))
}

/// The configuration blobs a new bucket starts with: its ownership setting when CreateBucket
/// named one, and its ACL when it asked for one other than private.
pub(crate) fn create_bucket_configs(
    ownership: Option<&dto::ObjectOwnership>,
    asked: &AskedAcl,
    owner: &AclOwner,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> S3Result<Vec<(String, Bytes)>> {
    let ownership = ownership
        .map(|o| Ownership::parse(o.as_str()))
        .transpose()
        .map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Invalid x-amz-object-ownership header",
            )
        })?;
    let mut configs = Vec::new();
    if let Some(ownership) = ownership {
        if ownership
            .check_requested_acl(asked.requested(), &owner.id, &owner.id)
            .is_err()
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
            ));
        }
        configs.push((
            OWNERSHIP_CONFIG.to_owned(),
            Bytes::from_static(ownership.as_str().as_bytes()),
        ));
        if !ownership.acls_enabled() {
            return Ok(configs);
        }
    }
    if let Some(acl) = asked.to_acl(owner, owner, true, resolve)?
        && let Some(json) = stored_form(&acl, owner)?
    {
        configs.push((BUCKET_ACL_CONFIG.to_owned(), Bytes::from(json)));
    }
    Ok(configs)
}

fn owner_dto(owner: &AclOwner) -> dto::Owner {
    dto::Owner {
        id: Some(owner.id.clone()),
        display_name: Some(owner.display_name.clone()),
    }
}

fn grants_dto(acl: &Acl) -> Grants {
    acl.grants
        .iter()
        .map(|grant| {
            let mut grantee = dto::Grantee {
                display_name: None,
                email_address: None,
                id: None,
                type_: Type::from_static(Type::CANONICAL_USER),
                uri: None,
            };
            match &grant.grantee {
                AclGrantee::CanonicalUser { id, display_name } => {
                    grantee.id = Some(id.clone());
                    grantee.display_name = display_name.clone();
                }
                AclGrantee::Group(group) => {
                    grantee.type_ = Type::from_static(Type::GROUP);
                    grantee.uri = Some(group.uri().to_owned());
                }
                AclGrantee::Email(email) => {
                    grantee.type_ = Type::from_static(Type::AMAZON_CUSTOMER_BY_EMAIL);
                    grantee.email_address = Some(email.clone());
                }
            }
            dto::Grant {
                grantee: Some(grantee),
                permission: Some(dto::Permission::from(grant.permission.as_str().to_owned())),
            }
        })
        .collect()
}

fn malformed_acl() -> S3Error {
    acl_error(AclError::MalformedAcl)
}

/// An `AccessControlPolicy` body as an ACL (not yet validated against the resource).
fn acl_from_body(body: AccessControlPolicy) -> S3Result<Acl> {
    let owner = body.owner.ok_or_else(malformed_acl)?;
    let owner = AclOwner::new(
        owner.id.ok_or_else(malformed_acl)?,
        owner.display_name.unwrap_or_default(),
    );
    let mut grants = Vec::new();
    for grant in body.grants.unwrap_or_default() {
        let grantee = grant.grantee.ok_or_else(malformed_acl)?;
        let permission: AclPermission = grant
            .permission
            .ok_or_else(malformed_acl)?
            .as_str()
            .parse()
            .map_err(acl_error)?;
        let grantee = match grantee.type_.as_str() {
            Type::CANONICAL_USER => AclGrantee::CanonicalUser {
                id: grantee.id.ok_or_else(malformed_acl)?,
                display_name: grantee.display_name,
            },
            Type::GROUP => AclGrantee::Group(
                Group::parse_uri(grantee.uri.as_deref().ok_or_else(malformed_acl)?).map_err(acl_error)?,
            ),
            Type::AMAZON_CUSTOMER_BY_EMAIL => {
                AclGrantee::Email(grantee.email_address.ok_or_else(malformed_acl)?)
            }
            _ => return Err(malformed_acl()),
        };
        grants.push(AclGrant::new(grantee, permission));
    }
    Ok(Acl { owner, grants })
}

/// The ACL a PutBucketAcl or PutObjectAcl sets: from its body, its canned ACL or its grant
/// headers (exactly one of them), validated for a resource owned by `owner`.
fn acl_to_put(
    s3: &StrataS3,
    body: Option<AccessControlPolicy>,
    canned: Option<&str>,
    grants: &[(AclPermission, Option<&str>)],
    owner: &AclOwner,
    bucket_owner: &AclOwner,
    for_bucket: bool,
) -> S3Result<Acl> {
    let resolve = |id: &str| s3.resolve_canonical_id(id);
    let asked = AskedAcl::from_headers(canned, grants, owner)?;
    match (body, asked) {
        (Some(_), AskedAcl::Canned(_) | AskedAcl::Grants(_)) => Err(S3Error::with_message(
            S3ErrorCode::UnexpectedContent,
            "This request does not support content",
        )),
        (Some(body), AskedAcl::Nothing) => acl_from_body(body)?.validate(owner, &resolve).map_err(acl_error),
        (None, AskedAcl::Nothing) => Err(S3Error::with_message(
            S3ErrorCode::MissingSecurityHeader,
            "Your request was missing a required header",
        )),
        (None, asked) => asked
            .to_acl(owner, bucket_owner, for_bucket, &resolve)?
            .ok_or_else(malformed_acl),
    }
}

pub(crate) fn no_content<T>(output: T) -> S3Response<T> {
    let mut resp = S3Response::new(output);
    resp.status = Some(http::StatusCode::NO_CONTENT);
    resp
}

fn acls_disabled() -> S3Error {
    acl_error(AclError::AclNotSupported)
}

pub(crate) async fn get_bucket_acl(
    s3: &StrataS3,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let config = s3
        .access
        .fresh(&req.input.bucket)
        .await
        .map_err(err_mapper(&req))?;
    let acl = config.bucket_acl(&config.owner(s3));
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(grants_dto(&acl)),
        owner: Some(owner_dto(&acl.owner)),
    }))
}

pub(crate) async fn put_bucket_acl(
    s3: &StrataS3,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let config = s3.access.fresh(&input.bucket).await.map_err(&map_err)?;
    if !config.ownership().acls_enabled() {
        return Err(acls_disabled());
    }
    let owner = config.owner(s3);
    let acl = acl_to_put(
        s3,
        input.access_control_policy,
        input.acl.as_ref().map(BucketCannedACL::as_str),
        &grant_headers(
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref(),
            input.grant_read_acp.as_deref(),
            input.grant_write.as_deref(),
            input.grant_write_acp.as_deref(),
        ),
        &owner,
        &owner,
        true,
    )?;
    if config.public_access_block.blocks_acl(&acl) {
        return Err(access_denied());
    }
    match stored_form(&acl, &owner)? {
        Some(json) => s3
            .layer
            .put_bucket_config(&input.bucket, BUCKET_ACL_CONFIG, Bytes::from(json))
            .await
            .map_err(&map_err)?,
        None => s3
            .layer
            .delete_bucket_config(&input.bucket, BUCKET_ACL_CONFIG)
            .await
            .map_err(&map_err)?,
    }
    s3.access.invalidate(&input.bucket);
    Ok(S3Response::new(PutBucketAclOutput::default()))
}

pub(crate) async fn get_object_acl(
    s3: &StrataS3,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let config = s3.access.fresh(&input.bucket).await.map_err(&map_err)?;
    let info = s3
        .version_info(&input.bucket, &input.key, input.version_id)
        .await
        .map_err(&map_err)?;
    let acl = match info.metadata.acl.as_deref() {
        Some(json) if config.ownership().acls_enabled() => {
            stored(&input.bucket, "object ACL", json.as_bytes(), Acl::from_json)
                .ok_or_else(|| S3Error::new(S3ErrorCode::InternalError))?
        }
        _ => Acl::private(&config.owner(s3)),
    };
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants_dto(&acl)),
        owner: Some(owner_dto(&acl.owner)),
        request_charged: None,
    }))
}

pub(crate) async fn put_object_acl(
    s3: &StrataS3,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let config = s3.access.fresh(&input.bucket).await.map_err(&map_err)?;
    if !config.ownership().acls_enabled() {
        return Err(acls_disabled());
    }
    // The object keeps its owner: the one its stored ACL names, else the bucket owner.
    let bucket_owner = config.owner(s3);
    let current = s3
        .version_info(&input.bucket, &input.key, input.version_id.clone())
        .await
        .map_err(&map_err)?;
    let owner = current
        .metadata
        .acl
        .as_deref()
        .and_then(|json| Acl::from_json(json).ok())
        .map_or_else(|| bucket_owner.clone(), |acl| acl.owner);
    let acl = acl_to_put(
        s3,
        input.access_control_policy,
        input.acl.as_ref().map(ObjectCannedACL::as_str),
        &grant_headers(
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref(),
            input.grant_read_acp.as_deref(),
            input.grant_write.as_deref(),
            input.grant_write_acp.as_deref(),
        ),
        &owner,
        &bucket_owner,
        false,
    )?;
    if config.public_access_block.blocks_acl(&acl) {
        return Err(access_denied());
    }
    let json = stored_form(&acl, &bucket_owner)?;
    s3.layer
        .update_object_metadata(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            move |metadata| {
                metadata.acl = json;
                Ok(())
            },
        )
        .await
        .map_err(&map_err)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

pub(crate) async fn put_bucket_ownership_controls(
    s3: &StrataS3,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let malformed = || {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let [rule] = input.ownership_controls.rules.as_slice() else {
        return Err(malformed());
    };
    let ownership = Ownership::parse(rule.object_ownership.as_str()).map_err(|_| malformed())?;
    let config = s3.access.fresh(&input.bucket).await.map_err(&map_err)?;
    if !ownership.acls_enabled()
        && config
            .acl
            .as_ref()
            .is_some_and(|acl| *acl != Acl::private(&config.owner(s3)))
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        ));
    }
    s3.layer
        .put_bucket_config(
            &input.bucket,
            OWNERSHIP_CONFIG,
            Bytes::from_static(ownership.as_str().as_bytes()),
        )
        .await
        .map_err(&map_err)?;
    s3.access.invalidate(&input.bucket);
    Ok(S3Response::new(PutBucketOwnershipControlsOutput::default()))
}

pub(crate) async fn get_bucket_ownership_controls(
    s3: &StrataS3,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let config = s3
        .access
        .fresh(&req.input.bucket)
        .await
        .map_err(err_mapper(&req))?;
    let Some(ownership) = config.ownership else {
        return Err(S3Error::with_message(
            S3ErrorCode::OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found",
        ));
    };
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: dto::ObjectOwnership::from(ownership.as_str().to_owned()),
            }],
        }),
    }))
}

pub(crate) async fn delete_bucket_ownership_controls(
    s3: &StrataS3,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    let bucket = req.input.bucket.as_str();
    s3.layer
        .delete_bucket_config(bucket, OWNERSHIP_CONFIG)
        .await
        .map_err(err_mapper(&req))?;
    s3.access.invalidate(bucket);
    Ok(no_content(DeleteBucketOwnershipControlsOutput::default()))
}

pub(crate) async fn put_public_access_block(
    s3: &StrataS3,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let given = input.public_access_block_configuration;
    let block = PublicAccessBlock {
        block_public_acls: given.block_public_acls.unwrap_or(false),
        ignore_public_acls: given.ignore_public_acls.unwrap_or(false),
        block_public_policy: given.block_public_policy.unwrap_or(false),
        restrict_public_buckets: given.restrict_public_buckets.unwrap_or(false),
    };
    let json = block
        .to_json()
        .map_err(|_| S3Error::new(S3ErrorCode::InternalError))?;
    s3.layer
        .put_bucket_config(&input.bucket, PUBLIC_ACCESS_BLOCK_CONFIG, Bytes::from(json))
        .await
        .map_err(&map_err)?;
    s3.access.invalidate(&input.bucket);
    Ok(S3Response::new(PutPublicAccessBlockOutput::default()))
}

pub(crate) async fn get_public_access_block(
    s3: &StrataS3,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let bucket = req.input.bucket.as_str();
    let stored = s3
        .layer
        .get_bucket_config(bucket, PUBLIC_ACCESS_BLOCK_CONFIG)
        .await
        .map_err(err_mapper(&req))?;
    let Some(blob) = stored else {
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
            "The public access block configuration was not found",
        );
        err.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(err);
    };
    let block = stored_public_access_block(bucket, &blob);
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(block.block_public_acls),
            ignore_public_acls: Some(block.ignore_public_acls),
            block_public_policy: Some(block.block_public_policy),
            restrict_public_buckets: Some(block.restrict_public_buckets),
        }),
    }))
}

pub(crate) async fn delete_public_access_block(
    s3: &StrataS3,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    let bucket = req.input.bucket.as_str();
    s3.layer
        .delete_bucket_config(bucket, PUBLIC_ACCESS_BLOCK_CONFIG)
        .await
        .map_err(err_mapper(&req))?;
    s3.access.invalidate(bucket);
    Ok(no_content(DeletePublicAccessBlockOutput::default()))
}
