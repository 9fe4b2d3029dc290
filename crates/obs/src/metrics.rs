//! The Prometheus metrics: request metrics updated on every request ([`Metrics::observe`]),
//! histograms fed by the drive and object-layer hooks, and the state read from the object layer
//! at scrape time ([`Metrics::render`]).
//!
//! Two scopes: *node* (this process: requests, drives, sets, healing, scanner, metadata commits,
//! erasure coding, audit targets, process) and *cluster* (the deployment: the node families plus
//! capacity totals and objects/bytes per bucket). In distributed mode the cluster scope adds the
//! peers' node families (gathered by the caller and passed to [`Metrics::render`] as
//! `peer_families`, each labelled with its `server`); single-node passes none.
//!
//! Invariants: names follow Prometheus conventions (`strata_` prefix, base units, `_total`
//! for counters) and every family has a HELP line; label values come from bounded sets (API
//! names, status codes, S3 error codes, drive endpoints, bucket names); scrape-time state is
//! built in a fresh registry per scrape, so a drive or bucket that went away leaves no stale
//! series and no series is ever emitted twice.

use std::sync::Arc;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use strata_object::ObjectLayer;

use crate::audit::AuditLog;
use crate::error::ObsError;
use crate::process;
use crate::usage::UsageCache;

/// Latency buckets of requests and time to first byte, in seconds.
const REQUEST_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of metadata commit latency, in seconds.
const COMMIT_SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Buckets of caller batches per group-committed transaction.
const COMMIT_BATCHES_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Buckets of erasure encode/decode time per block, in seconds.
const ERASURE_SECONDS_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
];

/// Which endpoint is being scraped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `/metrics/node`: this process.
    Node,
    /// `/metrics/cluster`: the deployment.
    Cluster,
}

/// The outcome of one request, for [`Metrics::observe`].
#[derive(Clone, Debug)]
pub struct RequestOutcome<'a> {
    /// API name.
    pub api: &'a str,
    /// HTTP status.
    pub status: u16,
    /// S3 error code when the request failed.
    pub error_code: Option<&'a str>,
    /// Body bytes received.
    pub rx_bytes: u64,
    /// Body bytes sent.
    pub tx_bytes: u64,
    /// Until the first body byte (or the head, for an empty body) was ready.
    pub ttfb: Duration,
    /// Until the response was complete.
    pub duration: Duration,
    /// Whether the request was a GET (only GETs feed the time-to-first-byte histogram).
    pub is_get: bool,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    ttfb: HistogramVec,
    rx_bytes: IntCounterVec,
    tx_bytes: IntCounterVec,
    inflight: IntGauge,
    commit_seconds: Histogram,
    commit_batches: Histogram,
    erasure_seconds: HistogramVec,
    erasure_bytes: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn reg<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> Result<C, ObsError> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn hist(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(buckets.to_vec())
}

