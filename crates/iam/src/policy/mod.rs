//! The AWS policy language: parsing with AWS's validation and one policy's verdict for a
//! request.
//!
//! [`Policy::parse`] validates a document the way AWS does for identity policies (attached to
//! users, groups, service accounts) and bucket policies, and compiles it: action patterns are
//! folded to lowercase, wildcard patterns pre-split, CIDRs, numbers and dates parsed once, so
//! [`Policy::evaluate`] allocates nothing unless a pattern holds a policy variable.
//!
//! One policy's verdict ([`Verdict`]) names the statement that decided it. Combining the
//! verdicts of several policies (an explicit deny anywhere wins, otherwise one allow is
//! enough) is the caller's job.
//!
//! Matching rules (AWS's):
//! - actions: case-insensitive, `*` and `?` wildcards (`s3:Get*`, `s3:*`, `*`);
//! - resources: case-sensitive wildcard match of the whole ARN (`*` crosses `/`), policy
//!   variables substituted in `2012-10-17` policies only;
//! - principals (bucket policies): `*` / `{"AWS": "*"}` match anyone, anonymous callers
//!   included; other `AWS` and `CanonicalUser` values must equal one of the caller's
//!   identifiers; `Service` and `Federated` values never match a caller of this store;
//! - conditions: every operator, with `...IfExists` and `ForAnyValue:` / `ForAllValues:`
//!   (the `condition` module documents the semantics).

mod condition;
mod json;
mod parse;
mod pattern;

use std::collections::HashMap;

use condition::Condition;
use pattern::Pattern;

/// The largest policy document accepted, in bytes.
///
/// AWS limits bucket policies to 20 KiB ("Policies must be less than 20 KB"). AWS IAM limits
/// managed identity policies to 6,144 characters, but MinIO accepts much larger identity
/// policies, so Strata applies the bucket policy limit to both kinds.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Which kind of policy a document is, which decides part of its validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind<'a> {
    /// Attached to a user, group or service account: no `Principal`, any resource.
    Identity,
    /// A bucket's resource policy: `Principal` (or `NotPrincipal`) is required and every
    /// resource must be `*` or name this bucket.
    Bucket {
        /// The bucket the policy is set on.
        bucket: &'a str,
    },
}

/// A statement's effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The statement grants what it matches.
    Allow,
    /// The statement refuses what it matches; an explicit deny wins over any allow.
    Deny,
}

/// Why a document is not a valid policy (S3's `MalformedPolicy`, IAM's
/// `MalformedPolicyDocument`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is malformed; `reason` is the message for the client.
    #[error("{reason}")]
    Malformed {
        /// The message, as AWS words it where AWS has a fixed wording.
        reason: String,
    },
}

/// Builds a [`PolicyError::Malformed`].
pub(crate) fn malformed(reason: impl Into<String>) -> PolicyError {
    PolicyError::Malformed {
        reason: reason.into(),
    }
}

/// One policy's verdict for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An `Allow` statement matched and no `Deny` did; `statement` is the first such allow's
    /// index.
    Allow {
        /// Index of the deciding statement in [`Policy::statements`].
        statement: usize,
    },
    /// A `Deny` statement matched (the first one).
    Deny {
        /// Index of the deciding statement in [`Policy::statements`].
        statement: usize,
    },
    /// No statement matched.
    NotApplicable,
}

/// Condition keys and policy-variable values of one request.
///
/// Key names are case-insensitive (stored lowercased); a key may have several values
/// (`s3:RequestObjectTagKeys`, `aws:TagKeys`, ...). A key set to no values reads as absent.
#[derive(Clone, Debug, Default)]
pub struct Context {
    values: HashMap<String, Vec<String>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Appends one value to `key`.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    /// Replaces the values of `key`.
    pub fn set(&mut self, key: &str, values: Vec<String>) {
        self.values.insert(key.to_ascii_lowercase(), values);
    }

    /// The values of `key` (any case), None when it is absent or has no values.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) {
            self.lookup(&key.to_ascii_lowercase())
        } else {
            self.lookup(key)
        }
    }

    /// The values of a key already lowercased, without allocating.
    pub(crate) fn lookup(&self, lower_key: &str) -> Option<&[String]> {
        self.values
            .get(lower_key)
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }
}

