//! Healing: bring every version of a key back to full redundancy on every drive of its set.
//!
//! For each version held by read quorum, healing finds the drives that lack its record or
//! whose shards are missing, short or (in a deep heal) fail their bitrot checksum, rebuilds
//! those shards block by block from the good ones, writes them through the same durable path
//! as a PUT (temp file, fsync, rename), and then writes the record. Records held by fewer than
//! read quorum drives while *every* drive answered can never be read again (an acknowledged
//! write reaches write quorum, which is at least read quorum): they are dangling and removed
//! with their data.
//!
//! **Invariant:** healing holds the key lock, so it never races a PUT or DELETE of that key,
//! and it writes a record only after the shards it points at are durable.
//!
//! **Invariant:** healing never removes a version that read quorum agrees on, and removes
//! dangling ones only when all drives of the set answered.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use serde::Serialize;
use strata_drive::{DataDirId, Drive, MetaEntry, MetaOp, ScanRange, ShardWrite, Table};
use strata_erasure::{Erasure, bitrot};

use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::record::{self, PartRecordRef, VersionRecord};
use crate::set::ErasureSet;

/// How thoroughly to check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealOptions {
    /// Report what would be healed without writing anything.
    pub dry_run: bool,
    /// Read every shard and verify its checksums (finds bitrot), instead of checking that the
    /// shard files exist with the right size.
    pub deep: bool,
}

/// Counters of what a heal found and did; they add up over many objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealCounters {
    /// Keys examined.
    pub objects_scanned: u64,
    /// Keys where something was (or, in a dry run, would be) repaired.
    pub objects_healed: u64,
    /// Keys that could not be healed (too few good shards, drives failing).
    pub objects_failed: u64,
    /// Shard files (or inline shards) rewritten.
    pub shards_healed: u64,
    /// Version records rewritten.
    pub records_healed: u64,
    /// Dangling versions removed.
    pub dangling_removed: u64,
    /// Shard bytes written.
    pub bytes_written: u64,
}

impl HealCounters {
    /// Counts `n_ok` of `n_tried` writes with `count`; any that failed marks the key failed
    /// (a heal never reports a write it could not make).
    fn note_writes(&mut self, n_ok: usize, n_tried: usize, count: impl FnOnce(&mut Self, u64)) {
        count(self, n_ok as u64);
        if n_ok < n_tried {
            self.objects_failed = 1;
        }
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &HealCounters) {
        self.objects_scanned += other.objects_scanned;
        self.objects_healed += other.objects_healed;
        self.objects_failed += other.objects_failed;
        self.shards_healed += other.shards_healed;
        self.records_healed += other.records_healed;
        self.dangling_removed += other.dangling_removed;
        self.bytes_written += other.bytes_written;
    }
}

/// One version's holders: per drive, the entry and its decoded record.
struct Holding {
    key: Vec<u8>,
    holders: Vec<(usize, MetaEntry, VersionRecord)>,
}

impl ObjectLayer {
    /// Heals every version of one key. Returns what was found and done.
    pub async fn heal_object(
        &self,
        bucket: &str,
        key: &str,
        opts: HealOptions,
    ) -> ObjectResult<HealCounters> {
        let _guard = self.lock_key(bucket, key).await?;
        let mut total = HealCounters::default();
        // The key lives in one pool; a key found in several (a write racing a decommission)
        // is healed in each.
        for set in self.candidate_sets(key) {
            let counters = self.heal_in_set(set, bucket, key, opts).await?;
            total.add(&counters);
        }
        total.objects_scanned = 1;
        total.objects_healed = total.objects_healed.min(1);
        Ok(total)
    }

