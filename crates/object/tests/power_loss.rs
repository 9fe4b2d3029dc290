//! Power loss under the object layer, over simulated drives (issue 16, item 8).
//!
//! Four `SimDrive`s (one 2+2 set) keep their state in memory, split the way a disk splits it
//! at a power cut. *Durable*: the metadata tables (a `meta_commit` batch lands atomically when
//! it returns `Ok`) and committed shard files (durable when `ShardWrite::commit` returns
//! `Ok`). *Volatile*: shard files being written, the trash, and deletions of data directories
//! and shard files not yet followed by a sync (as on `LocalDrive`, a delete is a rename nobody
//! fsyncs; the next shard commit's `syncfs` makes it durable). One shared `Power` counts every
//! drive call; at the call chosen for the run the power goes: that call and every later one
//! fails with `Offline`, and a change in flight at that instant (started, not yet returned)
//! reached the disk or not by a coin per call, but is never reported `Ok`. Unsynced deletes
//! survive by a coin each too.
//!
//! A workload runs concurrently (make bucket; inline and multi-block PUTs, overwrites and
//! DELETEs of the same keys; a multipart upload), recording what was acknowledged. Then the
//! deployment "reboots" on what survived (new drives, new `ObjectLayer`) and every key is
//! checked against a model: the state after the last acknowledged change, or after the one
//! change in flight at the cut (each key belongs to one task, so there is at most one). No
//! acknowledged write lost, no acknowledged DELETE undone, no torn object (bytes that no single
//! PUT sent), and the listing agrees with the GETs. Then every key is healed, orphans are
//! swept, and everything is checked again: the same bytes, and still readable with any two
//! drives of the set down (redundancy really restored).
//!
//! **What this proves:** the object layer's write protocol (shards durable on write quorum
//! before records; records committed per drive atomically; acknowledgement only after write
//! quorum of durable commits; rollback, heal and orphan sweep after a crash) loses nothing
//! acknowledged and shows nothing torn, over drives whose durability semantics are clean, at
//! several hundred crash points.
//!
//! **What it does not prove:** that `LocalDrive` has those clean semantics on a real
//! filesystem (the shard-file fsync/rename/`syncfs` discipline is not exercised here; see
//! `crates/drive/tests/meta_crash.rs` for the metadata store's commit discipline). Drives fail
//! together at one instant; one drive failing alone, bit rot and torn *metadata* values are
//! other tests' business. Bucket versioning is off (overwrites replace the null version).
//!
//! Replay: a failure prints `STRATA_POWER_LOSS_REPLAY=<seed>:<cut>:<trace>`; with it set,
//! only that case is run. Every random choice (workload, crash point, coins) comes from the
//! seed, and the single-threaded runtime orders the tasks, but the MD5 thread's timing can
//! still reorder drive calls between runs; `trace` hashes the order of drive calls up to the
//! cut, and a replay reruns the case until that order recurs (or it fails), so what it shows
//! is the failing run exactly. `STRATA_POWER_LOSS_SEED` and `STRATA_POWER_LOSS_RUNS` change
//! the master seed and the number of crash points.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use strata_drive::{
    DataDirEntry, DataDirId, Drive, DriveError, DriveInfo, DriveResult, FormatRecord, MetaEntry, MetaOp,
    ScanRange, ShardWrite, Table,
};
use strata_object::*;

const BUCKET: &str = "bkt";
const N_DRIVES: usize = 4;
const RUNS_DEFAULT: u64 = 200;
/// A replay runs its case at most this often, waiting for the failing run's interleaving.
const REPLAY_ATTEMPTS_MAX: u32 = 200;
const SEED_DEFAULT: u64 = 0x5eed_0f10_55ed;
/// Tasks changing plain keys (each owns its keys), besides the multipart task.
const N_PLAIN_TASKS: usize = 3;
const KEYS_PER_TASK: u64 = 2;
const OPS_PER_TASK: usize = 5;
const SMALL_BYTES_MAX: u64 = 4000;
/// Over two 1 MiB blocks: a multi-block object in shard files.
const LARGE_BYTES: usize = 2_621_440;
const PART1_BYTES: usize = 5 << 20;
const PART2_BYTES: usize = 300_000;
/// Bounds the wait for the workload to notice the power cut.
const WORKLOAD_TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------- randomness

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64: small, seeded, good enough for test choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ------------------------------------------------------------------------- the power

