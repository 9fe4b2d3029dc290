//! Multipart upload operations: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
//!
//! Invariants: part numbers reach the object layer only inside 1..=[`PART_NUMBER_MAX`];
//! the parts of a completion reach it in the order the client sent them (the object layer
//! checks the order); pages are capped at [`LIST_KEYS_MAX`].

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_object::{
    ChecksumSpec, CompleteOptions, CompletePart, CopyOptions, ExpectedChecksum, GetOptions, LIST_KEYS_MAX,
    ListPartsOptions, ListUploadsOptions, PART_NUMBER_MAX, PartInfo, PutOptions,
};

use crate::convert::{self, MetadataInput, maybe_url_encode};
use crate::encryption;
use crate::integrity;
use crate::object::{check_copy_source_conditions, copy_source};
use crate::precondition::Conditions;
use crate::service::{StrataS3, err_mapper};

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

fn page_size(value: Option<i32>, what: &'static str) -> S3Result<usize> {
    match value {
        None => Ok(LIST_KEYS_MAX),
        Some(n) => {
            let n = convert::non_negative(n, what)?;
            Ok(usize::try_from(n).unwrap_or(LIST_KEYS_MAX).min(LIST_KEYS_MAX))
        }
    }
}

fn as_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) async fn create_multipart_upload(
    s3: &StrataS3,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let map_err = err_mapper(&req);
    let writer = s3.writer_account(&req);
    let input = req.input;
    let checksum = upload_checksum(input.checksum_algorithm.as_ref(), input.checksum_type.as_ref())?;
    let write_key = s3
        .write_key(&input.bucket, &input.key, encryption::write_headers!(input))
        .await?;
    let tags = crate::tagging::request_tags(input.tagging.as_deref())?;
    let (retention, legal_hold) = crate::object_lock::lock_for_write(
        s3,
        &req.extensions,
        (&input.bucket, &input.key),
        crate::object_lock::LockHeaders::of(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
        ),
        input.tagging.is_some(),
        &map_err,
    )
    .await?;
    let acl = crate::access_control::acl_for_object_write(
        s3,
        &input.bucket,
        writer.as_deref(),
        crate::access_control::ObjectAclHeaders::of(
            input.acl.as_ref(),
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref(),
            input.grant_read_acp.as_deref(),
            input.grant_write_acp.as_deref(),
        ),
        &map_err,
    )
    .await?;
    let storage_class = crate::storage_class::for_write(&s3.layer, input.storage_class.as_ref())?;
    let opts = PutOptions {
        metadata: MetadataInput {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            cache_control: input.cache_control,
            content_disposition: input.content_disposition,
            expires: input.expires,
            user: input.metadata,
        }
        .into_metadata()?
        .with_tags(tags)
        .with_acl(acl)
        .with_lock(retention, legal_hold)
        .with_encryption(encryption::stored_text(write_key.as_ref()))
        .with_storage_class(storage_class),
        checksum,
        ..Default::default()
    };
    let upload = s3
        .layer
        .create_multipart_upload(&input.bucket, &input.key, opts)
        .await
        .map_err(map_err)?;
    let (checksum_algorithm, checksum_type) = upload_checksum_fields(upload.checksum);
    let mut output = CreateMultipartUploadOutput {
        bucket: Some(upload.bucket),
        key: Some(upload.key),
        upload_id: Some(upload.upload_id),
        checksum_algorithm,
        checksum_type,
        ..Default::default()
    };
    output.ssekms_encryption_context =
        encryption::set_encryption_fields!(output, s3.write_response(write_key.as_ref()));
    Ok(S3Response::new(output))
}

/// The checksum a CreateMultipartUpload asks for: `x-amz-checksum-algorithm`, and
/// `x-amz-checksum-type` (which needs the algorithm).
fn upload_checksum(
    algorithm: Option<&ChecksumAlgorithm>,
    kind: Option<&ChecksumType>,
) -> S3Result<Option<ChecksumSpec>> {
    let kind = kind.map(|k| integrity::type_named(k.as_str())).transpose()?;
    let Some(algorithm) = algorithm else {
        if kind.is_some() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            ));
        }
        return Ok(None);
    };
    Ok(Some(ChecksumSpec {
        algorithm: integrity::algorithm_named(algorithm.as_str())?,
        kind,
        expected: ExpectedChecksum::None,
    }))
}

