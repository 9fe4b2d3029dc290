//! What the rules say about one key's versions, at one moment: pure, no I/O.
//!
//! Time is AWS's: an action due "`Days` after" a moment is due at that moment plus the days,
//! rounded up to the next midnight UTC (the next multiple of the day length since the epoch);
//! a `Date` is due at that date. A version becomes noncurrent when its successor (the next
//! newer version) was written, so noncurrent days count from the successor's time.
//! [`DayLength`] is 86,400 s except in tests, which shorten it to watch rules act.
//!
//! Decisions, per key (versions newest first):
//! - the current version, when not a delete marker, expires when an `Expiration` with `Days`
//!   or `Date` of a matching rule is due ([`Action::ExpireCurrent`]: a delete, which makes a
//!   delete marker where the bucket keeps versions);
//! - a current delete marker with no older versions left is removed
//!   ([`Action::DeleteVersion`]) by a matching rule with `ExpiredObjectDeleteMarker`, or with
//!   `Expiration` `Days` once those days have passed since the marker (as AWS does);
//! - a noncurrent version (delete markers included) is removed when a matching
//!   `NoncurrentVersionExpiration` is due and more than `NewerNoncurrentVersions` noncurrent
//!   versions are newer than it;
//! - versions under object lock (retention or legal hold) are never chosen for removal;
//! - a current version not expiring, and a noncurrent one not removed, moves to the storage
//!   class of the due `Transition` (`NoncurrentVersionTransition`) furthest along, when it is
//!   not in that class yet and is at least 128 KiB (AWS's default minimum, lifted by
//!   `varies_by_storage_class`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_object::{DeleteExpectation, STANDARD_CLASS, VersionPosition};

use crate::config::{Candidate, LifecycleConfig};

/// The length of a lifecycle day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayLength(Duration);

impl Default for DayLength {
    fn default() -> Self {
        DayLength(Duration::from_secs(86_400))
    }
}

impl DayLength {
    /// A day of `seconds` (at least 1): shorter than 86,400 only for tests.
    pub fn seconds(seconds: u64) -> DayLength {
        DayLength(Duration::from_secs(seconds.max(1)))
    }

    /// The day in seconds.
    pub fn as_secs(self) -> u64 {
        self.0.as_secs().max(1)
    }

    /// When an action `days` after `from` is due: `from` plus the days, rounded up to the
    /// next day boundary.
    pub fn due_after(self, from: SystemTime, days: u32) -> SystemTime {
        let day = u128::from(self.as_secs()) * 1_000_000_000;
        let from_ns = from.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let raw = from_ns.saturating_add(u128::from(days).saturating_mul(day));
        let due_secs = raw.div_ceil(day).saturating_mul(u128::from(self.as_secs()));
        UNIX_EPOCH + Duration::from_secs(u64::try_from(due_secs).unwrap_or(u64::MAX))
    }
}

/// One version as the evaluation needs it.
#[derive(Clone, Debug)]
pub struct VersionFacts<'a> {
    /// Version id (`None`: the null version).
    pub version_id: Option<&'a str>,
    /// Modification time.
    pub mod_time: SystemTime,
    /// Its metadata stamp (`ObjectInfo::meta_stamp`).
    pub meta_stamp: i64,
    /// Whether it is a delete marker.
    pub delete_marker: bool,
    /// Its storage class (`None`: `STANDARD`).
    pub storage_class: Option<&'a str>,
    /// What filters test.
    pub candidate: Candidate<'a>,
    /// Object lock forbids removing it now (retention or legal hold).
    pub locked: bool,
}

/// What to do with one version. Removals carry what the version looked like when
/// evaluated (`DeleteExpectation`), which the object layer checks under the key's lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Expire the current version (the delete an unversioned client would send).
    ExpireCurrent {
        /// The current version as evaluated.
        expect: DeleteExpectation,
        /// The rule that decided.
        rule_id: String,
    },
    /// Remove this version permanently (a noncurrent version, or an expired delete marker).
    DeleteVersion {
        /// The version id (`None`: the null version).
        version_id: Option<String>,
        /// Whether it is a delete marker.
        delete_marker: bool,
        /// The version as evaluated.
        expect: DeleteExpectation,
        /// The rule that decided.
        rule_id: String,
    },
    /// Move this version's data to another storage class.
    Transition {
        /// The version id (`None`: the null version).
        version_id: Option<String>,
        /// Its modification time when evaluated.
        mod_time: SystemTime,
        /// The target class.
        storage_class: String,
        /// The rule that decided.
        rule_id: String,
    },
}

/// Smallest version a transition moves unless the configuration says
/// `varies_by_storage_class` (AWS's default, `all_storage_classes_128K`).
pub const TRANSITION_SIZE_MIN_BYTES: u64 = 128 * 1024;

