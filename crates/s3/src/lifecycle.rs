//! Bucket lifecycle at the front door: Put/Get/DeleteBucketLifecycleConfiguration (S3's XML to
//! and from `strata_lifecycle::LifecycleConfig`, its errors to AWS's codes) and the
//! `x-amz-expiration` header of PUT, GET, HEAD, CopyObject and CompleteMultipartUpload.
//!
//! The rules are the bucket configuration blob `lifecycle`, read with the bucket's access
//! settings (`AccessConfig::lifecycle`, cached for a second). A write whose new version is due
//! already is queued to the lifecycle job at once; everything else waits for its cycle.
//! The request body needs a `Content-MD5` or checksum, as on AWS ([`crate::intercept`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use strata_lifecycle::config::{
    AndFilter, Candidate, Expiration, Filter, NoncurrentExpiration, NoncurrentTransition, Rule, Scope,
    TagCondition, Transition as RuleTransition,
};
use strata_lifecycle::{BUCKET_LIFECYCLE_CONFIG, DayLength, LifecycleConfig, LifecycleError};
use strata_object::ObjectInfo;

use crate::convert;
use crate::service::{StrataS3, err_mapper};

const MALFORMED_XML_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

fn malformed_xml() -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedXML, MALFORMED_XML_MESSAGE)
}

fn error_of(err: LifecycleError) -> S3Error {
    match err {
        LifecycleError::Malformed => malformed_xml(),
        LifecycleError::BadValue(message) => S3Error::with_message(S3ErrorCode::InvalidArgument, message),
        LifecycleError::Conflict(message) => S3Error::with_message(S3ErrorCode::InvalidRequest, message),
        LifecycleError::UnknownStorageClass(_) => S3Error::with_message(
            S3ErrorCode::InvalidStorageClass,
            "The storage class you specified is not valid",
        ),
    }
}

/// A count from the XML; a negative one is `InvalidArgument` with AWS's text for the field
/// (the same text as for zero where zero is refused too).
fn count(value: Option<i32>, message: &str) -> S3Result<Option<u32>> {
    value
        .map(|v| {
            u32::try_from(v)
                .map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned()))
        })
        .transpose()
}

const EXPIRATION_DAYS: &str = "'Days' for Expiration action must be a positive integer";
const TRANSITION_DAYS: &str = "'Days' in Transition action must be a nonnegative integer";
const NONCURRENT_DAYS: &str =
    "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer";
const NONCURRENT_TRANSITION_DAYS: &str =
    "'NoncurrentDays' in NoncurrentVersionTransition action must be a nonnegative integer";
const NEWER_VERSIONS: &str = "'NewerNoncurrentVersions' must be a positive integer up to 100";
const ABORT_DAYS: &str =
    "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer";

fn size(value: Option<i64>) -> S3Result<Option<u64>> {
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| {
                S3Error::with_message(S3ErrorCode::InvalidArgument, "Object size must be non-negative")
            })
        })
        .transpose()
}

/// A rule's date as whole seconds since the epoch; one with a fraction of a second is not
/// midnight (AWS's `InvalidArgument`).
fn date(value: Option<Timestamp>) -> S3Result<Option<i64>> {
    let not_midnight =
        || S3Error::with_message(S3ErrorCode::InvalidArgument, "'Date' must be at midnight GMT");
    value
        .map(|t| {
            let (secs, nanos) = match convert::system_time(t).duration_since(UNIX_EPOCH) {
                Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
                Err(e) => {
                    let d = e.duration();
                    (-i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos())
                }
            };
            if nanos == 0 { Ok(secs) } else { Err(not_midnight()) }
        })
        .transpose()
}

fn tag_condition(tag: Tag) -> S3Result<TagCondition> {
    match (tag.key, tag.value) {
        (Some(key), value) => Ok(TagCondition {
            key,
            value: value.unwrap_or_default(),
        }),
        (None, _) => Err(malformed_xml()),
    }
}

