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

use http::HeaderMap;
use s3s::crypto::{Checksum, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The header naming the client's checksum algorithm (AWS SDKs send it with the checksum).
const SDK_CHECKSUM_ALGORITHM: &str = "x-amz-sdk-checksum-algorithm";
/// The header naming the trailer fields of an `aws-chunked` body.
const TRAILER: &str = "x-amz-trailer";

/// The additional checksum algorithms S3 accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The header carrying this checksum.
    fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name in `x-amz-sdk-checksum-algorithm` and in AWS's messages.
    fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    fn from_header(header: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(header.trim()))
    }

    /// The checksum of `body`, big-endian, as S3 encodes it (before base64).
    fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            ChecksumAlgorithm::Crc32 => Crc32::checksum(body).to_vec(),
            ChecksumAlgorithm::Crc32c => Crc32c::checksum(body).to_vec(),
            ChecksumAlgorithm::Crc64Nvme => Crc64Nvme::checksum(body).to_vec(),
            ChecksumAlgorithm::Sha1 => Sha1::checksum(body).to_vec(),
            ChecksumAlgorithm::Sha256 => Sha256::checksum(body).to_vec(),
        }
    }
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
        for value in headers.get_all(algorithm.header()) {
            let value = value.to_str().map_err(|_| {
                invalid_request(format!("Value for {} header is invalid.", algorithm.header()))
            })?;
            sent.push(SentChecksum {
                algorithm,
                value: value.to_owned(),
            });
        }
    }
    for name in announced_trailers(headers) {
        let Some(algorithm) = ChecksumAlgorithm::from_header(&name) else {
            continue;
        };
        let value = trailers
            .and_then(|t| t.get(algorithm.header()))
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                invalid_request(format!(
                    "The {} trailer was announced but not sent.",
                    algorithm.header()
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
            .ok_or_else(|| invalid_request(format!("Value for {} header is invalid.", algorithm.header())))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
    fn known_checksum_values() {
        // Reference values of "123456789" (the CRC catalogue's check input) and SHA-1 of "abc".
        let check = b"123456789";
        assert_eq!(hex::encode(ChecksumAlgorithm::Crc32.digest(check)), "cbf43926");
        assert_eq!(hex::encode(ChecksumAlgorithm::Crc32c.digest(check)), "e3069283");
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Crc64Nvme.digest(check)),
            "ae8b14860a799888"
        );
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Sha1.digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
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
            cases.push((vec![(algorithm.header(), good.clone())], None));
            cases.push((
                vec![
                    ("x-amz-sdk-checksum-algorithm", name.clone()),
                    (algorithm.header(), good),
                ],
                None,
            ));
            cases.push((
                vec![
                    ("x-amz-sdk-checksum-algorithm", name),
                    (algorithm.header(), bad.clone()),
                ],
                Some(S3ErrorCode::BadDigest),
            ));
            cases.push((vec![(algorithm.header(), bad)], Some(S3ErrorCode::BadDigest)));
            cases.push((
                vec![(algorithm.header(), "AAAA!".into())],
                Some(S3ErrorCode::InvalidRequest),
            ));
            // Right base64, wrong length for the algorithm.
            cases.push((
                vec![(algorithm.header(), b64(&[0; 3]))],
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
