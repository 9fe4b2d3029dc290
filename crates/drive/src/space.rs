//! Free space of one local drive: the reserve kept back for deletions, and the drive's "full"
//! state.
//!
//! A drive is *full* when writing more would eat into its reserve
//! ([`reserve_bytes`]: 1 % of the filesystem, at least [`SPACE_RESERVE_BYTES_MIN`], at most
//! [`SPACE_RESERVE_BYTES_MAX`]). New data and new records are then refused with
//! [`DriveError::Full`] before anything touches the filesystem or the metadata store, while
//! deletions (records removed, delete markers, aborted uploads) still commit into the reserve:
//! the metadata store is copy-on-write, so even a delete needs a few free pages, and a store
//! that fails a write latches until it is reopened. Reads never look at space.
//!
//! The same check refuses writes with [`DriveError::ReadOnly`] while the filesystem is mounted
//! read-only (`ST_RDONLY`, as after ext4's `errors=remount-ro`): the metadata store never sees
//! the EROFS that would latch it, and keeps serving reads.
//!
//! Writers admitted but not done yet are counted ([`Space::admit`]): concurrent appends cannot
//! all pass one `statvfs` reading and overshoot the reserve together. Deletions that add records
//! (delete markers) may use only half of the reserve; pure removals may use all of it.
//!
//! Invariants:
//! - Space is measured (`statvfs`) at every check, so a drive stops being full as soon as
//!   space comes back (the trash emptied, objects deleted, the filesystem grown); there is no
//!   state to reset and no restart needed.
//! - The change into and out of the full state is logged once per change (with the free space
//!   and the reserve, or the OS error when the filesystem itself said ENOSPC), not per refusal;
//!   refusals are counted in [`crate::metrics`].

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::local::filesystem_state;
use crate::{DriveError, DriveInfo, DriveResult};

/// Smallest reserve kept free for deletions (a delete batch rewrites a few metadata pages; the
/// store may also have to extend its file by one region).
pub const SPACE_RESERVE_BYTES_MIN: u64 = 4 * 1024 * 1024;
/// Largest reserve, so big drives do not hold back more than a deletion could ever need.
pub const SPACE_RESERVE_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// The reserve is this fraction (1/N) of the filesystem, within the bounds above.
pub const SPACE_RESERVE_FRACTION_DIVISOR: u64 = 100;
/// A metadata write is assumed to need this many times its record bytes on the filesystem
/// (copy-on-write pages, the old and the new version of a page).
pub const META_WRITE_SPACE_FACTOR: u64 = 2;
const _: () = assert!(SPACE_RESERVE_BYTES_MIN < SPACE_RESERVE_BYTES_MAX);

/// The reserve on a filesystem of `total_bytes`.
pub fn reserve_bytes(total_bytes: u64) -> u64 {
    (total_bytes / SPACE_RESERVE_FRACTION_DIVISOR).clamp(SPACE_RESERVE_BYTES_MIN, SPACE_RESERVE_BYTES_MAX)
}

/// Whether writing `bytes` more on a filesystem in state `info` would leave less than the
/// reserve free.
pub fn would_eat_reserve(info: &DriveInfo, bytes: u64) -> bool {
    info.free_bytes < reserve_bytes(info.total_bytes).saturating_add(bytes)
}

/// The free-space state of one drive.
#[derive(Debug)]
pub(crate) struct Space {
    root: PathBuf,
    full: AtomicBool,
    /// Bytes admitted by [`Space::admit`] and not yet written (or given up).
    in_flight_bytes: AtomicU64,
}

/// Bytes a writer was admitted for; they stop counting when dropped (the write is done and
/// shows in the filesystem's free space, or was given up).
#[derive(Debug)]
pub(crate) struct InFlightBytes {
    space: Arc<Space>,
    bytes: u64,
}

