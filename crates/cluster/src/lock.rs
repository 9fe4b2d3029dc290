//! Quorum-based distributed exclusive locks with expiry and refresh, in the spirit of MinIO's
//! dsync. Used around changes to one object key (PUT, DELETE, multipart completion) and around
//! bucket creation and deletion.
//!
//! Owns three things:
//! - [`LockServer`]: one node's lock table. Every node runs one; peers reach it through
//!   [`LockRequest`]/[`LockResponse`] messages (MessagePack, see [`encode_request`]).
//! - [`LockTransport`]: how a locker reaches node `node_idx`. This file has no network code;
//!   the wiring layer implements the trait over the node RPC and calls [`LockServer::handle`]
//!   on the peer.
//! - [`DistLocker`] / [`DistLockGuard`]: the client side. A lock is held when a quorum of
//!   `n_nodes / 2 + 1` servers granted the same fresh uid; the guard refreshes it in the
//!   background and releases it on drop.
//!
//! Invariants:
//! - A server holds at most one entry per resource; an entry whose deadline has passed is no
//!   longer held by anyone and is replaced by the next acquire. Expired entries are dropped
//!   lazily on access and by a purge of at most [`LOCK_PURGE_CHECKS_PER_CALL`] entries per
//!   request, so the table stays bounded by live entries plus what expired since the purge
//!   cursor last passed; the table never exceeds [`LOCK_TABLE_ENTRIES_MAX`] entries.
//! - Two quorums of `n_nodes / 2 + 1` always share a node, and a node grants a resource to one
//!   uid at a time, so two live holders cannot both have a quorum.
//! - A failed attempt releases every node it may have been granted on before retrying, and every
//!   attempt uses a fresh uid, so a late grant from an earlier attempt is never mistaken for the
//!   current one.
//!
//! Limits, stated honestly: mutual exclusion holds only while the nodes' clocks advance at
//! similar rates (expiry is measured on each server's monotonic clock from when it received the
//! request, the holder measures validity from before it sent its request) and only while a
//! holder stops treating itself as holder once [`DistLockGuard::is_lost`] is true. A holder that
//! stalls longer than the ttl (a long GC-like pause, a suspended VM) can still act after its
//! lock was handed to someone else; there are no fencing tokens. A request whose answer timed
//! out may still be applied later by its node; the entry it leaves behind expires after the
//! ttl.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::ClusterError;

/// How long a server keeps a lock entry alive without a refresh.
pub const LOCK_TTL_DEFAULT: Duration = Duration::from_secs(30);
/// How often a held lock is refreshed.
pub const LOCK_REFRESH_INTERVAL_DEFAULT: Duration = Duration::from_secs(10);
/// How long [`DistLocker::lock`] callers usually wait for a lock.
pub const LOCK_ACQUIRE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// How long one request to one node may take before the node counts as not answering.
pub const LOCK_CALL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// First retry backoff after a failed acquire attempt (randomised down to half of it).
pub const LOCK_RETRY_BACKOFF_MIN: Duration = Duration::from_millis(2);
/// Largest retry backoff; the backoff doubles per failed attempt up to this.
pub const LOCK_RETRY_BACKOFF_MAX: Duration = Duration::from_millis(100);
/// Shortest per-node wait of an acquire attempt, even when the caller's deadline is nearer.
pub const LOCK_ATTEMPT_CALL_TIMEOUT_MIN: Duration = Duration::from_millis(20);
/// Shortest refresh interval the guard uses (a zero interval would spin).
pub const LOCK_REFRESH_INTERVAL_MIN: Duration = Duration::from_millis(1);
/// Longest ttl a server accepts; longer requests are clamped (a dead holder must not block
/// a resource for long, and deadlines must not overflow).
pub const LOCK_TTL_MAX: Duration = Duration::from_secs(3600);
/// Entries the purge examines per handled request (more than the one entry a request can add,
/// so the purge cursor outruns growth).
pub const LOCK_PURGE_CHECKS_PER_CALL: usize = 4;
/// Most entries one server's table holds; acquires of new resources beyond it are refused.
pub const LOCK_TABLE_ENTRIES_MAX: usize = 1_000_000;
/// Longest resource name a server accepts (bucket + object key fit well within it).
pub const LOCK_RESOURCE_BYTES_MAX: usize = 4096;

// A refresh round (sent every interval, taking up to one call timeout) must land before the ttl.
const _: () = assert!(
    LOCK_REFRESH_INTERVAL_DEFAULT.as_millis() + LOCK_CALL_TIMEOUT_DEFAULT.as_millis()
        < LOCK_TTL_DEFAULT.as_millis()
);
const _: () = assert!(LOCK_TTL_DEFAULT.as_millis() <= LOCK_TTL_MAX.as_millis());
const _: () = assert!(LOCK_RETRY_BACKOFF_MIN.as_nanos() <= LOCK_RETRY_BACKOFF_MAX.as_nanos());
const _: () = assert!(LOCK_PURGE_CHECKS_PER_CALL >= 2);

/// A message from a locker to one node's [`LockServer`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub enum LockRequest {
    /// Take `resource` for `uid` for `ttl_ms` unless another uid holds it.
    Acquire {
        /// What is locked (for example `bucket/key`).
        resource: String,
        /// The lock attempt's unique id.
        uid: String,
        /// Who asks (node address), for diagnostics.
        owner: String,
        /// How long the entry lives without a refresh, in milliseconds.
        ttl_ms: u64,
    },
    /// Extend `uid`'s entry on `resource` to `ttl_ms` from now.
    Refresh {
        /// What is locked.
        resource: String,
        /// The holder's uid.
        uid: String,
        /// New lifetime from now, in milliseconds.
        ttl_ms: u64,
    },
    /// Drop `uid`'s entry on `resource`.
    Release {
        /// What is locked.
        resource: String,
        /// The holder's uid.
        uid: String,
    },
    /// Drop every entry `owner` holds: sent by a node when it starts (whatever its previous
    /// process held died with it) and when it stops.
    ReleaseOwner {
        /// The node whose entries go.
        owner: String,
    },
}

