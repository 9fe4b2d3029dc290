//! The local drive: a directory on a local filesystem holding a format record, a redb metadata
//! store and shard files (layout in docs/DRIVE-FORMAT.md).
//!
//! ```text
//! ROOT/.strata/format.json        format record (written once, atomically)
//! ROOT/.strata/meta.redb          metadata tables (redb), values checksummed
//! ROOT/.strata/tmp/<uuid>         shard files being written (wiped at open)
//! ROOT/.strata/trash/<dir>-<uuid> deleted data directories (emptied in the background)
//! ROOT/data/<xx>/<DataDirId>/part.<N>   committed shard files, xx = first 2 hex of the id
//! ```
//!
//! Invariants:
//! - A drive is only opened when its format record matches the expected position; an empty
//!   directory is formatted, a non-empty unformatted one is refused.
//! - `meta_commit` returns `Ok` only after its batch is in a durably committed redb
//!   transaction (group commit: see `group_commit.rs`). Reads never return a value whose
//!   checksum does not match.
//! - A shard file appears under `data/` only after its bytes were fdatasync'ed; the rename and
//!   any directory it created are fsync'ed before `commit` returns.
//! - Blocking filesystem calls run on `spawn_blocking` (or the committer thread), never on a
//!   tokio worker, except appends that fit in the writer's buffer (a memcpy).

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use redb::ReadableDatabase as _;
use tokio::sync::oneshot;

use crate::direct::ShardFileWriter;
use crate::fs_sync::FsSync;
use crate::group_commit::{CommitFailure, EncodedOp, GroupCommitter, table_definition};
use crate::maintenance::{self, MaintenanceReport};
use crate::meta_db::{MetaDb, needs_reopen};
use crate::space::{META_WRITE_SPACE_FACTOR, Space};
use crate::{
    DataDirEntry, DataDirId, Drive, DriveError, DriveInfo, DriveResult, FormatRecord, MetaEntry, MetaOp,
    ScanRange, ShardWrite, Table, record,
};

pub use crate::group_commit::CommitStats;

/// Directory under the drive root holding everything but committed shard files.
pub const SYSTEM_DIR_NAME: &str = ".strata";
/// Format record file inside [`SYSTEM_DIR_NAME`].
pub const FORMAT_FILE_NAME: &str = "format.json";
/// Temp name the format record is written under before its rename.
pub const FORMAT_TMP_FILE_NAME: &str = "format.json.tmp";
/// Metadata database file inside [`SYSTEM_DIR_NAME`].
pub const META_FILE_NAME: &str = "meta.redb";
/// Marker file, inside [`SYSTEM_DIR_NAME`], present while the drive is being healed after
/// joining a deployment empty.
pub const HEALING_FILE_NAME: &str = "healing";
/// Temp area for shard files being written, inside [`SYSTEM_DIR_NAME`].
pub const TMP_DIR_NAME: &str = "tmp";
/// Trash for deleted data directories, inside [`SYSTEM_DIR_NAME`].
pub const TRASH_DIR_NAME: &str = "trash";
/// Directory under the drive root holding committed shard files.
pub const DATA_DIR_NAME: &str = "data";
/// Entries a fresh filesystem may already hold that do not make a drive "used".
const FORMATTABLE_ROOT_ENTRIES: [&str; 2] = [SYSTEM_DIR_NAME, "lost+found"];

