//! The crate's error type: domain facts about topology, locks and peers.

/// Everything the cluster layer can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// An endpoint argument could not be expanded.
    #[error(transparent)]
    Ellipsis(#[from] crate::ellipsis::EllipsisError),
    /// The endpoints do not make a valid deployment.
    #[error("invalid topology: {reason}")]
    InvalidTopology {
        /// What is wrong.
        reason: String,
    },
    /// A lock could not be acquired from a quorum of nodes before the deadline.
    #[error("lock on {resource:?} not acquired within the deadline")]
    LockTimeout {
        /// The resource.
        resource: String,
    },
    /// A lock request or response from a peer could not be decoded.
    #[error("malformed lock message: {reason}")]
    MalformedLockMessage {
        /// What the decoder reported.
        reason: String,
    },
}
