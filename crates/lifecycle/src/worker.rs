//! The lifecycle job: applies every bucket's rules to its versions and uploads.
//!
//! A *cycle* walks the buckets in name order and, for each bucket with a lifecycle
//! configuration, its versions in listing order (pages of [`PAGE_VERSIONS`], metadata only: no
//! data is read), evaluating each key's versions together ([`crate::evaluate`]) and applying
//! what is due at a bounded rate; then its multipart uploads, aborting the stale ones. A cycle
//! starts when the last one finished [`LifecycleSettings::interval`] ago. Its progress (the
//! bucket and the last key done) is the system record `lifecycle/progress`, saved after every
//! page, so a restart resumes where the last page ended. In a cluster one node runs the cycle
//! (the `lifecycle` job lock); another takes over when it stops.
//!
//! Writes whose new version is already due (a rule with a past `Date`, say) are queued by the
//! front door ([`Lifecycle::enqueue`]) and evaluated at once by the node that took them.
//!
//! Every action is conditional and idempotent: a delete names the modification time the
//! evaluation saw ([`strata_object::DeleteOptions::if_mod_time`]), checked under the key's
//! lock, so a version written after the evaluation is never the one removed, and a version
//! already removed (by another node, or before a restart) is simply skipped. Object lock is
//! enforced by the object layer as for any delete: a protected version is kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_object::{
    DeleteOptions, ListUploadsOptions, ListVersionsOptions, ObjectError, ObjectInfo, ObjectLayer,
    TransitionOutcome,
};
use tokio::sync::{Notify, mpsc};
use tokio::time::MissedTickBehavior;

use crate::config::{Candidate, LifecycleConfig};
use crate::eval::{Action, DayLength, VersionFacts, acts_on_versions, evaluate, upload_due};

/// The bucket configuration blob holding a bucket's rules (JSON of [`LifecycleConfig`]).
pub const BUCKET_LIFECYCLE_CONFIG: &str = "lifecycle";
/// The system namespace of the job's records.
const NAMESPACE: &str = "lifecycle";
/// The record of the cycle's progress.
const PROGRESS_RECORD: &str = "progress";
/// The job lock's name.
const JOB: &str = "lifecycle";
/// Versions listed (and progress saved) per page.
pub const PAGE_VERSIONS: usize = 1000;
/// Keys waiting for evaluation at most; past it a write's key waits for the next cycle.
const QUEUE_KEYS_MAX: usize = 10_000;
/// How often an idle node checks whether a cycle is due, at most.
const POLL_MAX: Duration = Duration::from_secs(30);

/// How the job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// A lifecycle day (86,400 s; shorter only in tests).
    pub day: DayLength,
    /// Time from the end of one cycle to the start of the next.
    pub interval: Duration,
    /// Actions (deletes, aborts) per second at most.
    pub actions_per_sec: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            day: DayLength::default(),
            interval: Duration::from_secs(3600),
            actions_per_sec: 1000,
        }
    }
}

/// What the job did since this process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LifecycleStats {
    /// Versions evaluated.
    pub versions_scanned: u64,
    /// Current versions expired (deleted, or hidden behind a delete marker).
    pub current_expired: u64,
    /// Noncurrent versions removed.
    pub noncurrent_removed: u64,
    /// Expired delete markers removed.
    pub delete_markers_removed: u64,
    /// Incomplete multipart uploads aborted.
    pub uploads_aborted: u64,
    /// Versions due for removal but kept by object lock.
    pub kept_by_lock: u64,
    /// Versions moved to another storage class.
    pub transitions: u64,
    /// Stored bytes those moves copied.
    pub transitioned_bytes: u64,
    /// Actions that failed (retried by the next cycle).
    pub failures: u64,
    /// Cycles completed by this node.
    pub cycles: u64,
}

