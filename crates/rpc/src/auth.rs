//! Call authentication: the cluster secret, request signatures and their verification.
//!
//! Every request carries `x-strata-date` (Unix seconds), `x-strata-content-sha256` (hex SHA-256
//! of the body, or `STREAMING` for shard writes) and `x-strata-signature`, the hex
//! HMAC-SHA256 under the cluster secret of
//! `"STRATA-RPC-V1\n" + method + "\n" + path_and_query + "\n" + date + "\n" + content_sha256`.
//!
//! **Invariant:** signatures are compared in constant time (`hmac`'s `verify_slice`), and a
//! request whose date is more than [`crate::CLOCK_SKEW_SECS_MAX`] from ours is refused.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::CLOCK_SKEW_SECS_MAX;

type HmacSha256 = Hmac<Sha256>;

/// Header with the request time in Unix seconds.
pub(crate) const DATE_HEADER: &str = "x-strata-date";
/// Header with the hex SHA-256 of the body, or [`STREAMING_PAYLOAD`].
pub(crate) const CONTENT_SHA256_HEADER: &str = "x-strata-content-sha256";
/// Header with the hex HMAC-SHA256 signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-strata-signature";
/// Body hash of a streamed body (shard writes), which is not hashed.
pub(crate) const STREAMING_PAYLOAD: &str = "STREAMING";

/// Label the cluster secret is derived under, so the secret is never the root key itself.
const CLUSTER_SECRET_LABEL: &[u8] = b"strata-cluster-v1";
/// First line of every string to sign (versions the signature scheme).
const SIGNATURE_SCHEME: &str = "STRATA-RPC-V1";
/// Length of a cluster secret.
const CLUSTER_SECRET_BYTES: usize = 32;

/// The secret every node of a deployment shares to authenticate RPC calls.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret([u8; CLUSTER_SECRET_BYTES]);

impl ClusterSecret {
    /// `HMAC-SHA256(root_secret_key, "strata-cluster-v1")`: every node with the same root
    /// credentials derives the same secret, and the RPC key never reveals the root key.
    pub fn derive_from_root_secret(root_secret_key: &str) -> Self {
        ClusterSecret(hmac_sha256(root_secret_key.as_bytes(), CLUSTER_SECRET_LABEL))
    }

    /// A dedicated cluster secret (any length; it is hashed into the key with the same label).
    pub fn from_dedicated_secret(secret: &[u8]) -> Self {
        ClusterSecret(hmac_sha256(secret, CLUSTER_SECRET_LABEL))
    }

    fn mac(&self, method: &str, path_and_query: &str, date_secs: u64, content_sha256: &str) -> HmacSha256 {
        let mut mac = new_mac(&self.0);
        let to_sign =
            format!("{SIGNATURE_SCHEME}\n{method}\n{path_and_query}\n{date_secs}\n{content_sha256}");
        mac.update(to_sign.as_bytes());
        mac
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// The hex signature of a request (what goes into `x-strata-signature`).
pub fn sign_request(
    secret: &ClusterSecret,
    method: &str,
    path_and_query: &str,
    date_secs: u64,
    content_sha256: &str,
) -> String {
    hex::encode(
        secret
            .mac(method, path_and_query, date_secs, content_sha256)
            .finalize()
            .into_bytes(),
    )
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// A header is missing or malformed.
    Malformed(&'static str),
    /// The date is too far from ours.
    Stale { date_secs: u64, now_secs: u64 },
    /// The signature does not match.
    BadSignature,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Malformed(what) => write!(f, "missing or malformed {what}"),
            AuthFailure::Stale { date_secs, now_secs } => write!(
                f,
                "request time {date_secs} is more than {CLOCK_SKEW_SECS_MAX} s from the server's {now_secs}: synchronize the clocks"
            ),
            AuthFailure::BadSignature => {
                f.write_str("bad signature: the nodes do not share the same cluster secret")
            }
        }
    }
}

/// Checks a request's date and signature (the body hash is checked by the caller once it has
/// read the body).
pub(crate) fn verify_request(
    secret: &ClusterSecret,
    method: &str,
    path_and_query: &str,
    headers: &http::HeaderMap,
    now_secs: u64,
) -> Result<(), AuthFailure> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthFailure::Malformed(name))
    };
    let date_secs: u64 = header(DATE_HEADER)?
        .parse()
        .map_err(|_| AuthFailure::Malformed(DATE_HEADER))?;
    if date_secs.abs_diff(now_secs) > CLOCK_SKEW_SECS_MAX {
        return Err(AuthFailure::Stale { date_secs, now_secs });
    }
    let content_sha256 = header(CONTENT_SHA256_HEADER)?;
    let signature =
        hex::decode(header(SIGNATURE_HEADER)?).map_err(|_| AuthFailure::Malformed(SIGNATURE_HEADER))?;
    secret
        .mac(method, path_and_query, date_secs, content_sha256)
        .verify_slice(&signature)
        .map_err(|_| AuthFailure::BadSignature)
}

