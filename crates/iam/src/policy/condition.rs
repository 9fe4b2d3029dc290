//! The `Condition` element: every AWS condition operator, `...IfExists`, the `ForAnyValue:` /
//! `ForAllValues:` set qualifiers, and policy variables in condition values.
//!
//! Semantics (AWS's):
//! - a block holds when every operator holds, an operator when every key holds, and a key when
//!   one of its policy values matches (positive operators) or none does (negated operators:
//!   `StringNotEquals`, `StringNotEqualsIgnoreCase`, `StringNotLike`, `NumericNotEquals`,
//!   `DateNotEquals`, `NotIpAddress`, `ArnNotEquals`, `ArnNotLike`);
//! - a key absent from the request makes a positive operator false and a negated one true;
//!   with `IfExists` any operator holds on an absent key;
//! - `ForAllValues:` holds when every request value matches (so on an absent key too),
//!   `ForAnyValue:` when at least one does (so never on an absent key); without a qualifier a
//!   multi-valued key holds for a positive operator when any request value matches and for a
//!   negated one when no request value matches;
//! - `Null` holds with `true` when the key is absent and with `false` when it is present.
//!
//! Values are parsed and validated once (numbers, dates, CIDRs, booleans, base64); a value with
//! a policy variable is resolved and parsed when evaluated.

use std::borrow::Cow;
use std::net::IpAddr;

use super::json::Json;
use super::pattern::{Pattern, Syntax};
use super::{Context, PolicyError, malformed};

/// How a condition treats a multi-valued key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetOp {
    /// No qualifier.
    Single,
    /// `ForAnyValue:`.
    AnyValue,
    /// `ForAllValues:`.
    AllValues,
}

/// The comparison of a numeric or date operator: request value `cmp` policy value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

/// The operator family, with negation and qualifiers kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `String...`: `fold` for `...IgnoreCase`, `like` for `...Like` (wildcards).
    Str {
        fold: bool,
        like: bool,
    },
    Num(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    /// `ArnEquals` / `ArnLike` (both take wildcards within a segment, as AWS documents).
    Arn,
    Null,
}

/// A 128-bit-safe CIDR block (a single address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `a:b::/n` or a single address.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        let net = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(prefix)).into()),
        };
        Some(Cidr { net, prefix })
    }

    /// Whether `ip` is inside this block (an IPv4-mapped IPv6 address counts as IPv4).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.prefix) == u128::from(net),
            _ => false,
        }
    }

    /// AWS's "not public" rule for `aws:SourceIp`: no broader than /8 (IPv4) or /32 (IPv6).
    /// (AWS exempts the RFC 1918 private ranges, which are /8 to /16 and so narrow anyway.)
    pub(crate) fn is_narrow(&self) -> bool {
        match self.net {
            IpAddr::V4(_) => self.prefix >= 8,
            IpAddr::V6(_) => self.prefix >= 32,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// One policy value of a condition, parsed for its operator.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Str(Pattern),
    Num(f64),
    /// Unix time in nanoseconds.
    Date(i128),
    Bool(bool),
    Bin(Vec<u8>),
    Ip(Cidr),
    /// The six colon-separated segments of an ARN pattern, or one pattern for the whole value
    /// when it has fewer than six segments.
    Arn(Vec<Pattern>),
    /// A typed value (number, date, ...) with a policy variable: resolved, then parsed, when
    /// evaluated.
    Dynamic(Pattern),
    /// `Null`'s `true` (the key must be absent) or `false` (present).
    Null(bool),
}

/// One condition: an operator applied to one key with its values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Condition {
    kind: Kind,
    negated: bool,
    set: SetOp,
    if_exists: bool,
    /// The key, lowercased (condition keys are case-insensitive).
    key: String,
    values: Vec<Value>,
}

