//! The encrypted request and response bodies of MinIO's admin API: what madmin-go's
//! `EncryptData`/`DecryptData` and MinIO's SDKs (Python `minio/crypto.py`) read and write. A body
//! is sealed with a key derived from the caller's secret key, so only the holder of that secret
//! (and the server) can read it.
//!
//! # Wire format
//!
//! ```text
//! offset  length  field
//! 0       32      salt: random, the salt of the key derivation
//! 32      1       algorithm id (below)
//! 33      8       nonce prefix: random
//! 41      ...     the sealed fragments, back to back, up to the end of the body
//! ```
//!
//! Algorithm ids (key derivation, AEAD):
//! - `0x00`: Argon2id, AES-256-GCM. [`encrypt`] always writes this id.
//! - `0x01`: Argon2id, ChaCha20-Poly1305 (madmin-go picks it on CPUs without AES instructions).
//! - `0x02`: PBKDF2-HMAC-SHA256, AES-256-GCM (madmin-go in FIPS mode).
//!
//! Any other id is refused.
//!
//! Key derivation, always 32 bytes of key, with the secret key's bytes as the password and the
//! 32-byte salt of the header as the salt:
//! - Argon2id: version `0x13`, 1 pass, 65536 KiB (64 MiB) of memory, 4 lanes, no secret and no
//!   associated data.
//! - PBKDF2-HMAC-SHA256: 8192 rounds.
//!
//! Fragments (the stream format of secure-io/sio-go with its default 16 KiB buffer): the plaintext
//! is cut into 16384-byte pieces and piece `i` (counting from 1) is sealed into fragment `i`:
//!
//! ```text
//! fragment i = AEAD-seal(key, nonce_i, ad, piece i) = ciphertext (as long as the piece) | 16-byte tag
//! nonce_i    = nonce prefix (8 bytes) | i as a little-endian u32 (4 bytes)
//! ad         = flag (1 byte) | T (16 bytes)
//! T          = the tag of sealing the empty message with nonce prefix | 00 00 00 00 and no
//!              associated data (computed once per body)
//! flag       = 0x80 for the last fragment, 0x00 for every other one
//! ```
//!
//! Every fragment but the last holds exactly 16384 bytes of plaintext (16400 sealed); the last
//! holds 0 to 16384 (16 to 16400 sealed). The flag authenticates which fragment is the last, and
//! the sequence number in the nonce the order, so dropping, reordering, repeating fragments or
//! appending to the body fails authentication. A reader finds the last fragment by the end of the
//! body: it cuts the body after the header into 16400-byte pieces, and the final piece (a full one
//! when the length is a multiple of 16400) is the last fragment.
//!
//! Edge cases, as madmin-go (through sio-go) and the Python SDK behave:
//! - An empty plaintext: [`encrypt`] writes, as madmin-go does, one last fragment holding nothing
//!   (16 bytes: the tag alone), a 57-byte body. The Python SDK's `encrypt` writes the 41-byte header
//!   alone; madmin-go's `DecryptData` refuses that, and so does [`decrypt`]
//!   ([`MadminCryptoError::MissingFinalFragment`]): it cannot be told from a body cut right after
//!   its header. (The Python SDK's reader accepts both.)
//! - A plaintext of a multiple of 16 KiB (16384 bytes, say): its last full piece is the last
//!   fragment; no empty fragment is appended (madmin-go and the Python SDK agree), so 16384 bytes
//!   seal into 41 + 16400 bytes.
//! - Sequence numbers are u32 counted from 1: a body of more than `u32::MAX` fragments (about
//!   64 TiB) cannot be written or read.
//!
//! Key material (the secret key, the derived key) never appears in errors, `Debug` output or
//! logs; the derived key's bytes are overwritten (best effort) once the AEAD is keyed (the AEAD's
//! own key schedule is not zeroized: the crates' `zeroize` features are off). Key derivation
//! runs once per call and is deliberately expensive (Argon2id: 64 MiB and about a tenth of a
//! second): [`decrypt`] checks the framing before it derives, and derivations are serialized
//! process-wide (as madmin-go does), which bounds their memory to 64 MiB. Both functions block:
//! call them from `spawn_blocking` in async code.

use std::sync::Mutex;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::ChaCha20Poly1305;
use sha2::{Digest, Sha256};

/// Bytes of the key-derivation salt at the start of a body.
const SALT_LEN: usize = 32;
/// Bytes of the nonce prefix after the algorithm id.
const NONCE_PREFIX_LEN: usize = 8;
/// Bytes of the header: salt, algorithm id, nonce prefix.
const HEADER_LEN: usize = SALT_LEN + 1 + NONCE_PREFIX_LEN;
/// Bytes of the full AEAD nonce: prefix and sequence number.
const NONCE_LEN: usize = NONCE_PREFIX_LEN + 4;
/// Bytes of plaintext in every fragment but the last.
const FRAGMENT_LEN: usize = 16 * 1024;
/// Bytes of an AEAD tag.
const TAG_LEN: usize = 16;
/// Bytes of a sealed full fragment.
const SEALED_FRAGMENT_LEN: usize = FRAGMENT_LEN + TAG_LEN;
/// Bytes of a derived key.
const KEY_LEN: usize = 32;