    /// Heals one key's versions within one set. The caller holds the key lock.
    async fn heal_in_set(
        &self,
        set: &crate::set::ErasureSet,
        bucket: &str,
        key: &str,
        opts: HealOptions,
    ) -> ObjectResult<HealCounters> {
        let mut counters = HealCounters {
            objects_scanned: 1,
            ..HealCounters::default()
        };
        let per_drive = set.scan_versions(bucket, key).await;
        // Dangling needs proof: every drive answered and none is still being healed.
        let all_answered = per_drive.iter().all(Result::is_ok) && !set.slots.iter().any(|s| s.is_healing());
        let n_answered = per_drive.iter().filter(|r| r.is_ok()).count();
        if n_answered < set.read_quorum() {
            counters.objects_failed = 1;
            return Ok(counters);
        }
        let mut versions: BTreeMap<Vec<u8>, Holding> = BTreeMap::new();
        for (drive_idx, entries) in per_drive.iter().enumerate() {
            let Ok(entries) = entries else { continue };
            for entry in entries {
                let Ok(rec) = record::decode::<VersionRecord>(&entry.value) else {
                    continue;
                };
                versions
                    .entry(entry.key.to_vec())
                    .or_insert_with(|| Holding {
                        key: entry.key.to_vec(),
                        holders: Vec::new(),
                    })
                    .holders
                    .push((drive_idx, entry.clone(), rec));
            }
        }
        let answered: Vec<bool> = per_drive.iter().map(Result::is_ok).collect();
        let distribution = set.distribution(key);
        let mut changed = false;
        let mut failed = false;
        for holding in versions.values() {
            if holding.holders.len() < set.read_quorum() {
                if all_answered {
                    changed = true;
                    if opts.dry_run || remove_dangling(set, holding).await {
                        counters.dangling_removed += 1;
                    } else {
                        // A drive refused the removal: the version is still there.
                        failed = true;
                    }
                }
                continue;
            }
            match heal_version(set, holding, &answered, &distribution, opts).await {
                Ok(version_counters) => {
                    changed |= version_counters.shards_healed > 0 || version_counters.records_healed > 0;
                    // A write that failed leaves the key short of redundancy: not healed.
                    failed |= version_counters.objects_failed > 0;
                    counters.add(&version_counters);
                }
                Err(err) => {
                    tracing::warn!(bucket, key, %err, "healing a version failed");
                    failed = true;
                }
            }
        }
        counters.objects_healed = u64::from(changed && !failed);
        counters.objects_failed = u64::from(failed);
        Ok(counters)
    }

    /// Removes data directories that no record of their set references (data of writes that
    /// died between their shards and their record, or of versions whose removal was cut
    /// short) once they are older than `age_min` (younger ones may belong to a write in
    /// flight). A set is swept only when every one of its drives answered, so a reference on
    /// an unreachable drive is never overlooked. Returns how many directories were removed.
    pub async fn sweep_orphans(&self, age_min: std::time::Duration) -> ObjectResult<u64> {
        let mut n_removed = 0;
        let now = std::time::SystemTime::now();
        'sets: for set in &self.sets {
            let mut referenced: HashSet<uuid::Uuid> = HashSet::new();
            for drive in &set.drives {
                for table in [Table::Objects, Table::Parts] {
                    if collect_references(drive.as_ref(), table, &mut referenced)
                        .await
                        .is_err()
                    {
                        continue 'sets;
                    }
                }
            }
            for drive in &set.drives {
                let mut after = None;
                loop {
                    let Ok(batch) = drive.data_dir_list(after, ORPHAN_LIST_BATCH).await else {
                        break;
                    };
                    let done = batch.len() < ORPHAN_LIST_BATCH as usize;
                    after = batch.last().map(|e| e.id);
                    for entry in batch {
                        let old_enough = now.duration_since(entry.modified).is_ok_and(|age| age >= age_min);
                        if old_enough
                            && !referenced.contains(&entry.id.0)
                            && drive.data_dir_delete(entry.id).await.is_ok()
                        {
                            tracing::info!(drive = drive.endpoint(), dir = %entry.id, "removed orphaned data");
                            n_removed += 1;
                        }
                    }
                    if done {
                        break;
                    }
                }
            }
        }
        Ok(n_removed)
    }

    /// Makes sure every online drive has every bucket record (a replaced drive starts empty).
    pub async fn heal_buckets(&self) -> ObjectResult<u64> {
        let buckets: Vec<(String, Vec<u8>)> = self.bucket_records_encoded().await;
        let mut n_written = 0;
        for (bucket, _) in &buckets {
            n_written += self.heal_bucket_configs(bucket).await;
        }
        for drive in self.sets.iter().flat_map(|s| s.drives.iter()) {
            let mut ops = Vec::new();
            for (name, value) in &buckets {
                match drive.meta_get(Table::Buckets, name.as_bytes()).await {
                    Ok(Some(_)) => {}
                    Ok(None) => ops.push(MetaOp::put(
                        Table::Buckets,
                        name.as_bytes().to_vec(),
                        value.clone(),
                    )),
                    Err(_) => break,
                }
            }
            if !ops.is_empty() {
                let n = ops.len() as u64;
                if drive.meta_commit(ops).await.is_ok() {
                    n_written += n;
                }
            }
        }
        Ok(n_written)
    }
}

