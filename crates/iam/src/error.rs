//! [`IamError`]: what can go wrong in identity and access, as domain facts. The front door maps
//! each to the S3 or admin error a client sees.
//!
//! Invariant: no variant carries a secret key, a sealed secret or key material.

use crate::policy::PolicyError;

/// An identity or access operation that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// Sealing or opening a secret failed.
    #[error("secret sealing: {reason}")]
    Seal {
        /// What failed (never key material).
        reason: &'static str,
    },
    /// The IAM records are sealed under root credentials other than the current ones.
    #[error(
        "the IAM data was sealed with other root credentials: start once with STRATA_ROOT_USER_OLD and STRATA_ROOT_PASSWORD_OLD set to the previous root credentials to re-seal it"
    )]
    SealedWithOtherRoot,
    /// Reading or writing the IAM records failed.
    #[error("IAM storage: {reason}")]
    Store {
        /// The store's error.
        reason: String,
    },
    /// A stored IAM record could not be decoded.
    #[error("IAM record {key} is damaged: {reason}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// No such user.
    #[error("the user {name} does not exist")]
    NoSuchUser {
        /// The user name (access key).
        name: String,
    },
    /// No such group.
    #[error("the group {name} does not exist")]
    NoSuchGroup {
        /// The group name.
        name: String,
    },
    /// No such policy.
    #[error("the policy {name} does not exist")]
    NoSuchPolicy {
        /// The policy name.
        name: String,
    },
    /// No such service account.
    #[error("the service account {access_key} does not exist")]
    NoSuchServiceAccount {
        /// Its access key.
        access_key: String,
    },
    /// An access key that is already taken by another kind of identity.
    #[error("the access key {access_key} is already in use")]
    AccessKeyInUse {
        /// The access key.
        access_key: String,
    },
    /// A group that still has members cannot be removed.
    #[error("the group {name} is not empty: remove its members first")]
    GroupNotEmpty {
        /// The group name.
        name: String,
    },
    /// An access key that is not acceptable.
    #[error("{reason}")]
    InvalidAccessKey {
        /// What is wrong.
        reason: String,
    },
    /// A secret key that is not acceptable.
    #[error("{reason}")]
    InvalidSecretKey {
        /// What is wrong.
        reason: String,
    },
    /// A session token that this deployment did not issue for the access key, or damaged.
    #[error("the security token included in the request is invalid")]
    InvalidSessionToken,
    /// A session token whose session is over.
    #[error("the security token included in the request is expired")]
    ExpiredSessionToken,
    /// A web identity token that does not verify.
    #[error("invalid web identity token: {reason}")]
    InvalidIdentityToken {
        /// Which check failed (never the token).
        reason: String,
    },
    /// A web identity token past its expiry.
    #[error("the web identity token is expired")]
    ExpiredIdentityToken,
    /// The identity provider could not be asked (discovery or key set).
    #[error("identity provider: {reason}")]
    IdentityProvider {
        /// What failed.
        reason: String,
    },
    /// The caller may not do this at all (for example root asking for a session).
    #[error("{reason}")]
    NotAllowed {
        /// Why.
        reason: String,
    },
    /// A request argument is not acceptable.
    #[error("{reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// No account has this id.
    #[error("the account {id} does not exist")]
    NoSuchAccount {
        /// The account id asked for.
        id: String,
    },
    /// An account still has identities or buckets.
    #[error("the account {id} is not empty: {what}")]
    AccountNotEmpty {
        /// The account id.
        id: String,
        /// What is left in it.
        what: String,
    },
    /// A group or policy name another account already uses (names are deployment-wide).
    #[error("the name {name} is already used by another account")]
    NameInUse {
        /// The name.
        name: String,
    },
    /// A policy document is not valid.
    #[error("malformed policy: {0}")]
    MalformedPolicy(#[from] PolicyError),
}
