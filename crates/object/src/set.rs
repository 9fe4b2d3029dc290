//! One erasure set: its drives, its coder, and the quorum rules for its data and records.
//!
//! **Invariant:** data is durable on write-quorum drives (shard files committed) before any
//! record pointing at it is committed; a record is acknowledged only when write-quorum drives
//! committed it.
//!
//! **Invariant:** a version is visible only when read-quorum drives agree on it (same version
//! id and modification time, which are part of the record key).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::future::join_all;
use sha2::Digest as _;
use strata_drive::{DataDirId, Drive, DriveError, MetaEntry, MetaOp, ScanRange, ShardWrite, Table};
use strata_erasure::{BLOCK_SIZE_BYTES, Erasure, ErasureError};

use crate::api::{PART_SIZE_BYTES_MAX, PutOptions, PutStream};
use crate::body_md5::BodyMd5;
use crate::checksum::{BodyChecksum, ChecksumAlgorithm};
use crate::error::{ObjectError, ObjectResult};
use crate::record::{self, PartRecordRef, VersionRecord};
use crate::slot::DriveSlot;

/// Largest shard of a single-block object that is stored inline in the metadata record
/// instead of in a shard file.
pub const INLINE_SHARD_BYTES_MAX: usize = 128 * 1024;
/// Entries read per drive per scan call when resolving one key's versions.
pub const VERSION_SCAN_BATCH: u32 = 256;

const _: () = assert!(INLINE_SHARD_BYTES_MAX <= BLOCK_SIZE_BYTES);

/// An erasure set.
#[derive(Debug)]
pub struct ErasureSet {
    /// Drives by index in the set (the slots below, as `Drive`s).
    pub drives: Vec<Arc<dyn Drive>>,
    /// The slots, for health tracking and drive replacement.
    pub slots: Vec<Arc<DriveSlot>>,
    /// The coder for this set's layout.
    pub erasure: Erasure,
}

/// What [`ErasureSet::write_data`] stored.
#[derive(Debug)]
pub struct WrittenData {
    /// Bytes stored (the bytes received, unless sealed).
    pub size: u64,
    /// The ETag to record: the hex MD5, or what the sealer derives from it.
    pub etag: String,
    /// How the bytes were sealed, when they were: geometry, content size, header.
    pub sealed: Option<record::SealedPart>,
    /// The stored checksum's algorithm and the bytes' digest with it.
    pub checksum: (ChecksumAlgorithm, Vec<u8>),
    /// Framed shard per shard index, when the data is small enough to be inline.
    pub inline: Option<Vec<Bytes>>,
    /// The data directory holding shard files, when not inline and not empty.
    pub data_dir: Option<DataDirId>,
    /// Which drives hold the data durably (all, for inline and empty data).
    pub ok: Vec<bool>,
}

/// A version resolved across the set: the record and which drives hold it.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The record (from the holder with the newest metadata; only `shard_idx` differs
    /// between holders that took every in-place metadata change).
    pub record: VersionRecord,
    /// The record's `Objects` key.
    pub key: Vec<u8>,
    /// `(drive_idx, shard_idx)` of each drive holding it.
    pub holders: Vec<(usize, u32)>,
}

impl ErasureSet {
    /// Number of drives.
    pub fn n_drives(&self) -> usize {
        self.drives.len()
    }

    /// Drives needed to read.
    pub fn read_quorum(&self) -> usize {
        self.erasure.layout().read_quorum()
    }

    /// Drives needed to write.
    pub fn write_quorum(&self) -> usize {
        self.erasure.layout().write_quorum()
    }

    /// Memory a streaming write of `size` bytes (unknown: up to a part's maximum) holds at
    /// most: the block being filled, the encoded shards of it and of the write-ahead blocks, a
    /// write buffer per drive, and a block queued for the ETag hasher. Zero for data stored
    /// inline (or empty), which takes no shard files.
    pub fn put_memory_bytes(&self, size: Option<u64>) -> u64 {
        let block = size.unwrap_or(u64::MAX).min(BLOCK_SIZE_BYTES as u64);
        let inline = size.is_some_and(|size| {
            size <= BLOCK_SIZE_BYTES as u64 && self.erasure.shard_len(size as usize) <= INLINE_SHARD_BYTES_MAX
        });
        if inline {
            return 0;
        }
        let write_buffers = self.n_drives() as u64 * strata_drive::SHARD_WRITE_BUFFER_BYTES;
        2 * block + (1 + WRITE_AHEAD_BLOCKS as u64) * self.encoded_bytes(block) + write_buffers
    }

