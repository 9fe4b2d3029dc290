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

criterion_group!(benches, bitrot_candidates, content_hashes);
criterion_main!(benches);
