//! Group commit: concurrent metadata batches on one drive share one durable redb transaction.
//!
//! A dedicated committer thread (a `std::thread`, never a tokio worker, because a commit
//! blocks on fsync) receives batches over a bounded channel. It takes the first waiting batch,
//! drains up to [`GROUP_COMMIT_BATCHES_MAX`] more without waiting, applies them all in ONE write
//! transaction with [`redb::Durability::Immediate`], commits, and then answers every waiter.
//!
//! Invariants:
//! - Each caller's batch is atomic: it is applied completely inside one transaction or not at
//!   all. When applying one batch fails, the transaction is aborted, that batch's caller gets
//!   the error, and the remaining batches are retried in a fresh transaction (at most one retry
//!   per batch, so the loop is bounded).
//! - A caller is answered `Ok` only after the transaction holding its batch committed durably.
//!   When the commit itself fails, every caller of that transaction gets the error.
//! - The thread stops when the [`GroupCommitter`] is dropped (its sender closes); drop waits
//!   for the commit in progress, so the database is closed when drop returns.
//! - After a transaction fails with an I/O error (redb then latches and refuses every later
//!   call), the thread reopens the store before the next group (`MetaDb::reopen`); a reader
//!   that met a latched store asks for the same. No drive stays latched until a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use redb::{Database, TableDefinition, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use crate::Table;
use crate::meta_db::{MetaDb, needs_reopen};

/// Batches that may wait for the committer before callers are slowed down (back-pressure).
pub(crate) const COMMIT_QUEUE_BATCHES_MAX: usize = 1024;
/// Batches applied in one write transaction at most.
pub(crate) const GROUP_COMMIT_BATCHES_MAX: usize = 256;
const _: () = assert!(GROUP_COMMIT_BATCHES_MAX <= COMMIT_QUEUE_BATCHES_MAX);
const _: () = assert!(GROUP_COMMIT_BATCHES_MAX >= 1);

/// The redb table holding one of the drive's [`Table`]s.
pub(crate) fn table_definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// Position of a table in per-transaction arrays.
fn table_idx(table: Table) -> usize {
    Table::ALL
        .iter()
        .position(|candidate| *candidate == table)
        .unwrap_or(0)
}
const TABLES_COUNT: usize = Table::ALL.len();

/// One change, with the value already carrying its checksum.
#[derive(Debug)]
pub(crate) struct EncodedOp {
    /// Table to change.
    pub(crate) table: Table,
    /// Record key.
    pub(crate) key: Vec<u8>,
    /// Stored value (with checksum) for a put, `None` for a delete.
    pub(crate) stored_value: Option<Vec<u8>>,
}

/// Why a commit failed; cloneable so every caller of a failed transaction gets its own copy.
#[derive(Clone, Debug)]
pub(crate) enum CommitFailure {
    /// An I/O error (ENOSPC included), by kind and message.
    Io {
        /// The error kind, kept so "no space" can be reported as such.
        kind: std::io::ErrorKind,
        /// The error text.
        message: String,
    },
    /// The store found its own data corrupt.
    Corrupt(String),
    /// Any other store failure.
    Store(String),
    /// The committer thread is gone (the drive is closing).
    Stopped,
    /// The store latched (or is closed) and is being reopened.
    Reopening,
}

impl CommitFailure {
    fn from_store(error: redb::Error, reopen: &mut bool) -> Self {
        *reopen |= needs_reopen(&error);
        CommitFailure::from(error)
    }
}

impl From<redb::Error> for CommitFailure {
    fn from(error: redb::Error) -> Self {
        match error {
            redb::Error::Io(io) => CommitFailure::Io {
                kind: io.kind(),
                message: io.to_string(),
            },
            redb::Error::Corrupted(what) => CommitFailure::Corrupt(what),
            other => CommitFailure::Store(other.to_string()),
        }
    }
}

