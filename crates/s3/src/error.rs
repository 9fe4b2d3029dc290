//! The one place where object-layer errors become S3 errors, and the front door's own error type.
//!
//! Invariants: [`map_object_error`] names every known [`ObjectError`] variant (the only wildcard
//! arm exists because the enum is `#[non_exhaustive]` across crates, and it answers
//! `InternalError`); internal details (drive, erasure, corruption) are logged with the request id
//! and never sent to the client; quorum loss is `503 SlowDown`, never a 500.

use http::{HeaderMap, HeaderValue, StatusCode};
use s3s::{S3Error, S3ErrorCode};
use strata_object::ObjectError;

/// Errors of setting up the front door (the per-request errors are [`S3Error`]s).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrontDoorError {
    /// The access key is too short or has characters S3 clients cannot send.
    #[error("the root access key must be at least {min_chars} characters without whitespace or ':'")]
    InvalidAccessKey {
        /// Shortest allowed length.
        min_chars: usize,
    },
    /// The secret key is too short or has control characters.
    #[error("the root secret key must be at least {min_chars} characters without control characters")]
    InvalidSecretKey {
        /// Shortest allowed length.
        min_chars: usize,
    },
    /// A virtual-host domain is not a valid host name, or two of them overlap.
    #[error("invalid virtual-host domain list {domains:?}: {reason}")]
    InvalidDomain {
        /// The domains configured.
        domains: Vec<String>,
        /// What s3s rejected.
        reason: String,
    },
}

