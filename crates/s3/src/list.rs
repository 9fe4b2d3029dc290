//! Listing operations: ListObjects (v1), ListObjectsV2, ListObjectVersions.
//!
//! Invariants: a page holds at most [`LIST_KEYS_MAX`] entries; v1 returns `NextMarker` only
//! when a delimiter was given (as S3 does); a v2 continuation token is an opaque encoding of
//! the next marker and round-trips exactly; with `encoding-type=url` every key, prefix,
//! delimiter and marker in the answer is percent-encoded.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_object::{LIST_KEYS_MAX, ListOptions, ListVersionsOptions, ObjectInfo};

use crate::convert::{self, maybe_url_encode};
use crate::service::{StrataS3, err_mapper};
use strata_iam::acl::Owner as AclOwner;

/// The version id S3 shows for the null version.
const NULL_VERSION_ID: &str = "null";

/// Reads `max-keys`: absent means [`LIST_KEYS_MAX`], larger values are clamped to it.
fn max_keys(value: Option<i32>) -> S3Result<usize> {
    match value {
        None => Ok(LIST_KEYS_MAX),
        Some(n) => {
            let n = convert::non_negative(n, "max-keys")?;
            Ok(usize::try_from(n).unwrap_or(LIST_KEYS_MAX).min(LIST_KEYS_MAX))
        }
    }
}

fn max_keys_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The owner listings show: the bucket's account (objects written by other accounts into it
/// are shown as the bucket owner's too).
async fn bucket_owner(s3: &StrataS3, bucket: &str) -> AclOwner {
    s3.access
        .get(bucket)
        .await
        .map_or_else(|_| s3.owner.clone(), |config| config.owner(s3))
}

fn object_entry(info: ObjectInfo, owner: Option<&AclOwner>, url: bool) -> Object {
    Object {
        key: Some(maybe_url_encode(info.key, url)),
        e_tag: Some(convert::etag(&info.etag)),
        last_modified: Some(convert::timestamp(info.mod_time)),
        size: Some(convert::size_i64(info.size)),
        storage_class: Some(ObjectStorageClass::from(
            crate::storage_class::name_of(&info.metadata).to_owned(),
        )),
        owner: owner.map(convert::owner),
        ..Default::default()
    }
}

fn common_prefixes(prefixes: Vec<String>, url: bool) -> Vec<CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(maybe_url_encode(p, url)),
        })
        .collect()
}

fn empty_to_none(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

pub(crate) async fn list_objects(
    s3: &StrataS3,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let url = convert::url_encoding(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.unwrap_or_default();
    let delimiter = empty_to_none(input.delimiter);
    let marker = empty_to_none(input.marker);
    let page = s3
        .layer
        .list_objects(
            &input.bucket,
            ListOptions {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                marker: marker.clone(),
                max_keys: max,
            },
        )
        .await
        .map_err(map_err)?;
    let bucket_owner = bucket_owner(s3, &input.bucket).await;
    // max-keys=0 asks for nothing: S3 answers no keys and not truncated.
    let mut page = page;
    if max == 0 {
        page.is_truncated = false;
    }
    // S3 sends NextMarker only with a delimiter; without one the client uses the last key.
    let next_marker = if page.is_truncated && delimiter.is_some() {
        page.next_marker.map(|m| maybe_url_encode(m, url))
    } else {
        None
    };
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(maybe_url_encode(prefix, url)),
        marker: Some(maybe_url_encode(marker.unwrap_or_default(), url)),
        max_keys: Some(max_keys_i32(max)),
        is_truncated: Some(page.is_truncated),
        contents: Some(
            page.objects
                .into_iter()
                .map(|o| object_entry(o, Some(&bucket_owner), url))
                .collect(),
        ),
        common_prefixes: Some(common_prefixes(page.common_prefixes, url)),
        delimiter: delimiter.map(|d| maybe_url_encode(d, url)),
        next_marker,
        encoding_type: input.encoding_type,
        request_charged: None,
    }))
}

