//! A small signed HTTP client for Strata's S3 API and admin API: AWS Signature V4 header
//! signing, pooled keep-alive HTTP/1.1 connections, and the handful of S3 operations that the
//! load generator (`strata-bench`) and admin tooling need.
//!
//! Main types:
//! - [`Client`] (built from a [`ClientConfig`]) sends signed requests: [`Client::send`] for any
//!   request, plus `put_object`, `get_object` (streams and counts the body), `head_object`,
//!   `delete_object`, `list_objects_v2`, multipart create/upload-part/complete/abort,
//!   `create_bucket`, `delete_bucket`, and [`Client::admin_json`].
//! - [`sigv4::Signer`] computes signatures; it is public so tests and tools can sign requests
//!   made by other means.
//! - [`ClientError`] is the single error type.
//!
//! **Architecture invariant:** this crate depends on no other Strata crate: it speaks only the
//! wire protocol, so what it exercises is what any S3 client would.
//!
//! **Architecture invariant:** bulk bodies are never hashed (`UNSIGNED-PAYLOAD`); signing costs
//! a few HMACs per request, with the signing key derived once per day.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_client::ClientError> {
//! use strata_client::{Client, ClientConfig};
//! let config = ClientConfig::new("http://127.0.0.1:9000".parse().unwrap(), "access", "secret");
//! let client = Client::new(config)?;
//! client.create_bucket("demo").await?;
//! client.put_object("demo", "hello.txt", bytes::Bytes::from_static(b"hi")).await?;
//! let (_status, size_bytes) = client.get_object("demo", "hello.txt").await?;
//! assert_eq!(size_bytes, 2);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
pub mod sigv4;
pub mod xml;

pub use client::{
    Body, CONNECT_TIMEOUT_DEFAULT, Client, ClientConfig, CompletedPart, PARTS_COUNT_MAX,
    POOL_IDLE_CONNECTIONS_DEFAULT, REQUEST_TIMEOUT_DEFAULT, RESPONSE_BODY_BYTES_MAX,
};
pub use http::{HeaderMap, Method, StatusCode, Uri};
pub use sigv4::PayloadHash;
pub use xml::ListPage;

/// Everything that can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The trust roots for `https://` could not be loaded.
    #[error("TLS trust roots unusable: {reason}")]
    TlsRoots {
        /// What failed (the file and the parse error, or no roots at all).
        reason: String,
    },
    /// The endpoint is not an `http(s)://host[:port]` root.
    #[error("endpoint {endpoint} is not usable: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A header value (or the signature built from it) is not a valid HTTP header value.
    #[error("header {name} has a value that cannot be sent")]
    InvalidHeaderValue {
        /// The header.
        name: &'static str,
    },
    /// The request could not be assembled (bad URI from path or query).
    #[error("request could not be built: {0}")]
    InvalidRequest(#[source] http::Error),
    /// Connecting or exchanging the request failed before a response head arrived.
    #[error("request failed before a response: {}", error_chain(.0))]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// The response body broke off.
    #[error("reading the response body failed: {}", error_chain(.0))]
    BodyRead(#[source] hyper::Error),
    /// No response head, or no next body frame, within the request timeout.
    #[error("no answer within {timeout_ms} ms")]
    Timeout {
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The server answered with a non-2xx status (or an `<Error>` inside a 200).
    #[error("{operation}: server answered {status} {code}: {message}")]
    UnexpectedStatus {
        /// S3 operation (or `admin`).
        operation: &'static str,
        /// HTTP status.
        status: StatusCode,
        /// S3 error code from the body (empty if none).
        code: String,
        /// S3 error message, or the start of the body.
        message: String,
    },
    /// A response body read whole was larger than allowed.
    #[error("response body exceeds {limit_bytes} bytes")]
    ResponseTooLarge {
        /// The limit.
        limit_bytes: u64,
    },
    /// A streamed object body ended before its announced length.
    #[error("body ended after {received_bytes} of {expected_bytes} bytes")]
    ShortBody {
        /// `content-length`.
        expected_bytes: u64,
        /// Bytes received.
        received_bytes: u64,
    },
    /// A header the operation must return is missing or unreadable.
    #[error("{operation}: response has no usable {name} header")]
    MissingHeader {
        /// S3 operation.
        operation: &'static str,
        /// The header.
        name: &'static str,
    },
    /// An XML answer lacks what the operation must return.
    #[error("malformed XML answer: {what}")]
    MalformedXml {
        /// What was wrong.
        what: &'static str,
    },
    /// A body that must be text is not UTF-8.
    #[error("response body is not UTF-8")]
    NotUtf8,
    /// An admin body could not be encoded, or its answer is not JSON.
    #[error("admin JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// CompleteMultipartUpload needs 1 to [`PARTS_COUNT_MAX`] parts.
    #[error("a multipart upload needs 1 to {PARTS_COUNT_MAX} parts, got {n_parts}")]
    PartsCountOutOfRange {
        /// Parts given.
        n_parts: usize,
    },
}

impl ClientError {
    /// The HTTP status, when the server answered with an error status.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::UnexpectedStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server said the bucket, key or upload does not exist (404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

/// `err: source: source…`, so terse top-level messages keep their cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