/// An S3 error with a status that s3s's code table does not know (or knows differently).
fn custom(code: &'static str, status: StatusCode, message: &'static str) -> S3Error {
    let code = S3ErrorCode::from_bytes(code.as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    let mut err = S3Error::with_message(code, message);
    err.set_status_code(status);
    err
}

/// Text fragments by which s3s's body-stream errors can be recognised. s3s's own error types
/// (`AwsChunkedStreamError`, `UploadStreamError`) live in private modules, so a downcast is not
/// possible; their `Display` texts are stable parts of s3s 0.14.
const CHUNK_SIGNATURE_MISMATCH_TEXT: &str = "SignatureMismatch";
const PAYLOAD_SHA256_MISMATCH_TEXT: &str = "UploadStreamError: Sha256Mismatch";

/// Maps an object-layer error to the S3 error AWS would send. `request_id` is logged with
/// internal failures (and set on the error so that it appears in the XML body).
pub fn map_object_error(err: ObjectError, request_id: Option<&str>) -> S3Error {
    let request_id_logged = request_id.unwrap_or("-");
    let mut s3_err = match &err {
        ObjectError::NoSuchBucket { .. } => {
            S3Error::with_message(S3ErrorCode::NoSuchBucket, "The specified bucket does not exist")
        }
        ObjectError::BucketExists { .. } => S3Error::with_message(
            S3ErrorCode::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it.",
        ),
        ObjectError::BucketNotEmpty { .. } => S3Error::with_message(
            S3ErrorCode::BucketNotEmpty,
            "The bucket you tried to delete is not empty",
        ),
        ObjectError::InvalidBucketName { reason, .. } => S3Error::with_message(
            S3ErrorCode::InvalidBucketName,
            format!("The specified bucket is not valid: {reason}"),
        ),
        ObjectError::KeyTooLong { .. } => {
            S3Error::with_message(S3ErrorCode::KeyTooLongError, "Your key is too long")
        }
        ObjectError::InvalidObjectKey { reason } => S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Invalid object key: {reason}"),
        ),
        ObjectError::NoSuchKey {
            delete_marker_version,
            ..
        } => {
            let mut e = S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.");
            if let Some(version_id) = delete_marker_version {
                let mut headers = HeaderMap::new();
                headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(version_id) {
                    headers.insert("x-amz-version-id", v);
                }
                e.set_headers(headers);
            }
            e
        }
        ObjectError::NoSuchVersion { .. } => S3Error::with_message(
            S3ErrorCode::NoSuchVersion,
            "The specified version does not exist.",
        ),
        ObjectError::VersionIsDeleteMarker { version_id, .. } => {
            let mut e = S3Error::with_message(
                S3ErrorCode::MethodNotAllowed,
                "The specified method is not allowed against this resource.",
            );
            let mut headers = HeaderMap::new();
            headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
            if let Ok(v) = HeaderValue::from_str(version_id) {
                headers.insert("x-amz-version-id", v);
            }
            e.set_headers(headers);
            e
        }
        ObjectError::InvalidVersionId { .. } => {
            S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid version id specified")
        }
        ObjectError::InvalidRange { size } => {
            let mut e = S3Error::with_message(
                S3ErrorCode::InvalidRange,
                "The requested range is not satisfiable",
            );
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(http::header::CONTENT_RANGE, v);
            }
            e.set_headers(headers);
            e
        }
        // S3 answers 400 here (not 416: the part, not a byte range, is what does not exist).
        ObjectError::InvalidPartNumber { .. } => custom(
            "InvalidPartNumber",
            StatusCode::BAD_REQUEST,
            "The requested partnumber is not satisfiable",
        ),
        ObjectError::IncompleteBody { .. } => S3Error::with_message(
            S3ErrorCode::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        ),
        ObjectError::EntityTooLarge { .. } => S3Error::with_message(
            S3ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size.",
        ),
        ObjectError::BadDigest => S3Error::with_message(
            S3ErrorCode::BadDigest,
            "The Content-MD5 you specified did not match what we received.",
        ),
        ObjectError::Sha256Mismatch => sha256_mismatch(),
        ObjectError::BodyRead(source) => body_read_error(&source.to_string(), request_id_logged),
        ObjectError::NoSuchUpload { .. } => S3Error::with_message(
            S3ErrorCode::NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        ),
        ObjectError::InvalidPart { .. } => S3Error::with_message(
            S3ErrorCode::InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        ),
        ObjectError::InvalidPartOrder => S3Error::with_message(
            S3ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ),
        ObjectError::EntityTooSmall { .. } => S3Error::with_message(
            S3ErrorCode::EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size.",
        ),
        ObjectError::InvalidPartNumberArgument { .. } => S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        ),
        ObjectError::InvalidRequest { reason } => S3Error::with_message(S3ErrorCode::InvalidRequest, *reason),
        ObjectError::InvalidRequestMessage { message } => {
            S3Error::with_message(S3ErrorCode::InvalidRequest, message.clone())
        }
        ObjectError::CopyRangeOutsideSource { size } => S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Range specified is not valid for source object of size: {size}"),
        ),
        ObjectError::ChecksumMismatch { algorithm } => S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!("The {algorithm} you specified did not match the calculated checksum."),
        ),
        ObjectError::PreconditionFailed => S3Error::with_message(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ),
        ObjectError::InvalidBucketState { reason } => {
            S3Error::with_message(S3ErrorCode::InvalidBucketState, *reason)
        }
        ObjectError::UnknownStorageClass { .. } => S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            "The storage class you specified is not valid",
        ),
        ObjectError::NotRestored { .. } => S3Error::with_message(
            S3ErrorCode::InvalidObjectState,
            "The operation is not valid for the object's storage class",
        ),
        ObjectError::NotArchived => S3Error::with_message(
            S3ErrorCode::InvalidObjectState,
            "Restore is not allowed for the object's current storage class",
        ),
        ObjectError::RestoreInProgress => S3Error::with_message(
            S3ErrorCode::RestoreAlreadyInProgress,
            "Object restore is already in progress",
        ),
        ObjectError::TierUnavailable { tier, .. } => {
            tracing::warn!(request_id = request_id_logged, error = %err, "remote tier unavailable");
            let mut e = S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                format!(
                    "The object's data is in the remote tier {tier}, which is unavailable now; please retry later"
                ),
            );
            e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            e
        }
        // AWS refuses a locked version's deletion (or a weakened retention) as AccessDenied.
        ObjectError::ObjectLocked { .. } => S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Access Denied because object protected by object lock.",
        ),
        ObjectError::ReadQuorum { .. }
        | ObjectError::WriteQuorum { .. }
        | ObjectError::LockUnavailable { .. }
        | ObjectError::MemoryBusy { .. } => {
            tracing::warn!(request_id = request_id_logged, error = %err, "quorum not available");
            S3Error::with_message(
                S3ErrorCode::SlowDown,
                "Resource requested is unreadable, please reduce your request rate",
            )
        }
        // Not SlowDown: SDKs retry that, and a full store does not get emptier by waiting.
        // MinIO's code and status, so tooling that knows MinIO reads it as "full".
        ObjectError::StorageFull { .. } | ObjectError::Drive(strata_drive::DriveError::Full { .. }) => {
            // The drives log the change into the full state once; this is per request.
            tracing::debug!(request_id = request_id_logged, error = %err, "write refused: storage full");
            storage_full()
        }
        ObjectError::Corrupt { .. }
        | ObjectError::Internal { .. }
        | ObjectError::Drive(_)
        | ObjectError::Erasure(_) => internal(&err, request_id_logged),
        // `ObjectError` is #[non_exhaustive]: a variant added later is an internal error until
        // it gets its own arm above.
        _ => internal(&err, request_id_logged),
    };
    if let Some(id) = request_id {
        s3_err.set_request_id(id);
    }
    s3_err
}