fn date_time(date: i64) -> SystemTime {
    let magnitude = Duration::from_secs(date.unsigned_abs());
    if date >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    }
}

fn due_at(day: DayLength, from: SystemTime, days: Option<u32>, date: Option<i64>) -> Option<SystemTime> {
    match (days, date) {
        (Some(days), _) => Some(day.due_after(from, days)),
        (None, Some(date)) => Some(date_time(date)),
        (None, None) => None,
    }
}

/// When the current version `c` written at `mod_time` expires, and by which rule: the
/// earliest of the matching enabled rules' `Expiration` `Days`/`Date` (the `x-amz-expiration`
/// header).
pub fn current_expiry(
    config: &LifecycleConfig,
    day: DayLength,
    c: &Candidate<'_>,
    mod_time: SystemTime,
) -> Option<(SystemTime, String)> {
    config
        .rules
        .iter()
        .filter(|r| r.enabled && r.scope.matches(c))
        .filter_map(|r| {
            let exp = r.expiration.as_ref()?;
            Some((due_at(day, mod_time, exp.days, exp.date)?, r.id.clone()))
        })
        .min_by_key(|(due, _)| *due)
}

fn transition_size_ok(config: &LifecycleConfig, size: u64) -> bool {
    size >= TRANSITION_SIZE_MIN_BYTES
        || config.transition_default_minimum_object_size.as_deref() == Some("varies_by_storage_class")
}

fn expectation(v: &VersionFacts<'_>, position: VersionPosition) -> DeleteExpectation {
    DeleteExpectation {
        mod_time: v.mod_time,
        meta_stamp: v.meta_stamp,
        position,
    }
}

/// The transition due for a version (the one due latest, which is the furthest along), unless
/// the version is in that class already.
fn due_transition<'r>(
    candidates: impl Iterator<Item = (SystemTime, &'r str, &'r str)>,
    now: SystemTime,
    class: Option<&str>,
) -> Option<(String, String)> {
    let (_, storage_class, rule_id) = candidates
        .filter(|(due, _, _)| *due <= now)
        .max_by_key(|(due, _, _)| *due)?;
    (class.unwrap_or(STANDARD_CLASS) != storage_class).then(|| (storage_class.to_owned(), rule_id.to_owned()))
}

