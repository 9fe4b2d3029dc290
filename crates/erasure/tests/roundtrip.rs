//! Property and sweep tests of the public erasure API: round trips for every layout of 2..=16
//! drives, with up to `n_parity` shards lost or bit-flipped, detection of every flip, the
//! `TooFewShards` refusal beyond that, and byte-identical healing.
// Helpers outside `#[test]` functions are test code too; clippy.toml exempts only the latter.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use strata_erasure::bitrot::HASH_BYTES;
use strata_erasure::{BLOCK_SIZE_BYTES, Erasure, ErasureError, Layout, SET_DRIVES_MAX, SET_DRIVES_MIN};

/// Every valid layout: 2..=16 drives, any parity from 0 to n_data.
fn all_layouts() -> Vec<Layout> {
    let mut layouts = Vec::new();
    for n_total in SET_DRIVES_MIN..=SET_DRIVES_MAX {
        for n_parity in 0..=n_total / 2 {
            layouts.push(Layout::new(n_total - n_parity, n_parity).unwrap());
        }
    }
    layouts
}

/// Deterministic pseudo-random bytes (xorshift64*), so large blocks cost no shrinking.
fn block_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Interesting block lengths for `n_data` data shards.
fn interesting_lens(n_data: usize) -> Vec<usize> {
    let mut lens = vec![
        0,
        1,
        n_data.saturating_sub(1),
        n_data,
        n_data + 1,
        3 * n_data - 1,
        3 * n_data + 1,
        BLOCK_SIZE_BYTES - 1,
        BLOCK_SIZE_BYTES,
    ];
    let near_full = BLOCK_SIZE_BYTES / n_data * n_data;
    lens.extend([near_full - 1, near_full]);
    lens.sort_unstable();
    lens.dedup();
    lens
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Missing,
    FlipBit(u64),
}

/// Applies `damage` to a copy of `frames`; returns the slots and the flipped shard indexes.
fn damage_frames(frames: &[Bytes], damage: &[(usize, Damage)]) -> (Vec<Option<Bytes>>, Vec<usize>) {
    let mut slots: Vec<Option<Bytes>> = frames.iter().cloned().map(Some).collect();
    let mut flipped = Vec::new();
    for &(shard_idx, kind) in damage {
        match kind {
            Damage::Missing => slots[shard_idx] = None,
            Damage::FlipBit(bit) => {
                let mut bytes = frames[shard_idx].to_vec();
                let bit_idx = (bit % (bytes.len() as u64 * 8)) as usize;
                bytes[bit_idx / 8] ^= 1 << (bit_idx % 8);
                slots[shard_idx] = Some(Bytes::from(bytes));
                flipped.push(shard_idx);
            }
        }
    }
    flipped.sort_unstable();
    (slots, flipped)
}

fn check_round_trip(layout: Layout, block: &[u8], damage: &[(usize, Damage)]) {
    let erasure = Erasure::new(layout).unwrap();
    let frames = erasure.encode_block_framed(block).unwrap();
    assert_eq!(frames.len(), layout.n_total());
    let framed_len = HASH_BYTES + erasure.shard_len(block.len());
    assert!(frames.iter().all(|f| f.len() == framed_len));

    let (slots, flipped) = damage_frames(&frames, damage);
    let decoded = erasure.decode_block_framed(&slots, block.len()).unwrap();
    assert_eq!(
        &decoded.data[..],
        block,
        "{layout:?} len {} damage {damage:?}",
        block.len()
    );
    assert_eq!(decoded.corrupt_shards, flipped);
    assert_eq!(
        erasure.reconstruct_block_framed(&slots, block.len()).unwrap(),
        frames
    );
}

#[test]
fn every_layout_survives_losing_first_and_last_shards() {
    for layout in all_layouts() {
        let n_parity = layout.n_parity();
        let n_total = layout.n_total();
        for (len_idx, len) in interesting_lens(layout.n_data()).into_iter().enumerate() {
            let block = block_bytes(len, len as u64 + 1);
            check_round_trip(layout, &block, &[]);
            let first: Vec<_> = (0..n_parity).map(|i| (i, Damage::Missing)).collect();
            check_round_trip(layout, &block, &first);
            let last: Vec<_> = (n_total - n_parity..n_total)
                .map(|i| (i, Damage::FlipBit(len_idx as u64 * 131)))
                .collect();
            check_round_trip(layout, &block, &last);
        }
    }
}

