//! The HTTP server: accepts TCP connections, serves HTTP/1.1 and h2 (h2c, or both over TLS
//! when a TLS configuration is given) through hyper-util's auto builder, tags every request
//! with an id (a tracing span, the `x-amz-request-id` header, and an extension the S3 handlers
//! read), and shuts down gracefully.
//!
//! Invariants:
//! - At most `connections_max` connections are served at once (the accept loop waits for a
//!   free slot; a TLS handshake holds its slot), and at most `connections_per_client_max` from
//!   one client address (`admission`): further ones are closed right after accept, before any
//!   read, counted, and logged at most once per 10 s.
//! - Every accepted stream is wrapped in an [`IdleIo`] (under TLS, when there is one): a
//!   connection that sends nothing is closed after the first-byte timeout (a TLS handshake must
//!   also finish within it, in the connection's own task, so a slow or failing one never holds
//!   up accepting others); one that moves no bytes while the server waits on the client is
//!   closed after the idle timeout. Each request holds the connection's [`InFlight`] count
//!   until its handler has answered, so a long handler is never cut off; an S3 request body
//!   that stalls for the idle timeout ends the request with an error ([`IdleBody`]).
//! - An HTTP/1.1 request's headers must be complete within the idle timeout of the moment the
//!   server started waiting for them (hyper's header read timeout: after the first bytes on a
//!   new connection, after the previous response on a kept-alive one), so headers trickling in
//!   byte by byte cannot hold a connection either.
//! - A failed accept never spins the loop: out of descriptors, it pauses and logs once per
//!   episode (`admission::AcceptErrors`).
//! - On SIGTERM/SIGINT the listener closes first, in-flight requests get [`SHUTDOWN_GRACE`] to
//!   finish, and only then is the object layer shut down.
//! - Query strings are never logged (presigned URLs carry credentials and signatures there).
//! - Every request is observed (`strata_obs::Observability`): counted in the metrics and
//!   audited when its response body ends; `/metrics/node` and `/metrics/cluster` are answered
//!   here, before s3s (which would read them as bucket `metrics`).
//!
//! In a cluster the same port carries node-to-node RPC (`/strata/rpc/v1/...`, authenticated by
//! the cluster secret, never observed as S3 traffic, its bodies bound by the RPC deadlines
//! rather than [`IdleBody`]), and the listener opens before the object layer does (peers must
//! reach this node while the deployment settles): until then S3 requests get 503 and
//! `/health/live` answers 200.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use strata_obs::observe::{ObservedBody, Resolved};
use strata_obs::{Observability, classify};
use strata_rpc::{RpcBody, RpcServer};
use strata_s3::{FrontDoorService, OperationSlot, RequestId};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::admission::{AcceptErrors, ClientSlots, Refusals};
use crate::idle::{IdleBody, IdleIo, IdleTimeout, IdleTimeouts, InFlight};
use strata_obs::connections::ConnectionEnd;

/// Interval of HTTP/2 keep-alive pings to clients and peers.
pub const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// An HTTP/2 connection whose ping is not answered within this is closed.
pub const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time in-flight requests get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What the listener admits and how long it waits on clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// First-byte (and TLS handshake) and idle timeouts.
    pub timeouts: IdleTimeouts,
    /// Most connections served at once.
    pub connections_max: usize,
    /// Most connections served at once from one client.
    pub connections_per_client_max: usize,
}

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
    /// The S3 service over the object layer (s3s behind CORS).
    pub service: FrontDoorService,
    /// Metrics and audit.
    pub obs: Arc<Observability>,
}

/// What answers requests on the listener: node RPC (in a cluster) and the S3 application once
/// the object layer is open.
pub struct Frontend {
    rpc: Option<Arc<RpcServer>>,
    app: OnceLock<App>,
    /// The listener speaks TLS (`aws:SecureTransport`); set by [`run`].
    secure: std::sync::atomic::AtomicBool,
}

/// A response body: S3 (observed), RPC, or a short fixed answer.
type ResponseBody = Either<ObservedBody<s3s::Body>, Either<RpcBody, Full<Bytes>>>;