    /// Bytes of the framed shards of all drives for a block of `block_bytes`.
    fn encoded_bytes(&self, block_bytes: u64) -> u64 {
        let n_data = self.erasure.layout().n_data() as u64;
        block_bytes
            .saturating_mul(self.n_drives() as u64)
            .div_ceil(n_data.max(1))
    }

    /// Memory a GET streaming `length` bytes holds at most: the shards of the block being
    /// read and decoded, the read-ahead blocks, and two blocks on their way to the client (the
    /// one the HTTP layer is writing and the one the response stream holds). Zero for what fits
    /// in one small block.
    pub fn get_memory_bytes(&self, length: u64) -> u64 {
        if length <= INLINE_SHARD_BYTES_MAX as u64 {
            return 0;
        }
        let block = length.min(BLOCK_SIZE_BYTES as u64);
        self.encoded_bytes(block) + (3 + crate::stream::READ_AHEAD_BLOCKS as u64) * block
    }

    /// The error for a write that only `got` drives accepted: [`ObjectError::StorageFull`]
    /// when the drives that are full would have made up the quorum, else
    /// [`ObjectError::WriteQuorum`].
    pub fn write_quorum_error(&self, got: usize) -> ObjectError {
        let needed = self.write_quorum();
        let n_full = self.slots.iter().filter(|slot| slot.is_full()).count();
        if n_full > 0 && got + n_full >= needed {
            ObjectError::StorageFull { needed, got }
        } else {
            ObjectError::WriteQuorum { needed, got }
        }
    }

    /// [`Self::write_quorum_error`] for an error that may be a write quorum loss.
    pub fn explain_write_error(&self, err: ObjectError) -> ObjectError {
        match err {
            ObjectError::WriteQuorum { got, .. } => self.write_quorum_error(got),
            other => other,
        }
    }

    /// Shard index each drive holds for an object named `name`: a rotation, so that data and
    /// parity shards (and with them read load) spread over all drives.
    pub fn distribution(&self, name: &str) -> Vec<u32> {
        let n = self.n_drives();
        let rotation = (crc32c::crc32c(name.as_bytes()) as usize) % n;
        (0..n)
            .map(|drive_idx| ((drive_idx + rotation) % n) as u32)
            .collect()
    }

    /// Commits `ops()` on every drive of the set; `WriteQuorum` unless write quorum of them
    /// succeeded (the others are left to healing).
    pub async fn commit_on_quorum(&self, ops: impl Fn() -> Vec<MetaOp>) -> ObjectResult<()> {
        let results = join_all(self.drives.iter().map(|d| d.meta_commit(ops()))).await;
        let n_ok = results.iter().filter(|r| r.is_ok()).count();
        if n_ok < self.write_quorum() {
            return Err(self.write_quorum_error(n_ok));
        }
        Ok(())
    }

