//! Metadata records as stored on drives, and the keys they are stored under.
//!
//! Every record value is an envelope: `magic (2 bytes "SV") || format version (1 byte) ||
//! MessagePack map (field names kept, so fields can be added; the hot version records use
//! short names, see [`VersionRecord`])`. The drive appends and checks
//! its own checksum around the whole value.
//!
//! Keys (bytewise order is listing order):
//! - `Buckets`: `bucket`
//! - `BucketConfig`: `bucket 0x00 name`
//! - `Objects` and `InlineData`: `bucket 0x00 key 0x00 inverted_mod_time (8, BE) version (16)`,
//!   so a key's versions sort newest first right after the key, and keys sort in UTF-8 binary
//!   order (object keys never contain 0x00, which sorts below every other byte).
//! - `Uploads`: `bucket 0x00 key 0x00 upload_id`
//! - `Parts`: `upload_id 0x00 part_number (4, BE)`
//! - `System`: `namespace 0x00 key` (both UTF-8 without 0x00, so a namespace's records are
//!   exactly the keys starting with `namespace 0x00`, and `iam` never sees `iam2`'s); the value
//!   is a [`SystemRecord`]
//!
//! Big-endian is used only inside keys, where it makes bytewise order numeric order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use strata_drive::DataDirId;

use crate::api::{
    ChecksumAlgorithm, ChecksumType, ObjectChecksum, ObjectMetadata, SealGeometry, VersioningState,
};
use crate::error::{ObjectError, ObjectResult};

const RECORD_MAGIC: [u8; 2] = *b"SV";
/// Version of the record envelope and its MessagePack fields.
const RECORD_FORMAT_VERSION: u8 = 1;
/// The version of records that describe encrypted data (sealed parts, a sealed data key).
/// Binaries from before encryption refuse it as corrupt instead of decoding it without the
/// fields they do not know: they would serve sealed bytes as content, or write the record
/// back without its sealed key (which would lose the data for good).
const RECORD_FORMAT_VERSION_SEALED: u8 = 2;
/// The version of records whose data lives in a tier object (`VersionRecord::tiered`):
/// binaries from before tiering would find no data directory and read nothing.
const RECORD_FORMAT_VERSION_TIERED: u8 = 3;

/// A record type stored in an envelope.
pub trait Record: Serialize {
    /// The envelope version it is written with.
    fn format_version(&self) -> u8 {
        RECORD_FORMAT_VERSION
    }
}
/// Length of the version suffix of an object key: separator, inverted time, version id.
pub const VERSION_SUFFIX_BYTES: usize = 1 + 8 + 16;

/// Encodes a record into its envelope.
pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&RECORD_MAGIC);
    out.push(record.format_version());
    // Serializing our own plain structs into a Vec cannot fail: no I/O, no maps with
    // non-string keys, no unsupported types.
    if let Err(err) = rmp_serde::encode::write_named(&mut out, record) {
        unreachable_encode(err);
    }
    out
}

#[cold]
fn unreachable_encode(err: rmp_serde::encode::Error) {
    // A programming error (a type that MessagePack cannot represent): stop loudly in debug
    // builds; in release the empty payload fails to decode and is reported as corrupt.
    debug_assert!(false, "record encoding failed: {err}");
}

/// Decodes a record envelope.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ObjectResult<T> {
    if bytes.len() < 3 || bytes[..2] != RECORD_MAGIC {
        return Err(ObjectError::Corrupt {
            what: "record without magic".into(),
        });
    }
    if !matches!(
        bytes[2],
        RECORD_FORMAT_VERSION | RECORD_FORMAT_VERSION_SEALED | RECORD_FORMAT_VERSION_TIERED
    ) {
        return Err(ObjectError::Corrupt {
            what: format!("record format version {}", bytes[2]),
        });
    }
    rmp_serde::from_slice(&bytes[3..]).map_err(|err| ObjectError::Corrupt {
        what: format!("record does not decode: {err}"),
    })
}

/// Nanoseconds since the Unix epoch (0 for times before it).
pub fn to_unix_nanos(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`to_unix_nanos`].
pub fn from_unix_nanos(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// A bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: String,
    pub created_ns: i64,
    pub location: String,
    pub versioning: VersioningState,
    /// The owning account's id; none: the deployment's own account (every bucket created
    /// before accounts existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Object lock enabled (versioning stays enabled).
    #[serde(default, skip_serializing_if = "is_false")]
    pub object_lock: bool,
}

