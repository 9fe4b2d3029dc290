//! Object lock (WORM): Put/GetObjectLockConfiguration, Put/GetObjectRetention,
//! Put/GetObjectLegalHold, the `x-amz-object-lock-*` headers of PUT, CreateMultipartUpload and
//! CopyObject, and what GET and HEAD report.
//!
//! The protection itself lives in the object layer: a version's retention and legal hold are
//! part of its record (`ObjectMetadata::retention`, `legal_hold`), a permanent delete of a
//! protected version is refused under the key's lock on every node, and retention changes are
//! checked under that lock too (`check_retention_change`: compliance only extends, governance
//! shortens only with the bypass). This module validates requests, applies a bucket's default
//! retention to new versions, and decides the bypass: `x-amz-bypass-governance-retention: true`
//! counts only when the caller holds `s3:BypassGovernanceRetention` on the object.
//!
//! A bucket has object lock when it was created with `x-amz-bucket-object-lock-enabled` or a
//! configuration was put on it while versioning was enabled (AWS allows both); its default
//! retention rule is the `object-lock` configuration blob. The request bodies of the three Put
//! calls must carry a `Content-MD5` or checksum, verified before they run ([`crate::intercept`]).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use serde::{Deserialize, Serialize};
use strata_object::{ObjectError, ObjectMetadata, Retention, RetentionMode, now_unix_ms};

use crate::convert;
use crate::service::{StrataS3, err_mapper};

/// Name of the bucket configuration blob holding the default retention rule.
const OBJECT_LOCK_CONFIG: &str = "object-lock";
/// A lifecycle year of object lock, as AWS counts default retention years.
const DAYS_PER_YEAR: i64 = 365;
const MS_PER_DAY: i64 = 86_400_000;

/// A bucket's default retention: a mode and a period in days or years.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DefaultRule {
    mode: RetentionMode,
    days: Option<i32>,
    years: Option<i32>,
}

impl DefaultRule {
    fn retention_from(&self, now_ms: i64) -> Retention {
        let days = i64::from(self.days.unwrap_or(0)) + i64::from(self.years.unwrap_or(0)) * DAYS_PER_YEAR;
        Retention {
            mode: self.mode,
            until_unix_ms: now_ms.saturating_add(days.saturating_mul(MS_PER_DAY)),
        }
    }
}

/// The stored `object-lock` blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredLock {
    default: Option<DefaultRule>,
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned())
}

fn malformed_xml() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

fn mode_of(text: &str) -> S3Result<RetentionMode> {
    match text {
        ObjectLockRetentionMode::GOVERNANCE => Ok(RetentionMode::Governance),
        ObjectLockRetentionMode::COMPLIANCE => Ok(RetentionMode::Compliance),
        _ => Err(invalid_argument("Unknown wormMode directive.")),
    }
}

fn mode_name(mode: RetentionMode) -> &'static str {
    match mode {
        RetentionMode::Governance => ObjectLockRetentionMode::GOVERNANCE,
        RetentionMode::Compliance => ObjectLockRetentionMode::COMPLIANCE,
    }
}

fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_unix_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn not_enabled() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        "Bucket is missing Object Lock Configuration",
    )
}

/// The bucket's default rule, or `InvalidRequest` when the bucket has no object lock.
async fn lock_state(s3: &StrataS3, bucket: &str) -> Result<Option<StoredLock>, ObjectError> {
    if !s3.layer.bucket_info(bucket).await?.object_lock {
        return Ok(None);
    }
    let stored = s3.layer.get_bucket_config(bucket, OBJECT_LOCK_CONFIG).await?;
    Ok(Some(
        stored
            .and_then(|blob| serde_json::from_slice(&blob).ok())
            .unwrap_or_default(),
    ))
}

/// Refuses a retention or legal-hold call on a bucket without object lock (`InvalidRequest`).
async fn require_lock(s3: &StrataS3, bucket: &str, map_err: impl Fn(ObjectError) -> S3Error) -> S3Result<()> {
    match lock_state(s3, bucket).await.map_err(map_err)? {
        Some(_) => Ok(()),
        None => Err(not_enabled()),
    }
}

/// The lock headers of a write (PUT, CreateMultipartUpload, CopyObject).
#[derive(Clone, Debug, Default)]
pub(crate) struct LockHeaders<'a> {
    pub(crate) mode: Option<&'a str>,
    pub(crate) retain_until: Option<Timestamp>,
    pub(crate) legal_hold: Option<&'a str>,
}

impl<'a> LockHeaders<'a> {
    /// The headers as s3s parsed them into a write's input.
    pub(crate) fn of(
        mode: Option<&'a ObjectLockMode>,
        retain_until: Option<&Timestamp>,
        legal_hold: Option<&'a ObjectLockLegalHoldStatus>,
    ) -> LockHeaders<'a> {
        LockHeaders {
            mode: mode.map(ObjectLockMode::as_str),
            retain_until: retain_until.cloned(),
            legal_hold: legal_hold.map(ObjectLockLegalHoldStatus::as_str),
        }
    }

    fn any(&self) -> bool {
        self.mode.is_some() || self.retain_until.is_some() || self.legal_hold.is_some()
    }
}

