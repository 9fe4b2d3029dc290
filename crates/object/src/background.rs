//! Background work of the object layer: the heal queue, heal sequences (admin-started heals
//! of a deployment, bucket or prefix), the scanner, and the drive monitor.
//!
//! Every task holds only a `Weak` reference to the layer and stops when the layer is dropped.
//! Every loop is bounded: the heal queue has [`HEAL_QUEUE_CAPACITY`] slots (a full queue drops
//! the hint; the scanner finds the damage later), the scanner is rate limited, and the monitor
//! backs off up to [`MONITOR_BACKOFF_MAX`] per failing drive.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use serde::Serialize;
use strata_drive::{Drive, LocalDrive, Table};
use tokio::sync::mpsc;

use crate::deployment::DriveLocation;
use crate::error::{ObjectError, ObjectResult};
use crate::heal::{HealCounters, HealOptions};
use crate::layer::ObjectLayer;
use crate::list::RawKeyWalker;

/// Heal hints waiting for the heal worker.
pub const HEAL_QUEUE_CAPACITY: usize = 10_000;
/// Pause before a heal sequence of new drives that ended with failures is tried again.
pub const HEAL_RETRY_PAUSE: Duration = Duration::from_secs(60);
/// Longest wait between two probes of a failing drive.
pub const MONITOR_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Settings of the background tasks.
#[derive(Clone, Debug)]
pub struct BackgroundConfig {
    /// Pause between two scanner cycles over all objects.
    pub scanner_cycle_pause: Duration,
    /// Most objects the scanner examines per second (it must not starve clients).
    pub scanner_objects_per_sec: u32,
    /// Whether the scanner verifies every shard's checksums (finds bitrot) or only checks that
    /// shards and records are present.
    pub scanner_deep: bool,
    /// How often drives are probed.
    pub monitor_interval: Duration,
    /// Unreferenced data directories younger than this are left alone by the orphan sweep at
    /// the end of each scanner cycle (they may belong to a write in flight).
    pub orphan_age_min: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            scanner_cycle_pause: Duration::from_secs(60),
            scanner_objects_per_sec: 200,
            scanner_deep: true,
            monitor_interval: Duration::from_secs(2),
            orphan_age_min: Duration::from_secs(3600),
        }
    }
}

/// A key that should be healed.
#[derive(Clone, Debug)]
pub struct HealHint {
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
}

/// What a heal sequence covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealScope {
    /// One bucket, or all.
    pub bucket: Option<String>,
    /// Keys starting with this (only with a bucket).
    pub prefix: String,
}

/// Progress of a heal sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealState {
    /// None was started yet.
    #[default]
    Idle,
    /// Walking objects.
    Running,
    /// Finished.
    Done,
    /// Stopped by an error.
    Failed,
}

/// State of one drive, for admin output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DriveStatus {
    /// Path or URL.
    pub endpoint: String,
    /// Pool index.
    pub pool: u32,
    /// Set index.
    pub set: u32,
    /// Index in the set.
    pub drive: u32,
    /// Whether it is online.
    pub online: bool,
    /// Whether it is being healed after a replacement.
    pub healing: bool,
    /// I/O errors seen since start.
    pub io_errors: u64,
    /// Whether its last write was refused for lack of space.
    pub full: bool,
    /// Whether its filesystem is read-only (reads served, writes skipped).
    pub read_only: bool,
}

/// The latest heal sequence.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealSequenceStatus {
    /// Sequence number (0 when none ran).
    pub id: u64,
    /// State.
    pub state: HealState,
    /// What it covers.
    pub scope: HealScope,
    /// Whether it only reports.
    pub dry_run: bool,
    /// Start, seconds since the epoch.
    pub started_unix_secs: u64,
    /// End, seconds since the epoch (0 while running).
    pub finished_unix_secs: u64,
    /// What it found and did so far.
    pub counters: HealCounters,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Scanner progress since start.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScannerStatus {
    /// Completed cycles over all objects.
    pub cycles: u64,
    /// Orphaned data directories removed.
    pub orphans_removed: u64,
    /// What it found and did.
    pub counters: HealCounters,
}

