//! The admin API's remote tier endpoints (`strata admin tier ...`):
//!
//! - `GET /strata/admin/v1/tiers`: the tiers, without secrets.
//! - `POST /strata/admin/v1/tiers[?skip-verify=true]`: add one; the body is its configuration
//!   (`strata_tier::TierConfig` JSON) sealed as madmin seals secrets, with the caller's secret
//!   key, so credentials never travel in the clear. The tier is probed first (write, read,
//!   delete an object) unless `skip-verify`.
//! - `PUT /strata/admin/v1/tiers?name=N[&skip-verify=true]`: new credentials (sealed likewise).
//! - `DELETE /strata/admin/v1/tiers?name=N[&force=true]`: refused (409 `TierInUse`) while
//!   versions' data is there, unless forced.
//! - `POST /strata/admin/v1/tiers/verify?name=N`: the probe.
//! - `GET /strata/admin/v1/tiers/stats`: objects and bytes per tier (a walk of every version)
//!   and the remote-delete journal's backlog.
//!
//! Actions: `admin:ListTier` to read, `admin:SetTier` to change (MinIO's names).

use http::{Method, StatusCode};
use s3s::{Body, S3Request};
use strata_tier::{Credentials, TierConfig, TierError, Tiers};

use crate::admin::{AdminError, AdminRoute, parse_bool, required_param, to_json};

/// List (`GET`), add (`POST`), edit (`PUT ?name=`) or remove (`DELETE ?name=`) tiers.
pub const TIERS_PATH: &str = "/strata/admin/v1/tiers";
/// Probe a tier (`POST ?name=`).
pub const TIER_VERIFY_PATH: &str = "/strata/admin/v1/tiers/verify";
/// Objects and bytes per tier (`GET`).
pub const TIER_STATS_PATH: &str = "/strata/admin/v1/tiers/stats";
/// Largest request body (a configuration with a service account key).
const BODY_BYTES_MAX: usize = 64 * 1024;

/// Whether `path` is one of the tier endpoints.
pub(crate) fn is_tier_path(path: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    path == TIERS_PATH || path == TIER_VERIFY_PATH || path == TIER_STATS_PATH
}

/// The admin action a tier endpoint needs; none for other paths.
pub(crate) fn action(method: &Method, path: &str) -> Option<&'static str> {
    is_tier_path(path).then(|| {
        if *method == Method::GET {
            "admin:ListTier"
        } else {
            "admin:SetTier"
        }
    })
}

fn tier_error(err: TierError) -> AdminError {
    let message = err.to_string();
    match err {
        TierError::Invalid(_) => AdminError::bad_param(message),
        TierError::Exists(_) => AdminError::new(StatusCode::CONFLICT, "TierExists", message),
        TierError::NotFound(_) => AdminError::new(StatusCode::NOT_FOUND, "NoSuchTier", message),
        TierError::InUse { .. } => AdminError::new(StatusCode::CONFLICT, "TierInUse", message),
        TierError::Unreachable(_) => AdminError::new(StatusCode::BAD_REQUEST, "TierUnreachable", message),
        TierError::ShuttingDown => {
            AdminError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
        }
        TierError::Store(err) => AdminError::from_object(err, None),
    }
}

fn flag(query: Option<&str>, name: &str) -> Result<bool, AdminError> {
    crate::form::form_value(query.unwrap_or(""), name)
        .map(|v| parse_bool(name, &v))
        .transpose()
        .map(|v| v.unwrap_or(false))
}

