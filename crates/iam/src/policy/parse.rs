//! Parsing and validation of a policy document, with AWS's `MalformedPolicy` reasons.
//!
//! Checks, in order: size, JSON (an object, no duplicate keys), the top-level fields
//! (`Version`, `Id`, `Statement`, nothing else), then each statement: its fields (`Sid`,
//! `Effect`, `Principal`/`NotPrincipal`, `Action`/`NotAction`, `Resource`/`NotResource`,
//! `Condition`, nothing else), exactly one of each pair, the principal rule of the policy's
//! kind, every action (`*` or `service:name` with a known service, and a real S3 action when
//! an `s3:` name has no wildcard), every resource, every condition (known operators, values
//! of the operator's type), and unique `Sid`s.

use super::condition;
use super::json::{self, Json};
use super::pattern::{Pattern, Syntax};
use super::{
    Context, Effect, MAX_POLICY_BYTES, Patterns, Policy, PolicyError, PolicyKind, Principals, Statement,
    Version, malformed,
};

const NOT_JSON: &str = "Policies must be valid JSON and the first byte must be '{'";
const INVALID_ACTION: &str = "Policy has invalid action";
const INVALID_RESOURCE: &str = "Policy has invalid resource";
const INVALID_PRINCIPAL: &str = "Invalid principal in policy";

/// Parses `text` as a policy of `kind`.
pub(crate) fn parse(text: &[u8], kind: PolicyKind<'_>) -> Result<Policy, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(malformed("Policies must be less than 20 KB"));
    }
    let document = json::parse(text).map_err(|duplicate| match duplicate {
        Some(key) => malformed(format!("Duplicate key in policy: {key}")),
        None => malformed(NOT_JSON),
    })?;
    let Json::Object(members) = document else {
        return Err(malformed(NOT_JSON));
    };

    let mut version = None;
    let mut id = None;
    let mut statement = None;
    for (name, value) in &members {
        match name.as_str() {
            "Version" => version = Some(value),
            "Id" => id = Some(value),
            "Statement" => statement = Some(value),
            other => return Err(malformed(format!("Unknown field {other}"))),
        }
    }

    let version = match version {
        None => Version::V2008,
        Some(Json::String(v)) if v == "2012-10-17" => Version::V2012,
        Some(Json::String(v)) if v == "2008-10-17" => Version::V2008,
        Some(_) => {
            return Err(malformed("The policy must contain a valid version string"));
        }
    };
    let id = match id {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("Id must be a string")),
    };

    let statements: Vec<&Json> = match statement {
        None => return Err(malformed("Missing required field Statement")),
        Some(Json::Array(items)) => items.iter().collect(),
        Some(one @ Json::Object(_)) => vec![one],
        Some(_) => return Err(malformed("Statement must be an object or an array of objects")),
    };
    if statements.is_empty() {
        return Err(malformed("Could not parse the policy: Statement is empty!"));
    }

    let variables = version == Version::V2012;
    let mut parsed: Vec<Statement> = Vec::with_capacity(statements.len());
    for s in statements {
        let statement = parse_statement(s, kind, variables)?;
        if let Some(sid) = &statement.sid
            && parsed.iter().any(|p| p.sid.as_ref() == Some(sid))
        {
            return Err(malformed("Statement IDs (SID) in a single policy must be unique"));
        }
        parsed.push(statement);
    }

    Ok(Policy {
        version,
        id,
        tests_existing_object_tags: Policy::find_existing_object_tag_tests(&parsed),
        statements: parsed,
    })
}

