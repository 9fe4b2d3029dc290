//! The integrity check AWS S3 requires of a DeleteObjects (or object lock) request body: a `Content-MD5`, or an
//! additional checksum (`x-amz-checksum-crc32`, `-crc32c`, `-crc64nvme`, `-sha1`, `-sha256`, in a
//! header or, with `x-amz-trailer`, in the trailer), verified over the exact body bytes.
//!
//! s3s 0.14.1 parses these headers into DTO fields (DeleteObjects keeps only the algorithm name)
//! and verifies none of them, so the front door does it ([`crate::intercept`]) before the
//! request reaches the operation.
//!
//! Invariants: a request without any integrity header, with a malformed one, or with one that
//! does not match the body is refused with AWS's code (`InvalidRequest`, `InvalidDigest`,
//! `BadDigest`) and nothing is deleted; when both `Content-MD5` and a checksum are sent, both
//! must match. The digests come from `s3s::crypto` (`crc-fast` for the CRCs, RustCrypto `md-5`,
//! `sha1` and `sha2`), the crates s3s already builds, so no second implementation is linked in.

use std::sync::Arc;

use http::HeaderMap;
use s3s::crypto::{Checksum, Md5};
use s3s::{S3Error, S3ErrorCode, S3Result};
use strata_object::{
    ChecksumAlgorithm, ChecksumSpec, ChecksumType, ExpectedChecksum, ObjectChecksum, ObjectError,
};

/// The header naming the client's checksum algorithm (AWS SDKs send it with the checksum).
const SDK_CHECKSUM_ALGORITHM: &str = "x-amz-sdk-checksum-algorithm";
/// The header naming the trailer fields of an `aws-chunked` body.
const TRAILER: &str = "x-amz-trailer";

/// The header carrying a checksum of `algorithm`.
fn header(algorithm: ChecksumAlgorithm) -> &'static str {
    match algorithm {
        ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
        ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
        ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
        ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
        ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
    }
}

/// The algorithm whose checksum header (or trailer field) is `name`.
fn from_header(name: &str) -> Option<ChecksumAlgorithm> {
    ChecksumAlgorithm::ALL
        .into_iter()
        .find(|a| header(*a).eq_ignore_ascii_case(name.trim()))
}

fn invalid_request(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message)
}

/// The trailer fields an `x-amz-trailer` header announces, lower-cased.
fn announced_trailers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// One checksum the client sent: its algorithm and the base64 text.
struct SentChecksum {
    algorithm: ChecksumAlgorithm,
    value: String,
}

/// The checksums sent in headers and (announced by `x-amz-trailer`) in the trailer.
fn sent_checksums(headers: &HeaderMap, trailers: Option<&HeaderMap>) -> S3Result<Vec<SentChecksum>> {
    let mut sent = Vec::new();
    for algorithm in ChecksumAlgorithm::ALL {
        for value in headers.get_all(header(algorithm)) {
            let value = value.to_str().map_err(|_| {
                invalid_request(format!("Value for {} header is invalid.", header(algorithm)))
            })?;
            sent.push(SentChecksum {
                algorithm,
                value: value.to_owned(),
            });
        }
    }
    for name in announced_trailers(headers) {
        let Some(algorithm) = from_header(&name) else {
            continue;
        };
        let value = trailers
            .and_then(|t| t.get(header(algorithm)))
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                invalid_request(format!(
                    "The {} trailer was announced but not sent.",
                    header(algorithm)
                ))
            })?;
        sent.push(SentChecksum {
            algorithm,
            value: value.to_owned(),
        });
    }
    Ok(sent)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(text.trim().as_bytes()).ok()
}

