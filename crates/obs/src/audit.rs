//! Audit records and their fan-out: [`AuditRecord`] (one JSON object per S3 or admin request),
//! [`AuditLog`] (serializes a record once and hands it to every target without waiting), and
//! the [`AuditTarget`] trait the file target ([`crate::audit_file`]) and the webhook target
//! ([`crate::webhook`]) implement.
//!
//! Invariants:
//! - [`AuditLog::log`] never blocks and never awaits: each target takes the record with a
//!   non-blocking `try_send` into its bounded queue; a full queue drops the record and counts it.
//! - Records never hold secrets: [`safe_headers`] leaves out `Authorization`, cookies, security
//!   tokens, signatures and SSE-C keys; query strings are never recorded (presigned URLs carry
//!   signatures there), only the `versionId` parameter.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderMap;
use serde::Serialize;

/// Format version of audit records.
pub const AUDIT_RECORD_VERSION: &str = "1";
/// Longest header value recorded, in bytes (longer values are cut).
pub const HEADER_VALUE_BYTES_MAX: usize = 256;

/// One request, as audited.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    /// [`AUDIT_RECORD_VERSION`].
    pub version: String,
    /// When the request arrived, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// Deployment id.
    pub deployment_id: String,
    /// Request id (the `x-amz-request-id` header of the response).
    pub request_id: String,
    /// API name (`GetObject`, `AdminHeal`, ...).
    pub api: String,
    /// Bucket, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Object key, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Version id asked for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// HTTP status.
    pub status_code: u16,
    /// S3 error code, when the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Request body bytes received.
    pub rx_bytes: u64,
    /// Response body bytes sent.
    pub tx_bytes: u64,
    /// Until the first response body byte (or the head, without a body), nanoseconds.
    pub ttfb_ns: u64,
    /// Until the response body ended, nanoseconds.
    pub duration_ns: u64,
    /// Access key the request was signed with (claimed; see `authenticated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The user whose rights the request ran with, when authentication succeeded: `root`, the
    /// user, or the parent user of a service account or an STS session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `Root`, `User`, `ServiceAccount`, `AssumedRole` (an STS session) or `Anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_type: Option<String>,
    /// An STS session's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// Whether the signature was accepted.
    pub authenticated: bool,
    /// Client address.
    pub remote_ip: String,
    /// `User-Agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Request headers, secrets left out.
    pub request_headers: BTreeMap<String, String>,
    /// Response headers, secrets left out.
    pub response_headers: BTreeMap<String, String>,
}

/// Whether a header may be recorded.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization"
            | "proxy-authorization"
            | "cookie"
            | "set-cookie"
            | "x-amz-security-token"
            | "x-amz-signature"
    ) || n.starts_with("x-amz-server-side-encryption-customer-key")
        || n.starts_with("x-amz-copy-source-server-side-encryption-customer-key")
}