#[derive(Debug, Default)]
struct Counters {
    versions_scanned: AtomicU64,
    current_expired: AtomicU64,
    noncurrent_removed: AtomicU64,
    delete_markers_removed: AtomicU64,
    uploads_aborted: AtomicU64,
    kept_by_lock: AtomicU64,
    transitions: AtomicU64,
    transitioned_bytes: AtomicU64,
    failures: AtomicU64,
    cycles: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The persisted progress of the deployment's cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// When the cycle in progress (or the last one) started, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix: Option<u64>,
    /// When the last cycle finished, Unix seconds (none while one runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix: Option<u64>,
    /// The bucket being walked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The last key of that bucket whose versions were all evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_marker: Option<String>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One node's lifecycle job.
#[derive(Debug)]
pub struct Lifecycle {
    layer: Arc<ObjectLayer>,
    settings: LifecycleSettings,
    counters: Counters,
    queue: mpsc::Sender<(String, String)>,
    wake: Notify,
    /// Held by the cycle running on this node (the job lock alone does not exclude two
    /// cycles of one node).
    running: tokio::sync::Mutex<()>,
}

impl Lifecycle {
    /// Starts the node's job: the cycle runner and the queue of keys due at write time.
    pub fn start(layer: Arc<ObjectLayer>, settings: LifecycleSettings) -> Arc<Lifecycle> {
        let (tx, mut rx) = mpsc::channel::<(String, String)>(QUEUE_KEYS_MAX);
        let lifecycle = Arc::new(Lifecycle {
            layer,
            settings,
            counters: Counters::default(),
            queue: tx,
            wake: Notify::new(),
            running: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&lifecycle);
        tokio::spawn(async move {
            let poll = (settings.interval / 2).clamp(Duration::from_millis(200), POLL_MAX);
            loop {
                let Some(this) = weak.upgrade() else { return };
                if let Err(err) = this.run_due_cycle().await {
                    tracing::warn!(%err, "lifecycle cycle paused; it resumes from its last saved page");
                }
                let notified = async { this.wake.notified().await };
                let _ = tokio::time::timeout(poll, notified).await;
            }
        });
        let weak = Arc::downgrade(&lifecycle);
        tokio::spawn(async move {
            while let Some((bucket, key)) = rx.recv().await {
                let Some(this) = weak.upgrade() else { return };
                if let Err(err) = this.evaluate_key(&bucket, &key).await {
                    tracing::debug!(bucket, key, %err, "lifecycle evaluation of a new version failed; the next cycle retries");
                }
            }
        });
        lifecycle
    }

    /// The job's settings.
    pub fn settings(&self) -> LifecycleSettings {
        self.settings
    }

    /// Queues `bucket/key` for evaluation now (its new version is already due). A full queue
    /// drops it: the next cycle finds it.
    pub fn enqueue(&self, bucket: &str, key: &str) {
        let _ = self.queue.try_send((bucket.to_owned(), key.to_owned()));
    }

    /// Asks for a cycle now if one is due (a configuration was just put).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// What this node's job did since it started.
    pub fn stats(&self) -> LifecycleStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LifecycleStats {
            versions_scanned: get(&c.versions_scanned),
            current_expired: get(&c.current_expired),
            noncurrent_removed: get(&c.noncurrent_removed),
            delete_markers_removed: get(&c.delete_markers_removed),
            uploads_aborted: get(&c.uploads_aborted),
            kept_by_lock: get(&c.kept_by_lock),
            transitions: get(&c.transitions),
            transitioned_bytes: get(&c.transitioned_bytes),
            failures: get(&c.failures),
            cycles: get(&c.cycles),
        }
    }

    /// The counters as metric families (`strata_lifecycle_*`, see `strata_obs::jobs`).
    pub fn metric_values(&self) -> Vec<(&'static str, &'static str, u64)> {
        let s = self.stats();
        let actions = "strata_lifecycle_actions_total";
        vec![
            (actions, "expire_current", s.current_expired),
            (actions, "remove_noncurrent", s.noncurrent_removed),
            (actions, "remove_delete_marker", s.delete_markers_removed),
            (actions, "abort_upload", s.uploads_aborted),
            (actions, "kept_by_lock", s.kept_by_lock),
            (actions, "transition", s.transitions),
            (
                "strata_lifecycle_transitioned_bytes_total",
                "",
                s.transitioned_bytes,
            ),
            ("strata_lifecycle_versions_scanned_total", "", s.versions_scanned),
            ("strata_lifecycle_failures_total", "", s.failures),
            ("strata_lifecycle_cycles_total", "", s.cycles),
        ]
    }

    /// The deployment's cycle progress (none before the first cycle).
    pub async fn progress(&self) -> Result<Option<Progress>, ObjectError> {
        let records = self.layer.list_system_records(NAMESPACE).await?;
        Ok(records
            .into_iter()
            .find(|(name, _)| name == PROGRESS_RECORD)
            .and_then(|(_, blob)| serde_json::from_slice(&blob).ok()))
    }

