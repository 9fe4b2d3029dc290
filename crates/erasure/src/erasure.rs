//! [`Erasure`]: encoding one block into framed shard blocks and getting it back.
//!
//! Invariants kept here:
//! - data shards are systematic: data shard `j` of a block of `block_len` bytes holds bytes
//!   `j * shard_len .. (j + 1) * shard_len` of the block, zero-padded to `shard_len`;
//! - a healthy read (all data shards intact) never runs the decoder, it only concatenates;
//! - no shard is used before its bitrot checksum is verified, and every checksum failure is
//!   reported by index;
//! - a rebuilt framed shard block is byte-identical to the one the encoder produced.

use std::sync::Arc;

use bytes::Bytes;

use crate::bitrot::{self, HASH_BYTES};
use crate::codec::{RseCodec, ShardCodec};
use crate::{BLOCK_SIZE_BYTES, ErasureError, Layout};

/// `BLOCK_SIZE_BYTES` as a `u64`, for on-disk offset arithmetic.
const BLOCK_SIZE_BYTES_U64: u64 = BLOCK_SIZE_BYTES as u64;
const _: () = assert!(
    usize::BITS <= u64::BITS,
    "usize -> u64 conversions below are lossless"
);

/// Lossless on every target this crate builds for (checked above).
fn to_u64(n: usize) -> u64 {
    n as u64
}

/// A block decoded from its framed shard blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBlock {
    /// The original block bytes, `block_len` of them.
    pub data: Bytes,
    /// Indexes (data shards first) of the present shards whose checksum failed; they were
    /// treated as missing. The caller should heal them.
    pub corrupt_shards: Vec<usize>,
}

/// Reed-Solomon erasure coding of [`BLOCK_SIZE_BYTES`] blocks for one [`Layout`].
///
/// Cheap to clone and share between threads: the codec (with its cache of inverted decode
/// matrices) sits behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Erasure {
    layout: Layout,
    /// `None` when the layout has no parity: then nothing can ever be rebuilt.
    codec: Option<Arc<dyn ShardCodec>>,
}

/// The verified contents of a stripe of framed shard blocks.
struct CheckedStripe<'a> {
    shard_len: usize,
    /// Shard bytes (checksum stripped) of each intact shard; `None` if missing or corrupt.
    shards: Vec<Option<&'a [u8]>>,
    corrupt_shards: Vec<usize>,
    n_intact: usize,
}

impl Erasure {
    /// An erasure coder for `layout` with blocks of [`BLOCK_SIZE_BYTES`].
    pub fn new(layout: Layout) -> Result<Erasure, ErasureError> {
        let codec: Option<Arc<dyn ShardCodec>> = if layout.n_parity() == 0 {
            None
        } else {
            Some(Arc::new(RseCodec::new(layout.n_data(), layout.n_parity())?))
        };
        Ok(Erasure { layout, codec })
    }

    /// The layout this coder was built for.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Bytes of each shard of a block of `block_len` bytes: `ceil(block_len / n_data)`.
    pub fn shard_len(&self, block_len: usize) -> usize {
        block_len.div_ceil(self.layout.n_data())
    }

    /// Bytes of each framed shard block of a block of `block_len` bytes:
    /// `HASH_BYTES + shard_len(block_len)`.
    pub fn framed_shard_len(&self, block_len: usize) -> usize {
        HASH_BYTES + self.shard_len(block_len)
    }

