//! `x-amz-storage-class`: which storage classes a write may name (STANDARD and the
//! deployment's configured classes, `strata_object::StorageClassConfig`), and how a version's
//! class is reported (GET and HEAD omit STANDARD, as AWS does; listings always name it).

use s3s::dto::StorageClass;
use s3s::{S3Error, S3ErrorCode, S3Result};
use strata_object::{ObjectLayer, ObjectMetadata, STANDARD_CLASS};

/// The class a write asks for: `None` for STANDARD (or none asked), the name of a configured
/// class, else AWS's `InvalidStorageClass`.
pub(crate) fn for_write(layer: &ObjectLayer, class: Option<&StorageClass>) -> S3Result<Option<String>> {
    match class.map(StorageClass::as_str) {
        None | Some(STANDARD_CLASS) => Ok(None),
        Some(name) if layer.storage_class_exists(name) => Ok(Some(name.to_owned())),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            "The storage class you specified is not valid",
        )),
    }
}

/// A version's class name.
pub(crate) fn name_of(metadata: &ObjectMetadata) -> &str {
    metadata.storage_class.as_deref().unwrap_or(STANDARD_CLASS)
}

/// The `x-amz-storage-class` of GET and HEAD: none for STANDARD.
pub(crate) fn header(metadata: &ObjectMetadata) -> Option<StorageClass> {
    metadata.storage_class.clone().map(StorageClass::from)
}

/// The `x-amz-restore` of GET and HEAD: a restore in progress, or the expiry of the restored
/// copy (none before a restore, or once the copy expired).
pub(crate) fn restore_header(metadata: &ObjectMetadata) -> Option<String> {
    let restore = metadata.restore.as_ref()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if restore.in_progress(now) {
        return Some("ongoing-request=\"true\"".to_owned());
    }
    // Beyond year 9999 no HTTP date can be written (Days is capped well below).
    if !restore.readable(now) || restore.expiry_unix >= 253_402_300_800 {
        return None;
    }
    let expiry = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(restore.expiry_unix).unwrap_or(0));
    let date = crate::convert::http_date(&crate::convert::timestamp(expiry))?;
    Some(format!("ongoing-request=\"false\", expiry-date=\"{date}\""))
}

/// Longest restore, in days (a hundred years).
const RESTORE_DAYS_MAX: i32 = 36_500;

/// RestoreObject: a temporary copy of a version whose data is in an archival tier, for
/// `Days` (lifecycle days, rounded up to a day boundary as AWS does). 202 when a copy is
/// started, 200 when a readable copy's expiry moved, 409 while one is being made, 403
/// `InvalidObjectState` for a version not in an archival tier.
pub(crate) async fn restore_object(
    s3: &crate::service::StrataS3,
    req: s3s::S3Request<s3s::dto::RestoreObjectInput>,
) -> S3Result<s3s::S3Response<s3s::dto::RestoreObjectOutput>> {
    let map_err = crate::service::err_mapper(&req);
    let input = req.input;
    let request = input.restore_request.unwrap_or_default();
    if request.select_parameters.is_some() || request.output_location.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Select and output-location restores are not implemented",
        ));
    }
    let days = match request.days {
        Some(days) if days > RESTORE_DAYS_MAX => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Days must be at most {RESTORE_DAYS_MAX}"),
            ));
        }
        Some(days) if days > 0 => u32::try_from(days).unwrap_or(1),
        _ => {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema",
            ));
        }
    };
    let day = s3
        .lifecycle
        .as_ref()
        .map_or_else(strata_lifecycle::DayLength::default, |l| l.settings().day);
    let expiry = day.due_after(std::time::SystemTime::now(), days);
    let started = s3
        .layer
        .restore_version(&input.bucket, &input.key, input.version_id.as_deref(), expiry)
        .await
        .map_err(map_err)?;
    let mut resp = s3s::S3Response::new(s3s::dto::RestoreObjectOutput::default());
    if started == strata_object::RestoreStart::Started {
        resp.extensions
            .insert(crate::StatusOverride(http::StatusCode::ACCEPTED));
    }
    Ok(resp)
}
