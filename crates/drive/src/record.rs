//! Checksummed metadata values: how a record's value is stored in the metadata store.
//!
//! Stored value = `value bytes || crc32c(key || value)` as a little-endian `u32`.
//!
//! Invariants: every value written through [`encode`] carries the checksum; [`decode`] never
//! returns bytes whose checksum does not match (it reports the mismatch instead). The key is
//! part of the checksum, so a value that ends up under another key is detected too.

/// Size of the checksum trailer appended to every stored value.
pub(crate) const CHECKSUM_BYTES: usize = 4;

/// The checksum of a record: crc32c over the key, then the value.
fn checksum(key: &[u8], value: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(key), value)
}

/// Appends the checksum trailer to `value`.
pub(crate) fn encode(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(value.len() + CHECKSUM_BYTES);
    stored.extend_from_slice(value);
    stored.extend_from_slice(&checksum(key, value).to_le_bytes());
    stored
}

/// Verifies and strips the checksum trailer; `Err` describes the mismatch.
pub(crate) fn decode<'a>(key: &[u8], stored: &'a [u8]) -> Result<&'a [u8], String> {
    let Some(value_len) = stored.len().checked_sub(CHECKSUM_BYTES) else {
        return Err(format!(
            "record {} is {} bytes, shorter than its checksum",
            hex_key(key),
            stored.len()
        ));
    };
    let (value, trailer) = stored.split_at(value_len);
    let mut trailer_bytes = [0u8; CHECKSUM_BYTES];
    trailer_bytes.copy_from_slice(trailer);
    let expected = u32::from_le_bytes(trailer_bytes);
    let actual = checksum(key, value);
    if expected != actual {
        return Err(format!(
            "record {} checksum mismatch: stored {expected:#010x}, computed {actual:#010x}",
            hex_key(key)
        ));
    }
    Ok(value)
}

/// A key for error messages: hex, shortened when long.
fn hex_key(key: &[u8]) -> String {
    const SHOWN_BYTES_MAX: usize = 64;
    let shown = &key[..key.len().min(SHOWN_BYTES_MAX)];
    let mut text: String = shown.iter().map(|b| format!("{b:02x}")).collect();
    if key.len() > SHOWN_BYTES_MAX {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for value in [&b""[..], b"x", b"hello world"] {
            let stored = encode(b"k", value);
            assert_eq!(stored.len(), value.len() + CHECKSUM_BYTES);
            assert_eq!(decode(b"k", &stored).unwrap(), value);
        }
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let stored = encode(b"key", b"some value");
        for bit in 0..stored.len() * 8 {
            let mut bad = stored.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(b"key", &bad).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn value_under_another_key_is_detected() {
        let stored = encode(b"a", b"v");
        assert!(decode(b"b", &stored).is_err());
        assert!(decode(b"a", &stored[..3]).is_err());
    }
}
