//! A 1 GiB object streamed in and out through the object layer holds a few erasure blocks in
//! memory, not the object. Measured from the process itself: the peak resident set size
//! (`VmHWM`) must stay under [`RSS_BYTES_MAX`]. This binary holds only this test, so nothing
//! else inflates the peak.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use bytes::Bytes;
use futures::StreamExt;
use strata_object::*;

const OBJECT_BYTES: u64 = 1 << 30;
const CHUNK_BYTES: usize = 64 * 1024;
/// The stated bound: generous against allocator slack, far below the 1 GiB object.
const RSS_BYTES_MAX: u64 = 192 * 1024 * 1024;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_put_and_get_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<_> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    layer
        .make_bucket("bucket", MakeBucketOptions::default())
        .await
        .unwrap();

    let chunk = Bytes::from((0..CHUNK_BYTES).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
    let n_chunks = OBJECT_BYTES / CHUNK_BYTES as u64;
    let body = futures::stream::iter((0..n_chunks).map(move |_| Ok::<_, BoxError>(chunk.clone())));
    let opts = PutOptions {
        size: Some(OBJECT_BYTES),
        ..Default::default()
    };
    let info = layer
        .put_object("bucket", "huge", Box::pin(body), opts)
        .await
        .unwrap();
    assert_eq!(info.size, OBJECT_BYTES);

    let reader = layer
        .get_object("bucket", "huge", GetOptions::default())
        .await
        .unwrap();
    let mut body = reader.body;
    let mut n_read = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        assert!(
            chunk
                .iter()
                .enumerate()
                .all(|(i, b)| *b == (((n_read as usize + i) % CHUNK_BYTES) * 7) as u8)
        );
        n_read += chunk.len() as u64;
    }
    assert_eq!(n_read, OBJECT_BYTES);
    let peak = peak_rss_bytes();
    println!("peak RSS after 1 GiB put and get: {} MiB", peak / (1024 * 1024));
    assert!(
        peak < RSS_BYTES_MAX,
        "peak RSS {peak} bytes exceeds {RSS_BYTES_MAX}"
    );
}