/// One request as the evaluator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The AWS action, e.g. `s3:GetObject`, `admin:CreateUser`, `sts:AssumeRole`.
    pub action: &'a str,
    /// The resource ARN: `arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/key`, or `arn:aws:s3:::*`
    /// for service-level operations such as `ListAllMyBuckets`; admin actions use
    /// `arn:aws:s3:::*` too.
    pub resource: &'a str,
    /// For bucket (resource) policies: the caller's principal identifiers to match a
    /// statement's `Principal` / `NotPrincipal` against (e.g.
    /// `["arn:aws:iam::123456789012:user/alice", "AKIAALICE", "arn:aws:iam::123456789012:root",
    /// "123456789012"]`). An empty slice is an anonymous caller, matched only by `*`. None for
    /// identity policies: `Principal` is not consulted.
    pub principal: Option<&'a [String]>,
    /// Condition keys and policy-variable values.
    pub context: &'a Context,
}

/// Room for the request's action lowercased on the stack (the longest AWS S3 action has 52
/// characters).
const ACTION_BUFFER: usize = 64;

/// `text` lowercased into `buffer`, when it is ASCII and fits; None otherwise (the caller
/// then matches case-insensitively the slow way).
fn lowercase_ascii<'b>(text: &str, buffer: &'b mut [u8; ACTION_BUFFER]) -> Option<&'b [u8]> {
    let out = buffer.get_mut(..text.len())?;
    if !text.is_ascii() {
        return None;
    }
    out.copy_from_slice(text.as_bytes());
    out.make_ascii_lowercase();
    Some(out)
}

/// The policy language version, which decides whether policy variables are substituted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    /// `2008-10-17`, or no `Version`: `${...}` is plain text.
    V2008,
    /// `2012-10-17`: policy variables are substituted.
    V2012,
}

/// A parsed, validated and compiled policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    version: Version,
    id: Option<String>,
    statements: Vec<Statement>,
    /// A condition tests `s3:ExistingObjectTag/...` (found once, at parse time: the front
    /// door asks on every object read).
    tests_existing_object_tags: bool,
}

/// The condition-key prefix of an object's stored tags, lowercased as keys are stored.
const EXISTING_OBJECT_TAG_PREFIX: &str = "s3:existingobjecttag/";

/// A list of action or resource patterns (`Action` / `NotAction`, `Resource` /
/// `NotResource`).
#[derive(Clone, Debug, PartialEq)]
struct Patterns {
    /// `NotAction` / `NotResource`: the statement applies to what none of the patterns match.
    negated: bool,
    /// One of the patterns is `*` alone.
    any: bool,
    /// The patterns match case-insensitively (actions).
    fold_case: bool,
    /// When every pattern is an exact text: a bit per text length (63 for 63 and longer), so
    /// that most inputs are turned away without comparing.
    exact_lengths: Option<u64>,
    patterns: Vec<Pattern>,
}

/// The length bit of [`Patterns::exact_lengths`].
fn length_bit(len: usize) -> u64 {
    1u64 << len.min(63)
}

impl Patterns {
    fn new(negated: bool, fold_case: bool, patterns: Vec<Pattern>) -> Patterns {
        let any = patterns.iter().any(Pattern::is_any);
        let exact_lengths = patterns
            .iter()
            .try_fold(0u64, |mask, p| p.exact_len().map(|len| mask | length_bit(len)));
        Patterns {
            negated,
            any,
            fold_case,
            exact_lengths,
            patterns,
        }
    }

    fn applies(&self, input: &str, ctx: &Context) -> bool {
        // A case-insensitive pattern lowercases a non-ASCII input, which may change its
        // length: the length filter only holds for ASCII input.
        let filtered = self
            .exact_lengths
            .is_some_and(|mask| mask & length_bit(input.len()) == 0)
            && (!self.fold_case || input.is_ascii());
        let hit = self.any || (!filtered && self.patterns.iter().any(|p| p.matches(input, ctx)));
        hit != self.negated
    }

    /// [`Patterns::applies`] for an ASCII input already lowercased (the request's action).
    fn applies_lowered(&self, lowered: &[u8], ctx: &Context) -> bool {
        let filtered = self
            .exact_lengths
            .is_some_and(|mask| mask & length_bit(lowered.len()) == 0);
        let hit = self.any || (!filtered && self.patterns.iter().any(|p| p.matches_lowered(lowered, ctx)));
        hit != self.negated
    }
}

/// A statement's `Principal` / `NotPrincipal`.
#[derive(Clone, Debug, PartialEq)]
struct Principals {
    negated: bool,
    /// `"*"` or an `AWS` value of `"*"`: everyone, anonymous callers included.
    any: bool,
    aws: Vec<String>,
    canonical: Vec<String>,
    service: Vec<String>,
    federated: Vec<String>,
}

impl Principals {
    fn applies(&self, identifiers: &[String]) -> bool {
        let hit = self.any
            || identifiers
                .iter()
                .any(|id| self.aws.contains(id) || self.canonical.contains(id));
        hit != self.negated
    }

