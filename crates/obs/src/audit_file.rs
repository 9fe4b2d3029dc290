//! The file audit target: one JSON record per line appended to a file, rotated by size
//! (`audit.log` → `audit.log.1` → ... → `audit.log.N`, the oldest removed).
//!
//! Invariants: a dedicated thread does all file I/O; requests only `try_send` into a bounded
//! queue (the thread polls it, so a send never wakes a sleeping thread). A record is counted `sent` once its line was written to the file (flushed when the
//! queue runs empty); no file ever grows past the rotation size by more than one record.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use bytes::Bytes;

use crate::audit::{AuditTarget, TargetStats};
use crate::error::ObsError;

/// Settings of the file target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTargetConfig {
    /// The log file.
    pub path: PathBuf,
    /// Rotate once the file reaches this size.
    pub rotate_bytes: u64,
    /// Rotated files kept (`path.1` .. `path.N`).
    pub n_keep: u32,
    /// Records the queue holds.
    pub queue_len: usize,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
}

/// Appends records to a file from its own thread.
pub struct FileTarget {
    tx: SyncSender<Bytes>,
    counters: Arc<Counters>,
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open(path: &Path) -> Result<(BufWriter<File>, u64), ObsError> {
    let io = |source| ObsError::AuditIo {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    Ok((BufWriter::new(f), size))
}

/// Shifts `path.N-1` → `path.N`, ..., `path` → `path.1`.
fn rotate(path: &Path, n_keep: u32) -> std::io::Result<()> {
    if n_keep == 0 {
        return std::fs::remove_file(path);
    }
    for i in (1..n_keep).rev() {
        let from = rotated(path, i);
        if from.exists() {
            std::fs::rename(&from, rotated(path, i + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))
}

impl FileTarget {
    /// Opens (creating) the file and starts the writer thread.
    pub fn start(config: FileTargetConfig) -> Result<FileTarget, ObsError> {
        let (writer, size) = open(&config.path)?;
        let (tx, rx) = sync_channel(config.queue_len.max(1));
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("strata-audit-file".into())
            .spawn(move || run(config, rx, writer, size, &c))
            .map_err(|source| ObsError::AuditIo {
                path: PathBuf::from("<audit file thread>"),
                source,
            })?;
        Ok(FileTarget { tx, counters })
    }
}

/// How long the writer sleeps when its queue is empty. It polls instead of blocking in `recv`
/// so that requests never pay for waking it (a blocked receiver costs every sender a futex
/// wake); a record waits at most this long before it is written.
pub const FILE_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

fn run(config: FileTargetConfig, rx: Receiver<Bytes>, writer: BufWriter<File>, mut size: u64, c: &Counters) {
    let mut writer = Some(writer);
    loop {
        let mut next = match rx.try_recv() {
            Ok(line) => Some(line),
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                std::thread::sleep(FILE_POLL_INTERVAL);
                continue;
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
        };
        while let Some(line) = next.take() {
            c.queued.fetch_sub(1, Ordering::Relaxed);
            if writer.is_none() || size >= config.rotate_bytes {
                if let Some(mut w) = writer.take() {
                    let _ = w.flush();
                    drop(w);
                    if let Err(e) = rotate(&config.path, config.n_keep) {
                        tracing::warn!(path = %config.path.display(), error = %e, "audit log rotation failed");
                    }
                }
                match open(&config.path) {
                    Ok((w, s)) => {
                        writer = Some(w);
                        size = s;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reopen the audit log"),
                }
            }
            let ok = writer
                .as_mut()
                .is_some_and(|w| w.write_all(&line).and_then(|()| w.write_all(b"\n")).is_ok());
            if ok {
                size += line.len() as u64 + 1;
                c.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                // The writer is reopened for the next record.
                writer = None;
                c.failed.fetch_add(1, Ordering::Relaxed);
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
            next = rx.try_recv().ok();
        }
        if let Some(w) = writer.as_mut()
            && w.flush().is_err()
        {
            writer = None;
        }
    }
}

impl AuditTarget for FileTarget {
    fn enqueue(&self, line: Bytes) {
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(line) {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> TargetStats {
        TargetStats {
            name: "file".to_owned(),
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            queued: self.counters.queued.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_sent(t: &FileTarget, n: u64) {
        for _ in 0..500 {
            if t.stats().sent >= n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("only {} of {n} records written", t.stats().sent);
    }

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let t = FileTarget::start(FileTargetConfig {
            path: path.clone(),
            rotate_bytes: 100,
            n_keep: 2,
            queue_len: 1000,
        })
        .unwrap();
        // 20 records of 10 bytes + newline: 11 bytes each, so about 10 per file.
        for i in 0..40 {
            t.enqueue(Bytes::from(format!("{{\"i\":{i:>3}}}")));
            if i % 5 == 0 {
                wait_sent(&t, i + 1);
            }
        }
        wait_sent(&t, 40);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let current = read(&path);
        let one = read(&rotated(&path, 1));
        let two = read(&rotated(&path, 2));
        assert!(!rotated(&path, 3).exists());
        for f in [&current, &one, &two] {
            assert!(f.len() <= 100 + 11, "{}", f.len());
            assert!(
                f.lines()
                    .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            );
        }
        // The newest records are in the current file, in order, continuing from `.1`.
        let last_of = |s: &str| s.lines().last().unwrap().to_owned();
        assert_eq!(last_of(&current), "{\"i\": 39}");
        let first_current: serde_json::Value = serde_json::from_str(current.lines().next().unwrap()).unwrap();
        let last_one: serde_json::Value = serde_json::from_str(&last_of(&one)).unwrap();
        assert_eq!(
            first_current["i"].as_u64().unwrap(),
            last_one["i"].as_u64().unwrap() + 1
        );
        assert_eq!(t.stats().dropped, 0);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTarget::start(FileTargetConfig {
            path: dir.path().join("a.log"),
            rotate_bytes: 1 << 20,
            n_keep: 1,
            queue_len: 4,
        })
        .unwrap();
        for _ in 0..10_000 {
            t.enqueue(Bytes::from_static(b"{}"));
        }
        for _ in 0..500 {
            if t.stats().queued == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let s = t.stats();
        assert_eq!(s.queued, 0);
        assert!(s.dropped > 0);
        assert_eq!(s.sent + s.dropped + s.queued, 10_000);
    }
}