fn filter_of(f: LifecycleRuleFilter) -> S3Result<Filter> {
    let conditions = usize::from(f.and.is_some())
        + usize::from(f.prefix.is_some())
        + usize::from(f.tag.is_some())
        + usize::from(f.object_size_greater_than.is_some())
        + usize::from(f.object_size_less_than.is_some());
    if conditions > 1 {
        return Err(malformed_xml());
    }
    Ok(if let Some(and) = f.and {
        Filter::And(AndFilter {
            prefix: and.prefix,
            tags: and
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(tag_condition)
                .collect::<S3Result<_>>()?,
            size_greater_than: size(and.object_size_greater_than)?,
            size_less_than: size(and.object_size_less_than)?,
        })
    } else if let Some(prefix) = f.prefix {
        Filter::Prefix(prefix)
    } else if let Some(tag) = f.tag {
        Filter::Tag(tag_condition(tag)?)
    } else if let Some(n) = size(f.object_size_greater_than)? {
        Filter::SizeGreaterThan(n)
    } else if let Some(n) = size(f.object_size_less_than)? {
        Filter::SizeLessThan(n)
    } else {
        Filter::All
    })
}

fn rule_of(rule: LifecycleRule) -> S3Result<Rule> {
    let enabled = match rule.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        _ => return Err(malformed_xml()),
    };
    let scope = match (rule.filter, rule.prefix) {
        (Some(filter), None) => Scope::Filter(filter_of(filter)?),
        (None, Some(prefix)) => Scope::Prefix(prefix),
        _ => return Err(malformed_xml()),
    };
    let expiration = rule
        .expiration
        .map(|e| -> S3Result<Expiration> {
            Ok(Expiration {
                days: count(e.days, EXPIRATION_DAYS)?,
                date: date(e.date)?,
                expired_object_delete_marker: e.expired_object_delete_marker.unwrap_or(false),
            })
        })
        .transpose()?;
    let noncurrent_expiration = rule
        .noncurrent_version_expiration
        .map(|e| -> S3Result<NoncurrentExpiration> {
            Ok(NoncurrentExpiration {
                noncurrent_days: count(e.noncurrent_days, NONCURRENT_DAYS)?.ok_or_else(malformed_xml)?,
                newer_noncurrent_versions: count(e.newer_noncurrent_versions, NEWER_VERSIONS)?,
            })
        })
        .transpose()?;
    let abort_incomplete_upload_days = match rule.abort_incomplete_multipart_upload {
        Some(a) => Some(count(a.days_after_initiation, ABORT_DAYS)?.ok_or_else(malformed_xml)?),
        None => None,
    };
    let transitions = rule
        .transitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| -> S3Result<RuleTransition> {
            Ok(RuleTransition {
                days: count(t.days, TRANSITION_DAYS)?,
                date: date(t.date)?,
                storage_class: t.storage_class.ok_or_else(malformed_xml)?.as_str().to_owned(),
            })
        })
        .collect::<S3Result<_>>()?;
    let noncurrent_transitions = rule
        .noncurrent_version_transitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| -> S3Result<NoncurrentTransition> {
            Ok(NoncurrentTransition {
                noncurrent_days: count(t.noncurrent_days, NONCURRENT_TRANSITION_DAYS)?
                    .ok_or_else(malformed_xml)?,
                newer_noncurrent_versions: count(t.newer_noncurrent_versions, NEWER_VERSIONS)?,
                storage_class: t.storage_class.ok_or_else(malformed_xml)?.as_str().to_owned(),
            })
        })
        .collect::<S3Result<_>>()?;
    Ok(Rule {
        // AWS names a rule put without an ID.
        id: rule.id.unwrap_or_else(generated_id),
        enabled,
        scope,
        expiration,
        noncurrent_expiration,
        abort_incomplete_upload_days,
        transitions,
        noncurrent_transitions,
    })
}

/// A rule id for a rule put without one (48 characters, as AWS's are).
fn generated_id() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{}", &b[..16])
}

fn timestamp_of(secs: i64) -> Timestamp {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    let at = if secs >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    };
    convert::timestamp(at)
}

fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn tag_of(t: TagCondition) -> Tag {
    Tag {
        key: Some(t.key),
        value: Some(t.value),
    }
}

fn xml_filter(filter: Filter) -> LifecycleRuleFilter {
    let mut out = LifecycleRuleFilter::default();
    match filter {
        Filter::All => {}
        Filter::Prefix(p) => out.prefix = Some(p),
        Filter::Tag(t) => out.tag = Some(tag_of(t)),
        Filter::SizeGreaterThan(n) => out.object_size_greater_than = Some(i64_of(n)),
        Filter::SizeLessThan(n) => out.object_size_less_than = Some(i64_of(n)),
        Filter::And(and) => {
            out.and = Some(LifecycleRuleAndOperator {
                prefix: and.prefix,
                tags: (!and.tags.is_empty()).then(|| and.tags.into_iter().map(tag_of).collect()),
                object_size_greater_than: and.size_greater_than.map(i64_of),
                object_size_less_than: and.size_less_than.map(i64_of),
            });
        }
    }
    out
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn xml_rule(rule: Rule) -> LifecycleRule {
    let (filter, prefix) = match rule.scope {
        Scope::Prefix(p) => (None, Some(p)),
        Scope::Filter(f) => (Some(xml_filter(f)), None),
    };
    LifecycleRule {
        id: Some(rule.id),
        status: ExpirationStatus::from_static(if rule.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        filter,
        prefix,
        expiration: rule.expiration.map(|e| LifecycleExpiration {
            days: e.days.map(i32_of),
            date: e.date.map(timestamp_of),
            expired_object_delete_marker: e.expired_object_delete_marker.then_some(true),
        }),
        noncurrent_version_expiration: rule.noncurrent_expiration.map(|e| NoncurrentVersionExpiration {
            noncurrent_days: Some(i32_of(e.noncurrent_days)),
            newer_noncurrent_versions: e.newer_noncurrent_versions.map(i32_of),
        }),
        abort_incomplete_multipart_upload: rule.abort_incomplete_upload_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(i32_of(d)),
            }
        }),
        transitions: non_empty(
            rule.transitions
                .into_iter()
                .map(|t| Transition {
                    days: t.days.map(i32_of),
                    date: t.date.map(timestamp_of),
                    storage_class: Some(TransitionStorageClass::from(t.storage_class)),
                })
                .collect(),
        ),
        noncurrent_version_transitions: non_empty(
            rule.noncurrent_transitions
                .into_iter()
                .map(|t| NoncurrentVersionTransition {
                    noncurrent_days: Some(i32_of(t.noncurrent_days)),
                    newer_noncurrent_versions: t.newer_noncurrent_versions.map(i32_of),
                    storage_class: Some(TransitionStorageClass::from(t.storage_class)),
                })
                .collect(),
        ),
    }
}

/// A stored configuration; one that no longer decodes counts as none (logged): no rule acts.
pub(crate) fn stored(bucket: &str, blob: &[u8]) -> Option<Arc<LifecycleConfig>> {
    match LifecycleConfig::from_blob(blob) {
        Ok(config) => Some(Arc::new(config)),
        Err(err) => {
            tracing::error!(bucket, %err, "stored lifecycle configuration does not decode; its rules are not applied");
            None
        }
    }
}

impl StrataS3 {
    fn lifecycle_day(&self) -> DayLength {
        self.lifecycle
            .as_ref()
            .map_or_else(DayLength::default, |l| l.settings().day)
    }