/// Parses one statement.
fn parse_statement(json: &Json, kind: PolicyKind<'_>, variables: bool) -> Result<Statement, PolicyError> {
    let Json::Object(members) = json else {
        return Err(malformed("Statement must be an object or an array of objects"));
    };
    let mut sid = None;
    let mut effect = None;
    let mut principal = None;
    let mut not_principal = None;
    let mut action = None;
    let mut not_action = None;
    let mut resource = None;
    let mut not_resource = None;
    let mut condition = None;
    for (name, value) in members {
        let slot = match name.as_str() {
            "Sid" => &mut sid,
            "Effect" => &mut effect,
            "Principal" => &mut principal,
            "NotPrincipal" => &mut not_principal,
            "Action" => &mut action,
            "NotAction" => &mut not_action,
            "Resource" => &mut resource,
            "NotResource" => &mut not_resource,
            "Condition" => &mut condition,
            other => return Err(malformed(format!("Unknown field {other}"))),
        };
        *slot = Some(value);
    }

    let sid = match sid {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("Sid must be a string")),
    };

    let effect = match effect {
        None => return Err(malformed("Missing required field Effect")),
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(Json::String(e)) => return Err(malformed(format!("Invalid effect: {e}"))),
        Some(_) => return Err(malformed("Invalid effect")),
    };

    let principals = match kind {
        PolicyKind::Identity => {
            if principal.is_some() || not_principal.is_some() {
                return Err(malformed("Policy document should not specify a principal."));
            }
            None
        }
        PolicyKind::Bucket { .. } => Some(Box::new(match (principal, not_principal) {
            (None, None) => return Err(malformed("Missing required field Principal")),
            (Some(_), Some(_)) => {
                return Err(malformed(
                    "Statement cannot contain both Principal and NotPrincipal",
                ));
            }
            (Some(p), None) => parse_principal(p, false)?,
            (None, Some(p)) => parse_principal(p, true)?,
        })),
    };

    let (action_values, negated) = match (action, not_action) {
        (None, None) => return Err(malformed("Missing required field Action")),
        (Some(_), Some(_)) => {
            return Err(malformed("Statement cannot contain both Action and NotAction"));
        }
        (Some(a), None) => (a, false),
        (None, Some(a)) => (a, true),
    };
    let action_texts = string_list(action_values).ok_or_else(|| malformed(INVALID_ACTION))?;
    let action_negated = negated;
    let mut actions = Vec::with_capacity(action_texts.len());
    for a in &action_texts {
        if !valid_action(a) {
            return Err(malformed(INVALID_ACTION));
        }
        let p = Pattern::compile(
            a,
            Syntax {
                wildcards: true,
                variables: false,
                fold_case: true,
            },
        );
        actions.push(p);
    }

    // MinIO's admin policies name no resource (`admin:*` acts on the deployment): an identity
    // statement whose actions are all outside S3 applies to every resource when it names none.
    let all_resources = Json::String("*".to_owned());
    let non_s3_only = matches!(kind, PolicyKind::Identity)
        && !action_texts.is_empty()
        && action_texts.iter().all(|a| {
            let lower = a.to_ascii_lowercase();
            lower.starts_with("admin:") || lower.starts_with("kms:") || lower.starts_with("sts:")
        });
    let (resource_values, negated) = match (resource, not_resource) {
        (None, None) if non_s3_only => (&all_resources, false),
        (None, None) => return Err(malformed("Missing required field Resource")),
        (Some(_), Some(_)) => {
            return Err(malformed(
                "Statement cannot contain both Resource and NotResource",
            ));
        }
        (Some(r), None) => (r, false),
        (None, Some(r)) => (r, true),
    };
    let resource_texts = string_list(resource_values).ok_or_else(|| malformed(INVALID_RESOURCE))?;
    let resource_negated = negated;
    let mut resources = Vec::with_capacity(resource_texts.len());
    for r in &resource_texts {
        let valid = match kind {
            PolicyKind::Identity => valid_identity_resource(r),
            PolicyKind::Bucket { bucket } => valid_bucket_resource(r, bucket),
        };
        if !valid {
            return Err(malformed(INVALID_RESOURCE));
        }
        let p = Pattern::compile(
            r,
            Syntax {
                wildcards: true,
                variables,
                fold_case: false,
            },
        );
        resources.push(p);
    }

    let conditions = match condition {
        None => Vec::new(),
        Some(block) => condition::parse_block(block, variables)?,
    };

    Ok(Statement {
        sid,
        effect,
        actions: Patterns::new(action_negated, true, actions),
        resources: Patterns::new(resource_negated, false, resources),
        principals,
        conditions,
    })
}

/// A string or a non-empty array of strings.
fn string_list(json: &Json) -> Option<Vec<String>> {
    match json {
        Json::String(s) => Some(vec![s.clone()]),
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `*`, or `service:name` with a service Strata answers for (`s3`, `admin`, `sts`, `kms`,
/// any case) and a name of letters, digits and wildcards; an `s3:` name without a wildcard
/// must be a real S3 action.
fn valid_action(action: &str) -> bool {
    if action == "*" {
        return true;
    }
    let Some((service, name)) = action.split_once(':') else {
        return false;
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
    {
        return false;
    }
    let wildcard = name.contains(['*', '?']);
    if service.eq_ignore_ascii_case("s3") {
        wildcard || crate::actions::is_known_action(action)
    } else {
        ["admin", "sts", "kms"]
            .iter()
            .any(|s| service.eq_ignore_ascii_case(s))
    }
}

/// `*`, or an ARN: `arn:` and six colon-separated parts, the last not empty.
fn valid_identity_resource(resource: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    parts.len() == 6 && parts[0] == "arn" && !parts[5].is_empty()
}

/// `*`, or `arn:aws:s3:::` followed by a bucket part (up to the first `/`) that names the
/// policy's bucket (wildcards allowed; a bucket part with a policy variable is accepted).
fn valid_bucket_resource(resource: &str, bucket: &str) -> bool {
    if resource == "*" {
        return true;
    }
    let Some(rest) = resource.strip_prefix("arn:aws:s3:::") else {
        return false;
    };
    let bucket_part = rest.split('/').next().unwrap_or_default();
    if bucket_part.is_empty() {
        return false;
    }
    if bucket_part.contains("${") {
        return true;
    }
    Pattern::compile(
        bucket_part,
        Syntax {
            wildcards: true,
            variables: false,
            fold_case: false,
        },
    )
    .matches(bucket, &Context::new())
}

/// Parses `Principal` / `NotPrincipal`: `"*"` or an object of `AWS`, `CanonicalUser`,
/// `Service`, `Federated` to a string or a list of strings. Only `AWS` may be `*`; no value
/// may hold a partial wildcard (AWS: "You cannot use a wildcard to match part of a principal
/// name or ARN").
fn parse_principal(json: &Json, negated: bool) -> Result<Principals, PolicyError> {
    let mut p = Principals {
        negated,
        any: false,
        aws: Vec::new(),
        canonical: Vec::new(),
        service: Vec::new(),
        federated: Vec::new(),
    };
    let bad = || malformed(INVALID_PRINCIPAL);
    match json {
        Json::String(s) if s == "*" => p.any = true,
        Json::Object(members) if !members.is_empty() => {
            for (name, value) in members {
                let values = string_list(value).ok_or_else(bad)?;
                for v in values {
                    if v.is_empty() {
                        return Err(bad());
                    }
                    if name == "AWS" && v == "*" {
                        p.any = true;
                        continue;
                    }
                    if v.contains(['*', '?']) {
                        return Err(bad());
                    }
                    match name.as_str() {
                        "AWS" => p.aws.push(v),
                        "CanonicalUser" => p.canonical.push(v),
                        "Service" => p.service.push(v),
                        "Federated" => p.federated.push(v),
                        _ => return Err(bad()),
                    }
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(p)
}
