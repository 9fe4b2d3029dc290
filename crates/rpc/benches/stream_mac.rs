//! The MAC over shard streams, chosen by speed: HMAC-SHA256 (`hmac` + `sha2`, SHA-NI where the
//! CPU has it) against keyed BLAKE3, each over 1 MiB chunks as a shard stream feeds them.
//! `cargo bench -p strata-rpc --bench stream_mac`; the figures are in `docs/RPC.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Benchmark setup fails loudly.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const CHUNK_BYTES: usize = 1024 * 1024;

fn stream_mac(c: &mut Criterion) {
    let key = [7u8; 32];
    let chunk: Vec<u8> = (0..CHUNK_BYTES).map(|i| (i * 31 + 7) as u8).collect();
    let mut group = c.benchmark_group("stream_mac_1MiB");
    group.throughput(Throughput::Bytes(CHUNK_BYTES as u64));
    group.bench_function("hmac_sha256", |b| {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        b.iter(|| mac.update(std::hint::black_box(&chunk)));
        std::hint::black_box(mac.finalize());
    });
    group.bench_function("blake3_keyed", |b| {
        let mut hasher = blake3::Hasher::new_keyed(&key);
        b.iter(|| {
            hasher.update(std::hint::black_box(&chunk));
        });
        std::hint::black_box(hasher.finalize());
    });
    group.finish();
}

criterion_group!(benches, stream_mac);
criterion_main!(benches);
