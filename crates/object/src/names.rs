//! Bucket name and object key rules, as S3 states them.

use crate::api::OBJECT_KEY_BYTES_MAX;
use crate::error::{ObjectError, ObjectResult};

/// Shortest bucket name.
const BUCKET_NAME_BYTES_MIN: usize = 3;
/// Longest bucket name.
const BUCKET_NAME_BYTES_MAX: usize = 63;

/// Checks S3's general-purpose bucket naming rules.
pub fn check_bucket_name(bucket: &str) -> ObjectResult<()> {
    let fail = |reason| {
        Err(ObjectError::InvalidBucketName {
            bucket: bucket.to_string(),
            reason,
        })
    };
    if bucket.len() < BUCKET_NAME_BYTES_MIN || bucket.len() > BUCKET_NAME_BYTES_MAX {
        return fail("must be between 3 and 63 characters long");
    }
    let bytes = bucket.as_bytes();
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
    {
        return fail("may contain only lowercase letters, digits, dots and hyphens");
    }
    let first = bytes[0];
    let last = bytes[bytes.len() - 1];
    if !(first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric()) {
        return fail("must begin and end with a letter or digit");
    }
    if bucket.contains("..") || bucket.contains(".-") || bucket.contains("-.") {
        return fail("must not contain two adjacent periods or a period next to a hyphen");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return fail("must not be formatted as an IP address");
    }
    if bucket.starts_with("xn--") || bucket.starts_with("sthree-") || bucket.ends_with("-s3alias") {
        return fail("uses a reserved prefix or suffix");
    }
    if bucket.ends_with("--ol-s3") || bucket.ends_with(".mrap") || bucket.ends_with("--x-s3") {
        return fail("uses a reserved suffix");
    }
    Ok(())
}

/// Checks an object key: non-empty, at most 1024 bytes of UTF-8, no NUL (which S3 cannot
/// carry in XML listings and which Strata uses as a key separator).
pub fn check_object_key(key: &str) -> ObjectResult<()> {
    if key.is_empty() {
        return Err(ObjectError::InvalidObjectKey {
            reason: "the key is empty",
        });
    }
    if key.len() > OBJECT_KEY_BYTES_MAX {
        return Err(ObjectError::KeyTooLong { len_bytes: key.len() });
    }
    if key.as_bytes().contains(&0) {
        return Err(ObjectError::InvalidObjectKey {
            reason: "the key contains a NUL character",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.photos", "a1b", "123"] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in [
            "ab",
            long.as_str(),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
        ] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn object_keys() {
        assert!(check_object_key("a/b/ü €").is_ok());
        assert!(check_object_key(&"k".repeat(1024)).is_ok());
        assert!(check_object_key(&"k".repeat(1025)).is_err());
        assert!(check_object_key("").is_err());
        assert!(check_object_key("a\0b").is_err());
    }
}
