//! Running a benchmark: prefill, the timed workers, and cleanup.
//!
//! Invariants:
//! - Every loop is bounded: workers stop at the deadline (warm-up + duration) and each request
//!   is bounded by the client's timeouts; the whole measuring phase is additionally cut off at
//!   the deadline plus [`STRAGGLER_GRACE`], prefill by its object count, cleanup by
//!   [`CLEANUP_TIMEOUT`]. The tool always stops by itself.
//! - Operations that start before the warm-up end are not recorded (neither success nor
//!   error); operations that start before the deadline are recorded whole.
//! - Bodies are slices of one pre-generated random buffer: no per-operation generation or copy.
//! - Cleanup deletes only keys under this run's own prefix, and the bucket only if this run
//!   created it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use strata_client::{Client, ClientError, CompletedPart};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Mode;
use crate::report::WorkerStats;
use crate::workload::{FastRng, MIX_WEIGHT_TOTAL, OpKind, mix_pick, object_key, owned_count, prefilled_key};

/// How long past the deadline in-flight operations may take before they are abandoned.
pub const STRAGGLER_GRACE: Duration = Duration::from_secs(70);
/// Upper bound on cleanup.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(300);
/// Keys per ListObjectsV2 page (S3's maximum).
pub const LIST_PAGE_KEYS_MAX: u32 = 1000;

/// Everything the workers share.
pub struct Plan {
    /// What to run.
    pub mode: Mode,
    /// The signed client (shares one connection pool).
    pub client: Client,
    /// Target bucket.
    pub bucket: String,
    /// All keys of this run start with `run_prefix/`.
    pub run_prefix: String,
    /// Random bytes; bodies are slices of it.
    pub buffer: Bytes,
    /// Object size (put, prefill, mixed puts).
    pub size_bytes: u64,
    /// Part size (multipart).
    pub part_size_bytes: u64,
    /// Parts per object (multipart).
    pub n_parts: u32,
    /// Concurrent workers.
    pub n_workers: u32,
    /// Objects prefilled (get, stat, delete, mixed, list).
    pub n_objects: u64,
    /// Extra headers of every PutObject (the `--checksum` header).
    pub put_headers: http::HeaderMap,
}

impl Plan {
    fn body(&self, size_bytes: u64) -> Bytes {
        // The buffer is allocated at the largest size any body needs.
        let end = usize::try_from(size_bytes)
            .unwrap_or(usize::MAX)
            .min(self.buffer.len());
        self.buffer.slice(..end)
    }
}

/// What the measuring phase produced.
pub struct Measured {
    /// Merged stats of all workers.
    pub stats: WorkerStats,
    /// Why some worker stopped before the deadline, if one did.
    pub stopped_early: Option<String>,
}

/// PUTs the prefill keeps in flight at least (more when there are more workers).
const PREFILL_IN_FLIGHT_MIN: u32 = 32;

