//! The admin API: JSON over HTTP under [`ADMIN_PATH_PREFIX`], signed with SigV4 by the root
//! user. Endpoints of version 1:
//!
//! - `POST /strata/admin/v1/heal?bucket=B&prefix=P&dry-run=true|false&deep=true|false` starts a
//!   heal sequence (no bucket: the whole deployment; a prefix only with a bucket) and answers
//!   its status.
//! - `GET /strata/admin/v1/heal` answers `{"sequence", "scanner", "drives"}`.
//! - `GET /strata/admin/v1/info` answers the deployment id, the binary's version, health and
//!   drives.
//! - Accounts (tenants, [`strata_iam::service`]): `GET /strata/admin/v1/accounts` lists them;
//!   `POST /strata/admin/v1/accounts?name=N` creates one and answers its id and root
//!   credentials sealed as madmin seals secrets (the caller's secret key opens them);
//!   `GET .../accounts/info?id=I`; `POST .../accounts/status?id=I&status=enabled|disabled`;
//!   `DELETE .../accounts?id=I` removes an empty one (no identities, no buckets).
//! - KMS (`crate::key_rotation`): `GET /strata/admin/v1/kms/status` (backend, default key,
//!   keys, the last rotation), `GET .../kms/keys`, `POST .../kms/keys?name=N` (create),
//!   `GET .../kms/keys/status?name=N` (versions, a seal-and-open check, its rotation),
//!   `POST .../kms/keys/rotate?name=N[&existing=true]` (a new version, or with `existing` the
//!   newest one added outside Strata, then the re-seal job).
//! - Remote tiers (`crate::tier_admin`): `GET /strata/admin/v1/tiers`, `POST .../tiers` (add;
//!   body sealed as madmin seals secrets), `PUT .../tiers?name=N` (new credentials, sealed),
//!   `DELETE .../tiers?name=N[&force=true]`, `POST .../tiers/verify?name=N`,
//!   `GET .../tiers/stats` (objects and bytes per tier, journal backlog).
//!
//! Invariants:
//! - Every request under `/strata/admin/` is answered here, never by the S3 operations (so a
//!   key `admin/...` in a bucket named `strata` is not reachable over S3, like `minio/` paths in
//!   MinIO). Unknown paths are a JSON `404 NotFound`, a known path with another method `405`.
//! - Access needs a verified signature of the root user, or of a user whose policies allow the
//!   endpoint's admin action (`admin:Heal`, `admin:ServerInfo`, `admin:Decommission`). The refusal comes from
//!   [`AdminRoute::check_access`] as an S3 `AccessDenied` (XML, like every authentication
//!   failure s3s reports before a handler runs); every answer after that is JSON, errors as
//!   `{"code": "...", "message": "..."}` with the matching status.
//! - Internal failures reach the client as `InternalError` without their Rust message; they
//!   are logged with the request id.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use percent_encoding::percent_decode_str;
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};
use serde::Serialize;
use strata_object::{
    DriveStatus, HealOptions, HealScope, HealSequenceStatus, ObjectError, ObjectLayer, ScannerStatus,
};

use crate::service::request_id;

/// Every path below this belongs to the admin API (any version).
pub const ADMIN_PATH_PREFIX: &str = "/strata/admin/";
/// Start a heal sequence (`POST`) or read heal status (`GET`).
pub const HEAL_PATH: &str = "/strata/admin/v1/heal";
/// Deployment information (`GET`).
pub const INFO_PATH: &str = "/strata/admin/v1/info";
/// Pools and their decommission state (`GET`).
pub const POOLS_PATH: &str = "/strata/admin/v1/pools";
/// Start decommissioning the pool named by `?pool=N` (`POST`).
pub const DECOMMISSION_PATH: &str = "/strata/admin/v1/pools/decommission";
/// List (`GET`), create (`POST ?name=`) or remove (`DELETE ?id=`) accounts.
pub const ACCOUNTS_PATH: &str = "/strata/admin/v1/accounts";
/// One account (`GET ?id=`).
pub const ACCOUNT_INFO_PATH: &str = "/strata/admin/v1/accounts/info";
/// Enable or disable an account (`POST ?id=&status=`).
pub const ACCOUNT_STATUS_PATH: &str = "/strata/admin/v1/accounts/status";
/// The KMS: backend, default key, keys and the last rotation (`GET`).
pub const KMS_STATUS_PATH: &str = "/strata/admin/v1/kms/status";
/// KMS keys: list (`GET`) or create (`POST ?name=`).
pub const KMS_KEYS_PATH: &str = "/strata/admin/v1/kms/keys";
/// One KMS key (`GET ?name=`): its versions, a seal-and-open check, its rotation.
pub const KMS_KEY_STATUS_PATH: &str = "/strata/admin/v1/kms/keys/status";
/// Rotate a KMS key (`POST ?name=`): a new version, and the re-seal job.
pub const KMS_KEY_ROTATE_PATH: &str = "/strata/admin/v1/kms/keys/rotate";

