//! Data keys and their sealed envelope.
//!
//! A version's data key is stored only sealed under a 256-bit key-encryption key (KEK: a KMS
//! key's material, or one derived from an SSE-C key). The envelope, byte by byte:
//!
//! ```text
//! 0       version = 1
//! 1..17   salt (16 random bytes)
//! 17..49  the data key, encrypted with AES-256-GCM
//! 49..65  its tag
//! ```
//!
//! The AES key is HMAC-SHA256(KEK, `"strata-sse/v1 key" || salt`), new for every envelope, so
//! the all-zero nonce is used once per key. The associated data is the caller's context (for
//! example bucket and key), so an envelope copied onto another object does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

use crate::SseError;

/// Bytes of a sealed data key.
pub const ENVELOPE_BYTES: usize = 1 + SALT_BYTES + KEY_BYTES + 16;
const ENVELOPE_VERSION: u8 = 1;
const SALT_BYTES: usize = 16;
const KEY_BYTES: usize = 32;
const WRAP_LABEL: &[u8] = b"strata-sse/v1 key";
const ETAG_LABEL: &[u8] = b"strata-sse/v1 etag";

/// A version's 256-bit data key. Zeroed when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct DataKey([u8; KEY_BYTES]);

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<DataKey, SseError> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SseError::Random)?;
        Ok(DataKey(bytes))
    }

    /// A key from its bytes (a KMS's plaintext data key).
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> DataKey {
        DataKey(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The key's bytes, for a KMS that wraps keys itself (KES's `encrypt`): never log or
    /// store them.
    pub fn expose_for_wrapping(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// Seals `key` with this key as the key-encryption key (an SSE-C customer key wrapping a
    /// version's data key), bound to `context`.
    pub fn seal_key(&self, key: &DataKey, context: &[u8]) -> Result<Vec<u8>, SseError> {
        seal_data_key(&self.0, key, context)
    }

    /// Opens what [`Self::seal_key`] sealed with this key and `context`.
    pub fn open_key(&self, sealed: &[u8], context: &[u8]) -> Result<DataKey, SseError> {
        open_data_key(&self.0, sealed, context)
    }
}

fn wrapping_key(kek: &[u8; KEY_BYTES], salt: &[u8]) -> Result<LessSafeKey, SseError> {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, kek),
        &[WRAP_LABEL, salt].concat(),
    );
    UnboundKey::new(&AES_256_GCM, tag.as_ref())
        .map(LessSafeKey::new)
        .map_err(|_| SseError::Header("key-encryption key"))
}

/// Seals `key` under `kek`, bound to `context`.
pub fn seal_data_key(kek: &[u8; KEY_BYTES], key: &DataKey, context: &[u8]) -> Result<Vec<u8>, SseError> {
    let mut out = Vec::with_capacity(ENVELOPE_BYTES);
    out.push(ENVELOPE_VERSION);
    let mut salt = [0u8; SALT_BYTES];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| SseError::Random)?;
    out.extend_from_slice(&salt);
    out.extend_from_slice(key.expose());
    let tag = wrapping_key(kek, &salt)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(context),
            &mut out[1 + SALT_BYTES..],
        )
        .map_err(|_| SseError::Authentication)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// The ETag of content whose MD5 is `md5`, for modes whose ETag must not be the content's
/// MD5 (SSE-KMS, SSE-C; AWS documents those ETags as not an MD5 of the data): the first 16
/// bytes of HMAC-SHA256(data key, `"strata-sse/v1 etag" || md5`). Stable for the version,
/// and reveals nothing of the content without the key.
pub fn opaque_etag(key: &DataKey, md5: &[u8; 16]) -> [u8; 16] {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.expose()),
        &[ETAG_LABEL, md5.as_slice()].concat(),
    );
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag.as_ref()[..16]);
    out
}

/// Opens an envelope sealed by [`seal_data_key`] with the same `kek` and `context`.
pub fn open_data_key(kek: &[u8; KEY_BYTES], sealed: &[u8], context: &[u8]) -> Result<DataKey, SseError> {
    if sealed.len() != ENVELOPE_BYTES {
        return Err(SseError::Truncated);
    }
    if sealed[0] != ENVELOPE_VERSION {
        return Err(SseError::Header("unknown envelope version"));
    }
    let salt = &sealed[1..1 + SALT_BYTES];
    let mut body = sealed[1 + SALT_BYTES..].to_vec();
    let opened = wrapping_key(kek, salt)?
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(context),
            &mut body,
        )
        .map_err(|_| SseError::Authentication);
    let result = opened.and_then(|plain| {
        let bytes: [u8; KEY_BYTES] = plain.try_into().map_err(|_| SseError::Truncated)?;
        Ok(DataKey(bytes))
    });
    body.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_open_only_with_their_kek_and_context() {
        let kek = [1u8; 32];
        let key = DataKey::generate().unwrap();
        let sealed = seal_data_key(&kek, &key, b"bucket/key").unwrap();
        assert_eq!(sealed.len(), ENVELOPE_BYTES);
        assert_eq!(
            open_data_key(&kek, &sealed, b"bucket/key").unwrap().expose(),
            key.expose()
        );
        assert_eq!(
            open_data_key(&[2u8; 32], &sealed, b"bucket/key").err(),
            Some(SseError::Authentication)
        );
        assert_eq!(
            open_data_key(&kek, &sealed, b"bucket/other").err(),
            Some(SseError::Authentication)
        );
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(
            open_data_key(&kek, &flipped, b"bucket/key").err(),
            Some(SseError::Authentication)
        );
        assert_eq!(
            open_data_key(&kek, &sealed[..10], b"bucket/key").err(),
            Some(SseError::Truncated)
        );
        // Two envelopes of one key differ (fresh salt).
        assert_ne!(seal_data_key(&kek, &key, b"bucket/key").unwrap(), sealed);
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}
