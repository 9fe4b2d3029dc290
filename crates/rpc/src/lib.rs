//! Node-to-node RPC: one node uses another node's drives through the same
//! [`strata_drive::Drive`] trait the object layer uses for local drives.
//!
//! - [`RpcServer`] serves a set of named local drives under [`RPC_PATH_PREFIX`]
//!   (`/strata/rpc/v1/drive/<drive-id>/<op>`). [`RpcServer::handle`] is a plain
//!   `Request -> Response` function, so the S3 server can dispatch to it by path prefix on its
//!   own port; [`RpcServer::bind`] runs a standalone h2c or TLS listener (tests, or a separate port).
//! - [`Peer`] is one multiplexed, kept-alive HTTP/2 connection to another node, shared by every
//!   [`RemoteDrive`] on that node and re-established after failures.
//! - [`RemoteDrive`] implements `Drive`: metadata calls are small MessagePack bodies; shard
//!   data streams in both directions with backpressure through bounded channels and h2 flow
//!   control, never buffered whole.
//! - [`Connector`] and [`Acceptor`] carry the calls over plain TCP (h2c, `http://` peers) or
//!   TLS (rustls, `https://` peers; [`tls_client_config`], [`tls_server_config`]).
//! - [`ClusterSecret`] authenticates every call with HMAC-SHA256 over method, path, timestamp,
//!   the server's epoch, the client's session and sequence number, and the body hash; a
//!   sequence number is accepted once per session (anti-replay window), and shard streams carry
//!   a keyed-BLAKE3 MAC over every byte (see `docs/RPC.md` for the wire format).
//!
//! **Architecture invariant:** never buffers shard data whole: a shard write is one long-lived
//! request body fed by a bounded channel, a shard read is a response streamed in bounded chunks.
//!
//! **Architecture invariant:** every call is authenticated (a bad MAC, a timestamp more than
//! [`CLOCK_SKEW_SECS_MAX`] away, another server run's epoch or a sequence number seen before is
//! refused with 403, and the refusal says nothing about the server), shard data is committed
//! or returned only after its stream MAC matched, and every call is deadline-bound (the client gives up
//! after its call timeout; the server stops working on a call when the deadline it was sent
//! passes).
//!
//! **Architecture invariant:** remote drive errors arrive as the same `DriveError` variants
//! (`ShardNotFound`, `Corrupt`, `Full`, ...); transport failures and expired deadlines are
//! `DriveError::Offline` naming the peer's endpoint.
//!
//! ```no_run
//! # async fn demo(local: std::sync::Arc<dyn strata_drive::Drive>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use strata_drive::Drive;
//! use strata_rpc::{ClusterSecret, Peer, RemoteDrive, RpcClientConfig, RpcServer};
//!
//! let secret = ClusterSecret::derive_from_root_secret("root-secret-key");
//! // On node 2: serve its drives.
//! let drives = HashMap::from([("/mnt/disk1".to_string(), local)]);
//! let server = Arc::new(RpcServer::new(secret.clone(), drives));
//! let handle = server.bind("127.0.0.1:9100".parse()?).await?;
//! // On node 1: use them.
//! let peer = Peer::new(&format!("http://{}", handle.local_addr()), secret, RpcClientConfig::default())?;
//! let remote = RemoteDrive::connect(peer, "/mnt/disk1").await?;
//! let info = remote.info().await?;
//! # let _ = info; Ok(()) }
//! ```
#![deny(missing_docs)]

mod auth;
mod body;
mod client;
mod error;
mod replay;
mod server;
mod transport;
mod wire;

pub use auth::{ClusterSecret, SignedFields, sign_request};
pub use body::RpcBody;
pub use client::{Peer, RemoteDrive, RpcClientConfig};
pub use error::RpcError;
pub use server::{NodeService, RpcServer, RpcServerHandle};
pub use transport::{
    ALPN_H2, ALPN_HTTP1, Acceptor, Connector, certified_key, tls_client_config, tls_server_config,
    tls_server_config_with_resolver,
};