impl Frontend {
    /// A frontend serving `rpc` (if any) now and S3 once [`Frontend::open`] is called.
    pub fn new(rpc: Option<Arc<RpcServer>>) -> Arc<Frontend> {
        Arc::new(Frontend {
            rpc,
            app: OnceLock::new(),
            secure: std::sync::atomic::AtomicBool::new(false),
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
        in_flight: Arc<InFlight>,
        body_idle_timeout: Duration,
        req: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, s3s::HttpError> {
        // Until the answer's head is ready: the connection's silence is the server's doing.
        let _busy = in_flight.begin();
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
            Some(app) => handle(
                app.service.clone(),
                Arc::clone(&app.obs),
                strata_s3::ClientInfo {
                    addr: peer,
                    secure: self.secure.load(std::sync::atomic::Ordering::Relaxed),
                },
                body_idle_timeout,
                req,
            )
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
    limits: ConnectionLimits,
) -> anyhow::Result<()> {
    frontend
        .secure
        .store(tls.is_some(), std::sync::atomic::Ordering::Relaxed);
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let builder = Arc::new(http_builder(limits.timeouts.idle));
    let slots = Arc::new(Semaphore::new(limits.connections_max));
    let clients = ClientSlots::new(limits.connections_per_client_max);
    let mut refusals = Refusals::default();
    let mut accept_errors = AcceptErrors::default();
    let graceful = GracefulShutdown::new();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    tracing::info!(
        connections_max = limits.connections_max,
        connections_per_client_max = limits.connections_per_client_max,
        first_byte_timeout_secs = limits.timeouts.first_byte.as_secs(),
        idle_timeout_secs = limits.timeouts.idle.as_secs(),
        "connection limits"
    );

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit?,
            () = &mut signal => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    strata_obs::connections::count_accept_error();
                    if let Some(pause) = accept_errors.failed(&e, Instant::now()) {
                        tokio::select! {
                            () = tokio::time::sleep(pause) => {}
                            () = &mut signal => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut signal => break,
        };
        accept_errors.accepted(Instant::now());
        let Some(client_slot) = clients.try_acquire(peer.ip()) else {
            drop(stream);
            strata_obs::connections::count_connection_end(ConnectionEnd::RefusedPerClient);
            if let Some(r) = refusals.refused(Instant::now()) {
                tracing::warn!(
                    client = %peer.ip(),
                    refused_since_last_report = r.n_since_last,
                    refused_total = r.n_total,
                    connections_per_client_max = limits.connections_per_client_max,
                    "connections refused: the client holds the most connections allowed per client"
                );
            }
            continue;
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
            let in_flight = Arc::new(InFlight::default());
            let stream = IdleIo::new(stream, limits.timeouts, Arc::clone(&in_flight));
            let service = connection_service(frontend, peer, in_flight, limits.timeouts.idle);
            match tls {
                None => serve_connection(&builder, watcher, TokioIo::new(stream), service, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(limits.timeouts.first_byte, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(&builder, watcher, TokioIo::new(stream), service, peer).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            strata_obs::connections::count_connection_end(ConnectionEnd::FirstByteTimeout);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            drop(client_slot);
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

/// The HTTP/1.1 and h2 settings of every connection; `idle_timeout` also bounds the time to
/// read a request's headers.
fn http_builder(idle_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
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
    builder
}

/// The service of one connection: `frontend`, each request held in flight while it runs.
fn connection_service(
    frontend: Arc<Frontend>,
    peer: std::net::SocketAddr,
    in_flight: Arc<InFlight>,
    body_idle_timeout: Duration,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ResponseBody>,
    Error = s3s::HttpError,
    Future = impl Future<Output = Result<Response<ResponseBody>, s3s::HttpError>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |req: Request<Incoming>| {
        Arc::clone(&frontend).dispatch(peer, Arc::clone(&in_flight), body_idle_timeout, req)
    })
}

/// Serves one accepted (and, with TLS, handshaken) connection until it ends or a graceful
/// shutdown closes it.
async fn serve_connection<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: Watcher,
    io: I,
    service: S,
    peer: std::net::SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection_with_upgrades(io, service);
    if let Err(e) = watcher.watch(conn).await {
        match IdleTimeout::of(&*e) {
            Some(t) => {
                strata_obs::connections::count_connection_end(match t {
                    IdleTimeout::FirstByte(_) => ConnectionEnd::FirstByteTimeout,
                    IdleTimeout::Idle(_) => ConnectionEnd::IdleTimeout,
                });
                tracing::debug!(%peer, reason = %t, "connection closed: timed out");
            }
            None => tracing::debug!(%peer, error = %e, "connection ended with an error"),
        }
    }
}

/// Serves one request through the front door (s3s behind CORS) inside a span carrying its id.
async fn handle(
    svc: FrontDoorService,
    obs: Arc<Observability>,
    client: strata_s3::ClientInfo,
    body_idle_timeout: Duration,
    mut req: Request<Incoming>,
) -> Result<Response<ObservedBody<s3s::Body>>, s3s::HttpError> {
    let peer = client.addr;
    let id = new_request_id();
    req.extensions_mut().insert(client);
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
        let req = req.map(|body| {
            s3s::Body::http_body(observation.count_request_body(IdleBody::new(body, body_idle_timeout)))
        });
        let result = svc.call(req).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let principal = slot.principal();
        let resolved = match slot.get() {
            Some((api, access_key)) => Resolved {
                api: Some(api.clone()),
                access_key: access_key.clone(),
                user: principal.map(|p| p.user.clone()),
                principal_type: principal.map(|p| p.kind.to_owned()),
                session_name: principal.and_then(|p| p.session.clone()),
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
    use http_body_util::{BodyExt, Empty};
    use std::convert::Infallible;

    const TIMEOUTS: IdleTimeouts = IdleTimeouts {
        first_byte: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    /// Serves one in-memory connection with `handler_secs`-long handlers that hold the
    /// connection's in-flight count, as `dispatch` does. Returns the client's end and the
    /// server task (done when the connection is).
    fn serve_in_memory(handler_secs: u64) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
        let (server_end, client_end) = tokio::io::duplex(1 << 16);
        let in_flight = Arc::new(InFlight::default());
        let io = IdleIo::new(server_end, TIMEOUTS, Arc::clone(&in_flight));
        let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
            let busy = in_flight.begin();
            async move {
                tokio::time::sleep(Duration::from_secs(handler_secs)).await;
                drop(busy);
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
            }
        });
        let task = tokio::spawn(async move {
            let graceful = GracefulShutdown::new();
            let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
            serve_connection(
                &http_builder(TIMEOUTS.idle),
                graceful.watcher(),
                TokioIo::new(io),
                service,
                peer,
            )
            .await;
        });
        (client_end, task)
    }

    fn get() -> Request<Empty<Bytes>> {
        Request::builder()
            .uri("http://localhost/bucket/key")
            .header(http::header::HOST, "localhost")
            .body(Empty::new())
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_handler_is_not_cut_off_and_an_idle_h1_connection_is() {
        let handler_secs = TIMEOUTS.idle.as_secs() * 5;
        let (client_end, server) = serve_in_memory(handler_secs);
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client_end))
            .await
            .unwrap();
        let client_conn = tokio::spawn(conn);
        let started = tokio::time::Instant::now();
        let resp = send.send_request(get()).await.unwrap();
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "done");
        assert_eq!(started.elapsed(), Duration::from_secs(handler_secs));
        // Kept alive, then closed once idle for the idle timeout.
        let answered = tokio::time::Instant::now();
        server.await.unwrap();
        assert_eq!(answered.elapsed(), TIMEOUTS.idle);
        let _ = client_conn.await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_h2_connection_with_an_open_stream_is_not_cut_off() {
        let handler_secs = TIMEOUTS.idle.as_secs() * 5;
        let (client_end, server) = serve_in_memory(handler_secs);
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(client_end))
                .await
                .unwrap();
        let client_conn = tokio::spawn(conn);
        let started = tokio::time::Instant::now();
        let resp = send.send_request(get()).await.unwrap();
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "done");
        assert_eq!(started.elapsed(), Duration::from_secs(handler_secs));
        assert!(!server.is_finished());
        // Idle now, but the client answers the server's pings: still open.
        tokio::time::sleep(TIMEOUTS.idle * 3).await;
        assert!(!server.is_finished());
        let resp = send.send_request(get()).await.unwrap();
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "done");
        drop(send);
        client_conn.await.unwrap().unwrap();
        server.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_is_closed_after_the_first_byte_timeout() {
        let (_client_end, server) = serve_in_memory(0);
        let started = tokio::time::Instant::now();
        server.await.unwrap();
        assert_eq!(started.elapsed(), TIMEOUTS.first_byte);
    }

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