/// The power supply every drive of the deployment shares: counts drive calls and cuts at one.
#[derive(Debug)]
struct Power {
    seed: u64,
    cut_at_call: u64,
    n_calls: AtomicU64,
    cut: AtomicBool,
    /// A hash of which call went to which drive, in order, up to the cut: two runs of one
    /// seed with the same trace interleaved their drive calls identically.
    trace: Mutex<u64>,
}

const SALT_IN_FLIGHT: u64 = 0x1f11;
const SALT_UNSYNCED_DELETE: u64 = 0xde1e;

impl Power {
    fn new(seed: u64, cut_at_call: u64) -> Arc<Power> {
        Arc::new(Power {
            seed,
            cut_at_call,
            n_calls: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            trace: Mutex::new(0),
        })
    }

    /// Starts a drive call: its number, or `Offline` once the power is gone (this call may be
    /// the one that cuts it).
    fn begin(&self, endpoint: &str, call: &str) -> DriveResult<u64> {
        let idx = self.n_calls.fetch_add(1, Ordering::SeqCst);
        if idx >= self.cut_at_call {
            self.cut.store(true, Ordering::SeqCst);
        } else {
            let mut trace = self.trace.lock().unwrap();
            for byte in endpoint.bytes().chain(call.bytes()) {
                *trace = mix(*trace ^ u64::from(byte));
            }
        }
        if self.is_cut() {
            return Err(offline(endpoint));
        }
        Ok(idx)
    }

    fn trace(&self) -> u64 {
        *self.trace.lock().unwrap()
    }

    fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// A coin per (call, question), from the seed.
    fn coin(&self, idx: u64, salt: u64) -> bool {
        mix(self.seed ^ mix(idx ^ mix(salt))) & 1 == 1
    }
}

fn offline(endpoint: &str) -> DriveError {
    DriveError::Offline {
        endpoint: endpoint.to_string(),
    }
}

// ------------------------------------------------------------------------- the disk

type FileName = (DataDirId, u32);

/// What one drive holds.
#[derive(Clone, Debug, Default)]
struct Disk {
    // Durable.
    tables: [BTreeMap<Vec<u8>, Bytes>; 6],
    files: BTreeMap<FileName, Bytes>,
    dirs_modified: BTreeMap<DataDirId, SystemTime>,
    healing: bool,
    // Volatile.
    /// Deleted files, readable until the reboot (the grace period for reads under way).
    trash: BTreeMap<FileName, Bytes>,
    /// Deletions no sync has covered yet, by call number: a crash may undo them.
    unsynced_deletes: Vec<(u64, Vec<(FileName, Bytes)>)>,
}

impl Disk {
    /// What is on the disk when it comes back after the power cut.
    fn after_power_loss(&self, power: &Power) -> Disk {
        let mut disk = Disk {
            tables: self.tables.clone(),
            files: self.files.clone(),
            dirs_modified: self.dirs_modified.clone(),
            healing: self.healing,
            ..Disk::default()
        };
        for (idx, removed) in &self.unsynced_deletes {
            if !power.coin(*idx, SALT_UNSYNCED_DELETE) {
                for (name, bytes) in removed {
                    disk.files.entry(*name).or_insert_with(|| bytes.clone());
                }
            }
        }
        disk
    }

    fn remove_files(&mut self, idx: u64, matching: impl Fn(&FileName) -> bool) {
        let names: Vec<FileName> = self.files.keys().filter(|n| matching(n)).copied().collect();
        let mut removed = Vec::new();
        for name in names {
            let bytes = self.files.remove(&name).unwrap();
            self.trash.insert(name, bytes.clone());
            removed.push((name, bytes));
        }
        if !removed.is_empty() {
            self.unsynced_deletes.push((idx, removed));
        }
    }
}

fn table_idx(table: Table) -> usize {
    Table::ALL.iter().position(|t| *t == table).unwrap()
}

/// Runs a change on the disk the way a crash sees it: the call is in flight across one yield
/// (other tasks' calls may cut the power meanwhile); a change in flight at the cut reached the
/// disk by the call's coin, and is reported `Offline` either way.
async fn change(
    endpoint: &str,
    call: &str,
    power: &Power,
    disk: &Mutex<Disk>,
    apply: impl FnOnce(&mut Disk, u64),
) -> DriveResult<()> {
    let idx = power.begin(endpoint, call)?;
    tokio::task::yield_now().await;
    let cut = power.is_cut();
    if !cut || power.coin(idx, SALT_IN_FLIGHT) {
        apply(&mut disk.lock().unwrap(), idx);
    }
    if cut { Err(offline(endpoint)) } else { Ok(()) }
}