    /// Encodes one block (at most [`BLOCK_SIZE_BYTES`]) into `n_total` framed shard blocks,
    /// data shards first: each is `bitrot hash || shard bytes`, data shards zero-padded to
    /// [`Erasure::shard_len`]. An empty block gives `n_total` checksum-only frames.
    pub fn encode_block_framed(&self, block: &[u8]) -> Result<Vec<Bytes>, ErasureError> {
        let block_len = block.len();
        check_block_len(block_len)?;
        let shard_len = self.shard_len(block_len);
        let framed_len = HASH_BYTES + shard_len;
        let mut frames: Vec<Vec<u8>> = Vec::with_capacity(self.layout.n_total());
        // Data frames are filled by copying rather than zeroed first: a block is often
        // 1 MiB and memory bandwidth is what encoding spends.
        let mut rest = block;
        for _ in 0..self.layout.n_data() {
            let (chunk, tail) = rest.split_at(rest.len().min(shard_len));
            rest = tail;
            let mut frame = Vec::with_capacity(framed_len);
            frame.extend_from_slice(&[0u8; HASH_BYTES]);
            frame.extend_from_slice(chunk);
            frame.resize(framed_len, 0);
            frames.push(frame);
        }
        debug_assert!(rest.is_empty());
        frames.resize_with(self.layout.n_total(), || vec![0u8; framed_len]);
        if shard_len > 0
            && let Some(codec) = &self.codec
        {
            let (data_frames, parity_frames) = frames.split_at_mut(self.layout.n_data());
            let data: Vec<&[u8]> = data_frames.iter().map(|f| &f[HASH_BYTES..]).collect();
            let mut parity: Vec<&mut [u8]> = parity_frames.iter_mut().map(|f| &mut f[HASH_BYTES..]).collect();
            codec.encode(&data, &mut parity)?;
        }
        Ok(frames
            .into_iter()
            .map(|mut frame| {
                bitrot::seal_in_place(&mut frame);
                Bytes::from(frame)
            })
            .collect())
    }

    /// Recovers a block of `block_len` bytes from its framed shard blocks (`None` = missing).
    ///
    /// Every present shard's checksum is verified; a mismatch counts as missing and its index
    /// is reported in [`DecodedBlock::corrupt_shards`]. With all data shards intact the data
    /// is concatenated without decoding; otherwise the missing data shards are rebuilt.
    ///
    /// Every present shard costs a checksum, so a healthy read should pass only the data
    /// shards it read (parity as `None`) and retry with parity shards when that fails with
    /// [`ErasureError::TooFewShards`] or reports corrupt shards.
    ///
    /// Errors: [`ErasureError::ShardCountMismatch`] unless `framed.len() == n_total`;
    /// [`ErasureError::ShardLengthMismatch`] for a present frame of the wrong length (pass a
    /// short read as `None`); [`ErasureError::TooFewShards`] with fewer than `n_data`
    /// intact shards.
    pub fn decode_block_framed(
        &self,
        framed: &[Option<Bytes>],
        block_len: usize,
    ) -> Result<DecodedBlock, ErasureError> {
        let stripe = self.check_stripe(framed, block_len)?;
        let n_data = self.layout.n_data();
        let data = if block_len == 0 {
            Bytes::new()
        } else if stripe.shards[..n_data].iter().all(Option::is_some) {
            self.concat_data(framed, &stripe, block_len)
        } else {
            self.decode_degraded(&stripe, block_len)?
        };
        debug_assert_eq!(data.len(), block_len);
        Ok(DecodedBlock {
            data,
            corrupt_shards: stripe.corrupt_shards,
        })
    }

