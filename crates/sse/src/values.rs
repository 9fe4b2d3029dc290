//! Configuration values sealed at rest (system records such as IAM's, bucket configuration):
//! AES-256-GCM under the deployment's configuration key, a random 96-bit nonce per value, the
//! value's scope (namespace and key, or bucket and name) as associated data.
//!
//! ```text
//! 0..5    magic "\0SSV1" (no JSON, XML or text value starts with a NUL byte, so a value
//!         written before sealing was turned on is told apart and read as it is)
//! 5..17   nonce
//! 17..    ciphertext || 16-byte tag
//! ```

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::SseError;
use crate::envelope::DataKey;

const MAGIC: &[u8; 5] = b"\0SSV1";
const NONCE_BYTES: usize = 12;

/// Seals and opens configuration values under one key.
pub struct ValueKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for ValueKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueKey(..)")
    }
}

impl ValueKey {
    /// The sealer of values under `key`.
    pub fn new(key: &DataKey) -> Result<ValueKey, SseError> {
        let key = UnboundKey::new(&aead::AES_256_GCM, key.expose())
            .map_err(|_| SseError::Header("configuration key"))?;
        Ok(ValueKey {
            key: LessSafeKey::new(key),
        })
    }

    /// The stored form of `plain` under `scope`.
    pub fn seal(&self, scope: &[u8], plain: &[u8]) -> Result<Vec<u8>, SseError> {
        let mut nonce = [0u8; NONCE_BYTES];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SseError::Random)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_BYTES + plain.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(scope),
                &mut out[start..],
            )
            .map_err(|_| SseError::Authentication)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// The value of a stored form made by [`Self::seal`] under `scope`; `Ok(None)` when
    /// `stored` is not sealed (written before sealing was turned on).
    pub fn open(&self, scope: &[u8], stored: &[u8]) -> Result<Option<Vec<u8>>, SseError> {
        let Some(rest) = stored.strip_prefix(MAGIC.as_slice()) else {
            return Ok(None);
        };
        if rest.len() < NONCE_BYTES + 16 {
            return Err(SseError::Truncated);
        }
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&rest[..NONCE_BYTES]);
        let mut body = rest[NONCE_BYTES..].to_vec();
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(scope), &mut body)
            .map_err(|_| SseError::Authentication)?
            .len();
        body.truncate(plain);
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_in_their_scope_and_plain_ones_pass_through() {
        let key = ValueKey::new(&DataKey::from_bytes([3; 32])).unwrap();
        let sealed = key.seal(b"iam\0users/alice", br#"{"secret":"s3cr3t"}"#).unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(
            key.open(b"iam\0users/alice", &sealed).unwrap().unwrap(),
            br#"{"secret":"s3cr3t"}"#
        );
        assert_eq!(
            key.open(b"iam\0users/bob", &sealed),
            Err(SseError::Authentication)
        );
        let other = ValueKey::new(&DataKey::from_bytes([4; 32])).unwrap();
        assert_eq!(
            other.open(b"iam\0users/alice", &sealed),
            Err(SseError::Authentication)
        );
        assert_eq!(key.open(b"x", br#"{"plain":true}"#).unwrap(), None);
        assert_eq!(key.open(b"x", &sealed[..10]), Err(SseError::Truncated));
        assert_ne!(key.seal(b"s", b"v").unwrap(), key.seal(b"s", b"v").unwrap());
    }
}
