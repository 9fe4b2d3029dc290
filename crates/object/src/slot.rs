//! `DriveSlot`: one position of an erasure set, holding whichever drive is there now.
//!
//! A slot forwards every call to its current drive and watches the answers: an I/O failure
//! marks the slot offline, after which calls fail fast with `Offline` (no timeouts piling up on
//! a dead disk) until the monitor (`ObjectLayer::monitor_drives`) finds the drive healthy
//! again. The monitor also notices a drive whose format record vanished (wiped or replaced by
//! an empty directory), formats the empty directory into the same position and swaps the new
//! drive into the slot; the set is then healed onto it.
//!
//! Two conditions are not failures and never take a drive offline: a *full* drive (writes
//! refused with `Full` while reads and deletes go on; remembered so that a write missing quorum
//! because of it is reported as "storage full", not as a retryable quorum loss) and a
//! *read-only* drive (EROFS: reads go on, writes fail fast with `ReadOnly` until the monitor
//! finds the drive writable again). Running out of process resources (descriptors) is not the
//! drive's fault either: the call fails, the drive stays online.
//!
//! **Invariant:** a slot never holds a drive whose format record is for another position.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;

use crate::deployment::DriveLocation;
use bytes::Bytes;
use strata_drive::{
    DataDirEntry, DataDirId, Drive, DriveError, DriveInfo, DriveResult, FormatRecord, MetaEntry, MetaOp,
    ScanRange, ShardWrite, Table,
};

/// A position in an erasure set and the drive currently in it.
#[derive(Debug)]
pub struct DriveSlot {
    endpoint: String,
    /// Where the drive lives: a local directory the monitor can reopen or reformat, or a
    /// remote drive it can reconnect.
    pub location: DriveLocation,
    expected: FormatRecord,
    inner: RwLock<Arc<dyn Drive>>,
    online: AtomicBool,
    /// Freshly formatted in place of a lost drive and not yet fully healed: its records are
    /// incomplete, so its silence about a version is no evidence that the version is absent.
    healing: AtomicBool,
    n_io_errors: AtomicU64,
    /// The drive refused its last write for lack of space (shared with its shard writers).
    full: Arc<AtomicBool>,
    /// Since when the drive's filesystem has been read-only, if it is.
    read_only_since: std::sync::Mutex<Option<Instant>>,
}

impl DriveSlot {
    /// A slot holding `drive` (online unless `online` is false).
    pub fn new(
        endpoint: String,
        location: DriveLocation,
        expected: FormatRecord,
        drive: Arc<dyn Drive>,
        online: bool,
    ) -> Self {
        DriveSlot {
            endpoint,
            location,
            expected,
            inner: RwLock::new(drive),
            online: AtomicBool::new(online),
            healing: AtomicBool::new(false),
            n_io_errors: AtomicU64::new(0),
            full: Arc::new(AtomicBool::new(false)),
            read_only_since: std::sync::Mutex::new(None),
        }
    }

    /// The drive in the slot now.
    pub fn current(&self) -> Arc<dyn Drive> {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts another drive into the slot and marks it online.
    pub fn replace(&self, drive: Arc<dyn Drive>) {
        match self.inner.write() {
            Ok(mut guard) => *guard = drive,
            Err(poisoned) => *poisoned.into_inner() = drive,
        }
        self.online.store(true, Ordering::SeqCst);
    }

    /// Whether the slot's drive is believed healthy.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::SeqCst)
    }

    /// Marks the slot online or offline.
    pub fn set_online(&self, online: bool) {
        let was = self.online.swap(online, Ordering::SeqCst);
        if !online {
            // An offline drive is missing, not full.
            self.full.store(false, Ordering::Relaxed);
        }
        if was != online {
            if online {
                tracing::info!(drive = %self.endpoint, "drive is back online");
            } else {
                tracing::warn!(drive = %self.endpoint, "drive marked offline");
            }
        }
    }

    /// Whether the drive is being healed after a replacement (see the field).
    pub fn is_healing(&self) -> bool {
        self.healing.load(Ordering::SeqCst)
    }

