//! KMS key rotation without rewriting data: `rotate` adds a version to a key and starts a
//! background job that re-seals, under that version, the data key of every object version
//! sealed by an older one (SSE-S3 and SSE-KMS; SSE-C keys are the customer's). Only the
//! version's metadata changes (`ObjectLayer::update_object_metadata`), never its data, and
//! the data key stays the same, so reads go on throughout: a version not yet re-sealed opens
//! with its old key version, which the KMS keeps.
//!
//! The job counts its work first (`total`), then walks every bucket's versions in listing
//! order, at most `rate` re-seals a second, saving its progress (`strata_kms::RotationStatus`,
//! the system record `kms/rotation`) after every page of 1,000 versions: a restart resumes
//! from the last saved page. In a cluster one node runs it (the `kms-rotation` job lock); the
//! others take over when that node stops. A version changed while the job re-sealed it (its
//! encryption description no longer the one read) is left alone: whatever changed it wrote a
//! fresh one. Versions that fail (a KMS error) are counted and keep their old seal; running
//! the rotation again with `existing` retries them. Multipart uploads in progress keep their
//! data key's old seal (their parts open with the old version, which the KMS keeps), so an
//! upload completed after the job passed its key yields a version under the old key version.
//! The status record is written without a compare-and-swap: two rotations of one key issued
//! at the same moment on two nodes can leave the older one's progress in the record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_kms::rotation::{ROTATION_RECORD, SYSTEM_NAMESPACE};
use strata_kms::{Kms, KmsError, RotationStatus, SealedKey};
use strata_object::{ListVersionsOptions, ListVersionsResult, ObjectError, ObjectInfo, ObjectLayer};
use tokio::sync::Notify;

use crate::encryption::{Mode, Stored};

/// Versions listed (and progress saved) per page.
const PAGE_VERSIONS: usize = 1000;
/// How often an idle node looks for a job to run (a rotation through this node wakes it at
/// once).
const IDLE_POLL: Duration = Duration::from_secs(10);
/// The job lock's name.
const JOB: &str = "kms-rotation";

