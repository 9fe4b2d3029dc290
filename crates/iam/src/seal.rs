//! Sealing of secret keys at rest.
//!
//! A secret is stored as `version (1 byte = 1) | nonce (12 random bytes) | AES-256-GCM
//! ciphertext and tag`, with the record's access key as associated data, so a sealed secret
//! moved onto another record does not open. The key is HKDF-SHA256 of the root credentials
//! (input key material: the root secret key; salt: [`SEAL_SALT`]; info: the root access key).
//! Changing the root credentials therefore changes the key: [`crate::Iam::load`] re-seals every
//! secret when it is given the previous credentials too (see `docs/IAM.md`).
//!
//! Invariant: no key material and no plaintext appear in errors or `Debug` output.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::IamError;

/// Format version of a sealed secret.
const SEAL_VERSION: u8 = 1;
/// Bytes of the random nonce.
const NONCE_LEN: usize = 12;
/// HKDF salt: names the purpose, so the same root credentials key nothing else the same way.
pub const SEAL_SALT: &[u8] = b"strata/iam/seal/v1";

/// The key secrets are sealed with, derived from a pair of root credentials.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

impl Sealer {
    /// The sealer of the deployment whose root credentials are these.
    pub fn from_root(access_key: &str, secret_key: &str) -> Result<Sealer, IamError> {
        let hk = Hkdf::<Sha256>::new(Some(SEAL_SALT), secret_key.as_bytes());
        let mut key = [0u8; 32];
        hk.expand(access_key.as_bytes(), &mut key)
            .map_err(|_| IamError::Seal {
                reason: "key derivation failed",
            })?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| IamError::Seal {
            reason: "bad key length",
        })?;
        Ok(Sealer { cipher })
    }

    /// Seals `secret`, bound to `context` (the record's access key).
    pub fn seal(&self, context: &str, secret: &[u8]) -> Result<Vec<u8>, IamError> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::try_from(&nonce_bytes[..]).map_err(|_| IamError::Seal {
            reason: "bad nonce length",
        })?;
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| IamError::Seal {
                reason: "sealing failed",
            })?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a secret sealed for `context`; an error when it was sealed under another key,
    /// for another context, or damaged.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, IamError> {
        let (version, rest) = sealed.split_first().ok_or(IamError::Seal {
            reason: "empty sealed secret",
        })?;
        if *version != SEAL_VERSION || rest.len() < NONCE_LEN {
            return Err(IamError::Seal {
                reason: "unknown sealed-secret format",
            });
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce_bytes).map_err(|_| IamError::Seal {
            reason: "bad nonce length",
        })?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| IamError::Seal {
                reason: "the sealed secret does not open with this key",
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let sealer = Sealer::from_root("root", "rootsecret123").unwrap();
        let sealed = sealer.seal("alice", b"alice-secret").unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"alice-secret"));
        assert_eq!(sealer.open("alice", &sealed).unwrap(), b"alice-secret");
        assert!(sealer.open("bob", &sealed).is_err(), "bound to its record");
        let other = Sealer::from_root("root", "othersecret123").unwrap();
        assert!(
            other.open("alice", &sealed).is_err(),
            "bound to the root credentials"
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(sealer.open("alice", &flipped).is_err());
        assert!(sealer.open("alice", &sealed[..10]).is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let sealer = Sealer::from_root("root", "rootsecret123").unwrap();
        assert_eq!(format!("{sealer:?}"), "Sealer(<key redacted>)");
    }
}