/// Hex SHA-256 of a body.
pub(crate) fn content_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer keys are hashed, shorter padded), so this
    // constructor cannot fail; the fallback exists only to avoid an unwrap.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => HmacSha256::new(&Default::default()),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; CLUSTER_SECRET_BYTES] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_headers(secret: &ClusterSecret, date_secs: u64) -> http::HeaderMap {
        let hash = content_sha256(b"body");
        let mut headers = http::HeaderMap::new();
        headers.insert(DATE_HEADER, date_secs.to_string().parse().unwrap());
        headers.insert(CONTENT_SHA256_HEADER, hash.parse().unwrap());
        let signature = sign_request(secret, "POST", "/strata/rpc/v1/drive/d/info", date_secs, &hash);
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    #[test]
    fn derivation_is_deterministic_and_labelled() {
        let a = ClusterSecret::derive_from_root_secret("secret");
        assert_eq!(a, ClusterSecret::derive_from_root_secret("secret"));
        assert_ne!(a, ClusterSecret::derive_from_root_secret("other"));
        assert_ne!(a.0.to_vec(), b"secret".to_vec());
        assert_eq!(format!("{a:?}"), "ClusterSecret(..)");
    }

    #[test]
    fn verification_cases() {
        let secret = ClusterSecret::derive_from_root_secret("secret");
        let now = 1_700_000_000;
        let path = "/strata/rpc/v1/drive/d/info";
        let check = |headers: &http::HeaderMap, method: &str, path: &str| {
            verify_request(&secret, method, path, headers, now)
        };
        assert_eq!(check(&signed_headers(&secret, now), "POST", path), Ok(()));
        assert_eq!(
            check(&signed_headers(&secret, now - CLOCK_SKEW_SECS_MAX), "POST", path),
            Ok(())
        );
        assert!(matches!(
            check(
                &signed_headers(&secret, now - CLOCK_SKEW_SECS_MAX - 1),
                "POST",
                path
            ),
            Err(AuthFailure::Stale { .. })
        ));
        assert!(matches!(
            check(
                &signed_headers(&secret, now + CLOCK_SKEW_SECS_MAX + 1),
                "POST",
                path
            ),
            Err(AuthFailure::Stale { .. })
        ));
        let other = ClusterSecret::derive_from_root_secret("other");
        assert_eq!(
            check(&signed_headers(&other, now), "POST", path),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            check(&signed_headers(&secret, now), "GET", path),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            check(
                &signed_headers(&secret, now),
                "POST",
                "/strata/rpc/v1/drive/e/info"
            ),
            Err(AuthFailure::BadSignature)
        );
        let mut tampered = signed_headers(&secret, now);
        tampered.insert(CONTENT_SHA256_HEADER, content_sha256(b"other").parse().unwrap());
        assert_eq!(check(&tampered, "POST", path), Err(AuthFailure::BadSignature));
        let mut missing = signed_headers(&secret, now);
        missing.remove(SIGNATURE_HEADER);
        assert_eq!(
            check(&missing, "POST", path),
            Err(AuthFailure::Malformed(SIGNATURE_HEADER))
        );
    }
}