/// Why a rotation cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The KMS refused or failed.
    #[error(transparent)]
    Kms(#[from] KmsError),
    /// Another key's rotation is still re-sealing.
    #[error("the rotation of key {0:?} is still running; wait for it to finish")]
    Busy(String),
    /// The status record could not be read or written.
    #[error("{0}")]
    Store(#[from] ObjectError),
}

/// The rotation job of one node.
#[derive(Debug)]
pub struct KeyRotation {
    layer: Arc<ObjectLayer>,
    kms: Arc<dyn Kms>,
    /// Re-seals per second at most.
    rate: u32,
    wake: Arc<Notify>,
}

impl KeyRotation {
    /// Starts the node's job runner (it resumes a job a restart interrupted).
    pub fn start(layer: Arc<ObjectLayer>, kms: Arc<dyn Kms>, rate: u32) -> Arc<KeyRotation> {
        let rotation = Arc::new(KeyRotation {
            layer,
            kms,
            rate: rate.max(1),
            wake: Arc::new(Notify::new()),
        });
        let weak = Arc::downgrade(&rotation);
        let wake = Arc::clone(&rotation.wake);
        tokio::spawn(async move {
            loop {
                let Some(this) = weak.upgrade() else { return };
                this.run_pending().await;
                drop(this);
                let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
            }
        });
        rotation
    }

    /// The KMS the job uses.
    pub fn kms(&self) -> &Arc<dyn Kms> {
        &self.kms
    }

    /// Adds a version to `key` and starts re-sealing under it; with `existing`, re-seals under
    /// the key's newest version without adding one (a version added outside Strata: the
    /// shared keyring file of a multi-node deployment, or the KMS's own tools).
    pub async fn rotate(&self, key: &str, existing: bool) -> Result<RotationStatus, RotateError> {
        if let Some(current) = self.status().await?
            && current.running
            && current.key != key
        {
            return Err(RotateError::Busy(current.key));
        }
        let version = if existing {
            self.kms.key_info(key).await?.versions
        } else {
            self.kms.rotate_key(key).await?
        };
        let status = RotationStatus::start(key, version, now_unix());
        self.save(&status).await?;
        self.layer.announce_system_change(SYSTEM_NAMESPACE).await;
        self.wake.notify_one();
        tracing::info!(key, version, "KMS key rotated; re-sealing data keys");
        Ok(status)
    }

    /// The last rotation's status (none before the first).
    pub async fn status(&self) -> Result<Option<RotationStatus>, ObjectError> {
        let records = self.layer.list_system_records(SYSTEM_NAMESPACE).await?;
        Ok(records
            .into_iter()
            .find(|(name, _)| name == ROTATION_RECORD)
            .and_then(|(_, blob)| serde_json::from_slice(&blob).ok()))
    }

    async fn save(&self, status: &RotationStatus) -> Result<(), ObjectError> {
        let blob = serde_json::to_vec(status).unwrap_or_default();
        self.layer
            .put_system_record(SYSTEM_NAMESPACE, ROTATION_RECORD, Bytes::from(blob))
            .await
    }

    /// Saves the job's progress unless another rotation replaced it meanwhile (a new
    /// rotation of the key restarts the job); false: this job is superseded and stops.
    async fn save_progress(&self, status: &RotationStatus) -> Result<bool, ObjectError> {
        let current = self.status().await?;
        if current.is_some_and(|c| c.key != status.key || c.target_version != status.target_version) {
            tracing::info!(key = %status.key, version = status.target_version, "key rotation superseded by a newer one");
            return Ok(false);
        }
        self.save(status).await?;
        Ok(true)
    }

    /// Runs the pending job, if any, when this node may lead it.
    async fn run_pending(&self) {
        let pending = |status: Result<Option<RotationStatus>, ObjectError>| match status {
            Ok(Some(status)) if status.running => Some(status),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(%err, "cannot read the key rotation's status");
                None
            }
        };
        if pending(self.status().await).is_none() {
            return;
        }
        let Some(_lease) = self.layer.lead_job(JOB).await else {
            return;
        };
        // Read again under the lease: another node may have moved the job on meanwhile.
        let Some(status) = pending(self.status().await) else {
            return;
        };
        if let Err(err) = self.run(status).await {
            tracing::warn!(%err, "key rotation paused; it resumes from its last saved page");
        }
    }

    async fn run(&self, mut status: RotationStatus) -> Result<(), ObjectError> {
        if !status.counted {
            status.total = self.count(&status).await?;
            status.counted = true;
            if !self.save_progress(&status).await? {
                return Ok(());
            }
        }
        let mut pacer = Pacer::new(self.rate);
        let mut buckets: Vec<String> = self
            .layer
            .list_buckets()
            .await?
            .into_iter()
            .map(|b| b.name)
            .collect();
        buckets.sort();
        for bucket in buckets {
            if status.bucket.as_ref().is_some_and(|at| bucket < *at) {
                continue;
            }
            if status.bucket.as_deref() != Some(bucket.as_str()) {
                status.bucket = Some(bucket.clone());
                status.key_marker = None;
                status.version_marker = None;
            }
            loop {
                let Some(page) = self
                    .page(&bucket, status.key_marker.clone(), status.version_marker.clone())
                    .await?
                else {
                    break;
                };
                for info in &page.versions {
                    status.scanned += 1;
                    let stored = match seen(info, &status) {
                        Seen::Rewrap(stored) => stored,
                        // Re-sealed by this job after its last saved page, before a restart.
                        Seen::Rewrapped => {
                            status.rewrapped += 1;
                            continue;
                        }
                        Seen::Other => continue,
                    };
                    pacer.wait().await;
                    match self.rewrap(info, &stored).await {
                        Ok(true) => status.rewrapped += 1,
                        // Changed or deleted meanwhile: nothing of this job's to count.
                        Ok(false) => {}
                        Err(err) => {
                            status.failed += 1;
                            tracing::warn!(bucket = %info.bucket, key = %info.key, %err, "cannot re-seal a data key");
                            status.last_error = Some(err.to_string());
                        }
                    }
                }
                status.key_marker = page.next_key_marker.clone();
                status.version_marker = page.next_version_id_marker.clone();
                if !self.save_progress(&status).await? {
                    return Ok(());
                }
                if !page.is_truncated {
                    break;
                }
            }
        }
        // The configuration key (IAM, bucket settings) is sealed by a KMS key too.
        match crate::encryption::rewrap_config_key(
            &self.layer,
            self.kms.as_ref(),
            &status.key,
            status.target_version,
        )
        .await
        {
            Ok(true) => tracing::info!(key = %status.key, "configuration key re-sealed"),
            Ok(false) => {}
            Err(err) => {
                status.failed += 1;
                status.last_error = Some(format!("the configuration key: {err}"));
                tracing::warn!(%err, "cannot re-seal the configuration key");
            }
        }
        status.running = false;
        status.finished_unix = Some(now_unix());
        status.bucket = None;
        status.key_marker = None;
        status.version_marker = None;
        if !self.save_progress(&status).await? {
            return Ok(());
        }
        tracing::info!(
            key = %status.key,
            version = status.target_version,
            rewrapped = status.rewrapped,
            failed = status.failed,
            "key rotation finished"
        );
        Ok(())
    }

    /// A page of a bucket's versions after the markers; none when the bucket is gone (it has
    /// nothing left to re-seal).
    async fn page(
        &self,
        bucket: &str,
        key_marker: Option<String>,
        version_id_marker: Option<String>,
    ) -> Result<Option<ListVersionsResult>, ObjectError> {
        let opts = ListVersionsOptions {
            key_marker,
            version_id_marker,
            max_keys: PAGE_VERSIONS,
            ..Default::default()
        };
        match self.layer.list_object_versions(bucket, opts).await {
            Ok(page) => Ok(Some(page)),
            Err(ObjectError::NoSuchBucket { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Versions to re-seal, over every bucket.
    async fn count(&self, status: &RotationStatus) -> Result<u64, ObjectError> {
        let mut total = 0;
        for bucket in self.layer.list_buckets().await? {
            let (mut key_marker, mut version_marker) = (None, None);
            loop {
                let Some(page) = self.page(&bucket.name, key_marker, version_marker).await? else {
                    break;
                };
                total += page
                    .versions
                    .iter()
                    .filter(|v| matches!(seen(v, status), Seen::Rewrap(_)))
                    .count() as u64;
                if !page.is_truncated {
                    break;
                }
                key_marker = page.next_key_marker;
                version_marker = page.next_version_id_marker;
            }
        }
        Ok(total)
    }

    /// Re-seals one version's data key and writes the new description, unless the version's
    /// description changed meanwhile (or it was deleted): false then.
    async fn rewrap(&self, info: &ObjectInfo, stored: &Stored) -> Result<bool, RotateError> {
        let old_text = info.metadata.encryption.clone();
        let sealed = SealedKey {
            key: stored.kms_key.clone().unwrap_or_default(),
            version: stored.kms_version.unwrap_or(0),
            ciphertext: base64_simd::STANDARD.decode_to_vec(&stored.sealed).map_err(|_| {
                ObjectError::Corrupt {
                    what: "a sealed data key does not decode".into(),
                }
            })?,
        };
        let fresh = self
            .kms
            .rewrap(&sealed, &stored.binding(&info.bucket, &info.key))
            .await?;
        let new_text = Stored {
            kms_version: Some(fresh.version),
            sealed: base64_simd::STANDARD.encode_to_string(&fresh.ciphertext),
            rotated_to: Some(fresh.version),
            ..stored.clone()
        }
        .encode();
        let version = info.version_id.clone().unwrap_or_else(|| "null".to_owned());
        let mut written = false;
        match self
            .layer
            .update_object_metadata(&info.bucket, &info.key, Some(&version), |metadata| {
                if metadata.encryption == old_text {
                    metadata.encryption = Some(new_text);
                    written = true;
                }
                Ok(())
            })
            .await
        {
            Ok(_) => Ok(written),
            // Deleted meanwhile: nothing left to re-seal.
            Err(ObjectError::NoSuchKey { .. } | ObjectError::NoSuchVersion { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

/// A version's description when its data key is sealed by an older version of the key being
/// rotated.
/// What a rotation makes of a listed version (its description parsed once).
enum Seen {
    /// Sealed by an older version of the rotated key: to re-seal.
    Rewrap(Stored),
    /// Re-sealed by this rotation already (its job, before a restart).
    Rewrapped,
    /// Nothing of this rotation's.
    Other,
}

fn seen(info: &ObjectInfo, status: &RotationStatus) -> Seen {
    if info.delete_marker {
        return Seen::Other;
    }
    let Ok(Some(stored)) = Stored::of(info) else {
        return Seen::Other;
    };
    if !matches!(stored.mode, Mode::S3 | Mode::Kms) || stored.kms_key.as_deref() != Some(status.key.as_str())
    {
        return Seen::Other;
    }
    if stored.kms_version.is_some_and(|v| v < status.target_version) {
        Seen::Rewrap(stored)
    } else if stored.rotated_to == Some(status.target_version) {
        Seen::Rewrapped
    } else {
        Seen::Other
    }
}

fn now_unix() -> i64 {
    strata_object::now_unix_ms() / 1000
}

/// Spaces re-seals to at most `rate` a second.
struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    fn new(rate: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / rate.max(1),
            next: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep(self.next - now).await;
        }
        self.next = self.next.max(now) + self.interval;
    }
}
