//! The per-request path: [`Observability::begin`] when a request arrives, a counting wrapper
//! around the request body, and [`RequestObservation::finish`], which wraps the response body
//! so that when it ends (or the client goes away) the request is counted in the metrics and
//! one audit record is logged. Also the metrics endpoints ([`Observability::metrics_endpoint`]).
//!
//! Invariants: nothing here waits on a target (audit is `try_send`); each request produces
//! exactly one metrics observation and at most one audit record, even if its body is dropped
//! early; no secret reaches a record (see [`crate::audit::safe_headers`]).

use crate::error::ObsError;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Buf;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use strata_object::ObjectLayer;

use crate::audit::{
    AUDIT_RECORD_VERSION, AuditLog, AuditRecord, rfc3339_millis, safe_headers, unix_secs_now,
};
use crate::classify::{self, RequestTarget};
use crate::metrics::{InflightGuard, Metrics, RequestOutcome, Scope};
use crate::token;
use crate::usage::UsageCache;

/// Who may scrape the metrics endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuth {
    /// A bearer token from `strata admin prometheus generate` (default).
    Jwt,
    /// Anyone who can reach the port.
    Public,
}

/// Settings of [`Observability`].
#[derive(Clone)]
pub struct ObservabilityConfig {
    /// Scrape authentication.
    pub metrics_auth: MetricsAuth,
    /// Virtual-host base domains (to find the bucket of `bucket.domain` requests).
    pub domains: Vec<String>,
    /// Root access key (tokens name it; records name its user `root`).
    pub root_access_key: String,
    /// Root secret key (verifies scrape tokens; never logged).
    pub root_secret_key: String,
    /// Other identities allowed to scrape (users holding `admin:Prometheus`); none: root only.
    pub scrapers: Option<Arc<dyn ScrapeAuthorizer>>,
}

/// Who besides root may scrape the metrics: the server answers from its IAM.
pub trait ScrapeAuthorizer: Send + Sync {
    /// The secret key of `access_key` if that identity may scrape the metrics now (it holds
    /// `admin:Prometheus`), none otherwise. Callers never log it.
    fn scrape_secret(&self, access_key: &str) -> Option<String>;
}

impl fmt::Debug for ObservabilityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservabilityConfig")
            .field("metrics_auth", &self.metrics_auth)
            .field("domains", &self.domains)
            .field("root_access_key", &self.root_access_key)
            .field("root_secret_key", &"<redacted>")
            .field("scrapers", &self.scrapers.is_some())
            .finish()
    }
}

/// Metrics, audit log and bucket usage of one server, shared by all connections.
pub struct Observability {
    metrics: Arc<Metrics>,
    audit: Arc<AuditLog>,
    usage: Arc<UsageCache>,
    layer: Arc<ObjectLayer>,
    config: ObservabilityConfig,
    deployment_id: String,
}

impl fmt::Debug for Observability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observability")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The metrics endpoint paths.
pub const METRICS_NODE_PATH: &str = "/metrics/node";
/// The cluster metrics path.
pub const METRICS_CLUSTER_PATH: &str = "/metrics/cluster";

impl Observability {
    /// Puts the parts together.
    pub fn new(
        metrics: Arc<Metrics>,
        audit: Arc<AuditLog>,
        usage: Arc<UsageCache>,
        layer: Arc<ObjectLayer>,
        config: ObservabilityConfig,
    ) -> Observability {
        let deployment_id = layer.deployment_id().to_string();
        Observability {
            metrics,
            audit,
            usage,
            layer,
            config,
            deployment_id,
        }
    }

