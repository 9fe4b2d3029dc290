//! [`StrataS3`], the [`s3s::S3`] implementation, and [`build_service`], which assembles it with
//! authentication, health and admin routes and virtual-host parsing into a servable
//! [`crate::FrontDoorService`] (s3s's `S3Service` behind CORS, `cors.rs`).
//!
//! Invariant: every operation listed in the `impl S3` block delegates to its family module;
//! everything not listed keeps s3s's default `501 NotImplemented`.

use std::sync::Arc;

use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3Request, S3Response, S3Result};
use strata_object::{ObjectError, ObjectLayer};

use crate::access_control::BucketAccess;
use crate::admin::AdminRoute;
use crate::auth::RootCredentials;
use crate::authz::{Authorizer, IamAccess, IamAuth};
use crate::convert;
use crate::error::{FrontDoorError, map_object_error};
use crate::health::HealthRoute;
use crate::intercept::Intercept;
use crate::minio_admin::MinioAdminRoute;
use crate::routes::Routes;
use crate::{
    access_control, attributes, bucket, bucket_policy, list, multipart, object, object_lock, tagging,
};
use strata_iam::acl::Owner as AclOwner;

/// The id of one HTTP request, put into the request's extensions by the server so that
/// handlers can log it and set it on error bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Settings of the front door.
#[derive(Clone, Debug)]
pub struct FrontDoorConfig {
    /// The region this deployment answers for (`us-east-1` by default).
    pub region: String,
    /// Base domains for virtual-host-style requests (`bucket.domain`); empty: path style only.
    pub domains: Vec<String>,
    /// The root user.
    pub root: RootCredentials,
    /// Users, groups, service accounts and policies.
    pub iam: Arc<strata_iam::Iam>,
    /// OpenID Connect providers for STS `AssumeRoleWithWebIdentity` (none: not offered).
    pub identity_providers: Vec<Arc<strata_iam::oidc::OidcProvider>>,
    /// The LDAP directory for STS `AssumeRoleWithLDAPIdentity` (none: not offered).
    pub ldap: Option<Arc<strata_iam::ldap::LdapConfig>>,
    /// Server-side encryption: the KMS and the server-wide settings.
    pub encryption: crate::EncryptionConfig,
    /// The KMS key rotation job (none without a KMS).
    pub key_rotation: Option<Arc<crate::KeyRotation>>,
    /// The lifecycle job (none: rules are stored but nothing applies them, as in unit tests).
    pub lifecycle: Option<Arc<strata_lifecycle::Lifecycle>>,
    /// The remote tiers (none: no tier can be configured, as in unit tests).
    pub tiers: Option<Arc<strata_tier::Tiers>>,
}

/// The S3 operations over the object layer.
pub struct StrataS3 {
    pub(crate) layer: Arc<ObjectLayer>,
    pub(crate) region: String,
    /// The deployment's own account (the owner of buckets that name no other).
    pub(crate) owner: AclOwner,
    /// Its account id.
    pub(crate) account_id: String,
    /// Identities (accounts for ACL grantees); none for a service without authentication.
    pub(crate) iam: Option<Arc<strata_iam::Iam>>,
    /// Bucket policies, ACLs, ownership and Block Public Access settings, cached.
    pub(crate) access: Arc<BucketAccess>,
    /// Requests carry an authorization grant ([`build_service`]'s access hook puts it in);
    /// handlers that decide further (DeleteObjects per key) refuse without one. False only
    /// for [`StrataS3::new`], an open service without authentication.
    pub(crate) authorized: bool,
    /// Server-side encryption settings and the KMS.
    pub(crate) encryption: crate::EncryptionConfig,
    /// The lifecycle job, for writes already due and for its day length.
    pub(crate) lifecycle: Option<Arc<strata_lifecycle::Lifecycle>>,
}

impl StrataS3 {
    /// The operations over `layer`, answering for `region`, with everything owned by the
    /// deployment's root account, for a service without authentication (s3s then runs no
    /// access checks: everything is allowed). [`build_service`] builds the authenticated,
    /// authorized one.
    pub fn new(layer: Arc<ObjectLayer>, region: &str) -> StrataS3 {
        let account_id = strata_iam::deployment_account_id(layer.deployment_id().as_u128());
        let access = Arc::new(BucketAccess::new(Arc::clone(&layer), &account_id));
        let mut s3 = StrataS3::with_access(layer, region, &account_id, access);
        s3.authorized = false;
        s3
    }