/// A node's answer to a [`LockRequest`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub enum LockResponse {
    /// Acquire: the entry is now held by the asking uid.
    Granted,
    /// Acquire: another uid holds a live entry (or the request exceeds a limit).
    Refused,
    /// Refresh: the entry's deadline was extended.
    Refreshed,
    /// Refresh/Release: the uid holds no live entry on the resource.
    NotHeld,
    /// Release: the uid's entry was removed.
    Released,
}

/// Encodes a request for the wire (MessagePack with field names).
///
/// Encoding these plain enums into a `Vec` cannot fail in practice; if it ever did, the error
/// is logged and an empty message is returned, which every decoder rejects (never a different
/// valid message).
pub fn encode_request(request: &LockRequest) -> Vec<u8> {
    rmp_serde::to_vec_named(request).unwrap_or_else(|err| {
        tracing::error!(%err, "encoding a lock request failed");
        Vec::new()
    })
}

/// Decodes a request produced by [`encode_request`].
pub fn decode_request(bytes: &[u8]) -> Result<LockRequest, ClusterError> {
    rmp_serde::from_slice(bytes).map_err(|err| ClusterError::MalformedLockMessage {
        reason: err.to_string(),
    })
}

/// Encodes a response for the wire (MessagePack); see [`encode_request`] about failures.
pub fn encode_response(response: &LockResponse) -> Vec<u8> {
    rmp_serde::to_vec_named(response).unwrap_or_else(|err| {
        tracing::error!(%err, "encoding a lock response failed");
        Vec::new()
    })
}

/// Decodes a response produced by [`encode_response`].
pub fn decode_response(bytes: &[u8]) -> Result<LockResponse, ClusterError> {
    rmp_serde::from_slice(bytes).map_err(|err| ClusterError::MalformedLockMessage {
        reason: err.to_string(),
    })
}

/// One entry of a server's lock table.
#[derive(Debug)]
struct LockEntry {
    uid: String,
    owner: String,
    deadline: Instant,
    /// Unique per inserted entry; ties the entry to its one item in the purge queue.
    generation: u64,
}

#[derive(Debug, Default)]
struct LockTable {
    entries: HashMap<String, LockEntry>,
    /// One `(resource, generation)` item per inserted entry, visited round-robin by the purge.
    /// Items whose entry was released or replaced are dropped when visited.
    purge_queue: VecDeque<(String, u64)>,
    next_generation: u64,
}

impl LockTable {
    /// Examines up to [`LOCK_PURGE_CHECKS_PER_CALL`] queue items: expired entries are removed,
    /// live ones go to the back, stale items are dropped.
    fn purge(&mut self, now: Instant) {
        for _ in 0..LOCK_PURGE_CHECKS_PER_CALL {
            let Some((resource, generation)) = self.purge_queue.pop_front() else {
                return;
            };
            let Some(entry) = self.entries.get(&resource) else {
                continue;
            };
            if entry.generation != generation {
                continue;
            }
            if entry.deadline <= now {
                self.entries.remove(&resource);
            } else {
                self.purge_queue.push_back((resource, generation));
            }
        }
    }

    fn insert(&mut self, resource: String, uid: String, owner: String, deadline: Instant) {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        self.purge_queue.push_back((resource.clone(), generation));
        self.entries.insert(
            resource,
            LockEntry {
                uid,
                owner,
                deadline,
                generation,
            },
        );
    }
}

/// One node's lock table. Every node runs one. Entries expire at their deadline unless
/// refreshed; see the module doc for the invariants.
#[derive(Debug, Default)]
pub struct LockServer {
    table: Mutex<LockTable>,
}

/// `now + ttl_ms`, with the ttl clamped to [`LOCK_TTL_MAX`].
fn deadline_after(now: Instant, ttl_ms: u64) -> Instant {
    let ttl = Duration::from_millis(ttl_ms).min(LOCK_TTL_MAX);
    now.checked_add(ttl).unwrap_or(now)
}

impl LockServer {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> MutexGuard<'_, LockTable> {
        // A panic while holding the lock cannot leave the table half-updated in a way that
        // matters (each operation is a single map insert/remove), so poisoning is ignored.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one request. O(1) expected per call (plus a bounded purge).
    pub fn handle(&self, request: LockRequest) -> LockResponse {
        let now = Instant::now();
        let mut table = self.table();
        table.purge(now);
        match request {
            LockRequest::Acquire {
                resource,
                uid,
                owner,
                ttl_ms,
            } => {
                if resource.len() > LOCK_RESOURCE_BYTES_MAX {
                    tracing::warn!(
                        resource_bytes = resource.len(),
                        "lock acquire refused: resource name too long"
                    );
                    return LockResponse::Refused;
                }
                let deadline = deadline_after(now, ttl_ms);
                if let Some(entry) = table.entries.get_mut(&resource) {
                    if entry.uid == uid {
                        // Idempotent retry of the same attempt.
                        entry.deadline = deadline;
                        return LockResponse::Granted;
                    }
                    if entry.deadline > now {
                        tracing::debug!(
                            %resource, holder = %entry.owner, asker = %owner,
                            "lock acquire refused: held"
                        );
                        return LockResponse::Refused;
                    }
                    // Expired: replaced below (the old purge item goes stale).
                } else if table.entries.len() >= LOCK_TABLE_ENTRIES_MAX {
                    tracing::warn!(%resource, "lock acquire refused: lock table full");
                    return LockResponse::Refused;
                }
                table.insert(resource, uid, owner, deadline);
                LockResponse::Granted
            }
            LockRequest::Refresh {
                resource,
                uid,
                ttl_ms,
            } => match table.entries.get_mut(&resource) {
                Some(entry) if entry.uid == uid => {
                    if entry.deadline > now {
                        entry.deadline = deadline_after(now, ttl_ms);
                        LockResponse::Refreshed
                    } else {
                        // Expired: it may already be granted elsewhere, never revive it.
                        table.entries.remove(&resource);
                        LockResponse::NotHeld
                    }
                }
                _ => LockResponse::NotHeld,
            },
            LockRequest::ReleaseOwner { owner } => {
                let before = table.entries.len();
                table.entries.retain(|_, entry| entry.owner != owner);
                if table.entries.len() < before {
                    tracing::info!(
                        owner,
                        n_released = before - table.entries.len(),
                        "released a node's locks"
                    );
                }
                LockResponse::Released
            }
            LockRequest::Release { resource, uid } => match table.entries.get(&resource) {
                Some(entry) if entry.uid == uid => {
                    let was_live = entry.deadline > now;
                    table.entries.remove(&resource);
                    if was_live {
                        LockResponse::Released
                    } else {
                        LockResponse::NotHeld
                    }
                }
                _ => LockResponse::NotHeld,
            },
        }
    }

