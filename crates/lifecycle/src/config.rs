//! A bucket's lifecycle configuration: the rules as stored (the `lifecycle` bucket
//! configuration blob, JSON of [`LifecycleConfig`]) and their validation, which is AWS's.
//!
//! The front door converts the S3 document into these types (keeping the shape the client
//! used: a rule-level `Prefix`, or a `Filter` with one condition or an `And`, so a GET shows
//! what was put) and calls [`LifecycleConfig::validate`]; what validation refuses is a
//! [`LifecycleError`] that the front door turns into AWS's error code and message.
//!
//! Dates are seconds since the Unix epoch; AWS accepts only midnight UTC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Rules in one configuration at most (AWS's limit).
pub const RULES_MAX: usize = 1000;
/// A rule's `ID` length at most, in characters.
pub const RULE_ID_CHARS_MAX: usize = 255;
/// `NewerNoncurrentVersions` at most.
pub const NEWER_NONCURRENT_VERSIONS_MAX: u32 = 100;
/// Seconds in a (real) day: dates must be a multiple of it.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// What validation refused. The front door maps each kind to AWS's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The document's structure is wrong (an element missing, two that exclude each other).
    #[error("the lifecycle configuration is malformed")]
    Malformed,
    /// A value is out of range (AWS: `InvalidArgument`).
    #[error("{0}")]
    BadValue(String),
    /// Settings that cannot go together (AWS: `InvalidRequest`).
    #[error("{0}")]
    Conflict(String),
    /// A transition names a storage class this deployment does not have.
    #[error("the storage class {0:?} is not valid")]
    UnknownStorageClass(String),
}

/// One tag condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagCondition {
    /// Tag key.
    pub key: String,
    /// Tag value (matched exactly).
    pub value: String,
}

/// The conditions of an `And` filter: all must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AndFilter {
    /// Keys start with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Every one of these tags is on the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagCondition>,
    /// The version is larger than this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_greater_than: Option<u64>,
    /// The version is smaller than this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_less_than: Option<u64>,
}

/// A rule's `Filter`, in the shape the client sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// `<Filter/>`: every object.
    All,
    /// `<Filter><Prefix>`.
    Prefix(String),
    /// `<Filter><Tag>`.
    Tag(TagCondition),
    /// `<Filter><ObjectSizeGreaterThan>`.
    SizeGreaterThan(u64),
    /// `<Filter><ObjectSizeLessThan>`.
    SizeLessThan(u64),
    /// `<Filter><And>`.
    And(AndFilter),
}

/// Which objects a rule applies to: a rule-level `Prefix` (the older form) or a `Filter`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `<Rule><Prefix>`.
    Prefix(String),
    /// `<Rule><Filter>`.
    Filter(Filter),
}

/// `Expiration`: of current versions after `days` or on `date`; or of expired delete markers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiration {
    /// Days after creation (rounded up to the next midnight UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// A date (midnight UTC), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
    /// Remove a delete marker that has no older versions left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired_object_delete_marker: bool,
}

/// `NoncurrentVersionExpiration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// Days after the version became noncurrent.
    pub noncurrent_days: u32,
    /// Noncurrent versions kept regardless of age (the newest ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
}

/// `Transition`: the current version's data moves to `storage_class`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Days after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// A date (midnight UTC), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
    /// The target class.
    pub storage_class: String,
}

/// `NoncurrentVersionTransition`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentTransition {
    /// Days after the version became noncurrent.
    pub noncurrent_days: u32,
    /// Noncurrent versions left where they are regardless of age (the newest ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<u32>,
    /// The target class.
    pub storage_class: String,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's `ID` (generated when the client gave none).
    pub id: String,
    /// `Status` is `Enabled`.
    pub enabled: bool,
    /// Which objects it applies to.
    pub scope: Scope,
    /// `Expiration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<Expiration>,
    /// `NoncurrentVersionExpiration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// `AbortIncompleteMultipartUpload`'s `DaysAfterInitiation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_upload_days: Option<u32>,
    /// `Transition`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
    /// `NoncurrentVersionTransition`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noncurrent_transitions: Vec<NoncurrentTransition>,
}

/// A bucket's lifecycle configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    /// The rules, in the order they were put.
    pub rules: Vec<Rule>,
    /// `x-amz-transition-default-minimum-object-size`, as it was put (AWS's default when none
    /// was: `all_storage_classes_128K`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_default_minimum_object_size: Option<String>,
}

