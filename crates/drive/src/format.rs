//! The format record: which deployment, pool, set and position a drive belongs to.
//!
//! Written once when a drive is first formatted (as `.strata/format.json`, atomically: temp
//! file, fsync, rename, fsync of the directory) and compared at every start. A drive from
//! another deployment or in the wrong position is refused.

use serde::{Deserialize, Serialize};

/// Version of the format record layout.
pub const FORMAT_VERSION: u32 = 1;

/// Identity and position of a drive in a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatRecord {
    /// Layout version, [`FORMAT_VERSION`] when written by this code.
    pub version: u32,
    /// The deployment this drive belongs to.
    pub deployment_id: uuid::Uuid,
    /// This drive's own id (new for every formatting).
    pub drive_id: uuid::Uuid,
    /// Pool index in the deployment.
    pub pool_idx: u32,
    /// Erasure set index in the pool.
    pub set_idx: u32,
    /// Drive index in the erasure set.
    pub drive_idx: u32,
    /// Data shards per erasure stripe in this set.
    pub n_data: u32,
    /// Parity shards per erasure stripe in this set.
    pub n_parity: u32,
}

impl FormatRecord {
    /// The format record for a new drive at the given position.
    pub fn new_deployment(
        deployment_id: uuid::Uuid,
        pool_idx: u32,
        set_idx: u32,
        drive_idx: u32,
        n_data: u32,
        n_parity: u32,
    ) -> Self {
        FormatRecord {
            version: FORMAT_VERSION,
            deployment_id,
            drive_id: uuid::Uuid::new_v4(),
            pool_idx,
            set_idx,
            drive_idx,
            n_data,
            n_parity,
        }
    }

    /// Whether `self` (found on a drive) is the drive `expected` describes: same deployment,
    /// position and layout. The drive id is not compared.
    pub fn same_position(&self, expected: &FormatRecord) -> bool {
        self.deployment_id == expected.deployment_id
            && self.pool_idx == expected.pool_idx
            && self.set_idx == expected.set_idx
            && self.drive_idx == expected.drive_idx
            && self.n_data == expected.n_data
            && self.n_parity == expected.n_parity
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        format!(
            "deployment {} pool {} set {} drive {} ({}+{})",
            self.deployment_id, self.pool_idx, self.set_idx, self.drive_idx, self.n_data, self.n_parity
        )
    }
}