    /// Entries that have not expired (scans the table; for tests and metrics).
    pub fn n_held(&self) -> usize {
        let now = Instant::now();
        self.table()
            .entries
            .values()
            .filter(|entry| entry.deadline > now)
            .count()
    }

    /// Entries in the table, expired or not (for tests of the purge).
    #[cfg(test)]
    fn n_entries(&self) -> usize {
        self.table().entries.len()
    }
}

/// How a locker reaches the nodes' [`LockServer`]s.
#[async_trait::async_trait]
pub trait LockTransport: Send + Sync + std::fmt::Debug {
    /// Nodes in the deployment (node indexes are `0..n_nodes()`).
    fn n_nodes(&self) -> usize;
    /// One request to node `node_idx`; Err(reason) when the node did not answer.
    async fn send(&self, node_idx: usize, request: LockRequest) -> Result<LockResponse, String>;
}

/// Timing of distributed locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockConfig {
    /// Lifetime of an entry on a server without refresh.
    pub ttl: Duration,
    /// Time between refresh rounds of a held lock; keep `refresh_interval + call_timeout`
    /// well below `ttl`.
    pub refresh_interval: Duration,
    /// Default acquire deadline for callers that have none of their own.
    pub acquire_timeout: Duration,
    /// Longest wait for one node's answer.
    pub call_timeout: Duration,
}

impl Default for LockConfig {
    fn default() -> Self {
        Self {
            ttl: LOCK_TTL_DEFAULT,
            refresh_interval: LOCK_REFRESH_INTERVAL_DEFAULT,
            acquire_timeout: LOCK_ACQUIRE_TIMEOUT_DEFAULT,
            call_timeout: LOCK_CALL_TIMEOUT_DEFAULT,
        }
    }
}

#[derive(Debug)]
struct LockerInner {
    transport: Arc<dyn LockTransport>,
    owner: String,
    config: LockConfig,
}

impl LockerInner {
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.config.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Sends `request` to each node in `node_idxs` concurrently; one result per node, in order.
    async fn send_to(
        &self,
        node_idxs: &[usize],
        request: &LockRequest,
        call_timeout: Duration,
    ) -> Vec<Result<LockResponse, String>> {
        let calls = node_idxs.iter().map(|&node_idx| {
            let request = request.clone();
            async move {
                match tokio::time::timeout(call_timeout, self.transport.send(node_idx, request)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {call_timeout:?}")),
                }
            }
        });
        futures::future::join_all(calls).await
    }

