//! Scrape tokens: a JWT (`HS512`) with claims `{"exp", "sub", "iss": "prometheus"}`, signed
//! with the root secret key, as MinIO's `mc admin prometheus generate` makes them. The server
//! accepts a token whose signature verifies with the root secret key, whose `sub` is the root
//! access key, whose `iss` is `prometheus` and that has not expired.
//!
//! Invariants: the signature is compared in constant time (`hmac`'s `verify_slice`); errors
//! never echo the token; changing the root secret key invalidates every token.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha512;

use crate::error::ObsError;

/// The `iss` claim of scrape tokens.
pub const TOKEN_ISSUER: &str = "prometheus";
/// Validity of generated tokens: 100 years, as MinIO's.
pub const TOKEN_VALIDITY_SECS: u64 = 100 * 365 * 24 * 3600;
/// Longest token accepted, in bytes (a generated one is about 200).
pub const TOKEN_BYTES_MAX: usize = 4096;

type HmacSha512 = Hmac<Sha512>;

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    exp: u64,
    sub: String,
    iss: String,
}

fn b64(data: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(data)
}

fn unb64(part: &str) -> Result<Vec<u8>, ObsError> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(part.as_bytes())
        .map_err(|_| ObsError::TokenMalformed)
}

fn mac(secret_key: &str) -> HmacSha512 {
    // HMAC accepts keys of any length, so this never fails; an empty key is the fallback.
    HmacSha512::new_from_slice(secret_key.as_bytes()).unwrap_or_else(|_| HmacSha512::new(&Default::default()))
}

/// A token for `access_key`, signed with `secret_key`, expiring `TOKEN_VALIDITY_SECS` after
/// `now_unix_secs`.
pub fn generate_token(access_key: &str, secret_key: &str, now_unix_secs: u64) -> String {
    let header = Header {
        alg: "HS512".to_owned(),
        typ: "JWT".to_owned(),
    };
    let claims = Claims {
        exp: now_unix_secs.saturating_add(TOKEN_VALIDITY_SECS),
        sub: access_key.to_owned(),
        iss: TOKEN_ISSUER.to_owned(),
    };
    // Serializing these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(&claims).unwrap_or_default();
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let mut m = mac(secret_key);
    m.update(signing_input.as_bytes());
    let signature = m.finalize().into_bytes();
    format!("{signing_input}.{}", b64(&signature))
}

/// Checks `token` against the root credentials at `now_unix_secs`.
pub fn verify_token(
    token: &str,
    access_key: &str,
    secret_key: &str,
    now_unix_secs: u64,
) -> Result<(), ObsError> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(ObsError::TokenMalformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(ObsError::TokenMalformed);
    };
    let header: Header = serde_json::from_slice(&unb64(h)?).map_err(|_| ObsError::TokenMalformed)?;
    if header.alg != "HS512" {
        return Err(ObsError::TokenAlgorithm);
    }
    let signature = unb64(s)?;
    let mut m = mac(secret_key);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(c.as_bytes());
    m.verify_slice(&signature).map_err(|_| ObsError::TokenSignature)?;
    let claims: Claims = serde_json::from_slice(&unb64(c)?).map_err(|_| ObsError::TokenMalformed)?;
    if claims.iss != TOKEN_ISSUER || claims.sub != access_key {
        return Err(ObsError::TokenSubject);
    }
    if claims.exp <= now_unix_secs {
        return Err(ObsError::TokenExpired {
            exp_unix_secs: claims.exp,
        });
    }
    Ok(())
}

/// The `sub` claim of a token, before its signature is checked (to find the key that
/// verifies it).
pub fn subject(token: &str) -> Result<String, ObsError> {
    if token.len() > TOKEN_BYTES_MAX {
        return Err(ObsError::TokenMalformed);
    }
    let claims = token.split('.').nth(1).ok_or(ObsError::TokenMalformed)?;
    let claims: Claims = serde_json::from_slice(&unb64(claims)?).map_err(|_| ObsError::TokenMalformed)?;
    Ok(claims.sub)
}

/// The access key and secret key of an `Authorization: Basic ...` header value.
pub fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_simd::STANDARD
        .decode_to_vec(encoded.trim().as_bytes())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Equality of two secrets in time independent of where they differ (the length is not
/// secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The bearer token of an `Authorization: Bearer TOKEN` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A Prometheus scrape configuration for `url` (`http://host:port`) with `token`.
pub fn scrape_config(job_name: &str, url: &str, token: &str) -> String {
    let (scheme, host) = url.split_once("://").unwrap_or(("http", url));
    let host = host.trim_end_matches('/');
    format!(
        "scrape_configs:\n- job_name: {job_name}\n  bearer_token: {token}\n  metrics_path: /metrics/cluster\n  scheme: {scheme}\n  static_configs:\n  - targets: ['{host}']\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn basic_credentials_subjects_and_comparison() {
        let header = format!(
            "Basic {}",
            base64_simd::STANDARD.encode_to_string(b"scraper:its-secret:with-colon")
        );
        assert_eq!(
            basic_credentials(&header),
            Some(("scraper".to_owned(), "its-secret:with-colon".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        let t = generate_token("someone", "secret-key-1", NOW);
        assert_eq!(subject(&t).unwrap(), "someone");
        assert!(subject("a.b").is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn generated_token_verifies() {
        let t = generate_token("AKROOT", "secret-key-1", NOW);
        assert_eq!(t.split('.').count(), 3);
        verify_token(&t, "AKROOT", "secret-key-1", NOW).unwrap();
        verify_token(&t, "AKROOT", "secret-key-1", NOW + TOKEN_VALIDITY_SECS - 1).unwrap();
    }

    #[test]
    fn wrong_secret_subject_expiry_and_garbage_fail() {
        let t = generate_token("AKROOT", "secret-key-1", NOW);
        assert!(matches!(
            verify_token(&t, "AKROOT", "secret-key-2", NOW),
            Err(ObsError::TokenSignature)
        ));
        assert!(matches!(
            verify_token(&t, "OTHER", "secret-key-1", NOW),
            Err(ObsError::TokenSubject)
        ));
        assert!(matches!(
            verify_token(&t, "AKROOT", "secret-key-1", NOW + TOKEN_VALIDITY_SECS),
            Err(ObsError::TokenExpired { .. })
        ));
        for bad in ["", "a.b", "a.b.c.d", "!!.??.**", &"x".repeat(TOKEN_BYTES_MAX + 1)] {
            assert!(verify_token(bad, "AKROOT", "secret-key-1", NOW).is_err(), "{bad}");
        }
        // A tampered claim breaks the signature.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        parts[1] = b64(br#"{"exp":99999999999,"sub":"AKROOT","iss":"prometheus"}"#);
        assert!(matches!(
            verify_token(&parts.join("."), "AKROOT", "secret-key-1", NOW),
            Err(ObsError::TokenSignature)
        ));
        // "alg": "none" is refused before any signature check.
        parts[0] = b64(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(matches!(
            verify_token(&parts.join("."), "AKROOT", "secret-key-1", NOW),
            Err(ObsError::TokenAlgorithm)
        ));
    }

    #[test]
    fn bearer_parsing_and_scrape_config() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("AWS4-HMAC-SHA256 Credential=x"), None);
        let c = scrape_config("strata", "http://127.0.0.1:9000/", "TOK");
        assert!(c.contains("bearer_token: TOK"));
        assert!(c.contains("targets: ['127.0.0.1:9000']"));
        assert!(c.contains("scheme: http\n"));
    }
}
