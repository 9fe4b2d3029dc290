//! AWS Signature Version 4, header-based: canonical request, string to sign, signing key and
//! the `Authorization` header, for the `s3` service.
//!
//! Invariants:
//! - The canonical URI and query produced here are also the ones put on the wire
//!   ([`encode_path`], [`canonical_query`]), so what is signed is exactly what is sent.
//! - Every header present in the map at signing time is signed, plus `host`; names are
//!   lowercase (as [`http::HeaderName`] keeps them) and sorted, values trimmed with inner runs
//!   of spaces collapsed, repeated headers joined with `,`.
//! - The signing key is derived at most once per (UTC day) and cached; the body is never hashed
//!   here: the caller passes [`PayloadHash::Unsigned`] or a hash it computed.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};

use crate::ClientError;

/// The literal payload hash for bodies that are not hashed (bulk uploads).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string, hex: the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Header carrying the request time, `YYYYMMDDTHHMMSSZ`.
pub const X_AMZ_DATE: &str = "x-amz-date";
/// Header carrying the payload hash (or [`UNSIGNED_PAYLOAD`]).
pub const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";
const SECONDS_PER_DAY: u64 = 86_400;

type HmacSha256 = Hmac<Sha256>;

/// What goes into `x-amz-content-sha256` and the last line of the canonical request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadHash {
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature (cheap; bulk bodies).
    Unsigned,
    /// Lowercase hex SHA-256 of the body.
    Sha256Hex(String),
}

impl PayloadHash {
    /// Hashes `body` (use for small bodies such as admin JSON).
    pub fn of(body: &[u8]) -> Self {
        Self::Sha256Hex(hex::encode(Sha256::digest(body)))
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Unsigned => UNSIGNED_PAYLOAD,
            Self::Sha256Hex(hash) => hash,
        }
    }
}

/// A UTC timestamp split the way SigV4 needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmzDate {
    /// `YYYYMMDDTHHMMSSZ`.
    pub date_time: String,
    /// `YYYYMMDD`, the first eight characters of `date_time`.
    pub date: String,
}

impl AmzDate {
    /// Formats `time` (UTC). Times before 1970 are clamped to the epoch.
    pub fn from_system_time(time: SystemTime) -> Self {
        let secs = time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let days = secs / SECONDS_PER_DAY;
        let secs_of_day = secs % SECONDS_PER_DAY;
        let (year, month, day) = civil_from_days(days);
        let date = format!("{year:04}{month:02}{day:02}");
        let date_time = format!(
            "{date}T{:02}{:02}{:02}Z",
            secs_of_day / 3600,
            (secs_of_day / 60) % 60,
            secs_of_day % 60
        );
        Self { date_time, date }
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, restricted to non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Signs requests for one access key in one region. Cheap to share (`&self` methods).
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    /// `(YYYYMMDD, signing key)` of the last day a key was derived for.
    key_cache: Mutex<Option<(String, [u8; 32])>>,
}

impl std::fmt::Debug for Signer {
    // The secret never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The parts of a request that the signature covers, besides its headers.
#[derive(Clone, Copy, Debug)]
pub struct RequestToSign<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Already-encoded path ([`encode_path`]), starting with `/`.
    pub canonical_uri: &'a str,
    /// Already-canonical query ([`canonical_query`]), without `?`; empty if none.
    pub canonical_query: &'a str,
    /// Value of the `host` header (`host[:port]`).
    pub host: &'a str,
}

impl Signer {
    /// A signer for `access_key`/`secret_key` in `region` (service `s3`).
    pub fn new(
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            region: region.into(),
            key_cache: Mutex::new(None),
        }
    }

