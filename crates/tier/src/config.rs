//! A remote tier's configuration: its name (the storage class lifecycle rules transition to),
//! where it is (an S3-compatible endpoint, Azure Blob Storage, Google Cloud Storage), its
//! credentials, and whether it is archival.
//!
//! Stored as the system record `tier/<NAME>` (JSON), which the object layer seals with the
//! configuration key when a KMS is configured, so credentials are encrypted at rest. `Debug`
//! and [`TierConfig::public`] never show a secret.

use serde::{Deserialize, Serialize};

use crate::TierError;

/// Longest tier name.
pub const TIER_NAME_CHARS_MAX: usize = 64;

/// Where a tier is, with its credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TierKind {
    /// An S3-compatible service (AWS, another Strata, MinIO).
    S3 {
        /// Its URL, `https://HOST[:PORT]` (`http://` for a test service).
        endpoint: String,
        /// The bucket tier objects go to.
        bucket: String,
        /// A key prefix within the bucket (may be empty).
        #[serde(default)]
        prefix: String,
        /// The region requests are signed for.
        #[serde(default = "default_region")]
        region: String,
        /// Access key.
        access_key: String,
        /// Secret key.
        secret_key: String,
    },
    /// Azure Blob Storage (or Azurite).
    Azure {
        /// The blob endpoint, e.g. `https://ACCOUNT.blob.core.windows.net` or Azurite's
        /// `http://127.0.0.1:10000/devstoreaccount1`; empty: the account's public endpoint.
        #[serde(default)]
        endpoint: String,
        /// Storage account.
        account: String,
        /// Account key (base64).
        access_key: String,
        /// Container tier objects go to.
        container: String,
        /// A name prefix within the container (may be empty).
        #[serde(default)]
        prefix: String,
    },
    /// Google Cloud Storage (or an emulator).
    Gcs {
        /// The JSON API's base URL; empty: Google's.
        #[serde(default)]
        endpoint: String,
        /// Bucket tier objects go to.
        bucket: String,
        /// A name prefix within the bucket (may be empty).
        #[serde(default)]
        prefix: String,
        /// A service account key (JSON).
        credentials: String,
    },
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// One remote tier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierConfig {
    /// The tier's name: upper-case letters, digits, `-` and `_` (as MinIO's).
    pub name: String,
    /// Where it is.
    #[serde(flatten)]
    pub kind: TierKind,
    /// Reads need a restore first (RestoreObject brings a temporary copy back).
    #[serde(default)]
    pub archival: bool,
}

impl std::fmt::Debug for TierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TierConfig")
            .field("name", &self.name)
            .field("type", &self.type_name())
            .field("archival", &self.archival)
            .finish_non_exhaustive()
    }
}

/// What may be shown of a tier: everything but its secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierInfo {
    /// Name.
    pub name: String,
    /// `s3`, `azure` or `gcs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Endpoint URL (empty: the cloud's default).
    pub endpoint: String,
    /// Bucket or container.
    pub bucket: String,
    /// Name prefix.
    pub prefix: String,
    /// Region (S3) or account (Azure); empty otherwise.
    pub region: String,
    /// The access key's id (S3, Azure account name); never a secret.
    pub access_key: String,
    /// Archival.
    pub archival: bool,
}

