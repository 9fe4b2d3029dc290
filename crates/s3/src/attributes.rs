//! GetObjectAttributes: an object version's ETag, checksum, parts (paginated), storage class
//! and size, without its data.
//!
//! Invariants: only the attributes asked for (`x-amz-object-attributes`) are returned, an
//! unknown name is `InvalidArgument`; `ObjectParts` is given for multipart objects only, and
//! parts carry checksums only when the object's checksum is composite (as S3 does). The
//! caller needs `s3:GetObject` (`s3:GetObjectVersion` for a version) besides the attributes
//! action, as S3 requires.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_object::{LIST_KEYS_MAX, ObjectInfo};

use crate::convert;
use crate::integrity;
use crate::service::{StrataS3, err_mapper};

/// The attributes a request asks for.
#[derive(Default)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

fn wanted(list: &ObjectAttributesList) -> S3Result<Wanted> {
    let mut wanted = Wanted::default();
    // Some clients send the list as one comma-separated header value.
    let names = list.iter().flat_map(|a| a.as_str().split(',')).map(str::trim);
    for name in names.filter(|n| !n.is_empty()) {
        let flag = match name {
            ObjectAttributes::ETAG => &mut wanted.etag,
            ObjectAttributes::CHECKSUM => &mut wanted.checksum,
            ObjectAttributes::OBJECT_PARTS => &mut wanted.parts,
            ObjectAttributes::STORAGE_CLASS => &mut wanted.storage_class,
            ObjectAttributes::OBJECT_SIZE => &mut wanted.size,
            _ => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "Invalid attribute name specified.",
                ));
            }
        };
        *flag = true;
    }
    if !(wanted.etag || wanted.checksum || wanted.parts || wanted.storage_class || wanted.size) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    Ok(wanted)
}

/// A page of the object's parts after `marker`, at most `max` long.
fn parts_page(info: &ObjectInfo, marker: u32, max: usize) -> GetObjectAttributesParts {
    let after: Vec<_> = info.parts.iter().filter(|p| p.number > marker).collect();
    let is_truncated = after.len() > max;
    let page = &after[..after.len().min(max)];
    let algorithm = info.checksum.as_ref().map(|c| c.algorithm);
    let parts = page
        .iter()
        .map(|p| {
            let mut part = ObjectPart {
                part_number: i32::try_from(p.number).ok(),
                size: Some(convert::size_i64(p.size)),
                ..Default::default()
            };
            let digest = algorithm.zip(p.checksum.as_deref());
            integrity::set_checksum_fields!(part, integrity::ChecksumFields::part(digest));
            part
        })
        .collect();
    GetObjectAttributesParts {
        is_truncated: Some(is_truncated),
        max_parts: i32::try_from(max).ok(),
        next_part_number_marker: page.last().and_then(|p| i32::try_from(p.number).ok()),
        part_number_marker: i32::try_from(marker).ok(),
        parts: Some(parts),
        total_parts_count: i32::try_from(info.parts.len()).ok(),
    }
}

pub(crate) async fn get_object_attributes(
    s3: &StrataS3,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let map_err = err_mapper(&req);
    let input = &req.input;
    let customer = crate::encryption::customer_key(
        crate::encryption::customer_headers!(input),
        s3.encryption.customer_keys_allowed,
    )?;
    let read_action = if input.version_id.is_some() {
        "s3:GetObjectVersion"
    } else {
        "s3:GetObject"
    };
    crate::authz::require_also(
        &req.extensions,
        s3.authorized,
        read_action,
        &input.bucket,
        &input.key,
    )?;
    let wanted = wanted(&input.object_attributes)?;
    let max_parts = match input.max_parts {
        None => LIST_KEYS_MAX,
        Some(n) => usize::try_from(convert::non_negative(n, "max-parts")?)
            .unwrap_or(LIST_KEYS_MAX)
            .min(LIST_KEYS_MAX),
    };
    let marker = match input.part_number_marker {
        None => 0,
        Some(n) => convert::non_negative(n, "part-number-marker")?,
    };
    let info = s3
        .version_info(&input.bucket, &input.key, input.version_id.clone())
        .await
        .map_err(map_err)?;
    // An SSE-C version's attributes need its key, as its data does.
    s3.encryption.check_customer_key(
        &input.bucket,
        &input.key,
        crate::encryption::Stored::of(&info)?.as_ref(),
        customer.as_ref(),
    )?;
    let multipart = info.etag.contains('-');
    let mut checksum = Checksum::default();
    let checksum_type =
        integrity::set_checksum_fields!(checksum, integrity::ChecksumFields::of(info.checksum.as_ref()));
    checksum.checksum_type = checksum_type;
    Ok(S3Response::new(GetObjectAttributesOutput {
        e_tag: wanted.etag.then(|| ETag::Strong(info.etag.clone())),
        checksum: (wanted.checksum && info.checksum.is_some()).then_some(checksum),
        object_parts: (wanted.parts && multipart).then(|| parts_page(&info, marker, max_parts)),
        storage_class: wanted
            .storage_class
            .then(|| StorageClass::from(crate::storage_class::name_of(&info.metadata).to_owned())),
        object_size: wanted.size.then(|| convert::size_i64(info.size)),
        last_modified: Some(convert::timestamp(info.mod_time)),
        version_id: info.version_id,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> ObjectAttributesList {
        names
            .iter()
            .map(|n| ObjectAttributes::from((*n).to_owned()))
            .collect()
    }

    #[test]
    fn attribute_names_are_checked() {
        let w = wanted(&list(&["ETag", "ObjectSize"])).unwrap();
        assert!(w.etag && w.size && !w.parts && !w.checksum && !w.storage_class);
        let w = wanted(&list(&["Checksum,ObjectParts", "StorageClass"])).unwrap();
        assert!(w.checksum && w.parts && w.storage_class);
        assert_eq!(
            wanted(&list(&["ETag", "Color"])).err().map(|e| e.code().clone()),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            wanted(&list(&[])).err().map(|e| e.code().clone()),
            Some(S3ErrorCode::InvalidRequest)
        );
    }
}
