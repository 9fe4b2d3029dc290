//! Transitions: a version's data moves to a pool of another media class while its record
//! stays in its home set.
//!
//! The data moves as stored (sealed bytes stay sealed): the version's stored bytes, all parts
//! in order, become one *tier object*, an ordinary object of the hidden bucket
//! [`TIER_BUCKET`] placed on a pool of the target media class, under an opaque name, with a
//! back-reference (home bucket, key, version id, modification time) in its metadata. Being an
//! ordinary object, it is erasure coded, healed, bitrot-checked and decommissioned like any
//! other. Then, under the key's lock and only if the version is still the one copied, the
//! version's record is rewritten on its holders (a fresh metadata stamp, as for in-place
//! metadata changes) to name the tier object ([`crate::record::TieredData`]) and the new
//! storage class, with no data directories and no inline data; at write quorum the old data
//! is released (data directories after a grace period, so reads that resolved the old record
//! just before still find their files; a previous tier object at once). A commit that misses
//! quorum is rolled back and its tier object removed.
//!
//! Reads of a tiered version read the matching byte range of its tier object. Removing the
//! version (delete, overwrite of a null version, bucket purge) removes its tier object after
//! the record. Whatever a crash leaves behind is collected: old data directories by the
//! orphan sweep, tier objects no record names by [`ObjectLayer::sweep_tier_orphans`] (run
//! after each scanner cycle), both only past the scanner's orphan age (an hour by default),
//! which no transition between its copy and its commit reaches.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use strata_drive::Drive;

use crate::api::{
    ByteRange, DeleteOptions, GetOptions, ListOptions, MakeBucketOptions, ObjectMetadata, PutOptions,
    PutStream,
};
use crate::classes::STANDARD_CLASS;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::{GetObjectReader, ObjectLayer};
use crate::record::{self, PartRecordRef, TieredData, VersionRecord};
use crate::set::ErasureSet;

/// The hidden bucket holding tier objects (a name no S3 bucket can have).
pub const TIER_BUCKET: &str = ".strata-tier";
/// How long a transitioned version's old data directories stay after the commit by default,
/// so reads that resolved the record just before still open their files
/// ([`ObjectLayer::set_transition_grace`]).
pub const OLD_DATA_GRACE_DEFAULT: Duration = Duration::from_secs(30);

/// Back-reference keys in a tier object's user metadata.
pub(crate) const REF_BUCKET: &str = "strata-home-bucket";
/// See [`REF_BUCKET`].
pub(crate) const REF_KEY: &str = "strata-home-key";
/// See [`REF_BUCKET`].
pub(crate) const REF_VERSION: &str = "strata-home-version";

/// A transition commit that did not happen; `clean` when no drive may be left naming the new
/// tier object (a rollback that missed a drive is not clean).
struct CommitFailure {
    err: ObjectError,
    clean: bool,
}

/// Where a version's data is, or is to go.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    /// A pool of this media class.
    Media(String),
    /// This remote tier.
    Remote(String),
}

/// What a transition did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionOutcome {
    /// The data moved; this many stored bytes were copied.
    Moved {
        /// Stored bytes copied.
        bytes: u64,
    },
    /// The data already lives on the class's media; only the version's class changed.
    Reclassified,
    /// Nothing to do: the version is in that class already.
    Unchanged,
}

