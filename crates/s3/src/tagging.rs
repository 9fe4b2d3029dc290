//! Object and bucket tagging: Put/Get/DeleteObjectTagging, Put/Get/DeleteBucketTagging, and
//! the `x-amz-tagging` header of PUT, CreateMultipartUpload and CopyObject.
//!
//! An object's tags live in its version record (`ObjectMetadata::tags`); changing them
//! rewrites that record on each drive ([`strata_object::ObjectLayer::update_object_metadata`]),
//! never the data. A bucket's tags are its `tagging` configuration blob (JSON pairs).
//!
//! Validation is AWS's: at most 10 tags per object and 50 per bucket, keys of 1 to 128 and
//! values of up to 256 Unicode characters from letters, digits, white space and `_ . : / = + - @`,
//! no duplicate keys, and no keys starting with `aws:`. Anything else is `InvalidTag` (400);
//! a tagging header that is not a query string is `InvalidArgument`.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::service::{StrataS3, err_mapper};

/// Name of the bucket configuration blob that holds the bucket's tags.
pub(crate) const BUCKET_TAGGING_CONFIG: &str = "tagging";
/// AWS's limit on an object's tags.
pub(crate) const OBJECT_TAGS_MAX: usize = 10;
/// AWS's limit on a bucket's tags.
const BUCKET_TAGS_MAX: usize = 50;
const KEY_CHARS_MAX: usize = 128;
const VALUE_CHARS_MAX: usize = 256;

fn invalid_tag(message: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidTag, message.into())
}

fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

/// Checks tag pairs as AWS does and returns them as a map; `max` is the object or bucket limit.
pub(crate) fn validate_tags(pairs: Vec<(String, String)>, max: usize) -> S3Result<BTreeMap<String, String>> {
    if pairs.len() > max {
        return Err(invalid_tag(if max == OBJECT_TAGS_MAX {
            "Object tags cannot be greater than 10".to_owned()
        } else {
            format!("Bucket tag count cannot be greater than {max}")
        }));
    }
    let mut tags = BTreeMap::new();
    for (key, value) in pairs {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > KEY_CHARS_MAX {
            return Err(invalid_tag(
                "The TagKey you have provided is too long, max 128 (or empty)",
            ));
        }
        if value.chars().count() > VALUE_CHARS_MAX {
            return Err(invalid_tag("The TagValue you have provided is too long, max 256"));
        }
        if !key.chars().all(allowed_char) {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if !value.chars().all(allowed_char) {
            return Err(invalid_tag("The TagValue you have provided is invalid"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid_tag("Your TagKey cannot be prefixed with aws:"));
        }
        if tags.insert(key, value).is_some() {
            return Err(invalid_tag("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(tags)
}

/// The pairs of a `Tagging` body.
fn tagging_pairs(tagging: Tagging) -> S3Result<Vec<(String, String)>> {
    tagging
        .tag_set
        .into_iter()
        .map(|tag| match (tag.key, tag.value) {
            (Some(key), Some(value)) => Ok((key, value)),
            _ => Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "Each Tag needs a Key and a Value",
            )),
        })
        .collect()
}

/// An `x-amz-tagging` header (a URL-encoded query string, `k1=v1&k2=v2`) as validated tags.
pub(crate) fn parse_tagging_header(header: &str) -> S3Result<BTreeMap<String, String>> {
    let mut pairs = Vec::new();
    for part in header.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| {
            let plus_as_space = s.replace('+', " ");
            percent_encoding::percent_decode_str(&plus_as_space)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
                    )
                })
        };
        pairs.push((decode(key)?, decode(value)?));
    }
    validate_tags(pairs, OBJECT_TAGS_MAX)
}

/// A browser form's `tagging` field (a `<Tagging>` document) as validated tags.
pub(crate) fn form_tags(xml: &str) -> S3Result<BTreeMap<String, String>> {
    let mut d = s3s::xml::Deserializer::new(xml.as_bytes());
    let tagging = <Tagging as s3s::xml::Deserialize>::deserialize(&mut d).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    })?;
    validate_tags(tagging_pairs(tagging)?, OBJECT_TAGS_MAX)
}

/// The optional `x-amz-tagging` header of a write as tags (empty when absent).
pub(crate) fn request_tags(header: Option<&str>) -> S3Result<BTreeMap<String, String>> {
    header.map_or_else(|| Ok(BTreeMap::new()), parse_tagging_header)
}

fn tag_set(tags: &BTreeMap<String, String>) -> TagSet {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

/// `x-amz-tagging-count` of a GET: the number of tags, absent when there are none.
pub(crate) fn tag_count(tags: &BTreeMap<String, String>) -> Option<TagCount> {
    (!tags.is_empty()).then(|| TagCount::try_from(tags.len()).unwrap_or(TagCount::MAX))
}

pub(crate) async fn put_object_tagging(
    s3: &StrataS3,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let tags = validate_tags(tagging_pairs(input.tagging)?, OBJECT_TAGS_MAX)?;
    let info = s3
        .layer
        .update_object_metadata(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            move |metadata| {
                metadata.tags = tags;
                Ok(())
            },
        )
        .await
        .map_err(map_err)?;
    Ok(S3Response::new(PutObjectTaggingOutput {
        version_id: info.version_id,
    }))
}

pub(crate) async fn get_object_tagging(
    s3: &StrataS3,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let info = s3
        .version_info(&input.bucket, &input.key, input.version_id)
        .await
        .map_err(map_err)?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: tag_set(&info.metadata.tags),
        version_id: info.version_id,
    }))
}