/// What a version offers to a filter.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// Object key.
    pub key: &'a str,
    /// Content size in bytes (0 for a delete marker).
    pub size: u64,
    /// The version's tags (none for a delete marker).
    pub tags: &'a BTreeMap<String, String>,
}

fn has_tag(tags: &BTreeMap<String, String>, cond: &TagCondition) -> bool {
    tags.get(&cond.key).is_some_and(|v| *v == cond.value)
}

impl Filter {
    fn matches(&self, c: &Candidate<'_>) -> bool {
        match self {
            Filter::All => true,
            Filter::Prefix(prefix) => c.key.starts_with(prefix.as_str()),
            Filter::Tag(tag) => has_tag(c.tags, tag),
            Filter::SizeGreaterThan(n) => c.size > *n,
            Filter::SizeLessThan(n) => c.size < *n,
            Filter::And(and) => {
                and.prefix.as_deref().is_none_or(|p| c.key.starts_with(p))
                    && and.tags.iter().all(|t| has_tag(c.tags, t))
                    && and.size_greater_than.is_none_or(|n| c.size > n)
                    && and.size_less_than.is_none_or(|n| c.size < n)
            }
        }
    }

    fn has_tags(&self) -> bool {
        match self {
            Filter::Tag(_) => true,
            Filter::And(and) => !and.tags.is_empty(),
            _ => false,
        }
    }

    fn has_size(&self) -> bool {
        match self {
            Filter::SizeGreaterThan(_) | Filter::SizeLessThan(_) => true,
            Filter::And(and) => and.size_greater_than.is_some() || and.size_less_than.is_some(),
            _ => false,
        }
    }
}

impl Scope {
    /// Whether a version falls under the rule.
    pub fn matches(&self, c: &Candidate<'_>) -> bool {
        match self {
            Scope::Prefix(prefix) => c.key.starts_with(prefix.as_str()),
            Scope::Filter(filter) => filter.matches(c),
        }
    }

    /// Whether an upload of `key` falls under the rule (uploads have no tags or size yet: a
    /// rule with either never applies to them, and validation refuses aborts with tags).
    pub fn matches_upload(&self, key: &str) -> bool {
        match self {
            Scope::Prefix(prefix) | Scope::Filter(Filter::Prefix(prefix)) => key.starts_with(prefix.as_str()),
            Scope::Filter(Filter::All) => true,
            Scope::Filter(Filter::And(and)) if and.tags.is_empty() && !self.has_size() => {
                and.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            }
            Scope::Filter(_) => false,
        }
    }

    fn has_tags(&self) -> bool {
        matches!(self, Scope::Filter(f) if f.has_tags())
    }

    fn has_size(&self) -> bool {
        matches!(self, Scope::Filter(f) if f.has_size())
    }
}

fn bad(message: impl Into<String>) -> LifecycleError {
    LifecycleError::BadValue(message.into())
}

fn conflict(message: impl Into<String>) -> LifecycleError {
    LifecycleError::Conflict(message.into())
}

fn check_date(date: Option<i64>) -> Result<(), LifecycleError> {
    match date {
        Some(d) if d.rem_euclid(SECONDS_PER_DAY) != 0 => Err(bad("'Date' must be at midnight GMT")),
        _ => Ok(()),
    }
}

impl Rule {
    fn has_action(&self) -> bool {
        self.expiration.is_some()
            || self.noncurrent_expiration.is_some()
            || self.abort_incomplete_upload_days.is_some()
            || !self.transitions.is_empty()
            || !self.noncurrent_transitions.is_empty()
    }

