//! Listing: a merge of sorted range scans.
//!
//! Each drive's `Objects` table is already in listing order (bucket, key, newest version
//! first). A [`SetLister`] walks all drives of a set in step, groups one object key at a time,
//! and keeps the versions held by read quorum. Record keys name the version (key, time, id), so
//! only one drive's scan carries the records; the others scan keys only and vote, and a version
//! the record drive lacks is read from a drive that holds it. A [`Lister`] merges the sets
//! (their keys are disjoint, placement being by key). Common prefixes are produced by seeking
//! every cursor past the prefix, so a "directory" with a million keys costs one seek, not a
//! million reads.
//!
//! **Invariant:** listing and reading agree: a version is listed exactly when a read would
//! resolve it (the same read-quorum rule, `set::resolve`).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use strata_drive::{Drive, DriveError, MetaEntry, ScanRange, Table};

use crate::api::*;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::{ObjectLayer, object_info};
use crate::record::{self, VersionRecord};
use crate::set::{self, ErasureSet};

/// Entries read from one drive per scan call while listing.
const LIST_SCAN_BATCH: u32 = 512;

/// A position in one drive's ordered `Objects` table.
struct DriveCursor {
    drive: Arc<dyn Drive>,
    buf: VecDeque<MetaEntry>,
    next_start: Vec<u8>,
    start_exclusive: bool,
    exhausted: bool,
    failed: Option<DriveError>,
    /// Scan keys only: the set's other drives only vote on which versions exist.
    keys_only: bool,
}

impl DriveCursor {
    fn needs_fill(&self) -> bool {
        self.buf.is_empty() && !self.exhausted && self.failed.is_none()
    }

    async fn fill(&mut self, scan_prefix: &[u8]) {
        if !self.needs_fill() {
            return;
        }
        let range = ScanRange {
            prefix: scan_prefix.to_vec(),
            start: self.next_start.clone(),
            start_exclusive: self.start_exclusive,
            limit: LIST_SCAN_BATCH,
            keys_only: self.keys_only,
        };
        match self.drive.meta_scan(Table::Objects, range).await {
            Ok(entries) => {
                self.exhausted = entries.len() < LIST_SCAN_BATCH as usize;
                if let Some(last) = entries.last() {
                    self.next_start = last.key.to_vec();
                    self.start_exclusive = true;
                }
                self.buf.extend(entries);
            }
            Err(err) => self.failed = Some(err),
        }
    }

    fn seek(&mut self, start: &[u8]) {
        while self.buf.front().is_some_and(|e| &e.key[..] < start) {
            self.buf.pop_front();
        }
        if self.buf.is_empty()
            && self.failed.is_none()
            && (self.next_start.as_slice() < start || !self.start_exclusive)
        {
            self.next_start = start.to_vec();
            self.start_exclusive = false;
            self.exhausted = false;
        }
    }
}

/// One object key with its versions agreed by read quorum, newest first.
struct KeyVersions {
    key: String,
    versions: Vec<VersionRecord>,
}

/// Walks one set's drives in step.
struct SetLister {
    cursors: Vec<DriveCursor>,
    read_quorum: usize,
    bucket_prefix_len: usize,
    scan_prefix: Vec<u8>,
    bucket: String,
    peeked: Option<KeyVersions>,
}

impl SetLister {
    fn new(set: &ErasureSet, bucket: &str, prefix: &str, quorum: usize) -> Self {
        let mut scan_prefix = record::bucket_prefix(bucket);
        let bucket_prefix_len = scan_prefix.len();
        scan_prefix.extend_from_slice(prefix.as_bytes());
        let mut cursors: Vec<DriveCursor> = set
            .drives
            .iter()
            .zip(&set.slots)
            .map(|(drive, slot)| DriveCursor {
                drive: drive.clone(),
                buf: VecDeque::new(),
                next_start: Vec::new(),
                start_exclusive: false,
                exhausted: false,
                // A healing drive's silence proves nothing; quorum listings skip it (the
                // raw walk of healing must see everything).
                failed: (quorum > 1 && slot.is_healing()).then(|| DriveError::Offline {
                    endpoint: slot.endpoint().to_string(),
                }),
                keys_only: true,
            })
            .collect();
        // One drive's scan carries the records (only one of a version's agreeing copies is
        // decoded); a version that drive lacks is read from a holder (`value_of`).
        if let Some(cursor) = cursors.iter_mut().find(|c| c.failed.is_none()) {
            cursor.keys_only = false;
        }
        SetLister {
            cursors,
            read_quorum: quorum,
            bucket_prefix_len,
            scan_prefix,
            bucket: bucket.to_string(),
            peeked: None,
        }
    }