    /// The operations sharing a bucket-access cache with the access hook.
    pub(crate) fn with_access(
        layer: Arc<ObjectLayer>,
        region: &str,
        account_id: &str,
        access: Arc<BucketAccess>,
    ) -> StrataS3 {
        StrataS3 {
            layer,
            region: region.to_owned(),
            owner: convert::account_owner(account_id),
            account_id: account_id.to_owned(),
            iam: None,
            access,
            authorized: true,
            encryption: crate::EncryptionConfig::default(),
            lifecycle: None,
        }
    }
}

impl StrataS3 {
    /// The account a request acts for: its caller's (the deployment's for a service without
    /// authentication).
    pub(crate) fn request_account<T>(&self, req: &S3Request<T>) -> String {
        crate::authz::caller_of(&req.extensions)
            .map_or_else(|| self.account_id.clone(), |c| c.account_id.clone())
    }

    /// The account that writes with a request: the caller's; none for an anonymous caller
    /// (whose objects belong to the bucket's owner).
    pub(crate) fn writer_account<T>(&self, req: &S3Request<T>) -> Option<String> {
        match crate::authz::caller_of(&req.extensions) {
            Some(c) if c.kind == strata_iam::PrincipalKind::Anonymous => None,
            Some(c) => Some(c.account_id.clone()),
            None => Some(self.account_id.clone()),
        }
    }

    /// Whether a request's caller sees every account's buckets (the deployment's root, the
    /// operator; and everyone on a service without authentication).
    pub(crate) fn sees_all_buckets<T>(&self, req: &S3Request<T>) -> bool {
        crate::authz::caller_of(&req.extensions).is_none_or(strata_iam::Caller::is_root)
    }

    /// One version's info: the latest when `version_id` is none.
    pub(crate) async fn version_info(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
    ) -> Result<strata_object::ObjectInfo, ObjectError> {
        let opts = strata_object::GetOptions {
            version_id,
            ..Default::default()
        };
        self.layer.head_object(bucket, key, opts).await
    }

    /// The owner ACLs name for `account`, with its display name.
    pub(crate) fn account_owner(&self, account: &str) -> AclOwner {
        if account == self.account_id {
            return self.owner.clone();
        }
        let name = self
            .iam
            .as_ref()
            .and_then(|iam| iam.account_info(account).ok())
            .map_or_else(|| account.to_owned(), |a| a.name);
        AclOwner::for_account(account, name)
    }

    /// The owner an ACL grant may name by `canonical_id`, if it is an account of this
    /// deployment (its display name).
    pub(crate) fn resolve_canonical_id(&self, canonical_id: &str) -> Option<String> {
        if canonical_id == self.owner.id {
            return Some(self.owner.display_name.clone());
        }
        self.iam
            .as_ref()?
            .list_accounts()
            .into_iter()
            .find(|a| a.canonical_id == canonical_id)
            .map(|a| a.name)
    }
}

/// The request id a request carries (set by the server), if any.
pub(crate) fn request_id<T>(req: &S3Request<T>) -> Option<&str> {
    req.extensions.get::<RequestId>().map(|id| id.0.as_str())
}

/// A closure mapping object-layer errors for this request.
pub(crate) fn err_mapper<T>(req: &S3Request<T>) -> impl Fn(ObjectError) -> s3s::S3Error + use<T> {
    let id = request_id(req).map(str::to_owned);
    move |e| map_object_error(e, id.as_deref())
}

