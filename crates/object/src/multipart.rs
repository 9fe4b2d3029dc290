//! Multipart uploads: parts are erasure coded into shard files of their own data directory as
//! they arrive; completing writes one version record that points at the chosen parts' files,
//! so no data is copied.
//!
//! **Invariant:** an upload's record changes (part records, completion, abort) happen under
//! the object key's lock, so a completion never races an abort or a second completion into
//! two versions sharing the same part files.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use futures::future::join_all;
use md5_many::{Digest, Md5};
use strata_drive::{DataDirId, MetaOp, Table};

use crate::api::*;
use crate::error::{ObjectError, ObjectResult};
use crate::layer::{Admission, NewVersion, ObjectLayer};
use crate::names::check_object_key;
use crate::record::{self, PartRecord, PartRecordRef, UploadRecord};
use crate::set::{self, ErasureSet, WrittenData};

fn strip_quotes(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

fn upload_info(bucket: &str, rec: &UploadRecord) -> UploadInfo {
    UploadInfo {
        bucket: bucket.to_string(),
        key: rec.key.clone(),
        upload_id: rec.upload_id.clone(),
        initiated: record::from_unix_nanos(rec.initiated_ns),
        metadata: rec.metadata.clone(),
        checksum: rec.checksum,
    }
}

/// A part's info; its checksum only when the upload named an algorithm (the CRC64NVME kept
/// for uploads that named none is Strata's own, not something the client asked for).
fn part_info(rec: &PartRecord, upload: &UploadRecord) -> PartInfo {
    PartInfo {
        number: rec.number,
        etag: rec.etag.clone(),
        size: rec.sealed.as_ref().map_or(rec.size, |s| s.plain_size),
        mod_time: record::from_unix_nanos(rec.mod_time_ns),
        checksum: rec.checksum.clone().filter(|_| upload.checksum.is_some()),
    }
}

/// The checksum algorithm and type of a new upload, as asked: the type defaults by algorithm,
/// and must be one the algorithm supports.
fn upload_checksum(spec: Option<&ChecksumSpec>) -> ObjectResult<Option<(ChecksumAlgorithm, ChecksumType)>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let kind = spec
        .kind
        .unwrap_or_else(|| spec.algorithm.default_multipart_type());
    if !spec.algorithm.supports(kind) {
        return Err(ObjectError::InvalidRequestMessage {
            message: format!(
                "The {} checksum type cannot be used with the {} checksum algorithm.",
                kind.name(),
                spec.algorithm.name().to_lowercase()
            ),
        });
    }
    Ok(Some((spec.algorithm, kind)))
}

/// Checks the checksum a CompleteMultipartUpload lists for a part against the stored one
/// (`stored`: the part's digest with the upload's algorithm). An upload created with an
/// algorithm needs every part's checksum listed when its type is composite; one created
/// without takes what is listed as it is (its parts carry only Strata's own CRC64NVME).
fn check_listed_part_checksum(
    upload: &UploadRecord,
    part: &CompletePart,
    stored: Option<&[u8]>,
) -> ObjectResult<()> {
    let Some((algorithm, kind)) = upload.checksum else {
        return Ok(());
    };
    match &part.checksum {
        Some((listed_algorithm, _)) if *listed_algorithm != algorithm => {
            Err(ObjectError::InvalidRequestMessage {
                message: format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    algorithm.name().to_lowercase(),
                    listed_algorithm.name().to_lowercase()
                ),
            })
        }
        Some((_, listed)) if stored.is_some_and(|s| s != listed.as_slice()) => {
            Err(ObjectError::InvalidPart { number: part.number })
        }
        Some(_) => Ok(()),
        None if kind == ChecksumType::Composite => Err(ObjectError::InvalidRequestMessage {
            message: format!(
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {} in the request.",
                algorithm.name().to_lowercase(),
                part.number
            ),
        }),
        None => Ok(()),
    }
}

