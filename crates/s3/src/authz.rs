//! Authentication and authorization of S3 requests through [`strata_iam`].
//!
//! - [`IamAuth`] hands s3s the secret key of any access key that may sign now (root, enabled
//!   users, enabled and unexpired service accounts).
//! - [`Authorizer`] makes one decision per operation: the operation's AWS action
//!   ([`strata_iam::actions::action_for`]), the resource ARN from the request's path, the
//!   condition keys from its headers, query and connection ([`request_context`]), the caller's
//!   policies and the bucket's policy ([`BucketAccess`]); where no policy decided, the bucket's
//!   ACL and, for object permissions, the object's ([`crate::access_control`]), unless Object
//!   Ownership disabled ACLs or Block Public Access says otherwise. CopyObject and UploadPartCopy also
//!   need `s3:GetObject` on their source as s3s parsed it for the handler (per-operation
//!   hooks); PostObject is decided on the form's key, with the form's fields as condition keys;
//!   DeleteObjects is checked per key by its handler ([`AuthzGrant::allows`]).
//! - [`IamAccess`] is the s3s access hook over the authorizer; the intercept's inner service
//!   uses the same authorizer ([`crate::intercept::InnerAccess`]).
//!
//! Invariants: every operation s3s resolves is decided here (an operation without an action
//! mapping is refused, never allowed); anonymous requests pass only where a bucket policy or
//! ACL allows them (never through a public policy under `RestrictPublicBuckets`); an explicit
//! Deny is never overridden by an ACL; a denial is logged at debug with the action, resource and the statement that
//! decided, and the client gets `AccessDenied` without that detail.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Uri};
use percent_encoding::percent_decode_str;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, PostObjectInput, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};
use strata_iam::acl::AclSubject;
use strata_iam::actions::{ResourceKind, action_for};
use strata_iam::policy::{Context, Policy};
use strata_iam::{Caller, Decision, Iam, PrincipalKind, Reason, authorize_in};
use strata_object::ObjectError;

use crate::access_control::{AccessConfig, BucketAccess};
use crate::form::query_value;
use crate::op_slot::{OperationSlot, Principal};

/// The client's connection, put into the request's extensions by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// The connection is TLS.
    pub secure: bool,
}

/// s3s's secret-key lookup over IAM.
#[derive(Debug)]
pub struct IamAuth {
    iam: Arc<Iam>,
}

impl IamAuth {
    /// Looks secret keys up in `iam`.
    pub fn new(iam: Arc<Iam>) -> IamAuth {
        IamAuth { iam }
    }
}

#[async_trait::async_trait]
impl S3Auth for IamAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.iam.secret_key(access_key) {
            Some(secret) => Ok(SecretKey::from(secret.expose().to_owned())),
            None if !self.iam.is_loaded() => Err(S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "Users are not loaded yet: the deployment cannot read them now. Please try again.",
            )),
            None => Err(s3s::s3_error!(
                InvalidAccessKeyId,
                "The Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// What the access hook leaves in the request's extensions for handlers that authorize
/// further (DeleteObjects per key).
#[derive(Clone, Debug)]
pub(crate) struct AuthzGrant {
    caller: Arc<Caller>,
    context: Arc<Context>,
    access: Option<Arc<AccessConfig>>,
    /// The caller's account's canonical id (what ACL grants name it by).
    canonical_id: String,
}

impl AuthzGrant {
    /// Whether the caller may do `action` on `bucket/key` (policies, then the bucket's ACL:
    /// what DeleteObjects needs per key).
    pub(crate) fn allows(&self, action: &str, bucket: &str, key: &str) -> bool {
        self.allows_with_context(action, &object_arn(bucket, key), &self.context)
    }

    /// [`AuthzGrant::allows`] on `resource` with other condition keys (a browser form's).
    fn allows_with_context(&self, action: &str, resource: &str, context: &Context) -> bool {
        match policy_decision(&self.caller, action, resource, context, self.access.as_deref()) {
            Ok(()) => true,
            Err(decision) => {
                let by_acl = self.access.as_ref().is_some_and(|a| {
                    acl_may_grant(&self.caller, &decision, a, (action, resource, context))
                        && a.bucket_acl_allows(acl_subject(&self.caller, a, &self.canonical_id), action)
                });
                if !by_acl {
                    log_denial(&self.caller, action, resource, &decision);
                }
                by_acl
            }
        }
    }
}

/// The per-operation decision.
#[derive(Debug)]
pub(crate) struct Authorizer {
    iam: Arc<Iam>,
    access: Arc<BucketAccess>,
}

/// How ACL grants see a caller: anonymous; signed by the bucket owner's account (only group
/// grants can name it; see [`AclSubject::AUTHENTICATED`]); or signed by another account,
/// which grants to its canonical id reach.
fn acl_subject<'a>(caller: &Caller, access: &AccessConfig, canonical_id: &'a str) -> AclSubject<'a> {
    if caller.kind == PrincipalKind::Anonymous {
        AclSubject::ANONYMOUS
    } else if caller.account_id == access.owner_account {
        AclSubject::AUTHENTICATED
    } else {
        AclSubject::user(canonical_id)
    }
}

