//! The MD5 of object bodies (the ETag), hashed on one shared thread that advances the bodies of
//! concurrent PUTs together in SIMD lanes.
//!
//! MD5 is serial within one body (~0.9 GiB/s per core here with md5-many's scalar kernel) and
//! was half of the server's CPU in a 64 MiB PUT profile. md5-many's multi-buffer kernel
//! advances up to 16 bodies per AVX-512 step at ~1.8× the cost of one scalar block
//! (`benches/benches/hashes.rs`), so with three or more bodies hashed together the CPU per byte
//! falls 2–8×. A PUT queues its blocks on its body and goes on receiving, encoding and writing;
//! the hasher thread walks every body with queued blocks in 64 KiB steps, in lanes where it
//! can. The PUT waits only for the final digest, and when it gets
//! [`QUEUED_BLOCKS_MAX`] ahead.
//!
//! Invariants:
//! - A body's blocks are hashed in the order they were queued; only the hasher thread advances
//!   a body's state while blocks are queued, and the PUT reads it only once the queue is empty.
//! - Memory: a body holds at most [`QUEUED_BLOCKS_MAX`] blocks besides the one being filled,
//!   and beyond one block each, all bodies together hold at most [`QUEUED_BYTES_TOTAL_MAX`].
//! - Never a wrong digest: if the hasher thread dies, bodies it was working on fail
//!   ([`ObjectError::Internal`]) and new bodies are hashed inline.
//! - Blocks below [`OFFLOAD_BYTES_MIN`] of a body with nothing queued are hashed inline: for a
//!   4 KiB PUT the hand-off would cost more than the hash.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, mpsc};

use bytes::Bytes;
use md5_many::{Md5Many, Md5State};
use tokio::sync::Notify;

use crate::error::{ObjectError, ObjectResult};

/// Blocks smaller than this are hashed on the calling task when nothing is queued.
pub(crate) const OFFLOAD_BYTES_MIN: usize = 64 * 1024;

/// Blocks a body may have queued before `update` waits (4 MiB of 1 MiB blocks).
pub(crate) const QUEUED_BLOCKS_MAX: usize = 4;

/// Bytes queued by all bodies together above which a body that already has a block queued
/// waits: with many PUTs at once, one block each fills the lanes, and memory stays bounded by
/// this plus one block per PUT.
pub(crate) const QUEUED_BYTES_TOTAL_MAX: usize = 32 << 20;

/// Bytes queued on all bodies, not yet hashed.
static QUEUED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// How far one body advances per step of the hasher thread: a body that arrives meanwhile
/// joins the lanes after at most this much of the others' data.
const STEP_BYTES: usize = 64 * 1024;

/// Fewer bodies than this in one step are hashed with the scalar kernel: a lane step costs
/// about 1.8 scalar blocks.
const LANE_BODIES_MIN: usize = 3;

/// Narrower kernels (4 lanes) are not used; 8 (AVX2) and 16 (AVX-512) lanes were measured.
const KERNEL_LANES_MIN: usize = 8;

/// The MD5 block the kernels work in.
const MD5_BLOCK_BYTES: usize = 64;

/// Set when the hasher thread has died: new bodies hash inline.
static HASHER_DEAD: AtomicBool = AtomicBool::new(false);

/// One body's running MD5.
pub(crate) struct BodyMd5 {
    body: Arc<Body>,
}

struct Body {
    inner: Mutex<BodyInner>,
    /// Signalled whenever a queued block is fully hashed (or the body is poisoned).
    progress: Notify,
}

struct BodyInner {
    state: Md5State,
    /// Blocks not fully hashed yet; the front one is hashed up to `offset`.
    queue: VecDeque<Bytes>,
    offset: usize,
    /// Whether the hasher thread has this body (in its channel or its active set).
    scheduled: bool,
    /// The hasher thread died while holding this body: its digest is lost.
    poisoned: bool,
}

impl Body {
    fn lock(&self) -> MutexGuard<'_, BodyInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BodyMd5 {
    pub(crate) fn new() -> Self {
        Self {
            body: Arc::new(Body {
                inner: Mutex::new(BodyInner {
                    state: Md5State::new(),
                    queue: VecDeque::new(),
                    offset: 0,
                    scheduled: false,
                    poisoned: false,
                }),
                progress: Notify::new(),
            }),
        }
    }