    /// Whether the principal alone grants to the public: everyone, everyone but a few
    /// (`NotPrincipal` in an allow), or a web identity / SAML federation anyone can join.
    fn is_public(&self) -> bool {
        self.negated || self.any || !self.federated.is_empty()
    }
}

/// One statement of a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Patterns,
    resources: Patterns,
    /// None in identity policies (boxed: statements stay small for the evaluation loop).
    principals: Option<Box<Principals>>,
    conditions: Vec<Condition>,
}

impl Statement {
    /// The statement's `Sid`, if it has one.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// The statement's `Effect`.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the statement applies to the request: action, resource, principal (when the
    /// request carries one and the statement names one) and every condition.
    fn applies(&self, request: &Request<'_>, action_lowered: Option<&[u8]>) -> bool {
        let ctx = request.context;
        let action = match action_lowered {
            Some(lowered) => self.actions.applies_lowered(lowered, ctx),
            None => self.actions.applies(request.action, ctx),
        };
        action
            && self.resources.applies(request.resource, ctx)
            && match (&self.principals, request.principal) {
                (Some(p), Some(ids)) => p.applies(ids),
                _ => true,
            }
            && self.conditions.iter().all(|c| c.holds(ctx))
    }
}

impl Policy {
    /// Parses and validates a policy document as AWS does; Err carries the `MalformedPolicy`
    /// reason.
    pub fn parse(text: &[u8], kind: PolicyKind<'_>) -> Result<Policy, PolicyError> {
        parse::parse(text, kind)
    }

    /// This policy's verdict for one request: the first matching `Deny` statement, else the
    /// first matching `Allow` statement, else not applicable.
    pub fn evaluate(&self, request: &Request<'_>) -> Verdict {
        let mut buffer = [0u8; ACTION_BUFFER];
        let action_lowered = lowercase_ascii(request.action, &mut buffer);
        let mut allow = None;
        for (index, statement) in self.statements.iter().enumerate() {
            if statement.effect == Effect::Allow && allow.is_some() {
                continue;
            }
            if statement.applies(request, action_lowered) {
                match statement.effect {
                    Effect::Deny => return Verdict::Deny { statement: index },
                    Effect::Allow => allow = Some(index),
                }
            }
        }
        allow.map_or(Verdict::NotApplicable, |statement| Verdict::Allow { statement })
    }

    /// The policy's statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The policy's `Id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether a condition of the policy tests `s3:ExistingObjectTag/<key>`: the front door
    /// reads an object's tags only for such policies.
    pub fn tests_existing_object_tags(&self) -> bool {
        self.tests_existing_object_tags
    }

    /// Computes [`Policy::tests_existing_object_tags`] from the statements.
    fn find_existing_object_tag_tests(statements: &[Statement]) -> bool {
        statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.key().starts_with(EXISTING_OBJECT_TAG_PREFIX))
    }

    /// Whether policy variables are substituted (the policy says `"Version": "2012-10-17"`).
    pub fn substitutes_variables(&self) -> bool {
        self.version == Version::V2012
    }

    /// AWS's "is this bucket policy public" rule (`GetBucketPolicyStatus` `IsPublic`, and what
    /// `BlockPublicPolicy` / `RestrictPublicBuckets` refuse).
    ///
    /// A policy is public when one of its `Allow` statements grants to a public principal
    /// (`*`, `{"AWS": "*"}`, a `NotPrincipal`, or a `Federated` identity provider) and none of
    /// its conditions pins the request to fixed values (no wildcard, no policy variable) of
    /// one of the keys AWS lists in "The meaning of public": `aws:SourceArn`, `aws:SourceVpc`,
    /// `aws:SourceVpce`, `aws:SourceOwner`, `aws:SourceAccount`, `aws:PrincipalOrgID`,
    /// `aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:PrincipalOrgPaths`, `aws:userid`
    /// (a role's `AROLEID:*` counts as fixed), `s3:x-amz-server-side-encryption-aws-kms-key-id`,
    /// `s3:DataAccessPointArn` (a wildcard in the access point name is allowed when the
    /// account is fixed), `s3:DataAccessPointAccount`, or `aws:SourceIp` with CIDRs no broader
    /// than /8 (IPv4) or /32 (IPv6). An operator that holds when the key is absent (negated,
    /// `...IfExists`, `ForAllValues:`) pins nothing. Identity policies are never public.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principals.as_ref().is_some_and(|p| p.is_public())
                && !s.conditions.iter().any(Condition::pins_to_fixed_values)
        })
    }
}
