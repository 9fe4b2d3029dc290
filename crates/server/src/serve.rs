//! The HTTP server: accepts TCP connections, serves HTTP/1.1 and h2 (h2c, or both over TLS
//! when a TLS configuration is given) through hyper-util's auto builder, tags every request
//! with an id (a tracing span, the `x-amz-request-id` header, and an extension the S3 handlers
//! read), and shuts down gracefully.
//!
//! Invariants: at most [`CONNECTIONS_MAX`] connections are served at once (the accept loop
//! waits for a free slot; a TLS handshake holds its slot); a TLS handshake happens in the
//! connection's own task, so a slow or failing one never holds up accepting others, and one
//! not done within [`TLS_HANDSHAKE_TIMEOUT`] is dropped (logged at debug); a client that does
//! not finish its headers within [`HEADER_READ_TIMEOUT`] is dropped; on SIGTERM/SIGINT the listener closes first, in-flight
//! requests get [`SHUTDOWN_GRACE`] to finish, and only then is the object layer shut down.
//! Query strings are never logged (presigned URLs carry credentials and signatures there).
//! Every request is observed (`strata_obs::Observability`): counted in the metrics and audited
//! when its response body ends; `/metrics/node` and `/metrics/cluster` are answered here, before
//! s3s (which would read them as bucket `metrics`).
//!
//! In a cluster the same port carries node-to-node RPC (`/strata/rpc/v1/...`, authenticated by
//! the cluster secret, never observed as S3 traffic), and the listener opens before the object
//! layer does (peers must reach this node while the deployment settles): until then S3 requests
//! get 503 and `/health/live` answers 200.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use s3s::service::S3Service;
use strata_obs::observe::{ObservedBody, Resolved};
use strata_obs::{Observability, classify};
use strata_rpc::{RpcBody, RpcServer};
use strata_s3::{OperationSlot, RequestId};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

/// Most connections served at the same time.
pub const CONNECTIONS_MAX: usize = 4096;
/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Interval of HTTP/2 keep-alive pings to clients and peers.
pub const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// An HTTP/2 connection whose ping is not answered within this is closed.
pub const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to finish the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A fresh request id: 16 upper-case hex digits, like S3's.
fn new_request_id() -> String {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    format!("{high:016X}")
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = ctrl_c.await;
        }
    }
}

/// The S3 application: the s3s service and its observability.
pub struct App {
    /// The S3 service over the object layer.
    pub service: S3Service,
    /// Metrics and audit.
    pub obs: Arc<Observability>,
}

/// What answers requests on the listener: node RPC (in a cluster) and the S3 application once
/// the object layer is open.
pub struct Frontend {
    rpc: Option<Arc<RpcServer>>,
    app: OnceLock<App>,
}

/// A response body: S3 (observed), RPC, or a short fixed answer.
type ResponseBody = Either<ObservedBody<s3s::Body>, Either<RpcBody, Full<Bytes>>>;

impl Frontend {
    /// A frontend serving `rpc` (if any) now and S3 once [`Frontend::open`] is called.
    pub fn new(rpc: Option<Arc<RpcServer>>) -> Arc<Frontend> {
        Arc::new(Frontend {
            rpc,
            app: OnceLock::new(),
        })
    }

    /// Starts answering S3 requests with `app`.
    pub fn open(&self, app: App) {
        if self.app.set(app).is_err() {
            tracing::warn!("the S3 application was opened twice; keeping the first");
        }
    }