/// Version of this build, reported by `info` (the workspace shares one version).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Query parameter: bucket to heal.
const PARAM_BUCKET: &str = "bucket";
/// Query parameter: key prefix to heal (only with a bucket).
const PARAM_PREFIX: &str = "prefix";
/// Query parameter: report without writing.
const PARAM_DRY_RUN: &str = "dry-run";
/// Query parameter: verify every shard's checksums.
const PARAM_DEEP: &str = "deep";

/// The admin endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdminEndpoint {
    /// `POST heal`.
    StartHeal,
    /// `GET heal`.
    HealStatus,
    /// `GET info`.
    Info,
    /// `GET pools`.
    Pools,
    /// `POST pools/decommission?pool=N`.
    Decommission,
    /// `GET accounts`.
    ListAccounts,
    /// `POST accounts?name=N`.
    CreateAccount,
    /// `DELETE accounts?id=I`.
    DeleteAccount,
    /// `GET accounts/info?id=I`.
    AccountInfo,
    /// `POST accounts/status?id=I&status=S`.
    AccountStatus,
    /// `GET kms/status`.
    KmsStatus,
    /// `GET kms/keys`.
    KmsListKeys,
    /// `POST kms/keys?name=N`.
    KmsCreateKey,
    /// `GET kms/keys/status?name=N`.
    KmsKeyStatus,
    /// `POST kms/keys/rotate?name=N`.
    KmsRotateKey,
}

impl AdminEndpoint {
    /// The admin action a caller other than root needs.
    fn action(self) -> &'static str {
        match self {
            AdminEndpoint::StartHeal | AdminEndpoint::HealStatus => "admin:Heal",
            AdminEndpoint::Decommission => "admin:Decommission",
            AdminEndpoint::Info | AdminEndpoint::Pools => "admin:ServerInfo",
            AdminEndpoint::ListAccounts => "admin:ListAccounts",
            AdminEndpoint::CreateAccount => "admin:CreateAccount",
            AdminEndpoint::DeleteAccount => "admin:DeleteAccount",
            AdminEndpoint::AccountInfo => "admin:GetAccount",
            AdminEndpoint::AccountStatus => "admin:UpdateAccount",
            AdminEndpoint::KmsStatus | AdminEndpoint::KmsListKeys | AdminEndpoint::KmsKeyStatus => {
                "admin:KMSKeyStatus"
            }
            AdminEndpoint::KmsCreateKey => "admin:KMSCreateKey",
            AdminEndpoint::KmsRotateKey => "admin:KMSKeyRotate",
        }
    }
}

/// Whether `path` belongs to the admin API.
pub(crate) fn is_admin_path(path: &str) -> bool {
    path.starts_with(ADMIN_PATH_PREFIX)
}

/// The endpoint `method path` addresses (a trailing `/` is ignored).
pub(crate) fn resolve(method: &Method, path: &str) -> Result<AdminEndpoint, AdminError> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let endpoint = match path {
        HEAL_PATH if method == Method::POST => AdminEndpoint::StartHeal,
        HEAL_PATH if method == Method::GET => AdminEndpoint::HealStatus,
        INFO_PATH if method == Method::GET => AdminEndpoint::Info,
        POOLS_PATH if method == Method::GET => AdminEndpoint::Pools,
        DECOMMISSION_PATH if method == Method::POST => AdminEndpoint::Decommission,
        ACCOUNTS_PATH if method == Method::GET => AdminEndpoint::ListAccounts,
        ACCOUNTS_PATH if method == Method::POST => AdminEndpoint::CreateAccount,
        ACCOUNTS_PATH if method == Method::DELETE => AdminEndpoint::DeleteAccount,
        ACCOUNT_INFO_PATH if method == Method::GET => AdminEndpoint::AccountInfo,
        ACCOUNT_STATUS_PATH if method == Method::POST => AdminEndpoint::AccountStatus,
        KMS_STATUS_PATH if method == Method::GET => AdminEndpoint::KmsStatus,
        KMS_KEYS_PATH if method == Method::GET => AdminEndpoint::KmsListKeys,
        KMS_KEYS_PATH if method == Method::POST => AdminEndpoint::KmsCreateKey,
        KMS_KEY_STATUS_PATH if method == Method::GET => AdminEndpoint::KmsKeyStatus,
        KMS_KEY_ROTATE_PATH if method == Method::POST => AdminEndpoint::KmsRotateKey,
        HEAL_PATH | INFO_PATH | POOLS_PATH | DECOMMISSION_PATH | ACCOUNTS_PATH | ACCOUNT_INFO_PATH
        | ACCOUNT_STATUS_PATH | KMS_STATUS_PATH | KMS_KEYS_PATH | KMS_KEY_STATUS_PATH
        | KMS_KEY_ROTATE_PATH => {
            return Err(AdminError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{method} is not allowed on {path}"),
            ));
        }
        _ => {
            return Err(AdminError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("no admin endpoint at {path}"),
            ));
        }
    };
    Ok(endpoint)
}

