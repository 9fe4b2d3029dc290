//! Additional checksums (S3's `x-amz-checksum-*`): CRC32, CRC32C, CRC64NVME, SHA-1 and
//! SHA-256 of object data, computed while a body is written, checked against what the client
//! sent before anything commits, and stored with the version.
//!
//! - A single PUT stores the checksum of its whole body (`FULL_OBJECT`). With no checksum sent
//!   it stores CRC64NVME, as S3 does for every new object since 2025.
//! - A multipart object stores each part's checksum and the object's: for `COMPOSITE`, the
//!   algorithm over the concatenated part checksums, shown as `<base64>-<parts>`; for
//!   `FULL_OBJECT` (CRCs only), the CRC of the whole object, combined from the parts' CRCs
//!   and lengths without reading data ([`combine_crc`]).
//! - Values are the big-endian digests S3 encodes in base64 (the front door does the base64).
//!
//! Hashing stays off the body's critical path: CRCs run inline (`crc-fast`, tens of GiB/s
//! per core), SHA-1 and SHA-256 of large blocks on the blocking pool, one block at a time per
//! body, overlapping the next block's receiving, erasure coding and writes ([`BodyChecksum`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use crate::error::{ObjectError, ObjectResult};

/// The additional checksum algorithms S3 defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, as zlib).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The name S3 uses (`x-amz-checksum-algorithm`, `ChecksumAlgorithm`).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The algorithm named `name` (any case).
    pub fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    /// Whether multipart objects can carry this checksum type with this algorithm: S3 allows
    /// `FULL_OBJECT` for the CRCs and `COMPOSITE` for all but CRC64NVME.
    pub fn supports(self, kind: ChecksumType) -> bool {
        match kind {
            ChecksumType::FullObject => self.crc().is_some(),
            ChecksumType::Composite => self != ChecksumAlgorithm::Crc64Nvme,
        }
    }

    /// The type a multipart upload gets when it names only the algorithm.
    pub fn default_multipart_type(self) -> ChecksumType {
        if self == ChecksumAlgorithm::Crc64Nvme {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut hasher = Hasher::new(self);
        hasher.update(data);
        hasher.finalize()
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a multipart object's checksum is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumType {
    /// The checksum of the parts' checksums (`-N`).
    Composite,
    /// The checksum of the whole object's bytes.
    FullObject,
}

impl ChecksumType {
    /// The name S3 uses (`x-amz-checksum-type`).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumType::Composite => "COMPOSITE",
            ChecksumType::FullObject => "FULL_OBJECT",
        }
    }

    /// The type named `name` (any case).
    pub fn from_name(name: &str) -> Option<ChecksumType> {
        [ChecksumType::Composite, ChecksumType::FullObject]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// A stored checksum of a version (or of one part of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChecksum {
    /// The algorithm.
    #[serde(rename = "a")]
    pub algorithm: ChecksumAlgorithm,
    /// Composite or full object.
    #[serde(rename = "t")]
    pub kind: ChecksumType,
    /// The big-endian digest.
    #[serde(rename = "v")]
    pub value: Vec<u8>,
    /// For a composite checksum, how many parts it covers (its `-N`); 0 otherwise.
    #[serde(rename = "n", default, skip_serializing_if = "is_zero")]
    pub parts: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl ObjectChecksum {
    /// A checksum of one body (a single PUT, a copy, or a part).
    pub fn full(algorithm: ChecksumAlgorithm, value: Vec<u8>) -> Self {
        ObjectChecksum {
            algorithm,
            kind: ChecksumType::FullObject,
            value,
            parts: 0,
        }
    }
}

/// Where the value a client sent comes from.
#[derive(Clone)]
pub enum ExpectedChecksum {
    /// Nothing to check: compute and store only.
    None,
    /// Sent before the body (a header, a form field): the big-endian digest.
    Value(Vec<u8>),
    /// Sent after the body (an `aws-chunked` trailer): read once the body has ended.
    Trailer(Arc<dyn Fn() -> ObjectResult<Vec<u8>> + Send + Sync>),
}

impl fmt::Debug for ExpectedChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedChecksum::None => f.write_str("None"),
            ExpectedChecksum::Value(_) => f.write_str("Value(..)"),
            ExpectedChecksum::Trailer(_) => f.write_str("Trailer(..)"),
        }
    }
}