/// HTTP status of [`STORAGE_FULL_CODE`]: 507 Insufficient Storage (RFC 4918), which no SDK
/// retries.
pub const STORAGE_FULL_STATUS: StatusCode = StatusCode::INSUFFICIENT_STORAGE;
/// The error code of a write refused because the drives are full (MinIO's, for its tooling).
pub const STORAGE_FULL_CODE: &str = "XMinioStorageFull";

fn storage_full() -> S3Error {
    custom(
        STORAGE_FULL_CODE,
        STORAGE_FULL_STATUS,
        "The drives have no room for this write; delete objects or add capacity, then retry.",
    )
}

fn internal(err: &ObjectError, request_id: &str) -> S3Error {
    tracing::error!(request_id, error = %err, "internal error");
    S3Error::with_message(
        S3ErrorCode::InternalError,
        "We encountered an internal error, please try again.",
    )
}

fn sha256_mismatch() -> S3Error {
    custom(
        "XAmzContentSHA256Mismatch",
        StatusCode::BAD_REQUEST,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

/// A body-stream failure: s3s's chunk-signature and payload-hash checks surface here as stream
/// errors; anything else is a client that went away or sent a short body.
fn body_read_error(source_text: &str, request_id: &str) -> S3Error {
    if source_text.contains(PAYLOAD_SHA256_MISMATCH_TEXT) {
        return sha256_mismatch();
    }
    if source_text.contains(CHUNK_SIGNATURE_MISMATCH_TEXT) {
        return S3Error::with_message(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    tracing::info!(request_id, error = source_text, "request body read failed");
    S3Error::with_message(
        S3ErrorCode::IncompleteBody,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: ObjectError, code: &str, status: u16) {
        let shown = err.to_string();
        let s3 = map_object_error(err, Some("REQ1"));
        assert_eq!(s3.code().as_str(), code, "for {shown}");
        assert_eq!(s3.status_code().map(|s| s.as_u16()), Some(status), "for {shown}");
        assert_eq!(s3.request_id(), Some("REQ1"));
    }

    #[test]
    fn bucket_errors() {
        check(
            ObjectError::NoSuchBucket { bucket: "b".into() },
            "NoSuchBucket",
            404,
        );
        check(
            ObjectError::BucketExists { bucket: "b".into() },
            "BucketAlreadyOwnedByYou",
            409,
        );
        check(
            ObjectError::BucketNotEmpty { bucket: "b".into() },
            "BucketNotEmpty",
            409,
        );
        check(
            ObjectError::InvalidBucketName {
                bucket: "B".into(),
                reason: "upper case",
            },
            "InvalidBucketName",
            400,
        );
    }

    #[test]
    fn key_errors() {
        check(
            ObjectError::KeyTooLong { len_bytes: 1025 },
            "KeyTooLongError",
            400,
        );
        check(
            ObjectError::InvalidObjectKey {
                reason: "the key is empty",
            },
            "InvalidArgument",
            400,
        );
        check(
            ObjectError::NoSuchKey {
                bucket: "b".into(),
                key: "k".into(),
                delete_marker_version: None,
            },
            "NoSuchKey",
            404,
        );
        check(
            ObjectError::NoSuchVersion {
                key: "k".into(),
                version_id: "v".into(),
            },
            "NoSuchVersion",
            404,
        );
        check(
            ObjectError::VersionIsDeleteMarker {
                key: "k".into(),
                version_id: "v".into(),
            },
            "MethodNotAllowed",
            405,
        );
        check(
            ObjectError::InvalidVersionId {
                version_id: "v".into(),
            },
            "InvalidArgument",
            400,
        );
    }

    #[test]
    fn no_such_key_on_delete_marker_sets_headers() {
        let err = ObjectError::NoSuchKey {
            bucket: "b".into(),
            key: "k".into(),
            delete_marker_version: Some("v1".into()),
        };
        let s3 = map_object_error(err, None);
        let headers = s3.headers().unwrap();
        assert_eq!(headers.get("x-amz-delete-marker").unwrap(), "true");
        assert_eq!(headers.get("x-amz-version-id").unwrap(), "v1");
    }

    #[test]
    fn read_errors() {
        check(ObjectError::InvalidRange { size: 10 }, "InvalidRange", 416);
        check(
            ObjectError::InvalidPartNumber {
                part_number: 3,
                n_parts: 2,
            },
            "InvalidPartNumber",
            400,
        );
    }

    #[test]
    fn body_errors() {
        check(
            ObjectError::IncompleteBody { expected: 3, got: 2 },
            "IncompleteBody",
            400,
        );
        check(
            ObjectError::EntityTooLarge {
                size_bytes: 9,
                max_bytes: 8,
            },
            "EntityTooLarge",
            400,
        );
        check(ObjectError::BadDigest, "BadDigest", 400);
        check(ObjectError::Sha256Mismatch, "XAmzContentSHA256Mismatch", 400);
        check(
            ObjectError::BodyRead("connection reset".into()),
            "IncompleteBody",
            400,
        );
        check(
            ObjectError::BodyRead("AwsChunkedStreamError: SignatureMismatch".into()),
            "SignatureDoesNotMatch",
            403,
        );
        check(
            ObjectError::BodyRead("UploadStreamError: Sha256Mismatch".into()),
            "XAmzContentSHA256Mismatch",
            400,
        );
    }

    #[test]
    fn multipart_errors() {
        check(
            ObjectError::NoSuchUpload {
                upload_id: "u".into(),
            },
            "NoSuchUpload",
            404,
        );
        check(ObjectError::InvalidPart { number: 1 }, "InvalidPart", 400);
        check(ObjectError::InvalidPartOrder, "InvalidPartOrder", 400);
        check(
            ObjectError::EntityTooSmall {
                number: 1,
                size_bytes: 1,
            },
            "EntityTooSmall",
            400,
        );
        check(
            ObjectError::InvalidPartNumberArgument { number: 0 },
            "InvalidArgument",
            400,
        );
        check(
            ObjectError::InvalidRequest { reason: "why" },
            "InvalidRequest",
            400,
        );
        check(ObjectError::PreconditionFailed, "PreconditionFailed", 412);
        check(ObjectError::ObjectLocked { reason: "held" }, "AccessDenied", 403);
        check(
            ObjectError::InvalidBucketState { reason: "lock" },
            "InvalidBucketState",
            409,
        );
    }

    #[test]
    fn availability_and_internal_errors() {
        check(ObjectError::ReadQuorum { needed: 2, got: 1 }, "SlowDown", 503);
        check(ObjectError::WriteQuorum { needed: 3, got: 1 }, "SlowDown", 503);
        check(
            ObjectError::StorageFull { needed: 3, got: 1 },
            "XMinioStorageFull",
            507,
        );
        check(
            ObjectError::Drive(strata_drive::DriveError::Full { path: "/d".into() }),
            "XMinioStorageFull",
            507,
        );
        check(
            ObjectError::LockUnavailable {
                resource: "bucket/key".into(),
            },
            "SlowDown",
            503,
        );
        let corrupt = ObjectError::Corrupt {
            what: "secret internal detail".into(),
        };
        let s3 = map_object_error(corrupt, None);
        assert_eq!(s3.code(), &S3ErrorCode::InternalError);
        assert_eq!(s3.status_code(), Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!s3.message().unwrap_or_default().contains("secret"));
        check(
            ObjectError::Drive(strata_drive::DriveError::ShardNotFound),
            "InternalError",
            500,
        );
        check(
            ObjectError::Erasure(strata_erasure::ErasureError::InvalidLayout {
                n_data: 0,
                n_parity: 0,
            }),
            "InternalError",
            500,
        );
    }
}