/// A refused or failed admin request: status, error code and a message for the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct AdminError {
    #[serde(skip)]
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AdminError {
        AdminError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_param(message: impl Into<String>) -> AdminError {
        AdminError::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }

    pub(crate) fn internal() -> AdminError {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        )
    }

    /// The object-layer error as an admin error; internal details are logged, not sent.
    pub(crate) fn from_object(err: ObjectError, request_id: Option<&str>) -> AdminError {
        match &err {
            ObjectError::NoSuchBucket { bucket } => AdminError::new(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                format!("bucket {bucket} does not exist"),
            ),
            ObjectError::InvalidBucketName { reason, .. } => AdminError::new(
                StatusCode::BAD_REQUEST,
                "InvalidBucketName",
                format!("invalid bucket name: {reason}"),
            ),
            ObjectError::ReadQuorum { .. } | ObjectError::WriteQuorum { .. } => {
                tracing::warn!(request_id = request_id.unwrap_or("-"), error = %err, "admin request without quorum");
                AdminError::unavailable()
            }
            _ => {
                tracing::error!(request_id = request_id.unwrap_or("-"), error = %err, "admin request failed");
                AdminError::internal()
            }
        }
    }

    fn unavailable() -> AdminError {
        AdminError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "QuorumUnavailable",
            "too many drives are offline to read the objects to heal",
        )
    }

    fn heal_running() -> AdminError {
        AdminError::new(
            StatusCode::CONFLICT,
            "HealAlreadyRunning",
            "a heal sequence is already running; GET /strata/admin/v1/heal shows its progress",
        )
    }
}

/// What a `POST heal` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HealRequest {
    pub(crate) scope: HealScope,
    pub(crate) opts: HealOptions,
}

pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, AdminError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AdminError::bad_param(format!(
            "{name} must be true or false, not {value:?}"
        ))),
    }
}

/// Parses the query of a `POST pools/decommission`: exactly `pool=N`.
pub(crate) fn parse_pool_query(query: Option<&str>) -> Result<usize, AdminError> {
    match query.unwrap_or("").split_once('=') {
        Some(("pool", value)) if !value.contains('&') => value
            .parse()
            .map_err(|_| AdminError::bad_param(format!("pool must be a pool number, not {value:?}"))),
        _ => Err(AdminError::bad_param("give the pool to decommission as ?pool=N")),
    }
}

/// Parses the query of a `POST heal`: every parameter at most once, unknown ones refused.
pub(crate) fn parse_heal_query(query: Option<&str>) -> Result<HealRequest, AdminError> {
    let mut bucket: Option<String> = None;
    let mut prefix: Option<String> = None;
    let mut dry_run: Option<bool> = None;
    let mut deep: Option<bool> = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |raw: &str| {
            percent_decode_str(raw)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| AdminError::bad_param("query parameters must be UTF-8"))
        };
        let name = decode(raw_name)?;
        let value = decode(raw_value)?;
        let duplicate = || AdminError::bad_param(format!("{name} is given more than once"));
        match name.as_str() {
            PARAM_BUCKET => {
                if value.is_empty() {
                    return Err(AdminError::bad_param("bucket must not be empty"));
                }
                if bucket.replace(value).is_some() {
                    return Err(duplicate());
                }
            }
            PARAM_PREFIX => {
                if prefix.replace(value).is_some() {
                    return Err(duplicate());
                }
            }
            PARAM_DRY_RUN => {
                if dry_run.replace(parse_bool(&name, &value)?).is_some() {
                    return Err(duplicate());
                }
            }
            PARAM_DEEP => {
                if deep.replace(parse_bool(&name, &value)?).is_some() {
                    return Err(duplicate());
                }
            }
            _ => {
                return Err(AdminError::bad_param(format!(
                    "unknown parameter {name:?} (known: bucket, prefix, dry-run, deep)"
                )));
            }
        }
    }
    let prefix = prefix.unwrap_or_default();
    if bucket.is_none() && !prefix.is_empty() {
        return Err(AdminError::bad_param("prefix needs a bucket"));
    }
    Ok(HealRequest {
        scope: HealScope { bucket, prefix },
        opts: HealOptions {
            dry_run: dry_run.unwrap_or(false),
            deep: deep.unwrap_or(false),
        },
    })
}

/// The answer of `GET heal`.
#[derive(Debug, Serialize)]
pub(crate) struct HealStatusReply {
    pub(crate) sequence: HealSequenceStatus,
    pub(crate) scanner: ScannerStatus,
    pub(crate) drives: Vec<DriveStatus>,
}

/// Health as `info` reports it.
#[derive(Debug, Serialize)]
pub(crate) struct HealthReply {
    pub(crate) write_quorum: bool,
    pub(crate) read_quorum: bool,
    pub(crate) drives_online: usize,
    pub(crate) drives_total: usize,
}

/// The answer of `GET info`.
#[derive(Debug, Serialize)]
pub(crate) struct InfoReply {
    pub(crate) deployment_id: String,
    pub(crate) version: &'static str,
    pub(crate) health: HealthReply,
    pub(crate) drives: Vec<DriveStatus>,
}

