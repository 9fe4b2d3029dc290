//! MinIO's admin API for identity and access, under [`MINIO_ADMIN_PREFIX`], so that MinIO's
//! client libraries (madmin-go, minio-py's `MinioAdmin`) and `mc admin user|group|policy|svcacct`
//! work unchanged.
//!
//! Endpoints (method, path below the prefix, what it does, body):
//! - `PUT add-user?accessKey=` (sealed `{"secretKey","status"}`), `DELETE remove-user?accessKey=`,
//!   `GET list-users` (sealed answer), `GET user-info?accessKey=`,
//!   `PUT set-user-status?accessKey=&status=`;
//! - `PUT update-group-members` (`{"group","members","isRemove","status"}`), `GET groups`,
//!   `GET group?group=`, `PUT set-group-status?group=&status=`;
//! - `PUT add-canned-policy?name=` (the document), `DELETE remove-canned-policy?name=`,
//!   `GET list-canned-policies`, `GET info-canned-policy?name=[&v=2]`,
//!   `PUT set-user-or-group-policy?policyName=&userOrGroup=&isGroup=`,
//!   `POST idp/builtin/policy/attach|detach` (sealed `{"policies","user"|"group"}`, sealed
//!   answer), `GET idp/builtin/policy-entities?user=&group=&policy=` (sealed answer);
//! - `PUT add-service-account` (sealed request and answer), `POST update-service-account?accessKey=`
//!   (sealed), `GET list-service-accounts?user=` and `GET info-service-account?accessKey=` (sealed
//!   answers), `DELETE delete-service-account?accessKey=`;
//! - `GET accountinfo`;
//! - `GET kms/status`, `POST kms/key/create?key-id=`, `GET kms/key/status?key-id=` (the default
//!   key when none is named), answered as madmin's `KMSStatus` and `KMSKeyStatus`.
//!
//! "Sealed" is madmin's encrypted body ([`crate::madmin_crypto`]) keyed by the caller's secret
//! key. Every request is authorized by the IAM policy engine with MinIO's `admin:*` action for
//! the endpoint, so a non-root operator can be given exactly the admin rights it needs; a user
//! may always read its own `user-info` and manage its own service accounts (as in MinIO).
//!
//! Invariants: a secret key never appears in a plain (unsealed) answer or in a log line; errors
//! are JSON `{"Code","Message"}` with the status MinIO sends (madmin reads these fields).

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};
use serde_json::{Value, json};
use strata_iam::policy::Context;
use strata_iam::{
    Caller, Entity, Iam, IamError, NewServiceAccount, Secret, ServiceAccountUpdate, Status, authorize_admin,
};

use crate::madmin_crypto;

/// Every path below this belongs to MinIO's admin API, version 3.
pub const MINIO_ADMIN_PREFIX: &str = "/minio/admin/v3/";
/// Largest admin request body read.
const BODY_BYTES_MAX: usize = 1024 * 1024;

/// A refused or failed admin call.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "XMinioAdminInvalidArgument", message)
    }

    fn denied() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", "Access Denied.")
    }
}

impl From<IamError> for ApiError {
    fn from(err: IamError) -> ApiError {
        let message = err.to_string();
        match err {
            IamError::NoSuchUser { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "XMinioAdminNoSuchUser", message)
            }
            IamError::NoSuchGroup { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "XMinioAdminNoSuchGroup", message)
            }
            IamError::NoSuchPolicy { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "XMinioAdminNoSuchPolicy", message)
            }
            IamError::NoSuchServiceAccount { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "XMinioAdminServiceAccountNotFound",
                message,
            ),
            IamError::InvalidAccessKey { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "XMinioAdminInvalidAccessKey", message)
            }
            IamError::InvalidSecretKey { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "XMinioAdminInvalidSecretKey", message)
            }
            IamError::AccessKeyInUse { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "XMinioIAMActionNotAllowed", message)
            }
            IamError::GroupNotEmpty { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "XMinioAdminGroupNotEmpty", message)
            }
            IamError::NoSuchAccount { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "XStrataAdminNoSuchAccount", message)
            }
            IamError::AccountNotEmpty { .. } => {
                ApiError::new(StatusCode::CONFLICT, "XStrataAdminAccountNotEmpty", message)
            }
            IamError::NameInUse { .. } => {
                ApiError::new(StatusCode::CONFLICT, "XMinioAdminEntityAlreadyExists", message)
            }
            IamError::MalformedPolicy(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "XMinioMalformedIAMPolicy", message)
            }
            IamError::InvalidArgument { .. } => ApiError::bad(message),
            IamError::NotAllowed { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "XMinioIAMActionNotAllowed", message)
            }
            IamError::InvalidSessionToken
            | IamError::ExpiredSessionToken
            | IamError::InvalidIdentityToken { .. }
            | IamError::ExpiredIdentityToken
            | IamError::IdentityProvider { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "InvalidToken", message)
            }
            IamError::Store { .. } | IamError::Corrupt { .. } => {
                tracing::error!(error = %err, "IAM storage failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "XMinioServerNotInitialized",
                    "IAM storage is unavailable; try again",
                )
            }
            IamError::Seal { .. } | IamError::SealedWithOtherRoot => {
                tracing::error!(error = %err, "IAM sealing failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            }
        }
    }
}

