//! The object encryption format of server-side encryption (SSE-S3, SSE-KMS, SSE-C): how an
//! object version's bytes are sealed before erasure coding and opened after it. No I/O, no
//! KMS: callers bring the key-encryption key (from the KMS, or derived from an SSE-C key) and
//! the bytes.
//!
//! # Keys
//!
//! - Each object version gets a random 256-bit **data key** ([`DataKey`]). It is stored only
//!   sealed ([`envelope`]): AES-256-GCM under a 256-bit key-encryption key, with the
//!   encryption context (bucket, key, algorithm: whatever the caller binds) as associated data,
//!   so a sealed key moved to another object does not open.
//! - Each sealed **part** (a single PUT is part 1) gets its own key: HMAC-SHA256(data key,
//!   `"strata-sse/v1 part" || part_iv || part_number (u32, big-endian)`), where `part_iv` is 16
//!   random bytes chosen when the part is written and kept in the part's header. A part
//!   uploaded again gets a new `part_iv`, hence a new key: nonces never repeat under a key.
//!
//! # A sealed part, byte by byte
//!
//! A sealed part is a 20-byte header, kept beside the stored bytes (the object layer keeps it
//! in the part's record, so a range read never needs an extra read for it), and the packages,
//! which are the stored bytes:
//!
//! ```text
//! header (20 bytes):
//!   0      version    = 1
//!   1      cipher     = 1 (AES-256-GCM) | 2 (ChaCha20-Poly1305)
//!   2      log2 of the sealed package size (16: 64 KiB)
//!   3      reserved   = 0
//!   4..20  part_iv    (16 random bytes)
//! stored bytes: packages, in order; package i (0-based) is
//!   ciphertext of plaintext bytes [i*P, min((i+1)*P, n)) || 16-byte tag
//! ```
//!
//! `P` is the package's plaintext size, 65,520 bytes, so that a whole sealed package is 64 KiB
//! and sixteen fill one 1 MiB erasure block exactly: the object layer cuts plaintext into
//! blocks of 16 packages, each seals into one stored block, and a read opens whole packages of
//! each block without copying them (see docs/BENCHMARKS.md, "Encryption"). Every package but
//! the last holds exactly `P` plaintext bytes; the last holds 1..=P (an empty part is one
//! empty final package, so it too is authenticated). Package `i`'s 96-bit nonce is
//! `flags (u32, big-endian) || i (u64, big-endian)` with `flags` = 0x8000_0000 on the final
//! package and 0 otherwise; the associated data is the 20-byte header. Hence:
//! - a flipped bit anywhere fails that package's tag;
//! - reordered or duplicated packages fail (the index is in the nonce);
//! - a part cut at a package boundary fails (its new last package was sealed as non-final),
//!   and a part with packages appended after the final one fails the same way;
//! - a header changed (cipher, size, iv) fails every package.
//!
//! Stored size of `n` plaintext bytes: `n + 16 * max(1, ceil(n / P))`
//! ([`sealed_size`]). A plaintext range maps to whole packages ([`SealedRange`]): a range
//! read fetches and opens only the packages it covers.
//!
//! The cipher is AES-256-GCM on CPUs with AES instructions and ChaCha20-Poly1305 elsewhere
//! ([`Cipher::preferred`]); the header names it, so either reads anywhere.
#![deny(missing_docs)]

pub mod envelope;
mod format;
pub mod values;

pub use envelope::{DataKey, ENVELOPE_BYTES, opaque_etag, open_data_key, seal_data_key};
pub use format::{
    Cipher, HEADER_BYTES, PACKAGE_BYTES, PartOpener, PartSealer, SealedRange, TAG_BYTES, sealed_size,
};
pub use values::ValueKey;

/// What can go wrong opening sealed bytes. None of these carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    /// A package's tag did not verify: the bytes were changed, reordered, cut short, or the key
    /// is not the one they were sealed with.
    #[error("sealed data does not authenticate (damaged, truncated, reordered, or another key)")]
    Authentication,
    /// The header is not one this version writes.
    #[error("unsupported sealed-data header: {0}")]
    Header(&'static str),
    /// The sealed bytes end inside a header or package.
    #[error("sealed data is truncated")]
    Truncated,
    /// The operating system's random source failed.
    #[error("no randomness available")]
    Random,
}