    /// For healing: rebuilds every missing or corrupt framed shard block of a block of
    /// `block_len` bytes and returns all `n_total` framed blocks, byte-identical to what
    /// [`Erasure::encode_block_framed`] produced. Same errors as
    /// [`Erasure::decode_block_framed`].
    pub fn reconstruct_block_framed(
        &self,
        framed: &[Option<Bytes>],
        block_len: usize,
    ) -> Result<Vec<Bytes>, ErasureError> {
        let stripe = self.check_stripe(framed, block_len)?;
        if stripe.n_intact == self.layout.n_total() {
            return Ok(framed.iter().flatten().cloned().collect());
        }
        if stripe.shard_len == 0 {
            return Ok((0..self.layout.n_total()).map(|_| bitrot::frame(&[])).collect());
        }
        let codec = self.codec_for_rebuild(&stripe)?;
        let present: Vec<bool> = stripe.shards.iter().map(Option::is_some).collect();
        let mut frames: Vec<Vec<u8>> = stripe
            .shards
            .iter()
            .map(|shard| {
                let mut frame = vec![0u8; HASH_BYTES + stripe.shard_len];
                if let Some(shard) = shard {
                    frame[HASH_BYTES..].copy_from_slice(shard);
                }
                frame
            })
            .collect();
        let mut shard_refs: Vec<&mut [u8]> = frames.iter_mut().map(|f| &mut f[HASH_BYTES..]).collect();
        codec.reconstruct(&mut shard_refs, &present, false)?;
        Ok(frames
            .into_iter()
            .zip(framed)
            .zip(present)
            .map(
                |((mut frame, original), is_present)| match (is_present, original) {
                    (true, Some(original)) => original.clone(),
                    _ => {
                        bitrot::seal_in_place(&mut frame);
                        Bytes::from(frame)
                    }
                },
            )
            .collect())
    }

    /// Number of erasure blocks in a part of `part_size` bytes (0 for an empty part).
    pub fn n_blocks(part_size: u64) -> u64 {
        part_size.div_ceil(BLOCK_SIZE_BYTES_U64)
    }

    /// Length in bytes of block `block_idx` of a part of `part_size` bytes: the block size,
    /// except for a shorter last block; 0 past the end.
    pub fn block_len(part_size: u64, block_idx: u64) -> usize {
        let start = block_idx.saturating_mul(BLOCK_SIZE_BYTES_U64);
        let len = part_size.saturating_sub(start).min(BLOCK_SIZE_BYTES_U64);
        // `len <= BLOCK_SIZE_BYTES`, which is a usize.
        usize::try_from(len).unwrap_or(BLOCK_SIZE_BYTES)
    }

    /// Size in bytes of one shard file holding a part of `part_size` bytes framed block by
    /// block: the sum over blocks of `HASH_BYTES + shard_len(block_len)`. An empty part has
    /// no blocks and an empty shard file.
    pub fn shard_file_size(&self, part_size: u64) -> u64 {
        let n_full_blocks = part_size / BLOCK_SIZE_BYTES_U64;
        let tail_len = Self::block_len(part_size, n_full_blocks);
        let tail_bytes = if tail_len == 0 {
            0
        } else {
            to_u64(self.framed_shard_len(tail_len))
        };
        n_full_blocks
            .saturating_mul(to_u64(self.framed_shard_len(BLOCK_SIZE_BYTES)))
            .saturating_add(tail_bytes)
    }

    /// Where framed block `block_idx` starts in the shard file of a part of `part_size`
    /// bytes, and its framed length: `(offset, len)`. Past the last block it is the empty
    /// span `(shard_file_size(part_size), 0)`.
    pub fn framed_block_span(&self, part_size: u64, block_idx: u64) -> (u64, u64) {
        if block_idx >= Self::n_blocks(part_size) {
            return (self.shard_file_size(part_size), 0);
        }
        let full_framed_len = to_u64(self.framed_shard_len(BLOCK_SIZE_BYTES));
        let offset = block_idx.saturating_mul(full_framed_len);
        let len = to_u64(self.framed_shard_len(Self::block_len(part_size, block_idx)));
        (offset, len)
    }