/// The MinIO admin API route.
#[derive(Debug)]
pub struct MinioAdminRoute {
    iam: Arc<Iam>,
    /// The KMS; none: the `kms/*` endpoints answer that none is configured.
    kms: Option<Arc<dyn strata_kms::Kms>>,
    /// The remote tiers; none: the `tier` endpoints answer that tiers are not available.
    tiers: Option<Arc<strata_tier::Tiers>>,
}

/// A successful answer: status and body bytes (JSON, or sealed JSON).
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    fn empty() -> Answer {
        Answer {
            status: StatusCode::OK,
            body: Vec::new(),
        }
    }

    fn json(value: &Value) -> Answer {
        Answer {
            status: StatusCode::OK,
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }
}

fn query_values(uri: &Uri, name: &str) -> Vec<String> {
    crate::form::form_values(uri.query().unwrap_or(""), name).collect()
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    crate::form::query_value(uri, name)
}

fn required(uri: &Uri, name: &str) -> Result<String, ApiError> {
    query(uri, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad(format!("the query parameter {name} is required")))
}

fn optional(uri: &Uri, name: &str) -> Option<String> {
    query(uri, name).filter(|v| !v.is_empty())
}

/// A tier refusal as MinIO's admin API words it.
fn tier_error(err: strata_tier::TierError) -> ApiError {
    use strata_tier::TierError;
    let message = err.to_string();
    match err {
        TierError::Invalid(_) | TierError::Unreachable(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "XMinioAdminTierBackendInvalid", message)
        }
        TierError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "XMinioAdminTierAlreadyExists", message),
        TierError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "XMinioAdminTierNotFound", message),
        TierError::InUse { .. } => {
            ApiError::new(StatusCode::CONFLICT, "XMinioAdminTierBackendInUse", message)
        }
        TierError::ShuttingDown | TierError::Store(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "XMinioServerNotInitialized",
            message,
        ),
    }
}

/// A KMS failure as MinIO's admin API reports it.
fn kms_error(err: strata_kms::KmsError) -> ApiError {
    use strata_kms::KmsError;
    let message = err.to_string();
    match err {
        KmsError::KeyNotFound(_) | KmsError::VersionNotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "XMinioKMSKeyNotFoundException", message)
        }
        KmsError::KeyExists(_) => ApiError::new(StatusCode::CONFLICT, "XMinioKMSKeyExists", message),
        KmsError::Unavailable(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "XMinioKMSUnavailable", message)
        }
        KmsError::Unsupported(_) => {
            ApiError::new(StatusCode::NOT_IMPLEMENTED, "XMinioKMSNotSupported", message)
        }
        KmsError::Config(_) => ApiError::bad(message),
        KmsError::Decrypt => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "XMinioKMSError", message),
    }
}

fn parse_status(text: &str) -> Result<Status, ApiError> {
    Status::parse(text)
        .ok_or_else(|| ApiError::bad(format!("unknown status {text:?}: use enabled or disabled")))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

fn parse_expiration(value: &Value) -> Result<Option<i64>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() || s.starts_with("1970-01-01") => Ok(None),
        Value::String(s) => time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| Some(t.unix_timestamp()))
            .map_err(|_| ApiError::bad("the expiration must be an RFC 3339 time")),
        _ => Err(ApiError::bad("the expiration must be an RFC 3339 time")),
    }
}

/// A policy given inline in a JSON body: an object (or a string holding one); null or empty
/// means none.
fn inline_policy(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(map)) if map.is_empty() => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(ApiError::bad("the policy must be a JSON object")),
    }
}

impl MinioAdminRoute {
    /// The route over `iam`.
    pub fn new(iam: Arc<Iam>) -> MinioAdminRoute {
        MinioAdminRoute {
            iam,
            kms: None,
            tiers: None,
        }
    }

    /// The same route with the `kms/*` endpoints served by `kms`.
    pub fn with_kms(self, kms: Option<Arc<dyn strata_kms::Kms>>) -> MinioAdminRoute {
        MinioAdminRoute { kms, ..self }
    }