    async fn save(&self, progress: &Progress) -> Result<(), ObjectError> {
        let blob = serde_json::to_vec(progress).unwrap_or_default();
        self.layer
            .put_system_record(NAMESPACE, PROGRESS_RECORD, Bytes::from(blob))
            .await
    }

    fn cycle_due(&self, progress: Option<&Progress>) -> bool {
        match progress {
            None => true,
            Some(p) => match p.finished_unix {
                None => true,
                Some(finished) => unix_now().saturating_sub(finished) >= self.settings.interval.as_secs(),
            },
        }
    }

    /// Runs a cycle when one is due (or one was interrupted) and this node may lead it.
    pub async fn run_due_cycle(&self) -> Result<(), ObjectError> {
        if !self.cycle_due(self.progress().await?.as_ref()) {
            return Ok(());
        }
        let _running = self.running.lock().await;
        let Some(_lease) = self.layer.lead_job(JOB).await else {
            return Ok(());
        };
        // Read again under the lease: another node may have finished it meanwhile.
        let progress = self.progress().await?;
        if !self.cycle_due(progress.as_ref()) {
            return Ok(());
        }
        self.run_cycle(progress.unwrap_or_default()).await
    }

    /// Runs a cycle now, due or not (it resumes an interrupted one); false when another node
    /// leads the job.
    pub async fn run_now(&self) -> Result<bool, ObjectError> {
        let _running = self.running.lock().await;
        let Some(_lease) = self.layer.lead_job(JOB).await else {
            return Ok(false);
        };
        let progress = self.progress().await?;
        self.run_cycle(progress.unwrap_or_default()).await?;
        Ok(true)
    }

    /// One cycle from `progress` (a fresh one when the last finished).
    async fn run_cycle(&self, mut progress: Progress) -> Result<(), ObjectError> {
        if progress.finished_unix.is_some() || progress.started_unix.is_none() {
            progress = Progress {
                started_unix: Some(unix_now()),
                ..Progress::default()
            };
            self.save(&progress).await?;
        }
        let mut buckets: Vec<String> = self
            .layer
            .list_buckets()
            .await?
            .into_iter()
            .map(|b| b.name)
            .collect();
        buckets.sort();
        let mut pacer = self.pacer();
        for bucket in buckets {
            if progress.bucket.as_ref().is_some_and(|at| bucket < *at) {
                continue;
            }
            if progress.bucket.as_deref() != Some(bucket.as_str()) {
                progress.bucket = Some(bucket.clone());
                progress.key_marker = None;
            }
            // A bucket that fails (its configuration or listing unreadable now) is counted
            // and skipped: the others still get their cycle, and the next cycle retries it.
            if let Err(err) = self.run_bucket(&bucket, &mut progress, &mut pacer).await {
                bump(&self.counters.failures);
                tracing::warn!(bucket, %err, "lifecycle skipped a bucket this cycle");
            }
        }
        progress = Progress {
            started_unix: progress.started_unix,
            finished_unix: Some(unix_now()),
            ..Progress::default()
        };
        self.save(&progress).await?;
        bump(&self.counters.cycles);
        Ok(())
    }

    /// One bucket's part of a cycle.
    async fn run_bucket(
        &self,
        bucket: &str,
        progress: &mut Progress,
        pacer: &mut tokio::time::Interval,
    ) -> Result<(), ObjectError> {
        let Some(config) = self.config(bucket).await? else {
            return Ok(());
        };
        if acts_on_versions(&config) {
            self.walk_versions(bucket, config.clone(), progress, pacer)
                .await?;
        }
        if config.aborts_uploads() {
            self.abort_stale_uploads(bucket, &config, pacer).await?;
        }
        Ok(())
    }

    /// Paces actions to the configured rate.
    fn pacer(&self) -> tokio::time::Interval {
        let mut pacer = tokio::time::interval(Duration::from_secs_f64(
            1.0 / f64::from(self.settings.actions_per_sec.max(1)),
        ));
        pacer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        pacer
    }