/// Whether an ACL may still allow what the policies did not: not over an explicit Deny or a
/// narrowing policy; within the owner's account (or anonymously) when no policy allowed it;
/// across accounts only when the caller's own policies allow it (AWS's two-sided rule).
/// A service account's or session's own policy bounds what an ACL can give it, as it bounds
/// a bucket policy's grant.
fn acl_may_grant(
    caller: &Caller,
    decision: &Decision,
    access: &AccessConfig,
    request: (&str, &str, &Context),
) -> bool {
    let (action, resource, context) = request;
    let reason_allows = match decision.reason {
        Reason::NoAllow => {
            caller.kind == PrincipalKind::Anonymous || caller.account_id == access.owner_account
        }
        Reason::NeedsResourceGrant => true,
        _ => false,
    };
    reason_allows && caller.embedded_allows(action, resource, context)
}

/// The policies' decision: identity policies and the bucket policy (both needed across
/// accounts), except that under `RestrictPublicBuckets` a bucket with a public policy grants
/// anonymous callers and other accounts nothing.
fn policy_decision(
    caller: &Caller,
    action: &str,
    resource: &str,
    context: &Context,
    access: Option<&AccessConfig>,
) -> Result<(), Decision> {
    let policy = access.and_then(|a| a.policy.as_deref());
    let owner = access.map(|a| a.owner_account.as_str());
    let decision = authorize_in(caller, action, resource, context, policy, owner);
    // Under RestrictPublicBuckets a bucket with a public policy serves only its own account
    // (AWS: no anonymous and no cross-account access through any of its statements).
    if decision.allowed
        && let Some(access) = access
        && access.restricts_public_access()
        && (caller.kind == PrincipalKind::Anonymous || caller.account_id != access.owner_account)
    {
        tracing::debug!(
            action,
            resource,
            "access denied: RestrictPublicBuckets with a public bucket policy admits only the owner's account"
        );
        return Err(Decision {
            allowed: false,
            reason: Reason::NoAllow,
        });
    }
    if decision.allowed { Ok(()) } else { Err(decision) }
}

fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

fn log_denial(caller: &Caller, action: &str, resource: &str, decision: &Decision) {
    if decision.allowed {
        return;
    }
    let why = match &decision.reason {
        Reason::Denied {
            source,
            statement,
            sid,
        } => {
            format!("explicit Deny in {source:?}, statement {statement} (Sid {sid:?})")
        }
        Reason::NoAllow => "no policy allows it".to_owned(),
        Reason::NotInEmbeddedPolicy => "the service account's embedded policy does not allow it".to_owned(),
        other => format!("{other:?}"),
    };
    tracing::debug!(
        access_key = caller.access_key.as_str(),
        user = caller.user.as_str(),
        action,
        resource,
        why,
        "access denied"
    );
}