    /// The same routes with the `tier` endpoints served by `tiers`.
    pub fn with_tiers(self, tiers: Option<Arc<strata_tier::Tiers>>) -> MinioAdminRoute {
        MinioAdminRoute { tiers, ..self }
    }

    fn tiers(&self) -> Result<&Arc<strata_tier::Tiers>, ApiError> {
        self.tiers.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "XMinioAdminTierNotSupported",
                "remote tiers are not available on this server",
            )
        })
    }

    fn kms(&self) -> Result<&Arc<dyn strata_kms::Kms>, ApiError> {
        self.kms.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "XMinioKMSNotConfigured",
                "Server side encryption specified but KMS is not configured",
            )
        })
    }

    /// Whether `path` belongs to this route.
    pub(crate) fn is_minio_admin_path(path: &str) -> bool {
        path.starts_with(MINIO_ADMIN_PREFIX)
    }

    fn caller(&self, req: &S3Request<Body>) -> Result<(Caller, Secret), ApiError> {
        let key = req
            .credentials
            .as_ref()
            .map(|c| c.access_key.as_str())
            .ok_or_else(ApiError::denied)?;
        let caller = self.iam.caller(key).ok_or_else(ApiError::denied)?;
        let secret = self.iam.secret_key(key).ok_or_else(ApiError::denied)?;
        Ok((caller, secret))
    }

    fn allowed(&self, req: &S3Request<Body>, caller: &Caller, action: &str) -> bool {
        let decision = crate::authz::admin_decision(req, caller, action);
        if !decision.allowed {
            tracing::debug!(
                access_key = caller.access_key.as_str(),
                action,
                reason = ?decision.reason,
                "admin request denied"
            );
        }
        decision.allowed
    }

    fn require(&self, req: &S3Request<Body>, caller: &Caller, action: &str) -> Result<(), ApiError> {
        if self.allowed(req, caller, action) {
            Ok(())
        } else {
            Err(ApiError::denied())
        }
    }

    async fn dispatch(&self, req: S3Request<Body>) -> Result<Answer, ApiError> {
        if !self.iam.is_loaded() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "XMinioServerNotInitialized",
                "IAM records are not loaded yet; try again",
            ));
        }
        let (caller, secret) = self.caller(&req)?;
        crate::authz::note_principal(&req.extensions, &caller);
        let path = req
            .uri
            .path()
            .strip_prefix(MINIO_ADMIN_PREFIX)
            .unwrap_or_default();
        let path = path.strip_suffix('/').unwrap_or(path).to_owned();
        let method = req.method.clone();
        let uri = req.uri.clone();
        let seal = |value: &Value| {
            let plain = serde_json::to_vec(value).unwrap_or_default();
            seal_answer(secret.clone(), plain)
        };
        match (method, path.as_str()) {
            (Method::PUT, "add-user") => {
                self.require(&req, &caller, "admin:CreateUser")?;
                let name = required(&uri, "accessKey")?;
                let body: Value = self.sealed_json(req, &secret).await?;
                let secret_key = body
                    .get("secretKey")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad("secretKey is required"))?;
                self.iam
                    .add_user(&caller.account_id, &name, &Secret::new(secret_key.to_owned()))
                    .await?;
                if let Some(status) = body
                    .get("status")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    self.iam
                        .set_user_status(&caller.account_id, &name, parse_status(status)?)
                        .await?;
                }
                Ok(Answer::empty())
            }
            (Method::DELETE, "remove-user") => {
                self.require(&req, &caller, "admin:DeleteUser")?;
                self.iam
                    .remove_user(&caller.account_id, &required(&uri, "accessKey")?)
                    .await?;
                Ok(Answer::empty())
            }
            (Method::GET, "list-users") => {
                self.require(&req, &caller, "admin:ListUsers")?;
                let mut users = serde_json::Map::new();
                for user in self.iam.list_users(&caller.account_id) {
                    users.insert(user.name.clone(), user_json(&user));
                }
                seal(&Value::Object(users)).await
            }
            (Method::GET, "user-info") => {
                let name = required(&uri, "accessKey")?;
                if caller.user == name && caller.kind == strata_iam::PrincipalKind::User {
                    self.not_denied(&caller, "admin:GetUser")?;
                } else {
                    self.require(&req, &caller, "admin:GetUser")?;
                }
                Ok(Answer::json(&user_json(
                    &self.iam.user_info(&caller.account_id, &name)?,
                )))
            }
            (Method::PUT, "set-user-status") => {
                let status = parse_status(&required(&uri, "status")?)?;
                let action = match status {
                    Status::Enabled => "admin:EnableUser",
                    Status::Disabled => "admin:DisableUser",
                };
                self.require(&req, &caller, action)?;
                self.iam
                    .set_user_status(&caller.account_id, &required(&uri, "accessKey")?, status)
                    .await?;
                Ok(Answer::empty())
            }
            (Method::PUT, "update-group-members") => {
                let body: Value = self.plain_json(req).await?;
                let group = body
                    .get("group")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ApiError::bad("group is required"))?
                    .to_owned();
                let remove = body.get("isRemove").and_then(Value::as_bool).unwrap_or(false);
                self.require_plain(
                    &caller,
                    if remove {
                        "admin:RemoveUserFromGroup"
                    } else {
                        "admin:AddUserToGroup"
                    },
                )?;
                let members = string_list(body.get("members"));
                // A status in the body is a status change: it needs its own action, checked
                // before anything changes.
                let status = body
                    .get("groupStatus")
                    .or_else(|| body.get("status"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty() && !remove)
                    .map(parse_status)
                    .transpose()?;
                if let Some(status) = status {
                    self.require_plain(&caller, group_status_action(status))?;
                }
                self.iam
                    .update_group_members(&caller.account_id, &group, &members, remove)
                    .await?;
                if let Some(status) = status
                    && self.iam.group_info(&caller.account_id, &group)?.status != status
                {
                    self.iam
                        .set_group_status(&caller.account_id, &group, status)
                        .await?;
                }
                Ok(Answer::empty())
            }
            (Method::GET, "groups") => {
                self.require(&req, &caller, "admin:ListGroups")?;
                Ok(Answer::json(&json!(self.iam.list_groups(&caller.account_id))))
            }
            (Method::GET, "group") => {
                self.require(&req, &caller, "admin:GetGroup")?;
                let info = self
                    .iam
                    .group_info(&caller.account_id, &required(&uri, "group")?)?;
                Ok(Answer::json(&json!({
                    "name": info.name,
                    "status": info.status.as_str(),
                    "members": info.members,
                    "policy": info.policies.join(","),
                    "updatedAt": rfc3339(info.updated_unix),
                })))
            }
            (Method::PUT, "set-group-status") => {
                let status = parse_status(&required(&uri, "status")?)?;
                self.require(&req, &caller, group_status_action(status))?;
                self.iam
                    .set_group_status(&caller.account_id, &required(&uri, "group")?, status)
                    .await?;
                Ok(Answer::empty())
            }
            (Method::PUT | Method::POST, "add-canned-policy") => {
                self.require(&req, &caller, "admin:CreatePolicy")?;
                let name = required(&uri, "name")?;
                let body = read_body(req).await?;
                let document =
                    String::from_utf8(body).map_err(|_| ApiError::bad("the policy document is not UTF-8"))?;
                self.iam.add_policy(&caller.account_id, &name, &document).await?;
                Ok(Answer::empty())
            }
            (Method::DELETE, "remove-canned-policy") => {
                self.require(&req, &caller, "admin:DeletePolicy")?;
                self.iam
                    .remove_policy(&caller.account_id, &required(&uri, "name")?)
                    .await?;
                Ok(Answer::empty())
            }
            (Method::GET, "list-canned-policies") => {
                self.require(&req, &caller, "admin:ListUserPolicies")?;
                let mut map = serde_json::Map::new();
                for p in self.iam.list_policies(&caller.account_id) {
                    let doc: Value =
                        serde_json::from_str(&p.document).unwrap_or(Value::String(p.document.clone()));
                    map.insert(p.name, doc);
                }
                Ok(Answer::json(&Value::Object(map)))
            }
            (Method::GET, "info-canned-policy") => {
                self.require(&req, &caller, "admin:GetPolicy")?;
                let info = self
                    .iam
                    .policy_info(&caller.account_id, &required(&uri, "name")?)?;
                let doc: Value = serde_json::from_str(&info.document).unwrap_or(Value::Null);
                if query(&uri, "v").as_deref() == Some("2") {
                    Ok(Answer::json(&json!({
                        "PolicyName": info.name,
                        "Policy": doc,
                        "CreateDate": rfc3339(info.created_unix),
                        "UpdateDate": rfc3339(info.updated_unix),
                    })))
                } else {
                    Ok(Answer::json(&doc))
                }
            }
            (Method::PUT, "set-user-or-group-policy") => {
                self.require(&req, &caller, "admin:AttachUserOrGroupPolicy")?;
                let names: Vec<String> = query(&uri, "policyName")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let who = required(&uri, "userOrGroup")?;
                let entity = if query(&uri, "isGroup").as_deref() == Some("true") {
                    Entity::Group(who)
                } else {
                    Entity::User(who)
                };
                self.iam.set_policies(&caller.account_id, &entity, &names).await?;
                Ok(Answer::empty())
            }
            (
                Method::POST,
                op @ ("idp/builtin/policy/attach"
                | "idp/builtin/policy/detach"
                | "idp/ldap/policy/attach"
                | "idp/ldap/policy/detach"),
            ) => {
                self.require(&req, &caller, "admin:AttachUserOrGroupPolicy")?;
                let detach = op.ends_with("detach");
                let body: Value = self.sealed_json(req, &secret).await?;
                let policies = string_list(body.get("policies"));
                let entity = entity_of(&body)?;
                let changed = if op.starts_with("idp/ldap/") {
                    // The directory's DNs are the deployment's: other accounts cannot map them.
                    if caller.tenant {
                        return Err(ApiError::denied());
                    }
                    self.iam.attach_ldap_policies(&entity, &policies, detach).await?
                } else {
                    self.iam
                        .attach_policies(&caller.account_id, &entity, &policies, detach)
                        .await?;
                    policies
                };
                let key = if detach {
                    "policiesDetached"
                } else {
                    "policiesAttached"
                };
                seal(&json!({ key: changed, "updatedAt": rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()) })).await
            }
            (Method::GET, "idp/builtin/policy-entities") => {
                self.require(&req, &caller, "admin:ListUserPolicies")?;
                seal(&self.policy_entities(&caller, &uri)).await
            }
            (Method::PUT, "add-service-account") => {
                let body: Value = self.sealed_json(req, &secret).await?;
                let target = body
                    .get("targetUser")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map_or_else(|| caller.user.clone(), str::to_owned);
                self.may_manage_service_accounts_of(&caller, &target, "admin:CreateServiceAccount")?;
                let expiry = parse_expiration(body.get("expiration").unwrap_or(&Value::Null))?;
                let new = NewServiceAccount {
                    parent: target,
                    access_key: body
                        .get("accessKey")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                    secret_key: body
                        .get("secretKey")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(|s| Secret::new(s.to_owned())),
                    policy: inline_policy(body.get("policy"))?,
                    expiry_unix: expiry,
                    name: body
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    description: body
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                };
                let (access_key, new_secret) = self.iam.add_service_account(&caller.account_id, new).await?;
                if let Some(status) = body
                    .get("status")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    && parse_status(status)? == Status::Disabled
                {
                    let update = ServiceAccountUpdate {
                        status: Some(Status::Disabled),
                        ..ServiceAccountUpdate::default()
                    };
                    self.iam
                        .update_service_account(&caller.account_id, &access_key, update)
                        .await?;
                }
                seal(&json!({
                    "credentials": {
                        "accessKey": access_key,
                        "secretKey": new_secret.expose(),
                        "expiration": expiry.map(rfc3339).unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned()),
                    }
                })).await
            }
            (Method::POST, "update-service-account") => {
                let access_key = required(&uri, "accessKey")?;
                self.require_own_or(&caller, &access_key, "admin:UpdateServiceAccount")?;
                let body: Value = self.sealed_json(req, &secret).await?;
                let update = ServiceAccountUpdate {
                    secret_key: body
                        .get("newSecretKey")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(|s| Secret::new(s.to_owned())),
                    policy: match body.get("newPolicy") {
                        None => None,
                        Some(v) => Some(inline_policy(Some(v))?),
                    },
                    status: body
                        .get("newStatus")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(parse_status)
                        .transpose()?,
                    expiry_unix: match body.get("newExpiration") {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(parse_expiration(v)?),
                    },
                    name: body.get("newName").and_then(Value::as_str).map(str::to_owned),
                    description: body
                        .get("newDescription")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                };
                self.iam
                    .update_service_account(&caller.account_id, &access_key, update)
                    .await?;
                Ok(Answer {
                    status: StatusCode::NO_CONTENT,
                    body: Vec::new(),
                })
            }
            (Method::GET, "list-service-accounts") => {
                let user = query(&uri, "user")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| caller.user.clone());
                self.may_manage_service_accounts_of(&caller, &user, "admin:ListServiceAccounts")?;
                let accounts: Vec<Value> = self
                    .iam
                    .list_service_accounts(&caller.account_id, &user)
                    .into_iter()
                    .map(|s| {
                        json!({
                            "parentUser": s.parent,
                            "accountStatus": if s.status == Status::Enabled { "on" } else { "off" },
                            "impliedPolicy": s.policy.is_none(),
                            "accessKey": s.access_key,
                            "name": s.name,
                            "description": s.description,
                            "expiration": s.expiry_unix.map(rfc3339),
                        })
                    })
                    .collect();
                seal(&json!({ "accounts": accounts })).await
            }
            (Method::GET, "info-service-account") => {
                let access_key = required(&uri, "accessKey")?;
                self.require_own_or(&caller, &access_key, "admin:ListServiceAccounts")?;
                let s = self.iam.service_account_info(&caller.account_id, &access_key)?;
                seal(&json!({
                    "parentUser": s.parent,
                    "accountStatus": if s.status == Status::Enabled { "on" } else { "off" },
                    "impliedPolicy": s.policy.is_none(),
                    "policy": s.policy.unwrap_or_default(),
                    "name": s.name,
                    "description": s.description,
                    "expiration": s.expiry_unix.map(rfc3339),
                }))
                .await
            }
            (Method::DELETE, "delete-service-account") => {
                let access_key = required(&uri, "accessKey")?;
                self.require_own_or(&caller, &access_key, "admin:RemoveServiceAccount")?;
                self.iam
                    .remove_service_account(&caller.account_id, &access_key)
                    .await?;
                Ok(Answer {
                    status: StatusCode::NO_CONTENT,
                    body: Vec::new(),
                })
            }
            (Method::GET, "kms/status") => {
                self.require(&req, &caller, "admin:KMSKeyStatus")?;
                let kms = self.kms()?;
                Ok(Answer::json(&json!({
                    "name": kms.backend(),
                    "default-key-id": kms.default_key(),
                    "endpoints": { kms.backend(): "online" },
                })))
            }
            (Method::POST, "kms/key/create") => {
                self.require(&req, &caller, "admin:KMSCreateKey")?;
                let name = required(&uri, "key-id")?;
                self.kms()?.create_key(&name).await.map_err(kms_error)?;
                Ok(Answer::empty())
            }
            (Method::GET, "kms/key/status") => {
                self.require(&req, &caller, "admin:KMSKeyStatus")?;
                let kms = self.kms()?;
                let name = optional(&uri, "key-id").unwrap_or_else(|| kms.default_key().to_owned());
                kms.key_info(&name).await.map_err(kms_error)?;
                let check = crate::encryption::key_check(kms.as_ref(), &name).await;
                let mut answer = json!({ "key-id": name });
                if !check.encryption_error.is_empty() {
                    answer["encryption-error"] = json!(check.encryption_error);
                }
                if !check.decryption_error.is_empty() {
                    answer["decryption-error"] = json!(check.decryption_error);
                }
                Ok(Answer::json(&answer))
            }
            (Method::PUT, "tier") => {
                self.require(&req, &caller, "admin:SetTier")?;
                let body: Value = self.sealed_json(req, &secret).await?;
                let config = crate::tier_admin::from_madmin(&body).map_err(ApiError::bad)?;
                self.tiers()?.add(config, false).await.map_err(tier_error)?;
                Ok(Answer {
                    status: StatusCode::NO_CONTENT,
                    body: Vec::new(),
                })
            }
            (Method::GET, "tier") => {
                self.require(&req, &caller, "admin:ListTier")?;
                let tiers: Vec<Value> = self
                    .tiers()?
                    .list()
                    .iter()
                    .map(crate::tier_admin::to_madmin)
                    .collect();
                Ok(Answer::json(&json!(tiers)))
            }
            (Method::GET, "tier-stats") => {
                self.require(&req, &caller, "admin:ListTier")?;
                let tiers = self.tiers()?;
                let usage = tiers.usage().await.map_err(tier_error)?;
                let kinds: std::collections::BTreeMap<String, String> =
                    tiers.list().into_iter().map(|t| (t.name, t.kind)).collect();
                let stats: Vec<Value> = usage
                    .iter()
                    .map(|(name, u)| {
                        json!({
                            "Name": name,
                            "Type": kinds.get(name).cloned().unwrap_or_default(),
                            "Stats": { "TotalSize": u.bytes, "NumVersions": u.objects, "NumObjects": u.objects },
                        })
                    })
                    .collect();
                Ok(Answer::json(&json!(stats)))
            }
            (method, tier_path) if tier_path.starts_with("tier/") => {
                let name = tier_path.trim_start_matches("tier/").to_owned();
                let tiers = self.tiers()?;
                match method {
                    Method::POST => {
                        self.require(&req, &caller, "admin:SetTier")?;
                        let kind = tiers
                            .list()
                            .into_iter()
                            .find(|t| t.name == name)
                            .map(|t| t.kind)
                            .ok_or_else(|| tier_error(strata_tier::TierError::NotFound(name.clone())))?;
                        let body: Value = self.sealed_json(req, &secret).await?;
                        let creds =
                            crate::tier_admin::creds_from_madmin(&kind, &body).map_err(ApiError::bad)?;
                        tiers.edit(&name, creds, false).await.map_err(tier_error)?;
                    }
                    Method::DELETE => {
                        self.require(&req, &caller, "admin:SetTier")?;
                        let force = query(&uri, "force").is_some_and(|v| v == "true");
                        tiers.remove(&name, force).await.map_err(tier_error)?;
                    }
                    Method::GET => {
                        self.require(&req, &caller, "admin:ListTier")?;
                        // madmin's VerifyTier expects 204.
                        tiers.verify(&name).await.map_err(tier_error)?;
                    }
                    _ => {
                        return Err(ApiError::new(
                            StatusCode::METHOD_NOT_ALLOWED,
                            "MethodNotAllowed",
                            "method not allowed",
                        ));
                    }
                }
                Ok(Answer {
                    status: StatusCode::NO_CONTENT,
                    body: Vec::new(),
                })
            }
            (Method::GET, "accountinfo") => {
                let policies: Vec<&str> = caller.policies.iter().map(|(n, _)| n.as_str()).collect();
                Ok(Answer::json(&json!({
                    "AccountName": caller.user,
                    "AccountId": caller.account_id,
                    "Policy": { "policies": policies, "root": caller.is_root() },
                    "Buckets": [],
                })))
            }
            (method, other) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "XMinioAdminNotImplemented",
                format!("{method} {MINIO_ADMIN_PREFIX}{other} is not implemented"),
            )),
        }
    }

    /// Authorization without request-specific condition keys (the body was consumed).
    fn require_plain(&self, caller: &Caller, action: &str) -> Result<(), ApiError> {
        if authorize_admin(caller, action, Context::new()).allowed {
            Ok(())
        } else {
            Err(ApiError::denied())
        }
    }

    /// A caller may manage its own service accounts; others need `action`.
    fn require_own_or(&self, caller: &Caller, access_key: &str, action: &str) -> Result<(), ApiError> {
        let parent = self
            .iam
            .service_account_info(&caller.account_id, access_key)?
            .parent;
        self.may_manage_service_accounts_of(caller, &parent, action)
    }

    /// Who may manage the service accounts of `parent`: root; a user its own, unless a policy
    /// denies `action`; anyone else only with `action` allowed. A service account never may (it
    /// could create a sibling without its embedded policy, or strip its own), and only root
    /// may touch root's (they carry root's rights).
    fn may_manage_service_accounts_of(
        &self,
        caller: &Caller,
        parent: &str,
        action: &str,
    ) -> Result<(), ApiError> {
        if caller.kind == strata_iam::PrincipalKind::Root {
            return Ok(());
        }
        if caller.kind == strata_iam::PrincipalKind::ServiceAccount || parent == self.iam.root_access_key() {
            return Err(ApiError::denied());
        }
        if self.iam.is_account_root(parent) {
            // An account root's service accounts carry its whole account's rights: only that
            // root manages them (or the deployment's root, above).
            return if caller.kind == strata_iam::PrincipalKind::AccountRoot && caller.access_key == parent {
                Ok(())
            } else {
                Err(ApiError::denied())
            };
        }
        if caller.kind == strata_iam::PrincipalKind::AccountRoot {
            // Its own account's, which is all the IAM calls let it see.
            return Ok(());
        }
        if caller.kind == strata_iam::PrincipalKind::User && caller.user == parent {
            return self.not_denied(caller, action);
        }
        self.require_plain(caller, action)
    }

    /// Refuses only an explicit Deny of `action` (what a user may do for itself by default).
    fn not_denied(&self, caller: &Caller, action: &str) -> Result<(), ApiError> {
        let decision = authorize_admin(caller, action, Context::new());
        if matches!(decision.reason, strata_iam::Reason::Denied { .. }) {
            Err(ApiError::denied())
        } else {
            Ok(())
        }
    }

    fn policy_entities(&self, caller: &Caller, uri: &Uri) -> Value {
        let users = query_values(uri, "user");
        let groups = query_values(uri, "group");
        let policies = query_values(uri, "policy");
        let all = self.iam.policy_entities(&caller.account_id, &[]);
        let user_mappings: Vec<Value> = users
            .iter()
            .map(|u| {
                let names: Vec<&String> = all
                    .iter()
                    .filter(|(_, us, _)| us.contains(u))
                    .map(|(p, _, _)| p)
                    .collect();
                json!({ "user": u, "policies": names })
            })
            .collect();
        let group_mappings: Vec<Value> = groups
            .iter()
            .map(|g| {
                let names: Vec<&String> = all
                    .iter()
                    .filter(|(_, _, gs)| gs.contains(g))
                    .map(|(p, _, _)| p)
                    .collect();
                json!({ "group": g, "policies": names })
            })
            .collect();
        let policy_mappings: Vec<Value> = all
            .iter()
            .filter(|(p, us, gs)| {
                (policies.is_empty()
                    && users.is_empty()
                    && groups.is_empty()
                    && (!us.is_empty() || !gs.is_empty()))
                    || policies.contains(p)
            })
            .map(|(p, us, gs)| json!({ "policy": p, "users": us, "groups": gs }))
            .collect();
        json!({
            "timestamp": rfc3339(time::OffsetDateTime::now_utc().unix_timestamp()),
            "userMappings": user_mappings,
            "groupMappings": group_mappings,
            "policyMappings": policy_mappings,
        })
    }

    async fn sealed_json(&self, req: S3Request<Body>, secret: &Secret) -> Result<Value, ApiError> {
        let sealed = read_body(req).await?;
        let secret = secret.clone();
        // Argon2id with 64 MiB: off the async workers.
        let plain =
            tokio::task::spawn_blocking(move || madmin_crypto::decrypt(secret.expose().as_bytes(), &sealed))
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalError",
                        "decryption task failed",
                    )
                })?
                .map_err(|_| {
                    ApiError::bad("the request body does not decrypt with the caller's secret key")
                })?;
        serde_json::from_slice(&plain).map_err(|_| ApiError::bad("the request body is not JSON"))
    }

    async fn plain_json(&self, req: S3Request<Body>) -> Result<Value, ApiError> {
        let body = read_body(req).await?;
        serde_json::from_slice(&body).map_err(|_| ApiError::bad("the request body is not JSON"))
    }
}

