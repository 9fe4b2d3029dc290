//! A process-wide hook through which the metadata committer reports each durable group
//! commit (how many caller batches it held and how long it took), so that an exporter
//! (`strata-obs`) can keep histograms without this crate knowing about any metrics library.
//!
//! It also keeps process-wide counters of drive trouble that needs no observer: drives full
//! now, writes refused for lack of space, and metadata stores reopened after an I/O failure.
//!
//! Invariant: reporting costs one atomic load when no observer is installed and never blocks
//! the committer thread (observers must be cheap and non-blocking).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Receives one call per committed metadata transaction.
pub trait CommitObserver: Send + Sync {
    /// A write transaction holding `n_batches` caller batches committed durably after
    /// `latency` (from opening the transaction to the end of its fsync).
    fn transaction_committed(&self, n_batches: usize, latency: Duration);
}

static OBSERVER: OnceLock<Box<dyn CommitObserver>> = OnceLock::new();

/// Installs the process's commit observer. Returns `false` (and drops `observer`) when one is
/// already installed.
pub fn set_commit_observer(observer: Box<dyn CommitObserver>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Called by the committer thread after each durable transaction.
pub(crate) fn observe_commit(n_batches: usize, latency: Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer.transaction_committed(n_batches, latency);
    }
}

static DRIVES_FULL: AtomicU64 = AtomicU64::new(0);
static SPACE_REFUSALS: AtomicU64 = AtomicU64::new(0);
static META_REOPENS: AtomicU64 = AtomicU64::new(0);

/// Local drives of this process that are full now (refusing new writes for lack of space).
pub fn drives_full() -> u64 {
    DRIVES_FULL.load(Ordering::Relaxed)
}

/// Writes refused because a drive was full, since start.
pub fn space_refusals_total() -> u64 {
    SPACE_REFUSALS.load(Ordering::Relaxed)
}

/// Times a drive's metadata store was closed and reopened after an I/O failure, since start.
pub fn meta_reopens_total() -> u64 {
    META_REOPENS.load(Ordering::Relaxed)
}

pub(crate) fn drive_full_changed(full: bool) {
    if full {
        DRIVES_FULL.fetch_add(1, Ordering::Relaxed);
    } else {
        // Never below zero, whatever the order of changes.
        let _ = DRIVES_FULL.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

pub(crate) fn count_space_refusal() {
    SPACE_REFUSALS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_meta_reopen() {
    META_REOPENS.fetch_add(1, Ordering::Relaxed);
}