/// Largest metadata key accepted (an S3 key is at most 1024 bytes; the rest is headroom for
/// bucket names and version ids).
pub const META_KEY_BYTES_MAX: usize = 4 * 1024;
/// Largest metadata value accepted (inline object data lives in values).
pub const META_VALUE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Default page cache of the metadata store per drive (an upper bound, filled as pages are
/// read). The benchmark (docs/BENCHMARKS.md) shows reads and scans 7-10x slower once the hot
/// records do not fit: 64 MiB scanned 100k 1 KiB records in ~240 ms, 256 MiB in ~22 ms. A
/// server with a memory budget sets its own with [`set_meta_cache_bytes`].
pub const META_CACHE_BYTES: usize = 256 * 1024 * 1024;

static META_CACHE_BYTES_NOW: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(META_CACHE_BYTES);

/// Sets the metadata cache of every local drive opened (or reopened) from now on: the process's
/// memory budget divides it among its drives. Call before opening drives.
pub fn set_meta_cache_bytes(bytes: usize) {
    META_CACHE_BYTES_NOW.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// The metadata cache a local drive opened now gets.
pub fn meta_cache_bytes() -> usize {
    META_CACHE_BYTES_NOW.load(std::sync::atomic::Ordering::Relaxed)
}
const _: () = assert!(META_KEY_BYTES_MAX + META_VALUE_BYTES_MAX < u32::MAX as usize);

/// A drive on a local filesystem. See the module docs for the layout.
#[derive(Debug)]
pub struct LocalDrive {
    root: PathBuf,
    endpoint: String,
    format: FormatRecord,
    meta: Arc<MetaDb>,
    committer: GroupCommitter,
    /// Free space and the reserve kept for deletions.
    space: Arc<Space>,
    /// Serialises creation of data directories so "exists" implies "durably exists".
    /// Shares `syncfs` calls between shard commits on this drive's filesystem.
    fs_sync: Arc<FsSync>,
    /// Dropping this stops the background maintenance task.
    _maintenance_stop: oneshot::Sender<()>,
}

impl LocalDrive {
    /// Opens the drive at `root` expecting the position `expected` describes.
    ///
    /// - With a format record on disk, it must match `expected.same_position()`, else
    ///   [`DriveError::FormatMismatch`]; the drive id on disk is kept.
    /// - A missing or empty `root` (or one holding only `lost+found` or the remains of an
    ///   interrupted formatting) is formatted with `expected`.
    /// - A `root` holding anything else but no format record is refused with
    ///   [`DriveError::Unformatted`].
    ///
    /// The temp area is emptied, and a background task (on the current tokio runtime) empties
    /// the trash and removes stale temp files until the drive is dropped.
    pub async fn open(root: PathBuf, expected: &FormatRecord) -> DriveResult<Arc<LocalDrive>> {
        Self::open_with_interval(root, expected, maintenance::MAINTENANCE_INTERVAL).await
    }

    /// [`LocalDrive::open`] with another period for the background maintenance task.
    pub async fn open_with_interval(
        root: PathBuf,
        expected: &FormatRecord,
        maintenance_interval: std::time::Duration,
    ) -> DriveResult<Arc<LocalDrive>> {
        let expected = expected.clone();
        let (root, format, meta) = blocking(move || open_blocking(root, expected)).await?;
        let meta = Arc::new(meta);
        let thread_name = format!(
            "strata-commit-{}.{}.{}",
            format.pool_idx, format.set_idx, format.drive_idx
        );
        let committer =
            GroupCommitter::start(Arc::clone(&meta), thread_name).map_err(|e| io_error(&root, &root, e))?;
        let fs_sync = FsSync::for_path(&root).map_err(|e| io_error(&root, &root, e))?;
        let (stop_sender, stop_receiver) = oneshot::channel();
        let system = root.join(SYSTEM_DIR_NAME);
        maintenance::spawn(
            system.join(TRASH_DIR_NAME),
            system.join(TMP_DIR_NAME),
            maintenance_interval,
            stop_receiver,
        );
        Ok(Arc::new(LocalDrive {
            endpoint: root.display().to_string(),
            space: Arc::new(Space::new(root.clone())),
            root,
            format,
            meta,
            committer,
            fs_sync,
            _maintenance_stop: stop_sender,
        }))
    }

    /// Reads the format record at `root`, if any (`Ok(None)` when the drive is unformatted),
    /// so a server can discover an existing deployment before opening.
    pub async fn read_format(root: &Path) -> DriveResult<Option<FormatRecord>> {
        let root = root.to_path_buf();
        blocking(move || read_format_blocking(&root)).await
    }

    /// Whether the drive at `root` takes a durable write now: a small file is created,
    /// synced and removed in its temp area. `ReadOnly` while its filesystem is read-only.
    pub async fn probe_writable(root: &Path) -> DriveResult<()> {
        let root = root.to_path_buf();
        blocking(move || {
            let path = root
                .join(SYSTEM_DIR_NAME)
                .join(TMP_DIR_NAME)
                .join(format!("probe-{}", uuid::Uuid::new_v4().as_simple()));
            let written = (|| {
                let mut file = File::create(&path)?;
                file.write_all(b"p")?;
                file.sync_all()
            })();
            let removed = std::fs::remove_file(&path);
            written.map_err(|e| io_error(&root, &path, e))?;
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(&root, &path, e)),
                _ => Ok(()),
            }
        })
        .await
    }

    /// The drive root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Counters of the metadata group committer.
    pub fn commit_stats(&self) -> CommitStats {
        self.committer.stats()
    }

    /// How many `syncfs` calls shard commits on this drive's filesystem have made (shared by
    /// all drives on it; compare with the number of shard commits to see the grouping).
    pub fn n_filesystem_syncs(&self) -> u64 {
        self.fs_sync.n_syncs()
    }

    /// Runs one bounded maintenance tick now (the background task does the same periodically).
    pub async fn run_maintenance(&self) -> DriveResult<MaintenanceReport> {
        let system = self.root.join(SYSTEM_DIR_NAME);
        let root = self.root.clone();
        blocking(move || {
            let trash = system.join(TRASH_DIR_NAME);
            let grace = maintenance::grace_for(&trash);
            maintenance::tick(
                &trash,
                &system.join(TMP_DIR_NAME),
                std::time::SystemTime::now(),
                grace,
            )
            .map_err(|e| io_error(&root, &system, e))
        })
        .await
    }

    fn data_dir_path(&self, dir: DataDirId) -> PathBuf {
        data_dir_path(&self.root, dir)
    }

    /// Whether the drive was full (refusing new writes) at its last space check.
    pub fn is_full(&self) -> bool {
        self.space.is_full()
    }

    /// The metadata store for a read; while it is closed (a reopen failed), asks for another.
    fn open_store(&self) -> DriveResult<Arc<redb::Database>> {
        self.meta.get().inspect_err(|_| self.committer.nudge())
    }

    /// Maps a metadata-store error of a read; a store latched by an earlier failure is queued
    /// for a reopen.
    fn read_error(&self, error: redb::Error) -> DriveError {
        if needs_reopen(&error) {
            self.meta.want_reopen();
            self.committer.nudge();
        }
        redb_error(&self.root, error)
    }

    /// The shared part of [`Drive::meta_commit`] and [`Drive::meta_commit_deleting`].
    async fn commit(&self, ops: Vec<MetaOp>, deleting: bool) -> DriveResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(ops.len());
        let mut n_bytes: u64 = 0;
        let mut n_puts: usize = 0;
        for op in ops {
            encoded.push(match op {
                MetaOp::Put { table, key, value } => {
                    check_record_size(key.len(), value.len())?;
                    n_bytes += (key.len() + value.len()) as u64;
                    n_puts += 1;
                    let stored_value = Some(record::encode(&key, &value));
                    EncodedOp {
                        table,
                        key,
                        stored_value,
                    }
                }
                MetaOp::Delete { table, key } => {
                    check_record_size(key.len(), 0)?;
                    EncodedOp {
                        table,
                        key,
                        stored_value: None,
                    }
                }
            });
        }
        // One statvfs: cheap next to the commit's fsync. A batch of deletes only never grows
        // the store for good; deletions that add records (markers) keep half the reserve.
        let space_bytes = n_bytes.saturating_mul(META_WRITE_SPACE_FACTOR);
        let _admitted = match (deleting, n_puts > 0) {
            (false, true) => Some(self.space.admit(space_bytes)?),
            (true, true) => {
                self.space.check_deletion_room(space_bytes)?;
                None
            }
            (_, false) => {
                self.space.check_writable()?;
                None
            }
        };
        self.committer.commit(encoded).await.map_err(|failure| {
            if let CommitFailure::Io { kind, message } = &failure
                && is_no_space(*kind)
            {
                let store = self.root.join(SYSTEM_DIR_NAME).join(META_FILE_NAME);
                self.space
                    .note_os_full(&store, &io::Error::new(*kind, message.clone()));
            }
            commit_failure_error(&self.root, failure)
        })
    }

    /// Test hook: stores `stored` under `key` without adding a checksum.
    #[cfg(test)]
    fn put_raw_for_test(&self, table: Table, key: &[u8], stored: &[u8]) {
        let db = self.meta.get().unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(table_definition(table))
            .unwrap()
            .insert(key, stored)
            .unwrap();
        txn.commit().unwrap();
    }
}

/// Size of, and space available on, the filesystem holding `path`.
pub(crate) fn filesystem_space(path: &Path) -> io::Result<DriveInfo> {
    filesystem_state(path).map(|(info, _)| info)
}

/// [`filesystem_space`] and whether the filesystem is mounted read-only.
pub(crate) fn filesystem_state(path: &Path) -> io::Result<(DriveInfo, bool)> {
    let stat = rustix::fs::statvfs(path)?;
    let info = DriveInfo {
        total_bytes: stat.f_blocks.saturating_mul(stat.f_frsize),
        free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
    };
    Ok((info, stat.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY)))
}