#[derive(Debug)]
struct SimDrive {
    endpoint: String,
    format: FormatRecord,
    power: Arc<Power>,
    disk: Arc<Mutex<Disk>>,
}

impl SimDrive {
    fn read<T>(&self, call: &str, f: impl FnOnce(&Disk) -> DriveResult<T>) -> DriveResult<T> {
        self.power.begin(&self.endpoint, call)?;
        f(&self.disk.lock().unwrap())
    }

    async fn commit(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        change(
            &self.endpoint,
            "meta_commit",
            &self.power,
            &self.disk,
            |disk, _| {
                for op in ops {
                    match op {
                        MetaOp::Put { table, key, value } => {
                            disk.tables[table_idx(table)].insert(key, Bytes::from(value));
                        }
                        MetaOp::Delete { table, key } => {
                            disk.tables[table_idx(table)].remove(&key);
                        }
                    }
                }
            },
        )
        .await
    }
}

#[async_trait]
impl Drive for SimDrive {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn format(&self) -> &FormatRecord {
        &self.format
    }

    async fn meta_get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Bytes>> {
        self.read("meta_get", |disk| {
            Ok(disk.tables[table_idx(table)].get(key).cloned())
        })
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> DriveResult<Vec<MetaEntry>> {
        self.read("meta_scan", |disk| {
            // As LocalDrive: a start before the prefix starts at the prefix.
            let lower = if range.start.is_empty() || range.start < range.prefix {
                Bound::Included(range.prefix.clone())
            } else if range.start_exclusive {
                Bound::Excluded(range.start.clone())
            } else {
                Bound::Included(range.start.clone())
            };
            Ok(disk.tables[table_idx(table)]
                .range((lower, Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(&range.prefix))
                .take(range.limit as usize)
                .map(|(key, value)| MetaEntry {
                    key: Bytes::copy_from_slice(key),
                    value: if range.keys_only {
                        Bytes::new()
                    } else {
                        value.clone()
                    },
                })
                .collect())
        })
    }

    async fn meta_commit(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        self.commit(ops).await
    }

    async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        self.commit(ops).await
    }

    async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>> {
        self.power.begin(&self.endpoint, "shard_create")?;
        Ok(Box::new(SimShardWrite {
            endpoint: self.endpoint.clone(),
            power: self.power.clone(),
            disk: self.disk.clone(),
            name: (dir, part),
            data: Vec::new(),
        }))
    }

    async fn shard_read(&self, dir: DataDirId, part: u32, offset: u64, len: u64) -> DriveResult<Bytes> {
        self.read("shard_read", |disk| {
            let name = (dir, part);
            let file = disk
                .files
                .get(&name)
                .or_else(|| disk.trash.get(&name))
                .ok_or(DriveError::ShardNotFound)?;
            let end = offset.checked_add(len).filter(|end| *end <= file.len() as u64);
            let Some(end) = end else {
                return Err(DriveError::Corrupt {
                    path: PathBuf::from(&self.endpoint),
                    what: format!(
                        "{dir}/{part} is {} bytes, cannot read {len} at {offset}",
                        file.len()
                    ),
                });
            };
            Ok(file.slice(offset as usize..end as usize))
        })
    }

    async fn shard_size(&self, dir: DataDirId, part: u32) -> DriveResult<u64> {
        self.read("shard_size", |disk| {
            disk.files
                .get(&(dir, part))
                .map(|f| f.len() as u64)
                .ok_or(DriveError::ShardNotFound)
        })
    }

    async fn shard_delete(&self, dir: DataDirId, part: u32) -> DriveResult<()> {
        change(
            &self.endpoint,
            "shard_delete",
            &self.power,
            &self.disk,
            |disk, idx| {
                disk.remove_files(idx, |name| *name == (dir, part));
            },
        )
        .await
    }

    async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()> {
        change(
            &self.endpoint,
            "data_dir_delete",
            &self.power,
            &self.disk,
            |disk, idx| {
                disk.remove_files(idx, |name| name.0 == dir);
            },
        )
        .await
    }

    async fn data_dir_list(
        &self,
        start_after: Option<DataDirId>,
        limit: u32,
    ) -> DriveResult<Vec<DataDirEntry>> {
        self.read("data_dir_list", |disk| {
            let mut dirs: Vec<DataDirId> = disk.files.keys().map(|(dir, _)| *dir).collect();
            dirs.dedup();
            Ok(dirs
                .into_iter()
                .filter(|dir| start_after.is_none_or(|after| *dir > after))
                .take(limit as usize)
                .map(|id| DataDirEntry {
                    id,
                    modified: disk
                        .dirs_modified
                        .get(&id)
                        .copied()
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                })
                .collect())
        })
    }

    async fn info(&self) -> DriveResult<DriveInfo> {
        self.read("info", |_| {
            Ok(DriveInfo {
                total_bytes: 1 << 40,
                free_bytes: 1 << 39,
            })
        })
    }

    async fn healing_mark(&self) -> DriveResult<bool> {
        self.read("healing_mark", |disk| Ok(disk.healing))
    }

    async fn set_healing_mark(&self, on: bool) -> DriveResult<()> {
        change(
            &self.endpoint,
            "set_healing_mark",
            &self.power,
            &self.disk,
            |disk, _| disk.healing = on,
        )
        .await
    }
}

struct SimShardWrite {
    endpoint: String,
    power: Arc<Power>,
    disk: Arc<Mutex<Disk>>,
    name: FileName,
    /// Volatile until the commit: lost at a cut.
    data: Vec<u8>,
}

#[async_trait]
impl ShardWrite for SimShardWrite {
    async fn write(&mut self, buf: Bytes) -> DriveResult<()> {
        self.power.begin(&self.endpoint, "shard_write")?;
        self.data.extend_from_slice(&buf);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> DriveResult<()> {
        let SimShardWrite {
            endpoint,
            power,
            disk,
            name,
            data,
        } = *self;
        change(&endpoint, "shard_commit", &power, &disk, move |disk, _| {
            disk.files.insert(name, Bytes::from(data));
            disk.dirs_modified.insert(name.0, SystemTime::now());
            // The commit's syncfs makes every earlier rename on this filesystem durable.
            disk.unsynced_deletes.clear();
        })
        .await
    }

    async fn abort(self: Box<Self>) -> DriveResult<()> {
        Ok(())
    }
}

/// Hands the layer its drive, or none (a drive that is down).
#[derive(Debug)]
struct Connector(Option<Arc<SimDrive>>);

#[async_trait]
impl DriveConnector for Connector {
    async fn connect(&self) -> DriveResult<Arc<dyn Drive>> {
        match &self.0 {
            Some(drive) => Ok(drive.clone()),
            None => Err(offline("down")),
        }
    }
}

/// The deployment's identity and its drives' contents.
struct Deployment {
    id: uuid::Uuid,
    formats: Vec<FormatRecord>,
    disks: Vec<Arc<Mutex<Disk>>>,
}

impl Deployment {
    fn new(seed: u64) -> Deployment {
        let id = uuid::Uuid::from_u64_pair(mix(seed), mix(seed ^ 1));
        Deployment {
            id,
            formats: (0..N_DRIVES)
                .map(|i| FormatRecord::new_deployment(id, 0, 0, i as u32, 2, 2))
                .collect(),
            disks: (0..N_DRIVES).map(|_| Arc::default()).collect(),
        }
    }

