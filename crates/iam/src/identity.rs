//! The stored form of identities and policies, and the built-in policies.
//!
//! Records live under the `iam` namespace of the system records, one per entity:
//! `account/<id>`, `user/<access key>`, `group/<name>`, `svcacct/<access key>`,
//! `policy/<name>`, plus [`SEAL_CHECK_KEY`]. Values are MessagePack of the structs below.
//! Secret keys are only ever stored sealed ([`crate::seal`]).
//!
//! Accounts: users, groups and policies carry the id of the account they belong to; a record
//! without one belongs to the deployment's own (root) account, which is how every record
//! written before accounts existed reads. Access keys, group names and policy names stay
//! unique across the deployment (as bucket names are).

use serde::{Deserialize, Serialize};

/// Key of the record that proves which root credentials sealed the store.
pub const SEAL_CHECK_KEY: &str = "seal-check";
/// Plaintext sealed in the [`SEAL_CHECK_KEY`] record.
pub const SEAL_CHECK_PLAINTEXT: &[u8] = b"strata iam seal check";
/// Record key prefix of accounts.
pub const ACCOUNT_PREFIX: &str = "account/";
/// Record key prefix of users.
pub const USER_PREFIX: &str = "user/";
/// Record key prefix of groups.
pub const GROUP_PREFIX: &str = "group/";
/// Record key prefix of service accounts.
pub const SERVICE_ACCOUNT_PREFIX: &str = "svcacct/";
/// Record key prefix of canned policies.
pub const POLICY_PREFIX: &str = "policy/";
/// Record key prefix of policies mapped to an LDAP user's DN.
pub const LDAP_USER_PREFIX: &str = "ldap-user/";
/// Record key prefix of policies mapped to an LDAP group's DN.
pub const LDAP_GROUP_PREFIX: &str = "ldap-group/";

/// Canned policies mapped to an LDAP DN (a user or a group of the directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnPolicyRecord {
    /// The DN as given.
    pub dn: String,
    /// The policy names.
    pub policies: Vec<String>,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
}

/// The form DNs are compared in: lower case, no spaces around `,` and `=`.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Whether an identity or group may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Status {
    /// Usable.
    #[default]
    Enabled,
    /// Refused until enabled again.
    Disabled,
}

impl Status {
    /// MinIO's spelling: `enabled` / `disabled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
        }
    }

    /// Parses MinIO's spellings (case-insensitive): `enabled`/`disabled`, and `on`/`off` as
    /// MinIO spells a service account's.
    pub fn parse(text: &str) -> Option<Status> {
        if text.eq_ignore_ascii_case("enabled") || text.eq_ignore_ascii_case("on") {
            Some(Status::Enabled)
        } else if text.eq_ignore_ascii_case("disabled") || text.eq_ignore_ascii_case("off") {
            Some(Status::Disabled)
        } else {
            None
        }
    }
}

/// An account (a tenant): its own root credentials, users, groups, policies and buckets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The 12-digit account id.
    pub id: String,
    /// Display name (unique in the deployment).
    pub name: String,
    /// The account root's access key.
    pub root_access_key: String,
    /// The account root's secret key, sealed for `root_access_key`.
    pub sealed_secret: Vec<u8>,
    /// Enabled or disabled (a disabled account's identities cannot sign).
    pub status: Status,
    /// Creation, Unix seconds.
    pub created_unix: i64,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
}

/// A user (the user name is its access key, as in MinIO).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Access key, also the user name.
    pub access_key: String,
    /// The secret key, sealed for `access_key`.
    pub sealed_secret: Vec<u8>,
    /// Enabled or disabled.
    pub status: Status,
    /// Names of the canned policies attached to the user.
    pub policies: Vec<String>,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
    /// The account it belongs to; none: the deployment's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A group of users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Group name.
    pub name: String,
    /// Member user names, sorted.
    pub members: Vec<String>,
    /// Enabled or disabled (a disabled group grants nothing).
    pub status: Status,
    /// Names of the canned policies attached to the group.
    pub policies: Vec<String>,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
    /// The account it belongs to; none: the deployment's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A service account: child credentials of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountRecord {
    /// Its access key.
    pub access_key: String,
    /// The secret key, sealed for `access_key`.
    pub sealed_secret: Vec<u8>,
    /// The user whose rights it carries (the root user's access key for root's).
    pub parent: String,
    /// An embedded policy (JSON) that narrows the parent's rights; none inherits them all.
    pub policy: Option<String>,
    /// Expiry, Unix seconds; none never expires.
    pub expiry_unix: Option<i64>,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Enabled or disabled.
    pub status: Status,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
}

