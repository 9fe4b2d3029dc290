//! The Reed-Solomon codec behind a small internal trait, so it can be swapped.
//!
//! [`ShardCodec`] is all [`crate::Erasure`] needs from a Reed-Solomon library: compute parity
//! shards from data shards, and rebuild missing shards in place. [`RseCodec`] implements it
//! with `reed-solomon-erasure` 6 (GF(2^8), systematic Vandermonde-derived matrix as in
//! Backblaze's JavaReedSolomon), chosen by benchmark over `reed-solomon-simd` (see
//! docs/BENCHMARKS.md).
//!
//! Invariant: parity bytes are part of the on-disk format. Another codec computes other
//! parity bytes for the same data, so swapping the implementation needs a new format version
//! for objects written from then on; data shards (systematic) are the same under any codec.

use std::fmt;

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::ErasureError;

/// What erasure coding needs from a Reed-Solomon implementation.
///
/// All shards passed in one call have the same, non-zero length.
pub(crate) trait ShardCodec: Send + Sync + fmt::Debug {
    /// Computes `parity` (n_parity slices) from `data` (n_data slices).
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), ErasureError>;

    /// Rebuilds the shards whose `present` flag is false, in place. `shards` has n_total
    /// slices. With `data_only`, only missing data shards are rebuilt and missing parity
    /// slots are ignored (they may be empty); otherwise every missing shard is rebuilt and
    /// every slot has the shard length. Needs at least n_data present shards.
    fn reconstruct(
        &self,
        shards: &mut [&mut [u8]],
        present: &[bool],
        data_only: bool,
    ) -> Result<(), ErasureError>;
}

/// `reed-solomon-erasure` 6 with its `simd-accel` C kernels (AVX2 on x86-64).
pub(crate) struct RseCodec {
    inner: ReedSolomon,
}

impl fmt::Debug for RseCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RseCodec")
            .field("n_data", &self.inner.data_shard_count())
            .field("n_parity", &self.inner.parity_shard_count())
            .finish()
    }
}

impl RseCodec {
    /// A codec for `n_data` + `n_parity` shards; `n_parity` must be at least 1.
    pub(crate) fn new(n_data: usize, n_parity: usize) -> Result<RseCodec, ErasureError> {
        let inner = ReedSolomon::new(n_data, n_parity).map_err(codec_failed)?;
        Ok(RseCodec { inner })
    }
}

fn codec_failed(err: reed_solomon_erasure::Error) -> ErasureError {
    ErasureError::CodecFailed {
        reason: err.to_string(),
    }
}

impl ShardCodec for RseCodec {
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), ErasureError> {
        self.inner.encode_sep(data, parity).map_err(codec_failed)
    }

    fn reconstruct(
        &self,
        shards: &mut [&mut [u8]],
        present: &[bool],
        data_only: bool,
    ) -> Result<(), ErasureError> {
        if present.len() != shards.len() {
            return Err(ErasureError::ShardCountMismatch {
                expected: shards.len(),
                got: present.len(),
            });
        }
        let mut flagged: Vec<(&mut [u8], bool)> = shards
            .iter_mut()
            .zip(present)
            .map(|(shard, &is_present)| (&mut **shard, is_present))
            .collect();
        if data_only {
            self.inner.reconstruct_data(&mut flagged).map_err(codec_failed)
        } else {
            self.inner.reconstruct(&mut flagged).map_err(codec_failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_rebuild_data_and_parity() {
        let codec = RseCodec::new(3, 2).unwrap();
        let data: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i * 10 + 1; 16]).collect();
        let data_refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![vec![0u8; 16]; 2];
        let mut parity_refs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        codec.encode(&data_refs, &mut parity_refs).unwrap();

        let original: Vec<Vec<u8>> = data.iter().chain(parity.iter()).cloned().collect();
        let mut damaged = original.clone();
        damaged[0].fill(0xAA);
        damaged[4].fill(0xAA);
        let present = [false, true, true, true, false];
        let mut refs: Vec<&mut [u8]> = damaged.iter_mut().map(Vec::as_mut_slice).collect();
        codec.reconstruct(&mut refs, &present, false).unwrap();
        assert_eq!(damaged, original);
    }

    #[test]
    fn data_only_ignores_empty_parity_slots() {
        let codec = RseCodec::new(2, 2).unwrap();
        let data = [vec![1u8; 8], vec![2u8; 8]];
        let data_refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![vec![0u8; 8]; 2];
        let mut parity_refs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        codec.encode(&data_refs, &mut parity_refs).unwrap();

        let mut lost = vec![0u8; 8];
        let mut kept = data[1].clone();
        let mut empty: [u8; 0] = [];
        let mut p1 = parity[1].clone();
        let mut refs: Vec<&mut [u8]> = vec![&mut lost, &mut kept, &mut empty, &mut p1];
        codec
            .reconstruct(&mut refs, &[false, true, false, true], true)
            .unwrap();
        assert_eq!(lost, data[0]);
    }

    #[test]
    fn too_few_present_is_an_error() {
        let codec = RseCodec::new(2, 1).unwrap();
        let mut a = vec![0u8; 4];
        let mut b = vec![0u8; 4];
        let mut c = vec![0u8; 4];
        let mut refs: Vec<&mut [u8]> = vec![&mut a, &mut b, &mut c];
        let got = codec.reconstruct(&mut refs, &[true, false, false], false);
        assert!(matches!(got, Err(ErasureError::CodecFailed { .. })), "{got:?}");
    }
}