/// Opens part `part` of data directory `dir` in the trash, if it is still there (see
/// `maintenance::TRASH_GRACE`). Only reached when the live path is missing.
fn open_from_trash(root: &Path, dir: DataDirId, part: u32) -> io::Result<Option<(File, PathBuf)>> {
    let trash = root.join(SYSTEM_DIR_NAME).join(TRASH_DIR_NAME);
    let prefix = format!("{dir}-");
    let entries = match std::fs::read_dir(&trash) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(&prefix))
        {
            continue;
        }
        let path = entry.path().join(part_file_name(part));
        match File::open(&path) {
            Ok(file) => return Ok(Some((file, path))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// `ROOT/data/<first 2 hex>/<id>`.
fn data_dir_path(root: &Path, dir: DataDirId) -> PathBuf {
    let name = dir.to_string();
    let fanout = name.get(..2).unwrap_or("00");
    root.join(DATA_DIR_NAME).join(fanout).join(name)
}

/// Data directories under `ROOT/data` in id order (the fan-out directory is the id's first two
/// hex digits, so walking fan-outs in order and ids within each in order is id order).
fn list_data_dirs(
    root: &Path,
    start_after: Option<DataDirId>,
    limit: usize,
) -> io::Result<Vec<DataDirEntry>> {
    let mut out = Vec::new();
    let after = start_after.map(|d| d.to_string());
    let mut fanouts: Vec<String> = match std::fs::read_dir(root.join(DATA_DIR_NAME)) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    fanouts.sort();
    for fanout in fanouts {
        if after
            .as_deref()
            .is_some_and(|a| fanout.as_str() < a.get(..2).unwrap_or(""))
        {
            continue;
        }
        let mut dirs: Vec<(String, std::fs::Metadata)> =
            std::fs::read_dir(root.join(DATA_DIR_NAME).join(&fanout))?
                .filter_map(|e| {
                    let e = e.ok()?;
                    Some((e.file_name().into_string().ok()?, e.metadata().ok()?))
                })
                .filter(|(name, meta)| meta.is_dir() && after.as_deref().is_none_or(|a| name.as_str() > a))
                .collect();
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in dirs {
            let Ok(id) = uuid::Uuid::try_parse(&name) else {
                continue;
            };
            out.push(DataDirEntry {
                id: DataDirId(id),
                modified: meta.modified()?,
            });
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn part_file_name(part: u32) -> String {
    format!("part.{part}")
}

#[async_trait]
impl Drive for LocalDrive {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn format(&self) -> &FormatRecord {
        &self.format
    }

    async fn meta_get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Bytes>> {
        let db = self.open_store()?;
        let root = &self.root;
        metadata_read(move || {
            let txn = db.begin_read().map_err(|e| self.read_error(e.into()))?;
            let table = txn
                .open_table(table_definition(table))
                .map_err(|e| self.read_error(e.into()))?;
            let Some(stored) = table.get(key).map_err(|e| self.read_error(e.into()))? else {
                return Ok(None);
            };
            let value = record::decode(key, stored.value()).map_err(|what| corrupt(root, what))?;
            Ok(Some(Bytes::copy_from_slice(value)))
        })
        .await
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> DriveResult<Vec<MetaEntry>> {
        if range.limit == 0 {
            return Ok(Vec::new());
        }
        let db = self.open_store()?;
        let root = &self.root;
        metadata_read(move || {
            let txn = db.begin_read().map_err(|e| self.read_error(e.into()))?;
            let table = txn
                .open_table(table_definition(table))
                .map_err(|e| self.read_error(e.into()))?;
            let (lower, exclusive) = scan_lower_bound(&range);
            let bound = if exclusive {
                std::ops::Bound::Excluded(lower)
            } else {
                std::ops::Bound::Included(lower)
            };
            let iter = table
                .range::<&[u8]>((bound, std::ops::Bound::Unbounded))
                .map_err(|e| self.read_error(e.into()))?;
            let limit = usize::try_from(range.limit).unwrap_or(usize::MAX);
            // Keys and values are copied into one buffer and handed out as slices of it: one
            // allocation per scan instead of two per entry.
            let mut arena = Vec::new();
            let mut spans: Vec<(usize, usize, usize)> = Vec::new();
            for item in iter {
                let (key, stored) = item.map_err(|e| self.read_error(e.into()))?;
                let key = key.value();
                if !key.starts_with(&range.prefix) {
                    break;
                }
                let value = if range.keys_only {
                    &[][..]
                } else {
                    record::decode(key, stored.value()).map_err(|what| corrupt(root, what))?
                };
                spans.push((arena.len(), key.len(), value.len()));
                arena.extend_from_slice(key);
                arena.extend_from_slice(value);
                if spans.len() >= limit {
                    break;
                }
            }
            let arena = Bytes::from(arena);
            Ok(spans
                .into_iter()
                .map(|(start, key_len, value_len)| {
                    let value_start = start + key_len;
                    MetaEntry {
                        key: arena.slice(start..value_start),
                        value: arena.slice(value_start..value_start + value_len),
                    }
                })
                .collect())
        })
        .await
    }

    async fn meta_commit(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        self.commit(ops, false).await
    }

    async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        self.commit(ops, true).await
    }

    async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>> {
        // Refused at once on a full drive, before the body is read into it.
        self.space
            .check_room(crate::direct::SHARD_WRITE_CHUNK_BYTES as u64)?;
        let tmp_path = self
            .root
            .join(SYSTEM_DIR_NAME)
            .join(TMP_DIR_NAME)
            .join(uuid::Uuid::new_v4().as_simple().to_string());
        // The temp file is created when the first bytes go out (usually at commit).
        let writer = ShardFileWriter::new(tmp_path.clone());
        Ok(Box::new(LocalShardWrite {
            root: self.root.clone(),
            tmp_path,
            final_dir: self.data_dir_path(dir),
            part,
            writer: Some(writer),
            finished: false,
            fs_sync: Arc::clone(&self.fs_sync),
            space: Arc::clone(&self.space),
        }))
    }

    async fn shard_read(&self, dir: DataDirId, part: u32, offset: u64, len: u64) -> DriveResult<Bytes> {
        let path = self.data_dir_path(dir).join(part_file_name(part));
        let root = self.root.clone();
        blocking(move || {
            let (file, path) = match File::open(&path) {
                Ok(file) => (file, path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Replaced or moved since the caller resolved the version: a read that
                    // started before keeps going from the trash during its grace period.
                    match open_from_trash(&root, dir, part).map_err(|e| io_error(&root, &path, e))? {
                        Some(found) => found,
                        None => return Err(DriveError::ShardNotFound),
                    }
                }
                Err(e) => return Err(io_error(&root, &path, e)),
            };
            let size_bytes = file.metadata().map_err(|e| io_error(&root, &path, e))?.len();
            let end = offset.checked_add(len);
            if end.is_none_or(|end| end > size_bytes) {
                return Err(corrupt(
                    &root,
                    format!("{path:?} is {size_bytes} bytes, cannot read {len} bytes at offset {offset}"),
                ));
            }
            let len_usize = usize::try_from(len)
                .map_err(|_| corrupt(&root, format!("read of {len} bytes does not fit in memory")))?;
            // Read into spare capacity (no zeroing of a buffer about to be overwritten).
            let mut file = file;
            file.seek(io::SeekFrom::Start(offset))
                .map_err(|e| io_error(&root, &path, e))?;
            let mut buf = Vec::with_capacity(len_usize);
            (&mut file)
                .take(len)
                .read_to_end(&mut buf)
                .map_err(|e| io_error(&root, &path, e))?;
            if buf.len() != len_usize {
                return Err(corrupt(
                    &root,
                    format!("{path:?} shrank while reading {len} bytes at offset {offset}"),
                ));
            }
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn shard_size(&self, dir: DataDirId, part: u32) -> DriveResult<u64> {
        let path = self.data_dir_path(dir).join(part_file_name(part));
        let root = self.root.clone();
        blocking(move || match std::fs::metadata(&path) {
            Ok(metadata) => Ok(metadata.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DriveError::ShardNotFound),
            Err(e) => Err(io_error(&root, &path, e)),
        })
        .await
    }

    async fn shard_delete(&self, dir: DataDirId, part: u32) -> DriveResult<()> {
        let path = self.data_dir_path(dir).join(part_file_name(part));
        let root = self.root.clone();
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&root, &path, e)),
        })
        .await
    }

    async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()> {
        let path = self.data_dir_path(dir);
        let trash_path =
            self.root
                .join(SYSTEM_DIR_NAME)
                .join(TRASH_DIR_NAME)
                .join(maintenance::trash_entry_name(
                    &dir.to_string(),
                    std::time::SystemTime::now(),
                ));
        let root = self.root.clone();
        // A full drive gets the space back now rather than after the trash grace: new writes
        // matter more than reads of replaced versions still under way.
        let at_once = self.space.is_full();
        blocking(move || {
            match std::fs::rename(&path, &trash_path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(&root, &path, e)),
            }
            // Not synced: the records no longer point here, so if a crash undoes the rename,
            // the directory is an orphan that the sweep removes again.
            if at_once && let Err(error) = std::fs::remove_dir_all(&trash_path) {
                tracing::debug!(%error, path = ?trash_path, "emptying a deleted data directory now failed; the trash cleaner retries");
            }
            Ok(())
        })
        .await
    }

    async fn data_dir_list(
        &self,
        start_after: Option<DataDirId>,
        limit: u32,
    ) -> DriveResult<Vec<DataDirEntry>> {
        let root = self.root.clone();
        blocking(move || {
            list_data_dirs(&root, start_after, limit as usize).map_err(|e| io_error(&root, &root, e))
        })
        .await
    }

    async fn healing_mark(&self) -> DriveResult<bool> {
        let path = self.root.join(SYSTEM_DIR_NAME).join(HEALING_FILE_NAME);
        let root = self.root.clone();
        blocking(move || match std::fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&root, &path, e)),
        })
        .await
    }

    async fn set_healing_mark(&self, on: bool) -> DriveResult<()> {
        let system = self.root.join(SYSTEM_DIR_NAME);
        let path = system.join(HEALING_FILE_NAME);
        let root = self.root.clone();
        blocking(move || {
            let changed = if on {
                match File::options().write(true).create_new(true).open(&path) {
                    Ok(file) => file.sync_all().map(|()| true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            } else {
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(e),
                }
            };
            let changed = changed.map_err(|e| io_error(&root, &path, e))?;
            if changed {
                fsync_dir(&system).map_err(|e| io_error(&root, &system, e))?;
            }
            Ok(())
        })
        .await
    }

    async fn info(&self) -> DriveResult<DriveInfo> {
        let root = self.root.clone();
        blocking(move || filesystem_space(&root).map_err(|e| io_error(&root, &root, e))).await
    }
}

/// A shard file being written into the temp area.
#[derive(Debug)]
struct LocalShardWrite {
    root: PathBuf,
    tmp_path: PathBuf,
    final_dir: PathBuf,
    part: u32,
    /// `None` after a failed write: the writer is poisoned.
    writer: Option<ShardFileWriter>,
    /// Committed or aborted: nothing left to clean up.
    finished: bool,
    fs_sync: Arc<FsSync>,
    space: Arc<Space>,
}

impl LocalShardWrite {
    fn take_writer(&mut self) -> DriveResult<ShardFileWriter> {
        self.writer.take().ok_or_else(|| DriveError::Io {
            path: self.tmp_path.clone(),
            source: io::Error::other("an earlier write to this shard file failed"),
        })
    }
}

#[async_trait]
impl ShardWrite for LocalShardWrite {
    async fn write(&mut self, buf: Bytes) -> DriveResult<()> {
        if let Some(writer) = &mut self.writer
            && writer.room() > buf.len()
        {
            // Fits in the buffer without filling it: a memcpy, no syscall.
            writer.buffer(&buf);
            return Ok(());
        }
        let mut writer = self.take_writer()?;
        let (root, path, space) = (self.root.clone(), self.tmp_path.clone(), Arc::clone(&self.space));
        let writer = blocking(move || {
            // A write never takes the reserve kept for deletions, also with others under way.
            let _admitted = space.admit(buf.len() as u64)?;
            writer
                .append(&buf)
                .map_err(|e| shard_write_error(&space, &root, &path, e))?;
            Ok(writer)
        })
        .await?;
        self.writer = Some(writer);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> DriveResult<()> {
        let writer = self.take_writer()?;
        let (root, tmp_path, final_dir) = (self.root.clone(), self.tmp_path.clone(), self.final_dir.clone());
        let final_path = final_dir.join(part_file_name(self.part));
        let space = Arc::clone(&self.space);
        let placed = blocking(move || {
            writer
                .finish()
                .map_err(|e| shard_write_error(&space, &root, &tmp_path, e))?;
            std::fs::create_dir_all(&final_dir).map_err(|e| io_error(&root, &final_dir, e))?;
            std::fs::rename(&tmp_path, &final_path).map_err(|e| io_error(&root, &final_path, e))
        })
        .await;
        // Renamed or not, the temp file is no longer ours to remove after a successful rename;
        // after a failure Drop removes whatever is left.
        self.finished = placed.is_ok();
        placed?;
        // One syncfs shared with every other commit waiting makes the data, the new
        // directories and the rename durable together.
        self.fs_sync
            .sync()
            .await
            .map_err(|e| io_error(&self.root, &self.final_dir, e))
    }

    async fn abort(mut self: Box<Self>) -> DriveResult<()> {
        let writer = self.writer.take();
        let (root, path) = (self.root.clone(), self.tmp_path.clone());
        self.finished = true;
        blocking(move || {
            // Discard the buffer without writing it.
            drop(writer);
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(&root, &path, e)),
            }
        })
        .await
    }
}

