//! Sealed parts: the header, the packages, their nonces, and the mapping of plaintext ranges
//! to packages (the byte layout is in the crate's documentation).

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

use crate::SseError;
use crate::envelope::DataKey;

/// Bytes of a sealed part's header.
pub const HEADER_BYTES: usize = 20;
/// Bytes of each package's authentication tag.
pub const TAG_BYTES: usize = 16;
/// Plaintext bytes per package (all but the last).
pub const PACKAGE_BYTES: usize = (1 << SEALED_PACKAGE_LOG2) - TAG_BYTES;
/// A full sealed package is 2^16 = 64 KiB (its plaintext and its tag), so 16 of them make
/// exactly one 1 MiB erasure block and a range read meets whole packages block by block.
const SEALED_PACKAGE_LOG2: u8 = 16;
/// Sealed bytes of a full package.
const SEALED_PACKAGE_BYTES: u64 = 1 << SEALED_PACKAGE_LOG2;
const FORMAT_VERSION: u8 = 1;
/// Set in the nonce of a part's last package.
const FINAL_FLAG: u32 = 0x8000_0000;
const PART_KEY_LABEL: &[u8] = b"strata-sse/v1 part";

/// The AEAD sealing the packages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM (CPUs with AES instructions).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (CPUs without them).
    ChaCha20Poly1305,
}

impl Cipher {
    /// AES-256-GCM where the CPU has AES and carry-less multiply instructions, else
    /// ChaCha20-Poly1305 (faster than table-based AES there, and constant-time).
    pub fn preferred() -> Cipher {
        if has_aes_instructions() {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        }
    }

