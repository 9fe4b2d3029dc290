//! The server side: [`RpcServer`] answers calls on a set of named local drives, and
//! [`RpcServer::bind`] runs it as a standalone listener (h2c, or TLS with a TLS [`Acceptor`]).
//!
//! **Invariant:** nothing reaches a drive before the call's date, signature, epoch and
//! sequence number are verified (each accepted at most once: [`crate::replay`]), and a
//! metadata body is used only after its SHA-256 matched the signed one.
//!
//! **Invariant:** a refused call is told only [`auth::REFUSAL_REASON`]; why it was refused
//! (stale by how much, bad signature, replay) goes to this server's log at warn, at most one
//! line per kind per [`REFUSAL_LOG_INTERVAL_SECS`] with the number suppressed, and never with a
//! signature, MAC or secret in it.
//!
//! **Invariant:** a shard write only becomes visible when the client's stream ends with the
//! commit trailer, the trailer's stream MAC matched every byte received (checked before
//! `ShardWrite::commit`), and the local `ShardWrite::commit` succeeded; any other end (abort trailer,
//! a stream that just ends, a reset, a dropped connection, an idle stream) drops or aborts the
//! local writer, which leaves nothing visible.
//!
//! **Invariant:** the server holds at most [`SHARD_READ_CHANNEL_CHUNKS`] chunks of one shard
//! read, plus the HTTP/2 stream window of one shard write.

use std::collections::HashMap;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use strata_drive::{DataDirId, Drive, ScanRange, ShardWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout, timeout_at};

use crate::auth::{
    self, AUTH_FAILURE_KINDS, AuthFailure, CONTENT_SHA256_HEADER, ClusterSecret, HELLO_EPOCH, REFUSAL_REASON,
    STREAM_MAC_HEADER, STREAMING_PAYLOAD, StreamDirection, StreamMac,
};
use crate::body::RpcBody;
use crate::error::RpcError;
use crate::replay::ReplayGuard;
use crate::transport::{ACCEPT_HANDSHAKE_TIMEOUT, Acceptor};
use crate::wire::{self, Op, WireError};
use crate::{
    H2_CONNECTION_WINDOW_BYTES, H2_SEND_BUFFER_BYTES, H2_STREAM_WINDOW_BYTES, H2_STREAMS_PER_CONNECTION_MAX,
    REFUSAL_LOG_INTERVAL_SECS, REQUEST_BODY_BYTES_MAX, SERVER_CALL_TIMEOUT_SECS_MAX, SHARD_CHUNK_BYTES,
    SHARD_READ_CHANNEL_CHUNKS, SHARD_WRITE_IDLE_SECS_MAX,
};

/// Interval of HTTP/2 keep-alive pings, both sides.
pub(crate) const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// A connection whose ping is not answered within this is closed.
pub(crate) const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Node-level calls served next to the drives (format discovery, locks, notifications):
/// `POST /strata/rpc/v1/node/<op>` with an opaque body, authenticated like drive calls.
#[async_trait::async_trait]
pub trait NodeService: Send + Sync + std::fmt::Debug {
    /// Answers operation `op` (ASCII letters, digits, `-`, `_`). `Err(reason)` is sent back as
    /// a node error (503), which the caller sees as [`RpcError::Node`].
    async fn call(&self, op: &str, body: Bytes) -> Result<Vec<u8>, String>;
}

/// Serves this node's local drives, and node-level calls, to other nodes.
///
/// Drives can be registered after the server started answering (a node serves its format
/// discovery before its drives are open); until then their calls answer "unknown drive".
#[derive(Debug)]
pub struct RpcServer {
    secret: ClusterSecret,
    /// This run's epoch (32 hex digits): requests signed for another run are refused.
    epoch: String,
    replay: ReplayGuard,
    refusals: Arc<RefusalLog>,
    drives: std::sync::RwLock<HashMap<String, Arc<dyn Drive>>>,
    node: std::sync::RwLock<Option<Arc<dyn NodeService>>>,
    acceptor: Acceptor,
}