impl Drop for InFlightBytes {
    fn drop(&mut self) {
        self.space
            .in_flight_bytes
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Space {
    pub(crate) fn new(root: PathBuf) -> Space {
        Space {
            root,
            full: AtomicBool::new(false),
            in_flight_bytes: AtomicU64::new(0),
        }
    }

    /// Admits a write of `bytes` when the filesystem is writable and they fit, together with
    /// every write admitted and not yet done, without eating into the reserve; else the drive
    /// is read-only or full. Blocking (one `statvfs`).
    pub(crate) fn admit(self: &Arc<Self>, bytes: u64) -> DriveResult<InFlightBytes> {
        let before = self.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed);
        let admitted = InFlightBytes {
            space: Arc::clone(self),
            bytes,
        };
        self.check_fits(before.saturating_add(bytes))?;
        Ok(admitted)
    }

    /// `Ok` when `bytes` more would be admitted now (see [`Space::admit`]).
    pub(crate) fn check_room(&self, bytes: u64) -> DriveResult<()> {
        let in_flight = self.in_flight_bytes.load(Ordering::Relaxed);
        self.check_fits(in_flight.saturating_add(bytes))
    }

    /// `Ok` when a deletion that adds `bytes` of records (a delete marker) leaves at least half
    /// of the reserve free: markers alone can never use up the room pure removals need.
    pub(crate) fn check_deletion_room(&self, bytes: u64) -> DriveResult<()> {
        let info = self.writable_space()?;
        let half_reserve = reserve_bytes(info.total_bytes) / 2;
        let in_flight = self.in_flight_bytes.load(Ordering::Relaxed);
        if info.free_bytes < half_reserve.saturating_add(in_flight).saturating_add(bytes) {
            return Err(self.refusal());
        }
        Ok(())
    }

    /// `Ok` when `bytes` fit above the whole reserve.
    fn check_fits(&self, bytes: u64) -> DriveResult<()> {
        let info = self.writable_space()?;
        if would_eat_reserve(&info, bytes) {
            if self.mark_full() {
                tracing::warn!(
                    drive = ?self.root,
                    free_bytes = info.free_bytes,
                    reserve_bytes = reserve_bytes(info.total_bytes),
                    "drive is full: new writes are refused until space is freed (deletes still work)"
                );
            }
            return Err(self.refusal());
        }
        self.mark_not_full(&info);
        Ok(())
    }

    /// `Ok` when the filesystem is writable (a deletion, which may use the reserve).
    pub(crate) fn check_writable(&self) -> DriveResult<()> {
        self.writable_space().map(drop)
    }

    fn writable_space(&self) -> DriveResult<DriveInfo> {
        let (info, read_only) = filesystem_state(&self.root).map_err(|source| DriveError::Io {
            path: self.root.clone(),
            source,
        })?;
        if read_only {
            return Err(DriveError::ReadOnly {
                path: self.root.clone(),
            });
        }
        Ok(info)
    }

    /// Records that the filesystem itself refused a write for lack of space (a write that
    /// raced past the reserve check, or space taken by someone else).
    pub(crate) fn note_os_full(&self, path: &Path, error: &io::Error) {
        crate::metrics::count_space_refusal();
        if self.mark_full() {
            tracing::warn!(
                drive = ?self.root,
                ?path,
                errno = error.raw_os_error(),
                %error,
                "drive is full (the filesystem refused a write): new writes are refused until space is freed"
            );
        }
    }

    /// A write refused for lack of space, counted.
    fn refusal(&self) -> DriveError {
        crate::metrics::count_space_refusal();
        DriveError::Full {
            path: self.root.clone(),
        }
    }

    /// Enters the full state; whether the drive was not full before (the change to log).
    fn mark_full(&self) -> bool {
        let changed = !self.full.swap(true, Ordering::Relaxed);
        if changed {
            crate::metrics::drive_full_changed(true);
        }
        changed
    }

    /// Whether the drive was full at its last check.
    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    fn mark_not_full(&self, info: &DriveInfo) {
        if self.full.swap(false, Ordering::Relaxed) {
            crate::metrics::drive_full_changed(false);
            tracing::info!(
                drive = ?self.root,
                free_bytes = info.free_bytes,
                "drive has room again: writes resume"
            );
        }
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        // A closed drive no longer counts among the full ones (a reopen makes a new `Space`).
        if self.full.load(Ordering::Relaxed) {
            crate::metrics::drive_full_changed(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn reserve_is_one_percent_within_bounds() {
        for (total, reserve) in [
            (0, SPACE_RESERVE_BYTES_MIN),
            (64 * MIB, SPACE_RESERVE_BYTES_MIN),
            (1000 * MIB, 10 * MIB),
            (1_000_000 * MIB, SPACE_RESERVE_BYTES_MAX),
        ] {
            assert_eq!(reserve_bytes(total), reserve, "total {total}");
        }
    }

    /// Concurrent writers cannot all pass one reading of free space (review of issue 16): what
    /// is admitted and not yet written counts against the room.
    #[test]
    fn admitted_writes_count_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let space = Arc::new(Space::new(dir.path().to_path_buf()));
        let info = crate::local::filesystem_space(dir.path()).unwrap();
        let room = info.free_bytes - reserve_bytes(info.total_bytes);
        // All but 64 MiB of the room, admitted and not yet written.
        let big = space.admit(room - 64 * MIB).unwrap();
        assert!(space.admit(MIB).is_ok(), "1 MiB still fits");
        assert!(matches!(space.admit(128 * MIB), Err(DriveError::Full { .. })));
        assert!(matches!(
            space.check_room(128 * MIB),
            Err(DriveError::Full { .. })
        ));
        drop(big);
        assert!(
            space.admit(128 * MIB).is_ok(),
            "room is back once the write is done"
        );
        assert_eq!(space.in_flight_bytes.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn writes_that_reach_into_the_reserve_are_refused() {
        let info = |free_bytes| DriveInfo {
            total_bytes: 100 * MIB,
            free_bytes,
        };
        assert!(!would_eat_reserve(&info(5 * MIB), 0));
        assert!(!would_eat_reserve(&info(5 * MIB), MIB));
        assert!(would_eat_reserve(&info(5 * MIB), MIB + 1));
        assert!(would_eat_reserve(&info(3 * MIB), 0));
        assert!(would_eat_reserve(&info(0), u64::MAX));
    }
}