impl ObjectLayer {
    /// Brings every drive's copy of a bucket's configuration blobs (policy, ACL, ownership,
    /// Block Public Access, object lock, tags, CORS) to what the first set's read quorum agrees
    /// on ([`ObjectLayer::get_bucket_config`]): missing or different copies are written, and
    /// copies of a blob the quorum says is gone are removed (a stale Allow must not come back
    /// when the drives that saw its deletion are replaced). Drives that do not answer are
    /// skipped. Returns how many copies changed.
    async fn heal_bucket_configs(&self, bucket: &str) -> u64 {
        let prefix = record::bucket_prefix(bucket);
        let drives: Vec<Arc<dyn Drive>> = self.all_drives().cloned().collect();
        let scans = join_all(
            drives
                .iter()
                .map(|d| crate::set::scan_all(d.as_ref(), Table::BucketConfig, &prefix)),
        )
        .await;
        let held: Vec<Option<BTreeMap<Vec<u8>, Vec<u8>>>> = scans
            .into_iter()
            .map(|scan| {
                scan.ok().map(|entries| {
                    entries
                        .into_iter()
                        .map(|e| (e.key.to_vec(), e.value.to_vec()))
                        .collect()
                })
            })
            .collect();
        let keys: std::collections::BTreeSet<Vec<u8>> =
            held.iter().flatten().flat_map(|m| m.keys().cloned()).collect();
        let mut n_changed = 0;
        let mut ops: Vec<Vec<MetaOp>> = vec![Vec::new(); drives.len()];
        for key in keys {
            let Ok(name) = std::str::from_utf8(&key[prefix.len()..]) else {
                continue;
            };
            let Ok(agreed) = self.get_bucket_config(bucket, name).await else {
                continue;
            };
            for (drive_idx, copies) in held.iter().enumerate() {
                let Some(copies) = copies else { continue };
                match (&agreed, copies.get(&key)) {
                    (Some(value), Some(have)) if have[..] == value[..] => {}
                    (Some(value), _) => {
                        ops[drive_idx].push(MetaOp::put(Table::BucketConfig, key.clone(), value.to_vec()))
                    }
                    (None, Some(_)) => ops[drive_idx].push(MetaOp::delete(Table::BucketConfig, key.clone())),
                    (None, None) => {}
                }
            }
        }
        for (drive, ops) in drives.iter().zip(ops) {
            if ops.is_empty() {
                continue;
            }
            let n = ops.len() as u64;
            match drive.meta_commit(ops).await {
                Ok(()) => n_changed += n,
                Err(err) => {
                    tracing::debug!(drive = drive.endpoint(), %err, "healing bucket configuration failed")
                }
            }
        }
        n_changed
    }
}

/// Data directories listed per call while sweeping orphans.
const ORPHAN_LIST_BATCH: u32 = 1000;
/// Records read per call while collecting references.
const REFERENCE_SCAN_BATCH: u32 = 1000;