    fn id(self) -> u8 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        }
    }

    fn from_id(id: u8) -> Option<Cipher> {
        match id {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_aes_instructions() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn has_aes_instructions() -> bool {
    std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn has_aes_instructions() -> bool {
    false
}

/// Packages of a part of `plain` bytes (an empty part is one empty package).
fn package_count(plain: u64) -> u64 {
    plain.div_ceil(PACKAGE_BYTES as u64).max(1)
}

/// Stored (sealed) size of a part of `plain` plaintext bytes: its packages; the header is
/// kept beside them.
pub fn sealed_size(plain: u64) -> u64 {
    plain + TAG_BYTES as u64 * package_count(plain)
}

/// The part's own key: HMAC-SHA256(data key, label || part_iv || part_number).
fn part_key(
    data_key: &DataKey,
    header: &[u8; HEADER_BYTES],
    part_number: u32,
    cipher: Cipher,
) -> LessSafeKey {
    let mac_key = hmac::Key::new(hmac::HMAC_SHA256, data_key.expose());
    let mut ctx = hmac::Context::with_key(&mac_key);
    ctx.update(PART_KEY_LABEL);
    ctx.update(&header[4..HEADER_BYTES]);
    #[allow(clippy::big_endian_bytes)] // The format fixes big-endian.
    ctx.update(&part_number.to_be_bytes());
    let tag = ctx.sign();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(tag.as_ref());
    // 32 bytes is the key length of both algorithms, so this cannot fail.
    let key = UnboundKey::new(cipher.algorithm(), &bytes)
        .map_or_else(|_| unreachable_key_length(cipher), LessSafeKey::new);
    bytes.zeroize();
    key
}

#[cold]
fn unreachable_key_length(cipher: Cipher) -> LessSafeKey {
    // Both algorithms take 32-byte keys; reaching this is a programming error. A key of zeros
    // would be wrong, so stop.
    #[allow(clippy::panic)]
    {
        panic!("{cipher:?} refused a 32-byte key")
    }
}

#[allow(clippy::big_endian_bytes)] // The format fixes big-endian.
fn nonce(index: u64, last: bool) -> Nonce {
    let mut bytes = [0u8; 12];
    let flags = if last { FINAL_FLAG } else { 0 };
    bytes[..4].copy_from_slice(&flags.to_be_bytes());
    bytes[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals one part, package by package.
pub struct PartSealer {
    key: LessSafeKey,
    header: [u8; HEADER_BYTES],
    next: u64,
    finished: bool,
}

impl std::fmt::Debug for PartSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartSealer")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl PartSealer {
    /// A sealer for part `part_number` of the version whose data key is `data_key`, with a
    /// fresh random `part_iv`.
    pub fn new(data_key: &DataKey, part_number: u32, cipher: Cipher) -> Result<PartSealer, SseError> {
        let mut header = [0u8; HEADER_BYTES];
        header[0] = FORMAT_VERSION;
        header[1] = cipher.id();
        header[2] = SEALED_PACKAGE_LOG2;
        SystemRandom::new()
            .fill(&mut header[4..])
            .map_err(|_| SseError::Random)?;
        Ok(PartSealer {
            key: part_key(data_key, &header, part_number, cipher),
            header,
            next: 0,
            finished: false,
        })
    }

    /// The part's header, kept beside its sealed packages (the object layer stores it in the
    /// part's record).
    pub fn header(&self) -> [u8; HEADER_BYTES] {
        self.header
    }

    /// Seals the next package in place: `package` holds its plaintext on entry and its
    /// ciphertext on return; the tag to store after it is returned. The package is
    /// [`PACKAGE_BYTES`] long, except the part's last one (`last`), which holds the rest
    /// (1..=PACKAGE_BYTES bytes, or none when the part is empty). Nothing may follow the
    /// last package.
    pub fn seal_package_in_place(
        &mut self,
        package: &mut [u8],
        last: bool,
    ) -> Result<[u8; TAG_BYTES], SseError> {
        let full = package.len() == PACKAGE_BYTES;
        let valid_last = package.len() <= PACKAGE_BYTES && (!package.is_empty() || self.next == 0);
        if self.finished || (!last && !full) || (last && !valid_last) {
            return Err(SseError::Header(
                "package of the wrong size or after the last one",
            ));
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.next, last), Aad::from(&self.header), package)
            .map_err(|_| SseError::Authentication)?;
        let mut out = [0u8; TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        self.next += 1;
        self.finished = last;
        Ok(out)
    }

    /// Seals the next package, appending ciphertext and tag to `out` (see
    /// [`Self::seal_package_in_place`] for the sizes).
    pub fn seal_package(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), SseError> {
        let start = out.len();
        out.extend_from_slice(plain);
        match self.seal_package_in_place(&mut out[start..], last) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(err) => {
                out.truncate(start);
                Err(err)
            }
        }
    }

    /// Whether the last package was sealed.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Seals a whole part held in memory: its header and its packages.
    pub fn seal_all(
        data_key: &DataKey,
        part_number: u32,
        cipher: Cipher,
        plain: &[u8],
    ) -> Result<([u8; HEADER_BYTES], Vec<u8>), SseError> {
        let mut sealer = PartSealer::new(data_key, part_number, cipher)?;
        let mut out = Vec::with_capacity(usize::try_from(sealed_size(plain.len() as u64)).unwrap_or(0));
        let mut packages = plain.chunks(PACKAGE_BYTES).peekable();
        if packages.peek().is_none() {
            sealer.seal_package(&[], true, &mut out)?;
        }
        while let Some(package) = packages.next() {
            sealer.seal_package(package, packages.peek().is_none(), &mut out)?;
        }
        Ok((sealer.header, out))
    }
}

/// Opens the packages of one sealed part.
pub struct PartOpener {
    key: LessSafeKey,
    header: [u8; HEADER_BYTES],
    packages: u64,
}

impl std::fmt::Debug for PartOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartOpener")
            .field("packages", &self.packages)
            .finish_non_exhaustive()
    }
}

impl PartOpener {
    /// An opener for part `part_number` of `data_key`'s version, from the part's header and
    /// the sealed size of its packages (which says where the last package is).
    pub fn new(
        data_key: &DataKey,
        part_number: u32,
        header: &[u8],
        sealed: u64,
    ) -> Result<PartOpener, SseError> {
        let header: [u8; HEADER_BYTES] = header
            .get(..HEADER_BYTES)
            .and_then(|h| h.try_into().ok())
            .ok_or(SseError::Truncated)?;
        if header[0] != FORMAT_VERSION {
            return Err(SseError::Header("unknown format version"));
        }
        if header[2] != SEALED_PACKAGE_LOG2 || header[3] != 0 {
            return Err(SseError::Header("unknown package size"));
        }
        let cipher = Cipher::from_id(header[1]).ok_or(SseError::Header("unknown cipher"))?;
        if sealed < TAG_BYTES as u64 {
            return Err(SseError::Truncated);
        }
        Ok(PartOpener {
            key: part_key(data_key, &header, part_number, cipher),
            header,
            packages: sealed.div_ceil(SEALED_PACKAGE_BYTES),
        })
    }

    /// How many packages the part has.
    pub fn packages(&self) -> u64 {
        self.packages
    }

    /// Opens package `index` in place (`sealed`: its ciphertext and tag) and returns its
    /// plaintext. The last package is recognised by its index, so a part cut short or
    /// extended fails here.
    pub fn open_package<'a>(&self, index: u64, sealed: &'a mut [u8]) -> Result<&'a mut [u8], SseError> {
        if index >= self.packages || sealed.len() < TAG_BYTES || sealed.len() as u64 > SEALED_PACKAGE_BYTES {
            return Err(SseError::Truncated);
        }
        let last = index + 1 == self.packages;
        if !last && sealed.len() as u64 != SEALED_PACKAGE_BYTES {
            return Err(SseError::Truncated);
        }
        self.key
            .open_in_place(nonce(index, last), Aad::from(&self.header), sealed)
            .map(|plain| &mut *plain)
            .map_err(|_| SseError::Authentication)
    }

    /// Opens a whole sealed part held in memory, given its header.
    pub fn open_all(
        data_key: &DataKey,
        part_number: u32,
        header: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, SseError> {
        let opener = PartOpener::new(data_key, part_number, header, sealed.len() as u64)?;
        let mut out = Vec::with_capacity(sealed.len());
        let mut buf = Vec::with_capacity(SEALED_PACKAGE_BYTES as usize);
        for (index, package) in sealed.chunks(SEALED_PACKAGE_BYTES as usize).enumerate() {
            buf.clear();
            buf.extend_from_slice(package);
            out.extend_from_slice(opener.open_package(index as u64, &mut buf)?);
        }
        Ok(out)
    }
}