fn access_denied() -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied")
}

impl Authorizer {
    pub(crate) fn new(iam: Arc<Iam>, access: Arc<BucketAccess>) -> Authorizer {
        Authorizer { iam, access }
    }

    /// Policies first (an explicit Deny ends it), then the bucket's ACL and, for object
    /// permissions, the ACL of the object `key` names (read only on this path).
    async fn decide(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        context: &Context,
        access: Option<&AccessConfig>,
        object: Option<(&str, &str, Option<String>)>,
    ) -> bool {
        let decision = match policy_decision(caller, action, resource, context, access) {
            Ok(()) => return true,
            Err(decision) => decision,
        };
        if let Some(access) = access
            && acl_may_grant(caller, &decision, access, (action, resource, context))
        {
            let canonical_id = strata_iam::acl::canonical_id(&caller.account_id);
            let subject = acl_subject(caller, access, &canonical_id);
            if access.bucket_acl_allows(subject, action) {
                return true;
            }
            if let Some((bucket, key, version_id)) = object
                && self
                    .access
                    .object_acl_allows(access, subject, action, bucket, key, version_id)
                    .await
            {
                return true;
            }
        }
        log_denial(caller, action, resource, &decision);
        false
    }

    /// Decides one request signed with `access_key` (none: anonymous). On success the grant is
    /// left in the request's extensions.
    pub(crate) async fn check(&self, cx: &mut S3AccessContext<'_>, access_key: Option<&str>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        let op = op.as_str();
        let caller = match access_key {
            Some(key) if strata_iam::sts::is_session_key(key) => {
                let token = session_token(cx.uri(), cx.headers()).ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidToken,
                        "Temporary credentials need their session token (x-amz-security-token).",
                    )
                })?;
                self.iam.session_caller(key, &token).map_err(session_error)?
            }
            Some(key) => self.iam.caller(key).ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InvalidAccessKeyId,
                    "The Access Key Id you provided does not exist in our records.",
                )
            })?,
            None => Caller::anonymous(self.iam.account_id()),
        };
        note_principal(cx.extensions_mut(), &caller);
        let versioned = query_value(cx.uri(), "versionId").is_some();
        let Some((action, kind)) = action_for(op, versioned) else {
            tracing::warn!(operation = op, "operation without an action mapping refused");
            return Err(access_denied());
        };
        // Root needs no resource, condition keys or bucket policy.
        if caller.is_root() {
            let grant = AuthzGrant {
                canonical_id: strata_iam::acl::canonical_id(&caller.account_id),
                caller: Arc::new(caller),
                context: Arc::new(Context::new()),
                access: None,
            };
            cx.extensions_mut().insert(grant);
            return Ok(());
        }
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let resource = match (&bucket, &key, kind) {
            (Some(b), Some(k), ResourceKind::Object) => object_arn(b, k),
            (Some(b), _, _) => format!("arn:aws:s3:::{b}"),
            _ => strata_iam::DEPLOYMENT_RESOURCE.to_owned(),
        };
        let client = cx.extensions_mut().get::<ClientInfo>().copied();
        let mut context = request_context(cx.uri(), cx.headers(), client, access_key.is_some());
        caller.fill_context(&mut context);
        let access = match &bucket {
            Some(b) => match self.access.get(b).await {
                Ok(access) => Some(access),
                // Existence is not secret (names are global): answering it here also keeps a
                // request from acting on a bucket created between this check and its handler
                // without that bucket's owner and policy deciding.
                Err(ObjectError::NoSuchBucket { .. }) if op != "CreateBucket" => {
                    return Err(S3Error::with_message(
                        S3ErrorCode::NoSuchBucket,
                        "The specified bucket does not exist",
                    ));
                }
                Err(ObjectError::NoSuchBucket { .. }) => None,
                Err(err) => return Err(crate::map_object_error(err, None)),
            },
            None => None,
        };
        if let (Some(b), Some(k)) = (&bucket, &key)
            && reads_existing_tags(op)
            && tests_existing_tags(&caller, access.as_ref().and_then(|a| a.policy.as_deref()))
        {
            self.add_existing_tags(&mut context, b, k, query_value(cx.uri(), "versionId"))
                .await;
        }
        // DeleteObjects is decided per key by its handler (AWS checks s3:DeleteObject on each);
        // PostObject once s3s has read the key from the form ([`Authorizer::check_post_object`]).
        if !matches!(op, "DeleteObjects" | "PostObject") {
            let object = match (&bucket, &key, kind) {
                (Some(b), Some(k), ResourceKind::Object) => {
                    Some((b.as_str(), k.as_str(), query_value(cx.uri(), "versionId")))
                }
                _ => None,
            };
            if !self
                .decide(&caller, action, &resource, &context, access.as_deref(), object)
                .await
            {
                return Err(access_denied());
            }
        }
        cx.extensions_mut().insert(AuthzGrant {
            canonical_id: strata_iam::acl::canonical_id(&caller.account_id),
            caller: Arc::new(caller),
            context: Arc::new(context),
            access,
        });
        Ok(())
    }

    /// `s3:ExistingObjectTag/<key>` for each tag of the object the request addresses (none
    /// when it cannot be read: the operation itself then answers why).
    async fn add_existing_tags(
        &self,
        context: &mut Context,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
    ) {
        let opts = strata_object::GetOptions {
            version_id,
            ..Default::default()
        };
        if let Ok(info) = self.access.layer().head_object(bucket, key, opts).await {
            for (k, v) in info.metadata.tags {
                context.insert(&format!("{EXISTING_TAG_KEY}{k}"), v);
            }
        }
    }

    /// `s3:GetObject` (or `s3:GetObjectVersion`) on a copy's source, as s3s parsed it for the
    /// handler, under the source bucket's policy. Called from the per-operation hooks, after
    /// [`Authorizer::check`] admitted the request and left its grant.
    pub(crate) async fn check_copy_source(
        &self,
        extensions: &http::Extensions,
        source: &CopySource,
    ) -> S3Result<()> {
        let grant = grant_of(extensions)?;
        if grant.caller.is_root() {
            return Ok(());
        }
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            // Access-point sources are not served; refuse rather than guess their bucket.
            return Err(access_denied());
        };
        let access = match self.access.get(bucket).await {
            Ok(access) => Some(access),
            Err(ObjectError::NoSuchBucket { .. }) => None,
            Err(err) => return Err(crate::map_object_error(err, None)),
        };
        let action = if version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        let resource = object_arn(bucket, key);
        let object = Some((&bucket[..], &key[..], version_id.as_deref().map(str::to_owned)));
        if self
            .decide(
                &grant.caller,
                action,
                &resource,
                &grant.context,
                access.as_deref(),
                object,
            )
            .await
        {
            Ok(())
        } else {
            Err(access_denied())
        }
    }

    /// `s3:PutObject` on the key a browser form names, with the form's fields as condition
    /// keys (a POST upload's path names only the bucket).
    pub(crate) fn check_post_object(&self, req: &S3Request<PostObjectInput>) -> S3Result<()> {
        let grant = grant_of(&req.extensions)?;
        if grant.caller.is_root() {
            return Ok(());
        }
        let input = &req.input;
        let mut context = (*grant.context).clone();
        context.set("s3:authType", vec!["POST".to_owned()]);
        let mut field = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                context.set(key, vec![v.to_owned()]);
            }
        };
        field("s3:x-amz-acl", input.acl.as_ref().map(|v| v.as_str()));
        field(
            "s3:x-amz-server-side-encryption",
            input.server_side_encryption.as_ref().map(|v| v.as_str()),
        );
        field(
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
            input.ssekms_key_id.as_deref(),
        );
        field(
            "s3:x-amz-storage-class",
            input.storage_class.as_ref().map(|v| v.as_str()),
        );
        field(
            "s3:object-lock-mode",
            input.object_lock_mode.as_ref().map(|v| v.as_str()),
        );
        field(
            "s3:object-lock-legal-hold",
            input.object_lock_legal_hold_status.as_ref().map(|v| v.as_str()),
        );
        if let Some(tagging) = input.tagging.as_deref() {
            add_request_tags(&mut context, tagging);
        }
        let resource = object_arn(&input.bucket, &input.key);
        if grant.allows_with_context("s3:PutObject", &resource, &context) {
            Ok(())
        } else {
            Err(access_denied())
        }
    }
}

