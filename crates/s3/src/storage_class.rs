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