/// The request's body, opened with the caller's secret key.
async fn sealed_body<T: serde::de::DeserializeOwned>(
    route: &AdminRoute,
    req: S3Request<Body>,
) -> Result<T, AdminError> {
    let secret = route.caller_secret(&req).ok_or_else(AdminError::internal)?;
    let mut body = req.input;
    let bytes = body
        .store_all_limited(BODY_BYTES_MAX)
        .await
        .map_err(|_| AdminError::bad_param("the request body is missing or too large"))?;
    let plain = crate::madmin_crypto::decrypt(secret.as_bytes(), &bytes)
        .map_err(|_| AdminError::bad_param("the request body is not sealed with the caller's secret key"))?;
    // serde's message may quote the value it refused (a secret): a fixed one instead.
    serde_json::from_slice(&plain).map_err(|_| {
        AdminError::bad_param("the tier description is not valid (see `strata admin tier add --help`)")
    })
}

/// Answers a tier endpoint.
pub(crate) async fn handle(
    route: &AdminRoute,
    req: S3Request<Body>,
) -> Result<(StatusCode, serde_json::Value), AdminError> {
    let tiers: &Tiers = route.tiers.as_deref().ok_or_else(|| {
        AdminError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "remote tiers are not available on this server",
        )
    })?;
    let path = req
        .uri
        .path()
        .strip_suffix('/')
        .unwrap_or(req.uri.path())
        .to_owned();
    let query = req.uri.query().map(str::to_owned);
    let query = query.as_deref();
    let id = crate::service::request_id(&req).map(str::to_owned);
    match (req.method.clone(), path.as_str()) {
        (Method::GET, TIERS_PATH) => Ok((StatusCode::OK, to_json(&tiers.list())?)),
        (Method::POST, TIERS_PATH) => {
            let skip = flag(query, "skip-verify")?;
            let config: TierConfig = sealed_body(route, req).await?;
            let name = config.name.clone();
            tiers.add(config, skip).await.map_err(tier_error)?;
            tracing::info!(request_id = id.as_deref().unwrap_or("-"), tier = %name, "tier added");
            Ok((StatusCode::OK, serde_json::json!({ "added": name })))
        }
        (Method::PUT, TIERS_PATH) => {
            let name = required_param(query, "name")?;
            let skip = flag(query, "skip-verify")?;
            let creds: Credentials = sealed_body(route, req).await?;
            tiers.edit(&name, creds, skip).await.map_err(tier_error)?;
            tracing::info!(request_id = id.as_deref().unwrap_or("-"), tier = %name, "tier credentials changed");
            Ok((StatusCode::OK, serde_json::json!({ "edited": name })))
        }
        (Method::DELETE, TIERS_PATH) => {
            let name = required_param(query, "name")?;
            let force = flag(query, "force")?;
            tiers.remove(&name, force).await.map_err(tier_error)?;
            tracing::info!(request_id = id.as_deref().unwrap_or("-"), tier = %name, force, "tier removed");
            Ok((StatusCode::OK, serde_json::json!({ "removed": name })))
        }
        (Method::POST, TIER_VERIFY_PATH) => {
            let name = required_param(query, "name")?;
            tiers.verify(&name).await.map_err(tier_error)?;
            Ok((StatusCode::OK, serde_json::json!({ "verified": name })))
        }
        (Method::GET, TIER_STATS_PATH) => {
            let usage = tiers.usage().await.map_err(tier_error)?;
            Ok((
                StatusCode::OK,
                serde_json::json!({
                    "tiers": to_json(&usage)?,
                    "journal_backlog": tiers.journal_backlog(),
                }),
            ))
        }
        _ => Err(AdminError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{} is not allowed on {path}", req.method),
        )),
    }
}