/// A checksum a write is asked for: which algorithm, which type (multipart uploads), and the
/// value to check the body against.
#[derive(Clone, Debug)]
pub struct ChecksumSpec {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The type; only multipart uploads use it (a single body is always `FULL_OBJECT`).
    pub kind: Option<ChecksumType>,
    /// What the body's checksum must be.
    pub expected: ExpectedChecksum,
}

impl ChecksumSpec {
    /// Checks the computed `got` against what the client sent: `ChecksumMismatch` when it
    /// differs (nothing may commit then).
    pub fn verify(&self, got: &[u8]) -> ObjectResult<()> {
        let expected = match &self.expected {
            ExpectedChecksum::None => return Ok(()),
            ExpectedChecksum::Value(value) => value.clone(),
            ExpectedChecksum::Trailer(read) => read()?,
        };
        if expected != got {
            return Err(ObjectError::ChecksumMismatch {
                algorithm: self.algorithm,
            });
        }
        Ok(())
    }
}

/// One running digest.
enum Hasher {
    Crc(crc_fast::Digest, CrcWidth),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match (algorithm, algorithm.crc()) {
            (_, Some(crc)) => Hasher::Crc(crc_fast::Digest::new(crc), CrcWidth::of(algorithm)),
            (ChecksumAlgorithm::Sha1, None) => Hasher::Sha1(sha1::Sha1::new()),
            _ => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc(d, _) => d.update(data),
            Hasher::Sha1(d) => d.update(data),
            Hasher::Sha256(d) => d.update(data),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Crc(d, width) => crc_bytes(width, d.finalize()),
            Hasher::Sha1(d) => d.finalize().to_vec(),
            Hasher::Sha256(d) => d.finalize().to_vec(),
        }
    }

    fn is_cheap(&self) -> bool {
        matches!(self, Hasher::Crc(..))
    }
}

/// How wide a CRC is.
#[derive(Clone, Copy)]
enum CrcWidth {
    Bits32,
    Bits64,
}

impl CrcWidth {
    fn of(algorithm: ChecksumAlgorithm) -> CrcWidth {
        if algorithm == ChecksumAlgorithm::Crc64Nvme {
            CrcWidth::Bits64
        } else {
            CrcWidth::Bits32
        }
    }
}

/// The big-endian bytes of a CRC.
#[allow(clippy::big_endian_bytes)] // S3 encodes CRCs big-endian.
fn crc_bytes(width: CrcWidth, crc: u64) -> Vec<u8> {
    if let CrcWidth::Bits32 = width {
        u32::try_from(crc & 0xffff_ffff)
            .unwrap_or_default()
            .to_be_bytes()
            .to_vec()
    } else {
        crc.to_be_bytes().to_vec()
    }
}

