//! `ObjectLayer`: placement, buckets, and the object read/write/delete paths.
//!
//! Listing lives in `list.rs` and multipart uploads in `multipart.rs`; both extend this type.
//!
//! **Invariant:** changes to one key's versions happen under that key's lock (an in-process
//! lock now, a distributed one in cluster mode), so two writers never both replace the same
//! null version; the later committer wins and gets the later modification time.

use std::collections::HashMap;
use std::hash::Hasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::future::join_all;
use siphasher::sip::SipHasher13;
use strata_drive::{DataDirId, Drive, DriveError, FormatRecord, LocalDrive, MetaEntry, MetaOp, Table};
use strata_erasure::{Erasure, Layout};
use tokio::sync::{Mutex, RwLock};

use crate::api::*;
use crate::background::Background;
use crate::deployment::{ClusterHooks, DeploymentSpec, DriveLocation, DriveSpec, HeldLock, PoolSpec};
use crate::error::{ObjectError, ObjectResult};
use crate::memory::MemoryGate;
use crate::names::{check_bucket_name, check_object_key};
use crate::offline::OfflineDrive;
use crate::record::{self, BucketRecord, PartRecordRef, VersionRecord};
use crate::set::{self, ErasureSet, Resolved, WrittenData};
use crate::slot::DriveSlot;
use crate::stream::{HealSender, ObjectStream, ReadPlan};

/// Key-lock stripes: locks are striped by key hash so memory stays fixed.
const KEY_LOCK_STRIPES: usize = 1024;
/// In a cluster, the bucket list is reloaded from the drives when older than this, even
/// without a change notice (one a partitioned node missed).
const BUCKET_CACHE_TTL: Duration = Duration::from_secs(5);
/// Region reported for buckets created without a location constraint.
pub const DEFAULT_REGION: &str = "us-east-1";

/// The object layer over one deployment's erasure sets.
#[derive(Debug)]
pub struct ObjectLayer {
    deployment_id: uuid::Uuid,
    pub(crate) sets: Vec<ErasureSet>,
    /// Pools, each a range of `sets`. An object lives in one pool.
    pub(crate) pools: Vec<Pool>,
    /// Free bytes per pool and when they were measured (placement of new objects).
    pool_free: std::sync::Mutex<Option<(Instant, Vec<u64>)>>,
    /// Pool decommissions as last read from the drives.
    pub(crate) pools_state: std::sync::RwLock<crate::decommission::PoolsRecord>,
    /// Pools this node is decommissioning now.
    pub(crate) decommissions_running: std::sync::Mutex<Vec<usize>>,
    buckets: RwLock<HashMap<String, BucketRecord>>,
    key_locks: Vec<Mutex<()>>,
    /// Newest modification time handed out, so versions of a key get increasing times even if
    /// the clock steps back.
    last_mod_time_ns: std::sync::Mutex<i64>,
    pub(crate) background: Background,
    /// When `buckets` was last loaded from a read quorum of drives; `None` until it was.
    buckets_loaded_at: std::sync::Mutex<Option<Instant>>,
    /// Multi-node services; `None` on a single node.
    pub(crate) cluster: Option<Arc<dyn ClusterHooks>>,
    /// Memory that data in flight may hold (see `memory.rs`).
    memory: Arc<MemoryGate>,
    /// System records' namespace locks and change notices (see `system.rs`).
    pub(crate) system: crate::system::SystemState,
    /// Seals configuration values at rest once a KMS is configured (`set_value_sealer`).
    value_sealer: std::sync::RwLock<Option<Arc<dyn ValueSealer>>>,
    /// Remote tiers (`remote.rs`), once the server configured them.
    pub(crate) remote_tiers: std::sync::RwLock<Option<Arc<dyn crate::remote::RemoteTiers>>>,
    /// Wakes the remote-delete journal's worker.
    pub(crate) tier_journal_wakeup: tokio::sync::Notify,
    /// Media classes of the pools and the storage classes over them (`classes.rs`).
    pub(crate) classes: std::sync::RwLock<crate::classes::StorageClassConfig>,
    /// How long a transitioned version's old data stays, in milliseconds (`transition.rs`).
    pub(crate) transition_grace_ms: std::sync::atomic::AtomicU64,
}

/// Every drive's records of one key (newest first on each drive), or the drive's error.
pub(crate) type KeyScan = Vec<Result<Vec<MetaEntry>, DriveError>>;

/// One pool: the sets it holds.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) sets: std::ops::Range<usize>,
}

/// How long measured pool free space is reused for placement.
const POOL_FREE_TTL: Duration = Duration::from_secs(5);

/// A held key lock: released when dropped (the cluster lock first, then the local stripe).
#[derive(Debug)]
pub(crate) struct KeyGuard<'a> {
    _cluster: Option<Box<dyn HeldLock>>,
    _local: tokio::sync::MutexGuard<'a, ()>,
}

/// An object opened for reading: its metadata, the byte span served, and the lazy body.
/// Nothing is read from the drives' shard files until `body` is polled, so a caller can check
/// preconditions on `info` first and drop the reader.
#[derive(Debug)]
pub struct GetObjectReader {
    /// The version being read.
    pub info: ObjectInfo,
    /// First content byte served.
    pub offset: u64,
    /// Number of content bytes served.
    pub length: u64,
    /// The stored bytes: the content itself, or for a sealed version (`info.seal`) the whole
    /// packages holding it ([`SealGeometry::span`] of `offset` and `length` says where they
    /// start), which the caller opens.
    pub body: ObjectStream,
}

impl ObjectLayer {
    /// Seals system records (but the `kms` namespace, which holds the key itself) and bucket
    /// configuration from now on; values written before stay readable as they are, and are
    /// sealed when next written.
    pub fn set_value_sealer(&self, sealer: Arc<dyn ValueSealer>) {
        if let Ok(mut slot) = self.value_sealer.write() {
            *slot = Some(sealer);
        }
    }

    fn value_sealer(&self) -> Option<Arc<dyn ValueSealer>> {
        self.value_sealer.read().ok().and_then(|s| s.clone())
    }

    /// The stored form of a configuration value under `scope`.
    pub(crate) fn seal_value(&self, scope: &[u8], plain: &[u8]) -> ObjectResult<Vec<u8>> {
        match self.value_sealer() {
            None => Ok(plain.to_vec()),
            Some(sealer) => sealer.seal(scope, plain).map_err(|err| ObjectError::Corrupt {
                what: format!("sealing a configuration value failed: {err}"),
            }),
        }
    }

    /// A configuration value from its stored form under `scope`.
    pub(crate) fn open_value(&self, scope: &[u8], stored: Bytes) -> ObjectResult<Bytes> {
        match self.value_sealer() {
            None => Ok(stored),
            Some(sealer) => match sealer.open(scope, &stored) {
                Ok(Some(plain)) => Ok(Bytes::from(plain)),
                Ok(None) => Ok(stored),
                Err(err) => Err(ObjectError::Corrupt {
                    what: format!("a sealed configuration value does not open: {err}"),
                }),
            },
        }
    }

    /// Whether this node may run the deployment-wide job `job` now: always on a single node;
    /// in a cluster when it holds the job's lock (one node at a time). The lease is held
    /// while the job runs.
    pub async fn lead_job(&self, job: &str) -> Option<JobLease> {
        match &self.cluster {
            None => Some(JobLease { _lock: None }),
            Some(cluster) => cluster
                .may_lead(job)
                .await
                .map(|lock| JobLease { _lock: Some(lock) }),
        }
    }