/// The admin API over an object layer, authorized by IAM's admin actions.
pub struct AdminRoute {
    layer: Arc<ObjectLayer>,
    iam: Arc<strata_iam::Iam>,
    /// The KMS and its rotation job; none without a KMS.
    kms: Option<Arc<crate::KeyRotation>>,
    /// The remote tiers; none in a front door built without them (unit tests).
    pub(crate) tiers: Option<Arc<strata_tier::Tiers>>,
}

impl AdminRoute {
    /// Admin routes over `layer`, authorized by `iam`.
    pub fn new(layer: Arc<ObjectLayer>, iam: Arc<strata_iam::Iam>) -> AdminRoute {
        AdminRoute {
            layer,
            iam,
            kms: None,
            tiers: None,
        }
    }

    /// The same routes with the tier endpoints served by `tiers`.
    pub fn with_tiers(self, tiers: Option<Arc<strata_tier::Tiers>>) -> AdminRoute {
        AdminRoute { tiers, ..self }
    }

    /// The signer's secret key (bodies with secrets are sealed with it, as madmin does).
    pub(crate) fn caller_secret(&self, req: &S3Request<Body>) -> Option<String> {
        req.credentials
            .as_ref()
            .and_then(|c| self.iam.secret_key(&c.access_key))
            .map(|s| s.expose().to_owned())
    }

    /// The same routes with the KMS endpoints served by `kms`.
    pub fn with_kms(self, kms: Option<Arc<crate::KeyRotation>>) -> AdminRoute {
        AdminRoute { kms, ..self }
    }

    fn kms(&self) -> Result<&Arc<crate::KeyRotation>, AdminError> {
        self.kms.as_ref().ok_or_else(|| {
            AdminError::new(
                StatusCode::NOT_IMPLEMENTED,
                "KMSNotConfigured",
                "no KMS is configured (STRATA_KMS_SECRET_KEY or a KMS keyring)",
            )
        })
    }

    /// Refuses anonymous requests, and requests whose signer's policies do not allow the
    /// endpoint's admin action (`admin:Heal`, `admin:ServerInfo`, `admin:Decommission`).
    pub(crate) fn authorize(&self, req: &S3Request<Body>) -> S3Result<()> {
        let Some(credentials) = req.credentials.as_ref() else {
            return Err(s3s::s3_error!(AccessDenied, "Admin requests must be signed"));
        };
        let Some(caller) = self.iam.caller(&credentials.access_key) else {
            return Err(s3s::s3_error!(AccessDenied, "Access Denied"));
        };
        crate::authz::note_principal(&req.extensions, &caller);
        if caller.is_root() {
            return Ok(());
        }
        // An unknown path or method is answered 404/405 by `handle` to a caller with any admin
        // right; the action checked is the endpoint's, or `admin:ServerInfo` for those.
        let action = crate::tier_admin::action(&req.method, req.uri.path()).unwrap_or_else(|| {
            resolve(&req.method, req.uri.path()).map_or("admin:ServerInfo", AdminEndpoint::action)
        });
        if crate::authz::admin_decision(req, &caller, action).allowed {
            Ok(())
        } else {
            Err(s3s::s3_error!(AccessDenied, "Access Denied"))
        }
    }