/// Seals an answer for the caller (Argon2id with 64 MiB: off the async workers).
async fn seal_answer(secret: Secret, plain: Vec<u8>) -> Result<Answer, ApiError> {
    let sealed =
        tokio::task::spawn_blocking(move || madmin_crypto::encrypt(secret.expose().as_bytes(), &plain))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "sealing task failed",
                )
            })?;
    match sealed {
        Ok(body) => Ok(Answer {
            status: StatusCode::OK,
            body,
        }),
        Err(e) => {
            tracing::error!(error = %e, "sealing an admin answer failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "sealing the answer failed",
            ))
        }
    }
}

/// The user or group (a name, or an LDAP DN) an attach/detach body names: exactly one.
fn entity_of(body: &Value) -> Result<Entity, ApiError> {
    let field = |name: &str| body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    match (field("user"), field("group")) {
        (Some(u), None) => Ok(Entity::User(u.to_owned())),
        (None, Some(g)) => Ok(Entity::Group(g.to_owned())),
        _ => Err(ApiError::bad("name exactly one of user or group")),
    }
}

fn group_status_action(status: Status) -> &'static str {
    match status {
        Status::Enabled => "admin:EnableGroup",
        Status::Disabled => "admin:DisableGroup",
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn user_json(user: &strata_iam::UserInfo) -> Value {
    json!({
        "policyName": user.policies.join(","),
        "status": user.status.as_str(),
        "memberOf": user.member_of,
        "updatedAt": rfc3339(user.updated_unix),
    })
}

async fn read_body(req: S3Request<Body>) -> Result<Vec<u8>, ApiError> {
    let limited = http_body_util::Limited::new(req.input, BODY_BYTES_MAX);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(_) => Err(ApiError::bad(
            "the request body could not be read (at most 1 MiB)",
        )),
    }
}

fn error_response(err: &ApiError) -> S3Response<Body> {
    let body = json!({ "Code": err.code, "Message": err.message, "Resource": "", "RequestId": "" });
    let mut resp = S3Response::with_status(Body::from(body.to_string()), err.status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[async_trait::async_trait]
impl S3Route for MinioAdminRoute {
    fn is_match(
        &self,
        _method: &Method,
        uri: &Uri,
        _headers: &HeaderMap,
        _ext: &mut http::Extensions,
    ) -> bool {
        MinioAdminRoute::is_minio_admin_path(uri.path())
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        if req.credentials.is_none() {
            return Err(s3s::s3_error!(AccessDenied, "Admin requests must be signed"));
        }
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let resp = match self.dispatch(req).await {
            Ok(answer) => {
                let mut resp = S3Response::with_status(Body::from(answer.body), answer.status);
                resp.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }
            Err(err) => error_response(&err),
        };
        Ok(resp)
    }
}
