//! `DriveSlot`: one position of an erasure set, holding whichever drive is there now.
//!
//! A slot forwards every call to its current drive and watches the answers: an I/O failure
//! marks the slot offline, after which calls fail fast with `Offline` (no timeouts piling up on
//! a dead disk) until the monitor (`ObjectLayer::monitor_drives`) finds the drive healthy
//! again. The monitor also notices a drive whose format record vanished (wiped or replaced by
//! an empty directory), formats the empty directory into the same position and swaps the new
//! drive into the slot; the set is then healed onto it.
//!
//! **Invariant:** a slot never holds a drive whose format record is for another position.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

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

    fn observe<T>(&self, result: DriveResult<T>) -> DriveResult<T> {
        if let Err(err) = &result
            && is_drive_failure(err)
        {
            if !matches!(err, DriveError::Offline { .. }) {
                self.n_io_errors.fetch_add(1, Ordering::Relaxed);
            }
            self.set_online(false);
        }
        result
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
        let drive = self.check()?;
        self.observe(drive.meta_commit(ops).await)
    }

    async fn shard_create(&self, dir: DataDirId, part: u32) -> DriveResult<Box<dyn ShardWrite>> {
        let drive = self.check()?;
        self.observe(drive.shard_create(dir, part).await)
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
        let drive = self.check()?;
        self.observe(drive.shard_delete(dir, part).await)
    }

    async fn data_dir_delete(&self, dir: DataDirId) -> DriveResult<()> {
        let drive = self.check()?;
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
        let drive = self.check()?;
        self.observe(drive.set_healing_mark(on).await)
    }
}
