//! Table-driven tests of the policy language: the evaluator (actions, resources, principals,
//! every condition operator with and without `IfExists`, set qualifiers, policy variables),
//! the parser's `MalformedPolicy` cases, and AWS's "is this bucket policy public" rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_iam::policy::{
    Context, Effect, MAX_POLICY_BYTES, Policy, PolicyError, PolicyKind, Request, Verdict,
};

const BUCKET: PolicyKind<'static> = PolicyKind::Bucket { bucket: "photos" };
const OBJECT: &str = "arn:aws:s3:::photos/a.jpg";

fn context(pairs: &[(&str, &[&str])]) -> Context {
    let mut ctx = Context::new();
    for (key, values) in pairs {
        ctx.set(key, values.iter().map(|v| (*v).to_owned()).collect());
    }
    ctx
}

fn parse(text: &str, kind: PolicyKind<'_>) -> Policy {
    Policy::parse(text.as_bytes(), kind).unwrap_or_else(|e| panic!("policy should parse: {e}\n{text}"))
}

fn evaluate(
    policy: &Policy,
    action: &str,
    resource: &str,
    principal: Option<&[&str]>,
    ctx: &[(&str, &[&str])],
) -> Verdict {
    let ids: Option<Vec<String>> = principal.map(|p| p.iter().map(|s| (*s).to_owned()).collect());
    let ctx = context(ctx);
    policy.evaluate(&Request {
        action,
        resource,
        principal: ids.as_deref(),
        context: &ctx,
    })
}

const ALLOW0: Verdict = Verdict::Allow { statement: 0 };
const NA: Verdict = Verdict::NotApplicable;

// ---------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------

/// (name, Condition element, request context, whether the condition holds)
type ConditionCase = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
    bool,
);

