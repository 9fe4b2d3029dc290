//! `ShardFileWriter`: appends to a shard file through an aligned buffer with `O_DIRECT`.
//!
//! Buffered writes copy every byte into the page cache and leave it dirty for a later flush;
//! on the machines we measured that copy is the single largest cost of a large PUT (half the
//! server's CPU time at 190 MiB/s), and direct I/O of aligned 1 MiB writes runs several times
//! faster (see ../shared/MEASURED.md). So shard files are written with `O_DIRECT` where the
//! filesystem allows it: bytes collect in a buffer aligned to [`DIRECT_IO_ALIGN_BYTES`]; each
//! full buffer is written at an aligned offset; at the end the tail is padded with zeros to the
//! alignment, written, and the file is truncated back to its exact length. Filesystems that
//! refuse `O_DIRECT` (tmpfs, some overlays) get the same writes through the page cache.
//!
//! **Invariant:** the file's final length and content are exactly the bytes appended, whatever
//! the mode.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::PathBuf;

/// Alignment of buffers, offsets and lengths for direct I/O (the largest logical block size
/// in common use).
pub const DIRECT_IO_ALIGN_BYTES: usize = 4096;
/// Bytes collected before one write to the file.
pub const SHARD_WRITE_CHUNK_BYTES: usize = 1024 * 1024;
/// Write buffers kept for reuse (fresh 1 MiB buffers cost a memset and page faults each).
pub const SHARD_WRITE_BUFFERS_POOLED_MAX: usize = 64;

static BUFFER_POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A write buffer from the pool, or a new one.
fn take_buffer() -> Vec<u8> {
    let pooled = BUFFER_POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop();
    pooled.unwrap_or_else(|| vec![0u8; SHARD_WRITE_CHUNK_BYTES + DIRECT_IO_ALIGN_BYTES])
}

/// Returns a write buffer to the pool (dropped when the pool is full).
fn return_buffer(buf: Vec<u8>) {
    let mut pool = BUFFER_POOL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if pool.len() < SHARD_WRITE_BUFFERS_POOLED_MAX {
        pool.push(buf);
    }
}

const _: () = assert!(SHARD_WRITE_CHUNK_BYTES.is_multiple_of(DIRECT_IO_ALIGN_BYTES));

/// An append-only shard file writer.
#[derive(Debug)]
pub struct ShardFileWriter {
    path: PathBuf,
    /// Opened on first need.
    file: Option<File>,
    /// Whether the open file bypasses the page cache (known once opened).
    direct: bool,
    /// Backing memory; the aligned window `buf[start..start + SHARD_WRITE_CHUNK_BYTES]` is used.
    buf: Vec<u8>,
    start: usize,
    /// Bytes waiting in the window.
    pending: usize,
    /// Bytes already written to the file (a multiple of the alignment while direct).
    file_len: u64,
}

impl ShardFileWriter {
    /// A writer for `path` (which must not exist). Nothing touches the filesystem until the
    /// first buffer is written out or the writer is finished: a small shard file costs one
    /// trip to the blocking pool (at commit), not two.
    pub fn new(path: PathBuf) -> ShardFileWriter {
        // Old bytes in a pooled buffer are never written: only `pending` bytes and an explicitly
        // zeroed tail are.
        let buf = take_buffer();
        let misalign = buf.as_ptr() as usize % DIRECT_IO_ALIGN_BYTES;
        let start = (DIRECT_IO_ALIGN_BYTES - misalign) % DIRECT_IO_ALIGN_BYTES;
        ShardFileWriter {
            path,
            file: None,
            direct: false,
            buf,
            start,
            pending: 0,
            file_len: 0,
        }
    }

    /// How many more bytes fit before the buffer must be written out.
    pub fn room(&self) -> usize {
        SHARD_WRITE_CHUNK_BYTES - self.pending
    }

    /// Appends `data` to the buffer only; `data.len()` must be at most [`Self::room`].
    pub fn buffer(&mut self, data: &[u8]) {
        assert!(data.len() <= self.room(), "buffer() past the window");
        let at = self.start + self.pending;
        self.buf[at..at + data.len()].copy_from_slice(data);
        self.pending += data.len();
    }

    /// Appends `data`, writing full buffers to the file (blocking).
    pub fn append(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = data.len().min(self.room());
            self.buffer(&data[..n]);
            data = &data[n..];
            if self.room() == 0 {
                self.write_window(SHARD_WRITE_CHUNK_BYTES)?;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and sets the file to its exact length (blocking), then closes
    /// it. The file is not synced: the caller makes it durable (see `fs_sync`).
    pub fn finish(mut self) -> io::Result<()> {
        // Even an empty shard file exists once finished.
        self.open()?;
        let exact_len = self.file_len + self.pending as u64;
        if self.pending > 0 {
            let padded = if self.direct {
                self.pending.next_multiple_of(DIRECT_IO_ALIGN_BYTES)
            } else {
                self.pending
            };
            let at = self.start + self.pending;
            self.buf[at..self.start + padded].fill(0);
            self.write_window(padded)?;
        }
        if self.file_len != exact_len {
            self.open()?.set_len(exact_len)?;
        }
        Ok(())
    }

    /// Creates the file, with `O_DIRECT` when the filesystem supports it.
    fn open(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let direct_flags = rustix::fs::OFlags::DIRECT.bits() as i32;
            let options = || {
                let mut options = File::options();
                options.write(true).create_new(true);
                options
            };
            let (file, direct) = match options().custom_flags(direct_flags).open(&self.path) {
                Ok(file) => (file, true),
                Err(err) if err.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                    // Not supported here; the failed open may have created the file.
                    let _ = std::fs::remove_file(&self.path);
                    (options().open(&self.path)?, false)
                }
                Err(err) => return Err(err),
            };
            self.direct = direct;
            self.file = Some(file);
        }
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("shard file not open"))
    }

    fn write_window(&mut self, len: usize) -> io::Result<()> {
        debug_assert!(
            !self.direct
                || (len.is_multiple_of(DIRECT_IO_ALIGN_BYTES)
                    && self.file_len.is_multiple_of(DIRECT_IO_ALIGN_BYTES as u64))
        );
        self.open()?;
        let (Some(file), window) = (&self.file, &self.buf[self.start..self.start + len]) else {
            return Err(io::Error::other("shard file not open"));
        };
        file.write_all_at(window, self.file_len)?;
        self.file_len += len as u64;
        self.pending = 0;
        Ok(())
    }
}

impl Drop for ShardFileWriter {
    fn drop(&mut self) {
        return_buffer(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sizes: &[usize]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard");
        let mut writer = ShardFileWriter::new(path.clone());
        let mut expected = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*size).map(|b| (b * 7 + i) as u8).collect();
            writer.append(&data).unwrap();
            expected.extend_from_slice(&data);
        }
        writer.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected, "sizes {sizes:?}");
    }

    #[test]
    fn exact_content_for_any_sizes() {
        check(&[]);
        check(&[1]);
        check(&[4096]);
        check(&[4095, 2]);
        check(&[SHARD_WRITE_CHUNK_BYTES]);
        check(&[SHARD_WRITE_CHUNK_BYTES - 1, 1, 1]);
        check(&[524_296, 524_296, 524_296, 100]);
        check(&[3 * SHARD_WRITE_CHUNK_BYTES + 17]);
    }
}