    /// Marks the drive as being healed, or as healed.
    pub fn set_healing(&self, healing: bool) {
        if self.healing.swap(healing, Ordering::SeqCst) != healing {
            tracing::info!(drive = %self.endpoint, healing, "drive healing state changed");
        }
    }

    /// Marks the drive as being healed (or healed) in memory and on the drive, so a restart
    /// in the middle of healing remembers it. Failing to persist is logged: the in-memory
    /// state still protects reads until the restart.
    pub async fn mark_healing(&self, healing: bool) {
        if let Err(err) = self.current().set_healing_mark(healing).await {
            tracing::warn!(drive = %self.endpoint, %err, "persisting the healing mark failed");
        }
        self.set_healing(healing);
    }

    /// Whether the drive refused its last write for lack of space.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Since when the drive has been read-only, if it is.
    pub fn read_only_since(&self) -> Option<Instant> {
        *self
            .read_only_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the drive read-only (writes fail fast) or writable again; logs the change once.
    pub fn set_read_only(&self, read_only: bool) {
        let mut since = self
            .read_only_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (since.is_some(), read_only) {
            (false, true) => {
                *since = Some(Instant::now());
                tracing::warn!(drive = %self.endpoint, "drive is read-only: serving reads, skipping writes");
            }
            (true, false) => {
                *since = None;
                tracing::info!(drive = %self.endpoint, "drive is writable again");
            }
            _ => {}
        }
    }

    /// I/O errors seen since start.
    pub fn n_io_errors(&self) -> u64 {
        self.n_io_errors.load(Ordering::Relaxed)
    }

    /// The format this position expects.
    pub fn expected_format(&self) -> &FormatRecord {
        &self.expected
    }

    fn check(&self) -> DriveResult<Arc<dyn Drive>> {
        if !self.is_online() {
            return Err(DriveError::Offline {
                endpoint: self.endpoint.clone(),
            });
        }
        Ok(self.current())
    }

    /// The drive for a call that writes: fails fast while the drive is read-only.
    fn check_write(&self) -> DriveResult<Arc<dyn Drive>> {
        let drive = self.check()?;
        if self.read_only_since().is_some() {
            return Err(DriveError::ReadOnly {
                path: self.endpoint.clone().into(),
            });
        }
        Ok(drive)
    }

    fn observe<T>(&self, result: DriveResult<T>) -> DriveResult<T> {
        if let Err(err) = &result {
            if is_drive_failure(err) {
                if !matches!(err, DriveError::Offline { .. }) {
                    self.n_io_errors.fetch_add(1, Ordering::Relaxed);
                }
                self.set_online(false);
            }
            if matches!(err, DriveError::ReadOnly { .. }) {
                self.set_read_only(true);
            }
        }
        result
    }

    /// [`Self::observe`] for a call that writes: also remembers whether the drive was full.
    fn observe_write<T>(&self, result: DriveResult<T>) -> DriveResult<T> {
        note_full(&self.full, &result);
        self.observe(result)
    }
}

/// Remembers in `full` whether a write's last result said the drive is full: any other
/// outcome clears it, so a drive that failed for another reason since is not counted as full
/// (a quorum loss must stay a retryable quorum loss).
fn note_full<T>(full: &AtomicBool, result: &DriveResult<T>) {
    full.store(matches!(result, Err(DriveError::Full { .. })), Ordering::Relaxed);
}

/// A shard writer whose results feed its slot's full state.
struct ObservedShardWrite {
    inner: Box<dyn ShardWrite>,
    full: Arc<AtomicBool>,
}

#[async_trait]
impl ShardWrite for ObservedShardWrite {
    async fn write(&mut self, buf: Bytes) -> DriveResult<()> {
        let result = self.inner.write(buf).await;
        if result.is_err() {
            note_full(&self.full, &result);
        }
        result
    }

    async fn commit(self: Box<Self>) -> DriveResult<()> {
        let result = self.inner.commit().await;
        note_full(&self.full, &result);
        result
    }

