//! Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.
//!
//! Invariants: conditional headers are evaluated on the version's metadata before a single body
//! byte is read; features not implemented yet (server-side encryption, storage classes other
//! than STANDARD) are refused with `501 NotImplemented` instead of being silently ignored.
//! Tags of a write (`x-amz-tagging`, the copy's tagging directive) are validated before any
//! data is read ([`crate::tagging`]); a checksum sent with a body is checked by the object
//! layer before the version commits ([`crate::integrity::sent_body_checksum`]).

use futures::StreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_object::{
    ByteRange, ChecksumSpec, ChecksumType, CopyOptions, DeleteOptions, ExpectedChecksum, GetOptions,
    LIST_KEYS_MAX, ObjectError, ObjectInfo, ObjectMetadata, PutOptions, WriteCondition,
};

use crate::access_control::{ObjectAclHeaders, acl_for_object_write};
use crate::convert::{self, BodyStream, MetadataInput};
use crate::encryption;
use crate::integrity;
use crate::object_lock;
use crate::precondition::Conditions;
use crate::service::{StrataS3, err_mapper, request_id};
use crate::tagging;

/// The condition of a conditional write (PutObject, CompleteMultipartUpload): `If-None-Match`
/// takes only `*` (AWS answers 501 NotImplemented for an ETag there), `If-Match` an ETag (or
/// `*`); both at once is not accepted.
pub(crate) fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<WriteCondition>> {
    match (if_match, if_none_match) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "If-Match and If-None-Match together are not supported on writes",
        )),
        (None, Some(ETagCondition::Any)) => Ok(Some(WriteCondition::IfNoneMatch)),
        (None, Some(ETagCondition::ETag(_))) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "A header you provided implies functionality that is not implemented: If-None-Match takes only *",
        )),
        (Some(ETagCondition::Any), None) => Ok(Some(WriteCondition::IfMatch(None))),
        (Some(ETagCondition::ETag(etag)), None) => Ok(Some(WriteCondition::IfMatch(Some(
            etag.value().trim_matches('"').to_owned(),
        )))),
    }
}

/// The checksum fields a GET or HEAD answers: only when asked (`x-amz-checksum-mode:
/// ENABLED`) and only for what the stored checksum covers: the whole object, or with
/// `partNumber` one part of a composite checksum (or the only part of a single PUT). A range
/// read gets none, as from S3.
fn read_checksum(
    info: &ObjectInfo,
    mode: Option<&ChecksumMode>,
    read: &ReadRequest,
) -> integrity::ChecksumFields {
    if mode.is_none_or(|m| m.as_str() != ChecksumMode::ENABLED) || read.range.is_some() {
        return integrity::ChecksumFields::default();
    }
    let Some(checksum) = info.checksum.as_ref() else {
        return integrity::ChecksumFields::default();
    };
    match read.part_number {
        None => integrity::ChecksumFields::of(Some(checksum)),
        // A single PUT is its own only part.
        Some(_) if checksum.kind == ChecksumType::FullObject && info.parts.len() <= 1 => {
            integrity::ChecksumFields::of(Some(checksum))
        }
        // `partNumber` counts the object's parts in order (as the read itself does).
        Some(number) => integrity::ChecksumFields::part(
            usize::try_from(number - 1)
                .ok()
                .and_then(|idx| info.parts.get(idx))
                .and_then(|p| p.checksum.as_deref())
                .map(|digest| (checksum.algorithm, digest)),
        ),
    }
}

/// How many deletes of one DeleteObjects request run at the same time.
const DELETE_OBJECTS_CONCURRENCY_MAX: usize = 16;

/// The Content-Type S3 answers for an object stored without one.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// S3's message for a copy onto itself that changes nothing.
const SELF_COPY_MESSAGE: &str = "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.";

fn not_implemented(what: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!("{what} is not implemented yet"),
    )
}

fn content_length(len: Option<i64>) -> S3Result<Option<u64>> {
    match len {
        None => Ok(None),
        Some(n) => u64::try_from(n).map(Some).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Content-Length must not be negative",
            )
        }),
    }
}