/// Builds the servable service: operations, root authentication, health and admin routes, the
/// request-header limits and the DeleteObjects / Range intercept, and virtual-host parsing when
/// `config.domains` is not empty (path style always works); all behind CORS (preflights
/// answered, `Access-Control-*` headers added: [`crate::FrontDoorService`]).
pub fn build_service(
    layer: Arc<ObjectLayer>,
    config: &FrontDoorConfig,
) -> Result<crate::FrontDoorService, FrontDoorError> {
    let access = Arc::new(BucketAccess::new(Arc::clone(&layer), config.iam.account_id()));
    let authorizer = Arc::new(Authorizer::new(Arc::clone(&config.iam), Arc::clone(&access)));
    let account_id = config.iam.account_id();
    // The service the intercept hands requests to once it has checked them: the same
    // operations and host parsing, no route, and an access hook that trusts only what the
    // intercept marked as authenticated (see `intercept.rs`) and authorizes it like the outer one.
    let mut inner_s3 = StrataS3::with_access(
        Arc::clone(&layer),
        &config.region,
        account_id,
        Arc::clone(&access),
    );
    inner_s3.iam = Some(Arc::clone(&config.iam));
    inner_s3.encryption = config.encryption.clone();
    inner_s3.lifecycle = config.lifecycle.clone();
    let mut inner = S3ServiceBuilder::new(inner_s3);
    inner.set_auth(IamAuth::new(Arc::clone(&config.iam)));
    inner.set_access(crate::intercept::InnerAccess::new(Arc::clone(&authorizer)));
    if !config.domains.is_empty() {
        inner.set_host(VirtualHosts::new(&config.domains)?);
    }
    let intercept = Intercept::new(inner.build());

    let mut s3 = StrataS3::with_access(Arc::clone(&layer), &config.region, account_id, access);
    s3.iam = Some(Arc::clone(&config.iam));
    s3.encryption = config.encryption.clone();
    s3.lifecycle = config.lifecycle.clone();
    let mut builder = S3ServiceBuilder::new(s3);
    builder.set_auth(IamAuth::new(Arc::clone(&config.iam)));
    builder.set_access(IamAccess::new(authorizer));
    let cors_hosts: Option<Box<dyn s3s::host::S3Host>> = if config.domains.is_empty() {
        None
    } else {
        Some(Box::new(VirtualHosts::new(&config.domains)?))
    };
    let cors = crate::cors::Cors::new(Arc::clone(&layer), cors_hosts);
    let admin = AdminRoute::new(Arc::clone(&layer), Arc::clone(&config.iam))
        .with_kms(config.key_rotation.clone())
        .with_tiers(config.tiers.clone());
    let minio_admin = MinioAdminRoute::new(Arc::clone(&config.iam))
        .with_kms(config.encryption.kms.clone())
        .with_tiers(config.tiers.clone());
    builder.set_route(Routes::new(
        HealthRoute::new(layer, Arc::clone(&config.iam)),
        admin,
        minio_admin,
        crate::sts::StsRoute::new(
            Arc::clone(&config.iam),
            config.identity_providers.clone(),
            config.ldap.clone(),
        ),
        intercept,
    ));
    if !config.domains.is_empty() {
        builder.set_host(VirtualHosts::new(&config.domains)?);
    }
    Ok(crate::FrontDoorService::new(builder.build(), cors))
}

/// Virtual-host parsing that never takes over other host names: `bucket.DOMAIN` addresses a
/// bucket, while any host that is not DOMAIN or one of its subdomains is served path style
/// (s3s's `MultiDomain` alone would read an unknown host name as a CNAME'd bucket name).
struct VirtualHosts {
    domains: Vec<String>,
    inner: s3s::host::MultiDomain,
}

impl VirtualHosts {
    fn new(domains: &[String]) -> Result<VirtualHosts, FrontDoorError> {
        let domains: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        let inner = s3s::host::MultiDomain::new(&domains).map_err(|e| FrontDoorError::InvalidDomain {
            domains: domains.clone(),
            reason: e.to_string(),
        })?;
        Ok(VirtualHosts { domains, inner })
    }