/// Decides a deployment-wide action (`admin:*`) of a routed request (the admin APIs), with
/// the request's condition keys.
pub(crate) fn admin_decision(req: &S3Request<s3s::Body>, caller: &Caller, action: &str) -> Decision {
    let client = req.extensions.get::<ClientInfo>().copied();
    let context = request_context(&req.uri, &req.headers, client, req.credentials.is_some());
    strata_iam::authorize_admin(caller, action, context)
}

/// Records `caller` as the request's principal, for its audit record.
pub(crate) fn note_principal(extensions: &http::Extensions, caller: &Caller) {
    if let Some(slot) = extensions.get::<OperationSlot>() {
        slot.set_principal(principal_of(caller));
    }
}

/// The audit view of a caller.
fn principal_of(caller: &Caller) -> Principal {
    use strata_iam::PrincipalKind;
    let (user, kind) = match caller.kind {
        PrincipalKind::Root => ("root".to_owned(), "Root"),
        PrincipalKind::AccountRoot => (format!("root@{}", caller.account_id), "AccountRoot"),
        PrincipalKind::User => (caller.user.clone(), "User"),
        PrincipalKind::ServiceAccount if caller.parent_is_root => ("root".to_owned(), "ServiceAccount"),
        PrincipalKind::ServiceAccount => (caller.user.clone(), "ServiceAccount"),
        PrincipalKind::Session => (caller.user.clone(), "AssumedRole"),
        PrincipalKind::Anonymous => (String::new(), "Anonymous"),
    };
    Principal {
        user,
        kind,
        session: caller.session_name.clone(),
    }
}

