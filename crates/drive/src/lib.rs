//! Drives: where shards and metadata records finally live.
//!
//! A [`Drive`] stores two kinds of things for the object layer above it:
//!
//! - **Metadata records** in a few ordered key-value [`Table`]s. Keys and values are opaque
//!   bytes to the drive; ordering is bytewise. A batch of [`MetaOp`]s commits atomically and
//!   durably, and concurrent commits on one drive share one fsync (group commit).
//! - **Shard files** under a data directory named by a random [`DataDirId`], never by an
//!   object key. A shard file is written into the drive's temp area and only appears under its
//!   final name once it is durable ([`ShardWrite::commit`]).
//!
//! The object layer never knows whether a drive is local ([`LocalDrive`]) or, later, remote
//! over node-to-node RPC: both implement the same trait.
//!
//! **Architecture invariant:** this crate knows nothing of S3, buckets, objects or erasure
//! coding. It stores bytes under keys and files under ids, and says the truth about whether
//! they are durable.
//!
//! ```no_run
//! # async fn demo() -> Result<(), strata_drive::DriveError> {
//! use strata_drive::{Drive, FormatRecord, LocalDrive, MetaOp, Table};
//! let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
//! let drive = LocalDrive::open("/tmp/strata-demo-drive".into(), &format).await?;
//! drive.meta_commit(vec![MetaOp::put(Table::Buckets, b"photos".to_vec(), b"{}".to_vec())]).await?;
//! assert!(drive.meta_get(Table::Buckets, b"photos").await?.is_some());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod direct;
mod error;
mod format;
mod fs_sync;
mod group_commit;
mod local;
mod maintenance;
mod meta_db;
pub mod metrics;
mod record;
pub mod space;

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::DriveError;
pub use format::FormatRecord;
pub use local::{CommitStats, LocalDrive, META_CACHE_BYTES, meta_cache_bytes, set_meta_cache_bytes};

/// Memory one shard file being written holds for its buffer (one chunk plus alignment), so
/// callers can budget for writes in flight.
pub const SHARD_WRITE_BUFFER_BYTES: u64 =
    (direct::SHARD_WRITE_CHUNK_BYTES + direct::DIRECT_IO_ALIGN_BYTES) as u64;
/// Write buffers kept for reuse by the process at most (a fixed part of its memory).
pub const SHARD_WRITE_BUFFERS_POOLED_BYTES_MAX: u64 =
    SHARD_WRITE_BUFFER_BYTES * direct::SHARD_WRITE_BUFFERS_POOLED_MAX as u64;
pub use maintenance::MaintenanceReport;

/// Result type of every drive operation.
pub type DriveResult<T> = Result<T, DriveError>;

/// The ordered key-value tables a drive keeps. Each is a separate keyspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Table {
    /// One record per bucket.
    Buckets,
    /// Per-bucket configuration blobs (policy, lifecycle, ...), keyed by bucket and name.
    BucketConfig,
    /// One record per object version (metadata only, so listings stay cheap).
    Objects,
    /// The inline data of small object versions, keyed exactly as in [`Table::Objects`].
    InlineData,
    /// One record per multipart upload in progress.
    Uploads,
    /// One record per uploaded part of a multipart upload.
    Parts,
    /// Records of the deployment's own state (identities, policies, configuration), keyed by
    /// namespace and key: not buckets and not objects.
    System,
}

impl Table {
    /// Every table, for iteration (format checks, healing).
    pub const ALL: [Table; 7] = [
        Table::Buckets,
        Table::BucketConfig,
        Table::Objects,
        Table::InlineData,
        Table::Uploads,
        Table::Parts,
        Table::System,
    ];

    /// The stable on-drive name of the table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Buckets => "buckets",
            Table::BucketConfig => "bucket_config",
            Table::Objects => "objects",
            Table::InlineData => "inline_data",
            Table::Uploads => "uploads",
            Table::Parts => "parts",
            Table::System => "system",
        }
    }
}

/// One change inside an atomic metadata batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaOp {
    /// Insert or replace the value under `key`.
    Put {
        /// Table to change.
        table: Table,
        /// Record key.
        key: Vec<u8>,
        /// Record value.
        value: Vec<u8>,
    },
    /// Remove `key` if present (absent keys are not an error).
    Delete {
        /// Table to change.
        table: Table,
        /// Record key.
        key: Vec<u8>,
    },
}

impl MetaOp {
    /// Shorthand for [`MetaOp::Put`].
    pub fn put(table: Table, key: Vec<u8>, value: Vec<u8>) -> Self {
        MetaOp::Put { table, key, value }
    }

    /// Shorthand for [`MetaOp::Delete`].
    pub fn delete(table: Table, key: Vec<u8>) -> Self {
        MetaOp::Delete { table, key }
    }
}