/// Creates the prefilled objects (each worker's own keys), several PUTs in flight per worker.
pub async fn prefill(plan: &Arc<Plan>) -> anyhow::Result<()> {
    // The prefill is not measured: keep enough PUTs in flight for the server's group commit to
    // batch them, however few workers will measure (1M keys, 4 workers, 4 in flight: ~8 min).
    let n_lanes = u64::from(PREFILL_IN_FLIGHT_MIN.div_ceil(plan.n_workers.max(1)));
    let mut tasks = JoinSet::new();
    for worker_idx in 0..plan.n_workers {
        for lane in 0..n_lanes {
            let plan = Arc::clone(plan);
            tasks.spawn(async move {
                let owned = owned_count(plan.n_objects, worker_idx, plan.n_workers);
                for seq in (lane..owned).step_by(usize::try_from(n_lanes).unwrap_or(1)) {
                    let key = object_key(&plan.run_prefix, worker_idx, seq);
                    plan.client
                        .put_object(&plan.bucket, &key, plan.body(plan.size_bytes))
                        .await
                        .with_context(|| format!("prefill put {key}"))?;
                }
                anyhow::Ok(())
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        // On the first failure the JoinSet is dropped, which aborts the other tasks.
        joined.context("prefill worker")??;
    }
    Ok(())
}

/// Runs the workers for warm-up + duration and merges what they measured.
pub async fn measure(plan: &Arc<Plan>, warmup: Duration, duration: Duration) -> Measured {
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let mut tasks = JoinSet::new();
    for worker_idx in 0..plan.n_workers {
        let plan = Arc::clone(plan);
        tasks.spawn(async move {
            let mut worker = Worker::new(plan, worker_idx, measure_from);
            worker.run(deadline).await;
            (worker.stats, worker.stopped_early)
        });
    }
    let mut merged = Measured {
        stats: WorkerStats::default(),
        stopped_early: None,
    };
    let cutoff = deadline + STRAGGLER_GRACE;
    loop {
        match tokio::time::timeout_at(cutoff, tasks.join_next()).await {
            Ok(Some(Ok((stats, stopped_early)))) => {
                merged.stats.merge(&stats);
                merged.stopped_early = merged.stopped_early.or(stopped_early);
            }
            Ok(Some(Err(join_error))) => {
                merged
                    .stats
                    .error_samples
                    .push(format!("worker failed: {join_error}"));
            }
            Ok(None) => break,
            Err(_) => {
                let n_stuck = tasks.len();
                tasks.abort_all();
                merged.stopped_early = Some(format!(
                    "{n_stuck} workers still busy {} s after the deadline were abandoned (their results are lost)",
                    STRAGGLER_GRACE.as_secs()
                ));
                break;
            }
        }
    }
    merged
}

struct Worker {
    plan: Arc<Plan>,
    worker_idx: u32,
    measure_from: Instant,
    rng: FastRng,
    stats: WorkerStats,
    stopped_early: Option<String>,
    /// Next new sequence number for this worker's keys.
    next_seq: u64,
    /// Sequences of this worker's keys that exist (delete, mixed).
    live_seqs: Vec<u64>,
    /// Continuation of the current list walk.
    list_token: Option<String>,
}

/// Outcome of one operation: what it moved, or why it failed.
type OpResult = Result<(u64, u64), ClientError>;

impl Worker {
    fn new(plan: Arc<Plan>, worker_idx: u32, measure_from: Instant) -> Self {
        let owned = owned_count(plan.n_objects, worker_idx, plan.n_workers);
        let live_seqs = if matches!(plan.mode, Mode::Delete | Mode::Mixed) {
            // Delete pops from the end: reverse so keys go in ascending order.
            (0..owned).rev().collect()
        } else {
            Vec::new()
        };
        let next_seq = if plan.mode == Mode::Put || plan.mode == Mode::Multipart {
            0
        } else {
            owned
        };
        Self {
            rng: FastRng::from_clock(u64::from(worker_idx)),
            plan,
            worker_idx,
            measure_from,
            stats: WorkerStats::default(),
            stopped_early: None,
            next_seq,
            live_seqs,
            list_token: None,
        }
    }

    async fn run(&mut self, deadline: Instant) {
        loop {
            let started = Instant::now();
            if started >= deadline {
                return;
            }
            let Some(kind) = self.choose() else {
                self.stopped_early = Some(format!("worker {} ran out of objects to delete", self.worker_idx));
                return;
            };
            let result = self.execute(kind).await;
            let ended = Instant::now();
            if started < self.measure_from {
                continue;
            }
            match result {
                Ok((size_bytes, n_keys)) => self.stats.success(kind, ended - started, size_bytes, n_keys),
                Err(err) => self.stats.failure(kind, || err.to_string()),
            }
            self.stats.ended_at(ended - self.measure_from);
        }
    }

    /// The next operation, or `None` when a delete run has nothing left.
    fn choose(&mut self) -> Option<OpKind> {
        Some(match self.plan.mode {
            Mode::Put => OpKind::Put,
            Mode::Get => OpKind::Get,
            Mode::Stat => OpKind::Stat,
            Mode::List => OpKind::List,
            Mode::Multipart => OpKind::Multipart,
            Mode::Delete => {
                if self.live_seqs.is_empty() {
                    return None;
                }
                OpKind::Delete
            }
            Mode::Mixed => {
                let kind = mix_pick(self.rng.below(u64::from(MIX_WEIGHT_TOTAL)) as u32);
                // With no key of its own left, a worker writes one instead of reading.
                if kind != OpKind::Put && self.live_seqs.is_empty() {
                    OpKind::Put
                } else {
                    kind
                }
            }
        })
    }

    /// A key to read: any prefilled key (get/stat modes) or one of this worker's live keys.
    fn read_key(&mut self) -> String {
        let plan = &self.plan;
        if plan.mode == Mode::Mixed {
            let pick = self.rng.below(self.live_seqs.len() as u64) as usize;
            let seq = self.live_seqs.get(pick).copied().unwrap_or(0);
            object_key(&plan.run_prefix, self.worker_idx, seq)
        } else {
            prefilled_key(&plan.run_prefix, self.rng.below(plan.n_objects), plan.n_workers)
        }
    }

    async fn execute(&mut self, kind: OpKind) -> OpResult {
        let plan = Arc::clone(&self.plan);
        let client = &plan.client;
        let bucket = plan.bucket.as_str();
        match kind {
            OpKind::Put => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let key = object_key(&plan.run_prefix, self.worker_idx, seq);
                client
                    .put_object_with(bucket, &key, plan.body(plan.size_bytes), plan.put_headers.clone())
                    .await?;
                if plan.mode == Mode::Mixed {
                    self.live_seqs.push(seq);
                }
                Ok((plan.size_bytes, 0))
            }
            OpKind::Get => {
                let key = self.read_key();
                let (_status, size_bytes) = client.get_object(bucket, &key).await?;
                Ok((size_bytes, 0))
            }
            OpKind::Stat => {
                let key = self.read_key();
                client.head_object(bucket, &key).await?;
                Ok((0, 0))
            }
            OpKind::Delete => {
                let seq = if plan.mode == Mode::Mixed {
                    let pick = self.rng.below(self.live_seqs.len() as u64) as usize;
                    self.live_seqs.swap_remove(pick)
                } else {
                    self.live_seqs.pop().unwrap_or(0)
                };
                client
                    .delete_object(bucket, &object_key(&plan.run_prefix, self.worker_idx, seq))
                    .await?;
                Ok((0, 0))
            }
            OpKind::List => {
                let prefix = format!("{}/", plan.run_prefix);
                let page = client
                    .list_objects_v2(bucket, &prefix, self.list_token.as_deref(), LIST_PAGE_KEYS_MAX)
                    .await;
                let page = match page {
                    Ok(page) => page,
                    Err(err) => {
                        self.list_token = None;
                        return Err(err);
                    }
                };
                self.list_token = page.next_continuation_token.filter(|_| page.is_truncated);
                Ok((0, page.key_count))
            }
            OpKind::Multipart => {
                let key = object_key(&plan.run_prefix, self.worker_idx, self.next_seq);
                self.next_seq += 1;
                multipart_upload(&plan, &key).await
            }
        }
    }
}

async fn multipart_upload(plan: &Plan, key: &str) -> OpResult {
    let client = &plan.client;
    let upload_id = client.create_multipart_upload(&plan.bucket, key).await?;
    let mut parts = Vec::with_capacity(usize::try_from(plan.n_parts).unwrap_or(0));
    let mut result = Ok(());
    for part_number in 1..=plan.n_parts {
        match client
            .upload_part(
                &plan.bucket,
                key,
                &upload_id,
                part_number,
                plan.body(plan.part_size_bytes),
            )
            .await
        {
            Ok(etag) => parts.push(CompletedPart { part_number, etag }),
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    if let Err(err) = result {
        // Best effort: an abandoned upload only costs space until cleanup of the bucket.
        let _ = client.abort_multipart_upload(&plan.bucket, key, &upload_id).await;
        return Err(err);
    }
    if let Err(err) = client
        .complete_multipart_upload(&plan.bucket, key, &upload_id, &parts)
        .await
    {
        let _ = client.abort_multipart_upload(&plan.bucket, key, &upload_id).await;
        return Err(err);
    }
    Ok((plan.part_size_bytes * u64::from(plan.n_parts), 0))
}

/// Deletes every key under the run prefix (`n_workers` deletes in flight), bounded by
/// [`CLEANUP_TIMEOUT`]. Returns the number of keys deleted.
pub async fn cleanup(plan: &Arc<Plan>) -> anyhow::Result<u64> {
    tokio::time::timeout(CLEANUP_TIMEOUT, delete_prefix(plan))
        .await
        .map_err(|_| anyhow::anyhow!("cleanup did not finish within {} s", CLEANUP_TIMEOUT.as_secs()))?
}

async fn delete_prefix(plan: &Arc<Plan>) -> anyhow::Result<u64> {
    let prefix = format!("{}/", plan.run_prefix);
    let mut n_deleted = 0u64;
    loop {
        // Always list from the start: the previous page's keys are gone by now.
        let page = plan
            .client
            .list_objects_v2(&plan.bucket, &prefix, None, LIST_PAGE_KEYS_MAX)
            .await
            .context("cleanup list")?;
        if page.keys.is_empty() {
            return Ok(n_deleted);
        }
        let keys = Arc::new(page.keys);
        let mut tasks = JoinSet::new();
        for worker_idx in 0..plan.n_workers.max(1) {
            let plan = Arc::clone(plan);
            let keys = Arc::clone(&keys);
            tasks.spawn(async move {
                let step = usize::try_from(plan.n_workers.max(1)).unwrap_or(1);
                let first = usize::try_from(worker_idx).unwrap_or(0);
                for key in keys.iter().skip(first).step_by(step) {
                    plan.client
                        .delete_object(&plan.bucket, key)
                        .await
                        .with_context(|| format!("cleanup delete {key}"))?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.context("cleanup worker")??;
        }
        n_deleted += keys.len() as u64;
    }
}