impl Metrics {
    /// A registry with every request-path family registered (and empty).
    pub fn new() -> Result<Metrics, ObsError> {
        let r = Registry::new();
        Ok(Metrics {
            requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "strata_s3_requests_total",
                        "S3 and admin requests by API name and HTTP status code.",
                    ),
                    &["api", "status"],
                )?,
            )?,
            errors: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "strata_s3_errors_total",
                        "Failed requests by API name and S3 error code.",
                    ),
                    &["api", "code"],
                )?,
            )?,
            duration: reg(
                &r,
                HistogramVec::new(
                    hist(
                        "strata_s3_request_duration_seconds",
                        "Time from request arrival to the end of the response body, by API name.",
                        REQUEST_SECONDS_BUCKETS,
                    ),
                    &["api"],
                )?,
            )?,
            ttfb: reg(
                &r,
                HistogramVec::new(
                    hist(
                        "strata_s3_ttfb_seconds",
                        "Time from GET request arrival to the first response body byte, by API name.",
                        REQUEST_SECONDS_BUCKETS,
                    ),
                    &["api"],
                )?,
            )?,
            rx_bytes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "strata_s3_received_bytes_total",
                        "Request body bytes received, by API name.",
                    ),
                    &["api"],
                )?,
            )?,
            tx_bytes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "strata_s3_sent_bytes_total",
                        "Response body bytes sent, by API name.",
                    ),
                    &["api"],
                )?,
            )?,
            inflight: reg(
                &r,
                IntGauge::new("strata_s3_requests_inflight", "Requests being served now.")?,
            )?,
            commit_seconds: reg(
                &r,
                Histogram::with_opts(hist(
                    "strata_drive_metadata_commit_seconds",
                    "Duration of durable metadata transactions (group commits), all drives.",
                    COMMIT_SECONDS_BUCKETS,
                ))?,
            )?,
            commit_batches: reg(
                &r,
                Histogram::with_opts(hist(
                    "strata_drive_metadata_commit_batches",
                    "Caller batches sharing one durable metadata transaction (group-commit size).",
                    COMMIT_BATCHES_BUCKETS,
                ))?,
            )?,
            erasure_seconds: reg(
                &r,
                HistogramVec::new(
                    hist(
                        "strata_erasure_block_seconds",
                        "Time to erasure-encode or verify-and-decode one block, by operation.",
                        ERASURE_SECONDS_BUCKETS,
                    ),
                    &["op"],
                )?,
            )?,
            erasure_bytes: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "strata_erasure_bytes_total",
                        "Block bytes erasure-encoded or decoded, by operation.",
                    ),
                    &["op"],
                )?,
            )?,
            registry: r,
        })
    }

    /// Counts a request as started; the returned guard counts it as finished when dropped.
    pub fn start_request(self: &Arc<Self>) -> InflightGuard {
        self.inflight.inc();
        InflightGuard {
            metrics: Arc::clone(self),
        }
    }

    /// Records a finished request.
    pub fn observe(&self, o: &RequestOutcome<'_>) {
        let status = o.status.to_string();
        self.requests.with_label_values(&[o.api, status.as_str()]).inc();
        if let Some(code) = o.error_code {
            self.errors.with_label_values(&[o.api, code]).inc();
        }
        self.duration
            .with_label_values(&[o.api])
            .observe(o.duration.as_secs_f64());
        if o.is_get {
            self.ttfb
                .with_label_values(&[o.api])
                .observe(o.ttfb.as_secs_f64());
        }
        if o.rx_bytes > 0 {
            self.rx_bytes.with_label_values(&[o.api]).inc_by(o.rx_bytes);
        }
        if o.tx_bytes > 0 {
            self.tx_bytes.with_label_values(&[o.api]).inc_by(o.tx_bytes);
        }
    }

    /// Installs the drive and object-layer hooks feeding this registry (once per process; a
    /// second call leaves the first hooks in place and returns `false`).
    pub fn install_hooks(self: &Arc<Self>) -> bool {
        let drive = strata_drive::metrics::set_commit_observer(Box::new(Hooks(Arc::clone(self))));
        let object = strata_object::metrics::set_erasure_observer(Box::new(Hooks(Arc::clone(self))));
        drive && object
    }

    /// The text exposition of `scope`. `peer_families` are other nodes' families (distributed
    /// mode, cluster scope); single-node passes an empty vector.
    pub async fn render(
        &self,
        scope: Scope,
        layer: &ObjectLayer,
        audit: Option<&AuditLog>,
        usage: Option<&UsageCache>,
        peer_families: Vec<MetricFamily>,
    ) -> Result<String, ObsError> {
        let mut families = self.registry.gather();
        let state = Registry::new();
        register_node_state(&state, layer, audit).await?;
        process::register(&state)?;
        crate::connections::register(&state)?;
        crate::jobs::register(&state)?;
        if scope == Scope::Cluster {
            register_cluster_state(&state, layer, usage).await?;
        }
        families.extend(state.gather());
        families.extend(peer_families);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InflightGuard {
    metrics: Arc<Metrics>,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.metrics.inflight.dec();
    }
}

struct Hooks(Arc<Metrics>);

impl strata_drive::metrics::CommitObserver for Hooks {
    fn transaction_committed(&self, n_batches: usize, latency: Duration) {
        self.0.commit_seconds.observe(latency.as_secs_f64());
        self.0.commit_batches.observe(n_batches as f64);
    }
}