impl RpcServer {
    /// A server for `drives`, keyed by the id clients name them with (the drive's path on this
    /// node, e.g. `/mnt/disk1`).
    pub fn new(secret: ClusterSecret, drives: HashMap<String, Arc<dyn Drive>>) -> Self {
        RpcServer {
            secret,
            epoch: auth::nonce_hex(auth::random_nonce()),
            replay: ReplayGuard::new(),
            refusals: Arc::new(RefusalLog::default()),
            drives: std::sync::RwLock::new(drives),
            node: std::sync::RwLock::new(None),
            acceptor: Acceptor::default(),
        }
    }

    /// Serves `drives` from now on, in place of the drives served before.
    pub fn set_drives(&self, drives: HashMap<String, Arc<dyn Drive>>) {
        match self.drives.write() {
            Ok(mut guard) => *guard = drives,
            Err(poisoned) => *poisoned.into_inner() = drives,
        }
    }

    /// Serves node-level calls with `service` from now on.
    pub fn set_node_service(&self, service: Arc<dyn NodeService>) {
        match self.node.write() {
            Ok(mut guard) => *guard = Some(service),
            Err(poisoned) => *poisoned.into_inner() = Some(service),
        }
    }

    fn drive(&self, drive_id: &str) -> Option<Arc<dyn Drive>> {
        match self.drives.read() {
            Ok(guard) => guard.get(drive_id).cloned(),
            Err(poisoned) => poisoned.into_inner().get(drive_id).cloned(),
        }
    }