/// Counters of the committer, for observability and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Caller batches made durable.
    pub batches_committed: u64,
    /// Write transactions committed durably (each one fsync); smaller than
    /// `batches_committed` when group commit shared fsyncs.
    pub transactions_committed: u64,
    /// Caller batches answered with an error.
    pub batches_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches_committed: AtomicU64,
    transactions_committed: AtomicU64,
    batches_failed: AtomicU64,
}

/// A batch waiting for the committer.
struct Request {
    ops: Vec<EncodedOp>,
    reply: oneshot::Sender<Result<(), CommitFailure>>,
}

/// Handle to the committer thread of one drive.
#[derive(Debug)]
pub(crate) struct GroupCommitter {
    sender: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl GroupCommitter {
    /// Starts the committer thread for `db`, named after the drive.
    pub(crate) fn start(db: Arc<MetaDb>, thread_name: String) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(COMMIT_QUEUE_BATCHES_MAX);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || run(&db, receiver, &thread_counters))?;
        Ok(GroupCommitter {
            sender: Some(sender),
            thread: Some(thread),
            counters,
        })
    }

    /// Commits `ops` atomically and durably, sharing the transaction with concurrent callers.
    pub(crate) async fn commit(&self, ops: Vec<EncodedOp>) -> Result<(), CommitFailure> {
        let Some(sender) = &self.sender else {
            return Err(CommitFailure::Stopped);
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request { ops, reply })
            .await
            .map_err(|_| CommitFailure::Stopped)?;
        answer.await.map_err(|_| CommitFailure::Stopped)?
    }

    /// Wakes the committer so it reopens the store (see `MetaDb::want_reopen`), without
    /// waiting for the next write. A full queue means the committer is busy and will look soon.
    pub(crate) fn nudge(&self) {
        if let Some(sender) = &self.sender {
            let (reply, _) = oneshot::channel();
            let _ = sender.try_send(Request {
                ops: Vec::new(),
                reply,
            });
        }
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> CommitStats {
        CommitStats {
            batches_committed: self.counters.batches_committed.load(Ordering::Relaxed),
            transactions_committed: self.counters.transactions_committed.load(Ordering::Relaxed),
            batches_failed: self.counters.batches_failed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for GroupCommitter {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the commit in progress (if any); joining
        // makes sure the database file is closed before a reopen.
        self.sender.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("metadata committer thread panicked");
        }
    }
}

/// The committer thread's loop.
fn run(meta: &MetaDb, mut receiver: mpsc::Receiver<Request>, counters: &Counters) {
    while let Some(first) = receiver.blocking_recv() {
        let mut group = Vec::with_capacity(GROUP_COMMIT_BATCHES_MAX.min(16));
        group.push(first);
        while group.len() < GROUP_COMMIT_BATCHES_MAX {
            match receiver.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        if meta.reopen_due() {
            // Failure is logged there; the group below then fails with "being reopened".
            let _ = meta.reopen("a reader met a failed store");
        }
        // Nudges carry no work.
        group.retain(|request| !request.ops.is_empty());
        if group.is_empty() {
            continue;
        }
        let db = match meta.get() {
            Ok(db) => db,
            Err(_) => {
                fail_all(group, &CommitFailure::Reopening, counters);
                continue;
            }
        };
        let started = std::time::Instant::now();
        let outcome = commit_group(&db, group, counters);
        drop(db);
        if let Some(n_batches) = outcome.n_batches {
            crate::metrics::observe_commit(n_batches, started.elapsed());
        }
        if outcome.reopen {
            let _ = meta.reopen("a metadata commit failed with an I/O error");
        }
    }
}

/// What became of one group.
struct GroupOutcome {
    /// Batches in the committed transaction, if one committed.
    n_batches: Option<usize>,
    /// The store failed in a way that latches it: reopen before the next group.
    reopen: bool,
}

/// Applies `group` in one transaction (retrying without a batch that fails to apply) and
/// answers every caller.
fn commit_group(db: &Database, mut group: Vec<Request>, counters: &Counters) -> GroupOutcome {
    let mut reopen = false;
    // Each pass either commits (and returns) or removes one failed batch, so this terminates
    // after at most `group.len() + 1` transactions.
    while !group.is_empty() {
        let txn = match begin(db, &mut reopen) {
            Ok(txn) => txn,
            Err(failure) => {
                fail_all(group, &failure, counters);
                return GroupOutcome {
                    n_batches: None,
                    reopen,
                };
            }
        };
        let mut failed: Option<(usize, CommitFailure)> = None;
        {
            let mut tables: [Option<redb::Table<&[u8], &[u8]>>; TABLES_COUNT] = Default::default();
            for (request_idx, request) in group.iter().enumerate() {
                if let Err(error) = apply(&txn, &mut tables, &request.ops) {
                    failed = Some((request_idx, CommitFailure::from_store(error, &mut reopen)));
                    break;
                }
            }
        }
        if let Some((request_idx, failure)) = failed {
            if let Err(error) = txn.abort() {
                tracing::warn!(%error, "aborting a metadata transaction failed");
            }
            let request = group.swap_remove(request_idx);
            counters.batches_failed.fetch_add(1, Ordering::Relaxed);
            // The caller may have gone away (cancelled); nothing to tell then.
            let _ = request.reply.send(Err(failure));
            if reopen {
                // A latched store fails every batch: answer the rest now, reopen, go on.
                fail_all(group, &CommitFailure::Reopening, counters);
                return GroupOutcome {
                    n_batches: None,
                    reopen,
                };
            }
            continue;
        }
        let n_committed = group.len();
        match txn.commit() {
            Ok(()) => {
                counters.transactions_committed.fetch_add(1, Ordering::Relaxed);
                let n_batches = u64::try_from(group.len()).unwrap_or(u64::MAX);
                counters.batches_committed.fetch_add(n_batches, Ordering::Relaxed);
                for request in group {
                    let _ = request.reply.send(Ok(()));
                }
            }
            Err(error) => {
                let failure = CommitFailure::from_store(redb::Error::from(error), &mut reopen);
                fail_all(group, &failure, counters);
                return GroupOutcome {
                    n_batches: None,
                    reopen,
                };
            }
        }
        return GroupOutcome {
            n_batches: Some(n_committed),
            reopen,
        };
    }
    GroupOutcome {
        n_batches: None,
        reopen,
    }
}

fn begin(db: &Database, reopen: &mut bool) -> Result<WriteTransaction, CommitFailure> {
    let mut txn = db
        .begin_write()
        .map_err(|e| CommitFailure::from_store(redb::Error::from(e), reopen))?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(|e| CommitFailure::from_store(redb::Error::from(e), reopen))?;
    Ok(txn)
}

fn fail_all(group: Vec<Request>, failure: &CommitFailure, counters: &Counters) {
    let n_batches = u64::try_from(group.len()).unwrap_or(u64::MAX);
    counters.batches_failed.fetch_add(n_batches, Ordering::Relaxed);
    for request in group {
        let _ = request.reply.send(Err(failure.clone()));
    }
}

/// Applies one caller's batch, opening tables lazily (each at most once per transaction).
fn apply<'txn>(
    txn: &'txn WriteTransaction,
    tables: &mut [Option<redb::Table<'txn, &'static [u8], &'static [u8]>>; TABLES_COUNT],
    ops: &[EncodedOp],
) -> Result<(), redb::Error> {
    for op in ops {
        let slot = &mut tables[table_idx(op.table)];
        let table = match slot {
            Some(table) => table,
            None => slot.insert(txn.open_table(table_definition(op.table))?),
        };
        match &op.stored_value {
            Some(value) => {
                table.insert(op.key.as_slice(), value.as_slice())?;
            }
            None => {
                table.remove(op.key.as_slice())?;
            }
        }
    }
    Ok(())
}
