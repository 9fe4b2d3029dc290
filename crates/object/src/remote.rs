//! Remote tiers as the object layer sees them: a hook ([`RemoteTiers`], implemented by
//! `strata-tier` over S3, Azure Blob and Google Cloud Storage) that stores, reads and deletes
//! tier objects by name, and the journal of remote tier objects to delete.
//!
//! The journal is system records (namespace [`TIER_JOURNAL_NAMESPACE`]), one per remote tier
//! object, each naming the version that used it:
//! - an *intent* is written before a transition uploads, and removed when the transition's
//!   commit names the object (or turned into a deletion when the commit fails); a crash leaves
//!   it, and once it is older than the orphan age it is handled as a deletion;
//! - a *deletion* is written before the records of a version whose data is remote are removed
//!   (delete, overwrite of a null version, bucket purge), so that an acknowledged removal never
//!   leaves the remote object behind, whatever crashes or tier outages follow.
//!
//! The tier crate's journal worker deletes the remote object of each due entry, but only when
//! no version names it any more ([`ObjectLayer::settle_journal_entry`]): an entry left by a
//! removal that then failed is dropped without deleting anything.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::api::PutStream;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::record::{self, TieredData, VersionRecord};

/// The system namespace of the remote-delete journal.
pub const TIER_JOURNAL_NAMESPACE: &str = "tier-journal";

/// Remote tiers, as the object layer uses them.
#[async_trait]
pub trait RemoteTiers: Send + Sync + Debug {
    /// Whether `tier` is a configured remote tier.
    fn has_tier(&self, tier: &str) -> bool;
    /// Whether `tier` is archival: its objects are read only through a restored copy.
    fn is_archival(&self, tier: &str) -> bool;
    /// Stores `size` bytes from `body` as `name` in `tier`.
    async fn put(&self, tier: &str, name: &str, body: PutStream, size: u64) -> ObjectResult<()>;
    /// The bytes `[offset, offset + length)` of `name` in `tier`.
    async fn get(&self, tier: &str, name: &str, offset: u64, length: u64) -> ObjectResult<PutStream>;
    /// Deletes `name` from `tier` (a name that is not there is not an error).
    async fn delete(&self, tier: &str, name: &str) -> ObjectResult<()>;
    /// Whether `name` is in `tier`.
    async fn exists(&self, tier: &str, name: &str) -> ObjectResult<bool>;
}

/// Whether a version still uses a tier object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierObjectUse {
    /// A version names it.
    InUse,
    /// No version does (every pool answered).
    Unused,
    /// The versions could not be read now.
    Unknown,
}

/// What settling a journal entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// The remote object was deleted and the entry dropped.
    Deleted,
    /// A version uses the object: the entry was dropped, the object kept.
    Kept,
    /// Not yet (too young, or the versions or the tier cannot be read now).
    Waiting,
}

/// Whether a journal entry records an upload in progress or a removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalKind {
    /// A transition is uploading it.
    Intent,
    /// Its version is being (or was) removed.
    Deletion,
}

/// One remote tier object the journal tracks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Intent or deletion.
    pub kind: JournalKind,
    /// The remote tier.
    pub tier: String,
    /// The object's name there.
    pub name: String,
    /// The version that uses (or used) it: bucket, key, version id (`"null"`).
    pub bucket: String,
    /// See `bucket`.
    pub key: String,
    /// See `bucket`.
    pub version_id: String,
    /// When the entry was written, Unix seconds.
    pub created_unix: u64,
}