    fn node_service(&self) -> Option<Arc<dyn NodeService>> {
        match self.node.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Uses `acceptor` for connections accepted by [`RpcServer::bind`].
    pub fn with_acceptor(mut self, acceptor: Acceptor) -> Self {
        self.acceptor = acceptor;
        self
    }

    /// Calls refused as replays (a sequence number already accepted in its session, or older
    /// than its session's window) since this server started: a counter for metrics.
    pub fn replays_refused(&self) -> u64 {
        self.replay.replays_refused()
    }

    /// Checks a call's headers, date, signature, epoch and sequence number; a refusal is logged
    /// (rate-limited) and answered with the fixed [`REFUSAL_REASON`].
    fn authenticate(&self, parts: &http::request::Parts) -> Result<auth::Verified, WireError> {
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let is_hello = parts.uri.path().strip_prefix(crate::RPC_PATH_PREFIX) == Some(wire::HELLO_PATH);
        let now_secs = auth::now_secs();
        let checked = auth::verify_request(
            &self.secret,
            parts.method.as_str(),
            path_and_query,
            &parts.headers,
            now_secs,
        )
        .and_then(|verified| {
            let expected = if is_hello {
                HELLO_EPOCH
            } else {
                self.epoch.as_str()
            };
            if verified.epoch != expected {
                return Err(AuthFailure::WrongEpoch);
            }
            self.replay.check(
                verified.session,
                verified.seq,
                verified.date_secs,
                now_secs,
                Instant::now(),
            )?;
            Ok(verified)
        });
        checked.map_err(|failure| {
            self.refusals
                .refused(failure.kind_idx(), &failure, parts.uri.path());
            WireError::Unauthorized {
                reason: REFUSAL_REASON.to_string(),
            }
        })
    }

    /// Whether a request path belongs to RPC (for a front door that shares its port).
    pub fn is_rpc_path(path: &str) -> bool {
        path.starts_with(crate::RPC_PATH_PREFIX)
    }

    /// Answers one call. Never fails: errors are responses (403 for authentication, 400 for
    /// malformed calls, 404 for an unknown drive, 504 for an expired deadline, 500 with the
    /// drive's error otherwise), each with a MessagePack error body.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<RpcBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        match self.handle_inner(req).await {
            Ok(response) => response,
            Err(error) => {
                // Refused authentications were logged (rate-limited) where they were refused.
                if matches!(error, WireError::BadRequest { .. }) {
                    tracing::warn!(?error, "RPC call refused");
                }
                error_response(&error)
            }
        }
    }

    async fn handle_inner<B>(&self, req: Request<B>) -> Result<Response<RpcBody>, WireError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let verified = self.authenticate(&parts)?;
        let bad = |reason: &str| WireError::BadRequest {
            reason: reason.to_string(),
        };
        if parts.method != http::Method::POST {
            return Err(bad("RPC calls are POST"));
        }
        let timeout_ms: u64 = parts
            .headers
            .get(wire::TIMEOUT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("missing or malformed x-strata-timeout-ms"))?;
        let call_timeout =
            Duration::from_millis(timeout_ms).min(Duration::from_secs(SERVER_CALL_TIMEOUT_SECS_MAX));
        let content_sha256 = parts
            .headers
            .get(CONTENT_SHA256_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let sub_path = parts.uri.path().strip_prefix(crate::RPC_PATH_PREFIX);
        if sub_path == Some(wire::HELLO_PATH) {
            return Ok(response(StatusCode::OK, Bytes::from(self.epoch.clone())));
        }
        if sub_path == Some(wire::BATCH_PATH) {
            let deadline = Instant::now() + call_timeout;
            let bytes = read_signed_body(body, content_sha256, deadline).await?;
            let request: wire::BatchRequest = decode_request(&bytes)?;
            let answers = timeout_at(
                deadline,
                futures::future::join_all(request.calls.into_iter().map(|call| self.batch_call(call))),
            )
            .await
            .map_err(|_| WireError::DeadlineExceeded)?;
            return ok(&wire::BatchResponse { answers });
        }
        if let Some(op) = wire::parse_node_path(parts.uri.path()) {
            let service = self.node_service().ok_or_else(|| WireError::Node {
                reason: "node services are not running yet".to_string(),
            })?;
            let deadline = Instant::now() + call_timeout;
            let bytes = read_signed_body(body, content_sha256, deadline).await?;
            return match timeout_at(deadline, service.call(op, bytes)).await {
                Err(_) => Err(WireError::DeadlineExceeded),
                Ok(Err(reason)) => Err(WireError::Node { reason }),
                Ok(Ok(answer)) => Ok(response(StatusCode::OK, Bytes::from(answer))),
            };
        }
        let (drive_id, op) = wire::parse_path(parts.uri.path()).ok_or_else(|| bad("unknown RPC path"))?;
        let drive = self
            .drive(&drive_id)
            .ok_or(WireError::UnknownDrive { drive_id })?;

        if op == Op::ShardWrite {
            if content_sha256 != STREAMING_PAYLOAD {
                return Err(bad("shard writes are streamed"));
            }
            let (dir, part) = parts
                .uri
                .query()
                .and_then(wire::parse_shard_write_query)
                .ok_or_else(|| bad("shard write needs dir and part"))?;
            let mac = StreamMac::new(&self.secret, StreamDirection::Write, &verified.signature);
            let refusals = Arc::clone(&self.refusals);
            return shard_write(drive, dir, part, body, call_timeout, mac, refusals).await;
        }

        let deadline = Instant::now() + call_timeout;
        let bytes = read_signed_body(body, content_sha256, deadline).await?;
        if op == Op::ShardRead {
            let req: wire::ShardReadRequest = decode_request(&bytes)?;
            let mac = StreamMac::new(&self.secret, StreamDirection::Read, &verified.signature);
            let read = shard_read(
                drive,
                DataDirId(req.dir),
                req.part,
                req.offset,
                req.len,
                deadline,
                mac,
            );
            return timeout_at(deadline, read)
                .await
                .unwrap_or(Err(WireError::DeadlineExceeded));
        }
        timeout_at(deadline, dispatch(drive, op, &bytes))
            .await
            .unwrap_or(Err(WireError::DeadlineExceeded))
    }

    /// Answers one call of a batch as it would be answered alone (unary drive calls and node
    /// calls; shard streams are refused).
    async fn batch_call(&self, call: wire::BatchCall) -> wire::BatchAnswer {
        if let Some(op) = wire::parse_node_path(&call.path) {
            let answer = match self.node_service() {
                None => Err(WireError::Node {
                    reason: "node services are not running yet".to_string(),
                }),
                Some(service) => service
                    .call(op, Bytes::from(call.body.0))
                    .await
                    .map_err(|reason| WireError::Node { reason }),
            };
            return match answer {
                Ok(body) => wire::BatchAnswer {
                    status: StatusCode::OK.as_u16(),
                    body: wire::Blob(body),
                },
                Err(error) => wire::BatchAnswer {
                    status: error.status().as_u16(),
                    body: wire::Blob(wire::encode(&error)),
                },
            };
        }
        let response = match wire::parse_path(&call.path) {
            None => error_response(&WireError::BadRequest {
                reason: "unknown RPC path in a batch".to_string(),
            }),
            Some((_, Op::ShardWrite | Op::ShardRead)) => error_response(&WireError::BadRequest {
                reason: "shard streams cannot be batched".to_string(),
            }),
            Some((drive_id, op)) => match self.drive(&drive_id) {
                None => error_response(&WireError::UnknownDrive { drive_id }),
                Some(drive) => match dispatch(drive, op, &call.body.0).await {
                    Ok(response) => response,
                    Err(error) => error_response(&error),
                },
            },
        };
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
        wire::BatchAnswer {
            status,
            body: wire::Blob(body),
        }
    }

    /// Listens on `addr` (h2c, or TLS with [`RpcServer::with_acceptor`]) and serves calls until the handle is shut down or dropped.
    pub async fn bind(self: Arc<Self>, addr: SocketAddr) -> Result<RpcServerHandle, RpcError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RpcError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| RpcError::Bind { addr, source })?;
        let task = tokio::spawn(accept_loop(self, listener));
        Ok(RpcServerHandle {
            local_addr,
            task: Some(task),
        })
    }

    async fn serve_connection(self: Arc<Self>, stream: TcpStream) {
        let io = match timeout(ACCEPT_HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(Ok(io)) => io,
            Ok(Err(error)) => {
                tracing::debug!(%error, "RPC connection setup failed");
                return;
            }
            Err(_) => return,
        };
        let server = Arc::clone(&self);
        let service = hyper::service::service_fn(move |req| {
            let server = Arc::clone(&server);
            async move { Ok::<_, Infallible>(server.handle(req).await) }
        });
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_stream_window_size(H2_STREAM_WINDOW_BYTES)
            .initial_connection_window_size(H2_CONNECTION_WINDOW_BYTES)
            .max_send_buf_size(H2_SEND_BUFFER_BYTES)
            .max_concurrent_streams(H2_STREAMS_PER_CONNECTION_MAX)
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT);
        if let Err(error) = builder.serve_connection(TokioIo::new(io), service).await {
            tracing::debug!(%error, "RPC connection ended");
        }
    }
}