pub(crate) async fn put_object(
    s3: &StrataS3,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let map_err = err_mapper(&req);
    let writer = s3.writer_account(&req);
    let checksum = match integrity::sent_body_checksum(&req.headers, req.trailing_headers.as_ref())? {
        Some(sent) => Some(sent),
        // A browser form (PostObject) carries its checksum as a form field.
        None => integrity::listed_checksum([
            req.input.checksum_crc32.as_deref(),
            req.input.checksum_crc32c.as_deref(),
            req.input.checksum_crc64nvme.as_deref(),
            req.input.checksum_sha1.as_deref(),
            req.input.checksum_sha256.as_deref(),
        ])?
        .map(|(algorithm, value)| ChecksumSpec {
            algorithm,
            kind: None,
            expected: ExpectedChecksum::Value(value),
        }),
    };
    let form_tagging = req
        .extensions
        .get::<crate::post_form::FormTagging>()
        .map(|t| t.0.clone());
    let input = req.input;
    let storage_class = crate::storage_class::for_write(&s3.layer, input.storage_class.as_ref())?;
    let write_key = s3
        .write_key(&input.bucket, &input.key, encryption::write_headers!(input))
        .await?;
    let tags = match (&input.tagging, &form_tagging) {
        (None, Some(xml)) => tagging::form_tags(xml)?,
        (header, _) => tagging::request_tags(header.as_deref())?,
    };
    let (retention, legal_hold) = object_lock::lock_for_write(
        s3,
        &req.extensions,
        (&input.bucket, &input.key),
        object_lock::LockHeaders::of(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
        ),
        input.tagging.is_some() || form_tagging.is_some(),
        &map_err,
    )
    .await?;
    if (retention.is_some() || legal_hold) && input.content_md5.is_none() && checksum.is_none() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ));
    }
    let acl = acl_for_object_write(
        s3,
        &input.bucket,
        writer.as_deref(),
        ObjectAclHeaders::of(
            input.acl.as_ref(),
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref(),
            input.grant_read_acp.as_deref(),
            input.grant_write_acp.as_deref(),
        ),
        &map_err,
    )
    .await?;
    let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let opts = PutOptions {
        size: content_length(input.content_length)?,
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
        content_md5: convert::content_md5(input.content_md5.as_deref())?,
        // s3s verifies a signed payload hash itself while streaming the body.
        content_sha256: None,
        condition,
        checksum,
        sealer: write_key.as_ref().map(|k| k.sealer(1)).transpose()?,
    };
    let info = s3
        .layer
        .put_object(&input.bucket, &input.key, convert::put_stream(input.body), opts)
        .await
        .map_err(map_err)?;
    let mut output = PutObjectOutput {
        e_tag: Some(convert::etag(&info.etag)),
        expiration: s3.expiration_header(&info, true).await,
        version_id: info.version_id,
        size: Some(convert::size_i64(info.size)),
        ..Default::default()
    };
    output.ssekms_encryption_context =
        encryption::set_encryption_fields!(output, s3.write_response(write_key.as_ref()));
    output.checksum_type =
        integrity::set_checksum_fields!(output, integrity::ChecksumFields::of(info.checksum.as_ref()));
    Ok(S3Response::new(output))
}

/// Which bytes of the object a read serves, resolved against its size.
struct Span {
    length: u64,
    /// `Content-Range` when a range or part was asked for.
    content_range: Option<String>,
}

/// What a GetObject / HeadObject asked for, beyond the key.
struct ReadRequest {
    version_id: Option<String>,
    range: Option<ByteRange>,
    part_number: Option<u32>,
    conditions: Conditions,
}

fn read_request(
    version_id: Option<String>,
    range: Option<Range>,
    part_number: Option<i32>,
    conditions: Conditions,
) -> S3Result<ReadRequest> {
    let part_number = match part_number {
        None => None,
        Some(n) => Some(u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })?),
    };
    if part_number.is_some() && range.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    Ok(ReadRequest {
        version_id,
        range: range.map(convert::byte_range),
        part_number,
        conditions,
    })
}

fn content_range(offset: u64, length: u64, size: u64) -> String {
    if length == 0 {
        return format!("bytes */{size}");
    }
    format!("bytes {offset}-{}/{size}", offset + length - 1)
}

/// The part count S3 reports with `partNumber` reads of multipart objects.
fn parts_count(info: &ObjectInfo, part_number: Option<u32>) -> Option<i32> {
    part_number?;
    i32::try_from(info.parts.len()).ok()
}