    /// Streams `body` into shards on every drive (or inline, when `allow_inline` and it is
    /// small), checking size and digests (MD5, SHA-256, the checksum the client sent) and
    /// computing the checksum to store with the `store` algorithm.
    /// Shard files are committed (durable) on write-quorum drives when this returns `Ok`.
    pub async fn write_data(
        &self,
        mut body: PutStream,
        opts: &mut PutOptions,
        part_number: u32,
        distribution: &[u32],
        allow_inline: bool,
        store: ChecksumAlgorithm,
    ) -> ObjectResult<WrittenData> {
        let n_drives = self.n_drives();
        let mut md5 = BodyMd5::new();
        let sent = opts.checksum.as_ref();
        let mut checksums = BodyChecksum::new(&[store, sent.map_or(store, |s| s.algorithm)]);
        let mut sha256 = opts.content_sha256.map(|_| sha2::Sha256::new());
        let size_max = opts.size.unwrap_or(PART_SIZE_BYTES_MAX).min(PART_SIZE_BYTES_MAX);
        let block_capacity = usize::try_from(size_max)
            .unwrap_or(BLOCK_SIZE_BYTES)
            .min(BLOCK_SIZE_BYTES);
        let mut block = BytesMut::with_capacity(block_capacity);
        // The block filled last (the hasher thread may still be reading it).
        let mut last_block = Bytes::new();
        let mut leftover: Option<Bytes> = None;
        let mut total: u64 = 0;
        let mut stored_total: u64 = 0;
        let mut sink: Option<ShardSink> = None;
        let data_dir = DataDirId::new_random();
        let mut sealer = opts.sealer.take();
        // Content per block: a stored block's worth, or for sealed content as many whole
        // packages as seal into one stored block (so each content block seals into one stored
        // block, and reads meet whole packages).
        let content_block = sealer.as_ref().map_or(BLOCK_SIZE_BYTES, |s| {
            let g = s.geometry();
            let per_block = (BLOCK_SIZE_BYTES as u64 / g.sealed_package().max(1)).max(1);
            usize::try_from(per_block * u64::from(g.package)).unwrap_or(BLOCK_SIZE_BYTES)
        });
        // Sealed bytes not yet cut into a stored block.
        let mut sealed = BytesMut::new();
        // The stored blocks of the current content block (one, unless sealing overflows it).
        let mut stored: Vec<Bytes> = Vec::with_capacity(2);

        let result: ObjectResult<()> = async {
            loop {
                let eof = fill_block(&mut body, &mut block, &mut leftover, content_block).await?;
                total += block.len() as u64;
                if total > size_max {
                    return Err(match opts.size {
                        Some(expected) => ObjectError::IncompleteBody { expected, got: total },
                        None => ObjectError::EntityTooLarge {
                            size_bytes: total,
                            max_bytes: size_max,
                        },
                    });
                }
                // The block goes to the MD5 hasher whole; the next one fills a new buffer.
                last_block = std::mem::replace(&mut block, BytesMut::with_capacity(block_capacity)).freeze();
                md5.update(last_block.clone()).await;
                checksums.update(&last_block).await?;
                if let Some(sha) = sha256.as_mut() {
                    sha.update(&last_block);
                }
                stored.clear();
                match sealer.as_mut() {
                    None => stored.push(last_block.clone()),
                    Some(sealer) => {
                        sealer
                            .seal(&last_block, eof, &mut sealed)
                            .map_err(ObjectError::BodyRead)?;
                        while sealed.len() >= BLOCK_SIZE_BYTES {
                            stored.push(sealed.split_to(BLOCK_SIZE_BYTES).freeze());
                        }
                        if eof && !sealed.is_empty() {
                            stored.push(sealed.split().freeze());
                        }
                    }
                }
                stored_total += stored.iter().map(|b| b.len() as u64).sum::<u64>();
                let small = match stored.as_slice() {
                    [] => true,
                    [only] => {
                        only.is_empty()
                            || (allow_inline && self.erasure.shard_len(only.len()) <= INLINE_SHARD_BYTES_MAX)
                    }
                    _ => false,
                };
                if eof && sink.is_none() && small {
                    // Everything fits in one small block: empty or inline data need no shard files.
                    last_block = stored.pop().unwrap_or_default();
                    return Ok(());
                }
                let sink = match sink.as_mut() {
                    Some(sink) => sink,
                    None => {
                        let writers = self.create_writers(data_dir, part_number).await?;
                        // A single block gains nothing from a writer task; longer bodies
                        // overlap encoding with the drives' writes.
                        sink.insert(if eof {
                            ShardSink::Direct(writers)
                        } else {
                            ShardSink::Piped(ShardPipeline::start(
                                writers,
                                distribution.to_vec(),
                                self.write_quorum(),
                            ))
                        })
                    }
                };
                for stored_block in stored.drain(..).filter(|b| !b.is_empty()) {
                    let framed =
                        crate::metrics::timed(crate::metrics::ErasureOp::Encode, stored_block.len(), || {
                            self.erasure.encode_block_framed(&stored_block)
                        })?;
                    sink.send(framed, distribution, self.write_quorum()).await?;
                }
                if eof {
                    return Ok(());
                }
            }
        }
        .await;

        let fail = |writers: Option<Vec<Option<Box<dyn ShardWrite>>>>, err: ObjectError| async move {
            abort_writers(writers).await;
            Err(self.explain_write_error(err))
        };
        // Wait for the drives to take every block sent; the writer task's error, if any, is the
        // real cause of a failure here.
        let writers = match sink {
            None => None,
            Some(sink) => match sink.finish().await {
                (writers, Ok(())) => writers,
                (writers, Err(err)) => return fail(writers, err).await,
            },
        };
        if let Err(err) = result {
            return fail(writers, err).await;
        }
        if let Some(expected) = opts.size
            && expected != total
        {
            return fail(writers, ObjectError::IncompleteBody { expected, got: total }).await;
        }
        let md5 = match md5.finalize().await {
            Ok(md5) => md5,
            Err(err) => return fail(writers, err).await,
        };
        if let Some(expected) = opts.content_md5
            && expected != md5
        {
            return fail(writers, ObjectError::BadDigest).await;
        }
        if let (Some(expected), Some(sha)) = (opts.content_sha256, sha256) {
            let got: [u8; 32] = sha.finalize().into();
            if got != expected {
                return fail(writers, ObjectError::Sha256Mismatch).await;
            }
        }
        let digests = match checksums.finalize().await {
            Ok(digests) => digests,
            Err(err) => return fail(writers, err).await,
        };
        let digest_of = |algorithm: ChecksumAlgorithm| {
            digests
                .iter()
                .find(|(a, _)| *a == algorithm)
                .map(|(_, d)| d.clone())
                .unwrap_or_default()
        };
        if let Some(sent) = sent
            && let Err(err) = sent.verify(&digest_of(sent.algorithm))
        {
            return fail(writers, err).await;
        }
        let checksum = (store, digest_of(store));
        let (etag, sealed) = match &sealer {
            None => (hex::encode(md5), None),
            Some(sealer) => (
                sealer.etag(&md5),
                Some(record::SealedPart {
                    geometry: sealer.geometry(),
                    plain_size: total,
                    header: sealer.header(),
                }),
            ),
        };

        let Some(writers) = writers else {
            // Small or empty: the last (only) block is `last_block`.
            let inline = if last_block.is_empty() {
                None
            } else {
                Some(crate::metrics::timed(
                    crate::metrics::ErasureOp::Encode,
                    last_block.len(),
                    || self.erasure.encode_block_framed(&last_block),
                )?)
            };
            debug_assert!(inline.as_ref().is_none_or(|shards| shards.len() == n_drives));
            return Ok(WrittenData {
                size: stored_total,
                etag,
                sealed,
                checksum,
                inline,
                data_dir: None,
                ok: vec![true; n_drives],
            });
        };

        let commits = join_all(writers.into_iter().map(|writer| async move {
            match writer {
                Some(writer) => writer.commit().await.is_ok(),
                None => false,
            }
        }))
        .await;
        let n_ok = commits.iter().filter(|ok| **ok).count();
        if n_ok < self.write_quorum() {
            self.delete_data_dirs(&[data_dir], &commits).await;
            return Err(self.write_quorum_error(n_ok));
        }
        Ok(WrittenData {
            size: stored_total,
            etag,
            sealed,
            checksum,
            inline: None,
            data_dir: Some(data_dir),
            ok: commits,
        })
    }

