//! The drive error type: one enum whose variants state what went wrong on which drive.

use std::path::PathBuf;

/// Everything a drive operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriveError {
    /// The drive carries no format record (a fresh or wiped directory) and formatting was not
    /// allowed.
    #[error("drive {path:?} is not formatted")]
    Unformatted {
        /// Drive root.
        path: PathBuf,
    },
    /// The drive's format record belongs to another deployment or another position.
    #[error("drive {path:?} is formatted for {found}, expected {expected}")]
    FormatMismatch {
        /// Drive root.
        path: PathBuf,
        /// What the record on the drive says.
        found: String,
        /// What this deployment expects there.
        expected: String,
    },
    /// A record or file failed its checksum or could not be decoded.
    #[error("corrupt data on drive {path:?}: {what}")]
    Corrupt {
        /// Drive root.
        path: PathBuf,
        /// What was corrupt.
        what: String,
    },
    /// The requested shard file does not exist.
    #[error("shard file not found")]
    ShardNotFound,
    /// The drive is offline (failed recently and not yet recovered).
    #[error("drive {endpoint} is offline")]
    Offline {
        /// Drive endpoint.
        endpoint: String,
    },
    /// The drive has no room for new data: writing more would eat into the space kept for
    /// deletions (see `space.rs`), or the filesystem said ENOSPC. Not a failure of the drive:
    /// reads and deletes go on, and writes resume by themselves once space is freed.
    #[error("drive {path:?} is full")]
    Full {
        /// Drive root.
        path: PathBuf,
    },
    /// The drive's filesystem is mounted read-only (EROFS, for example after ext4's
    /// `errors=remount-ro`): it still serves reads, but takes no writes until it is writable.
    #[error("drive {path:?} is read-only")]
    ReadOnly {
        /// Drive root.
        path: PathBuf,
    },
    /// The drive's metadata store is being reopened after an I/O failure (or its reopen failed
    /// and is retried): this call failed, but that alone does not make the drive a failed one
    /// (the monitor's probe decides, if the store stays closed).
    #[error("the metadata store of drive {path:?} is being reopened")]
    StoreReopening {
        /// Drive root.
        path: PathBuf,
    },
    /// The process ran out of a resource that is not the drive's (file descriptors: EMFILE,
    /// ENFILE; memory): the operation failed, but the drive is not at fault.
    #[error("out of process resources on drive {path:?}: {what}")]
    ProcessResources {
        /// Drive root or file.
        path: PathBuf,
        /// What ran out.
        what: String,
    },
    /// An I/O error from the operating system.
    #[error("I/O error on drive {path:?}: {source}")]
    Io {
        /// Drive root or file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A metadata record is larger than the drive accepts (see `META_KEY_BYTES_MAX` and
    /// `META_VALUE_BYTES_MAX` in the local drive).
    #[error(
        "metadata record too large: key {key_bytes} bytes (max {key_bytes_max}), value {value_bytes} bytes (max {value_bytes_max})"
    )]
    RecordTooLarge {
        /// Size of the key.
        key_bytes: u64,
        /// Largest key accepted.
        key_bytes_max: u64,
        /// Size of the value.
        value_bytes: u64,
        /// Largest value accepted.
        value_bytes_max: u64,
    },
    /// The metadata database failed.
    #[error("metadata store error on drive {path:?}: {message}")]
    MetaStore {
        /// Drive root.
        path: PathBuf,
        /// The store's description of the failure.
        message: String,
    },
}

impl DriveError {
    /// Whether the error means "the thing asked for is not there" rather than a fault.
    pub fn is_not_found(&self) -> bool {
        matches!(self, DriveError::ShardNotFound)
    }
}