/// The retention and legal hold a new version of `bucket/key` gets: the request's, else the
/// bucket's default retention. Refused as AWS refuses: settings (or tags, `tagged`) the
/// caller may not set ([`require_write_options`]), lock headers on a bucket without object
/// lock, a mode without a date or the other way round, a date in the past, an unknown mode or
/// status.
pub(crate) async fn lock_for_write(
    s3: &StrataS3,
    extensions: &http::Extensions,
    (bucket, key): (&str, &str),
    headers: LockHeaders<'_>,
    tagged: bool,
    map_err: impl Fn(ObjectError) -> S3Error,
) -> S3Result<(Option<Retention>, bool)> {
    require_write_options(s3, extensions, bucket, key, &headers, tagged)?;
    let state = lock_state(s3, bucket).await.map_err(&map_err)?;
    let Some(state) = state else {
        if headers.any() {
            return Err(not_enabled());
        }
        return Ok((None, false));
    };
    let legal_hold = match headers.legal_hold {
        None => false,
        Some(ObjectLockLegalHoldStatus::ON) => true,
        Some(ObjectLockLegalHoldStatus::OFF) => false,
        Some(_) => return Err(invalid_argument("Legal Hold must be either of 'ON' or 'OFF'")),
    };
    let now = now_unix_ms();
    let retention = match (headers.mode, headers.retain_until) {
        (Some(mode), Some(until)) => {
            let until = unix_ms(convert::system_time(until));
            if until <= now {
                return Err(invalid_argument("The retain until date must be in the future!"));
            }
            Some(Retention {
                mode: mode_of(mode)?,
                until_unix_ms: until,
            })
        }
        (None, None) => state.default.map(|rule| rule.retention_from(now)),
        _ => {
            return Err(invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ));
        }
    };
    Ok((retention, legal_hold))
}

/// Whether the caller may bypass governance retention on `bucket/key` and asked to.
pub(crate) fn bypass_governance(
    s3: &StrataS3,
    extensions: &http::Extensions,
    asked: Option<bool>,
    bucket: &str,
    key: &str,
) -> bool {
    asked == Some(true)
        && crate::authz::require_also(
            extensions,
            s3.authorized,
            "s3:BypassGovernanceRetention",
            bucket,
            key,
        )
        .is_ok()
}

/// What a write's lock settings and tags require beyond `s3:PutObject` (AWS): explicit
/// retention needs `s3:PutObjectRetention`, a legal hold `s3:PutObjectLegalHold`, tags
/// `s3:PutObjectTagging`.
fn require_write_options(
    s3: &StrataS3,
    extensions: &http::Extensions,
    bucket: &str,
    key: &str,
    headers: &LockHeaders<'_>,
    tagged: bool,
) -> S3Result<()> {
    let needs = [
        (
            headers.mode.is_some() || headers.retain_until.is_some(),
            "s3:PutObjectRetention",
        ),
        (headers.legal_hold.is_some(), "s3:PutObjectLegalHold"),
        (tagged, "s3:PutObjectTagging"),
    ];
    for (_, action) in needs.iter().filter(|(needed, _)| *needed) {
        crate::authz::require_also(extensions, s3.authorized, action, bucket, key)?;
    }
    Ok(())
}

/// The lock fields GET and HEAD report.
pub(crate) struct LockFields {
    pub(crate) mode: Option<ObjectLockMode>,
    pub(crate) retain_until: Option<Timestamp>,
    pub(crate) legal_hold: Option<ObjectLockLegalHoldStatus>,
}

/// What GET and HEAD report of a version's protection.
pub(crate) fn lock_fields(metadata: &ObjectMetadata) -> LockFields {
    LockFields {
        mode: metadata
            .retention
            .map(|r| ObjectLockMode::from(mode_name(r.mode).to_owned())),
        retain_until: metadata
            .retention
            .map(|r| convert::timestamp(from_unix_ms(r.until_unix_ms))),
        legal_hold: metadata
            .legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
    }
}