    /// The deployment as it comes back after the power cut.
    fn after_power_loss(&self, power: &Power) -> Deployment {
        Deployment {
            id: self.id,
            formats: self.formats.clone(),
            disks: self
                .disks
                .iter()
                .map(|d| Arc::new(Mutex::new(d.lock().unwrap().after_power_loss(power))))
                .collect(),
        }
    }

    /// Opens a layer over the drives, with the drives in `down` unreachable.
    async fn open(&self, power: &Arc<Power>, down: &[usize]) -> ObjectLayer {
        let set = (0..N_DRIVES)
            .map(|i| {
                let endpoint = format!("sim://drive{i}");
                let drive = (!down.contains(&i)).then(|| {
                    Arc::new(SimDrive {
                        endpoint: endpoint.clone(),
                        format: self.formats[i].clone(),
                        power: power.clone(),
                        disk: self.disks[i].clone(),
                    })
                });
                DriveSpec {
                    endpoint,
                    location: DriveLocation::Remote(Arc::new(Connector(drive))),
                }
            })
            .collect();
        let spec = DeploymentSpec {
            deployment_id: self.id,
            pools: vec![PoolSpec {
                sets: vec![set],
                added: false,
            }],
        };
        ObjectLayer::open_deployment(spec, None).await.unwrap()
    }
}

// ------------------------------------------------------------------------- the workload

/// What a step does to its key's visible state if it takes effect.
#[derive(Clone, Debug)]
enum Effect {
    /// Nothing visible (creating an upload, uploading a part).
    None,
    /// The key now reads as these bytes.
    Put(Arc<Vec<u8>>),
    /// The key is gone.
    Delete,
}

#[derive(Clone, Debug)]
struct Step {
    key: String,
    what: String,
    effect: Effect,
    acked: bool,
    /// The error, when the step failed while the power was still on (healthy drives never
    /// fail: a finding of its own).
    failed_powered: Option<String>,
}

/// Distinct bytes for every body: a header naming it, then a seeded pattern.
fn body_bytes(seed: u64, label: &str, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 8);
    out.extend_from_slice(label.as_bytes());
    let mut rng = Rng(seed ^ mix(size as u64));
    while out.len() < size {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(size.max(label.len()));
    out
}

fn stream_of(data: &[u8]) -> PutStream {
    let chunks: Vec<Result<Bytes, BoxError>> = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

/// Records a step's outcome; `false` when the task must stop (it failed). A failure before the
/// power cut is a finding of its own: healthy drives never fail.
fn note<T>(
    steps: &mut Vec<Step>,
    power: &Power,
    key: &str,
    what: String,
    effect: Effect,
    result: ObjectResult<T>,
) -> Option<T> {
    let failed_powered = match &result {
        Err(err) if !power.is_cut() => Some(err.to_string()),
        _ => None,
    };
    steps.push(Step {
        key: key.to_string(),
        what,
        effect,
        acked: result.is_ok(),
        failed_powered,
    });
    result.ok()
}

async fn plain_task(layer: Arc<ObjectLayer>, power: Arc<Power>, seed: u64, task: usize) -> Vec<Step> {
    let mut rng = Rng(seed ^ mix(task as u64 + 100));
    let mut steps = Vec::new();
    for n in 0..OPS_PER_TASK {
        let key = format!("t{task}-k{}", rng.below(KEYS_PER_TASK));
        let choice = rng.below(4);
        let ok = if choice == 3 {
            let result = layer.delete_object(BUCKET, &key, DeleteOptions::default()).await;
            note(
                &mut steps,
                &power,
                &key,
                format!("DELETE #{n}"),
                Effect::Delete,
                result,
            )
            .is_some()
        } else {
            let size = if choice == 2 {
                LARGE_BYTES
            } else {
                1 + rng.below(SMALL_BYTES_MAX) as usize
            };
            let what = format!("PUT #{n} of {key}, {size} bytes");
            let data = Arc::new(body_bytes(rng.next(), &what, size));
            let result = layer
                .put_object(BUCKET, &key, stream_of(&data), PutOptions::default())
                .await;
            note(&mut steps, &power, &key, what, Effect::Put(data), result).is_some()
        };
        if !ok {
            break;
        }
    }
    steps
}

async fn multipart_task(layer: Arc<ObjectLayer>, power: Arc<Power>, seed: u64) -> Vec<Step> {
    let mut rng = Rng(seed ^ mix(7));
    let key = "mp";
    let mut steps = Vec::new();
    let created = layer
        .create_multipart_upload(BUCKET, key, PutOptions::default())
        .await;
    let Some(upload) = note(
        &mut steps,
        &power,
        key,
        "CreateMultipartUpload".into(),
        Effect::None,
        created,
    ) else {
        return steps;
    };
    let p1 = body_bytes(rng.next(), "part 1", PART1_BYTES);
    let p2 = body_bytes(rng.next(), "part 2", PART2_BYTES);
    let mut completed = Vec::new();
    for (number, data) in [(1, &p1), (2, &p2)] {
        let result = layer
            .upload_part(
                BUCKET,
                key,
                &upload.upload_id,
                number,
                stream_of(data),
                PutOptions::default(),
            )
            .await;
        let Some(part) = note(
            &mut steps,
            &power,
            key,
            format!("UploadPart {number}"),
            Effect::None,
            result,
        ) else {
            return steps;
        };
        completed.push(CompletePart {
            number,
            etag: part.etag,
            checksum: None,
        });
    }
    let whole = Arc::new([p1, p2].concat());
    let result = layer
        .complete_multipart_upload(BUCKET, key, &upload.upload_id, completed)
        .await;
    if note(
        &mut steps,
        &power,
        key,
        "CompleteMultipartUpload".into(),
        Effect::Put(whole),
        result,
    )
    .is_none()
    {
        return steps;
    }
    if rng.below(2) == 0 {
        let result = layer.delete_object(BUCKET, key, DeleteOptions::default()).await;
        note(
            &mut steps,
            &power,
            key,
            "DELETE after complete".into(),
            Effect::Delete,
            result,
        );
    } else {
        let what = "PUT over the multipart object".to_string();
        let data = Arc::new(body_bytes(rng.next(), &what, 3000));
        let result = layer
            .put_object(BUCKET, key, stream_of(&data), PutOptions::default())
            .await;
        note(&mut steps, &power, key, what, Effect::Put(data), result);
    }
    steps
}

/// What the workload did: whether the bucket was acknowledged, and every step.
struct History {
    bucket_acked: bool,
    steps: Vec<Step>,
    make_bucket_failed_powered: Option<String>,
}

async fn run_workload(layer: Arc<ObjectLayer>, power: Arc<Power>, seed: u64) -> History {
    if let Err(err) = layer.make_bucket(BUCKET, MakeBucketOptions::default()).await {
        let failed_powered = (!power.is_cut()).then(|| err.to_string());
        return History {
            bucket_acked: false,
            steps: Vec::new(),
            make_bucket_failed_powered: failed_powered,
        };
    }
    let mut tasks = Vec::new();
    for task in 0..N_PLAIN_TASKS {
        tasks.push(tokio::spawn(plain_task(layer.clone(), power.clone(), seed, task)));
    }
    tasks.push(tokio::spawn(multipart_task(layer.clone(), power.clone(), seed)));
    let mut steps = Vec::new();
    for task in tasks {
        steps.extend(task.await.unwrap());
    }
    History {
        bucket_acked: true,
        steps,
        make_bucket_failed_powered: None,
    }
}

// ------------------------------------------------------------------------- the model

/// What a key may read as after the reboot: the state after its last acknowledged step, or
/// after the failed step that ended its task (in flight at the cut: it may have landed).
fn allowed_states(steps: &[&Step]) -> Vec<Option<Arc<Vec<u8>>>> {
    let mut state: Option<Arc<Vec<u8>>> = None;
    let mut in_flight = None;
    for step in steps {
        let after = match &step.effect {
            Effect::None => state.clone(),
            Effect::Put(data) => Some(data.clone()),
            Effect::Delete => None,
        };
        if step.acked {
            assert!(in_flight.is_none(), "a task goes on after a failure");
            state = after;
        } else {
            in_flight = Some(after);
        }
    }
    let mut allowed = vec![state];
    allowed.extend(in_flight);
    allowed
}

fn describe(state: &Option<Arc<Vec<u8>>>, steps: &[&Step]) -> String {
    match state {
        None => "absent".into(),
        Some(data) => {
            let by = steps
                .iter()
                .find(|s| matches!(&s.effect, Effect::Put(d) if d == data));
            match by {
                Some(step) => format!("the bytes of {}", step.what),
                None => format!("{} bytes no single PUT sent (torn)", data.len()),
            }
        }
    }
}

async fn read_key(layer: &ObjectLayer, key: &str) -> Result<Option<Arc<Vec<u8>>>, String> {
    let reader = match layer.get_object(BUCKET, key, GetOptions::default()).await {
        Ok(reader) => reader,
        Err(ObjectError::NoSuchKey { .. }) => return Ok(None),
        Err(err) => return Err(format!("GET {key}: {err}")),
    };
    let mut out = Vec::new();
    let mut body = reader.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.map_err(|err| format!("GET {key} body: {err}"))?);
    }
    Ok(Some(Arc::new(out)))
}

type Seen = BTreeMap<String, Option<Arc<Vec<u8>>>>;

/// Checks every key and the listing against the history; returns what each key read as.
async fn check(layer: &ObjectLayer, history: &History, phase: &str) -> Result<Seen, String> {
    let mut keys: BTreeMap<&str, Vec<&Step>> = BTreeMap::new();
    for step in &history.steps {
        keys.entry(&step.key).or_default().push(step);
    }
    match layer.bucket_info(BUCKET).await {
        Ok(_) => {}
        Err(ObjectError::NoSuchBucket { .. }) if !history.bucket_acked => return Ok(Seen::new()),
        Err(err) => return Err(format!("{phase}: bucket lost: {err}")),
    }
    let mut seen = Seen::new();
    for (key, steps) in &keys {
        let got = read_key(layer, key).await.map_err(|e| format!("{phase}: {e}"))?;
        let allowed = allowed_states(steps);
        if !allowed.contains(&got) {
            let history: Vec<String> = steps
                .iter()
                .map(|s| format!("{} ({})", s.what, if s.acked { "acked" } else { "failed" }))
                .collect();
            let allowed: Vec<String> = allowed.iter().map(|a| describe(a, steps)).collect();
            return Err(format!(
                "{phase}: {key} reads as {}; allowed: {allowed:?}; history: {history:?}",
                describe(&got, steps)
            ));
        }
        seen.insert(key.to_string(), got);
    }
    let listed = layer
        .list_objects(
            BUCKET,
            ListOptions {
                max_keys: 1000,
                ..ListOptions::default()
            },
        )
        .await
        .map_err(|e| format!("{phase}: listing: {e}"))?;
    let listed: BTreeMap<String, u64> = listed.objects.into_iter().map(|o| (o.key, o.size)).collect();
    let expected: BTreeMap<String, u64> = seen
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|d| (k.clone(), d.len() as u64)))
        .collect();
    if listed != expected {
        return Err(format!(
            "{phase}: listing {listed:?} disagrees with GETs {expected:?}"
        ));
    }
    Ok(seen)
}