    /// The `x-amz-expiration` of a version just read or written (only current versions that
    /// an `Expiration` rule will expire have one). A version already due is queued to the
    /// lifecycle job when `queue` is set (writes).
    pub(crate) async fn expiration_header(&self, info: &ObjectInfo, queue: bool) -> Option<String> {
        if !info.is_latest || info.delete_marker {
            return None;
        }
        let config = self.access.get(&info.bucket).await.ok()?.lifecycle.clone()?;
        let candidate = Candidate {
            key: &info.key,
            size: info.size,
            tags: &info.metadata.tags,
        };
        let (due, rule_id) =
            strata_lifecycle::current_expiry(&config, self.lifecycle_day(), &candidate, info.mod_time)?;
        if queue
            && due <= SystemTime::now()
            && let Some(lifecycle) = &self.lifecycle
        {
            lifecycle.enqueue(&info.bucket, &info.key);
        }
        let date = convert::http_date(&convert::timestamp(due))?;
        let rule_id = rule_id.replace('\\', "\\\\").replace('"', "\\\"");
        let value = format!("expiry-date=\"{date}\", rule-id=\"{rule_id}\"");
        // A rule id with characters a header cannot carry: no header rather than a failed
        // response.
        http::HeaderValue::from_str(&value).is_ok().then_some(value)
    }
}

pub(crate) async fn put_bucket_lifecycle_configuration(
    s3: &StrataS3,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let map_err = err_mapper(&req);
    let input = req.input;
    let document = input.lifecycle_configuration.ok_or_else(malformed_xml)?;
    let config = LifecycleConfig {
        rules: document.rules.into_iter().map(rule_of).collect::<S3Result<_>>()?,
        transition_default_minimum_object_size: input
            .transition_default_minimum_object_size
            .as_ref()
            .map(|s| s.as_str().to_owned()),
    };
    if let Some(size) = &config.transition_default_minimum_object_size
        && ![
            TransitionDefaultMinimumObjectSize::ALL_STORAGE_CLASSES_128K,
            TransitionDefaultMinimumObjectSize::VARIES_BY_STORAGE_CLASS,
        ]
        .contains(&size.as_str())
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid value for x-amz-transition-default-minimum-object-size",
        ));
    }
    // A transition names a configured storage class other than STANDARD.
    let layer = &s3.layer;
    config
        .validate(&|class| {
            class != strata_object::STANDARD_CLASS
                && (layer.storage_class_exists(class) || layer.is_remote_tier(class))
        })
        .map_err(error_of)?;
    s3.layer
        .put_bucket_config(&input.bucket, BUCKET_LIFECYCLE_CONFIG, config.to_blob().into())
        .await
        .map_err(map_err)?;
    s3.access.invalidate(&input.bucket);
    if let Some(lifecycle) = &s3.lifecycle {
        lifecycle.wake();
    }
    Ok(S3Response::new(PutBucketLifecycleConfigurationOutput {
        transition_default_minimum_object_size: Some(minimum_size(&config)),
    }))
}

fn minimum_size(config: &LifecycleConfig) -> TransitionDefaultMinimumObjectSize {
    TransitionDefaultMinimumObjectSize::from(
        config
            .transition_default_minimum_object_size
            .clone()
            .unwrap_or_else(|| TransitionDefaultMinimumObjectSize::ALL_STORAGE_CLASSES_128K.to_owned()),
    )
}

pub(crate) async fn get_bucket_lifecycle_configuration(
    s3: &StrataS3,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let map_err = err_mapper(&req);
    let bucket = req.input.bucket.as_str();
    let blob = s3
        .layer
        .get_bucket_config(bucket, BUCKET_LIFECYCLE_CONFIG)
        .await
        .map_err(map_err)?
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist",
            )
        })?;
    let config = LifecycleConfig::from_blob(&blob).map_err(|err| {
        tracing::error!(bucket, %err, "stored lifecycle configuration does not decode");
        S3Error::new(S3ErrorCode::InternalError)
    })?;
    let transition_default_minimum_object_size = Some(minimum_size(&config));
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(config.rules.into_iter().map(xml_rule).collect()),
        transition_default_minimum_object_size,
    }))
}

pub(crate) async fn delete_bucket_lifecycle(
    s3: &StrataS3,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    let map_err = err_mapper(&req);
    let bucket = req.input.bucket.as_str();
    s3.layer
        .delete_bucket_config(bucket, BUCKET_LIFECYCLE_CONFIG)
        .await
        .map_err(map_err)?;
    s3.access.invalidate(bucket);
    Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
}