    async fn handle(&self, req: &S3Request<Body>) -> Result<(StatusCode, serde_json::Value), AdminError> {
        let id = request_id(req);
        match resolve(&req.method, req.uri.path())? {
            AdminEndpoint::StartHeal => {
                let heal = parse_heal_query(req.uri.query())?;
                let status = self.start_heal(heal, id).await?;
                Ok((StatusCode::OK, to_json(&status)?))
            }
            AdminEndpoint::HealStatus => {
                let reply = HealStatusReply {
                    sequence: self.layer.heal_status(),
                    scanner: self.layer.scanner_status(),
                    drives: self.layer.drive_statuses(),
                };
                Ok((StatusCode::OK, to_json(&reply)?))
            }
            AdminEndpoint::Pools => Ok((StatusCode::OK, to_json(&self.layer.pool_statuses())?)),
            AdminEndpoint::Decommission => {
                let pool = parse_pool_query(req.uri.query())?;
                let status = self.layer.start_decommission(pool).await.map_err(|e| match e {
                    ObjectError::InvalidRequest { reason } => {
                        AdminError::new(StatusCode::CONFLICT, "DecommissionRefused", reason)
                    }
                    other => AdminError::from_object(other, id),
                })?;
                tracing::info!(
                    request_id = id.unwrap_or("-"),
                    pool,
                    "pool decommission requested"
                );
                Ok((StatusCode::OK, to_json(&status)?))
            }
            AdminEndpoint::ListAccounts => Ok((StatusCode::OK, to_json(&self.iam.list_accounts())?)),
            AdminEndpoint::AccountInfo => {
                let id = required_param(req.uri.query(), "id")?;
                let info = self.iam.account_info(&id).map_err(account_error)?;
                Ok((StatusCode::OK, to_json(&info)?))
            }
            AdminEndpoint::CreateAccount => {
                let name = required_param(req.uri.query(), "name")?;
                let (info, secret) = self
                    .iam
                    .create_account(strata_iam::NewAccount {
                        name,
                        ..Default::default()
                    })
                    .await
                    .map_err(account_error)?;
                tracing::info!(
                    request_id = id.unwrap_or("-"),
                    account = info.id.as_str(),
                    name = info.name.as_str(),
                    "account created"
                );
                // The root secret leaves sealed for the caller, as madmin seals secrets.
                let caller_secret = req
                    .credentials
                    .as_ref()
                    .and_then(|c| self.iam.secret_key(&c.access_key))
                    .ok_or_else(AdminError::internal)?;
                let plain = serde_json::to_vec(&serde_json::json!({
                    "accessKey": info.root_access_key,
                    "secretKey": secret.expose(),
                }))
                .map_err(|_| AdminError::internal())?;
                let sealed = crate::madmin_crypto::encrypt(caller_secret.expose().as_bytes(), &plain)
                    .map_err(|_| AdminError::internal())?;
                let reply = serde_json::json!({
                    "account": to_json(&info)?,
                    "credentials": base64_simd::STANDARD.encode_to_string(sealed),
                });
                Ok((StatusCode::OK, reply))
            }
            AdminEndpoint::AccountStatus => {
                let id = required_param(req.uri.query(), "id")?;
                let status = required_param(req.uri.query(), "status")?;
                let status = strata_iam::Status::parse(&status)
                    .ok_or_else(|| AdminError::bad_param("status must be enabled or disabled"))?;
                self.iam
                    .set_account_status(&id, status)
                    .await
                    .map_err(account_error)?;
                Ok((
                    StatusCode::OK,
                    to_json(&self.iam.account_info(&id).map_err(account_error)?)?,
                ))
            }
            AdminEndpoint::DeleteAccount => {
                let account = required_param(req.uri.query(), "id")?;
                self.iam.account_info(&account).map_err(account_error)?;
                let buckets = self
                    .layer
                    .list_buckets()
                    .await
                    .map_err(|e| AdminError::from_object(e, id))?;
                let owned = buckets
                    .iter()
                    .filter(|b| b.owner.as_deref() == Some(account.as_str()))
                    .count();
                if owned > 0 {
                    return Err(AdminError::new(
                        StatusCode::CONFLICT,
                        "AccountNotEmpty",
                        format!("the account {account} still owns {owned} buckets"),
                    ));
                }
                self.iam.remove_account(&account).await.map_err(account_error)?;
                Ok((StatusCode::OK, serde_json::json!({ "removed": account })))
            }
            AdminEndpoint::KmsStatus => {
                let kms = self.kms()?;
                let keys = kms.kms().list_keys().await.map_err(kms_error)?;
                let rotation = kms.status().await.map_err(|e| AdminError::from_object(e, id))?;
                Ok((
                    StatusCode::OK,
                    serde_json::json!({
                        "backend": kms.kms().backend(),
                        "default_key": kms.kms().default_key(),
                        "keys": to_json(&keys)?,
                        "rotation": to_json(&rotation)?,
                    }),
                ))
            }
            AdminEndpoint::KmsListKeys => {
                let keys = self.kms()?.kms().list_keys().await.map_err(kms_error)?;
                Ok((StatusCode::OK, to_json(&keys)?))
            }
            AdminEndpoint::KmsCreateKey => {
                let name = required_param(req.uri.query(), "name")?;
                self.kms()?.kms().create_key(&name).await.map_err(kms_error)?;
                tracing::info!(
                    request_id = id.unwrap_or("-"),
                    key = name.as_str(),
                    "KMS key created"
                );
                Ok((StatusCode::OK, serde_json::json!({ "created": name })))
            }
            AdminEndpoint::KmsKeyStatus => {
                let name = required_param(req.uri.query(), "name")?;
                let kms = self.kms()?;
                let info = kms.kms().key_info(&name).await.map_err(kms_error)?;
                let check = crate::encryption::key_check(kms.kms().as_ref(), &name).await;
                let rotation = kms
                    .status()
                    .await
                    .map_err(|e| AdminError::from_object(e, id))?
                    .filter(|r| r.key == name);
                Ok((
                    StatusCode::OK,
                    serde_json::json!({
                        "key": to_json(&info)?,
                        "encryption_error": check.encryption_error,
                        "decryption_error": check.decryption_error,
                        "rotation": to_json(&rotation)?,
                    }),
                ))
            }
            AdminEndpoint::KmsRotateKey => {
                let name = required_param(req.uri.query(), "name")?;
                let existing = crate::form::form_value(req.uri.query().unwrap_or(""), "existing")
                    .map(|v| parse_bool("existing", &v))
                    .transpose()?
                    .unwrap_or(false);
                let status = self.kms()?.rotate(&name, existing).await.map_err(|e| match e {
                    crate::RotateError::Kms(err) => kms_error(err),
                    crate::RotateError::Busy(_) => {
                        AdminError::new(StatusCode::CONFLICT, "RotationRunning", e.to_string())
                    }
                    crate::RotateError::Store(err) => AdminError::from_object(err, id),
                })?;
                tracing::info!(
                    request_id = id.unwrap_or("-"),
                    key = name.as_str(),
                    version = status.target_version,
                    "KMS key rotation started"
                );
                Ok((StatusCode::OK, to_json(&status)?))
            }
            AdminEndpoint::Info => {
                let health = self.layer.health().await;
                let reply = InfoReply {
                    deployment_id: self.layer.deployment_id().to_string(),
                    version: VERSION,
                    health: HealthReply {
                        write_quorum: health.write_quorum,
                        read_quorum: health.read_quorum,
                        drives_online: health.n_drives_online,
                        drives_total: health.n_drives,
                    },
                    drives: self.layer.drive_statuses(),
                };
                Ok((StatusCode::OK, to_json(&reply)?))
            }
        }
    }

