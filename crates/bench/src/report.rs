//! Measured results: per-worker counters and histograms ([`WorkerStats`]), their merge, and the
//! report as human text or one JSON line ([`Report`]).
//!
//! Invariants:
//! - Only operations that *started* after the warm-up are recorded (the caller decides; this
//!   module never sees warm-up operations), so warm-up never leaks into results.
//! - Rates divide by the measured window (warm-up end to the end of the last recorded
//!   operation), never by the configured duration alone.
//! - At most [`ERROR_SAMPLES_MAX`] error messages are kept, whatever the error count.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::histogram::LatencyHistogram;
use crate::workload::OpKind;

/// Error messages kept for the report.
pub const ERROR_SAMPLES_MAX: usize = 8;
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// Counters of one operation kind.
#[derive(Clone, Debug, Default)]
pub struct OpStats {
    /// Successful operations.
    pub n_ops: u64,
    /// Payload bytes moved by successful operations.
    pub size_bytes: u64,
    /// Keys seen (list mode).
    pub n_keys: u64,
    /// Failed operations.
    pub n_errors: u64,
    /// Latency of successful operations.
    pub latency: LatencyHistogram,
}

impl OpStats {
    fn merge(&mut self, other: &Self) {
        self.n_ops += other.n_ops;
        self.size_bytes += other.size_bytes;
        self.n_keys += other.n_keys;
        self.n_errors += other.n_errors;
        self.latency.merge(&other.latency);
    }
}

/// What one worker (or all, once merged) measured.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    /// Counters per operation kind.
    pub by_kind: BTreeMap<OpKind, OpStats>,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// End of the last recorded operation, measured from the warm-up end.
    pub last_end: Duration,
}

impl WorkerStats {
    /// Records a successful operation.
    pub fn success(&mut self, kind: OpKind, latency: Duration, size_bytes: u64, n_keys: u64) {
        let stats = self.by_kind.entry(kind).or_default();
        stats.n_ops += 1;
        stats.size_bytes += size_bytes;
        stats.n_keys += n_keys;
        stats.latency.record(latency);
    }

    /// Records a failed operation.
    pub fn failure(&mut self, kind: OpKind, message: impl FnOnce() -> String) {
        self.by_kind.entry(kind).or_default().n_errors += 1;
        if self.error_samples.len() < ERROR_SAMPLES_MAX {
            self.error_samples.push(format!("{}: {}", kind.name(), message()));
        }
    }