/// Algorithm id: Argon2id key, AES-256-GCM.
const ID_ARGON2ID_AES_GCM: u8 = 0x00;
/// Algorithm id: Argon2id key, ChaCha20-Poly1305.
const ID_ARGON2ID_CHACHA20_POLY1305: u8 = 0x01;
/// Algorithm id: PBKDF2-HMAC-SHA256 key, AES-256-GCM.
const ID_PBKDF2_AES_GCM: u8 = 0x02;

/// Argon2id passes.
const ARGON2ID_PASSES: u32 = 1;
/// Argon2id memory in KiB (64 MiB).
const ARGON2ID_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id lanes.
const ARGON2ID_LANES: u32 = 4;
/// PBKDF2-HMAC-SHA256 rounds.
const PBKDF2_ROUNDS: u32 = 8192;

/// First byte of the associated data of every fragment but the last.
const FLAG_MORE: u8 = 0x00;
/// First byte of the associated data of the last fragment.
const FLAG_LAST: u8 = 0x80;

/// Serializes key derivations process-wide, as madmin-go does: each Argon2id takes 64 MiB.
static DERIVATION: Mutex<()> = Mutex::new(());

/// Errors of the admin body format; never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum MadminCryptoError {
    /// The body is shorter than its 41-byte header.
    #[error("encrypted admin body is shorter than its {HEADER_LEN}-byte header")]
    TruncatedHeader,
    /// The header names an algorithm this module does not know.
    #[error("encrypted admin body names an unknown algorithm id {0:#04x}")]
    UnknownAlgorithm(u8),
    /// The body ends without a last fragment: nothing follows the header, or it was cut right
    /// after a fragment that is not the last.
    #[error("encrypted admin body ends without its final fragment")]
    MissingFinalFragment,
    /// The body ends in the middle of a fragment (fewer bytes than a tag follow the last full
    /// fragment).
    #[error("encrypted admin body ends inside a fragment")]
    Truncated,
    /// A fragment sealed as the last is followed by more data.
    #[error("encrypted admin body continues after its final fragment")]
    TrailingData,
    /// A fragment does not open: a wrong secret key, or damaged, reordered or cut data.
    #[error(
        "fragment {fragment} of the encrypted admin body is not authentic (wrong secret key, or damaged, reordered or cut data)"
    )]
    NotAuthentic {
        /// The fragment's sequence number, counted from 1.
        fragment: u32,
    },
    /// The body needs more fragments than a u32 sequence number counts.
    #[error("admin body is too large for one encrypted stream")]
    TooLarge,
    /// Deriving the key failed (the reason never holds key material).
    #[error("deriving the admin body key failed: {0}")]
    KeyDerivation(&'static str),
    /// The AEAD refused to seal a fragment.
    #[error("sealing the admin body failed")]
    Seal,
}

/// Seals `plaintext` for a caller whose secret key is `secret` (AES-256-GCM, id 0x00).
pub fn encrypt(secret: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, MadminCryptoError> {
    let salt: [u8; SALT_LEN] = rand::random();
    let prefix: [u8; NONCE_PREFIX_LEN] = rand::random();
    let cipher = BodyCipher::derive(ID_ARGON2ID_AES_GCM, secret, &salt)?;
    seal_body(&cipher, ID_ARGON2ID_AES_GCM, &salt, &prefix, plaintext)
}

/// Opens a body sealed by madmin-go, MinIO's SDKs, or `encrypt`.
pub fn decrypt(secret: &[u8], sealed: &[u8]) -> Result<Vec<u8>, MadminCryptoError> {
    let body = parse(sealed)?;
    let cipher = BodyCipher::derive(body.id, secret, body.salt)?;
    open_fragments(&cipher, body.prefix, body.fragments)
}

/// A body whose framing has been checked, not yet authenticated.
struct ParsedBody<'a> {
    /// The key-derivation salt.
    salt: &'a [u8; SALT_LEN],
    /// The algorithm id, a known one.
    id: u8,
    /// The nonce prefix.
    prefix: &'a [u8; NONCE_PREFIX_LEN],
    /// Everything after the header: at least one fragment, the last at least a tag long.
    fragments: &'a [u8],
}