    /// Checks the stripe's shape and every present checksum.
    fn check_stripe<'a>(
        &self,
        framed: &'a [Option<Bytes>],
        block_len: usize,
    ) -> Result<CheckedStripe<'a>, ErasureError> {
        check_block_len(block_len)?;
        let n_total = self.layout.n_total();
        if framed.len() != n_total {
            return Err(ErasureError::ShardCountMismatch {
                expected: n_total,
                got: framed.len(),
            });
        }
        let shard_len = self.shard_len(block_len);
        let expected_bytes = HASH_BYTES + shard_len;
        let mut shards = Vec::with_capacity(n_total);
        let mut corrupt_shards = Vec::new();
        for (shard_idx, slot) in framed.iter().enumerate() {
            let shard = match slot {
                None => None,
                Some(frame) if frame.len() != expected_bytes => {
                    return Err(ErasureError::ShardLengthMismatch {
                        shard_idx,
                        expected_bytes,
                        got_bytes: frame.len(),
                    });
                }
                Some(frame) => {
                    let verified = bitrot::verify(frame);
                    if verified.is_none() {
                        corrupt_shards.push(shard_idx);
                    }
                    verified
                }
            };
            shards.push(shard);
        }
        let n_intact = shards.iter().flatten().count();
        if n_intact < self.layout.n_data() {
            return Err(ErasureError::TooFewShards {
                needed: self.layout.n_data(),
                got: n_intact,
            });
        }
        Ok(CheckedStripe {
            shard_len,
            shards,
            corrupt_shards,
            n_intact,
        })
    }

    /// The codec, for a stripe that is missing shards. Without parity a stripe that passed
    /// [`Erasure::check_stripe`] is never missing any, so `None` here reports the shortfall.
    fn codec_for_rebuild(&self, stripe: &CheckedStripe<'_>) -> Result<&Arc<dyn ShardCodec>, ErasureError> {
        self.codec.as_ref().ok_or(ErasureError::TooFewShards {
            needed: self.layout.n_total(),
            got: stripe.n_intact,
        })
    }

    /// Healthy read: the block is the concatenation of the data shards, cut to `block_len`.
    fn concat_data(&self, framed: &[Option<Bytes>], stripe: &CheckedStripe<'_>, block_len: usize) -> Bytes {
        if block_len <= stripe.shard_len
            && let Some(Some(first)) = framed.first()
        {
            // The whole block sits in data shard 0: share its buffer instead of copying.
            return first.slice(HASH_BYTES..HASH_BYTES + block_len);
        }
        let mut data = Vec::with_capacity(block_len);
        for shard in stripe.shards[..self.layout.n_data()].iter().flatten() {
            let take = shard.len().min(block_len - data.len());
            data.extend_from_slice(&shard[..take]);
        }
        Bytes::from(data)
    }

    /// Degraded read: rebuild the missing data shards straight into the output buffer,
    /// using just enough intact parity shards.
    fn decode_degraded(&self, stripe: &CheckedStripe<'_>, block_len: usize) -> Result<Bytes, ErasureError> {
        let codec = self.codec_for_rebuild(stripe)?;
        let n_data = self.layout.n_data();
        let shard_len = stripe.shard_len;
        let (data_shards, parity_shards) = stripe.shards.split_at(n_data);
        let n_missing_data = data_shards.iter().filter(|s| s.is_none()).count();

        let mut out = vec![0u8; n_data * shard_len];
        for (chunk, shard) in out.chunks_mut(shard_len).zip(data_shards) {
            if let Some(shard) = shard {
                chunk.copy_from_slice(shard);
            }
        }
        let mut present: Vec<bool> = data_shards.iter().map(Option::is_some).collect();
        let mut parity_scratch: Vec<Vec<u8>> = Vec::with_capacity(parity_shards.len());
        let mut n_parity_used = 0;
        for shard in parity_shards {
            match shard {
                Some(shard) if n_parity_used < n_missing_data => {
                    n_parity_used += 1;
                    parity_scratch.push(shard.to_vec());
                    present.push(true);
                }
                _ => {
                    parity_scratch.push(Vec::new());
                    present.push(false);
                }
            }
        }
        let mut shard_refs: Vec<&mut [u8]> = out
            .chunks_mut(shard_len)
            .chain(parity_scratch.iter_mut().map(Vec::as_mut_slice))
            .collect();
        codec.reconstruct(&mut shard_refs, &present, true)?;
        out.truncate(block_len);
        Ok(Bytes::from(out))
    }
}