impl Drop for LocalShardWrite {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Never block here: close and remove on the blocking pool, or leave the file to the
        // temp-area cleaner when there is no runtime.
        let file = self.writer.take();
        let path = self.tmp_path.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn_blocking(move || {
                drop(file);
                if let Err(error) = std::fs::remove_file(&path)
                    && error.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(%error, ?path, "removing an abandoned shard temp file failed");
                }
            });
        }
    }
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Runs a metadata read on the calling thread.
///
/// Metadata reads are short (a point get or one page of a scan) and nearly always served from
/// the store's page cache, where a hop to the blocking pool and back (two thread wake-ups)
/// costs more than the read itself: a 4 KiB GET does eight of them. So they run inline; a
/// cache miss blocks the async worker for one page read.
async fn metadata_read<T, F>(work: F) -> DriveResult<T>
where
    F: FnOnce() -> DriveResult<T>,
{
    work()
}

/// Runs blocking filesystem work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> DriveResult<T>
where
    F: FnOnce() -> DriveResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DriveError::Io {
            path: PathBuf::new(),
            source: io::Error::other(format!("blocking drive task failed: {e}")),
        })?
}

fn check_record_size(key_bytes: usize, value_bytes: usize) -> DriveResult<()> {
    if key_bytes > META_KEY_BYTES_MAX || value_bytes > META_VALUE_BYTES_MAX {
        return Err(DriveError::RecordTooLarge {
            key_bytes: key_bytes as u64,
            key_bytes_max: META_KEY_BYTES_MAX as u64,
            value_bytes: value_bytes as u64,
            value_bytes_max: META_VALUE_BYTES_MAX as u64,
        });
    }
    Ok(())
}

/// The first key a scan may return and whether that key itself is excluded: the larger of
/// `prefix` (inclusive) and `start` (as asked). An empty `start` means "at `prefix`".
fn scan_lower_bound(range: &ScanRange) -> (&[u8], bool) {
    if range.start.is_empty() || range.start.as_slice() < range.prefix.as_slice() {
        (&range.prefix, false)
    } else {
        (&range.start, range.start_exclusive)
    }
}