    async fn abort(self: Box<Self>) -> DriveResult<()> {
        self.inner.abort().await
    }
}

/// Whether an error means the drive itself is failing or unreachable (as opposed to "not
/// found" or "corrupt item", which are about one piece of data). `Offline` comes from remote
/// drives whose node did not answer: later calls fail fast until the monitor reaches it again.
fn is_drive_failure(err: &DriveError) -> bool {
    matches!(
        err,
        DriveError::Io { .. }
            | DriveError::MetaStore { .. }
            | DriveError::Unformatted { .. }
            | DriveError::Offline { .. }
    )
}

#[async_trait]
impl Drive for DriveSlot {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn format(&self) -> &FormatRecord {
        &self.expected
    }

    async fn meta_get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Bytes>> {
        let drive = self.check()?;
        self.observe(drive.meta_get(table, key).await)
    }

    async fn meta_scan(&self, table: Table, range: ScanRange) -> DriveResult<Vec<MetaEntry>> {
        let drive = self.check()?;
        self.observe(drive.meta_scan(table, range).await)
    }

    async fn meta_commit(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        let drive = self.check_write()?;
        self.observe_write(drive.meta_commit(ops).await)
    }

    async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
        let drive = self.check_write()?;
        self.observe(drive.meta_commit_deleting(ops).await)
    }

    async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>> {
        let drive = self.check_write()?;
        let writer = self.observe_write(drive.shard_create(dir, part).await)?;
        Ok(Box::new(ObservedShardWrite {
            inner: writer,
            full: Arc::clone(&self.full),
        }))
    }

    async fn shard_read(&self, dir: DataDirId, part: u32, offset: u64, len: u64) -> DriveResult<Bytes> {
        let drive = self.check()?;
        self.observe(drive.shard_read(dir, part, offset, len).await)
    }

    async fn shard_size(&self, dir: DataDirId, part: u32) -> DriveResult<u64> {
        let drive = self.check()?;
        self.observe(drive.shard_size(dir, part).await)
    }

    async fn shard_delete(&self, dir: DataDirId, part: u32) -> DriveResult<()> {
        let drive = self.check_write()?;
        self.observe(drive.shard_delete(dir, part).await)
    }

    async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()> {
        let drive = self.check_write()?;
        self.observe(drive.data_dir_delete(dir).await)
    }

    async fn data_dir_list(
        &self,
        start_after: Option<DataDirId>,
        limit: u32,
    ) -> DriveResult<Vec<DataDirEntry>> {
        let drive = self.check()?;
        self.observe(drive.data_dir_list(start_after, limit).await)
    }

    async fn info(&self) -> DriveResult<DriveInfo> {
        let drive = self.check()?;
        self.observe(drive.info().await)
    }

    async fn healing_mark(&self) -> DriveResult<bool> {
        let drive = self.check()?;
        self.observe(drive.healing_mark().await)
    }