/// Checks `Content-MD5` and the additional checksum of the body of `op` (DeleteObjects, or an
/// object lock call), operations for which AWS requires one, as AWS does:
/// - neither sent: `InvalidRequest`;
/// - `Content-MD5` that is not base64 of 16 bytes: `InvalidDigest`; not the body's: `BadDigest`;
/// - more than one checksum, an `x-amz-sdk-checksum-algorithm` without its checksum, or a
///   checksum that is not base64 of the algorithm's length: `InvalidRequest`;
/// - a checksum that is not the body's: `BadDigest`.
///
/// `trailers` are the request's trailer fields, read after the body (an `aws-chunked` body may
/// carry its checksum there).
pub(crate) fn check_body_digest(
    op: &str,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
    body: &[u8],
) -> S3Result<()> {
    let content_md5 = headers.get("content-md5");
    let sent = sent_checksums(headers, trailers)?;
    if sent.len() > 1 {
        return Err(invalid_request(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.".to_owned(),
        ));
    }
    if let Some(name) = headers.get(SDK_CHECKSUM_ALGORITHM) {
        let algorithm = name
            .to_str()
            .ok()
            .and_then(ChecksumAlgorithm::from_name)
            .ok_or_else(|| {
                invalid_request(format!("Value for {SDK_CHECKSUM_ALGORITHM} header is invalid."))
            })?;
        if !sent.iter().any(|s| s.algorithm == algorithm) {
            return Err(invalid_request(format!(
                "{SDK_CHECKSUM_ALGORITHM} specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found."
            )));
        }
    }
    if content_md5.is_none() && sent.is_empty() {
        return Err(invalid_request(format!(
            "Missing required header for this request: {op} needs a Content-MD5 or an x-amz-checksum-* header."
        )));
    }
    if let Some(md5) = content_md5 {
        let expected = md5
            .to_str()
            .ok()
            .and_then(decode_base64)
            .filter(|d| d.len() == 16)
            .ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::InvalidDigest,
                    "The Content-MD5 you specified is not valid.",
                )
            })?;
        if expected[..] != Md5::checksum(body)[..] {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    for checksum in &sent {
        let algorithm = checksum.algorithm;
        let actual = algorithm.digest(body);
        let expected = decode_base64(&checksum.value)
            .filter(|d| d.len() == actual.len())
            .ok_or_else(|| invalid_request(format!("Value for {} header is invalid.", header(algorithm))))?;
        if expected != actual {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    algorithm.name()
                ),
            ));
        }
    }
    Ok(())
}