/// Resolves the span of a HEAD request locally (HeadObject returns no span).
fn head_span(info: &ObjectInfo, read: &ReadRequest) -> S3Result<Span> {
    if let Some(range) = read.range {
        let (offset, length) = range
            .resolve(info.size)
            .ok_or_else(|| crate::map_object_error(ObjectError::InvalidRange { size: info.size }, None))?;
        return Ok(Span {
            length,
            content_range: Some(content_range(offset, length, info.size)),
        });
    }
    if let Some(number) = read.part_number {
        let n_parts = u32::try_from(info.parts.len()).unwrap_or(u32::MAX);
        let idx = usize::try_from(number - 1).unwrap_or(usize::MAX);
        let Some(part) = info.parts.get(idx) else {
            if number == 1 && info.parts.is_empty() {
                // An empty object has no stored parts; part 1 is the whole (empty) object.
                return Ok(Span {
                    length: 0,
                    content_range: None,
                });
            }
            return Err(crate::map_object_error(
                ObjectError::InvalidPartNumber {
                    part_number: number,
                    n_parts,
                },
                None,
            ));
        };
        let offset: u64 = info.parts[..idx].iter().map(|p| p.size).sum();
        return Ok(Span {
            length: part.size,
            content_range: Some(content_range(offset, part.size, info.size)),
        });
    }
    Ok(Span {
        length: info.size,
        content_range: None,
    })
}

/// Response header overrides (`response-content-type` and friends).
struct Overrides {
    content_type: Option<String>,
    content_language: Option<String>,
    expires: Option<Timestamp>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
}

/// The standard headers of a response, after overrides.
struct StandardHeaders {
    content_type: Option<String>,
    content_language: Option<String>,
    expires: Option<Timestamp>,
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
}

fn standard_headers(meta: &ObjectMetadata, o: Overrides) -> StandardHeaders {
    StandardHeaders {
        content_type: o
            .content_type
            .or_else(|| meta.content_type.clone())
            .or_else(|| Some(DEFAULT_CONTENT_TYPE.to_owned())),
        content_language: o.content_language.or_else(|| meta.content_language.clone()),
        expires: o
            .expires
            .or_else(|| meta.expires.as_deref().and_then(convert::parse_http_date)),
        cache_control: o.cache_control.or_else(|| meta.cache_control.clone()),
        content_disposition: o.content_disposition.or_else(|| meta.content_disposition.clone()),
        content_encoding: o.content_encoding.or_else(|| meta.content_encoding.clone()),
    }
}

pub(crate) async fn get_object(
    s3: &StrataS3,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let map_err = err_mapper(&req);
    let rid = request_id(&req).unwrap_or("-").to_owned();
    let input = req.input;
    let customer = encryption::customer_key(
        encryption::customer_headers!(input),
        s3.encryption.customer_keys_allowed,
    )?;
    let read = read_request(
        input.version_id,
        input.range,
        input.part_number,
        Conditions {
            if_match: input.if_match,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
            if_unmodified_since: input.if_unmodified_since,
        },
    )?;
    let opts = GetOptions {
        version_id: read.version_id.clone(),
        range: read.range,
        part_number: read.part_number,
    };
    let reader = s3
        .layer
        .get_object(&input.bucket, &input.key, opts)
        .await
        .map_err(map_err)?;
    read.conditions
        .check_read(&reader.info.etag, reader.info.mod_time)?;
    let encryption::OpenedRead {
        info,
        offset,
        length,
        body,
        fields,
    } = s3
        .encryption
        .open_reader(reader, customer.as_ref(), (&s3.region, &s3.account_id))
        .await?;
    let partial = read.range.is_some() || read.part_number.is_some();
    let checksum = read_checksum(&info, input.checksum_mode.as_ref(), &read);
    let lock = object_lock::lock_fields(&info.metadata);
    let headers = standard_headers(
        &info.metadata,
        Overrides {
            content_type: input.response_content_type,
            content_language: input.response_content_language,
            expires: input.response_expires,
            cache_control: input.response_cache_control,
            content_disposition: input.response_content_disposition,
            content_encoding: input.response_content_encoding,
        },
    );
    let mut output = GetObjectOutput {
        body: Some(BodyStream::blob(body, length, &rid)),
        accept_ranges: Some("bytes".to_owned()),
        content_length: Some(convert::size_i64(length)),
        content_range: partial.then(|| content_range(offset, length, info.size)),
        parts_count: parts_count(&info, read.part_number),
        e_tag: Some(convert::etag(&info.etag)),
        expiration: s3.expiration_header(&info, false).await,
        last_modified: Some(convert::timestamp(info.mod_time)),
        metadata: convert::user_metadata(&info.metadata),
        restore: crate::storage_class::restore_header(&info.metadata),
        storage_class: crate::storage_class::header(&info.metadata),
        version_id: info.version_id.clone(),
        tag_count: tagging::tag_count(&info.metadata.tags),
        object_lock_mode: lock.mode,
        object_lock_retain_until_date: lock.retain_until,
        object_lock_legal_hold_status: lock.legal_hold,
        content_type: headers.content_type,
        content_language: headers.content_language,
        expires: headers.expires,
        cache_control: headers.cache_control,
        content_disposition: headers.content_disposition,
        content_encoding: headers.content_encoding,
        ..Default::default()
    };
    output.checksum_type = integrity::set_checksum_fields!(output, checksum);
    encryption::set_encryption_fields!(output, fields);
    Ok(S3Response::new(output))
}

