//! Conversions between object-layer values and s3s DTO values: ETags (quoted on the wire),
//! timestamps, stored metadata, owners, listing markers, and the object body stream.
//!
//! Invariants: an ETag leaves the front door quoted exactly once; a continuation token decodes
//! only to the marker it was made from; the object body stream is passed through lazily.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;
use s3s::dto::{ETag, Metadata, Owner, StreamingBlob, Timestamp, TimestampFormat};
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{S3Error, S3ErrorCode, S3Result};
use strata_iam::acl::Owner as AclOwner;
use strata_object::{ByteRange, ObjectError, ObjectMetadata};

/// The owner of the deployment's buckets and objects: its root account, whose canonical id is
/// derived from the account id (stable when the root credentials change).
pub(crate) fn account_owner(account_id: &str) -> AclOwner {
    AclOwner::for_account(account_id, "strata")
}

/// An owner as listings show it.
pub(crate) fn owner(owner: &AclOwner) -> Owner {
    Owner {
        id: Some(owner.id.clone()),
        display_name: Some(owner.display_name.clone()),
    }
}

/// An owner as a multipart upload's initiator.
pub(crate) fn initiator(owner: &AclOwner) -> s3s::dto::Initiator {
    s3s::dto::Initiator {
        id: Some(owner.id.clone()),
        display_name: Some(owner.display_name.clone()),
    }
}

/// An object-layer ETag (hex, unquoted) as an s3s ETag (serialized quoted).
pub(crate) fn etag(hex: &str) -> ETag {
    ETag::Strong(hex.trim_matches('"').to_owned())
}

pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

pub(crate) fn system_time(t: Timestamp) -> SystemTime {
    let odt: time::OffsetDateTime = t.into();
    SystemTime::from(odt)
}

/// Formats a timestamp as an HTTP date (how `Expires` is stored).
pub(crate) fn http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

/// Parses a stored `Expires` back; a value that is not an HTTP date is dropped (S3 does the same
/// in responses).
pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// The standard headers and user metadata of a write request.
pub(crate) struct MetadataInput {
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) content_language: Option<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) content_disposition: Option<String>,
    pub(crate) expires: Option<Timestamp>,
    pub(crate) user: Option<Metadata>,
}

impl MetadataInput {
    /// The metadata to store; `MetadataTooLarge` when the user metadata is over
    /// [`crate::limits::USER_METADATA_BYTES_MAX`] (checked here so that no write path skips it).
    pub(crate) fn into_metadata(self) -> S3Result<ObjectMetadata> {
        crate::limits::check_user_metadata(self.user.as_ref())?;
        Ok(ObjectMetadata {
            content_type: self.content_type,
            content_encoding: self.content_encoding.and_then(|e| strip_aws_chunked(&e)),
            content_language: self.content_language,
            cache_control: self.cache_control,
            content_disposition: self.content_disposition,
            expires: self.expires.as_ref().and_then(http_date),
            user: self
                .user
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            ..ObjectMetadata::default()
        })
    }
}

/// Removes the `aws-chunked` transfer coding from a `Content-Encoding`: it describes how the
/// request body was framed (s3s has already decoded it), not the stored object.
pub(crate) fn strip_aws_chunked(encoding: &str) -> Option<String> {
    let kept: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    if kept.is_empty() {
        None
    } else {
        Some(kept.join(", "))
    }
}

/// User metadata for a response, `None` when there is none.
pub(crate) fn user_metadata(meta: &ObjectMetadata) -> Option<Metadata> {
    if meta.user.is_empty() {
        return None;
    }
    Some(meta.user.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Decodes a base64 `Content-MD5` header.
pub(crate) fn content_md5(b64: Option<&str>) -> S3Result<Option<[u8; 16]>> {
    let Some(b64) = b64 else { return Ok(None) };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "The Content-MD5 you specified was invalid.",
        )
    };
    let bytes = base64_simd::STANDARD
        .decode_to_vec(b64.trim())
        .map_err(|_| invalid())?;
    let md5: [u8; 16] = bytes.try_into().map_err(|_| invalid())?;
    Ok(Some(md5))
}

/// An s3s `Range` header value as an object-layer range.
pub(crate) fn byte_range(range: s3s::dto::Range) -> ByteRange {
    match range {
        s3s::dto::Range::Int {
            first,
            last: Some(last),
        } => ByteRange::FromTo { first, last },
        s3s::dto::Range::Int { first, last: None } => ByteRange::From { first },
        s3s::dto::Range::Suffix { length } => ByteRange::Suffix { len: length },
    }
}

/// Parses `x-amz-copy-source-range` (`bytes=first-last`, both required, as S3 demands).
pub(crate) fn copy_source_range(s: &str) -> S3Result<ByteRange> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = s.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if last < first {
        return Err(invalid());
    }
    Ok(ByteRange::FromTo { first, last })
}

/// A signed S3 count (max-keys, part numbers) as an unsigned one.
pub(crate) fn non_negative(value: i32, what: &'static str) -> S3Result<u32> {
    u32::try_from(value).map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("{what} must be a non-negative integer"),
        )
    })
}

/// A size in bytes as S3's signed `Size`/`Content-Length`.
pub(crate) fn size_i64(size_bytes: u64) -> i64 {
    i64::try_from(size_bytes).unwrap_or(i64::MAX)
}

/// Prefix that versions the continuation-token format.
const CONTINUATION_TOKEN_PREFIX: &str = "1:";

/// Encodes a listing marker as an opaque ListObjectsV2 continuation token.
pub(crate) fn encode_continuation_token(marker: &str) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(format!("{CONTINUATION_TOKEN_PREFIX}{marker}"))
}

