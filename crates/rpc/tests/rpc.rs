//! RPC end to end on 127.0.0.1: an `RpcServer` over local drives in temp dirs, used through
//! `RemoteDrive`s, compared with the local drives' own answers; a wrong cluster secret (replays,
//! stale requests and tampered streams are in `replay.rs`), servers going away and coming
//! back, and deadlines on a peer that never answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_drive::{DataDirId, Drive, DriveError, FormatRecord, LocalDrive, MetaOp, ScanRange, Table};
use strata_rpc::{ClusterSecret, Peer, RemoteDrive, RpcClientConfig, RpcError, RpcServer, RpcServerHandle};
use tokio::time::Instant;

const ROOT_SECRET: &str = "test-root-secret";

struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    locals: Vec<Arc<LocalDrive>>,
    drive_ids: Vec<String>,
    server: Arc<RpcServer>,
    handle: RpcServerHandle,
}

impl Cluster {
    async fn start(n_drives: usize) -> Cluster {
        let deployment = uuid::Uuid::new_v4();
        let mut dirs = Vec::new();
        let mut locals = Vec::new();
        let mut drive_ids = Vec::new();
        let mut drives: HashMap<String, Arc<dyn Drive>> = HashMap::new();
        for idx in 0..n_drives {
            let dir = tempfile::tempdir().unwrap();
            let format = FormatRecord::new_deployment(deployment, 0, 0, idx as u32, 2, 2);
            let local = LocalDrive::open(dir.path().to_path_buf(), &format).await.unwrap();
            let id = dir.path().to_string_lossy().into_owned();
            drives.insert(id.clone(), local.clone() as Arc<dyn Drive>);
            drive_ids.push(id);
            locals.push(local);
            dirs.push(dir);
        }
        let server = Arc::new(RpcServer::new(secret(), drives));
        let handle = Arc::clone(&server).bind(localhost()).await.unwrap();
        Cluster {
            _dirs: dirs,
            locals,
            drive_ids,
            server,
            handle,
        }
    }

    fn peer(&self, config: RpcClientConfig) -> Arc<Peer> {
        Peer::new(&format!("http://{}", self.handle.local_addr()), secret(), config).unwrap()
    }

    async fn remotes(&self, peer: &Arc<Peer>) -> Vec<Arc<RemoteDrive>> {
        let mut out = Vec::new();
        for id in &self.drive_ids {
            out.push(RemoteDrive::connect(Arc::clone(peer), id).await.unwrap());
        }
        out
    }
}

