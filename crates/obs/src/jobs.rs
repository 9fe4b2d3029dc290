//! Counters of the background jobs that live outside the object layer (lifecycle, remote
//! tiers) and the served TLS certificate's expiry, read at each scrape from sources the server
//! sets once.
//!
//! Each source returns `(family, label, value)` triples: `family` is a metric name among
//! [`FAMILIES`], `label` the value of its label (empty for a family without one).

use std::sync::OnceLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::ObsError;

/// What a source returns: `(family, action label or "", value)`.
pub type JobCounters = Vec<(&'static str, &'static str, u64)>;

type Source = Box<dyn Fn() -> JobCounters + Send + Sync>;

static LIFECYCLE: OnceLock<Source> = OnceLock::new();
static TIERS: OnceLock<Source> = OnceLock::new();
static TLS: OnceLock<Source> = OnceLock::new();

/// How a family is exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A counter without labels.
    Counter,
    /// A counter with one label (its name given).
    Labelled(&'static str),
    /// A gauge without labels.
    Gauge,
}

/// The families a source may report, with their help texts and kinds.
pub const FAMILIES: [(&str, &str, Kind); 10] = [
    (
        "strata_lifecycle_actions_total",
        "Lifecycle actions this node applied since start, by action (expire_current, remove_noncurrent, remove_delete_marker, abort_upload, kept_by_lock, transition).",
        Kind::Labelled("action"),
    ),
    (
        "strata_lifecycle_transitioned_bytes_total",
        "Stored bytes lifecycle transitions on this node copied to another storage class since start.",
        Kind::Counter,
    ),
    (
        "strata_lifecycle_versions_scanned_total",
        "Versions the lifecycle job evaluated on this node since start.",
        Kind::Counter,
    ),
    (
        "strata_lifecycle_failures_total",
        "Lifecycle actions that failed on this node since start (retried by the next cycle).",
        Kind::Counter,
    ),
    (
        "strata_lifecycle_cycles_total",
        "Lifecycle cycles over every bucket completed by this node since start.",
        Kind::Counter,
    ),
    (
        "strata_tier_operations_total",
        "Remote tier operations this node made since start, by operation (upload, read, remote_delete).",
        Kind::Labelled("operation"),
    ),
    (
        "strata_tier_errors_total",
        "Remote tier uploads, reads and deletes that failed on this node since start.",
        Kind::Counter,
    ),
    (
        "strata_tier_journal_failures_total",
        "Journaled remote deletes that failed on this node since start (retried).",
        Kind::Counter,
    ),
    (
        "strata_tier_journal_backlog",
        "Remote tier objects waiting in the delete journal, as of this node's last look.",
        Kind::Gauge,
    ),
    (
        "strata_tls_certificate_not_after_seconds",
        "Expiry (Unix time) of the earliest-expiring TLS certificate this node serves.",
        Kind::Gauge,
    ),
];

/// Sets where the lifecycle counters are read (once). Returns `false` when one is set already.
pub fn set_lifecycle_source(source: Source) -> bool {
    LIFECYCLE.set(source).is_ok()
}

/// Sets where the remote tier counters are read (once).
pub fn set_tier_source(source: Source) -> bool {
    TIERS.set(source).is_ok()
}

/// Sets where the served TLS certificate's expiry is read (once).
pub fn set_tls_source(source: Source) -> bool {
    TLS.set(source).is_ok()
}

/// Adds the counters to a scrape.
pub(crate) fn register(r: &Registry) -> Result<(), ObsError> {
    let values: JobCounters = [LIFECYCLE.get(), TIERS.get(), TLS.get()]
        .into_iter()
        .flatten()
        .flat_map(|source| source())
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    for (family, help, kind) in FAMILIES {
        let mut mine = values.iter().filter(|(f, _, _)| *f == family).peekable();
        if mine.peek().is_none() {
            continue;
        }
        match kind {
            Kind::Labelled(label) => {
                let vec = IntCounterVec::new(Opts::new(family, help), &[label])?;
                for (_, value_label, value) in mine {
                    vec.with_label_values(&[*value_label]).inc_by(*value);
                }
                r.register(Box::new(vec))?;
            }
            Kind::Counter => {
                let counter = IntCounter::new(family, help)?;
                counter.inc_by(mine.map(|(_, _, v)| *v).sum());
                r.register(Box::new(counter))?;
            }
            Kind::Gauge => {
                let gauge = IntGauge::new(family, help)?;
                gauge.set(i64::try_from(mine.map(|(_, _, v)| *v).sum::<u64>()).unwrap_or(i64::MAX));
                r.register(Box::new(gauge))?;
            }
        }
    }
    Ok(())
}