/// A lifecycle configuration document (S3's XML, as GetBucketLifecycleConfiguration answers
/// it) as Strata's rules: for clients such as `strata ilm`.
pub fn lifecycle_from_xml(xml: &[u8]) -> Result<LifecycleConfig, String> {
    use s3s::xml::Deserialize as _;
    let mut d = s3s::xml::Deserializer::new(xml);
    let document = BucketLifecycleConfiguration::deserialize(&mut d).map_err(|e| format!("{e:?}"))?;
    let rules = document
        .rules
        .into_iter()
        .map(|r| rule_of(r).map_err(|e| e.message().unwrap_or("invalid rule").to_owned()))
        .collect::<Result<_, _>>()?;
    Ok(LifecycleConfig {
        rules,
        transition_default_minimum_object_size: None,
    })
}

/// Strata's rules as a PutBucketLifecycleConfiguration document.
pub fn lifecycle_to_xml(config: &LifecycleConfig) -> Vec<u8> {
    use s3s::xml::Serialize as _;
    let document = BucketLifecycleConfiguration {
        rules: config.rules.iter().cloned().map(xml_rule).collect(),
    };
    let mut out = Vec::new();
    let mut s = s3s::xml::Serializer::new(&mut out);
    if document.serialize(&mut s).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(filter: Option<LifecycleRuleFilter>, prefix: Option<&str>) -> LifecycleRule {
        LifecycleRule {
            id: Some("r".into()),
            status: ExpirationStatus::from_static(ExpirationStatus::ENABLED),
            filter,
            prefix: prefix.map(str::to_owned),
            expiration: Some(LifecycleExpiration {
                days: Some(3),
                date: None,
                expired_object_delete_marker: None,
            }),
            noncurrent_version_expiration: None,
            abort_incomplete_multipart_upload: None,
            transitions: None,
            noncurrent_version_transitions: None,
        }
    }

    #[test]
    fn rules_keep_their_shape_through_storage() {
        let and = LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: Some("logs/".into()),
                tags: Some(vec![Tag {
                    key: Some("k".into()),
                    value: Some("v".into()),
                }]),
                object_size_greater_than: Some(5),
                object_size_less_than: None,
            }),
            ..Default::default()
        };
        for r in [
            rule(Some(and), None),
            rule(None, Some("old/")),
            rule(Some(LifecycleRuleFilter::default()), None),
        ] {
            let back = xml_rule(rule_of(r.clone()).unwrap());
            assert_eq!(back, r);
        }
    }

    #[test]
    fn documents_round_trip_for_clients() {
        let rule = rule_of(rule(None, Some("old/"))).unwrap();
        let config = LifecycleConfig {
            rules: vec![rule],
            transition_default_minimum_object_size: None,
        };
        let xml = lifecycle_to_xml(&config);
        assert!(String::from_utf8_lossy(&xml).starts_with("<LifecycleConfiguration"));
        assert_eq!(lifecycle_from_xml(&xml).unwrap(), config);
    }

    #[test]
    fn bad_shapes_are_malformed() {
        assert!(rule_of(rule(None, None)).is_err());
        assert!(rule_of(rule(Some(LifecycleRuleFilter::default()), Some("p"))).is_err());
        let two = LifecycleRuleFilter {
            prefix: Some("a".into()),
            object_size_less_than: Some(3),
            ..Default::default()
        };
        assert!(rule_of(rule(Some(two), None)).is_err());
        let mut bad_status = rule(None, Some("p"));
        bad_status.status = ExpirationStatus::from("enabled".to_owned());
        assert!(rule_of(bad_status).is_err());
        let mut negative = rule(None, Some("p"));
        negative.expiration = Some(LifecycleExpiration {
            days: Some(-1),
            ..Default::default()
        });
        let err = rule_of(negative).unwrap_err();
        assert_eq!(*err.code(), S3ErrorCode::InvalidArgument);
    }
}
