//! Counters of the background jobs that live outside the object layer (lifecycle now, tiering
//! next), read at each scrape from a source the server sets once.
//!
//! Each source returns `(family, label, value)` triples: `family` is a metric name among
//! [`FAMILIES`], `label` the value of its `action` label (empty for a family without one).

use std::sync::OnceLock;

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::ObsError;

/// What a source returns: `(family, action label or "", value)`.
pub type JobCounters = Vec<(&'static str, &'static str, u64)>;

type Source = Box<dyn Fn() -> JobCounters + Send + Sync>;

static LIFECYCLE: OnceLock<Source> = OnceLock::new();

/// The families a source may report, with their help texts; those with an `action` label
/// are marked.
pub const FAMILIES: [(&str, &str, bool); 5] = [
    (
        "strata_lifecycle_actions_total",
        "Lifecycle actions this node applied since start, by action (expire_current, remove_noncurrent, remove_delete_marker, abort_upload, kept_by_lock, transition).",
        true,
    ),
    (
        "strata_lifecycle_transitioned_bytes_total",
        "Stored bytes lifecycle transitions on this node copied to another storage class since start.",
        false,
    ),
    (
        "strata_lifecycle_versions_scanned_total",
        "Versions the lifecycle job evaluated on this node since start.",
        false,
    ),
    (
        "strata_lifecycle_failures_total",
        "Lifecycle actions that failed on this node since start (retried by the next cycle).",
        false,
    ),
    (
        "strata_lifecycle_cycles_total",
        "Lifecycle cycles over every bucket completed by this node since start.",
        false,
    ),
];

/// Sets where the lifecycle counters are read (once). Returns `false` when one is set already.
pub fn set_lifecycle_source(source: Source) -> bool {
    LIFECYCLE.set(source).is_ok()
}

/// Adds the counters to a scrape.
pub(crate) fn register(r: &Registry) -> Result<(), ObsError> {
    let Some(source) = LIFECYCLE.get() else {
        return Ok(());
    };
    let values = source();
    for (family, help, labelled) in FAMILIES {
        let mine = values.iter().filter(|(f, _, _)| *f == family);
        if labelled {
            let vec = IntCounterVec::new(Opts::new(family, help), &["action"])?;
            for (_, label, value) in mine {
                vec.with_label_values(&[*label]).inc_by(*value);
            }
            r.register(Box::new(vec))?;
        } else {
            let counter = IntCounter::new(family, help)?;
            counter.inc_by(mine.map(|(_, _, v)| *v).sum());
            r.register(Box::new(counter))?;
        }
    }
    Ok(())
}