/// An upload's checksum algorithm and type as S3 shows them.
fn upload_checksum_fields(
    checksum: Option<(strata_object::ChecksumAlgorithm, strata_object::ChecksumType)>,
) -> (Option<ChecksumAlgorithm>, Option<ChecksumType>) {
    checksum.map_or((None, None), |(algorithm, kind)| {
        (
            Some(ChecksumAlgorithm::from(algorithm.name().to_owned())),
            Some(ChecksumType::from(kind.name().to_owned())),
        )
    })
}

pub(crate) async fn upload_part(
    s3: &StrataS3,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let map_err = err_mapper(&req);
    let checksum = integrity::sent_body_checksum(&req.headers, req.trailing_headers.as_ref())?;
    let input = req.input;
    let number = part_number(input.part_number)?;
    let write_key = upload_write_key(
        s3,
        (&input.bucket, &input.key, &input.upload_id),
        encryption::customer_headers!(input),
    )
    .await?;
    let size = match input.content_length {
        None => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Content-Length must not be negative",
            )
        })?),
    };
    let opts = PutOptions {
        size,
        content_md5: convert::content_md5(input.content_md5.as_deref())?,
        checksum,
        sealer: write_key.as_ref().map(|k| k.sealer(number)).transpose()?,
        ..Default::default()
    };
    let part = s3
        .layer
        .upload_part(
            &input.bucket,
            &input.key,
            &input.upload_id,
            number,
            convert::put_stream(input.body),
            opts,
        )
        .await
        .map_err(map_err)?;
    let mut output = UploadPartOutput {
        e_tag: Some(convert::etag(&part.etag)),
        ..Default::default()
    };
    integrity::set_checksum_fields!(output, part_checksum(&part));
    encryption::set_encryption_fields!(output, s3.write_response(write_key.as_ref()));
    Ok(S3Response::new(output))
}

/// The key sealing a part of an upload (none: not encrypted), checking the request's SSE-C
/// headers against the upload's.
async fn upload_write_key(
    s3: &StrataS3,
    (bucket, key, upload_id): (&str, &str, &str),
    customer: encryption::CustomerHeaders<'_>,
) -> S3Result<Option<encryption::WriteKey>> {
    let customer = encryption::customer_key(customer, s3.encryption.customer_keys_allowed)?;
    let upload = s3
        .layer
        .upload(bucket, key, upload_id)
        .await
        .map_err(|err| crate::map_object_error(err, None))?;
    s3.upload_key(&upload, customer).await
}

/// A part's checksum fields (set when its upload named an algorithm).
fn part_checksum(part: &PartInfo) -> integrity::ChecksumFields {
    integrity::ChecksumFields::part(part.checksum.as_ref().map(|(a, d)| (*a, d.as_slice())))
}

pub(crate) async fn upload_part_copy(
    s3: &StrataS3,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let map_err = err_mapper(&req);
    let input = &req.input;
    let number = part_number(input.part_number)?;
    let src = copy_source(input.copy_source.clone())?;
    let range = input
        .copy_source_range
        .as_deref()
        .map(convert::copy_source_range)
        .transpose()?;
    let conditions = Conditions {
        if_match: input.copy_source_if_match.clone(),
        if_none_match: input.copy_source_if_none_match.clone(),
        if_modified_since: input.copy_source_if_modified_since.clone(),
        if_unmodified_since: input.copy_source_if_unmodified_since.clone(),
    };
    check_copy_source_conditions(s3, &req, &src, &conditions).await?;
    let open_source =
        crate::object::copy_source_opener(s3, &src, encryption::customer_headers!(input, copy_source))
            .await?;
    let write_key = upload_write_key(
        s3,
        (&input.bucket, &input.key, &input.upload_id),
        encryption::customer_headers!(input),
    )
    .await?;
    let copy = CopyOptions {
        open_source: Some(open_source),
        sealer: write_key.as_ref().map(|k| k.sealer(number)).transpose()?,
        ..Default::default()
    };
    let input = req.input;
    let part = s3
        .layer
        .upload_part_copy(
            &src.bucket,
            &src.key,
            GetOptions {
                version_id: src.version_id.clone(),
                range,
                part_number: None,
            },
            &input.bucket,
            &input.key,
            &input.upload_id,
            number,
            copy,
        )
        .await
        .map_err(map_err)?;
    let mut result = CopyPartResult {
        e_tag: Some(convert::etag(&part.etag)),
        last_modified: Some(convert::timestamp(part.mod_time)),
        ..Default::default()
    };
    integrity::set_checksum_fields!(result, part_checksum(&part));
    let mut output = UploadPartCopyOutput {
        copy_part_result: Some(result),
        copy_source_version_id: src.version_id,
        ..Default::default()
    };
    encryption::set_encryption_fields!(output, s3.write_response(write_key.as_ref()));
    Ok(S3Response::new(output))
}

