//! Request size limits AWS S3 applies and Strata applies the same way: the user metadata of a
//! write, each request header value, and a request's whole header section.
//!
//! Invariants: every limit is one named constant, unit last; the metadata limit is checked when
//! a write's metadata is built ([`crate::convert::MetadataInput::into_metadata`]), so no write
//! path stores metadata that did not pass it; the header limits are checked by the front door's
//! route ([`crate::routes::Routes`]) before any operation runs.
//!
//! How the sizes are counted:
//! - user metadata: the UTF-8 byte length of every key (without the `x-amz-meta-` prefix) plus
//!   that of its value, as AWS counts it. The value is counted as it is stored (after s3s
//!   decoded any RFC 2047 encoded word).
//! - a header value: its bytes on the wire.
//! - the header section: the name bytes plus value bytes of every header field (what HTTP/1.1
//!   sends, minus the `": "` and CRLF of each line). [`HEADER_SECTION_BYTES_MAX`] is far above
//!   what a real client sends with the largest metadata and tag set AWS allows plus a SigV4
//!   `Authorization` and a session token (about 12 KiB at most), and well under hyper's own
//!   HTTP/1.1 read buffer (about 400 KiB), so the S3 error, not a dropped connection, is what
//!   an oversized request meets.

use http::HeaderMap;
use s3s::dto::Metadata;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// Most bytes of user metadata (keys without `x-amz-meta-`, plus values) one object may carry.
pub const USER_METADATA_BYTES_MAX: usize = 2 * 1024;
/// Most bytes of one request header value.
pub const HEADER_VALUE_BYTES_MAX: usize = 8 * 1024;
/// Most bytes of a request's header section (names plus values of every field).
pub const HEADER_SECTION_BYTES_MAX: usize = 32 * 1024;

const _: () = assert!(USER_METADATA_BYTES_MAX < HEADER_VALUE_BYTES_MAX);
const _: () = assert!(HEADER_VALUE_BYTES_MAX < HEADER_SECTION_BYTES_MAX);

/// The bytes of user metadata as AWS counts them.
pub(crate) fn user_metadata_bytes(metadata: &Metadata) -> usize {
    metadata.iter().map(|(key, value)| key.len() + value.len()).sum()
}

/// `MetadataTooLarge` when `metadata` is over [`USER_METADATA_BYTES_MAX`].
pub(crate) fn check_user_metadata(metadata: Option<&Metadata>) -> S3Result<()> {
    let Some(metadata) = metadata else {
        return Ok(());
    };
    let size_bytes = user_metadata_bytes(metadata);
    if size_bytes > USER_METADATA_BYTES_MAX {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            format!(
                "Your metadata headers exceed the maximum allowed metadata size: {size_bytes} bytes, at most {USER_METADATA_BYTES_MAX} allowed."
            ),
        ));
    }
    Ok(())
}

/// `RequestHeaderSectionTooLarge` when one header value is over [`HEADER_VALUE_BYTES_MAX`] or
/// all of them together over [`HEADER_SECTION_BYTES_MAX`]. The refusal names neither the
/// header nor its value (it could be a credential).
pub(crate) fn check_request_headers(headers: &HeaderMap) -> S3Result<()> {
    let mut section_bytes: usize = 0;
    for (name, value) in headers {
        if value.len() > HEADER_VALUE_BYTES_MAX {
            return Err(S3Error::with_message(
                S3ErrorCode::RequestHeaderSectionTooLarge,
                format!(
                    "Your request header section exceeds the maximum allowed size: one header value is over {HEADER_VALUE_BYTES_MAX} bytes."
                ),
            ));
        }
        section_bytes = section_bytes.saturating_add(name.as_str().len() + value.len());
    }
    if section_bytes > HEADER_SECTION_BYTES_MAX {
        return Err(S3Error::with_message(
            S3ErrorCode::RequestHeaderSectionTooLarge,
            format!(
                "Your request header section exceeds the maximum allowed size: {section_bytes} bytes, at most {HEADER_SECTION_BYTES_MAX} allowed."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    fn metadata(pairs: &[(&str, String)]) -> Metadata {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn user_metadata_counts_keys_and_values_in_utf8_bytes() {
        // "é" is two bytes in UTF-8.
        let m = metadata(&[("ab", "é".to_owned()), ("c", String::new())]);
        assert_eq!(user_metadata_bytes(&m), 2 + 2 + 1);
    }

    #[test]
    fn user_metadata_limit_is_inclusive_issue_16() {
        let cases: &[(usize, bool)] = &[(0, true), (2048, true), (2049, false), (100_000, false)];
        for &(size, ok) in cases {
            // Key "k" plus a value making `size` bytes in all.
            let m = metadata(&[("k", "v".repeat(size.saturating_sub(1)))]);
            let got = check_user_metadata(Some(&m));
            assert_eq!(got.is_ok(), ok, "{size} bytes");
            if let Err(e) = got {
                assert_eq!(e.code(), &S3ErrorCode::MetadataTooLarge);
                assert_eq!(e.status_code().unwrap().as_u16(), 400);
            }
        }
        assert!(check_user_metadata(None).is_ok());
        // Many keys add up: 2048 in 64 pairs of 32 bytes passes, one more byte does not.
        let mut m: Metadata = (0..64).map(|i| (format!("key{i:02}"), "v".repeat(27))).collect();
        assert_eq!(user_metadata_bytes(&m), 2048);
        assert!(check_user_metadata(Some(&m)).is_ok());
        m.insert("x".to_owned(), String::new());
        assert_eq!(
            check_user_metadata(Some(&m)).unwrap_err().code(),
            &S3ErrorCode::MetadataTooLarge
        );
    }

    fn headers(fields: &[(&str, usize)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, len) in fields {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(&"a".repeat(*len)).unwrap(),
            );
        }
        map
    }

    #[test]
    fn header_value_and_section_limits() {
        assert!(check_request_headers(&headers(&[("host", 9), ("x-a", HEADER_VALUE_BYTES_MAX)])).is_ok());
        let err = check_request_headers(&headers(&[("x-a", HEADER_VALUE_BYTES_MAX + 1)])).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::RequestHeaderSectionTooLarge);
        assert_eq!(err.status_code().unwrap().as_u16(), 400);

        // Five values of 7 KiB each: none too long, the section is (35 KiB + names).
        let big: Vec<(String, usize)> = (0..5).map(|i| (format!("x-h{i}"), 7 * 1024)).collect();
        let fields: Vec<(&str, usize)> = big.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let err = check_request_headers(&headers(&fields)).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::RequestHeaderSectionTooLarge);

        // Exactly at the section bound passes; one byte more does not ("x-hN" names are 4 bytes).
        let value_bytes = HEADER_SECTION_BYTES_MAX / 4 - 4;
        let exact: Vec<(String, usize)> = (0..4).map(|i| (format!("x-h{i}"), value_bytes)).collect();
        let fields: Vec<(&str, usize)> = exact.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        assert!(check_request_headers(&headers(&fields)).is_ok());
        let mut over = headers(&fields);
        over.append("x", HeaderValue::from_static(""));
        assert!(check_request_headers(&over).is_err());
    }

    #[test]
    fn refusal_does_not_echo_the_header() {
        let mut map = HeaderMap::new();
        map.insert(
            "authorization",
            HeaderValue::from_str(&format!("secret{}", "s".repeat(HEADER_VALUE_BYTES_MAX))).unwrap(),
        );
        let err = check_request_headers(&map).unwrap_err();
        let msg = err.message().unwrap();
        assert!(!msg.contains("secret") && !msg.contains("authorization"), "{msg}");
    }
}
