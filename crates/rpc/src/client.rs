//! The client side: [`Peer`] (one HTTP/2 connection per node) and [`RemoteDrive`] (a `Drive`
//! on another node).
//!
//! **Invariant:** one connection per peer, shared by every drive and call on it; a closed
//! connection is replaced on the next call, and after a failed connect calls fail at once for
//! [`RpcClientConfig::reconnect_backoff`] instead of each waiting for a connect timeout.
//!
//! **Invariant:** every call completes or fails within [`RpcClientConfig::call_timeout`]
//! (for a shard writer: each `write`, and `commit`/`abort` until the peer's outcome arrives).
//!
//! **Invariant:** every request is signed as it is handed to the connection, with the next
//! number of this peer's session (one random session per [`Peer`], numbered from 1 by one
//! atomic counter) and the epoch the server told this connection's hello; a 403 drops the
//! cached connection so the next call says hello again (the server may have restarted).
//!
//! **Invariant:** shard bytes are MAC'd end to end: a write's commit trailer carries the MAC
//! of every byte sent, and a read returns only bytes whose MAC from the server matched.
//!
//! **Invariant:** a [`RemoteShardWrite`] holds at most [`SHARD_WRITE_CHANNEL_CHUNKS`] chunks
//! queued; `write` waits for room, which is how HTTP/2 flow control from the peer's disk
//! reaches the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use strata_drive::{
    DataDirEntry, DataDirId, Drive, DriveError, DriveInfo, DriveResult, FormatRecord, MetaEntry, MetaOp,
    ScanRange, ShardWrite, Table,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};

use crate::auth::{
    self, CONTENT_SHA256_HEADER, ClusterSecret, DATE_HEADER, EPOCH_HEADER, HELLO_EPOCH, SEQ_HEADER,
    SESSION_HEADER, SIGNATURE_HEADER, STREAM_MAC_HEADER, STREAMING_PAYLOAD, SignedFields, StreamDirection,
    StreamMac,
};
use crate::body::{BodyItem, RpcBody};
use crate::error::RpcError;
use crate::server::{KEEP_ALIVE_INTERVAL, KEEP_ALIVE_TIMEOUT};
use crate::transport::Connector;
use crate::wire::{self, Op, WireError};
use crate::{
    H2_CONNECTION_WINDOW_BYTES, H2_SEND_BUFFER_BYTES, H2_STREAM_WINDOW_BYTES, RESPONSE_BODY_BYTES_MAX,
    SHARD_CHUNK_BYTES, SHARD_WRITE_CHANNEL_CHUNKS,
};

/// Client settings for calls to peers.
#[derive(Clone, Debug)]
pub struct RpcClientConfig {
    /// Deadline of each call (sent to the server, which stops working on it then).
    pub call_timeout: Duration,
    /// Longest a connection attempt may take.
    pub connect_timeout: Duration,
    /// After a failed connection attempt, calls fail at once for this long.
    pub reconnect_backoff: Duration,
    /// How connections are opened: plain TCP (`http://` peers) or TLS (`https://` peers).
    pub connector: Connector,
}

impl Default for RpcClientConfig {
    fn default() -> Self {
        RpcClientConfig {
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            reconnect_backoff: Duration::from_secs(1),
            connector: Connector::default(),
        }
    }
}

/// Why a call failed, before it becomes a `DriveError` or an `RpcError`.
#[derive(Clone, Debug)]
enum CallError {
    /// The peer answered with an error.
    Remote(WireError),
    /// No answer: connection refused or lost, protocol error.
    Transport(String),
    /// The call's deadline passed.
    Timeout,
}