impl strata_object::metrics::ErasureObserver for Hooks {
    fn block_done(&self, op: strata_object::metrics::ErasureOp, block_bytes: usize, elapsed: Duration) {
        let op = match op {
            strata_object::metrics::ErasureOp::Encode => "encode",
            strata_object::metrics::ErasureOp::Decode => "decode",
        };
        self.0
            .erasure_seconds
            .with_label_values(&[op])
            .observe(elapsed.as_secs_f64());
        self.0
            .erasure_bytes
            .with_label_values(&[op])
            .inc_by(u64::try_from(block_bytes).unwrap_or(u64::MAX));
    }
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::GaugeVec, ObsError> {
    reg(r, prometheus::GaugeVec::new(Opts::new(name, help), labels)?)
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, ObsError> {
    reg(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn gauge(r: &Registry, name: &str, help: &str, value: f64) -> Result<(), ObsError> {
    reg(r, prometheus::Gauge::new(name, help)?)?.set(value);
    Ok(())
}

fn counter(r: &Registry, name: &str, help: &str, value: u64) -> Result<(), ObsError> {
    reg(r, IntCounter::new(name, help)?)?.inc_by(value);
    Ok(())
}

async fn register_node_state(
    r: &Registry,
    layer: &ObjectLayer,
    audit: Option<&AuditLog>,
) -> Result<(), ObsError> {
    const DRIVE_LABELS: &[&str] = &["drive", "pool", "set"];
    let online = gauge_vec(
        r,
        "strata_drive_online",
        "1 when the drive is online, 0 when offline.",
        DRIVE_LABELS,
    )?;
    let healing = gauge_vec(
        r,
        "strata_drive_healing",
        "1 while a replaced drive is being healed.",
        DRIVE_LABELS,
    )?;
    let io_errors = counter_vec(
        r,
        "strata_drive_io_errors_total",
        "I/O errors seen on the drive since start.",
        DRIVE_LABELS,
    )?;
    let total = gauge_vec(
        r,
        "strata_drive_total_bytes",
        "Size of the filesystem holding the drive.",
        DRIVE_LABELS,
    )?;
    let free = gauge_vec(
        r,
        "strata_drive_free_bytes",
        "Bytes available on the drive.",
        DRIVE_LABELS,
    )?;
    let used = gauge_vec(
        r,
        "strata_drive_used_bytes",
        "Bytes used on the drive's filesystem.",
        DRIVE_LABELS,
    )?;
    let full = gauge_vec(
        r,
        "strata_drive_full",
        "1 when the drive refused its last write for lack of space (reads and deletes go on).",
        DRIVE_LABELS,
    )?;
    let read_only = gauge_vec(
        r,
        "strata_drive_read_only",
        "1 while the drive's filesystem is read-only (reads served, writes skipped).",
        DRIVE_LABELS,
    )?;
    counter(
        r,
        "strata_drive_space_refusals_total",
        "Writes this node's drives refused because they were full, since start.",
        strata_drive::metrics::space_refusals_total(),
    )?;
    counter(
        r,
        "strata_drive_meta_reopens_total",
        "Times a drive's metadata store was reopened after an I/O failure, since start.",
        strata_drive::metrics::meta_reopens_total(),
    )?;
    let memory = layer.memory();
    if let (Some(budget), Some(limit)) = (memory.budget_bytes(), memory.limit_bytes()) {
        gauge(
            r,
            "strata_memory_budget_bytes",
            "The memory budget of this server process.",
            budget as f64,
        )?;
        gauge(
            r,
            "strata_memory_requests_limit_bytes",
            "The share of the budget that data in flight (PUT, part, copy and GET buffers) may hold.",
            limit as f64,
        )?;
    }
    gauge(
        r,
        "strata_memory_requests_in_use_bytes",
        "Bytes of the budget that data in flight holds now.",
        memory.in_use_bytes() as f64,
    )?;
    gauge(
        r,
        "strata_memory_meta_cache_bytes_per_drive",
        "The metadata cache of each local drive opened now.",
        strata_drive::meta_cache_bytes() as f64,
    )?;
    let capacities = layer.drive_capacities().await;
    for (status, cap) in layer.drive_statuses().iter().zip(capacities.iter()) {
        let (pool, set) = (status.pool.to_string(), status.set.to_string());
        let labels = [status.endpoint.as_str(), pool.as_str(), set.as_str()];
        online
            .with_label_values(&labels)
            .set(f64::from(u8::from(status.online)));
        healing
            .with_label_values(&labels)
            .set(f64::from(u8::from(status.healing)));
        io_errors.with_label_values(&labels).inc_by(status.io_errors);
        full.with_label_values(&labels)
            .set(f64::from(u8::from(status.full)));
        read_only
            .with_label_values(&labels)
            .set(f64::from(u8::from(status.read_only)));
        if let (Some(t), Some(f)) = (cap.total_bytes, cap.free_bytes) {
            total.with_label_values(&labels).set(t as f64);
            free.with_label_values(&labels).set(f as f64);
            used.with_label_values(&labels).set(t.saturating_sub(f) as f64);
        }
    }

    const SET_LABELS: &[&str] = &["pool", "set"];
    let set_drives = gauge_vec(r, "strata_set_drives", "Drives in the erasure set.", SET_LABELS)?;
    let set_online = gauge_vec(
        r,
        "strata_set_drives_online",
        "Drives of the erasure set that are online.",
        SET_LABELS,
    )?;
    let set_rq = gauge_vec(
        r,
        "strata_set_read_quorum_drives",
        "Drives the erasure set needs online to read.",
        SET_LABELS,
    )?;
    let set_wq = gauge_vec(
        r,
        "strata_set_write_quorum_drives",
        "Drives the erasure set needs online to write.",
        SET_LABELS,
    )?;
    let set_ok = gauge_vec(
        r,
        "strata_set_write_quorum_ok",
        "1 when the erasure set has write quorum of online drives.",
        SET_LABELS,
    )?;
    for s in layer.set_healths() {
        let (pool, set) = (s.pool.to_string(), s.set.to_string());
        let labels = [pool.as_str(), set.as_str()];
        set_drives.with_label_values(&labels).set(s.n_drives as f64);
        set_online
            .with_label_values(&labels)
            .set(s.n_drives_online as f64);
        set_rq.with_label_values(&labels).set(s.read_quorum as f64);
        set_wq.with_label_values(&labels).set(s.write_quorum as f64);
        set_ok
            .with_label_values(&labels)
            .set(f64::from(u8::from(s.n_drives_online >= s.write_quorum)));
    }

    let scanner = layer.scanner_status();
    counter(
        r,
        "strata_scanner_objects_scanned_total",
        "Objects the scanner examined since start.",
        scanner.counters.objects_scanned,
    )?;
    counter(
        r,
        "strata_scanner_objects_healed_total",
        "Objects the scanner repaired since start.",
        scanner.counters.objects_healed,
    )?;
    counter(
        r,
        "strata_scanner_objects_failed_total",
        "Objects the scanner could not repair since start.",
        scanner.counters.objects_failed,
    )?;
    counter(
        r,
        "strata_scanner_cycles_total",
        "Completed scanner cycles over all objects since start.",
        scanner.cycles,
    )?;
    counter(
        r,
        "strata_scanner_orphans_removed_total",
        "Orphaned data directories removed since start.",
        scanner.orphans_removed,
    )?;

    let heal = layer.heal_status();
    let heal_g = |name: &str, help: &str, v: u64| -> Result<(), ObsError> {
        reg(r, prometheus::Gauge::new(name, help)?)?.set(v as f64);
        Ok(())
    };
    heal_g(
        "strata_heal_queue_length",
        "Keys waiting for the heal worker (writes and reads that found a shard missing).",
        layer.heal_queue_len() as u64,
    )?;
    heal_g(
        "strata_heal_sequence_id",
        "Number of the latest heal sequence (0: none ran).",
        heal.id,
    )?;
    heal_g(
        "strata_heal_sequence_running",
        "1 while a heal sequence runs.",
        u64::from(heal.state == strata_object::HealState::Running),
    )?;
    heal_g(
        "strata_heal_sequence_objects_scanned",
        "Objects the latest heal sequence examined.",
        heal.counters.objects_scanned,
    )?;
    heal_g(
        "strata_heal_sequence_objects_healed",
        "Objects the latest heal sequence repaired.",
        heal.counters.objects_healed,
    )?;
    heal_g(
        "strata_heal_sequence_objects_failed",
        "Objects the latest heal sequence could not repair.",
        heal.counters.objects_failed,
    )?;

    // The KMS key rotation's re-seal job (deployment-wide: every node reads the same record).
    let rotation = layer
        .list_system_records(strata_kms::rotation::SYSTEM_NAMESPACE)
        .await
        .ok()
        .and_then(|records| {
            records
                .into_iter()
                .find(|(name, _)| name == strata_kms::rotation::ROTATION_RECORD)
        })
        .and_then(|(_, blob)| serde_json::from_slice::<strata_kms::RotationStatus>(&blob).ok());
    if let Some(rotation) = rotation {
        heal_g(
            "strata_kms_rotation_running",
            "1 while a KMS key rotation re-seals data keys.",
            u64::from(rotation.running),
        )?;
        heal_g(
            "strata_kms_rotation_target_version",
            "The key version the latest rotation re-seals under.",
            u64::from(rotation.target_version),
        )?;
        heal_g(
            "strata_kms_rotation_total",
            "Object versions the latest rotation has to re-seal.",
            rotation.total,
        )?;
        heal_g(
            "strata_kms_rotation_rewrapped",
            "Object versions the latest rotation re-sealed.",
            rotation.rewrapped,
        )?;
        heal_g(
            "strata_kms_rotation_failed",
            "Object versions the latest rotation could not re-seal.",
            rotation.failed,
        )?;
        heal_g(
            "strata_kms_rotation_scanned",
            "Object versions the latest rotation looked at.",
            rotation.scanned,
        )?;
    }

    if let Some(audit) = audit {
        let sent = counter_vec(
            r,
            "strata_audit_sent_total",
            "Audit records delivered, by target.",
            &["target"],
        )?;
        let failed = counter_vec(
            r,
            "strata_audit_failed_total",
            "Failed audit delivery attempts, by target.",
            &["target"],
        )?;
        let dropped = counter_vec(
            r,
            "strata_audit_dropped_total",
            "Audit records lost (queue or spill full), by target.",
            &["target"],
        )?;
        let queued = gauge_vec(
            r,
            "strata_audit_queued",
            "Audit records waiting (memory and spill), by target.",
            &["target"],
        )?;
        for t in audit.stats() {
            sent.with_label_values(&[t.name.as_str()]).inc_by(t.sent);
            failed.with_label_values(&[t.name.as_str()]).inc_by(t.failed);
            dropped.with_label_values(&[t.name.as_str()]).inc_by(t.dropped);
            queued.with_label_values(&[t.name.as_str()]).set(t.queued as f64);
        }
    }
    Ok(())
}

async fn register_cluster_state(
    r: &Registry,
    layer: &ObjectLayer,
    usage: Option<&UsageCache>,
) -> Result<(), ObsError> {
    let caps = layer.drive_capacities().await;
    let total: u64 = caps.iter().filter_map(|c| c.total_bytes).sum();
    let free: u64 = caps.iter().filter_map(|c| c.free_bytes).sum();
    let g = |name: &str, help: &str, v: f64| -> Result<(), ObsError> {
        reg(r, prometheus::Gauge::new(name, help)?)?.set(v);
        Ok(())
    };
    g(
        "strata_cluster_capacity_raw_total_bytes",
        "Sum of the drives' filesystem sizes (online drives).",
        total as f64,
    )?;
    g(
        "strata_cluster_capacity_raw_free_bytes",
        "Sum of the drives' free bytes (online drives).",
        free as f64,
    )?;
    let health = layer.health().await;
    g(
        "strata_cluster_drives",
        "Drives in the deployment.",
        health.n_drives as f64,
    )?;
    g(
        "strata_cluster_drives_online",
        "Drives online in the deployment.",
        health.n_drives_online as f64,
    )?;
    g(
        "strata_cluster_nodes_online",
        "Server processes answering (peers in distributed mode).",
        1.0,
    )?;
    g(
        "strata_cluster_write_quorum_ok",
        "1 when every erasure set has write quorum.",
        f64::from(u8::from(health.write_quorum)),
    )?;
    g(
        "strata_cluster_read_quorum_ok",
        "1 when every erasure set has read quorum.",
        f64::from(u8::from(health.read_quorum)),
    )?;
    if let Some(usage) = usage {
        let snapshot = usage.snapshot();
        g(
            "strata_cluster_usage_last_update_seconds",
            "Unix time of the last completed bucket usage walk (0: none yet).",
            snapshot.updated_unix_secs as f64,
        )?;
        g(
            "strata_cluster_buckets",
            "Buckets in the deployment.",
            snapshot.buckets.len() as f64,
        )?;
        let objects = gauge_vec(
            r,
            "strata_bucket_objects",
            "Objects (latest versions) in the bucket at the last usage walk.",
            &["bucket"],
        )?;
        let bytes = gauge_vec(
            r,
            "strata_bucket_bytes",
            "Bytes of objects (latest versions) in the bucket at the last usage walk.",
            &["bucket"],
        )?;
        for b in &snapshot.buckets {
            objects
                .with_label_values(&[b.bucket.as_str()])
                .set(b.n_objects as f64);
            bytes
                .with_label_values(&[b.bucket.as_str()])
                .set(b.size_bytes as f64);
        }
    }
    Ok(())
}