/// The CRC in big-endian `bytes` as a number.
fn crc_value(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Bodies whose first block is smaller than this hash SHA inline: handing a small block to
/// another thread costs more than hashing it.
const OFFLOAD_BYTES_MIN: usize = 256 * 1024;

/// Memory a body's offloaded hashing may hold beyond the writer's own buffers (the block on
/// the blocking pool while the writer fills the next one), when it hashes SHA at all.
pub(crate) fn offload_memory_bytes(sha: bool) -> u64 {
    if sha {
        strata_erasure::BLOCK_SIZE_BYTES as u64
    } else {
        0
    }
}

/// [`offload_memory_bytes`] of a write with these options, storing a checksum with `store`.
pub(crate) fn put_offload_bytes(opts: &crate::api::PutOptions, store: ChecksumAlgorithm) -> u64 {
    let is_sha = |a: ChecksumAlgorithm| matches!(a, ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256);
    let sha = is_sha(store) || opts.checksum.as_ref().is_some_and(|c| is_sha(c.algorithm));
    offload_memory_bytes(sha && opts.size.is_none_or(|size| size >= OFFLOAD_BYTES_MIN as u64))
}

/// The checksums of one body being written: each algorithm once. CRCs are hashed inline; SHAs
/// of large blocks on the blocking pool, one block at a time per body: the block is hashed
/// while the writer receives and encodes the next, and a pool thread is held only while it
/// hashes (never while the body waits on the network).
pub(crate) struct BodyChecksum {
    running: Vec<(ChecksumAlgorithm, Running)>,
}

enum Running {
    /// The hasher, here.
    Idle(Box<Hasher>),
    /// The hasher, on the blocking pool with a block; it comes back when that is hashed.
    Hashing(tokio::task::JoinHandle<Box<Hasher>>),
}

impl Running {
    /// The hasher, waiting for its block on the pool to be hashed first.
    async fn take(self) -> ObjectResult<Box<Hasher>> {
        match self {
            Running::Idle(hasher) => Ok(hasher),
            Running::Hashing(task) => task.await.map_err(|_| ObjectError::Internal {
                what: "a checksum task failed",
            }),
        }
    }
}

impl BodyChecksum {
    /// Hashes with every algorithm in `algorithms` (duplicates are hashed once).
    pub(crate) fn new(algorithms: &[ChecksumAlgorithm]) -> Self {
        let mut running: Vec<(ChecksumAlgorithm, Running)> = Vec::with_capacity(algorithms.len());
        for &algorithm in algorithms {
            if running.iter().all(|(a, _)| *a != algorithm) {
                running.push((algorithm, Running::Idle(Box::new(Hasher::new(algorithm)))));
            }
        }
        BodyChecksum { running }
    }

    /// Adds the next block of the body. A failed hashing task is reported by [`Self::finalize`].
    pub(crate) async fn update(&mut self, block: &Bytes) -> ObjectResult<()> {
        for (algorithm, running) in &mut self.running {
            // The common case (a CRC, or a small block with nothing on the pool): hash here.
            if let Running::Idle(hasher) = running
                && (hasher.is_cheap() || block.len() < OFFLOAD_BYTES_MIN)
            {
                hasher.update(block);
                continue;
            }
            let placeholder = Running::Idle(Box::new(Hasher::new(*algorithm)));
            let mut hasher = std::mem::replace(running, placeholder).take().await?;
            if hasher.is_cheap() || block.len() < OFFLOAD_BYTES_MIN {
                hasher.update(block);
                *running = Running::Idle(hasher);
            } else {
                let block = block.clone();
                *running = Running::Hashing(tokio::task::spawn_blocking(move || {
                    hasher.update(&block);
                    hasher
                }));
            }
        }
        Ok(())
    }

    /// The digests, in the order the algorithms were first given.
    pub(crate) async fn finalize(self) -> ObjectResult<Vec<(ChecksumAlgorithm, Vec<u8>)>> {
        let mut out = Vec::with_capacity(self.running.len());
        for (algorithm, running) in self.running {
            out.push((algorithm, running.take().await?.finalize()));
        }
        Ok(out)
    }
}

/// The CRC of two consecutive byte runs from the CRCs of each (`second_len`: the length of
/// the second run): how a `FULL_OBJECT` multipart checksum is formed from its parts.
pub fn combine_crc(
    algorithm: ChecksumAlgorithm,
    first: &[u8],
    second: &[u8],
    second_len: u64,
) -> Option<Vec<u8>> {
    let crc = algorithm.crc()?;
    let combined = crc_fast::checksum_combine(crc, crc_value(first), crc_value(second), second_len);
    Some(crc_bytes(CrcWidth::of(algorithm), combined))
}

/// A multipart object's checksum from its parts' (algorithm's digest, size), in order.
pub fn multipart_checksum(
    algorithm: ChecksumAlgorithm,
    kind: ChecksumType,
    parts: &[(&[u8], u64)],
) -> Option<ObjectChecksum> {
    let n_parts = u32::try_from(parts.len()).ok()?;
    let value = match kind {
        ChecksumType::Composite => {
            let mut hasher = Hasher::new(algorithm);
            for (digest, _) in parts {
                hasher.update(digest);
            }
            hasher.finalize()
        }
        ChecksumType::FullObject => {
            let mut iter = parts.iter();
            let (first, _) = iter.next()?;
            let mut value = first.to_vec();
            for (digest, len) in iter {
                value = combine_crc(algorithm, &value, digest, *len)?;
            }
            value
        }
    };
    Some(ObjectChecksum {
        algorithm,
        kind,
        value,
        parts: if kind == ChecksumType::Composite {
            n_parts
        } else {
            0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"The quick brown fox jumps over the lazy dog";

    #[test]
    fn known_digests() {
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Crc32.digest(b"123456789")),
            "cbf43926"
        );
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Crc32c.digest(b"123456789")),
            "e3069283"
        );
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Crc64Nvme.digest(b"123456789")),
            "ae8b14860a799888"
        );
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Sha1.digest(BODY)),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
        );
        assert_eq!(
            hex::encode(ChecksumAlgorithm::Sha256.digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn full_object_crc_combines_parts() {
        for algorithm in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let (a, rest) = BODY.split_at(10);
            let (b, c) = rest.split_at(20);
            let digests = [algorithm.digest(a), algorithm.digest(b), algorithm.digest(c)];
            let parts: Vec<(&[u8], u64)> = digests
                .iter()
                .zip([a, b, c])
                .map(|(d, p)| (d.as_slice(), p.len() as u64))
                .collect();
            let got = multipart_checksum(algorithm, ChecksumType::FullObject, &parts);
            assert_eq!(got.map(|c| c.value), Some(algorithm.digest(BODY)), "{algorithm}");
        }
        // SHAs cannot be combined.
        assert!(combine_crc(ChecksumAlgorithm::Sha256, &[0; 32], &[0; 32], 1).is_none());
    }

    #[test]
    fn composite_is_the_digest_of_digests() {
        let d1 = ChecksumAlgorithm::Sha256.digest(b"one");
        let d2 = ChecksumAlgorithm::Sha256.digest(b"two");
        let got = multipart_checksum(
            ChecksumAlgorithm::Sha256,
            ChecksumType::Composite,
            &[(&d1, 3), (&d2, 3)],
        );
        let concat = [d1.clone(), d2.clone()].concat();
        assert_eq!(got.as_ref().map(|c| c.parts), Some(2));
        assert_eq!(
            got.map(|c| c.value),
            Some(ChecksumAlgorithm::Sha256.digest(&concat))
        );
    }

    #[test]
    fn types_allowed_per_algorithm() {
        assert!(ChecksumAlgorithm::Crc32.supports(ChecksumType::FullObject));
        assert!(!ChecksumAlgorithm::Sha1.supports(ChecksumType::FullObject));
        assert!(!ChecksumAlgorithm::Crc64Nvme.supports(ChecksumType::Composite));
        assert_eq!(
            ChecksumAlgorithm::Crc64Nvme.default_multipart_type(),
            ChecksumType::FullObject
        );
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(
            ChecksumType::from_name("full_object"),
            Some(ChecksumType::FullObject)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_checksum_offloads_large_bodies_with_the_same_result() {
        let block = Bytes::from(vec![7u8; OFFLOAD_BYTES_MIN * 2]);
        let algorithms = [
            ChecksumAlgorithm::Sha256,
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumAlgorithm::Sha256,
            ChecksumAlgorithm::Sha1,
        ];
        let mut body = BodyChecksum::new(&algorithms);
        for _ in 0..5 {
            body.update(&block).await.unwrap();
        }
        body.update(&Bytes::from_static(b"tail")).await.unwrap();
        let got = body.finalize().await.unwrap();
        let mut whole = Vec::new();
        for _ in 0..5 {
            whole.extend_from_slice(&block);
        }
        whole.extend_from_slice(b"tail");
        assert_eq!(got.len(), 3, "each algorithm once");
        for (algorithm, digest) in got {
            assert_eq!(digest, algorithm.digest(&whole), "{algorithm}");
        }
    }

    #[test]
    fn verify_reads_a_trailer_after_the_body() {
        let spec = ChecksumSpec {
            algorithm: ChecksumAlgorithm::Crc32,
            kind: None,
            expected: ExpectedChecksum::Trailer(Arc::new(|| Ok(ChecksumAlgorithm::Crc32.digest(BODY)))),
        };
        assert!(spec.verify(&ChecksumAlgorithm::Crc32.digest(BODY)).is_ok());
        assert!(matches!(
            spec.verify(&ChecksumAlgorithm::Crc32.digest(b"other")),
            Err(ObjectError::ChecksumMismatch { .. })
        ));
    }
}