/// A running standalone listener. Dropping it (or [`RpcServerHandle::shutdown`]) stops
/// accepting and closes every connection it accepted.
#[derive(Debug)]
pub struct RpcServerHandle {
    local_addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl RpcServerHandle {
    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the listener and closes its connections; returns once they are closed.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for RpcServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Accepts connections; dropping this future (aborting its task) drops the `JoinSet`, which
/// aborts every connection task.
async fn accept_loop(server: Arc<RpcServer>, listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(Arc::clone(&server).serve_connection(stream));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting an RPC connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The whole request body, once its SHA-256 matched the signed one.
async fn read_signed_body<B>(body: B, content_sha256: &str, deadline: Instant) -> Result<Bytes, WireError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let bad = |reason: String| WireError::BadRequest { reason };
    let bytes = match timeout_at(deadline, Limited::new(body, REQUEST_BODY_BYTES_MAX).collect()).await {
        Err(_) => return Err(WireError::DeadlineExceeded),
        Ok(Err(e)) => return Err(bad(format!("reading the request body: {e}"))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if auth::content_sha256(&bytes) != content_sha256 {
        return Err(bad("body does not match its signed SHA-256".to_string()));
    }
    Ok(bytes)
}

fn error_response(error: &WireError) -> Response<RpcBody> {
    response(error.status(), Bytes::from(wire::encode(error)))
}

fn response(status: StatusCode, body: Bytes) -> Response<RpcBody> {
    let mut response = Response::new(RpcBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(wire::MSGPACK_CONTENT_TYPE),
    );
    response
}

fn ok<T: serde::Serialize>(value: &T) -> Result<Response<RpcBody>, WireError> {
    Ok(response(StatusCode::OK, Bytes::from(wire::encode(value))))
}

fn ok_empty() -> Result<Response<RpcBody>, WireError> {
    Ok(response(StatusCode::OK, Bytes::new()))
}

fn decode_request<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    wire::decode(bytes).map_err(|reason| WireError::BadRequest {
        reason: format!("undecodable request: {reason}"),
    })
}

fn table(name: &str) -> Result<strata_drive::Table, WireError> {
    wire::table_from_name(name).ok_or_else(|| WireError::BadRequest {
        reason: format!("unknown table {name:?}"),
    })
}

fn drive_error(error: strata_drive::DriveError) -> WireError {
    WireError::from_drive(&error)
}

/// Runs one unary operation.
async fn dispatch(drive: Arc<dyn Drive>, op: Op, bytes: &[u8]) -> Result<Response<RpcBody>, WireError> {
    match op {
        Op::Format => ok(drive.format()),
        Op::MetaGet => {
            let req: wire::MetaGetRequest = decode_request(bytes)?;
            let value = drive
                .meta_get(table(&req.table)?, &req.key.0)
                .await
                .map_err(drive_error)?;
            ok(&wire::MetaGetResponse {
                value: value.map(|v| wire::Blob(v.to_vec())),
            })
        }
        Op::MetaScan => {
            let req: wire::MetaScanRequest = decode_request(bytes)?;
            let range = ScanRange {
                prefix: req.prefix.0,
                start: req.start.0,
                start_exclusive: req.start_exclusive,
                limit: req.limit,
                keys_only: req.keys_only,
            };
            let entries = drive
                .meta_scan(table(&req.table)?, range)
                .await
                .map_err(drive_error)?;
            ok(&wire::MetaScanResponse {
                entries: entries
                    .into_iter()
                    .map(|e| wire::WireEntry {
                        key: wire::Blob(e.key.to_vec()),
                        value: wire::Blob(e.value.to_vec()),
                    })
                    .collect(),
            })
        }
        Op::MetaCommit => {
            let req: wire::MetaCommitRequest = decode_request(bytes)?;
            let mut ops = Vec::with_capacity(req.ops.len());
            for op in req.ops {
                let name = op.table.clone();
                ops.push(wire::meta_op_from_wire(op).ok_or_else(|| WireError::BadRequest {
                    reason: format!("unknown table {name:?}"),
                })?);
            }
            match req.deleting {
                true => drive.meta_commit_deleting(ops).await,
                false => drive.meta_commit(ops).await,
            }
            .map_err(drive_error)?;
            ok_empty()
        }
        Op::ShardSize => {
            let req: wire::ShardRef = decode_request(bytes)?;
            let size_bytes = drive
                .shard_size(DataDirId(req.dir), req.part)
                .await
                .map_err(drive_error)?;
            ok(&wire::ShardSizeResponse { size_bytes })
        }
        Op::ShardDelete => {
            let req: wire::ShardRef = decode_request(bytes)?;
            drive
                .shard_delete(DataDirId(req.dir), req.part)
                .await
                .map_err(drive_error)?;
            ok_empty()
        }
        Op::DataDirDelete => {
            let req: wire::DataDirDeleteRequest = decode_request(bytes)?;
            drive
                .data_dir_delete(DataDirId(req.dir))
                .await
                .map_err(drive_error)?;
            ok_empty()
        }
        Op::DataDirList => {
            let req: wire::DataDirListRequest = decode_request(bytes)?;
            let entries = drive
                .data_dir_list(req.start_after.map(DataDirId), req.limit)
                .await
                .map_err(drive_error)?;
            ok(&wire::DataDirListResponse {
                entries: entries.iter().map(wire::data_dir_entry_to_wire).collect(),
            })
        }
        Op::Info => {
            let info = drive.info().await.map_err(drive_error)?;
            ok(&wire::InfoResponse {
                total_bytes: info.total_bytes,
                free_bytes: info.free_bytes,
            })
        }
        Op::HealingMark => {
            let on = drive.healing_mark().await.map_err(drive_error)?;
            ok(&wire::HealingMarkResponse { on })
        }
        Op::SetHealingMark => {
            let req: wire::SetHealingMarkRequest = decode_request(bytes)?;
            drive.set_healing_mark(req.on).await.map_err(drive_error)?;
            ok_empty()
        }
        Op::ShardWrite | Op::ShardRead => Err(WireError::BadRequest {
            reason: "shard streams are not unary calls".to_string(),
        }),
    }
}

/// Streams `len` bytes of a shard in chunks of [`SHARD_CHUNK_BYTES`]. The first chunk is read
/// before answering, so a missing or short shard is an error status; a later failure ends the
/// body with an error trailer. The stream MAC of the bytes goes in a header when they fit in
/// one chunk, else in the trailer that ends the body.
async fn shard_read(
    drive: Arc<dyn Drive>,
    dir: DataDirId,
    part: u32,
    offset: u64,
    len: u64,
    deadline: Instant,
    mut mac: StreamMac,
) -> Result<Response<RpcBody>, WireError> {
    let chunk_bytes = SHARD_CHUNK_BYTES as u64;
    let first_len = len.min(chunk_bytes);
    let first = drive
        .shard_read(dir, part, offset, first_len)
        .await
        .map_err(drive_error)?;
    mac.update(&first);
    if first_len == len {
        let mut whole = response(StatusCode::OK, first);
        if let Ok(value) = http::HeaderValue::from_str(&mac.hex()) {
            whole.headers_mut().insert(STREAM_MAC_HEADER, value);
        }
        return Ok(whole);
    }
    let (tx, body) = RpcBody::channel(SHARD_READ_CHANNEL_CHUNKS);
    tokio::spawn(async move {
        let mut done = first_len;
        let mut chunk = first;
        loop {
            match timeout_at(deadline, tx.send(Ok(Frame::data(chunk)))).await {
                Ok(Ok(())) => {}
                // The client went away or stopped reading past the deadline.
                _ => return,
            }
            if done == len {
                let mut trailers = http::HeaderMap::new();
                if let Ok(value) = http::HeaderValue::from_str(&mac.hex()) {
                    trailers.insert(STREAM_MAC_HEADER, value);
                }
                let _ = timeout_at(deadline, tx.send(Ok(Frame::trailers(trailers)))).await;
                return;
            }
            let n = (len - done).min(chunk_bytes);
            let error = match timeout_at(deadline, drive.shard_read(dir, part, offset + done, n)).await {
                Ok(Ok(bytes)) => {
                    mac.update(&bytes);
                    chunk = bytes;
                    done += n;
                    continue;
                }
                Ok(Err(error)) => WireError::from_drive(&error),
                Err(_) => WireError::DeadlineExceeded,
            };
            let mut trailers = http::HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&hex::encode(wire::encode(&error))) {
                trailers.insert(wire::ERROR_TRAILER, value);
            }
            let _ = timeout_at(deadline, tx.send(Ok(Frame::trailers(trailers)))).await;
            return;
        }
    });
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// Opens the local shard writer, answers 200 at once, and feeds the request body into the
/// writer from a task; the response body carries one [`wire::ShardWriteOutcome`] at the end.
async fn shard_write<B>(
    drive: Arc<dyn Drive>,
    dir: DataDirId,
    part: u32,
    body: B,
    call_timeout: Duration,
    mac: StreamMac,
    refusals: Arc<RefusalLog>,
) -> Result<Response<RpcBody>, WireError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let writer = timeout(call_timeout, drive.shard_create(dir, part))
        .await
        .map_err(|_| WireError::DeadlineExceeded)?
        .map_err(drive_error)?;
    let (tx, response_body) = RpcBody::channel(1);
    tokio::spawn(async move {
        let outcome = receive_shard(writer, Box::pin(body), mac, &refusals).await;
        let message = wire::encode(&wire::ShardWriteOutcome { error: outcome.err() });
        // The client may be gone; the outcome stands either way.
        let _ = tx.send(Ok(Frame::data(Bytes::from(message)))).await;
    });
    let mut response = Response::new(response_body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(wire::MSGPACK_CONTENT_TYPE),
    );
    Ok(response)
}

/// A body error made `Send`.
type BoxError = Box<dyn StdError + Send + Sync>;

/// Writes the streamed chunks; commits on the commit trailer if its stream MAC matches every
/// byte received, aborts otherwise. Every early return drops `writer`, which removes its temp
/// file.
async fn receive_shard<B>(
    mut writer: Box<dyn ShardWrite>,
    mut body: Pin<Box<B>>,
    mut mac: StreamMac,
    refusals: &RefusalLog,
) -> Result<(), WireError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let idle = Duration::from_secs(SHARD_WRITE_IDLE_SECS_MAX);
    loop {
        // The body's error type need not be `Send`: convert it before the next await.
        let next: Result<Option<Result<Frame<Bytes>, BoxError>>, _> = timeout(idle, body.frame())
            .await
            .map(|frame| frame.map(|r| r.map_err(Into::into)));
        let frame = match next {
            Err(_) => return Err(WireError::DeadlineExceeded),
            Ok(None) => {
                let _ = writer.abort().await;
                return Err(WireError::BadRequest {
                    reason: "shard stream ended without commit".to_string(),
                });
            }
            Ok(Some(Err(error))) => {
                tracing::debug!(%error, "shard write stream broken; discarding the shard");
                return Err(WireError::Offline {
                    endpoint: format!("client stream: {error}"),
                });
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let trailers = match frame.into_data() {
            Ok(data) => {
                mac.update(&data);
                writer.write(data).await.map_err(drive_error)?;
                continue;
            }
            Err(frame) => match frame.into_trailers() {
                Ok(trailers) => trailers,
                Err(_) => continue,
            },
        };
        return match trailers
            .get(wire::SHARD_END_TRAILER)
            .and_then(|v| v.to_str().ok())
        {
            Some(wire::SHARD_COMMIT) => {
                if !mac.matches(trailers.get(STREAM_MAC_HEADER).map(|v| v.as_bytes())) {
                    let _ = writer.abort().await;
                    refusals.refused(
                        STREAM_MAC_KIND_IDX,
                        &"shard write stream MAC missing or wrong (bytes changed in flight?); shard discarded",
                        "shard_write",
                    );
                    return Err(WireError::Unauthorized {
                        reason: REFUSAL_REASON.to_string(),
                    });
                }
                writer.commit().await.map_err(drive_error)
            }
            Some(wire::SHARD_ABORT) => writer.abort().await.map_err(drive_error),
            _ => {
                let _ = writer.abort().await;
                Err(WireError::BadRequest {
                    reason: "shard stream ended with an unknown trailer".to_string(),
                })
            }
        };
    }
}

/// Log kind of a shard stream whose MAC did not match (after the [`AuthFailure`] kinds).
const STREAM_MAC_KIND_IDX: usize = AUTH_FAILURE_KINDS;

/// Rate-limited warnings about refused calls: per kind, at most one line per
/// [`REFUSAL_LOG_INTERVAL_SECS`], the next line saying how many were suppressed.
#[derive(Debug, Default)]
struct RefusalLog {
    kinds: Mutex<[KindLog; AUTH_FAILURE_KINDS + 1]>,
}

#[derive(Clone, Copy, Debug, Default)]
struct KindLog {
    logged_at: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    /// Logs refusal `what` of kind `kind_idx` on `path`, unless one of its kind was logged
    /// less than [`REFUSAL_LOG_INTERVAL_SECS`] ago (then it is only counted). `what` never
    /// holds a signature, MAC or secret.
    fn refused(&self, kind_idx: usize, what: &dyn std::fmt::Display, path: &str) {
        let now = Instant::now();
        let suppressed = {
            let mut kinds = match self.kinds.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let Some(kind) = kinds.get_mut(kind_idx) else {
                return;
            };
            let interval = Duration::from_secs(REFUSAL_LOG_INTERVAL_SECS);
            if kind
                .logged_at
                .is_some_and(|at| now.saturating_duration_since(at) < interval)
            {
                kind.suppressed += 1;
                return;
            }
            kind.logged_at = Some(now);
            std::mem::take(&mut kind.suppressed)
        };
        tracing::warn!(
            path,
            suppressed_since_last = suppressed,
            "RPC call refused: {what}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_per_interval_per_kind() {
        let log = RefusalLog::default();
        for _ in 0..10 {
            log.refused(1, &"stale", "/strata/rpc/v1/hello");
        }
        log.refused(2, &"bad signature", "/strata/rpc/v1/hello");
        log.refused(AUTH_FAILURE_KINDS + 7, &"no such kind", "/");
        let kinds = log.kinds.lock().unwrap();
        assert_eq!(kinds[1].suppressed, 9);
        assert!(kinds[1].logged_at.is_some());
        assert_eq!(kinds[2].suppressed, 0);
        assert!(kinds[2].logged_at.is_some());
        assert!(kinds[0].logged_at.is_none());
    }
}
