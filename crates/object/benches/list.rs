//! In-process listing speed of the object layer on a 4-drive (2+2) set.
//!
//! Run: `cargo bench -p strata-object --bench list` (`STRATA_BENCH_KEYS` sets the number of
//! keys, default 100 000). It fills a bucket with empty objects under `flat/` and with one
//! object in each of as many "directories" under `dirs/`, then reports full ListObjects walks
//! of 1000-key pages (keys/s) and the latency of the first page of a delimiter listing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)] // A benchmark binary.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_object::*;

const FILL_CONCURRENCY: usize = 64;

fn main() {
    let n_keys: usize = std::env::var("STRATA_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
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

        let started = Instant::now();
        fill(&layer, n_keys, |i| format!("flat/{i:08}")).await;
        fill(&layer, n_keys, |i| format!("dirs/{i:08}/file")).await;
        println!(
            "filled 2 x {n_keys} keys in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        for round in 0..3 {
            let started = Instant::now();
            let mut n_listed = 0usize;
            let mut marker = None;
            loop {
                let opts = ListOptions {
                    prefix: "flat/".into(),
                    marker: marker.clone(),
                    max_keys: 1000,
                    ..Default::default()
                };
                let page = layer.list_objects("bench", opts).await.unwrap();
                n_listed += page.objects.len();
                if !page.is_truncated {
                    break;
                }
                marker = page.next_marker;
            }
            assert_eq!(n_listed, n_keys);
            let secs = started.elapsed().as_secs_f64();
            println!(
                "round {round}: listed {n_listed} keys in {secs:.3} s = {:.0} keys/s",
                n_listed as f64 / secs
            );
        }
        for round in 0..3 {
            let started = Instant::now();
            let opts = ListOptions {
                prefix: "dirs/".into(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            };
            let page = layer.list_objects("bench", opts).await.unwrap();
            assert_eq!(page.common_prefixes.len(), 1000.min(n_keys));
            println!(
                "round {round}: first delimiter page over {n_keys} directories in {:.2} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    });
}

async fn fill(
    layer: &Arc<ObjectLayer>,
    n_keys: usize,
    name: impl Fn(usize) -> String + Send + Sync + 'static,
) {
    let name = Arc::new(name);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..FILL_CONCURRENCY {
        let (layer, name, next) = (layer.clone(), name.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n_keys {
                    return;
                }
                let body = futures::stream::empty::<Result<Bytes, BoxError>>();
                let opts = PutOptions {
                    size: Some(0),
                    ..PutOptions::default()
                };
                layer
                    .put_object("bench", &name(i), Box::pin(body), opts)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