impl TierConfig {
    /// `s3`, `azure` or `gcs`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            TierKind::S3 { .. } => "s3",
            TierKind::Azure { .. } => "azure",
            TierKind::Gcs { .. } => "gcs",
        }
    }

    /// The name prefix of tier objects.
    pub fn prefix(&self) -> &str {
        match &self.kind {
            TierKind::S3 { prefix, .. } | TierKind::Azure { prefix, .. } | TierKind::Gcs { prefix, .. } => {
                prefix
            }
        }
    }

    /// The tier without its secrets.
    pub fn public(&self) -> TierInfo {
        let (endpoint, bucket, region, access_key) = match &self.kind {
            TierKind::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                ..
            } => (
                endpoint.clone(),
                bucket.clone(),
                region.clone(),
                access_key.clone(),
            ),
            TierKind::Azure {
                endpoint,
                account,
                container,
                ..
            } => (
                endpoint.clone(),
                container.clone(),
                account.clone(),
                account.clone(),
            ),
            TierKind::Gcs { endpoint, bucket, .. } => {
                (endpoint.clone(), bucket.clone(), String::new(), String::new())
            }
        };
        TierInfo {
            name: self.name.clone(),
            kind: self.type_name().to_owned(),
            endpoint,
            bucket,
            prefix: self.prefix().to_owned(),
            region,
            access_key,
            archival: self.archival,
        }
    }

    /// Checks the name and the required fields.
    pub fn validate(&self) -> Result<(), TierError> {
        let name_ok = !self.name.is_empty()
            && self.name.chars().count() <= TIER_NAME_CHARS_MAX
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(TierError::Invalid(format!(
                "tier name {:?}: 1-{TIER_NAME_CHARS_MAX} upper-case letters, digits, '-' or '_'",
                self.name
            )));
        }
        let missing = |what: &str| TierError::Invalid(format!("tier {}: {what} is required", self.name));
        match &self.kind {
            TierKind::S3 {
                endpoint,
                bucket,
                access_key,
                secret_key,
                ..
            } => {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(TierError::Invalid(format!(
                        "tier {}: the endpoint must be an http:// or https:// URL",
                        self.name
                    )));
                }
                if bucket.is_empty() {
                    return Err(missing("a bucket"));
                }
                if access_key.is_empty() || secret_key.is_empty() {
                    return Err(missing("an access key and a secret key"));
                }
            }
            TierKind::Azure {
                account,
                access_key,
                container,
                ..
            } => {
                if account.is_empty() || access_key.is_empty() {
                    return Err(missing("an account and its key"));
                }
                if container.is_empty() {
                    return Err(missing("a container"));
                }
            }
            TierKind::Gcs {
                bucket, credentials, ..
            } => {
                if bucket.is_empty() {
                    return Err(missing("a bucket"));
                }
                if serde_json::from_str::<serde_json::Value>(credentials).is_err() {
                    return Err(missing("a service account key (JSON)"));
                }
            }
        }
        Ok(())
    }

    /// Replaces the credentials (an edit keeps everything else).
    pub fn with_credentials(mut self, creds: Credentials) -> Result<TierConfig, TierError> {
        match (&mut self.kind, creds) {
            (
                TierKind::S3 {
                    access_key,
                    secret_key,
                    ..
                },
                Credentials::S3 {
                    access_key: a,
                    secret_key: s,
                },
            ) => {
                *access_key = a;
                *secret_key = s;
            }
            (TierKind::Azure { access_key, .. }, Credentials::Azure { access_key: a }) => *access_key = a,
            (TierKind::Gcs { credentials, .. }, Credentials::Gcs { credentials: c }) => *credentials = c,
            _ => {
                return Err(TierError::Invalid(format!(
                    "tier {}: the credentials are not of its type ({})",
                    self.name,
                    self.type_name()
                )));
            }
        }
        Ok(self)
    }
}

/// New credentials for a tier (`strata admin tier edit`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Credentials {
    /// S3 keys.
    S3 {
        /// Access key.
        access_key: String,
        /// Secret key.
        secret_key: String,
    },
    /// Azure account key.
    Azure {
        /// Account key.
        access_key: String,
    },
    /// GCS service account key.
    Gcs {
        /// JSON key.
        credentials: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(name: &str) -> TierConfig {
        TierConfig {
            name: name.into(),
            kind: TierKind::S3 {
                endpoint: "http://127.0.0.1:9000".into(),
                bucket: "cold".into(),
                prefix: "strata".into(),
                region: "us-east-1".into(),
                access_key: "AKIA".into(),
                secret_key: "very-secret".into(),
            },
            archival: false,
        }
    }

    #[test]
    fn names_secrets_and_round_trip() {
        assert!(s3("COLD-1").validate().is_ok());
        assert!(s3("cold").validate().is_err());
        assert!(s3("").validate().is_err());
        let json = serde_json::to_string(&s3("COLD")).unwrap();
        assert!(json.contains("\"type\":\"s3\""));
        assert_eq!(serde_json::from_str::<TierConfig>(&json).unwrap(), s3("COLD"));
        assert!(!format!("{:?}", s3("COLD")).contains("very-secret"));
        assert!(
            !serde_json::to_string(&s3("COLD").public())
                .unwrap()
                .contains("very-secret")
        );
        let edited = s3("COLD")
            .with_credentials(Credentials::S3 {
                access_key: "NEW".into(),
                secret_key: "new-secret".into(),
            })
            .unwrap();
        assert_eq!(edited.public().access_key, "NEW");
        assert!(
            s3("COLD")
                .with_credentials(Credentials::Azure {
                    access_key: "k".into()
                })
                .is_err()
        );
    }
}