    /// Notes that a recorded operation ended at `end` (from the warm-up end).
    pub fn ended_at(&mut self, end: Duration) {
        self.last_end = self.last_end.max(end);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        for (kind, stats) in &other.by_kind {
            self.by_kind.entry(*kind).or_default().merge(stats);
        }
        for sample in &other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES_MAX {
                self.error_samples.push(sample.clone());
            }
        }
        self.last_end = self.last_end.max(other.last_end);
    }
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LatencyMs {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl LatencyMs {
    fn of(h: &LatencyHistogram) -> Self {
        // Whole microseconds over 1000: prints as e.g. 1007.615, not 1007.6149999999999.
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        Self {
            mean: ms(h.mean()),
            p50: ms(h.quantile(0.50)),
            p90: ms(h.quantile(0.90)),
            p99: ms(h.quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Results of one operation kind, or of all together.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpReport {
    /// Successful operations.
    pub ops: u64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Payload bytes.
    pub bytes: u64,
    /// Payload MiB per second.
    pub mib_per_s: f64,
    /// Keys listed (list mode).
    pub keys: u64,
    /// Keys listed per second.
    pub keys_per_s: f64,
    /// Failed operations.
    pub errors: u64,
    /// Latency of successful operations.
    pub latency_ms: LatencyMs,
}

impl OpReport {
    fn of(stats: &OpStats, window: Duration) -> Self {
        let secs = window.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            ops: stats.n_ops,
            ops_per_s: stats.n_ops as f64 / secs,
            bytes: stats.size_bytes,
            mib_per_s: stats.size_bytes as f64 / BYTES_PER_MIB / secs,
            keys: stats.n_keys,
            keys_per_s: stats.n_keys as f64 / secs,
            errors: stats.n_errors,
            latency_ms: LatencyMs::of(&stats.latency),
        }
    }
}

/// The whole run's results (the `--json` line).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Mode name.
    pub mode: String,
    /// Server endpoint.
    pub endpoint: String,
    /// Bucket used.
    pub bucket: String,
    /// Concurrent workers.
    pub concurrency: u32,
    /// Object size (multipart: part size × parts).
    pub object_size_bytes: u64,
    /// Configured measured duration, seconds.
    pub duration_s: f64,
    /// Configured warm-up, seconds (excluded).
    pub warmup_s: f64,
    /// Actual measured window, seconds.
    pub window_s: f64,
    /// Objects prefilled before measuring.
    pub prefilled_objects: u64,
    /// All kinds together.
    pub total: OpReport,
    /// Per kind (`mixed` has several).
    pub by_op: BTreeMap<String, OpReport>,
    /// The first few error messages.
    pub error_samples: Vec<String>,
    /// Why measuring stopped before the duration, if it did (e.g. no objects left to delete).
    pub stopped_early: Option<String>,
}

/// The run's fixed facts, to go with the measured [`WorkerStats`].
#[derive(Clone, Debug)]
pub struct RunFacts {
    /// Mode name.
    pub mode: String,
    /// Server endpoint.
    pub endpoint: String,
    /// Bucket used.
    pub bucket: String,
    /// Concurrent workers.
    pub concurrency: u32,
    /// Object size.
    pub object_size_bytes: u64,
    /// Configured measured duration.
    pub duration: Duration,
    /// Configured warm-up.
    pub warmup: Duration,
    /// Objects prefilled.
    pub prefilled_objects: u64,
    /// Why measuring stopped early, if it did.
    pub stopped_early: Option<String>,
}

impl Report {
    /// Builds the report. The window is the last recorded end, or the configured duration if
    /// nothing was recorded.
    pub fn new(facts: RunFacts, stats: &WorkerStats) -> Self {
        let window = if stats.last_end.is_zero() {
            facts.duration
        } else {
            stats.last_end
        };
        let mut total = OpStats::default();
        let mut by_op = BTreeMap::new();
        for (kind, kind_stats) in &stats.by_kind {
            total.merge(kind_stats);
            by_op.insert(kind.name().to_owned(), OpReport::of(kind_stats, window));
        }
        Self {
            mode: facts.mode,
            endpoint: facts.endpoint,
            bucket: facts.bucket,
            concurrency: facts.concurrency,
            object_size_bytes: facts.object_size_bytes,
            duration_s: facts.duration.as_secs_f64(),
            warmup_s: facts.warmup.as_secs_f64(),
            window_s: window.as_secs_f64(),
            prefilled_objects: facts.prefilled_objects,
            total: OpReport::of(&total, window),
            by_op,
            error_samples: stats.error_samples.clone(),
            stopped_early: facts.stopped_early,
        }
    }

    /// Human-readable text, several lines.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "strata bench {}: {} workers, {} objects of {} bytes, {:.1} s measured (after {:.1} s warm-up), bucket {} at {}\n",
            self.mode,
            self.concurrency,
            if self.prefilled_objects > 0 {
                self.prefilled_objects.to_string()
            } else {
                "new".into()
            },
            self.object_size_bytes,
            self.window_s,
            self.warmup_s,
            self.bucket,
            self.endpoint
        );
        let mut rows: Vec<(&str, &OpReport)> = self.by_op.iter().map(|(k, v)| (k.as_str(), v)).collect();
        if rows.len() > 1 {
            rows.push(("total", &self.total));
        }
        for (name, r) in rows {
            out.push_str(&format!(
                "  {name:<9} {:>10.1} ops/s {:>9.2} MiB/s  lat ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}  ops {} errors {}",
                r.ops_per_s,
                r.mib_per_s,
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p99,
                r.latency_ms.max,
                r.ops,
                r.errors
            ));
            if r.keys > 0 {
                out.push_str(&format!("  keys {} ({:.0} keys/s)", r.keys, r.keys_per_s));
            }
            out.push('\n');
        }
        if let Some(reason) = &self.stopped_early {
            out.push_str(&format!("  stopped early: {reason}\n"));
        }
        for sample in &self.error_samples {
            out.push_str(&format!("  error: {sample}\n"));
        }
        out
    }

    /// One JSON line.
    pub fn to_json_line(&self) -> String {
        // Serializing plain structs of numbers and strings cannot fail; keep a visible marker
        // rather than a panic if it ever does.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> RunFacts {
        RunFacts {
            mode: "mixed".into(),
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "b".into(),
            concurrency: 2,
            object_size_bytes: 1 << 20,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            prefilled_objects: 10,
            stopped_early: None,
        }
    }

    #[test]
    fn merged_workers_give_rates_over_the_measured_window() {
        let mut a = WorkerStats::default();
        let mut b = WorkerStats::default();
        for _ in 0..10 {
            a.success(OpKind::Get, Duration::from_millis(2), 1 << 20, 0);
            b.success(OpKind::Put, Duration::from_millis(4), 1 << 20, 0);
        }
        a.ended_at(Duration::from_secs(4));
        b.ended_at(Duration::from_secs(5));
        for i in 0..20 {
            b.failure(OpKind::Put, || format!("boom {i}"));
        }
        let mut all = WorkerStats::default();
        all.merge(&a);
        all.merge(&b);
        let report = Report::new(facts(), &all);
        assert_eq!(report.window_s, 5.0);
        assert_eq!(report.total.ops, 20);
        assert_eq!(report.total.ops_per_s, 4.0);
        assert_eq!(report.total.mib_per_s, 4.0);
        assert_eq!(report.total.errors, 20);
        assert_eq!(report.by_op["get"].ops_per_s, 2.0);
        assert_eq!(report.by_op["put"].latency_ms.p50, 4.0);
        assert_eq!(report.error_samples.len(), ERROR_SAMPLES_MAX);
        assert_eq!(report.error_samples[0], "put: boom 0");

        let json: serde_json::Value = serde_json::from_str(&report.to_json_line()).unwrap();
        assert_eq!(json["total"]["ops"], 20);
        assert_eq!(json["by_op"]["get"]["latency_ms"]["p99"], 2.0);
        assert!(!report.to_json_line().contains('\n'));
        let text = report.to_text();
        assert!(
            text.contains("total") && text.contains("error: put: boom 0"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_run_reports_zeros_over_the_configured_duration() {
        let report = Report::new(facts(), &WorkerStats::default());
        assert_eq!(report.window_s, 10.0);
        assert_eq!(report.total.ops, 0);
        assert_eq!(report.total.ops_per_s, 0.0);
    }
}