fn secret() -> ClusterSecret {
    ClusterSecret::derive_from_root_secret(ROOT_SECRET)
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn fast_config() -> RpcClientConfig {
    RpcClientConfig {
        call_timeout: Duration::from_millis(1500),
        connect_timeout: Duration::from_millis(500),
        reconnect_backoff: Duration::from_millis(100),
        ..RpcClientConfig::default()
    }
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
fn pattern(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

async fn write_shard(drive: &dyn Drive, dir: DataDirId, part: u32, data: &Bytes, piece_bytes: usize) {
    let mut writer = drive.shard_create(dir, part).await.unwrap();
    for piece in data.chunks(piece_bytes) {
        writer.write(data.slice_ref(piece)).await.unwrap();
    }
    writer.commit().await.unwrap();
}

fn tmp_entries(local: &LocalDrive) -> usize {
    std::fs::read_dir(local.root().join(".strata").join("tmp"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_drive_method_matches_the_local_drive() {
    let cluster = Cluster::start(2).await;
    let peer = cluster.peer(RpcClientConfig::default());
    let remotes = cluster.remotes(&peer).await;
    for (local, remote) in cluster.locals.iter().zip(&remotes) {
        let local: &dyn Drive = local.as_ref();
        let remote: &dyn Drive = remote.as_ref();
        // Identity.
        assert_eq!(remote.format(), local.format());
        assert_eq!(remote.endpoint(), format!("{}{}", peer.url(), local.endpoint()));

        // Metadata: a batch through the remote, read both ways.
        let big_value = pattern(1, 200_000).to_vec();
        let ops = vec![
            MetaOp::put(Table::Objects, b"b\0a".to_vec(), b"va".to_vec()),
            MetaOp::put(Table::Objects, b"b\0b".to_vec(), big_value.clone()),
            MetaOp::put(Table::Objects, b"b\0c".to_vec(), vec![]),
            MetaOp::put(Table::Objects, b"c\0a".to_vec(), b"other".to_vec()),
            MetaOp::put(Table::Buckets, b"b".to_vec(), b"{}".to_vec()),
        ];
        remote.meta_commit(ops).await.unwrap();
        remote
            .meta_commit(vec![MetaOp::delete(Table::Objects, b"c\0a".to_vec())])
            .await
            .unwrap();
        remote.meta_commit(Vec::new()).await.unwrap();
        for key in [&b"b\0a"[..], b"b\0b", b"b\0c", b"c\0a", b"missing"] {
            assert_eq!(
                remote.meta_get(Table::Objects, key).await.unwrap(),
                local.meta_get(Table::Objects, key).await.unwrap()
            );
        }
        assert_eq!(
            remote.meta_get(Table::Objects, b"b\0b").await.unwrap().unwrap(),
            big_value
        );
        let scans = [
            ScanRange {
                prefix: b"b\0".to_vec(),
                limit: 10,
                ..ScanRange::default()
            },
            ScanRange {
                prefix: b"b\0".to_vec(),
                limit: 10,
                keys_only: true,
                ..ScanRange::default()
            },
            ScanRange {
                prefix: b"b\0".to_vec(),
                start: b"b\0a".to_vec(),
                start_exclusive: true,
                limit: 1,
                keys_only: false,
            },
            ScanRange {
                prefix: Vec::new(),
                limit: 0,
                ..ScanRange::default()
            },
            ScanRange {
                prefix: b"zz".to_vec(),
                limit: 10,
                ..ScanRange::default()
            },
        ];
        for range in scans {
            assert_eq!(
                remote.meta_scan(Table::Objects, range.clone()).await.unwrap(),
                local.meta_scan(Table::Objects, range).await.unwrap()
            );
        }
        let too_large = remote
            .meta_commit(vec![MetaOp::put(Table::Objects, vec![b'k'; 5000], vec![])])
            .await
            .unwrap_err();
        assert!(
            matches!(too_large, DriveError::RecordTooLarge { key_bytes: 5000, .. }),
            "{too_large:?}"
        );

        // Shards: one larger than a wire chunk, written in odd pieces.
        let dir = DataDirId::new_random();
        let data = pattern(2, 3 * 1024 * 1024 + 12345);
        write_shard(remote, dir, 1, &data, 777_777).await;
        write_shard(remote, dir, 2, &Bytes::from_static(b"small"), 100).await;
        assert_eq!(remote.shard_size(dir, 1).await.unwrap(), data.len() as u64);
        assert_eq!(
            remote.shard_size(dir, 1).await.unwrap(),
            local.shard_size(dir, 1).await.unwrap()
        );
        for (offset, len) in [
            (0u64, data.len() as u64),
            (5, 10),
            (300_000, 1_500_000),
            (0, 0),
            (data.len() as u64, 0),
        ] {
            let got = remote.shard_read(dir, 1, offset, len).await.unwrap();
            assert_eq!(got, local.shard_read(dir, 1, offset, len).await.unwrap());
            assert_eq!(got, data.slice(offset as usize..(offset + len) as usize));
        }
        assert_eq!(
            remote.shard_read(dir, 2, 0, 5).await.unwrap(),
            Bytes::from_static(b"small")
        );
        let missing = remote.shard_read(dir, 9, 0, 1).await.unwrap_err();
        assert!(matches!(missing, DriveError::ShardNotFound), "{missing:?}");
        assert!(matches!(
            remote.shard_size(dir, 9).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
        let past_end = remote.shard_read(dir, 2, 3, 10).await.unwrap_err();
        assert!(matches!(past_end, DriveError::Corrupt { .. }), "{past_end:?}");
        assert!(past_end.to_string().contains(peer.url()), "{past_end}");
        let past_end_streamed = remote
            .shard_read(dir, 1, 0, data.len() as u64 + 1)
            .await
            .unwrap_err();
        assert!(
            matches!(past_end_streamed, DriveError::Corrupt { .. }),
            "{past_end_streamed:?}"
        );
        remote.shard_delete(dir, 2).await.unwrap();
        remote.shard_delete(dir, 2).await.unwrap();
        assert!(matches!(
            local.shard_size(dir, 2).await.unwrap_err(),
            DriveError::ShardNotFound
        ));

        // Data directories.
        let dir2 = DataDirId::new_random();
        write_shard(remote, dir2, 0, &Bytes::from_static(b"x"), 1).await;
        let remote_list = remote.data_dir_list(None, 10).await.unwrap();
        assert_eq!(remote_list, local.data_dir_list(None, 10).await.unwrap());
        assert_eq!(remote_list.len(), 2);
        let first = remote_list[0].id;
        assert_eq!(
            remote.data_dir_list(Some(first), 10).await.unwrap(),
            local.data_dir_list(Some(first), 10).await.unwrap()
        );
        remote.data_dir_delete(dir2).await.unwrap();
        remote.data_dir_delete(dir2).await.unwrap();
        assert_eq!(remote.data_dir_list(None, 10).await.unwrap().len(), 1);

        // Capacity and the healing mark.
        assert_eq!(
            remote.info().await.unwrap().total_bytes,
            local.info().await.unwrap().total_bytes
        );
        assert!(!remote.healing_mark().await.unwrap());
        remote.set_healing_mark(true).await.unwrap();
        assert!(local.healing_mark().await.unwrap());
        assert!(remote.healing_mark().await.unwrap());
        remote.set_healing_mark(false).await.unwrap();
        assert!(!local.healing_mark().await.unwrap());
    }
    // A drive the peer does not serve is a clear error at connect time.
    let unknown = RemoteDrive::connect(Arc::clone(&peer), "/no/such/drive")
        .await
        .unwrap_err();
    assert!(matches!(unknown, RpcError::UnknownDrive { .. }), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_and_dropped_writers_leave_nothing() {
    let cluster = Cluster::start(1).await;
    let peer = cluster.peer(RpcClientConfig::default());
    let remote = cluster.remotes(&peer).await.remove(0);
    let local = &cluster.locals[0];
    let dir = DataDirId::new_random();

    let mut writer = remote.shard_create(dir, 0).await.unwrap();
    // More than one write buffer, so the remote drive creates its temp file (it does so only
    // when the first full buffer goes out); wait for the stream to get there.
    writer.write(pattern(3, 2_500_000)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmp_entries(local) != 1 {
        assert!(Instant::now() < deadline, "the remote temp file never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.abort().await.unwrap();
    assert_eq!(tmp_entries(local), 0);
    assert!(matches!(
        remote.shard_size(dir, 0).await.unwrap_err(),
        DriveError::ShardNotFound
    ));

    let mut writer = remote.shard_create(dir, 1).await.unwrap();
    writer.write(pattern(4, 1_000_000)).await.unwrap();
    drop(writer);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmp_entries(local) != 0 {
        assert!(Instant::now() < deadline, "the dropped writer's temp file stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        remote.shard_size(dir, 1).await.unwrap_err(),
        DriveError::ShardNotFound
    ));
    assert!(local.data_dir_list(None, 10).await.unwrap().is_empty());

    // A replaced shard is replaced atomically, as locally.
    write_shard(remote.as_ref(), dir, 2, &Bytes::from_static(b"first"), 5).await;
    write_shard(remote.as_ref(), dir, 2, &Bytes::from_static(b"second!"), 3).await;
    assert_eq!(
        remote.shard_read(dir, 2, 0, 7).await.unwrap(),
        Bytes::from_static(b"second!")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused() {
    let cluster = Cluster::start(1).await;
    let url = format!("http://{}", cluster.handle.local_addr());
    let bad_peer = Peer::new(
        &url,
        ClusterSecret::derive_from_root_secret("not-the-root-secret"),
        RpcClientConfig::default(),
    )
    .unwrap();
    let refused = RemoteDrive::connect(bad_peer, &cluster.drive_ids[0])
        .await
        .unwrap_err();
    match &refused {
        RpcError::Unauthorized { reason, .. } => assert!(reason.contains("cluster secret"), "{reason}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    // A node whose secret changed under a connected drive: calls fail with a clear error.
    let peer = cluster.peer(fast_config());
    let remote = cluster.remotes(&peer).await.remove(0);
    let addr = cluster.handle.local_addr();
    cluster.handle.shutdown().await;
    let drives = HashMap::from([(
        cluster.drive_ids[0].clone(),
        cluster.locals[0].clone() as Arc<dyn Drive>,
    )]);
    let other = Arc::new(RpcServer::new(
        ClusterSecret::from_dedicated_secret(b"rotated"),
        drives,
    ));
    let _handle = rebind(other, addr).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        match remote.info().await {
            Err(DriveError::Offline { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => break error,
            Ok(_) => panic!("a call with the wrong secret succeeded"),
        }
    };
    match &error {
        DriveError::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(source.to_string().contains("403"), "{source}");
        }
        other => panic!("expected a permission error, got {other:?}"),
    }
}

async fn rebind(server: Arc<RpcServer>, addr: SocketAddr) -> RpcServerHandle {
    // The port was just released; binding it again may take a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Arc::clone(&server).bind(addr).await {
            Ok(handle) => return handle,
            Err(error) if Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("cannot rebind {addr}: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_server_fails_fast_and_recovers() {
    let cluster = Cluster::start(1).await;
    let peer = cluster.peer(fast_config());
    let remote = cluster.remotes(&peer).await.remove(0);
    let dir = DataDirId::new_random();
    write_shard(remote.as_ref(), dir, 0, &pattern(5, 100_000), 10_000).await;
    // A writer in progress when the server stops.
    let mut writer = remote.shard_create(dir, 1).await.unwrap();
    writer.write(pattern(6, 100_000)).await.unwrap();

    let addr = cluster.handle.local_addr();
    cluster.handle.shutdown().await;
    let started = Instant::now();
    for _ in 0..5 {
        let error = remote.info().await.unwrap_err();
        assert!(
            matches!(&error, DriveError::Offline { endpoint } if endpoint == remote.endpoint()),
            "{error:?}"
        );
    }
    let error = remote.shard_read(dir, 0, 0, 10).await.unwrap_err();
    assert!(matches!(error, DriveError::Offline { .. }), "{error:?}");
    let error = writer.commit().await.unwrap_err();
    assert!(matches!(error, DriveError::Offline { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "offline calls took {:?}",
        started.elapsed()
    );
    // The interrupted shard never appeared.
    assert!(matches!(
        cluster.locals[0].shard_size(dir, 1).await.unwrap_err(),
        DriveError::ShardNotFound
    ));

    let _handle = rebind(Arc::clone(&cluster.server), addr).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match remote.shard_read(dir, 0, 0, 100_000).await {
            Ok(bytes) => {
                assert_eq!(bytes, pattern(5, 100_000));
                break;
            }
            Err(DriveError::Offline { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("no recovery: {error:?}"),
        }
    }
    remote.info().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expires_on_a_hung_peer() {
    // A "peer" that accepts connections and never answers.
    let hung = tokio::net::TcpListener::bind(localhost()).await.unwrap();
    let addr = hung.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = hung.accept().await.unwrap();
            held.push(stream);
        }
    });
    let config = RpcClientConfig {
        call_timeout: Duration::from_millis(400),
        ..fast_config()
    };
    let peer = Peer::new(&format!("http://{addr}"), secret(), config).unwrap();
    let started = Instant::now();
    let error = RemoteDrive::connect(Arc::clone(&peer), "/mnt/disk1")
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(error, RpcError::Drive(DriveError::Offline { .. })),
        "{error:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );

    // A connected drive whose node hangs later: every kind of call gives up at its deadline.
    let cluster = Cluster::start(1).await;
    let peer = cluster.peer(RpcClientConfig {
        call_timeout: Duration::from_millis(400),
        ..fast_config()
    });
    let remote = cluster.remotes(&peer).await.remove(0);
    let dir = DataDirId::new_random();
    write_shard(remote.as_ref(), dir, 0, &pattern(7, 1000), 1000).await;
    let server_addr = cluster.handle.local_addr();
    cluster.handle.shutdown().await;
    let hung = tokio::net::TcpListener::bind(server_addr).await.unwrap();
    let _hung_task = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (stream, _) = hung.accept().await.unwrap();
            held.push(stream);
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await; // past the reconnect backoff
    let started = Instant::now();
    let error = remote.meta_get(Table::Objects, b"k").await.unwrap_err();
    assert!(matches!(error, DriveError::Offline { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(matches!(
        remote.shard_read(dir, 0, 0, 1000).await.unwrap_err(),
        DriveError::Offline { .. }
    ));
    assert!(matches!(
        remote.shard_create(dir, 1).await.err().unwrap(),
        DriveError::Offline { .. }
    ));
    assert!(
        started.elapsed() < Duration::from_millis(3000),
        "{:?}",
        started.elapsed()
    );
    accepted.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_like_writes_through_trait_objects() {
    let cluster = Cluster::start(4).await;
    let peer = cluster.peer(RpcClientConfig::default());
    let drives: Vec<Arc<dyn Drive>> = cluster
        .remotes(&peer)
        .await
        .into_iter()
        .map(|d| d as Arc<dyn Drive>)
        .collect();
    let dir = DataDirId::new_random();
    let shard_bytes = 2 * 1024 * 1024 + 1;
    // Each drive gets its own shard, written concurrently over the one connection.
    let mut writes = tokio::task::JoinSet::new();
    for (idx, drive) in drives.iter().enumerate() {
        let drive = Arc::clone(drive);
        writes.spawn(async move {
            let data = pattern(100 + idx as u64, shard_bytes);
            let mut writer = drive.shard_create(dir, idx as u32).await?;
            for block in data.chunks(262_144 + 17) {
                writer.write(data.slice_ref(block)).await?;
            }
            writer.commit().await?;
            drive
                .meta_commit(vec![MetaOp::put(
                    Table::Objects,
                    b"bucket\0key".to_vec(),
                    format!("v{idx}").into_bytes(),
                )])
                .await
        });
    }
    let mut n_ok = 0;
    while let Some(result) = writes.join_next().await {
        result.unwrap().unwrap();
        n_ok += 1;
    }
    assert_eq!(n_ok, 4);
    let mut reads = tokio::task::JoinSet::new();
    for (idx, drive) in drives.iter().enumerate() {
        let drive = Arc::clone(drive);
        reads.spawn(async move {
            let got = drive.shard_read(dir, idx as u32, 0, shard_bytes as u64).await?;
            let record = drive.meta_get(Table::Objects, b"bucket\0key").await?;
            Ok::<_, DriveError>((idx, got, record))
        });
    }
    while let Some(result) = reads.join_next().await {
        let (idx, got, record) = result.unwrap().unwrap();
        assert_eq!(got, pattern(100 + idx as u64, shard_bytes));
        assert_eq!(record.unwrap(), format!("v{idx}").into_bytes());
    }
    // The shards are where a local read finds them.
    for (idx, local) in cluster.locals.iter().enumerate() {
        assert_eq!(
            local.shard_size(dir, idx as u32).await.unwrap(),
            shard_bytes as u64
        );
    }
}

/// A local drive whose shard writers fail with `Full` once they have taken `limit_bytes`.
#[derive(Debug)]
struct FillingDrive {
    inner: Arc<LocalDrive>,
    limit_bytes: usize,
}

struct FillingWrite {
    inner: Box<dyn strata_drive::ShardWrite>,
    left_bytes: usize,
    root: std::path::PathBuf,
}

#[async_trait::async_trait]
impl strata_drive::ShardWrite for FillingWrite {
    async fn write(&mut self, buf: Bytes) -> strata_drive::DriveResult<()> {
        if buf.len() > self.left_bytes {
            return Err(DriveError::Full {
                path: self.root.clone(),
            });
        }
        self.left_bytes -= buf.len();
        self.inner.write(buf).await
    }
    async fn commit(self: Box<Self>) -> strata_drive::DriveResult<()> {
        self.inner.commit().await
    }
    async fn abort(self: Box<Self>) -> strata_drive::DriveResult<()> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl Drive for FillingDrive {
    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }
    fn format(&self) -> &FormatRecord {
        self.inner.format()
    }
    async fn meta_get(&self, table: Table, key: &[u8]) -> strata_drive::DriveResult<Option<Bytes>> {
        self.inner.meta_get(table, key).await
    }
    async fn meta_scan(
        &self,
        table: Table,
        range: ScanRange,
    ) -> strata_drive::DriveResult<Vec<strata_drive::MetaEntry>> {
        self.inner.meta_scan(table, range).await
    }
    async fn meta_commit(&self, ops: Vec<MetaOp>) -> strata_drive::DriveResult<()> {
        self.inner.meta_commit(ops).await
    }
    async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> strata_drive::DriveResult<()> {
        self.inner.meta_commit_deleting(ops).await
    }
    async fn shard_create(
        &self,
        dir: DataDirId,
        part: u32,
    ) -> strata_drive::DriveResult<Box<dyn strata_drive::ShardWrite>> {
        Ok(Box::new(FillingWrite {
            inner: self.inner.shard_create(dir, part).await?,
            left_bytes: self.limit_bytes,
            root: self.inner.root().to_path_buf(),
        }))
    }
    async fn shard_read(
        &self,
        dir: DataDirId,
        part: u32,
        offset: u64,
        len: u64,
    ) -> strata_drive::DriveResult<Bytes> {
        self.inner.shard_read(dir, part, offset, len).await
    }
    async fn shard_size(&self, dir: DataDirId, part: u32) -> strata_drive::DriveResult<u64> {
        self.inner.shard_size(dir, part).await
    }
    async fn shard_delete(&self, dir: DataDirId, part: u32) -> strata_drive::DriveResult<()> {
        self.inner.shard_delete(dir, part).await
    }
    async fn data_dir_delete(&self, dir: DataDirId) -> strata_drive::DriveResult<()> {
        self.inner.data_dir_delete(dir).await
    }
    async fn data_dir_list(
        &self,
        start_after: Option<DataDirId>,
        limit: u32,
    ) -> strata_drive::DriveResult<Vec<strata_drive::DataDirEntry>> {
        self.inner.data_dir_list(start_after, limit).await
    }
    async fn info(&self) -> strata_drive::DriveResult<strata_drive::DriveInfo> {
        self.inner.info().await
    }
    async fn healing_mark(&self) -> strata_drive::DriveResult<bool> {
        self.inner.healing_mark().await
    }
    async fn set_healing_mark(&self, on: bool) -> strata_drive::DriveResult<()> {
        self.inner.set_healing_mark(on).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drive_filling_up_mid_write_is_full_on_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
    let local = LocalDrive::open(dir.path().to_path_buf(), &format).await.unwrap();
    let filling = Arc::new(FillingDrive {
        inner: local.clone(),
        limit_bytes: 2 * 1024 * 1024,
    });
    let drives = HashMap::from([("/d".to_string(), filling as Arc<dyn Drive>)]);
    let server = Arc::new(RpcServer::new(secret(), drives));
    let handle = server.bind(localhost()).await.unwrap();
    let peer = Peer::new(
        &format!("http://{}", handle.local_addr()),
        secret(),
        RpcClientConfig::default(),
    )
    .unwrap();
    let remote = RemoteDrive::connect(peer, "/d").await.unwrap();
    let shard_dir = DataDirId::new_random();
    let mut writer = remote.shard_create(shard_dir, 0).await.unwrap();
    let mut failure = None;
    for idx in 0..16 {
        if let Err(error) = writer.write(pattern(idx, 1024 * 1024)).await {
            failure = Some(error);
            break;
        }
    }
    let error = match failure {
        Some(error) => error,
        None => writer.commit().await.unwrap_err(),
    };
    match &error {
        DriveError::Full { path } => {
            assert!(
                path.to_string_lossy().starts_with("http://127.0.0.1:"),
                "{path:?}"
            );
        }
        other => panic!("expected Full, got {other:?}"),
    }
    assert!(matches!(
        local.shard_size(shard_dir, 0).await.unwrap_err(),
        DriveError::ShardNotFound
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmp_entries(&local) != 0 {
        assert!(Instant::now() < deadline, "the failed writer's temp file stayed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Echoes its operation name and body back; `fail` answers an error.
#[derive(Debug)]
struct EchoService;

#[async_trait::async_trait]
impl strata_rpc::NodeService for EchoService {
    async fn call(&self, op: &str, body: Bytes) -> Result<Vec<u8>, String> {
        if op == "fail" {
            return Err("asked to fail".to_string());
        }
        let mut out = op.as_bytes().to_vec();
        out.push(b':');
        out.extend_from_slice(&body);
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_calls_and_late_drive_registration() {
    let cluster = Cluster::start(1).await;
    let peer = cluster.peer(fast_config());
    let timeout = Duration::from_secs(2);
    // No node service yet: a node error, not a hang or a transport failure.
    let early = peer.node_call("echo", b"x".to_vec(), timeout).await.unwrap_err();
    assert!(matches!(early, RpcError::Node { .. }), "{early:?}");
    cluster.server.set_node_service(Arc::new(EchoService));
    let answer = peer.node_call("echo", b"hello".to_vec(), timeout).await.unwrap();
    assert_eq!(&answer[..], b"echo:hello");
    // Concurrent node calls (batched together) each get their own answer or error.
    let many = futures::future::join_all((0..16u8).map(|i| {
        let peer = Arc::clone(&peer);
        async move {
            let op = if i == 7 { "fail" } else { "echo" };
            (i, peer.node_call(op, vec![i], timeout).await)
        }
    }))
    .await;
    for (i, answer) in many {
        if i == 7 {
            assert!(matches!(answer, Err(RpcError::Node { .. })), "{answer:?}");
        } else {
            assert_eq!(
                &answer.unwrap()[..],
                [b"echo:".as_slice(), &[i]].concat().as_slice()
            );
        }
    }
    let failed = peer.node_call("fail", Vec::new(), timeout).await.unwrap_err();
    assert!(
        matches!(&failed, RpcError::Node { reason, .. } if reason == "asked to fail"),
        "{failed:?}"
    );
    // A wrong secret is refused for node calls too.
    let intruder = Peer::new(
        &format!("http://{}", cluster.handle.local_addr()),
        ClusterSecret::derive_from_root_secret("another-secret"),
        fast_config(),
    )
    .unwrap();
    let refused = intruder.node_call("echo", Vec::new(), timeout).await.unwrap_err();
    assert!(matches!(refused, RpcError::Unauthorized { .. }), "{refused:?}");

    // Drives registered later are served from then on; until then they are offline.
    let remote = RemoteDrive::connect(Arc::clone(&peer), &cluster.drive_ids[0])
        .await
        .unwrap();
    cluster.server.set_drives(HashMap::new());
    let gone = remote.info().await.unwrap_err();
    assert!(matches!(gone, DriveError::Offline { .. }), "{gone:?}");
    let drives = HashMap::from([(
        cluster.drive_ids[0].clone(),
        cluster.locals[0].clone() as Arc<dyn Drive>,
    )]);
    cluster.server.set_drives(drives);
    remote.info().await.unwrap();
}

/// Calls made together to one peer travel as one batch request; each still gets exactly the
/// answer (or the error) it would get alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_to_one_peer_get_their_own_answers() {
    let cluster = Cluster::start(4).await;
    let peer = cluster.peer(fast_config());
    let remotes = cluster.remotes(&peer).await;
    for (i, local) in cluster.locals.iter().enumerate() {
        let ops = (0..20u8)
            .map(|k| MetaOp::put(Table::Objects, vec![b'k', k], vec![i as u8, k]))
            .collect();
        local.meta_commit(ops).await.unwrap();
    }
    // The drive ids are served; a fifth remote names a drive the peer no longer serves.
    let gone = RemoteDrive::connect(Arc::clone(&peer), &cluster.drive_ids[3])
        .await
        .unwrap();
    let mut drives = HashMap::new();
    for (id, local) in cluster.drive_ids.iter().zip(&cluster.locals).take(3) {
        drives.insert(id.clone(), local.clone() as Arc<dyn Drive>);
    }
    cluster.server.set_drives(drives);
    let calls = (0..3usize).flat_map(|i| (0..20u8).map(move |k| (i, k)));
    let answers = futures::future::join_all(calls.map(|(i, k)| {
        let remote = Arc::clone(&remotes[i]);
        async move { (i, k, remote.meta_get(Table::Objects, &[b'k', k]).await) }
    }))
    .await;
    for (i, k, answer) in answers {
        assert_eq!(answer.unwrap().unwrap(), Bytes::from(vec![i as u8, k]));
    }
    let (scan, missing) = tokio::join!(
        remotes[0].meta_scan(
            Table::Objects,
            ScanRange {
                limit: 100,
                ..ScanRange::default()
            }
        ),
        gone.meta_get(Table::Objects, b"k\x01")
    );
    assert_eq!(scan.unwrap().len(), 20);
    assert!(matches!(missing, Err(DriveError::Offline { .. })), "{missing:?}");
}
