//! The state of a key rotation's re-wrap job, as kept in the system record
//! [`SYSTEM_NAMESPACE`]/[`ROTATION_RECORD`] (JSON) and shared by the job, the admin APIs and the
//! metrics.
//!
//! A rotation adds a version to a KMS key; the job then re-seals, under that version, the data
//! key of every object version sealed by an older version of the key (only the version's
//! metadata changes, never its data). Progress is saved after every listing page, so a restart
//! resumes where the last page ended.

use serde::{Deserialize, Serialize};

/// System records of the KMS.
pub const SYSTEM_NAMESPACE: &str = "kms";
/// The rotation job's record.
pub const ROTATION_RECORD: &str = "rotation";

/// A rotation's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationStatus {
    /// The key rotated.
    pub key: String,
    /// The version data keys are re-sealed under.
    pub target_version: u32,
    /// The job has work left.
    pub running: bool,
    /// When it started and finished (Unix seconds).
    pub started_unix: i64,
    /// When it finished; none while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix: Option<i64>,
    /// Whether `total` is counted (the job's first pass).
    #[serde(default)]
    pub counted: bool,
    /// Object versions sealed under an older version of the key when the job started.
    pub total: u64,
    /// Object versions looked at.
    pub scanned: u64,
    /// Object versions re-sealed.
    pub rewrapped: u64,
    /// Object versions that could not be re-sealed (they still open with their old version).
    pub failed: u64,
    /// Where the job is: the bucket, and the listing markers within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Key marker within `bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_marker: Option<String>,
    /// Version id marker within `bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_marker: Option<String>,
    /// The last failure, for operators (never key material).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl RotationStatus {
    /// A new job for `key`, to re-seal under `target_version`.
    pub fn start(key: &str, target_version: u32, now_unix: i64) -> RotationStatus {
        RotationStatus {
            key: key.to_owned(),
            target_version,
            running: true,
            started_unix: now_unix,
            ..RotationStatus::default()
        }
    }
}