/// Where one part of a version's data lives. Stored under short field names (the long names
/// written before 2026-11-24 are still read, see [`VersionRecord`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecordRef {
    /// Part number as uploaded (1 for a single PUT).
    #[serde(rename = "n", alias = "number")]
    pub number: u32,
    /// Size of the part's content in bytes.
    #[serde(rename = "s", alias = "size")]
    pub size: u64,
    /// Hex MD5 of the part.
    #[serde(rename = "e", alias = "etag")]
    pub etag: String,
    /// Data directory of the part's shard file (`part.<number>`); `None` when inline.
    #[serde(
        rename = "dd",
        alias = "data_dir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub data_dir: Option<uuid::Uuid>,
    /// The part's checksum with the object's algorithm (multipart objects).
    #[serde(rename = "ck", default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Vec<u8>>,
    /// A sealed part's content size (`size` is then its stored size).
    #[serde(rename = "ps", default, skip_serializing_if = "Option::is_none")]
    pub plain_size: Option<u64>,
    /// A sealed part's header, as its sealer gave it.
    #[serde(rename = "sh", default, skip_serializing_if = "Option::is_none")]
    pub seal_header: Option<Vec<u8>>,
}

impl PartRecordRef {
    pub fn data_dir(&self) -> Option<DataDirId> {
        self.data_dir.map(DataDirId)
    }

    /// Size of the part's content (its stored size unless sealed).
    pub fn content_size(&self) -> u64 {
        self.plain_size.unwrap_or(self.size)
    }
}

/// One version of an object as stored on one drive of its set.
///
/// The record is a MessagePack map under short field names: a million-key listing decodes a
/// million of these, and they fill the metadata store's pages. Field names stay in the map, so
/// fields can still be added (with a default). Each field's `alias` is the long name that
/// records written before 2026-11-24 use, and those records are read as they are. Flags that
/// are false, and metadata with no field set, are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `None` is the null version.
    #[serde(rename = "v", alias = "version_id")]
    pub version_id: Option<uuid::Uuid>,
    #[serde(rename = "t", alias = "mod_time_ns")]
    pub mod_time_ns: i64,
    #[serde(
        rename = "dm",
        alias = "delete_marker",
        default,
        skip_serializing_if = "is_false"
    )]
    pub delete_marker: bool,
    #[serde(rename = "s", alias = "size")]
    pub size: u64,
    #[serde(rename = "e", alias = "etag")]
    pub etag: String,
    #[serde(
        rename = "m",
        alias = "metadata",
        default,
        skip_serializing_if = "ObjectMetadata::is_empty"
    )]
    pub metadata: ObjectMetadata,
    #[serde(rename = "d", alias = "n_data")]
    pub n_data: u32,
    #[serde(rename = "p", alias = "n_parity")]
    pub n_parity: u32,
    /// The shard index this drive holds for this version.
    #[serde(rename = "x", alias = "shard_idx")]
    pub shard_idx: u32,
    /// Whether the data is in the `InlineData` table (one framed shard block).
    #[serde(rename = "i", alias = "inline", default, skip_serializing_if = "is_false")]
    pub inline: bool,
    #[serde(rename = "pt", alias = "parts")]
    pub parts: Vec<PartRecordRef>,
    /// When the metadata was last changed in place (tags, ACL: see
    /// `ObjectLayer::update_object_metadata`), in Unix nanoseconds; 0 when never. Drives that
    /// missed such a change hold an older stamp: readers and heal take the newest.
    #[serde(rename = "mt", default, skip_serializing_if = "is_zero")]
    pub meta_time_ns: i64,
    /// The additional checksum of the version's data (none for versions written before
    /// checksums existed, and for delete markers).
    #[serde(rename = "ck", default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ObjectChecksum>,
    /// The multipart upload the version completed (so that a repeated completion answers
    /// as the first did).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// How the data was sealed (server-side encryption); `size` and the parts' sizes are then
    /// stored sizes, and `plain_size` the content's.
    #[serde(rename = "sg", default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<SealGeometry>,
    /// A sealed version's content size.
    #[serde(rename = "ps", default, skip_serializing_if = "Option::is_none")]
    pub plain_size: Option<u64>,
    /// Where the version's data lives when a transition moved it out of this set: its stored
    /// bytes, all parts in order, are one tier object (the parts then have no data
    /// directories and the record is not inline).
    #[serde(rename = "tr", default, skip_serializing_if = "Option::is_none")]
    pub tiered: Option<TieredData>,
}

/// A tier object holding a version's stored bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TieredData {
    /// `None`: an object of this deployment's tier bucket (on a pool of another media
    /// class); `Some(tier)`: an object of the named remote tier.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The tier object's (opaque) name.
    #[serde(rename = "n")]
    pub name: String,
}