    async fn start_heal(
        &self,
        heal: HealRequest,
        id: Option<&str>,
    ) -> Result<HealSequenceStatus, AdminError> {
        if self.layer.heal_status().state == strata_object::HealState::Running {
            return Err(AdminError::heal_running());
        }
        if !self.layer.health().await.read_quorum {
            return Err(AdminError::unavailable());
        }
        if let Some(bucket) = &heal.scope.bucket {
            self.layer
                .bucket_info(bucket)
                .await
                .map_err(|e| AdminError::from_object(e, id))?;
        }
        let status = self
            .layer
            .start_heal(heal.scope, heal.opts)
            .map_err(|e| match e {
                // The only refusal of start_heal: a sequence started since the check above.
                ObjectError::InvalidRequest { .. } => AdminError::heal_running(),
                other => AdminError::from_object(other, id),
            })?;
        tracing::info!(
            request_id = id.unwrap_or("-"),
            heal_id = status.id,
            bucket = status.scope.bucket.as_deref().unwrap_or("*"),
            prefix = status.scope.prefix,
            dry_run = status.dry_run,
            deep = heal.opts.deep,
            "heal sequence started"
        );
        Ok(status)
    }
}

/// A query parameter that must be there (percent-decoded).
pub(crate) fn required_param(query: Option<&str>, name: &str) -> Result<String, AdminError> {
    crate::form::form_value(query.unwrap_or(""), name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AdminError::bad_param(format!("{name} is required")))
}

/// A KMS failure as an admin error (no key material in any).
fn kms_error(err: strata_kms::KmsError) -> AdminError {
    use strata_kms::KmsError;
    let message = err.to_string();
    match err {
        KmsError::KeyNotFound(_) | KmsError::VersionNotFound { .. } => {
            AdminError::new(StatusCode::NOT_FOUND, "NoSuchKey", message)
        }
        KmsError::KeyExists(_) => AdminError::new(StatusCode::CONFLICT, "KeyExists", message),
        KmsError::Unavailable(_) => {
            AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "KMSUnavailable", message)
        }
        KmsError::Unsupported(_) => AdminError::new(StatusCode::NOT_IMPLEMENTED, "NotSupported", message),
        KmsError::Config(_) => AdminError::bad_param(message),
        KmsError::Decrypt => AdminError::internal(),
    }
}

/// An IAM refusal of an account operation as an admin error.
fn account_error(err: strata_iam::IamError) -> AdminError {
    use strata_iam::IamError;
    let message = err.to_string();
    match err {
        IamError::NoSuchAccount { .. } => AdminError::new(StatusCode::NOT_FOUND, "NoSuchAccount", message),
        IamError::AccountNotEmpty { .. } => AdminError::new(StatusCode::CONFLICT, "AccountNotEmpty", message),
        IamError::NameInUse { .. } | IamError::AccessKeyInUse { .. } => {
            AdminError::new(StatusCode::CONFLICT, "AccountExists", message)
        }
        IamError::InvalidArgument { .. }
        | IamError::InvalidAccessKey { .. }
        | IamError::InvalidSecretKey { .. } => AdminError::bad_param(message),
        IamError::Store { .. } => AdminError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "IAM storage is unavailable; try again",
        ),
        other => {
            tracing::error!(error = %other, "account operation failed");
            AdminError::internal()
        }
    }
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<serde_json::Value, AdminError> {
    serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "admin answer not serializable");
        AdminError::internal()
    })
}