    /// The scope of a metrics request, when `method` and `path` address an endpoint.
    pub fn metrics_scope(method: &Method, path: &str) -> Option<Scope> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        match path {
            METRICS_NODE_PATH => Some(Scope::Node),
            METRICS_CLUSTER_PATH => Some(Scope::Cluster),
            _ => None,
        }
    }

    /// A bearer token: root's, or one a user allowed `admin:Prometheus` signed with its own
    /// secret key (`strata admin prometheus generate` with that user's alias).
    fn check_token(&self, token: &str) -> Result<(), ObsError> {
        let subject = token::subject(token)?;
        if subject == self.config.root_access_key {
            return token::verify_token(
                token,
                &self.config.root_access_key,
                &self.config.root_secret_key,
                unix_secs_now(),
            );
        }
        let secret = self
            .config
            .scrapers
            .as_ref()
            .and_then(|s| s.scrape_secret(&subject))
            .ok_or(ObsError::TokenSubject)?;
        token::verify_token(token, &subject, &secret, unix_secs_now())
    }

    /// HTTP basic authentication with the access key and secret key of root or of a user
    /// allowed `admin:Prometheus` (for scrapers that cannot hold a token).
    fn check_basic(&self, authorization: &str) -> Result<(), ObsError> {
        let (access_key, secret_key) =
            token::basic_credentials(authorization).ok_or(ObsError::TokenMalformed)?;
        let expected = if access_key == self.config.root_access_key {
            Some(self.config.root_secret_key.clone())
        } else {
            self.config
                .scrapers
                .as_ref()
                .and_then(|s| s.scrape_secret(&access_key))
        };
        match expected {
            Some(expected) if token::constant_time_eq(expected.as_bytes(), secret_key.as_bytes()) => Ok(()),
            _ => Err(ObsError::TokenSubject),
        }
    }

    /// Answers a metrics request: 403 without a valid bearer token or basic credentials of
    /// root or of a user allowed `admin:Prometheus` (unless public), else the text exposition.
    /// Returns status, content type and body.
    pub async fn metrics_endpoint(
        &self,
        scope: Scope,
        headers: &HeaderMap,
    ) -> (StatusCode, &'static str, bytes::Bytes) {
        if self.config.metrics_auth == MetricsAuth::Jwt {
            let authorization = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok());
            let verdict = match authorization {
                Some(value) if token::basic_credentials(value).is_some() => Some(self.check_basic(value)),
                Some(value) => token::bearer_token(value).map(|t| self.check_token(t)),
                None => None,
            };
            match verdict {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::debug!(reason = %e, "metrics scrape refused");
                    return (
                        StatusCode::FORBIDDEN,
                        "text/plain",
                        "invalid credentials\n".into(),
                    );
                }
                None => {
                    return (
                        StatusCode::FORBIDDEN,
                        "text/plain",
                        "a bearer token is required (strata admin prometheus generate ALIAS)\n".into(),
                    );
                }
            }
        }
        match self
            .metrics
            .render(
                scope,
                &self.layer,
                Some(&self.audit),
                Some(&self.usage),
                Vec::new(),
            )
            .await
        {
            Ok(text) => (
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text.into(),
            ),
            Err(e) => {
                tracing::error!(error = %e, "rendering metrics failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "metrics unavailable\n".into(),
                )
            }
        }
    }

    /// Starts observing a request.
    pub fn begin<B>(&self, req: &Request<B>, request_id: &str, remote: SocketAddr) -> RequestObservation {
        let inflight = self.metrics.start_request();
        let uri = req.uri();
        let target = classify::classify(
            req.method(),
            uri.path(),
            uri.query(),
            req.headers(),
            &self.config.domains,
        );
        let record = self.audit.is_enabled().then(|| AuditRecord {
            version: AUDIT_RECORD_VERSION.to_owned(),
            time: rfc3339_millis(SystemTime::now()),
            deployment_id: self.deployment_id.clone(),
            request_id: request_id.to_owned(),
            method: req.method().to_string(),
            remote_ip: remote.ip().to_string(),
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            access_key: classify::claimed_access_key(req.headers(), uri.query()),
            request_headers: safe_headers(req.headers()),
            ..AuditRecord::default()
        });
        RequestObservation {
            started: Instant::now(),
            target,
            is_get: req.method() == Method::GET,
            record,
            rx_bytes: Arc::new(AtomicU64::new(0)),
            metrics: Arc::clone(&self.metrics),
            audit: Arc::clone(&self.audit),
            root_access_key: self.config.root_access_key.clone(),
            inflight,
        }
    }
}

/// One request being observed.
pub struct RequestObservation {
    started: Instant,
    target: RequestTarget,
    is_get: bool,
    record: Option<AuditRecord>,
    rx_bytes: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    audit: Arc<AuditLog>,
    root_access_key: String,
    inflight: InflightGuard,
}

/// What s3s told about a request, if it got that far.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// Operation name from s3s (authoritative over the classifier's guess).
    pub api: Option<String>,
    /// Access key of accepted credentials.
    pub access_key: Option<String>,
    /// The user whose rights the request ran with (`root`, a user, a service account's or an
    /// STS session's parent), when the access hook resolved it.
    pub user: Option<String>,
    /// The kind of principal: `Root`, `User`, `ServiceAccount`, `AssumedRole`, `Anonymous`.
    pub principal_type: Option<String>,
    /// An STS session's name.
    pub session_name: Option<String>,
}

impl RequestObservation {
    /// Counts the bytes of a request body.
    pub fn count_request_body<B>(&self, body: B) -> CountingBody<B> {
        CountingBody {
            inner: body,
            n_bytes: Arc::clone(&self.rx_bytes),
        }
    }