/// The condition-key prefix of an object's stored tags.
const EXISTING_TAG_KEY: &str = "s3:ExistingObjectTag/";

/// Operations on an existing object for which AWS sets `s3:ExistingObjectTag/<key>`.
fn reads_existing_tags(op: &str) -> bool {
    matches!(
        op,
        "GetObject"
            | "HeadObject"
            | "GetObjectAcl"
            | "PutObjectAcl"
            | "GetObjectTagging"
            | "PutObjectTagging"
            | "DeleteObjectTagging"
            | "GetObjectRetention"
            | "PutObjectRetention"
            | "GetObjectLegalHold"
            | "PutObjectLegalHold"
            | "GetObjectAttributes"
    )
}

/// Whether a policy that can decide for `caller` tests an object's stored tags: only then
/// are they read before the decision.
fn tests_existing_tags(caller: &Caller, bucket_policy: Option<&Policy>) -> bool {
    bucket_policy
        .into_iter()
        .chain(caller.policies.iter().map(|(_, p)| p.as_ref()))
        .chain(caller.embedded.as_deref())
        .any(Policy::tests_existing_object_tags)
}

/// Requires the caller to hold `action` on `bucket/key` as well (what a request's options
/// need beyond its operation: lock settings, tags); a service without authentication
/// (`authorized` false) allows everything.
pub(crate) fn require_also(
    extensions: &http::Extensions,
    authorized: bool,
    action: &str,
    bucket: &str,
    key: &str,
) -> S3Result<()> {
    let allowed = match extensions.get::<AuthzGrant>() {
        Some(grant) => grant.allows(action, bucket, key),
        None => !authorized,
    };
    if allowed { Ok(()) } else { Err(access_denied()) }
}

/// The caller the access hook admitted (none for a service without authentication).
pub(crate) fn caller_of(extensions: &http::Extensions) -> Option<&Caller> {
    extensions.get::<AuthzGrant>().map(|g| g.caller.as_ref())
}