    fn validate(&self, known_class: &dyn Fn(&str) -> bool) -> Result<(), LifecycleError> {
        if self.id.chars().count() > RULE_ID_CHARS_MAX {
            return Err(bad("ID length should not exceed allowed limit of 255"));
        }
        if let Scope::Filter(Filter::And(and)) = &self.scope {
            let mut keys: Vec<&str> = and.tags.iter().map(|t| t.key.as_str()).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|w| w[0] == w[1]) {
                return Err(conflict("Duplicate Tag Keys are not allowed."));
            }
        }
        let tags = match &self.scope {
            Scope::Filter(Filter::Tag(t)) => std::slice::from_ref(t),
            Scope::Filter(Filter::And(and)) => and.tags.as_slice(),
            _ => &[],
        };
        if tags
            .iter()
            .any(|t| t.key.is_empty() || t.key.chars().count() > 128)
        {
            return Err(bad("The TagKey you have provided is invalid"));
        }
        if tags.iter().any(|t| t.value.chars().count() > 256) {
            return Err(bad("The TagValue you have provided is invalid"));
        }
        if let Scope::Filter(Filter::And(AndFilter {
            size_greater_than: Some(gt),
            size_less_than: Some(lt),
            ..
        })) = &self.scope
            && lt <= gt
        {
            return Err(bad(
                "ObjectSizeLessThan must be greater than ObjectSizeGreaterThan",
            ));
        }
        if !self.has_action() {
            return Err(conflict("At least one action needs to be specified in a rule"));
        }
        if let Some(exp) = &self.expiration {
            let timed = usize::from(exp.days.is_some()) + usize::from(exp.date.is_some());
            if timed > 1 || (timed == 0 && !exp.expired_object_delete_marker) {
                return Err(LifecycleError::Malformed);
            }
            if exp.expired_object_delete_marker && timed > 0 {
                return Err(LifecycleError::Malformed);
            }
            if exp.days == Some(0) {
                return Err(bad("'Days' for Expiration action must be a positive integer"));
            }
            check_date(exp.date)?;
            if exp.expired_object_delete_marker && self.scope.has_tags() {
                return Err(conflict(
                    "ExpiredObjectDeleteMarker cannot be specified with Tags.",
                ));
            }
        }
        if let Some(nc) = &self.noncurrent_expiration {
            if nc.noncurrent_days == 0 {
                return Err(bad(
                    "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
                ));
            }
            if nc
                .newer_noncurrent_versions
                .is_some_and(|n| n == 0 || n > NEWER_NONCURRENT_VERSIONS_MAX)
            {
                return Err(bad(
                    "'NewerNoncurrentVersions' for NoncurrentVersionExpiration action must be a positive integer up to 100",
                ));
            }
        }
        if let Some(days) = self.abort_incomplete_upload_days {
            if days == 0 {
                return Err(bad(
                    "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
                ));
            }
            if self.scope.has_tags() || self.scope.has_size() {
                return Err(conflict(
                    "AbortIncompleteMultipartUpload cannot be specified with Tags or object size filters.",
                ));
            }
        }
        for t in &self.transitions {
            if usize::from(t.days.is_some()) + usize::from(t.date.is_some()) != 1 {
                return Err(LifecycleError::Malformed);
            }
            check_date(t.date)?;
        }
        let mut classes: Vec<&str> = self
            .transitions
            .iter()
            .map(|t| t.storage_class.as_str())
            .collect();
        let mut nc_classes: Vec<&str> = self
            .noncurrent_transitions
            .iter()
            .map(|t| t.storage_class.as_str())
            .collect();
        for list in [&mut classes, &mut nc_classes] {
            list.sort_unstable();
            if list.windows(2).any(|w| w[0] == w[1]) {
                return Err(conflict(
                    "'StorageClass' must be different for each Transition action in a rule",
                ));
            }
        }
        for t in &self.noncurrent_transitions {
            if t.newer_noncurrent_versions
                .is_some_and(|n| n == 0 || n > NEWER_NONCURRENT_VERSIONS_MAX)
            {
                return Err(bad(
                    "'NewerNoncurrentVersions' for NoncurrentVersionTransition action must be a positive integer up to 100",
                ));
            }
        }
        if let Some(class) = classes.iter().chain(&nc_classes).find(|c| !known_class(c)) {
            return Err(LifecycleError::UnknownStorageClass((*class).to_owned()));
        }
        Ok(())
    }
}

