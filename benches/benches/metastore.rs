//! Metadata store benchmark: durable small writes (one writer, 16 concurrent writers), point
//! reads and a 100k-key range scan, for the stores the drive could keep its records in:
//!
//! - `LocalDrive` as shipped: redb 4.6 behind our group committer (checksummed values);
//! - fjall 3.1 with a `SyncData` journal persist per write batch;
//! - one file per key, written to a temp file, fdatasync'ed and renamed (MinIO's `xl.meta`).
//!
//! Run: `cargo bench -p strata-benches --bench metastore` (a few minutes; prints a Markdown
//! table). `STRATA_BENCH_DIR` picks the directory the stores live in (default: the system temp
//! dir, which should be on the disk being measured).
//!
//! Every timed phase is bounded by [`PHASE_DURATION`]; write phases are repeated
//! [`N_REPEATS`] times and the median is reported.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strata_drive::{Drive as _, FormatRecord, LocalDrive, MetaOp, ScanRange, Table};

/// Size of every value written.
const VALUE_BYTES: usize = 1024;
/// Keys preloaded for the read and scan phases.
const N_PRELOAD_KEYS: usize = 100_000;
/// Keys per batch while preloading.
const PRELOAD_BATCH_KEYS: usize = 1_000;
/// Concurrent writers of the group-commit phase.
const N_CONCURRENT_WRITERS: usize = 16;
/// Length of one timed phase.
const PHASE_DURATION: Duration = Duration::from_secs(2);
/// Repetitions of each write phase and of the scan (median reported).
const N_REPEATS: usize = 3;
/// Point reads done per timed read phase at most.
const GETS_MAX: usize = 2_000_000;
/// Subdirectories of the file-per-key store.
const FILE_FANOUT: u64 = 256;
/// Page cache of the direct redb store: the same as the drive's `META_CACHE_BYTES` (override
/// with `STRATA_BENCH_REDB_CACHE_MIB`).
const REDB_CACHE_BYTES: usize = 256 * 1024 * 1024;
const _: () = assert!(N_PRELOAD_KEYS.is_multiple_of(PRELOAD_BATCH_KEYS));

/// One row of the result table.
struct Row {
    name: &'static str,
    one_writer_per_s: f64,
    concurrent_writers_per_s: f64,
    gets_per_s: f64,
    concurrent_gets_per_s: f64,
    scan_ms: f64,
    scanned: usize,
    disk_bytes: u64,
}

/// The operations every store offers the benchmark (blocking; each impl is Sync).
trait Store: Send + Sync {
    /// Writes one record durably.
    fn put_durable(&self, key: &[u8], value: &[u8]);
    /// Writes many records, durably at the end.
    fn put_many(&self, records: &[(Vec<u8>, Vec<u8>)]);
    /// Reads one record.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Reads every record whose key starts with `prefix`, in order; returns the count and bytes.
    fn scan(&self, prefix: &[u8]) -> (usize, usize);
}

fn key(prefix: &str, idx: u64) -> Vec<u8> {
    format!("{prefix}/object-{idx:010}").into_bytes()
}

