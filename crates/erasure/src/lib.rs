//! Reed-Solomon erasure coding of 1 MiB blocks and bitrot framing of shard blocks.
//!
//! An object part is cut into blocks of [`BLOCK_SIZE_BYTES`] (the last one shorter). Each
//! block is split into `n_data` data shards and `n_parity` parity shards ([`Layout`]); shard
//! `i` of every block goes to drive `i` of the erasure set, appended to that drive's shard
//! file for the part. [`Erasure`] encodes a block into framed shard blocks, decodes a block
//! from any `n_data` intact ones, and rebuilds lost ones for healing. [`bitrot`] owns the
//! per-block checksum.
//!
//! **Architecture invariant:** this crate does no I/O and knows nothing of drives, objects or
//! S3. It turns bytes into framed shard blocks and back, and says which shards were damaged.
//!
//! # On-disk format (shard files)
//!
//! All of it follows from the part size and the layout; nothing else is stored in a shard
//! file (no header, no magic: the object's metadata record names the layout and format).
//!
//! For a part of `part_size` bytes:
//!
//! - `n_blocks = ceil(part_size / BLOCK_SIZE_BYTES)` (an empty part has no block and an empty
//!   shard file); block `b` covers part bytes `b * BLOCK_SIZE_BYTES ..` and is
//!   `block_len = min(BLOCK_SIZE_BYTES, part_size - b * BLOCK_SIZE_BYTES)` bytes long.
//! - `shard_len = ceil(block_len / n_data)`. Data shard `j` (`0 <= j < n_data`) holds block
//!   bytes `j * shard_len .. min((j + 1) * shard_len, block_len)`, then zero bytes up to
//!   `shard_len` (systematic code: a healthy read concatenates data shards). Parity shard
//!   `n_data + k` holds Reed-Solomon parity row `k` over GF(2^8) (field polynomial 0x11D),
//!   computed with the systematic Vandermonde-derived matrix of Backblaze's JavaReedSolomon as
//!   implemented by `reed-solomon-erasure` 6: parity bytes depend on this choice of code.
//! - The shard file of shard `i` is the concatenation, for `b` in `0..n_blocks`, of the framed
//!   shard block `i` of block `b`:
//!
//! | bytes (within one framed block) | content |
//! |---|---|
//! | `0 .. 8` ([`bitrot::HASH_BYTES`]) | XXH3-64, seed 0, of the `shard_len` shard bytes that follow, as a little-endian `u64` |
//! | `8 .. 8 + shard_len` | the shard bytes (data or parity, padding included) |
//!
//! So framed block `b` starts at `b * (8 + ceil(BLOCK_SIZE_BYTES / n_data))` and the file is
//! [`Erasure::shard_file_size`] bytes long; [`Erasure::framed_block_span`] gives both.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use strata_erasure::{Erasure, ErasureError, Layout};
//!
//! let erasure = Erasure::new(Layout::default_for_set(4)?)?; // 2 data + 2 parity
//! let block = b"hello, erasure coding".to_vec();
//! let framed = erasure.encode_block_framed(&block)?;
//! assert_eq!(framed.len(), 4);
//!
//! // Lose two shards: the block still decodes.
//! let mut slots: Vec<Option<Bytes>> = framed.iter().cloned().map(Some).collect();
//! slots[0] = None;
//! slots[3] = None;
//! let decoded = erasure.decode_block_framed(&slots, block.len())?;
//! assert_eq!(decoded.data, block);
//!
//! // And healing rebuilds the lost framed shard blocks byte for byte.
//! assert_eq!(erasure.reconstruct_block_framed(&slots, block.len())?, framed);
//! # Ok::<(), ErasureError>(())
//! ```
#![deny(missing_docs)]

pub mod bitrot;
mod codec;
mod erasure;
mod error;
mod layout;

pub use erasure::{DecodedBlock, Erasure};
pub use error::ErasureError;
pub use layout::Layout;

/// Size in bytes of an erasure block (the last block of a part may be shorter).
pub const BLOCK_SIZE_BYTES: usize = 1 << 20;
/// Fewest drives (shards per stripe) in an erasure set.
pub const SET_DRIVES_MIN: usize = 2;
/// Most drives (shards per stripe) in an erasure set.
pub const SET_DRIVES_MAX: usize = 16;

const _: () = assert!(SET_DRIVES_MIN >= 2 && SET_DRIVES_MIN <= SET_DRIVES_MAX);
// GF(2^8) Reed-Solomon codes at most 256 shards.
const _: () = assert!(SET_DRIVES_MAX <= 256);
// Shard lengths and offsets are stored in u32-friendly sizes; a block fits in a u32.
const _: () = assert!(BLOCK_SIZE_BYTES <= u32::MAX as usize);