pub(crate) async fn head_object(
    s3: &StrataS3,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let customer = encryption::customer_key(
        encryption::customer_headers!(input),
        s3.encryption.customer_keys_allowed,
    )?;
    let read = read_request(
        input.version_id,
        input.range,
        input.part_number,
        Conditions {
            if_match: input.if_match,
            if_none_match: input.if_none_match,
            if_modified_since: input.if_modified_since,
            if_unmodified_since: input.if_unmodified_since,
        },
    )?;
    let opts = GetOptions {
        version_id: read.version_id.clone(),
        range: None,
        part_number: None,
    };
    let info = s3
        .layer
        .head_object(&input.bucket, &input.key, opts)
        .await
        .map_err(map_err)?;
    read.conditions.check_read(&info.etag, info.mod_time)?;
    let stored = encryption::Stored::of(&info)?;
    s3.encryption
        .check_customer_key(&input.bucket, &input.key, stored.as_ref(), customer.as_ref())?;
    let span = head_span(&info, &read)?;
    let headers = standard_headers(
        &info.metadata,
        Overrides {
            content_type: input.response_content_type,
            content_language: input.response_content_language,
            expires: input.response_expires,
            cache_control: input.response_cache_control,
            content_disposition: input.response_content_disposition,
            content_encoding: input.response_content_encoding,
        },
    );
    let tag_count = tagging::tag_count(&info.metadata.tags);
    let lock = object_lock::lock_fields(&info.metadata);
    let checksum = read_checksum(&info, input.checksum_mode.as_ref(), &read);
    let mut output = HeadObjectOutput {
        object_lock_mode: lock.mode,
        object_lock_retain_until_date: lock.retain_until,
        object_lock_legal_hold_status: lock.legal_hold,
        accept_ranges: Some("bytes".to_owned()),
        content_length: Some(convert::size_i64(span.length)),
        content_range: span.content_range,
        parts_count: parts_count(&info, read.part_number),
        e_tag: Some(convert::etag(&info.etag)),
        expiration: s3.expiration_header(&info, false).await,
        last_modified: Some(convert::timestamp(info.mod_time)),
        metadata: convert::user_metadata(&info.metadata),
        restore: crate::storage_class::restore_header(&info.metadata),
        storage_class: crate::storage_class::header(&info.metadata),
        version_id: info.version_id.clone(),
        content_type: headers.content_type,
        content_language: headers.content_language,
        expires: headers.expires,
        cache_control: headers.cache_control,
        content_disposition: headers.content_disposition,
        content_encoding: headers.content_encoding,
        ..Default::default()
    };
    output.checksum_type = integrity::set_checksum_fields!(output, checksum);
    encryption::set_encryption_fields!(output, s3.read_response(stored.as_ref(), customer.as_ref()));
    let mut resp = S3Response::new(output);
    // HeadObjectOutput has no tag count; S3 and MinIO send it on HEAD as on GET.
    if let Some(count) = tag_count {
        resp.headers
            .insert("x-amz-tagging-count", http::HeaderValue::from(count));
    }
    Ok(resp)
}