    /// Opens local drive directories as one single-node deployment, formatting fresh ones.
    ///
    /// The drives are cut into erasure sets of equal size (the largest divisor of the count
    /// that is at most 16) with MinIO's default parity for that size. A drive that belongs to
    /// another deployment or position stops the start; a drive that cannot be opened at all
    /// (I/O errors) starts offline.
    pub async fn open_local(drives: &[PathBuf]) -> ObjectResult<ObjectLayer> {
        let set_size = set_size_for(drives.len())?;
        let mut deployment_id = None;
        // Whether each drive is unformatted now (new, or replacing a lost one).
        let mut fresh = Vec::with_capacity(drives.len());
        for path in drives {
            let format = LocalDrive::read_format(path).await;
            fresh.push(matches!(format, Ok(None)));
            if let Ok(Some(format)) = format {
                match deployment_id {
                    None => deployment_id = Some(format.deployment_id),
                    Some(id) if id != format.deployment_id => {
                        return Err(ObjectError::InvalidTopology {
                            reason: format!(
                                "drive {} belongs to deployment {}, others to {id}",
                                path.display(),
                                format.deployment_id
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        let deployment_id = deployment_id.unwrap_or_else(uuid::Uuid::new_v4);
        let deployment_exists = fresh.iter().any(|fresh| !fresh);
        let specs: Vec<DriveSpec> = drives
            .iter()
            .zip(&fresh)
            .map(|(path, fresh)| DriveSpec {
                endpoint: path.display().to_string(),
                location: DriveLocation::Local {
                    path: path.clone(),
                    new_in_existing: *fresh && deployment_exists,
                },
            })
            .collect();
        let spec = DeploymentSpec {
            deployment_id,
            pools: vec![PoolSpec {
                sets: specs.chunks(set_size).map(<[DriveSpec]>::to_vec).collect(),
                added: false,
            }],
        };
        ObjectLayer::open_deployment(spec, None).await
    }

    /// Opens a settled deployment: local drives are opened (and formatted into their position
    /// when empty), remote ones connected. A remote drive that cannot be reached starts offline
    /// and is connected by the drive monitor once its node answers. `cluster` is the
    /// multi-node services (locks, notices); `None` for a single node.
    pub async fn open_deployment(
        spec: DeploymentSpec,
        cluster: Option<Arc<dyn ClusterHooks>>,
    ) -> ObjectResult<ObjectLayer> {
        let deployment_id = spec.deployment_id;
        let mut sets = Vec::new();
        let mut pools = Vec::with_capacity(spec.pools.len());
        let mut any_added = false;
        for (pool_idx, pool) in spec.pools.into_iter().enumerate() {
            let set_size = pool.sets.first().map_or(0, Vec::len);
            if pool.sets.iter().any(|set| set.len() != set_size) {
                return Err(ObjectError::InvalidTopology {
                    reason: format!("the erasure sets of pool {pool_idx} differ in size"),
                });
            }
            let layout = Layout::default_for_set(set_size)?;
            let first_set = sets.len();
            any_added |= pool.added;
            for (set_idx, drive_specs) in pool.sets.into_iter().enumerate() {
                let opened = join_all(drive_specs.into_iter().enumerate().map(|(drive_idx, drive)| {
                    let expected = FormatRecord::new_deployment(
                        deployment_id,
                        pool_idx as u32,
                        set_idx as u32,
                        drive_idx as u32,
                        layout.n_data() as u32,
                        layout.n_parity() as u32,
                    );
                    open_slot(drive, expected)
                }))
                .await;
                let slots = opened
                    .into_iter()
                    .map(|slot| slot.map(Arc::new))
                    .collect::<ObjectResult<Vec<Arc<DriveSlot>>>>()?;
                let drives = slots.iter().map(|s| s.clone() as Arc<dyn Drive>).collect();
                sets.push(ErasureSet {
                    drives,
                    slots,
                    erasure: Erasure::new(layout)?,
                });
            }
            pools.push(Pool {
                sets: first_set..sets.len(),
            });
        }
        if sets.is_empty() {
            return Err(ObjectError::InvalidTopology {
                reason: "no drives".to_string(),
            });
        }
        let layer = ObjectLayer {
            deployment_id,
            sets,
            pools,
            pool_free: std::sync::Mutex::new(None),
            pools_state: std::sync::RwLock::new(Default::default()),
            decommissions_running: std::sync::Mutex::new(Vec::new()),
            buckets: RwLock::new(HashMap::new()),
            key_locks: (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            last_mod_time_ns: std::sync::Mutex::new(0),
            background: Background::new(),
            buckets_loaded_at: std::sync::Mutex::new(None),
            cluster,
            memory: Arc::new(MemoryGate::default()),
            system: crate::system::SystemState::new(),
            value_sealer: std::sync::RwLock::new(None),
            classes: std::sync::RwLock::new(Default::default()),
            remote_tiers: std::sync::RwLock::new(None),
            tier_journal_wakeup: tokio::sync::Notify::new(),
            transition_grace_ms: std::sync::atomic::AtomicU64::new(
                crate::transition::OLD_DATA_GRACE_DEFAULT.as_millis() as u64,
            ),
        };
        if let Err(err) = layer.load_buckets().await {
            // Serve anyway (health reports the lost quorum); bucket lookups retry the load.
            tracing::warn!(%err, "bucket list unavailable at start");
        }
        if layer.pools.len() > 1
            && let Err(err) = layer.load_pools_record().await
        {
            tracing::warn!(%err, "pool states unavailable at start; retried in the background");
        }
        if any_added {
            // A pool added to a running deployment gets the bucket records at once.
            match layer.heal_buckets().await {
                Ok(n) => tracing::info!(n_records = n, "bucket records copied onto the added pool"),
                Err(err) => {
                    tracing::warn!(%err, "copying bucket records onto the added pool failed; the next heal does it")
                }
            }
            // And the system records (a namespace it cannot heal now, the next heal does).
            layer.heal_system_records().await;
        }
        tracing::info!(
            %deployment_id,
            n_pools = layer.pools.len(),
            n_sets = layer.sets.len(),
            "object layer ready"
        );
        Ok(layer)
    }

    /// The slots of drives on this node, keyed by path (what the node serves to its peers).
    pub fn local_drives(&self) -> HashMap<String, Arc<dyn Drive>> {
        self.sets
            .iter()
            .flat_map(|set| set.slots.iter())
            .filter_map(|slot| match &slot.location {
                DriveLocation::Local { path, .. } => Some((
                    path.to_string_lossy().into_owned(),
                    slot.clone() as Arc<dyn Drive>,
                )),
                DriveLocation::Remote(_) => None,
            })
            .collect()
    }

    /// The deployment id (shared by every drive's format record).
    pub fn deployment_id(&self) -> uuid::Uuid {
        self.deployment_id
    }

    /// Whether the deployment can read and write: drives believed online against each set's
    /// quorums.
    pub async fn health(&self) -> Health {
        self.health_counting(|_| true)
    }

    /// The health the deployment would have without this node's drives: whether taking this
    /// node down for maintenance keeps every set's write quorum. While any node owes a heal
    /// ([`ObjectLayer::heal_owed`]: a drive came back, or writes missed drives, and the
    /// shards they lack are not repaired yet) the answer is no write quorum: objects written
    /// meanwhile may be readable only with every shard that is online now.
    pub async fn health_without_this_node(&self) -> Health {
        let mut health = self.health_counting(|slot| matches!(slot.location, DriveLocation::Remote(_)));
        if health.write_quorum && self.heal_owed() {
            health.write_quorum = false;
        }
        if health.write_quorum
            && let Some(cluster) = &self.cluster
            && cluster.peers_owe_heal().await
        {
            health.write_quorum = false;
        }
        health
    }

    fn health_counting(&self, counts: impl Fn(&DriveSlot) -> bool) -> Health {
        let mut health = Health {
            write_quorum: true,
            read_quorum: true,
            n_drives_online: 0,
            n_drives: 0,
        };
        for set in &self.sets {
            let n_online = set.slots.iter().filter(|s| s.is_online() && counts(s)).count();
            health.n_drives += set.n_drives();
            health.n_drives_online += n_online;
            health.write_quorum &= n_online >= set.write_quorum();
            health.read_quorum &= n_online >= set.read_quorum();
        }
        health
    }

    /// Flushes and closes: called at graceful shutdown. Metadata commits are durable when
    /// acknowledged, so there is nothing to flush; this waits for in-flight key changes.
    pub async fn shutdown(&self) {
        for lock in &self.key_locks {
            drop(lock.lock().await);
        }
    }

    // ---------------------------------------------------------------- placement and helpers

    /// The set of `pool` that an object name maps to: SipHash keyed with the deployment id.
    pub(crate) fn set_in_pool(&self, pool: &Pool, key: &str) -> &ErasureSet {
        let n_sets = pool.sets.len();
        let idx = if n_sets == 1 {
            0
        } else {
            let (k0, k1) = self.deployment_id.as_u64_pair();
            let mut hasher = SipHasher13::new_with_keys(k0, k1);
            hasher.write(key.as_bytes());
            (hasher.finish() % n_sets as u64) as usize
        };
        &self.sets[pool.sets.start + idx]
    }

    /// The sets an object name maps to, one per pool.
    pub(crate) fn candidate_sets(&self, key: &str) -> impl Iterator<Item = &ErasureSet> {
        self.pools.iter().map(move |pool| self.set_in_pool(pool, key))
    }

    /// The set holding `key`: in a single pool its only candidate; with several pools, the
    /// pool whose newest version of the key is newest (`None` when no pool has it).
    pub(crate) async fn set_holding(&self, bucket: &str, key: &str) -> ObjectResult<Option<&ErasureSet>> {
        if self.pools.len() == 1 {
            return Ok(Some(self.set_in_pool(&self.pools[0], key)));
        }
        let found = join_all(self.candidate_sets(key).map(|set| async move {
            let versions = set.resolve_versions(bucket, key).await?;
            Ok::<_, ObjectError>(versions.first().map(|v| (v.record.mod_time_ns, set)))
        }))
        .await;
        let mut best: Option<(i64, &ErasureSet)> = None;
        for answer in found {
            if let Some((mod_time_ns, set)) = answer?
                && best.is_none_or(|(t, _)| mod_time_ns > t)
            {
                best = Some((mod_time_ns, set));
            }
        }
        Ok(best.map(|(_, set)| set))
    }

    /// The set a read of `key` goes to (where it lives; pool 0's candidate when nowhere).
    pub(crate) async fn set_for_read(&self, bucket: &str, key: &str) -> ObjectResult<&ErasureSet> {
        Ok(match self.set_holding(bucket, key).await? {
            Some(set) => set,
            None => self.set_in_pool(&self.pools[0], key),
        })
    }

    /// The set a new version of `key` in `storage_class` goes to: where the key lives
    /// (unless that pool is decommissioning), else a new key's pool of the class's media
    /// class.
    pub(crate) async fn set_for_write(
        &self,
        bucket: &str,
        key: &str,
        storage_class: Option<&str>,
    ) -> ObjectResult<&ErasureSet> {
        let media = self.media_class_of(storage_class)?;
        if self.pools.len() == 1 {
            return Ok(self.set_in_pool(&self.pools[0], key));
        }
        if let Some(set) = self.set_holding(bucket, key).await?
            && !self.is_decommissioning(self.pool_of(set))
        {
            return Ok(set);
        }
        Ok(self.set_in_pool(&self.pools[self.pool_for_new_key(&media).await], key))
    }

    /// The set of a pool for new keys of media class `media` that `key` maps to.
    pub(crate) async fn set_for_new_key_of(&self, key: &str, media: &str) -> &ErasureSet {
        self.set_in_pool(&self.pools[self.pool_for_new_key(media).await], key)
    }

    /// A pool of media class `media` for a new key: chosen at random weighted by free
    /// space, among the pools not decommissioning (so new data flows to an added pool and away
    /// from a leaving one); any pool when none of that class can take it.
    async fn pool_for_new_key(&self, media: &str) -> usize {
        if self.pools.len() == 1 {
            return 0;
        }
        let mut free = self.pool_free_bytes().await;
        let of_class: Vec<bool> = (0..self.pools.len())
            .map(|idx| !self.is_decommissioning(idx) && self.pool_media_class(idx) == media)
            .collect();
        let any_of_class = of_class.iter().any(|c| *c);
        for (idx, f) in free.iter_mut().enumerate() {
            if self.is_decommissioning(idx) || (any_of_class && !of_class[idx]) {
                *f = 0;
            }
        }
        let total: u128 = free.iter().map(|f| u128::from(*f)).sum();
        if total == 0 {
            return (0..self.pools.len())
                .find(|idx| of_class[*idx])
                .or_else(|| (0..self.pools.len()).find(|idx| !self.is_decommissioning(*idx)))
                .unwrap_or(0);
        }
        let mut pick = rand::random_range(0..total);
        free.iter()
            .position(|f| {
                let f = u128::from(*f);
                if pick < f {
                    true
                } else {
                    pick -= f;
                    false
                }
            })
            .unwrap_or(0)
    }

    /// The pool a set belongs to.
    pub(crate) fn pool_of(&self, set: &ErasureSet) -> usize {
        let idx = self.sets.iter().position(|s| std::ptr::eq(s, set)).unwrap_or(0);
        self.pools.iter().position(|p| p.sets.contains(&idx)).unwrap_or(0)
    }

    /// Free bytes of each pool (the sum over its online drives), measured at most every
    /// [`POOL_FREE_TTL`].
    async fn pool_free_bytes(&self) -> Vec<u64> {
        if let Some((at, free)) = lock_std(&self.pool_free).as_ref()
            && at.elapsed() < POOL_FREE_TTL
        {
            return free.clone();
        }
        let mut free = Vec::with_capacity(self.pools.len());
        for pool in &self.pools {
            let infos = join_all(
                self.sets[pool.sets.clone()]
                    .iter()
                    .flat_map(|set| set.slots.iter())
                    .filter(|slot| slot.is_online())
                    .map(|slot| slot.info()),
            )
            .await;
            free.push(infos.into_iter().flatten().map(|i| i.free_bytes).sum());
        }
        *lock_std(&self.pool_free) = Some((Instant::now(), free.clone()));
        free
    }

    /// Takes the lock on one key's versions: this node's stripe, and in a cluster the
    /// deployment-wide lock too (bounded wait; `LockUnavailable` without a quorum of nodes).
    pub(crate) async fn lock_key(&self, bucket: &str, key: &str) -> ObjectResult<KeyGuard<'_>> {
        let mut hasher = SipHasher13::new_with_keys(1, 2);
        hasher.write(bucket.as_bytes());
        hasher.write_u8(0);
        hasher.write(key.as_bytes());
        let stripe = &self.key_locks[(hasher.finish() % KEY_LOCK_STRIPES as u64) as usize];
        let local = stripe.lock().await;
        let cluster = match &self.cluster {
            Some(cluster) => Some(cluster.lock(&format!("object/{bucket}/{key}")).await?),
            None => None,
        };
        Ok(KeyGuard {
            _cluster: cluster,
            _local: local,
        })
    }

    /// A modification time for a new version: now, but never at or before the last one.
    pub(crate) fn next_mod_time_ns(&self) -> i64 {
        let now = record::to_unix_nanos(SystemTime::now());
        let mut last = match self.last_mod_time_ns.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let next = now.max(*last + 1);
        *last = next;
        next
    }

    /// What a new version of `key` (id `version_id`, `None` = the null version) needs before its
    /// records are written: the key's records when it replaces the null version (scanned once,
    /// for both the replacement and the cluster time), and its modification time.
    async fn prepare_new_version(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        version_id: Option<uuid::Uuid>,
    ) -> (Option<KeyScan>, i64) {
        let existing = match version_id {
            None => Some(set.scan_versions(bucket, key).await),
            Some(_) => None,
        };
        let mod_time_ns = self
            .mod_time_for_new_version(bucket, key, set, existing.as_ref())
            .await;
        (existing, mod_time_ns)
    }

    /// A modification time for a new version of `key` in `set`: now, strictly after the last
    /// one this node handed out, and in a cluster also after the key's newest version whichever
    /// node wrote it. `scanned` is the key's records when the caller has them already;
    /// otherwise the newest record is read from each drive. The caller holds the key lock, so no
    /// version is added meanwhile: the later writer wins even when node clocks differ.
    pub(crate) async fn mod_time_for_new_version(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        scanned: Option<&KeyScan>,
    ) -> i64 {
        let now = self.next_mod_time_ns();
        if self.cluster.is_none() {
            return now;
        }
        let newest_only;
        let scan = match scanned {
            Some(scan) => scan,
            None => {
                let prefix = record::object_prefix(bucket, key);
                newest_only = join_all(set.drives.iter().map(|d| {
                    d.meta_scan(
                        Table::Objects,
                        strata_drive::ScanRange {
                            prefix: prefix.clone(),
                            limit: 1,
                            ..Default::default()
                        },
                    )
                }))
                .await;
                &newest_only
            }
        };
        // A key's records sort newest first on each drive.
        let newest = scan
            .iter()
            .flatten()
            .filter_map(|entries| entries.first())
            .filter_map(|entry| record::decode::<VersionRecord>(&entry.value).ok())
            .map(|rec| rec.mod_time_ns)
            .max();
        match newest {
            Some(newest) if newest >= now => {
                let next = newest + 1;
                let mut last = lock_std(&self.last_mod_time_ns);
                *last = (*last).max(next);
                next
            }
            _ => now,
        }
    }

    pub(crate) fn all_drives(&self) -> impl Iterator<Item = &Arc<dyn Drive>> {
        self.sets.iter().flat_map(|s| s.drives.iter())
    }

    /// Commits `ops(set, drive_idx)` on every drive of every set; each set needs write quorum.
    pub(crate) async fn commit_everywhere(&self, ops: impl Fn() -> Vec<MetaOp>) -> ObjectResult<()> {
        for set in &self.sets {
            set.commit_on_quorum(&ops).await?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- buckets

    async fn load_buckets(&self) -> ObjectResult<()> {
        let mut counts: HashMap<String, (usize, BucketRecord)> = HashMap::new();
        let mut n_answered = 0;
        // Drives still being healed may lack buckets; they are no evidence either way.
        let slots = self
            .sets
            .iter()
            .flat_map(|s| s.slots.iter())
            .filter(|slot| !slot.is_healing());
        for slot in slots {
            let Ok(entries) = set::scan_all(slot.as_ref(), Table::Buckets, b"").await else {
                continue;
            };
            n_answered += 1;
            for entry in entries {
                match record::decode::<BucketRecord>(&entry.value) {
                    Ok(rec) => counts.entry(rec.name.clone()).or_insert((0, rec)).0 += 1,
                    Err(err) => tracing::warn!(%err, "undecodable bucket record"),
                }
            }
        }
        let quorum = self.sets.iter().map(|s| s.read_quorum()).min().unwrap_or(1);
        if n_answered < quorum {
            return Err(ObjectError::ReadQuorum {
                needed: quorum,
                got: n_answered,
            });
        }
        let mut buckets = self.buckets.write().await;
        buckets.clear();
        for (name, (count, rec)) in counts {
            if count >= quorum {
                buckets.insert(name, rec);
            }
        }
        *lock_std(&self.buckets_loaded_at) = Some(Instant::now());
        Ok(())
    }

    /// Every bucket's record, encoded as stored (for healing drives that lack them).
    pub(crate) async fn bucket_records_encoded(&self) -> Vec<(String, Vec<u8>)> {
        self.buckets
            .read()
            .await
            .iter()
            .map(|(name, rec)| (name.clone(), record::encode(rec)))
            .collect()
    }

    /// Loads the bucket list if it could not be loaded before (quorum was missing), or, in a
    /// cluster, when it is older than [`BUCKET_CACHE_TTL`] (a backstop for change notices a
    /// partitioned node missed).
    async fn ensure_buckets_loaded(&self) -> ObjectResult<()> {
        let loaded_at = *lock_std(&self.buckets_loaded_at);
        let stale = match loaded_at {
            None => true,
            Some(at) => self.cluster.is_some() && at.elapsed() > BUCKET_CACHE_TTL,
        };
        if stale {
            self.load_buckets().await?;
        }
        Ok(())
    }

    async fn bucket_record(&self, bucket: &str) -> ObjectResult<BucketRecord> {
        self.ensure_buckets_loaded().await?;
        if let Some(rec) = self.buckets.read().await.get(bucket).cloned() {
            return Ok(rec);
        }
        // Another node may have created it moments ago: ask the drives before saying no.
        if self.cluster.is_some() {
            self.reload_bucket(bucket).await?;
            if let Some(rec) = self.buckets.read().await.get(bucket).cloned() {
                return Ok(rec);
            }
        }
        Err(ObjectError::NoSuchBucket {
            bucket: bucket.to_string(),
        })
    }

    /// Re-reads one bucket's record from a read quorum of drives into the cache (another node
    /// created, changed or deleted it).
    pub async fn reload_bucket(&self, bucket: &str) -> ObjectResult<()> {
        let slots = self
            .sets
            .iter()
            .flat_map(|s| s.slots.iter())
            .filter(|slot| !slot.is_healing());
        let answers = join_all(slots.map(|slot| slot.meta_get(Table::Buckets, bucket.as_bytes()))).await;
        let mut n_answered = 0;
        let mut counts: Vec<(Vec<u8>, usize)> = Vec::new();
        let mut n_absent = 0;
        for answer in answers.into_iter().flatten() {
            n_answered += 1;
            match answer {
                None => n_absent += 1,
                Some(value) => match counts.iter_mut().find(|(v, _)| v[..] == value[..]) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((value.to_vec(), 1)),
                },
            }
        }
        let quorum = self.sets.iter().map(|s| s.read_quorum()).min().unwrap_or(1);
        if n_answered < quorum {
            return Err(ObjectError::ReadQuorum {
                needed: quorum,
                got: n_answered,
            });
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let agreed = counts
            .into_iter()
            .next()
            .filter(|(_, n)| *n >= quorum && *n > n_absent)
            .map(|(value, _)| record::decode::<BucketRecord>(&value))
            .transpose()?;
        let mut buckets = self.buckets.write().await;
        match agreed {
            Some(rec) => {
                buckets.insert(bucket.to_string(), rec);
            }
            None => {
                buckets.remove(bucket);
            }
        }
        Ok(())
    }

    /// Brings the cached view of `bucket` up to date before changing it (the caller holds the
    /// bucket lock): in a cluster another node may have changed it a moment ago.
    async fn refresh_bucket_for_change(&self, bucket: &str) -> ObjectResult<()> {
        if self.cluster.is_some() {
            self.reload_bucket(bucket).await?;
        }
        self.ensure_buckets_loaded().await
    }

    /// Takes the deployment-wide lock on a bucket's record (cluster only).
    async fn lock_bucket(&self, bucket: &str) -> ObjectResult<Option<Box<dyn HeldLock>>> {
        match &self.cluster {
            Some(cluster) => Ok(Some(cluster.lock(&format!("bucket/{bucket}")).await?)),
            None => Ok(None),
        }
    }

    /// Tells the other nodes that a bucket changed (cluster only).
    async fn announce_bucket_change(&self, bucket: &str) {
        if let Some(cluster) = &self.cluster {
            cluster.bucket_changed(bucket).await;
        }
    }

    /// Creates a bucket.
    pub async fn make_bucket(&self, bucket: &str, opts: MakeBucketOptions) -> ObjectResult<()> {
        check_bucket_name(bucket)?;
        self.make_bucket_unchecked(bucket, opts).await
    }

    /// [`Self::make_bucket`] without the S3 name rules (the layer's own hidden buckets).
    pub(crate) async fn make_bucket_unchecked(
        &self,
        bucket: &str,
        opts: MakeBucketOptions,
    ) -> ObjectResult<()> {
        let _lock = self.lock_bucket(bucket).await?;
        self.refresh_bucket_for_change(bucket).await?;
        let mut buckets = self.buckets.write().await;
        if buckets.contains_key(bucket) {
            return Err(ObjectError::BucketExists {
                bucket: bucket.to_string(),
            });
        }
        let rec = BucketRecord {
            name: bucket.to_string(),
            created_ns: record::to_unix_nanos(SystemTime::now()),
            location: if opts.location.is_empty() {
                DEFAULT_REGION.to_string()
            } else {
                opts.location.clone()
            },
            versioning: if opts.object_lock {
                VersioningState::Enabled
            } else {
                VersioningState::Unversioned
            },
            owner: opts.owner.clone(),
            object_lock: opts.object_lock,
        };
        let value = record::encode(&rec);
        // A bucket deleted earlier under this name may have left configuration on a drive
        // that missed the delete: it must not apply to the new bucket (a public policy!).
        self.drop_bucket_configs(bucket).await;
        let mut sealed_configs = Vec::with_capacity(opts.configs.len());
        for (name, blob) in &opts.configs {
            let key = record::bucket_config_key(bucket, name);
            sealed_configs.push((self.seal_value(&key, blob)?, key));
        }
        self.commit_everywhere(|| {
            let configs = sealed_configs
                .iter()
                .map(|(blob, key)| MetaOp::put(Table::BucketConfig, key.clone(), blob.clone()));
            std::iter::once(MetaOp::put(
                Table::Buckets,
                bucket.as_bytes().to_vec(),
                value.clone(),
            ))
            .chain(configs)
            .collect()
        })
        .await?;
        buckets.insert(bucket.to_string(), rec);
        drop(buckets);
        self.announce_bucket_change(bucket).await;
        Ok(())
    }

    /// Deletes a bucket: only when it holds no versions and no uploads, unless `force`, which
    /// removes everything in it.
    pub async fn delete_bucket(&self, bucket: &str, force: bool) -> ObjectResult<()> {
        let _lock = self.lock_bucket(bucket).await?;
        self.refresh_bucket_for_change(bucket).await?;
        let mut buckets = self.buckets.write().await;
        if !buckets.contains_key(bucket) {
            return Err(ObjectError::NoSuchBucket {
                bucket: bucket.to_string(),
            });
        }
        let prefix = record::bucket_prefix(bucket);
        if !force {
            for set in &self.sets {
                for table in [Table::Objects, Table::Uploads] {
                    let per_drive = join_all(set.drives.iter().map(|d| {
                        d.meta_scan(
                            table,
                            strata_drive::ScanRange {
                                prefix: prefix.clone(),
                                limit: 1,
                                ..Default::default()
                            },
                        )
                    }))
                    .await;
                    let n_nonempty = per_drive
                        .iter()
                        .filter(|r| r.as_ref().is_ok_and(|v| !v.is_empty()))
                        .count();
                    if n_nonempty > 0 {
                        return Err(ObjectError::BucketNotEmpty {
                            bucket: bucket.to_string(),
                        });
                    }
                }
            }
        } else {
            self.purge_bucket(bucket).await?;
        }
        self.commit_everywhere(|| vec![MetaOp::delete(Table::Buckets, bucket.as_bytes().to_vec())])
            .await?;
        buckets.remove(bucket);
        drop(buckets);
        self.announce_bucket_change(bucket).await;
        // Configuration blobs go with the bucket (best effort: `make_bucket` clears leftovers
        // again before a bucket of the same name exists).
        self.drop_bucket_configs(bucket).await;
        Ok(())
    }

    /// Removes every configuration blob of `bucket` (policy, ...) from every drive that
    /// answers, best effort.
    async fn drop_bucket_configs(&self, bucket: &str) {
        let prefix = record::bucket_prefix(bucket);
        for drive in self.all_drives() {
            if let Ok(entries) = set::scan_all(drive.as_ref(), Table::BucketConfig, &prefix).await
                && !entries.is_empty()
            {
                let ops = entries
                    .into_iter()
                    .map(|e| MetaOp::delete(Table::BucketConfig, e.key.to_vec()))
                    .collect();
                if let Err(err) = drive.meta_commit_deleting(ops).await {
                    tracing::warn!(bucket, %err, "could not remove a bucket's configuration from a drive");
                }
            }
        }
    }

    /// Removes every version, upload and data directory of a bucket, drive by drive.
    async fn purge_bucket(&self, bucket: &str) -> ObjectResult<()> {
        let prefix = record::bucket_prefix(bucket);
        // Remote tier objects of the bucket's versions are journaled before any record goes.
        let mut remote = Vec::new();
        for drive in self.all_drives() {
            if let Ok(entries) = set::scan_all(drive.as_ref(), Table::Objects, &prefix).await {
                for entry in entries {
                    let Ok(rec) = record::decode::<VersionRecord>(&entry.value) else {
                        continue;
                    };
                    let key = entry
                        .key
                        .get(prefix.len()..)
                        .and_then(record::split_version_key)
                        .map(|(key, _)| String::from_utf8_lossy(key).into_owned())
                        .unwrap_or_default();
                    for e in Self::deletions_of(bucket, &key, [&rec]) {
                        if !remote
                            .iter()
                            .any(|r: &crate::remote::JournalEntry| r.name == e.name)
                        {
                            remote.push(e);
                        }
                    }
                }
            }
        }
        self.journal_remote(&remote).await?;
        let mut tiered = Vec::new();
        for drive in self.all_drives() {
            let Ok(entries) = set::scan_all(drive.as_ref(), Table::Objects, &prefix).await else {
                continue;
            };
            let mut ops = Vec::with_capacity(entries.len() * 2);
            let mut dirs = Vec::new();
            for entry in entries {
                if let Ok(rec) = record::decode::<VersionRecord>(&entry.value) {
                    dirs.extend(rec.parts.iter().filter_map(PartRecordRef::data_dir));
                    tiered.extend(rec.tiered);
                }
                ops.push(MetaOp::delete(Table::InlineData, entry.key.to_vec()));
                ops.push(MetaOp::delete(Table::Objects, entry.key.to_vec()));
            }
            if let Ok(uploads) = set::scan_all(drive.as_ref(), Table::Uploads, &prefix).await {
                for upload in uploads {
                    if let Ok(rec) = record::decode::<record::UploadRecord>(&upload.value) {
                        let parts = set::scan_all(
                            drive.as_ref(),
                            Table::Parts,
                            &record::parts_prefix(&rec.upload_id),
                        )
                        .await
                        .unwrap_or_default();
                        for part in parts {
                            if let Ok(p) = record::decode::<record::PartRecord>(&part.value) {
                                dirs.push(DataDirId(p.data_dir));
                            }
                            ops.push(MetaOp::delete(Table::Parts, part.key.to_vec()));
                        }
                    }
                    ops.push(MetaOp::delete(Table::Uploads, upload.key.to_vec()));
                }
            }
            if let Err(err) = drive.meta_commit_deleting(ops).await {
                tracing::warn!(drive = drive.endpoint(), %err, "purging a bucket's records failed");
                continue;
            }
            for dir in dirs {
                let _ = drive.data_dir_delete(dir).await;
            }
        }
        // Tier objects last: a purge interrupted before leaves them to the tier sweep.
        self.release_all_tiered(tiered).await;
        Ok(())
    }

    /// Lists buckets by name (not the layer's own hidden ones, such as the tier bucket).
    pub async fn list_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        let mut out = self.list_all_buckets().await?;
        out.retain(|b| !b.name.starts_with('.'));
        Ok(out)
    }

    /// Lists every bucket by name, the hidden ones too (heal, the scanner, decommission).
    pub(crate) async fn list_all_buckets(&self) -> ObjectResult<Vec<BucketInfo>> {
        self.ensure_buckets_loaded().await?;
        let mut out: Vec<BucketInfo> = self.buckets.read().await.values().map(bucket_info).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One bucket's information; `NoSuchBucket` when absent.
    pub async fn bucket_info(&self, bucket: &str) -> ObjectResult<BucketInfo> {
        self.bucket_record(bucket).await.map(|r| bucket_info(&r))
    }

    /// Sets a bucket's versioning state (Unversioned cannot be set back once versioned; a
    /// bucket with object lock stays Enabled).
    pub async fn set_bucket_versioning(&self, bucket: &str, state: VersioningState) -> ObjectResult<()> {
        self.change_bucket_record(bucket, |rec| {
            if rec.object_lock && state != VersioningState::Enabled {
                return Err(ObjectError::InvalidBucketState {
                    reason: "versioning cannot be suspended on a bucket with object lock enabled",
                });
            }
            rec.versioning = match (rec.versioning, state) {
                (VersioningState::Unversioned, VersioningState::Suspended) => VersioningState::Suspended,
                (_, VersioningState::Unversioned) => {
                    return Err(ObjectError::InvalidRequest {
                        reason: "versioning cannot be turned off, only suspended",
                    });
                }
                (_, state) => state,
            };
            Ok(())
        })
        .await
    }

    /// Turns object lock on for an existing bucket (it must have versioning enabled; it then
    /// can never be suspended). Idempotent.
    pub async fn enable_object_lock(&self, bucket: &str) -> ObjectResult<()> {
        self.change_bucket_record(bucket, |rec| {
            if !rec.object_lock && rec.versioning != VersioningState::Enabled {
                return Err(ObjectError::InvalidBucketState {
                    reason: "object lock needs versioning enabled on the bucket",
                });
            }
            rec.object_lock = true;
            Ok(())
        })
        .await
    }

    /// Changes a bucket's record under the bucket's lock: `change` edits a fresh copy (or
    /// refuses); the result is committed on every drive and announced to the other nodes.
    async fn change_bucket_record(
        &self,
        bucket: &str,
        change: impl FnOnce(&mut BucketRecord) -> ObjectResult<()>,
    ) -> ObjectResult<()> {
        let _lock = self.lock_bucket(bucket).await?;
        self.refresh_bucket_for_change(bucket).await?;
        let mut buckets = self.buckets.write().await;
        let Some(current) = buckets.get(bucket) else {
            return Err(ObjectError::NoSuchBucket {
                bucket: bucket.to_string(),
            });
        };
        let mut rec = current.clone();
        change(&mut rec)?;
        let value = record::encode(&rec);
        self.commit_everywhere(|| {
            vec![MetaOp::put(
                Table::Buckets,
                bucket.as_bytes().to_vec(),
                value.clone(),
            )]
        })
        .await?;
        buckets.insert(bucket.to_string(), rec);
        drop(buckets);
        self.announce_bucket_change(bucket).await;
        Ok(())
    }

    /// Stores a named configuration blob for a bucket (policy, lifecycle, ...).
    pub async fn put_bucket_config(&self, bucket: &str, name: &str, blob: Bytes) -> ObjectResult<()> {
        let _lock = self.lock_bucket(bucket).await?;
        self.bucket_record(bucket).await?;
        let key = record::bucket_config_key(bucket, name);
        let stored = self.seal_value(&key, &blob)?;
        self.commit_everywhere(|| vec![MetaOp::put(Table::BucketConfig, key.clone(), stored.clone())])
            .await?;
        self.announce_bucket_change(bucket).await;
        Ok(())
    }

    /// Reads a named configuration blob; `None` when never set.
    pub async fn get_bucket_config(&self, bucket: &str, name: &str) -> ObjectResult<Option<Bytes>> {
        self.bucket_record(bucket).await?;
        let key = record::bucket_config_key(bucket, name);
        let mut counts: Vec<(Option<Bytes>, usize)> = Vec::new();
        let set = &self.sets[0];
        let results = join_all(set.drives.iter().map(|d| d.meta_get(Table::BucketConfig, &key))).await;
        let mut n_answered = 0;
        for value in results.into_iter().flatten() {
            n_answered += 1;
            match counts.iter_mut().find(|(v, _)| *v == value) {
                Some((_, n)) => *n += 1,
                None => counts.push((value, 1)),
            }
        }
        if n_answered < set.read_quorum() {
            return Err(ObjectError::ReadQuorum {
                needed: set.read_quorum(),
                got: n_answered,
            });
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        counts
            .into_iter()
            .next()
            .and_then(|(v, _)| v)
            .map(|stored| self.open_value(&key, stored))
            .transpose()
    }

    /// Removes a named configuration blob.
    pub async fn delete_bucket_config(&self, bucket: &str, name: &str) -> ObjectResult<()> {
        let _lock = self.lock_bucket(bucket).await?;
        self.bucket_record(bucket).await?;
        let key = record::bucket_config_key(bucket, name);
        self.commit_everywhere(|| vec![MetaOp::delete(Table::BucketConfig, key.clone())])
            .await?;
        self.announce_bucket_change(bucket).await;
        Ok(())
    }

    /// The gate through which data in flight takes memory from the process's budget.
    pub fn memory(&self) -> &MemoryGate {
        &self.memory
    }

    /// What a server-side copy (CopyObject, UploadPartCopy) takes from the gate: its read's and
    /// its write's memory in one permit, taken before either side holds any (a copy holding its
    /// read's memory while it waits for its write's could wait on other copies doing the same).
    /// The largest of any set, so no set has to be looked up twice.
    pub(crate) fn copy_memory_bytes(&self) -> u64 {
        self.sets
            .iter()
            .map(|set| {
                set.get_memory_bytes(u64::MAX)
                    + set.put_memory_bytes(None)
                    + crate::checksum::offload_memory_bytes(true)
            })
            .max()
            .unwrap_or(0)
    }

    // ---------------------------------------------------------------- objects

    /// Stores an object from a byte stream. Returns its info (ETag = hex MD5).
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: PutStream,
        opts: PutOptions,
    ) -> ObjectResult<ObjectInfo> {
        self.put_object_admitted(bucket, key, body, opts, Admission::Gate)
            .await
    }

    /// [`Self::put_object`], taking its memory from the gate unless the caller already did.
    async fn put_object_admitted(
        &self,
        bucket: &str,
        key: &str,
        body: PutStream,
        mut opts: PutOptions,
        admission: Admission,
    ) -> ObjectResult<ObjectInfo> {
        let bucket_rec = self.bucket_record(bucket).await?;
        check_object_key(key)?;
        let set = self
            .set_for_write(bucket, key, opts.metadata.storage_class.as_deref())
            .await?;
        // A single body's checksum is the one the client sent, or CRC64NVME (S3's default).
        let store = opts
            .checksum
            .as_ref()
            .map_or(ChecksumAlgorithm::Crc64Nvme, |c| c.algorithm);
        let memory_bytes = set.put_memory_bytes(opts.size) + crate::checksum::put_offload_bytes(&opts, store);
        let _memory = match admission {
            Admission::Gate => Some(self.memory.acquire(memory_bytes).await?),
            Admission::Admitted => None,
        };
        let distribution = set.distribution(key);
        let data = set
            .write_data(body, &mut opts, 1, &distribution, true, store)
            .await?;
        let part = PartRecordRef {
            number: 1,
            size: data.size,
            etag: data.etag.clone(),
            data_dir: data.data_dir.map(|d| d.0),
            checksum: None,
            plain_size: data.sealed.as_ref().map(|s| s.plain_size),
            seal_header: data.sealed.as_ref().map(|s| s.header.clone()),
        };
        let checksum = Some(ObjectChecksum::full(data.checksum.0, data.checksum.1.clone()));
        let etag = part.etag.clone();
        let seal = data.sealed.as_ref().map(|s| (s.geometry, s.plain_size));
        let parts = if data.size == 0 { Vec::new() } else { vec![part] };
        let _guard = self.lock_key(bucket, key).await?;
        if let Err(err) = self
            .check_write_condition(bucket, key, set, opts.condition.as_ref())
            .await
        {
            if let Some(dir) = data.data_dir {
                set.delete_data_dirs(&[dir], &data.ok).await;
            }
            return Err(err);
        }
        self.commit_version(
            bucket,
            key,
            bucket_rec.versioning,
            set,
            &distribution,
            NewVersion {
                data,
                metadata: opts.metadata,
                etag,
                parts,
                checksum,
                upload_id: None,
                seal,
            },
        )
        .await
    }

    /// Checks a conditional write's condition against the key's current object. The caller
    /// holds the key lock, so of two conditional writes racing for one key exactly one sees
    /// the condition hold.
    pub(crate) async fn check_write_condition(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        condition: Option<&WriteCondition>,
    ) -> ObjectResult<()> {
        let Some(condition) = condition else {
            return Ok(());
        };
        let current = set
            .resolve_versions(bucket, key)
            .await?
            .into_iter()
            .next()
            .filter(|v| !v.record.delete_marker);
        match (condition, current) {
            (WriteCondition::IfNoneMatch, None) => Ok(()),
            (WriteCondition::IfNoneMatch, Some(_)) => Err(ObjectError::PreconditionFailed),
            (WriteCondition::IfMatch(_), None) => Err(ObjectError::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
                delete_marker_version: None,
            }),
            (WriteCondition::IfMatch(Some(etag)), Some(v)) if v.record.etag != *etag => {
                Err(ObjectError::PreconditionFailed)
            }
            (WriteCondition::IfMatch(_), Some(_)) => Ok(()),
        }
    }

    /// Commits a new version whose data is already durable, replacing the null version when
    /// the bucket does not keep versions. Rolls the data back when the commit misses quorum.
    /// The caller holds the key lock.
    pub(crate) async fn commit_version(
        &self,
        bucket: &str,
        key: &str,
        versioning: VersioningState,
        set: &ErasureSet,
        distribution: &[u32],
        version: NewVersion,
    ) -> ObjectResult<ObjectInfo> {
        let NewVersion {
            data,
            metadata,
            etag,
            parts,
            checksum,
            upload_id,
            seal,
        } = version;
        let version_id = match versioning {
            VersioningState::Enabled => Some(uuid::Uuid::new_v4()),
            VersioningState::Unversioned | VersioningState::Suspended => None,
        };
        let (existing, mod_time_ns) = self.prepare_new_version(bucket, key, set, version_id).await;
        let base = VersionRecord {
            version_id,
            mod_time_ns,
            delete_marker: false,
            size: data.size,
            etag: etag.clone(),
            metadata: metadata.clone(),
            n_data: set.erasure.layout().n_data() as u32,
            n_parity: set.erasure.layout().n_parity() as u32,
            shard_idx: 0,
            inline: data.inline.is_some(),
            parts: parts.clone(),
            meta_time_ns: 0,
            checksum: checksum.clone(),
            upload_id,
            seal: seal.map(|(geometry, _)| geometry),
            plain_size: seal.map(|(_, plain)| plain),
            tiered: None,
        };
        let new_key = record::version_key(bucket, key, mod_time_ns, version_id);
        let records: Vec<Option<(VersionRecord, Option<Bytes>)>> = (0..set.n_drives())
            .map(|drive_idx| {
                data.ok[drive_idx].then(|| {
                    let mut rec = base.clone();
                    rec.shard_idx = distribution[drive_idx];
                    let inline = data
                        .inline
                        .as_ref()
                        .map(|shards| shards[rec.shard_idx as usize].clone());
                    (rec, inline)
                })
            })
            .collect();
        let outcome = self
            .commit_records(bucket, key, set, &new_key, records, existing, CommitSpace::Normal)
            .await;
        if let Err(err) = outcome {
            if let Some(dir) = data.data_dir {
                set.delete_data_dirs(&[dir], &data.ok).await;
            }
            return Err(err);
        }
        // A new version of a key whose home pool is of another media class than its storage
        // class: the heal worker moves it there (`place_versions`).
        if self.has_media_classes()
            && self
                .media_class_of(metadata.storage_class.as_deref())
                .is_ok_and(|media| media != self.pool_media_class(self.pool_of(set)))
        {
            self.hint_heal(bucket, key);
        }
        Ok(ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: record::version_id_string(version_id),
            is_latest: true,
            delete_marker: false,
            size: seal.map_or(data.size, |(_, plain)| plain),
            stored_size: data.size,
            seal: seal.map(|(geometry, _)| geometry),
            etag,
            mod_time: record::from_unix_nanos(mod_time_ns),
            meta_stamp: 0,
            remote_tier: None,
            metadata,
            parts: parts.iter().map(|p| part_info(p, checksum.as_ref())).collect(),
            checksum,
        })
    }

    /// Writes `records[drive_idx]` under `new_key` on each drive that has one (a delete marker
    /// with [`CommitSpace::Deleting`], so a full drive still takes it); with
    /// `replace_nulls` (the key's records as scanned under the key lock), the null version
    /// found on each drive is removed in the same batch and its data is deleted after the
    /// commit reaches quorum. Must hold the key lock.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn commit_records(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        new_key: &[u8],
        records: Vec<Option<(VersionRecord, Option<Bytes>)>>,
        replace_nulls: Option<KeyScan>,
        space: CommitSpace,
    ) -> ObjectResult<()> {
        let existing = replace_nulls.unwrap_or_default();
        // Object lock: a protected null version is never replaced (checked here, under the
        // key's lock, whatever versioning state the caller read before taking it).
        let blocked = existing
            .iter()
            .flatten()
            .flatten()
            .filter(|e| is_null_version_key(&e.key))
            .filter_map(|e| record::decode::<VersionRecord>(&e.value).ok())
            .max_by_key(|rec| rec.meta_time_ns)
            .and_then(|rec| rec.metadata.deletion_blocked(false));
        if let Some(reason) = blocked {
            return Err(ObjectError::ObjectLocked { reason });
        }
        // The null versions replaced here whose data is in a remote tier: journaled first, so
        // an acknowledged overwrite never leaves their remote objects behind.
        let replaced: Vec<VersionRecord> = existing
            .iter()
            .flatten()
            .flatten()
            .filter(|e| is_null_version_key(&e.key))
            .filter_map(|e| record::decode::<VersionRecord>(&e.value).ok())
            .collect();
        self.journal_remote(&Self::deletions_of(bucket, key, &replaced))
            .await?;
        let results = join_all(records.into_iter().enumerate().map(|(drive_idx, rec)| {
            let drive = set.drives[drive_idx].clone();
            let old_nulls: Vec<MetaEntry> = match existing.get(drive_idx) {
                Some(Ok(entries)) => entries
                    .iter()
                    .filter(|e| is_null_version_key(&e.key))
                    .cloned()
                    .collect(),
                _ => Vec::new(),
            };
            async move {
                let Some((rec, inline)) = rec else {
                    return (false, Vec::new());
                };
                let mut ops = Vec::with_capacity(4);
                for old in &old_nulls {
                    ops.push(MetaOp::delete(Table::Objects, old.key.to_vec()));
                    ops.push(MetaOp::delete(Table::InlineData, old.key.to_vec()));
                }
                ops.push(MetaOp::put(
                    Table::Objects,
                    new_key.to_vec(),
                    record::encode(&rec),
                ));
                if let Some(inline) = inline {
                    ops.push(MetaOp::put(Table::InlineData, new_key.to_vec(), inline.to_vec()));
                }
                let result = match space {
                    CommitSpace::Normal => drive.meta_commit(ops).await,
                    CommitSpace::Deleting => drive.meta_commit_deleting(ops).await,
                };
                (result.is_ok(), old_nulls)
            }
        }))
        .await;
        let n_ok = results.iter().filter(|(ok, _)| *ok).count();
        if n_ok < set.write_quorum() {
            // Roll back: remove the new record and restore the replaced ones where it landed.
            join_all(results.iter().enumerate().filter(|(_, (ok, _))| *ok).map(|(drive_idx, (_, old_nulls))| {
                let drive = set.drives[drive_idx].clone();
                let mut ops = vec![
                    MetaOp::delete(Table::Objects, new_key.to_vec()),
                    MetaOp::delete(Table::InlineData, new_key.to_vec()),
                ];
                ops.extend(old_nulls.iter().map(|e| MetaOp::put(Table::Objects, e.key.to_vec(), e.value.to_vec())));
                async move {
                    if let Err(err) = drive.meta_commit(ops).await {
                        tracing::warn!(drive = drive.endpoint(), %err, "rolling back a version record failed");
                    }
                }
            }))
            .await;
            return Err(set.write_quorum_error(n_ok));
        }
        if n_ok < set.n_drives() {
            // Acknowledged with some drives missing: queue the key so they catch up.
            self.hint_heal(bucket, key);
        }
        // The replaced null versions' data is unreachable now.
        self.release_all_tiered(
            results
                .iter()
                .filter(|(ok, _)| *ok)
                .flat_map(|(_, old)| old.iter())
                .filter_map(|e| record::decode::<VersionRecord>(&e.value).ok()?.tiered),
        )
        .await;
        let replaced = results
            .iter()
            .map(|(ok, old)| if *ok { data_dirs_of(old) } else { Vec::new() });
        for (drive_idx, dirs) in replaced.enumerate() {
            for dir in dirs {
                if let Err(err) = set.drives[drive_idx].data_dir_delete(dir).await {
                    tracing::warn!(drive = set.drives[drive_idx].endpoint(), %dir, %err, "removing replaced data failed");
                }
            }
        }
        Ok(())
    }

    /// Finds the version a read asks for.
    pub(crate) async fn resolve_for_read(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> ObjectResult<(Resolved, bool, &ErasureSet)> {
        self.bucket_record(bucket).await?;
        check_object_key(key)?;
        let wanted = version_id.map(record::parse_version_id).transpose()?;
        let set = self.set_for_read(bucket, key).await?;
        let versions = set.resolve_versions(bucket, key).await?;
        match wanted {
            None => {
                let Some(latest) = versions.into_iter().next() else {
                    return Err(ObjectError::NoSuchKey {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        delete_marker_version: None,
                    });
                };
                if latest.record.delete_marker {
                    return Err(ObjectError::NoSuchKey {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        delete_marker_version: Some(
                            record::version_id_string(latest.record.version_id)
                                .unwrap_or_else(|| "null".into()),
                        ),
                    });
                }
                Ok((latest, true, set))
            }
            Some(wanted) => {
                let mut iter = versions.into_iter().enumerate();
                let Some((idx, found)) = iter.find(|(_, v)| v.record.version_id == wanted) else {
                    return Err(ObjectError::NoSuchVersion {
                        key: key.to_string(),
                        version_id: version_id.unwrap_or_default().to_string(),
                    });
                };
                if found.record.delete_marker {
                    return Err(ObjectError::VersionIsDeleteMarker {
                        key: key.to_string(),
                        version_id: version_id.unwrap_or_default().to_string(),
                    });
                }
                Ok((found, idx == 0, set))
            }
        }
    }

    /// Opens an object (or a range or part of it) for reading.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        opts: GetOptions,
    ) -> ObjectResult<GetObjectReader> {
        self.get_object_admitted(bucket, key, opts, Admission::Gate).await
    }

    /// [`Self::get_object`], taking its memory from the gate unless the caller already did.
    pub(crate) async fn get_object_admitted(
        &self,
        bucket: &str,
        key: &str,
        opts: GetOptions,
        admission: Admission,
    ) -> ObjectResult<GetObjectReader> {
        let (resolved, is_latest, set) = self
            .resolve_for_read(bucket, key, opts.version_id.as_deref())
            .await?;
        let info = object_info(bucket, key, &resolved.record, is_latest);
        let size = resolved.record.size;
        let (offset, length) = self.read_span(&resolved.record, &opts)?;
        // The stored bytes holding that content: the same, or the packages of a sealed version.
        let (stored_offset, stored_length) = match resolved.record.seal {
            Some(geometry) if length > 0 => {
                let parts: Vec<(u64, u64)> = resolved
                    .record
                    .parts
                    .iter()
                    .map(|p| (p.content_size(), p.size))
                    .collect();
                let span = geometry
                    .span(&parts, offset, length)
                    .ok_or_else(|| ObjectError::Corrupt {
                        what: "a sealed version's parts do not cover its size".into(),
                    })?;
                (span.stored_offset, span.stored_length)
            }
            _ => (offset, length),
        };
        if resolved.holders.len() < set.n_drives() {
            self.hint_heal(bucket, key);
        }
        if length == 0 {
            return Ok(GetObjectReader {
                info,
                offset,
                length,
                body: ObjectStream::ready(Bytes::new()),
            });
        }
        if let Some(tiered) = &resolved.record.tiered {
            let body = self
                .read_tiered(
                    tiered,
                    resolved.record.metadata.restore.as_ref(),
                    resolved.record.size,
                    stored_offset,
                    stored_length,
                    admission,
                )
                .await?;
            return Ok(GetObjectReader {
                info,
                offset,
                length,
                body,
            });
        }
        if resolved.record.inline {
            let framed = set.read_inline(&resolved).await;
            let decoded =
                set.erasure
                    .decode_block_framed(&framed, size as usize)
                    .map_err(|err| match err {
                        strata_erasure::ErasureError::TooFewShards { needed, got } => {
                            ObjectError::ReadQuorum { needed, got }
                        }
                        other => other.into(),
                    })?;
            if !decoded.corrupt_shards.is_empty() {
                tracing::warn!(bucket, key, corrupt = ?decoded.corrupt_shards, "inline data damaged; reconstructed");
                self.hint_heal(bucket, key);
            } else if framed.iter().any(Option::is_none) {
                // A drive that did not answer: its own state change is logged by its slot, once.
                tracing::debug!(bucket, key, "inline data missing on a drive; reconstructed");
                self.hint_heal(bucket, key);
            }
            let stored_end = stored_offset.saturating_add(stored_length);
            if stored_end > decoded.data.len() as u64 {
                return Err(ObjectError::Corrupt {
                    what: "inline data shorter than its record says".into(),
                });
            }
            let body = decoded.data.slice(stored_offset as usize..stored_end as usize);
            return Ok(GetObjectReader {
                info,
                offset,
                length,
                body: ObjectStream::ready(body),
            });
        }
        let mut sources: Vec<Option<Arc<dyn Drive>>> = vec![None; set.n_drives()];
        for &(drive_idx, shard_idx) in &resolved.holders {
            sources[shard_idx as usize] = Some(set.drives[drive_idx].clone());
        }
        let memory = match admission {
            Admission::Gate => Some(self.memory.acquire(set.get_memory_bytes(stored_length)).await?),
            Admission::Admitted => None,
        };
        let plan = ReadPlan {
            memory,
            erasure: set.erasure.clone(),
            sources,
            parts: resolved.record.parts.clone(),
            offset: stored_offset,
            length: stored_length,
            heal: Some(HealSender {
                tx: self.background.heal_sender(),
                bucket: bucket.to_string(),
                key: key.to_string(),
            }),
        };
        Ok(GetObjectReader {
            info,
            offset,
            length,
            body: ObjectStream::planned(plan),
        })
    }

    /// The content span a read serves: the range, or the part, or everything.
    fn read_span(&self, rec: &VersionRecord, opts: &GetOptions) -> ObjectResult<(u64, u64)> {
        let size = rec.content_size();
        if let Some(part_number) = opts.part_number {
            let n_parts = rec.parts.len().max(1) as u32;
            if part_number == 0 || part_number > n_parts {
                return Err(ObjectError::InvalidPartNumber { part_number, n_parts });
            }
            let idx = (part_number - 1) as usize;
            let offset: u64 = rec.parts.iter().take(idx).map(|p| p.content_size()).sum();
            let length = rec.parts.get(idx).map(|p| p.content_size()).unwrap_or(0);
            return Ok((offset, length));
        }
        match opts.range {
            None => Ok((0, size)),
            Some(range) => range.resolve(size).ok_or(ObjectError::InvalidRange { size }),
        }
    }

    /// An object's metadata without its data.
    pub async fn head_object(&self, bucket: &str, key: &str, opts: GetOptions) -> ObjectResult<ObjectInfo> {
        let (resolved, is_latest, _) = self
            .resolve_for_read(bucket, key, opts.version_id.as_deref())
            .await?;
        if let Some(part_number) = opts.part_number {
            let n_parts = resolved.record.parts.len().max(1) as u32;
            if part_number == 0 || part_number > n_parts {
                return Err(ObjectError::InvalidPartNumber { part_number, n_parts });
            }
        }
        Ok(object_info(bucket, key, &resolved.record, is_latest))
    }

    /// Deletes the latest version (a delete marker where versions are kept) or one version.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        opts: DeleteOptions,
    ) -> ObjectResult<DeleteResult> {
        let bucket_rec = self.bucket_record(bucket).await?;
        check_object_key(key)?;
        let set = self.set_for_read(bucket, key).await?;
        let condition = opts.condition.as_ref();
        if let Some(version_id) = opts.version_id.as_deref() {
            let wanted = record::parse_version_id(version_id)?;
            let result = self.delete_version(bucket, key, set, wanted, &opts).await?;
            return Ok(DeleteResult {
                version_id: Some(version_id.to_string()),
                ..result
            });
        }
        match bucket_rec.versioning {
            VersioningState::Unversioned => {
                let opts = DeleteOptions {
                    bypass_governance: false,
                    ..opts
                };
                self.delete_version(bucket, key, set, None, &opts).await
            }
            VersioningState::Enabled | VersioningState::Suspended => {
                let version_id = (bucket_rec.versioning == VersioningState::Enabled).then(uuid::Uuid::new_v4);
                let _guard = self.lock_key(bucket, key).await?;
                self.check_write_condition(bucket, key, set, condition).await?;
                if let Some(expect) = &opts.expect {
                    let versions = set.resolve_versions(bucket, key).await?;
                    let current = versions.first().map(|v| v.record.version_id);
                    check_expectation(&versions, current, expect)?;
                }
                let (existing, mod_time_ns) = self.prepare_new_version(bucket, key, set, version_id).await;
                let distribution = set.distribution(key);
                let marker = VersionRecord {
                    version_id,
                    mod_time_ns,
                    delete_marker: true,
                    size: 0,
                    etag: String::new(),
                    metadata: ObjectMetadata::default(),
                    n_data: set.erasure.layout().n_data() as u32,
                    n_parity: set.erasure.layout().n_parity() as u32,
                    shard_idx: 0,
                    inline: false,
                    parts: Vec::new(),
                    meta_time_ns: 0,
                    checksum: None,
                    upload_id: None,
                    seal: None,
                    plain_size: None,
                    tiered: None,
                };
                let new_key = record::version_key(bucket, key, mod_time_ns, version_id);
                let records = (0..set.n_drives())
                    .map(|drive_idx| {
                        let mut rec = marker.clone();
                        rec.shard_idx = distribution[drive_idx];
                        Some((rec, None))
                    })
                    .collect();
                self.commit_records(
                    bucket,
                    key,
                    set,
                    &new_key,
                    records,
                    existing,
                    CommitSpace::Deleting,
                )
                .await?;
                Ok(DeleteResult {
                    version_id: Some(record::version_id_string(version_id).unwrap_or_else(|| "null".into())),
                    delete_marker: true,
                })
            }
        }
    }

    /// Removes one version permanently (absent is success, as in S3), unless object lock
    /// protects it (checked under the key's lock on the newest copy of its metadata).
    async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        set: &ErasureSet,
        wanted: Option<uuid::Uuid>,
        opts: &DeleteOptions,
    ) -> ObjectResult<DeleteResult> {
        let _guard = self.lock_key(bucket, key).await?;
        self.check_write_condition(bucket, key, set, opts.condition.as_ref())
            .await?;
        if let Some(expect) = &opts.expect {
            let versions = set.resolve_versions(bucket, key).await?;
            check_expectation(&versions, Some(wanted), expect)?;
        }
        let per_drive = set.scan_versions(bucket, key).await;
        let n_answered = per_drive.iter().filter(|r| r.is_ok()).count();
        if n_answered < set.write_quorum() {
            return Err(ObjectError::WriteQuorum {
                needed: set.write_quorum(),
                got: n_answered,
            });
        }
        let newest = per_drive
            .iter()
            .flatten()
            .flatten()
            .filter(|e| record::version_of_key(&e.key) == Some(wanted))
            .filter_map(|e| record::decode::<VersionRecord>(&e.value).ok())
            .max_by_key(|rec| rec.meta_time_ns);
        if let Some(reason) = newest
            .as_ref()
            .and_then(|rec| rec.metadata.deletion_blocked(opts.bypass_governance))
        {
            return Err(ObjectError::ObjectLocked { reason });
        }
        // A remote tier object of the version is journaled before its records go.
        self.journal_remote(&Self::deletions_of(bucket, key, newest.as_ref()))
            .await?;
        let mut was_marker = false;
        let results = join_all(per_drive.into_iter().enumerate().map(|(drive_idx, entries)| {
            let drive = set.drives[drive_idx].clone();
            let doomed: Vec<(MetaEntry, Option<VersionRecord>)> = entries
                .unwrap_or_default()
                .into_iter()
                .filter(|e| record::version_of_key(&e.key) == Some(wanted))
                .map(|e| {
                    let rec = record::decode::<VersionRecord>(&e.value).ok();
                    (e, rec)
                })
                .collect();
            async move {
                if doomed.is_empty() {
                    return (true, false, Vec::new());
                }
                let mut ops = Vec::new();
                let mut dirs = Vec::new();
                let mut tiered = Vec::new();
                let mut marker = false;
                for (entry, rec) in &doomed {
                    ops.push(MetaOp::delete(Table::Objects, entry.key.to_vec()));
                    ops.push(MetaOp::delete(Table::InlineData, entry.key.to_vec()));
                    if let Some(rec) = rec {
                        marker |= rec.delete_marker;
                        dirs.extend(rec.parts.iter().filter_map(PartRecordRef::data_dir));
                        tiered.extend(rec.tiered.clone());
                    }
                }
                let ok = drive.meta_commit_deleting(ops).await.is_ok();
                if ok {
                    for dir in &dirs {
                        let _ = drive.data_dir_delete(*dir).await;
                    }
                }
                (ok, marker, tiered)
            }
        }))
        .await;
        let n_ok = results.iter().filter(|(ok, _, _)| *ok).count();
        was_marker |= results.iter().any(|(_, marker, _)| *marker);
        if n_ok < set.write_quorum() {
            return Err(set.write_quorum_error(n_ok));
        }
        self.release_all_tiered(results.into_iter().filter(|r| r.0).flat_map(|r| r.2))
            .await;
        Ok(DeleteResult {
            version_id: record::version_id_string(wanted),
            delete_marker: was_marker,
        })
    }

    /// Server-side copy: the data streams from the source's drives into new shards without
    /// leaving the server. The copy's metadata is what `metadata` makes of the source version
    /// (the front door applies the metadata and tagging directives and the new ACL).
    ///
    /// The copy's checksum is a full-object one with `opts.checksum` (the algorithm asked
    /// for), else the source's algorithm, else CRC64NVME. When the source has a full-object
    /// checksum of that algorithm, the copied bytes are checked against it, so a copy never
    /// carries damage silently. `opts.condition` is checked on the destination key as a
    /// conditional PUT's is.
    pub async fn copy_object(
        &self,
        (src_bucket, src_key, src_opts): (&str, &str, GetOptions),
        (dst_bucket, dst_key): (&str, &str),
        opts: CopyOptions,
        metadata: impl FnOnce(&ObjectInfo) -> ObjectMetadata + Send,
    ) -> ObjectResult<ObjectInfo> {
        let CopyOptions {
            checksum,
            condition,
            open_source,
            sealer,
        } = opts;
        self.bucket_record(dst_bucket).await?;
        check_object_key(dst_key)?;
        let _memory = self.memory.acquire(self.copy_memory_bytes()).await?;
        let reader = self
            .get_object_admitted(
                src_bucket,
                src_key,
                GetOptions {
                    range: None,
                    part_number: None,
                    ..src_opts
                },
                Admission::Admitted,
            )
            .await?;
        let metadata = metadata(&reader.info);
        let size = reader.info.size;
        let source = reader.info.checksum.as_ref();
        let algorithm = checksum
            .or(source.map(|c| c.algorithm))
            .unwrap_or(ChecksumAlgorithm::Crc64Nvme);
        let expected = match source {
            Some(c) if c.algorithm == algorithm && c.kind == ChecksumType::FullObject => {
                ExpectedChecksum::Value(c.value.clone())
            }
            _ => ExpectedChecksum::None,
        };
        let body = source_content(reader, open_source)?;
        self.put_object_admitted(
            dst_bucket,
            dst_key,
            body,
            PutOptions {
                size: Some(size),
                metadata,
                content_md5: None,
                content_sha256: None,
                condition,
                checksum: Some(ChecksumSpec {
                    algorithm,
                    kind: None,
                    expected,
                }),
                sealer,
            },
            Admission::Admitted,
        )
        .await
        .map_err(|err| match err {
            // The source's bytes are not what its checksum says: damage, not a client error.
            ObjectError::ChecksumMismatch { algorithm } => ObjectError::Corrupt {
                what: format!("the copy source's data does not match its {algorithm} checksum"),
            },
            other => other,
        })
    }
}

/// A copy source's content: its stored bytes through the caller's opener when it gave one
/// (which a sealed source needs), else the stored bytes as they are.
pub(crate) fn source_content(
    reader: GetObjectReader,
    open_source: Option<SourceOpener>,
) -> ObjectResult<PutStream> {
    match open_source {
        Some(open) => open(reader),
        None if reader.info.seal.is_some() => Err(ObjectError::InvalidRequestMessage {
            message: "The copy source is encrypted and cannot be read without its key".into(),
        }),
        None => Ok(Box::pin(futures::StreamExt::map(reader.body, |r| {
            r.map_err(|e| Box::new(e) as BoxError)
        }))),
    }
}

/// Permission to run a deployment-wide job (see [`ObjectLayer::lead_job`]); dropping it lets
/// another node take the job.
#[derive(Debug)]
pub struct JobLease {
    _lock: Option<Box<dyn HeldLock>>,
}

/// A new version to commit: its data (durable already) and what its record says.
pub(crate) struct NewVersion {
    pub data: WrittenData,
    pub metadata: ObjectMetadata,
    pub etag: String,
    pub parts: Vec<PartRecordRef>,
    /// None only for a multipart object with parts uploaded before checksums existed.
    pub checksum: Option<ObjectChecksum>,
    /// The multipart upload it completes.
    pub upload_id: Option<String>,
    /// How its data was sealed and its content size, when it was.
    pub seal: Option<(SealGeometry, u64)>,
}

/// Whether a PUT or GET takes its memory from the gate, or its caller took it already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Gate,
    Admitted,
}

/// Erasure set size for `n_drives` drives: all of them up to 16, else the largest divisor
/// that is at most 16 (and at least 2).
/// How long opening waits for a remote drive before starting it offline (the monitor keeps
/// trying).
const REMOTE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens one drive position: a local directory is opened (formatted into the position when
/// empty; marked healing when it is new in an existing deployment), a remote drive connected
/// and its position and healing state checked. Unreachable or failing drives start offline; a
/// drive that belongs elsewhere stops the start.
async fn open_slot(spec: DriveSpec, expected: FormatRecord) -> ObjectResult<DriveSlot> {
    let endpoint = spec.endpoint;
    let offline = |location: DriveLocation| {
        let placeholder = Arc::new(OfflineDrive::new(endpoint.clone(), expected.clone()));
        DriveSlot::new(endpoint.clone(), location, expected.clone(), placeholder, false)
    };
    match &spec.location {
        DriveLocation::Local {
            path,
            new_in_existing,
        } => match LocalDrive::open(path.clone(), &expected).await {
            Ok(drive) => {
                let slot = DriveSlot::new(
                    endpoint.clone(),
                    spec.location.clone(),
                    expected.clone(),
                    drive,
                    true,
                );
                if *new_in_existing {
                    tracing::warn!(drive = %path.display(), "new drive in an existing deployment; it will be healed");
                    slot.mark_healing(true).await;
                } else if slot.healing_mark().await.unwrap_or(false) {
                    tracing::warn!(drive = %path.display(), "drive was being healed before the restart");
                    slot.set_healing(true);
                }
                Ok(slot)
            }
            Err(err @ (DriveError::FormatMismatch { .. } | DriveError::Unformatted { .. })) => {
                Err(err.into())
            }
            Err(err) => {
                tracing::warn!(drive = %path.display(), %err, "drive cannot be opened; starting it offline");
                Ok(offline(spec.location.clone()))
            }
        },
        DriveLocation::Remote(connector) => {
            match tokio::time::timeout(REMOTE_CONNECT_TIMEOUT, connector.connect()).await {
                Ok(Ok(drive)) if drive.format().same_position(&expected) => {
                    let healing = drive.healing_mark().await;
                    let slot = DriveSlot::new(
                        endpoint.clone(),
                        spec.location.clone(),
                        expected.clone(),
                        drive,
                        true,
                    );
                    slot.set_healing(healing.unwrap_or(false));
                    Ok(slot)
                }
                Ok(Ok(drive)) => Err(ObjectError::InvalidTopology {
                    reason: format!(
                        "remote drive {endpoint} holds {}, expected {}",
                        drive.format().describe(),
                        expected.describe()
                    ),
                }),
                Ok(Err(err)) => {
                    tracing::info!(drive = %endpoint, %err, "remote drive not reachable yet; starting it offline");
                    Ok(offline(spec.location.clone()))
                }
                Err(_) => {
                    tracing::info!(drive = %endpoint, "remote drive did not answer in time; starting it offline");
                    Ok(offline(spec.location.clone()))
                }
            }
        }
    }
}

fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn set_size_for(n_drives: usize) -> ObjectResult<usize> {
    if n_drives < strata_erasure::SET_DRIVES_MIN {
        return Err(ObjectError::InvalidTopology {
            reason: format!("{n_drives} drives given; at least 2 are needed"),
        });
    }
    if n_drives <= strata_erasure::SET_DRIVES_MAX {
        return Ok(n_drives);
    }
    (strata_erasure::SET_DRIVES_MIN..=strata_erasure::SET_DRIVES_MAX)
        .rev()
        .find(|size| n_drives.is_multiple_of(*size))
        .ok_or_else(|| ObjectError::InvalidTopology {
            reason: format!("{n_drives} drives cannot be split into equal erasure sets of 2 to 16 drives"),
        })
}

fn bucket_info(rec: &BucketRecord) -> BucketInfo {
    BucketInfo {
        name: rec.name.clone(),
        created: record::from_unix_nanos(rec.created_ns),
        location: rec.location.clone(),
        versioning: rec.versioning,
        owner: rec.owner.clone(),
        object_lock: rec.object_lock,
    }
}

/// A part's info; the part's checksum only where it means something to clients (the parts
/// of a composite checksum).
pub(crate) fn part_info(part: &PartRecordRef, checksum: Option<&ObjectChecksum>) -> ObjectPartInfo {
    ObjectPartInfo {
        number: part.number,
        size: part.content_size(),
        stored_size: part.size,
        seal_header: part.seal_header.clone(),
        etag: part.etag.clone(),
        checksum: part
            .checksum
            .clone()
            .filter(|_| checksum.is_some_and(|c| c.kind == ChecksumType::Composite)),
    }
}

pub(crate) fn object_info(bucket: &str, key: &str, rec: &VersionRecord, is_latest: bool) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: record::version_id_string(rec.version_id),
        is_latest,
        delete_marker: rec.delete_marker,
        size: rec.content_size(),
        stored_size: rec.size,
        seal: rec.seal,
        etag: rec.etag.clone(),
        mod_time: record::from_unix_nanos(rec.mod_time_ns),
        meta_stamp: rec.meta_time_ns,
        remote_tier: rec.tiered.as_ref().and_then(|t| t.remote.clone()),
        metadata: rec.metadata.clone(),
        parts: rec
            .parts
            .iter()
            .map(|p| part_info(p, rec.checksum.as_ref()))
            .collect(),
        checksum: rec.checksum.clone(),
    }
}

fn is_null_version_key(key: &[u8]) -> bool {
    record::version_of_key(key) == Some(None)
}

/// Checks a conditional delete's expectation against the versions read quorum agrees on
/// (newest first): the version `wanted` (`Some(None)` is the null version; `None`, a key
/// without versions) must exist and be as expected.
fn check_expectation(
    versions: &[Resolved],
    wanted: Option<Option<uuid::Uuid>>,
    expect: &crate::api::DeleteExpectation,
) -> ObjectResult<()> {
    use crate::api::VersionPosition;
    let found = wanted.and_then(|wanted| versions.iter().position(|v| v.record.version_id == wanted));
    let Some(idx) = found else {
        return Err(ObjectError::PreconditionFailed);
    };
    let rec = &versions[idx].record;
    let same =
        record::from_unix_nanos(rec.mod_time_ns) == expect.mod_time && rec.meta_time_ns == expect.meta_stamp;
    let placed = match expect.position {
        VersionPosition::Current => idx == 0 && !rec.delete_marker,
        VersionPosition::Only => versions.len() == 1,
        VersionPosition::Noncurrent { successor, newer } => {
            idx >= newer.max(1) && record::from_unix_nanos(versions[idx - 1].record.mod_time_ns) == successor
        }
    };
    if same && placed {
        Ok(())
    } else {
        Err(ObjectError::PreconditionFailed)
    }
}

fn data_dirs_of(entries: &[MetaEntry]) -> Vec<DataDirId> {
    entries
        .iter()
        .filter_map(|e| record::decode::<VersionRecord>(&e.value).ok())
        .flat_map(|rec| rec.parts.into_iter().filter_map(|p| p.data_dir()))
        .collect()
}

/// Whether a metadata commit adds data or deletes (see `Drive::meta_commit_deleting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitSpace {
    /// New data or records: refused on a full drive.
    Normal,
    /// A deletion (a delete marker included): may use the drive's space reserve.
    Deleting,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heal::HealOptions;

    #[test]
    fn set_sizes() {
        assert_eq!(set_size_for(4).unwrap(), 4);
        assert_eq!(set_size_for(16).unwrap(), 16);
        assert_eq!(set_size_for(32).unwrap(), 16);
        assert_eq!(set_size_for(24).unwrap(), 12);
        assert!(set_size_for(1).is_err());
        assert!(set_size_for(17).is_err());
    }

    /// Cluster services of a one-node "cluster": locks are granted at once (the local stripe
    /// already excludes), notices go nowhere.
    #[derive(Debug)]
    struct SoloCluster;

    #[derive(Debug)]
    struct NoLock;

    impl HeldLock for NoLock {}

    #[async_trait::async_trait]
    impl ClusterHooks for SoloCluster {
        async fn lock(&self, _resource: &str) -> ObjectResult<Box<dyn HeldLock>> {
            Ok(Box::new(NoLock))
        }
        async fn bucket_changed(&self, _bucket: &str) {}
        async fn system_changed(&self, _namespace: &str) {}
        async fn pools_changed(&self) {}
        async fn may_lead(&self, _job: &str) -> Option<Box<dyn HeldLock>> {
            Some(Box::new(NoLock))
        }
    }

    fn body(data: &'static [u8]) -> PutStream {
        Box::pin(futures::stream::once(async move {
            Ok::<Bytes, BoxError>(Bytes::from_static(data))
        }))
    }

    /// Another node with a clock an hour ahead wrote the key's newest version: a later write
    /// through this node still becomes the newest (its time is taken after the stored one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn later_writes_win_over_a_version_from_a_clock_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let drives: Vec<DriveSpec> = (0..4)
            .map(|i| {
                let path = dir.path().join(format!("d{i}"));
                DriveSpec {
                    endpoint: path.display().to_string(),
                    location: DriveLocation::Local {
                        path,
                        new_in_existing: false,
                    },
                }
            })
            .collect();
        let spec = DeploymentSpec {
            deployment_id: uuid::Uuid::new_v4(),
            pools: vec![PoolSpec {
                sets: vec![drives],
                added: false,
            }],
        };
        let layer = ObjectLayer::open_deployment(spec, Some(Arc::new(SoloCluster)))
            .await
            .unwrap();
        layer
            .make_bucket("skew", MakeBucketOptions::default())
            .await
            .unwrap();
        layer
            .set_bucket_versioning("skew", VersioningState::Enabled)
            .await
            .unwrap();
        // The other node's version, stamped an hour ahead of this node's clock.
        let ahead_ns = record::to_unix_nanos(SystemTime::now()) + 3_600_000_000_000;
        let set = layer.set_in_pool(&layer.pools[0], "k");
        let version_id = Some(uuid::Uuid::new_v4());
        let rec = VersionRecord {
            version_id,
            mod_time_ns: ahead_ns,
            delete_marker: false,
            size: 0,
            etag: "d41d8cd98f00b204e9800998ecf8427e".to_string(),
            metadata: ObjectMetadata::default(),
            n_data: set.erasure.layout().n_data() as u32,
            n_parity: set.erasure.layout().n_parity() as u32,
            shard_idx: 0,
            inline: false,
            parts: Vec::new(),
            meta_time_ns: 0,
            checksum: None,
            upload_id: None,
            seal: None,
            plain_size: None,
            tiered: None,
        };
        let records = (0..set.n_drives()).map(|_| Some((rec.clone(), None))).collect();
        let key = record::version_key("skew", "k", ahead_ns, version_id);
        layer
            .commit_records("skew", "k", set, &key, records, None, CommitSpace::Normal)
            .await
            .unwrap();

        let written = layer
            .put_object("skew", "k", body(b"later"), PutOptions::default())
            .await
            .unwrap();
        let head = layer
            .head_object("skew", "k", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(head.version_id, written.version_id);
        assert_eq!(head.size, 5);
        assert!(record::to_unix_nanos(head.mod_time) > ahead_ns);
    }

    /// A heal that cannot write to a drive (read-only here) reports the key failed and heals
    /// nothing on it; once the drive takes writes, the same heal succeeds (issue 16, item 6).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_heal_never_reports_a_write_it_could_not_make() {
        let dir = tempfile::tempdir().unwrap();
        let drives: Vec<PathBuf> = (0..4).map(|i| dir.path().join(format!("d{i}"))).collect();
        let layer = ObjectLayer::open_local(&drives).await.unwrap();
        layer
            .make_bucket("heal", MakeBucketOptions::default())
            .await
            .unwrap();
        let big: &'static [u8] = Box::leak(vec![7u8; 3 * 1024 * 1024].into_boxed_slice());
        for (key, data) in [("small", &b"a small object"[..]), ("big", big)] {
            let data: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
            layer
                .put_object("heal", key, body(data), PutOptions::default())
                .await
                .unwrap();
        }
        // Drive 0 misses both keys' records (as if it missed the writes).
        let slot = Arc::clone(&layer.sets[0].slots[0]);
        for key in ["small", "big"] {
            let prefix = record::object_prefix("heal", key);
            let entries = set::scan_all(slot.as_ref(), Table::Objects, &prefix)
                .await
                .unwrap();
            assert_eq!(entries.len(), 1);
            let ops = entries
                .iter()
                .map(|e| MetaOp::delete(Table::Objects, e.key.to_vec()))
                .collect();
            slot.meta_commit(ops).await.unwrap();
        }
        let opts = HealOptions {
            dry_run: false,
            deep: false,
        };
        slot.set_read_only(true);
        for key in ["small", "big"] {
            let counters = layer.heal_object("heal", key, opts).await.unwrap();
            assert_eq!(counters.objects_failed, 1, "{key}: {counters:?}");
            assert_eq!(counters.objects_healed, 0, "{key}: {counters:?}");
            assert_eq!(counters.records_healed, 0, "{key}: {counters:?}");
        }
        slot.set_read_only(false);
        for key in ["small", "big"] {
            let counters = layer.heal_object("heal", key, opts).await.unwrap();
            assert_eq!(counters.objects_failed, 0, "{key}: {counters:?}");
            assert_eq!(counters.objects_healed, 1, "{key}: {counters:?}");
            let prefix = record::object_prefix("heal", key);
            let entries = set::scan_all(slot.as_ref(), Table::Objects, &prefix)
                .await
                .unwrap();
            assert_eq!(entries.len(), 1, "{key}: the record is back on drive 0");
        }
    }
}