/// The actions due at `now` for one key's versions (`versions` newest first, all of them).
pub fn evaluate(
    config: &LifecycleConfig,
    day: DayLength,
    versions: &[VersionFacts<'_>],
    now: SystemTime,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let Some(current) = versions.first() else {
        return actions;
    };
    let rules = || config.rules.iter().filter(|r| r.enabled);
    if !current.delete_marker {
        if let Some((due, rule_id)) = current_expiry(config, day, &current.candidate, current.mod_time)
            && due <= now
        {
            actions.push(Action::ExpireCurrent {
                expect: expectation(current, VersionPosition::Current),
                rule_id,
            });
        } else if transition_size_ok(config, current.candidate.size) {
            let candidates = rules()
                .filter(|r| r.scope.matches(&current.candidate))
                .flat_map(|r| {
                    r.transitions.iter().filter_map(move |t| {
                        Some((
                            due_at(day, current.mod_time, t.days, t.date)?,
                            t.storage_class.as_str(),
                            r.id.as_str(),
                        ))
                    })
                });
            if let Some((storage_class, rule_id)) = due_transition(candidates, now, current.storage_class) {
                actions.push(Action::Transition {
                    version_id: current.version_id.map(str::to_owned),
                    mod_time: current.mod_time,
                    storage_class,
                    rule_id,
                });
            }
        }
    } else if versions.len() == 1 && !current.locked {
        let expired_marker = rules().find(|r| {
            r.scope.matches(&current.candidate)
                && r.expiration.as_ref().is_some_and(|e| {
                    e.expired_object_delete_marker
                        || e.days.is_some_and(|d| day.due_after(current.mod_time, d) <= now)
                })
        });
        if let Some(rule) = expired_marker {
            actions.push(Action::DeleteVersion {
                version_id: current.version_id.map(str::to_owned),
                delete_marker: true,
                expect: expectation(current, VersionPosition::Only),
                rule_id: rule.id.clone(),
            });
        }
    }
    for (rank, pair) in versions.windows(2).enumerate() {
        let (successor, version) = (&pair[0], &pair[1]);
        let position = VersionPosition::Noncurrent {
            successor: successor.mod_time,
            newer: rank + 1,
        };
        let due_rule = rules().find(|r| {
            r.noncurrent_expiration.as_ref().is_some_and(|nc| {
                rank >= nc.newer_noncurrent_versions.unwrap_or(0) as usize
                    && day.due_after(successor.mod_time, nc.noncurrent_days) <= now
            }) && r.scope.matches(&version.candidate)
        });
        if let Some(rule) = due_rule {
            if !version.locked {
                actions.push(Action::DeleteVersion {
                    version_id: version.version_id.map(str::to_owned),
                    delete_marker: version.delete_marker,
                    expect: expectation(version, position),
                    rule_id: rule.id.clone(),
                });
            }
            continue;
        }
        if version.delete_marker || !transition_size_ok(config, version.candidate.size) {
            continue;
        }
        let candidates = rules()
            .filter(|r| r.scope.matches(&version.candidate))
            .flat_map(|r| {
                r.noncurrent_transitions
                    .iter()
                    .filter(move |t| rank >= t.newer_noncurrent_versions.unwrap_or(0) as usize)
                    .map(move |t| {
                        (
                            day.due_after(successor.mod_time, t.noncurrent_days),
                            t.storage_class.as_str(),
                            r.id.as_str(),
                        )
                    })
            });
        if let Some((storage_class, rule_id)) = due_transition(candidates, now, version.storage_class) {
            actions.push(Action::Transition {
                version_id: version.version_id.map(str::to_owned),
                mod_time: version.mod_time,
                storage_class,
                rule_id,
            });
        }
    }
    actions
}

/// Whether an upload of `key` begun at `initiated` is due for abortion at `now`.
pub fn upload_due(
    config: &LifecycleConfig,
    day: DayLength,
    key: &str,
    initiated: SystemTime,
    now: SystemTime,
) -> bool {
    config.rules.iter().any(|r| {
        r.enabled
            && r.abort_incomplete_upload_days
                .is_some_and(|days| day.due_after(initiated, days) <= now)
            && r.scope.matches_upload(key)
    })
}

/// Whether some enabled rule can act on versions at all (a bucket whose rules only abort
/// uploads needs no walk of its versions).
pub fn acts_on_versions(config: &LifecycleConfig) -> bool {
    config.rules.iter().any(|r| {
        r.enabled
            && (r.expiration.is_some()
                || r.noncurrent_expiration.is_some()
                || !r.transitions.is_empty()
                || !r.noncurrent_transitions.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::{Expiration, Filter, NoncurrentExpiration, Rule, Scope};

    const DAY: u64 = 86_400;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn config(rule: Rule) -> LifecycleConfig {
        LifecycleConfig {
            rules: vec![rule],
            transition_default_minimum_object_size: None,
        }
    }

    fn rule() -> Rule {
        Rule {
            id: "r".into(),
            enabled: true,
            scope: Scope::Filter(Filter::All),
            expiration: None,
            noncurrent_expiration: None,
            abort_incomplete_upload_days: None,
            transitions: Vec::new(),
            noncurrent_transitions: Vec::new(),
        }
    }

    fn version<'a>(
        id: &'a str,
        secs: u64,
        marker: bool,
        tags: &'a BTreeMap<String, String>,
    ) -> VersionFacts<'a> {
        VersionFacts {
            version_id: Some(id),
            mod_time: at(secs),
            meta_stamp: 0,
            delete_marker: marker,
            storage_class: None,
            candidate: Candidate {
                key: "k",
                size: 200_000,
                tags,
            },
            locked: false,
        }
    }

    #[test]
    fn days_round_up_to_midnight() {
        let d = DayLength::default();
        assert_eq!(d.due_after(at(10 * DAY + 5), 1), at(12 * DAY));
        assert_eq!(d.due_after(at(10 * DAY), 1), at(11 * DAY));
        let short = DayLength::seconds(2);
        assert_eq!(short.due_after(at(101), 1), at(104));
        // Fractions of a second count: a moment after a boundary is a whole day later.
        let just_after = at(100) + Duration::from_millis(950);
        assert_eq!(DayLength::seconds(1).due_after(just_after, 1), at(102));
    }

    #[test]
    fn current_versions_expire_when_due() {
        let mut r = rule();
        r.expiration = Some(Expiration {
            days: Some(1),
            ..Default::default()
        });
        let c = config(r);
        let tags = BTreeMap::new();
        let v = [version("a", 10 * DAY + 5, false, &tags)];
        let d = DayLength::default();
        assert!(evaluate(&c, d, &v, at(12 * DAY - 1)).is_empty());
        assert_eq!(
            evaluate(&c, d, &v, at(12 * DAY)),
            vec![Action::ExpireCurrent {
                expect: DeleteExpectation {
                    mod_time: at(10 * DAY + 5),
                    meta_stamp: 0,
                    position: VersionPosition::Current,
                },
                rule_id: "r".into()
            }]
        );
        // A delete marker with older versions is left alone; alone, it is removed once due.
        let v = [
            version("m", 10 * DAY, true, &tags),
            version("a", DAY, false, &tags),
        ];
        assert!(evaluate(&c, d, &v, at(20 * DAY)).is_empty());
        let v = [version("m", 10 * DAY, true, &tags)];
        assert!(evaluate(&c, d, &v, at(10 * DAY + 5)).is_empty());
        assert_eq!(evaluate(&c, d, &v, at(11 * DAY)).len(), 1);
    }

    #[test]
    fn noncurrent_versions_keep_the_newest_and_the_locked() {
        let mut r = rule();
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            noncurrent_days: 1,
            newer_noncurrent_versions: Some(1),
        });
        let c = config(r);
        let tags = BTreeMap::new();
        let mut v = vec![
            version("4", 4 * DAY, false, &tags),
            version("3", 3 * DAY, false, &tags),
            version("2", 2 * DAY, false, &tags),
            version("1", DAY, false, &tags),
        ];
        v[3].locked = true;
        let ids = |actions: Vec<Action>| -> Vec<String> {
            actions
                .into_iter()
                .filter_map(|a| match a {
                    Action::DeleteVersion { version_id, .. } => version_id,
                    Action::ExpireCurrent { .. } | Action::Transition { .. } => None,
                })
                .collect()
        };
        // "3" is the newest noncurrent (kept); "2" became noncurrent at day 3 (due day 4);
        // "1" is locked.
        assert_eq!(
            ids(evaluate(&c, DayLength::default(), &v, at(4 * DAY))),
            vec!["2"]
        );
        assert!(ids(evaluate(&c, DayLength::default(), &v, at(4 * DAY - 1))).is_empty());
    }

    #[test]
    fn transitions_take_the_furthest_due_class_once() {
        let mut r = rule();
        r.transitions = vec![
            crate::config::Transition {
                days: Some(1),
                date: None,
                storage_class: "WARM".into(),
            },
            crate::config::Transition {
                days: Some(3),
                date: None,
                storage_class: "COLD".into(),
            },
        ];
        r.noncurrent_transitions = vec![crate::config::NoncurrentTransition {
            noncurrent_days: 1,
            newer_noncurrent_versions: None,
            storage_class: "WARM".into(),
        }];
        let mut c = config(r);
        let tags = BTreeMap::new();
        let d = DayLength::default();
        let classes = |actions: Vec<Action>| -> Vec<(Option<String>, String)> {
            actions
                .into_iter()
                .filter_map(|a| match a {
                    Action::Transition {
                        version_id,
                        storage_class,
                        ..
                    } => Some((version_id, storage_class)),
                    _ => None,
                })
                .collect()
        };
        let mut v = vec![
            version("2", 5 * DAY, false, &tags),
            version("1", DAY, false, &tags),
        ];
        assert!(classes(evaluate(&c, d, &v, at(5 * DAY + 1))).is_empty());
        assert_eq!(
            classes(evaluate(&c, d, &v, at(6 * DAY))),
            vec![
                (Some("2".into()), "WARM".into()),
                (Some("1".into()), "WARM".into())
            ]
        );
        assert_eq!(classes(evaluate(&c, d, &v, at(8 * DAY)))[0].1, "COLD");
        v[0].storage_class = Some("COLD");
        v[1].storage_class = Some("WARM");
        assert!(classes(evaluate(&c, d, &v, at(9 * DAY))).is_empty());
        // Small versions stay unless the configuration says otherwise.
        v[0].storage_class = None;
        v[0].candidate.size = 1000;
        assert!(classes(evaluate(&c, d, &v, at(9 * DAY))).is_empty());
        c.transition_default_minimum_object_size = Some("varies_by_storage_class".into());
        assert_eq!(classes(evaluate(&c, d, &v, at(9 * DAY))).len(), 1);
    }

    #[test]
    fn expired_delete_markers_go() {
        let mut r = rule();
        r.expiration = Some(Expiration {
            expired_object_delete_marker: true,
            ..Default::default()
        });
        let c = config(r);
        let tags = BTreeMap::new();
        let v = [version("m", 5, true, &tags)];
        assert_eq!(evaluate(&c, DayLength::default(), &v, at(6)).len(), 1);
        let v = [version("a", 5, false, &tags)];
        assert!(evaluate(&c, DayLength::default(), &v, at(10 * DAY)).is_empty());
    }

    #[test]
    fn uploads_abort_after_their_days() {
        let mut r = rule();
        r.scope = Scope::Prefix("tmp/".into());
        r.abort_incomplete_upload_days = Some(2);
        let c = config(r);
        let d = DayLength::default();
        assert!(upload_due(&c, d, "tmp/a", at(DAY), at(3 * DAY)));
        assert!(!upload_due(&c, d, "tmp/a", at(DAY + 1), at(3 * DAY)));
        assert!(!upload_due(&c, d, "other", at(DAY), at(9 * DAY)));
    }
}