    /// Wraps the response body; the request is recorded when that body ends or is dropped.
    /// `error_code` is the S3 code of a failed request (from its XML body) if known.
    pub fn finish<B>(
        self,
        resp: Response<B>,
        resolved: Resolved,
        error_code: Option<String>,
    ) -> Response<ObservedBody<B>> {
        let status = resp.status().as_u16();
        let error_code = if status >= 400 {
            Some(error_code.unwrap_or_else(|| classify::error_code_of_status(status).to_owned()))
        } else {
            None
        };
        let head_at = self.started.elapsed();
        let response_headers = self.record.as_ref().map(|_| safe_headers(resp.headers()));
        let (parts, body) = resp.into_parts();
        let api: Arc<str> = match resolved.api {
            Some(a) => a.into(),
            None => self.target.api.into(),
        };
        let authenticated =
            resolved.access_key.is_some() || (api.starts_with("Admin") && status != 401 && status != 403);
        // Probes and scrapes are counted in the metrics but are not S3 or admin requests.
        let audited = !matches!(&*api, classify::API_HEALTH | classify::API_METRICS);
        let mut record = self.record.filter(|_| audited);
        if let Some(r) = record.as_mut() {
            r.api = api.to_string();
            r.bucket = self.target.bucket.clone();
            r.object = self.target.object.clone();
            r.version_id = self.target.version_id.clone();
            r.status_code = status;
            r.error_code = error_code.clone();
            r.authenticated = authenticated && r.access_key.is_some();
            if resolved.access_key.is_some() {
                r.access_key = resolved.access_key.clone();
            }
            if r.authenticated && r.access_key.as_deref() == Some(self.root_access_key.as_str()) {
                r.user = Some("root".to_owned());
            }
            if r.authenticated && resolved.user.as_deref().is_some_and(|u| !u.is_empty()) {
                r.user = resolved.user.clone();
            }
            r.principal_type = resolved.principal_type.clone();
            r.session_name = resolved.session_name.clone();
            r.response_headers = response_headers.unwrap_or_default();
        }
        let done = Completion {
            started: self.started,
            head_at,
            ttfb: None,
            tx_bytes: 0,
            api,
            status,
            error_code,
            is_get: self.is_get,
            rx_bytes: self.rx_bytes,
            record,
            metrics: self.metrics,
            audit: self.audit,
            _inflight: self.inflight,
        };
        Response::from_parts(
            parts,
            ObservedBody {
                inner: body,
                done: Some(done),
            },
        )
    }
}

struct Completion {
    started: Instant,
    head_at: std::time::Duration,
    ttfb: Option<std::time::Duration>,
    tx_bytes: u64,
    api: Arc<str>,
    status: u16,
    error_code: Option<String>,
    is_get: bool,
    rx_bytes: Arc<AtomicU64>,
    record: Option<AuditRecord>,
    metrics: Arc<Metrics>,
    audit: Arc<AuditLog>,
    _inflight: InflightGuard,
}

impl Completion {
    fn complete(mut self) {
        let duration = self.started.elapsed();
        let ttfb = self.ttfb.unwrap_or(self.head_at);
        let rx_bytes = self.rx_bytes.load(Ordering::Relaxed);
        self.metrics.observe(&RequestOutcome {
            api: &self.api,
            status: self.status,
            error_code: self.error_code.as_deref(),
            rx_bytes,
            tx_bytes: self.tx_bytes,
            ttfb,
            duration,
            is_get: self.is_get,
        });
        if let Some(mut r) = self.record.take() {
            r.rx_bytes = rx_bytes;
            r.tx_bytes = self.tx_bytes;
            r.ttfb_ns = u64::try_from(ttfb.as_nanos()).unwrap_or(u64::MAX);
            r.duration_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
            self.audit.log(&r);
        }
    }
}

/// A request body that counts its bytes.
#[derive(Debug)]
pub struct CountingBody<B> {
    inner: B,
    n_bytes: Arc<AtomicU64>,
}

impl<B> Body for CountingBody<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.n_bytes.fetch_add(data.remaining() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that records the request when it ends or is dropped.
pub struct ObservedBody<B> {
    inner: B,
    done: Option<Completion>,
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done.complete();
        }
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(done)) = (frame.data_ref(), this.done.as_mut()) {
                    if done.ttfb.is_none() && data.has_remaining() {
                        done.ttfb = Some(done.started.elapsed());
                    }
                    done.tx_bytes += data.remaining() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => {
                if let Some(done) = this.done.take() {
                    done.complete();
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