const CONDITION_CASES: &[ConditionCase] = &[
    // StringEquals
    (
        "StringEquals match",
        r#"{"StringEquals":{"s3:prefix":"home/"}}"#,
        &[("s3:prefix", &["home/"])],
        true,
    ),
    (
        "StringEquals is case-sensitive",
        r#"{"StringEquals":{"s3:prefix":"home/"}}"#,
        &[("s3:prefix", &["Home/"])],
        false,
    ),
    (
        "StringEquals absent key",
        r#"{"StringEquals":{"s3:prefix":"home/"}}"#,
        &[],
        false,
    ),
    (
        "StringEquals key name any case",
        r#"{"StringEquals":{"S3:PREFIX":"home/"}}"#,
        &[("s3:Prefix", &["home/"])],
        true,
    ),
    (
        "StringEquals values are OR",
        r#"{"StringEquals":{"s3:prefix":["a","b"]}}"#,
        &[("s3:prefix", &["b"])],
        true,
    ),
    (
        "StringEquals star is literal",
        r#"{"StringEquals":{"s3:prefix":"a*"}}"#,
        &[("s3:prefix", &["abc"])],
        false,
    ),
    (
        "StringEquals literal star",
        r#"{"StringEquals":{"s3:prefix":"a*"}}"#,
        &[("s3:prefix", &["a*"])],
        true,
    ),
    (
        "StringEquals multi-valued key: any",
        r#"{"StringEquals":{"aws:TagKeys":"a"}}"#,
        &[("aws:TagKeys", &["x", "a"])],
        true,
    ),
    (
        "StringEquals multi-valued key: none",
        r#"{"StringEquals":{"aws:TagKeys":"a"}}"#,
        &[("aws:TagKeys", &["x", "y"])],
        false,
    ),
    (
        "StringEquals number value",
        r#"{"StringEquals":{"s3:max-keys":10}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "StringEqualsIfExists absent",
        r#"{"StringEqualsIfExists":{"s3:prefix":"home/"}}"#,
        &[],
        true,
    ),
    (
        "StringEqualsIfExists present mismatch",
        r#"{"StringEqualsIfExists":{"s3:prefix":"home/"}}"#,
        &[("s3:prefix", &["x"])],
        false,
    ),
    (
        "StringEqualsIfExists present match",
        r#"{"StringEqualsIfExists":{"s3:prefix":"home/"}}"#,
        &[("s3:prefix", &["home/"])],
        true,
    ),
    // StringNotEquals
    (
        "StringNotEquals equal",
        r#"{"StringNotEquals":{"s3:prefix":"a"}}"#,
        &[("s3:prefix", &["a"])],
        false,
    ),
    (
        "StringNotEquals different",
        r#"{"StringNotEquals":{"s3:prefix":"a"}}"#,
        &[("s3:prefix", &["b"])],
        true,
    ),
    (
        "StringNotEquals absent key holds",
        r#"{"StringNotEquals":{"s3:prefix":"a"}}"#,
        &[],
        true,
    ),
    (
        "StringNotEquals none of the values",
        r#"{"StringNotEquals":{"s3:prefix":["a","b"]}}"#,
        &[("s3:prefix", &["b"])],
        false,
    ),
    (
        "StringNotEquals multi-valued, one matches",
        r#"{"StringNotEquals":{"aws:TagKeys":"a"}}"#,
        &[("aws:TagKeys", &["a", "b"])],
        false,
    ),
    (
        "StringNotEquals multi-valued, none matches",
        r#"{"StringNotEquals":{"aws:TagKeys":"a"}}"#,
        &[("aws:TagKeys", &["b", "c"])],
        true,
    ),
    (
        "StringNotEqualsIfExists absent",
        r#"{"StringNotEqualsIfExists":{"s3:prefix":"a"}}"#,
        &[],
        true,
    ),
    (
        "StringNotEqualsIfExists present equal",
        r#"{"StringNotEqualsIfExists":{"s3:prefix":"a"}}"#,
        &[("s3:prefix", &["a"])],
        false,
    ),
    // StringEqualsIgnoreCase / StringNotEqualsIgnoreCase
    (
        "StringEqualsIgnoreCase",
        r#"{"StringEqualsIgnoreCase":{"s3:prefix":"Home/"}}"#,
        &[("s3:prefix", &["HOME/"])],
        true,
    ),
    (
        "StringEqualsIgnoreCase mismatch",
        r#"{"StringEqualsIgnoreCase":{"s3:prefix":"Home/"}}"#,
        &[("s3:prefix", &["HOME"])],
        false,
    ),
    (
        "StringEqualsIgnoreCase absent",
        r#"{"StringEqualsIgnoreCase":{"s3:prefix":"a"}}"#,
        &[],
        false,
    ),
    (
        "StringEqualsIgnoreCaseIfExists absent",
        r#"{"StringEqualsIgnoreCaseIfExists":{"s3:prefix":"a"}}"#,
        &[],
        true,
    ),
    (
        "StringEqualsIgnoreCase non-ASCII",
        r#"{"StringEqualsIgnoreCase":{"s3:prefix":"ÉTÉ"}}"#,
        &[("s3:prefix", &["été"])],
        true,
    ),
    (
        "StringNotEqualsIgnoreCase equal",
        r#"{"StringNotEqualsIgnoreCase":{"s3:prefix":"A"}}"#,
        &[("s3:prefix", &["a"])],
        false,
    ),
    (
        "StringNotEqualsIgnoreCase different",
        r#"{"StringNotEqualsIgnoreCase":{"s3:prefix":"A"}}"#,
        &[("s3:prefix", &["b"])],
        true,
    ),
    (
        "StringNotEqualsIgnoreCase absent",
        r#"{"StringNotEqualsIgnoreCase":{"s3:prefix":"A"}}"#,
        &[],
        true,
    ),
    (
        "StringNotEqualsIgnoreCaseIfExists absent",
        r#"{"StringNotEqualsIgnoreCaseIfExists":{"s3:prefix":"A"}}"#,
        &[],
        true,
    ),
    // StringLike / StringNotLike
    (
        "StringLike star",
        r#"{"StringLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["home/a/b"])],
        true,
    ),
    (
        "StringLike star mismatch",
        r#"{"StringLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["house/a"])],
        false,
    ),
    (
        "StringLike question mark",
        r#"{"StringLike":{"s3:prefix":"v?"}}"#,
        &[("s3:prefix", &["v1"])],
        true,
    ),
    (
        "StringLike question mark is one char",
        r#"{"StringLike":{"s3:prefix":"v?"}}"#,
        &[("s3:prefix", &["v12"])],
        false,
    ),
    (
        "StringLike is case-sensitive",
        r#"{"StringLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["HOME/a"])],
        false,
    ),
    (
        "StringLike absent",
        r#"{"StringLike":{"s3:prefix":"*"}}"#,
        &[],
        false,
    ),
    (
        "StringLikeIfExists absent",
        r#"{"StringLikeIfExists":{"s3:prefix":"home/*"}}"#,
        &[],
        true,
    ),
    (
        "StringLikeIfExists present mismatch",
        r#"{"StringLikeIfExists":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["x"])],
        false,
    ),
    (
        "StringNotLike match",
        r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["home/a"])],
        false,
    ),
    (
        "StringNotLike no match",
        r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#,
        &[("s3:prefix", &["tmp/a"])],
        true,
    ),
    (
        "StringNotLike absent holds",
        r#"{"StringNotLike":{"s3:prefix":"home/*"}}"#,
        &[],
        true,
    ),
    (
        "StringNotLikeIfExists absent",
        r#"{"StringNotLikeIfExists":{"s3:prefix":"home/*"}}"#,
        &[],
        true,
    ),
    // Numeric
    (
        "NumericEquals",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "NumericEquals decimal",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10.0"])],
        true,
    ),
    (
        "NumericEquals JSON number",
        r#"{"NumericEquals":{"s3:max-keys":10}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "NumericEquals different",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["11"])],
        false,
    ),
    (
        "NumericEquals non-numeric request",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["ten"])],
        false,
    ),
    (
        "NumericEquals absent",
        r#"{"NumericEquals":{"s3:max-keys":"10"}}"#,
        &[],
        false,
    ),
    (
        "NumericEqualsIfExists absent",
        r#"{"NumericEqualsIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "NumericNotEquals equal",
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        false,
    ),
    (
        "NumericNotEquals different",
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["9"])],
        true,
    ),
    (
        "NumericNotEquals absent holds",
        r#"{"NumericNotEquals":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "NumericNotEqualsIfExists absent",
        r#"{"NumericNotEqualsIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "NumericLessThan",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["9.5"])],
        true,
    ),
    (
        "NumericLessThan equal",
        r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        false,
    ),
    (
        "NumericLessThanIfExists absent",
        r#"{"NumericLessThanIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "NumericLessThanEquals equal",
        r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "NumericLessThanEquals greater",
        r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["11"])],
        false,
    ),
    (
        "NumericLessThanEqualsIfExists absent",
        r#"{"NumericLessThanEqualsIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "NumericGreaterThan",
        r#"{"NumericGreaterThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["11"])],
        true,
    ),
    (
        "NumericGreaterThan equal",
        r#"{"NumericGreaterThan":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        false,
    ),
    (
        "NumericGreaterThan negative",
        r#"{"NumericGreaterThan":{"s3:max-keys":"-1.5"}}"#,
        &[("s3:max-keys", &["-1"])],
        true,
    ),
    (
        "NumericGreaterThanIfExists absent",
        r#"{"NumericGreaterThanIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    (
        "NumericGreaterThanEquals equal",
        r#"{"NumericGreaterThanEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["10"])],
        true,
    ),
    (
        "NumericGreaterThanEquals less",
        r#"{"NumericGreaterThanEquals":{"s3:max-keys":"10"}}"#,
        &[("s3:max-keys", &["9"])],
        false,
    ),
    (
        "NumericGreaterThanEqualsIfExists absent",
        r#"{"NumericGreaterThanEqualsIfExists":{"s3:max-keys":"10"}}"#,
        &[],
        true,
    ),
    // Date
    (
        "DateEquals",
        r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        true,
    ),
    (
        "DateEquals date-only policy value",
        r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        true,
    ),
    (
        "DateEquals epoch request value",
        r#"{"DateEquals":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:EpochTime", &["1767225600"])],
        true,
    ),
    (
        "DateEquals epoch policy value",
        r#"{"DateEquals":{"aws:CurrentTime":1767225600}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        true,
    ),
    (
        "DateEquals offsets",
        r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01T02:00:00+02:00"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        true,
    ),
    (
        "DateEquals different",
        r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:01Z"])],
        false,
    ),
    (
        "DateEquals bad request value",
        r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["soon"])],
        false,
    ),
    (
        "DateEqualsIfExists absent",
        r#"{"DateEqualsIfExists":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    (
        "DateNotEquals equal",
        r#"{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        false,
    ),
    (
        "DateNotEquals different",
        r#"{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[("aws:CurrentTime", &["2026-01-02T00:00:00Z"])],
        true,
    ),
    (
        "DateNotEquals absent holds",
        r#"{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    (
        "DateNotEqualsIfExists absent",
        r#"{"DateNotEqualsIfExists":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    (
        "DateLessThan",
        r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2025-12-31T23:59:59Z"])],
        true,
    ),
    (
        "DateLessThan later",
        r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        false,
    ),
    (
        "DateLessThan absent",
        r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#,
        &[],
        false,
    ),
    (
        "DateLessThanIfExists absent",
        r#"{"DateLessThanIfExists":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    (
        "DateLessThanEquals equal",
        r#"{"DateLessThanEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00Z"])],
        true,
    ),
    (
        "DateLessThanEqualsIfExists absent",
        r#"{"DateLessThanEqualsIfExists":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    (
        "DateGreaterThan",
        r#"{"DateGreaterThan":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:EpochTime", &["1767225601"])],
        true,
    ),
    (
        "DateGreaterThan earlier",
        r#"{"DateGreaterThan":{"aws:EpochTime":"2026-01-01T00:00:00Z"}}"#,
        &[("aws:EpochTime", &["1767225600"])],
        false,
    ),
    (
        "DateGreaterThanIfExists absent",
        r#"{"DateGreaterThanIfExists":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    (
        "DateGreaterThanEquals equal",
        r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[("aws:CurrentTime", &["2026-01-01T00:00:00.000Z"])],
        true,
    ),
    (
        "DateGreaterThanEquals earlier",
        r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[("aws:CurrentTime", &["2025-12-31T00:00:00Z"])],
        false,
    ),
    (
        "DateGreaterThanEqualsIfExists absent",
        r#"{"DateGreaterThanEqualsIfExists":{"aws:CurrentTime":"2026-01-01"}}"#,
        &[],
        true,
    ),
    // Bool
    (
        "Bool false",
        r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
        &[("aws:SecureTransport", &["false"])],
        true,
    ),
    (
        "Bool any case",
        r#"{"Bool":{"aws:SecureTransport":"FALSE"}}"#,
        &[("aws:SecureTransport", &["False"])],
        true,
    ),
    (
        "Bool JSON boolean",
        r#"{"Bool":{"aws:SecureTransport":false}}"#,
        &[("aws:SecureTransport", &["false"])],
        true,
    ),
    (
        "Bool mismatch",
        r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
        &[("aws:SecureTransport", &["true"])],
        false,
    ),
    (
        "Bool not a bool in the request",
        r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
        &[("aws:SecureTransport", &["yes"])],
        false,
    ),
    (
        "Bool absent",
        r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
        &[],
        false,
    ),
    (
        "BoolIfExists absent",
        r#"{"BoolIfExists":{"aws:SecureTransport":"false"}}"#,
        &[],
        true,
    ),
    (
        "BoolIfExists present mismatch",
        r#"{"BoolIfExists":{"aws:SecureTransport":"false"}}"#,
        &[("aws:SecureTransport", &["true"])],
        false,
    ),
    // BinaryEquals
    (
        "BinaryEquals",
        r#"{"BinaryEquals":{"s3:blob":"aGVsbG8="}}"#,
        &[("s3:blob", &["aGVsbG8="])],
        true,
    ),
    (
        "BinaryEquals unpadded request",
        r#"{"BinaryEquals":{"s3:blob":"aGVsbG8="}}"#,
        &[("s3:blob", &["aGVsbG8"])],
        true,
    ),
    (
        "BinaryEquals different",
        r#"{"BinaryEquals":{"s3:blob":"aGVsbG8="}}"#,
        &[("s3:blob", &["aGVsbA=="])],
        false,
    ),
    (
        "BinaryEquals absent",
        r#"{"BinaryEquals":{"s3:blob":"aGVsbG8="}}"#,
        &[],
        false,
    ),
    (
        "BinaryEqualsIfExists absent",
        r#"{"BinaryEqualsIfExists":{"s3:blob":"aGVsbG8="}}"#,
        &[],
        true,
    ),
    // IpAddress / NotIpAddress
    (
        "IpAddress in CIDR",
        r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[("aws:SourceIp", &["192.0.2.77"])],
        true,
    ),
    (
        "IpAddress outside CIDR",
        r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[("aws:SourceIp", &["192.0.3.1"])],
        false,
    ),
    (
        "IpAddress single address",
        r#"{"IpAddress":{"aws:SourceIp":"192.0.2.5"}}"#,
        &[("aws:SourceIp", &["192.0.2.5"])],
        true,
    ),
    (
        "IpAddress list",
        r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.0.2.0/24"]}}"#,
        &[("aws:SourceIp", &["10.9.8.7"])],
        true,
    ),
    (
        "IpAddress IPv6",
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
        &[("aws:SourceIp", &["2001:db8:abcd::1"])],
        true,
    ),
    (
        "IpAddress IPv6 outside",
        r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
        &[("aws:SourceIp", &["2001:db9::1"])],
        false,
    ),
    (
        "IpAddress v4 policy, v6 request",
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        &[("aws:SourceIp", &["::1"])],
        false,
    ),
    (
        "IpAddress IPv4-mapped request",
        r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[("aws:SourceIp", &["::ffff:192.0.2.1"])],
        true,
    ),
    (
        "IpAddress not an address",
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        &[("aws:SourceIp", &["nowhere"])],
        false,
    ),
    (
        "IpAddress absent",
        r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
        &[],
        false,
    ),
    (
        "IpAddressIfExists absent",
        r#"{"IpAddressIfExists":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[],
        true,
    ),
    (
        "NotIpAddress inside",
        r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[("aws:SourceIp", &["192.0.2.1"])],
        false,
    ),
    (
        "NotIpAddress outside",
        r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[("aws:SourceIp", &["203.0.113.1"])],
        true,
    ),
    (
        "NotIpAddress absent holds",
        r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[],
        true,
    ),
    (
        "NotIpAddressIfExists absent",
        r#"{"NotIpAddressIfExists":{"aws:SourceIp":"192.0.2.0/24"}}"#,
        &[],
        true,
    ),
    // Arn*
    (
        "ArnEquals exact",
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:123456789012:topic"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:us-east-1:123456789012:topic"])],
        true,
    ),
    (
        "ArnEquals wildcard segment",
        r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:*:123456789012:topic"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:eu-west-1:123456789012:topic"])],
        true,
    ),
    (
        "ArnLike wildcard",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:123456789012:*"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:us-east-1:123456789012:topic"])],
        true,
    ),
    (
        "ArnLike other account",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:123456789012:*"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:us-east-1:999999999999:topic"])],
        false,
    ),
    (
        "ArnLike wildcard stays in its segment",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:123456789012:topic"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:us-east-1:999:123456789012:topic"])],
        false,
    ),
    (
        "ArnLike resource with colons",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::b/*"}}"#,
        &[("aws:SourceArn", &["arn:aws:s3:::b/x:y"])],
        true,
    ),
    (
        "ArnLike is case-sensitive",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:Topic"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:r:1:topic"])],
        false,
    ),
    (
        "ArnLike not an ARN",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        &[("aws:SourceArn", &["topic"])],
        false,
    ),
    (
        "ArnLike absent",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        &[],
        false,
    ),
    (
        "ArnLikeIfExists absent",
        r#"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        &[],
        true,
    ),
    (
        "ArnEqualsIfExists absent",
        r#"{"ArnEqualsIfExists":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}"#,
        &[],
        true,
    ),
    (
        "ArnNotEquals match",
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:r:1:t"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:r:1:t"])],
        false,
    ),
    (
        "ArnNotEquals other",
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:r:1:t"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:r:2:t"])],
        true,
    ),
    (
        "ArnNotEquals absent holds",
        r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:sns:r:1:t"}}"#,
        &[],
        true,
    ),
    (
        "ArnNotEqualsIfExists absent",
        r#"{"ArnNotEqualsIfExists":{"aws:SourceArn":"arn:aws:sns:r:1:t"}}"#,
        &[],
        true,
    ),
    (
        "ArnNotLike match",
        r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:1:*"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:r:1:t"])],
        false,
    ),
    (
        "ArnNotLike other",
        r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:1:*"}}"#,
        &[("aws:SourceArn", &["arn:aws:sns:r:2:t"])],
        true,
    ),
    (
        "ArnNotLike absent holds",
        r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:sns:*:1:*"}}"#,
        &[],
        true,
    ),
    (
        "ArnNotLikeIfExists absent",
        r#"{"ArnNotLikeIfExists":{"aws:SourceArn":"arn:aws:sns:*:1:*"}}"#,
        &[],
        true,
    ),
    // Null
    (
        "Null true, absent",
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &[],
        true,
    ),
    (
        "Null true, present",
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &[("aws:TokenIssueTime", &["x"])],
        false,
    ),
    (
        "Null false, present",
        r#"{"Null":{"aws:TokenIssueTime":"false"}}"#,
        &[("aws:TokenIssueTime", &["x"])],
        true,
    ),
    (
        "Null false, absent",
        r#"{"Null":{"aws:TokenIssueTime":false}}"#,
        &[],
        false,
    ),
    (
        "Null key set to no values is absent",
        r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
        &[("aws:TokenIssueTime", &[])],
        true,
    ),
    // ForAnyValue / ForAllValues
    (
        "ForAnyValue one matches",
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["c", "a"])],
        true,
    ),
    (
        "ForAnyValue none matches",
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["c"])],
        false,
    ),
    (
        "ForAnyValue absent is false",
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[],
        false,
    ),
    (
        "ForAnyValue IfExists absent",
        r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["a"]}}"#,
        &[],
        true,
    ),
    (
        "ForAnyValue StringLike",
        r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["env*"]}}"#,
        &[("aws:TagKeys", &["x", "environment"])],
        true,
    ),
    (
        "ForAnyValue negated: one value outside",
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["a", "c"])],
        true,
    ),
    (
        "ForAnyValue negated: all inside",
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["a", "b"])],
        false,
    ),
    (
        "ForAnyValue negated absent is false",
        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a"]}}"#,
        &[],
        false,
    ),
    (
        "ForAllValues all match",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["b", "a"])],
        true,
    ),
    (
        "ForAllValues one outside",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["a", "c"])],
        false,
    ),
    (
        "ForAllValues absent is true",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[],
        true,
    ),
    (
        "ForAllValues empty is true",
        r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &[])],
        true,
    ),
    (
        "ForAllValues negated: none inside",
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["c", "d"])],
        true,
    ),
    (
        "ForAllValues negated: one inside",
        r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#,
        &[("aws:TagKeys", &["c", "a"])],
        false,
    ),
    (
        "ForAllValues numeric",
        r#"{"ForAllValues:NumericLessThan":{"s3:sizes":"10"}}"#,
        &[("s3:sizes", &["1", "9"])],
        true,
    ),
    (
        "qualifier any case",
        r#"{"forallvalues:stringequals":{"aws:TagKeys":["a"]}}"#,
        &[("aws:TagKeys", &["a"])],
        true,
    ),
    // Combination
    (
        "operators are AND",
        r#"{"StringEquals":{"s3:prefix":"a"},"NumericLessThan":{"s3:max-keys":"5"}}"#,
        &[("s3:prefix", &["a"]), ("s3:max-keys", &["9"])],
        false,
    ),
    (
        "operators are AND, both hold",
        r#"{"StringEquals":{"s3:prefix":"a"},"NumericLessThan":{"s3:max-keys":"5"}}"#,
        &[("s3:prefix", &["a"]), ("s3:max-keys", &["4"])],
        true,
    ),
    (
        "keys are AND",
        r#"{"StringEquals":{"s3:prefix":"a","s3:delimiter":"/"}}"#,
        &[("s3:prefix", &["a"])],
        false,
    ),
    (
        "keys are AND, both hold",
        r#"{"StringEquals":{"s3:prefix":"a","s3:delimiter":"/"}}"#,
        &[("s3:prefix", &["a"]), ("s3:delimiter", &["/"])],
        true,
    ),
    ("empty block holds", r#"{}"#, &[], true),
    // Policy variables in condition values (2012-10-17)
    (
        "variable in StringLike",
        r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}"#,
        &[("aws:username", &["alice"]), ("s3:prefix", &["home/alice/docs"])],
        true,
    ),
    (
        "variable in StringLike, other user",
        r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}"#,
        &[("aws:username", &["alice"]), ("s3:prefix", &["home/bob/docs"])],
        false,
    ),
    (
        "variable absent: no match",
        r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}"#,
        &[("s3:prefix", &["home//docs"])],
        false,
    ),
    (
        "variable absent: negated holds",
        r#"{"StringNotEquals":{"s3:prefix":"${aws:username}"}}"#,
        &[("s3:prefix", &["x"])],
        true,
    ),
    (
        "variable multi-valued: not substituted",
        r#"{"StringEquals":{"s3:prefix":"${aws:TagKeys}"}}"#,
        &[("aws:TagKeys", &["a", "b"]), ("s3:prefix", &["a"])],
        false,
    ),
    (
        "variable with default",
        r#"{"StringEquals":{"s3:prefix":"${aws:username, 'guest'}"}}"#,
        &[("s3:prefix", &["guest"])],
        true,
    ),
    (
        "variable value is literal",
        r#"{"StringLike":{"s3:prefix":"${aws:username}"}}"#,
        &[("aws:username", &["a*"]), ("s3:prefix", &["abc"])],
        false,
    ),
    (
        "escape ${*}",
        r#"{"StringLike":{"s3:prefix":"a${*}"}}"#,
        &[("s3:prefix", &["a*"])],
        true,
    ),
    (
        "escape ${*} is not a wildcard",
        r#"{"StringLike":{"s3:prefix":"a${*}"}}"#,
        &[("s3:prefix", &["abc"])],
        false,
    ),
    (
        "escapes ${?} ${$}",
        r#"{"StringEquals":{"s3:prefix":"${?}${$}"}}"#,
        &[("s3:prefix", &["?$"])],
        true,
    ),
    (
        "variable in a date value",
        r#"{"DateGreaterThan":{"aws:CurrentTime":"${aws:TokenIssueTime}"}}"#,
        &[
            ("aws:CurrentTime", &["2026-01-02T00:00:00Z"]),
            ("aws:TokenIssueTime", &["2026-01-01T00:00:00Z"]),
        ],
        true,
    ),
    (
        "variable in a date value, absent",
        r#"{"DateGreaterThan":{"aws:CurrentTime":"${aws:TokenIssueTime}"}}"#,
        &[("aws:CurrentTime", &["2026-01-02T00:00:00Z"])],
        false,
    ),
    (
        "variable in an ARN value",
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:user/${aws:username}"}}"#,
        &[
            ("aws:username", &["alice"]),
            ("aws:SourceArn", &["arn:aws:iam::1:user/alice"]),
        ],
        true,
    ),
    (
        "variable in an IgnoreCase value",
        r#"{"StringEqualsIgnoreCase":{"s3:prefix":"${aws:username}"}}"#,
        &[("aws:username", &["Alice"]), ("s3:prefix", &["ALICE"])],
        true,
    ),
    (
        "variable in a numeric value",
        r#"{"NumericLessThan":{"s3:max-keys":"${s3:limit}"}}"#,
        &[("s3:limit", &["10"]), ("s3:max-keys", &["9"])],
        true,
    ),
];

#[test]
fn condition_table() {
    let mut failures = Vec::new();
    for (name, condition, ctx, holds) in CONDITION_CASES {
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{condition}}}]}}"#
        );
        let policy = parse(&text, PolicyKind::Identity);
        let got = evaluate(&policy, "s3:GetObject", OBJECT, None, ctx);
        let want = if *holds { ALLOW0 } else { NA };
        if got != want {
            failures.push(format!(
                "{name}: {condition} with {ctx:?}: got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn condition_values_are_literal_without_version_2012() {
    for version in [r#""Version":"2008-10-17","#, ""] {
        let text = format!(
            r#"{{{version}"Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{{"StringEquals":{{"s3:prefix":"${{aws:username}}"}}}}}}]}}"#
        );
        let policy = parse(&text, PolicyKind::Identity);
        assert!(!policy.substitutes_variables());
        let ctx: &[(&str, &[&str])] = &[("aws:username", &["alice"]), ("s3:prefix", &["alice"])];
        assert_eq!(evaluate(&policy, "s3:GetObject", OBJECT, None, ctx), NA);
        let ctx: &[(&str, &[&str])] = &[("s3:prefix", &["${aws:username}"])];
        assert_eq!(evaluate(&policy, "s3:GetObject", OBJECT, None, ctx), ALLOW0);
    }
}

// ---------------------------------------------------------------------------------------
// Actions, resources, principals, effects
// ---------------------------------------------------------------------------------------

/// (name, policy, kind, action, resource, principal, context, verdict)
type EvalCase = (
    &'static str,
    &'static str,
    PolicyKind<'static>,
    &'static str,
    &'static str,
    Option<&'static [&'static str]>,
    &'static [(&'static str, &'static [&'static str])],
    Verdict,
);

const ID: PolicyKind<'static> = PolicyKind::Identity;
const ALICE: &[&str] = &[
    "arn:aws:iam::123456789012:user/alice",
    "AKIAALICE",
    "arn:aws:iam::123456789012:root",
    "123456789012",
];
const BOB: &[&str] = &["arn:aws:iam::210987654321:user/bob", "AKIABOB", "210987654321"];
const ANONYMOUS: &[&str] = &[];

const EVAL_CASES: &[EvalCase] = &[
    // Actions
    (
        "action exact",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "action other",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        ID,
        "s3:PutObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "action any case in the policy",
        r#"{"Statement":{"Effect":"Allow","Action":"S3:GETOBJECT","Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "action any case in the request",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        ID,
        "S3:getobject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "action prefix wildcard",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#,
        ID,
        "s3:GetObjectVersion",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "action prefix wildcard, other",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#,
        ID,
        "s3:PutObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "action inner wildcard",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*Object","Resource":"*"}}"#,
        ID,
        "s3:DeleteObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "action question mark",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:?etObject","Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "action s3:* is not admin",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        ID,
        "admin:CreateUser",
        "arn:aws:s3:::*",
        None,
        &[],
        NA,
    ),
    (
        "action * is everything",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "admin:CreateUser",
        "arn:aws:s3:::*",
        None,
        &[],
        ALLOW0,
    ),
    (
        "action list",
        r#"{"Statement":{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "admin action",
        r#"{"Statement":{"Effect":"Allow","Action":"admin:*","Resource":"arn:aws:s3:::*"}}"#,
        ID,
        "admin:ServerInfo",
        "arn:aws:s3:::*",
        None,
        &[],
        ALLOW0,
    ),
    (
        "NotAction excludes",
        r#"{"Statement":{"Effect":"Allow","NotAction":"s3:DeleteObject","Resource":"*"}}"#,
        ID,
        "s3:DeleteObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "NotAction includes the rest",
        r#"{"Statement":{"Effect":"Allow","NotAction":"s3:Delete*","Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "NotAction * matches nothing",
        r#"{"Statement":{"Effect":"Allow","NotAction":"*","Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "NotAction with exact names, other length",
        r#"{"Statement":{"Effect":"Allow","NotAction":["s3:DeleteObject","s3:DeleteBucket"],"Resource":"*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "non-ASCII request action, case-insensitive",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}}"#,
        ID,
        "S3:GETÖBJECT",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "non-ASCII request action, exact",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        ID,
        "s3:GetÖbject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "very long request action",
        r#"{"Statement":{"Effect":"Allow","Action":"S3:PUT*","Resource":"*"}}"#,
        ID,
        "s3:PutSomethingWithAVeryLongNameThatDoesNotFitTheStackBufferAtAllReally",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    // Resources
    (
        "resource object prefix",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::photos/2024/a.jpg",
        None,
        &[],
        ALLOW0,
    ),
    (
        "resource object prefix is not the bucket",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        ID,
        "s3:ListBucket",
        "arn:aws:s3:::photos",
        None,
        &[],
        NA,
    ),
    (
        "resource bucket",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos"}}"#,
        ID,
        "s3:ListBucket",
        "arn:aws:s3:::photos",
        None,
        &[],
        ALLOW0,
    ),
    (
        "resource bucket is not its objects",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "resource is case-sensitive",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::Photos/*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    (
        "resource suffix",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/*.jpg"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::photos/x/y.jpg",
        None,
        &[],
        ALLOW0,
    ),
    (
        "resource question mark",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/?.jpg"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "resource arn:aws:s3:::* covers objects",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "resource arn:aws:s3:::* covers the service",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"arn:aws:s3:::*"}}"#,
        ID,
        "s3:ListAllMyBuckets",
        "arn:aws:s3:::*",
        None,
        &[],
        ALLOW0,
    ),
    (
        "bucket resource does not cover the service",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos*"}}"#,
        ID,
        "s3:ListAllMyBuckets",
        "arn:aws:s3:::*",
        None,
        &[],
        NA,
    ),
    (
        "NotResource excludes",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::photos/private/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::photos/private/x",
        None,
        &[],
        NA,
    ),
    (
        "NotResource includes the rest",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::photos/private/*"}}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    // Policy variables in resources
    (
        "home directory",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/alice/notes.txt",
        None,
        &[("aws:username", &["alice"])],
        ALLOW0,
    ),
    (
        "home directory of another user",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/bob/notes.txt",
        None,
        &[("aws:username", &["alice"])],
        NA,
    ),
    (
        "home directory, variable key any case",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${AWS:UserName}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/alice/x",
        None,
        &[("aws:username", &["alice"])],
        ALLOW0,
    ),
    (
        "home directory, no user name",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home//x",
        None,
        &[],
        NA,
    ),
    (
        "home directory, NotResource with no user name",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/x/y",
        None,
        &[],
        Verdict::Deny { statement: 0 },
    ),
    (
        "variable with several values",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::t/${aws:TagKeys}"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::t/a",
        None,
        &[("aws:TagKeys", &["a", "b"])],
        NA,
    ),
    (
        "resource escape ${*}",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/${*}star"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::photos/*star",
        None,
        &[],
        ALLOW0,
    ),
    (
        "resource escape ${*} is literal",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/${*}star"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::photos/bright-star",
        None,
        &[],
        NA,
    ),
    (
        "resource escapes ${?} ${$}",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/${?}${$}"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::photos/?$",
        None,
        &[],
        ALLOW0,
    ),
    (
        "variable in 2008 policy is text",
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/alice/x",
        None,
        &[("aws:username", &["alice"])],
        NA,
    ),
    (
        "variable in 2008 policy, literal key",
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/${aws:username}/x",
        None,
        &[("aws:username", &["alice"])],
        ALLOW0,
    ),
    (
        "variable without Version is text",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        ID,
        "s3:GetObject",
        "arn:aws:s3:::home/alice/x",
        None,
        &[("aws:username", &["alice"])],
        NA,
    ),
    // Effects and ordering
    (
        "deny overrides allow",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#,
        ID,
        "s3:DeleteObject",
        OBJECT,
        None,
        &[],
        Verdict::Deny { statement: 1 },
    ),
    (
        "allow when the deny does not match",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "first deny is reported",
        r#"{"Statement":[{"Effect":"Deny","Action":"s3:Put*","Resource":"*"},{"Effect":"Deny","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        Verdict::Deny { statement: 1 },
    ),
    (
        "first allow is reported",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:Put*","Resource":"*"},{"Effect":"Allow","Action":"s3:Get*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        Verdict::Allow { statement: 1 },
    ),
    (
        "deny after allow still wins",
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::photos/*"}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        Verdict::Deny { statement: 2 },
    ),
    (
        "deny with a condition that does not hold",
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[("aws:SecureTransport", &["true"])],
        ALLOW0,
    ),
    (
        "deny with a condition that holds",
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[("aws:SecureTransport", &["false"])],
        Verdict::Deny { statement: 1 },
    ),
    (
        "not applicable",
        r#"{"Statement":[{"Effect":"Deny","Action":"s3:Delete*","Resource":"*"},{"Effect":"Allow","Action":"s3:Put*","Resource":"*"}]}"#,
        ID,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        NA,
    ),
    // Principals (bucket policies)
    (
        "principal * allows anonymous",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ANONYMOUS),
        &[],
        ALLOW0,
    ),
    (
        "principal * allows anyone",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        ALLOW0,
    ),
    (
        "principal AWS * allows anonymous",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ANONYMOUS),
        &[],
        ALLOW0,
    ),
    (
        "principal AWS [*] allows anyone",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        ALLOW0,
    ),
    (
        "principal user ARN",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ALICE),
        &[],
        ALLOW0,
    ),
    (
        "principal user ARN, other caller",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        NA,
    ),
    (
        "principal user ARN, anonymous caller",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ANONYMOUS),
        &[],
        NA,
    ),
    (
        "principal account id",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["210987654321","123456789012"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ALICE),
        &[],
        ALLOW0,
    ),
    (
        "principal access key",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"AKIABOB"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        ALLOW0,
    ),
    (
        "principal CanonicalUser",
        r#"{"Statement":{"Effect":"Allow","Principal":{"CanonicalUser":"AKIABOB"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        ALLOW0,
    ),
    (
        "principal Service never matches a caller",
        r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ALICE),
        &[],
        NA,
    ),
    (
        "principal not consulted without caller identifiers",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        None,
        &[],
        ALLOW0,
    ),
    (
        "NotPrincipal: others are denied",
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}]}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        Verdict::Deny { statement: 1 },
    ),
    (
        "NotPrincipal: the named one is not",
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}]}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ALICE),
        &[],
        ALLOW0,
    ),
    (
        "NotPrincipal: anonymous is denied",
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"},{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}]}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ANONYMOUS),
        &[],
        Verdict::Deny { statement: 1 },
    ),
    (
        "NotPrincipal * matches nobody",
        r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"Action":"s3:*","Resource":"*"}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(BOB),
        &[],
        NA,
    ),
    (
        "bucket policy resource *",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"*"}}"#,
        BUCKET,
        "s3:ListBucket",
        "arn:aws:s3:::photos",
        Some(BOB),
        &[],
        ALLOW0,
    ),
    (
        "bucket policy with condition",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ANONYMOUS),
        &[("aws:SourceIp", &["203.0.113.9"])],
        ALLOW0,
    ),
    (
        "bucket policy with condition, outside",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}}"#,
        BUCKET,
        "s3:GetObject",
        OBJECT,
        Some(ANONYMOUS),
        &[("aws:SourceIp", &["198.51.100.1"])],
        NA,
    ),
];

#[test]
fn evaluation_table() {
    let mut failures = Vec::new();
    for (name, text, kind, action, resource, principal, ctx, want) in EVAL_CASES {
        let policy = parse(text, *kind);
        let got = evaluate(&policy, action, resource, *principal, ctx);
        if got != *want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn statements_expose_sid_and_effect() {
    let policy = parse(
        r#"{"Version":"2012-10-17","Id":"P1","Statement":[{"Sid":"One","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
        ID,
    );
    assert_eq!(policy.id(), Some("P1"));
    assert!(policy.substitutes_variables());
    let s = policy.statements();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].sid(), Some("One"));
    assert_eq!(s[0].effect(), Effect::Allow);
    assert_eq!(s[1].sid(), None);
    assert_eq!(s[1].effect(), Effect::Deny);
    // Statement as a single object.
    let one = parse(
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        ID,
    );
    assert_eq!(one.statements().len(), 1);
    // Parsing is deterministic.
    assert_eq!(
        one,
        parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            ID
        )
    );
}

#[test]
fn context_keys_are_case_insensitive() {
    let mut ctx = Context::new();
    ctx.insert("AWS:UserName", "alice");
    ctx.insert("aws:username", "bob");
    assert_eq!(
        ctx.get("aws:USERNAME"),
        Some(&["alice".to_owned(), "bob".to_owned()][..])
    );
    ctx.set("Aws:Username", vec!["carol".to_owned()]);
    assert_eq!(ctx.get("aws:username"), Some(&["carol".to_owned()][..]));
    ctx.set("aws:username", Vec::new());
    assert_eq!(ctx.get("aws:username"), None);
    assert_eq!(ctx.get("s3:prefix"), None);
}

// ---------------------------------------------------------------------------------------
// Parse errors
// ---------------------------------------------------------------------------------------

/// (name, policy, kind, part of the reason)
type ParseErrorCase = (&'static str, &'static str, PolicyKind<'static>, &'static str);

const PARSE_ERRORS: &[ParseErrorCase] = &[
    ("not JSON", "Version: 2012", ID, "Policies must be valid JSON"),
    (
        "truncated JSON",
        r#"{"Statement":["#,
        ID,
        "Policies must be valid JSON",
    ),
    (
        "top level array",
        r#"[{"Effect":"Allow"}]"#,
        ID,
        "Policies must be valid JSON",
    ),
    (
        "top level string",
        r#""policy""#,
        ID,
        "Policies must be valid JSON",
    ),
    (
        "duplicate key",
        r#"{"Statement":{"Effect":"Deny","Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "Duplicate key in policy: Effect",
    ),
    (
        "unknown top-level field",
        r#"{"Version":"2012-10-17","Statment":[],"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "Unknown field Statment",
    ),
    (
        "invalid version",
        r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "valid version string",
    ),
    (
        "version not a string",
        r#"{"Version":2012,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "valid version string",
    ),
    (
        "Id not a string",
        r#"{"Id":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "Id must be a string",
    ),
    (
        "missing Statement",
        r#"{"Version":"2012-10-17"}"#,
        ID,
        "Missing required field Statement",
    ),
    (
        "empty Statement",
        r#"{"Version":"2012-10-17","Statement":[]}"#,
        ID,
        "Statement is empty",
    ),
    (
        "Statement a string",
        r#"{"Statement":"Allow everything"}"#,
        ID,
        "Statement must be an object",
    ),
    (
        "Statement item a string",
        r#"{"Statement":["Allow"]}"#,
        ID,
        "Statement must be an object",
    ),
    (
        "duplicate Sid",
        r#"{"Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        ID,
        "Statement IDs (SID) in a single policy must be unique",
    ),
    (
        "Sid not a string",
        r#"{"Statement":{"Sid":1,"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
        "Sid must be a string",
    ),
    (
        "unknown statement field",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Resources":"*"}}"#,
        ID,
        "Unknown field Resources",
    ),
    (
        "missing Effect",
        r#"{"Statement":{"Action":"*","Resource":"*"}}"#,
        ID,
        "Missing required field Effect",
    ),
    (
        "Effect lowercase",
        r#"{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#,
        ID,
        "Invalid effect: allow",
    ),
    (
        "Effect not a string",
        r#"{"Statement":{"Effect":true,"Action":"*","Resource":"*"}}"#,
        ID,
        "Invalid effect",
    ),
    (
        "missing Action",
        r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
        ID,
        "Missing required field Action",
    ),
    (
        "Action and NotAction",
        r#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}}"#,
        ID,
        "both Action and NotAction",
    ),
    (
        "unknown S3 action",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObjects","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "unknown service",
        r#"{"Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "wildcard service",
        r#"{"Statement":{"Effect":"Allow","Action":"s*:GetObject","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "action without service",
        r#"{"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "action with empty name",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "action with bad characters",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:Get Object","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "empty action list",
        r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "action not a string",
        r#"{"Statement":{"Effect":"Allow","Action":["s3:GetObject",1],"Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "bad NotAction",
        r#"{"Statement":{"Effect":"Allow","NotAction":"s3:Nope","Resource":"*"}}"#,
        ID,
        "Policy has invalid action",
    ),
    (
        "missing Resource",
        r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#,
        ID,
        "Missing required field Resource",
    ),
    (
        "Resource and NotResource",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}}"#,
        ID,
        "both Resource and NotResource",
    ),
    (
        "identity resource not an ARN",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"photos/*"}}"#,
        ID,
        "Policy has invalid resource",
    ),
    (
        "identity resource short ARN",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3"}}"#,
        ID,
        "Policy has invalid resource",
    ),
    (
        "empty resource list",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":[]}}"#,
        ID,
        "Policy has invalid resource",
    ),
    (
        "identity policy with Principal",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#,
        ID,
        "Policy document should not specify a principal",
    ),
    (
        "identity policy with NotPrincipal",
        r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"1"},"Action":"*","Resource":"*"}}"#,
        ID,
        "Policy document should not specify a principal",
    ),
    (
        "bucket policy without Principal",
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Missing required field Principal",
    ),
    (
        "bucket policy with Principal and NotPrincipal",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","NotPrincipal":{"AWS":"1"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "both Principal and NotPrincipal",
    ),
    (
        "principal partial wildcard",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::*:root"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Invalid principal in policy",
    ),
    (
        "principal unknown type",
        r#"{"Statement":{"Effect":"Allow","Principal":{"User":"alice"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Invalid principal in policy",
    ),
    (
        "principal plain string",
        r#"{"Statement":{"Effect":"Allow","Principal":"alice","Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Invalid principal in policy",
    ),
    (
        "principal empty object",
        r#"{"Statement":{"Effect":"Allow","Principal":{},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Invalid principal in policy",
    ),
    (
        "principal empty value",
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":""},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Invalid principal in policy",
    ),
    (
        "principal Service wildcard",
        r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"*"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}}"#,
        BUCKET,
        "Invalid principal in policy",
    ),
    (
        "bucket resource of another bucket",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::videos/*"}}"#,
        BUCKET,
        "Policy has invalid resource",
    ),
    (
        "bucket resource not an ARN",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"photos/*"}}"#,
        BUCKET,
        "Policy has invalid resource",
    ),
    (
        "bucket resource of another service",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:sns:::photos"}}"#,
        BUCKET,
        "Policy has invalid resource",
    ),
    (
        "bucket resource without a bucket",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::/x"}}"#,
        BUCKET,
        "Policy has invalid resource",
    ),
    (
        "bucket NotResource of another bucket",
        r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"s3:*","NotResource":"arn:aws:s3:::videos"}}"#,
        BUCKET,
        "Policy has invalid resource",
    ),
    (
        "bucket resource prefix of the name",
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::photo/*"}}"#,
        BUCKET,
        "Policy has invalid resource",
    ),
    (
        "Condition not an object",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":"x"}}"#,
        ID,
        "Condition must be an object",
    ),
    (
        "unknown condition operator",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"s3:prefix":"a"}}}}"#,
        ID,
        "Invalid Condition type: StringEqualz",
    ),
    (
        "unknown set qualifier",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"s3:prefix":"a"}}}}"#,
        ID,
        "Invalid Condition type",
    ),
    (
        "NullIfExists",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"s3:prefix":"true"}}}}"#,
        ID,
        "Invalid Condition type",
    ),
    (
        "BinaryNotEquals does not exist",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"BinaryNotEquals":{"s3:x":"YQ=="}}}}"#,
        ID,
        "Invalid Condition type",
    ),
    (
        "operator not an object",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"a"}}}"#,
        ID,
        "must map condition keys",
    ),
    (
        "operator without keys",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}}"#,
        ID,
        "has no condition keys",
    ),
    (
        "same key twice in any case",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"a","S3:Prefix":"b"}}}}"#,
        ID,
        "twice",
    ),
    (
        "numeric value not a number",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "numeric value NaN",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericEquals":{"s3:max-keys":"NaN"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "bad date",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2026-13-01"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "date not a date",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "bad CIDR",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "CIDR not an address",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"intranet"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "Bool not a bool",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "Null not a bool",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"aws:SecureTransport":"absent"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "BinaryEquals not base64",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"BinaryEquals":{"s3:x":"not base64!"}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "condition value an object",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":{"a":"b"}}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "condition value null",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":null}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "condition values empty",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":[]}}}}"#,
        ID,
        "Invalid Condition value",
    ),
    (
        "condition value nested array",
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":[["a"]]}}}}"#,
        ID,
        "Invalid Condition value",
    ),
];

#[test]
fn parse_error_table() {
    let mut failures = Vec::new();
    for (name, text, kind, reason) in PARSE_ERRORS {
        match Policy::parse(text.as_bytes(), *kind) {
            Ok(_) => failures.push(format!("{name}: parsed, want an error with {reason:?}")),
            Err(PolicyError::Malformed { reason: got }) if got.contains(reason) => {}
            Err(e) => failures.push(format!("{name}: got {e:?}, want {reason:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn size_limit() {
    let statement = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}"#;
    let build = |n: usize, pad: usize| {
        let statements = vec![statement; n].join(",");
        format!(
            r#"{{"Version":"2012-10-17","Id":"{}","Statement":[{statements}]}}"#,
            "x".repeat(pad)
        )
    };
    let small = build(100, 0);
    let pad = MAX_POLICY_BYTES - small.len();
    let exact = build(100, pad);
    assert_eq!(exact.len(), MAX_POLICY_BYTES);
    assert!(Policy::parse(exact.as_bytes(), ID).is_ok());
    let over = build(100, pad + 1);
    let err = Policy::parse(over.as_bytes(), ID).unwrap_err();
    assert_eq!(err.to_string(), "Policies must be less than 20 KB");
    assert!(Policy::parse(over.as_bytes(), BUCKET).is_err());
}

#[test]
fn accepted_documents() {
    let ok: &[(&str, PolicyKind<'static>)] = &[
        // Bucket resources: wildcards that cover the bucket, `*`, a variable.
        (
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::photos","arn:aws:s3:::photos/*","arn:aws:s3:::pho*","arn:aws:s3:::*/*","*"]}}"#,
            BUCKET,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::${aws:username}/*"}}"#,
            BUCKET,
        ),
        // All principal forms.
        (
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*","arn:aws:iam::1:root"],"CanonicalUser":"abc","Service":"s3.amazonaws.com","Federated":"cognito-identity.amazonaws.com"},"Action":"s3:*","Resource":"*"}}"#,
            BUCKET,
        ),
        // Every kind of action.
        (
            r#"{"Statement":{"Effect":"Allow","Action":["*","s3:*","S3:getobject","s3:Get*","admin:*","admin:CreateUser","sts:AssumeRole","kms:Decrypt","s3:ListenBucketNotification"],"Resource":"*"}}"#,
            ID,
        ),
        // Any ARN in an identity policy.
        (
            r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:1:key/abc"}}"#,
            ID,
        ),
        // Every operator parses (and a value with a variable in a typed operator).
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
            "StringEquals":{"a":"x"},"StringNotEquals":{"a":"x"},"StringEqualsIgnoreCase":{"a":"x"},
            "StringNotEqualsIgnoreCase":{"a":"x"},"StringLike":{"a":"x*"},"StringNotLike":{"a":"x*"},
            "NumericEquals":{"a":"1"},"NumericNotEquals":{"a":"1"},"NumericLessThan":{"a":"1"},
            "NumericLessThanEquals":{"a":"1"},"NumericGreaterThan":{"a":"1"},"NumericGreaterThanEquals":{"a":"1.5"},
            "DateEquals":{"a":"2026-01-01"},"DateNotEquals":{"a":"2026-01-01T00:00:00Z"},"DateLessThan":{"a":"1767225600"},
            "DateLessThanEquals":{"a":"2026-01-01"},"DateGreaterThan":{"a":"2026-01-01"},"DateGreaterThanEquals":{"a":"${aws:TokenIssueTime}"},
            "Bool":{"a":"true"},"BinaryEquals":{"a":"YQ=="},"IpAddress":{"a":["10.0.0.0/8","::1"]},"NotIpAddress":{"a":"10.0.0.1"},
            "ArnEquals":{"a":"arn:aws:s3:::x"},"ArnLike":{"a":"arn:*"},"ArnNotEquals":{"a":"arn:aws:s3:::x"},"ArnNotLike":{"a":"arn:aws:s3:::*"},
            "Null":{"a":"true"},"StringEqualsIfExists":{"a":"x"},"ForAnyValue:StringLike":{"a":"x"},"ForAllValues:NumericLessThanIfExists":{"a":"1"}
        }}}"#,
            ID,
        ),
    ];
    for (text, kind) in ok {
        if let Err(e) = Policy::parse(text.as_bytes(), *kind) {
            panic!("{text}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Public bucket policies
// ---------------------------------------------------------------------------------------

/// (name, statement(s) of a bucket policy on `photos`, whether it is public)
const PUBLIC_CASES: &[(&str, &str, bool)] = &[
    (
        "principal *",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}"#,
        true,
    ),
    (
        "principal AWS *",
        r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}"#,
        true,
    ),
    (
        "principal AWS list with *",
        r#"{"Effect":"Allow","Principal":{"AWS":["123456789012","*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/*"}"#,
        true,
    ),
    (
        "fixed principal",
        r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:*","Resource":"arn:aws:s3:::photos/*"}"#,
        false,
    ),
    (
        "service principal",
        r#"{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::photos/*"}"#,
        false,
    ),
    (
        "federated principal",
        r#"{"Effect":"Allow","Principal":{"Federated":"graph.facebook.com"},"Action":"s3:PutObject","Resource":"*"}"#,
        true,
    ),
    (
        "NotPrincipal allow",
        r#"{"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"s3:GetObject","Resource":"*"}"#,
        true,
    ),
    (
        "deny to everyone",
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}"#,
        false,
    ),
    (
        "fixed aws:SourceVpc",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-91237329"}}}"#,
        false,
    ),
    (
        "wildcard aws:SourceVpc",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*","Condition":{"StringLike":{"aws:SourceVpc":"vpc-*"}}}"#,
        true,
    ),
    (
        "StringLike without wildcard is fixed",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*","Condition":{"StringLike":{"aws:SourceVpce":"vpce-1a2b3c4d"}}}"#,
        false,
    ),
    (
        "fixed aws:SourceAccount",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":["111122223333","444455556666"]}}}"#,
        false,
    ),
    (
        "fixed aws:SourceOwner",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceOwner":"111122223333"}}}"#,
        false,
    ),
    (
        "fixed aws:SourceArn",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:sns:us-east-1:111122223333:topic"}}}"#,
        false,
    ),
    (
        "wildcard aws:SourceArn",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:*"}}}"#,
        true,
    ),
    (
        "fixed aws:PrincipalOrgID",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}}"#,
        false,
    ),
    (
        "fixed aws:PrincipalAccount",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"123456789012"}}}"#,
        false,
    ),
    (
        "fixed aws:PrincipalArn",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:user/alice"}}}"#,
        false,
    ),
    (
        "variable aws:PrincipalOrgID",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"${aws:username}"}}}"#,
        true,
    ),
    (
        "IfExists pins nothing",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:SourceAccount":"111122223333"}}}"#,
        true,
    ),
    (
        "negated operator pins nothing",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringNotEquals":{"aws:SourceAccount":"111122223333"}}}"#,
        true,
    ),
    (
        "ForAllValues pins nothing",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:SourceAccount":"111122223333"}}}"#,
        true,
    ),
    (
        "fixed aws:userid",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:userid":"AIDAEXAMPLE"}}}"#,
        false,
    ),
    (
        "aws:userid AROLEID:*",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"aws:userid":"AROAEXAMPLE:*"}}}"#,
        false,
    ),
    (
        "aws:userid *",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"aws:userid":"*"}}}"#,
        true,
    ),
    (
        "fixed KMS key id",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"*","Condition":{"StringEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:1:key/k"}}}"#,
        false,
    ),
    (
        "access point ARN with fixed account",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"s3:DataAccessPointArn":"arn:aws:s3:us-west-2:123456789012:accesspoint/*"}}}"#,
        false,
    ),
    (
        "access point ARN with any account",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"s3:DataAccessPointArn":"arn:aws:s3:us-west-2:*:accesspoint/*"}}}"#,
        true,
    ),
    (
        "fixed s3:DataAccessPointAccount",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"s3:DataAccessPointAccount":"123456789012"}}}"#,
        false,
    ),
    (
        "narrow aws:SourceIp",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
        false,
    ),
    (
        "aws:SourceIp /8",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"11.0.0.0/8"}}}"#,
        false,
    ),
    (
        "broad aws:SourceIp",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/1"}}}"#,
        true,
    ),
    (
        "one broad aws:SourceIp among narrow",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","0.0.0.0/0"]}}}"#,
        true,
    ),
    (
        "narrow IPv6 aws:SourceIp",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}}"#,
        false,
    ),
    (
        "broad IPv6 aws:SourceIp",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"2000::/16"}}}"#,
        true,
    ),
    (
        "NotIpAddress pins nothing",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
        true,
    ),
    (
        "unrelated condition key",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"public/"}}}"#,
        true,
    ),
    (
        "one pinning condition among others",
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"s3:prefix":"*"},"StringEquals":{"aws:SourceAccount":"111122223333"}}}"#,
        false,
    ),
    (
        "one public statement among private ones",
        r#"{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"s3:*","Resource":"*"},{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::photos/public/*"}"#,
        true,
    ),
];

#[test]
fn public_table() {
    let mut failures = Vec::new();
    for (name, statements, public) in PUBLIC_CASES {
        let text = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
        let policy = parse(&text, BUCKET);
        if policy.is_public() != *public {
            failures.push(format!("{name}: is_public() = {}", policy.is_public()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let identity = parse(
        r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
        ID,
    );
    assert!(!identity.is_public());
}