/// Adds every data directory the records of `table` on `drive` point at.
async fn collect_references(
    drive: &dyn Drive,
    table: Table,
    into: &mut HashSet<uuid::Uuid>,
) -> ObjectResult<()> {
    let mut start: Vec<u8> = Vec::new();
    loop {
        let range = ScanRange {
            prefix: Vec::new(),
            start: start.clone(),
            start_exclusive: !start.is_empty(),
            limit: REFERENCE_SCAN_BATCH,
            keys_only: false,
        };
        let batch = drive.meta_scan(table, range).await?;
        for entry in &batch {
            match table {
                Table::Parts => {
                    if let Ok(part) = record::decode::<record::PartRecord>(&entry.value) {
                        into.insert(part.data_dir);
                    }
                }
                _ => {
                    if let Ok(rec) = record::decode::<VersionRecord>(&entry.value) {
                        into.extend(rec.parts.iter().filter_map(|p| p.data_dir));
                    }
                }
            }
        }
        match batch.last() {
            Some(last) if batch.len() == REFERENCE_SCAN_BATCH as usize => start = last.key.to_vec(),
            _ => return Ok(()),
        }
    }
}

/// Removes a version held by too few drives from the drives that hold it; whether every
/// removal committed.
async fn remove_dangling(set: &ErasureSet, holding: &Holding) -> bool {
    let mut all_removed = true;
    for (drive_idx, entry, rec) in &holding.holders {
        let drive = &set.drives[*drive_idx];
        let ops = vec![
            MetaOp::delete(Table::Objects, entry.key.to_vec()),
            MetaOp::delete(Table::InlineData, entry.key.to_vec()),
        ];
        if drive.meta_commit_deleting(ops).await.is_ok() {
            for dir in rec.parts.iter().filter_map(PartRecordRef::data_dir) {
                let _ = drive.data_dir_delete(dir).await;
            }
        } else {
            all_removed = false;
        }
    }
    all_removed
}

