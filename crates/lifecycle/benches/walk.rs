//! The lifecycle job's evaluation rate: one cycle over `STRATA_BENCH_VERSIONS` versions
//! (default 1,000,000: half as many keys, two versions each, in a versioned bucket) of a local
//! 2+2 deployment in a temp directory, with rules that match everything and find nothing due,
//! so every version's metadata is listed and evaluated and nothing is deleted.
//!
//! `cargo bench -p strata-lifecycle --bench walk` prints one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // A benchmark fails loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use strata_lifecycle::config::{Expiration, Filter, NoncurrentExpiration, Rule, Scope};
use strata_lifecycle::{BUCKET_LIFECYCLE_CONFIG, Lifecycle, LifecycleConfig, LifecycleSettings};
use strata_object::{MakeBucketOptions, ObjectLayer, PutOptions, PutStream, VersioningState};

fn body() -> PutStream {
    Box::pin(futures::stream::once(async { Ok(Bytes::from_static(b"v")) }))
}

fn main() {
    let versions: usize = std::env::var("STRATA_BENCH_VERSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let drives: Vec<_> = (1..=4).map(|i| dir.path().join(format!("d{i}"))).collect();
        let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
        layer
            .make_bucket("walk", MakeBucketOptions::default())
            .await
            .unwrap();
        layer
            .set_bucket_versioning("walk", VersioningState::Enabled)
            .await
            .unwrap();
        let started = Instant::now();
        futures::stream::iter(0..versions)
            .for_each_concurrent(64, |i| {
                let layer = Arc::clone(&layer);
                async move {
                    let key = format!("k/{:08}", i / 2);
                    layer
                        .put_object("walk", &key, body(), PutOptions::default())
                        .await
                        .unwrap();
                }
            })
            .await;
        let fill_secs = started.elapsed().as_secs_f64();
        let rule = Rule {
            id: "far".into(),
            enabled: true,
            scope: Scope::Filter(Filter::Prefix("k/".into())),
            expiration: Some(Expiration {
                days: Some(3650),
                ..Default::default()
            }),
            noncurrent_expiration: Some(NoncurrentExpiration {
                noncurrent_days: 3650,
                newer_noncurrent_versions: None,
            }),
            abort_incomplete_upload_days: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
        };
        let config = LifecycleConfig {
            rules: vec![rule],
            transition_default_minimum_object_size: None,
        };
        layer
            .put_bucket_config("walk", BUCKET_LIFECYCLE_CONFIG, config.to_blob().into())
            .await
            .unwrap();
        let lifecycle = Lifecycle::start(
            Arc::clone(&layer),
            LifecycleSettings {
                interval: Duration::from_secs(1_000_000),
                ..Default::default()
            },
        );
        // The start runs a first cycle: wait for it, then time one of our own.
        while lifecycle.stats().cycles == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let before = lifecycle.stats().versions_scanned;
        let started = Instant::now();
        assert!(lifecycle.run_now().await.unwrap());
        let secs = started.elapsed().as_secs_f64();
        let scanned = lifecycle.stats().versions_scanned - before;
        assert_eq!(scanned as usize, versions);
        println!(
            "{{\"versions\": {versions}, \"fill_secs\": {fill_secs:.1}, \"cycle_secs\": {secs:.2}, \"versions_per_sec\": {:.0}, \"actions\": {}}}",
            scanned as f64 / secs,
            lifecycle.stats().current_expired + lifecycle.stats().noncurrent_removed
        );
    });
}