/// Splits the header off `sealed` and checks everything that needs no key, so malformed bodies
/// are refused before the expensive key derivation.
fn parse(sealed: &[u8]) -> Result<ParsedBody<'_>, MadminCryptoError> {
    let (salt, rest) = sealed
        .split_first_chunk::<SALT_LEN>()
        .ok_or(MadminCryptoError::TruncatedHeader)?;
    let (&id, rest) = rest.split_first().ok_or(MadminCryptoError::TruncatedHeader)?;
    let (prefix, fragments) = rest
        .split_first_chunk::<NONCE_PREFIX_LEN>()
        .ok_or(MadminCryptoError::TruncatedHeader)?;
    if !matches!(
        id,
        ID_ARGON2ID_AES_GCM | ID_ARGON2ID_CHACHA20_POLY1305 | ID_PBKDF2_AES_GCM
    ) {
        return Err(MadminCryptoError::UnknownAlgorithm(id));
    }
    let count = fragments.len().div_ceil(SEALED_FRAGMENT_LEN);
    if count == 0 {
        return Err(MadminCryptoError::MissingFinalFragment);
    }
    if u32::try_from(count).is_err() {
        return Err(MadminCryptoError::TooLarge);
    }
    let last_len = fragments.len() - (count - 1) * SEALED_FRAGMENT_LEN;
    if last_len < TAG_LEN {
        return Err(MadminCryptoError::Truncated);
    }
    Ok(ParsedBody {
        salt,
        id,
        prefix,
        fragments,
    })
}

/// Writes the header and the sealed fragments of `plaintext`.
fn seal_body(
    cipher: &BodyCipher,
    id: u8,
    salt: &[u8; SALT_LEN],
    prefix: &[u8; NONCE_PREFIX_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, MadminCryptoError> {
    // An empty plaintext still gets its (empty) last fragment.
    let pieces: Vec<&[u8]> = if plaintext.is_empty() {
        vec![plaintext]
    } else {
        plaintext.chunks(FRAGMENT_LEN).collect()
    };
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + pieces.len() * TAG_LEN);
    out.extend_from_slice(salt);
    out.push(id);
    out.extend_from_slice(prefix);
    let mut ad = stream_additional_data(cipher, prefix)?;
    for (index, piece) in pieces.iter().enumerate() {
        let seq = u32::try_from(index + 1).map_err(|_| MadminCryptoError::TooLarge)?;
        if index + 1 == pieces.len() {
            ad[0] = FLAG_LAST;
        }
        let start = out.len();
        out.extend_from_slice(piece);
        let tag = cipher
            .seal_in_place(&fragment_nonce(prefix, seq), &ad, &mut out[start..])
            .ok_or(MadminCryptoError::Seal)?;
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

/// Opens the fragments after the header (framing already checked by [`parse`]).
fn open_fragments(
    cipher: &BodyCipher,
    prefix: &[u8; NONCE_PREFIX_LEN],
    fragments: &[u8],
) -> Result<Vec<u8>, MadminCryptoError> {
    let count = fragments.len().div_ceil(SEALED_FRAGMENT_LEN);
    let mut out = Vec::with_capacity(fragments.len().saturating_sub(count * TAG_LEN));
    let mut ad = stream_additional_data(cipher, prefix)?;
    for (index, fragment) in fragments.chunks(SEALED_FRAGMENT_LEN).enumerate() {
        let fragment_no = u32::try_from(index + 1).map_err(|_| MadminCryptoError::TooLarge)?;
        let last = index + 1 == count;
        ad[0] = if last { FLAG_LAST } else { FLAG_MORE };
        if open_fragment(cipher, prefix, fragment_no, &ad, fragment, &mut out) {
            continue;
        }
        // Tell a stream cut at a fragment boundary, or one that goes on after its last fragment,
        // from plain damage: does the fragment open with the other flag?
        ad[0] = if last { FLAG_MORE } else { FLAG_LAST };
        let opens_flipped = open_fragment(cipher, prefix, fragment_no, &ad, fragment, &mut out);
        return Err(match (opens_flipped, last) {
            (true, true) => MadminCryptoError::MissingFinalFragment,
            (true, false) => MadminCryptoError::TrailingData,
            (false, _) => MadminCryptoError::NotAuthentic {
                fragment: fragment_no,
            },
        });
    }
    Ok(out)
}

/// Opens one sealed fragment onto the end of `out`; false (and `out` unchanged) when it does not
/// authenticate.
fn open_fragment(
    cipher: &BodyCipher,
    prefix: &[u8; NONCE_PREFIX_LEN],
    seq: u32,
    ad: &[u8],
    fragment: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    let Some((ciphertext, tag)) = fragment.split_last_chunk::<TAG_LEN>() else {
        return false;
    };
    let start = out.len();
    out.extend_from_slice(ciphertext);
    let opened = cipher.open_in_place(&fragment_nonce(prefix, seq), ad, &mut out[start..], tag);
    if !opened {
        out.truncate(start);
    }
    opened
}

/// The associated data of a stream's fragments, flagged "not last": `0x00` and the tag of sealing
/// nothing under the nonce with sequence number 0.
fn stream_additional_data(
    cipher: &BodyCipher,
    prefix: &[u8; NONCE_PREFIX_LEN],
) -> Result<[u8; 1 + TAG_LEN], MadminCryptoError> {
    let tag = cipher
        .seal_in_place(&fragment_nonce(prefix, 0), &[], &mut [])
        .ok_or(MadminCryptoError::Seal)?;
    let mut ad = [FLAG_MORE; 1 + TAG_LEN];
    ad[1..].copy_from_slice(&tag);
    Ok(ad)
}

/// The AEAD nonce of fragment `seq`: the prefix and the little-endian sequence number.
fn fragment_nonce(prefix: &[u8; NONCE_PREFIX_LEN], seq: u32) -> [u8; NONCE_LEN] {
    let mut nonce = [0; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..].copy_from_slice(&seq.to_le_bytes());
    nonce
}

/// The keyed AEAD of one body. Deliberately not `Debug`: it holds key material.
enum BodyCipher {
    /// AES-256-GCM (ids 0x00 and 0x02).
    AesGcm(Box<Aes256Gcm>),
    /// ChaCha20-Poly1305 (id 0x01).
    ChaCha20Poly1305(Box<ChaCha20Poly1305>),
}

impl BodyCipher {
    /// Derives the key of algorithm `id` from the caller's secret and the body's salt, and keys
    /// the AEAD with it.
    fn derive(id: u8, secret: &[u8], salt: &[u8; SALT_LEN]) -> Result<BodyCipher, MadminCryptoError> {
        let mut key = derive_key(id, secret, salt)?;
        let cipher = BodyCipher::new(id, &key);
        wipe(&mut key);
        cipher
    }

    /// The AEAD of algorithm `id` keyed with `key`.
    fn new(id: u8, key: &[u8; KEY_LEN]) -> Result<BodyCipher, MadminCryptoError> {
        let bad_key = |_| MadminCryptoError::KeyDerivation("key of the wrong length");
        match id {
            ID_ARGON2ID_AES_GCM | ID_PBKDF2_AES_GCM => Ok(BodyCipher::AesGcm(Box::new(
                Aes256Gcm::new_from_slice(key).map_err(bad_key)?,
            ))),
            ID_ARGON2ID_CHACHA20_POLY1305 => Ok(BodyCipher::ChaCha20Poly1305(Box::new(
                ChaCha20Poly1305::new_from_slice(key).map_err(bad_key)?,
            ))),
            other => Err(MadminCryptoError::UnknownAlgorithm(other)),
        }
    }

    /// Encrypts `buffer` in place and returns the tag; `None` when the AEAD refuses.
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], ad: &[u8], buffer: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let tag = match self {
            BodyCipher::AesGcm(aead) => aead.encrypt_inout_detached(&(*nonce).into(), ad, buffer.into()),
            BodyCipher::ChaCha20Poly1305(aead) => {
                aead.encrypt_inout_detached(&(*nonce).into(), ad, buffer.into())
            }
        };
        tag.ok().map(Into::into)
    }

    /// Decrypts `buffer` in place if `tag` authenticates it; false (and `buffer` not decrypted)
    /// otherwise.
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        let opened = match self {
            BodyCipher::AesGcm(aead) => {
                aead.decrypt_inout_detached(&(*nonce).into(), ad, buffer.into(), &(*tag).into())
            }
            BodyCipher::ChaCha20Poly1305(aead) => {
                aead.decrypt_inout_detached(&(*nonce).into(), ad, buffer.into(), &(*tag).into())
            }
        };
        opened.is_ok()
    }
}