    fn is_ours(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.domains.iter().any(|d| {
            host == *d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}

impl s3s::host::S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<s3s::host::VirtualHost<'a>> {
        if self.is_ours(host) {
            return self.inner.parse_host_header(host);
        }
        Ok(s3s::host::VirtualHost::new(host))
    }
}

#[async_trait::async_trait]
impl S3 for StrataS3 {
    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        bucket_policy::put_bucket_policy(self, req).await
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        bucket_policy::get_bucket_policy(self, req).await
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        bucket_policy::delete_bucket_policy(self, req).await
    }

    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        bucket_policy::get_bucket_policy_status(self, req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        bucket::list_buckets(self, req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        bucket::create_bucket(self, req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        bucket::head_bucket(self, req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        bucket::delete_bucket(self, req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        bucket::get_bucket_location(self, req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        bucket::get_bucket_versioning(self, req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        bucket::put_bucket_versioning(self, req).await
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        access_control::get_bucket_acl(self, req).await
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        access_control::put_bucket_acl(self, req).await
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        access_control::get_object_acl(self, req).await
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        access_control::put_object_acl(self, req).await
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        crate::encryption::put_bucket_encryption(self, req).await
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        crate::encryption::get_bucket_encryption(self, req).await
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        crate::encryption::delete_bucket_encryption(self, req).await
    }

    async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        access_control::put_bucket_ownership_controls(self, req).await
    }

    async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        access_control::get_bucket_ownership_controls(self, req).await
    }

    async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        access_control::delete_bucket_ownership_controls(self, req).await
    }

    async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        access_control::put_public_access_block(self, req).await
    }

    async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        access_control::get_public_access_block(self, req).await
    }

    async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        access_control::delete_public_access_block(self, req).await
    }

    async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        object_lock::put_object_lock_configuration(self, req).await
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        object_lock::get_object_lock_configuration(self, req).await
    }

    async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        object_lock::put_object_retention(self, req).await
    }

    async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        object_lock::get_object_retention(self, req).await
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        object_lock::put_object_legal_hold(self, req).await
    }

    async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        object_lock::get_object_legal_hold(self, req).await
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        tagging::put_object_tagging(self, req).await
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        attributes::get_object_attributes(self, req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        tagging::get_object_tagging(self, req).await
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        tagging::delete_object_tagging(self, req).await
    }

    async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        tagging::put_bucket_tagging(self, req).await
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        tagging::get_bucket_tagging(self, req).await
    }

    async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        tagging::delete_bucket_tagging(self, req).await
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        crate::cors::put_bucket_cors(self, req).await
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        crate::cors::get_bucket_cors(self, req).await
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        crate::cors::delete_bucket_cors(self, req).await
    }

    async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        crate::lifecycle::put_bucket_lifecycle_configuration(self, req).await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        crate::lifecycle::get_bucket_lifecycle_configuration(self, req).await
    }

    async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        crate::lifecycle::delete_bucket_lifecycle(self, req).await
    }

    async fn restore_object(
        &self,
        req: S3Request<RestoreObjectInput>,
    ) -> S3Result<S3Response<RestoreObjectOutput>> {
        crate::storage_class::restore_object(self, req).await
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        object::put_object(self, req).await
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        object::get_object(self, req).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        object::head_object(self, req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        object::delete_object(self, req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        object::delete_objects(self, req).await
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        object::copy_object(self, req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        list::list_objects(self, req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        list::list_objects_v2(self, req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        list::list_object_versions(self, req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create_multipart_upload(self, req).await
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(self, req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        multipart::upload_part_copy(self, req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete_multipart_upload(self, req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort_multipart_upload(self, req).await
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(self, req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        multipart::list_multipart_uploads(self, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::host::S3Host;

    #[test]
    fn virtual_hosts_only_for_configured_domains() {
        let hosts =
            VirtualHosts::new(&["s3.example.com".to_owned(), "s3.example.com:9000".to_owned()]).unwrap();
        let vh = hosts.parse_host_header("photos.s3.example.com").unwrap();
        assert_eq!(vh.bucket(), Some("photos"));
        let vh = hosts.parse_host_header("photos.s3.example.com:9000").unwrap();
        assert_eq!(vh.bucket(), Some("photos"));
        let vh = hosts.parse_host_header("s3.example.com").unwrap();
        assert_eq!(vh.bucket(), None);
        let vh = hosts.parse_host_header("localhost:9000").unwrap();
        assert_eq!(vh.bucket(), None);
        let vh = hosts.parse_host_header("nots3.example.com").unwrap();
        assert_eq!(vh.bucket(), None);
        assert!(VirtualHosts::new(&["bad domain".to_owned()]).is_err());
    }
}
