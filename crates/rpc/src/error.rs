//! The RPC error type, for setting things up (endpoints, listeners, connecting a remote drive).
//! Calls on a connected [`crate::RemoteDrive`] fail with `DriveError` like any drive.

use std::net::SocketAddr;

use strata_drive::DriveError;

/// Everything setting up RPC can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The peer endpoint is not a URL of the form `http://host:port` (`https://` with TLS).
    #[error("invalid peer endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The listener could not bind its address.
    #[error("cannot listen for RPC on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The peer refused our calls (403): the cluster secrets differ or the clocks are too far
    /// apart.
    #[error("peer {endpoint} refused the RPC call: {reason}")]
    Unauthorized {
        /// Peer endpoint.
        endpoint: String,
        /// The peer's reason.
        reason: String,
    },
    /// The peer serves no drive under this id.
    #[error("peer {endpoint} serves no drive {drive_id:?}")]
    UnknownDrive {
        /// Peer endpoint.
        endpoint: String,
        /// Drive id asked for.
        drive_id: String,
    },
    /// A node-level call failed on the peer (or the service is not running there yet).
    #[error("node call to {endpoint} failed: {reason}")]
    Node {
        /// Peer endpoint.
        endpoint: String,
        /// The peer's reason.
        reason: String,
    },
    /// The peer did not answer (refused, cut off, or past the deadline).
    #[error("peer {endpoint} did not answer: {reason}")]
    Unreachable {
        /// Peer endpoint.
        endpoint: String,
        /// What happened.
        reason: String,
    },
    /// A TLS configuration could not be built (no trust roots, a key that does not match the
    /// certificate, an unsupported key type).
    #[error("TLS setup failed: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
    /// The call failed like a drive call fails (peer offline, drive error on the peer).
    #[error(transparent)]
    Drive(#[from] DriveError),
}