/// The grant [`Authorizer::check`] left; its absence means the request was never admitted.
fn grant_of(extensions: &http::Extensions) -> S3Result<&AuthzGrant> {
    extensions.get::<AuthzGrant>().ok_or_else(access_denied)
}

/// `s3:RequestObjectTag/<key>` and `s3:RequestObjectTagKeys` from a URL-encoded tag set.
fn add_request_tags(context: &mut Context, tagging: &str) {
    let mut keys = Vec::new();
    for pair in tagging.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode_str(k).decode_utf8_lossy().into_owned();
        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
        context.insert(&format!("s3:RequestObjectTag/{k}"), v);
        keys.push(k);
    }
    context.set("s3:RequestObjectTagKeys", keys);
}

/// The s3s access hook: records the operation for metrics and audit, then decides.
#[derive(Debug)]
pub struct IamAccess {
    authorizer: Arc<Authorizer>,
}

impl IamAccess {
    pub(crate) fn new(authorizer: Arc<Authorizer>) -> IamAccess {
        IamAccess { authorizer }
    }
}

#[async_trait::async_trait]
impl S3Access for IamAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let name = cx.s3_op().name().to_owned();
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            slot.set_operation(name, access_key.clone());
        }
        self.authorizer.check(cx, access_key.as_deref()).await
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.authorizer
            .check_copy_source(&req.extensions, &req.input.copy_source)
            .await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.authorizer
            .check_copy_source(&req.extensions, &req.input.copy_source)
            .await
    }

    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        self.authorizer.check_post_object(req)
    }
}

/// The session token a request carries: the `x-amz-security-token` header, or the
/// `X-Amz-Security-Token` query parameter of a presigned URL.
pub(crate) fn session_token(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_value(uri, "X-Amz-Security-Token"))
        .filter(|t| !t.is_empty())
}

/// The S3 error for a refused session.
fn session_error(err: strata_iam::IamError) -> S3Error {
    match err {
        strata_iam::IamError::ExpiredSessionToken => {
            S3Error::with_message(S3ErrorCode::ExpiredToken, "The provided token has expired.")
        }
        _ => S3Error::with_message(
            S3ErrorCode::InvalidToken,
            "The provided token is malformed or otherwise invalid.",
        ),
    }
}