    async fn fill_all(&mut self) -> ObjectResult<()> {
        let prefix = &self.scan_prefix;
        // Most keys are served from the buffers: only build the fan-out when a refill is due.
        if self.cursors.iter().any(DriveCursor::needs_fill) {
            join_all(self.cursors.iter_mut().map(|c| c.fill(prefix))).await;
        }
        let n_alive = self.cursors.iter().filter(|c| c.failed.is_none()).count();
        if n_alive < self.read_quorum {
            return Err(ObjectError::ReadQuorum {
                needed: self.read_quorum,
                got: n_alive,
            });
        }
        Ok(())
    }

    fn object_key_of<'a>(&self, entry: &'a MetaEntry) -> Option<&'a [u8]> {
        record::split_version_key(entry.key.get(self.bucket_prefix_len..)?).map(|(key, _)| key)
    }

    /// Moves every cursor to the first record key `>= start`.
    fn seek(&mut self, start: &[u8]) {
        if self
            .peeked
            .as_ref()
            .is_some_and(|p| record::object_prefix(&self.bucket, &p.key).as_slice() < start)
        {
            self.peeked = None;
        }
        for cursor in &mut self.cursors {
            cursor.seek(start);
        }
    }

    async fn peek(&mut self, want_all_versions: bool) -> ObjectResult<Option<&KeyVersions>> {
        if self.peeked.is_none() {
            self.peeked = self.next_key(want_all_versions).await?;
        }
        Ok(self.peeked.as_ref())
    }

    fn take(&mut self) -> Option<KeyVersions> {
        self.peeked.take()
    }

    async fn next_key(&mut self, want_all_versions: bool) -> ObjectResult<Option<KeyVersions>> {
        loop {
            self.fill_all().await?;
            let Some(min_key) = self
                .cursors
                .iter()
                .filter_map(|c| c.buf.front())
                .filter_map(|e| self.object_key_of(e))
                .min()
                .map(<[u8]>::to_vec)
            else {
                // Skip malformed entries at the front, if any, or finish.
                let mut skipped = false;
                for cursor in &mut self.cursors {
                    if cursor.buf.front().is_some() {
                        cursor.buf.pop_front();
                        skipped = true;
                    }
                }
                if skipped {
                    continue;
                }
                return Ok(None);
            };
            let mut per_drive: Vec<Result<Vec<MetaEntry>, DriveError>> =
                Vec::with_capacity(self.cursors.len());
            for idx in 0..self.cursors.len() {
                let mut entries = Vec::new();
                loop {
                    let cursor = &mut self.cursors[idx];
                    while let Some(front) = cursor.buf.front() {
                        let key = record::split_version_key(
                            front.key.get(self.bucket_prefix_len..).unwrap_or_default(),
                        )
                        .map(|(k, _)| k);
                        if key != Some(min_key.as_slice()) {
                            break;
                        }
                        if let Some(entry) = cursor.buf.pop_front() {
                            entries.push(entry);
                        }
                    }
                    // A key's versions may continue in the next batch.
                    if cursor.buf.is_empty() && !cursor.exhausted && cursor.failed.is_none() {
                        cursor.fill(&self.scan_prefix).await;
                        if !cursor.buf.is_empty() {
                            continue;
                        }
                    }
                    break;
                }
                let cursor = &self.cursors[idx];
                per_drive.push(match &cursor.failed {
                    Some(_) => Err(DriveError::Offline {
                        endpoint: cursor.drive.endpoint().to_string(),
                    }),
                    None => Ok(entries),
                });
            }
            let versions = self.resolve(&per_drive, want_all_versions).await?;
            if versions.is_empty() {
                continue;
            }
            let Ok(key) = String::from_utf8(min_key) else {
                continue;
            };
            return Ok(Some(KeyVersions { key, versions }));
        }
    }

    /// The versions of one key that read quorum agrees on, newest first (only the newest unless
    /// `want_all_versions`); undecodable records are skipped with a warning.
    async fn resolve(
        &self,
        per_drive: &[Result<Vec<MetaEntry>, DriveError>],
        want_all_versions: bool,
    ) -> ObjectResult<Vec<VersionRecord>> {
        let mut versions = Vec::new();
        for run in set::quorum_runs(per_drive, self.read_quorum)? {
            let value = match run.iter().find(|(_, entry)| !entry.value.is_empty()) {
                Some((_, entry)) => entry.value.clone(),
                None => match self.value_of(&run).await {
                    Some(value) => value,
                    None => continue,
                },
            };
            match record::decode::<VersionRecord>(&value) {
                Ok(rec) => {
                    versions.push(rec);
                    if !want_all_versions {
                        break;
                    }
                }
                Err(err) => tracing::warn!(%err, "undecodable version record"),
            }
        }
        Ok(versions)
    }

    /// Reads the record of a version that only keys-only scans returned, from the first of its
    /// holders that still has it.
    async fn value_of(&self, run: &[(usize, &MetaEntry)]) -> Option<Bytes> {
        for (drive_idx, entry) in run {
            if let Ok(Some(value)) = self.cursors[*drive_idx]
                .drive
                .meta_get(Table::Objects, &entry.key)
                .await
            {
                return Some(value);
            }
        }
        None
    }
}