/// The additional checksum a write with a body (PutObject, UploadPart) sent: in a header, or
/// announced by `x-amz-trailer` to follow an `aws-chunked` body (then read once the body has
/// ended, from `trailers`). AWS's refusals: more than one checksum, an unknown algorithm, an
/// `x-amz-sdk-checksum-algorithm` naming none of those sent, or a value that is not base64 of
/// the algorithm's length: `InvalidRequest`. The object layer compares the value with the
/// body's before anything commits (`BadDigest` when it differs).
pub(crate) fn sent_body_checksum(
    headers: &HeaderMap,
    trailers: Option<&s3s::TrailingHeaders>,
) -> S3Result<Option<ChecksumSpec>> {
    let mut sent: Vec<(ChecksumAlgorithm, ExpectedChecksum)> = Vec::new();
    for algorithm in ChecksumAlgorithm::ALL {
        for value in headers.get_all(header(algorithm)) {
            let value = value
                .to_str()
                .ok()
                .and_then(|text| decode_checksum(algorithm, text))
                .ok_or_else(|| {
                    invalid_request(format!("Value for {} header is invalid.", header(algorithm)))
                })?;
            sent.push((algorithm, ExpectedChecksum::Value(value)));
        }
    }
    for name in announced_trailers(headers) {
        let Some(algorithm) = from_header(&name) else {
            continue;
        };
        let Some(trailers) = trailers.cloned() else {
            return Err(invalid_request(format!(
                "The {} trailer was announced but the body is not aws-chunked with trailers.",
                header(algorithm)
            )));
        };
        let read = move || {
            let text = trailers.read(|fields| {
                fields
                    .get(header(algorithm))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
            let Some(Some(text)) = text else {
                return Err(ObjectError::InvalidRequestMessage {
                    message: format!("The {} trailer was announced but not sent.", header(algorithm)),
                });
            };
            decode_checksum(algorithm, &text).ok_or_else(|| ObjectError::InvalidRequestMessage {
                message: format!("Value for {} trailing header is invalid.", header(algorithm)),
            })
        };
        sent.push((algorithm, ExpectedChecksum::Trailer(Arc::new(read))));
    }
    if sent.len() > 1 {
        return Err(invalid_request(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.".to_owned(),
        ));
    }
    if let Some(named) = sdk_algorithm(headers)?
        && !sent.iter().any(|(algorithm, _)| *algorithm == named)
    {
        return Err(invalid_request(format!(
            "{SDK_CHECKSUM_ALGORITHM} specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found."
        )));
    }
    Ok(sent.pop().map(|(algorithm, expected)| ChecksumSpec {
        algorithm,
        kind: None,
        expected,
    }))
}

/// The algorithm named by `x-amz-sdk-checksum-algorithm`, if sent (an unknown name:
/// `InvalidRequest`).
fn sdk_algorithm(headers: &HeaderMap) -> S3Result<Option<ChecksumAlgorithm>> {
    let Some(name) = headers.get(SDK_CHECKSUM_ALGORITHM) else {
        return Ok(None);
    };
    name.to_str()
        .ok()
        .and_then(ChecksumAlgorithm::from_name)
        .map(Some)
        .ok_or_else(|| invalid_request(format!("Value for {SDK_CHECKSUM_ALGORITHM} header is invalid.")))
}

/// The digest in `text` (base64 of the algorithm's length), if it is one.
fn decode_checksum(algorithm: ChecksumAlgorithm, text: &str) -> Option<Vec<u8>> {
    decode_base64(text).filter(|d| d.len() == algorithm.digest_len())
}

/// The algorithm named in a `ChecksumAlgorithm` field or `x-amz-checksum-algorithm` header
/// (unknown: `InvalidRequest`).
pub(crate) fn algorithm_named(name: &str) -> S3Result<ChecksumAlgorithm> {
    ChecksumAlgorithm::from_name(name)
        .ok_or_else(|| invalid_request(format!("Checksum algorithm {name} is not supported.")))
}

/// The checksum type named in `x-amz-checksum-type` (unknown: `InvalidRequest`).
pub(crate) fn type_named(name: &str) -> S3Result<ChecksumType> {
    ChecksumType::from_name(name)
        .ok_or_else(|| invalid_request(format!("Value for x-amz-checksum-type header is invalid: {name}")))
}

/// The checksum fields of an S3 structure, in algorithm order.
pub(crate) type ListedChecksums<'a> = [Option<&'a str>; 5];

/// The one checksum listed in an S3 structure's five `Checksum*` fields (a part of a
/// CompleteMultipartUpload, or its whole-object headers), decoded. A composite value's `-N`
/// suffix is dropped. More than one, or a value that does not decode: `InvalidRequest`.
pub(crate) fn listed_checksum(fields: ListedChecksums<'_>) -> S3Result<Option<(ChecksumAlgorithm, Vec<u8>)>> {
    let mut listed = ChecksumAlgorithm::ALL
        .into_iter()
        .zip(fields)
        .filter_map(|(algorithm, text)| text.map(|text| (algorithm, text)));
    let Some((algorithm, text)) = listed.next() else {
        return Ok(None);
    };
    if listed.next().is_some() {
        return Err(invalid_request(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.".to_owned(),
        ));
    }
    let digest = text.split_once('-').map_or(text, |(digest, _)| digest);
    decode_checksum(algorithm, digest)
        .map(|value| Some((algorithm, value)))
        .ok_or_else(|| invalid_request(format!("Value for {} header is invalid.", header(algorithm))))
}

/// A stored checksum as S3 shows it: one of five fields set (a composite value with its
/// `-N`), and the type.
#[derive(Default)]
pub(crate) struct ChecksumFields {
    pub(crate) crc32: Option<String>,
    pub(crate) crc32c: Option<String>,
    pub(crate) crc64nvme: Option<String>,
    pub(crate) sha1: Option<String>,
    pub(crate) sha256: Option<String>,
    pub(crate) kind: Option<s3s::dto::ChecksumType>,
}

impl ChecksumFields {
    /// The fields of an object's checksum.
    pub(crate) fn of(checksum: Option<&ObjectChecksum>) -> ChecksumFields {
        let Some(checksum) = checksum else {
            return ChecksumFields::default();
        };
        let mut text = base64_simd::STANDARD.encode_to_string(&checksum.value);
        if checksum.kind == ChecksumType::Composite && checksum.parts > 0 {
            text = format!("{text}-{}", checksum.parts);
        }
        ChecksumFields {
            kind: Some(s3s::dto::ChecksumType::from(checksum.kind.name().to_owned())),
            ..ChecksumFields::value(checksum.algorithm, text)
        }
    }

    /// The fields of a part's checksum (no type).
    pub(crate) fn part(checksum: Option<(ChecksumAlgorithm, &[u8])>) -> ChecksumFields {
        checksum.map_or_else(ChecksumFields::default, |(algorithm, digest)| {
            ChecksumFields::value(algorithm, base64_simd::STANDARD.encode_to_string(digest))
        })
    }

    fn value(algorithm: ChecksumAlgorithm, text: String) -> ChecksumFields {
        let mut fields = ChecksumFields::default();
        let slot = match algorithm {
            ChecksumAlgorithm::Crc32 => &mut fields.crc32,
            ChecksumAlgorithm::Crc32c => &mut fields.crc32c,
            ChecksumAlgorithm::Crc64Nvme => &mut fields.crc64nvme,
            ChecksumAlgorithm::Sha1 => &mut fields.sha1,
            ChecksumAlgorithm::Sha256 => &mut fields.sha256,
        };
        *slot = Some(text);
        fields
    }
}

/// Sets the five `checksum_*` fields of an s3s structure from [`ChecksumFields`] (the type,
/// where the structure has one, is set by the caller from `kind`).
macro_rules! set_checksum_fields {
    ($target:expr, $fields:expr) => {{
        let fields: $crate::integrity::ChecksumFields = $fields;
        $target.checksum_crc32 = fields.crc32;
        $target.checksum_crc32c = fields.crc32c;
        $target.checksum_crc64nvme = fields.crc64nvme;
        $target.checksum_sha1 = fields.sha1;
        $target.checksum_sha256 = fields.sha256;
        fields.kind
    }};
}
pub(crate) use set_checksum_fields;

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use s3s::crypto::{Crc32, Crc32c, Sha256};

    const BODY: &[u8] = b"<Delete><Object><Key>a</Key></Object></Delete>";

    fn b64(bytes: &[u8]) -> String {
        base64_simd::STANDARD.encode_to_string(bytes)
    }

    fn headers(fields: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    /// The code of the refusal, or `None` when the body passes.
    fn check(fields: &[(&str, String)]) -> Option<S3ErrorCode> {
        check_body_digest("DeleteObjects", &headers(fields), None, BODY)
            .err()
            .map(|e| {
                assert_eq!(e.status_code().unwrap().as_u16(), 400);
                e.code().clone()
            })
    }

    #[test]
    fn delete_objects_integrity_issue_16() {
        let md5 = b64(&Md5::checksum(BODY));
        let wrong_md5 = b64(&Md5::checksum(b"other"));
        type Case<'a> = (Vec<(&'a str, String)>, Option<S3ErrorCode>);
        let mut cases: Vec<Case<'_>> = vec![
            (vec![], Some(S3ErrorCode::InvalidRequest)),
            (vec![("content-md5", md5.clone())], None),
            (
                vec![("content-md5", wrong_md5.clone())],
                Some(S3ErrorCode::BadDigest),
            ),
            (
                vec![("content-md5", "not base64!".into())],
                Some(S3ErrorCode::InvalidDigest),
            ),
            (
                vec![("content-md5", b64(b"fifteen bytes!!"))],
                Some(S3ErrorCode::InvalidDigest),
            ),
            (
                vec![("content-md5", String::new())],
                Some(S3ErrorCode::InvalidDigest),
            ),
            // An algorithm named without its checksum.
            (
                vec![
                    ("x-amz-sdk-checksum-algorithm", "CRC32".into()),
                    ("content-md5", md5.clone()),
                ],
                Some(S3ErrorCode::InvalidRequest),
            ),
            (
                vec![
                    ("x-amz-sdk-checksum-algorithm", "MD4".into()),
                    ("content-md5", md5.clone()),
                ],
                Some(S3ErrorCode::InvalidRequest),
            ),
            // Two checksums.
            (
                vec![
                    ("x-amz-checksum-crc32", b64(&Crc32::checksum(BODY))),
                    ("x-amz-checksum-sha256", b64(&Sha256::checksum(BODY))),
                ],
                Some(S3ErrorCode::InvalidRequest),
            ),
            // Both Content-MD5 and a checksum: both must match.
            (
                vec![
                    ("content-md5", wrong_md5),
                    ("x-amz-checksum-crc32", b64(&Crc32::checksum(BODY))),
                ],
                Some(S3ErrorCode::BadDigest),
            ),
            (
                vec![
                    ("content-md5", md5),
                    ("x-amz-checksum-crc32", b64(&Crc32::checksum(BODY))),
                ],
                None,
            ),
        ];
        for algorithm in ChecksumAlgorithm::ALL {
            let good = b64(&algorithm.digest(BODY));
            let bad = b64(&algorithm.digest(b"other"));
            let name = algorithm.name().to_owned();
            cases.push((vec![(header(algorithm), good.clone())], None));
            cases.push((
                vec![
                    ("x-amz-sdk-checksum-algorithm", name.clone()),
                    (header(algorithm), good),
                ],
                None,
            ));
            cases.push((
                vec![
                    ("x-amz-sdk-checksum-algorithm", name),
                    (header(algorithm), bad.clone()),
                ],
                Some(S3ErrorCode::BadDigest),
            ));
            cases.push((vec![(header(algorithm), bad)], Some(S3ErrorCode::BadDigest)));
            cases.push((
                vec![(header(algorithm), "AAAA!".into())],
                Some(S3ErrorCode::InvalidRequest),
            ));
            // Right base64, wrong length for the algorithm.
            cases.push((
                vec![(header(algorithm), b64(&[0; 3]))],
                Some(S3ErrorCode::InvalidRequest),
            ));
        }
        for (fields, want) in cases {
            assert_eq!(check(&fields), want, "{fields:?}");
        }
    }

    #[test]
    fn checksum_in_the_trailer() {
        let announce = headers(&[("x-amz-trailer", "x-amz-checksum-crc32c".into())]);
        let good = headers(&[("x-amz-checksum-crc32c", b64(&Crc32c::checksum(BODY)))]);
        let bad = headers(&[("x-amz-checksum-crc32c", b64(&Crc32c::checksum(b"x")))]);
        assert!(check_body_digest("DeleteObjects", &announce, Some(&good), BODY).is_ok());
        let err = check_body_digest("DeleteObjects", &announce, Some(&bad), BODY).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::BadDigest);
        let err = check_body_digest("DeleteObjects", &announce, None, BODY).unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::InvalidRequest);
    }

    #[test]
    fn messages_name_the_algorithm_not_the_values() {
        let bad = b64(&Crc32::checksum(b"other"));
        let err = check_body_digest(
            "DeleteObjects",
            &headers(&[("x-amz-checksum-crc32", bad.clone())]),
            None,
            BODY,
        )
        .unwrap_err();
        let msg = err.message().unwrap();
        assert!(msg.contains("CRC32") && !msg.contains(&bad), "{msg}");
    }
}
