//! JSON over HTTPS to a remote KMS (Vault Transit, KES): one pooled client per backend, the
//! system's trust roots plus an optional CA file, an optional client certificate (mutual
//! TLS), and a deadline on every call.
//!
//! Invariant: a KMS that cannot be reached, times out or answers 5xx is
//! [`KmsError::Unavailable`] (the S3 answer is then 503); request bodies (which may hold key
//! material) and secrets in headers never reach an error or a log line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::KmsError;

/// Longest a KMS call may take before it counts as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read.
const ANSWER_BYTES_MAX: usize = 4 * 1024 * 1024;

/// How to reach a remote KMS.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    /// `https://host:port` (`http://` only for tests on loopback).
    pub url: String,
    /// PEM certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key (PEM), for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// A JSON client of one remote KMS.
#[derive(Clone)]
pub(crate) struct JsonClient {
    base: String,
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for JsonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn config_error(what: &str, path: &Path, err: impl std::fmt::Display) -> KmsError {
    KmsError::Config(format!("{what} {}: {err}", path.display()))
}

impl JsonClient {
    pub(crate) fn new(endpoint: &Endpoint) -> Result<JsonClient, KmsError> {
        let url: Uri = endpoint
            .url
            .parse()
            .map_err(|_| KmsError::Config(format!("KMS endpoint {:?} is not a URL", endpoint.url)))?;
        if !matches!(url.scheme_str(), Some("https" | "http")) || url.authority().is_none() {
            return Err(KmsError::Config(format!(
                "KMS endpoint {:?} must be https://HOST[:PORT]",
                endpoint.url
            )));
        }
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = &endpoint.ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| config_error("KMS CA file", path, e))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| config_error("KMS CA file", path, e))?;
            }
        }
        let builder =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| KmsError::Config(e.to_string()))?
                .with_root_certificates(roots);
        let tls = match &endpoint.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| config_error("KMS client certificate", cert, e))?;
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| config_error("KMS client key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| config_error("KMS client certificate", cert, e))?
            }
        };
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(CALL_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(JsonClient {
            base: endpoint.url.trim_end_matches('/').to_owned(),
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
        })
    }

    /// Calls `method path` with `headers` and a JSON body; answers the status and the JSON
    /// answer (`Value::Null` for an empty one). Transport failures, timeouts and 5xx answers
    /// are [`KmsError::Unavailable`].
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &HeaderMap,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), KmsError> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|_| KmsError::Config(format!("KMS path {path:?} does not make a URL")))?;
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = http::Request::builder().method(method).uri(uri);
        if let Some(h) = req.headers_mut() {
            h.extend(headers.clone());
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| KmsError::Config(e.to_string()))?;
        let unavailable = |why: String| KmsError::Unavailable(format!("{}: {why}", self.base));
        let answer = tokio::time::timeout(CALL_TIMEOUT, async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let status = resp.status();
            let limited = http_body_util::Limited::new(resp.into_body(), ANSWER_BYTES_MAX);
            let body = limited
                .collect()
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .to_bytes();
            Ok::<_, KmsError>((status, body))
        })
        .await
        .map_err(|_| unavailable(format!("no answer within {CALL_TIMEOUT:?}")))??;
        let (status, body) = answer;
        if status.is_server_error() {
            return Err(unavailable(format!("answered {status}")));
        }
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .map_err(|_| unavailable(format!("answered {status} with no JSON")))?
        };
        Ok((status, value))
    }
}