    async fn set_healing_mark(&self, on: bool) -> DriveResult<()> {
        let drive = self.check_write()?;
        self.observe(drive.set_healing_mark(on).await)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use strata_drive::LocalDrive;

    /// A local drive whose writes fail with `ReadOnly` while `read_only` is set, as after a
    /// filesystem turned read-only under the server (which cannot be staged for real while
    /// the server holds files open for writing).
    #[derive(Debug)]
    struct TurningReadOnly {
        inner: Arc<LocalDrive>,
        read_only: AtomicBool,
    }

    impl TurningReadOnly {
        fn refuse(&self) -> DriveResult<()> {
            match self.read_only.load(Ordering::SeqCst) {
                true => Err(DriveError::ReadOnly {
                    path: self.inner.root().to_path_buf(),
                }),
                false => Ok(()),
            }
        }
    }

    #[async_trait]
    impl Drive for TurningReadOnly {
        fn endpoint(&self) -> &str {
            self.inner.endpoint()
        }
        fn format(&self) -> &FormatRecord {
            self.inner.format()
        }
        async fn meta_get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Bytes>> {
            self.inner.meta_get(table, key).await
        }
        async fn meta_scan(&self, table: Table, range: ScanRange) -> DriveResult<Vec<MetaEntry>> {
            self.inner.meta_scan(table, range).await
        }
        async fn meta_commit(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
            self.refuse()?;
            self.inner.meta_commit(ops).await
        }
        async fn meta_commit_deleting(&self, ops: Vec<MetaOp>) -> DriveResult<()> {
            self.refuse()?;
            self.inner.meta_commit_deleting(ops).await
        }
        async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>> {
            self.refuse()?;
            self.inner.shard_create(dir, part).await
        }
        async fn shard_read(&self, dir: DataDirId, part: u32, offset: u64, len: u64) -> DriveResult<Bytes> {
            self.inner.shard_read(dir, part, offset, len).await
        }
        async fn shard_size(&self, dir: DataDirId, part: u32) -> DriveResult<u64> {
            self.inner.shard_size(dir, part).await
        }
        async fn shard_delete(&self, dir: DataDirId, part: u32) -> DriveResult<()> {
            self.refuse()?;
            self.inner.shard_delete(dir, part).await
        }
        async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()> {
            self.refuse()?;
            self.inner.data_dir_delete(dir).await
        }
        async fn data_dir_list(
            &self,
            start_after: Option<DataDirId>,
            limit: u32,
        ) -> DriveResult<Vec<DataDirEntry>> {
            self.inner.data_dir_list(start_after, limit).await
        }
        async fn info(&self) -> DriveResult<DriveInfo> {
            self.inner.info().await
        }
        async fn healing_mark(&self) -> DriveResult<bool> {
            self.inner.healing_mark().await
        }
        async fn set_healing_mark(&self, on: bool) -> DriveResult<()> {
            self.refuse()?;
            self.inner.set_healing_mark(on).await
        }
    }

    fn record(key: &str) -> MetaOp {
        MetaOp::put(Table::Objects, key.as_bytes().to_vec(), b"v".to_vec())
    }

    #[tokio::test]
    async fn a_read_only_drive_stays_online_for_reads_and_skips_writes_until_writable() {
        let dir = tempfile::tempdir().unwrap();
        let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
        let local = LocalDrive::open(dir.path().join("d"), &format).await.unwrap();
        let drive = Arc::new(TurningReadOnly {
            inner: local,
            read_only: AtomicBool::new(false),
        });
        let slot = DriveSlot::new(
            "d".into(),
            DriveLocation::Local {
                path: dir.path().join("d"),
                new_in_existing: false,
            },
            format,
            drive.clone(),
            true,
        );
        slot.meta_commit(vec![record("a")]).await.unwrap();

        drive.read_only.store(true, Ordering::SeqCst);
        let refused = slot.meta_commit(vec![record("b")]).await;
        assert!(matches!(refused, Err(DriveError::ReadOnly { .. })), "{refused:?}");
        assert!(slot.is_online(), "read-only is not a failed drive");
        assert!(slot.read_only_since().is_some());
        assert_eq!(slot.n_io_errors(), 0);
        // Reads go on; writes fail fast in the slot, without reaching the drive.
        assert!(slot.meta_get(Table::Objects, b"a").await.unwrap().is_some());
        drive.read_only.store(false, Ordering::SeqCst);
        let skipped = slot.shard_create(DataDirId::new_random(), 1).await;
        assert!(matches!(skipped, Err(DriveError::ReadOnly { .. })));
        assert!(slot.is_online());

        // The monitor found it writable again: writes go through.
        slot.set_read_only(false);
        slot.meta_commit(vec![record("c")]).await.unwrap();
        assert!(slot.meta_get(Table::Objects, b"c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn full_and_out_of_descriptors_are_not_drive_failures() {
        for err in [
            DriveError::Full { path: "/d".into() },
            DriveError::ReadOnly { path: "/d".into() },
            DriveError::StoreReopening { path: "/d".into() },
            DriveError::ProcessResources {
                path: "/d".into(),
                what: "Too many open files".into(),
            },
        ] {
            assert!(!is_drive_failure(&err), "{err:?}");
        }
        let full = AtomicBool::new(false);
        note_full::<()>(&full, &Err(DriveError::Full { path: "/d".into() }));
        assert!(full.load(Ordering::Relaxed));
        note_full(&full, &Ok(()));
        assert!(!full.load(Ordering::Relaxed));
        note_full::<()>(&full, &Err(DriveError::Full { path: "/d".into() }));
        note_full::<()>(
            &full,
            &Err(DriveError::Offline {
                endpoint: "/d".into(),
            }),
        );
        assert!(
            !full.load(Ordering::Relaxed),
            "a drive failing for another reason since is no longer counted as full"
        );
    }
}