    /// Appends `block` to the body. Returns at once unless [`QUEUED_BLOCKS_MAX`] blocks are
    /// already waiting to be hashed.
    pub(crate) async fn update(&mut self, block: Bytes) {
        loop {
            // Registered before the check, so a completion in between is not missed.
            let progressed = self.body.progress.notified();
            {
                let mut inner = self.body.lock();
                let idle = inner.queue.is_empty() && !inner.scheduled;
                if idle && (block.len() < OFFLOAD_BYTES_MIN || HASHER_DEAD.load(Ordering::Relaxed)) {
                    inner.state.update(&block);
                    return;
                }
                let room = inner.queue.is_empty()
                    || (inner.queue.len() < QUEUED_BLOCKS_MAX
                        && QUEUED_BYTES.load(Ordering::Relaxed) < QUEUED_BYTES_TOTAL_MAX);
                if inner.poisoned || room {
                    QUEUED_BYTES.fetch_add(block.len(), Ordering::Relaxed);
                    inner.queue.push_back(block);
                    if !inner.scheduled && !inner.poisoned {
                        inner.scheduled = true;
                        if hasher().send(Arc::clone(&self.body)).is_err() {
                            // Never happens while the thread lives; hash what is queued here.
                            HASHER_DEAD.store(true, Ordering::Relaxed);
                            inner.scheduled = false;
                            let BodyInner {
                                state, queue, offset, ..
                            } = &mut *inner;
                            for (i, queued) in queue.drain(..).enumerate() {
                                state.update(&queued[if i == 0 { *offset } else { 0 }..]);
                                QUEUED_BYTES.fetch_sub(queued.len(), Ordering::Relaxed);
                            }
                            *offset = 0;
                        }
                    }
                    return;
                }
            }
            progressed.await;
        }
    }

    /// The digest of every block appended, once the hasher thread has caught up.
    pub(crate) async fn finalize(self) -> ObjectResult<[u8; 16]> {
        loop {
            let progressed = self.body.progress.notified();
            {
                let inner = self.body.lock();
                if inner.poisoned {
                    return Err(ObjectError::Internal {
                        what: "the MD5 hasher thread stopped",
                    });
                }
                if inner.queue.is_empty() {
                    return Ok(inner.state.finalize());
                }
            }
            progressed.await;
        }
    }
}

/// The hasher thread's queue of bodies with blocks to hash, started on first use.
fn hasher() -> &'static mpsc::Sender<Arc<Body>> {
    static HASHER: OnceLock<mpsc::Sender<Arc<Body>>> = OnceLock::new();
    HASHER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Arc<Body>>();
        let spawned = std::thread::Builder::new()
            .name("strata-md5".into())
            .spawn(move || run_hasher(&receiver));
        if let Err(err) = spawned {
            // The receiver is dropped with the closure, so every send fails and bodies are
            // hashed inline.
            tracing::warn!(%err, "could not start the MD5 hasher thread; hashing inline");
        }
        sender
    })
}

/// The bodies the hasher thread is working on; if the thread unwinds, they are poisoned so no
/// PUT waits forever or gets a wrong digest.
struct Active(Vec<Arc<Body>>);

impl Drop for Active {
    fn drop(&mut self) {
        if std::thread::panicking() {
            HASHER_DEAD.store(true, Ordering::Relaxed);
            for body in &self.0 {
                body.lock().poisoned = true;
                body.progress.notify_waiters();
            }
        }
    }
}

fn run_hasher(receiver: &mpsc::Receiver<Arc<Body>>) {
    let engine = Md5Many::new();
    let mut active = Active(Vec::new());
    loop {
        if active.0.is_empty() {
            match receiver.recv() {
                Ok(body) => active.0.push(body),
                Err(_) => return,
            }
        }
        while let Ok(body) = receiver.try_recv() {
            active.0.push(body);
        }
        step(engine, &active.0);
        // A body leaves when its queue is empty; under its lock, so a block queued meanwhile
        // sees `scheduled == false` and sends the body again.
        active.0.retain(|body| {
            let mut inner = body.lock();
            if inner.queue.is_empty() {
                inner.scheduled = false;
                false
            } else {
                true
            }
        });
    }
}

/// What one step works on for one body, taken out of its lock.
struct Work {
    state: Md5State,
    block: Bytes,
    offset: usize,
    len_bytes: usize,
}

impl Work {
    fn lane_ready(&self) -> bool {
        self.state.bytes_hashed().is_multiple_of(MD5_BLOCK_BYTES as u64)
            && self.block.len() - self.offset >= MD5_BLOCK_BYTES
    }

    fn input(&self) -> &[u8] {
        &self.block[self.offset..self.offset + self.len_bytes]
    }
}

/// Advances every body by up to [`STEP_BYTES`]: those on an MD5 block boundary in lockstep
/// lanes when there are enough of them, the others with the scalar kernel.
fn step(engine: Md5Many, bodies: &[Arc<Body>]) {
    let mut work: Vec<Work> = bodies
        .iter()
        .map(|body| {
            let inner = body.lock();
            let block = inner.queue.front().cloned().unwrap_or_default();
            let len_bytes = (block.len() - inner.offset.min(block.len())).min(STEP_BYTES);
            Work {
                state: inner.state,
                block,
                offset: inner.offset,
                len_bytes,
            }
        })
        .collect();
    hash_step(engine, &mut work);
    for (body, done) in bodies.iter().zip(work) {
        let mut inner = body.lock();
        inner.state = done.state;
        inner.offset = done.offset + done.len_bytes;
        if inner
            .queue
            .front()
            .is_some_and(|front| inner.offset >= front.len())
        {
            if let Some(hashed) = inner.queue.pop_front() {
                QUEUED_BYTES.fetch_sub(hashed.len(), Ordering::Relaxed);
            }
            inner.offset = 0;
            drop(inner);
            body.progress.notify_waiters();
        }
    }
}

