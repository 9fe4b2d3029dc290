//! Root credentials: the pair the deployment is started with (IAM serves them, with every
//! other identity's, to s3s's signature checks through [`crate::IamAuth`]).
//!
//! Invariant: the secret key is never printed by `Debug` and never put into an error message;
//! an unknown access key gets the same answer whatever the key was.

use std::fmt;

use crate::error::FrontDoorError;

/// Shortest accepted access key, in characters (S3 and MinIO use at least 3).
pub const ACCESS_KEY_CHARS_MIN: usize = 3;
/// Shortest accepted secret key, in characters (MinIO requires 8).
pub const SECRET_KEY_CHARS_MIN: usize = 8;

/// The root user's access key and secret key.
#[derive(Clone)]
pub struct RootCredentials {
    access_key: String,
    secret_key: String,
}

impl RootCredentials {
    /// Checks the lengths and characters of a key pair.
    pub fn new(access_key: &str, secret_key: &str) -> Result<RootCredentials, FrontDoorError> {
        if access_key.chars().count() < ACCESS_KEY_CHARS_MIN
            || access_key
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':')
        {
            return Err(FrontDoorError::InvalidAccessKey {
                min_chars: ACCESS_KEY_CHARS_MIN,
            });
        }
        if secret_key.chars().count() < SECRET_KEY_CHARS_MIN || secret_key.chars().any(|c| c.is_control()) {
            return Err(FrontDoorError::InvalidSecretKey {
                min_chars: SECRET_KEY_CHARS_MIN,
            });
        }
        Ok(RootCredentials {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
        })
    }

    /// The access key (not secret).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key. Callers must not log it.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }
}

impl fmt::Debug for RootCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCredentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_validate_lengths() {
        assert!(RootCredentials::new("ab", "longenoughsecret").is_err());
        assert!(RootCredentials::new("abc", "short").is_err());
        assert!(RootCredentials::new("a b", "longenoughsecret").is_err());
        assert!(RootCredentials::new("abc", "longenoughsecret").is_ok());
    }

    #[test]
    fn debug_redacts_secret() {
        let creds = RootCredentials::new("AKIAROOT", "super-secret-value").unwrap();
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIAROOT"));
        assert!(!shown.contains("super-secret-value"));
    }
}