/// A repeated completion must ask what the first one got: the same size and whole-object
/// checksum, when it names them.
fn check_repeated_completion(info: &ObjectInfo, opts: &CompleteOptions) -> ObjectResult<()> {
    if let Some(expected) = opts.object_size
        && expected != info.size
    {
        return Err(ObjectError::InvalidRequestMessage {
            message: format!(
                "The provided x-amz-mp-object-size header value {expected} does not match the object's size {}.",
                info.size
            ),
        });
    }
    if let Some((algorithm, value)) = &opts.checksum
        && info
            .checksum
            .as_ref()
            .is_none_or(|c| c.algorithm != *algorithm || c.value != *value)
    {
        return Err(ObjectError::ChecksumMismatch {
            algorithm: *algorithm,
        });
    }
    Ok(())
}

/// The algorithm an upload's parts are checksummed with: the upload's, else CRC64NVME (from
/// which the object's full-object checksum is formed).
fn part_algorithm(upload: &UploadRecord) -> ChecksumAlgorithm {
    upload
        .checksum
        .map_or(ChecksumAlgorithm::Crc64Nvme, |(algorithm, _)| algorithm)
}

impl ObjectLayer {
    /// Starts a multipart upload.
    pub async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
    ) -> ObjectResult<UploadInfo> {
        self.bucket_info(bucket).await?;
        check_object_key(key)?;
        let checksum = upload_checksum(opts.checksum.as_ref())?;
        let set = self
            .set_for_write(bucket, key, opts.metadata.storage_class.as_deref())
            .await?;
        let rec = UploadRecord {
            upload_id: uuid::Uuid::new_v4().as_simple().to_string(),
            key: key.to_string(),
            initiated_ns: record::to_unix_nanos(SystemTime::now()),
            metadata: opts.metadata,
            distribution: set.distribution(key),
            checksum,
        };
        let value = record::encode(&rec);
        let upload_key = record::upload_key(bucket, key, &rec.upload_id);
        set.commit_on_quorum(|| vec![MetaOp::put(Table::Uploads, upload_key.clone(), value.clone())])
            .await?;
        Ok(upload_info(bucket, &rec))
    }

    /// The set holding an upload: its pool's candidate set for the key (the only one in a
    /// single pool; with several, the one whose drives hold the upload record).
    async fn set_for_upload(&self, bucket: &str, key: &str, upload_id: &str) -> ObjectResult<&ErasureSet> {
        if self.pools.len() > 1 {
            for set in self.candidate_sets(key) {
                if self.upload_record(set, bucket, key, upload_id).await.is_ok() {
                    return Ok(set);
                }
            }
        }
        Ok(self.set_in_pool(&self.pools[0], key))
    }

    /// Reads an upload's record agreed by read quorum.
    async fn upload_record(
        &self,
        set: &ErasureSet,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> ObjectResult<UploadRecord> {
        let upload_key = record::upload_key(bucket, key, upload_id);
        let results = join_all(set.drives.iter().map(|d| d.meta_get(Table::Uploads, &upload_key))).await;
        let n_answered = results.iter().filter(|r| r.is_ok()).count();
        if n_answered < set.read_quorum() {
            return Err(ObjectError::ReadQuorum {
                needed: set.read_quorum(),
                got: n_answered,
            });
        }
        let found: Vec<UploadRecord> = results
            .into_iter()
            .filter_map(|r| r.ok().flatten())
            .filter_map(|v| record::decode::<UploadRecord>(&v).ok())
            .collect();
        if found.len() < set.read_quorum() {
            return Err(ObjectError::NoSuchUpload {
                upload_id: upload_id.to_string(),
            });
        }
        found.into_iter().next().ok_or_else(|| ObjectError::NoSuchUpload {
            upload_id: upload_id.to_string(),
        })
    }

    /// The parts of an upload agreed by read quorum, by number.
    async fn resolved_parts(
        &self,
        set: &ErasureSet,
        upload_id: &str,
    ) -> ObjectResult<BTreeMap<u32, PartRecord>> {
        let prefix = record::parts_prefix(upload_id);
        let per_drive = join_all(
            set.drives
                .iter()
                .map(|d| set::scan_all(d.as_ref(), Table::Parts, &prefix)),
        )
        .await;
        let n_answered = per_drive.iter().filter(|r| r.is_ok()).count();
        if n_answered < set.read_quorum() {
            return Err(ObjectError::ReadQuorum {
                needed: set.read_quorum(),
                got: n_answered,
            });
        }
        // (number, data dir) → (count, record).
        let mut groups: HashMap<(u32, uuid::Uuid), (usize, PartRecord)> = HashMap::new();
        for entries in per_drive.into_iter().flatten() {
            for entry in entries {
                if let Ok(rec) = record::decode::<PartRecord>(&entry.value) {
                    groups.entry((rec.number, rec.data_dir)).or_insert((0, rec)).0 += 1;
                }
            }
        }
        let mut out: BTreeMap<u32, PartRecord> = BTreeMap::new();
        for (_, (count, rec)) in groups {
            if count < set.read_quorum() {
                continue;
            }
            match out.get(&rec.number) {
                Some(existing) if existing.mod_time_ns >= rec.mod_time_ns => {}
                _ => {
                    out.insert(rec.number, rec);
                }
            }
        }
        Ok(out)
    }

    /// Uploads one part (1..=10000); a part uploaded again replaces the earlier one.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: PutStream,
        opts: PutOptions,
    ) -> ObjectResult<PartInfo> {
        self.upload_part_admitted(bucket, key, upload_id, part_number, body, opts, Admission::Gate)
            .await
    }

    /// [`Self::upload_part`], taking its memory from the gate unless the caller already did.
    #[allow(clippy::too_many_arguments)]
    async fn upload_part_admitted(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: PutStream,
        mut opts: PutOptions,
        admission: Admission,
    ) -> ObjectResult<PartInfo> {
        self.bucket_info(bucket).await?;
        check_object_key(key)?;
        if part_number == 0 || part_number > PART_NUMBER_MAX {
            return Err(ObjectError::InvalidPartNumberArgument { number: part_number });
        }
        let set = self.set_for_upload(bucket, key, upload_id).await?;
        let upload = self.upload_record(set, bucket, key, upload_id).await?;
        let store = part_algorithm(&upload);
        if let (Some((expected, _)), Some(sent)) = (upload.checksum, opts.checksum.as_ref())
            && sent.algorithm != expected
        {
            return Err(ObjectError::InvalidRequestMessage {
                message: format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    expected.name().to_lowercase(),
                    sent.algorithm.name().to_lowercase()
                ),
            });
        }
        let memory_bytes = set.put_memory_bytes(opts.size) + crate::checksum::put_offload_bytes(&opts, store);
        let _memory = match admission {
            Admission::Gate => Some(self.memory().acquire(memory_bytes).await?),
            Admission::Admitted => None,
        };
        let data = set
            .write_data(body, &mut opts, part_number, &upload.distribution, false, store)
            .await?;
        let rec = PartRecord {
            number: part_number,
            size: data.size,
            etag: data.etag.clone(),
            mod_time_ns: self.next_mod_time_ns(),
            data_dir: data.data_dir.unwrap_or_else(DataDirId::new_random).0,
            checksum: Some(data.checksum.clone()),
            sealed: data.sealed.clone(),
        };
        let part_key = record::part_key(upload_id, part_number);
        let value = record::encode(&rec);
        let _guard = self.lock_key(bucket, key).await?;
        // The upload may have been completed or aborted while the data streamed in.
        if let Err(err) = self.upload_record(set, bucket, key, upload_id).await {
            if let Some(dir) = data.data_dir {
                set.delete_data_dirs(&[dir], &data.ok).await;
            }
            return Err(err);
        }
        let results = join_all(set.drives.iter().zip(&data.ok).map(|(drive, ok)| {
            let part_key = part_key.clone();
            let value = value.clone();
            async move {
                if !ok {
                    return (false, None);
                }
                let old = drive.meta_get(Table::Parts, &part_key).await.ok().flatten();
                let committed = drive
                    .meta_commit(vec![MetaOp::put(Table::Parts, part_key, value)])
                    .await
                    .is_ok();
                let old_dir = old
                    .and_then(|v| record::decode::<PartRecord>(&v).ok())
                    .map(|p| DataDirId(p.data_dir))
                    .filter(|dir| Some(*dir) != data.data_dir);
                (committed, old_dir)
            }
        }))
        .await;
        let n_ok = results.iter().filter(|(ok, _)| *ok).count();
        if n_ok < set.write_quorum() {
            if let Some(dir) = data.data_dir {
                set.delete_data_dirs(&[dir], &data.ok).await;
            }
            return Err(set.write_quorum_error(n_ok));
        }
        for (drive, (committed, old_dir)) in set.drives.iter().zip(results) {
            if let (true, Some(dir)) = (committed, old_dir) {
                let _ = drive.data_dir_delete(dir).await;
            }
        }
        Ok(part_info(&rec, &upload))
    }

    /// UploadPartCopy: copies `src_opts.range` (or all) of the source into a part, server-side.
    /// `copy.open_source` opens a sealed source, `copy.sealer` seals the part (its other
    /// fields do not apply to a part).
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_opts: GetOptions,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        copy: CopyOptions,
    ) -> ObjectResult<PartInfo> {
        let _memory = self.memory().acquire(self.copy_memory_bytes()).await?;
        let range = src_opts.range;
        let reader = self
            .get_object_admitted(
                src_bucket,
                src_key,
                GetOptions {
                    part_number: None,
                    ..src_opts
                },
                Admission::Admitted,
            )
            .await
            .map_err(|err| match err {
                ObjectError::InvalidRange { size } => ObjectError::CopyRangeOutsideSource { size },
                other => other,
            })?;
        // Unlike a GET, a copy range is not clamped to the source: it must lie within it.
        if let Some(ByteRange::FromTo { last, .. }) = range
            && last >= reader.info.size
        {
            return Err(ObjectError::CopyRangeOutsideSource {
                size: reader.info.size,
            });
        }
        let size = reader.length;
        let body = crate::layer::source_content(reader, copy.open_source)?;
        let opts = PutOptions {
            size: Some(size),
            sealer: copy.sealer,
            ..PutOptions::default()
        };
        self.upload_part_admitted(
            bucket,
            key,
            upload_id,
            part_number,
            body,
            opts,
            Admission::Admitted,
        )
        .await
    }

    /// An upload in progress (`NoSuchUpload` when it is not, or not of this key).
    pub async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> ObjectResult<UploadInfo> {
        self.bucket_info(bucket).await?;
        check_object_key(key)?;
        let set = self.set_for_upload(bucket, key, upload_id).await?;
        let rec = self.upload_record(set, bucket, key, upload_id).await?;
        Ok(upload_info(bucket, &rec))
    }

    /// Lists an upload's parts in number order.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        opts: ListPartsOptions,
    ) -> ObjectResult<ListPartsResult> {
        self.bucket_info(bucket).await?;
        let set = self.set_for_upload(bucket, key, upload_id).await?;
        let upload = self.upload_record(set, bucket, key, upload_id).await?;
        let parts = self.resolved_parts(set, upload_id).await?;
        let max_parts = opts.max_parts.min(LIST_KEYS_MAX);
        let mut listed: Vec<PartInfo> = parts
            .values()
            .filter(|p| p.number > opts.part_number_marker)
            .take(max_parts + 1)
            .map(|p| part_info(p, &upload))
            .collect();
        let is_truncated = listed.len() > max_parts;
        listed.truncate(max_parts);
        let next_part_number_marker = if is_truncated {
            listed.last().map(|p| p.number)
        } else {
            None
        };
        Ok(ListPartsResult {
            upload: upload_info(bucket, &upload),
            parts: listed,
            is_truncated,
            next_part_number_marker,
        })
    }

    /// Lists uploads in progress, by key then initiation time.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        opts: ListUploadsOptions,
    ) -> ObjectResult<ListUploadsResult> {
        self.bucket_info(bucket).await?;
        let mut scan_prefix = record::bucket_prefix(bucket);
        scan_prefix.extend_from_slice(opts.prefix.as_bytes());
        let mut all: Vec<UploadRecord> = Vec::new();
        for set in &self.sets {
            let per_drive = join_all(
                set.drives
                    .iter()
                    .map(|d| set::scan_all(d.as_ref(), Table::Uploads, &scan_prefix)),
            )
            .await;
            let n_answered = per_drive.iter().filter(|r| r.is_ok()).count();
            if n_answered < set.read_quorum() {
                return Err(ObjectError::ReadQuorum {
                    needed: set.read_quorum(),
                    got: n_answered,
                });
            }
            let mut counts: HashMap<String, (usize, UploadRecord)> = HashMap::new();
            for entries in per_drive.into_iter().flatten() {
                for entry in entries {
                    if let Ok(rec) = record::decode::<UploadRecord>(&entry.value) {
                        counts.entry(rec.upload_id.clone()).or_insert((0, rec)).0 += 1;
                    }
                }
            }
            all.extend(
                counts
                    .into_values()
                    .filter(|(n, _)| *n >= set.read_quorum())
                    .map(|(_, rec)| rec),
            );
        }
        all.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(a.initiated_ns.cmp(&b.initiated_ns))
                .then(a.upload_id.cmp(&b.upload_id))
        });

        let delimiter = opts.delimiter.as_deref().filter(|d| !d.is_empty());
        let max_uploads = opts.max_uploads.min(LIST_KEYS_MAX);
        let key_marker = opts.key_marker.clone().unwrap_or_default();
        let mut result = ListUploadsResult::default();
        let mut past_upload_marker = opts.upload_id_marker.as_deref().is_none_or(str::is_empty);
        let mut n_returned = 0;
        for rec in &all {
            if !key_marker.is_empty() {
                if rec.key.as_str() < key_marker.as_str() {
                    continue;
                }
                if rec.key == key_marker {
                    if !past_upload_marker {
                        if Some(rec.upload_id.as_str()) == opts.upload_id_marker.as_deref() {
                            past_upload_marker = true;
                        }
                        continue;
                    }
                    if opts.upload_id_marker.as_deref().is_none_or(str::is_empty) {
                        continue;
                    }
                }
            }
            let cp = delimiter.and_then(|d| {
                let rest = rec.key.get(opts.prefix.len()..)?;
                rest.find(d)
                    .map(|pos| rec.key[..opts.prefix.len() + pos + d.len()].to_string())
            });
            if let Some(cp) = cp {
                if result.common_prefixes.last() == Some(&cp)
                    || (!key_marker.is_empty() && cp.as_str() <= key_marker.as_str())
                {
                    continue;
                }
                if n_returned == max_uploads {
                    result.is_truncated = true;
                    break;
                }
                result.next_key_marker = Some(cp.clone());
                result.next_upload_id_marker = None;
                result.common_prefixes.push(cp);
                n_returned += 1;
                continue;
            }
            if n_returned == max_uploads {
                result.is_truncated = true;
                break;
            }
            result.next_key_marker = Some(rec.key.clone());
            result.next_upload_id_marker = Some(rec.upload_id.clone());
            result.uploads.push(upload_info(bucket, rec));
            n_returned += 1;
        }
        if !result.is_truncated {
            result.next_key_marker = None;
            result.next_upload_id_marker = None;
        }
        Ok(result)
    }

    /// Completes an upload: the object becomes the listed parts, in order, without copying.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletePart>,
    ) -> ObjectResult<ObjectInfo> {
        self.complete_multipart_upload_with(bucket, key, upload_id, parts, CompleteOptions::default())
            .await
    }

    /// [`Self::complete_multipart_upload`] with a condition on the key's current object at
    /// the moment of completion (a failed condition leaves the upload as it is) and the
    /// checksums the client sent.
    ///
    /// Completing again an upload that this key's current version completed, with the same
    /// parts, answers that version (as S3 does for a retried request); with other parts it is
    /// `NoSuchUpload`.
    pub async fn complete_multipart_upload_with(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletePart>,
        opts: CompleteOptions,
    ) -> ObjectResult<ObjectInfo> {
        let bucket_info = self.bucket_info(bucket).await?;
        check_object_key(key)?;
        if parts.is_empty() {
            return Err(ObjectError::InvalidRequest {
                reason: "You must specify at least one part",
            });
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(ObjectError::InvalidPartOrder);
        }
        let set = self.set_for_upload(bucket, key, upload_id).await?;
        let _guard = self.lock_key(bucket, key).await?;
        let upload = match self.upload_record(set, bucket, key, upload_id).await {
            Ok(upload) => upload,
            Err(err @ ObjectError::NoSuchUpload { .. }) => {
                let info = self
                    .completed_version(set, bucket, key, upload_id, &parts)
                    .await?
                    .ok_or(err)?;
                check_repeated_completion(&info, &opts)?;
                return Ok(info);
            }
            Err(err) => return Err(err),
        };
        self.check_write_condition(bucket, key, set, opts.condition.as_ref())
            .await?;
        let uploaded = self.resolved_parts(set, upload_id).await?;
        let algorithm = part_algorithm(&upload);
        let kind = upload.checksum.map_or(ChecksumType::FullObject, |(_, kind)| kind);
        if let Some(asked) = opts.checksum_type
            && upload.checksum.is_some()
            && asked != kind
        {
            return Err(ObjectError::InvalidRequestMessage {
                message: format!(
                    "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                    kind.name()
                ),
            });
        }
        let mut chosen: Vec<PartRecordRef> = Vec::with_capacity(parts.len());
        let mut md5_of_md5s = Md5::new();
        // How the parts were sealed: all alike (the upload's encryption), or none.
        let seal = parts
            .first()
            .and_then(|p| uploaded.get(&p.number))
            .and_then(|rec| rec.sealed.as_ref().map(|s| s.geometry));
        for (idx, part) in parts.iter().enumerate() {
            let Some(rec) = uploaded.get(&part.number) else {
                return Err(ObjectError::InvalidPart { number: part.number });
            };
            if !rec.etag.eq_ignore_ascii_case(strip_quotes(&part.etag)) {
                return Err(ObjectError::InvalidPart { number: part.number });
            }
            if rec.sealed.as_ref().map(|s| s.geometry) != seal {
                return Err(ObjectError::Corrupt {
                    what: format!("part {} is sealed unlike the upload's other parts", part.number),
                });
            }
            let content_size = rec.sealed.as_ref().map_or(rec.size, |s| s.plain_size);
            let is_last = idx + 1 == parts.len();
            if !is_last && content_size < PART_SIZE_BYTES_MIN {
                return Err(ObjectError::EntityTooSmall {
                    number: part.number,
                    size_bytes: content_size,
                });
            }
            let stored = rec
                .checksum
                .as_ref()
                .filter(|(a, _)| *a == algorithm)
                .map(|(_, digest)| digest.clone());
            check_listed_part_checksum(&upload, part, stored.as_deref())?;
            let digest = hex::decode(&rec.etag).map_err(|_| ObjectError::Corrupt {
                what: "part etag".into(),
            })?;
            md5_of_md5s.update(&digest);
            chosen.push(PartRecordRef {
                number: rec.number,
                size: rec.size,
                etag: rec.etag.clone(),
                data_dir: (rec.size > 0).then_some(rec.data_dir),
                checksum: stored,
                plain_size: rec.sealed.as_ref().map(|s| s.plain_size),
                seal_header: rec.sealed.as_ref().map(|s| s.header.clone()),
            });
        }
        // Parts uploaded before checksums existed leave the object without one.
        let part_digests: Option<Vec<(&[u8], u64)>> = chosen
            .iter()
            .map(|p| p.checksum.as_deref().map(|d| (d, p.content_size())))
            .collect();
        let checksum = part_digests.and_then(|digests| multipart_checksum(algorithm, kind, &digests));
        if let Some((sent_algorithm, sent)) = &opts.checksum {
            match &checksum {
                Some(c) if c.algorithm == *sent_algorithm && c.value != *sent => {
                    return Err(ObjectError::ChecksumMismatch {
                        algorithm: *sent_algorithm,
                    });
                }
                Some(c) if c.algorithm == *sent_algorithm => {}
                _ => {
                    return Err(ObjectError::InvalidRequestMessage {
                        message: format!(
                            "The upload was created using the {} checksum algorithm; the complete request sent a {} checksum.",
                            algorithm.name().to_lowercase(),
                            sent_algorithm.name().to_lowercase()
                        ),
                    });
                }
            }
        }
        let size: u64 = chosen.iter().map(|p| p.content_size()).sum();
        let stored_size: u64 = chosen.iter().map(|p| p.size).sum();
        if let Some(expected) = opts.object_size
            && expected != size
        {
            return Err(ObjectError::InvalidRequestMessage {
                message: format!(
                    "The provided x-amz-mp-object-size header value {expected} does not match the object's size {size}."
                ),
            });
        }
        let etag = format!("{}-{}", hex::encode(md5_of_md5s.finalize()), parts.len());
        let data = WrittenData {
            size: stored_size,
            // The parts' data is written already: no ETag or digest of a body here (the
            // object's ETag and checksum are formed from the parts').
            etag: String::new(),
            sealed: None,
            checksum: (algorithm, Vec::new()),
            inline: None,
            data_dir: None,
            ok: vec![true; set.n_drives()],
        };
        let info = self
            .commit_version(
                bucket,
                key,
                bucket_info.versioning,
                set,
                &upload.distribution,
                NewVersion {
                    data,
                    metadata: upload.metadata.clone(),
                    etag,
                    parts: chosen.clone(),
                    checksum,
                    upload_id: Some(upload_id.to_owned()),
                    seal: seal.map(|geometry| (geometry, size)),
                },
            )
            .await?;
        // The upload is done: drop its records and the parts that were not used.
        let used: Vec<uuid::Uuid> = chosen.iter().filter_map(|p| p.data_dir).collect();
        let unused: Vec<DataDirId> = uploaded
            .values()
            .filter(|p| !used.contains(&p.data_dir))
            .map(|p| DataDirId(p.data_dir))
            .collect();
        self.drop_upload_records(set, bucket, key, upload_id).await;
        set.delete_data_dirs(&unused, &vec![true; set.n_drives()]).await;
        Ok(info)
    }

    /// The key's current version when `upload_id` completed it with exactly `parts` (the
    /// answer to a repeated completion).
    async fn completed_version(
        &self,
        set: &ErasureSet,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletePart],
    ) -> ObjectResult<Option<ObjectInfo>> {
        let Some(latest) = set.resolve_versions(bucket, key).await?.into_iter().next() else {
            return Ok(None);
        };
        let rec = &latest.record;
        let same_parts = rec.parts.len() == parts.len()
            && rec.parts.iter().zip(parts).all(|(stored, listed)| {
                stored.number == listed.number && stored.etag.eq_ignore_ascii_case(strip_quotes(&listed.etag))
            });
        let same = rec.upload_id.as_deref() == Some(upload_id) && !rec.delete_marker && same_parts;
        Ok(same.then(|| crate::layer::object_info(bucket, key, rec, true)))
    }

    /// Removes an upload's record and part records from every drive (best effort per drive).
    async fn drop_upload_records(&self, set: &ErasureSet, bucket: &str, key: &str, upload_id: &str) {
        let upload_key = record::upload_key(bucket, key, upload_id);
        let prefix = record::parts_prefix(upload_id);
        join_all(set.drives.iter().map(|drive| {
            let upload_key = upload_key.clone();
            let prefix = prefix.clone();
            async move {
                let mut ops = vec![MetaOp::delete(Table::Uploads, upload_key)];
                if let Ok(parts) = set::scan_all(drive.as_ref(), Table::Parts, &prefix).await {
                    ops.extend(
                        parts
                            .into_iter()
                            .map(|p| MetaOp::delete(Table::Parts, p.key.to_vec())),
                    );
                }
                if let Err(err) = drive.meta_commit_deleting(ops).await {
                    tracing::warn!(drive = drive.endpoint(), %err, "removing upload records failed");
                }
            }
        }))
        .await;
    }

    /// Aborts an upload and removes its parts.
    pub async fn abort_multipart_upload(&self, bucket: &str, key: &str, upload_id: &str) -> ObjectResult<()> {
        self.bucket_info(bucket).await?;
        check_object_key(key)?;
        let set = self.set_for_upload(bucket, key, upload_id).await?;
        let _guard = self.lock_key(bucket, key).await?;
        self.upload_record(set, bucket, key, upload_id).await?;
        let parts = self.resolved_parts(set, upload_id).await.unwrap_or_default();
        self.drop_upload_records(set, bucket, key, upload_id).await;
        let dirs: Vec<DataDirId> = parts.values().map(|p| DataDirId(p.data_dir)).collect();
        set.delete_data_dirs(&dirs, &vec![true; set.n_drives()]).await;
        Ok(())
    }
}