    async fn create_writers(
        &self,
        dir: DataDirId,
        part: u32,
    ) -> ObjectResult<Vec<Option<Box<dyn ShardWrite>>>> {
        let writers: Vec<Option<Box<dyn ShardWrite>>> = join_all(
            self.drives
                .iter()
                .map(|drive| async move { drive.shard_create(dir, part).await.ok() }),
        )
        .await;
        let n_ok = writers.iter().filter(|w| w.is_some()).count();
        if n_ok < self.write_quorum() {
            abort_writers(Some(writers)).await;
            return Err(self.write_quorum_error(n_ok));
        }
        Ok(writers)
    }

    /// Removes data directories from the drives where `on[drive_idx]` (best effort).
    pub async fn delete_data_dirs(&self, dirs: &[DataDirId], on: &[bool]) {
        if dirs.is_empty() {
            return;
        }
        join_all(self.drives.iter().zip(on).filter(|(_, on)| **on).map(|(drive, _)| async move {
            for dir in dirs {
                if let Err(err) = drive.data_dir_delete(*dir).await {
                    tracing::warn!(drive = drive.endpoint(), %dir, %err, "removing a data directory failed");
                }
            }
        }))
        .await;
    }

    /// Every version record of `bucket/key` on each drive, newest first (`Err` for drives that
    /// failed to answer).
    pub async fn scan_versions(&self, bucket: &str, key: &str) -> Vec<Result<Vec<MetaEntry>, DriveError>> {
        let prefix = record::object_prefix(bucket, key);
        join_all(
            self.drives
                .iter()
                .map(|drive| scan_all(drive.as_ref(), Table::Objects, &prefix)),
        )
        .await
    }

