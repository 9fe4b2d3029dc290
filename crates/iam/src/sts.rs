//! Temporary credentials (STS sessions), without any stored state.
//!
//! A session is three strings handed to the client:
//! - the access key: `ASIA` and 16 random characters of `A-Z0-9` (AWS's shape for temporary
//!   keys, so SDKs and operators recognise it);
//! - the secret key: the first 40 characters of base64url(HMAC-SHA256(K_secret, access key)),
//!   so every node derives it from the access key alone, as s3s's signature check needs;
//! - the session token: base64url(`1` | 12-byte random nonce | AES-256-GCM(K_token, claims,
//!   associated data = the access key)), where the claims (MessagePack) name the parent user,
//!   the expiry, the session name and an optional session policy.
//!
//! K_secret and K_token are HKDF-SHA256 of the root credentials with their own labels, so a
//! session can neither be forged nor moved to another access key, and every node of the
//! deployment (same root credentials) honours it. A request signed with a session key must
//! carry its token; the session is refused once expired, and whenever its parent is disabled
//! or removed (the parent is looked up on every request). Changing the root credentials ends
//! every session.
//!
//! Invariant: no secret, token key or claim is logged; errors say which check failed only.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit as MacKeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::IamError;

/// Prefix of every temporary access key.
pub const SESSION_KEY_PREFIX: &str = "ASIA";
/// Characters after the prefix.
const SESSION_KEY_RANDOM_CHARS: usize = 16;
/// Characters of a session's secret key.
const SESSION_SECRET_CHARS: usize = 40;
/// Format version of a session token.
const TOKEN_VERSION: u8 = 1;
/// Bytes of a token's nonce.
const NONCE_LEN: usize = 12;
/// HKDF label of the token key.
const TOKEN_KEY_LABEL: &[u8] = b"strata/iam/sts-token/v1";
/// HKDF label of the secret-derivation key.
const SECRET_KEY_LABEL: &[u8] = b"strata/iam/sts-secret/v1";
/// Shortest session AWS allows, in seconds.
pub const SESSION_SECS_MIN: u64 = 900;
/// Longest session, in seconds (AWS's longest role session).
pub const SESSION_SECS_MAX: u64 = 43_200;
/// A session's length when the request names none.
pub const SESSION_SECS_DEFAULT: u64 = 3_600;
/// Longest inline session policy, in bytes (AWS's packed limit is about this size).
pub const SESSION_POLICY_BYTES_MAX: usize = 2_048;

/// What a session token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The user whose rights the session carries.
    pub parent: String,
    /// Expiry, Unix seconds.
    pub expiry_unix: i64,
    /// The name the client gave the session.
    pub session_name: String,
    /// An inline session policy (JSON) that narrows the parent's rights.
    pub policy: Option<String>,
    /// For a web identity's session: who vouched for it and which canned policies it holds
    /// (then `parent` is the token's subject, not a user).
    #[serde(default)]
    pub federated: Option<Federated>,
}

/// A web identity behind a session (STS `AssumeRoleWithWebIdentity`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Federated {
    /// The provider's configured name.
    pub provider: String,
    /// The token's issuer.
    pub issuer: String,
    /// The canned policies the session holds.
    pub policies: Vec<String>,
    /// An LDAP user's DN (for `${ldap:user}`), when the directory vouched.
    #[serde(default)]
    pub subject_dn: Option<String>,
}

/// Temporary credentials as handed out.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    /// The temporary access key.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// The session token.
    pub session_token: String,
    /// Expiry, Unix seconds.
    pub expiry_unix: i64,
}

impl fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key", &self.access_key)
            .field("expiry_unix", &self.expiry_unix)
            .finish_non_exhaustive()
    }
}

