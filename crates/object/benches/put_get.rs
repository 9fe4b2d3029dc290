//! In-process PUT and GET throughput of the object layer on a 4-drive (2+2) set, without HTTP.
//!
//! Run: `cargo bench -p strata-object --bench put_get` (add `-- --quick` for a short run;
//! `STRATA_BENCH_SIZES=4` keeps only the cases whose name starts with 4).
//! Drives live in a temporary directory on the filesystem of `$STRATA_BENCH_DIR` (default the
//! system temp dir). Every PUT is durable (shards and records fsync'd) as in the server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // A benchmark binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use strata_object::*;

struct Case {
    name: &'static str,
    size_bytes: usize,
    concurrency: usize,
}

const CASES: [Case; 3] = [
    Case {
        name: "4 KiB",
        size_bytes: 4 * 1024,
        concurrency: 32,
    },
    Case {
        name: "1 MiB",
        size_bytes: 1024 * 1024,
        concurrency: 16,
    },
    Case {
        name: "64 MiB",
        size_bytes: 64 * 1024 * 1024,
        concurrency: 4,
    },
];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let duration = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(8)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let base = std::env::var_os("STRATA_BENCH_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::tempdir_in(base).unwrap();
        let drives: Vec<_> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
        let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
        layer
            .make_bucket("bench", MakeBucketOptions::default())
            .await
            .unwrap();
        println!("| object | concurrency | PUT ops/s | PUT MiB/s | GET ops/s | GET MiB/s |");
        println!("|---|---|---|---|---|---|");
        // `STRATA_BENCH_SIZES=4` runs only the cases whose name starts with "4" (for profiling).
        let only = std::env::var("STRATA_BENCH_SIZES").ok();
        for case in CASES
            .into_iter()
            .filter(|c| only.as_deref().is_none_or(|o| c.name.starts_with(o)))
        {
            let body = Bytes::from(
                (0..case.size_bytes)
                    .map(|i| (i * 31 % 251) as u8)
                    .collect::<Vec<u8>>(),
            );
            let (n_put, put_secs, n_keys) = run(&layer, &case, duration, true, body.clone(), 0).await;
            let (n_get, get_secs, _) = run(&layer, &case, duration, false, body, n_keys).await;
            let mib = case.size_bytes as f64 / (1024.0 * 1024.0);
            println!(
                "| {} | {} | {:.0} | {:.1} | {:.0} | {:.1} |",
                case.name,
                case.concurrency,
                n_put as f64 / put_secs,
                n_put as f64 * mib / put_secs,
                n_get as f64 / get_secs,
                n_get as f64 * mib / get_secs
            );
            for i in 0..n_keys {
                layer
                    .delete_object("bench", &format!("{}/{i}", case.name), DeleteOptions::default())
                    .await
                    .unwrap();
            }
        }
    });
}

/// Runs PUTs (distinct keys) or GETs (of the keys PUT before) from `case.concurrency` tasks for
/// `duration`. Returns (operations, seconds, keys written).
async fn run(
    layer: &Arc<ObjectLayer>,
    case: &Case,
    duration: Duration,
    put: bool,
    body: Bytes,
    n_existing: u64,
) -> (u64, f64, u64) {
    let started = Instant::now();
    let n_keys_written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..case.concurrency {
        let layer = layer.clone();
        let body = body.clone();
        let name = case.name;
        let counter = n_keys_written.clone();
        let size = case.size_bytes;
        tasks.push(tokio::spawn(async move {
            let mut n_ops = 0u64;
            while started.elapsed() < duration {
                if put {
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let chunks: Vec<Result<Bytes, BoxError>> = (0..size)
                        .step_by(64 * 1024)
                        .map(|at| Ok(body.slice(at..(at + 64 * 1024).min(size))))
                        .collect();
                    let opts = PutOptions {
                        size: Some(size as u64),
                        ..PutOptions::default()
                    };
                    layer
                        .put_object(
                            "bench",
                            &format!("{name}/{i}"),
                            Box::pin(futures::stream::iter(chunks)),
                            opts,
                        )
                        .await
                        .unwrap();
                } else {
                    let key = format!("{name}/{}", (n_ops * 7919 + worker as u64) % n_existing.max(1));
                    let reader = layer
                        .get_object("bench", &key, GetOptions::default())
                        .await
                        .unwrap();
                    let mut stream = reader.body;
                    let mut n = 0;
                    while let Some(chunk) = stream.next().await {
                        n += chunk.unwrap().len();
                    }
                    assert_eq!(n, size);
                }
                n_ops += 1;
            }
            n_ops
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    (
        total,
        started.elapsed().as_secs_f64(),
        n_keys_written.load(std::sync::atomic::Ordering::Relaxed),
    )
}
