//! Process-wide counters of the listener and of node RPC, bumped where no metrics handle is at
//! hand (the accept loop runs before the S3 service exists; the RPC server lives in a crate that
//! knows no metrics library) and read when `/metrics/node` is scraped.
//!
//! Invariant: counting is one relaxed atomic add; nothing here blocks or allocates.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::ObsError;

/// Why the server closed a connection it had accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// Refused at accept: the client holds the most connections allowed per client.
    RefusedPerClient,
    /// Closed: nothing received within the first-byte timeout (or the TLS handshake took longer).
    FirstByteTimeout,
    /// Closed: no bytes moved for the idle timeout while the server waited on the client.
    IdleTimeout,
}

impl ConnectionEnd {
    const ALL: [ConnectionEnd; 3] = [
        ConnectionEnd::RefusedPerClient,
        ConnectionEnd::FirstByteTimeout,
        ConnectionEnd::IdleTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            ConnectionEnd::RefusedPerClient => "refused_per_client",
            ConnectionEnd::FirstByteTimeout => "first_byte_timeout",
            ConnectionEnd::IdleTimeout => "idle_timeout",
        }
    }

    fn idx(self) -> usize {
        match self {
            ConnectionEnd::RefusedPerClient => 0,
            ConnectionEnd::FirstByteTimeout => 1,
            ConnectionEnd::IdleTimeout => 2,
        }
    }
}

static CONNECTIONS_ENDED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static ACCEPT_ERRORS: AtomicU64 = AtomicU64::new(0);
static RPC_REPLAYS_REFUSED: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>> = OnceLock::new();

/// Counts a connection the server refused or closed for `why`.
pub fn count_connection_end(why: ConnectionEnd) {
    CONNECTIONS_ENDED[why.idx()].fetch_add(1, Ordering::Relaxed);
}

/// Counts a failed `accept` (out of descriptors, most often).
pub fn count_accept_error() {
    ACCEPT_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// Where to read the number of node RPC calls refused as replays (set once, by the server in a
/// distributed deployment). Returns `false` when one is already set.
pub fn set_rpc_replays_refused_source(source: Box<dyn Fn() -> u64 + Send + Sync>) -> bool {
    RPC_REPLAYS_REFUSED.set(source).is_ok()
}

/// Adds the counters to a scrape.
pub(crate) fn register(r: &Registry) -> Result<(), ObsError> {
    let ended = IntCounterVec::new(
        Opts::new(
            "strata_connections_closed_total",
            "Client connections the server refused at accept or closed for silence, by reason.",
        ),
        &["reason"],
    )?;
    r.register(Box::new(ended.clone()))?;
    for why in ConnectionEnd::ALL {
        ended
            .with_label_values(&[why.label()])
            .inc_by(CONNECTIONS_ENDED[why.idx()].load(Ordering::Relaxed));
    }
    let accept_errors = IntCounter::new(
        "strata_accept_errors_total",
        "Failed accepts of client connections (out of file descriptors, most often).",
    )?;
    accept_errors.inc_by(ACCEPT_ERRORS.load(Ordering::Relaxed));
    r.register(Box::new(accept_errors))?;
    if let Some(source) = RPC_REPLAYS_REFUSED.get() {
        let replays = IntCounter::new(
            "strata_rpc_replays_refused_total",
            "Node RPC calls refused as replays (a sequence number already used, or too old).",
        )?;
        replays.inc_by(source());
        r.register(Box::new(replays))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_a_scrape() {
        count_connection_end(ConnectionEnd::IdleTimeout);
        count_accept_error();
        let r = Registry::new();
        register(&r).unwrap();
        let families = r.gather();
        let ended = families
            .iter()
            .find(|f| f.name() == "strata_connections_closed_total")
            .unwrap();
        assert_eq!(ended.get_metric().len(), 3);
        assert!(families.iter().any(|f| f.name() == "strata_accept_errors_total"));
    }
}