/// The request's condition keys (all but the caller's, which [`Caller::fill_context`] adds).
pub(crate) fn request_context(
    uri: &Uri,
    headers: &HeaderMap,
    client: Option<ClientInfo>,
    signed: bool,
) -> Context {
    let mut cx = Context::new();
    let now = time::OffsetDateTime::now_utc();
    if let Ok(text) = now.format(&time::format_description::well_known::Rfc3339) {
        cx.insert("aws:CurrentTime", text);
    }
    cx.insert("aws:EpochTime", now.unix_timestamp().to_string());
    if let Some(client) = client {
        cx.insert("aws:SourceIp", client.addr.ip().to_string());
        cx.insert(
            "aws:SecureTransport",
            if client.secure { "true" } else { "false" },
        );
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(v) = header("referer") {
        cx.insert("aws:Referer", v);
    }
    if let Some(v) = header("user-agent") {
        cx.insert("aws:UserAgent", v);
    }
    for name in ["prefix", "delimiter", "max-keys"] {
        if let Some(v) = query_value(uri, name) {
            cx.insert(&format!("s3:{name}"), v);
        }
    }
    if let Some(v) = query_value(uri, "versionId") {
        cx.insert("s3:VersionId", v);
    }
    for name in [
        "x-amz-acl",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-storage-class",
        "x-amz-copy-source",
        "x-amz-metadata-directive",
        "x-amz-object-lock-mode",
        "x-amz-object-lock-retain-until-date",
        "x-amz-object-lock-legal-hold",
        "x-amz-grant-read",
        "x-amz-grant-write",
        "x-amz-grant-read-acp",
        "x-amz-grant-write-acp",
        "x-amz-grant-full-control",
        // Conditional writes and deletes (AWS's keys for policies that require them).
        "if-match",
        "if-none-match",
    ] {
        if let Some(v) = header(name) {
            let key = match name {
                "x-amz-object-lock-mode" => "s3:object-lock-mode".to_owned(),
                "x-amz-object-lock-retain-until-date" => "s3:object-lock-retain-until-date".to_owned(),
                "x-amz-object-lock-legal-hold" => "s3:object-lock-legal-hold".to_owned(),
                other => format!("s3:{other}"),
            };
            cx.insert(&key, v);
        }
    }
    if let Some(tagging) = header("x-amz-tagging") {
        add_request_tags(&mut cx, tagging);
    }
    let presigned = query_value(uri, "X-Amz-Signature").is_some() || query_value(uri, "Signature").is_some();
    if signed {
        let v4 = header("authorization").is_some_and(|a| a.starts_with("AWS4-"))
            || query_value(uri, "X-Amz-Algorithm").is_some();
        cx.insert("s3:signatureversion", if v4 { "AWS4-HMAC-SHA256" } else { "AWS" });
        cx.insert(
            "s3:authType",
            if presigned {
                "REST-QUERY-STRING"
            } else {
                "REST-HEADER"
            },
        );
    }
    cx
}

/// An IAM with only a root user, over records in memory (unit tests).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) async fn test_iam(root_access_key: &str) -> Arc<Iam> {
    Iam::root_only(root_access_key, "a-root-secret-for-tests")
        .await
        .unwrap()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn context_carries_query_headers_and_client() {
        let uri: Uri = "/b?list-type=2&prefix=home%2Falice%2F&delimiter=%2F&max-keys=10"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-tagging", "project=blue&team=a%20b".parse().unwrap());
        headers.insert("authorization", "AWS4-HMAC-SHA256 Credential=x".parse().unwrap());
        headers.insert("x-amz-storage-class", "STANDARD".parse().unwrap());
        let client = ClientInfo {
            addr: "127.0.0.1:5000".parse().unwrap(),
            secure: false,
        };
        let cx = request_context(&uri, &headers, Some(client), true);
        assert_eq!(cx.get("s3:prefix").unwrap(), ["home/alice/"]);
        assert_eq!(cx.get("S3:Delimiter").unwrap(), ["/"]);
        assert_eq!(cx.get("s3:max-keys").unwrap(), ["10"]);
        assert_eq!(cx.get("aws:SourceIp").unwrap(), ["127.0.0.1"]);
        assert_eq!(cx.get("aws:SecureTransport").unwrap(), ["false"]);
        assert_eq!(cx.get("s3:RequestObjectTag/team").unwrap(), ["a b"]);
        assert_eq!(cx.get("s3:RequestObjectTagKeys").unwrap(), ["project", "team"]);
        assert_eq!(cx.get("s3:signatureversion").unwrap(), ["AWS4-HMAC-SHA256"]);
        assert_eq!(cx.get("s3:authType").unwrap(), ["REST-HEADER"]);
        assert_eq!(cx.get("s3:x-amz-storage-class").unwrap(), ["STANDARD"]);
        assert!(cx.get("aws:CurrentTime").is_some());
    }

    #[tokio::test]
    async fn iam_auth_knows_root_and_refuses_unknown_keys() {
        let auth = IamAuth::new(test_iam("AKIAROOT").await);
        assert_eq!(
            auth.get_secret_key("AKIAROOT").await.unwrap().expose(),
            "a-root-secret-for-tests"
        );
        let err = auth.get_secret_key("OTHER").await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::InvalidAccessKeyId);
    }

    #[test]
    fn anonymous_requests_have_no_signature_keys() {
        let uri: Uri = "/b/k".parse().unwrap();
        let cx = request_context(&uri, &HeaderMap::new(), None, false);
        assert!(cx.get("s3:signatureversion").is_none());
        assert!(cx.get("aws:SourceIp").is_none());
    }
}