    async fn dispatch(
        self: Arc<Self>,
        peer: std::net::SocketAddr,
        req: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, s3s::HttpError> {
        if let Some(rpc) = &self.rpc
            && RpcServer::is_rpc_path(req.uri().path())
        {
            return Ok(rpc.handle(req).await.map(|b| Either::Right(Either::Left(b))));
        }
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut resp = match self.app.get() {
            Some(app) => handle(app.service.clone(), Arc::clone(&app.obs), peer, req)
                .await?
                .map(Either::Left),
            None => starting_response(req.uri().path()),
        };
        if expects_continue && !resp.status().is_success() {
            // Refused before the body was read: the client may or may not send it now (RFC 9110
            // 10.1.1), so the connection's next bytes are ambiguous; close it after this answer
            // rather than read a request line as body.
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(resp)
    }
}

/// The answer while the deployment is still settling: alive, not ready.
fn starting_response(path: &str) -> Response<ResponseBody> {
    let (status, content_type, body) = if path == strata_s3::LIVE_PATH {
        (http::StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"))
    } else if path.starts_with("/health/") || path == "/healthz" {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            Bytes::from_static(b"unavailable\n"),
        )
    } else {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "application/xml",
            Bytes::from_static(
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code><Message>The server is starting: waiting for the other nodes of the deployment.</Message></Error>",
            ),
        )
    };
    let mut resp = Response::new(Either::Right(Either::Right(Full::new(body))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Serves `frontend` on `listener` (over TLS when `tls` is given) until a shutdown signal, then
/// drains connections.
pub async fn run(
    listener: TcpListener,
    frontend: Arc<Frontend>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> anyhow::Result<()> {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    // h2 windows sized for node-to-node shard streams (the same listener carries RPC).
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(strata_rpc::H2_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(strata_rpc::H2_CONNECTION_WINDOW_BYTES)
        .max_send_buf_size(strata_rpc::H2_SEND_BUFFER_BYTES)
        .max_concurrent_streams(strata_rpc::H2_STREAMS_PER_CONNECTION_MAX)
        .keep_alive_interval(Some(H2_KEEP_ALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let graceful = GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit?,
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "set TCP_NODELAY failed");
        }
        let frontend = Arc::clone(&frontend);
        let builder = Arc::clone(&builder);
        // Taken now, so a shutdown that starts during a TLS handshake still covers it.
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(&builder, watcher, TokioIo::new(stream), frontend, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(&builder, watcher, TokioIo::new(stream), frontend, peer).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!(
        grace_secs = SHUTDOWN_GRACE.as_secs(),
        "shutdown signal received: no new connections, draining in-flight requests"
    );
    match tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}

/// Serves one accepted (and, with TLS, handshaken) connection until it ends or a graceful
/// shutdown closes it.
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    io: I,
    frontend: Arc<Frontend>,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let hyper_service =
        hyper::service::service_fn(move |req: Request<Incoming>| Arc::clone(&frontend).dispatch(peer, req));
    let conn = builder.serve_connection_with_upgrades(io, hyper_service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Serves one request through s3s inside a span carrying its id.
async fn handle(
    svc: S3Service,
    obs: Arc<Observability>,
    peer: std::net::SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ObservedBody<s3s::Body>>, s3s::HttpError> {
    let id = new_request_id();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let observation = obs.begin(&req, &id, peer);
    async move {
        let started = Instant::now();
        if let Some(scope) = Observability::metrics_scope(req.method(), req.uri().path()) {
            let (status, content_type, body) = obs.metrics_endpoint(scope, req.headers()).await;
            let mut resp = Response::new(s3s::Body::from(body));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amz-request-id", v);
            }
            tracing::debug!(status = status.as_u16(), "metrics scrape");
            return Ok(observation.finish(resp, Resolved::default(), None));
        }
        let slot = OperationSlot::default();
        req.extensions_mut().insert(slot.clone());
        let req = req.map(|body| s3s::Body::http_body(observation.count_request_body(body)));
        let result = svc.call(req).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let resolved = match slot.get() {
            Some((api, access_key)) => Resolved {
                api: Some(api.clone()),
                access_key: access_key.clone(),
            },
            None => Resolved::default(),
        };
        match result {
            Ok(mut resp) => {
                if let Ok(v) = HeaderValue::from_str(&id) {
                    resp.headers_mut().insert("x-amz-request-id", v);
                }
                let status = resp.status().as_u16();
                if resp.status().is_server_error() {
                    tracing::error!(status, elapsed_ms, "request done");
                } else {
                    tracing::info!(status, elapsed_ms, "request done");
                }
                let error_code = if resp.status().as_u16() >= 400 {
                    resp.body().bytes().and_then(|b| classify::error_code_of_body(&b))
                } else {
                    None
                };
                Ok(observation.finish(resp, resolved, error_code))
            }
            Err(e) => {
                tracing::error!(elapsed_ms, error = ?e, "request failed");
                let mut failed = Response::new(());
                *failed.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                drop(observation.finish(failed, resolved, None));
                Err(e)
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_s3s() {
        let a = new_request_id();
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        );
        assert_ne!(a, new_request_id());
    }
}
