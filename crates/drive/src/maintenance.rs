//! Background housekeeping of a local drive: emptying the trash and removing stale temp files.
//!
//! Invariants:
//! - Every tick does bounded work: at most [`TRASH_ENTRIES_PER_TICK_MAX`] trash entries removed
//!   (of at most [`TRASH_ENTRIES_EXAMINED_PER_TICK_MAX`] examined) and at most
//!   [`TMP_ENTRIES_PER_TICK_MAX`] temp entries examined.
//! - A trash entry is kept for [`TRASH_GRACE`] after its deletion (the time is in its name, see
//!   [`trash_entry_name`]): a GET that resolved the version before it was replaced or moved
//!   keeps reading its shards from the trash (`LocalDrive::shard_read`). Entries whose name
//!   carries no time are removed at once, and so is everything once less than
//!   [`TRASH_GRACE_FREE_PERCENT_MIN`] % of the filesystem, or less than twice the deletion
//!   reserve (`space.rs`), is free.
//! - Only files under `.strata/trash/` and `.strata/tmp/` are ever removed here; a temp file is
//!   removed only once it has not been modified for [`TMP_FILE_STALE_AGE`] (a live writer
//!   refreshes the modification time whenever its buffer is flushed).
//! - The background task stops as soon as the drive is dropped (its stop channel closes).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

/// How often the background task runs a tick.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(10);
/// Trash entries (whole data directories) removed per tick at most: ~100 per second at the
/// default interval, above the rate at which large objects are usually replaced.
pub const TRASH_ENTRIES_PER_TICK_MAX: usize = 1024;
/// Trash entries looked at per tick at most (entries still in their grace period are skipped).
pub const TRASH_ENTRIES_EXAMINED_PER_TICK_MAX: usize = 8192;
/// How long deleted data directories stay readable in the trash: a GET streaming a version
/// that is overwritten, deleted or moved by a decommission meanwhile completes if it finishes
/// within this time.
pub const TRASH_GRACE: Duration = Duration::from_secs(5 * 60);
/// Temp-area entries examined per tick at most.
pub const TMP_ENTRIES_PER_TICK_MAX: usize = 1024;
/// Age after which an untouched temp file is considered abandoned and removed. A writer that
/// stays silent longer than this fails cleanly at commit (its temp file is gone).
pub const TMP_FILE_STALE_AGE: Duration = Duration::from_secs(60 * 60);

/// What one maintenance tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Trash entries removed.
    pub n_trash_removed: u64,
    /// Stale temp files removed.
    pub n_tmp_removed: u64,
}

/// Below this share of the filesystem free (in percent), the trash is emptied without waiting
/// for [`TRASH_GRACE`]: new writes matter more than reads of replaced versions still under way.
pub const TRASH_GRACE_FREE_PERCENT_MIN: u64 = 5;

/// The grace period to apply on the filesystem holding `trash_dir`: [`TRASH_GRACE`], or none
/// when space is short (or unknown).
pub(crate) fn grace_for(trash_dir: &Path) -> Duration {
    match crate::local::filesystem_space(trash_dir) {
        Ok(space) => grace_for_space(space.free_bytes, space.total_bytes),
        Err(_) => Duration::ZERO,
    }
}

fn grace_for_space(free_bytes: u64, total_bytes: u64) -> Duration {
    let space = crate::DriveInfo {
        total_bytes,
        free_bytes,
    };
    // Near the deletion reserve (a full or nearly full drive, also a small one where 5 % is
    // less than the reserve), space for writes comes first too.
    let near_full = crate::space::would_eat_reserve(&space, crate::space::reserve_bytes(total_bytes));
    if near_full || free_bytes.saturating_mul(100) < total_bytes.saturating_mul(TRASH_GRACE_FREE_PERCENT_MIN)
    {
        Duration::ZERO
    } else {
        TRASH_GRACE
    }
}

