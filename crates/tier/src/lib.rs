//! Remote tiers: named S3, Azure Blob Storage and Google Cloud Storage targets that hold the
//! stored bytes of versions transitioned out of the deployment (through the kept
//! `object_store` library rather than three hand-written clients).
//!
//! - [`config`]: a tier's configuration, its validation, and what may be shown of it.
//! - [`store`]: one tier's client (streaming upload, ranged read, delete, probe).
//! - [`registry`]: the deployment's tiers ([`Tiers`]): configurations as system records
//!   (sealed at rest with a KMS), the object layer's `RemoteTiers` hook, usage, and the worker
//!   that empties the object layer's remote-delete journal.
//!
//! The object layer decides what moves and when it is safe to delete (`strata-object`'s
//! `transition.rs` and `remote.rs`); this crate only moves bytes. It knows no S3 error codes:
//! the front door maps [`TierError`].
#![deny(missing_docs)]

pub mod config;
pub mod registry;
pub mod store;

pub use config::{Credentials, TierConfig, TierInfo, TierKind};
pub use registry::{TierSettings, TierUsage, Tiers};

/// What a tier operation refused or met.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The configuration is not valid.
    #[error("{0}")]
    Invalid(String),
    /// A tier of that name exists.
    #[error("the tier {0} exists already")]
    Exists(String),
    /// No tier of that name.
    #[error("no tier is named {0}")]
    NotFound(String),
    /// Versions' data is still in the tier.
    #[error("the tier {tier} still holds the data of {objects} versions; remove it with force to lose them")]
    InUse {
        /// The tier.
        tier: String,
        /// Versions whose data is there.
        objects: u64,
    },
    /// The tier did not answer as it should (the probe failed).
    #[error("{0}")]
    Unreachable(String),
    /// The process is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The deployment's own storage failed.
    #[error(transparent)]
    Store(#[from] strata_object::ObjectError),
}