impl CallError {
    fn into_drive(self, peer: &Peer, endpoint: &str) -> DriveError {
        match self {
            CallError::Remote(error) => error.into_drive(&peer.url, endpoint),
            CallError::Transport(reason) => {
                tracing::debug!(endpoint, reason, "RPC call failed");
                DriveError::Offline {
                    endpoint: endpoint.to_string(),
                }
            }
            CallError::Timeout => {
                tracing::debug!(endpoint, "RPC call deadline passed");
                DriveError::Offline {
                    endpoint: endpoint.to_string(),
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct ConnState {
    conn: Option<Conn>,
    failed_at: Option<Instant>,
    /// Connections made so far (names the current one).
    generation: u64,
}

/// A live connection and the server epoch its hello returned.
#[derive(Clone, Debug)]
struct Conn {
    sender: SendRequest<RpcBody>,
    epoch: String,
    generation: u64,
}

/// Another node: its URL, the shared secret and the one HTTP/2 connection to it.
#[derive(Debug)]
pub struct Peer {
    /// `http://host:port` (or `https://`), no trailing slash.
    url: String,
    authority: String,
    secret: ClusterSecret,
    /// This peer's session id (32 hex digits), drawn at random when the peer is made.
    session: String,
    /// Sequence number of the last request signed in the session.
    seq: AtomicU64,
    config: RpcClientConfig,
    conn: tokio::sync::Mutex<ConnState>,
    /// Queue of unary drive calls waiting to go out; calls queued together leave as one batch.
    batcher: std::sync::OnceLock<mpsc::UnboundedSender<PendingCall>>,
    this: std::sync::Weak<Peer>,
}

/// A unary drive call waiting in the batch queue.
struct PendingCall {
    path: String,
    body: Vec<u8>,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Result<Bytes, CallError>>,
}

impl Peer {
    /// A peer at `url`: `http://host:port` with a plain connector, `https://host:port` with a
    /// TLS one (the certificate must name `host`, a DNS name or an IP address). Connects
    /// lazily, on the first call.
    pub fn new(url: &str, secret: ClusterSecret, config: RpcClientConfig) -> Result<Arc<Peer>, RpcError> {
        let invalid = |reason: &str| RpcError::InvalidEndpoint {
            endpoint: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let scheme = config.connector.scheme();
        match uri.scheme_str() {
            Some(s) if s == scheme => {}
            Some("https") => {
                return Err(invalid(
                    "an https:// peer needs TLS, which is not configured (no certificates)",
                ));
            }
            Some("http") => {
                return Err(invalid(
                    "TLS is configured, so peers are https:// (plain http:// is refused)",
                ));
            }
            _ => return Err(invalid("the scheme is neither http:// nor https://")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.port_u16().is_none() {
            return Err(invalid("no port"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("a peer URL has no path"));
        }
        Ok(Arc::new_cyclic(|this| Peer {
            url: format!("{scheme}://{authority}"),
            authority: authority.to_string(),
            secret,
            session: auth::nonce_hex(auth::random_nonce()),
            seq: AtomicU64::new(0),
            config,
            conn: tokio::sync::Mutex::new(ConnState::default()),
            batcher: std::sync::OnceLock::new(),
            this: this.clone(),
        }))
    }

    /// `http://host:port` (or `https://`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A node-level call (`/strata/rpc/v1/node/<op>`, see [`crate::NodeService`]) with an
    /// opaque body; its answer, within `timeout`.
    pub async fn node_call(&self, op: &str, body: Vec<u8>, timeout: Duration) -> Result<Bytes, RpcError> {
        let path = format!("{}{}{op}", crate::RPC_PATH_PREFIX, wire::NODE_PATH);
        match self.call_queued(&path, body, timeout).await {
            Ok(bytes) => Ok(bytes),
            Err(CallError::Remote(WireError::Unauthorized { reason })) => Err(RpcError::Unauthorized {
                endpoint: self.url.clone(),
                reason,
            }),
            Err(CallError::Remote(WireError::Node { reason })) => Err(RpcError::Node {
                endpoint: self.url.clone(),
                reason,
            }),
            Err(CallError::Remote(other)) => Err(RpcError::Node {
                endpoint: self.url.clone(),
                reason: format!("{other:?}"),
            }),
            Err(CallError::Transport(reason)) => Err(RpcError::Unreachable {
                endpoint: self.url.clone(),
                reason,
            }),
            Err(CallError::Timeout) => Err(RpcError::Unreachable {
                endpoint: self.url.clone(),
                reason: format!("no answer within {timeout:?}"),
            }),
        }
    }

    /// The live connection, connecting (and saying hello) first when there is none.
    async fn connection(&self) -> Result<Conn, CallError> {
        let mut state = self.conn.lock().await;
        if let Some(conn) = &state.conn
            && !conn.sender.is_closed()
        {
            return Ok(conn.clone());
        }
        state.conn = None;
        if let Some(failed_at) = state.failed_at
            && failed_at.elapsed() < self.config.reconnect_backoff
        {
            return Err(CallError::Transport("connecting failed moments ago".to_string()));
        }
        match timeout(self.config.connect_timeout, self.connect()).await {
            Ok(Ok((sender, epoch))) => {
                state.generation += 1;
                let conn = Conn {
                    sender,
                    epoch,
                    generation: state.generation,
                };
                state.conn = Some(conn.clone());
                state.failed_at = None;
                Ok(conn)
            }
            Ok(Err(error)) => {
                state.failed_at = Some(Instant::now());
                Err(error)
            }
            Err(_) => {
                state.failed_at = Some(Instant::now());
                Err(CallError::Transport("connect timed out".to_string()))
            }
        }
    }

    /// Stops using connection `generation` for new calls (its calls in flight go on); the next
    /// call connects and says hello again.
    async fn forget_connection(&self, generation: u64) {
        let mut state = self.conn.lock().await;
        if state.conn.as_ref().is_some_and(|c| c.generation == generation) {
            state.conn = None;
        }
    }

    /// Connects, and asks the server for its epoch (the hello, signed with the epoch `-`).
    async fn connect(&self) -> Result<(SendRequest<RpcBody>, String), CallError> {
        let io = self
            .config
            .connector
            .connect(&self.authority)
            .await
            .map_err(|e| CallError::Transport(format!("connecting to {}: {e}", self.authority)))?;
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_stream_window_size(H2_STREAM_WINDOW_BYTES)
            .initial_connection_window_size(H2_CONNECTION_WINDOW_BYTES)
            .max_send_buf_size(H2_SEND_BUFFER_BYTES)
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true);
        let (mut sender, connection) = builder
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| CallError::Transport(format!("HTTP/2 handshake with {}: {e}", self.authority)))?;
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, authority, "RPC connection closed");
            }
        });
        let path = format!("{}{}", crate::RPC_PATH_PREFIX, wire::HELLO_PATH);
        let deadline = Instant::now() + self.config.connect_timeout;
        let mut hello = self.request(
            &path,
            &auth::content_sha256(b""),
            RpcBody::full(Bytes::new()),
            deadline,
        )?;
        self.sign(&mut hello, HELLO_EPOCH)?;
        let response = sender
            .send_request(hello)
            .await
            .map_err(|e| CallError::Transport(format!("hello to {}: {e}", self.authority)))?;
        let status = response.status();
        let bytes = read_body(response.into_body()).await?;
        if status != StatusCode::OK {
            return Err(remote_error(status, &bytes));
        }
        match std::str::from_utf8(&bytes)
            .ok()
            .filter(|e| auth::parse_nonce(e).is_some())
        {
            Some(epoch) => Ok((sender, epoch.to_string())),
            None => Err(CallError::Transport(format!(
                "{} answered the hello without an epoch (an older version?)",
                self.authority
            ))),
        }
    }

    /// Signs `request` for `epoch` with the session's next sequence number and the current
    /// time (see `auth`); returns the signature.
    fn sign(&self, request: &mut Request<RpcBody>, epoch: &str) -> Result<String, CallError> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let date_secs = auth::now_secs();
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let content_sha256 = request
            .headers()
            .get(CONTENT_SHA256_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let signature = auth::sign_request(
            &self.secret,
            &SignedFields {
                method: request.method().as_str(),
                path_and_query,
                date_secs,
                epoch,
                session: &self.session,
                seq,
                content_sha256,
            },
        );
        let value = |text: &str| {
            http::HeaderValue::from_str(text)
                .map_err(|e| CallError::Transport(format!("building the request: {e}")))
        };
        let headers = request.headers_mut();
        headers.insert(DATE_HEADER, http::HeaderValue::from(date_secs));
        headers.insert(EPOCH_HEADER, value(epoch)?);
        headers.insert(SESSION_HEADER, value(&self.session)?);
        headers.insert(SEQ_HEADER, http::HeaderValue::from(seq));
        headers.insert(SIGNATURE_HEADER, value(&signature)?);
        Ok(signature)
    }

    /// A POST of `body` to `path_and_query`, with the time left until `deadline`; signed by
    /// [`Peer::send`].
    fn request(
        &self,
        path_and_query: &str,
        content_sha256: &str,
        body: RpcBody,
        deadline: Instant,
    ) -> Result<Request<RpcBody>, CallError> {
        let timeout_ms = deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .max(1);
        Request::builder()
            .method(http::Method::POST)
            .uri(format!("{}{path_and_query}", self.url))
            .header(CONTENT_SHA256_HEADER, content_sha256)
            .header(wire::TIMEOUT_HEADER, timeout_ms.to_string())
            .header(http::header::CONTENT_TYPE, wire::MSGPACK_CONTENT_TYPE)
            .body(body)
            .map_err(|e| CallError::Transport(format!("building the request: {e}")))
    }

    /// Signs `request` for the live connection and sends it; the response and the request's
    /// signature (which binds stream MACs to it).
    async fn send(&self, mut request: Request<RpcBody>) -> Result<(Response<Incoming>, String), CallError> {
        let mut conn = self.connection().await?;
        let signature = self.sign(&mut request, &conn.epoch)?;
        let response = conn
            .sender
            .send_request(request)
            .await
            .map_err(|e| CallError::Transport(format!("request to {}: {e}", self.authority)))?;
        if response.status() == StatusCode::FORBIDDEN {
            self.forget_connection(conn.generation).await;
        }
        Ok((response, signature))
    }

    /// A unary drive or node call with a MessagePack body, answered by a whole body; within the
    /// call timeout. Calls made while others to this peer are queued leave together as one batch
    /// request (a set's metadata fan-out reaches each node in one round trip, not one per
    /// drive); a call alone goes out as itself. Nothing waits to fill a batch.
    async fn call(&self, path: &str, body: Vec<u8>) -> Result<Bytes, CallError> {
        self.call_queued(path, body, self.config.call_timeout).await
    }

    /// [`Peer::call`] with its own time budget.
    async fn call_queued(
        &self,
        path: &str,
        body: Vec<u8>,
        call_timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let deadline = Instant::now() + call_timeout;
        let queue = self.batcher.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(batch_loop(self.this.clone(), rx));
            tx
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = PendingCall {
            path: path.to_string(),
            body,
            deadline,
            reply,
        };
        if queue.send(pending).is_err() {
            return Err(CallError::Transport("the batch queue is closed".to_string()));
        }
        match timeout_at(deadline, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Transport("the batch was dropped".to_string())),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// Sends queued calls: one as itself, several as one batch request.
    async fn send_batch(&self, mut calls: Vec<PendingCall>) {
        if calls.len() == 1
            && let Some(call) = calls.pop()
        {
            let budget = call.deadline.saturating_duration_since(Instant::now());
            let result = self.call_within(&call.path, call.body, budget).await;
            let _ = call.reply.send(result);
            return;
        }
        let deadline = calls
            .iter()
            .map(|c| c.deadline)
            .min()
            .unwrap_or_else(Instant::now);
        let request = wire::BatchRequest {
            calls: calls
                .iter_mut()
                .map(|c| wire::BatchCall {
                    path: std::mem::take(&mut c.path),
                    body: wire::Blob(std::mem::take(&mut c.body)),
                })
                .collect(),
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        let path = format!("{}{}", crate::RPC_PATH_PREFIX, wire::BATCH_PATH);
        let outcome = self.call_within(&path, wire::encode(&request), budget).await;
        let answers = match outcome {
            Ok(bytes) => match wire::decode::<wire::BatchResponse>(&bytes) {
                Ok(response) if response.answers.len() == calls.len() => response.answers,
                Ok(_) => {
                    return fail_all(
                        calls,
                        CallError::Transport("batch answer of the wrong length".into()),
                    );
                }
                Err(what) => {
                    return fail_all(
                        calls,
                        CallError::Transport(format!("undecodable batch answer: {what}")),
                    );
                }
            },
            Err(error) => return fail_all(calls, error),
        };
        for (call, answer) in calls.into_iter().zip(answers) {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let result = if status == StatusCode::OK {
                Ok(Bytes::from(answer.body.0))
            } else {
                Err(remote_error(status, &answer.body.0))
            };
            let _ = call.reply.send(result);
        }
    }

    async fn call_within(
        &self,
        path: &str,
        body: Vec<u8>,
        call_timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let deadline = Instant::now() + call_timeout;
        timeout_at(deadline, async {
            let hash = auth::content_sha256(&body);
            let request = self.request(path, &hash, RpcBody::full(Bytes::from(body)), deadline)?;
            let (response, _) = self.send(request).await?;
            let status = response.status();
            let bytes = read_body(response.into_body()).await?;
            if status == StatusCode::OK {
                Ok(bytes)
            } else {
                Err(remote_error(status, &bytes))
            }
        })
        .await
        .unwrap_or(Err(CallError::Timeout))
    }
}

/// Most calls one batch request carries.
const BATCH_CALLS_MAX: usize = 64;

/// Drains the batch queue: whatever is queued when a batch leaves goes in it.
async fn batch_loop(peer: std::sync::Weak<Peer>, mut rx: mpsc::UnboundedReceiver<PendingCall>) {
    while let Some(first) = rx.recv().await {
        let mut calls = vec![first];
        while calls.len() < BATCH_CALLS_MAX {
            match rx.try_recv() {
                Ok(call) => calls.push(call),
                Err(_) => break,
            }
        }
        let Some(peer) = peer.upgrade() else { return };
        tokio::spawn(async move { peer.send_batch(calls).await });
    }
}

fn fail_all(calls: Vec<PendingCall>, error: CallError) {
    for call in calls {
        let _ = call.reply.send(Err(error.clone()));
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, CallError> {
    Limited::new(body, RESPONSE_BODY_BYTES_MAX)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| CallError::Transport(format!("reading the response: {e}")))
}

/// The error a non-200 response stands for.
fn remote_error(status: StatusCode, body: &[u8]) -> CallError {
    match wire::decode::<WireError>(body) {
        Ok(error) => CallError::Remote(error),
        Err(_) if status == StatusCode::FORBIDDEN => CallError::Remote(WireError::Unauthorized {
            reason: "403 without a reason".to_string(),
        }),
        Err(_) => CallError::Transport(format!("peer answered {status} with an undecodable body")),
    }
}

/// A drive on another node, used through the same trait as a local one.
#[derive(Debug)]
pub struct RemoteDrive {
    peer: Arc<Peer>,
    drive_id: String,
    /// `/strata/rpc/v1/drive/<id>/`.
    path: String,
    endpoint: String,
    format: FormatRecord,
}

impl RemoteDrive {
    async fn commit(&self, ops: Vec<MetaOp>, deleting: bool) -> DriveResult<()> {
        let request = wire::MetaCommitRequest {
            ops: ops.into_iter().map(wire::meta_op_to_wire).collect(),
            deleting,
        };
        self.unary_bytes(Op::MetaCommit, &request).await.map(drop)
    }

    /// Connects to drive `drive_id` (its path on the peer, e.g. `/mnt/disk1`) and fetches its
    /// format record.
    pub async fn connect(peer: Arc<Peer>, drive_id: &str) -> Result<Arc<RemoteDrive>, RpcError> {
        let endpoint = if drive_id.starts_with('/') {
            format!("{}{drive_id}", peer.url)
        } else {
            format!("{}/{drive_id}", peer.url)
        };
        let path = wire::drive_path(drive_id);
        let bytes = match peer
            .call(&format!("{path}{}", Op::Format.name()), Vec::new())
            .await
        {
            Ok(bytes) => bytes,
            Err(CallError::Remote(WireError::Unauthorized { reason })) => {
                return Err(RpcError::Unauthorized {
                    endpoint: peer.url.clone(),
                    reason,
                });
            }
            Err(CallError::Remote(WireError::UnknownDrive { drive_id })) => {
                return Err(RpcError::UnknownDrive {
                    endpoint: peer.url.clone(),
                    drive_id,
                });
            }
            Err(error) => return Err(RpcError::Drive(error.into_drive(&peer, &endpoint))),
        };
        let format: FormatRecord = wire::decode(&bytes).map_err(|what| DriveError::Corrupt {
            path: endpoint.clone().into(),
            what: format!("undecodable format record from the peer: {what}"),
        })?;
        Ok(Arc::new(RemoteDrive {
            peer,
            drive_id: drive_id.to_string(),
            path,
            endpoint,
            format,
        }))
    }

    /// The peer this drive is on.
    pub fn peer(&self) -> &Arc<Peer> {
        &self.peer
    }

    /// The drive's id on its peer.
    pub fn drive_id(&self) -> &str {
        &self.drive_id
    }

    fn op_path(&self, op: Op) -> String {
        format!("{}{}", self.path, op.name())
    }

    fn error(&self, error: CallError) -> DriveError {
        error.into_drive(&self.peer, &self.endpoint)
    }

    fn undecodable(&self, what: String) -> DriveError {
        DriveError::Corrupt {
            path: self.endpoint.clone().into(),
            what: format!("undecodable RPC response: {what}"),
        }
    }

    async fn unary_bytes<Req: serde::Serialize>(&self, op: Op, request: &Req) -> DriveResult<Bytes> {
        self.peer
            .call(&self.op_path(op), wire::encode(request))
            .await
            .map_err(|e| self.error(e))
    }

    async fn unary<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        op: Op,
        request: &Req,
    ) -> DriveResult<Resp> {
        let bytes = self.unary_bytes(op, request).await?;
        wire::decode(&bytes).map_err(|what| self.undecodable(what))
    }
}

/// Request body of operations without parameters.
#[derive(serde::Serialize)]
struct NoParams {}

#[async_trait]
impl Drive for RemoteDrive {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn format(&self) -> &FormatRecord {
        &self.format
    }

    async fn meta_get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Bytes>> {
        let request = wire::MetaGetRequest {
            table: table.name().to_string(),
            key: wire::Blob(key.to_vec()),
        };
        let response: wire::MetaGetResponse = self.unary(Op::MetaGet, &request).await?;
        Ok(response.value.map(|v| Bytes::from(v.0)))
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> DriveResult<Vec<MetaEntry>> {
        let response: wire::MetaScanResponse = self
            .unary(Op::MetaScan, &wire::scan_to_wire(table, range))
            .await?;
        Ok(response
            .entries
            .into_iter()
            .map(|e| MetaEntry {
                key: Bytes::from(e.key.0),
                value: Bytes::from(e.value.0),
            })
            .collect())
    }

    async fn meta_commit(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        self.commit(ops, false).await
    }

    async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        self.commit(ops, true).await
    }

    async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>> {
        let peer = &self.peer;
        let call_timeout = peer.config.call_timeout;
        let deadline = Instant::now() + call_timeout;
        let path = format!(
            "{}?{}",
            self.op_path(Op::ShardWrite),
            wire::shard_write_query(dir, part)
        );
        let (tx, body) = RpcBody::channel(SHARD_WRITE_CHANNEL_CHUNKS);
        let opened = timeout_at(deadline, async {
            let request = peer.request(&path, STREAMING_PAYLOAD, body, deadline)?;
            let (response, signature) = peer.send(request).await?;
            let status = response.status();
            if status == StatusCode::OK {
                return Ok((response.into_body(), signature));
            }
            let bytes = read_body(response.into_body()).await?;
            Err(remote_error(status, &bytes))
        })
        .await
        .unwrap_or(Err(CallError::Timeout));
        let (response, signature) = opened.map_err(|e| self.error(e))?;
        Ok(Box::new(RemoteShardWrite {
            tx: Some(tx),
            response: Some(response),
            mac: StreamMac::new(&peer.secret, StreamDirection::Write, &signature),
            peer: Arc::clone(&self.peer),
            endpoint: self.endpoint.clone(),
            call_timeout,
        }))
    }

    async fn shard_read(&self, dir: DataDirId, part: u32, offset: u64, len: u64) -> DriveResult<Bytes> {
        let len_usize = usize::try_from(len).map_err(|_| DriveError::Corrupt {
            path: self.endpoint.clone().into(),
            what: format!("read of {len} bytes does not fit in memory"),
        })?;
        let request = wire::ShardReadRequest {
            dir: dir.0,
            part,
            offset,
            len,
        };
        let peer = &self.peer;
        let deadline = Instant::now() + peer.config.call_timeout;
        let path = self.op_path(Op::ShardRead);
        let read = timeout_at(deadline, async {
            let body = wire::encode(&request);
            let hash = auth::content_sha256(&body);
            let request = peer.request(&path, &hash, RpcBody::full(Bytes::from(body)), deadline)?;
            let (response, signature) = peer.send(request).await?;
            let status = response.status();
            if status != StatusCode::OK {
                let bytes = read_body(response.into_body()).await?;
                return Err(remote_error(status, &bytes));
            }
            let mac = StreamMac::new(&peer.secret, StreamDirection::Read, &signature);
            let header_mac = response.headers().get(STREAM_MAC_HEADER).cloned();
            receive_shard_data(response.into_body(), len_usize, mac, header_mac).await
        })
        .await
        .unwrap_or(Err(CallError::Timeout));
        read.map_err(|e| self.error(e))
    }

    async fn shard_size(&self, dir: DataDirId, part: u32) -> DriveResult<u64> {
        let response: wire::ShardSizeResponse = self
            .unary(Op::ShardSize, &wire::ShardRef { dir: dir.0, part })
            .await?;
        Ok(response.size_bytes)
    }

    async fn shard_delete(&self, dir: DataDirId, part: u32) -> DriveResult<()> {
        self.unary_bytes(Op::ShardDelete, &wire::ShardRef { dir: dir.0, part })
            .await
            .map(drop)
    }

    async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()> {
        self.unary_bytes(Op::DataDirDelete, &wire::DataDirDeleteRequest { dir: dir.0 })
            .await
            .map(drop)
    }

    async fn data_dir_list(
        &self,
        start_after: Option<DataDirId>,
        limit: u32,
    ) -> DriveResult<Vec<DataDirEntry>> {
        let request = wire::DataDirListRequest {
            start_after: start_after.map(|d| d.0),
            limit,
        };
        let response: wire::DataDirListResponse = self.unary(Op::DataDirList, &request).await?;
        Ok(response
            .entries
            .iter()
            .map(wire::data_dir_entry_from_wire)
            .collect())
    }

    async fn info(&self) -> DriveResult<DriveInfo> {
        let response: wire::InfoResponse = self.unary(Op::Info, &NoParams {}).await?;
        Ok(DriveInfo {
            total_bytes: response.total_bytes,
            free_bytes: response.free_bytes,
        })
    }

    async fn healing_mark(&self) -> DriveResult<bool> {
        let response: wire::HealingMarkResponse = self.unary(Op::HealingMark, &NoParams {}).await?;
        Ok(response.on)
    }

    async fn set_healing_mark(&self, on: bool) -> DriveResult<()> {
        self.unary_bytes(Op::SetHealingMark, &wire::SetHealingMarkRequest { on })
            .await
            .map(drop)
    }
}

/// Collects exactly `len` bytes of a streamed shard read (one frame is returned without a
/// copy); an error trailer, a short stream, or a stream MAC (`header_mac`, else the final
/// trailer's) that does not match the bytes fails the read.
async fn receive_shard_data(
    mut body: Incoming,
    len: usize,
    mut mac: StreamMac,
    header_mac: Option<http::HeaderValue>,
) -> Result<Bytes, CallError> {
    let mut sent_mac = header_mac;
    let mut first: Option<Bytes> = None;
    let mut assembled: Option<BytesMut> = None;
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CallError::Transport(format!("shard read stream broke: {e}")))?;
        let frame = match frame.into_data() {
            Ok(data) => {
                received = received.saturating_add(data.len());
                if received > len {
                    return Err(CallError::Transport(format!(
                        "peer sent more than the {len} bytes asked for"
                    )));
                }
                mac.update(&data);
                match (&mut first, &mut assembled) {
                    (None, None) => first = Some(data),
                    (Some(_), None) => {
                        let mut buf = BytesMut::with_capacity(len);
                        if let Some(first) = first.take() {
                            buf.extend_from_slice(&first);
                        }
                        buf.extend_from_slice(&data);
                        assembled = Some(buf);
                    }
                    (_, Some(buf)) => buf.extend_from_slice(&data),
                }
                continue;
            }
            Err(frame) => frame,
        };
        let Ok(trailers) = frame.into_trailers() else {
            continue;
        };
        if let Some(value) = trailers.get(STREAM_MAC_HEADER) {
            sent_mac = Some(value.clone());
        }
        if let Some(value) = trailers.get(wire::ERROR_TRAILER) {
            let error = hex::decode(value.as_bytes())
                .ok()
                .and_then(|bytes| wire::decode::<WireError>(&bytes).ok())
                .unwrap_or(WireError::OtherDrive {
                    message: "undecodable error trailer".to_string(),
                });
            return Err(CallError::Remote(error));
        }
    }
    if received != len {
        return Err(CallError::Transport(format!(
            "shard read ended after {received} of {len} bytes"
        )));
    }
    if !mac.matches(sent_mac.as_ref().map(http::HeaderValue::as_bytes)) {
        log_bad_read_mac();
        return Err(CallError::Transport(
            "shard read stream failed authentication".to_string(),
        ));
    }
    Ok(match (first, assembled) {
        (_, Some(buf)) => buf.freeze(),
        (Some(first), None) => first,
        (None, None) => Bytes::new(),
    })
}

/// Warns that a shard read's MAC did not match, at most once per
/// [`crate::REFUSAL_LOG_INTERVAL_SECS`] (the others are counted in the next line).
fn log_bad_read_mac() {
    static LOGGED_AT_SECS: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = auth::now_secs();
    let last = LOGGED_AT_SECS.load(Ordering::Relaxed);
    if now.saturating_sub(last) < crate::REFUSAL_LOG_INTERVAL_SECS
        || LOGGED_AT_SECS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let suppressed_since_last = SUPPRESSED.swap(0, Ordering::Relaxed);
    tracing::warn!(
        suppressed_since_last,
        "a shard read's stream MAC is missing or wrong (bytes changed in flight?); read refused"
    );
}

/// A shard file being written on a peer: one long-lived request whose body is fed by `write`.
///
/// The peer commits only on the commit trailer; `abort`, a drop, a broken stream or a lost
/// connection all leave nothing visible there.
#[derive(Debug)]
struct RemoteShardWrite {
    /// `None` once ended (committed, aborted or failed).
    tx: Option<mpsc::Sender<BodyItem>>,
    /// Carries the peer's [`wire::ShardWriteOutcome`] at the end.
    response: Option<Incoming>,
    /// MAC of every byte queued so far, sent in the commit trailer.
    mac: StreamMac,
    peer: Arc<Peer>,
    endpoint: String,
    call_timeout: Duration,
}

impl RemoteShardWrite {
    fn offline(&self) -> DriveError {
        DriveError::Offline {
            endpoint: self.endpoint.clone(),
        }
    }

    fn ended(&self) -> DriveError {
        DriveError::Io {
            path: self.endpoint.clone().into(),
            source: std::io::Error::other("an earlier write to this remote shard file failed"),
        }
    }

    /// Waits for the peer's outcome of the whole write.
    async fn outcome(&mut self) -> DriveResult<()> {
        let Some(body) = self.response.take() else {
            return Err(self.ended());
        };
        let bytes = match timeout(self.call_timeout, read_body(body)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) => return Err(error.into_drive(&self.peer, &self.endpoint)),
            Err(_) => return Err(self.offline()),
        };
        match wire::decode::<wire::ShardWriteOutcome>(&bytes) {
            Ok(wire::ShardWriteOutcome { error: None }) => Ok(()),
            Ok(wire::ShardWriteOutcome { error: Some(error) }) => {
                Err(error.into_drive(&self.peer.url, &self.endpoint))
            }
            Err(_) => Err(self.offline()),
        }
    }

    /// Ends the stream with `action` and returns the peer's outcome.
    async fn finish(&mut self, action: &'static str) -> DriveResult<()> {
        let Some(tx) = self.tx.take() else {
            return Err(self.ended());
        };
        let mut trailers = http::HeaderMap::new();
        trailers.insert(wire::SHARD_END_TRAILER, http::HeaderValue::from_static(action));
        if action == wire::SHARD_COMMIT
            && let Ok(value) = http::HeaderValue::from_str(&self.mac.hex())
        {
            trailers.insert(STREAM_MAC_HEADER, value);
        }
        match timeout(self.call_timeout, tx.send(Ok(Frame::trailers(trailers)))).await {
            // Sent, or the stream is already gone: the outcome says what happened.
            Ok(_) => {}
            Err(_) => return Err(self.offline()),
        }
        drop(tx);
        self.outcome().await
    }
}

#[async_trait]
impl ShardWrite for RemoteShardWrite {
    async fn write(&mut self, mut buf: Bytes) -> DriveResult<()> {
        let Some(tx) = &self.tx else {
            return Err(self.ended());
        };
        while !buf.is_empty() {
            let chunk = buf.split_to(buf.len().min(SHARD_CHUNK_BYTES));
            self.mac.update(&chunk);
            match timeout(self.call_timeout, tx.send(Ok(Frame::data(chunk)))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    // The stream is gone: the peer failed the write (its outcome says why)
                    // or the connection broke.
                    self.tx = None;
                    return Err(match self.outcome().await {
                        Err(error) => error,
                        Ok(()) => self.offline(),
                    });
                }
                Err(_) => {
                    self.tx = None;
                    self.response = None;
                    return Err(self.offline());
                }
            }
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> DriveResult<()> {
        self.finish(wire::SHARD_COMMIT).await
    }

    async fn abort(mut self: Box<Self>) -> DriveResult<()> {
        self.finish(wire::SHARD_ABORT).await
    }
}

impl Drop for RemoteShardWrite {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // Reset the stream so the peer discards the temp file. If the queue is full, just
            // ending the stream without the commit trailer has the same effect.
            let _ = tx.try_send(Err(std::io::Error::other("shard writer dropped without commit")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_connector() -> Connector {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        Connector::Tls(crate::tls_client_config(roots).unwrap())
    }

    fn peer(url: &str, connector: Connector) -> Result<Arc<Peer>, RpcError> {
        let config = RpcClientConfig {
            connector,
            ..RpcClientConfig::default()
        };
        Peer::new(url, ClusterSecret::from_dedicated_secret(b"s"), config)
    }

    #[test]
    fn the_scheme_matches_the_connector() {
        assert_eq!(
            peer("http://127.0.0.1:9000", Connector::Tcp).unwrap().url(),
            "http://127.0.0.1:9000"
        );
        assert_eq!(
            peer("https://127.0.0.1:9000/", tls_connector()).unwrap().url(),
            "https://127.0.0.1:9000"
        );
        let refused = |url: &str, connector: Connector, needle: &str| match peer(url, connector) {
            Err(RpcError::InvalidEndpoint { reason, .. }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!("{url}: expected InvalidEndpoint, got {other:?}"),
        };
        refused("https://127.0.0.1:9000", Connector::Tcp, "not configured");
        refused(
            "http://127.0.0.1:9000",
            tls_connector(),
            "plain http:// is refused",
        );
        refused("ftp://127.0.0.1:9000", Connector::Tcp, "neither");
        refused("https://127.0.0.1", tls_connector(), "no port");
    }
}