fn layout_strategy() -> impl Strategy<Value = Layout> {
    (SET_DRIVES_MIN..=SET_DRIVES_MAX)
        .prop_flat_map(|n_total| (Just(n_total), 0..=n_total / 2))
        .prop_map(|(n_total, n_parity)| Layout::new(n_total - n_parity, n_parity).unwrap())
}

fn len_strategy(n_data: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        proptest::sample::select(interesting_lens(n_data)),
        (0usize..=64).prop_map(move |k| (k * n_data).saturating_sub(1)),
        (0usize..=64).prop_map(move |k| k * n_data + 1),
        0usize..=8192,
        0usize..=BLOCK_SIZE_BYTES,
    ]
}

fn damage_strategy(
    n_total: usize,
    n_damaged: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<(usize, Damage)>> {
    let damage_kind = prop_oneof![Just(Damage::Missing), any::<u64>().prop_map(Damage::FlipBit)];
    proptest::sample::subsequence((0..n_total).collect::<Vec<_>>(), n_damaged)
        .prop_flat_map(move |idxs| {
            let n = idxs.len();
            (Just(idxs), proptest::collection::vec(damage_kind.clone(), n))
        })
        .prop_map(|(idxs, kinds)| idxs.into_iter().zip(kinds).collect())
}

/// A layout, a block length and seed, and damage to at most `n_parity` shards.
fn recoverable_case() -> impl Strategy<Value = (Layout, usize, u64, Vec<(usize, Damage)>)> {
    layout_strategy().prop_flat_map(|layout| {
        (
            Just(layout),
            len_strategy(layout.n_data()),
            any::<u64>(),
            damage_strategy(layout.n_total(), 0..=layout.n_parity()),
        )
    })
}

/// A layout and damage to more than `n_parity` shards.
fn unrecoverable_case() -> impl Strategy<Value = (Layout, usize, u64, Vec<(usize, Damage)>)> {
    layout_strategy().prop_flat_map(|layout| {
        (
            Just(layout),
            0usize..=65_536,
            any::<u64>(),
            damage_strategy(layout.n_total(), layout.n_parity() + 1..=layout.n_total()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_with_up_to_parity_damaged((layout, len, seed, damage) in recoverable_case()) {
        check_round_trip(layout, &block_bytes(len, seed), &damage);
    }

    #[test]
    fn more_than_parity_damaged_is_too_few_shards((layout, len, seed, damage) in unrecoverable_case()) {
        let erasure = Erasure::new(layout).unwrap();
        let block = block_bytes(len, seed);
        let frames = erasure.encode_block_framed(&block).unwrap();
        let (slots, _) = damage_frames(&frames, &damage);
        let expected = ErasureError::TooFewShards { needed: layout.n_data(), got: layout.n_total() - damage.len() };
        prop_assert_eq!(erasure.decode_block_framed(&slots, len), Err(expected.clone()));
        prop_assert_eq!(erasure.reconstruct_block_framed(&slots, len), Err(expected));
    }

    #[test]
    fn shard_file_spans_tile_the_file(layout in layout_strategy(), part_size in 0u64..(5 << 20)) {
        let erasure = Erasure::new(layout).unwrap();
        let n_blocks = Erasure::n_blocks(part_size);
        let mut next_offset = 0;
        let mut covered_bytes = 0u64;
        for block_idx in 0..n_blocks {
            let (offset, len) = erasure.framed_block_span(part_size, block_idx);
            let block_len = Erasure::block_len(part_size, block_idx);
            prop_assert!(block_len > 0);
            prop_assert_eq!(offset, next_offset);
            prop_assert_eq!(len, (HASH_BYTES + erasure.shard_len(block_len)) as u64);
            next_offset += len;
            covered_bytes += block_len as u64;
        }
        prop_assert_eq!(covered_bytes, part_size);
        prop_assert_eq!(next_offset, erasure.shard_file_size(part_size));
    }
}
