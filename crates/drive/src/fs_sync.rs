//! Group sync of shard files: many shard commits share one `syncfs(2)` of their filesystem.
//!
//! Making one shard file durable the textbook way costs three flushes (the file's data, the
//! directory it was created in, the directory it was renamed into), each a journal commit, and
//! a 2+2 PUT writes four shard files. Instead, a shard commit only writes, creates and renames,
//! then asks the filesystem's [`FsSync`] for a sync: one thread per filesystem drains every
//! request waiting, calls `syncfs` once (which makes all file data, inodes and directory
//! entries of that filesystem durable) and answers them all. Drives that share a filesystem
//! share its syncer.
//!
//! **Invariant:** a request is answered `Ok` only by a `syncfs` that *started after* the
//! request was queued, so everything its caller wrote before asking is durable.
//!
//! The price is that `syncfs` also flushes unrelated dirty data on the same filesystem, which
//! is why drives should be dedicated filesystems (as they are in production).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::{mpsc, oneshot};

/// Sync requests that may wait for one filesystem's syncer.
pub const FS_SYNC_QUEUE_CAPACITY: usize = 4096;

type Reply = oneshot::Sender<Result<(), String>>;

/// The syncer of one filesystem.
#[derive(Debug)]
pub struct FsSync {
    tx: mpsc::Sender<Reply>,
    n_syncs: Arc<AtomicU64>,
}

impl FsSync {
    /// The syncer of the filesystem holding `path` (shared by every drive on it).
    pub fn for_path(path: &Path) -> io::Result<Arc<FsSync>> {
        static REGISTRY: OnceLock<Mutex<HashMap<u64, Weak<FsSync>>>> = OnceLock::new();
        let dev = std::fs::metadata(path)?.dev();
        let registry = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
        let mut registry = registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(existing) = registry.get(&dev).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let syncer = Arc::new(FsSync::start(File::open(path)?, format!("strata-syncfs-{dev}"))?);
        registry.insert(dev, Arc::downgrade(&syncer));
        Ok(syncer)
    }

    fn start(fd: File, thread_name: String) -> io::Result<FsSync> {
        let (tx, mut rx) = mpsc::channel::<Reply>(FS_SYNC_QUEUE_CAPACITY);
        let n_syncs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&n_syncs);
        std::thread::Builder::new().name(thread_name).spawn(move || {
            let mut waiting: Vec<Reply> = Vec::new();
            while let Some(first) = rx.blocking_recv() {
                waiting.push(first);
                while let Ok(more) = rx.try_recv() {
                    waiting.push(more);
                }
                let result = rustix::fs::syncfs(&fd).map_err(|e| e.to_string());
                counter.fetch_add(1, Ordering::Relaxed);
                for reply in waiting.drain(..) {
                    let _ = reply.send(result.clone());
                }
            }
        })?;
        Ok(FsSync { tx, n_syncs })
    }

    /// Waits until everything written to this filesystem before the call is durable.
    pub async fn sync(&self) -> io::Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(reply)
            .await
            .map_err(|_| io::Error::other("the filesystem syncer stopped"))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(io::Error::other(format!("syncfs failed: {message}"))),
            Err(_) => Err(io::Error::other("the filesystem syncer stopped")),
        }
    }

    /// How many `syncfs` calls were made (fewer than requests when they were grouped).
    pub fn n_syncs(&self) -> u64 {
        self.n_syncs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let syncer = FsSync::for_path(dir.path()).unwrap();
        assert!(
            Arc::ptr_eq(&syncer, &FsSync::for_path(dir.path()).unwrap()),
            "one syncer per filesystem"
        );
        let before = syncer.n_syncs();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let syncer = Arc::clone(&syncer);
            tasks.push(tokio::spawn(async move { syncer.sync().await }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let n = syncer.n_syncs() - before;
        assert!((1..64).contains(&n), "{n} syncs for 64 requests");
    }
}