/// One bounded tick over `trash_dir` and `tmp_dir` (blocking I/O); trash entries deleted less
/// than `grace` before `now` stay.
pub(crate) fn tick(
    trash_dir: &Path,
    tmp_dir: &Path,
    now: SystemTime,
    grace: Duration,
) -> io::Result<MaintenanceReport> {
    let mut report = MaintenanceReport::default();
    for entry in std::fs::read_dir(trash_dir)?.take(TRASH_ENTRIES_EXAMINED_PER_TICK_MAX) {
        if report.n_trash_removed >= TRASH_ENTRIES_PER_TICK_MAX as u64 {
            break;
        }
        let entry = entry?;
        let deleted_at = entry.file_name().to_str().and_then(trash_entry_deleted_at);
        if deleted_at.is_some_and(|at| in_grace(at, now, grace)) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => report.n_trash_removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    for entry in std::fs::read_dir(tmp_dir)?.take(TMP_ENTRIES_PER_TICK_MAX) {
        let entry = entry?;
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        let age = now.duration_since(metadata.modified()?).unwrap_or(Duration::ZERO);
        if age < TMP_FILE_STALE_AGE {
            continue;
        }
        let removed = if metadata.is_dir() {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
        match removed {
            Ok(()) => report.n_tmp_removed += 1,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(report)
}

/// The trash name of data directory `dir` deleted at `now`: `<dir>-<unix ms>-<random>` (the
/// random part keeps two deletions of one directory apart).
pub(crate) fn trash_entry_name(dir: &str, now: SystemTime) -> String {
    let unix_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("{dir}-{unix_ms}-{}", uuid::Uuid::new_v4().as_simple())
}

/// Whether an entry deleted at `deleted_at` is still kept at `now` (a deletion time far in the
/// future, after the clock was set back, does not keep it forever).
fn in_grace(deleted_at: SystemTime, now: SystemTime, grace: Duration) -> bool {
    match now.duration_since(deleted_at) {
        Ok(age) => age < grace,
        Err(ahead) => ahead.duration() < grace,
    }
}

/// When the trash entry `name` was deleted, if its name says so.
fn trash_entry_deleted_at(name: &str) -> Option<SystemTime> {
    let mut fields = name.rsplitn(3, '-');
    let _random = fields.next()?;
    let unix_ms: u64 = fields.next()?.parse().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(unix_ms))
}

/// Spawns the background task ticking every `interval` until `stop` closes.
pub(crate) fn spawn(
    trash_dir: PathBuf,
    tmp_dir: PathBuf,
    interval: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = ticker.tick() => {}
            }
            let (trash, tmp) = (trash_dir.clone(), tmp_dir.clone());
            let work = move || tick(&trash, &tmp, SystemTime::now(), grace_for(&trash));
            match tokio::task::spawn_blocking(work).await {
                Ok(Ok(report)) if report != MaintenanceReport::default() => {
                    tracing::debug!(?report, drive_trash = ?trash_dir, "drive maintenance");
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(%error, drive_trash = ?trash_dir, "drive maintenance failed")
                }
                Err(error) => tracing::warn!(%error, "drive maintenance task failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_trash_and_only_stale_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let (trash, tmp) = (dir.path().join("trash"), dir.path().join("tmp"));
        std::fs::create_dir_all(trash.join("d1/sub")).unwrap();
        std::fs::write(trash.join("d1/sub/part.1"), b"x").unwrap();
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("t1"), b"x").unwrap();

        let report = tick(&trash, &tmp, SystemTime::now(), TRASH_GRACE).unwrap();
        assert_eq!(
            report,
            MaintenanceReport {
                n_trash_removed: 1,
                n_tmp_removed: 0
            }
        );
        assert!(tmp.join("t1").exists());
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);

        let later = SystemTime::now() + TMP_FILE_STALE_AGE + Duration::from_secs(1);
        let report = tick(&trash, &tmp, later, TRASH_GRACE).unwrap();
        assert_eq!(
            report,
            MaintenanceReport {
                n_trash_removed: 0,
                n_tmp_removed: 1
            }
        );
        assert!(!tmp.join("t1").exists());
    }

    #[test]
    fn trash_kept_for_its_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let (trash, tmp) = (dir.path().join("trash"), dir.path().join("tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        let deleted = SystemTime::now();
        let name = trash_entry_name("0a1b2c3d-0000-4000-8000-000000000001", deleted);
        assert_eq!(
            trash_entry_deleted_at(&name)
                .unwrap()
                .duration_since(deleted)
                .unwrap_or_default(),
            Duration::ZERO
        );
        std::fs::create_dir_all(trash.join(&name)).unwrap();
        std::fs::create_dir_all(trash.join("no-time-in-this-name")).unwrap();

        let report = tick(&trash, &tmp, deleted + TRASH_GRACE / 2, TRASH_GRACE).unwrap();
        assert_eq!(
            report.n_trash_removed, 1,
            "only the entry without a time goes at once"
        );
        assert!(trash.join(&name).exists());
        // A clock set back by less than the grace keeps it; by more, it goes.
        let report = tick(&trash, &tmp, deleted - TRASH_GRACE / 2, TRASH_GRACE).unwrap();
        assert_eq!(report.n_trash_removed, 0);
        let report = tick(
            &trash,
            &tmp,
            deleted + TRASH_GRACE + Duration::from_secs(1),
            TRASH_GRACE,
        )
        .unwrap();
        assert_eq!(report.n_trash_removed, 1);
        assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    }

    #[test]
    fn short_space_empties_the_trash_at_once() {
        const GIB: u64 = 1024 * 1024 * 1024;
        const MIB: u64 = 1024 * 1024;
        assert_eq!(grace_for_space(50 * GIB, 100 * GIB), TRASH_GRACE);
        assert_eq!(grace_for_space(5 * GIB, 100 * GIB), TRASH_GRACE);
        assert_eq!(grace_for_space(4 * GIB, 100 * GIB), Duration::ZERO);
        // Small filesystems: the deletion reserve (4 MiB at least) decides before 5 % does.
        assert_eq!(grace_for_space(30 * MIB, 64 * MIB), TRASH_GRACE);
        assert_eq!(grace_for_space(7 * MIB, 64 * MIB), Duration::ZERO);
        assert_eq!(grace_for_space(0, 0), Duration::ZERO);
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(grace_for(dir.path()), TRASH_GRACE | Duration::ZERO));
        assert_eq!(grace_for(&dir.path().join("missing")), Duration::ZERO);

        let (trash, tmp) = (dir.path().join("trash"), dir.path().join("tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        let deleted = SystemTime::now();
        std::fs::create_dir_all(trash.join(trash_entry_name("d", deleted))).unwrap();
        let report = tick(&trash, &tmp, deleted, Duration::ZERO).unwrap();
        assert_eq!(report.n_trash_removed, 1);
    }

    #[test]
    fn bounded_per_tick() {
        let dir = tempfile::tempdir().unwrap();
        let (trash, tmp) = (dir.path().join("trash"), dir.path().join("tmp"));
        std::fs::create_dir_all(&tmp).unwrap();
        for i in 0..TRASH_ENTRIES_PER_TICK_MAX + 3 {
            std::fs::create_dir_all(trash.join(format!("d{i}"))).unwrap();
        }
        let report = tick(&trash, &tmp, SystemTime::now(), TRASH_GRACE).unwrap();
        assert_eq!(report.n_trash_removed, TRASH_ENTRIES_PER_TICK_MAX as u64);
        let report = tick(&trash, &tmp, SystemTime::now(), TRASH_GRACE).unwrap();
        assert_eq!(report.n_trash_removed, 3);
    }
}