    /// Resolves the versions of `bucket/key` agreed by read quorum, newest first.
    /// Drives still healing after a replacement count as not answering: they may lack
    /// versions that exist.
    pub async fn resolve_versions(&self, bucket: &str, key: &str) -> ObjectResult<Vec<Resolved>> {
        let mut per_drive = self.scan_versions(bucket, key).await;
        for (slot, result) in self.slots.iter().zip(per_drive.iter_mut()) {
            if slot.is_healing() {
                *result = Err(DriveError::Offline {
                    endpoint: slot.endpoint().to_string(),
                });
            }
        }
        let resolved = resolve(&per_drive, self.read_quorum(), bucket.len() + 1)?;
        if let Some(got) = undecided_version(&per_drive, self.read_quorum(), self.write_quorum()) {
            // A version too few answering drives hold, which the silent ones may complete to a
            // write quorum: it may have been acknowledged, so "not there" would be a guess.
            return Err(ObjectError::ReadQuorum {
                needed: self.read_quorum(),
                got,
            });
        }
        Ok(resolved)
    }

    /// Reads the inline framed shards of a resolved version, by shard index.
    pub async fn read_inline(&self, resolved: &Resolved) -> Vec<Option<Bytes>> {
        let mut framed = vec![None; self.n_drives()];
        let reads = join_all(resolved.holders.iter().map(|&(drive_idx, shard_idx)| {
            let drive = self.drives[drive_idx].clone();
            let key = resolved.key.clone();
            async move { (shard_idx, drive.meta_get(Table::InlineData, &key).await) }
        }))
        .await;
        for (shard_idx, result) in reads {
            match result {
                Ok(Some(bytes)) => framed[shard_idx as usize] = Some(bytes),
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "reading inline data failed"),
            }
        }
        framed
    }
}

/// Encoded blocks waiting for the drives while the next block is read, hashed and encoded.
pub const WRITE_AHEAD_BLOCKS: usize = 1;

/// The shard writes of one PUT, running beside it: the request task reads, hashes and encodes
/// block N+1 while the drives take block N, with at most [`WRITE_AHEAD_BLOCKS`] blocks
/// waiting. Dropping it (a cancelled request) lets the task finish the block in hand and drop
/// the writers, which removes their temp files.
struct ShardPipeline {
    tx: tokio::sync::mpsc::Sender<Vec<Bytes>>,
    task: tokio::task::JoinHandle<(ShardWriters, ObjectResult<()>)>,
}

/// Where a PUT's framed shards go: straight to the writers, or through a writer task.
enum ShardSink {
    Direct(ShardWriters),
    Piped(ShardPipeline),
}

impl ShardSink {
    async fn send(
        &mut self,
        framed: Vec<Bytes>,
        distribution: &[u32],
        write_quorum: usize,
    ) -> ObjectResult<()> {
        match self {
            ShardSink::Direct(writers) => write_shards(writers, &framed, distribution, write_quorum).await,
            ShardSink::Piped(pipe) => match pipe.send(framed).await {
                true => Ok(()),
                // The writer task stopped on an error; `finish` reports it.
                false => Err(ObjectError::WriteQuorum {
                    needed: write_quorum,
                    got: 0,
                }),
            },
        }
    }

    async fn finish(self) -> (Option<ShardWriters>, ObjectResult<()>) {
        match self {
            ShardSink::Direct(writers) => (Some(writers), Ok(())),
            ShardSink::Piped(pipe) => pipe.finish().await,
        }
    }
}

/// One shard writer per drive of the set; `None` where the drive failed.
type ShardWriters = Vec<Option<Box<dyn ShardWrite>>>;

impl ShardPipeline {
    fn start(
        mut writers: Vec<Option<Box<dyn ShardWrite>>>,
        distribution: Vec<u32>,
        write_quorum: usize,
    ) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(WRITE_AHEAD_BLOCKS);
        let task = tokio::spawn(async move {
            while let Some(framed) = rx.recv().await {
                if let Err(err) = write_shards(&mut writers, &framed, &distribution, write_quorum).await {
                    return (writers, Err(err));
                }
            }
            (writers, Ok(()))
        });
        ShardPipeline { tx, task }
    }

    /// Hands a block's framed shards to the writer task; `false` when it stopped on an error.
    async fn send(&self, framed: Vec<Bytes>) -> bool {
        self.tx.send(framed).await.is_ok()
    }

    /// Waits until every block sent is written; gives the writers back (unless the task died).
    async fn finish(self) -> (Option<ShardWriters>, ObjectResult<()>) {
        drop(self.tx);
        match self.task.await {
            Ok((writers, result)) => (Some(writers), result),
            Err(err) => (
                None,
                Err(ObjectError::Corrupt {
                    what: format!("the shard writer task failed: {err}"),
                }),
            ),
        }
    }
}