pub(crate) async fn delete_object(
    s3: &StrataS3,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let map_err = err_mapper(&req);
    let bypass = object_lock::bypass_governance(
        s3,
        &req.extensions,
        req.input.bypass_governance_retention,
        &req.input.bucket,
        &req.input.key,
    );
    let input = req.input;
    if input.if_match_last_modified_time.is_some() || input.if_match_size.is_some() {
        // S3 takes these on directory buckets only.
        return Err(not_implemented(
            "x-amz-if-match-last-modified-time and x-amz-if-match-size",
        ));
    }
    let condition = write_condition(input.if_match.as_ref(), None)?;
    delete_condition_allowed(s3, &req.extensions, condition.as_ref(), &input.bucket, &input.key)?;
    let result = delete_one(s3, &input.bucket, &input.key, input.version_id, bypass, condition)
        .await
        .map_err(map_err)?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: result.delete_marker.then_some(true),
        version_id: result.version_id,
        request_charged: None,
    }))
}

/// A conditional delete with an ETag reveals the object's ETag, so S3 requires
/// `s3:GetObject` besides the delete permission (`If-Match: *` needs only the delete).
fn delete_condition_allowed(
    s3: &StrataS3,
    extensions: &http::Extensions,
    condition: Option<&WriteCondition>,
    bucket: &str,
    key: &str,
) -> S3Result<()> {
    match condition {
        Some(WriteCondition::IfMatch(Some(_))) => {
            crate::authz::require_also(extensions, s3.authorized, "s3:GetObject", bucket, key)
        }
        _ => Ok(()),
    }
}

/// The condition of one key of a DeleteObjects (its `ETag` element; `*` for any).
fn listed_delete_condition(etag: Option<&ETag>) -> Option<WriteCondition> {
    let etag = etag?.value().trim_matches('"');
    Some(WriteCondition::IfMatch((etag != "*").then(|| etag.to_owned())))
}

/// Deletes one key or version. S3 answers success for a key that does not exist, so the
/// object layer's `NoSuchKey` counts as done (only when no version was named, and no
/// condition: a conditional delete of a missing key is `NoSuchKey`).
async fn delete_one(
    s3: &StrataS3,
    bucket: &str,
    key: &str,
    version_id: Option<String>,
    bypass_governance: bool,
    condition: Option<WriteCondition>,
) -> Result<strata_object::DeleteResult, ObjectError> {
    let by_version = version_id.is_some();
    let conditional = condition.is_some();
    match s3
        .layer
        .delete_object(
            bucket,
            key,
            DeleteOptions {
                version_id: version_id.clone(),
                bypass_governance,
                condition,
                expect: None,
            },
        )
        .await
    {
        Ok(result) => Ok(result),
        Err(ObjectError::NoSuchKey { .. }) if !by_version && !conditional => {
            Ok(strata_object::DeleteResult::default())
        }
        Err(ObjectError::NoSuchVersion { .. }) if by_version => Ok(strata_object::DeleteResult {
            version_id,
            delete_marker: false,
        }),
        Err(e) => Err(e),
    }
}

pub(crate) async fn delete_objects(
    s3: &StrataS3,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let map_err = err_mapper(&req);
    let rid = request_id(&req).map(str::to_owned);
    let input = req.input;
    let quiet = input.delete.quiet.unwrap_or(false);
    let objects = input.delete.objects;
    if objects.len() > LIST_KEYS_MAX {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    // The bucket must exist: S3 answers NoSuchBucket for the whole request.
    s3.layer.bucket_info(&input.bucket).await.map_err(map_err)?;
    let bucket = input.bucket.as_str();
    // AWS authorizes DeleteObjects key by key: a key the caller may not delete is an
    // AccessDenied entry, and the others go ahead.
    let grant = req.extensions.get::<crate::authz::AuthzGrant>().cloned();
    let asked_bypass = input.bypass_governance_retention;
    let extensions = &req.extensions;
    let rid_ref = rid.as_deref();
    let results: Vec<(ObjectIdentifier, Result<strata_object::DeleteResult, S3Error>)> =
        futures::stream::iter(objects)
            .map(|obj| {
                let grant = grant.clone();
                async move {
                    let action = if obj.version_id.is_some() {
                        "s3:DeleteObjectVersion"
                    } else {
                        "s3:DeleteObject"
                    };
                    let allowed = match &grant {
                        Some(g) => g.allows(action, bucket, &obj.key),
                        None => !s3.authorized,
                    };
                    let bypass =
                        object_lock::bypass_governance(s3, extensions, asked_bypass, bucket, &obj.key);
                    let condition = listed_delete_condition(obj.e_tag.as_ref());
                    let allowed = allowed
                        && delete_condition_allowed(s3, extensions, condition.as_ref(), bucket, &obj.key)
                            .is_ok();
                    let result = if allowed {
                        delete_one(s3, bucket, &obj.key, obj.version_id.clone(), bypass, condition)
                            .await
                            .map_err(|e| crate::map_object_error(e, rid_ref))
                    } else {
                        Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"))
                    };
                    (obj, result)
                }
            })
            .buffered(DELETE_OBJECTS_CONCURRENCY_MAX)
            .collect()
            .await;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (obj, result) in results {
        match result {
            Ok(r) => {
                if quiet {
                    continue;
                }
                let created_marker = r.delete_marker && obj.version_id.is_none();
                deleted.push(DeletedObject {
                    key: Some(obj.key),
                    version_id: if created_marker { None } else { obj.version_id },
                    delete_marker: r.delete_marker.then_some(true),
                    delete_marker_version_id: if r.delete_marker {
                        Some(r.version_id.unwrap_or_else(|| "null".to_owned()))
                    } else {
                        None
                    },
                });
            }
            Err(s3_err) => {
                errors.push(s3s::dto::Error {
                    code: Some(s3_err.code().as_str().to_owned()),
                    message: s3_err.message().map(str::to_owned),
                    key: Some(obj.key),
                    version_id: obj.version_id,
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(errors),
        request_charged: None,
    }))
}

/// The source of a copy: bucket, key and version.
pub(crate) struct CopySourceRef {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) version_id: Option<String>,
}

pub(crate) fn copy_source(src: CopySource) -> S3Result<CopySourceRef> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok(CopySourceRef {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.map(Into::into),
        }),
        _ => Err(not_implemented("Copying from an access point or outpost")),
    }
}

