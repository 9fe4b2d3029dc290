//! A process-wide hook through which the metadata committer reports each durable group
//! commit (how many caller batches it held and how long it took), so that an exporter
//! (`strata-obs`) can keep histograms without this crate knowing about any metrics library.
//!
//! Invariant: reporting costs one atomic load when no observer is installed and never blocks
//! the committer thread (observers must be cheap and non-blocking).

use std::sync::OnceLock;
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