/// Hashes each work item's `input()` into its state; sets `len_bytes` to what was hashed.
fn hash_step(engine: Md5Many, work: &mut [Work]) {
    let lanes = engine.lanes();
    let mut in_lanes: Vec<usize> = (0..work.len()).filter(|&i| work[i].lane_ready()).collect();
    in_lanes.truncate(lanes);
    let use_lanes = lanes >= KERNEL_LANES_MIN && in_lanes.len() >= LANE_BODIES_MIN;
    if use_lanes {
        let common_bytes = in_lanes.iter().map(|&i| work[i].len_bytes).min().unwrap_or(0) / MD5_BLOCK_BYTES
            * MD5_BLOCK_BYTES;
        for &i in &in_lanes {
            work[i].len_bytes = common_bytes;
        }
        // Lanes without a body hash a copy of the first body's bytes into throwaway states: the
        // kernel's cost is per step, not per lane, and its lockstep path wants every lane full.
        let mut states = vec![Md5State::new(); lanes];
        let mut inputs: Vec<&[u8]> = vec![work[in_lanes[0]].input(); lanes];
        for (lane, &i) in in_lanes.iter().enumerate() {
            states[lane] = work[i].state;
            inputs[lane] = work[i].input();
        }
        engine.update_many(&mut states, &inputs);
        for (lane, &i) in in_lanes.iter().enumerate() {
            work[i].state = states[lane];
        }
    }
    for (i, item) in work.iter_mut().enumerate() {
        if !(use_lanes && in_lanes.contains(&i)) {
            item.state
                .update(&item.block[item.offset..item.offset + item.len_bytes]);
        }
    }
}

#[cfg(test)]
mod tests {
    use md5::Digest;
    use proptest::prelude::*;

    use super::*;

    fn reference(chunks: &[Vec<u8>]) -> [u8; 16] {
        let mut md5 = md5::Md5::new();
        for chunk in chunks {
            md5.update(chunk);
        }
        md5.finalize().into()
    }

    fn body(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[tokio::test]
    async fn one_body_in_blocks_matches_reference_md5() {
        let lens = [
            1 << 20,
            1 << 20,
            100,
            OFFLOAD_BYTES_MIN + 3,
            7,
            1 << 20,
            1 << 20,
            1 << 20,
            1 << 20,
        ];
        let chunks: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| body(i as u8, len))
            .collect();
        let mut md5 = BodyMd5::new();
        for chunk in &chunks {
            md5.update(Bytes::from(chunk.clone())).await;
        }
        assert_eq!(md5.finalize().await.unwrap(), reference(&chunks));
        assert_eq!(BodyMd5::new().finalize().await.unwrap(), reference(&[]));
        let mut small = BodyMd5::new();
        small.update(Bytes::from_static(b"hello")).await;
        assert_eq!(small.finalize().await.unwrap(), reference(&[b"hello".to_vec()]));
    }

    /// Many bodies at once, so the hasher thread runs them in lanes (bodies off a 64-byte
    /// boundary and of different lengths included).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_bodies_match_reference_md5() {
        let mut tasks = Vec::new();
        for body_idx in 0..24usize {
            tasks.push(tokio::spawn(async move {
                let lens = [
                    1 << 20,
                    (1 << 20) - 64 * body_idx,
                    OFFLOAD_BYTES_MIN + body_idx,
                    1 << 20,
                    body_idx,
                    1 << 20,
                ];
                let chunks: Vec<Vec<u8>> = lens
                    .iter()
                    .enumerate()
                    .map(|(i, &len)| body((body_idx * 7 + i) as u8, len))
                    .collect();
                let mut md5 = BodyMd5::new();
                for chunk in &chunks {
                    md5.update(Bytes::from(chunk.clone())).await;
                }
                (md5.finalize().await.unwrap(), reference(&chunks))
            }));
        }
        for task in tasks {
            let (got, expected) = task.await.unwrap();
            assert_eq!(got, expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// One step of the kernel against the reference, for any mix of prefixes (half on a
        /// 64-byte boundary, so most steps use the lanes), offsets and lengths.
        #[test]
        fn hash_step_matches_reference(
            items in proptest::collection::vec(
                (
                    prop_oneof![(0usize..4).prop_map(|k| k * 64), 0usize..200],
                    0usize..3000,
                    0usize..70_000,
                    any::<u8>(),
                ),
                1..40,
            )
        ) {
            let engine = Md5Many::new();
            let mut work = Vec::new();
            for (prefix_len, offset, len, seed) in &items {
                let prefix = body(*seed, *prefix_len);
                let block = body(seed.wrapping_add(1), offset + len);
                let mut state = Md5State::new();
                state.update(&prefix);
                work.push(Work { state, block: Bytes::from(block), offset: *offset, len_bytes: (*len).min(STEP_BYTES) });
            }
            hash_step(engine, &mut work);
            for ((prefix_len, offset, _, seed), item) in items.iter().zip(&work) {
                let prefix = body(*seed, *prefix_len);
                let hashed = item.block[*offset..offset + item.len_bytes].to_vec();
                prop_assert_eq!(item.state.finalize(), reference(&[prefix, hashed]));
            }
        }
    }
}