    /// A bucket's rules; none when it has none, is gone, or they do not decode (logged).
    async fn config(&self, bucket: &str) -> Result<Option<LifecycleConfig>, ObjectError> {
        let blob = match self
            .layer
            .get_bucket_config(bucket, BUCKET_LIFECYCLE_CONFIG)
            .await
        {
            Ok(blob) => blob,
            Err(ObjectError::NoSuchBucket { .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(blob.and_then(|blob| match LifecycleConfig::from_blob(&blob) {
            Ok(config) => Some(config),
            Err(err) => {
                tracing::error!(bucket, %err, "stored lifecycle configuration does not decode; its rules are not applied");
                None
            }
        }))
    }

    /// Walks a bucket's versions from the progress marker, applying `config` (read again
    /// every page, so a changed or removed configuration applies within a page).
    async fn walk_versions(
        &self,
        bucket: &str,
        mut config: LifecycleConfig,
        progress: &mut Progress,
        pacer: &mut tokio::time::Interval,
    ) -> Result<(), ObjectError> {
        let (mut key_marker, mut version_marker) = (progress.key_marker.clone(), None);
        let mut pending: Vec<ObjectInfo> = Vec::new();
        loop {
            let opts = ListVersionsOptions {
                key_marker,
                version_id_marker: version_marker,
                max_keys: PAGE_VERSIONS,
                ..Default::default()
            };
            let page = match self.layer.list_object_versions(bucket, opts).await {
                Ok(page) => page,
                Err(ObjectError::NoSuchBucket { .. }) => return Ok(()),
                Err(err) => return Err(err),
            };
            self.counters
                .versions_scanned
                .fetch_add(page.versions.len() as u64, Ordering::Relaxed);
            for info in page.versions {
                if pending.first().is_some_and(|p| p.key != info.key) {
                    self.apply(bucket, &config, &pending, pacer).await;
                    progress.key_marker = pending.first().map(|p| p.key.clone());
                    pending.clear();
                }
                // A key continued on a new page after writes to it may repeat versions:
                // keep each once, newest first (the layer checks every action against the
                // versions as they are anyway).
                if pending.last().is_some_and(|p| {
                    p.mod_time <= info.mod_time || pending.iter().any(|q| q.version_id == info.version_id)
                }) {
                    continue;
                }
                pending.push(info);
            }
            if !page.is_truncated {
                break;
            }
            key_marker = page.next_key_marker;
            version_marker = page.next_version_id_marker;
            self.save(progress).await?;
            match self.config(bucket).await? {
                Some(fresh) if acts_on_versions(&fresh) => config = fresh,
                _ => return Ok(()),
            }
        }
        self.apply(bucket, &config, &pending, pacer).await;
        progress.key_marker = pending.first().map(|p| p.key.clone());
        Ok(())
    }

    async fn abort_stale_uploads(
        &self,
        bucket: &str,
        config: &LifecycleConfig,
        pacer: &mut tokio::time::Interval,
    ) -> Result<(), ObjectError> {
        let (mut key_marker, mut upload_marker) = (None, None);
        loop {
            let opts = ListUploadsOptions {
                key_marker,
                upload_id_marker: upload_marker,
                max_uploads: PAGE_VERSIONS,
                ..Default::default()
            };
            let page = match self.layer.list_multipart_uploads(bucket, opts).await {
                Ok(page) => page,
                Err(ObjectError::NoSuchBucket { .. }) => return Ok(()),
                Err(err) => return Err(err),
            };
            let now = SystemTime::now();
            for upload in page.uploads {
                if !upload_due(config, self.settings.day, &upload.key, upload.initiated, now) {
                    continue;
                }
                pacer.tick().await;
                match self
                    .layer
                    .abort_multipart_upload(bucket, &upload.key, &upload.upload_id)
                    .await
                {
                    Ok(()) => bump(&self.counters.uploads_aborted),
                    Err(ObjectError::NoSuchUpload { .. }) => {}
                    Err(err) => {
                        bump(&self.counters.failures);
                        tracing::warn!(bucket, key = %upload.key, %err, "lifecycle cannot abort an incomplete upload");
                    }
                }
            }
            if !page.is_truncated {
                return Ok(());
            }
            key_marker = page.next_key_marker;
            upload_marker = page.next_upload_id_marker;
        }
    }

    /// Evaluates one key now (a write queued it).
    async fn evaluate_key(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        let Some(config) = self.config(bucket).await? else {
            return Ok(());
        };
        let opts = ListVersionsOptions {
            prefix: key.to_owned(),
            max_keys: PAGE_VERSIONS,
            ..Default::default()
        };
        let page = self.layer.list_object_versions(bucket, opts).await?;
        // The key's versions come first (it is the shortest key with its prefix); when the
        // page ends inside them, leave the key to the cycle, which sees them all.
        if page.is_truncated && page.versions.last().is_some_and(|v| v.key == key) {
            return Ok(());
        }
        let versions: Vec<ObjectInfo> = page.versions.into_iter().filter(|v| v.key == key).collect();
        let mut pacer = self.pacer();
        self.apply(bucket, &config, &versions, &mut pacer).await;
        Ok(())
    }

    /// Evaluates one key's versions (all of them, newest first) and applies what is due.
    async fn apply(
        &self,
        bucket: &str,
        config: &LifecycleConfig,
        versions: &[ObjectInfo],
        pacer: &mut tokio::time::Interval,
    ) {
        let Some(first) = versions.first() else {
            return;
        };
        let empty = BTreeMap::new();
        let facts: Vec<VersionFacts<'_>> = versions
            .iter()
            .map(|v| VersionFacts {
                version_id: v.version_id.as_deref(),
                mod_time: v.mod_time,
                meta_stamp: v.meta_stamp,
                delete_marker: v.delete_marker,
                storage_class: v.metadata.storage_class.as_deref(),
                candidate: Candidate {
                    key: &v.key,
                    size: if v.delete_marker { 0 } else { v.size },
                    tags: if v.delete_marker { &empty } else { &v.metadata.tags },
                },
                locked: v.metadata.deletion_blocked(false).is_some(),
            })
            .collect();
        for action in evaluate(config, self.settings.day, &facts, SystemTime::now()) {
            pacer.tick().await;
            self.act(bucket, &first.key, action).await;
        }
    }

    async fn act(&self, bucket: &str, key: &str, action: Action) {
        let (opts, counter, rule_id) = match action {
            Action::ExpireCurrent { expect, rule_id } => (
                DeleteOptions {
                    expect: Some(expect),
                    ..Default::default()
                },
                &self.counters.current_expired,
                rule_id,
            ),
            Action::DeleteVersion {
                version_id,
                delete_marker,
                expect,
                rule_id,
            } => (
                DeleteOptions {
                    version_id: Some(version_id.unwrap_or_else(|| "null".to_owned())),
                    expect: Some(expect),
                    ..Default::default()
                },
                if delete_marker {
                    &self.counters.delete_markers_removed
                } else {
                    &self.counters.noncurrent_removed
                },
                rule_id,
            ),
            Action::Transition {
                version_id,
                mod_time,
                storage_class,
                rule_id,
            } => {
                self.transition(bucket, key, version_id, mod_time, &storage_class, &rule_id)
                    .await;
                return;
            }
        };
        match self.layer.delete_object(bucket, key, opts).await {
            Ok(_) => {
                bump(counter);
                tracing::debug!(bucket, key, rule = %rule_id, "lifecycle expired a version");
            }
            // Changed or removed since it was evaluated: nothing to do.
            Err(
                ObjectError::PreconditionFailed
                | ObjectError::NoSuchKey { .. }
                | ObjectError::NoSuchVersion { .. }
                | ObjectError::NoSuchBucket { .. },
            ) => {}
            Err(ObjectError::ObjectLocked { .. }) => bump(&self.counters.kept_by_lock),
            Err(err) => {
                bump(&self.counters.failures);
                tracing::warn!(bucket, key, rule = %rule_id, %err, "lifecycle cannot expire a version; the next cycle retries");
            }
        }
    }

    async fn transition(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
        mod_time: SystemTime,
        storage_class: &str,
        rule_id: &str,
    ) {
        let version = version_id.unwrap_or_else(|| "null".to_owned());
        match self
            .layer
            .transition_version(bucket, key, Some(&version), mod_time, storage_class)
            .await
        {
            Ok(TransitionOutcome::Moved { bytes }) => {
                bump(&self.counters.transitions);
                self.counters
                    .transitioned_bytes
                    .fetch_add(bytes, Ordering::Relaxed);
                tracing::debug!(bucket, key, rule = %rule_id, storage_class, "lifecycle moved a version");
            }
            Ok(TransitionOutcome::Reclassified) => bump(&self.counters.transitions),
            Ok(TransitionOutcome::Unchanged)
            | Err(
                ObjectError::PreconditionFailed
                | ObjectError::NoSuchKey { .. }
                | ObjectError::NoSuchVersion { .. }
                | ObjectError::NoSuchBucket { .. },
            ) => {}
            Err(err) => {
                bump(&self.counters.failures);
                tracing::warn!(bucket, key, rule = %rule_id, storage_class, %err, "lifecycle cannot move a version; the next cycle retries");
            }
        }
    }
}
