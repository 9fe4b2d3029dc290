//! Hash throughput: the bitrot checksum candidates (XXH3-64, XXH3-128, CRC32C) at 1 MiB and
//! 64 KiB, and the content hashes S3 needs (MD5 for ETags, SHA-256 for SigV4 payloads) at
//! 1 MiB. Results and the choice they support are in docs/BENCHMARKS.md.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use md5::{Digest, Md5};
use sha2::Sha256;

const SIZES: [(usize, &str); 2] = [(1 << 20, "1MiB"), (64 << 10, "64KiB")];

fn buffer(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn bitrot_candidates(c: &mut Criterion) {
    let mut group = c.benchmark_group("bitrot_hash");
    for (len, label) in SIZES {
        let data = buffer(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("xxh3_64", label), &data, |b, data| {
            b.iter(|| xxhash_rust::xxh3::xxh3_64(black_box(data)))
        });
        group.bench_with_input(BenchmarkId::new("xxh3_128", label), &data, |b, data| {
            b.iter(|| xxhash_rust::xxh3::xxh3_128(black_box(data)))
        });
        group.bench_with_input(BenchmarkId::new("crc32c", label), &data, |b, data| {
            b.iter(|| crc32c::crc32c(black_box(data)))
        });
        group.bench_with_input(BenchmarkId::new("strata_bitrot_hash", label), &data, |b, data| {
            b.iter(|| strata_erasure::bitrot::hash(black_box(data)))
        });
    }
    group.finish();
}

fn content_hashes(c: &mut Criterion) {
    let mut group = c.benchmark_group("content_hash");
    let (len, label) = SIZES[0];
    let data = buffer(len);
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_with_input(BenchmarkId::new("md5", label), &data, |b, data| {
        b.iter(|| Md5::digest(black_box(data)))
    });
    group.bench_with_input(BenchmarkId::new("sha256", label), &data, |b, data| {
        b.iter(|| Sha256::digest(black_box(data)))
    });
    group.finish();
}

/// MD5 candidates for the ETag: one stream per core (md-5, md5-simd's assembly, md5-many's
/// scalar kernel), and md5-many's multi-buffer `update_many` advancing `lanes` independent
/// streams by one 1 MiB chunk each (throughput counts every lane's bytes).
fn md5_candidates(c: &mut Criterion) {
    let mut group = c.benchmark_group("md5");
    let (len, label) = SIZES[0];
    let data = buffer(len);
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_with_input(BenchmarkId::new("md-5", label), &data, |b, data| {
        b.iter(|| Md5::digest(black_box(data)))
    });
    group.bench_with_input(BenchmarkId::new("md5-simd_single", label), &data, |b, data| {
        b.iter(|| md5_simd::digest(black_box(data)))
    });
    group.bench_with_input(BenchmarkId::new("md5-many_single", label), &data, |b, data| {
        b.iter(|| md5_many::md5(black_box(data)))
    });
    let engine = md5_many::Md5Many::new();
    for lanes in [2usize, 4, 8, 16] {
        let chunks: Vec<Vec<u8>> = (0..lanes).map(|i| buffer(len + i)).collect();
        let inputs: Vec<&[u8]> = chunks.iter().map(|c| &c[..len]).collect();
        let mut states = vec![md5_many::Md5State::new(); lanes];
        group.throughput(Throughput::Bytes((len * lanes) as u64));
        group.bench_function(BenchmarkId::new(format!("md5-many_x{lanes}"), label), |b| {
            b.iter(|| engine.update_many(black_box(&mut states), black_box(&inputs)))
        });
    }
    group.finish();
}

criterion_group!(benches, bitrot_candidates, content_hashes, md5_candidates);
criterion_main!(benches);