/// Now, in whole seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_secs_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ObjectLayer {
    /// Starts the heal worker, the scanner and the drive monitor on the current runtime.
    /// Call once, after wrapping the layer in an `Arc`.
    pub fn start_background(self: &Arc<Self>, config: BackgroundConfig) {
        if let Some(rx) = self.background.take_heal_receiver() {
            tokio::spawn(heal_worker(Arc::downgrade(self), rx));
        }
        tokio::spawn(scanner(Arc::downgrade(self), config.clone()));
        tokio::spawn(monitor(Arc::downgrade(self), config.monitor_interval));
        if self.pools.len() > 1 {
            tokio::spawn(pool_states(Arc::downgrade(self)));
        }
    }

    /// Asks the heal worker to look at a key (dropped when the queue is full).
    pub(crate) fn hint_heal(&self, bucket: &str, key: &str) {
        let hint = HealHint {
            bucket: bucket.to_string(),
            key: key.to_string(),
        };
        if self.background.heal_tx.try_send(hint).is_err() {
            // The key may lack shards and nothing remembers it: owe a full heal sequence.
            self.background.returned_pending.store(true, Ordering::SeqCst);
            tracing::debug!(bucket, key, "heal queue full; a heal sequence will find it");
        }
    }

    /// Whether this node owes the deployment a heal: a drive came back after missing writes
    /// and its heal sequence has not started, a heal sequence is running, or keys written
    /// without every drive wait in the heal queue. Until it is paid, objects written while a
    /// drive was away may have no more than their write quorum of shards, so no other node may
    /// leave.
    pub fn heal_owed(&self) -> bool {
        self.background.returned_pending.load(Ordering::SeqCst)
            || self.heal_status().state == HealState::Running
            || self.heal_queue_len() > 0
            || self.background.hints_in_flight.load(Ordering::SeqCst) > 0
    }

    /// Keys waiting in the heal queue (at most [`HEAL_QUEUE_CAPACITY`]).
    pub fn heal_queue_len(&self) -> usize {
        HEAL_QUEUE_CAPACITY.saturating_sub(self.background.heal_tx.capacity())
    }

    /// State of every drive.
    pub fn drive_statuses(&self) -> Vec<DriveStatus> {
        self.sets
            .iter()
            .flat_map(|set| set.slots.iter())
            .map(|slot| {
                let format = slot.expected_format();
                DriveStatus {
                    endpoint: slot.endpoint().to_string(),
                    pool: format.pool_idx,
                    set: format.set_idx,
                    drive: format.drive_idx,
                    online: slot.is_online(),
                    healing: slot.is_healing(),
                    io_errors: slot.n_io_errors(),
                    full: slot.is_full(),
                    read_only: slot.read_only_since().is_some(),
                }
            })
            .collect()
    }

    /// The latest heal sequence.
    pub fn heal_status(&self) -> HealSequenceStatus {
        lock(&self.background.heal_sequence).clone()
    }

    /// The scanner's progress.
    pub fn scanner_status(&self) -> ScannerStatus {
        lock(&self.background.scanner).clone()
    }

    /// Starts a heal sequence over `scope` unless one is running.
    pub fn start_heal(
        self: &Arc<Self>,
        scope: HealScope,
        opts: HealOptions,
    ) -> ObjectResult<HealSequenceStatus> {
        let status = {
            let mut current = lock(&self.background.heal_sequence);
            if current.state == HealState::Running {
                return Err(ObjectError::InvalidRequest {
                    reason: "a heal is already running",
                });
            }
            *current = HealSequenceStatus {
                id: current.id + 1,
                state: HealState::Running,
                scope: scope.clone(),
                dry_run: opts.dry_run,
                started_unix_secs: unix_secs_now(),
                ..HealSequenceStatus::default()
            };
            current.clone()
        };
        // Drives healing now are healed once a full, real sequence finishes without failures.
        let full = scope.bucket.is_none() && !opts.dry_run;
        let healing: Vec<_> = self
            .sets
            .iter()
            .flat_map(|s| s.slots.iter())
            .filter(|s| s.is_healing())
            .cloned()
            .collect();
        let layer = Arc::downgrade(self);
        tokio::spawn(async move {
            let outcome = heal_sequence(&layer, &scope, opts).await;
            if let Some(layer) = layer.upgrade() {
                let n_failed = lock(&layer.background.heal_sequence).counters.objects_failed;
                if outcome.is_ok() && full && n_failed == 0 {
                    for slot in healing.iter().filter(|s| s.is_online()) {
                        slot.mark_healing(false).await;
                    }
                }
                let mut current = lock(&layer.background.heal_sequence);
                current.finished_unix_secs = unix_secs_now();
                match outcome {
                    Ok(()) => current.state = HealState::Done,
                    Err(err) => {
                        current.state = HealState::Failed;
                        current.error = Some(err.to_string());
                    }
                }
            }
        });
        Ok(status)
    }

    /// Walks `scope` and heals every key in it, adding to `add` after each key. The layer is
    /// held only while one key is healed, so dropping it stops the walk.
    async fn walk_and_heal(
        layer: &Weak<ObjectLayer>,
        scope: &HealScope,
        opts: HealOptions,
        pace: Option<Duration>,
        add: impl Fn(&ObjectLayer, &HealCounters),
    ) -> ObjectResult<()> {
        let buckets: Vec<String> = {
            let Some(layer) = layer.upgrade() else {
                return Ok(());
            };
            layer.heal_buckets().await?;
            // System records go with the bucket records (not in a dry run); a namespace that
            // cannot be healed now counts as failed (a healing drive keeps its mark) but
            // stops no walk.
            if !opts.dry_run {
                let system = layer.heal_system_records().await;
                if system != HealCounters::default() {
                    add(&layer, &system);
                }
            }
            match &scope.bucket {
                Some(bucket) => vec![layer.bucket_info(bucket).await?.name],
                None => layer
                    .list_all_buckets()
                    .await?
                    .into_iter()
                    .map(|b| b.name)
                    .collect(),
            }
        };
        for bucket in buckets {
            let mut walker = {
                let Some(layer) = layer.upgrade() else {
                    return Ok(());
                };
                RawKeyWalker::new(&layer, &bucket, &scope.prefix)
            };
            // Paced walks (the scanner) heal one key at a time; heal sequences keep
            // HEAL_SEQUENCE_CONCURRENCY keys in flight (each key is mostly waiting on drives).
            let concurrency = if pace.is_some() {
                1
            } else {
                HEAL_SEQUENCE_CONCURRENCY
            };
            let mut in_flight = futures::stream::FuturesUnordered::new();
            loop {
                let next = if in_flight.len() < concurrency {
                    walker.next_key().await?
                } else {
                    None
                };
                let Some(key) = next else {
                    // Walk finished or window full: wait for one key to finish.
                    match in_flight.next().await {
                        Some(()) => continue,
                        None => break,
                    }
                };
                let started = Instant::now();
                let Some(strong) = layer.upgrade() else {
                    return Ok(());
                };
                let bucket = bucket.clone();
                let add = &add;
                in_flight.push(async move {
                    let counters = match strong.heal_object(&bucket, &key, opts).await {
                        Ok(counters) => counters,
                        Err(err) => {
                            tracing::warn!(bucket, key, %err, "heal failed");
                            HealCounters {
                                objects_scanned: 1,
                                objects_failed: 1,
                                ..HealCounters::default()
                            }
                        }
                    };
                    if !opts.dry_run
                        && let Err(err) = strong.place_versions(&bucket, &key).await
                    {
                        tracing::warn!(bucket, key, %err, "moving a version to its storage class failed");
                    }
                    add(&strong, &counters);
                });
                if let Some(pace) = pace {
                    // One at a time: finish it, then keep the pace.
                    while in_flight.next().await.is_some() {}
                    tokio::time::sleep(pace.saturating_sub(started.elapsed())).await;
                }
            }
        }
        Ok(())
    }
}