    /// Sends an acquire to every node at once and returns as soon as the outcome is known: a
    /// quorum granted (a silent or slow node does not delay the grant), or too many refused for
    /// a quorum, or every node answered or timed out. Returns the nodes that granted and the
    /// nodes whose answer is unknown (still in flight when the round ended, or failed). A node
    /// still in flight is left to finish in the background (so a reachable node still takes the
    /// lock, which keeps refreshes above quorum when another node fails later); the guard's
    /// release and the ttl cover a grant that lands after the lock was released.
    async fn acquire_round(
        &self,
        request: &LockRequest,
        quorum: usize,
        call_timeout: Duration,
        released: Arc<AtomicBool>,
    ) -> (Vec<usize>, Vec<usize>) {
        use futures::StreamExt;
        let n_nodes = self.transport.n_nodes();
        let mut pending: futures::stream::FuturesUnordered<_> = (0..n_nodes)
            .map(|node_idx| {
                let request = request.clone();
                let transport = Arc::clone(&self.transport);
                async move {
                    let result =
                        match tokio::time::timeout(call_timeout, transport.send(node_idx, request)).await {
                            Ok(result) => result,
                            Err(_) => Err(format!("no answer within {call_timeout:?}")),
                        };
                    (node_idx, result)
                }
            })
            .collect();
        let mut answered = vec![false; n_nodes];
        let mut granted_idxs = Vec::new();
        let mut unanswered_idxs = Vec::new();
        let mut n_refused = 0;
        while let Some((node_idx, result)) = pending.next().await {
            match result {
                Ok(LockResponse::Granted) => {
                    answered[node_idx] = true;
                    granted_idxs.push(node_idx);
                }
                Ok(_) => {
                    answered[node_idx] = true;
                    n_refused += 1;
                }
                Err(reason) => {
                    tracing::debug!(node_idx, %reason, "lock node did not answer");
                    unanswered_idxs.push(node_idx);
                    answered[node_idx] = true;
                }
            }
            let n_unknown = pending.len();
            if granted_idxs.len() >= quorum
                || granted_idxs.len() + n_unknown < quorum
                || n_refused > n_nodes - quorum
            {
                break;
            }
        }
        unanswered_idxs.extend((0..n_nodes).filter(|idx| !answered[*idx]));
        if !pending.is_empty()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            // A grant landing after the lock was released (or the attempt given up) is undone;
            // `released` is set before any release is sent, so no interleaving leaves it held.
            let transport = Arc::clone(&self.transport);
            let release = match request {
                LockRequest::Acquire { resource, uid, .. } => Some(LockRequest::Release {
                    resource: resource.clone(),
                    uid: uid.clone(),
                }),
                _ => None,
            };
            handle.spawn(async move {
                while let Some((node_idx, result)) = pending.next().await {
                    if matches!(result, Ok(LockResponse::Granted))
                        && released.load(Ordering::SeqCst)
                        && let Some(release) = release.clone()
                    {
                        let _ = tokio::time::timeout(call_timeout, transport.send(node_idx, release)).await;
                    }
                }
            });
        }
        (granted_idxs, unanswered_idxs)
    }

    fn all_nodes(&self) -> Vec<usize> {
        (0..self.transport.n_nodes()).collect()
    }

    fn quorum(&self) -> usize {
        self.transport.n_nodes() / 2 + 1
    }

    async fn release_on(&self, node_idxs: &[usize], resource: &str, uid: &str) {
        let request = LockRequest::Release {
            resource: resource.to_owned(),
            uid: uid.to_owned(),
        };
        let results = self.send_to(node_idxs, &request, self.config.call_timeout).await;
        for (node_idx, result) in node_idxs.iter().zip(results) {
            if let Err(reason) = result {
                tracing::debug!(
                    resource, node_idx, %reason,
                    "lock release not confirmed; the entry expires after its ttl"
                );
            }
        }
    }
}

/// Takes distributed locks; cheap to clone.
#[derive(Clone, Debug)]
pub struct DistLocker {
    inner: Arc<LockerInner>,
}

impl DistLocker {
    /// A locker that reaches the nodes through `transport`; `owner` names this node in
    /// diagnostics.
    pub fn new(transport: Arc<dyn LockTransport>, owner: String, config: LockConfig) -> Self {
        Self {
            inner: Arc::new(LockerInner {
                transport,
                owner,
                config,
            }),
        }
    }

    /// Drops every entry this locker's owner holds on every node that answers (at start, for a
    /// previous process's leftovers; at shutdown, for locks still held by work cut short).
    pub async fn release_all_of_owner(&self) {
        let inner = &self.inner;
        let request = LockRequest::ReleaseOwner {
            owner: inner.owner.clone(),
        };
        let all_nodes = inner.all_nodes();
        let results = inner
            .send_to(&all_nodes, &request, inner.config.call_timeout)
            .await;
        let n_failed = results.iter().filter(|r| r.is_err()).count();
        if n_failed > 0 {
            tracing::info!(
                n_failed,
                "some nodes did not confirm dropping this node's locks; theirs expire"
            );
        }
    }

    /// The locker's configuration (for callers that want its default acquire timeout).
    pub fn config(&self) -> &LockConfig {
        &self.inner.config
    }

    /// Acquires an exclusive lock on `resource` from a quorum (n/2+1) of nodes, retrying with a
    /// randomized backoff (a few ms growing to ~100 ms) until `timeout`; on a partial grant it
    /// releases what it got before retrying. Err(LockTimeout) if the deadline passes.
    ///
    /// At least one attempt is made even with a zero timeout. The call may overrun `timeout`
    /// by about [`LOCK_ATTEMPT_CALL_TIMEOUT_MIN`] plus the release of a partial grant.
    pub async fn lock(&self, resource: &str, timeout: Duration) -> Result<DistLockGuard, ClusterError> {
        let inner = &self.inner;
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        let quorum = inner.quorum();
        let mut backoff = LOCK_RETRY_BACKOFF_MIN;
        loop {
            let uid = uuid::Uuid::new_v4().to_string();
            let attempt_start = Instant::now();
            let remaining = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(attempt_start)
            });
            let call_timeout = inner
                .config
                .call_timeout
                .min(remaining.max(LOCK_ATTEMPT_CALL_TIMEOUT_MIN));
            let request = LockRequest::Acquire {
                resource: resource.to_owned(),
                uid: uid.clone(),
                owner: inner.owner.clone(),
                ttl_ms: inner.ttl_ms(),
            };
            let released = Arc::new(AtomicBool::new(false));
            let (granted_idxs, unanswered_idxs) = inner
                .acquire_round(&request, quorum, call_timeout, Arc::clone(&released))
                .await;
            if granted_idxs.len() >= quorum {
                return Ok(DistLockGuard::start(
                    Arc::clone(inner),
                    resource.to_owned(),
                    uid,
                    attempt_start,
                    released,
                ));
            }
            released.store(true, Ordering::SeqCst);
            // Partial grant: undo it before anyone retries. Nodes that answered are released
            // and waited for; nodes that did not answer may still apply the acquire later, so
            // they are sent a release too, in the background (they may be slow or down).
            if !granted_idxs.is_empty() {
                inner.release_on(&granted_idxs, resource, &uid).await;
            }
            if !unanswered_idxs.is_empty() {
                spawn_release(Arc::clone(inner), unanswered_idxs, resource.to_owned(), uid);
            }
            let now = Instant::now();
            let remaining =
                deadline.map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(now));
            if remaining.is_zero() {
                return Err(ClusterError::LockTimeout {
                    resource: resource.to_owned(),
                });
            }
            let backoff_floor_us = u64::try_from(backoff.as_micros() / 2).unwrap_or(u64::MAX);
            let backoff_ceiling_us = u64::try_from(backoff.as_micros()).unwrap_or(u64::MAX);
            let sleep = Duration::from_micros(rand::random_range(backoff_floor_us..=backoff_ceiling_us));
            tokio::time::sleep(sleep.min(remaining)).await;
            backoff = backoff.saturating_mul(2).min(LOCK_RETRY_BACKOFF_MAX);
        }
    }
}

