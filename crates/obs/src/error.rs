//! [`ObsError`], the one error type of this crate.
//!
//! Invariant: no variant carries a secret, a token or a signature.

use std::path::PathBuf;

/// What went wrong in observability setup or token handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObsError {
    /// A scrape token is not three base64url parts of a JSON header and claims.
    #[error("the token is malformed")]
    TokenMalformed,
    /// A scrape token uses an algorithm other than HS512.
    #[error("the token's algorithm is not HS512")]
    TokenAlgorithm,
    /// A scrape token's signature does not verify with the root credentials.
    #[error("the token's signature does not match")]
    TokenSignature,
    /// A scrape token has expired.
    #[error("the token expired at {exp_unix_secs}")]
    TokenExpired {
        /// Expiry, seconds since the epoch.
        exp_unix_secs: u64,
    },
    /// A scrape token was issued for another access key or purpose.
    #[error("the token is not a Prometheus token for this deployment's root user")]
    TokenSubject,
    /// An audit target's directory or file cannot be used.
    #[error("audit target {path}: {source}")]
    AuditIo {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A webhook endpoint is not an `http://` URL.
    #[error("audit webhook endpoint {endpoint:?} is not an http:// URL")]
    WebhookEndpoint {
        /// The configured endpoint.
        endpoint: String,
    },
    /// A metric could not be registered (a duplicate name is a programming error).
    #[error("metrics registry: {0}")]
    Registry(String),
    /// The log filter does not parse.
    #[error("log filter {filter:?} is invalid: {reason}")]
    LogFilter {
        /// The filter given.
        filter: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl From<prometheus::Error> for ObsError {
    fn from(e: prometheus::Error) -> Self {
        ObsError::Registry(e.to_string())
    }
}