    /// The access key id this signer signs for.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Adds `x-amz-date`, `x-amz-content-sha256` and `authorization` to `headers`, signing
    /// `host` and every header already in the map. Returns the signature (hex).
    pub fn sign(
        &self,
        request: RequestToSign<'_>,
        headers: &mut HeaderMap,
        payload: &PayloadHash,
        now: &AmzDate,
    ) -> Result<String, ClientError> {
        headers.insert(
            HeaderName::from_static(X_AMZ_DATE),
            header_value(X_AMZ_DATE, &now.date_time)?,
        );
        headers.insert(
            HeaderName::from_static(X_AMZ_CONTENT_SHA256),
            header_value(X_AMZ_CONTENT_SHA256, payload.as_str())?,
        );
        headers.remove(AUTHORIZATION);

        let (canonical_headers, signed_headers) = canonical_headers(request.host, headers)?;
        let canonical_request = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            request.method.as_str(),
            request.canonical_uri,
            request.canonical_query,
            canonical_headers,
            signed_headers,
            payload.as_str()
        );
        let scope = format!("{}/{}/{SERVICE}/aws4_request", now.date, self.region);
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{scope}\n{}",
            now.date_time,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let key = self.signing_key(&now.date);
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
            self.access_key
        );
        headers.insert(AUTHORIZATION, header_value("authorization", &authorization)?);
        Ok(signature)
    }

    /// The day's signing key, derived once per day and cached.
    fn signing_key(&self, date: &str) -> [u8; 32] {
        // A poisoned lock only means another thread panicked mid-update of a plain cache;
        // the value is either the old or the new complete pair, so it is still usable.
        let mut cache = self
            .key_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((day, key)) = cache.as_ref()
            && day == date
        {
            return *key;
        }
        let k_secret = format!("AWS4{}", self.secret_key);
        let k_date = hmac(k_secret.as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, SERVICE.as_bytes());
        let key = hmac(&k_service, b"aws4_request");
        *cache = Some((date.to_owned(), key));
        key
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: longer keys are hashed, shorter are padded, so this
    // constructor cannot fail; fall back to the empty-key MAC type-wise only.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => HmacSha256::new(&Default::default()),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn header_value(name: &'static str, value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|_| ClientError::InvalidHeaderValue { name })
}