/// Merges the sets' listers in key order.
struct Lister {
    sets: Vec<SetLister>,
    bucket: String,
    want_all_versions: bool,
}

impl Lister {
    fn new(layer: &ObjectLayer, bucket: &str, prefix: &str, want_all_versions: bool) -> Self {
        Lister {
            sets: layer
                .sets
                .iter()
                .map(|s| SetLister::new(s, bucket, prefix, s.read_quorum()))
                .collect(),
            bucket: bucket.to_string(),
            want_all_versions,
        }
    }

    /// Positions every set at the first object key `>= key`.
    fn seek_key(&mut self, key: &str) {
        let start = record::object_prefix(&self.bucket, key);
        for set in &mut self.sets {
            set.seek(&start);
        }
    }

    /// Positions every set after every key starting with `prefix`.
    fn skip_prefix(&mut self, prefix: &str) -> bool {
        let mut full = record::bucket_prefix(&self.bucket);
        full.extend_from_slice(prefix.as_bytes());
        match record::prefix_successor(&full) {
            Some(start) => {
                for set in &mut self.sets {
                    set.seek(&start);
                }
                true
            }
            None => false,
        }
    }

    /// Positions every set after `key` and all its versions.
    fn skip_key(&mut self, key: &str) {
        let full = record::object_prefix(&self.bucket, key);
        if let Some(start) = record::prefix_successor(&full) {
            for set in &mut self.sets {
                set.seek(&start);
            }
        }
    }

    async fn next(&mut self) -> ObjectResult<Option<KeyVersions>> {
        let mut best: Option<(usize, String)> = None;
        for idx in 0..self.sets.len() {
            if let Some(kv) = self.sets[idx].peek(self.want_all_versions).await?
                && best.as_ref().is_none_or(|(_, key)| kv.key < *key)
            {
                best = Some((idx, kv.key.clone()));
            }
        }
        let Some((first, key)) = best else {
            return Ok(None);
        };
        let mut merged = self.sets[first].take();
        // The same key in another set (pools: an object being moved by a decommission, or two
        // first writes racing into different pools): one entry, versions merged, newest first.
        for idx in first + 1..self.sets.len() {
            let same = self.sets[idx]
                .peek(self.want_all_versions)
                .await?
                .is_some_and(|kv| kv.key == key);
            if same && let (Some(into), Some(more)) = (merged.as_mut(), self.sets[idx].take()) {
                into.versions.extend(more.versions);
                into.versions.sort_by(|a, b| {
                    b.mod_time_ns
                        .cmp(&a.mod_time_ns)
                        .then(b.version_id.cmp(&a.version_id))
                });
                into.versions
                    .dedup_by(|a, b| a.mod_time_ns == b.mod_time_ns && a.version_id == b.version_id);
                if !self.want_all_versions {
                    into.versions.truncate(1);
                }
            }
        }
        Ok(merged)
    }
}

/// Walks every object key of a bucket that any drive holds a version of, whether or not read
/// quorum agrees on it: the scanner and heal sequences must also see dangling versions.
pub struct RawKeyWalker {
    lister: Lister,
}

impl RawKeyWalker {
    /// A walker over `bucket`'s keys starting with `prefix`.
    pub fn new(layer: &ObjectLayer, bucket: &str, prefix: &str) -> Self {
        RawKeyWalker {
            lister: Lister {
                sets: layer
                    .sets
                    .iter()
                    .map(|s| SetLister::new(s, bucket, prefix, 1))
                    .collect(),
                bucket: bucket.to_string(),
                want_all_versions: false,
            },
        }
    }

    /// A walker over the keys held by the sets `sets` only (one pool).
    pub fn in_sets(layer: &ObjectLayer, sets: std::ops::Range<usize>, bucket: &str, prefix: &str) -> Self {
        RawKeyWalker {
            lister: Lister {
                sets: layer.sets[sets]
                    .iter()
                    .map(|s| SetLister::new(s, bucket, prefix, 1))
                    .collect(),
                bucket: bucket.to_string(),
                want_all_versions: false,
            },
        }
    }

    /// The next key, in order.
    pub async fn next_key(&mut self) -> ObjectResult<Option<String>> {
        Ok(self.lister.next().await?.map(|kv| kv.key))
    }
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    let pos = rest.find(delimiter)?;
    Some(&key[..prefix.len() + pos + delimiter.len()])
}