/// Every RPC path starts with this; the S3 server dispatches requests under it to
/// [`RpcServer::handle`].
pub const RPC_PATH_PREFIX: &str = "/strata/rpc/v1/";

/// Calls whose timestamp is further than this from the server's clock are refused (403).
pub const CLOCK_SKEW_SECS_MAX: u64 = 5 * 60;

/// Sequence numbers one session's anti-replay window spans (one bit each: 8 KiB per session).
/// Requests of one client session arrive out of order by far fewer than this.
pub const REPLAY_WINDOW_SEQS: u64 = 64 * 1024;

/// Client sessions a server keeps anti-replay windows for. At the bound, requests opening a
/// new session are refused (403) until an old session expires; live sessions are never
/// evicted, so a replay is never accepted. Each client process has one session per server
/// (per [`Peer`]), so this is far above the number of nodes.
pub const REPLAY_SESSIONS_MAX: usize = 2048;

/// At most one log line per this interval for each kind of refused call (the others are
/// counted and reported in the next line).
pub const REFUSAL_LOG_INTERVAL_SECS: u64 = 5;

/// Largest metadata request body accepted by the server (a `meta_commit` batch): a few of the
/// largest values the local drive accepts, plus encoding overhead.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Largest metadata response body the client accepts (a sanity cap against a broken peer; a
/// scan page of inline data is far below it).
pub const RESPONSE_BODY_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Shard data is cut into chunks of at most this size on the wire (zero-copy slices of the
/// caller's buffers), in both directions.
pub const SHARD_CHUNK_BYTES: usize = 256 * 1024;

/// Chunks a shard writer may have queued ahead of the HTTP/2 stream before `write` waits.
pub const SHARD_WRITE_CHANNEL_CHUNKS: usize = 4;

/// Chunks the server may have read ahead of the client on one shard read.
pub const SHARD_READ_CHANNEL_CHUNKS: usize = 2;

/// HTTP/2 flow-control window per stream (both directions): how much one stream may have in
/// flight unread by the receiver.
pub const H2_STREAM_WINDOW_BYTES: u32 = 1024 * 1024;

/// HTTP/2 flow-control window per connection: all streams to one peer together.
pub const H2_CONNECTION_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// Largest amount the HTTP/2 layer buffers for sending on one stream.
pub const H2_SEND_BUFFER_BYTES: usize = 1024 * 1024;

/// Concurrent calls (HTTP/2 streams) the server allows on one connection.
pub const H2_STREAMS_PER_CONNECTION_MAX: u32 = 1024;

/// Longest deadline the server honours for one call, whatever the client asks for.
pub const SERVER_CALL_TIMEOUT_SECS_MAX: u64 = 10 * 60;

/// Longest a shard write's stream may go without a frame before the server aborts it (the
/// client may be pacing a slow S3 upload; a dead client is noticed sooner by h2 pings).
pub const SHARD_WRITE_IDLE_SECS_MAX: u64 = 10 * 60;

/// Bytes one shard write may hold in the RPC layer on the client side: the queued chunks plus
/// the h2 send buffer.
pub const SHARD_WRITE_BUFFERED_BYTES_MAX: usize =
    SHARD_WRITE_CHANNEL_CHUNKS * SHARD_CHUNK_BYTES + H2_SEND_BUFFER_BYTES;

const _: () = assert!(SHARD_CHUNK_BYTES as u64 <= H2_STREAM_WINDOW_BYTES as u64);
const _: () = assert!(H2_STREAM_WINDOW_BYTES <= H2_CONNECTION_WINDOW_BYTES);
const _: () = assert!(REQUEST_BODY_BYTES_MAX <= RESPONSE_BODY_BYTES_MAX);
const _: () = assert!(SHARD_WRITE_BUFFERED_BYTES_MAX < 8 * 1024 * 1024);
// All windows together stay small (16 MiB at the bound).
const _: () = assert!(REPLAY_SESSIONS_MAX as u64 * (REPLAY_WINDOW_SEQS / 8) <= 16 * 1024 * 1024);
