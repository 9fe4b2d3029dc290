//! Key management for server-side encryption: one [`Kms`] trait over the backends that hold
//! the keys which wrap objects' data keys.
//!
//! A KMS key is named and has versions (rotation adds one; old versions keep opening what they
//! sealed). Generating a data key returns it twice: in plaintext, to seal the object's
//! packages with and then forget, and sealed ([`SealedKey`]: key name, version, envelope), to
//! keep in the version record. Opening needs the same encryption context (the caller binds
//! bucket and key), so a sealed key moved to another object does not open.
//!
//! Backends: [`BuiltinKms`] (named keys in a keyring file, or one key from
//! `STRATA_KMS_SECRET_KEY=name:base64`), [`VaultKms`] (HashiCorp Vault / OpenBao Transit,
//! behind a [`CachingKms`] of opened data keys), [`KmipKms`] (a KMIP 1.2 server) and
//! [`KesKms`] (MinIO KES, for deployments that run it).
//!
//! Invariants: no key material in `Debug`, errors or logs; a backend that cannot answer says
//! [`KmsError::Unavailable`] (S3: 503), never a wrong key.
#![deny(missing_docs)]

mod builtin;
pub mod cache;
mod https;
mod kes;
mod kmip;
pub mod rotation;
mod vault;

use serde::{Deserialize, Serialize};
pub use strata_sse::DataKey;

pub use builtin::BuiltinKms;
pub use cache::CachingKms;
pub use https::Endpoint;
pub use kes::{KesConfig, KesKms};
pub use kmip::{KmipConfig, KmipKms};
pub use rotation::RotationStatus;
pub use vault::{VaultConfig, VaultKms};

/// What a KMS call can fail with. None carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KmsError {
    /// No key of this name.
    #[error("KMS key {0:?} does not exist")]
    KeyNotFound(String),
    /// The key exists but not in the version a sealed key names.
    #[error("KMS key {name:?} has no version {version}")]
    VersionNotFound {
        /// The key.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// A key of this name exists already.
    #[error("KMS key {0:?} already exists")]
    KeyExists(String),
    /// The sealed key does not open: another key or context, or damaged.
    #[error("the sealed data key does not open with its KMS key and context")]
    Decrypt,
    /// The backend cannot answer now (unreachable, overloaded); retrying may work.
    #[error("the KMS is unavailable: {0}")]
    Unavailable(String),
    /// The backend cannot do this (a read-only keyring cannot create keys).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The configuration (keyring file, key specification) is not valid.
    #[error("invalid KMS configuration: {0}")]
    Config(String),
}

/// Checks a key name: 1..=`max` letters, digits, `-`, `_` or `.` (names that are safe in every
/// backend's paths and object names).
pub(crate) fn check_key_name(name: &str, max: usize) -> Result<(), KmsError> {
    let valid = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(KmsError::Config(format!(
            "key name {name:?} must be 1-{max} letters, digits, '-', '_' or '.'"
        )))
    }
}

/// A data key sealed by a KMS key: what a version record keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The KMS key's name.
    pub key: String,
    /// The KMS key's version that sealed it.
    pub version: u32,
    /// The sealed data key (opaque to callers).
    pub ciphertext: Vec<u8>,
}

/// A freshly generated data key: in plaintext (use, then drop) and sealed (keep).
#[derive(Debug)]
pub struct GeneratedKey {
    /// The data key itself.
    pub plaintext: DataKey,
    /// The same key sealed by the KMS key.
    pub sealed: SealedKey,
}

/// A KMS key as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Its name.
    pub name: String,
    /// How many versions it has (the newest seals new data keys).
    pub versions: u32,
    /// Whether it is the default key (used when a request names none).
    pub default: bool,
}

/// A key-management backend.
#[async_trait::async_trait]
pub trait Kms: Send + Sync + std::fmt::Debug {
    /// The backend's name (`builtin`, `kmip`, `vault`, `kes`).
    fn backend(&self) -> &'static str;

    /// The key used when a request names none.
    fn default_key(&self) -> &str;

    /// A new data key sealed by `key` (the default key when `None`), bound to `context`: by
    /// default a random key from this machine, sealed with [`Kms::encrypt_data_key`].
    async fn generate_data_key(&self, key: Option<&str>, context: &[u8]) -> Result<GeneratedKey, KmsError> {
        let name = key.unwrap_or(self.default_key());
        let plaintext =
            DataKey::generate().map_err(|_| KmsError::Unavailable("no randomness available".into()))?;
        let sealed = self.encrypt_data_key(name, &plaintext, context).await?;
        Ok(GeneratedKey { plaintext, sealed })
    }

    /// Opens a data key sealed by this KMS with the same `context`.
    async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError>;

    /// Seals an existing data key under the newest version of `key`, bound to `context`.
    async fn encrypt_data_key(
        &self,
        key: &str,
        plaintext: &DataKey,
        context: &[u8],
    ) -> Result<SealedKey, KmsError>;

    /// Re-seals a sealed data key under the newest version of its key (key rotation without
    /// rewriting data); the data key itself does not change.
    async fn rewrap(&self, sealed: &SealedKey, context: &[u8]) -> Result<SealedKey, KmsError> {
        let plaintext = self.decrypt_data_key(sealed, context).await?;
        self.encrypt_data_key(&sealed.key, &plaintext, context).await
    }

    /// One key.
    async fn key_info(&self, name: &str) -> Result<KeyInfo, KmsError> {
        self.list_keys()
            .await?
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| KmsError::KeyNotFound(name.to_owned()))
    }

    /// The keys.
    async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError>;

    /// Creates a key.
    async fn create_key(&self, name: &str) -> Result<(), KmsError>;

    /// Adds a version to a key (new data keys are sealed with it); returns its number.
    async fn rotate_key(&self, name: &str) -> Result<u32, KmsError>;
}
