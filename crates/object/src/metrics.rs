//! What the object layer offers an exporter (`strata-obs`) without depending on a metrics
//! library: a process-wide hook timing erasure encode and decode of each block, and the
//! capacity of every drive.
//!
//! Invariant: timing costs two `Instant::now()` and one atomic load per block when no observer
//! is installed; observers must be cheap and never block.

use std::sync::OnceLock;
use std::time::Duration;

use strata_drive::Drive;

use crate::ObjectLayer;

/// Which erasure operation a timing belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureOp {
    /// Encoding one block into framed shards.
    Encode,
    /// Verifying and decoding one block (reconstructing when shards are missing or corrupt).
    Decode,
}

/// Receives one call per erasure-coded block.
pub trait ErasureObserver: Send + Sync {
    /// One block of `block_bytes` went through `op` in `elapsed`.
    fn block_done(&self, op: ErasureOp, block_bytes: usize, elapsed: Duration);
}

static OBSERVER: OnceLock<Box<dyn ErasureObserver>> = OnceLock::new();

/// Installs the process's erasure observer; `false` when one is already installed.
pub fn set_erasure_observer(observer: Box<dyn ErasureObserver>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Reports one block to the observer, if any.
pub(crate) fn observe_block(op: ErasureOp, block_bytes: usize, elapsed: Duration) {
    if let Some(observer) = OBSERVER.get() {
        observer.block_done(op, block_bytes, elapsed);
    }
}

/// Capacity of one drive position, in the order of [`ObjectLayer::drive_statuses`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveCapacity {
    /// Path or URL of the drive.
    pub endpoint: String,
    /// Size of its filesystem; `None` when the drive did not answer.
    pub total_bytes: Option<u64>,
    /// Bytes available; `None` when the drive did not answer.
    pub free_bytes: Option<u64>,
}

/// Health of one erasure set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetHealth {
    /// Pool index.
    pub pool: u32,
    /// Set index within the pool.
    pub set: u32,
    /// Drives in the set.
    pub n_drives: usize,
    /// Drives believed online.
    pub n_drives_online: usize,
    /// Drives needed to read.
    pub read_quorum: usize,
    /// Drives needed to write.
    pub write_quorum: usize,
}

impl ObjectLayer {
    /// Drives online against the quorums, per erasure set.
    pub fn set_healths(&self) -> Vec<SetHealth> {
        self.sets
            .iter()
            .map(|set| {
                let (pool, set_idx) = set
                    .slots
                    .first()
                    .map(|s| (s.expected_format().pool_idx, s.expected_format().set_idx))
                    .unwrap_or((0, 0));
                SetHealth {
                    pool,
                    set: set_idx,
                    n_drives: set.n_drives(),
                    n_drives_online: set.slots.iter().filter(|s| s.is_online()).count(),
                    read_quorum: set.read_quorum(),
                    write_quorum: set.write_quorum(),
                }
            })
            .collect()
    }

    /// Asks every drive for its capacity (offline drives answer `None`).
    pub async fn drive_capacities(&self) -> Vec<DriveCapacity> {
        let slots: Vec<_> = self.sets.iter().flat_map(|set| set.slots.iter()).collect();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            let info = if slot.is_online() {
                slot.info().await.ok()
            } else {
                None
            };
            out.push(DriveCapacity {
                endpoint: slot.endpoint().to_string(),
                total_bytes: info.as_ref().map(|i| i.total_bytes),
                free_bytes: info.as_ref().map(|i| i.free_bytes),
            });
        }
        out
    }
}

/// Runs `f` (one erasure operation over a block of `block_bytes`) and reports its duration.
pub(crate) fn timed<T>(op: ErasureOp, block_bytes: usize, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    observe_block(op, block_bytes, started.elapsed());
    out
}