impl ObjectLayer {
    /// Sets how long a transitioned version's old data stays readable after the commit
    /// ([`OLD_DATA_GRACE_DEFAULT`]; tests shorten it).
    pub fn set_transition_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.transition_grace_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Moves one version's data to a pool of `storage_class`'s media class (see the module
    /// documentation). The version (`version_id`, `None` for the latest) must still have
    /// modification time `if_mod_time`, else `PreconditionFailed`; delete markers and empty
    /// versions only change class.
    pub async fn transition_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        if_mod_time: SystemTime,
        storage_class: &str,
    ) -> ObjectResult<TransitionOutcome> {
        let remote = self.remote_tiers().filter(|t| t.has_tier(storage_class));
        let target = match &remote {
            Some(_) => Place::Remote(storage_class.to_owned()),
            None => Place::Media(self.media_class_of(Some(storage_class))?),
        };
        let class = (storage_class != STANDARD_CLASS).then(|| storage_class.to_owned());
        let (resolved, _, set) = self.resolve_for_read(bucket, key, version_id).await?;
        let rec = &resolved.record;
        if record::from_unix_nanos(rec.mod_time_ns) != if_mod_time {
            return Err(ObjectError::PreconditionFailed);
        }
        let version = record::version_id_string(rec.version_id).unwrap_or_else(|| "null".to_owned());
        let current = match &rec.tiered {
            Some(TieredData { remote: None, name }) => match self.set_holding(TIER_BUCKET, name).await? {
                Some(tier_set) => Place::Media(self.pool_media_class(self.pool_of(tier_set))),
                None => {
                    return Err(ObjectError::Corrupt {
                        what: format!("the tier object of {bucket}/{key} is missing"),
                    });
                }
            },
            Some(TieredData {
                remote: Some(tier), ..
            }) => Place::Remote(tier.clone()),
            None => Place::Media(self.pool_media_class(self.pool_of(set))),
        };
        if rec.delete_marker || rec.size == 0 || current == target {
            if rec.metadata.storage_class == class {
                return Ok(TransitionOutcome::Unchanged);
            }
            self.update_object_metadata_if(bucket, key, Some(&version), Some(rec.mod_time_ns), |m| {
                m.storage_class = class.clone();
                Ok(())
            })
            .await?;
            return Ok(TransitionOutcome::Reclassified);
        }
        if let Some(tiers) = remote {
            return self
                .transition_remote(bucket, key, set, rec, &version, tiers.as_ref(), storage_class)
                .await;
        }

        // Copy the stored bytes into a tier object on the target media.
        self.ensure_tier_bucket().await?;
        let name = uuid::Uuid::new_v4().as_simple().to_string();
        let body = self.stored_bytes(bucket, key, &version, rec).await?;
        let user: BTreeMap<String, String> = [
            (REF_BUCKET.to_owned(), bucket.to_owned()),
            (REF_KEY.to_owned(), key.to_owned()),
            (REF_VERSION.to_owned(), version.clone()),
        ]
        .into();
        let opts = PutOptions {
            size: Some(rec.size),
            metadata: ObjectMetadata {
                user,
                storage_class: class.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        let copied = self.put_object(TIER_BUCKET, &name, body, opts).await?;
        if copied.size != rec.size {
            self.remove_tier_object(&name).await;
            return Err(ObjectError::Corrupt {
                what: format!(
                    "copying {bucket}/{key} to its tier moved {} of {} bytes",
                    copied.size, rec.size
                ),
            });
        }
        // The copy of an unsealed single-part version carries its ETag: a cheap end-to-end check.
        if rec.seal.is_none() && rec.parts.len() <= 1 && !rec.etag.contains('-') && copied.etag != rec.etag {
            self.remove_tier_object(&name).await;
            return Err(ObjectError::Corrupt {
                what: format!("the tier copy of {bucket}/{key} does not match its ETag"),
            });
        }

        let tiered = TieredData {
            remote: None,
            name: name.clone(),
        };
        match self
            .commit_transition((bucket, key), set, rec, tiered, class, None)
            .await
        {
            Ok(old) => {
                self.release_old_data(set, &old).await;
                Ok(TransitionOutcome::Moved { bytes: rec.size })
            }
            Err(failed) => {
                // A rollback that missed a drive may leave the new record winning there: the
                // tier object then stays for the sweep, which checks what names it.
                if failed.clean {
                    self.remove_tier_object(&name).await;
                }
                Err(failed.err)
            }
        }
    }

    /// The version's stored bytes, as a body to copy.
    async fn stored_bytes(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
        rec: &VersionRecord,
    ) -> ObjectResult<PutStream> {
        let source = self
            .get_object(
                bucket,
                key,
                GetOptions {
                    version_id: Some(version.to_owned()),
                    ..Default::default()
                },
            )
            .await?;
        if source.length != rec.content_size() {
            return Err(ObjectError::PreconditionFailed);
        }
        Ok(Box::pin(futures::StreamExt::map(source.body, |chunk| {
            chunk.map_err(|e| Box::new(e) as crate::api::BoxError)
        })))
    }

    /// The remote half of [`Self::transition_version`]: an intent in the journal, the upload,
    /// the commit, then the intent forgotten (or made a deletion when the commit failed).
    #[allow(clippy::too_many_arguments)] // One call site; the pieces are what it has.
    async fn transition_remote(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        rec: &VersionRecord,
        version: &str,
        tiers: &dyn crate::remote::RemoteTiers,
        tier: &str,
    ) -> ObjectResult<TransitionOutcome> {
        let name = uuid::Uuid::new_v4().as_simple().to_string();
        let intent = Self::intent(tier, &name, bucket, key, version);
        self.journal_remote(std::slice::from_ref(&intent)).await?;
        let give_up = |intent: &crate::remote::JournalEntry| crate::remote::JournalEntry {
            kind: crate::remote::JournalKind::Deletion,
            ..intent.clone()
        };
        let uploaded = async {
            let body = self.stored_bytes(bucket, key, version, rec).await?;
            tiers.put(tier, &name, body, rec.size).await
        }
        .await;
        if let Err(err) = uploaded {
            let _ = self.journal_remote(&[give_up(&intent)]).await;
            return Err(err);
        }
        // A remote object the version used before is journaled before the record stops
        // naming it (the worker keeps it while the record still does).
        self.journal_remote(&Self::deletions_of(bucket, key, [rec]))
            .await?;
        let tiered = TieredData {
            remote: Some(tier.to_owned()),
            name: name.clone(),
        };
        match self
            .commit_transition(
                (bucket, key),
                set,
                rec,
                tiered,
                Some(tier.to_owned()),
                Some((tiers, &intent)),
            )
            .await
        {
            Ok(old) => {
                self.release_old_data(set, &old).await;
                Ok(TransitionOutcome::Moved { bytes: rec.size })
            }
            Err(failed) => {
                // Whatever the rollback left, the worker deletes the object only if no
                // version names it.
                let _ = self.journal_remote(&[give_up(&intent)]).await;
                Err(failed.err)
            }
        }
    }

    /// Rewrites the version's record to name its tier object, under the key's lock, only if
    /// it is still the version copied (and, for a remote tier, its upload is still there: the
    /// journal worker deletes under the same lock; its intent is forgotten here, under the
    /// lock, so no removal's journal entry for the same object is lost). Returns the record as
    /// it was.
    async fn commit_transition(
        &self,
        (bucket, key): (&str, &str),
        set: &ErasureSet,
        copied: &VersionRecord,
        tiered: TieredData,
        class: Option<String>,
        remote: Option<(&dyn crate::remote::RemoteTiers, &crate::remote::JournalEntry)>,
    ) -> Result<VersionRecord, CommitFailure> {
        let clean = |err: ObjectError| CommitFailure { err, clean: true };
        let _guard = self.lock_key(bucket, key).await.map_err(clean)?;
        let current = set
            .resolve_versions(bucket, key)
            .await
            .map_err(clean)?
            .into_iter()
            .find(|v| v.record.version_id == copied.version_id && v.record.mod_time_ns == copied.mod_time_ns)
            .ok_or(ObjectError::PreconditionFailed)
            .map_err(clean)?;
        let before = current.record;
        // Its data changed place meanwhile (another transition): not the bytes copied.
        if before.tiered != copied.tiered || before.parts != copied.parts {
            return Err(clean(ObjectError::PreconditionFailed));
        }
        if let Some((tiers, intent)) = remote
            && !tiers.exists(&intent.tier, &intent.name).await.map_err(clean)?
        {
            return Err(clean(ObjectError::PreconditionFailed));
        }
        let mut after = before.clone();
        after.tiered = Some(tiered);
        after.metadata.storage_class = class;
        after.inline = false;
        after.parts = before
            .parts
            .iter()
            .map(|p| PartRecordRef {
                data_dir: None,
                ..p.clone()
            })
            .collect();
        after.meta_time_ns = record::to_unix_nanos(SystemTime::now()).max(before.meta_time_ns + 1);
        let holders = current.holders;
        if holders.len() < set.write_quorum() {
            return Err(clean(set.write_quorum_error(holders.len())));
        }
        let n_ok = match crate::meta_update::rewrite_or_roll_back(
            set,
            &current.key,
            &before,
            &after,
            &holders,
            true,
        )
        .await
        {
            Ok(n_ok) => n_ok,
            Err(failed) => {
                if !failed.rolled_back {
                    tracing::warn!(
                        bucket,
                        key,
                        "rolling back a failed transition missed a drive; heal settles it"
                    );
                }
                return Err(CommitFailure {
                    err: failed.err,
                    clean: failed.rolled_back,
                });
            }
        };
        if n_ok < set.n_drives() {
            self.hint_heal(bucket, key);
        }
        if let Some((_, intent)) = remote
            && let Err(err) = self.forget_journal_entry(intent).await
        {
            // Left in the journal: the worker finds the object in use and drops the entry.
            tracing::debug!(%err, "forgetting a transition's intent failed");
        }
        Ok(before)
    }

    /// Moves the versions of `key` whose data is not on their storage class's media class
    /// (written to an existing key's home pool in another class, or left behind by a change
    /// of the configuration) to it. Returns how many moved. Heal (on read, sequences, the
    /// scanner) calls it after healing a key; a deployment with one media class skips it.
    pub(crate) async fn place_versions(&self, bucket: &str, key: &str) -> ObjectResult<u64> {
        if bucket == TIER_BUCKET || !self.has_media_classes() {
            return Ok(0);
        }
        let set = self.set_for_read(bucket, key).await?;
        let home_media = self.pool_media_class(self.pool_of(set));
        let mut moved = 0;
        for version in set.resolve_versions(bucket, key).await? {
            let rec = &version.record;
            if rec.delete_marker || rec.size == 0 || rec.tiered.is_some() {
                continue;
            }
            let Ok(wanted) = self.media_class_of(rec.metadata.storage_class.as_deref()) else {
                continue;
            };
            if wanted == home_media {
                continue;
            }
            let class = rec.metadata.storage_class.as_deref().unwrap_or(STANDARD_CLASS);
            let version_id = record::version_id_string(rec.version_id).unwrap_or_else(|| "null".to_owned());
            match self
                .transition_version(
                    bucket,
                    key,
                    Some(&version_id),
                    record::from_unix_nanos(rec.mod_time_ns),
                    class,
                )
                .await
            {
                Ok(TransitionOutcome::Moved { .. }) => moved += 1,
                Ok(_) | Err(ObjectError::PreconditionFailed) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(moved)
    }

    /// Whether the pools have more than one media class.
    pub(crate) fn has_media_classes(&self) -> bool {
        (1..self.pools.len()).any(|p| self.pool_media_class(p) != self.pool_media_class(0))
    }

    /// Frees what a transitioned version's data used before: its data directories (after
    /// the grace period); a previous local tier object is left to the tier sweep (which
    /// removes it once no record names it and it is older than the orphan age, so reads that
    /// resolved the old record finish), a previous remote one to the journal (written before
    /// the commit).
    async fn release_old_data(&self, set: &ErasureSet, old: &VersionRecord) {
        if let Some(tiered) = &old.tiered {
            if tiered.remote.is_some() {
                self.tier_journal_wakeup.notify_one();
            }
            return;
        }
        let dirs: Vec<strata_drive::DataDirId> =
            old.parts.iter().filter_map(PartRecordRef::data_dir).collect();
        if dirs.is_empty() {
            return;
        }
        let drives: Vec<Arc<dyn Drive>> = set.drives.clone();
        let grace = Duration::from_millis(
            self.transition_grace_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            join_all(drives.iter().map(|drive| async {
                for dir in &dirs {
                    let _ = drive.data_dir_delete(*dir).await;
                }
            }))
            .await;
        });
    }

    /// Removes the tier objects of versions that are gone (their records removed first),
    /// each once.
    pub(crate) async fn release_all_tiered(&self, tiered: impl IntoIterator<Item = TieredData>) {
        let unique: std::collections::BTreeSet<(Option<String>, String)> =
            tiered.into_iter().map(|t| (t.remote, t.name)).collect();
        for (remote, name) in unique {
            self.release_tiered(&TieredData { remote, name }).await;
        }
    }

    /// Removes the tier object of a version that is gone (its record removed first).
    pub(crate) async fn release_tiered(&self, tiered: &TieredData) {
        match &tiered.remote {
            None => self.remove_tier_object(&tiered.name).await,
            // Journaled before the record went: the worker deletes it.
            Some(_) => self.tier_journal_wakeup.notify_one(),
        }
    }

    async fn remove_tier_object(&self, name: &str) {
        // Boxed: deleting a version releases its tier object, which is a delete again.
        let delete = Box::pin(self.delete_object(TIER_BUCKET, name, DeleteOptions::default()));
        match delete.await {
            Ok(_) | Err(ObjectError::NoSuchKey { .. } | ObjectError::NoSuchBucket { .. }) => {}
            Err(err) => {
                tracing::warn!(name, %err, "removing a tier object failed; the tier sweep removes it later");
            }
        }
    }

    /// A tiered version's read: the stored span `[offset, offset + length)` of its tier
    /// object, as the version's body.
    pub(crate) async fn read_tiered(
        &self,
        tiered: &TieredData,
        restore: Option<&crate::api::RestoreState>,
        stored_size: u64,
        stored_offset: u64,
        stored_length: u64,
        admission: crate::layer::Admission,
    ) -> ObjectResult<crate::stream::ObjectStream> {
        if let Some(tier) = &tiered.remote {
            let Some(tiers) = self.remote_tiers().filter(|t| t.has_tier(tier)) else {
                return Err(ObjectError::TierUnavailable {
                    tier: tier.clone(),
                    reason: "the tier is not configured on this node".to_owned(),
                });
            };
            if tiers.is_archival(tier) {
                let now = SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                return match restore.filter(|r| r.readable(now)).and_then(|r| r.copy.clone()) {
                    Some(copy) => {
                        let local = TieredData {
                            remote: None,
                            name: copy,
                        };
                        Box::pin(self.read_tiered(
                            &local,
                            None,
                            stored_size,
                            stored_offset,
                            stored_length,
                            admission,
                        ))
                        .await
                    }
                    None => Err(ObjectError::NotRestored { tier: tier.clone() }),
                };
            }
            let body = tiers
                .get(tier, &tiered.name, stored_offset, stored_length)
                .await?;
            let tier = tier.clone();
            let stream = futures::StreamExt::map(body, move |chunk| {
                chunk.map_err(|err| ObjectError::TierUnavailable {
                    tier: tier.clone(),
                    reason: err.to_string(),
                })
            });
            return Ok(crate::stream::ObjectStream::remote(Box::pin(stream)));
        }
        let opts = GetOptions {
            range: Some(ByteRange::FromTo {
                first: stored_offset,
                last: stored_offset + stored_length - 1,
            }),
            ..Default::default()
        };
        let reader: GetObjectReader =
            Box::pin(self.get_object_admitted(TIER_BUCKET, &tiered.name, opts, admission))
                .await
                .map_err(|err| match err {
                    ObjectError::NoSuchKey { .. } | ObjectError::NoSuchBucket { .. } => {
                        ObjectError::Corrupt {
                            what: format!("tier object {} is missing", tiered.name),
                        }
                    }
                    other => other,
                })?;
        if reader.info.size != stored_size {
            return Err(ObjectError::Corrupt {
                what: format!(
                    "tier object {} has {} bytes, not {stored_size}",
                    tiered.name, reader.info.size
                ),
            });
        }
        Ok(reader.body)
    }

    /// Creates the tier bucket if it does not exist yet.
    pub(crate) async fn ensure_tier_bucket(&self) -> ObjectResult<()> {
        match self.bucket_info(TIER_BUCKET).await {
            Ok(_) => return Ok(()),
            Err(ObjectError::NoSuchBucket { .. }) => {}
            Err(err) => return Err(err),
        }
        match self
            .make_bucket_unchecked(TIER_BUCKET, MakeBucketOptions::default())
            .await
        {
            Ok(()) | Err(ObjectError::BucketExists { .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Removes tier objects older than `min_age` that no version record names (left by a
    /// crash between a transition's copy and its commit, or between a version's removal and
    /// its tier object's). Returns how many went.
    pub async fn sweep_tier_orphans(&self, min_age: Duration) -> ObjectResult<u64> {
        let mut removed = 0;
        let mut marker = None;
        let now = SystemTime::now();
        loop {
            let page = match self
                .list_objects(
                    TIER_BUCKET,
                    ListOptions {
                        marker: marker.clone(),
                        max_keys: 1000,
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(page) => page,
                Err(ObjectError::NoSuchBucket { .. }) => return Ok(removed),
                Err(err) => return Err(err),
            };
            for object in &page.objects {
                if now.duration_since(object.mod_time).unwrap_or_default() < min_age {
                    continue;
                }
                if self.tier_object_is_orphan(&object.key, &object.metadata).await {
                    tracing::info!(name = %object.key, "removing a tier object no version names");
                    self.remove_tier_object(&object.key).await;
                    removed += 1;
                }
            }
            if !page.is_truncated {
                return Ok(removed);
            }
            marker = page.next_marker;
        }
    }

    /// Whether no version names the tier object `name` (only when that is certain: a home
    /// that cannot be read now keeps it).
    async fn tier_object_is_orphan(&self, name: &str, metadata: &ObjectMetadata) -> bool {
        let (Some(bucket), Some(key), Some(version)) = (
            metadata.user.get(REF_BUCKET),
            metadata.user.get(REF_KEY),
            metadata.user.get(REF_VERSION),
        ) else {
            return false;
        };
        // Every pool is asked: a key being decommissioned has versions in two.
        match self.find_versions(bucket, key, version).await {
            Ok(copies) => {
                let now = SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                !copies.iter().any(|rec| {
                    let restored_copy = rec
                        .metadata
                        .restore
                        .as_ref()
                        .is_some_and(|r| r.copy.as_deref() == Some(name) && r.expiry_unix > now);
                    let data = rec
                        .tiered
                        .as_ref()
                        .is_some_and(|t| t.remote.is_none() && t.name == name);
                    restored_copy || data
                })
            }
            Err(_) => false,
        }
    }
}