/// Appends one block's framed shards to each drive's writer (shard `distribution[i]` to drive
/// `i`); a drive that fails is dropped from the write. Fails below write quorum.
async fn write_shards(
    writers: &mut [Option<Box<dyn ShardWrite>>],
    framed: &[Bytes],
    distribution: &[u32],
    write_quorum: usize,
) -> ObjectResult<()> {
    assert_eq!(framed.len(), writers.len(), "one shard per drive");
    let results = join_all(writers.iter_mut().enumerate().map(|(drive_idx, slot)| {
        let shard = framed[distribution[drive_idx] as usize].clone();
        async move {
            match slot {
                Some(writer) => writer.write(shard).await.is_ok(),
                None => false,
            }
        }
    }))
    .await;
    for (slot, ok) in writers.iter_mut().zip(&results) {
        if !ok && let Some(writer) = slot.take() {
            // The drive failed mid-write: drop its partial file.
            let _ = writer.abort().await;
        }
    }
    let n_ok = writers.iter().filter(|w| w.is_some()).count();
    if n_ok < write_quorum {
        return Err(ObjectError::WriteQuorum {
            needed: write_quorum,
            got: n_ok,
        });
    }
    Ok(())
}

/// Reads every entry with `prefix` from one drive, in batches.
pub async fn scan_all(drive: &dyn Drive, table: Table, prefix: &[u8]) -> Result<Vec<MetaEntry>, DriveError> {
    let mut out: Vec<MetaEntry> = Vec::new();
    loop {
        let range = ScanRange {
            prefix: prefix.to_vec(),
            start: out.last().map(|e| e.key.to_vec()).unwrap_or_default(),
            start_exclusive: !out.is_empty(),
            limit: VERSION_SCAN_BATCH,
            keys_only: false,
        };
        let batch = drive.meta_scan(table, range).await?;
        let done = batch.len() < VERSION_SCAN_BATCH as usize;
        out.extend(batch);
        if done {
            return Ok(out);
        }
    }
}

/// The versions held by at least `read_quorum` drives, newest first: each as the
/// `(drive_idx, entry)` of every drive holding it (the record key names the version: object
/// key, inverted time and version id). Fails when fewer than `read_quorum` drives answered.
pub(crate) fn quorum_runs(
    per_drive: &[Result<Vec<MetaEntry>, DriveError>],
    read_quorum: usize,
) -> ObjectResult<Vec<Vec<(usize, &MetaEntry)>>> {
    let n_answered = per_drive.iter().filter(|r| r.is_ok()).count();
    if n_answered < read_quorum {
        return Err(ObjectError::ReadQuorum {
            needed: read_quorum,
            got: n_answered,
        });
    }
    let mut all: Vec<(usize, &MetaEntry)> = per_drive
        .iter()
        .enumerate()
        .filter_map(|(drive_idx, entries)| Some((drive_idx, entries.as_ref().ok()?)))
        .flat_map(|(drive_idx, entries)| entries.iter().map(move |e| (drive_idx, e)))
        .collect();
    all.sort_by(|a, b| a.1.key.cmp(&b.1.key).then(a.0.cmp(&b.0)));
    Ok(all
        .chunk_by(|a, b| a.1.key == b.1.key)
        .filter(|run| run.len() >= read_quorum)
        .map(<[_]>::to_vec)
        .collect())
}

/// The holder count of a version that fewer than `read_quorum` answering drives hold but that,
/// with the drives that did not answer, may have reached `write_quorum` (and so may have been
/// acknowledged); `None` when every version is decided: held by read quorum, or too rare to
/// have ever been written with quorum (a failed write's leftovers).
pub(crate) fn undecided_version(
    per_drive: &[Result<Vec<MetaEntry>, DriveError>],
    read_quorum: usize,
    write_quorum: usize,
) -> Option<usize> {
    let n_silent = per_drive.iter().filter(|r| r.is_err()).count();
    if n_silent == 0 {
        return None;
    }
    let mut keys: Vec<&[u8]> = per_drive
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .flatten()
        .map(|e| e.key.as_ref())
        .collect();
    keys.sort_unstable();
    keys.chunk_by(|a, b| a == b)
        .map(<[_]>::len)
        .filter(|&held| held < read_quorum && held + n_silent >= write_quorum)
        .max()
}

