//! Erasure coding throughput: `reed-solomon-erasure` 6 (`simd-accel`) against
//! `reed-solomon-simd` 3.1, encode and reconstruct, and Strata's framed encode/decode on top
//! of the chosen codec. Throughput counts data bytes (the block), not parity.
//!
//! Reconstruct loses `n_parity` data shards (the worst case the code survives, and the one
//! where the decoder has the most work). Shard lengths are rounded up to even for both
//! libraries because `reed-solomon-simd` needs even shard sizes. Results: docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use reed_solomon_erasure::galois_8::ReedSolomon;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use strata_erasure::{Erasure, Layout};

/// Layouts compared (16+4 is beyond Strata's 16-drive sets: raw codecs only).
const LAYOUTS: [(usize, usize); 5] = [(2, 2), (4, 2), (8, 4), (12, 4), (16, 4)];
const BLOCK_SIZES: [(usize, &str); 2] = [(1 << 20, "1MiB"), (64 << 10, "64KiB")];

fn bytes_of(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i + seed).wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

fn id(layout: (usize, usize), size_label: &str) -> String {
    format!("{}+{}/{}", layout.0, layout.1, size_label)
}

struct Stripe {
    shard_len: usize,
    data: Vec<Vec<u8>>,
}

fn stripe(block_len: usize, n_data: usize) -> Stripe {
    let shard_len = block_len.div_ceil(n_data).next_multiple_of(2);
    Stripe {
        shard_len,
        data: (0..n_data).map(|i| bytes_of(shard_len, i * 7919)).collect(),
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (block_len, size_label) in BLOCK_SIZES {
        group.throughput(Throughput::Bytes(block_len as u64));
        for (n_data, n_parity) in LAYOUTS {
            let Stripe { shard_len, data } = stripe(block_len, n_data);
            let label = id((n_data, n_parity), size_label);

            let rse = ReedSolomon::new(n_data, n_parity).unwrap();
            let mut parity = vec![vec![0u8; shard_len]; n_parity];
            group.bench_function(BenchmarkId::new("rse", &label), |b| {
                b.iter(|| {
                    let mut parity_refs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
                    rse.encode_sep(black_box(&data), &mut parity_refs).unwrap();
                })
            });

            let mut encoder = ReedSolomonEncoder::new(n_data, n_parity, shard_len).unwrap();
            group.bench_function(BenchmarkId::new("rs-simd", &label), |b| {
                b.iter(|| {
                    for shard in &data {
                        encoder.add_original_shard(black_box(shard)).unwrap();
                    }
                    let result = encoder.encode().unwrap();
                    black_box(result.recovery(0).map(|r| r[0]));
                })
            });
        }
    }
    group.finish();
}

fn reconstruct(c: &mut Criterion) {
    let mut group = c.benchmark_group("reconstruct");
    for (block_len, size_label) in BLOCK_SIZES {
        group.throughput(Throughput::Bytes(block_len as u64));
        for (n_data, n_parity) in LAYOUTS {
            let Stripe { shard_len, data } = stripe(block_len, n_data);
            let label = id((n_data, n_parity), size_label);
            let lost = |shard_idx: usize| shard_idx < n_parity;

            // reed-solomon-erasure: rebuild the lost data shards in place.
            let rse = ReedSolomon::new(n_data, n_parity).unwrap();
            let mut shards: Vec<Vec<u8>> = data.clone();
            shards.extend(vec![vec![0u8; shard_len]; n_parity]);
            rse.encode(&mut shards).unwrap();
            let expected = shards.clone();
            group.bench_function(BenchmarkId::new("rse", &label), |b| {
                b.iter(|| {
                    let mut flagged: Vec<(&mut [u8], bool)> = shards
                        .iter_mut()
                        .enumerate()
                        .map(|(shard_idx, s)| (s.as_mut_slice(), !lost(shard_idx)))
                        .collect();
                    rse.reconstruct_data(black_box(&mut flagged)).unwrap();
                })
            });
            assert_eq!(shards, expected, "rse rebuilt wrong bytes");

            // reed-solomon-simd: decoder reused across calls, the cheapest it can be.
            let mut encoder = ReedSolomonEncoder::new(n_data, n_parity, shard_len).unwrap();
            for shard in &data {
                encoder.add_original_shard(shard).unwrap();
            }
            let recovery: Vec<Vec<u8>> = encoder
                .encode()
                .unwrap()
                .recovery_iter()
                .map(<[u8]>::to_vec)
                .collect();
            let mut decoder = ReedSolomonDecoder::new(n_data, n_parity, shard_len).unwrap();
            group.bench_function(BenchmarkId::new("rs-simd", &label), |b| {
                b.iter(|| {
                    for (shard_idx, shard) in data.iter().enumerate().filter(|(i, _)| !lost(*i)) {
                        decoder.add_original_shard(shard_idx, black_box(shard)).unwrap();
                    }
                    for (recovery_idx, shard) in recovery.iter().enumerate() {
                        decoder
                            .add_recovery_shard(recovery_idx, black_box(shard))
                            .unwrap();
                    }
                    let result = decoder.decode().unwrap();
                    black_box(result.restored_original(0).map(|r| r[0]));
                })
            });
            let check = {
                for (shard_idx, shard) in data.iter().enumerate().filter(|(i, _)| !lost(*i)) {
                    decoder.add_original_shard(shard_idx, shard).unwrap();
                }
                for (recovery_idx, shard) in recovery.iter().enumerate() {
                    decoder.add_recovery_shard(recovery_idx, shard).unwrap();
                }
                let result = decoder.decode().unwrap();
                (0..n_parity).all(|i| result.restored_original(i) == Some(data[i].as_slice()))
            };
            assert!(check, "rs-simd rebuilt wrong bytes");
        }
    }
    group.finish();
}

/// Strata's own API (chosen codec + XXH3-64 framing + allocation), for sets of up to 16.
fn strata_framed(c: &mut Criterion) {
    let mut group = c.benchmark_group("strata");
    for (block_len, size_label) in BLOCK_SIZES {
        group.throughput(Throughput::Bytes(block_len as u64));
        for (n_data, n_parity) in LAYOUTS
            .into_iter()
            .filter(|(d, p)| d + p <= strata_erasure::SET_DRIVES_MAX)
        {
            let erasure = Erasure::new(Layout::new(n_data, n_parity).unwrap()).unwrap();
            let label = id((n_data, n_parity), size_label);
            let block = bytes_of(block_len, 1);
            group.bench_function(BenchmarkId::new("encode_framed", &label), |b| {
                b.iter(|| erasure.encode_block_framed(black_box(&block)).unwrap())
            });

            let frames = erasure.encode_block_framed(&block).unwrap();
            // A healthy GET reads only the data shards.
            let healthy: Vec<Option<Bytes>> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| (i < n_data).then(|| f.clone()))
                .collect();
            group.bench_function(BenchmarkId::new("decode_healthy", &label), |b| {
                b.iter(|| {
                    erasure
                        .decode_block_framed(black_box(&healthy), block_len)
                        .unwrap()
                })
            });

            let mut degraded: Vec<Option<Bytes>> = frames.iter().cloned().map(Some).collect();
            degraded.iter_mut().take(n_parity).for_each(|slot| *slot = None);
            assert_eq!(
                erasure.decode_block_framed(&degraded, block_len).unwrap().data,
                block
            );
            group.bench_function(BenchmarkId::new("decode_degraded", &label), |b| {
                b.iter(|| {
                    erasure
                        .decode_block_framed(black_box(&degraded), block_len)
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, encode, reconstruct, strata_framed);
criterion_main!(benches);