fn check_block_len(block_len: usize) -> Result<(), ErasureError> {
    if block_len > BLOCK_SIZE_BYTES {
        return Err(ErasureError::BlockTooLarge {
            block_len,
            max_bytes: BLOCK_SIZE_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erasure(n_data: usize, n_parity: usize) -> Erasure {
        Erasure::new(Layout::new(n_data, n_parity).unwrap()).unwrap()
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn present(frames: &[Bytes]) -> Vec<Option<Bytes>> {
        frames.iter().cloned().map(Some).collect()
    }

    #[test]
    fn erasure_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Erasure>();
    }

    #[test]
    fn shard_len_rounds_up() {
        let e = erasure(4, 2);
        let cases = [
            (0, 0),
            (1, 1),
            (4, 1),
            (5, 2),
            (BLOCK_SIZE_BYTES, BLOCK_SIZE_BYTES / 4),
        ];
        for (block_len, shard_len) in cases {
            assert_eq!(e.shard_len(block_len), shard_len, "{block_len}");
        }
        assert_eq!(erasure(12, 4).shard_len(BLOCK_SIZE_BYTES), 87_382);
    }

    #[test]
    fn encode_layout_is_systematic_and_framed() {
        let e = erasure(3, 2);
        let block = pattern(10);
        let frames = e.encode_block_framed(&block).unwrap();
        assert_eq!(frames.len(), 5);
        for frame in &frames {
            assert_eq!(frame.len(), HASH_BYTES + 4);
            assert!(bitrot::verify(frame).is_some());
        }
        assert_eq!(&frames[0][HASH_BYTES..], &block[0..4]);
        assert_eq!(&frames[1][HASH_BYTES..], &block[4..8]);
        assert_eq!(&frames[2][HASH_BYTES..], &[block[8], block[9], 0, 0]);
    }

    #[test]
    fn encode_rejects_oversized_block() {
        let e = erasure(2, 2);
        let got = e.encode_block_framed(&vec![0u8; BLOCK_SIZE_BYTES + 1]);
        assert_eq!(
            got,
            Err(ErasureError::BlockTooLarge {
                block_len: BLOCK_SIZE_BYTES + 1,
                max_bytes: BLOCK_SIZE_BYTES
            })
        );
    }

    #[test]
    fn healthy_decode_shares_small_blocks() {
        let e = erasure(2, 1);
        let frames = e.encode_block_framed(b"x").unwrap();
        let decoded = e.decode_block_framed(&present(&frames), 1).unwrap();
        assert_eq!(&decoded.data[..], b"x");
        assert!(decoded.corrupt_shards.is_empty());
    }

    #[test]
    fn degraded_decode_reports_corruption() {
        let e = erasure(4, 2);
        let block = pattern(1000);
        let frames = e.encode_block_framed(&block).unwrap();
        let mut slots = present(&frames);
        slots[0] = None;
        let mut damaged = frames[2].to_vec();
        damaged[HASH_BYTES + 3] ^= 0x10;
        slots[2] = Some(Bytes::from(damaged));
        let decoded = e.decode_block_framed(&slots, block.len()).unwrap();
        assert_eq!(decoded.data, block);
        assert_eq!(decoded.corrupt_shards, vec![2]);
    }

    #[test]
    fn decode_errors() {
        let e = erasure(2, 2);
        let frames = e.encode_block_framed(&pattern(100)).unwrap();
        let slots = present(&frames);
        assert_eq!(
            e.decode_block_framed(&slots[..3], 100),
            Err(ErasureError::ShardCountMismatch { expected: 4, got: 3 })
        );
        // Same shard length: the frames cannot tell a wrong `block_len`, the caller keeps it.
        assert_eq!(
            e.decode_block_framed(&slots, 99).unwrap().data,
            pattern(100)[..99]
        );
        assert_eq!(
            e.decode_block_framed(&slots, 98),
            Err(ErasureError::ShardLengthMismatch {
                shard_idx: 0,
                expected_bytes: HASH_BYTES + 49,
                got_bytes: HASH_BYTES + 50
            })
        );
        let lost = vec![None, Some(frames[1].clone()), None, None];
        assert_eq!(
            e.decode_block_framed(&lost, 100),
            Err(ErasureError::TooFewShards { needed: 2, got: 1 })
        );
        assert_eq!(
            e.decode_block_framed(&slots, BLOCK_SIZE_BYTES + 1),
            Err(ErasureError::BlockTooLarge {
                block_len: BLOCK_SIZE_BYTES + 1,
                max_bytes: BLOCK_SIZE_BYTES
            })
        );
    }

    #[test]
    fn empty_block_round_trips_with_losses() {
        let e = erasure(2, 2);
        let frames = e.encode_block_framed(&[]).unwrap();
        assert!(frames.iter().all(|f| f.len() == HASH_BYTES));
        let slots = vec![None, None, Some(frames[2].clone()), Some(frames[3].clone())];
        assert_eq!(e.decode_block_framed(&slots, 0).unwrap().data, Bytes::new());
        assert_eq!(e.reconstruct_block_framed(&slots, 0).unwrap(), frames);
    }

    #[test]
    fn reconstruct_rebuilds_identical_frames() {
        let e = erasure(3, 3);
        let block = pattern(3001);
        let frames = e.encode_block_framed(&block).unwrap();
        let mut slots = present(&frames);
        slots[1] = None;
        slots[4] = None;
        let mut damaged = frames[5].to_vec();
        damaged[0] ^= 1;
        slots[5] = Some(Bytes::from(damaged));
        assert_eq!(e.reconstruct_block_framed(&slots, block.len()).unwrap(), frames);
    }

    #[test]
    fn zero_parity_layout_encodes_and_refuses_losses() {
        let e = erasure(2, 0);
        let block = pattern(11);
        let frames = e.encode_block_framed(&block).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(e.decode_block_framed(&present(&frames), 11).unwrap().data, block);
        let slots = vec![Some(frames[0].clone()), None];
        assert_eq!(
            e.decode_block_framed(&slots, 11),
            Err(ErasureError::TooFewShards { needed: 2, got: 1 })
        );
        assert_eq!(
            e.reconstruct_block_framed(&slots, 11),
            Err(ErasureError::TooFewShards { needed: 2, got: 1 })
        );
    }

    #[test]
    fn shard_file_geometry() {
        let e = erasure(4, 2);
        let full = to_u64(HASH_BYTES + BLOCK_SIZE_BYTES / 4);
        let mib = BLOCK_SIZE_BYTES_U64;
        let cases: &[(u64, u64)] = &[
            (0, 0),
            (1, to_u64(HASH_BYTES + 1)),
            (mib, full),
            (mib + 1, full + to_u64(HASH_BYTES + 1)),
            (3 * mib + 10, 3 * full + to_u64(HASH_BYTES + 3)),
        ];
        for &(part_size, file_size) in cases {
            assert_eq!(e.shard_file_size(part_size), file_size, "part {part_size}");
            let n_blocks = Erasure::n_blocks(part_size);
            let mut next_offset = 0;
            for block_idx in 0..n_blocks {
                let (offset, len) = e.framed_block_span(part_size, block_idx);
                assert_eq!(offset, next_offset);
                assert_eq!(
                    len,
                    to_u64(e.framed_shard_len(Erasure::block_len(part_size, block_idx)))
                );
                next_offset = offset + len;
            }
            assert_eq!(next_offset, file_size);
            assert_eq!(e.framed_block_span(part_size, n_blocks), (file_size, 0));
        }
        assert_eq!(Erasure::block_len(3 * mib + 10, 3), 10);
        assert_eq!(Erasure::block_len(3 * mib + 10, 2), BLOCK_SIZE_BYTES);
        assert_eq!(Erasure::block_len(3 * mib + 10, u64::MAX), 0);
    }
}