pub(crate) async fn complete_multipart_upload(
    s3: &StrataS3,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let malformed = || {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let listed = input
        .multipart_upload
        .and_then(|m| m.parts)
        .filter(|p| !p.is_empty())
        .ok_or_else(malformed)?;
    let mut parts = Vec::with_capacity(listed.len());
    for p in listed {
        let number = part_number(p.part_number.ok_or_else(malformed)?)?;
        let checksum = integrity::listed_checksum([
            p.checksum_crc32.as_deref(),
            p.checksum_crc32c.as_deref(),
            p.checksum_crc64nvme.as_deref(),
            p.checksum_sha1.as_deref(),
            p.checksum_sha256.as_deref(),
        ])?;
        let etag = p.e_tag.ok_or_else(malformed)?.into_value();
        parts.push(CompletePart {
            number,
            etag,
            checksum,
        });
    }
    let whole_object = [
        input.checksum_crc32.as_deref(),
        input.checksum_crc32c.as_deref(),
        input.checksum_crc64nvme.as_deref(),
        input.checksum_sha1.as_deref(),
        input.checksum_sha256.as_deref(),
    ];
    // A composite value names its part count (`<digest>-N`): it must be this completion's.
    if let Some(count) = whole_object
        .iter()
        .flatten()
        .find_map(|v| v.rsplit_once('-').map(|(_, n)| n))
        && count.parse::<usize>().ok() != Some(parts.len())
    {
        return Err(S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!(
                "The checksum names {count} parts; the request completes {}.",
                parts.len()
            ),
        ));
    }
    let opts = CompleteOptions {
        condition: crate::object::write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?,
        checksum: integrity::listed_checksum(whole_object)?,
        checksum_type: input
            .checksum_type
            .as_ref()
            .map(|k| integrity::type_named(k.as_str()))
            .transpose()?,
        object_size: input
            .mpu_object_size
            .map(|n| {
                u64::try_from(n).map_err(|_| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        "x-amz-mp-object-size must be a non-negative integer",
                    )
                })
            })
            .transpose()?,
    };
    let info = s3
        .layer
        .complete_multipart_upload_with(&input.bucket, &input.key, &input.upload_id, parts, opts)
        .await
        .map_err(map_err)?;
    let mut output = CompleteMultipartUploadOutput {
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        bucket: Some(input.bucket),
        key: Some(input.key),
        e_tag: Some(convert::etag(&info.etag)),
        expiration: s3.expiration_header(&info, true).await,
        version_id: info.version_id.clone(),
        ..Default::default()
    };
    output.checksum_type =
        integrity::set_checksum_fields!(output, integrity::ChecksumFields::of(info.checksum.as_ref()));
    let sse = s3.read_response(encryption::Stored::of(&info)?.as_ref(), None);
    output.server_side_encryption = sse.sse;
    output.ssekms_key_id = sse.kms_key_id;
    output.bucket_key_enabled = sse.bucket_key;
    Ok(S3Response::new(output))
}