/// A canned policy added through the admin API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// Its name.
    pub name: String,
    /// The policy document as given.
    pub document: String,
    /// Creation, Unix seconds.
    pub created_unix: i64,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
    /// The account it belongs to; none: the deployment's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The built-in canned policies (MinIO's), by name: they can be attached but not changed or
/// removed.
pub const BUILTIN_POLICIES: &[(&str, &str)] = &[
    (
        "readwrite",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "readonly",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "writeonly",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "diagnostics",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:ServerTrace","admin:Profiling","admin:ConsoleLog","admin:ServerInfo","admin:TopLocksInfo","admin:OBDInfo","admin:BandwidthMonitor","admin:Prometheus"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
    (
        "consoleAdmin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["admin:*"],"Resource":["arn:aws:s3:::*"]},{"Effect":"Allow","Action":["kms:*"],"Resource":["arn:aws:s3:::*"]},{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#,
    ),
];

/// Whether `name` is a built-in policy.
pub fn is_builtin_policy(name: &str) -> bool {
    BUILTIN_POLICIES.iter().any(|(n, _)| *n == name)
}

/// Longest user, group, policy or service-account name, in characters.
pub const NAME_CHARS_MAX: usize = 128;

/// Checks a user name / access key: 3 to 128 characters, none of them whitespace, control,
/// `/`, `,` or `=` (they would break ARNs, MinIO's comma lists and condition values).
pub fn valid_access_key(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if !(3..=NAME_CHARS_MAX).contains(&n) {
        return Err(format!(
            "an access key must be 3 to {NAME_CHARS_MAX} characters long"
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | ',' | '=' | ':'))
    {
        return Err(
            "an access key may not contain whitespace, control characters, '/', ',', '=' or ':'".to_string(),
        );
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        // All digits would read as an account id in policies.
        return Err("an access key may not be all digits".to_string());
    }
    Ok(())
}

/// Checks a secret key: 8 to 40 characters, no control characters (MinIO's bounds).
pub fn valid_secret_key(secret: &str) -> Result<(), String> {
    let n = secret.chars().count();
    if !(8..=40).contains(&n) || secret.chars().any(char::is_control) {
        return Err("a secret key must be 8 to 40 characters long without control characters".to_string());
    }
    Ok(())
}

/// Checks a group or policy name: 1 to 128 characters of letters, digits and `+=,.@_-`.
pub fn valid_entity_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if !(1..=NAME_CHARS_MAX).contains(&n)
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-'))
    {
        return Err(format!(
            "a name must be 1 to {NAME_CHARS_MAX} letters, digits or any of +=,.@_-"
        ));
    }
    Ok(())
}

/// The 12-digit account id of a deployment's root account, stable for the deployment's
/// lifetime: derived from its deployment id (a UUID, as a number).
pub fn deployment_account_id(deployment_id: u128) -> String {
    format!("{:012}", deployment_id % 1_000_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_have_twelve_digits() {
        assert_eq!(deployment_account_id(42), "000000000042");
        let id = deployment_account_id(u128::MAX);
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_access_key("alice").is_ok());
        assert!(valid_access_key("al").is_err());
        assert!(valid_access_key("al ice").is_err());
        assert!(valid_access_key("a/b/c").is_err());
        assert!(valid_access_key("123456789012").is_err());
        assert!(valid_secret_key("short").is_err());
        assert!(valid_secret_key("longenough").is_ok());
        assert!(valid_entity_name("team-a").is_ok());
        assert!(valid_entity_name("team a").is_err());
        assert!(valid_entity_name("").is_err());
    }

    #[test]
    fn dns_compare_normalized() {
        assert_eq!(
            normalize_dn("CN=Readers, OU=Groups ,dc=Strata,dc=test"),
            "cn=readers,ou=groups,dc=strata,dc=test"
        );
    }

    #[test]
    fn status_spelling() {
        assert_eq!(Status::parse("Enabled"), Some(Status::Enabled));
        assert_eq!(Status::parse("disabled"), Some(Status::Disabled));
        assert_eq!(Status::parse("off"), Some(Status::Disabled));
        assert_eq!(Status::parse("ON"), Some(Status::Enabled));
        assert_eq!(Status::parse("paused"), None);
        assert_eq!(Status::Disabled.as_str(), "disabled");
    }
}