impl LifecycleConfig {
    /// Checks a configuration as AWS does. `known_class` says whether a storage class named
    /// by a transition exists here.
    pub fn validate(&self, known_class: &dyn Fn(&str) -> bool) -> Result<(), LifecycleError> {
        if self.rules.is_empty() {
            return Err(LifecycleError::Malformed);
        }
        if self.rules.len() > RULES_MAX {
            return Err(bad("Lifecycle configuration allows a maximum of 1000 rules"));
        }
        let mut ids: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad(
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
        self.rules.iter().try_for_each(|rule| rule.validate(known_class))
    }

    /// Decodes a stored blob.
    pub fn from_blob(blob: &[u8]) -> Result<LifecycleConfig, serde_json::Error> {
        serde_json::from_slice(blob)
    }

    /// Encodes for storage.
    pub fn to_blob(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Whether any enabled rule aborts incomplete uploads.
    pub fn aborts_uploads(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.enabled && r.abort_incomplete_upload_days.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rule(id: &str) -> Rule {
        Rule {
            id: id.to_owned(),
            enabled: true,
            scope: Scope::Filter(Filter::All),
            expiration: Some(Expiration {
                days: Some(1),
                ..Default::default()
            }),
            noncurrent_expiration: None,
            abort_incomplete_upload_days: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
        }
    }

    fn check(rules: Vec<Rule>) -> Result<(), LifecycleError> {
        LifecycleConfig {
            rules,
            transition_default_minimum_object_size: None,
        }
        .validate(&|c| c == "WARM")
    }

    #[test]
    fn validation_follows_aws() {
        assert_eq!(check(vec![]), Err(LifecycleError::Malformed));
        assert!(check(vec![rule("a")]).is_ok());
        assert!(matches!(
            check(vec![rule("a"), rule("a")]),
            Err(LifecycleError::BadValue(_))
        ));
        let mut r = rule("x".repeat(256).as_str());
        assert!(matches!(check(vec![r.clone()]), Err(LifecycleError::BadValue(_))));
        r.id = "ok".into();
        r.expiration = None;
        assert!(matches!(check(vec![r.clone()]), Err(LifecycleError::Conflict(_))));
        r.expiration = Some(Expiration {
            days: Some(1),
            date: Some(0),
            ..Default::default()
        });
        assert_eq!(check(vec![r.clone()]), Err(LifecycleError::Malformed));
        r.expiration = Some(Expiration {
            date: Some(SECONDS_PER_DAY + 1),
            ..Default::default()
        });
        assert!(matches!(check(vec![r.clone()]), Err(LifecycleError::BadValue(_))));
        r.expiration = Some(Expiration {
            days: Some(0),
            ..Default::default()
        });
        assert!(matches!(check(vec![r.clone()]), Err(LifecycleError::BadValue(_))));
        r.expiration = Some(Expiration {
            expired_object_delete_marker: true,
            days: Some(3),
            ..Default::default()
        });
        assert_eq!(check(vec![r.clone()]), Err(LifecycleError::Malformed));
        r.expiration = None;
        r.abort_incomplete_upload_days = Some(1);
        r.scope = Scope::Filter(Filter::Tag(TagCondition {
            key: "k".into(),
            value: "v".into(),
        }));
        assert!(matches!(check(vec![r.clone()]), Err(LifecycleError::Conflict(_))));
        r.scope = Scope::Prefix("logs/".into());
        assert!(check(vec![r.clone()]).is_ok());
        r.transitions = vec![Transition {
            days: Some(30),
            date: None,
            storage_class: "GLACIER".into(),
        }];
        assert_eq!(
            check(vec![r.clone()]),
            Err(LifecycleError::UnknownStorageClass("GLACIER".into()))
        );
        r.transitions[0].storage_class = "WARM".into();
        assert!(check(vec![r.clone()]).is_ok());
        r.scope = Scope::Filter(Filter::And(AndFilter {
            tags: vec![
                TagCondition {
                    key: "k".into(),
                    value: "1".into(),
                },
                TagCondition {
                    key: "k".into(),
                    value: "2".into(),
                },
            ],
            ..Default::default()
        }));
        r.abort_incomplete_upload_days = None;
        assert!(matches!(check(vec![r]), Err(LifecycleError::Conflict(_))));
    }

    #[test]
    fn filters_match_prefix_tags_and_size() {
        let tags: BTreeMap<String, String> = [("team".to_owned(), "a".to_owned())].into();
        let none = BTreeMap::new();
        let c = |key, size, tags| Candidate { key, size, tags };
        let and = Scope::Filter(Filter::And(AndFilter {
            prefix: Some("logs/".into()),
            tags: vec![TagCondition {
                key: "team".into(),
                value: "a".into(),
            }],
            size_greater_than: Some(10),
            size_less_than: Some(100),
        }));
        assert!(and.matches(&c("logs/1", 50, &tags)));
        assert!(!and.matches(&c("logs/1", 50, &none)));
        assert!(!and.matches(&c("logs/1", 100, &tags)));
        assert!(!and.matches(&c("data/1", 50, &tags)));
        assert!(Scope::Prefix(String::new()).matches(&c("x", 0, &none)));
        assert!(Scope::Filter(Filter::SizeGreaterThan(0)).matches(&c("x", 1, &none)));
        assert!(!Scope::Filter(Filter::SizeGreaterThan(0)).matches(&c("x", 0, &none)));
        assert!(Scope::Prefix("a/".into()).matches_upload("a/b"));
        assert!(!Scope::Filter(Filter::SizeLessThan(5)).matches_upload("a/b"));
    }
}
