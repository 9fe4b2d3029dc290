//! Pool decommissioning: every object version of a pool moves to the other pools while
//! everything stays readable; then the pool can be taken out of the topology.
//!
//! A decommission is started through the admin API, recorded on every drive (so a restart
//! resumes it) and run by one node of the deployment (the holder of the `decommission` job
//! lock). While a pool decommissions, no new key is placed in it; writes to keys it still holds
//! go to another pool (the newest version wins reads, so nothing goes back in time). The run
//! walks the pool's keys; per key, under the key's lock, it copies every version (oldest first,
//! same version id, modification time, ETag, metadata and part layout, re-encoded for the
//! target set) into the key's target pool, and only once all are committed there removes them
//! from the pool. Walks repeat until one moves nothing (uploads completed into the pool during
//! a walk are caught by the next).
//!
//! **Invariant:** a version is removed from the decommissioning pool only after it (or a newer
//! null version that replaced it) is committed with write quorum in another pool, so a reader
//! finds every acknowledged version at every moment; while both copies exist, reads and
//! listings see one (same key, same modification time, same version id).

use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use strata_drive::{Drive, MetaOp, Table};

use crate::api::{
    BoxError, ChecksumAlgorithm, ChecksumSpec, ChecksumType, ExpectedChecksum, PutOptions, PutStream,
};
use crate::background::unix_secs_now;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::list::RawKeyWalker;
use crate::record::{self, PartRecordRef, VersionRecord};
use crate::set::{ErasureSet, Resolved};
use crate::stream::{ObjectStream, ReadPlan};

/// Where the deployment's pool states are kept: in the bucket-configuration table, under a key
/// no bucket name can produce (bucket names never start with a NUL byte).
const POOLS_RECORD_KEY: &[u8] = b"\0strata/pools";
/// Walks of a decommissioning pool before giving up on keys that keep arriving.
const DECOMMISSION_PASSES_MAX: usize = 5;
/// How often every node re-reads the pool states, and retries leading a pending decommission.
pub(crate) const POOL_STATE_REFRESH: Duration = Duration::from_secs(5);

/// Progress of a pool's decommission.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecommissionState {
    /// Objects are being moved out.
    #[default]
    Running,
    /// The pool holds no object any more: it can be removed from the topology.
    Done,
    /// Stopped with objects left that could not be moved (see the error); start it again.
    Failed,
}

/// A pool's decommission, as recorded on the drives and reported by the admin API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionStatus {
    /// The pool.
    pub pool: usize,
    /// Where it stands.
    pub state: DecommissionState,
    /// Object keys moved out.
    pub objects_moved: u64,
    /// Versions (including delete markers) copied.
    pub versions_moved: u64,
    /// Object bytes copied.
    pub bytes_moved: u64,
    /// Keys that could not be moved in the last walk.
    pub objects_failed: u64,
    /// When it started (Unix seconds).
    pub started_unix_secs: u64,
    /// When it ended (Unix seconds; 0 while running).
    pub finished_unix_secs: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// The persisted pool states: at most one decommission per pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PoolsRecord {
    pub(crate) decommissions: Vec<DecommissionStatus>,
}

impl record::Record for PoolsRecord {}

/// One pool as the admin API reports it.
#[derive(Clone, Debug, Serialize)]
pub struct PoolStatus {
    /// Position in the topology.
    pub pool: usize,
    /// Erasure sets.
    pub n_sets: usize,
    /// Drives.
    pub n_drives: usize,
    /// Its decommission, if one was started.
    pub decommission: Option<DecommissionStatus>,
}

/// What moving one key did.
#[derive(Debug, Default)]
struct Moved {
    versions: u64,
    bytes: u64,
    /// The key had versions in the pool and they are gone from it now.
    emptied: bool,
}