/// Maps an I/O error on `path` of the drive at `root`: "no space" becomes
/// [`DriveError::Full`], a read-only filesystem [`DriveError::ReadOnly`], and running out of
/// descriptors or memory [`DriveError::ProcessResources`] (none of them a failed drive).
pub(crate) fn io_error(root: &Path, path: &Path, error: io::Error) -> DriveError {
    if is_no_space(error.kind()) {
        return DriveError::Full {
            path: root.to_path_buf(),
        };
    }
    if error.kind() == io::ErrorKind::ReadOnlyFilesystem {
        return DriveError::ReadOnly {
            path: root.to_path_buf(),
        };
    }
    if is_process_resources(&error) {
        return DriveError::ProcessResources {
            path: path.to_path_buf(),
            what: error.to_string(),
        };
    }
    DriveError::Io {
        path: path.to_path_buf(),
        source: error,
    }
}

/// [`io_error`] for a write of a shard file, telling `space` when the filesystem said it is full.
fn shard_write_error(space: &Space, root: &Path, path: &Path, error: io::Error) -> DriveError {
    if is_no_space(error.kind()) {
        space.note_os_full(path, &error);
    }
    io_error(root, path, error)
}

fn is_no_space(kind: io::ErrorKind) -> bool {
    matches!(kind, io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
}

/// EMFILE, ENFILE (descriptor limits of the process and the system) and ENOMEM.
fn is_process_resources(error: &io::Error) -> bool {
    const ENOMEM: i32 = 12;
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    error.kind() == io::ErrorKind::OutOfMemory
        || matches!(error.raw_os_error(), Some(EMFILE | ENFILE | ENOMEM))
}

fn corrupt(root: &Path, what: String) -> DriveError {
    DriveError::Corrupt {
        path: root.to_path_buf(),
        what,
    }
}

pub(crate) fn redb_error(root: &Path, error: redb::Error) -> DriveError {
    match error {
        redb::Error::Io(io) => io_error(root, &root.join(SYSTEM_DIR_NAME).join(META_FILE_NAME), io),
        redb::Error::Corrupted(what) => corrupt(root, format!("metadata store: {what}")),
        other => DriveError::MetaStore {
            path: root.to_path_buf(),
            message: other.to_string(),
        },
    }
}

fn commit_failure_error(root: &Path, failure: CommitFailure) -> DriveError {
    match failure {
        CommitFailure::Io { kind, message } => io_error(
            root,
            &root.join(SYSTEM_DIR_NAME).join(META_FILE_NAME),
            io::Error::new(kind, message),
        ),
        CommitFailure::Corrupt(what) => corrupt(root, format!("metadata store: {what}")),
        CommitFailure::Store(message) => DriveError::MetaStore {
            path: root.to_path_buf(),
            message,
        },
        CommitFailure::Reopening => DriveError::StoreReopening {
            path: root.to_path_buf(),
        },
        CommitFailure::Stopped => DriveError::MetaStore {
            path: root.to_path_buf(),
            message: "the metadata committer has stopped (drive closing)".to_string(),
        },
    }
}

fn read_format_blocking(root: &Path) -> DriveResult<Option<FormatRecord>> {
    let path = root.join(SYSTEM_DIR_NAME).join(FORMAT_FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(root, &path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| corrupt(root, format!("format record {path:?}: {e}")))
}

/// Whether `root` may be formatted: absent, empty, or holding only what a fresh filesystem or
/// an interrupted formatting leaves (`lost+found`, `.strata/` with at most the temp record).
fn is_formattable(root: &Path) -> io::Result<bool> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let name = entry?.file_name();
        if !FORMATTABLE_ROOT_ENTRIES.iter().any(|allowed| name == *allowed) {
            return Ok(false);
        }
    }
    match std::fs::read_dir(root.join(SYSTEM_DIR_NAME)) {
        Ok(entries) => {
            for entry in entries {
                if entry?.file_name() != FORMAT_TMP_FILE_NAME {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Writes the format record atomically: temp file, fsync, rename, fsync of `.strata` and root.
fn write_format(root: &Path, format: &FormatRecord) -> DriveResult<()> {
    let system = root.join(SYSTEM_DIR_NAME);
    std::fs::create_dir_all(&system).map_err(|e| io_error(root, &system, e))?;
    if let Some(parent) = root.parent()
        && !parent.as_os_str().is_empty()
    {
        fsync_dir(parent).map_err(|e| io_error(root, parent, e))?;
    }
    let json = serde_json::to_vec_pretty(format).map_err(|e| DriveError::Io {
        path: system.clone(),
        source: io::Error::other(e),
    })?;
    let tmp = system.join(FORMAT_TMP_FILE_NAME);
    let final_path = system.join(FORMAT_FILE_NAME);
    (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &final_path)?;
        fsync_dir(&system)?;
        fsync_dir(root)
    })()
    .map_err(|e| io_error(root, &final_path, e))
}

/// The blocking part of [`LocalDrive::open`].
fn open_blocking(root: PathBuf, expected: FormatRecord) -> DriveResult<(PathBuf, FormatRecord, MetaDb)> {
    let format = match read_format_blocking(&root)? {
        Some(found) => {
            if found.version != crate::format::FORMAT_VERSION || !found.same_position(&expected) {
                return Err(DriveError::FormatMismatch {
                    path: root,
                    found: format!("format version {}, {}", found.version, found.describe()),
                    expected: format!(
                        "format version {}, {}",
                        crate::format::FORMAT_VERSION,
                        expected.describe()
                    ),
                });
            }
            found
        }
        None => {
            if !is_formattable(&root).map_err(|e| io_error(&root, &root, e))? {
                return Err(DriveError::Unformatted { path: root });
            }
            write_format(&root, &expected)?;
            tracing::info!(drive = ?root, position = %expected.describe(), "formatted drive");
            expected
        }
    };
    let system = root.join(SYSTEM_DIR_NAME);
    for dir in [system.join(TRASH_DIR_NAME), root.join(DATA_DIR_NAME)] {
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&root, &dir, e))?;
    }
    let meta = MetaDb::open(&root, system.join(META_FILE_NAME), meta_cache_bytes())?;
    // The database lock is held now, so no other opener uses the temp area: wipe it.
    let tmp = system.join(TMP_DIR_NAME);
    match std::fs::remove_dir_all(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&root, &tmp, e)),
    }
    std::fs::create_dir(&tmp).map_err(|e| io_error(&root, &tmp, e))?;
    Ok((root, format, meta))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn position(deployment: uuid::Uuid, drive_idx: u32) -> FormatRecord {
        FormatRecord::new_deployment(deployment, 0, 0, drive_idx, 2, 2)
    }

    async fn fresh() -> (tempfile::TempDir, Arc<LocalDrive>) {
        let dir = tempfile::tempdir().unwrap();
        let drive = LocalDrive::open(dir.path().join("d0"), &position(uuid::Uuid::new_v4(), 0))
            .await
            .unwrap();
        (dir, drive)
    }

    fn put(table: Table, key: &str, value: &str) -> MetaOp {
        MetaOp::put(table, key.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    fn scan(prefix: &str, start: &str, start_exclusive: bool, limit: u32) -> ScanRange {
        ScanRange {
            prefix: prefix.as_bytes().to_vec(),
            start: start.as_bytes().to_vec(),
            start_exclusive,
            limit,
            keys_only: false,
        }
    }

    async fn keys(drive: &LocalDrive, range: ScanRange) -> Vec<String> {
        drive
            .meta_scan(Table::Objects, range)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| String::from_utf8(entry.key.to_vec()).unwrap())
            .collect()
    }

    fn dir_entries(path: &Path) -> usize {
        std::fs::read_dir(path).unwrap().count()
    }

    #[tokio::test]
    async fn format_written_then_matched_and_drive_id_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d0");
        assert_eq!(LocalDrive::read_format(&root).await.unwrap(), None);
        let deployment = uuid::Uuid::new_v4();
        let first = position(deployment, 3);
        let drive = LocalDrive::open(root.clone(), &first).await.unwrap();
        assert_eq!(drive.format(), &first);
        drop(drive);
        assert_eq!(LocalDrive::read_format(&root).await.unwrap(), Some(first.clone()));

        // Same position, another drive id in the expectation: the one on disk is kept.
        let again = position(deployment, 3);
        assert_ne!(again.drive_id, first.drive_id);
        let drive = LocalDrive::open(root.clone(), &again).await.unwrap();
        assert_eq!(drive.format().drive_id, first.drive_id);
        for name in [FORMAT_FILE_NAME, META_FILE_NAME, TMP_DIR_NAME, TRASH_DIR_NAME] {
            assert!(root.join(SYSTEM_DIR_NAME).join(name).exists(), "{name}");
        }
        assert!(root.join(DATA_DIR_NAME).is_dir());
        assert!(!root.join(SYSTEM_DIR_NAME).join(FORMAT_TMP_FILE_NAME).exists());
    }

    #[tokio::test]
    async fn wrong_deployment_or_position_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d0");
        let deployment = uuid::Uuid::new_v4();
        drop(
            LocalDrive::open(root.clone(), &position(deployment, 1))
                .await
                .unwrap(),
        );

        let other_deployment = position(uuid::Uuid::new_v4(), 1);
        let other_position = position(deployment, 2);
        let mut other_layout = position(deployment, 1);
        other_layout.n_parity = 1;
        for expected in [other_deployment, other_position, other_layout] {
            match LocalDrive::open(root.clone(), &expected).await.unwrap_err() {
                DriveError::FormatMismatch {
                    found,
                    expected: wanted,
                    ..
                } => {
                    assert!(found.contains(&deployment.to_string()), "{found}");
                    assert!(found.contains("drive 1"), "{found}");
                    assert!(wanted.contains(&expected.deployment_id.to_string()), "{wanted}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn unformatted_dir_with_files_refused_fresh_filesystem_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let used = dir.path().join("used");
        std::fs::create_dir_all(&used).unwrap();
        std::fs::write(used.join("somebody-elses-file"), b"x").unwrap();
        let expected = position(uuid::Uuid::new_v4(), 0);
        assert!(matches!(
            LocalDrive::open(used.clone(), &expected).await.unwrap_err(),
            DriveError::Unformatted { .. }
        ));
        assert!(used.join("somebody-elses-file").exists());
        assert!(!used.join(SYSTEM_DIR_NAME).exists());

        let mounted = dir.path().join("mounted");
        std::fs::create_dir_all(mounted.join("lost+found")).unwrap();
        std::fs::create_dir_all(mounted.join(SYSTEM_DIR_NAME)).unwrap();
        std::fs::write(mounted.join(SYSTEM_DIR_NAME).join(FORMAT_TMP_FILE_NAME), b"{").unwrap();
        LocalDrive::open(mounted, &expected).await.unwrap();
    }

    #[tokio::test]
    async fn corrupt_format_record_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(SYSTEM_DIR_NAME)).unwrap();
        std::fs::write(
            dir.path().join(SYSTEM_DIR_NAME).join(FORMAT_FILE_NAME),
            b"{not json",
        )
        .unwrap();
        assert!(matches!(
            LocalDrive::read_format(dir.path()).await.unwrap_err(),
            DriveError::Corrupt { .. }
        ));
    }

    #[tokio::test]
    async fn commit_get_delete() {
        let (_dir, drive) = fresh().await;
        assert_eq!(drive.meta_get(Table::Objects, b"a").await.unwrap(), None);
        drive
            .meta_commit(vec![put(Table::Objects, "a", "1")])
            .await
            .unwrap();
        assert_eq!(
            drive.meta_get(Table::Objects, b"a").await.unwrap().unwrap(),
            &b"1"[..]
        );
        // Tables are separate keyspaces.
        assert_eq!(drive.meta_get(Table::Buckets, b"a").await.unwrap(), None);
        drive
            .meta_commit(vec![put(Table::Objects, "a", "2")])
            .await
            .unwrap();
        assert_eq!(
            drive.meta_get(Table::Objects, b"a").await.unwrap().unwrap(),
            &b"2"[..]
        );
        drive
            .meta_commit(vec![
                MetaOp::delete(Table::Objects, b"a".to_vec()),
                MetaOp::delete(Table::Objects, b"never-there".to_vec()),
            ])
            .await
            .unwrap();
        assert_eq!(drive.meta_get(Table::Objects, b"a").await.unwrap(), None);
        drive.meta_commit(Vec::new()).await.unwrap();
        // Empty values are values.
        drive.meta_commit(vec![put(Table::Parts, "e", "")]).await.unwrap();
        assert_eq!(
            drive.meta_get(Table::Parts, b"e").await.unwrap().unwrap(),
            &b""[..]
        );
    }

    #[tokio::test]
    async fn scan_honours_prefix_start_exclusive_and_limit() {
        let (_dir, drive) = fresh().await;
        let all = ["a", "b/", "b/1", "b/2", "b/2/x", "b/3", "b0", "c"];
        drive
            .meta_commit(all.iter().map(|k| put(Table::Objects, k, k)).collect())
            .await
            .unwrap();
        let cases: &[(ScanRange, &[&str])] = &[
            (scan("", "", false, 100), &all),
            (scan("b/", "", false, 100), &["b/", "b/1", "b/2", "b/2/x", "b/3"]),
            (scan("b/", "", true, 100), &["b/", "b/1", "b/2", "b/2/x", "b/3"]),
            (scan("b/", "b/2", false, 100), &["b/2", "b/2/x", "b/3"]),
            (scan("b/", "b/2", true, 100), &["b/2/x", "b/3"]),
            (scan("b/", "b/", true, 100), &["b/1", "b/2", "b/2/x", "b/3"]),
            (scan("b/", "a", true, 100), &["b/", "b/1", "b/2", "b/2/x", "b/3"]),
            (scan("b/", "b/25", false, 100), &["b/3"]),
            (scan("b/", "c", false, 100), &[]),
            (scan("b/", "", false, 2), &["b/", "b/1"]),
            (scan("b/", "b/1", true, 2), &["b/2", "b/2/x"]),
            (scan("b/", "", false, 0), &[]),
            (scan("zz", "", false, 10), &[]),
            (scan("", "b0", true, 10), &["c"]),
        ];
        for (range, expected) in cases {
            assert_eq!(keys(&drive, range.clone()).await, *expected, "{range:?}");
        }
        let entries = drive
            .meta_scan(Table::Objects, scan("b/2", "", false, 10))
            .await
            .unwrap();
        assert_eq!(entries[1].value, &b"b/2/x"[..]);
        // Keys only: the same keys, every value left out.
        let keys_only = drive
            .meta_scan(
                Table::Objects,
                ScanRange {
                    keys_only: true,
                    ..scan("b/", "", false, 100)
                },
            )
            .await
            .unwrap();
        let listed: Vec<&[u8]> = keys_only.iter().map(|entry| &entry.key[..]).collect();
        assert_eq!(listed, ["b/", "b/1", "b/2", "b/2/x", "b/3"].map(str::as_bytes));
        assert!(keys_only.iter().all(|entry| entry.value.is_empty()));
        // Bytewise order, not UTF-8 or signed.
        drive
            .meta_commit(vec![
                MetaOp::put(Table::Uploads, vec![0xff], vec![1]),
                MetaOp::put(Table::Uploads, vec![0x00, 0x01], vec![2]),
                MetaOp::put(Table::Uploads, vec![0x7f], vec![3]),
            ])
            .await
            .unwrap();
        let keys: Vec<_> = drive
            .meta_scan(
                Table::Uploads,
                ScanRange {
                    limit: 10,
                    ..ScanRange::default()
                },
            )
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.key.to_vec())
            .collect();
        assert_eq!(keys, vec![vec![0x00, 0x01], vec![0x7f], vec![0xff]]);
    }

    #[tokio::test]
    async fn batch_is_atomic() {
        let (_dir, drive) = fresh().await;
        drive
            .meta_commit(vec![put(Table::Objects, "old", "x")])
            .await
            .unwrap();
        // A batch with one bad record changes nothing.
        let bad = vec![
            MetaOp::delete(Table::Objects, b"old".to_vec()),
            put(Table::Objects, "new", "y"),
            MetaOp::put(Table::Objects, vec![b'k'; META_KEY_BYTES_MAX + 1], b"v".to_vec()),
        ];
        assert!(matches!(
            drive.meta_commit(bad).await.unwrap_err(),
            DriveError::RecordTooLarge { .. }
        ));
        assert!(drive.meta_get(Table::Objects, b"old").await.unwrap().is_some());
        assert!(drive.meta_get(Table::Objects, b"new").await.unwrap().is_none());
        // A good batch across tables is visible as a whole.
        drive
            .meta_commit(vec![
                MetaOp::delete(Table::Objects, b"old".to_vec()),
                put(Table::Objects, "new", "y"),
                put(Table::Parts, "new", "data"),
            ])
            .await
            .unwrap();
        assert!(drive.meta_get(Table::Objects, b"old").await.unwrap().is_none());
        assert!(drive.meta_get(Table::Objects, b"new").await.unwrap().is_some());
        assert!(drive.meta_get(Table::Parts, b"new").await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_share_transactions() {
        const N_TASKS: usize = 64;
        const COMMITS_PER_TASK: usize = 4;
        let (_dir, drive) = fresh().await;
        let before = drive.commit_stats();
        let mut tasks = Vec::new();
        for task_idx in 0..N_TASKS {
            let drive = Arc::clone(&drive);
            tasks.push(tokio::spawn(async move {
                for commit_idx in 0..COMMITS_PER_TASK {
                    let key = format!("k/{task_idx:03}/{commit_idx}");
                    drive
                        .meta_commit(vec![
                            put(Table::Objects, &key, &key),
                            put(Table::Parts, &key, "p"),
                        ])
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let stats = drive.commit_stats();
        let n_batches = (N_TASKS * COMMITS_PER_TASK) as u64;
        assert_eq!(stats.batches_committed - before.batches_committed, n_batches);
        assert_eq!(stats.batches_failed, 0);
        let n_transactions = stats.transactions_committed - before.transactions_committed;
        assert!(
            n_transactions < n_batches,
            "{n_transactions} transactions for {n_batches} batches"
        );
        let entries = drive
            .meta_scan(Table::Objects, scan("k/", "", false, u32::MAX))
            .await
            .unwrap();
        assert_eq!(entries.len(), N_TASKS * COMMITS_PER_TASK);
    }

    #[tokio::test]
    async fn checksum_mismatch_is_corrupt() {
        let (_dir, drive) = fresh().await;
        drive
            .meta_commit(vec![put(Table::Objects, "k", "value")])
            .await
            .unwrap();
        let mut stored = record::encode(b"k", b"value");
        stored[0] ^= 0x01;
        drive.put_raw_for_test(Table::Objects, b"k", &stored);
        assert!(matches!(
            drive.meta_get(Table::Objects, b"k").await.unwrap_err(),
            DriveError::Corrupt { .. }
        ));
        assert!(matches!(
            drive
                .meta_scan(Table::Objects, scan("", "", false, 10))
                .await
                .unwrap_err(),
            DriveError::Corrupt { .. }
        ));
        drive.put_raw_for_test(Table::Objects, b"short", b"ab");
        assert!(matches!(
            drive.meta_get(Table::Objects, b"short").await.unwrap_err(),
            DriveError::Corrupt { .. }
        ));
    }

    #[tokio::test]
    async fn shard_write_commit_read_ranges() {
        let (_dir, drive) = fresh().await;
        let dir = DataDirId::new_random();
        assert!(matches!(
            drive.shard_read(dir, 1, 0, 1).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
        assert!(matches!(
            drive.shard_size(dir, 1).await.unwrap_err(),
            DriveError::ShardNotFound
        ));

        // Small appends (buffered) and one larger than the buffer (written through).
        let big: Vec<u8> = (0..crate::direct::SHARD_WRITE_CHUNK_BYTES + 777)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut expected = Vec::new();
        let mut writer = drive.shard_create(dir, 1).await.unwrap();
        for chunk in [&b"hello "[..], b"world", &big, b"tail"] {
            writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
            expected.extend_from_slice(chunk);
        }
        // Not visible before commit.
        assert!(matches!(
            drive.shard_size(dir, 1).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
        writer.commit().await.unwrap();
        let tmp = drive.root().join(SYSTEM_DIR_NAME).join(TMP_DIR_NAME);
        assert_eq!(dir_entries(&tmp), 0);

        let len = expected.len() as u64;
        assert_eq!(drive.shard_size(dir, 1).await.unwrap(), len);
        let name = dir.to_string();
        assert!(
            drive
                .root()
                .join(DATA_DIR_NAME)
                .join(&name[..2])
                .join(&name)
                .join("part.1")
                .is_file()
        );
        for (offset, n) in [(0, len), (0, 5), (6, 5), (len - 4, 4), (1000, 70_000), (len, 0)] {
            let got = drive.shard_read(dir, 1, offset, n).await.unwrap();
            assert_eq!(
                &got[..],
                &expected[offset as usize..(offset + n) as usize],
                "{offset}+{n}"
            );
        }
        for (offset, n) in [(len - 3, 4), (len + 1, 0), (u64::MAX, 2)] {
            assert!(matches!(
                drive.shard_read(dir, 1, offset, n).await.unwrap_err(),
                DriveError::Corrupt { .. }
            ));
        }

        // A second commit of the same part replaces it atomically.
        let mut writer = drive.shard_create(dir, 1).await.unwrap();
        writer.write(Bytes::from_static(b"v2")).await.unwrap();
        writer.commit().await.unwrap();
        assert_eq!(&drive.shard_read(dir, 1, 0, 2).await.unwrap()[..], b"v2");

        drive.shard_delete(dir, 1).await.unwrap();
        drive.shard_delete(dir, 1).await.unwrap();
        assert!(matches!(
            drive.shard_read(dir, 1, 0, 1).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
    }

    #[tokio::test]
    async fn abort_and_drop_leave_nothing() {
        let (_dir, drive) = fresh().await;
        let dir = DataDirId::new_random();
        let tmp = drive.root().join(SYSTEM_DIR_NAME).join(TMP_DIR_NAME);
        let mut writer = drive.shard_create(dir, 0).await.unwrap();
        writer.write(Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(
            dir_entries(&tmp),
            0,
            "small writes stay in the buffer; no file yet"
        );
        writer
            .write(Bytes::from(vec![7u8; crate::direct::SHARD_WRITE_CHUNK_BYTES]))
            .await
            .unwrap();
        assert_eq!(dir_entries(&tmp), 1, "a full buffer went out to the temp file");
        writer.abort().await.unwrap();
        assert_eq!(dir_entries(&tmp), 0);

        let mut writer = drive.shard_create(dir, 0).await.unwrap();
        writer.write(Bytes::from_static(b"abc")).await.unwrap();
        drop(writer);
        for _ in 0..200 {
            if dir_entries(&tmp) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dir_entries(&tmp), 0);
        assert!(matches!(
            drive.shard_size(dir, 0).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
        assert_eq!(dir_entries(&drive.root().join(DATA_DIR_NAME)), 0);
    }

    #[tokio::test]
    async fn data_dir_delete_moves_to_trash_and_cleaner_empties_it() {
        let (_dir, drive) = fresh().await;
        let dir = DataDirId::new_random();
        for part in 1..=3 {
            let mut writer = drive.shard_create(dir, part).await.unwrap();
            writer.write(Bytes::from_static(b"x")).await.unwrap();
            writer.commit().await.unwrap();
        }
        let trash = drive.root().join(SYSTEM_DIR_NAME).join(TRASH_DIR_NAME);
        drive.data_dir_delete(dir).await.unwrap();
        assert!(matches!(
            drive.shard_size(dir, 1).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
        assert_eq!(dir_entries(&trash), 1);
        drive.data_dir_delete(dir).await.unwrap(); // absent is fine
        // A read that resolved the version before the delete still gets its bytes.
        assert_eq!(drive.shard_read(dir, 2, 0, 1).await.unwrap(), &b"x"[..]);
        assert!(matches!(
            drive
                .shard_read(DataDirId::new_random(), 1, 0, 1)
                .await
                .unwrap_err(),
            DriveError::ShardNotFound
        ));
        // Kept through the grace period, removed after it.
        let report = drive.run_maintenance().await.unwrap();
        assert_eq!(report.n_trash_removed, 0);
        let system = drive.root().join(SYSTEM_DIR_NAME);
        let later =
            std::time::SystemTime::now() + maintenance::TRASH_GRACE + std::time::Duration::from_secs(1);
        let report = maintenance::tick(
            &system.join(TRASH_DIR_NAME),
            &system.join(TMP_DIR_NAME),
            later,
            maintenance::TRASH_GRACE,
        )
        .unwrap();
        assert_eq!(report.n_trash_removed, 1);
        assert_eq!(dir_entries(&trash), 0);
        assert!(matches!(
            drive.shard_read(dir, 2, 0, 1).await.unwrap_err(),
            DriveError::ShardNotFound
        ));
    }

    #[tokio::test]
    async fn background_task_empties_trash_and_stops_with_drive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d0");
        let expected = position(uuid::Uuid::new_v4(), 0);
        let drive = LocalDrive::open_with_interval(root.clone(), &expected, Duration::from_millis(20))
            .await
            .unwrap();
        // An entry past its grace period (no deletion time in its name) goes at the next tick.
        let trash = root.join(SYSTEM_DIR_NAME).join(TRASH_DIR_NAME);
        std::fs::create_dir(trash.join("expired")).unwrap();
        for _ in 0..200 {
            if dir_entries(&trash) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dir_entries(&trash), 0);
        drop(drive);
        // The task has stopped: trash left now stays.
        std::fs::create_dir(trash.join("left")).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(trash.join("left").exists());
    }

    #[tokio::test]
    async fn reopen_sees_committed_data_and_wipes_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d0");
        let expected = position(uuid::Uuid::new_v4(), 0);
        let data_dir = DataDirId::new_random();
        {
            let drive = LocalDrive::open(root.clone(), &expected).await.unwrap();
            for i in 0..100 {
                let key = format!("key{i:03}");
                drive
                    .meta_commit(vec![put(Table::Objects, &key, "v")])
                    .await
                    .unwrap();
            }
            let mut writer = drive.shard_create(data_dir, 2).await.unwrap();
            writer.write(Bytes::from_static(b"shard")).await.unwrap();
            writer.commit().await.unwrap();
        }
        std::fs::write(root.join(SYSTEM_DIR_NAME).join(TMP_DIR_NAME).join("stale"), b"x").unwrap();
        let drive = LocalDrive::open(root.clone(), &expected).await.unwrap();
        assert_eq!(keys(&drive, scan("key", "", false, 1000)).await.len(), 100);
        assert_eq!(&drive.shard_read(data_dir, 2, 0, 5).await.unwrap()[..], b"shard");
        assert_eq!(dir_entries(&root.join(SYSTEM_DIR_NAME).join(TMP_DIR_NAME)), 0);
    }

    /// A store written before the `system` table existed gets it when opened: reads find it
    /// empty (not "no such table") and commits to it work, next to the records already there.
    #[tokio::test]
    async fn a_store_without_the_system_table_gets_it_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d0");
        let expected = position(uuid::Uuid::new_v4(), 0);
        {
            let drive = LocalDrive::open(root.clone(), &expected).await.unwrap();
            drive
                .meta_commit(vec![
                    put(Table::Buckets, "b", "rec"),
                    put(Table::System, "iam\0k", "v"),
                ])
                .await
                .unwrap();
        }
        {
            // The store as an older version left it: every table but `system`.
            let db = redb::Database::open(root.join(SYSTEM_DIR_NAME).join(META_FILE_NAME)).unwrap();
            let txn = db.begin_write().unwrap();
            assert!(txn.delete_table(table_definition(Table::System)).unwrap());
            txn.commit().unwrap();
        }
        let drive = LocalDrive::open(root.clone(), &expected).await.unwrap();
        assert_eq!(drive.meta_get(Table::System, b"iam\0k").await.unwrap(), None);
        assert!(
            drive
                .meta_scan(Table::System, scan("", "", false, 10))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(drive.meta_get(Table::Buckets, b"b").await.unwrap().is_some());
        drive
            .meta_commit(vec![put(Table::System, "iam\0k", "v2")])
            .await
            .unwrap();
        assert_eq!(
            drive.meta_get(Table::System, b"iam\0k").await.unwrap().unwrap(),
            Bytes::from_static(b"v2")
        );
        drive
            .meta_commit_deleting(vec![MetaOp::delete(Table::System, b"iam\0k".to_vec())])
            .await
            .unwrap();
        assert_eq!(drive.meta_get(Table::System, b"iam\0k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn info_reports_capacity() {
        let (_dir, drive) = fresh().await;
        let info = drive.info().await.unwrap();
        assert!(info.total_bytes > 0);
        assert!(info.free_bytes <= info.total_bytes);
    }

    #[test]
    fn no_space_maps_to_full() {
        let root = Path::new("/drive");
        let error = io_error(root, root, io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(error, DriveError::Full { .. }));
        let error = io_error(root, root, io::Error::from_raw_os_error(28)); // ENOSPC
        assert!(matches!(error, DriveError::Full { .. }));
        let error = commit_failure_error(
            root,
            CommitFailure::Io {
                kind: io::ErrorKind::StorageFull,
                message: "full".into(),
            },
        );
        assert!(matches!(error, DriveError::Full { .. }));
    }
}