/// Checks `x-amz-copy-source-if-*` against the source version; returns the source's info
/// when it was looked up. (The check and the copy are two steps: a write in between is not
/// detected, as with S3's own eventual checks.)
pub(crate) async fn check_copy_source_conditions<T>(
    s3: &StrataS3,
    req: &S3Request<T>,
    src: &CopySourceRef,
    conditions: &Conditions,
) -> S3Result<Option<ObjectInfo>> {
    if conditions.is_empty() {
        return Ok(None);
    }
    let info = s3
        .layer
        .head_object(
            &src.bucket,
            &src.key,
            GetOptions {
                version_id: src.version_id.clone(),
                ..Default::default()
            },
        )
        .await
        .map_err(err_mapper(req))?;
    conditions.check_copy_source(&info.etag, info.mod_time)?;
    Ok(Some(info))
}

/// A conditional header of a CopyObject (on its destination key).
fn destination_condition(
    headers: &http::HeaderMap,
    name: &http::HeaderName,
) -> S3Result<Option<ETagCondition>> {
    headers
        .get(name)
        .map(|value| {
            ETagCondition::parse_http_header(value.as_bytes()).map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("Invalid {name} header value"),
                )
            })
        })
        .transpose()
}

fn replace_metadata(directive: Option<&MetadataDirective>) -> S3Result<bool> {
    match directive.map(MetadataDirective::as_str) {
        None | Some(MetadataDirective::COPY) => Ok(false),
        Some(MetadataDirective::REPLACE) => Ok(true),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Unknown metadata directive.",
        )),
    }
}

fn replace_tags(directive: Option<&TaggingDirective>) -> S3Result<bool> {
    match directive.map(TaggingDirective::as_str) {
        None | Some(TaggingDirective::COPY) => Ok(false),
        Some(TaggingDirective::REPLACE) => Ok(true),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Unknown tagging directive.",
        )),
    }
}