pub(crate) async fn delete_object_tagging(
    s3: &StrataS3,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let info = s3
        .layer
        .update_object_metadata(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            |metadata| {
                metadata.tags.clear();
                Ok(())
            },
        )
        .await
        .map_err(map_err)?;
    let mut resp = S3Response::new(DeleteObjectTaggingOutput {
        version_id: info.version_id,
    });
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn put_bucket_tagging(
    s3: &StrataS3,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let tags = validate_tags(tagging_pairs(input.tagging)?, BUCKET_TAGS_MAX)?;
    let blob = serde_json::to_vec(&tags).map_err(|_| S3Error::new(S3ErrorCode::InternalError))?;
    s3.layer
        .put_bucket_config(&input.bucket, BUCKET_TAGGING_CONFIG, blob.into())
        .await
        .map_err(map_err)?;
    let mut resp = S3Response::new(PutBucketTaggingOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

pub(crate) async fn get_bucket_tagging(
    s3: &StrataS3,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let map_err = err_mapper(&req);
    let bucket = req.input.bucket.as_str();
    let blob = s3
        .layer
        .get_bucket_config(bucket, BUCKET_TAGGING_CONFIG)
        .await
        .map_err(map_err)?
        .ok_or_else(|| S3Error::with_message(S3ErrorCode::NoSuchTagSet, "The TagSet does not exist"))?;
    let tags: BTreeMap<String, String> = serde_json::from_slice(&blob).map_err(|err| {
        tracing::error!(bucket, %err, "stored bucket tags do not decode");
        S3Error::new(S3ErrorCode::InternalError)
    })?;
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: tag_set(&tags),
    }))
}

pub(crate) async fn delete_bucket_tagging(
    s3: &StrataS3,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    let map_err = err_mapper(&req);
    s3.layer
        .delete_bucket_config(&req.input.bucket, BUCKET_TAGGING_CONFIG)
        .await
        .map_err(map_err)?;
    let mut resp = S3Response::new(DeleteBucketTaggingOutput::default());
    resp.status = Some(http::StatusCode::NO_CONTENT);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn code(result: S3Result<BTreeMap<String, String>>) -> String {
        result.unwrap_err().code().as_str().to_owned()
    }

    #[test]
    fn aws_limits_and_characters() {
        assert_eq!(
            validate_tags(pairs(&[("a", "1"), ("b c", "x/y@z+=-_.:")]), 10)
                .unwrap()
                .len(),
            2
        );
        let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(code(validate_tags(eleven.clone(), OBJECT_TAGS_MAX)), "InvalidTag");
        assert_eq!(validate_tags(eleven, BUCKET_TAGS_MAX).unwrap().len(), 11);
        assert_eq!(code(validate_tags(pairs(&[("", "v")]), 10)), "InvalidTag");
        assert_eq!(
            code(validate_tags(pairs(&[(&"k".repeat(129), "v")]), 10)),
            "InvalidTag"
        );
        assert!(validate_tags(pairs(&[(&"k".repeat(128), &"v".repeat(256))]), 10).is_ok());
        assert_eq!(
            code(validate_tags(pairs(&[("k", &"v".repeat(257))]), 10)),
            "InvalidTag"
        );
        assert_eq!(code(validate_tags(pairs(&[("k*", "v")]), 10)), "InvalidTag");
        assert_eq!(code(validate_tags(pairs(&[("k", "v<")]), 10)), "InvalidTag");
        assert_eq!(code(validate_tags(pairs(&[("aws:x", "v")]), 10)), "InvalidTag");
        assert_eq!(
            code(validate_tags(pairs(&[("k", "1"), ("k", "2")]), 10)),
            "InvalidTag"
        );
        // Unicode letters count as characters, not bytes.
        assert!(validate_tags(pairs(&[(&"é".repeat(128), "ü")]), 10).is_ok());
    }

    #[test]
    fn tagging_header_is_a_query_string() {
        let tags = parse_tagging_header("a=1&b%20c=x%2Fy&empty=&d+e=f").unwrap();
        assert_eq!(tags.get("a").map(String::as_str), Some("1"));
        assert_eq!(tags.get("b c").map(String::as_str), Some("x/y"));
        assert_eq!(tags.get("empty").map(String::as_str), Some(""));
        assert_eq!(tags.get("d e").map(String::as_str), Some("f"));
        assert_eq!(code(parse_tagging_header("a=%ff")), "InvalidArgument");
        assert_eq!(code(parse_tagging_header("a=1&a=2")), "InvalidTag");
        assert!(request_tags(None).unwrap().is_empty());
        assert_eq!(tag_count(&parse_tagging_header("a=1&b=2").unwrap()), Some(2));
        assert_eq!(tag_count(&BTreeMap::new()), None);
    }
}