/// The keys sessions are issued and checked with.
#[derive(Clone)]
pub struct SessionKeys {
    token: Aes256Gcm,
    secret: [u8; 32],
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// Whether `access_key` has the shape of a temporary access key.
pub fn is_session_key(access_key: &str) -> bool {
    access_key.len() == SESSION_KEY_PREFIX.len() + SESSION_KEY_RANDOM_CHARS
        && access_key.starts_with(SESSION_KEY_PREFIX)
        && access_key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl SessionKeys {
    /// The session keys of the deployment whose root credentials are these.
    pub fn from_root(access_key: &str, secret_key: &str) -> Result<SessionKeys, IamError> {
        let hk = Hkdf::<Sha256>::new(Some(access_key.as_bytes()), secret_key.as_bytes());
        let mut token_key = [0u8; 32];
        hk.expand(TOKEN_KEY_LABEL, &mut token_key)
            .map_err(|_| IamError::Seal {
                reason: "key derivation failed",
            })?;
        let mut secret = [0u8; 32];
        hk.expand(SECRET_KEY_LABEL, &mut secret)
            .map_err(|_| IamError::Seal {
                reason: "key derivation failed",
            })?;
        let token = Aes256Gcm::new_from_slice(&token_key).map_err(|_| IamError::Seal {
            reason: "bad key length",
        })?;
        Ok(SessionKeys { token, secret })
    }

    /// The secret key of a temporary access key.
    pub fn secret_of(&self, access_key: &str) -> Result<String, IamError> {
        let mut mac =
            <Hmac<Sha256> as MacKeyInit>::new_from_slice(&self.secret).map_err(|_| IamError::Seal {
                reason: "bad key length",
            })?;
        mac.update(access_key.as_bytes());
        let mut secret = b64url(&mac.finalize().into_bytes());
        secret.truncate(SESSION_SECRET_CHARS);
        Ok(secret)
    }

    /// Issues a session for `claims`.
    pub fn issue(&self, claims: &SessionClaims) -> Result<SessionCredentials, IamError> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let suffix: String = (0..SESSION_KEY_RANDOM_CHARS)
            .map(|_| char::from(alphabet[rand::random_range(0..alphabet.len())]))
            .collect();
        let access_key = format!("{SESSION_KEY_PREFIX}{suffix}");
        let plain = rmp_serde::to_vec_named(claims).map_err(|_| IamError::Seal {
            reason: "encoding session claims failed",
        })?;
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::try_from(&nonce_bytes[..]).map_err(|_| IamError::Seal {
            reason: "bad nonce length",
        })?;
        let sealed = self
            .token
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| IamError::Seal {
                reason: "sealing a session failed",
            })?;
        let mut token = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        token.push(TOKEN_VERSION);
        token.extend_from_slice(&nonce_bytes);
        token.extend_from_slice(&sealed);
        Ok(SessionCredentials {
            secret_key: self.secret_of(&access_key)?,
            access_key,
            session_token: b64url(&token),
            expiry_unix: claims.expiry_unix,
        })
    }

    /// The claims of `token`, issued for `access_key`; an error when it was not issued by this
    /// deployment for that key (expiry is the caller's check).
    pub fn open(&self, access_key: &str, token: &str) -> Result<SessionClaims, IamError> {
        let invalid = || IamError::InvalidSessionToken;
        let bytes = base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(token.trim())
            .map_err(|_| invalid())?;
        let (version, rest) = bytes.split_first().ok_or_else(invalid)?;
        if *version != TOKEN_VERSION || rest.len() < NONCE_LEN {
            return Err(invalid());
        }
        let (nonce_bytes, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce_bytes).map_err(|_| invalid())?;
        let plain = self
            .token
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| invalid())?;
        rmp_serde::from_slice(&plain).map_err(|_| invalid())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn claims() -> SessionClaims {
        SessionClaims {
            parent: "alice".into(),
            expiry_unix: 2_000_000_000,
            session_name: "job".into(),
            policy: None,
            federated: None,
        }
    }

    #[test]
    fn issued_sessions_open_and_derive_their_secret() {
        let keys = SessionKeys::from_root("root", "root-secret-1").unwrap();
        let creds = keys.issue(&claims()).unwrap();
        assert!(is_session_key(&creds.access_key), "{}", creds.access_key);
        assert_eq!(creds.secret_key.len(), 40);
        assert_eq!(keys.secret_of(&creds.access_key).unwrap(), creds.secret_key);
        assert_eq!(
            keys.open(&creds.access_key, &creds.session_token).unwrap(),
            claims()
        );
        assert!(!format!("{creds:?}").contains(&creds.secret_key));
    }

    #[test]
    fn tokens_are_bound_to_their_key_and_deployment() {
        let keys = SessionKeys::from_root("root", "root-secret-1").unwrap();
        let a = keys.issue(&claims()).unwrap();
        let b = keys.issue(&claims()).unwrap();
        assert_ne!(a.access_key, b.access_key);
        assert!(
            keys.open(&b.access_key, &a.session_token).is_err(),
            "moved to another key"
        );
        let other = SessionKeys::from_root("root", "root-secret-2").unwrap();
        assert!(
            other.open(&a.access_key, &a.session_token).is_err(),
            "another deployment"
        );
        assert_ne!(other.secret_of(&a.access_key).unwrap(), a.secret_key);
        let mut bytes = base64_simd::URL_SAFE_NO_PAD
            .decode_to_vec(&a.session_token)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(keys.open(&a.access_key, &b64url(&bytes)).is_err(), "tampered");
        assert!(keys.open(&a.access_key, "not-a-token").is_err());
        assert!(keys.open(&a.access_key, "").is_err());
    }

    #[test]
    fn session_key_shape() {
        assert!(is_session_key("ASIAABCDEFGHIJ012345"));
        assert!(!is_session_key("AKIAABCDEFGHIJ012345"));
        assert!(!is_session_key("ASIAabcdefghij012345"));
        assert!(!is_session_key("ASIA1"));
    }
}