/// Sends a release to `node_idxs` in a background task, when there is a runtime to run it.
/// Without one the entries simply expire after their ttl.
fn spawn_release(inner: Arc<LockerInner>, node_idxs: Vec<usize>, resource: String, uid: String) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move { inner.release_on(&node_idxs, &resource, &uid).await });
        }
        Err(_) => {
            tracing::debug!(%resource, "no runtime to release a lock; it expires after its ttl");
        }
    }
}

/// State shared by a guard and its refresh task.
#[derive(Debug)]
struct HeldLock {
    resource: String,
    uid: String,
    /// Set when a refresh round lost quorum.
    lost: AtomicBool,
    /// Until when this holder may rely on the lock: the start of the last successful round
    /// (acquire or refresh) plus the ttl.
    valid_until: Mutex<Instant>,
}

impl HeldLock {
    fn valid_until(&self) -> MutexGuard<'_, Instant> {
        self.valid_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Held lock. Refreshes itself in a background task every refresh_interval (quorum of Refreshed
/// needed; if a refresh round loses quorum, `is_lost()` becomes true and a warning is logged).
/// Dropping it releases on all nodes (spawned, best effort); `release().await` releases and waits.
#[derive(Debug)]
pub struct DistLockGuard {
    inner: Arc<LockerInner>,
    held: Arc<HeldLock>,
    /// `None` once released (or when there was no runtime to refresh in).
    refresher: Option<tokio::task::JoinHandle<()>>,
    released: bool,
    /// Shared with the acquire round's late answers: set before releases go out, so a grant
    /// that lands afterwards is released too.
    released_flag: Arc<AtomicBool>,
}

impl DistLockGuard {
    fn start(
        inner: Arc<LockerInner>,
        resource: String,
        uid: String,
        granted_from: Instant,
        released_flag: Arc<AtomicBool>,
    ) -> Self {
        let valid_until = granted_from.checked_add(inner.config.ttl).unwrap_or(granted_from);
        let held = Arc::new(HeldLock {
            resource,
            uid,
            lost: AtomicBool::new(false),
            valid_until: Mutex::new(valid_until),
        });
        let refresher = match tokio::runtime::Handle::try_current() {
            Ok(handle) => Some(handle.spawn(refresh_loop(Arc::clone(&inner), Arc::clone(&held)))),
            Err(_) => {
                tracing::warn!(
                    resource = %held.resource,
                    "no runtime to refresh a lock; it is lost after its ttl"
                );
                None
            }
        };
        Self {
            inner,
            held,
            refresher,
            released: false,
            released_flag,
        }
    }

    /// The locked resource.
    pub fn resource(&self) -> &str {
        &self.held.resource
    }

    /// True once the lock can no longer be relied on: a refresh round lost quorum, or no round
    /// succeeded within the ttl. The holder must then stop treating itself as holder.
    pub fn is_lost(&self) -> bool {
        self.held.lost.load(Ordering::Acquire) || Instant::now() >= *self.held.valid_until()
    }

    /// Stops refreshing and releases the lock on all nodes, waiting for their answers (each
    /// bounded by the call timeout).
    pub async fn release(mut self) {
        self.released = true;
        self.released_flag.store(true, Ordering::SeqCst);
        if let Some(refresher) = self.refresher.take() {
            refresher.abort();
        }
        let all_nodes = self.inner.all_nodes();
        self.inner
            .release_on(&all_nodes, &self.held.resource, &self.held.uid)
            .await;
    }
}

impl Drop for DistLockGuard {
    fn drop(&mut self) {
        if let Some(refresher) = self.refresher.take() {
            refresher.abort();
        }
        if !self.released {
            self.released = true;
            self.released_flag.store(true, Ordering::SeqCst);
            spawn_release(
                Arc::clone(&self.inner),
                self.inner.all_nodes(),
                self.held.resource.clone(),
                self.held.uid.clone(),
            );
        }
    }
}

/// Refreshes `held` on all nodes every refresh interval until a round loses quorum.
async fn refresh_loop(inner: Arc<LockerInner>, held: Arc<HeldLock>) {
    let interval = inner.config.refresh_interval.max(LOCK_REFRESH_INTERVAL_MIN);
    let quorum = inner.quorum();
    let all_nodes = inner.all_nodes();
    let request = LockRequest::Refresh {
        resource: held.resource.clone(),
        uid: held.uid.clone(),
        ttl_ms: inner.ttl_ms(),
    };
    loop {
        tokio::time::sleep(interval).await;
        let round_start = Instant::now();
        let results = inner
            .send_to(&all_nodes, &request, inner.config.call_timeout)
            .await;
        let n_refreshed = results
            .iter()
            .filter(|result| matches!(result, Ok(LockResponse::Refreshed)))
            .count();
        if n_refreshed >= quorum {
            let mut valid_until = held.valid_until();
            *valid_until = round_start.checked_add(inner.config.ttl).unwrap_or(round_start);
        } else {
            held.lost.store(true, Ordering::Release);
            tracing::warn!(
                resource = %held.resource,
                n_refreshed,
                quorum,
                "distributed lock lost: refresh did not reach quorum"
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize};

    /// In-process nodes; each can be made down (answers Err) or slow.
    #[derive(Debug)]
    struct Cluster {
        servers: Vec<LockServer>,
        down: Vec<AtomicBool>,
        delay_ms: Vec<AtomicU64>,
    }

    impl Cluster {
        fn new(n_nodes: usize) -> Arc<Self> {
            Arc::new(Self {
                servers: (0..n_nodes).map(|_| LockServer::new()).collect(),
                down: (0..n_nodes).map(|_| AtomicBool::new(false)).collect(),
                delay_ms: (0..n_nodes).map(|_| AtomicU64::new(0)).collect(),
            })
        }

        fn n_held_total(&self) -> usize {
            self.servers.iter().map(LockServer::n_held).sum()
        }
    }

    /// One locker's view of the cluster; `cut` partitions this locker from every node.
    #[derive(Debug)]
    struct MemTransport {
        cluster: Arc<Cluster>,
        cut: AtomicBool,
    }

    #[async_trait::async_trait]
    impl LockTransport for MemTransport {
        fn n_nodes(&self) -> usize {
            self.cluster.servers.len()
        }

        async fn send(&self, node_idx: usize, request: LockRequest) -> Result<LockResponse, String> {
            if self.cut.load(Ordering::SeqCst) {
                return Err("partitioned".to_owned());
            }
            let delay_ms = self.cluster.delay_ms[node_idx].load(Ordering::SeqCst);
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            if self.cluster.down[node_idx].load(Ordering::SeqCst) {
                return Err("down".to_owned());
            }
            Ok(self.cluster.servers[node_idx].handle(request))
        }
    }

    fn test_config() -> LockConfig {
        LockConfig {
            ttl: Duration::from_millis(200),
            refresh_interval: Duration::from_millis(50),
            acquire_timeout: Duration::from_secs(1),
            call_timeout: Duration::from_millis(100),
        }
    }

    fn locker(cluster: &Arc<Cluster>, config: LockConfig) -> (DistLocker, Arc<MemTransport>) {
        let transport = Arc::new(MemTransport {
            cluster: Arc::clone(cluster),
            cut: AtomicBool::new(false),
        });
        let locker = DistLocker::new(transport.clone(), "test-node".to_owned(), config);
        (locker, transport)
    }

    fn acquire(resource: &str, uid: &str, ttl_ms: u64) -> LockRequest {
        LockRequest::Acquire {
            resource: resource.to_owned(),
            uid: uid.to_owned(),
            owner: "o".to_owned(),
            ttl_ms,
        }
    }

    fn refresh(resource: &str, uid: &str, ttl_ms: u64) -> LockRequest {
        LockRequest::Refresh {
            resource: resource.to_owned(),
            uid: uid.to_owned(),
            ttl_ms,
        }
    }

    fn release(resource: &str, uid: &str) -> LockRequest {
        LockRequest::Release {
            resource: resource.to_owned(),
            uid: uid.to_owned(),
        }
    }

    /// Waits (in runtime time) until `cond` holds, up to `limit`.
    async fn wait_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while !cond() {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }

    #[tokio::test(start_paused = true)]
    async fn server_semantics() {
        let server = LockServer::new();
        // (request, expected answer, live entries afterwards)
        let steps = [
            (acquire("r", "a", 1000), LockResponse::Granted, 1),
            (acquire("r", "a", 1000), LockResponse::Granted, 1),
            (acquire("r", "b", 1000), LockResponse::Refused, 1),
            (release("r", "b"), LockResponse::NotHeld, 1),
            (refresh("r", "b", 1000), LockResponse::NotHeld, 1),
            (refresh("r", "a", 1000), LockResponse::Refreshed, 1),
            (acquire("s", "b", 1000), LockResponse::Granted, 2),
            (release("r", "a"), LockResponse::Released, 1),
            (release("r", "a"), LockResponse::NotHeld, 1),
            (refresh("r", "a", 1000), LockResponse::NotHeld, 1),
            (acquire("r", "b", 1000), LockResponse::Granted, 2),
        ];
        for (step_idx, (request, expected, n_held)) in steps.into_iter().enumerate() {
            assert_eq!(server.handle(request), expected, "step {step_idx}");
            assert_eq!(server.n_held(), n_held, "step {step_idx}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn server_expiry_replaces_and_never_revives() {
        let server = LockServer::new();
        assert_eq!(server.handle(acquire("r", "a", 100)), LockResponse::Granted);
        tokio::time::advance(Duration::from_millis(99)).await;
        assert_eq!(server.handle(acquire("r", "b", 100)), LockResponse::Refused);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(server.n_held(), 0);
        // Expired: a refresh by the old holder does not revive it, another uid takes it.
        assert_eq!(server.handle(refresh("r", "a", 100)), LockResponse::NotHeld);
        assert_eq!(server.handle(acquire("r", "b", 100)), LockResponse::Granted);
        // Expired entry replaced directly by an acquire; the old holder cannot release it.
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(server.handle(acquire("r", "c", 100)), LockResponse::Granted);
        assert_eq!(server.handle(release("r", "b")), LockResponse::NotHeld);
        assert_eq!(server.handle(acquire("r", "b", 100)), LockResponse::Refused);
        // Refresh extends the deadline.
        tokio::time::advance(Duration::from_millis(80)).await;
        assert_eq!(server.handle(refresh("r", "c", 100)), LockResponse::Refreshed);
        tokio::time::advance(Duration::from_millis(80)).await;
        assert_eq!(server.handle(acquire("r", "b", 100)), LockResponse::Refused);
        // Huge ttls are clamped, not overflowed.
        assert_eq!(
            server.handle(acquire("big", "a", u64::MAX)),
            LockResponse::Granted
        );
        tokio::time::advance(LOCK_TTL_MAX).await;
        assert_eq!(server.handle(acquire("big", "b", 1)), LockResponse::Granted);
    }

    #[tokio::test(start_paused = true)]
    async fn server_purge_keeps_table_bounded() {
        let server = LockServer::new();
        let n_resources = 1000;
        for resource_idx in 0..n_resources {
            let request = acquire(&format!("r{resource_idx}"), "a", 10);
            assert_eq!(server.handle(request), LockResponse::Granted);
        }
        assert_eq!(server.n_entries(), n_resources);
        tokio::time::advance(Duration::from_millis(10)).await;
        assert_eq!(server.n_held(), 0);
        // Unrelated traffic purges the expired entries with bounded work per call.
        for _ in 0..n_resources / (LOCK_PURGE_CHECKS_PER_CALL - 1) + 1 {
            server.handle(release("other", "x"));
        }
        assert_eq!(server.n_entries(), 0);
        // Churn of acquire/release on many resources does not grow the table or the queue.
        for round_idx in 0..10_000 {
            let resource = format!("c{}", round_idx % 100);
            server.handle(acquire(&resource, "u", 1000));
            server.handle(release(&resource, "u"));
        }
        assert_eq!(server.n_entries(), 0);
        assert!(server.table().purge_queue.len() <= 2 * LOCK_PURGE_CHECKS_PER_CALL);
    }

    #[test]
    fn server_refuses_overlong_resource() {
        let server = LockServer::new();
        let resource = "x".repeat(LOCK_RESOURCE_BYTES_MAX + 1);
        assert_eq!(
            server.handle(acquire(&resource, "a", 1000)),
            LockResponse::Refused
        );
        assert_eq!(server.n_held(), 0);
    }

    #[test]
    fn release_owner_drops_only_that_owners_entries() {
        let server = LockServer::new();
        let take = |resource: &str, uid: &str, owner: &str| {
            server.handle(LockRequest::Acquire {
                resource: resource.into(),
                uid: uid.into(),
                owner: owner.into(),
                ttl_ms: 30_000,
            })
        };
        assert_eq!(take("a", "u1", "dead"), LockResponse::Granted);
        assert_eq!(take("b", "u2", "dead"), LockResponse::Granted);
        assert_eq!(take("c", "u3", "alive"), LockResponse::Granted);
        let released = server.handle(LockRequest::ReleaseOwner { owner: "dead".into() });
        assert_eq!(released, LockResponse::Released);
        assert_eq!(server.n_held(), 1);
        assert_eq!(take("a", "u4", "alive"), LockResponse::Granted);
        assert_eq!(take("c", "u5", "other"), LockResponse::Refused);
    }

    #[test]
    fn codec_round_trip() {
        let requests = [
            acquire("bucket/key", "uid-1", 30_000),
            refresh("bucket/key", "uid-1", 30_000),
            release("bucket/key", "uid-1"),
            LockRequest::ReleaseOwner {
                owner: "node-1:9000".into(),
            },
        ];
        for request in requests {
            assert_eq!(decode_request(&encode_request(&request)).unwrap(), request);
        }
        let responses = [
            LockResponse::Granted,
            LockResponse::Refused,
            LockResponse::Refreshed,
            LockResponse::NotHeld,
            LockResponse::Released,
        ];
        for response in responses {
            assert_eq!(decode_response(&encode_response(&response)).unwrap(), response);
        }
        for garbage in [&b""[..], b"\xc1", b"\x92\x01\x02"] {
            assert!(matches!(
                decode_request(garbage),
                Err(ClusterError::MalformedLockMessage { .. })
            ));
            assert!(matches!(
                decode_response(garbage),
                Err(ClusterError::MalformedLockMessage { .. })
            ));
        }
    }

    #[tokio::test]
    async fn single_node_lock_unlock() {
        let cluster = Cluster::new(1);
        let (locker, _) = locker(&cluster, test_config());
        let guard = locker.lock("b/k", Duration::from_secs(1)).await.unwrap();
        assert_eq!(guard.resource(), "b/k");
        assert!(!guard.is_lost());
        assert_eq!(cluster.n_held_total(), 1);
        let second = locker.lock("b/k", Duration::from_millis(30)).await;
        assert!(matches!(second, Err(ClusterError::LockTimeout { .. })));
        // A different resource is independent.
        let other = locker.lock("b/other", Duration::from_secs(1)).await.unwrap();
        guard.release().await;
        other.release().await;
        assert_eq!(cluster.n_held_total(), 0);
        let again = locker.lock("b/k", Duration::from_millis(30)).await.unwrap();
        again.release().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mutual_exclusion_under_contention() {
        let cluster = Cluster::new(4);
        let n_tasks = 20;
        let inside = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..n_tasks {
            // Each task is its own node-like locker over the shared servers.
            let (locker, _) = locker(&cluster, test_config());
            let inside = Arc::clone(&inside);
            let counter = Arc::clone(&counter);
            tasks.push(tokio::spawn(async move {
                let guard = locker.lock("b/k", Duration::from_secs(4)).await.unwrap();
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                // Non-atomic read-modify-write with a yield in the middle.
                let value = counter.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
                counter.store(value + 1, Ordering::SeqCst);
                inside.store(false, Ordering::SeqCst);
                guard.release().await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(counter.load(Ordering::SeqCst), n_tasks);
        // Late grants (answers that arrived after the lock was taken) are released too.
        assert!(wait_until(Duration::from_secs(1), || cluster.n_held_total() == 0).await);
    }

    #[tokio::test]
    async fn quorum_needs_majority_of_nodes() {
        let cluster = Cluster::new(4);
        let (locker, _) = locker(&cluster, test_config());
        cluster.down[0].store(true, Ordering::SeqCst);
        let guard = locker.lock("b/k", Duration::from_secs(1)).await.unwrap();
        assert_eq!(cluster.n_held_total(), 3);
        guard.release().await;

        cluster.down[1].store(true, Ordering::SeqCst);
        let start = std::time::Instant::now();
        let timeout = Duration::from_millis(150);
        let result = locker.lock("b/k", timeout).await;
        let elapsed = start.elapsed();
        assert!(matches!(result, Err(ClusterError::LockTimeout { resource }) if resource == "b/k"));
        assert!(elapsed >= timeout, "{elapsed:?}");
        assert!(elapsed < timeout + Duration::from_millis(150), "{elapsed:?}");
        // Partial grants from the two live nodes were released.
        assert_eq!(cluster.n_held_total(), 0);
    }

    #[tokio::test]
    async fn partial_grants_are_released() {
        let cluster = Cluster::new(4);
        // A foreign holder owns the resource on nodes 0 and 1 only.
        for node_idx in 0..2 {
            let granted = cluster.servers[node_idx].handle(acquire("b/k", "foreign", 60_000));
            assert_eq!(granted, LockResponse::Granted);
        }
        let (locker, _) = locker(&cluster, test_config());
        let result = locker.lock("b/k", Duration::from_millis(50)).await;
        assert!(matches!(result, Err(ClusterError::LockTimeout { .. })));
        assert_eq!(cluster.servers[0].n_held(), 1);
        assert_eq!(cluster.servers[1].n_held(), 1);
        assert_eq!(cluster.servers[2].n_held(), 0);
        assert_eq!(cluster.servers[3].n_held(), 0);
        assert_eq!(
            cluster.servers[0].handle(release("b/k", "foreign")),
            LockResponse::Released
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_node_delays_grant_by_at_most_call_timeout() {
        let cluster = Cluster::new(4);
        cluster.delay_ms[3].store(60_000, Ordering::SeqCst);
        let config = test_config();
        let (locker, _) = locker(&cluster, config);
        let start = Instant::now();
        let guard = locker.lock("b/k", Duration::from_secs(5)).await.unwrap();
        assert!(start.elapsed() <= config.call_timeout, "{:?}", start.elapsed());
        // The slow node's acquire was cancelled by the timeout, so it holds nothing.
        assert_eq!(cluster.n_held_total(), 3);
        guard.release().await;
    }

    #[tokio::test(start_paused = true)]
    async fn vanished_holder_expires_and_loses_its_lock() {
        let cluster = Cluster::new(4);
        let config = test_config();
        let (holder, holder_transport) = locker(&cluster, config);
        let (other, _) = locker(&cluster, config);
        let guard = holder.lock("b/k", Duration::from_secs(1)).await.unwrap();
        // The holder is cut off from every node: it can neither refresh nor release.
        holder_transport.cut.store(true, Ordering::SeqCst);
        let start = Instant::now();
        let taken = other.lock("b/k", Duration::from_secs(2)).await.unwrap();
        let waited = start.elapsed();
        assert!(waited <= config.ttl + LOCK_RETRY_BACKOFF_MAX, "{waited:?}");
        // The old holder knows: its refresh lost quorum.
        assert!(guard.is_lost());
        assert!(!taken.is_lost());
        drop(guard);
        taken.release().await;
        assert!(wait_until(Duration::from_secs(1), || cluster.n_held_total() == 0).await);
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_guard_without_refresh_expires() {
        let cluster = Cluster::new(3);
        let config = test_config();
        // A holder that never refreshes (refresh interval beyond the ttl) and never releases.
        let stale_config = LockConfig {
            refresh_interval: Duration::from_secs(3600),
            ..config
        };
        let (holder, _) = locker(&cluster, stale_config);
        let guard = holder.lock("b/k", Duration::from_secs(1)).await.unwrap();
        std::mem::forget(guard);
        let (other, _) = locker(&cluster, config);
        let start = Instant::now();
        let taken = other.lock("b/k", Duration::from_secs(2)).await.unwrap();
        assert!(start.elapsed() >= config.ttl - Duration::from_millis(1));
        assert!(start.elapsed() <= config.ttl + LOCK_RETRY_BACKOFF_MAX);
        taken.release().await;
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_keeps_lock_alive_past_several_ttls() {
        let cluster = Cluster::new(4);
        let config = test_config();
        let (holder, _) = locker(&cluster, config);
        let (other, _) = locker(&cluster, config);
        let guard = holder.lock("b/k", Duration::from_secs(1)).await.unwrap();
        tokio::time::sleep(config.ttl * 5).await;
        assert!(!guard.is_lost());
        let refused = other.lock("b/k", Duration::from_millis(100)).await;
        assert!(matches!(refused, Err(ClusterError::LockTimeout { .. })));
        // One node going down does not lose the lock (3 of 4 still refresh).
        cluster.down[0].store(true, Ordering::SeqCst);
        tokio::time::sleep(config.ttl * 2).await;
        assert!(!guard.is_lost());
        // A second one does.
        cluster.down[1].store(true, Ordering::SeqCst);
        tokio::time::sleep(config.refresh_interval + config.call_timeout).await;
        assert!(guard.is_lost());
        guard.release().await;
    }

    #[tokio::test]
    async fn dropped_guard_releases_in_background() {
        let cluster = Cluster::new(4);
        let (locker, _) = locker(&cluster, test_config());
        let guard = locker.lock("b/k", Duration::from_secs(1)).await.unwrap();
        // Granted once a quorum answered; the last node's grant lands in the background.
        assert!(wait_until(Duration::from_secs(1), || cluster.n_held_total() == 4).await);
        drop(guard);
        assert!(wait_until(Duration::from_secs(1), || cluster.n_held_total() == 0).await);
        let again = locker.lock("b/k", Duration::from_millis(50)).await.unwrap();
        again.release().await;
    }
}