fn value(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..VALUE_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state & 0xff) as u8
        })
        .collect()
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Durable writes per second with `n_writers` threads each writing its own keys for one phase.
fn writes_per_s(store: &Arc<dyn Store>, n_writers: usize, phase_idx: usize) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..n_writers)
        .map(|writer_idx| {
            let (store, stop, done) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let payload = value(writer_idx as u64);
                let prefix = format!("w{n_writers}-{phase_idx}-{writer_idx}");
                let mut idx = 0;
                while !stop.load(Ordering::Relaxed) {
                    store.put_durable(&key(&prefix, idx), &payload);
                    idx += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(PHASE_DURATION);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Point reads per second with [`N_CONCURRENT_WRITERS`] reader threads.
fn concurrent_gets_per_s(store: &Arc<dyn Store>) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..N_CONCURRENT_WRITERS)
        .map(|reader_idx| {
            let (store, stop, done) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut state = 0x2545_F491_4F6C_DD1Du64 + reader_idx as u64;
                while !stop.load(Ordering::Relaxed) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let got = store.get(&key("scan", state % N_PRELOAD_KEYS as u64));
                    assert_eq!(got.map(|v| v.len()), Some(VALUE_BYTES));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(PHASE_DURATION);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn run(name: &'static str, store: Arc<dyn Store>, dir: &Path) -> Row {
    eprintln!("{name}: writes");
    let one_writer_per_s = median((0..N_REPEATS).map(|i| writes_per_s(&store, 1, i)).collect());
    let concurrent_writers_per_s = median(
        (0..N_REPEATS)
            .map(|i| writes_per_s(&store, N_CONCURRENT_WRITERS, i))
            .collect(),
    );

    eprintln!("{name}: preloading {N_PRELOAD_KEYS} keys");
    for batch_idx in 0..N_PRELOAD_KEYS / PRELOAD_BATCH_KEYS {
        let records: Vec<_> = (0..PRELOAD_BATCH_KEYS)
            .map(|i| {
                let idx = (batch_idx * PRELOAD_BATCH_KEYS + i) as u64;
                (key("scan", idx), value(idx))
            })
            .collect();
        store.put_many(&records);
    }

    eprintln!("{name}: point reads");
    let started = Instant::now();
    let mut n_gets = 0usize;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    while n_gets < GETS_MAX && started.elapsed() < PHASE_DURATION {
        for _ in 0..256 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let got = store.get(&key("scan", state % N_PRELOAD_KEYS as u64));
            assert_eq!(got.map(|v| v.len()), Some(VALUE_BYTES));
            n_gets += 1;
        }
    }
    let gets_per_s = n_gets as f64 / started.elapsed().as_secs_f64();
    let concurrent_gets_per_s = concurrent_gets_per_s(&store);

    eprintln!("{name}: scans");
    let mut scanned = 0;
    let scan_ms = median(
        (0..N_REPEATS)
            .map(|_| {
                let started = Instant::now();
                let (n_entries, n_bytes) = store.scan(b"scan/");
                assert_eq!(n_bytes, n_entries * VALUE_BYTES);
                scanned = n_entries;
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    Row {
        name,
        one_writer_per_s,
        concurrent_writers_per_s,
        gets_per_s,
        concurrent_gets_per_s,
        scan_ms,
        scanned,
        disk_bytes: dir_size_bytes(dir),
    }
}

fn dir_size_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_size_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Gives a store without its own group commit the same scheme `LocalDrive` uses: writers hand
/// their record to one committer thread, which drains every waiting record (at most
/// [`GROUP_COMMIT_RECORDS_MAX`]) into one durable batch and then answers them all.
struct GroupCommitted<S> {
    inner: Arc<S>,
    sender: std::sync::mpsc::SyncSender<(Vec<u8>, Vec<u8>, std::sync::mpsc::SyncSender<()>)>,
}

/// Records per shared commit at most (as in the drive's committer).
const GROUP_COMMIT_RECORDS_MAX: usize = 256;

impl<S: Store + 'static> GroupCommitted<S> {
    fn new(inner: S) -> Self {
        let inner = Arc::new(inner);
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<(Vec<u8>, Vec<u8>, std::sync::mpsc::SyncSender<()>)>(1024);
        let committer = Arc::clone(&inner);
        std::thread::spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut group = vec![first];
                while group.len() < GROUP_COMMIT_RECORDS_MAX {
                    match receiver.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let records: Vec<_> = group.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
                committer.put_many(&records);
                for (_, _, reply) in group {
                    let _ = reply.send(());
                }
            }
        });
        GroupCommitted { inner, sender }
    }
}

impl<S: Store> Store for GroupCommitted<S> {
    fn put_durable(&self, key: &[u8], value: &[u8]) {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.sender.send((key.to_vec(), value.to_vec(), reply)).unwrap();
        answer.recv().unwrap();
    }

    fn put_many(&self, records: &[(Vec<u8>, Vec<u8>)]) {
        self.inner.put_many(records);
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.get(key)
    }

    fn scan(&self, prefix: &[u8]) -> (usize, usize) {
        self.inner.scan(prefix)
    }
}

/// redb used directly (no async hop, no checksum), with the drive's cache size.
struct RedbStore {
    db: redb::Database,
}

const REDB_OBJECTS: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("objects");

impl Store for RedbStore {
    fn put_durable(&self, key: &[u8], value: &[u8]) {
        self.put_many(&[(key.to_vec(), value.to_vec())]);
    }

    fn put_many(&self, records: &[(Vec<u8>, Vec<u8>)]) {
        let txn = self.db.begin_write().unwrap();
        {
            let mut table = txn.open_table(REDB_OBJECTS).unwrap();
            for (k, v) in records {
                table.insert(k.as_slice(), v.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        use redb::ReadableDatabase as _;
        let txn = self.db.begin_read().unwrap();
        let table = txn.open_table(REDB_OBJECTS).unwrap();
        table.get(key).unwrap().map(|v| v.value().to_vec())
    }

    fn scan(&self, prefix: &[u8]) -> (usize, usize) {
        use redb::ReadableDatabase as _;
        let txn = self.db.begin_read().unwrap();
        let table = txn.open_table(REDB_OBJECTS).unwrap();
        let (mut n, mut bytes) = (0, 0);
        for item in table.range::<&[u8]>(prefix..).unwrap() {
            let (key, value) = item.unwrap();
            if !key.value().starts_with(prefix) {
                break;
            }
            n += 1;
            bytes += value.value().len();
        }
        (n, bytes)
    }
}

/// `LocalDrive` (redb + group commit), driven from plain threads through a tokio runtime, as
/// the object layer's tasks would.
struct LocalDriveStore {
    runtime: tokio::runtime::Handle,
    drive: Arc<LocalDrive>,
}

impl Store for LocalDriveStore {
    fn put_durable(&self, key: &[u8], value: &[u8]) {
        let op = MetaOp::put(Table::Objects, key.to_vec(), value.to_vec());
        self.runtime.block_on(self.drive.meta_commit(vec![op])).unwrap();
    }

    fn put_many(&self, records: &[(Vec<u8>, Vec<u8>)]) {
        let ops = records
            .iter()
            .map(|(k, v)| MetaOp::put(Table::Objects, k.clone(), v.clone()))
            .collect();
        self.runtime.block_on(self.drive.meta_commit(ops)).unwrap();
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.runtime
            .block_on(self.drive.meta_get(Table::Objects, key))
            .unwrap()
            .map(|v| v.to_vec())
    }

    fn scan(&self, prefix: &[u8]) -> (usize, usize) {
        let range = ScanRange {
            prefix: prefix.to_vec(),
            limit: u32::MAX,
            ..ScanRange::default()
        };
        let entries = self
            .runtime
            .block_on(self.drive.meta_scan(Table::Objects, range))
            .unwrap();
        (entries.len(), entries.iter().map(|e| e.value.len()).sum())
    }
}

struct FjallStore {
    db: fjall::Database,
    objects: fjall::Keyspace,
}

impl Store for FjallStore {
    fn put_durable(&self, key: &[u8], value: &[u8]) {
        let mut batch = self.db.batch().durability(Some(fjall::PersistMode::SyncData));
        batch.insert(&self.objects, key, value);
        batch.commit().unwrap();
    }

    fn put_many(&self, records: &[(Vec<u8>, Vec<u8>)]) {
        let mut batch = self.db.batch().durability(Some(fjall::PersistMode::SyncData));
        for (k, v) in records {
            batch.insert(&self.objects, k.as_slice(), v.as_slice());
        }
        batch.commit().unwrap();
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.objects.get(key).unwrap().map(|v| v.to_vec())
    }

    fn scan(&self, prefix: &[u8]) -> (usize, usize) {
        let (mut n, mut bytes) = (0, 0);
        for guard in self.objects.prefix(prefix) {
            let (_key, value) = guard.into_inner().unwrap();
            n += 1;
            bytes += value.len();
        }
        (n, bytes)
    }
}

/// One file per key under a 256-way fan-out, written MinIO style (temp file, fdatasync,
/// rename). Scans list every fan-out directory, sort, and read each file.
struct FileStore {
    root: PathBuf,
    tmp_seq: AtomicU64,
}

impl FileStore {
    fn path(&self, key: &[u8]) -> PathBuf {
        let name: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let fanout = xxhash_rust::xxh3::xxh3_64(key) % FILE_FANOUT;
        self.root.join(format!("{fanout:02x}")).join(name)
    }

    fn write(&self, key: &[u8], value: &[u8], durable: bool) {
        let tmp = self
            .root
            .join("tmp")
            .join(self.tmp_seq.fetch_add(1, Ordering::Relaxed).to_string());
        let mut file = File::create(&tmp).unwrap();
        file.write_all(value).unwrap();
        if durable {
            file.sync_data().unwrap();
        }
        std::fs::rename(&tmp, self.path(key)).unwrap();
    }
}

impl Store for FileStore {
    fn put_durable(&self, key: &[u8], value: &[u8]) {
        self.write(key, value, true);
    }

    fn put_many(&self, records: &[(Vec<u8>, Vec<u8>)]) {
        for (k, v) in records {
            self.write(k, v, false);
        }
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    fn scan(&self, prefix: &[u8]) -> (usize, usize) {
        let hex_prefix: String = prefix.iter().map(|b| format!("{b:02x}")).collect();
        let mut names = Vec::new();
        for fanout in 0..FILE_FANOUT {
            let dir = self.root.join(format!("{fanout:02x}"));
            for entry in std::fs::read_dir(&dir).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.starts_with(&hex_prefix) {
                    names.push((name, dir.clone()));
                }
            }
        }
        names.sort();
        let bytes = names
            .iter()
            .map(|(name, dir)| std::fs::read(dir.join(name)).unwrap().len())
            .sum();
        (names.len(), bytes)
    }
}

/// Which stores to run: `STRATA_BENCH_STORES` (comma-separated of `drive,redb,fjall,files`),
/// all by default.
fn selected(name: &str) -> bool {
    match std::env::var("STRATA_BENCH_STORES") {
        Ok(list) => list.split(',').any(|item| item.trim() == name),
        Err(_) => true,
    }
}

fn main() {
    let base = match std::env::var_os("STRATA_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();

    if selected("drive") {
        let dir = base.path().join("localdrive");
        let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
        let drive = runtime.block_on(LocalDrive::open(dir.clone(), &format)).unwrap();
        let store = LocalDriveStore {
            runtime: runtime.handle().clone(),
            drive,
        };
        rows.push(run(
            "strata LocalDrive (redb + its group commit, async, crc32c)",
            Arc::new(store),
            &dir,
        ));
    }

    if selected("redb") {
        let dir = base.path().join("redb");
        std::fs::create_dir_all(&dir).unwrap();
        let db = redb::Builder::new()
            .set_cache_size(
                std::env::var("STRATA_BENCH_REDB_CACHE_MIB")
                    .ok()
                    .and_then(|mib| mib.parse::<usize>().ok())
                    .map_or(REDB_CACHE_BYTES, |mib| mib * 1024 * 1024),
            )
            .create(dir.join("meta.redb"))
            .unwrap();
        let store = GroupCommitted::new(RedbStore { db });
        rows.push(run("redb 4.6 direct + group commit", Arc::new(store), &dir));
    }

    if selected("fjall") {
        let dir = base.path().join("fjall");
        let db = fjall::Database::builder(&dir).open().unwrap();
        let objects = db
            .keyspace("objects", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let store = GroupCommitted::new(FjallStore { db, objects });
        rows.push(run("fjall 3.1 direct + group commit", Arc::new(store), &dir));
    }

    if selected("files") {
        let dir = base.path().join("files");
        for fanout in 0..FILE_FANOUT {
            std::fs::create_dir_all(dir.join(format!("{fanout:02x}"))).unwrap();
        }
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let files = FileStore {
            root: dir.clone(),
            tmp_seq: AtomicU64::new(0),
        };
        rows.push(run("file per key + fdatasync + rename", Arc::new(files), &dir));
    }

    println!(
        "| store | 1 writer, commits/s | {N_CONCURRENT_WRITERS} writers, commits/s | point get/s, 1 reader | point get/s, {N_CONCURRENT_WRITERS} readers | scan {N_PRELOAD_KEYS} keys with values, ms | on disk after run, MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        assert_eq!(row.scanned, N_PRELOAD_KEYS);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} |",
            row.name,
            row.one_writer_per_s,
            row.concurrent_writers_per_s,
            row.gets_per_s,
            row.concurrent_gets_per_s,
            row.scan_ms,
            row.disk_bytes as f64 / (1024.0 * 1024.0)
        );
    }
}