impl Record for VersionRecord {
    fn format_version(&self) -> u8 {
        if self.tiered.is_some() {
            RECORD_FORMAT_VERSION_TIERED
        } else if self.seal.is_some() || self.metadata.encryption.is_some() {
            RECORD_FORMAT_VERSION_SEALED
        } else {
            RECORD_FORMAT_VERSION
        }
    }
}

impl Record for BucketRecord {}
impl Record for SystemRecord {}

impl Record for UploadRecord {
    fn format_version(&self) -> u8 {
        if self.metadata.encryption.is_some() {
            RECORD_FORMAT_VERSION_SEALED
        } else {
            RECORD_FORMAT_VERSION
        }
    }
}

impl Record for PartRecord {
    fn format_version(&self) -> u8 {
        if self.sealed.is_some() {
            RECORD_FORMAT_VERSION_SEALED
        } else {
            RECORD_FORMAT_VERSION
        }
    }
}

impl VersionRecord {
    /// Size of the version's content (its stored size unless sealed).
    pub fn content_size(&self) -> u64 {
        self.plain_size.unwrap_or(self.size)
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_zero(value: &i64) -> bool {
    *value == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_false(flag: &bool) -> bool {
    !*flag
}

/// A multipart upload in progress, as stored on each drive of its set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub key: String,
    pub initiated_ns: i64,
    pub metadata: ObjectMetadata,
    /// Shard index held by each drive of the set, by drive index.
    pub distribution: Vec<u32>,
    /// The checksum algorithm and type the client chose at creation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

/// An uploaded part, as stored on each drive of its set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartRecord {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub mod_time_ns: i64,
    pub data_dir: uuid::Uuid,
    /// The part's checksum with the upload's algorithm (CRC64NVME when it named none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// How the part was sealed, its content size and its header (`size` is then its stored
    /// size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedPart>,
}

/// A sealed part's geometry, content size and header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPart {
    pub geometry: SealGeometry,
    pub plain_size: u64,
    pub header: Vec<u8>,
}

/// `bucket 0x00` — the prefix of everything of a bucket in `Objects`, `Uploads`, `BucketConfig`.
pub fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1);
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out
}

/// `bucket 0x00 key 0x00` — the prefix of all versions of a key.
pub fn object_prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + key.len() + VERSION_SUFFIX_BYTES + 1);
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out.push(0);
    out
}

/// The full `Objects` key of one version.
#[allow(clippy::big_endian_bytes)] // Big-endian so that bytewise order is numeric order.
pub fn version_key(bucket: &str, key: &str, mod_time_ns: i64, version_id: Option<uuid::Uuid>) -> Vec<u8> {
    let mut out = object_prefix(bucket, key);
    let inverted = u64::MAX - u64::try_from(mod_time_ns).unwrap_or(0);
    out.extend_from_slice(&inverted.to_be_bytes());
    out.extend_from_slice(version_id.unwrap_or(uuid::Uuid::nil()).as_bytes());
    out
}

/// Splits an `Objects` key (with its bucket prefix already removed) into the object key and
/// the version suffix (inverted time and id), or `None` when malformed.
pub fn split_version_key(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    if rest.len() < VERSION_SUFFIX_BYTES {
        return None;
    }
    let (key, suffix) = rest.split_at(rest.len() - VERSION_SUFFIX_BYTES);
    if suffix[0] != 0 {
        return None;
    }
    Some((key, &suffix[1..]))
}

/// The version id at the end of an `Objects` key: `Some(None)` for the null version, `None`
/// when the key is too short to hold one.
pub fn version_of_key(key: &[u8]) -> Option<Option<uuid::Uuid>> {
    let id = key.get(key.len().checked_sub(16)?..)?;
    let id = uuid::Uuid::from_slice(id).ok()?;
    Some(if id.is_nil() { None } else { Some(id) })
}

/// `bucket 0x00 key 0x00 upload_id`.
pub fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut out = object_prefix(bucket, key);
    out.extend_from_slice(upload_id.as_bytes());
    out
}

/// `upload_id 0x00` — the prefix of all parts of an upload.
pub fn parts_prefix(upload_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(upload_id.len() + 5);
    out.extend_from_slice(upload_id.as_bytes());
    out.push(0);
    out
}

/// `upload_id 0x00 part_number`.
#[allow(clippy::big_endian_bytes)] // Big-endian so that bytewise order is numeric order.
pub fn part_key(upload_id: &str, number: u32) -> Vec<u8> {
    let mut out = parts_prefix(upload_id);
    out.extend_from_slice(&number.to_be_bytes());
    out
}