/// Which sealed bytes a plaintext range of a part needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedRange {
    /// The first package to open.
    pub first_package: u64,
    /// Where it starts in the sealed part.
    pub sealed_offset: u64,
    /// Sealed bytes to read from there (whole packages).
    pub sealed_len: u64,
    /// Plaintext bytes to drop from the start of the first opened package.
    pub skip: u64,
}

impl SealedRange {
    /// The packages holding plaintext bytes `offset..offset + len` of a part of `plain`
    /// bytes. `None` for an empty range or one past the end.
    pub fn of(plain: u64, offset: u64, len: u64) -> Option<SealedRange> {
        let end = offset.checked_add(len)?;
        if len == 0 || end > plain {
            return None;
        }
        let package = PACKAGE_BYTES as u64;
        let first = offset / package;
        let last = (end - 1) / package;
        let sealed_offset = first * SEALED_PACKAGE_BYTES;
        let sealed_end = ((last + 1) * SEALED_PACKAGE_BYTES).min(sealed_size(plain));
        Some(SealedRange {
            first_package: first,
            sealed_offset,
            sealed_len: sealed_end - sealed_offset,
            skip: offset - first * package,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes([7; 32])
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_package_boundaries_with_both_ciphers() {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            for n in [
                0,
                1,
                PACKAGE_BYTES - 1,
                PACKAGE_BYTES,
                PACKAGE_BYTES + 1,
                3 * PACKAGE_BYTES + 5,
            ] {
                let plain = data(n);
                let (header, sealed) = PartSealer::seal_all(&key(), 3, cipher, &plain).unwrap();
                assert_eq!(sealed.len() as u64, sealed_size(n as u64), "{cipher:?} {n}");
                assert_eq!(PartOpener::open_all(&key(), 3, &header, &sealed).unwrap(), plain);
                // Another part number or data key does not open it.
                assert_eq!(
                    PartOpener::open_all(&key(), 4, &header, &sealed),
                    Err(SseError::Authentication)
                );
                let other = DataKey::from_bytes([8; 32]);
                assert_eq!(
                    PartOpener::open_all(&other, 3, &header, &sealed),
                    Err(SseError::Authentication)
                );
            }
        }
    }

    #[test]
    fn the_same_part_sealed_twice_differs() {
        let plain = data(1000);
        let a = PartSealer::seal_all(&key(), 1, Cipher::Aes256Gcm, &plain).unwrap();
        let b = PartSealer::seal_all(&key(), 1, Cipher::Aes256Gcm, &plain).unwrap();
        assert_ne!(a, b, "a fresh part_iv gives a fresh key");
    }

    #[test]
    fn tampering_is_an_error_never_wrong_bytes() {
        let plain = data(3 * PACKAGE_BYTES + 100);
        let (header, sealed) = PartSealer::seal_all(&key(), 1, Cipher::Aes256Gcm, &plain).unwrap();
        let open = |header: &[u8], sealed: &[u8]| PartOpener::open_all(&key(), 1, header, sealed);
        // A flipped bit in the header's iv, a package, or a tag.
        for at in [4, 19] {
            let mut bad = header;
            bad[at] ^= 0x01;
            assert_eq!(
                open(&bad, &sealed),
                Err(SseError::Authentication),
                "header flip at {at}"
            );
        }
        for at in [0, 10, PACKAGE_BYTES + 3, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            assert!(open(&header, &bad).is_err(), "flip at {at}");
        }
        // Cut at a package boundary: the new last package was not sealed as the last.
        let cut = &sealed[..2 * (PACKAGE_BYTES + TAG_BYTES)];
        assert_eq!(open(&header, cut), Err(SseError::Authentication));
        // Cut inside a package.
        assert!(open(&header, &sealed[..sealed.len() - 5]).is_err());
        // Two packages swapped.
        let mut swapped = sealed.clone();
        let p = PACKAGE_BYTES + TAG_BYTES;
        let first: Vec<u8> = swapped[..p].to_vec();
        swapped.copy_within(p..2 * p, 0);
        swapped[p..2 * p].copy_from_slice(&first);
        assert_eq!(open(&header, &swapped), Err(SseError::Authentication));
        // A package appended after the final one.
        let mut longer = sealed.clone();
        longer.extend_from_slice(&sealed[..p]);
        assert!(open(&header, &longer).is_err());
        // An unknown header.
        let mut unknown = header;
        unknown[0] = 9;
        assert_eq!(
            open(&unknown, &sealed),
            Err(SseError::Header("unknown format version"))
        );
        let mut cipher = header;
        cipher[1] = 7;
        assert_eq!(open(&cipher, &sealed), Err(SseError::Header("unknown cipher")));
    }

    #[test]
    fn ranges_map_to_the_packages_they_cover() {
        let n = 3 * PACKAGE_BYTES + 100;
        let plain = data(n);
        let (header, sealed) = PartSealer::seal_all(&key(), 2, Cipher::ChaCha20Poly1305, &plain).unwrap();
        let opener = PartOpener::new(&key(), 2, &header, sealed.len() as u64).unwrap();
        for (offset, len) in [
            (0, 1),
            (5, 10),
            (PACKAGE_BYTES - 1, 2),
            (PACKAGE_BYTES, PACKAGE_BYTES),
            (n - 1, 1),
            (0, n),
            (70_000, 120_000),
        ] {
            let r = SealedRange::of(n as u64, offset as u64, len as u64).unwrap();
            let bytes = &sealed[r.sealed_offset as usize..(r.sealed_offset + r.sealed_len) as usize];
            let mut got = Vec::new();
            for (i, package) in bytes.chunks(PACKAGE_BYTES + TAG_BYTES).enumerate() {
                let mut buf = package.to_vec();
                got.extend_from_slice(opener.open_package(r.first_package + i as u64, &mut buf).unwrap());
            }
            let got = &got[r.skip as usize..r.skip as usize + len];
            assert_eq!(got, &plain[offset..offset + len], "range {offset}+{len}");
        }
        assert_eq!(SealedRange::of(n as u64, n as u64, 1), None);
        assert_eq!(SealedRange::of(n as u64, 0, 0), None);
    }

    #[test]
    fn sealer_refuses_misuse() {
        let mut sealer = PartSealer::new(&key(), 1, Cipher::Aes256Gcm).unwrap();
        let mut out = Vec::new();
        assert!(
            sealer.seal_package(&[1, 2, 3], false, &mut out).is_err(),
            "short non-final package"
        );
        sealer.seal_package(&[1, 2, 3], true, &mut out).unwrap();
        assert!(
            sealer.seal_package(&[1], true, &mut out).is_err(),
            "after the last package"
        );
    }
}
