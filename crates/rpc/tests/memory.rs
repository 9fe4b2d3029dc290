//! A 64 MiB shard written and read through RPC holds a few chunks in memory, not the shard.
//! Measured from the process itself (client and server both live here): the growth of the
//! peak resident set size (`VmHWM`, reset through `/proc/self/clear_refs` when allowed) must
//! stay under [`RSS_GROWTH_BYTES_MAX`]. This binary holds only this test, so nothing else
//! inflates the peak.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use strata_drive::{DataDirId, Drive, FormatRecord, LocalDrive};
use strata_rpc::{ClusterSecret, Peer, RemoteDrive, RpcClientConfig, RpcServer};

const SHARD_BYTES: usize = 64 * 1024 * 1024;
/// What the caller hands to each `write` and asks of each `shard_read` (an erasure block's
/// worth of one shard, as the object layer does).
const BLOCK_BYTES: usize = 1024 * 1024;
/// The stated bound: generous against allocator slack and the local drive's pooled O_DIRECT
/// buffers, far below the 64 MiB shard.
const RSS_GROWTH_BYTES_MAX: u64 = 24 * 1024 * 1024;

fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn current_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Block `idx` of the shard: cheap, deterministic, different per block.
fn block(idx: usize) -> Bytes {
    let mut out = vec![0u8; BLOCK_BYTES];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let v = ((idx as u64) << 32 | i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
    Bytes::from(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_mib_shard_streams_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
    let local = LocalDrive::open(dir.path().to_path_buf(), &format).await.unwrap();
    let secret = ClusterSecret::derive_from_root_secret("memory-test");
    let drives = HashMap::from([("/d".to_string(), local.clone() as Arc<dyn Drive>)]);
    let server = Arc::new(RpcServer::new(secret.clone(), drives));
    let handle = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let peer = Peer::new(
        &format!("http://{}", handle.local_addr()),
        secret,
        RpcClientConfig::default(),
    )
    .unwrap();
    let remote = RemoteDrive::connect(peer, "/d").await.unwrap();

    // Warm up every path once (connection, pools, the drive's buffers) so the measurement
    // sees steady state.
    let warm = DataDirId::new_random();
    let mut writer = remote.shard_create(warm, 0).await.unwrap();
    writer.write(block(0)).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(
        remote.shard_read(warm, 0, 0, BLOCK_BYTES as u64).await.unwrap(),
        block(0)
    );

    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let baseline = if reset {
        current_rss_bytes()
    } else {
        peak_rss_bytes()
    };

    let shard_dir = DataDirId::new_random();
    let started = std::time::Instant::now();
    let mut writer = remote.shard_create(shard_dir, 1).await.unwrap();
    for idx in 0..SHARD_BYTES / BLOCK_BYTES {
        writer.write(block(idx)).await.unwrap();
    }
    writer.commit().await.unwrap();
    let write_secs = started.elapsed().as_secs_f64();
    assert_eq!(local.shard_size(shard_dir, 1).await.unwrap(), SHARD_BYTES as u64);
    let started = std::time::Instant::now();
    for idx in 0..SHARD_BYTES / BLOCK_BYTES {
        let offset = (idx * BLOCK_BYTES) as u64;
        let got = remote
            .shard_read(shard_dir, 1, offset, BLOCK_BYTES as u64)
            .await
            .unwrap();
        assert!(got == block(idx), "block {idx} differs");
    }

    let read_secs = started.elapsed().as_secs_f64();
    let growth = peak_rss_bytes().saturating_sub(baseline);
    let mib = (SHARD_BYTES / (1024 * 1024)) as f64;
    eprintln!(
        "64 MiB shard through RPC: write {:.0} MiB/s, read {:.0} MiB/s (1 MiB calls), peak RSS growth {} KiB (VmHWM reset: {reset})",
        mib / write_secs,
        mib / read_secs,
        growth / 1024
    );
    assert!(
        growth < RSS_GROWTH_BYTES_MAX,
        "peak RSS grew by {growth} bytes, bound {RSS_GROWTH_BYTES_MAX}"
    );
    handle.shutdown().await;
}