/// Heals one version held by at least read quorum.
async fn heal_version(
    set: &ErasureSet,
    holding: &Holding,
    answered: &[bool],
    distribution: &[u32],
    opts: HealOptions,
) -> ObjectResult<HealCounters> {
    let mut counters = HealCounters::default();
    let n_drives = set.n_drives();
    // The newest metadata is the truth: holders that missed an in-place change (tags, ACL)
    // get it back first, keeping their shard index.
    let Some(base) = holding
        .holders
        .iter()
        .map(|(_, _, rec)| rec)
        .max_by_key(|rec| rec.meta_time_ns)
        .cloned()
    else {
        return Ok(counters);
    };
    let stale: Vec<usize> = holding
        .holders
        .iter()
        .filter(|(drive_idx, _, rec)| rec.meta_time_ns < base.meta_time_ns && answered[*drive_idx])
        .map(|(drive_idx, _, _)| *drive_idx)
        .collect();
    if !stale.is_empty() {
        if opts.dry_run {
            counters.records_healed += stale.len() as u64;
        } else {
            let shard_idx: Vec<u32> = {
                let mut by_drive = vec![0; n_drives];
                for (drive_idx, _, rec) in &holding.holders {
                    by_drive[*drive_idx] = rec.shard_idx;
                }
                by_drive
            };
            let n_ok = write_records(set, &holding.key, &base, &shard_idx, &stale).await;
            counters.note_writes(n_ok, stale.len(), |c, n| c.records_healed += n);
        }
    }
    // Which shard index each drive holds or should hold.
    let mut shard_of: Vec<u32> = distribution.to_vec();
    let mut has_record = vec![false; n_drives];
    for (drive_idx, _, rec) in &holding.holders {
        shard_of[*drive_idx] = rec.shard_idx;
        has_record[*drive_idx] = true;
    }
    // A drive without the record gets the shard index nobody holds.
    let held: Vec<u32> = holding.holders.iter().map(|(_, _, r)| r.shard_idx).collect();
    let mut free: Vec<u32> = (0..n_drives as u32).filter(|i| !held.contains(i)).collect();
    for drive_idx in 0..n_drives {
        if !has_record[drive_idx] {
            if let Some(pos) = free.iter().position(|s| *s == distribution[drive_idx]) {
                shard_of[drive_idx] = free.remove(pos);
            } else if let Some(s) = free.pop() {
                shard_of[drive_idx] = s;
            }
        }
    }
    let targets_record: Vec<usize> = (0..n_drives)
        .filter(|i| answered[*i] && !has_record[*i])
        .collect();

    if base.delete_marker || base.size == 0 {
        // Nothing but the record.
        if opts.dry_run {
            counters.records_healed += targets_record.len() as u64;
        } else {
            let n_ok = write_records(set, &holding.key, &base, &shard_of, &targets_record).await;
            counters.note_writes(n_ok, targets_record.len(), |c, n| c.records_healed += n);
        }
        return Ok(counters);
    }

    if base.inline {
        let inline = join_all(
            set.drives
                .iter()
                .map(|d| d.meta_get(Table::InlineData, &holding.key)),
        )
        .await;
        let mut framed: Vec<Option<Bytes>> = vec![None; n_drives];
        let mut bad: Vec<usize> = Vec::new();
        for (drive_idx, result) in inline.into_iter().enumerate() {
            if !has_record[drive_idx] {
                continue;
            }
            match result {
                Ok(Some(bytes)) if bitrot::verify(&bytes).is_some() => {
                    framed[shard_of[drive_idx] as usize] = Some(bytes)
                }
                Ok(_) | Err(_) => bad.push(drive_idx),
            }
        }
        let targets: Vec<usize> = bad
            .iter()
            .copied()
            .chain(targets_record.iter().copied())
            .filter(|i| answered[*i])
            .collect();
        if targets.is_empty() {
            return Ok(counters);
        }
        let all = set
            .erasure
            .reconstruct_block_framed(&framed, base.size as usize)?;
        if opts.dry_run {
            counters.shards_healed += targets.len() as u64;
            counters.records_healed += targets_record.len() as u64;
            counters.bytes_written += targets
                .iter()
                .map(|i| all[shard_of[*i] as usize].len() as u64)
                .sum::<u64>();
        } else {
            for drive_idx in targets {
                let mut ops = vec![MetaOp::put(
                    Table::InlineData,
                    holding.key.clone(),
                    all[shard_of[drive_idx] as usize].to_vec(),
                )];
                if !has_record[drive_idx] {
                    let mut rec = base.clone();
                    rec.shard_idx = shard_of[drive_idx];
                    ops.push(MetaOp::put(
                        Table::Objects,
                        holding.key.clone(),
                        record::encode(&rec),
                    ));
                }
                match set.drives[drive_idx].meta_commit(ops).await {
                    Ok(()) => {
                        counters.shards_healed += 1;
                        counters.records_healed += u64::from(!has_record[drive_idx]);
                        counters.bytes_written += all[shard_of[drive_idx] as usize].len() as u64;
                    }
                    Err(err) => {
                        tracing::debug!(drive = set.drives[drive_idx].endpoint(), %err, "writing a healed inline shard failed");
                        counters.objects_failed = 1;
                    }
                }
            }
        }
        return Ok(counters);
    }

    // Shard files, part by part.
    let mut ok_for_record = vec![true; n_drives];
    for part in &base.parts {
        let Some(dir) = part.data_dir() else { continue };
        let expected_size = set.erasure.shard_file_size(part.size);
        let mut needs: Vec<usize> = targets_record.clone();
        for (drive_idx, _, _) in &holding.holders {
            let drive = &set.drives[*drive_idx];
            let good = if opts.deep {
                verify_shard_file(&set.erasure, drive.as_ref(), dir, part).await
            } else {
                drive
                    .shard_size(dir, part.number)
                    .await
                    .is_ok_and(|size| size == expected_size)
            };
            if !good {
                needs.push(*drive_idx);
            }
        }
        needs.retain(|i| answered[*i]);
        if needs.is_empty() {
            continue;
        }
        if opts.dry_run {
            counters.shards_healed += needs.len() as u64;
            counters.bytes_written += expected_size * needs.len() as u64;
            continue;
        }
        let sources: Vec<Option<Arc<dyn Drive>>> = {
            let mut sources = vec![None; n_drives];
            for (drive_idx, _, _) in &holding.holders {
                if !needs.contains(drive_idx) {
                    sources[shard_of[*drive_idx] as usize] = Some(set.drives[*drive_idx].clone());
                }
            }
            sources
        };
        let written = rebuild_part(set, &sources, dir, part, &needs, &shard_of).await?;
        for (drive_idx, ok) in needs.iter().zip(written) {
            if ok {
                counters.shards_healed += 1;
                counters.bytes_written += expected_size;
            } else {
                ok_for_record[*drive_idx] = false;
                counters.objects_failed = 1;
            }
        }
    }
    let targets_record: Vec<usize> = targets_record.into_iter().filter(|i| ok_for_record[*i]).collect();
    if opts.dry_run {
        counters.records_healed += targets_record.len() as u64;
    } else {
        let n_ok = write_records(set, &holding.key, &base, &shard_of, &targets_record).await;
        counters.note_writes(n_ok, targets_record.len(), |c, n| c.records_healed += n);
    }
    Ok(counters)
}

