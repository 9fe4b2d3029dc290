//! The request memory gate: the share of the process's memory budget that data in flight may
//! use, so that no mix of PUT, part, copy and GET load takes the process past its budget.
//!
//! Every streaming write holds a block being filled, its encoded shards (plus the write-ahead
//! block), one write buffer per drive and a block queued for the ETag hasher; every GET of a
//! large object holds its read-ahead blocks. Before it streams, such a request takes permits
//! for that much ([`ErasureSet::put_memory_bytes`], [`ErasureSet::get_memory_bytes`]) and holds
//! them until its buffers are gone; when the pool is exhausted, requests wait in turn (their
//! bodies are not read meanwhile, so the back-pressure reaches the client), and one that waits
//! longer than [`MEMORY_WAIT_MAX`] is answered "slow down". Small objects (inline or empty) take
//! nothing: what they hold is bounded by the connection limits.
//!
//! Invariants: a request never holds more than the whole pool (a larger estimate is clamped,
//! so it waits for everything rather than forever); permits are released by `Drop`, also when a
//! request fails or its client goes away. Without a configured budget the gate admits
//! everything (tests, embedded use).
//!
//! [`ErasureSet::put_memory_bytes`]: crate::set::ErasureSet::put_memory_bytes
//! [`ErasureSet::get_memory_bytes`]: crate::set::ErasureSet::get_memory_bytes

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ObjectError, ObjectResult};

/// Permits are counted in units of this many bytes.
pub const MEMORY_UNIT_BYTES: u64 = 64 * 1024;
/// Longest a request waits for memory before it is told to slow down.
pub const MEMORY_WAIT_MAX: Duration = Duration::from_secs(30);
/// Smallest pool a budget may give requests (a pool below one large PUT would serialise all).
pub const REQUEST_MEMORY_BYTES_MIN: u64 = 32 * 1024 * 1024;

/// The gate; see the module docs.
#[derive(Debug, Default)]
pub struct MemoryGate {
    pool: OnceLock<Pool>,
}

#[derive(Debug)]
struct Pool {
    semaphore: Arc<Semaphore>,
    n_units: u32,
    /// The process's whole budget this pool is a share of (reported, not enforced here).
    budget_bytes: u64,
}

/// Memory held by a request; released when dropped.
#[derive(Debug)]
pub struct MemoryPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl MemoryGate {
    /// Limits requests to `bytes` (at least [`REQUEST_MEMORY_BYTES_MIN`]), a share of the
    /// process's `budget_bytes`. Only the first call counts (the budget is set once, at start);
    /// returns whether this one did.
    pub fn limit(&self, bytes: u64, budget_bytes: u64) -> bool {
        let n_units =
            u32::try_from(bytes.max(REQUEST_MEMORY_BYTES_MIN) / MEMORY_UNIT_BYTES).unwrap_or(u32::MAX);
        let n_units = n_units.min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        self.pool
            .set(Pool {
                semaphore: Arc::new(Semaphore::new(n_units as usize)),
                n_units,
                budget_bytes,
            })
            .is_ok()
    }

    /// Bytes requests may hold together (`None`: unlimited).
    pub fn limit_bytes(&self) -> Option<u64> {
        self.pool
            .get()
            .map(|pool| u64::from(pool.n_units) * MEMORY_UNIT_BYTES)
    }

    /// The process's memory budget (`None`: none configured).
    pub fn budget_bytes(&self) -> Option<u64> {
        self.pool.get().map(|pool| pool.budget_bytes)
    }

    /// Bytes requests hold now.
    pub fn in_use_bytes(&self) -> u64 {
        self.pool.get().map_or(0, |pool| {
            let free = u32::try_from(pool.semaphore.available_permits()).unwrap_or(pool.n_units);
            u64::from(pool.n_units.saturating_sub(free)) * MEMORY_UNIT_BYTES
        })
    }

    /// Takes `bytes` (rounded up to units, clamped to the pool) for the life of the permit,
    /// waiting at most [`MEMORY_WAIT_MAX`].
    pub async fn acquire(&self, bytes: u64) -> ObjectResult<MemoryPermit> {
        let Some(pool) = self.pool.get() else {
            return Ok(MemoryPermit { _permit: None });
        };
        if bytes == 0 {
            return Ok(MemoryPermit { _permit: None });
        }
        let n_units = u32::try_from(bytes.div_ceil(MEMORY_UNIT_BYTES))
            .unwrap_or(u32::MAX)
            .min(pool.n_units);
        let wait = Arc::clone(&pool.semaphore).acquire_many_owned(n_units);
        match tokio::time::timeout(MEMORY_WAIT_MAX, wait).await {
            Ok(Ok(permit)) => Ok(MemoryPermit {
                _permit: Some(permit),
            }),
            // Closed never happens (the semaphore is never closed); treat it like a timeout.
            Ok(Err(_)) | Err(_) => Err(ObjectError::MemoryBusy {
                waited_ms: MEMORY_WAIT_MAX.as_millis() as u64,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn unlimited_until_limited_once() {
        let gate = MemoryGate::default();
        assert_eq!(gate.limit_bytes(), None);
        let _free = gate.acquire(10_000 * MIB).await.unwrap();
        assert!(gate.limit(64 * MIB, 512 * MIB));
        assert!(!gate.limit(128 * MIB, 512 * MIB), "the budget is set once");
        assert_eq!(gate.budget_bytes(), Some(512 * MIB));
        assert_eq!(gate.limit_bytes(), Some(64 * MIB));
        assert_eq!(gate.in_use_bytes(), 0);
    }

    #[tokio::test]
    async fn permits_are_held_until_dropped_and_clamped_to_the_pool() {
        let gate = MemoryGate::default();
        gate.limit(REQUEST_MEMORY_BYTES_MIN, 4 * REQUEST_MEMORY_BYTES_MIN);
        let a = gate.acquire(10 * MIB).await.unwrap();
        assert_eq!(gate.in_use_bytes(), 10 * MIB);
        let b = gate.acquire(1).await.unwrap();
        assert_eq!(gate.in_use_bytes(), 10 * MIB + MEMORY_UNIT_BYTES);
        drop((a, b));
        assert_eq!(gate.in_use_bytes(), 0);
        // More than the pool: takes all of it rather than waiting forever.
        let all = gate.acquire(1000 * MIB).await.unwrap();
        assert_eq!(gate.in_use_bytes(), REQUEST_MEMORY_BYTES_MIN);
        drop(all);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_waits_too_long_is_told_to_slow_down() {
        let gate = MemoryGate::default();
        gate.limit(REQUEST_MEMORY_BYTES_MIN, 4 * REQUEST_MEMORY_BYTES_MIN);
        let _all = gate.acquire(REQUEST_MEMORY_BYTES_MIN).await.unwrap();
        let refused = gate.acquire(MIB).await;
        assert!(
            matches!(refused, Err(ObjectError::MemoryBusy { .. })),
            "{refused:?}"
        );
    }
}