/// The 32-byte key of algorithm `id` for `secret` and `salt` (see the module docs).
fn derive_key(id: u8, secret: &[u8], salt: &[u8; SALT_LEN]) -> Result<[u8; KEY_LEN], MadminCryptoError> {
    let mut key = [0; KEY_LEN];
    // A poisoned lock only means another derivation panicked; the guard protects no data.
    let _serialized = DERIVATION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match id {
        ID_ARGON2ID_AES_GCM | ID_ARGON2ID_CHACHA20_POLY1305 => {
            let params = Params::new(
                ARGON2ID_MEMORY_KIB,
                ARGON2ID_PASSES,
                ARGON2ID_LANES,
                Some(KEY_LEN),
            )
            .map_err(|_| MadminCryptoError::KeyDerivation("invalid Argon2id parameters"))?;
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password_into(secret, salt, &mut key)
                .map_err(|_| MadminCryptoError::KeyDerivation("Argon2id refused its input"))?;
        }
        ID_PBKDF2_AES_GCM => pbkdf2_hmac_sha256(secret, salt, PBKDF2_ROUNDS, &mut key),
        other => return Err(MadminCryptoError::UnknownAlgorithm(other)),
    }
    Ok(key)
}

/// PBKDF2 (RFC 8018) with HMAC-SHA256 (RFC 2104), for one 32-byte output block, which is all a
/// 32-byte key needs.
fn pbkdf2_hmac_sha256(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8; KEY_LEN]) {
    const BLOCK_LEN: usize = 64;
    // HMAC's key block: the password, hashed first when longer than a SHA-256 block.
    let mut key_block = [0u8; BLOCK_LEN];
    if password.len() > BLOCK_LEN {
        key_block[..KEY_LEN].copy_from_slice(&Sha256::digest(password));
    } else {
        key_block[..password.len()].copy_from_slice(password);
    }
    let mut pad = [0u8; BLOCK_LEN];
    for (p, k) in pad.iter_mut().zip(&key_block) {
        *p = k ^ 0x36;
    }
    let mut inner = Sha256::new();
    inner.update(pad);
    for (p, k) in pad.iter_mut().zip(&key_block) {
        *p = k ^ 0x5c;
    }
    let mut outer = Sha256::new();
    outer.update(pad);
    wipe(&mut key_block);
    wipe(&mut pad);
    let hmac = |parts: &[&[u8]]| -> [u8; KEY_LEN] {
        let mut h = inner.clone();
        for part in parts {
            h.update(part);
        }
        let mut o = outer.clone();
        o.update(h.finalize());
        o.finalize().into()
    };
    // U_1 = HMAC(P, S || INT(1)), U_j = HMAC(P, U_{j-1}); the block is U_1 ^ ... ^ U_c.
    // INT(1): the block index 1 as a big-endian u32.
    let mut u = hmac(&[salt, &[0, 0, 0, 1]]);
    *out = u;
    for _ in 1..rounds {
        u = hmac(&[&u]);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    wipe(&mut u);
}

/// Overwrites key material with zeros (best effort: the optimizer is told the bytes are read).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Compatibility vectors were produced by a throwaway script (not kept) run with MinIO's
    //! Python SDK 7.2.20 (`minio/crypto.py`; argon2-cffi 25.1.0, pycryptodome): AES-GCM bodies by
    //! the SDK's own `encrypt` with `os.urandom` pinned to [`SALT`] and [`PREFIX`]; the
    //! ChaCha20-Poly1305 (id 0x01), PBKDF2 (id 0x02) and madmin-go-style empty bodies by the same
    //! construction assembled from the SDK's helpers (`_generate_key`, `_get_cipher`,
    //! `_generate_additional_data`, `_mark_as_last`, `_update_nonce_id`), the PBKDF2 key from
    //! `hashlib.pbkdf2_hmac("sha256", secret, salt, 8192, 32)`. The script checked every vector it
    //! printed (but the PBKDF2 one, an id the SDK does not know) with the SDK's `decrypt`. Long
    //! bodies are kept as their length and SHA-256: `seal_body` with the same salt and prefix must
    //! reproduce them byte for byte. The other way round, bodies from [`encrypt`] (random salt and
    //! prefix; 0, 1, 16384 and 40000 bytes of [`pattern`]) were opened by the SDK's `decrypt`.

    use std::sync::OnceLock;

    use super::*;

    /// The secret key of the vectors.
    const SECRET: &[u8] = b"strata-test-secret-key-0123456789";
    /// The salt of the vectors: 00 01 .. 1f.
    const SALT: [u8; SALT_LEN] = {
        let mut salt = [0; SALT_LEN];
        let mut i = 0;
        while i < SALT_LEN {
            salt[i] = i as u8;
            i += 1;
        }
        salt
    };
    /// The nonce prefix of the vectors.
    const PREFIX: [u8; NONCE_PREFIX_LEN] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7];
    /// The short plaintext of the vectors.
    const SHORT: &[u8] = br#"{"accessKey":"alice","secretKey":"wonderland-1234","status":"enabled"}"#;
    /// The Python SDK's `encrypt(b"")`: the header alone.
    const PY_AES_EMPTY: &str =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00a0a1a2a3a4a5a6a7";
    /// madmin-go's shape for an empty plaintext: the header and one empty last fragment.
    const GO_AES_EMPTY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00a0a1a2a3a4a5a6a7\
        e02a192475609c16550b75ec9472e7de";
    /// The Python SDK's `encrypt(SHORT)`.
    const PY_AES_SHORT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00a0a1a2a3a4a5a6a7\
        a63ef4118f2727aa68f7fdd8c27f499ea70b5ceb65f6d2fe99697c8389fb799c3f6692aa79f3bdb4f081f9c0935a1db01306\
        f62608a8978b15ef19cafb813c27fa59b3fa8e73f8082f27b24ae374835020cfb1658b90";
    /// SHORT sealed with id 0x01 (ChaCha20-Poly1305).
    const PY_CHACHA_SHORT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f01a0a1a2a3a4a5a6a7\
        43230a3d948525efb937001be29c90443dbc8da06a59e7cac70a468f7dffbf41d055d0366742c5ab5f2f90f39ce87dcad4b9\
        642681cc17a09037b5e5768b6a237d558fde69b066cf63f9097a2d69e929be8d6e604336";
    /// SHORT sealed with id 0x02 (PBKDF2-HMAC-SHA256, AES-256-GCM).
    const PY_PBKDF2_SHORT: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f02a0a1a2a3a4a5a6a7\
        4c2872644fa15e461ec7202090c947ca5394316e182bc6aa6a7ba83d82df5111846691c0fbe74e6886bdb6a38e3346dd72b7\
        2ccd282fd61213c87a53602cd6f899acb44b05b43a611c7fe221cefbbb043561e0c20682";
    /// (algorithm id, plaintext length, sealed length, SHA-256 of the sealed body) of the long
    /// vectors; the plaintext is `pattern(length)`.
    const PY_LONG: [(u8, usize, usize, &str); 3] = [
        (
            0x00,
            16384,
            16441,
            "fcd573ac945d777aad034f82369696b2e11eb061dcc00a29957e9884cb46aa7b",
        ),
        (
            0x00,
            40000,
            40089,
            "cb7503ffd08247f4c63570d9cc13508f4738e0122e506083ea7398d2e3c16e1d",
        ),
        (
            0x01,
            40000,
            40089,
            "b9ca07917c22fafa601828cc4c064a976d3b1e95ee01aab78298a44377a0439a",
        ),
    ];

    /// The plaintext pattern of the long vectors: byte i is (31 i + 7) mod 256.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i * 31 + 7) % 256) as u8).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The cipher of [`SECRET`] and [`SALT`] for algorithm `id`, derived once per test binary.
    fn fixed_cipher(id: u8) -> &'static BodyCipher {
        static CIPHERS: [OnceLock<BodyCipher>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        CIPHERS[usize::from(id)].get_or_init(|| BodyCipher::derive(id, SECRET, &SALT).unwrap())
    }

    /// Seals like the vectors: [`SECRET`], [`SALT`], [`PREFIX`].
    fn seal_fixed(id: u8, plaintext: &[u8]) -> Vec<u8> {
        seal_body(fixed_cipher(id), id, &SALT, &PREFIX, plaintext).unwrap()
    }

    /// `decrypt` for bodies whose salt is [`SALT`] and secret [`SECRET`], without deriving again.
    fn open_fixed(sealed: &[u8]) -> Result<Vec<u8>, MadminCryptoError> {
        let body = parse(sealed)?;
        assert_eq!(body.salt, &SALT);
        open_fragments(fixed_cipher(body.id), body.prefix, body.fragments)
    }

    fn sealed_len(plaintext_len: usize) -> usize {
        HEADER_LEN + plaintext_len + plaintext_len.div_ceil(FRAGMENT_LEN).max(1) * TAG_LEN
    }

    #[test]
    fn madmin_keys_match_python() {
        assert_eq!(
            hex::encode(derive_key(ID_ARGON2ID_AES_GCM, SECRET, &SALT).unwrap()),
            "f6bb1988112056440736002e7338d3499a74f3f8de370a995f40c495c9decb65"
        );
        assert_eq!(
            hex::encode(derive_key(ID_PBKDF2_AES_GCM, SECRET, &SALT).unwrap()),
            "a381557ac0d240cf9fee63ba0fc27c93271d4eae8c8ae0d7cd9c67a365c17be3"
        );
        let mut key = [0; KEY_LEN];
        // RFC 7914, section 11 (its first 32 bytes).
        pbkdf2_hmac_sha256(b"passwd", b"salt", 1, &mut key);
        assert_eq!(
            hex::encode(key),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        // A password longer than a SHA-256 block is hashed first (Python's hashlib).
        pbkdf2_hmac_sha256(&[b'x'; 100], &SALT, 3, &mut key);
        assert_eq!(
            hex::encode(key),
            "34e0f821ccfae5b091c062938c7b07f6f6c306e213913431d0ad04bf09e77f1d"
        );
    }

    #[test]
    fn madmin_decrypts_python_vectors() {
        assert_eq!(decrypt(SECRET, &unhex(PY_AES_SHORT)).unwrap(), SHORT);
        assert_eq!(decrypt(SECRET, &unhex(PY_CHACHA_SHORT)).unwrap(), SHORT);
        assert_eq!(decrypt(SECRET, &unhex(PY_PBKDF2_SHORT)).unwrap(), SHORT);
        assert_eq!(decrypt(SECRET, &unhex(GO_AES_EMPTY)).unwrap(), b"");
    }

    #[test]
    fn madmin_seals_byte_identical_to_python() {
        assert_eq!(
            hex::encode(seal_fixed(ID_ARGON2ID_AES_GCM, SHORT)),
            PY_AES_SHORT.replace(' ', "")
        );
        assert_eq!(
            seal_fixed(ID_ARGON2ID_CHACHA20_POLY1305, SHORT),
            unhex(PY_CHACHA_SHORT)
        );
        assert_eq!(seal_fixed(ID_PBKDF2_AES_GCM, SHORT), unhex(PY_PBKDF2_SHORT));
        assert_eq!(seal_fixed(ID_ARGON2ID_AES_GCM, b""), unhex(GO_AES_EMPTY));
        for (id, len, sealed_len, digest) in PY_LONG {
            let plaintext = pattern(len);
            let sealed = seal_fixed(id, &plaintext);
            assert_eq!(
                (sealed.len(), sha256_hex(&sealed).as_str()),
                (sealed_len, digest),
                "id {id}, {len} bytes"
            );
            assert_eq!(open_fixed(&sealed).unwrap(), plaintext);
        }
    }

    #[test]
    fn madmin_python_empty_body_is_refused() {
        // The Python SDK seals an empty plaintext into the header alone; madmin-go refuses it.
        assert!(matches!(
            decrypt(SECRET, &unhex(PY_AES_EMPTY)),
            Err(MadminCryptoError::MissingFinalFragment)
        ));
    }

    #[test]
    fn madmin_round_trips() {
        for len in [0, 1, 16383, 16384, 16385, 50000] {
            let plaintext = pattern(len);
            let sealed = encrypt(SECRET, &plaintext).unwrap();
            assert_eq!(sealed.len(), sealed_len(len), "{len} bytes");
            assert_eq!(sealed[SALT_LEN], ID_ARGON2ID_AES_GCM);
            assert_eq!(decrypt(SECRET, &sealed).unwrap(), plaintext, "{len} bytes");
        }
    }

    #[test]
    fn madmin_fragment_boundaries() {
        // Exactly 16 KiB: one full last fragment, no empty one after it; 32 KiB: two.
        assert_eq!(
            seal_fixed(0, &pattern(16384)).len(),
            HEADER_LEN + SEALED_FRAGMENT_LEN
        );
        assert_eq!(
            seal_fixed(0, &pattern(32768)).len(),
            HEADER_LEN + 2 * SEALED_FRAGMENT_LEN
        );
        for len in [0, 1, 16383, 16384, 16385, 32768, 50000] {
            let plaintext = pattern(len);
            let sealed = seal_fixed(ID_ARGON2ID_AES_GCM, &plaintext);
            assert_eq!(sealed.len(), sealed_len(len), "{len} bytes");
            assert_eq!(open_fixed(&sealed).unwrap(), plaintext, "{len} bytes");
            let chacha = seal_fixed(ID_ARGON2ID_CHACHA20_POLY1305, &plaintext);
            assert_eq!(open_fixed(&chacha).unwrap(), plaintext, "{len} bytes");
        }
    }

    #[test]
    fn madmin_fresh_salt_and_nonce_per_body() {
        let a = encrypt(SECRET, SHORT).unwrap();
        let b = encrypt(SECRET, SHORT).unwrap();
        assert_ne!(a[..SALT_LEN], b[..SALT_LEN]);
        assert_ne!(a[SALT_LEN + 1..HEADER_LEN], b[SALT_LEN + 1..HEADER_LEN]);
        assert!(!a.windows(SHORT.len()).any(|w| w == SHORT));
    }

    #[test]
    fn madmin_refuses_bad_framing() {
        let sealed = seal_fixed(0, &pattern(40000)); // fragments of 16400, 16400, 7265 bytes
        assert!(matches!(
            decrypt(SECRET, &[]),
            Err(MadminCryptoError::TruncatedHeader)
        ));
        assert!(matches!(
            decrypt(SECRET, &sealed[..HEADER_LEN - 1]),
            Err(MadminCryptoError::TruncatedHeader)
        ));
        assert!(matches!(
            decrypt(SECRET, &sealed[..HEADER_LEN]),
            Err(MadminCryptoError::MissingFinalFragment)
        ));
        for id in [0x03, 0x80, 0xff] {
            let mut unknown = sealed.clone();
            unknown[SALT_LEN] = id;
            assert!(
                matches!(decrypt(SECRET, &unknown), Err(MadminCryptoError::UnknownAlgorithm(i)) if i == id)
            );
        }
        // Cut inside the last fragment: fewer bytes than a tag, or more but not all.
        let two_full = HEADER_LEN + 2 * SEALED_FRAGMENT_LEN;
        assert!(matches!(
            open_fixed(&sealed[..two_full + TAG_LEN - 1]),
            Err(MadminCryptoError::Truncated)
        ));
        assert!(matches!(
            open_fixed(&sealed[..sealed.len() - 1]),
            Err(MadminCryptoError::NotAuthentic { fragment: 3 })
        ));
        // Cut right after a fragment that is not the last.
        assert!(matches!(
            open_fixed(&sealed[..two_full]),
            Err(MadminCryptoError::MissingFinalFragment)
        ));
        assert!(matches!(
            open_fixed(&sealed[..HEADER_LEN + SEALED_FRAGMENT_LEN]),
            Err(MadminCryptoError::MissingFinalFragment)
        ));
        // An empty last fragment missing (madmin-go's empty body, cut back to the Python SDK's).
        assert!(matches!(
            open_fixed(&unhex(PY_AES_EMPTY)),
            Err(MadminCryptoError::MissingFinalFragment)
        ));
    }

    #[test]
    fn madmin_refuses_data_after_the_final_fragment() {
        // A last full fragment followed by more data.
        let mut sealed = seal_fixed(0, &pattern(16384));
        sealed.extend_from_slice(&[0; TAG_LEN + 4]);
        assert!(matches!(
            open_fixed(&sealed),
            Err(MadminCryptoError::TrailingData)
        ));
        // A whole second body's fragments appended.
        let mut sealed = seal_fixed(0, &pattern(16384));
        let other = seal_fixed(0, &pattern(100));
        sealed.extend_from_slice(&other[HEADER_LEN..]);
        assert!(matches!(
            open_fixed(&sealed),
            Err(MadminCryptoError::TrailingData)
        ));
        // After a short last fragment the extra bytes merge with it.
        let mut sealed = seal_fixed(0, SHORT);
        sealed.extend_from_slice(&[0; TAG_LEN]);
        assert!(matches!(
            open_fixed(&sealed),
            Err(MadminCryptoError::NotAuthentic { fragment: 1 })
        ));
        // Less than a tag of extra bytes after a full last fragment is a cut fragment.
        let mut sealed = seal_fixed(0, &pattern(16384));
        sealed.push(0);
        assert!(matches!(open_fixed(&sealed), Err(MadminCryptoError::Truncated)));
    }

    #[test]
    fn madmin_refuses_reordered_and_flipped_fragments() {
        let sealed = seal_fixed(0, &pattern(40000));
        let first = HEADER_LEN..HEADER_LEN + SEALED_FRAGMENT_LEN;
        let second = first.end..first.end + SEALED_FRAGMENT_LEN;
        let mut swapped = sealed[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&sealed[second.clone()]);
        swapped.extend_from_slice(&sealed[first.clone()]);
        swapped.extend_from_slice(&sealed[second.end..]);
        assert!(matches!(
            open_fixed(&swapped),
            Err(MadminCryptoError::NotAuthentic { fragment: 1 })
        ));
        // Fragment 2 repeated (in the place of fragment 3).
        let mut repeated = sealed[..second.end].to_vec();
        repeated.extend_from_slice(&sealed[second.clone()]);
        repeated.extend_from_slice(&sealed[second.end..]);
        assert!(matches!(
            open_fixed(&repeated),
            Err(MadminCryptoError::NotAuthentic { fragment: 3 })
        ));
        // A flipped bit anywhere after the salt: ciphertext, tag, nonce prefix.
        for (at, fragment) in [
            (first.start, 1),
            (second.start + 100, 2),
            (second.end - 1, 2),
            (sealed.len() - TAG_LEN - 1, 3),
            (sealed.len() - 1, 3),
            (SALT_LEN + 1, 1),
            (HEADER_LEN - 1, 1),
        ] {
            let mut flipped = sealed.clone();
            flipped[at] ^= 0x01;
            let result = open_fixed(&flipped);
            assert!(
                matches!(result, Err(MadminCryptoError::NotAuthentic { fragment: f }) if f == fragment),
                "bit flipped at {at}: {result:?}"
            );
        }
        // The same flips in a ChaCha20-Poly1305 body.
        let chacha = seal_fixed(ID_ARGON2ID_CHACHA20_POLY1305, &pattern(40000));
        for at in [first.start, second.end - 1, chacha.len() - 1] {
            let mut flipped = chacha.clone();
            flipped[at] ^= 0x80;
            assert!(matches!(
                open_fixed(&flipped),
                Err(MadminCryptoError::NotAuthentic { .. })
            ));
        }
        // Another algorithm id over the same salt.
        let mut relabelled = sealed.clone();
        relabelled[SALT_LEN] = ID_ARGON2ID_CHACHA20_POLY1305;
        assert!(matches!(
            open_fixed(&relabelled),
            Err(MadminCryptoError::NotAuthentic { fragment: 1 })
        ));
    }

    #[test]
    fn madmin_refuses_wrong_secret_and_salt() {
        let sealed = unhex(PY_AES_SHORT);
        assert!(matches!(
            decrypt(b"strata-test-secret-key-0123456788", &sealed),
            Err(MadminCryptoError::NotAuthentic { fragment: 1 })
        ));
        let mut salted = sealed.clone();
        salted[0] ^= 0x01;
        assert!(matches!(
            decrypt(SECRET, &salted),
            Err(MadminCryptoError::NotAuthentic { fragment: 1 })
        ));
    }

    #[test]
    fn madmin_errors_hold_no_key_material() {
        let key = derive_key(ID_ARGON2ID_AES_GCM, SECRET, &SALT).unwrap();
        let secret = String::from_utf8(SECRET.to_vec()).unwrap();
        let errors = [
            MadminCryptoError::TruncatedHeader,
            MadminCryptoError::UnknownAlgorithm(7),
            MadminCryptoError::MissingFinalFragment,
            MadminCryptoError::Truncated,
            MadminCryptoError::TrailingData,
            MadminCryptoError::NotAuthentic { fragment: 2 },
            MadminCryptoError::TooLarge,
            MadminCryptoError::KeyDerivation("Argon2id refused its input"),
            MadminCryptoError::Seal,
            decrypt(b"wrong", &unhex(PY_AES_SHORT)).unwrap_err(),
        ];
        for error in errors {
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(
                    !text.contains(&secret) && !text.contains(&hex::encode(key)),
                    "{text}"
                );
            }
        }
    }
}
