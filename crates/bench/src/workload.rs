//! What the workers do: the operation kinds, the weighted mix of `mixed` mode, object key
//! naming, and a small fast PRNG for choices and body bytes.
//!
//! Invariants:
//! - The mix weights sum to [`MIX_WEIGHT_TOTAL`] (checked at compile time) and a draw maps to
//!   exactly one kind.
//! - Object index `i` of a prefilled set belongs to worker `i % n_workers` with sequence
//!   `i / n_workers`, so workers that mutate (delete, mixed) only ever touch their own keys and
//!   never race each other, while readers may pick any index.

use serde::Serialize;

/// One kind of measured operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// PutObject.
    Put,
    /// GetObject (body streamed and discarded).
    Get,
    /// HeadObject.
    Stat,
    /// DeleteObject.
    Delete,
    /// One ListObjectsV2 page.
    List,
    /// A whole multipart upload: create, every part, complete.
    Multipart,
}

impl OpKind {
    /// Lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Stat => "stat",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Multipart => "multipart",
        }
    }
}

/// Sum of the mix weights: draws are uniform in `0..MIX_WEIGHT_TOTAL`.
pub const MIX_WEIGHT_TOTAL: u32 = 100;
/// `mixed` mode: 45 % get, 30 % stat, 15 % put, 10 % delete.
pub const MIX_WEIGHTS: [(OpKind, u32); 4] = [
    (OpKind::Get, 45),
    (OpKind::Stat, 30),
    (OpKind::Put, 15),
    (OpKind::Delete, 10),
];
const _: () =
    assert!(MIX_WEIGHTS[0].1 + MIX_WEIGHTS[1].1 + MIX_WEIGHTS[2].1 + MIX_WEIGHTS[3].1 == MIX_WEIGHT_TOTAL);

/// The kind for a draw in `0..MIX_WEIGHT_TOTAL` (draws past the end clamp to the last kind).
pub fn mix_pick(draw: u32) -> OpKind {
    let mut bound = 0;
    for (kind, weight) in MIX_WEIGHTS {
        bound += weight;
        if draw < bound {
            return kind;
        }
    }
    MIX_WEIGHTS[MIX_WEIGHTS.len() - 1].0
}

/// Key of sequence `seq` of worker `worker_idx` under the run prefix.
pub fn object_key(run_prefix: &str, worker_idx: u32, seq: u64) -> String {
    format!("{run_prefix}/w{worker_idx:04}/{seq:010}")
}

/// Key of index `object_idx` of a prefilled set spread over `n_workers`.
pub fn prefilled_key(run_prefix: &str, object_idx: u64, n_workers: u32) -> String {
    let n = u64::from(n_workers.max(1));
    // object_idx % n < n_workers, so the conversion cannot fail.
    let worker_idx = u32::try_from(object_idx % n).unwrap_or(0);
    object_key(run_prefix, worker_idx, object_idx / n)
}

/// How many of `n_objects` prefilled objects worker `worker_idx` owns.
pub fn owned_count(n_objects: u64, worker_idx: u32, n_workers: u32) -> u64 {
    let n = u64::from(n_workers.max(1));
    n_objects / n + u64::from(u64::from(worker_idx) < n_objects % n)
}

/// xorshift64* generator: fast, not cryptographic; plenty for choosing keys and filling bodies.
#[derive(Clone, Debug)]
pub struct FastRng(u64);

impl FastRng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        // SplitMix64 scramble so nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// A generator seeded from the clock and `salt`.
    pub fn from_clock(salt: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self::new(nanos ^ salt.rotate_left(32) ^ u64::from(std::process::id()))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Fills `buffer` with random bytes.
    pub fn fill(&mut self, buffer: &mut [u8]) {
        let mut chunks = buffer.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        tail.copy_from_slice(&last[..tail.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_boundaries() {
        let cases = [
            (0, OpKind::Get),
            (44, OpKind::Get),
            (45, OpKind::Stat),
            (74, OpKind::Stat),
            (75, OpKind::Put),
            (89, OpKind::Put),
            (90, OpKind::Delete),
            (99, OpKind::Delete),
            (1000, OpKind::Delete),
        ];
        for (draw, kind) in cases {
            assert_eq!(mix_pick(draw), kind, "{draw}");
        }
    }

    #[test]
    fn mix_frequencies_follow_the_weights() {
        let mut rng = FastRng::new(42);
        let n_draws = 200_000u32;
        let mut counts = std::collections::HashMap::new();
        for _ in 0..n_draws {
            *counts
                .entry(mix_pick(rng.below(u64::from(MIX_WEIGHT_TOTAL)) as u32))
                .or_insert(0u32) += 1;
        }
        for (kind, weight) in MIX_WEIGHTS {
            let share = f64::from(counts[&kind]) / f64::from(n_draws);
            let expected = f64::from(weight) / f64::from(MIX_WEIGHT_TOTAL);
            assert!((share - expected).abs() < 0.01, "{kind:?}: {share} vs {expected}");
        }
    }

    #[test]
    fn prefilled_keys_partition_by_worker() {
        let n_workers = 3;
        let n_objects = 10;
        let mut all = Vec::new();
        for worker_idx in 0..n_workers {
            for seq in 0..owned_count(n_objects, worker_idx, n_workers) {
                all.push(object_key("run", worker_idx, seq));
            }
        }
        let mut by_idx: Vec<String> = (0..n_objects)
            .map(|i| prefilled_key("run", i, n_workers))
            .collect();
        all.sort();
        by_idx.sort();
        assert_eq!(all, by_idx);
        assert_eq!(prefilled_key("run", 7, 3), "run/w0001/0000000002");
        assert_eq!(owned_count(10, 0, 3), 4);
        assert_eq!(owned_count(10, 2, 3), 3);
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = FastRng::new(7);
        let mut b = FastRng::new(7);
        let mut buf_a = [0u8; 13];
        let mut buf_b = [0u8; 13];
        a.fill(&mut buf_a);
        b.fill(&mut buf_b);
        assert_eq!(buf_a, buf_b);
        assert_ne!(buf_a, [0u8; 13]);
        assert_ne!(FastRng::new(1).next_u64(), FastRng::new(2).next_u64());
        let mut rng = FastRng::new(0);
        assert!((0..1000).all(|_| rng.below(10) < 10));
        assert_eq!(rng.below(0), 0);
    }
}
