//! Conditional request headers (`If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` and their `x-amz-copy-source-if-*` twins), evaluated on an object's
//! ETag and modification time with RFC 7232's precedence, as S3 does.
//!
//! Invariants: evaluation happens before any body byte is read; `If-Match` true makes
//! `If-Unmodified-Since` irrelevant and `If-None-Match` present makes `If-Modified-Since`
//! irrelevant; times compare at whole seconds (HTTP dates carry no fractions).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Error, S3ErrorCode};

use crate::convert;

/// The conditional headers of one request, as parsed by s3s.
#[derive(Default)]
pub(crate) struct Conditions {
    pub(crate) if_match: Option<ETagCondition>,
    pub(crate) if_none_match: Option<ETagCondition>,
    pub(crate) if_modified_since: Option<Timestamp>,
    pub(crate) if_unmodified_since: Option<Timestamp>,
}

/// The outcome of the evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Serve the request.
    Proceed,
    /// `304 Not Modified` (for copies: `412`).
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

impl Conditions {
    pub(crate) fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// Evaluates the conditions against an object with `etag` (unquoted) and `mod_time`.
    pub(crate) fn evaluate(&self, etag: &str, mod_time: SystemTime) -> Outcome {
        let mod_secs = whole_seconds(mod_time);
        match &self.if_match {
            Some(cond) => {
                if !etag_matches(cond, etag) {
                    return Outcome::Failed;
                }
            }
            None => {
                if let Some(since) = &self.if_unmodified_since
                    && mod_secs > whole_seconds(convert::system_time(since.clone()))
                {
                    return Outcome::Failed;
                }
            }
        }
        match &self.if_none_match {
            Some(cond) => {
                if etag_matches(cond, etag) {
                    return Outcome::NotModified;
                }
            }
            None => {
                if let Some(since) = &self.if_modified_since
                    && mod_secs <= whole_seconds(convert::system_time(since.clone()))
                {
                    return Outcome::NotModified;
                }
            }
        }
        Outcome::Proceed
    }

    /// Evaluates for a GET or HEAD: 304 carries the validators, 412 the S3 message.
    pub(crate) fn check_read(&self, etag: &str, mod_time: SystemTime) -> Result<(), S3Error> {
        match self.evaluate(etag, mod_time) {
            Outcome::Proceed => Ok(()),
            Outcome::NotModified => {
                let mut err = S3Error::with_message(S3ErrorCode::NotModified, "Not Modified");
                let mut headers = HeaderMap::new();
                if let Ok(v) = convert::etag(etag).to_http_header() {
                    headers.insert(http::header::ETAG, v);
                }
                if let Some(v) = convert::http_date(&convert::timestamp(mod_time))
                    .and_then(|s| HeaderValue::from_str(&s).ok())
                {
                    headers.insert(http::header::LAST_MODIFIED, v);
                }
                err.set_headers(headers);
                Err(err)
            }
            Outcome::Failed => Err(precondition_failed()),
        }
    }

    /// Evaluates `x-amz-copy-source-if-*`: every failure is 412.
    pub(crate) fn check_copy_source(&self, etag: &str, mod_time: SystemTime) -> Result<(), S3Error> {
        match self.evaluate(etag, mod_time) {
            Outcome::Proceed => Ok(()),
            Outcome::NotModified | Outcome::Failed => Err(precondition_failed()),
        }
    }
}

fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value().trim_matches('"') == etag.trim_matches('"'),
    }
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    const ETAG: &str = "abc";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ts(secs: u64) -> Timestamp {
        convert::timestamp(at(secs))
    }

    fn tag(s: &str) -> Option<ETagCondition> {
        Some(ETagCondition::ETag(ETag::Strong(s.into())))
    }

    /// Each case: conditions, expected outcome for an object with ETag "abc" modified at 1000 s.
    #[test]
    fn precedence_table() {
        let mtime = UNIX_EPOCH + Duration::from_millis(1_000_500);
        let cases: Vec<(Conditions, Outcome)> = vec![
            (Conditions::default(), Outcome::Proceed),
            (
                Conditions {
                    if_match: tag(ETAG),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_match: Some(ETagCondition::Any),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_match: tag("zzz"),
                    ..Default::default()
                },
                Outcome::Failed,
            ),
            (
                Conditions {
                    if_none_match: tag(ETAG),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_none_match: tag("zzz"),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_modified_since: Some(ts(1000)),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            (
                Conditions {
                    if_modified_since: Some(ts(999)),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(ts(1000)),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            (
                Conditions {
                    if_unmodified_since: Some(ts(999)),
                    ..Default::default()
                },
                Outcome::Failed,
            ),
            // If-Match true wins over a failing If-Unmodified-Since.
            (
                Conditions {
                    if_match: tag(ETAG),
                    if_unmodified_since: Some(ts(999)),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            // If-None-Match false (no match) wins over If-Modified-Since saying "not modified".
            (
                Conditions {
                    if_none_match: tag("zzz"),
                    if_modified_since: Some(ts(2000)),
                    ..Default::default()
                },
                Outcome::Proceed,
            ),
            // If-None-Match matching with If-Modified-Since saying "modified": still 304.
            (
                Conditions {
                    if_none_match: tag(ETAG),
                    if_modified_since: Some(ts(10)),
                    ..Default::default()
                },
                Outcome::NotModified,
            ),
            // A failed If-Match is 412 even when If-None-Match would say 304.
            (
                Conditions {
                    if_match: tag("zzz"),
                    if_none_match: tag(ETAG),
                    ..Default::default()
                },
                Outcome::Failed,
            ),
        ];
        for (idx, (conds, expected)) in cases.into_iter().enumerate() {
            assert_eq!(conds.evaluate(ETAG, mtime), expected, "case {idx}");
        }
    }

    #[test]
    fn read_and_copy_errors() {
        let conds = Conditions {
            if_none_match: tag(ETAG),
            ..Default::default()
        };
        let err = conds.check_read(ETAG, at(5)).unwrap_err();
        assert_eq!(err.status_code().unwrap().as_u16(), 304);
        assert_eq!(err.headers().unwrap().get("etag").unwrap(), "\"abc\"");
        let err = conds.check_copy_source(ETAG, at(5)).unwrap_err();
        assert_eq!(err.status_code().unwrap().as_u16(), 412);
        assert!(!conds.is_empty());
        assert!(Conditions::default().is_empty());
    }
}