pub(crate) async fn abort_multipart_upload(
    s3: &StrataS3,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    if input.if_match_initiated_time.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Conditional aborts are not implemented yet",
        ));
    }
    s3.layer
        .abort_multipart_upload(&input.bucket, &input.key, &input.upload_id)
        .await
        .map_err(map_err)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(crate) async fn list_parts(
    s3: &StrataS3,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let max = page_size(input.max_parts, "max-parts")?;
    let marker = match input.part_number_marker {
        None => 0,
        Some(n) => convert::non_negative(n, "part-number-marker")?,
    };
    let page = s3
        .layer
        .list_parts(
            &input.bucket,
            &input.key,
            &input.upload_id,
            ListPartsOptions {
                part_number_marker: marker,
                max_parts: max,
            },
        )
        .await
        .map_err(map_err)?;
    let parts = page
        .parts
        .iter()
        .map(|p| {
            let mut part = Part {
                e_tag: Some(convert::etag(&p.etag)),
                last_modified: Some(convert::timestamp(p.mod_time)),
                part_number: i32::try_from(p.number).ok(),
                size: Some(convert::size_i64(p.size)),
                ..Default::default()
            };
            integrity::set_checksum_fields!(part, part_checksum(p));
            part
        })
        .collect();
    let (checksum_algorithm, checksum_type) = upload_checksum_fields(page.upload.checksum);
    Ok(S3Response::new(ListPartsOutput {
        checksum_algorithm,
        checksum_type,
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        initiator: Some(crate::convert::initiator(&s3.owner)),
        owner: Some(crate::convert::owner(&s3.owner)),
        storage_class: Some(StorageClass::from(
            crate::storage_class::name_of(&page.upload.metadata).to_owned(),
        )),
        max_parts: Some(as_i32(max)),
        part_number_marker: i32::try_from(marker).ok(),
        next_part_number_marker: page.next_part_number_marker.and_then(|n| i32::try_from(n).ok()),
        is_truncated: Some(page.is_truncated),
        parts: Some(parts),
        ..Default::default()
    }))
}

pub(crate) async fn list_multipart_uploads(
    s3: &StrataS3,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let url = convert::url_encoding(input.encoding_type.as_ref())?;
    let max = page_size(input.max_uploads, "max-uploads")?;
    let prefix = input.prefix.unwrap_or_default();
    let delimiter = input.delimiter.filter(|d| !d.is_empty());
    let key_marker = input.key_marker.filter(|m| !m.is_empty());
    let upload_id_marker = input.upload_id_marker.filter(|m| !m.is_empty());
    let page = s3
        .layer
        .list_multipart_uploads(
            &input.bucket,
            ListUploadsOptions {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                key_marker: key_marker.clone(),
                upload_id_marker: upload_id_marker.clone(),
                max_uploads: max,
            },
        )
        .await
        .map_err(map_err)?;
    let uploads = page
        .uploads
        .into_iter()
        .map(|u| MultipartUpload {
            initiated: Some(convert::timestamp(u.initiated)),
            initiator: Some(crate::convert::initiator(&s3.owner)),
            key: Some(maybe_url_encode(u.key, url)),
            owner: Some(crate::convert::owner(&s3.owner)),
            storage_class: Some(StorageClass::from(
                crate::storage_class::name_of(&u.metadata).to_owned(),
            )),
            upload_id: Some(u.upload_id),
            ..Default::default()
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: Some(maybe_url_encode(prefix, url)),
        delimiter: delimiter.map(|d| maybe_url_encode(d, url)),
        key_marker: Some(maybe_url_encode(key_marker.unwrap_or_default(), url)),
        upload_id_marker: Some(upload_id_marker.unwrap_or_default()),
        max_uploads: Some(as_i32(max)),
        is_truncated: Some(page.is_truncated),
        next_key_marker: page.next_key_marker.map(|m| maybe_url_encode(m, url)),
        next_upload_id_marker: page.next_upload_id_marker,
        uploads: Some(uploads),
        common_prefixes: Some(
            page.common_prefixes
                .into_iter()
                .map(|p| CommonPrefix {
                    prefix: Some(maybe_url_encode(p, url)),
                })
                .collect(),
        ),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers_are_checked() {
        assert_eq!(part_number(1).unwrap(), 1);
        assert_eq!(part_number(10_000).unwrap(), 10_000);
        for bad in [0, -1, 10_001] {
            let err = part_number(bad).unwrap_err();
            assert_eq!(err.code(), &S3ErrorCode::InvalidArgument);
        }
    }

    #[test]
    fn page_sizes_clamp() {
        assert_eq!(page_size(None, "max-parts").unwrap(), LIST_KEYS_MAX);
        assert_eq!(page_size(Some(2), "max-parts").unwrap(), 2);
        assert_eq!(page_size(Some(100_000), "max-parts").unwrap(), LIST_KEYS_MAX);
        assert!(page_size(Some(-2), "max-parts").is_err());
    }
}
