//! The crate's one error type, [`ErasureError`].
//!
//! Invariant: every variant states a domain fact (which limit, which shard, how many were
//! needed) so that callers can match on it; none carries a backtrace or an I/O error, because
//! this crate does no I/O.

/// Why an erasure operation refused its input or could not produce its output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErasureError {
    /// The data/parity split is not allowed.
    #[error(
        "invalid erasure layout {n_data}+{n_parity}: need 1 <= data, parity <= data and \
         {min}..={max} shards in total",
        min = crate::SET_DRIVES_MIN,
        max = crate::SET_DRIVES_MAX
    )]
    InvalidLayout {
        /// Requested data shards.
        n_data: usize,
        /// Requested parity shards.
        n_parity: usize,
    },
    /// An erasure set must have between [`crate::SET_DRIVES_MIN`] and [`crate::SET_DRIVES_MAX`] drives.
    #[error(
        "an erasure set has {min}..={max} drives, not {n_drives}",
        min = crate::SET_DRIVES_MIN,
        max = crate::SET_DRIVES_MAX
    )]
    InvalidSetSize {
        /// Requested number of drives.
        n_drives: usize,
    },
    /// A block passed for encoding or decoding is longer than [`crate::BLOCK_SIZE_BYTES`].
    #[error("erasure block of {block_len} bytes exceeds the {max_bytes}-byte block size")]
    BlockTooLarge {
        /// Length of the offending block in bytes.
        block_len: usize,
        /// The limit, [`crate::BLOCK_SIZE_BYTES`].
        max_bytes: usize,
    },
    /// Fewer intact shards than data shards: the block cannot be recovered.
    #[error("too few intact shards to recover the block: need {needed}, got {got}")]
    TooFewShards {
        /// Intact shards needed (the number of data shards).
        needed: usize,
        /// Intact shards present (missing and checksum-failed ones excluded).
        got: usize,
    },
    /// The caller passed a shard list whose length is not the layout's total shard count.
    #[error("expected {expected} shard slots (data + parity), got {got}")]
    ShardCountMismatch {
        /// The layout's data + parity shards.
        expected: usize,
        /// Slots passed.
        got: usize,
    },
    /// A present framed shard block does not have the length the block length implies.
    /// This is a caller error (wrong `block_len`, or a short read passed as present): a
    /// truncated shard must be passed as missing (`None`).
    #[error("framed shard {shard_idx} is {got_bytes} bytes, expected {expected_bytes}")]
    ShardLengthMismatch {
        /// Index of the shard in the stripe (data shards first).
        shard_idx: usize,
        /// Length implied by the block length: checksum bytes + shard length.
        expected_bytes: usize,
        /// Length passed.
        got_bytes: usize,
    },
    /// The Reed-Solomon codec refused input that this crate had already checked. This means
    /// a broken invariant inside this crate, never damaged data.
    #[error("Reed-Solomon codec failed: {reason}")]
    CodecFailed {
        /// The codec's own description of the failure.
        reason: String,
    },
}
