//! AEAD candidates for server-side encryption's packages: ring (AES-256-GCM,
//! ChaCha20-Poly1305) against RustCrypto's `aes-gcm` and `chacha20poly1305`, sealing one 64 KiB
//! package in place; and Strata's own format (`strata-sse`, ring AES-256-GCM) sealing a 1 MiB
//! part at 16, 64 and 256 KiB packages' worth of per-package cost. Results and the choice they
//! support are in docs/BENCHMARKS.md ("Encryption").
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use aes_gcm::KeyInit;
use aes_gcm::aead::AeadInOut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

const PACKAGE: usize = 64 << 10;

fn candidates(c: &mut Criterion) {
    let mut group = c.benchmark_group("aead_seal_64KiB");
    group.throughput(Throughput::Bytes(PACKAGE as u64));
    let mut buf = vec![7u8; PACKAGE];
    for (name, alg) in [
        ("ring_aes256gcm", &AES_256_GCM),
        ("ring_chacha20poly1305", &CHACHA20_POLY1305),
    ] {
        let key = LessSafeKey::new(UnboundKey::new(alg, &[1u8; 32]).unwrap());
        group.bench_function(name, |b| {
            b.iter(|| {
                let nonce = Nonce::assume_unique_for_key([0; 12]);
                black_box(
                    key.seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf)
                        .unwrap(),
                )
            })
        });
    }
    let aes = aes_gcm::Aes256Gcm::new(&[1u8; 32].into());
    group.bench_function("rustcrypto_aes256gcm", |b| {
        b.iter(|| {
            black_box(
                aes.encrypt_inout_detached(&[0u8; 12].into(), b"", buf.as_mut_slice().into())
                    .unwrap(),
            )
        })
    });
    let chacha = chacha20poly1305::ChaCha20Poly1305::new(&[1u8; 32].into());
    group.bench_function("rustcrypto_chacha20poly1305", |b| {
        b.iter(|| {
            black_box(
                chacha
                    .encrypt_inout_detached(&[0u8; 12].into(), b"", buf.as_mut_slice().into())
                    .unwrap(),
            )
        })
    });
    group.finish();
}

fn part_format(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_seal_part_1MiB");
    let plain = vec![9u8; 1 << 20];
    group.throughput(Throughput::Bytes(plain.len() as u64));
    let key = strata_sse::DataKey::from_bytes([3; 32]);
    for cipher in [
        strata_sse::Cipher::Aes256Gcm,
        strata_sse::Cipher::ChaCha20Poly1305,
    ] {
        group.bench_with_input(
            BenchmarkId::new("seal", format!("{cipher:?}")),
            &plain,
            |b, plain| {
                b.iter(|| strata_sse::PartSealer::seal_all(&key, 1, cipher, black_box(plain)).unwrap())
            },
        );
    }
    let (header, sealed) =
        strata_sse::PartSealer::seal_all(&key, 1, strata_sse::Cipher::Aes256Gcm, &plain).unwrap();
    group.bench_function("open/Aes256Gcm", |b| {
        b.iter(|| strata_sse::PartOpener::open_all(&key, 1, &header, black_box(&sealed)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, candidates, part_format);
criterion_main!(benches);
