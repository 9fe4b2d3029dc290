//! The lifetime checks of SigV4 presigned URLs that S3 makes before anything else, which
//! s3s 0.14.1 makes differently (it takes any `u32` in `X-Amz-Expires` and still accepts a
//! request at the very second the URL expires):
//! - `X-Amz-Expires` must be an integer from 1 to 604800 (seven days):
//!   `AuthorizationQueryParametersError` (400) otherwise, before the signature is looked at;
//! - a URL is expired from `X-Amz-Date + X-Amz-Expires` on: `AccessDenied` (403), "Request
//!   has expired".
//!
//! Requests that are not SigV4 presigned (no `X-Amz-Algorithm` query parameter) pass
//! untouched; s3s checks everything else about presigned URLs (the date's format, the
//! signature, clock skew).

use http::Uri;
use s3s::{S3Error, S3ErrorCode, S3Result};
use time::OffsetDateTime;

/// The longest lifetime of a presigned URL S3 accepts, in seconds (seven days).
pub(crate) const PRESIGNED_EXPIRES_SECS_MAX: i64 = 604_800;

/// `X-Amz-Date`'s basic ISO 8601 form, `YYYYMMDDTHHMMSSZ`, as a time.
fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u16>().ok();
    let month = time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::from(number(0..4)?), month, u8::try_from(number(6..8)?).ok()?)
            .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(clock).assume_utc())
}

/// Checks the lifetime of a SigV4 presigned URL at `now` (see the module's rules).
pub(crate) fn check_presigned_lifetime(uri: &Uri, now: OffsetDateTime) -> S3Result<()> {
    let Some(query) = uri.query() else {
        return Ok(());
    };
    // Names are compared decoded (as s3s reads them), so an encoded name cannot slip past.
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_encoding::percent_decode_str(key).decode_utf8_lossy() == name)
                .then(|| percent_encoding::percent_decode_str(value).decode_utf8_lossy())
        })
    };
    if param("X-Amz-Algorithm").is_none() {
        return Ok(());
    }
    let Some(expires) = param("X-Amz-Expires") else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    };
    let expires: i64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires < 1 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if expires > PRESIGNED_EXPIRES_SECS_MAX {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    // A malformed date is s3s's to refuse (with the signature checks).
    let Some(signed) = param("X-Amz-Date").and_then(|d| parse_amz_date(&d)) else {
        return Ok(());
    };
    // A date so late that the expiry overflows the calendar is s3s's to refuse as malformed.
    let Some(expiry) = signed.checked_add(time::Duration::seconds(expires)) else {
        return Ok(());
    };
    if now >= expiry {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Request has expired",
        ));
    }
    Ok(())
}

fn query_error(message: &'static str) -> S3Error {
    let mut err = S3Error::with_message(
        S3ErrorCode::Custom("AuthorizationQueryParametersError".into()),
        message,
    );
    err.set_status_code(http::StatusCode::BAD_REQUEST);
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(expires: &str, date: &str) -> Uri {
        format!(
            "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
        )
        .parse()
        .unwrap()
    }

    fn code(result: S3Result<()>) -> Option<(String, u16)> {
        result.err().map(|e| {
            (
                e.code().as_str().to_owned(),
                e.status_code().map_or(0, |s| s.as_u16()),
            )
        })
    }

    #[test]
    fn expires_bounds_and_expiry_instant() {
        let signed = parse_amz_date("20261206T100000Z").unwrap();
        assert_eq!(signed.unix_timestamp(), 1_796_551_200);
        let date = "20261206T100000Z";
        let query_error = Some(("AuthorizationQueryParametersError".to_owned(), 400));
        for bad in ["0", "-5", "604801", "abc", ""] {
            assert_eq!(
                code(check_presigned_lifetime(&uri(bad, date), signed)),
                query_error,
                "{bad}"
            );
        }
        // Out-of-range lifetimes are refused even when the URL is long expired.
        let later = signed + time::Duration::days(30);
        assert_eq!(
            code(check_presigned_lifetime(&uri("604801", date), later)),
            query_error
        );
        assert!(check_presigned_lifetime(&uri("604800", date), signed).is_ok());
        let just_before = signed + time::Duration::seconds(59);
        assert!(check_presigned_lifetime(&uri("60", date), just_before).is_ok());
        let at_expiry = signed + time::Duration::seconds(60);
        assert_eq!(
            code(check_presigned_lifetime(&uri("60", date), at_expiry)),
            Some(("AccessDenied".to_owned(), 403))
        );
        // A date at the calendar's end does not overflow the expiry.
        assert!(check_presigned_lifetime(&uri("604800", "99991231T235959Z"), signed).is_ok());
        // An encoded parameter name is still the parameter.
        let encoded: Uri = uri("604801", date)
            .to_string()
            .replace("X-Amz-Expires", "X%2DAmz%2DExpires")
            .parse()
            .unwrap();
        assert_eq!(code(check_presigned_lifetime(&encoded, signed)), query_error);
        // Not presigned: untouched.
        let plain: Uri = "/b/k?X-Amz-Expires=0".parse().unwrap();
        assert!(check_presigned_lifetime(&plain, signed).is_ok());
    }
}