impl Condition {
    /// The condition key, lowercased.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

/// Parses an operator name: its family, whether it is negated, its set qualifier and whether
/// it ends in `IfExists`. None for an unknown operator.
fn parse_operator(name: &str) -> Option<(Kind, bool, SetOp, bool)> {
    let (set, rest) = if let Some(rest) = strip_prefix_fold(name, "ForAnyValue:") {
        (SetOp::AnyValue, rest)
    } else if let Some(rest) = strip_prefix_fold(name, "ForAllValues:") {
        (SetOp::AllValues, rest)
    } else {
        (SetOp::Single, name)
    };
    let (if_exists, base) = match rest.len().checked_sub("IfExists".len()) {
        Some(at) if rest.is_char_boundary(at) && rest[at..].eq_ignore_ascii_case("IfExists") => {
            (true, &rest[..at])
        }
        _ => (false, rest),
    };
    let base = base.to_ascii_lowercase();
    let (kind, negated) = match base.as_str() {
        "stringequals" => (
            Kind::Str {
                fold: false,
                like: false,
            },
            false,
        ),
        "stringnotequals" => (
            Kind::Str {
                fold: false,
                like: false,
            },
            true,
        ),
        "stringequalsignorecase" => (
            Kind::Str {
                fold: true,
                like: false,
            },
            false,
        ),
        "stringnotequalsignorecase" => (
            Kind::Str {
                fold: true,
                like: false,
            },
            true,
        ),
        "stringlike" => (
            Kind::Str {
                fold: false,
                like: true,
            },
            false,
        ),
        "stringnotlike" => (
            Kind::Str {
                fold: false,
                like: true,
            },
            true,
        ),
        "numericequals" => (Kind::Num(Cmp::Eq), false),
        "numericnotequals" => (Kind::Num(Cmp::Eq), true),
        "numericlessthan" => (Kind::Num(Cmp::Lt), false),
        "numericlessthanequals" => (Kind::Num(Cmp::Le), false),
        "numericgreaterthan" => (Kind::Num(Cmp::Gt), false),
        "numericgreaterthanequals" => (Kind::Num(Cmp::Ge), false),
        "dateequals" => (Kind::Date(Cmp::Eq), false),
        "datenotequals" => (Kind::Date(Cmp::Eq), true),
        "datelessthan" => (Kind::Date(Cmp::Lt), false),
        "datelessthanequals" => (Kind::Date(Cmp::Le), false),
        "dategreaterthan" => (Kind::Date(Cmp::Gt), false),
        "dategreaterthanequals" => (Kind::Date(Cmp::Ge), false),
        "bool" => (Kind::Bool, false),
        "binaryequals" => (Kind::Binary, false),
        "ipaddress" => (Kind::Ip, false),
        "notipaddress" => (Kind::Ip, true),
        "arnequals" | "arnlike" => (Kind::Arn, false),
        "arnnotequals" | "arnnotlike" => (Kind::Arn, true),
        "null" if !if_exists => (Kind::Null, false),
        _ => return None,
    };
    Some((kind, negated, set, if_exists))
}

fn strip_prefix_fold<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Parses a statement's `Condition` element.
pub(crate) fn parse_block(block: &Json, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let Json::Object(operators) = block else {
        return Err(malformed("Condition must be an object"));
    };
    let mut out = Vec::new();
    for (operator, keys) in operators {
        let Some((kind, negated, set, if_exists)) = parse_operator(operator) else {
            return Err(malformed(format!("Invalid Condition type: {operator}")));
        };
        let Json::Object(keys) = keys else {
            return Err(malformed(format!(
                "Condition {operator} must map condition keys to values"
            )));
        };
        if keys.is_empty() {
            return Err(malformed(format!("Condition {operator} has no condition keys")));
        }
        let mut lowered: Vec<String> = Vec::with_capacity(keys.len());
        for (key, values) in keys {
            let key_lower = key.to_ascii_lowercase();
            if key.is_empty() {
                return Err(malformed("Condition key must not be empty"));
            }
            if lowered.contains(&key_lower) {
                return Err(malformed(format!(
                    "Condition {operator} names the key {key} twice"
                )));
            }
            let texts = condition_values(values, operator, key)?;
            let mut parsed = Vec::with_capacity(texts.len());
            for text in &texts {
                parsed.push(parse_value(kind, text, variables).ok_or_else(|| {
                    malformed(format!("Invalid Condition value for {operator} {key}: {text}"))
                })?);
            }
            lowered.push(key_lower.clone());
            out.push(Condition {
                kind,
                negated,
                set,
                if_exists,
                key: key_lower,
                values: parsed,
            });
        }
    }
    Ok(out)
}

/// A condition's values as text: a string, number or boolean, or an array of them.
fn condition_values(values: &Json, operator: &str, key: &str) -> Result<Vec<String>, PolicyError> {
    let scalar = |v: &Json| -> Option<String> {
        match v {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(n.clone()),
            Json::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let bad = || malformed(format!("Invalid Condition value for {operator} {key}"));
    match values {
        Json::Array(items) => {
            if items.is_empty() {
                return Err(bad());
            }
            items.iter().map(|v| scalar(v).ok_or_else(bad)).collect()
        }
        other => Ok(vec![scalar(other).ok_or_else(bad)?]),
    }
}

/// Parses one policy value for `kind`. None when it is not valid for the operator.
fn parse_value(kind: Kind, text: &str, variables: bool) -> Option<Value> {
    let literal = Syntax {
        wildcards: false,
        variables,
        fold_case: false,
    };
    if !matches!(kind, Kind::Str { .. } | Kind::Arn | Kind::Null) && variables {
        let p = Pattern::compile(text, literal);
        if p.has_variables() {
            return Some(Value::Dynamic(p));
        }
    }
    Some(match kind {
        Kind::Str { fold, like } => Value::Str(Pattern::compile(
            text,
            Syntax {
                wildcards: like,
                variables,
                fold_case: fold,
            },
        )),
        Kind::Num(_) => Value::Num(parse_number(text)?),
        Kind::Date(_) => Value::Date(parse_date(text)?),
        Kind::Bool => Value::Bool(parse_bool(text)?),
        Kind::Null => Value::Null(parse_bool(text)?),
        Kind::Binary => Value::Bin(decode_base64(text)?),
        Kind::Ip => Value::Ip(Cidr::parse(text)?),
        Kind::Arn => {
            let glob = Syntax {
                wildcards: true,
                variables,
                fold_case: false,
            };
            let segments: Vec<&str> = text.splitn(6, ':').collect();
            if segments.len() == 6 {
                Value::Arn(segments.iter().map(|s| Pattern::compile(s, glob)).collect())
            } else {
                Value::Arn(vec![Pattern::compile(text, glob)])
            }
        }
    })
}

impl Condition {
    /// Whether this condition holds for the request's context.
    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let values = ctx.lookup(&self.key);
        if self.kind == Kind::Null {
            let absent = values.is_none();
            return self
                .values
                .iter()
                .any(|v| matches!(v, Value::Null(want_absent) if *want_absent == absent));
        }
        let Some(values) = values else {
            return match self.set {
                SetOp::AllValues => true,
                SetOp::AnyValue => self.if_exists,
                SetOp::Single => self.if_exists || self.negated,
            };
        };
        match self.set {
            SetOp::AnyValue => values.iter().any(|v| self.one(v, ctx)),
            SetOp::AllValues => values.iter().all(|v| self.one(v, ctx)),
            SetOp::Single if self.negated => values.iter().all(|v| self.one(v, ctx)),
            SetOp::Single => values.iter().any(|v| self.one(v, ctx)),
        }
    }

    /// The operator's verdict on one request value (negation applied).
    fn one(&self, value: &str, ctx: &Context) -> bool {
        self.matches_any(value, ctx) != self.negated
    }

    /// Whether one request value matches any of the policy values (positive sense).
    fn matches_any(&self, value: &str, ctx: &Context) -> bool {
        match self.kind {
            Kind::Str { .. } => self.values.iter().any(|pv| match pv {
                Value::Str(p) => p.matches(value, ctx),
                _ => false,
            }),
            Kind::Num(cmp) => {
                let Some(x) = parse_number(value) else {
                    return false;
                };
                self.values.iter().any(|pv| match pv {
                    Value::Num(n) => cmp.holds(x, *n),
                    Value::Dynamic(p) => dynamic(p, ctx, parse_number).is_some_and(|n| cmp.holds(x, n)),
                    _ => false,
                })
            }
            Kind::Date(cmp) => {
                let Some(x) = parse_date(value) else {
                    return false;
                };
                self.values.iter().any(|pv| match pv {
                    Value::Date(d) => cmp.holds(x, *d),
                    Value::Dynamic(p) => dynamic(p, ctx, parse_date).is_some_and(|d| cmp.holds(x, d)),
                    _ => false,
                })
            }
            Kind::Bool => {
                let Some(x) = parse_bool(value) else {
                    return false;
                };
                self.values.iter().any(|pv| match pv {
                    Value::Bool(b) => x == *b,
                    Value::Dynamic(p) => dynamic(p, ctx, parse_bool) == Some(x),
                    _ => false,
                })
            }
            Kind::Binary => {
                let Some(x) = decode_base64(value) else {
                    return false;
                };
                self.values.iter().any(|pv| match pv {
                    Value::Bin(b) => x == *b,
                    Value::Dynamic(p) => dynamic(p, ctx, decode_base64).is_some_and(|b| b == x),
                    _ => false,
                })
            }
            Kind::Ip => {
                let Ok(ip) = value.trim().parse::<IpAddr>() else {
                    return false;
                };
                self.values.iter().any(|pv| match pv {
                    Value::Ip(c) => c.contains(ip),
                    Value::Dynamic(p) => dynamic(p, ctx, Cidr::parse).is_some_and(|c| c.contains(ip)),
                    _ => false,
                })
            }
            Kind::Arn => self.values.iter().any(|pv| match pv {
                Value::Arn(segments) if segments.len() == 6 => {
                    let mut parts = value.splitn(6, ':');
                    segments
                        .iter()
                        .all(|s| parts.next().is_some_and(|p| s.matches(p, ctx)))
                }
                Value::Arn(whole) => whole.iter().all(|p| p.matches(value, ctx)),
                _ => false,
            }),
            Kind::Null => false,
        }
    }

    /// Whether this condition, on its own, keeps a statement whose principal is public from
    /// being public under AWS's rule: it pins one of the keys AWS lists to fixed values
    /// (no wildcard, no policy variable), or `aws:SourceIp` to CIDRs no broader than /8 (IPv4)
    /// or /32 (IPv6). A negated operator, `IfExists` or `ForAllValues:` (which all hold when
    /// the key is absent) never pins.
    pub(crate) fn pins_to_fixed_values(&self) -> bool {
        if self.negated || self.if_exists || self.set == SetOp::AllValues {
            return false;
        }
        if self.key == "aws:sourceip" {
            return self.kind == Kind::Ip
                && self
                    .values
                    .iter()
                    .all(|v| matches!(v, Value::Ip(c) if c.is_narrow()));
        }
        const FIXED_KEYS: &[&str] = &[
            "aws:sourcearn",
            "aws:sourcevpc",
            "aws:sourcevpce",
            "aws:sourceowner",
            "aws:sourceaccount",
            "aws:principalorgid",
            "aws:principalaccount",
            "aws:principalarn",
            "aws:principalorgpaths",
            "aws:userid",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
            "s3:dataaccesspointarn",
            "s3:dataaccesspointaccount",
        ];
        if !FIXED_KEYS.contains(&self.key.as_str()) {
            return false;
        }
        if !matches!(self.kind, Kind::Str { .. } | Kind::Arn) {
            return false;
        }
        self.values.iter().all(|v| {
            let text = match v {
                Value::Str(p) if !p.has_variables() => p.literal_text(),
                Value::Arn(segments) if segments.iter().all(|s| !s.has_variables()) => Some(
                    segments
                        .iter()
                        .filter_map(Pattern::literal_text)
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
                _ => None,
            };
            let Some(text) = text else {
                return false;
            };
            if !text.contains(['*', '?']) {
                return true;
            }
            match self.key.as_str() {
                // "outside the pattern AROLEID:*": a role's sessions.
                "aws:userid" => text
                    .strip_suffix(":*")
                    .is_some_and(|id| !id.is_empty() && !id.contains(['*', '?', ':'])),
                // A wildcard in the access point name is allowed when the account is fixed.
                "s3:dataaccesspointarn" => {
                    let segments: Vec<&str> = text.splitn(6, ':').collect();
                    segments.len() == 6
                        && segments[..5].iter().all(|s| !s.contains(['*', '?']))
                        && !segments[4].is_empty()
                        && segments[5].starts_with("accesspoint/")
                }
                _ => false,
            }
        })
    }
}

/// Resolves a dynamic value and parses it.
fn dynamic<T>(p: &Pattern, ctx: &Context, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    let text: Cow<'_, str> = p.resolve_text(ctx)?;
    parse(&text)
}

/// `true` / `false`, case-insensitive.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An integer or decimal number (optional sign, optional fraction, optional exponent).
pub(crate) fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A date: ISO 8601 (`2026-01-01`, `2026-01-01T00:00:00Z`, fractions and `±hh:mm` offsets;
/// no offset means UTC) or seconds since the epoch (`1767225600`, `1767225600.5`). Returns
/// Unix time in nanoseconds.
pub(crate) fn parse_date(text: &str) -> Option<i128> {
    let t = text.trim();
    let body = t.strip_prefix('-').unwrap_or(t);
    let epoch = body.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && body.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && body.bytes().filter(|&c| c == b'.').count() <= 1;
    if epoch {
        return parse_epoch(t);
    }
    parse_iso8601(t)
}

fn parse_epoch(t: &str) -> Option<i128> {
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (secs, frac) = match t.split_once('.') {
        Some((s, f)) => (s, f),
        None => (t, ""),
    };
    if secs.is_empty() || secs.len() > 15 {
        return None;
    }
    let secs: i128 = secs.parse().ok()?;
    let mut nanos: i128 = 0;
    for (n, c) in frac.bytes().enumerate() {
        if n < 9 {
            nanos = nanos * 10 + i128::from(c - b'0');
        }
    }
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    let total = secs * 1_000_000_000 + nanos;
    Some(if negative { -total } else { total })
}

/// Reads `n` ASCII digits at `*i`.
fn digits(b: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    let s = b.get(*i..*i + n)?;
    if !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    *i += n;
    Some(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

fn parse_iso8601(t: &str) -> Option<i128> {
    let b = t.as_bytes();
    let mut i = 0;
    let year = digits(b, &mut i, 4)?;
    expect(b, &mut i, b'-')?;
    let month = digits(b, &mut i, 2)?;
    expect(b, &mut i, b'-')?;
    let day = digits(b, &mut i, 2)?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut offset_secs: i32 = 0;
    if i < b.len() {
        if !matches!(b[i], b'T' | b't' | b' ') {
            return None;
        }
        i += 1;
        hour = digits(b, &mut i, 2)?;
        expect(b, &mut i, b':')?;
        minute = digits(b, &mut i, 2)?;
        if b.get(i) == Some(&b':') {
            i += 1;
            second = digits(b, &mut i, 2)?;
            if matches!(b.get(i), Some(b'.' | b',')) {
                i += 1;
                let start = i;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    if i - start < 9 {
                        nanos = nanos * 10 + u32::from(b[i] - b'0');
                    }
                    i += 1;
                }
                let n = i - start;
                if n == 0 {
                    return None;
                }
                for _ in n.min(9)..9 {
                    nanos *= 10;
                }
            }
        }
        match b.get(i) {
            None => {}
            Some(b'Z' | b'z') => i += 1,
            Some(&sign @ (b'+' | b'-')) => {
                i += 1;
                let oh = digits(b, &mut i, 2)?;
                if b.get(i) == Some(&b':') {
                    i += 1;
                }
                let om = if i < b.len() { digits(b, &mut i, 2)? } else { 0 };
                if oh > 23 || om > 59 {
                    return None;
                }
                let secs = i32::try_from(oh * 3600 + om * 60).ok()?;
                offset_secs = if sign == b'-' { -secs } else { secs };
            }
            Some(_) => return None,
        }
        if i != b.len() {
            return None;
        }
    }
    let time = time::Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let offset = time::UtcOffset::from_whole_seconds(offset_secs).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .unix_timestamp_nanos(),
    )
}

/// Standard base64 (padding optional).
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().as_bytes();
    let t = t
        .strip_suffix(b"==")
        .or_else(|| t.strip_suffix(b"="))
        .unwrap_or(t);
    if t.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in t {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("10"), Some(10.0));
        assert_eq!(parse_number("-1.5"), Some(-1.5));
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("1e3"), Some(1000.0));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("NaN"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("1.2.3"), None);
    }

    #[test]
    fn dates() {
        let day = parse_date("2026-01-01").unwrap();
        assert_eq!(day, 1_767_225_600 * 1_000_000_000);
        assert_eq!(parse_date("2026-01-01T00:00:00Z"), Some(day));
        assert_eq!(parse_date("2026-01-01T00:00:00.000Z"), Some(day));
        assert_eq!(parse_date("2026-01-01T01:00:00+01:00"), Some(day));
        assert_eq!(parse_date("2025-12-31T23:00:00-0100"), Some(day));
        assert_eq!(parse_date("2026-01-01T00:00Z"), Some(day));
        assert_eq!(parse_date("1767225600"), Some(day));
        assert_eq!(parse_date("1767225600.5"), Some(day + 500_000_000));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-01-01T25:00:00Z"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("2026-01-01X"), None);
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let c = Cidr::parse("10.1.2.3/16").unwrap();
        assert!(c.contains("10.1.0.0".parse().unwrap()));
        let c = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(c.contains("8.8.8.8".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        let c = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!c.contains("2001:db9::5".parse().unwrap()));
        let c = Cidr::parse("192.0.2.7").unwrap();
        assert!(c.contains("192.0.2.7".parse().unwrap()));
        assert!(!c.contains("192.0.2.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("10.0.0/8").is_none());
        assert!(Cidr::parse("10.0.0.0/").is_none());
        assert!(Cidr::parse("10.0.0.0/-1").is_none());
        assert!(Cidr::parse("::/129").is_none());
        assert!(Cidr::parse("0.0.0.0/1").is_some_and(|c| !c.is_narrow()));
        assert!(Cidr::parse("10.0.0.0/8").is_some_and(|c| c.is_narrow()));
        assert!(Cidr::parse("2001:db8::/16").is_some_and(|c| !c.is_narrow()));
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(decode_base64("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(decode_base64(""), Some(Vec::new()));
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("a$=="), None);
    }

    #[test]
    fn operators() {
        assert_eq!(
            parse_operator("ForAnyValue:StringLikeIfExists"),
            Some((
                Kind::Str {
                    fold: false,
                    like: true
                },
                false,
                SetOp::AnyValue,
                true
            ))
        );
        assert_eq!(
            parse_operator("NotIpAddress"),
            Some((Kind::Ip, true, SetOp::Single, false))
        );
        assert_eq!(parse_operator("NullIfExists"), None);
        assert_eq!(parse_operator("StringEqualz"), None);
        assert_eq!(parse_operator("ForSomeValues:StringEquals"), None);
    }
}