impl ObjectLayer {
    /// Every pool and its decommission state.
    pub fn pool_statuses(&self) -> Vec<PoolStatus> {
        let record = self.pools_record();
        self.pools
            .iter()
            .enumerate()
            .map(|(idx, pool)| PoolStatus {
                pool: idx,
                n_sets: pool.sets.len(),
                n_drives: self.sets[pool.sets.clone()]
                    .iter()
                    .map(ErasureSet::n_drives)
                    .sum(),
                decommission: record.decommissions.iter().find(|d| d.pool == idx).cloned(),
            })
            .collect()
    }

    /// Whether new keys must stay out of pool `idx`.
    /// Runs on every placement of a new key: reads the state in place, no copy.
    pub(crate) fn is_decommissioning(&self, idx: usize) -> bool {
        let record = match self.pools_state.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        record
            .decommissions
            .iter()
            .any(|d| d.pool == idx && d.state != DecommissionState::Failed)
    }

    pub(crate) fn pools_record(&self) -> PoolsRecord {
        match self.pools_state.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_pools_record(&self, record: PoolsRecord) {
        match self.pools_state.write() {
            Ok(mut guard) => *guard = record,
            Err(poisoned) => *poisoned.into_inner() = record,
        }
    }

    /// Reads the pool states from the drives (the value most drives hold; absent is the
    /// empty record).
    pub async fn load_pools_record(&self) -> ObjectResult<()> {
        let drives: Vec<&Arc<dyn Drive>> = self.sets.iter().flat_map(|s| s.drives.iter()).collect();
        let answers = join_all(
            drives
                .iter()
                .map(|d| d.meta_get(Table::BucketConfig, POOLS_RECORD_KEY)),
        )
        .await;
        let mut counts: Vec<(Option<Bytes>, usize)> = Vec::new();
        let mut n_answered = 0;
        for value in answers.into_iter().flatten() {
            n_answered += 1;
            match counts.iter_mut().find(|(v, _)| *v == value) {
                Some((_, n)) => *n += 1,
                None => counts.push((value, 1)),
            }
        }
        let quorum = drives.len() / 2 + 1;
        if n_answered < quorum {
            return Err(ObjectError::ReadQuorum {
                needed: quorum,
                got: n_answered,
            });
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let record = match counts.into_iter().next().and_then(|(v, _)| v) {
            Some(bytes) => record::decode::<PoolsRecord>(&bytes)?,
            None => PoolsRecord::default(),
        };
        self.set_pools_record(record);
        Ok(())
    }

    async fn store_pools_record(&self, record: &PoolsRecord) -> ObjectResult<()> {
        let value = record::encode(record);
        self.commit_everywhere(|| {
            vec![MetaOp::put(
                Table::BucketConfig,
                POOLS_RECORD_KEY.to_vec(),
                value.clone(),
            )]
        })
        .await?;
        self.set_pools_record(record.clone());
        Ok(())
    }

    /// Updates one pool's decommission status, on the drives and in memory.
    async fn update_decommission(&self, status: DecommissionStatus) -> ObjectResult<()> {
        let mut record = self.pools_record();
        record.decommissions.retain(|d| d.pool != status.pool);
        record.decommissions.push(status);
        self.store_pools_record(&record).await
    }

    /// Starts moving every object out of pool `pool`. Refused when it is the only pool (or the
    /// only one left not decommissioning), or already decommissioning or decommissioned.
    pub async fn start_decommission(self: &Arc<Self>, pool: usize) -> ObjectResult<DecommissionStatus> {
        if pool >= self.pools.len() {
            return Err(ObjectError::InvalidRequest {
                reason: "no such pool",
            });
        }
        self.load_pools_record().await?;
        if let Some(existing) = self.pools_record().decommissions.iter().find(|d| d.pool == pool)
            && existing.state != DecommissionState::Failed
        {
            return Err(ObjectError::InvalidRequest {
                reason: "the pool is already decommissioning or decommissioned",
            });
        }
        let n_staying = (0..self.pools.len())
            .filter(|idx| *idx != pool && !self.is_decommissioning(*idx))
            .count();
        if n_staying == 0 {
            return Err(ObjectError::InvalidRequest {
                reason: "no other pool would be left to hold the objects",
            });
        }
        let status = DecommissionStatus {
            pool,
            state: DecommissionState::Running,
            started_unix_secs: unix_secs_now(),
            ..DecommissionStatus::default()
        };
        self.update_decommission(status.clone()).await?;
        if let Some(cluster) = &self.cluster {
            cluster.pools_changed().await;
        }
        tracing::info!(pool, "pool decommission started");
        self.spawn_pending_decommissions();
        Ok(status)
    }

    /// Runs every recorded, unfinished decommission this node can lead (one node at a time).
    pub(crate) fn spawn_pending_decommissions(self: &Arc<Self>) {
        let pending: Vec<usize> = self
            .pools_record()
            .decommissions
            .iter()
            .filter(|d| d.state == DecommissionState::Running)
            .map(|d| d.pool)
            .collect();
        for pool in pending {
            let mut running = match self.decommissions_running.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if running.contains(&pool) {
                continue;
            }
            running.push(pool);
            drop(running);
            let layer = Arc::downgrade(self);
            tokio::spawn(async move {
                run_decommission(&layer, pool).await;
                if let Some(layer) = layer.upgrade() {
                    let mut running = match layer.decommissions_running.lock() {
                        Ok(guard) => guard,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    running.retain(|p| *p != pool);
                }
            });
        }
    }

    /// Moves one key's versions out of `from` (a set of the decommissioning pool). The caller
    /// must not hold the key lock.
    async fn move_key(&self, bucket: &str, key: &str, from: &ErasureSet) -> ObjectResult<Moved> {
        let _guard = self.lock_key(bucket, key).await?;
        let versions = from.resolve_versions(bucket, key).await?;
        let mut moved = Moved::default();
        if versions.is_empty() {
            return Ok(moved);
        }
        let to = self.set_for_move(bucket, key, from).await?;
        let in_target = to.resolve_versions(bucket, key).await?;
        let has_null_in_target = in_target.iter().any(|v| v.record.version_id.is_none());
        // Oldest first, so the target holds a consistent history at every step.
        for version in versions.iter().rev() {
            let rec = &version.record;
            let already = in_target
                .iter()
                .find(|t| t.record.mod_time_ns == rec.mod_time_ns && t.record.version_id == rec.version_id);
            if let Some(copied) = already {
                // Copied by an interrupted earlier attempt: in-place changes (tags, ACL,
                // retention, legal hold) made since landed here, in the source; carry them over
                // before the source goes.
                if rec.meta_time_ns > copied.record.meta_time_ns {
                    let mut newer = copied.record.clone();
                    newer.metadata = rec.metadata.clone();
                    newer.meta_time_ns = rec.meta_time_ns;
                    // A transition since moved the version's data to a tier object: the
                    // copy must name it (its own data, copied before, is then unreferenced
                    // and swept as an orphan).
                    if rec.tiered.is_some() && rec.tiered != copied.record.tiered {
                        newer.tiered = rec.tiered.clone();
                        newer.inline = false;
                        newer.parts = rec.parts.clone();
                    }
                    let written =
                        crate::meta_update::write_records(to, &copied.key, &newer, &copied.holders).await;
                    let n_ok = written.iter().filter(|ok| **ok).count();
                    if n_ok < to.write_quorum() {
                        return Err(to.write_quorum_error(n_ok));
                    }
                }
                continue;
            }
            // A null version in the target is newer (writes avoid this pool): it replaced ours.
            if rec.version_id.is_none() && has_null_in_target {
                continue;
            }
            moved.bytes += self.copy_version(bucket, key, from, to, version).await?;
            moved.versions += 1;
        }
        self.drop_versions(bucket, key, from).await?;
        moved.emptied = true;
        Ok(moved)
    }

    /// The set a key moves to: where it already lives outside `from`'s pool, else a pool
    /// chosen by free space among those not decommissioning.
    async fn set_for_move(&self, bucket: &str, key: &str, from: &ErasureSet) -> ObjectResult<&ErasureSet> {
        let media = self.pool_media_class(self.pool_of(from));
        if let Some(set) = self.set_holding(bucket, key).await?
            && !std::ptr::eq(set, from)
            && !self.is_decommissioning(self.pool_of(set))
        {
            return Ok(set);
        }
        // The key's newest version is still in the decommissioning pool: place it anew, on
        // the same media class where another pool has it.
        Ok(self.set_for_new_key_of(key, &media).await)
    }

    /// Copies one version into `to` with the same identity; returns the bytes copied.
    async fn copy_version(
        &self,
        bucket: &str,
        key: &str,
        from: &ErasureSet,
        to: &ErasureSet,
        version: &Resolved,
    ) -> ObjectResult<u64> {
        let rec = &version.record;
        let distribution = to.distribution(key);
        let mut new_rec = VersionRecord {
            n_data: to.erasure.layout().n_data() as u32,
            n_parity: to.erasure.layout().n_parity() as u32,
            ..rec.clone()
        };
        let mut ok = vec![true; to.n_drives()];
        let mut inline: Option<Vec<Bytes>> = None;
        let mut written_dirs = Vec::new();
        let result: ObjectResult<()> = async {
            // A tiered version's data is its tier object, which moves with its own pool: the
            // record alone moves here.
            if rec.delete_marker || rec.size == 0 || rec.tiered.is_some() {
                return Ok(());
            }
            if rec.inline {
                let framed = from.read_inline(version).await;
                let decoded = from
                    .erasure
                    .decode_block_framed(&framed, rec.size as usize)
                    .map_err(|err| match err {
                        strata_erasure::ErasureError::TooFewShards { needed, got } => {
                            ObjectError::ReadQuorum { needed, got }
                        }
                        other => other.into(),
                    })?;
                let data = to
                    .write_data(
                        bytes_stream(decoded.data),
                        &mut rec
                            .parts
                            .first()
                            .map_or_else(PutOptions::default, |p| put_options(rec, p)),
                        1,
                        &distribution,
                        true,
                        stored_algorithm(rec),
                    )
                    .await?;
                for (slot, good) in ok.iter_mut().zip(&data.ok) {
                    *slot &= *good;
                }
                if let Some(dir) = data.data_dir {
                    written_dirs.push(dir);
                }
                new_rec.inline = data.inline.is_some();
                inline = data.inline;
                new_rec.parts = rec
                    .parts
                    .iter()
                    .map(|p| PartRecordRef {
                        data_dir: data.data_dir.map(|d| d.0),
                        ..p.clone()
                    })
                    .collect();
                return Ok(());
            }
            let mut sources: Vec<Option<Arc<dyn Drive>>> = vec![None; from.n_drives()];
            for &(drive_idx, shard_idx) in &version.holders {
                sources[shard_idx as usize] = Some(from.drives[drive_idx].clone());
            }
            let mut offset = 0;
            let mut parts = Vec::with_capacity(rec.parts.len());
            for part in &rec.parts {
                let plan = ReadPlan {
                    // Decommission moves one object at a time: bounded without the gate.
                    memory: None,
                    erasure: from.erasure.clone(),
                    sources: sources.clone(),
                    parts: rec.parts.clone(),
                    offset,
                    length: part.size,
                    heal: None,
                };
                let body: PutStream = Box::pin(
                    ObjectStream::planned(plan).map(|chunk| chunk.map_err(|e| Box::new(e) as BoxError)),
                );
                let data = to
                    .write_data(
                        body,
                        &mut put_options(rec, part),
                        part.number,
                        &distribution,
                        false,
                        stored_algorithm(rec),
                    )
                    .await?;
                for (slot, good) in ok.iter_mut().zip(&data.ok) {
                    *slot &= *good;
                }
                if let Some(dir) = data.data_dir {
                    written_dirs.push(dir);
                }
                parts.push(PartRecordRef {
                    data_dir: data.data_dir.map(|d| d.0),
                    ..part.clone()
                });
                offset += part.size;
            }
            new_rec.parts = parts;
            Ok(())
        }
        .await;
        if let Err(err) = result {
            to.delete_data_dirs(&written_dirs, &vec![true; to.n_drives()])
                .await;
            return Err(err);
        }
        let records = (0..to.n_drives())
            .map(|drive_idx| {
                ok[drive_idx].then(|| {
                    let mut r = new_rec.clone();
                    r.shard_idx = distribution[drive_idx];
                    let shard = inline.as_ref().map(|shards| shards[r.shard_idx as usize].clone());
                    (r, shard)
                })
            })
            .collect();
        let key_bytes = record::version_key(bucket, key, rec.mod_time_ns, rec.version_id);
        if let Err(err) = self
            .commit_records(
                bucket,
                key,
                to,
                &key_bytes,
                records,
                None,
                crate::layer::CommitSpace::Normal,
            )
            .await
        {
            to.delete_data_dirs(&written_dirs, &vec![true; to.n_drives()])
                .await;
            return Err(err);
        }
        Ok(if rec.delete_marker { 0 } else { rec.size })
    }

    /// Removes every version of a key from `set` (records, inline data, data directories):
    /// they are all in another pool now. Needs write quorum of the set.
    async fn drop_versions(&self, bucket: &str, key: &str, set: &ErasureSet) -> ObjectResult<()> {
        let per_drive = set.scan_versions(bucket, key).await;
        let results = join_all(per_drive.into_iter().enumerate().map(|(drive_idx, entries)| {
            let drive = set.drives[drive_idx].clone();
            async move {
                let Ok(entries) = entries else {
                    return false;
                };
                let mut ops = Vec::with_capacity(entries.len() * 2);
                let mut dirs = Vec::new();
                for entry in &entries {
                    if let Ok(rec) = record::decode::<VersionRecord>(&entry.value) {
                        dirs.extend(rec.parts.iter().filter_map(PartRecordRef::data_dir));
                    }
                    ops.push(MetaOp::delete(Table::Objects, entry.key.to_vec()));
                    ops.push(MetaOp::delete(Table::InlineData, entry.key.to_vec()));
                }
                if drive.meta_commit(ops).await.is_err() {
                    return false;
                }
                for dir in dirs {
                    let _ = drive.data_dir_delete(dir).await;
                }
                true
            }
        }))
        .await;
        let n_ok = results.iter().filter(|ok| **ok).count();
        if n_ok < set.write_quorum() {
            return Err(set.write_quorum_error(n_ok));
        }
        Ok(())
    }
}

/// Options of re-writing one part of `rec`: the size, and the part's stored checksum as the
/// expected one, so a move never carries damaged bytes silently.
fn put_options(rec: &VersionRecord, part: &PartRecordRef) -> PutOptions {
    if rec.seal.is_some() {
        // A sealed version's checksums are of its content, not of the stored bytes moved
        // here; those are checked by their bitrot frames on the read, and by their
        // authentication tags when they are opened.
        return PutOptions {
            size: Some(part.size),
            ..PutOptions::default()
        };
    }
    let expected = match (&rec.checksum, &part.checksum) {
        (Some(object), Some(part_checksum)) => Some((object.algorithm, part_checksum.clone())),
        (Some(object), None) if rec.parts.len() == 1 && object.kind == ChecksumType::FullObject => {
            Some((object.algorithm, object.value.clone()))
        }
        _ => None,
    };
    PutOptions {
        size: Some(part.size),
        checksum: expected.map(|(algorithm, value)| ChecksumSpec {
            algorithm,
            kind: None,
            expected: ExpectedChecksum::Value(value),
        }),
        ..PutOptions::default()
    }
}

/// The algorithm a moved part's checksum is stored with.
fn stored_algorithm(rec: &VersionRecord) -> ChecksumAlgorithm {
    rec.checksum
        .as_ref()
        .map_or(ChecksumAlgorithm::Crc64Nvme, |c| c.algorithm)
}

fn bytes_stream(bytes: Bytes) -> PutStream {
    Box::pin(futures::stream::once(async move { Ok::<Bytes, BoxError>(bytes) }))
}

/// Walks the pool until a walk moves nothing, then records the outcome.
async fn run_decommission(layer: &Weak<ObjectLayer>, pool: usize) {
    // In a cluster one node runs it; the others keep checking in case that node dies.
    let leader = {
        let Some(strong) = layer.upgrade() else { return };
        match &strong.cluster {
            Some(cluster) => match cluster.may_lead("decommission").await {
                Some(lock) => Some(lock),
                None => return,
            },
            None => None,
        }
    };
    let mut status = {
        let Some(strong) = layer.upgrade() else { return };
        match strong
            .pools_record()
            .decommissions
            .into_iter()
            .find(|d| d.pool == pool)
        {
            Some(status) => status,
            None => return,
        }
    };
    // Every node rereads the pool states at least this often (and is told at once when it
    // answers): after this, no node places a new key in the pool.
    tokio::time::sleep(POOL_STATE_REFRESH).await;
    tracing::info!(pool, "decommissioning pool");
    let mut outcome: ObjectResult<()> = Ok(());
    for pass in 0..DECOMMISSION_PASSES_MAX {
        let (n_moved, n_failed) = match walk_pool(layer, pool, &mut status).await {
            Ok(counts) => counts,
            Err(err) => {
                outcome = Err(err);
                break;
            }
        };
        status.objects_failed = n_failed;
        if let Some(strong) = layer.upgrade()
            && let Err(err) = strong.update_decommission(status.clone()).await
        {
            tracing::warn!(pool, %err, "recording decommission progress failed");
        }
        tracing::info!(pool, pass, n_moved, n_failed, "decommission walk done");
        if n_moved == 0 && n_failed == 0 {
            break;
        }
        if pass + 1 == DECOMMISSION_PASSES_MAX {
            outcome = Err(ObjectError::InvalidRequest {
                reason: "objects keep arriving in or failing to leave the pool",
            });
        }
    }
    status.finished_unix_secs = unix_secs_now();
    match &outcome {
        Ok(()) => status.state = DecommissionState::Done,
        Err(err) => {
            status.state = DecommissionState::Failed;
            status.error = Some(err.to_string());
        }
    }
    if let Some(strong) = layer.upgrade() {
        if let Err(err) = strong.update_decommission(status.clone()).await {
            tracing::warn!(pool, %err, "recording the decommission outcome failed");
        }
        tracing::info!(pool, state = ?status.state, moved = status.objects_moved, "pool decommission ended");
    }
    drop(leader);
}

/// One walk over every bucket's keys in the pool's sets. Returns (keys moved, keys failed).
async fn walk_pool(
    layer: &Weak<ObjectLayer>,
    pool: usize,
    status: &mut DecommissionStatus,
) -> ObjectResult<(u64, u64)> {
    let (buckets, sets) = {
        let Some(strong) = layer.upgrade() else {
            return Ok((0, 0));
        };
        let buckets: Vec<String> = strong
            .list_all_buckets()
            .await?
            .into_iter()
            .map(|b| b.name)
            .collect();
        (buckets, strong.pools[pool].sets.clone())
    };
    let (mut n_moved, mut n_failed) = (0, 0);
    for bucket in buckets {
        let mut walker = {
            let Some(strong) = layer.upgrade() else {
                return Ok((n_moved, n_failed));
            };
            RawKeyWalker::in_sets(&strong, sets.clone(), &bucket, "")
        };
        while let Some(key) = walker.next_key().await? {
            let Some(strong) = layer.upgrade() else {
                return Ok((n_moved, n_failed));
            };
            let from = strong.set_in_pool(&strong.pools[pool], &key);
            match strong.move_key(&bucket, &key, from).await {
                Ok(moved) if !moved.emptied => {}
                Ok(moved) => {
                    n_moved += 1;
                    status.objects_moved += 1;
                    status.versions_moved += moved.versions;
                    status.bytes_moved += moved.bytes;
                }
                Err(err) => {
                    n_failed += 1;
                    tracing::warn!(pool, bucket, key, %err, "moving an object out of the pool failed");
                }
            }
        }
    }
    Ok((n_moved, n_failed))
}