// ------------------------------------------------------------------------- one run

struct RunStats {
    n_calls: u64,
    n_acked: usize,
    in_flight_landed: usize,
    in_flight_lost: usize,
}

/// One life: workload until the cut at `cut_at_call`, reboot on what survived, check, heal,
/// sweep, check again, check with two drives down.
/// Returns the trace of the drive calls up to the cut with the outcome.
async fn run(seed: u64, cut_at_call: u64) -> (u64, Result<RunStats, String>) {
    let power = Power::new(seed, cut_at_call);
    let result = run_with(seed, &power).await;
    (power.trace(), result)
}

async fn run_with(seed: u64, power: &Arc<Power>) -> Result<RunStats, String> {
    let deployment = Deployment::new(seed);
    let layer = Arc::new(deployment.open(power, &[]).await);
    let workload = run_workload(layer.clone(), power.clone(), seed);
    let history = tokio::time::timeout(WORKLOAD_TIMEOUT, workload)
        .await
        .map_err(|_| "the workload hung after the power cut".to_string())?;
    drop(layer);
    let n_calls = power.n_calls.load(Ordering::SeqCst);
    if let Some(err) = &history.make_bucket_failed_powered {
        return Err(format!("make_bucket failed with the power on: {err}"));
    }
    if let Some(step) = history.steps.iter().find(|s| s.failed_powered.is_some()) {
        return Err(format!(
            "{} failed with the power on: {:?}",
            step.what, step.failed_powered
        ));
    }

    // Reboot on what survived.
    let survived = deployment.after_power_loss(power);
    let mains = Power::new(seed, u64::MAX);
    let layer = survived.open(&mains, &[]).await;
    let before_heal = check(&layer, &history, "after reboot").await?;

    for key in before_heal.keys() {
        let opts = HealOptions {
            dry_run: false,
            deep: true,
        };
        let healed = layer
            .heal_object(BUCKET, key, opts)
            .await
            .map_err(|e| format!("heal {key}: {e}"))?;
        if healed.objects_failed != 0 {
            return Err(format!("heal {key} failed with every drive up: {healed:?}"));
        }
    }
    layer
        .sweep_orphans(Duration::ZERO)
        .await
        .map_err(|e| format!("sweep: {e}"))?;
    let after_heal = check(&layer, &history, "after heal and sweep").await?;
    if after_heal != before_heal {
        return Err("heal changed what keys read as".to_string());
    }
    drop(layer);

    // Full redundancy: any two drives down (two chosen by the seed), everything still reads.
    let mut rng = Rng(seed ^ mix(3));
    let a = rng.below(N_DRIVES as u64) as usize;
    let b = (a + 1 + rng.below(N_DRIVES as u64 - 1) as usize) % N_DRIVES;
    let layer = survived.open(&mains, &[a, b]).await;
    for (key, expected) in &after_heal {
        let got = read_key(&layer, key)
            .await
            .map_err(|e| format!("with drives {a} and {b} down after heal: {e}"))?;
        if &got != expected {
            return Err(format!(
                "with drives {a} and {b} down after heal, {key} reads differently"
            ));
        }
    }

    let mut keys: BTreeMap<&str, Vec<&Step>> = BTreeMap::new();
    for step in &history.steps {
        keys.entry(&step.key).or_default().push(step);
    }
    let (mut in_flight_landed, mut in_flight_lost) = (0, 0);
    for (key, steps) in &keys {
        let allowed = allowed_states(steps);
        if allowed.len() == 2 && allowed[0] != allowed[1] {
            if before_heal[*key] == allowed[1] {
                in_flight_landed += 1;
            } else {
                in_flight_lost += 1;
            }
        }
    }
    Ok(RunStats {
        n_calls,
        n_acked: history.steps.iter().filter(|s| s.acked).count() + usize::from(history.bucket_acked),
        in_flight_landed,
        in_flight_lost,
    })
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

#[tokio::test]
async fn acknowledged_writes_survive_power_loss_at_any_instant() {
    if let Ok(replay) = std::env::var("STRATA_POWER_LOSS_REPLAY") {
        let parts: Vec<u64> = replay.split(':').map(|p| p.parse().unwrap()).collect();
        let [seed, cut, wanted] = parts[..] else {
            panic!("STRATA_POWER_LOSS_REPLAY=<seed>:<cut>:<trace>");
        };
        // The MD5 thread's timing can reorder tasks: run until the drive calls interleave as
        // in the failing run.
        for attempt in 1..=REPLAY_ATTEMPTS_MAX {
            let (trace, result) = run(seed, cut).await;
            match result {
                Err(err) => panic!(
                    "seed {seed}, power cut at drive call {cut}, trace {trace} (attempt {attempt}, \
                     same interleaving: {}): {err}",
                    trace == wanted
                ),
                Ok(_) if trace == wanted => {
                    panic!("replayed exactly (attempt {attempt}) and passed: fixed?")
                }
                Ok(_) => {}
            }
        }
        panic!("the interleaving of trace {wanted} did not recur in {REPLAY_ATTEMPTS_MAX} attempts");
    }
    let master = env_u64("STRATA_POWER_LOSS_SEED").unwrap_or(SEED_DEFAULT);
    let n_runs = env_u64("STRATA_POWER_LOSS_RUNS").unwrap_or(RUNS_DEFAULT);
    let started = Instant::now();
    // A run without a cut: how many drive calls a workload makes, so cuts cover all of it.
    let full = match run(master, u64::MAX).await {
        (_, Ok(stats)) => stats,
        (trace, Err(err)) => panic!(
            "without a power cut (STRATA_POWER_LOSS_REPLAY={master}:{}:{trace}): {err}",
            u64::MAX
        ),
    };
    assert_eq!(full.in_flight_landed + full.in_flight_lost, 0);
    let (mut n_acked, mut n_landed, mut n_lost) = (0, 0, 0);
    for i in 0..n_runs {
        let seed = mix(master ^ mix(i));
        let cut = Rng(seed).below(full.n_calls + 1);
        match run(seed, cut).await {
            (_, Ok(stats)) => {
                n_acked += stats.n_acked;
                n_landed += stats.in_flight_landed;
                n_lost += stats.in_flight_lost;
            }
            (trace, Err(err)) => panic!(
                "run {i}: seed {seed}, power cut at drive call {cut} of about {}: {err}\n\
                 replay with STRATA_POWER_LOSS_REPLAY={seed}:{cut}:{trace}",
                full.n_calls
            ),
        }
    }
    eprintln!(
        "{n_runs} power cuts over ~{} drive calls each: {n_acked} acknowledged operations kept; \
         changes in flight at the cut: {n_landed} landed, {n_lost} did not ({:.1} s)",
        full.n_calls,
        started.elapsed().as_secs_f64()
    );
    // Both outcomes of an operation in flight were seen, so the model's alternatives were both
    // exercised.
    if n_runs >= 50 {
        assert!(n_landed > 0 && n_lost > 0, "landed {n_landed}, lost {n_lost}");
    }
}