pub(crate) async fn copy_object(
    s3: &StrataS3,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let map_err = err_mapper(&req);
    let input = &req.input;
    let storage_class = crate::storage_class::for_write(&s3.layer, input.storage_class.as_ref())?;
    let replace_tags = replace_tags(input.tagging_directive.as_ref())?;
    let new_tags = tagging::request_tags(input.tagging.as_deref())?;
    let src = copy_source(input.copy_source.clone())?;
    let replace = replace_metadata(input.metadata_directive.as_ref())?;
    // s3s 0.14.1 has no fields for a CopyObject's own If-Match / If-None-Match (conditions
    // on the destination, unlike the x-amz-copy-source-if-* ones): read from the headers.
    let condition = write_condition(
        destination_condition(&req.headers, &http::header::IF_MATCH)?.as_ref(),
        destination_condition(&req.headers, &http::header::IF_NONE_MATCH)?.as_ref(),
    )?;
    let checksum = input
        .checksum_algorithm
        .as_ref()
        .map(|a| integrity::algorithm_named(a.as_str()))
        .transpose()?;
    let encrypts = input.server_side_encryption.is_some() || input.sse_customer_algorithm.is_some();
    if src.bucket == input.bucket
        && src.key == input.key
        && input.storage_class.is_none()
        && src.version_id.is_none()
        && !replace
        && checksum.is_none()
        && !encrypts
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            SELF_COPY_MESSAGE,
        ));
    }
    let conditions = Conditions {
        if_match: input.copy_source_if_match.clone(),
        if_none_match: input.copy_source_if_none_match.clone(),
        if_modified_since: input.copy_source_if_modified_since.clone(),
        if_unmodified_since: input.copy_source_if_unmodified_since.clone(),
    };
    check_copy_source_conditions(s3, &req, &src, &conditions).await?;
    let open_source = copy_source_opener(s3, &src, encryption::customer_headers!(input, copy_source)).await?;
    let write_key = s3
        .write_key(&input.bucket, &input.key, encryption::write_headers!(input))
        .await?;
    let writer = s3.writer_account(&req);
    let acl = acl_for_object_write(
        s3,
        &input.bucket,
        writer.as_deref(),
        ObjectAclHeaders::of(
            input.acl.as_ref(),
            input.grant_full_control.as_deref(),
            input.grant_read.as_deref(),
            input.grant_read_acp.as_deref(),
            input.grant_write_acp.as_deref(),
        ),
        &map_err,
    )
    .await?;
    let (retention, legal_hold) = object_lock::lock_for_write(
        s3,
        &req.extensions,
        (&input.bucket, &input.key),
        object_lock::LockHeaders::of(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.as_ref(),
        ),
        input.tagging.is_some(),
        &map_err,
    )
    .await?;
    let stored_encryption = encryption::stored_text(write_key.as_ref());
    let input = req.input;
    let metadata = if replace {
        MetadataInput {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            cache_control: input.cache_control,
            content_disposition: input.content_disposition,
            expires: input.expires,
            user: input.metadata,
        }
        .into_metadata()?
    } else {
        ObjectMetadata::default()
    };
    let info = s3
        .layer
        .copy_object(
            (
                &src.bucket,
                &src.key,
                GetOptions {
                    version_id: src.version_id.clone(),
                    ..Default::default()
                },
            ),
            (&input.bucket, &input.key),
            CopyOptions {
                checksum,
                condition,
                open_source: Some(open_source),
                sealer: write_key.as_ref().map(|k| k.sealer(1)).transpose()?,
            },
            move |src: &ObjectInfo| {
                let mut metadata = if replace { metadata } else { src.metadata.clone() };
                metadata.tags = if replace_tags {
                    new_tags
                } else {
                    src.metadata.tags.clone()
                };
                // A copy is a new object: it takes the request's ACL and object lock settings
                // (or the bucket's default retention), never the source's.
                metadata.acl = acl;
                metadata.retention = retention;
                metadata.legal_hold = legal_hold;
                // And the request's storage class (STANDARD unless named), as on AWS; a
                // restored copy belongs to its source version alone.
                metadata.storage_class = storage_class;
                metadata.restore = None;
                // ... and the request's encryption (or the bucket's), never the source's.
                metadata.encryption = stored_encryption;
                metadata
            },
        )
        .await
        .map_err(map_err)?;
    let mut result = CopyObjectResult {
        e_tag: Some(convert::etag(&info.etag)),
        last_modified: Some(convert::timestamp(info.mod_time)),
        ..Default::default()
    };
    result.checksum_type =
        integrity::set_checksum_fields!(result, integrity::ChecksumFields::of(info.checksum.as_ref()));
    let mut output = CopyObjectOutput {
        copy_object_result: Some(result),
        copy_source_version_id: src.version_id,
        expiration: s3.expiration_header(&info, true).await,
        version_id: info.version_id,
        ..Default::default()
    };
    output.ssekms_encryption_context =
        encryption::set_encryption_fields!(output, s3.write_response(write_key.as_ref()));
    Ok(S3Response::new(output))
}