/// Writes the healed record on each target drive; returns how many commits succeeded.
async fn write_records(
    set: &ErasureSet,
    key: &[u8],
    base: &VersionRecord,
    shard_of: &[u32],
    targets: &[usize],
) -> usize {
    let results = join_all(targets.iter().map(|&drive_idx| {
        let mut rec = base.clone();
        rec.shard_idx = shard_of[drive_idx];
        let ops = vec![MetaOp::put(Table::Objects, key.to_vec(), record::encode(&rec))];
        let drive = set.drives[drive_idx].clone();
        async move {
            match drive.meta_commit(ops).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::debug!(drive = drive.endpoint(), %err, "writing a healed record failed");
                    false
                }
            }
        }
    }))
    .await;
    results.into_iter().filter(|ok| *ok).count()
}

/// Reads a whole shard file block by block and checks every checksum.
async fn verify_shard_file(
    erasure: &Erasure,
    drive: &dyn Drive,
    dir: DataDirId,
    part: &PartRecordRef,
) -> bool {
    let n_blocks = Erasure::n_blocks(part.size);
    for block_idx in 0..n_blocks {
        let (offset, len) = erasure.framed_block_span(part.size, block_idx);
        match drive.shard_read(dir, part.number, offset, len).await {
            Ok(framed) if bitrot::verify(&framed).is_some() => {}
            _ => return false,
        }
    }
    drive
        .shard_size(dir, part.number)
        .await
        .is_ok_and(|size| size == erasure.shard_file_size(part.size))
}

/// Rebuilds the shard files of `part` on the drives in `needs` from `sources` (by shard
/// index). Returns, per target, whether its file was committed.
async fn rebuild_part(
    set: &ErasureSet,
    sources: &[Option<Arc<dyn Drive>>],
    dir: DataDirId,
    part: &PartRecordRef,
    needs: &[usize],
    shard_of: &[u32],
) -> ObjectResult<Vec<bool>> {
    let mut writers: Vec<Option<Box<dyn ShardWrite>>> = join_all(
        needs
            .iter()
            .map(|&i| set.drives[i].shard_create(dir, part.number)),
    )
    .await
    .into_iter()
    .map(Result::ok)
    .collect();
    let n_blocks = Erasure::n_blocks(part.size);
    for block_idx in 0..n_blocks {
        let (offset, len) = set.erasure.framed_block_span(part.size, block_idx);
        let block_len = Erasure::block_len(part.size, block_idx);
        let reads = join_all(sources.iter().map(|source| async move {
            match source {
                Some(drive) => drive.shard_read(dir, part.number, offset, len).await.ok(),
                None => None,
            }
        }))
        .await;
        let all = match set.erasure.reconstruct_block_framed(&reads, block_len) {
            Ok(all) => all,
            Err(err) => {
                for writer in writers.into_iter().flatten() {
                    let _ = writer.abort().await;
                }
                return Err(ObjectError::from(err));
            }
        };
        for (slot, &drive_idx) in writers.iter_mut().zip(needs) {
            if let Some(writer) = slot
                && writer
                    .write(all[shard_of[drive_idx] as usize].clone())
                    .await
                    .is_err()
                && let Some(writer) = slot.take()
            {
                let _ = writer.abort().await;
            }
        }
    }
    Ok(join_all(writers.into_iter().map(|w| async move {
        match w {
            Some(w) => w.commit().await.is_ok(),
            None => false,
        }
    }))
    .await)
}