pub(crate) async fn list_objects_v2(
    s3: &StrataS3,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let url = convert::url_encoding(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.unwrap_or_default();
    let delimiter = empty_to_none(input.delimiter);
    let start_after = empty_to_none(input.start_after);
    let continuation_token = empty_to_none(input.continuation_token);
    let marker = match &continuation_token {
        Some(token) => Some(convert::decode_continuation_token(token)?),
        None => start_after.clone(),
    };
    let page = s3
        .layer
        .list_objects(
            &input.bucket,
            ListOptions {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                marker,
                max_keys: max,
            },
        )
        .await
        .map_err(map_err)?;
    let bucket_owner = bucket_owner(s3, &input.bucket).await;
    // max-keys=0 asks for nothing: S3 answers no keys and not truncated.
    let mut page = page;
    if max == 0 {
        page.is_truncated = false;
    }
    let owner = input.fetch_owner.unwrap_or(false).then_some(&bucket_owner);
    let key_count = page.objects.len() + page.common_prefixes.len();
    let next_continuation_token = if page.is_truncated {
        page.next_marker
            .as_deref()
            .map(convert::encode_continuation_token)
    } else {
        None
    };
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(maybe_url_encode(prefix, url)),
        max_keys: Some(max_keys_i32(max)),
        key_count: Some(max_keys_i32(key_count)),
        continuation_token,
        is_truncated: Some(page.is_truncated),
        next_continuation_token,
        contents: Some(
            page.objects
                .into_iter()
                .map(|o| object_entry(o, owner, url))
                .collect(),
        ),
        common_prefixes: Some(common_prefixes(page.common_prefixes, url)),
        delimiter: delimiter.map(|d| maybe_url_encode(d, url)),
        encoding_type: input.encoding_type,
        start_after: start_after.map(|s| maybe_url_encode(s, url)),
        request_charged: None,
    }))
}

pub(crate) async fn list_object_versions(
    s3: &StrataS3,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let url = convert::url_encoding(input.encoding_type.as_ref())?;
    let max = max_keys(input.max_keys)?;
    let prefix = input.prefix.unwrap_or_default();
    let delimiter = empty_to_none(input.delimiter);
    let key_marker = empty_to_none(input.key_marker);
    let version_id_marker = empty_to_none(input.version_id_marker);
    if version_id_marker.is_some() && key_marker.is_none() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "A version-id marker cannot be specified without a key marker.",
        ));
    }
    let page = s3
        .layer
        .list_object_versions(
            &input.bucket,
            ListVersionsOptions {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                key_marker: key_marker.clone(),
                version_id_marker: version_id_marker.clone(),
                max_keys: max,
            },
        )
        .await
        .map_err(map_err)?;
    let bucket_owner = bucket_owner(s3, &input.bucket).await;
    // max-keys=0 asks for nothing: S3 answers no keys and not truncated.
    let mut page = page;
    if max == 0 {
        page.is_truncated = false;
    }
    let mut versions = Vec::new();
    let mut delete_markers = Vec::new();
    for v in page.versions {
        let version_id = Some(v.version_id.clone().unwrap_or_else(|| NULL_VERSION_ID.to_owned()));
        if v.delete_marker {
            delete_markers.push(DeleteMarkerEntry {
                is_latest: Some(v.is_latest),
                key: Some(maybe_url_encode(v.key, url)),
                last_modified: Some(convert::timestamp(v.mod_time)),
                owner: Some(convert::owner(&bucket_owner)),
                version_id,
            });
        } else {
            versions.push(ObjectVersion {
                e_tag: Some(convert::etag(&v.etag)),
                is_latest: Some(v.is_latest),
                key: Some(maybe_url_encode(v.key, url)),
                last_modified: Some(convert::timestamp(v.mod_time)),
                owner: Some(convert::owner(&bucket_owner)),
                size: Some(convert::size_i64(v.size)),
                storage_class: Some(ObjectVersionStorageClass::from(
                    crate::storage_class::name_of(&v.metadata).to_owned(),
                )),
                version_id,
                ..Default::default()
            });
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(input.bucket),
        prefix: Some(maybe_url_encode(prefix, url)),
        key_marker: Some(maybe_url_encode(key_marker.unwrap_or_default(), url)),
        version_id_marker: Some(version_id_marker.unwrap_or_default()),
        max_keys: Some(max_keys_i32(max)),
        is_truncated: Some(page.is_truncated),
        next_key_marker: page
            .next_key_marker
            .filter(|_| page.is_truncated)
            .map(|m| maybe_url_encode(m, url)),
        next_version_id_marker: page.next_version_id_marker.filter(|_| page.is_truncated),
        versions: Some(versions),
        delete_markers: Some(delete_markers),
        common_prefixes: Some(common_prefixes(page.common_prefixes, url)),
        delimiter: delimiter.map(|d| maybe_url_encode(d, url)),
        encoding_type: input.encoding_type,
        request_charged: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_keys_defaults_and_clamps() {
        assert_eq!(max_keys(None).unwrap(), LIST_KEYS_MAX);
        assert_eq!(max_keys(Some(5)).unwrap(), 5);
        assert_eq!(max_keys(Some(0)).unwrap(), 0);
        assert_eq!(max_keys(Some(5000)).unwrap(), LIST_KEYS_MAX);
        assert!(max_keys(Some(-1)).is_err());
    }
}