/// A JSON answer that proxies and browsers must not cache.
fn json_response(status: StatusCode, value: &serde_json::Value) -> S3Response<Body> {
    // Serializing a `Value` to a Vec cannot fail; the fallback keeps a valid JSON body anyway.
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = S3Response::with_status(Body::from(bytes::Bytes::from(bytes)), status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers
        .insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[async_trait::async_trait]
impl S3Route for AdminRoute {
    fn is_match(
        &self,
        _method: &Method,
        uri: &Uri,
        _headers: &HeaderMap,
        _ext: &mut http::Extensions,
    ) -> bool {
        is_admin_path(uri.path())
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        self.authorize(req)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let result = if crate::tier_admin::is_tier_path(req.uri.path()) {
            crate::tier_admin::handle(self, req).await
        } else {
            self.handle(&req).await
        };
        let resp = match result {
            Ok((status, value)) => json_response(status, &value),
            Err(err) => {
                let value = serde_json::to_value(&err).unwrap_or(serde_json::Value::Null);
                json_response(err.status, &value)
            }
        };
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::path::PathBuf;

    #[test]
    fn routes_resolve_by_method_and_path() {
        assert_eq!(resolve(&Method::POST, HEAL_PATH), Ok(AdminEndpoint::StartHeal));
        assert_eq!(resolve(&Method::GET, HEAL_PATH), Ok(AdminEndpoint::HealStatus));
        assert_eq!(
            resolve(&Method::GET, "/strata/admin/v1/heal/"),
            Ok(AdminEndpoint::HealStatus)
        );
        assert_eq!(resolve(&Method::GET, INFO_PATH), Ok(AdminEndpoint::Info));
        let err = resolve(&Method::DELETE, HEAL_PATH).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
        );
        assert_eq!(resolve(&Method::GET, POOLS_PATH), Ok(AdminEndpoint::Pools));
        assert_eq!(
            resolve(&Method::POST, DECOMMISSION_PATH),
            Ok(AdminEndpoint::Decommission)
        );
        assert!(resolve(&Method::GET, DECOMMISSION_PATH).is_err());
        assert_eq!(parse_pool_query(Some("pool=1")), Ok(1));
        assert!(parse_pool_query(Some("pool=x")).is_err());
        assert!(parse_pool_query(Some("pool=1&pool=2")).is_err());
        assert!(parse_pool_query(None).is_err());
        let err = resolve(&Method::POST, INFO_PATH).unwrap_err();
        assert_eq!(err.status, StatusCode::METHOD_NOT_ALLOWED);
        for path in [
            "/strata/admin/v1/other",
            "/strata/admin/v2/heal",
            "/strata/admin/",
        ] {
            let err = resolve(&Method::GET, path).unwrap_err();
            assert_eq!(
                (err.status, err.code),
                (StatusCode::NOT_FOUND, "NotFound"),
                "{path}"
            );
        }
    }

    #[test]
    fn only_admin_prefix_matches() {
        assert!(is_admin_path("/strata/admin/v1/heal"));
        assert!(is_admin_path("/strata/admin/anything"));
        assert!(!is_admin_path("/strata/admin"));
        assert!(!is_admin_path("/strata/other"));
        assert!(!is_admin_path("/bucket/strata/admin/v1/heal"));
        assert!(!is_admin_path("/health/live"));
    }

    #[test]
    fn heal_query_defaults_and_values() {
        let all = parse_heal_query(None).unwrap();
        assert_eq!(all.scope, HealScope::default());
        assert_eq!(all.opts, HealOptions::default());
        assert_eq!(parse_heal_query(Some("")).unwrap(), all);

        let one = parse_heal_query(Some("bucket=b1&prefix=dir%2Fsub%20x&dry-run=true&deep=false")).unwrap();
        assert_eq!(one.scope.bucket.as_deref(), Some("b1"));
        assert_eq!(one.scope.prefix, "dir/sub x");
        assert!(one.opts.dry_run);
        assert!(!one.opts.deep);

        let deep = parse_heal_query(Some("deep=true&bucket=b2")).unwrap();
        assert!(deep.opts.deep);
        assert!(!deep.opts.dry_run);
        assert_eq!(deep.scope.prefix, "");
    }

    #[test]
    fn heal_query_refusals_are_bad_params() {
        for query in [
            "prefix=a",
            "bucket=",
            "bucket=a&bucket=b",
            "deep=yes",
            "dry-run=1",
            "dry-run",
            "deep=true&deep=true",
            "dryrun=true",
            "bucket=%FF",
        ] {
            let err = parse_heal_query(Some(query)).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(err.code, "InvalidParameter", "{query}");
        }
    }

    #[test]
    fn error_json_shape() {
        let err = AdminError::heal_running();
        let value = serde_json::to_value(&err).unwrap();
        assert_eq!(value["code"], "HealAlreadyRunning");
        assert!(value["message"].as_str().unwrap().contains("already running"));
        assert_eq!(
            value.as_object().unwrap().len(),
            2,
            "only code and message: {value}"
        );
        assert_eq!(err.status, StatusCode::CONFLICT);
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        route: AdminRoute,
        layer: Arc<ObjectLayer>,
    }

    const ROOT: &str = "AKIAADMINROOT";

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
        for d in &drives {
            std::fs::create_dir_all(d).unwrap();
        }
        let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
        Fixture {
            _dir: dir,
            route: AdminRoute::new(Arc::clone(&layer), crate::authz::test_iam(ROOT).await),
            layer,
        }
    }

    fn request(method: Method, uri: &str, access_key: Option<&str>) -> S3Request<Body> {
        S3Request {
            input: Body::empty(),
            method,
            uri: uri.parse().unwrap(),
            headers: HeaderMap::new(),
            extensions: http::Extensions::new(),
            credentials: access_key.map(|k| s3s::auth::Credentials {
                access_key: k.to_owned(),
                secret_key: s3s::auth::SecretKey::from("irrelevant-secret".to_owned()),
            }),
            region: None,
            service: None,
            trailing_headers: None,
        }
    }

    async fn call(route: &AdminRoute, mut req: S3Request<Body>) -> (StatusCode, serde_json::Value) {
        route.check_access(&mut req).await.unwrap();
        let resp = route.call(req).await.unwrap();
        assert_eq!(
            resp.headers.get(http::header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let body = resp.output.collect().await.unwrap().to_bytes();
        (resp.status.unwrap(), serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn access_needs_the_root_user() {
        let f = fixture().await;
        let mut anonymous = request(Method::GET, INFO_PATH, None);
        let err = f.route.check_access(&mut anonymous).await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::AccessDenied);
        let mut other = request(Method::GET, INFO_PATH, Some("SOMEONEELSE"));
        let err = f.route.check_access(&mut other).await.unwrap_err();
        assert_eq!(err.code(), &s3s::S3ErrorCode::AccessDenied);
        let mut root = request(Method::GET, INFO_PATH, Some(ROOT));
        f.route.check_access(&mut root).await.unwrap();
    }

    #[tokio::test]
    async fn info_and_status_shapes() {
        let f = fixture().await;
        let (status, info) = call(&f.route, request(Method::GET, INFO_PATH, Some(ROOT))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["deployment_id"], f.layer.deployment_id().to_string());
        assert_eq!(info["version"], VERSION);
        assert_eq!(info["health"]["write_quorum"], true);
        assert_eq!(info["health"]["read_quorum"], true);
        assert_eq!(info["health"]["drives_online"], 4);
        assert_eq!(info["health"]["drives_total"], 4);
        let drives = info["drives"].as_array().unwrap();
        assert_eq!(drives.len(), 4);
        for key in [
            "endpoint",
            "pool",
            "set",
            "drive",
            "online",
            "healing",
            "io_errors",
        ] {
            assert!(drives[0].get(key).is_some(), "drive lacks {key}: {}", drives[0]);
        }

        let (status, heal) = call(&f.route, request(Method::GET, HEAL_PATH, Some(ROOT))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(heal["sequence"]["state"], "idle");
        assert_eq!(heal["sequence"]["id"], 0);
        assert_eq!(heal["sequence"]["counters"]["shards_healed"], 0);
        assert!(heal["scanner"]["cycles"].is_u64());
        assert_eq!(heal["drives"].as_array().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn heal_starts_runs_and_reports() {
        let f = fixture().await;
        f.layer
            .make_bucket("bkt1", strata_object::MakeBucketOptions::default())
            .await
            .unwrap();
        let (status, started) = call(
            &f.route,
            request(
                Method::POST,
                "/strata/admin/v1/heal?bucket=bkt1&deep=true",
                Some(ROOT),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{started}");
        assert_eq!(started["id"], 1);
        assert_eq!(started["scope"]["bucket"], "bkt1");
        assert_eq!(started["dry_run"], false);
        let mut last = serde_json::Value::Null;
        for _ in 0..200 {
            let (_, heal) = call(&f.route, request(Method::GET, HEAL_PATH, Some(ROOT))).await;
            last = heal["sequence"].clone();
            if last["state"] != "running" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(last["state"], "done", "{last}");
        assert_eq!(last["id"], 1);
    }

    #[tokio::test]
    async fn second_heal_while_running_is_a_conflict() {
        let f = fixture().await;
        // On the current-thread test runtime the spawned sequence cannot run before this task
        // yields, and neither call below waits on anything pending after the first start.
        let (status, first) = call(&f.route, request(Method::POST, HEAL_PATH, Some(ROOT))).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(first["state"], "running");
        let (status, body) = call(&f.route, request(Method::POST, HEAL_PATH, Some(ROOT))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "HealAlreadyRunning");
    }

    #[tokio::test]
    async fn heal_errors_are_json_with_status() {
        let f = fixture().await;
        let cases = [
            (
                "/strata/admin/v1/heal?bucket=nosuchbucket",
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
            ),
            (
                "/strata/admin/v1/heal?prefix=x",
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "/strata/admin/v1/heal?deep=maybe",
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            ("/strata/admin/v1/nothing", StatusCode::NOT_FOUND, "NotFound"),
        ];
        for (uri, want_status, want_code) in cases {
            let (status, body) = call(&f.route, request(Method::POST, uri, Some(ROOT))).await;
            assert_eq!(status, want_status, "{uri}: {body}");
            assert_eq!(body["code"], want_code, "{uri}");
            assert!(body["message"].is_string());
        }
    }
}