/// Groups per-drive version entries by their key (version id and time) and keeps those held
/// by at least `read_quorum` drives, newest first, with the shard index each holder keeps.
/// Fails when fewer drives answered.
pub fn resolve(
    per_drive: &[Result<Vec<MetaEntry>, DriveError>],
    read_quorum: usize,
    bucket_prefix_len: usize,
) -> ObjectResult<Vec<Resolved>> {
    let mut out = Vec::new();
    for run in quorum_runs(per_drive, read_quorum)? {
        let key = &run[0].1.key;
        if record::split_version_key(&key[bucket_prefix_len.min(key.len())..]).is_none() {
            continue;
        }
        let mut holders = Vec::with_capacity(run.len());
        let mut first: Option<VersionRecord> = None;
        for (drive_idx, entry) in &run {
            match record::decode::<VersionRecord>(&entry.value) {
                Ok(rec) => {
                    holders.push((*drive_idx, rec.shard_idx));
                    // Holders differ only in shard index, unless some missed an in-place
                    // metadata change: the newest metadata wins.
                    if first.as_ref().is_none_or(|f| rec.meta_time_ns > f.meta_time_ns) {
                        first = Some(rec);
                    }
                }
                Err(err) => tracing::warn!(drive_idx, %err, "undecodable version record"),
            }
        }
        if let Some(record) = first
            && holders.len() >= read_quorum
        {
            out.push(Resolved {
                record,
                key: key.to_vec(),
                holders,
            });
        }
    }
    Ok(out)
}

/// Fills `block` up to [`BLOCK_SIZE_BYTES`] from `leftover` and `body`; returns whether the
/// body is exhausted.
async fn fill_block(
    body: &mut PutStream,
    block: &mut BytesMut,
    leftover: &mut Option<Bytes>,
    block_bytes: usize,
) -> ObjectResult<bool> {
    loop {
        let room = block_bytes.saturating_sub(block.len());
        if room == 0 {
            // A full block; the body may or may not have more. Peek by pulling one chunk.
            if leftover.is_some() {
                return Ok(false);
            }
            match body.next().await {
                None => return Ok(true),
                Some(Err(err)) => return Err(ObjectError::BodyRead(err)),
                Some(Ok(chunk)) => {
                    if !chunk.is_empty() {
                        *leftover = Some(chunk);
                    }
                    continue;
                }
            }
        }
        let chunk = match leftover.take() {
            Some(chunk) => chunk,
            None => match body.next().await {
                None => return Ok(true),
                Some(Err(err)) => return Err(ObjectError::BodyRead(err)),
                Some(Ok(chunk)) => chunk,
            },
        };
        if chunk.len() <= room {
            block.extend_from_slice(&chunk);
        } else {
            let mut chunk = chunk;
            let rest = chunk.split_off(room);
            block.extend_from_slice(&chunk);
            *leftover = Some(rest);
        }
    }
}

async fn abort_writers(writers: Option<Vec<Option<Box<dyn ShardWrite>>>>) {
    let Some(writers) = writers else { return };
    join_all(writers.into_iter().flatten().map(|w| async move {
        let _ = w.abort().await;
    }))
    .await;
}