/// `bucket 0x00 name`.
pub fn bucket_config_key(bucket: &str, name: &str) -> Vec<u8> {
    let mut out = bucket_prefix(bucket);
    out.extend_from_slice(name.as_bytes());
    out
}

/// `namespace 0x00` — the prefix of every `System` record of a namespace.
pub fn system_prefix(namespace: &str) -> Vec<u8> {
    bucket_prefix(namespace)
}

/// `namespace 0x00 key`.
pub fn system_key(namespace: &str, key: &str) -> Vec<u8> {
    let mut out = system_prefix(namespace);
    out.extend_from_slice(key.as_bytes());
    out
}

/// One system record (cluster state such as IAM entities) as stored on each drive: the
/// caller's opaque value, and when it was written, which decides between two values that
/// equally many drives hold (the later write wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRecord {
    /// Modification time (Unix nanoseconds) from the writing node.
    #[serde(rename = "t")]
    pub mod_time_ns: i64,
    /// The value, as MessagePack `bin`.
    #[serde(rename = "v", with = "msgpack_bin")]
    pub value: Vec<u8>,
}

/// Serde glue for a byte string stored as one MessagePack `bin` (serde's default for a
/// `Vec<u8>` is an array of numbers, up to twice the size).
mod msgpack_bin {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(byte) = seq.next_element::<u8>()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// there is none (all bytes 0xff).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xff {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// Formats a version id for clients: `"null"` for the null version.
pub fn version_id_string(id: Option<uuid::Uuid>) -> Option<String> {
    id.map(|id| id.as_simple().to_string())
}

/// Parses a client version id: `"null"` is the null version.
pub fn parse_version_id(s: &str) -> ObjectResult<Option<uuid::Uuid>> {
    if s == "null" {
        return Ok(None);
    }
    uuid::Uuid::try_parse(s)
        .map(Some)
        .map_err(|_| ObjectError::InvalidVersionId {
            version_id: s.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_newest_first_and_keys_in_binary_order() {
        let a_old = version_key("b", "a", 100, Some(uuid::Uuid::new_v4()));
        let a_new = version_key("b", "a", 200, Some(uuid::Uuid::new_v4()));
        let a_slash = version_key("b", "a/", 50, None);
        let ab = version_key("b", "ab", 50, None);
        assert!(a_new < a_old);
        assert!(a_old < a_slash);
        assert!(a_slash < ab);
        let rest = &a_slash[2..];
        let (key, suffix) = split_version_key(rest).unwrap();
        assert_eq!(key, b"a/");
        assert_eq!(suffix.len(), 24);
    }

    #[test]
    fn record_round_trip_and_corruption() {
        let rec = BucketRecord {
            name: "b".into(),
            created_ns: 5,
            location: "us-east-1".into(),
            versioning: VersioningState::Enabled,
            owner: Some("123456789012".into()),
            object_lock: true,
        };
        let bytes = encode(&rec);
        let back: BucketRecord = decode(&bytes).unwrap();
        assert_eq!(back.name, "b");
        assert_eq!(back.owner.as_deref(), Some("123456789012"));
        assert!(back.object_lock);
        assert!(decode::<BucketRecord>(&bytes[1..]).is_err());
        assert!(decode::<BucketRecord>(&bytes[..bytes.len() - 1]).is_err());
    }

    /// A record as written before the short field names (every field under its long name).
    #[derive(Serialize)]
    struct VersionRecordLongNames {
        version_id: Option<uuid::Uuid>,
        mod_time_ns: i64,
        delete_marker: bool,
        size: u64,
        etag: String,
        metadata: ObjectMetadata,
        n_data: u32,
        n_parity: u32,
        shard_idx: u32,
        inline: bool,
        parts: Vec<PartLongNames>,
    }

    #[derive(Serialize)]
    struct PartLongNames {
        number: u32,
        size: u64,
        etag: String,
        data_dir: Option<uuid::Uuid>,
    }

    fn encode_long_names(record: &VersionRecordLongNames) -> Vec<u8> {
        let mut out = RECORD_MAGIC.to_vec();
        out.push(RECORD_FORMAT_VERSION);
        rmp_serde::encode::write_named(&mut out, record).unwrap();
        out
    }

    #[test]
    fn version_records_short_names_round_trip_and_long_names_still_read() {
        let data_dir = uuid::Uuid::new_v4();
        let long = VersionRecordLongNames {
            version_id: Some(uuid::Uuid::new_v4()),
            mod_time_ns: 1_700_000_000_123_456_789,
            delete_marker: false,
            size: 1 << 20,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            metadata: ObjectMetadata::default(),
            n_data: 2,
            n_parity: 2,
            shard_idx: 3,
            inline: false,
            parts: vec![PartLongNames {
                number: 1,
                size: 1 << 20,
                etag: "5d41402abc4b2a76b9719d911017c592".into(),
                data_dir: Some(data_dir),
            }],
        };
        let expected = VersionRecord {
            version_id: long.version_id,
            mod_time_ns: long.mod_time_ns,
            delete_marker: false,
            size: long.size,
            etag: long.etag.clone(),
            metadata: ObjectMetadata::default(),
            n_data: 2,
            n_parity: 2,
            shard_idx: 3,
            inline: false,
            parts: vec![PartRecordRef {
                number: 1,
                size: 1 << 20,
                etag: long.etag.clone(),
                data_dir: Some(data_dir),
                checksum: None,
                plain_size: None,
                seal_header: None,
            }],
            meta_time_ns: 0,
            checksum: None,
            upload_id: None,
            seal: None,
            plain_size: None,
            tiered: None,
        };
        let old_bytes = encode_long_names(&long);
        assert_eq!(decode::<VersionRecord>(&old_bytes).unwrap(), expected);
        let new_bytes = encode(&expected);
        assert_eq!(decode::<VersionRecord>(&new_bytes).unwrap(), expected);
        // 257 → 159 bytes for this record (the two ETags and two UUIDs are most of the rest).
        assert!(
            new_bytes.len() * 3 < old_bytes.len() * 2,
            "{} vs {}",
            new_bytes.len(),
            old_bytes.len()
        );

        // Flags, metadata and user metadata round-trip too (they are left out when empty).
        let mut full = expected.clone();
        full.delete_marker = true;
        full.inline = true;
        full.parts[0].data_dir = None;
        full.metadata.content_type = Some("text/plain".into());
        full.metadata.user.insert("color".into(), "blue".into());
        assert_eq!(decode::<VersionRecord>(&encode(&full)).unwrap(), full);

        // Sealed versions are written with envelope version 2 (older binaries refuse it rather
        // than decode it without the seal); plain ones keep version 1; both read.
        assert_eq!(encode(&expected)[2], RECORD_FORMAT_VERSION);
        let mut sealed = expected.clone();
        sealed.seal = Some(SealGeometry {
            package: 65_520,
            overhead: 16,
        });
        sealed.plain_size = Some(1000);
        sealed.parts[0].seal_header = Some(vec![1; 20]);
        sealed.metadata.encryption = Some("{}".into());
        let bytes = encode(&sealed);
        assert_eq!(bytes[2], RECORD_FORMAT_VERSION_SEALED);
        assert_eq!(decode::<VersionRecord>(&bytes).unwrap(), sealed);
        let mut tiered = sealed.clone();
        tiered.tiered = Some(TieredData {
            remote: None,
            name: "abc".into(),
        });
        let bytes = encode(&tiered);
        assert_eq!(bytes[2], RECORD_FORMAT_VERSION_TIERED);
        assert_eq!(decode::<VersionRecord>(&bytes).unwrap(), tiered);
        let mut unknown = bytes.clone();
        unknown[2] = 4;
        assert!(decode::<VersionRecord>(&unknown).is_err());
    }

    #[test]
    fn system_keys_keep_namespaces_apart_and_values_round_trip_as_bin() {
        assert_eq!(system_key("iam", "users/a"), b"iam\0users/a".to_vec());
        // A namespace that is a prefix of another does not share its prefix.
        assert!(!system_key("iam2", "x").starts_with(&system_prefix("iam")));
        assert!(system_key("iam", "").starts_with(&system_prefix("iam")));
        let rec = SystemRecord {
            mod_time_ns: 1_700_000_000_000_000_000,
            value: (0..=255u8).collect(),
        };
        let bytes = encode(&rec);
        // The 256 value bytes are stored as one `bin` (an array would take up to twice that).
        assert!(bytes.len() < 256 + 32, "{} bytes", bytes.len());
        assert_eq!(decode::<SystemRecord>(&bytes).unwrap(), rec);
        let empty = SystemRecord {
            mod_time_ns: 0,
            value: Vec::new(),
        };
        assert_eq!(decode::<SystemRecord>(&encode(&empty)).unwrap(), empty);
    }

    #[test]
    fn prefix_successor_cases() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }

    #[test]
    fn version_ids() {
        assert_eq!(parse_version_id("null").unwrap(), None);
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            parse_version_id(&version_id_string(Some(id)).unwrap()).unwrap(),
            Some(id)
        );
        assert!(parse_version_id("bogus").is_err());
    }
}