pub(crate) async fn put_object_lock_configuration(
    s3: &StrataS3,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let config = input.object_lock_configuration.ok_or_else(malformed_xml)?;
    if config.object_lock_enabled.as_ref().map(ObjectLockEnabled::as_str) != Some(ObjectLockEnabled::ENABLED)
    {
        return Err(malformed_xml());
    }
    let default = match config.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => {
            let mode = mode_of(
                d.mode
                    .as_ref()
                    .map(ObjectLockRetentionMode::as_str)
                    .ok_or_else(malformed_xml)?,
            )?;
            match (d.days, d.years) {
                (Some(_), Some(_)) | (None, None) => return Err(malformed_xml()),
                (Some(n), None) | (None, Some(n)) if n <= 0 => {
                    return Err(invalid_argument(
                        "Default retention period must be a positive integer value.",
                    ));
                }
                (days, years) => Some(DefaultRule { mode, days, years }),
            }
        }
    };
    s3.layer
        .enable_object_lock(&input.bucket)
        .await
        .map_err(|e| match e {
            ObjectError::InvalidBucketState { .. } => S3Error::with_message(
                S3ErrorCode::InvalidBucketState,
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
            ),
            other => map_err(other),
        })?;
    let blob =
        serde_json::to_vec(&StoredLock { default }).map_err(|_| S3Error::new(S3ErrorCode::InternalError))?;
    s3.layer
        .put_bucket_config(&input.bucket, OBJECT_LOCK_CONFIG, Bytes::from(blob))
        .await
        .map_err(&map_err)?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub(crate) async fn get_object_lock_configuration(
    s3: &StrataS3,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let state = lock_state(s3, &req.input.bucket)
        .await
        .map_err(err_mapper(&req))?
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket",
            )
        })?;
    let rule = state.default.map(|d| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            days: d.days,
            mode: Some(ObjectLockRetentionMode::from(mode_name(d.mode).to_owned())),
            years: d.years,
        }),
    });
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    }))
}

pub(crate) async fn put_object_retention(
    s3: &StrataS3,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let map_err = err_mapper(&req);
    let bypass = bypass_governance(
        s3,
        &req.extensions,
        req.input.bypass_governance_retention,
        &req.input.bucket,
        &req.input.key,
    );
    let input = req.input;
    require_lock(s3, &input.bucket, &map_err).await?;
    let new = match input.retention {
        None => None,
        Some(r) => match (r.mode, r.retain_until_date) {
            (Some(mode), Some(until)) => {
                let until = unix_ms(convert::system_time(until));
                if until <= now_unix_ms() {
                    return Err(invalid_argument("The retain until date must be in the future!"));
                }
                Some(Retention {
                    mode: mode_of(mode.as_str())?,
                    until_unix_ms: until,
                })
            }
            // An empty Retention removes it (governance with the bypass only).
            (None, None) => None,
            _ => return Err(malformed_xml()),
        },
    };
    s3.layer
        .update_object_metadata(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            move |metadata| {
                metadata
                    .check_retention_change(new, bypass)
                    .map_err(|reason| ObjectError::ObjectLocked { reason })?;
                metadata.retention = new;
                Ok(())
            },
        )
        .await
        .map_err(&map_err)?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub(crate) async fn get_object_retention(
    s3: &StrataS3,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    require_lock(s3, &input.bucket, &map_err).await?;
    let info = s3
        .version_info(&input.bucket, &input.key, input.version_id)
        .await
        .map_err(&map_err)?;
    let retention = info.metadata.retention.ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::NoSuchObjectLockConfiguration,
            "The specified object does not have a ObjectLock configuration",
        )
    })?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from(
                mode_name(retention.mode).to_owned(),
            )),
            retain_until_date: Some(convert::timestamp(from_unix_ms(retention.until_unix_ms))),
        }),
    }))
}

pub(crate) async fn put_object_legal_hold(
    s3: &StrataS3,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    require_lock(s3, &input.bucket, &map_err).await?;
    let on = match input
        .legal_hold
        .and_then(|h| h.status)
        .as_ref()
        .map(ObjectLockLegalHoldStatus::as_str)
    {
        Some(ObjectLockLegalHoldStatus::ON) => true,
        Some(ObjectLockLegalHoldStatus::OFF) => false,
        _ => return Err(malformed_xml()),
    };
    s3.layer
        .update_object_metadata(
            &input.bucket,
            &input.key,
            input.version_id.as_deref(),
            move |metadata| {
                metadata.legal_hold = on;
                Ok(())
            },
        )
        .await
        .map_err(&map_err)?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub(crate) async fn get_object_legal_hold(
    s3: &StrataS3,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    require_lock(s3, &input.bucket, &map_err).await?;
    let info = s3
        .version_info(&input.bucket, &input.key, input.version_id)
        .await
        .map_err(&map_err)?;
    let status = if info.metadata.legal_hold {
        ObjectLockLegalHoldStatus::ON
    } else {
        ObjectLockLegalHoldStatus::OFF
    };
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(status)),
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_count_days_and_years() {
        let rule = DefaultRule {
            mode: RetentionMode::Governance,
            days: Some(2),
            years: None,
        };
        assert_eq!(rule.retention_from(1_000).until_unix_ms, 1_000 + 2 * MS_PER_DAY);
        let rule = DefaultRule {
            mode: RetentionMode::Compliance,
            days: None,
            years: Some(1),
        };
        let r = rule.retention_from(0);
        assert_eq!(r.until_unix_ms, 365 * MS_PER_DAY);
        assert_eq!(r.mode, RetentionMode::Compliance);
    }

    #[test]
    fn modes_parse_as_aws_spells_them() {
        assert_eq!(mode_of("GOVERNANCE").unwrap(), RetentionMode::Governance);
        assert_eq!(mode_of("COMPLIANCE").unwrap(), RetentionMode::Compliance);
        assert!(mode_of("governance").is_err());
        assert_eq!(mode_name(RetentionMode::Compliance), "COMPLIANCE");
    }
}