/// The opener of a copy source (its data key fetched now, with the source's SSE-C key from
/// the `x-amz-copy-source-server-side-encryption-customer-*` headers).
pub(crate) async fn copy_source_opener(
    s3: &StrataS3,
    src: &CopySourceRef,
    customer: encryption::CustomerHeaders<'_>,
) -> S3Result<strata_object::SourceOpener> {
    let customer = encryption::customer_key(customer, s3.encryption.customer_keys_allowed)?;
    let info = s3
        .version_info(&src.bucket, &src.key, src.version_id.clone())
        .await
        .map_err(|err| crate::map_object_error(err, None))?;
    let stored = encryption::Stored::of(&info)?;
    let data_key = match &stored {
        Some(stored) => Some(
            s3.encryption
                .read_key(&src.bucket, &src.key, stored, customer.as_ref())
                .await?,
        ),
        None => {
            s3.encryption
                .check_customer_key(&src.bucket, &src.key, None, customer.as_ref())?;
            None
        }
    };
    Ok(encryption::EncryptionConfig::source_opener(&info, data_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use strata_object::ObjectPartInfo;

    fn info_with_parts(sizes: &[u64]) -> ObjectInfo {
        ObjectInfo {
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
            is_latest: true,
            delete_marker: false,
            size: sizes.iter().sum(),
            stored_size: sizes.iter().sum(),
            seal: None,
            etag: "e-2".into(),
            mod_time: SystemTime::UNIX_EPOCH,
            meta_stamp: 0,
            remote_tier: None,
            metadata: ObjectMetadata::default(),
            parts: sizes
                .iter()
                .enumerate()
                .map(|(i, s)| ObjectPartInfo {
                    number: u32::try_from(i + 1).unwrap(),
                    size: *s,
                    stored_size: *s,
                    seal_header: None,
                    etag: "p".into(),
                    checksum: None,
                })
                .collect(),
            checksum: None,
        }
    }

    fn read(range: Option<ByteRange>, part_number: Option<u32>) -> ReadRequest {
        ReadRequest {
            version_id: None,
            range,
            part_number,
            conditions: Conditions::default(),
        }
    }

    #[test]
    fn head_span_by_part_and_range() {
        let info = info_with_parts(&[10, 5]);
        let span = head_span(&info, &read(None, Some(2))).unwrap();
        assert_eq!(span.length, 5);
        assert_eq!(span.content_range.as_deref(), Some("bytes 10-14/15"));
        let err = head_span(&info, &read(None, Some(3))).err().unwrap();
        assert_eq!(err.status_code().unwrap().as_u16(), 400);
        let span = head_span(&info, &read(Some(ByteRange::Suffix { len: 3 }), None)).unwrap();
        assert_eq!(span.content_range.as_deref(), Some("bytes 12-14/15"));
        let err = head_span(&info, &read(Some(ByteRange::From { first: 15 }), None))
            .err()
            .unwrap();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRange);
        let span = head_span(&info, &read(None, None)).unwrap();
        assert_eq!((span.length, span.content_range), (15, None));
    }

    #[test]
    fn read_request_rejects_range_with_part() {
        let range = Some(Range::Int {
            first: 0,
            last: Some(1),
        });
        assert!(read_request(None, range, Some(1), Conditions::default()).is_err());
        assert!(read_request(None, None, Some(0), Conditions::default()).is_err());
        assert!(read_request(None, None, Some(1), Conditions::default()).is_ok());
    }

    #[test]
    fn metadata_directive() {
        assert!(!replace_metadata(None).unwrap());
        assert!(!replace_metadata(Some(&MetadataDirective::from_static("COPY"))).unwrap());
        assert!(replace_metadata(Some(&MetadataDirective::from_static("REPLACE"))).unwrap());
        assert!(replace_metadata(Some(&MetadataDirective::from_static("MOVE"))).is_err());
    }

    #[test]
    fn overrides_win_over_stored_headers() {
        let meta = ObjectMetadata {
            content_type: Some("text/plain".into()),
            cache_control: Some("no-cache".into()),
            ..Default::default()
        };
        let h = standard_headers(
            &meta,
            Overrides {
                content_type: Some("application/json".into()),
                content_language: None,
                expires: None,
                cache_control: None,
                content_disposition: None,
                content_encoding: None,
            },
        );
        assert_eq!(h.content_type.as_deref(), Some("application/json"));
        assert_eq!(h.cache_control.as_deref(), Some("no-cache"));
    }

    #[test]
    fn content_range_format() {
        assert_eq!(content_range(0, 10, 10), "bytes 0-9/10");
        assert_eq!(content_range(0, 0, 0), "bytes */0");
    }
}