/// Canonical header block (each `name:value\n`) and the `;`-joined signed header list.
fn canonical_headers(host: &str, headers: &HeaderMap) -> Result<(String, String), ClientError> {
    let mut entries: Vec<(&str, String)> = Vec::with_capacity(headers.keys_len() + 1);
    entries.push(("host", trim_value(host)));
    for name in headers.keys() {
        if name == http::header::HOST {
            continue;
        }
        let mut joined = String::new();
        for (idx, value) in headers.get_all(name).iter().enumerate() {
            let value = value.to_str().map_err(|_| ClientError::InvalidHeaderValue {
                name: "non-ASCII header",
            })?;
            if idx > 0 {
                joined.push(',');
            }
            joined.push_str(&trim_value(value));
        }
        entries.push((name.as_str(), joined));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut block = String::new();
    let mut signed = String::new();
    for (idx, (name, value)) in entries.iter().enumerate() {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
        if idx > 0 {
            signed.push(';');
        }
        signed.push_str(name);
    }
    Ok((block, signed))
}

/// Trims a header value and collapses inner runs of spaces to one.
fn trim_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

fn encode_into(out: &mut String, text: &str, keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// URI-encodes each segment of a raw (unencoded) path per the S3 rules: everything except
/// `A-Z a-z 0-9 - _ . ~` is percent-encoded (uppercase hex), `/` separates segments and is
/// kept. A path without a leading `/` gets one. S3 encodes once (no double encoding).
pub fn encode_path(raw_path: &str) -> String {
    let mut out = String::with_capacity(raw_path.len() + 8);
    if !raw_path.starts_with('/') {
        out.push('/');
    }
    encode_into(&mut out, raw_path, true);
    out
}

/// The canonical query string of raw (unencoded) pairs: each name and value encoded (including
/// `/`), sorted by name then value, joined as `name=value` with `&`. A flag such as `uploads`
/// is a pair with an empty value and becomes `uploads=`.
pub fn canonical_query(query: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(name, value)| {
            let mut n = String::new();
            encode_into(&mut n, name, false);
            let mut v = String::new();
            encode_into(&mut v, value, false);
            (n, v)
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::new();
    for (idx, (name, value)) in pairs.iter().enumerate() {
        if idx > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // The worked examples of the AWS S3 documentation, "Signature Calculations for the
    // Authorization Header: Transferring Payload in a Single Chunk (AWS Signature Version 4)".
    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const HOST: &str = "examplebucket.s3.amazonaws.com";
    /// Fri, 24 May 2013 00:00:00 GMT.
    const EXAMPLE_EPOCH_SECS: u64 = 1_369_353_600;

    fn example_date() -> AmzDate {
        AmzDate::from_system_time(UNIX_EPOCH + Duration::from_secs(EXAMPLE_EPOCH_SECS))
    }

    fn check(
        method: Method,
        raw_path: &str,
        query: &[(&str, &str)],
        extra: &[(&'static str, &str)],
        payload: PayloadHash,
        expected_signature: &str,
        expected_signed_headers: &str,
    ) {
        let signer = Signer::new(ACCESS_KEY, SECRET_KEY, "us-east-1");
        let mut headers = HeaderMap::new();
        for (name, value) in extra {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let uri = encode_path(raw_path);
        let query = canonical_query(query);
        let request = RequestToSign {
            method: &method,
            canonical_uri: &uri,
            canonical_query: &query,
            host: HOST,
        };
        let signature = signer
            .sign(request, &mut headers, &payload, &example_date())
            .unwrap();
        assert_eq!(signature, expected_signature);
        let authorization = headers.get(AUTHORIZATION).unwrap().to_str().unwrap();
        assert_eq!(
            authorization,
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders={expected_signed_headers},Signature={expected_signature}"
            )
        );
        assert_eq!(headers.get(X_AMZ_DATE).unwrap(), "20130524T000000Z");
    }

    #[test]
    fn aws_example_get_object_with_range() {
        check(
            Method::GET,
            "/test.txt",
            &[],
            &[("range", "bytes=0-9")],
            PayloadHash::Sha256Hex(EMPTY_PAYLOAD_SHA256.into()),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            "host;range;x-amz-content-sha256;x-amz-date",
        );
    }

    #[test]
    fn aws_example_put_object_with_payload_hash() {
        check(
            Method::PUT,
            "test$file.text",
            &[],
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            PayloadHash::of(b"Welcome to Amazon S3."),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        check(
            Method::GET,
            "/",
            &[("lifecycle", "")],
            &[],
            PayloadHash::Sha256Hex(EMPTY_PAYLOAD_SHA256.into()),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            "host;x-amz-content-sha256;x-amz-date",
        );
    }

    #[test]
    fn aws_example_list_objects_sorts_query() {
        check(
            Method::GET,
            "/",
            &[("prefix", "J"), ("max-keys", "2")],
            &[],
            PayloadHash::Sha256Hex(EMPTY_PAYLOAD_SHA256.into()),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            "host;x-amz-content-sha256;x-amz-date",
        );
    }

    #[test]
    fn payload_hash_of_empty_body_is_the_documented_constant() {
        assert_eq!(
            PayloadHash::of(b""),
            PayloadHash::Sha256Hex(EMPTY_PAYLOAD_SHA256.into())
        );
    }

    #[test]
    fn signing_key_is_cached_per_day_and_rederived_on_a_new_day() {
        let signer = Signer::new(ACCESS_KEY, SECRET_KEY, "us-east-1");
        let day1 = signer.signing_key("20130524");
        assert_eq!(signer.key_cache.lock().unwrap().as_ref().unwrap().0, "20130524");
        assert_eq!(signer.signing_key("20130524"), day1);
        let day2 = signer.signing_key("20130525");
        assert_ne!(day1, day2);
        assert_eq!(signer.key_cache.lock().unwrap().as_ref().unwrap().0, "20130525");
    }

    #[test]
    fn dates_format_as_amz_dates() {
        let cases = [
            (0, "19700101T000000Z"),
            (EXAMPLE_EPOCH_SECS, "20130524T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_709_251_199, "20240229T235959Z"),
            (4_102_444_800, "21000101T000000Z"),
        ];
        for (secs, expected) in cases {
            let date = AmzDate::from_system_time(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(date.date_time, expected, "{secs}");
            assert_eq!(date.date, expected[..8]);
        }
    }

    #[test]
    fn paths_and_queries_encode_per_s3_rules() {
        assert_eq!(
            encode_path("/bucket/a b/c+d/é~x_y-z.txt"),
            "/bucket/a%20b/c%2Bd/%C3%A9~x_y-z.txt"
        );
        assert_eq!(encode_path("test$file.text"), "/test%24file.text");
        assert_eq!(encode_path("/b//k"), "/b//k");
        assert_eq!(
            canonical_query(&[("prefix", "a/b c"), ("list-type", "2"), ("uploads", "")]),
            "list-type=2&prefix=a%2Fb%20c&uploads="
        );
        assert_eq!(canonical_query(&[("k", "b"), ("k", "a")]), "k=a&k=b");
        assert_eq!(canonical_query(&[]), "");
    }

    #[test]
    fn header_values_are_trimmed_and_repeated_headers_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-amz-meta-a", HeaderValue::from_static("  one   two "));
        headers.append("x-amz-meta-a", HeaderValue::from_static("three"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let (block, signed) = canonical_headers("h:9000", &headers).unwrap();
        assert_eq!(
            block,
            "content-type:text/plain\nhost:h:9000\nx-amz-meta-a:one two,three\n"
        );
        assert_eq!(signed, "content-type;host;x-amz-meta-a");
    }
}
