//! The object layer: buckets, objects, versions, listing and multipart uploads, stored
//! erasure coded across sets of drives.
//!
//! [`ObjectLayer`] is the only entry point. It places each object on one erasure set by a
//! keyed hash of its name, writes a version record (and, for larger objects, framed shard
//! files) to every drive of the set, and acknowledges once write quorum is durable. Reads
//! need read quorum of consistent records and enough good shards; a missing or corrupt shard
//! is reconstructed from parity on the fly.
//!
//! **Architecture invariant:** no HTTP, XML or S3 error codes here; the object layer speaks in
//! [`ObjectError`] domain facts. It never touches a filesystem: everything goes through
//! [`strata_drive::Drive`].
//!
//! **Architecture invariant:** no write is acknowledged before write-quorum drives have made
//! it durable; a write that misses quorum is rolled back on the drives that took it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use strata_object::{ObjectLayer, MakeBucketOptions, PutOptions, GetOptions};
//! let dirs: Vec<std::path::PathBuf> = (1..=4).map(|i| format!("/tmp/demo/disk{i}").into()).collect();
//! let layer = ObjectLayer::open_local(&dirs).await?;
//! layer.make_bucket("photos", MakeBucketOptions::default()).await?;
//! let body = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"hello")) });
//! let info = layer.put_object("photos", "a.txt", Box::pin(body), PutOptions::default()).await?;
//! assert_eq!(info.etag, "5d41402abc4b2a76b9719d911017c592");
//! let reader = layer.get_object("photos", "a.txt", GetOptions::default()).await?;
//! assert_eq!(reader.length, 5);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod api;
mod background;
mod body_md5;
mod checksum;
mod classes;
mod decommission;
mod deployment;
mod error;
mod heal;
mod layer;
mod list;
pub mod memory;
mod meta_update;
pub mod metrics;
mod multipart;
mod names;
mod offline;
mod record;
mod remote;
mod restore;
mod set;
mod slot;
mod stream;
mod system;
mod transition;

/// Bytes of PUT bodies queued for the ETag hasher at most, process-wide (a fixed part of the
/// process's memory).
pub const ETAG_QUEUE_BYTES_MAX: u64 = body_md5::QUEUED_BYTES_TOTAL_MAX as u64;
pub use api::*;
pub use background::{
    BackgroundConfig, DriveStatus, HealScope, HealSequenceStatus, HealState, ScannerStatus,
};
pub use classes::{DEFAULT_POOL_CLASS, STANDARD_CLASS, StorageClassConfig};
pub use decommission::{DecommissionState, DecommissionStatus, PoolStatus};
pub use deployment::{
    ClusterHooks, DeploymentSpec, DriveConnector, DriveLocation, DriveSpec, HeldLock, PoolSpec,
};
pub use error::{ObjectError, ObjectResult};
pub use heal::{HealCounters, HealOptions};
pub use layer::{DEFAULT_REGION, GetObjectReader, JobLease, ObjectLayer};
pub use remote::{JournalEntry, JournalKind, RemoteTiers, Settled, TIER_JOURNAL_NAMESPACE, TierObjectUse};
pub use restore::RestoreStart;
pub use stream::ObjectStream;
pub use system::{
    SYSTEM_KEY_BYTES_MAX, SYSTEM_NAMESPACE_BYTES_MAX, SYSTEM_NOTICES_QUEUED_MAX, SYSTEM_VALUE_BYTES_MAX,
    SystemLock,
};
pub use transition::{OLD_DATA_GRACE_DEFAULT, TIER_BUCKET, TransitionOutcome};