/// A range scan request: keys `>= start` (or `> start` when `start_exclusive`) that begin
/// with `prefix`, in ascending bytewise order, at most `limit` of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanRange {
    /// Only keys with this prefix are returned.
    pub prefix: Vec<u8>,
    /// Where to start; empty means at `prefix`.
    pub start: Vec<u8>,
    /// Whether `start` itself is skipped.
    pub start_exclusive: bool,
    /// Maximum number of entries returned.
    pub limit: u32,
    /// Return keys only (every value empty): for callers that compare keys, such as a listing
    /// checking which drives agree on a version. Values are then not read, checked or copied.
    pub keys_only: bool,
}

/// One entry returned by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaEntry {
    /// Record key.
    pub key: Bytes,
    /// Record value.
    pub value: Bytes,
}

/// Random id of a data directory holding an object version's (or an upload's) shard files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataDirId(pub uuid::Uuid);

impl DataDirId {
    /// A fresh random id.
    pub fn new_random() -> Self {
        DataDirId(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for DataDirId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_simple().fmt(f)
    }
}

/// A data directory found on a drive, for the sweep of orphaned data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDirEntry {
    /// Its id.
    pub id: DataDirId,
    /// Last modification of the directory itself (a new shard file touches it).
    pub modified: std::time::SystemTime,
}

/// Capacity and state of a drive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveInfo {
    /// Size of the filesystem holding the drive.
    pub total_bytes: u64,
    /// Bytes available to Strata.
    pub free_bytes: u64,
}

/// A drive: the object layer's only way to store anything.
///
/// Every method may fail with [`DriveError`]; callers treat a failing drive as one missing
/// shard and rely on quorum across the set.
#[async_trait]
pub trait Drive: Send + Sync + fmt::Debug {
    /// A human-readable location for logs and admin output (a path or a URL).
    fn endpoint(&self) -> &str;

    /// The format record this drive was opened with.
    fn format(&self) -> &FormatRecord;

    /// Reads one metadata record.
    async fn meta_get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Bytes>>;

    /// Reads an ordered range of metadata records.
    async fn meta_scan(&self, table: Table, range: ScanRange) -> DriveResult<Vec<MetaEntry>>;

    /// Applies `ops` atomically and durably: when this returns `Ok`, the whole batch survives a
    /// crash; when it returns `Err` or the process dies first, none or all of it is visible.
    async fn meta_commit(&self, ops: Vec<MetaOp>) -> DriveResult<()>;

    /// [`Drive::meta_commit`] for a batch that deletes: an object or version removed, a delete
    /// marker, an upload aborted. It may use the space a drive keeps back for deletions, so
    /// that a full drive can always be emptied (an ordinary commit there fails with
    /// [`DriveError::Full`]).
    async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> DriveResult<()>;

    /// Starts writing shard file `part` of data directory `dir` into the temp area.
    async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>>;

    /// Reads `len` bytes at `offset` of shard file `part` of `dir`, also while `dir` sits in
    /// the trash after [`Drive::data_dir_delete`] (a read of a version replaced meanwhile).
    async fn shard_read(&self, dir: DataDirId, part: u32, offset: u64, len: u64) -> DriveResult<Bytes>;

    /// Size of shard file `part` of `dir`.
    async fn shard_size(&self, dir: DataDirId, part: u32) -> DriveResult<u64>;

    /// Removes shard file `part` of `dir` (absent is not an error).
    async fn shard_delete(&self, dir: DataDirId, part: u32) -> DriveResult<()>;

    /// Moves the whole data directory to the trash, from where it is removed in the background
    /// after a grace period that lets reads already under way finish (absent is not an error).
    async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()>;

    /// Lists data directories in id order, after `start_after` when given, at most `limit`.
    async fn data_dir_list(
        &self,
        start_after: Option<DataDirId>,
        limit: u32,
    ) -> DriveResult<Vec<DataDirEntry>>;

    /// Capacity of the drive.
    async fn info(&self) -> DriveResult<DriveInfo>;

    /// Whether the drive carries the *healing* mark: it joined an existing deployment empty and
    /// has not been brought to full redundancy yet. The mark survives restarts.
    async fn healing_mark(&self) -> DriveResult<bool>;

    /// Sets or clears the healing mark durably.
    async fn set_healing_mark(&self, on: bool) -> DriveResult<()>;
}

/// An in-progress shard file.
///
/// Dropping a writer without calling [`ShardWrite::commit`] leaves nothing visible: the temp
/// file is removed (eventually, by the temp-area cleaner at worst).
#[async_trait]
pub trait ShardWrite: Send {
    /// Appends bytes.
    async fn write(&mut self, buf: Bytes) -> DriveResult<()>;

    /// Makes the file durable and moves it to its final name, replacing any older file of the
    /// same name atomically. When this returns `Ok`, the shard survives a crash.
    async fn commit(self: Box<Self>) -> DriveResult<()>;

    /// Discards the file.
    async fn abort(self: Box<Self>) -> DriveResult<()>;
}