/// A tier as madmin describes it (MinIO's `TierConfig` JSON: `Type` `s3`/`minio`/`azure`/
/// `gcs`, and the backend's fields), for MinIO's admin API (`crate::minio_admin`).
pub(crate) fn from_madmin(value: &serde_json::Value) -> Result<TierConfig, String> {
    let text = |obj: &serde_json::Value, field: &str| {
        obj.get(field).and_then(|v| v.as_str()).unwrap_or("").to_owned()
    };
    let name = text(value, "Name");
    let kind = match value.get("Type").and_then(|v| v.as_str()).unwrap_or("") {
        kind @ ("s3" | "minio") => {
            let b = value
                .get(if kind == "s3" { "S3" } else { "MinIO" })
                .ok_or("the tier's backend settings are missing")?;
            let region = text(b, "Region");
            strata_tier::TierKind::S3 {
                endpoint: text(b, "Endpoint"),
                bucket: text(b, "Bucket"),
                prefix: text(b, "Prefix"),
                region: if region.is_empty() {
                    "us-east-1".to_owned()
                } else {
                    region
                },
                access_key: text(b, "AccessKey"),
                secret_key: text(b, "SecretKey"),
            }
        }
        "azure" => {
            let b = value
                .get("Azure")
                .ok_or("the tier's backend settings are missing")?;
            strata_tier::TierKind::Azure {
                endpoint: text(b, "Endpoint"),
                account: text(b, "AccountName"),
                access_key: text(b, "AccountKey"),
                container: text(b, "Bucket"),
                prefix: text(b, "Prefix"),
            }
        }
        "gcs" => {
            let b = value
                .get("GCS")
                .ok_or("the tier's backend settings are missing")?;
            // madmin encodes the key URL-safe; the standard alphabet is accepted too.
            let encoded = text(b, "Creds");
            let creds = base64_simd::URL_SAFE
                .decode_to_vec(&encoded)
                .or_else(|_| base64_simd::STANDARD.decode_to_vec(&encoded))
                .map_err(|_| "Creds is not base64".to_owned())?;
            strata_tier::TierKind::Gcs {
                endpoint: text(b, "Endpoint"),
                bucket: text(b, "Bucket"),
                prefix: text(b, "Prefix"),
                credentials: String::from_utf8(creds).map_err(|_| "Creds is not UTF-8 JSON".to_owned())?,
            }
        }
        other => return Err(format!("tier type {other:?} is not supported")),
    };
    Ok(TierConfig {
        name,
        kind,
        archival: false,
    })
}

/// A tier as madmin lists it, secrets `REDACTED` (as MinIO shows them).
pub(crate) fn to_madmin(info: &strata_tier::TierInfo) -> serde_json::Value {
    let backend = match info.kind.as_str() {
        "azure" => serde_json::json!({ "Azure": {
            "Endpoint": info.endpoint, "AccountName": info.region, "AccountKey": "REDACTED",
            "Bucket": info.bucket, "Prefix": info.prefix,
        }}),
        "gcs" => serde_json::json!({ "GCS": {
            "Endpoint": info.endpoint, "Creds": "REDACTED", "Bucket": info.bucket, "Prefix": info.prefix,
        }}),
        _ => serde_json::json!({ "S3": {
            "Endpoint": info.endpoint, "AccessKey": info.access_key, "SecretKey": "REDACTED",
            "Bucket": info.bucket, "Prefix": info.prefix, "Region": info.region,
        }}),
    };
    let mut out = serde_json::json!({ "Version": "v1", "Type": info.kind, "Name": info.name });
    if let (Some(out), Some(backend)) = (out.as_object_mut(), backend.as_object()) {
        out.extend(backend.clone());
    }
    out
}

/// New credentials as madmin's `TierCreds` gives them (`access`, `secret`, `creds`: a GCS key,
/// base64), for a tier of `kind`.
pub(crate) fn creds_from_madmin(kind: &str, value: &serde_json::Value) -> Result<Credentials, String> {
    let text = |field: &str| value.get(field).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    match kind {
        "azure" => Ok(Credentials::Azure {
            access_key: text("secret"),
        }),
        "gcs" => {
            let creds = base64_simd::STANDARD
                .decode_to_vec(text("creds"))
                .map_err(|_| "creds is not base64".to_owned())?;
            Ok(Credentials::Gcs {
                credentials: String::from_utf8(creds).map_err(|_| "creds is not UTF-8 JSON".to_owned())?,
            })
        }
        _ => Ok(Credentials::S3 {
            access_key: text("access"),
            secret_key: text("secret"),
        }),
    }
}