async fn heal_sequence(layer: &Weak<ObjectLayer>, scope: &HealScope, opts: HealOptions) -> ObjectResult<()> {
    ObjectLayer::walk_and_heal(layer, scope, opts, None, |layer, counters| {
        lock(&layer.background.heal_sequence).counters.add(counters);
    })
    .await
}

async fn heal_worker(layer: Weak<ObjectLayer>, mut rx: mpsc::Receiver<HealHint>) {
    while let Some(hint) = rx.recv().await {
        let Some(layer) = layer.upgrade() else { return };
        // Counted from before the hint leaves the queue's length until it is done.
        let in_flight = &layer.background.hints_in_flight;
        in_flight.fetch_add(1, Ordering::SeqCst);
        heal_hint(&layer, &hint).await;
        in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Heals one hinted key and moves its versions to their storage classes' media.
async fn heal_hint(layer: &ObjectLayer, hint: &HealHint) {
    let opts = HealOptions {
        dry_run: false,
        deep: true,
    };
    match layer.heal_object(&hint.bucket, &hint.key, opts).await {
        Ok(counters) => {
            if counters.objects_healed > 0 {
                tracing::info!(bucket = hint.bucket, key = hint.key, ?counters, "healed on read");
            }
        }
        Err(err) => tracing::warn!(bucket = hint.bucket, key = hint.key, %err, "heal on read failed"),
    }
    if let Err(err) = layer.place_versions(&hint.bucket, &hint.key).await {
        tracing::warn!(bucket = hint.bucket, key = hint.key, %err, "moving a version to its storage class failed");
    }
}

async fn scanner(layer: Weak<ObjectLayer>, config: BackgroundConfig) {
    let pace = Duration::from_secs(1) / config.scanner_objects_per_sec.max(1);
    let opts = HealOptions {
        dry_run: false,
        deep: config.scanner_deep,
    };
    loop {
        tokio::time::sleep(config.scanner_cycle_pause).await;
        let Some(strong) = layer.upgrade() else { return };
        // In a cluster one node scans a cycle for all (the others would repeat its work).
        let _leader = match &strong.cluster {
            Some(cluster) => match cluster.may_lead("scanner").await {
                Some(lock) => Some(lock),
                None => continue,
            },
            None => None,
        };
        drop(strong);
        let outcome = ObjectLayer::walk_and_heal(
            &layer,
            &HealScope::default(),
            opts,
            Some(pace),
            |layer, counters| {
                lock(&layer.background.scanner).counters.add(counters);
            },
        )
        .await;
        let Some(strong) = layer.upgrade() else { return };
        match outcome {
            Ok(()) => {
                match strong.sweep_orphans(config.orphan_age_min).await {
                    Ok(n) => lock(&strong.background.scanner).orphans_removed += n,
                    Err(err) => tracing::warn!(%err, "orphan sweep failed"),
                }
                // Tier objects no version names (a transition or removal a crash cut short).
                match strong.sweep_tier_orphans(config.orphan_age_min).await {
                    Ok(n) => lock(&strong.background.scanner).orphans_removed += n,
                    Err(err) => tracing::warn!(%err, "tier orphan sweep failed"),
                }
                lock(&strong.background.scanner).cycles += 1;
            }
            Err(err) => tracing::warn!(%err, "scanner cycle stopped early"),
        }
    }
}

/// Keeps the pool states (decommissions) current on this node and runs pending
/// decommissions this node can lead.
async fn pool_states(layer: Weak<ObjectLayer>) {
    loop {
        let Some(strong) = layer.upgrade() else { return };
        if let Err(err) = strong.load_pools_record().await {
            tracing::debug!(%err, "pool states not readable now");
        }
        strong.spawn_pending_decommissions();
        drop(strong);
        tokio::time::sleep(crate::decommission::POOL_STATE_REFRESH).await;
    }
}

/// Per-drive probe schedule with exponential backoff.
struct Probe {
    next: Instant,
    delay: Duration,
    /// When the drive was last re-admitted after failing: one that fails again soon after
    /// keeps its backoff instead of flapping at the base interval.
    readmitted: Option<Instant>,
}

/// A re-admitted drive that stays online this long is trusted again (probes at the base
/// interval); one that fails sooner keeps backing off.
pub const MONITOR_READMIT_TRUST: Duration = Duration::from_secs(60);
/// How long a remote drive that answered "read-only" is skipped for writes before a write is
/// tried again (a local one is probed instead).
pub const READ_ONLY_RECHECK: Duration = Duration::from_secs(30);

async fn monitor(layer: Weak<ObjectLayer>, interval: Duration) {
    let mut probes: Vec<Probe> = Vec::new();
    // Drives came back after being offline and may have missed writes: heal everything once.
    // The flag is shared (`ObjectLayer::heal_owed`) and raised before the drive counts as
    // online again, so no one sees the drive back without seeing the heal it is owed.
    loop {
        tokio::time::sleep(interval).await;
        let Some(layer) = layer.upgrade() else { return };
        let returned = &layer.background.returned_pending;
        let slots: Vec<_> = layer.sets.iter().flat_map(|s| s.slots.iter().cloned()).collect();
        if probes.len() != slots.len() {
            probes = slots
                .iter()
                .map(|_| Probe {
                    next: Instant::now(),
                    delay: interval,
                    readmitted: None,
                })
                .collect();
        }
        let mut replaced_any = false;
        for (slot, probe) in slots.iter().zip(probes.iter_mut()) {
            if Instant::now() < probe.next {
                continue;
            }
            let was_online = slot.is_online();
            let check = match &slot.location {
                DriveLocation::Local { path, .. } => check_local(slot, path).await,
                DriveLocation::Remote(connector) => check_remote(slot, connector.as_ref()).await,
            };
            if check.is_healthy() && check_read_only(slot).await {
                // Writable again after missing writes: heal them like a returned drive's.
                returned.store(true, Ordering::SeqCst);
            }
            match check {
                Check::Healthy => {
                    if !was_online {
                        returned.store(true, Ordering::SeqCst);
                        probe.readmitted = Some(Instant::now());
                    }
                    slot.set_online(true);
                    if probe
                        .readmitted
                        .is_none_or(|at| at.elapsed() >= MONITOR_READMIT_TRUST)
                    {
                        probe.delay = interval;
                        probe.readmitted = None;
                    }
                }
                Check::Replaced => {
                    slot.mark_healing(true).await;
                    replaced_any = true;
                    probe.delay = interval;
                }
                Check::Failing(reason) => {
                    if slot.is_online() {
                        tracing::warn!(drive = slot.endpoint(), reason, "drive check failed");
                    }
                    slot.set_online(false);
                    // A remote drive's node restarting is routine and its probe cheap: keep
                    // looking often so it rejoins soon after it is back.
                    let backoff_max = match slot.location {
                        DriveLocation::Local { .. } => MONITOR_BACKOFF_MAX,
                        DriveLocation::Remote(_) => MONITOR_REMOTE_BACKOFF_MAX,
                    };
                    probe.delay = (probe.delay * 2).min(backoff_max);
                }
            }
            probe.next = Instant::now() + probe.delay;
        }
        // Drives waiting to be healed (new or replaced on this node) get a full heal sequence;
        // one that ended with failures is retried after a pause rather than in a loop.
        let any_healing = slots
            .iter()
            .any(|s| s.is_healing() && matches!(s.location, DriveLocation::Local { .. }));
        let last = layer.heal_status();
        let retry_due = last.finished_unix_secs == 0
            || replaced_any
            || unix_secs_now().saturating_sub(last.finished_unix_secs) >= HEAL_RETRY_PAUSE.as_secs();
        let returned_pending = returned.load(Ordering::SeqCst);
        let wanted = (any_healing && retry_due) || returned_pending;
        if !wanted || last.state == HealState::Running {
            continue;
        }
        // In a cluster one node heals on behalf of all: whoever gets the deployment-wide job
        // lock (the others' sequences would only repeat the work).
        let leader = match &layer.cluster {
            Some(cluster) => match cluster.may_lead("heal").await {
                Some(lock) => Some(lock),
                None => continue,
            },
            None => None,
        };
        let opts = HealOptions {
            dry_run: false,
            deep: false,
        };
        match layer.start_heal(HealScope::default(), opts) {
            Ok(status) => {
                tracing::info!(
                    id = status.id,
                    returned_pending,
                    "healing new, replaced or returned drives"
                );
                returned.store(false, Ordering::SeqCst);
                if let Some(lock) = leader {
                    // Held until the sequence ends, so no other node starts the same work.
                    let watched = Arc::downgrade(&layer);
                    tokio::spawn(async move {
                        while let Some(layer) = watched.upgrade() {
                            if layer.heal_status().state != HealState::Running {
                                break;
                            }
                            drop(layer);
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        drop(lock);
                    });
                }
            }
            Err(err) => tracing::warn!(%err, "could not start healing"),
        }
    }
}

/// Keys a heal sequence heals at the same time.
const HEAL_SEQUENCE_CONCURRENCY: usize = 8;

/// Longest pause between probes of an unreachable remote drive.
const MONITOR_REMOTE_BACKOFF_MAX: Duration = Duration::from_secs(4);

/// How long a probe of a remote drive may take before it counts as failing.
const REMOTE_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Probes a remote drive: it must answer its healing mark (which also carries the remote
/// node's healing state to this node's reads). A drive that does not answer is reconnected.
async fn check_remote(
    slot: &crate::slot::DriveSlot,
    connector: &dyn crate::deployment::DriveConnector,
) -> Check {
    let current = slot.current();
    if let Ok(Ok(healing)) = tokio::time::timeout(REMOTE_PROBE_TIMEOUT, current.healing_mark()).await {
        slot.set_healing(healing);
        return Check::Healthy;
    }
    let drive = match tokio::time::timeout(REMOTE_PROBE_TIMEOUT, connector.connect()).await {
        Ok(Ok(drive)) => drive,
        Ok(Err(err)) => return Check::Failing(err.to_string()),
        Err(_) => return Check::Failing("no answer".to_string()),
    };
    if !drive.format().same_position(slot.expected_format()) {
        return Check::Failing(format!("holds {}", drive.format().describe()));
    }
    match tokio::time::timeout(REMOTE_PROBE_TIMEOUT, drive.healing_mark()).await {
        Ok(Ok(healing)) => {
            slot.set_healing(healing);
            slot.replace(drive);
            Check::Healthy
        }
        Ok(Err(err)) => Check::Failing(err.to_string()),
        Err(_) => Check::Failing("no answer".to_string()),
    }
}

enum Check {
    Healthy,
    Replaced,
    Failing(String),
}

impl Check {
    fn is_healthy(&self) -> bool {
        matches!(self, Check::Healthy | Check::Replaced)
    }
}

/// Ends a drive's read-only state once it can be written again: a local drive is probed with
/// a small durable write; a remote one is given another chance after [`READ_ONLY_RECHECK`].
/// Returns whether the drive became writable.
async fn check_read_only(slot: &crate::slot::DriveSlot) -> bool {
    let Some(since) = slot.read_only_since() else {
        return false;
    };
    let writable = match &slot.location {
        DriveLocation::Local { path, .. } => LocalDrive::probe_writable(path).await.is_ok(),
        DriveLocation::Remote(_) => since.elapsed() >= READ_ONLY_RECHECK,
    };
    if writable {
        slot.set_read_only(false);
    }
    writable
}

/// Probes a local drive: its format record must still be there (a wiped drive keeps working
/// on unlinked files until this notices), else an empty directory is formatted in its place.
async fn check_local(slot: &crate::slot::DriveSlot, path: &Path) -> Check {
    match LocalDrive::read_format(path).await {
        Ok(Some(format)) if format.same_position(slot.expected_format()) => {
            // The metadata store must answer too: one that latched after an I/O failure is
            // being reopened, and the drive stays out until it is back.
            if slot.current().format().drive_id == format.drive_id
                && let Err(err) = slot.current().meta_get(Table::Buckets, PROBE_KEY).await
            {
                return Check::Failing(err.to_string());
            }
            if slot.current().format().drive_id != format.drive_id || slot.current().info().await.is_err() {
                // Opened as a placeholder at start, or formatted anew by someone else: reopen.
                return match LocalDrive::open(path.to_path_buf(), slot.expected_format()).await {
                    Ok(drive) => {
                        slot.replace(drive);
                        Check::Healthy
                    }
                    Err(err) => Check::Failing(err.to_string()),
                };
            }
            Check::Healthy
        }
        Ok(Some(format)) => Check::Failing(format!("holds {}", format.describe())),
        Ok(None) => match LocalDrive::open(path.to_path_buf(), slot.expected_format()).await {
            Ok(drive) => {
                tracing::warn!(
                    drive = slot.endpoint(),
                    "drive was replaced or wiped; formatted it into its position"
                );
                slot.replace(drive);
                Check::Replaced
            }
            Err(err) => Check::Failing(err.to_string()),
        },
        Err(err) => Check::Failing(err.to_string()),
    }
}

/// Key read by the monitor's metadata probe (no bucket has this name).
const PROBE_KEY: &[u8] = b"\0monitor-probe";

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The layer's background state.
#[derive(Debug)]
pub struct Background {
    heal_tx: mpsc::Sender<HealHint>,
    heal_rx: std::sync::Mutex<Option<mpsc::Receiver<HealHint>>>,
    heal_sequence: std::sync::Mutex<HealSequenceStatus>,
    scanner: std::sync::Mutex<ScannerStatus>,
    /// A drive came back (or turned writable again) after missing writes, or a heal hint was
    /// dropped (queue full), and the full heal sequence that repairs them has not started yet.
    returned_pending: AtomicBool,
    /// Hints the heal worker has taken and not finished.
    hints_in_flight: AtomicUsize,
}

impl Background {
    /// Fresh state with an empty heal queue.
    pub fn new() -> Self {
        let (heal_tx, heal_rx) = mpsc::channel(HEAL_QUEUE_CAPACITY);
        Background {
            heal_tx,
            heal_rx: std::sync::Mutex::new(Some(heal_rx)),
            heal_sequence: std::sync::Mutex::new(HealSequenceStatus::default()),
            scanner: std::sync::Mutex::new(ScannerStatus::default()),
            returned_pending: AtomicBool::new(false),
            hints_in_flight: AtomicUsize::new(0),
        }
    }

    /// A sender for heal hints (used by read streams).
    pub fn heal_sender(&self) -> mpsc::Sender<HealHint> {
        self.heal_tx.clone()
    }

    fn take_heal_receiver(&self) -> Option<mpsc::Receiver<HealHint>> {
        lock(&self.heal_rx).take()
    }
}
