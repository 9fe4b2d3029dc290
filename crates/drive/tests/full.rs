//! A drive on a small, really full filesystem (a tmpfs mounted for the test; needs root, which
//! CI has): writes are refused as `Full` before the reserve is touched, deletes still commit,
//! reads go on, a metadata store that met ENOSPC is reopened by itself, and writes resume once
//! space comes back, all without reopening the drive.
//!
//! Issue 16, item 1 ("a full store locks up until restart").
#![allow(clippy::unwrap_used, clippy::panic)] // Test helpers fail loudly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use strata_drive::{DataDirId, Drive, DriveError, FormatRecord, LocalDrive, MetaOp, Table};

/// A tmpfs mounted at a temp directory for the test's lifetime.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when this process may not mount (not root): the test then says so and passes.
    fn mount(size_mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(status) if status.success() => Some(Tmpfs { dir }),
            _ => {
                eprintln!("cannot mount a tmpfs here (not root?): full-drive test not run");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn format() -> FormatRecord {
    FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2)
}

fn record(i: usize) -> MetaOp {
    MetaOp::put(Table::Objects, format!("b\0k{i:06}").into_bytes(), vec![7u8; 512])
}

/// Writes 1 MiB shard files until the drive refuses; returns how many were committed.
async fn fill_with_shards(drive: &LocalDrive) -> usize {
    let chunk = Bytes::from(vec![1u8; 1024 * 1024]);
    for n in 0..10_000 {
        let mut writer = match drive.shard_create(DataDirId::new_random(), 1).await {
            Ok(writer) => writer,
            Err(DriveError::Full { .. }) => return n,
            Err(other) => panic!("shard_create failed with {other:?}, not Full"),
        };
        let written = async {
            writer.write(chunk.clone()).await?;
            writer.write(chunk.slice(..4096)).await?;
            writer.commit().await
        }
        .await;
        match written {
            Ok(()) => {}
            Err(DriveError::Full { .. }) => return n,
            Err(other) => panic!("shard write failed with {other:?}, not Full"),
        }
    }
    panic!("a 32 MiB filesystem never filled");
}

/// Fills whatever space is left with a plain file (space taken by someone else).
fn fill_rest(path: &Path) -> PathBuf {
    let filler = path.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if file.write_all(&block).is_err() {
            break;
        }
    }
    // Single bytes into the last partial page.
    while file.write_all(&[0u8]).is_ok() && file.flush().is_ok() {}
    filler
}

#[tokio::test]
async fn full_drive_refuses_writes_keeps_deletes_and_recovers_without_reopen() {
    let Some(fs) = Tmpfs::mount(32) else { return };
    let drive = LocalDrive::open(fs.path().join("d"), &format()).await.unwrap();
    drive.meta_commit((0..8).map(record).collect()).await.unwrap();

    let n_shards = fill_with_shards(&drive).await;
    assert!(n_shards > 0, "some shard files fit first");
    assert!(drive.is_full());
    // Small records still fit above the reserve, until they do not (the last MiB above the
    // reserve holds about a thousand of them as the drive counts them).
    let mut n_records = 0;
    loop {
        match drive.meta_commit(vec![record(1000 + n_records)]).await {
            Ok(()) => n_records += 1,
            Err(DriveError::Full { .. }) => break,
            Err(other) => panic!("a record commit failed with {other:?}, not Full"),
        }
        assert!(n_records < 20_000, "records never filled the drive");
    }
    // New records are refused without touching the store; reads go on.
    let refused = drive.meta_commit(vec![record(100)]).await;
    assert!(matches!(refused, Err(DriveError::Full { .. })), "{refused:?}");
    assert!(
        drive
            .meta_get(Table::Objects, b"b\0k000001")
            .await
            .unwrap()
            .is_some()
    );
    // Deletes commit into the reserve, also with a small record (a delete marker).
    drive
        .meta_commit_deleting(vec![
            MetaOp::delete(Table::Objects, b"b\0k000001".to_vec()),
            MetaOp::put(Table::Objects, b"b\0marker".to_vec(), vec![1u8; 160]),
        ])
        .await
        .unwrap();
    assert!(
        drive
            .meta_get(Table::Objects, b"b\0k000001")
            .await
            .unwrap()
            .is_none()
    );

    // Someone else takes the reserve too: the store itself meets ENOSPC.
    let filler = fill_rest(fs.path());
    let mut outcomes = Vec::new();
    for i in 0..4 {
        let key = format!("b\0k{:06}", 2 + i).into_bytes();
        outcomes.push(
            drive
                .meta_commit_deleting(vec![MetaOp::delete(Table::Objects, key)])
                .await,
        );
    }
    for outcome in &outcomes {
        assert!(
            matches!(
                outcome,
                Ok(()) | Err(DriveError::Full { .. } | DriveError::StoreReopening { .. })
            ),
            "a commit on a filesystem with no space left failed with {outcome:?}"
        );
    }

    // Space comes back: the store is usable again by itself (reopened if it had latched), and
    // ordinary writes resume.
    std::fs::remove_file(&filler).unwrap();
    let mut resumed = false;
    for _ in 0..100 {
        match drive
            .meta_commit_deleting(vec![MetaOp::delete(Table::Objects, b"b\0k000006".to_vec())])
            .await
        {
            Ok(()) => {
                resumed = true;
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    if outcomes.iter().any(Result::is_err) {
        // A deleting commit skips the reserve check, so its ENOSPC came from the store, which
        // latched and must have been reopened.
        assert!(strata_drive::metrics::meta_reopens_total() >= 1, "{outcomes:?}");
    }
    assert!(
        resumed,
        "the metadata store did not come back after space was freed"
    );
    assert!(
        drive
            .meta_get(Table::Objects, b"b\0k000007")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        drive
            .meta_get(Table::Objects, b"b\0marker")
            .await
            .unwrap()
            .is_some()
    );
    // Free the shard space too (what deleting objects and emptying the trash does).
    for entry in drive.data_dir_list(None, 10_000).await.unwrap() {
        drive.data_dir_delete(entry.id).await.unwrap();
    }
    let trash = fs.path().join("d/.strata/trash");
    for entry in std::fs::read_dir(&trash).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }
    drive.meta_commit(vec![record(200)]).await.unwrap();
    assert!(!drive.is_full());
    assert!(
        drive
            .meta_get(Table::Objects, b"b\0k000200")
            .await
            .unwrap()
            .is_some()
    );
}