impl ObjectLayer {
    /// Lists the latest version of each key (delete markers hidden), with prefix, delimiter,
    /// marker and page size as in S3's ListObjects.
    pub async fn list_objects(&self, bucket: &str, opts: ListOptions) -> ObjectResult<ListResult> {
        self.bucket_info(bucket).await?;
        let max_keys = opts.max_keys.min(LIST_KEYS_MAX);
        let mut result = ListResult::default();
        let delimiter = opts.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut lister = Lister::new(self, bucket, &opts.prefix, false);
        if let Some(marker) = opts.marker.as_deref().filter(|m| !m.is_empty()) {
            if let Some(cp) = common_prefix(marker, &opts.prefix, delimiter).filter(|cp| *cp == marker) {
                lister.skip_prefix(cp);
            } else {
                lister.skip_key(marker);
            }
        }
        let marker = opts.marker.clone().unwrap_or_default();
        let mut n_returned = 0usize;
        while let Some(kv) = lister.next().await? {
            if let Some(cp) = common_prefix(&kv.key, &opts.prefix, delimiter) {
                let cp = cp.to_string();
                if cp.as_str() <= marker.as_str() && !marker.is_empty() {
                    lister.skip_prefix(&cp);
                    continue;
                }
                if n_returned == max_keys {
                    result.is_truncated = true;
                    break;
                }
                lister.skip_prefix(&cp);
                result.next_marker = Some(cp.clone());
                result.common_prefixes.push(cp);
                n_returned += 1;
                continue;
            }
            let Some(latest) = kv.versions.first() else {
                continue;
            };
            if latest.delete_marker {
                continue;
            }
            if n_returned == max_keys {
                result.is_truncated = true;
                break;
            }
            result.next_marker = Some(kv.key.clone());
            result.objects.push(object_info(bucket, &kv.key, latest, true));
            n_returned += 1;
        }
        if !result.is_truncated {
            result.next_marker = None;
        }
        Ok(result)
    }

    /// Lists all versions and delete markers, newest first within a key, as in S3's
    /// ListObjectVersions.
    pub async fn list_object_versions(
        &self,
        bucket: &str,
        opts: ListVersionsOptions,
    ) -> ObjectResult<ListVersionsResult> {
        self.bucket_info(bucket).await?;
        let max_keys = opts.max_keys.min(LIST_KEYS_MAX);
        let mut result = ListVersionsResult::default();
        let delimiter = opts.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut lister = Lister::new(self, bucket, &opts.prefix, true);
        let key_marker = opts.key_marker.clone().filter(|m| !m.is_empty());
        // Versions of the marker key to skip up to and including this one.
        let mut skip_until_version: Option<Option<uuid::Uuid>> = None;
        if let Some(marker) = key_marker.as_deref() {
            match opts.version_id_marker.as_deref().filter(|v| !v.is_empty()) {
                Some(vid) => {
                    skip_until_version = Some(record::parse_version_id(vid)?);
                    lister.seek_key(marker);
                }
                None => {
                    if let Some(cp) =
                        common_prefix(marker, &opts.prefix, delimiter).filter(|cp| *cp == marker)
                    {
                        lister.skip_prefix(cp);
                    } else {
                        lister.skip_key(marker);
                    }
                }
            }
        }
        let mut n_returned = 0usize;
        'keys: while let Some(kv) = lister.next().await? {
            if let Some(cp) = common_prefix(&kv.key, &opts.prefix, delimiter) {
                let cp = cp.to_string();
                if key_marker.as_deref().is_some_and(|m| cp.as_str() <= m) {
                    lister.skip_prefix(&cp);
                    continue;
                }
                if n_returned == max_keys {
                    result.is_truncated = true;
                    break;
                }
                lister.skip_prefix(&cp);
                result.next_key_marker = Some(cp.clone());
                result.next_version_id_marker = None;
                result.common_prefixes.push(cp);
                n_returned += 1;
                continue;
            }
            let mut versions = kv.versions.iter().enumerate().peekable();
            if key_marker.as_deref() == Some(kv.key.as_str())
                && let Some(until) = skip_until_version
            {
                // Skip up to and including the marker version.
                for (_, v) in versions.by_ref() {
                    if v.version_id == until {
                        break;
                    }
                }
            }
            for (idx, version) in versions {
                if n_returned == max_keys {
                    result.is_truncated = true;
                    break 'keys;
                }
                let info = object_info(bucket, &kv.key, version, idx == 0);
                result.next_key_marker = Some(kv.key.clone());
                result.next_version_id_marker =
                    Some(record::version_id_string(version.version_id).unwrap_or_else(|| "null".into()));
                result.versions.push(info);
                n_returned += 1;
            }
        }
        if !result.is_truncated {
            result.next_key_marker = None;
            result.next_version_id_marker = None;
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "", None), None);
        assert_eq!(common_prefix("a--b--c", "", Some("--")), Some("a--"));
    }
}