/// Decodes a continuation token made by [`encode_continuation_token`].
pub(crate) fn decode_continuation_token(token: &str) -> S3Result<String> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The continuation token provided is incorrect",
        )
    };
    let bytes = base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(CONTINUATION_TOKEN_PREFIX)
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// Characters S3 leaves alone when `encoding-type=url`: RFC 3986 unreserved ones and `/`.
const URL_ENCODE_SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes a listing value when the client asked for `encoding-type=url`.
pub(crate) fn maybe_url_encode(value: String, url_encode: bool) -> String {
    if url_encode {
        percent_encoding::utf8_percent_encode(&value, URL_ENCODE_SET).to_string()
    } else {
        value
    }
}

/// Reads `encoding-type`: only `url` is defined.
pub(crate) fn url_encoding(encoding_type: Option<&s3s::dto::EncodingType>) -> S3Result<bool> {
    match encoding_type {
        None => Ok(false),
        Some(e) if e.as_str().eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid Encoding Method specified in Request",
        )),
    }
}

/// The object body as an s3s streaming body with an exact length.
///
/// s3s needs a `Sync` stream; the object stream is only `Send`. The mutex makes the wrapper
/// `Sync` without ever being locked: polling goes through `&mut self` (`Mutex::get_mut`).
pub(crate) struct BodyStream {
    inner: Mutex<Pin<Box<crate::encryption::BodySource>>>,
    remaining_bytes: u64,
    request_id: String,
}

impl BodyStream {
    pub(crate) fn blob(
        body: crate::encryption::BodySource,
        length_bytes: u64,
        request_id: &str,
    ) -> StreamingBlob {
        StreamingBlob::new(BodyStream {
            inner: Mutex::new(Box::pin(body)),
            remaining_bytes: length_bytes,
            request_id: request_id.to_owned(),
        })
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, s3s::StdError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let inner = match this.inner.get_mut() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        };
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.remaining_bytes = this.remaining_bytes.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => {
                // The status line is already sent: the client sees a short body. Log why.
                log_stream_error(&err, &this.request_id);
                Poll::Ready(Some(Err(Box::new(err))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn log_stream_error(err: &ObjectError, request_id: &str) {
    tracing::error!(request_id, error = %err, "object body stream failed mid-response");
}

impl ByteStream for BodyStream {
    fn remaining_length(&self) -> RemainingLength {
        match usize::try_from(self.remaining_bytes) {
            Ok(n) => RemainingLength::new_exact(n),
            Err(_) => RemainingLength::unknown(),
        }
    }
}

/// The request body as the object layer's input stream.
pub(crate) fn put_stream(body: Option<StreamingBlob>) -> strata_object::PutStream {
    match body {
        Some(blob) => Box::pin(blob),
        None => Box::pin(futures::stream::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_is_unquoted_inside() {
        assert_eq!(etag("abc").value(), "abc");
        assert_eq!(etag("\"abc\"").value(), "abc");
        assert_eq!(etag("abc").to_http_header().unwrap(), "\"abc\"");
    }

    #[test]
    fn aws_chunked_is_not_stored() {
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(strip_aws_chunked("aws-chunked,gzip").as_deref(), Some("gzip"));
        assert_eq!(strip_aws_chunked("gzip, br").as_deref(), Some("gzip, br"));
    }

    #[test]
    fn continuation_token_round_trip() {
        for marker in ["", "a", "dir/ü/ key", "x:1:"] {
            let token = encode_continuation_token(marker);
            assert_eq!(decode_continuation_token(&token).unwrap(), marker);
        }
        assert!(decode_continuation_token("not base64!").is_err());
        assert!(decode_continuation_token(&base64_simd::URL_SAFE_NO_PAD.encode_to_string("x")).is_err());
    }

    #[test]
    fn url_encoding_keeps_slash_and_unreserved() {
        assert_eq!(maybe_url_encode("a b/c~d+e".into(), true), "a%20b/c~d%2Be");
        assert_eq!(maybe_url_encode("ü".into(), true), "%C3%BC");
        assert_eq!(maybe_url_encode("a b".into(), false), "a b");
    }

    #[test]
    fn content_md5_decodes() {
        // MD5("hello") base64.
        let md5 = content_md5(Some("XUFAKrxLKna5cZ2REBfFkg==")).unwrap().unwrap();
        assert_eq!(hex::encode(md5), "5d41402abc4b2a76b9719d911017c592");
        assert!(content_md5(Some("short")).is_err());
        assert!(content_md5(Some("aGVsbG8=")).is_err());
        assert!(content_md5(None).unwrap().is_none());
    }

    #[test]
    fn copy_source_range_parses() {
        assert_eq!(
            copy_source_range("bytes=0-9").unwrap(),
            ByteRange::FromTo { first: 0, last: 9 }
        );
        for bad in ["bytes=5-1", "bytes=-3", "bytes=1-", "0-9", "bytes=a-b"] {
            assert!(copy_source_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_date_round_trip() {
        let ts = parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(http_date(&ts).unwrap(), "Wed, 21 Oct 2015 07:28:00 GMT");
        let st = system_time(ts.clone());
        assert_eq!(timestamp(st), ts);
    }

    #[test]
    fn owner_id_is_the_accounts_canonical_id() {
        let a = account_owner("123456789012");
        assert_eq!(a.id, account_owner("123456789012").id);
        assert_eq!(a.id.len(), 64);
        assert_ne!(a.id, account_owner("123456789013").id);
    }
}