/// The headers of `map` that may be recorded, values cut at [`HEADER_VALUE_BYTES_MAX`].
pub fn safe_headers(map: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in map {
        if is_secret_header(name.as_str()) {
            continue;
        }
        let v = String::from_utf8_lossy(value.as_bytes());
        let mut v = v.into_owned();
        if v.len() > HEADER_VALUE_BYTES_MAX {
            let mut cut = HEADER_VALUE_BYTES_MAX;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v.truncate(cut);
        }
        out.entry(name.as_str().to_owned())
            .and_modify(|e: &mut String| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

/// Seconds since the epoch now.
pub(crate) fn unix_secs_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `t` as RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.123Z`).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            d.subsec_millis()
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

/// Delivery counters of one target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetStats {
    /// Target name (`file`, `webhook`).
    pub name: String,
    /// Records delivered.
    pub sent: u64,
    /// Failed delivery attempts (a record retried later is counted once per failed attempt).
    pub failed: u64,
    /// Records lost: queue full, spill full, or shut down before delivery without a spill.
    pub dropped: u64,
    /// Records waiting (queue, memory and spill).
    pub queued: u64,
}

/// A destination of audit records.
pub trait AuditTarget: Send + Sync {
    /// Takes one serialized record (one JSON object, no newline) without blocking; a full
    /// queue drops it and counts it.
    fn enqueue(&self, line: Bytes);
    /// Its counters.
    fn stats(&self) -> TargetStats;
}

/// Every configured target.
#[derive(Default)]
pub struct AuditLog {
    targets: Vec<Box<dyn AuditTarget>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("n_targets", &self.targets.len())
            .finish()
    }
}

impl AuditLog {
    /// Fans out to `targets`.
    pub fn new(targets: Vec<Box<dyn AuditTarget>>) -> AuditLog {
        AuditLog { targets }
    }

    /// Whether there is any target (callers skip building records otherwise).
    pub fn is_enabled(&self) -> bool {
        !self.targets.is_empty()
    }

    /// Hands `record` to every target; never blocks.
    pub fn log(&self, record: &AuditRecord) {
        if self.targets.is_empty() {
            return;
        }
        match serde_json::to_vec(record) {
            Ok(v) => {
                let line = Bytes::from(v);
                for t in &self.targets {
                    t.enqueue(line.clone());
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize an audit record"),
        }
    }

    /// Counters of every target.
    pub fn stats(&self) -> Vec<TargetStats> {
        self.targets.iter().map(|t| t.stats()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_left_out() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AK/x, Signature=ff".parse().unwrap(),
        );
        h.insert("x-amz-security-token", "tok".parse().unwrap());
        h.insert("X-Amz-Signature", "sig".parse().unwrap());
        h.insert("x-amz-server-side-encryption-customer-key", "k".parse().unwrap());
        h.insert(
            "x-amz-server-side-encryption-customer-key-md5",
            "m".parse().unwrap(),
        );
        h.insert(
            "x-amz-copy-source-server-side-encryption-customer-key",
            "k".parse().unwrap(),
        );
        h.insert("cookie", "c".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        h.append("x-amz-meta-a", "1".parse().unwrap());
        h.append("x-amz-meta-a", "2".parse().unwrap());
        h.insert("x-long", "y".repeat(1000).parse().unwrap());
        let s = safe_headers(&h);
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            ["content-type", "x-amz-meta-a", "x-long"]
        );
        assert_eq!(s["x-amz-meta-a"], "1,2");
        assert_eq!(s["x-long"].len(), HEADER_VALUE_BYTES_MAX);
    }

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_714_564_800_123);
        assert_eq!(rfc3339_millis(t), "2024-05-01T12:00:00.123Z");
    }

    struct Collect(std::sync::Mutex<Vec<Bytes>>);
    impl AuditTarget for Collect {
        fn enqueue(&self, line: Bytes) {
            self.0.lock().unwrap().push(line);
        }
        fn stats(&self) -> TargetStats {
            TargetStats::default()
        }
    }

    #[test]
    fn record_json_shape() {
        let r = AuditRecord {
            version: AUDIT_RECORD_VERSION.into(),
            api: "GetObject".into(),
            bucket: Some("b".into()),
            status_code: 404,
            error_code: Some("NoSuchKey".into()),
            ..AuditRecord::default()
        };
        let v: serde_json::Value = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(v["api"], "GetObject");
        assert_eq!(v["status_code"], 404);
        assert_eq!(v["error_code"], "NoSuchKey");
        assert!(v.get("object").is_none());
        let sink = std::sync::Arc::new(Collect(Default::default()));
        struct Fwd(std::sync::Arc<Collect>);
        impl AuditTarget for Fwd {
            fn enqueue(&self, line: Bytes) {
                self.0.enqueue(line)
            }
            fn stats(&self) -> TargetStats {
                TargetStats::default()
            }
        }
        let log = AuditLog::new(vec![Box::new(Fwd(sink.clone())), Box::new(Fwd(sink.clone()))]);
        log.log(&r);
        assert_eq!(sink.0.lock().unwrap().len(), 2);
    }
}
