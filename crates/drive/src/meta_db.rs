//! `MetaDb`: the drive's metadata database, which can be closed and opened again after an I/O
//! failure.
//!
//! redb latches after a failed write (ENOSPC, EIO): every later call answers `PreviousIo` until
//! the database is closed and reopened, which also repairs it from its last durable commit. So
//! the handle lives in a slot that the committer thread empties, closes and refills
//! ([`MetaDb::reopen`]); readers take a clone of the current handle for the length of one read.
//!
//! Invariants:
//! - At most one `redb::Database` is open on the file: the old handle is closed (after the
//!   readers still holding it finish) before the new one is opened.
//! - While the slot is empty (a reopen under way, or one that failed) every call fails with
//!   [`DriveError::StoreReopening`]; nothing is answered from a half-open store.
//! - A reopen that fails is retried no sooner than [`REOPEN_RETRY_PAUSE`] later.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::group_commit::table_definition;
use crate::{DriveError, DriveResult, Table};

/// How long a reopen waits for readers still holding the old handle.
pub const REOPEN_READERS_WAIT: Duration = Duration::from_secs(5);
/// Pause between attempts to reopen a store that failed to open.
pub const REOPEN_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The metadata database of one drive.
#[derive(Debug)]
pub(crate) struct MetaDb {
    root: PathBuf,
    path: PathBuf,
    cache_bytes: usize,
    current: RwLock<Option<Arc<redb::Database>>>,
    /// Set by readers that met a latched store, cleared by the reopen.
    reopen_wanted: AtomicBool,
    last_attempt: Mutex<Option<Instant>>,
}

impl MetaDb {
    /// Opens (creating if needed) the store at `path` with every table present. Blocking.
    pub(crate) fn open(root: &Path, path: PathBuf, cache_bytes: usize) -> DriveResult<MetaDb> {
        let db = open_database(root, &path, cache_bytes)?;
        Ok(MetaDb {
            root: root.to_path_buf(),
            path,
            cache_bytes,
            current: RwLock::new(Some(Arc::new(db))),
            reopen_wanted: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
        })
    }

    /// The open database, or an error while it is being (or failed to be) reopened.
    pub(crate) fn get(&self) -> DriveResult<Arc<redb::Database>> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.clone().ok_or_else(|| DriveError::StoreReopening {
            path: self.root.clone(),
        })
    }

    /// Asks for a reopen at the committer's next turn (a reader met a latched store).
    pub(crate) fn want_reopen(&self) {
        self.reopen_wanted.store(true, Ordering::Relaxed);
    }

    /// Whether a reopen is wanted now: asked for by a reader, or the store is closed and the
    /// last attempt is long enough ago.
    pub(crate) fn reopen_due(&self) -> bool {
        let closed = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none();
        if !closed && !self.reopen_wanted.load(Ordering::Relaxed) {
            return false;
        }
        let last = *self
            .last_attempt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.is_none_or(|at| at.elapsed() >= REOPEN_RETRY_PAUSE)
    }

    /// Closes the store and opens it again (redb repairs it from its last durable commit).
    /// Blocking; called on the committer thread, so no write is in progress.
    pub(crate) fn reopen(&self, cause: &str) -> DriveResult<()> {
        *self
            .last_attempt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.reopen_wanted.store(false, Ordering::Relaxed);
        let old = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(old) = old {
            tracing::warn!(drive = ?self.root, cause, "reopening the metadata store after an I/O failure");
            close(old);
        }
        let db = open_database(&self.root, &self.path, self.cache_bytes).inspect_err(|err| {
            tracing::warn!(drive = ?self.root, %err, "reopening the metadata store failed; will retry");
        })?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(db));
        crate::metrics::count_meta_reopen();
        tracing::info!(drive = ?self.root, "metadata store reopened");
        Ok(())
    }
}

/// Closes `db` once the readers still holding it are done (or, after
/// [`REOPEN_READERS_WAIT`], leaves the close to the last of them).
fn close(mut db: Arc<redb::Database>) {
    let deadline = Instant::now() + REOPEN_READERS_WAIT;
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                // A latched store cannot write its clean-shutdown state; the next open repairs.
                if let Err(error) = db.close() {
                    tracing::debug!(%error, "closing a failed metadata store");
                }
                return;
            }
            Err(shared) if Instant::now() < deadline => {
                db = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => {
                tracing::warn!("readers still hold the failed metadata store; it closes when they finish");
                return;
            }
        }
    }
}

fn open_database(root: &Path, path: &Path, cache_bytes: usize) -> DriveResult<redb::Database> {
    let error = |e: redb::Error| crate::local::redb_error(root, e);
    let db = redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| error(e.into()))?;
    let txn = db.begin_write().map_err(|e| error(e.into()))?;
    for table in Table::ALL {
        txn.open_table(table_definition(table))
            .map_err(|e| error(e.into()))?;
    }
    txn.commit().map_err(|e| error(e.into()))?;
    Ok(db)
}

/// Whether a store error means the store latched (or is closed) and must be reopened.
pub(crate) fn needs_reopen(error: &redb::Error) -> bool {
    matches!(
        error,
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
    )
}