/// Reads one block of a part from the holders, verifying checksums and reconstructing from
/// parity when a data shard is missing or corrupt. Also says whether anything was damaged or
/// missing (the key then wants healing). `sources[shard_idx]` is the drive holding
/// that shard, if any.
pub async fn read_block(
    erasure: &Erasure,
    sources: &[Option<Arc<dyn Drive>>],
    part: &PartRecordRef,
    block_idx: u64,
) -> ObjectResult<(Bytes, bool)> {
    let layout = erasure.layout();
    let Some(dir) = part.data_dir() else {
        return Err(ObjectError::Corrupt {
            what: format!("part {} has no data directory", part.number),
        });
    };
    let block_len = (part.size - block_idx * BLOCK_SIZE_BYTES as u64).min(BLOCK_SIZE_BYTES as u64) as usize;
    let (offset, framed_len) = erasure.framed_block_span(part.size, block_idx);
    let mut framed: Vec<Option<Bytes>> = vec![None; layout.n_total()];
    let mut tried = vec![false; layout.n_total()];
    // Systematic code: the data shards alone make the block; parity is read only on need.
    let mut wanted: Vec<usize> = (0..layout.n_total())
        .filter(|i| sources[*i].is_some())
        .take(layout.n_data())
        .collect();
    loop {
        let reads = join_all(wanted.iter().map(|&shard_idx| {
            let drive = sources[shard_idx].clone();
            async move {
                let result = match drive {
                    Some(drive) => drive.shard_read(dir, part.number, offset, framed_len).await.ok(),
                    None => None,
                };
                (shard_idx, result)
            }
        }))
        .await;
        for (shard_idx, result) in reads {
            tried[shard_idx] = true;
            framed[shard_idx] = result;
        }
        match crate::metrics::timed(crate::metrics::ErasureOp::Decode, block_len, || {
            erasure.decode_block_framed(&framed, block_len)
        }) {
            Ok(decoded) => {
                if !decoded.corrupt_shards.is_empty() {
                    tracing::warn!(%dir, part = part.number, block_idx, corrupt = ?decoded.corrupt_shards, "bitrot detected; data reconstructed");
                }
                let damaged = !decoded.corrupt_shards.is_empty()
                    || tried
                        .iter()
                        .zip(&framed)
                        .any(|(tried, got)| *tried && got.is_none())
                    || sources.iter().any(Option::is_none);
                return Ok((decoded.data, damaged));
            }
            Err(ErasureError::TooFewShards { needed, got }) => {
                let n_more = needed.saturating_sub(got).max(1);
                wanted = (0..layout.n_total())
                    .filter(|i| !tried[*i] && sources[*i].is_some())
                    .take(n_more)
                    .collect();
                if wanted.is_empty() {
                    return Err(ObjectError::ReadQuorum { needed, got });
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// ETags come from md5-many's kernels (scalar 1.7× md-5 here, `benches/benches/hashes.rs`;
        /// the lanes are checked in `body_md5`); the scalar one must agree with the reference
        /// implementation for any body fed in any chunks.
        #[test]
        fn etag_md5_matches_reference(
            body in proptest::collection::vec(any::<u8>(), 0..300_000),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            use md5::Digest as _;
            let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (body.len() + 1)).collect();
            cuts.sort_unstable();
            let mut ours = md5_many::Md5State::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                ours.update(&body[start..cut]);
                start = cut;
            }
            let ours = ours.finalize();
            let reference: [u8; 16] = md5::Md5::digest(&body).into();
            prop_assert_eq!(ours, reference);
        }
    }

    use super::undecided_version;
    use bytes::Bytes;
    use strata_drive::{DriveError, MetaEntry};

    fn drives(holding: usize, lacking: usize, silent: usize) -> Vec<Result<Vec<MetaEntry>, DriveError>> {
        let entry = MetaEntry {
            key: Bytes::from_static(b"bucket/key\0v1"),
            value: Bytes::new(),
        };
        let mut out: Vec<Result<Vec<MetaEntry>, DriveError>> = Vec::new();
        out.extend((0..holding).map(|_| Ok(vec![entry.clone()])));
        out.extend((0..lacking).map(|_| Ok(Vec::new())));
        out.extend((0..silent).map(|_| {
            Err(DriveError::Offline {
                endpoint: "gone".into(),
            })
        }));
        out
    }

    #[test]
    fn a_version_the_silent_drives_may_complete_is_undecided() {
        // 12+4 (read quorum 12, write quorum 12): written to 12 drives while one node (4
        // drives) was away; that node is back (lacking it) and another is gone.
        assert_eq!(undecided_version(&drives(8, 4, 4), 12, 12), Some(8));
        // Held by read quorum: decided (resolved).
        assert_eq!(undecided_version(&drives(12, 0, 4), 12, 12), None);
        // A failed write's leftovers on 3 drives can never have had write quorum: decided
        // (not there), even with 4 drives silent.
        assert_eq!(undecided_version(&drives(3, 9, 4), 12, 12), None);
        // Every drive answered: whatever read quorum does not hold is not there.
        assert_eq!(undecided_version(&drives(8, 8, 0), 12, 12), None);
    }
}