impl JournalEntry {
    /// The entry's record key.
    pub fn record_key(&self) -> String {
        format!("{}/{}", self.tier, self.name)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ObjectLayer {
    /// Gives the layer its remote tiers (at start).
    pub fn set_remote_tiers(&self, tiers: std::sync::Arc<dyn RemoteTiers>) {
        let mut slot = match self.remote_tiers.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Some(tiers);
    }

    /// The remote tiers, when configured.
    pub(crate) fn remote_tiers(&self) -> Option<std::sync::Arc<dyn RemoteTiers>> {
        match self.remote_tiers.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Whether `name` is a remote tier (a transition target, never a PUT's class).
    pub fn is_remote_tier(&self, name: &str) -> bool {
        self.remote_tiers().is_some_and(|t| t.has_tier(name))
    }

    /// Writes journal entries (each on write quorum of every set) before the caller goes on,
    /// under the journal's namespace lock (a heal of the namespace never sees half of it).
    pub(crate) async fn journal_remote(&self, entries: &[JournalEntry]) -> ObjectResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let _lock = self.lock_system(TIER_JOURNAL_NAMESPACE).await?;
        for entry in entries {
            let blob = rmp_serde::to_vec_named(entry).map_err(|_| ObjectError::Internal {
                what: "encoding a tier journal entry",
            })?;
            self.put_system_record(TIER_JOURNAL_NAMESPACE, &entry.record_key(), Bytes::from(blob))
                .await?;
        }
        if !entries.is_empty() {
            self.tier_journal_wakeup.notify_one();
        }
        Ok(())
    }

    /// Deletion entries for the remote tier objects of `records` (the versions of `bucket/key`
    /// about to be removed).
    pub(crate) fn deletions_of<'a>(
        bucket: &str,
        key: &str,
        records: impl IntoIterator<Item = &'a VersionRecord>,
    ) -> Vec<JournalEntry> {
        let mut out: Vec<JournalEntry> = Vec::new();
        for rec in records {
            if let Some(TieredData {
                remote: Some(tier),
                name,
            }) = &rec.tiered
                && !out.iter().any(|e| e.tier == *tier && e.name == *name)
            {
                out.push(JournalEntry {
                    kind: JournalKind::Deletion,
                    tier: tier.clone(),
                    name: name.clone(),
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    version_id: record::version_id_string(rec.version_id)
                        .unwrap_or_else(|| "null".to_owned()),
                    created_unix: unix_now(),
                });
            }
        }
        out
    }

    /// An intent entry for an upload about to start.
    pub(crate) fn intent(tier: &str, name: &str, bucket: &str, key: &str, version_id: &str) -> JournalEntry {
        JournalEntry {
            kind: JournalKind::Intent,
            tier: tier.to_owned(),
            name: name.to_owned(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: version_id.to_owned(),
            created_unix: unix_now(),
        }
    }

    /// The journal's entries.
    pub async fn tier_journal(&self) -> ObjectResult<Vec<JournalEntry>> {
        Ok(self
            .list_system_records(TIER_JOURNAL_NAMESPACE)
            .await?
            .into_iter()
            .filter_map(|(_, blob)| rmp_serde::from_slice(&blob).ok())
            .collect())
    }

    /// Removes a journal entry (its object is gone, or still in use).
    pub(crate) async fn forget_journal_entry(&self, entry: &JournalEntry) -> ObjectResult<()> {
        let _lock = self.lock_system(TIER_JOURNAL_NAMESPACE).await?;
        self.delete_system_record(TIER_JOURNAL_NAMESPACE, &entry.record_key())
            .await
    }

    /// Settles one journal entry under its version's key lock (so no transition commits, and
    /// no removal journals, meanwhile): an object no version uses is deleted from its tier and
    /// the entry dropped; an entry whose object is in use is dropped once older than
    /// `min_age` (younger, it may be a removal in flight, journaled before its records go);
    /// an intent younger than `min_age` is an upload in progress and waits.
    pub async fn settle_journal_entry(
        &self,
        entry: &JournalEntry,
        min_age: std::time::Duration,
    ) -> ObjectResult<Settled> {
        let age = unix_now().saturating_sub(entry.created_unix);
        let old = age >= min_age.as_secs();
        if entry.kind == JournalKind::Intent && !old {
            return Ok(Settled::Waiting);
        }
        // A tier removed since (forced) can delete nothing: its objects are the operator's to
        // clean up (docs/TIERING.md), and its entries go.
        if !self.remote_tiers().is_some_and(|t| t.has_tier(&entry.tier)) {
            tracing::info!(tier = %entry.tier, name = %entry.name, "dropping a journal entry of a removed tier");
            self.forget_journal_entry(entry).await?;
            return Ok(Settled::Kept);
        }
        let _guard = self.lock_key(&entry.bucket, &entry.key).await?;
        match self.tier_object_use(entry).await {
            TierObjectUse::Unknown => Ok(Settled::Waiting),
            TierObjectUse::InUse if !old => Ok(Settled::Waiting),
            TierObjectUse::InUse => {
                self.forget_journal_entry(entry).await?;
                Ok(Settled::Kept)
            }
            TierObjectUse::Unused => {
                self.delete_remote_object(&entry.tier, &entry.name).await?;
                self.forget_journal_entry(entry).await?;
                Ok(Settled::Deleted)
            }
        }
    }

    /// Wakes the journal worker (entries were added).
    pub fn tier_journal_wakeup(&self) -> &tokio::sync::Notify {
        &self.tier_journal_wakeup
    }

    /// Whether the version an entry names still uses its remote object, looked for in every
    /// pool (a key being decommissioned has versions in two).
    pub async fn tier_object_use(&self, entry: &JournalEntry) -> TierObjectUse {
        match self
            .find_versions(&entry.bucket, &entry.key, &entry.version_id)
            .await
        {
            Ok(copies) => {
                if copies.iter().any(|rec| {
                    rec.tiered.as_ref().is_some_and(|t| {
                        t.remote.as_deref() == Some(entry.tier.as_str()) && t.name == entry.name
                    })
                }) {
                    TierObjectUse::InUse
                } else {
                    TierObjectUse::Unused
                }
            }
            Err(_) => TierObjectUse::Unknown,
        }
    }

    /// Every copy of one version of `bucket/key` (as read quorum of its set agrees on it),
    /// one per pool that has it: a version mid-decommission is in two. Empty when no pool has
    /// it (or the bucket is gone).
    pub(crate) async fn find_versions(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> ObjectResult<Vec<VersionRecord>> {
        match self.bucket_info(bucket).await {
            Ok(_) => {}
            Err(ObjectError::NoSuchBucket { .. }) => return Ok(Vec::new()),
            Err(err) => return Err(err),
        }
        let Ok(wanted) = record::parse_version_id(version_id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for pool in &self.pools {
            let set = self.set_in_pool(pool, key);
            if let Some(found) = set
                .resolve_versions(bucket, key)
                .await?
                .into_iter()
                .find(|v| v.record.version_id == wanted)
            {
                out.push(found.record);
            }
        }
        Ok(out)
    }

    /// Deletes a remote object through the hook (the journal worker).
    pub async fn delete_remote_object(&self, tier: &str, name: &str) -> ObjectResult<()> {
        match self.remote_tiers() {
            Some(tiers) => tiers.delete(tier, name).await,
            None => Err(ObjectError::TierUnavailable {
                tier: tier.to_owned(),
                reason: "remote tiers are not configured".to_owned(),
            }),
        }
    }
}
