//! The object layer's public data types: what callers pass in and get back.
//!
//! These types know nothing of HTTP or XML; the S3 front door translates them.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

pub use crate::checksum::{
    ChecksumAlgorithm, ChecksumSpec, ChecksumType, ExpectedChecksum, ObjectChecksum, combine_crc,
    multipart_checksum,
};

/// A boxed error from a caller-supplied body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A request body streamed into the object layer.
pub type PutStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Most keys returned by one listing page (S3's cap).
pub const LIST_KEYS_MAX: usize = 1000;
/// Longest object key in bytes (S3's limit).
pub const OBJECT_KEY_BYTES_MAX: usize = 1024;
/// Smallest size of a multipart part other than the last one.
pub const PART_SIZE_BYTES_MIN: u64 = 5 * 1024 * 1024;
/// Largest size of one part or one single PUT.
pub const PART_SIZE_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Highest part number of a multipart upload.
pub const PART_NUMBER_MAX: u32 = 10_000;

/// Whether a bucket keeps old versions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersioningState {
    /// Never versioned: one `null` version per key.
    #[default]
    Unversioned,
    /// Every write creates a new version.
    Enabled,
    /// Was enabled; new writes replace the `null` version, older versions are kept.
    Suspended,
}

/// What the object layer knows about a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    /// Bucket name.
    pub name: String,
    /// When it was created.
    pub created: SystemTime,
    /// The region (location constraint) it was created with.
    pub location: String,
    /// Versioning state.
    pub versioning: VersioningState,
    /// The owning account's id; none: the deployment's own account.
    pub owner: Option<String>,
    /// Object lock is enabled.
    pub object_lock: bool,
}

/// Options of [`crate::ObjectLayer::make_bucket`].
#[derive(Clone, Debug, Default)]
pub struct MakeBucketOptions {
    /// Location constraint (region); empty means the server's region.
    pub location: String,
    /// The owning account's id; none: the deployment's own account.
    pub owner: Option<String>,
    /// Object lock enabled: versioning starts enabled and can never be suspended.
    pub object_lock: bool,
    /// Configuration blobs (name, blob) the bucket starts with, committed with it (an
    /// ownership setting, a default ACL), so no request ever sees the bucket without them.
    pub configs: Vec<(String, bytes::Bytes)>,
}

/// Standard and user metadata stored with an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMetadata {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Expires`, as the client sent it (an HTTP date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names lower-cased and without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// The object's tag set (key → value), as validated by the front door.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The object's access control list, opaque here (the front door's encoding); `None`
    /// means the owner alone has access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<String>,
    /// Object lock retention: the version cannot be deleted before its date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object lock legal hold: the version cannot be deleted until it is lifted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub legal_hold: bool,
    /// The version's storage class (`None`: `STANDARD`), which decides the media class its
    /// data lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// A restore of its data from an archival tier (RestoreObject), when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreState>,
    /// How the version's data is encrypted: the front door's description (mode, KMS key,
    /// sealed data key), opaque here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_false(flag: &bool) -> bool {
    !*flag
}

/// A restore (RestoreObject) of a version whose data is in an archival tier: a temporary
/// copy in the deployment, readable until `expiry_unix`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreState {
    /// The copy is being made.
    pub ongoing: bool,
    /// When the restore was asked for, Unix seconds (an ongoing one older than an hour was
    /// cut short by a restart and may be asked for again).
    pub started_unix: i64,
    /// When the copy expires, Unix seconds.
    pub expiry_unix: i64,
    /// The copy's tier object (in the hidden tier bucket) once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
}

impl RestoreState {
    /// The copy exists and has not expired at `now_unix`.
    pub fn readable(&self, now_unix: i64) -> bool {
        !self.ongoing && self.copy.is_some() && self.expiry_unix > now_unix
    }

    /// A restore is in progress (and not one a restart cut short).
    pub fn in_progress(&self, now_unix: i64) -> bool {
        self.ongoing && now_unix.saturating_sub(self.started_unix) < RESTORE_STALE_SECS
    }
}

/// Age after which an ongoing restore is taken as cut short (a restart during its copy).
pub const RESTORE_STALE_SECS: i64 = 3600;

/// Object lock's retention modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Deletable or shortened only by callers allowed to bypass governance, with the bypass
    /// header.
    Governance,
    /// Never deletable or shortened before the date, by anyone.
    Compliance,
}

/// A version's object lock retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: RetentionMode,
    /// Until when, Unix milliseconds.
    pub until_unix_ms: i64,
}

impl Retention {
    /// Whether the retention still protects the version at `now_unix_ms`.
    pub fn active(&self, now_unix_ms: i64) -> bool {
        self.until_unix_ms > now_unix_ms
    }
}

/// The current time in Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl ObjectMetadata {
    /// Why object lock forbids deleting this version now (`bypass_governance`: the caller may
    /// and asked to bypass governance retention); none when it may go.
    pub fn deletion_blocked(&self, bypass_governance: bool) -> Option<&'static str> {
        if self.legal_hold {
            return Some("the version is under a legal hold");
        }
        match self.retention {
            Some(r) if r.active(now_unix_ms()) => match r.mode {
                RetentionMode::Compliance => Some("the version is under compliance retention"),
                RetentionMode::Governance if !bypass_governance => {
                    Some("the version is under governance retention")
                }
                RetentionMode::Governance => None,
            },
            _ => None,
        }
    }

    /// Checks a change of retention from the current one to `new` as object lock allows:
    /// compliance retention can only be extended (never shortened, removed or turned into
    /// governance); active governance retention can be shortened or removed only with
    /// `bypass_governance`. Lengthening or keeping is always allowed.
    pub fn check_retention_change(
        &self,
        new: Option<Retention>,
        bypass_governance: bool,
    ) -> Result<(), &'static str> {
        let Some(current) = self.retention.filter(|r| r.active(now_unix_ms())) else {
            return Ok(());
        };
        let extends = new.is_some_and(|n| n.until_unix_ms >= current.until_unix_ms);
        match current.mode {
            RetentionMode::Compliance => {
                if extends && new.is_some_and(|n| n.mode == RetentionMode::Compliance) {
                    Ok(())
                } else {
                    Err("compliance retention can only be extended")
                }
            }
            RetentionMode::Governance => {
                if extends || bypass_governance {
                    Ok(())
                } else {
                    Err("shortening or removing governance retention needs the bypass")
                }
            }
        }
    }
}

impl ObjectMetadata {
    /// Whether no field is set (stored records leave such metadata out).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The same metadata with this object lock protection.
    pub fn with_lock(self, retention: Option<Retention>, legal_hold: bool) -> Self {
        ObjectMetadata {
            retention,
            legal_hold,
            ..self
        }
    }

    /// The same metadata with this storage class (`None`: STANDARD).
    pub fn with_storage_class(self, storage_class: Option<String>) -> Self {
        ObjectMetadata {
            storage_class,
            ..self
        }
    }

    /// The same metadata with this access control list.
    pub fn with_acl(self, acl: Option<String>) -> Self {
        ObjectMetadata { acl, ..self }
    }

    /// The same metadata with this tag set.
    pub fn with_tags(self, tags: BTreeMap<String, String>) -> Self {
        ObjectMetadata { tags, ..self }
    }

    /// The same metadata with this encryption description.
    pub fn with_encryption(self, encryption: Option<String>) -> Self {
        ObjectMetadata { encryption, ..self }
    }
}

/// One part of a stored object (a single PUT is one part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectPartInfo {
    /// Part number as uploaded (1 for a single PUT).
    pub number: u32,
    /// Size of its content in bytes.
    pub size: u64,
    /// Size of its stored bytes (larger than `size` when sealed).
    pub stored_size: u64,
    /// A sealed part's header, as its sealer gave it.
    pub seal_header: Option<Vec<u8>>,
    /// The part's ETag (hex MD5, no quotes).
    pub etag: String,
    /// The part's checksum (the object's algorithm), for multipart objects that have one.
    pub checksum: Option<Vec<u8>>,
}

/// What the object layer knows about one object version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Version id; `None` is the `null` version.
    pub version_id: Option<String>,
    /// Whether this is the newest version of the key.
    pub is_latest: bool,
    /// Whether this version is a delete marker (no data).
    pub delete_marker: bool,
    /// Content length in bytes.
    pub size: u64,
    /// Stored bytes (larger than `size` when sealed).
    pub stored_size: u64,
    /// How the stored bytes were sealed, when they were (server-side encryption).
    pub seal: Option<SealGeometry>,
    /// ETag without quotes: hex MD5, or for multipart, hex MD5 of the part MD5s and `-N`.
    pub etag: String,
    /// Last modification time.
    pub mod_time: SystemTime,
    /// When its metadata last changed in place (tags, ACL, retention, legal hold), Unix
    /// nanoseconds; 0 when never.
    pub meta_stamp: i64,
    /// The remote tier holding its data, when a transition moved it to one.
    pub remote_tier: Option<String>,
    /// Stored metadata.
    pub metadata: ObjectMetadata,
    /// The parts the object was assembled from.
    pub parts: Vec<ObjectPartInfo>,
    /// The object's additional checksum, when it has one (every version written since
    /// checksums exist has one).
    pub checksum: Option<ObjectChecksum>,
}

/// A byte range of an object, as asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive); `last` may be past the end.
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte (inclusive).
        last: u64,
    },
    /// `bytes=first-`.
    From {
        /// First byte.
        first: u64,
    },
    /// `bytes=-n`: the last n bytes.
    Suffix {
        /// How many bytes.
        len: u64,
    },
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes into `(offset, length)`, or `None`
    /// when it is not satisfiable (S3's InvalidRange).
    pub fn resolve(&self, size: u64) -> Option<(u64, u64)> {
        match *self {
            ByteRange::FromTo { first, last } => {
                if first >= size || last < first {
                    return None;
                }
                let last = last.min(size - 1);
                Some((first, last - first + 1))
            }
            ByteRange::From { first } => {
                if first >= size {
                    return None;
                }
                Some((first, size - first))
            }
            ByteRange::Suffix { len } => {
                if len == 0 || size == 0 {
                    return None;
                }
                let len = len.min(size);
                Some((size - len, len))
            }
        }
    }
}

/// Options of reads ([`crate::ObjectLayer::get_object`], `head_object`).
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    /// A specific version; `None` reads the latest. `Some("null")` is the null version.
    pub version_id: Option<String>,
    /// A byte range.
    pub range: Option<ByteRange>,
    /// Read only this part (1-based) of a multipart object.
    pub part_number: Option<u32>,
}

/// How a sealed (encrypted) part's stored bytes follow from its content, as its [`Sealer`]
/// describes them: the content is cut into packages of `package` bytes (the last holds the
/// rest; an empty part is one empty package) and each is stored with `overhead` more bytes.
/// This is all the object layer knows of encryption: it maps content ranges to stored ranges
/// with it, and never sees a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealGeometry {
    /// Content bytes per package.
    pub package: u32,
    /// Stored bytes each package adds.
    pub overhead: u32,
}

impl SealGeometry {
    /// Packages of a part of `plain` content bytes.
    pub fn packages(&self, plain: u64) -> u64 {
        plain.div_ceil(u64::from(self.package.max(1))).max(1)
    }

    /// Stored size of a part of `plain` content bytes.
    pub fn sealed_size(&self, plain: u64) -> u64 {
        plain + u64::from(self.overhead) * self.packages(plain)
    }

    /// Stored bytes of a whole package.
    pub fn sealed_package(&self) -> u64 {
        u64::from(self.package) + u64::from(self.overhead)
    }

    /// Where content bytes `offset..offset + length` of a sealed version lie in its stored
    /// bytes, given its parts' `(content size, stored size)` in order: whole packages, from
    /// the one holding the first byte to the one holding the last (and any empty parts
    /// between). `None` for an empty span or one past the end.
    pub fn span(&self, parts: &[(u64, u64)], offset: u64, length: u64) -> Option<SealedSpan> {
        let end = offset.checked_add(length).filter(|_| length > 0)?;
        let package = u64::from(self.package.max(1));
        let (mut content_start, mut stored_start) = (0u64, 0u64);
        let mut first: Option<SealedSpan> = None;
        for (idx, &(content, stored)) in parts.iter().enumerate() {
            let content_end = content_start + content;
            if first.is_none() && offset < content_end {
                let within = offset - content_start;
                let first_package = within / package;
                first = Some(SealedSpan {
                    first_part: idx,
                    first_package,
                    skip: within - first_package * package,
                    stored_offset: stored_start + first_package * self.sealed_package(),
                    stored_length: 0,
                });
            }
            if end <= content_end {
                let last_package = (end - 1 - content_start) / package;
                let stored_end = stored_start + ((last_package + 1) * self.sealed_package()).min(stored);
                return first.map(|f| SealedSpan {
                    stored_length: stored_end - f.stored_offset,
                    ..f
                });
            }
            content_start = content_end;
            stored_start += stored;
        }
        None
    }
}

/// Where a content span of a sealed version lies in its stored bytes (see
/// [`SealGeometry::span`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealedSpan {
    /// Index (in the version's parts) of the part holding the first byte.
    pub first_part: usize,
    /// The package of that part holding it.
    pub first_package: u64,
    /// Content bytes of that package before the span starts.
    pub skip: u64,
    /// Where the stored bytes start.
    pub stored_offset: u64,
    /// How many stored bytes to read.
    pub stored_length: u64,
}

/// Seals a part's content before it is stored (server-side encryption). The object layer
/// hashes the content (MD5, checksums, size limits all apply to it), hands it to the sealer
/// block by block, and erasure-codes what comes out; heal, bitrot checks and decommission
/// then move the sealed bytes as they are.
pub trait Sealer: Send + std::fmt::Debug {
    /// How the sealed bytes' sizes follow from the content's.
    fn geometry(&self) -> SealGeometry;
    /// What to keep in the part's record beside its sealed bytes (the part's header).
    fn header(&self) -> Vec<u8>;
    /// Seals the next run of content, appending the sealed bytes to `out`. `plain` is a whole
    /// number of packages unless `last` (the part's end; it may then be empty).
    fn seal(&mut self, plain: &[u8], last: bool, out: &mut bytes::BytesMut) -> Result<(), BoxError>;
    /// The ETag to store for content with this MD5 (encryption modes whose ETag must not be
    /// the content's MD5 derive another).
    fn etag(&self, md5: &[u8; 16]) -> String {
        hex::encode(md5)
    }
}

/// Seals configuration values before they reach the drives (system records such as IAM's, and
/// bucket configuration blobs) and opens them when read: the KMS-backed configuration key,
/// given to the object layer once the server has it. `scope` names the value (namespace and
/// key, or bucket and name), so a sealed value moved elsewhere does not open.
pub trait ValueSealer: Send + Sync + std::fmt::Debug {
    /// The stored form of `plain`.
    fn seal(&self, scope: &[u8], plain: &[u8]) -> Result<Vec<u8>, BoxError>;
    /// The value of a stored form `seal` made (`Ok(None)`: not sealed, a value written before
    /// sealing was turned on, returned as it is).
    fn open(&self, scope: &[u8], stored: &[u8]) -> Result<Option<Vec<u8>>, BoxError>;
}

/// Turns a copy source's stored bytes into its content (a sealed source's opener), given the
/// reader as the object layer opened it (its info, content span, stored bytes).
pub type SourceOpener = Box<dyn FnOnce(crate::GetObjectReader) -> crate::ObjectResult<PutStream> + Send>;

/// Options of writes (`put_object`, `create_multipart_upload`, `copy_object`).
#[derive(Debug, Default)]
pub struct PutOptions {
    /// Exact body size when known in advance (Content-Length); a mismatch fails the write.
    pub size: Option<u64>,
    /// Metadata to store.
    pub metadata: ObjectMetadata,
    /// Expected MD5 of the body (Content-MD5); a mismatch fails the write with `BadDigest`.
    pub content_md5: Option<[u8; 16]>,
    /// Expected SHA-256 of the body (a signed payload hash); a mismatch fails the write.
    pub content_sha256: Option<[u8; 32]>,
    /// A condition on the key's current object, checked under the key's lock when the new
    /// version commits (compare-and-swap writes).
    pub condition: Option<WriteCondition>,
    /// The additional checksum the client sent or asked for, checked before anything
    /// commits. A single PUT without one stores CRC64NVME; a multipart upload's parts store
    /// the upload's algorithm (CRC64NVME when it named none) and must match it.
    pub checksum: Option<ChecksumSpec>,
    /// Seals the content before it is stored (server-side encryption); `size`, the digests
    /// and checksums are the content's.
    pub sealer: Option<Box<dyn Sealer>>,
}

/// Options of [`crate::ObjectLayer::copy_object`] and `upload_part_copy`.
#[derive(Default)]
pub struct CopyOptions {
    /// The checksum algorithm the copy is to carry (`x-amz-checksum-algorithm`).
    pub checksum: Option<ChecksumAlgorithm>,
    /// A condition on the destination key's current object (conditional copy).
    pub condition: Option<WriteCondition>,
    /// Opens a sealed source's stored bytes (required when the source is sealed).
    pub open_source: Option<SourceOpener>,
    /// Seals the copy (server-side encryption of the destination).
    pub sealer: Option<Box<dyn Sealer>>,
}

impl std::fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("checksum", &self.checksum)
            .field("condition", &self.condition)
            .field("open_source", &self.open_source.is_some())
            .field("sealer", &self.sealer)
            .finish()
    }
}

/// A conditional write's condition on the key's current (latest, not a delete marker) object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// `If-None-Match: *`: only when the key has no current object.
    IfNoneMatch,
    /// `If-Match`: only when the current object's ETag (hex, unquoted) is this one; `None`
    /// (`If-Match: *`) only when there is a current object.
    IfMatch(Option<String>),
}

/// Options of deletes.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// Delete this exact version (permanently); `None` deletes the latest (a delete marker in
    /// a versioned bucket).
    pub version_id: Option<String>,
    /// The caller may bypass governance retention and asked to
    /// (`x-amz-bypass-governance-retention` with `s3:BypassGovernanceRetention`).
    pub bypass_governance: bool,
    /// A conditional delete's condition (`If-Match`) on the key's current object, checked
    /// under the key's lock: `PreconditionFailed` when its ETag differs, `NoSuchKey` when
    /// there is no current object.
    pub condition: Option<WriteCondition>,
    /// Delete only if the version deleted (with `version_id`; else the key's current
    /// version) is still as the caller saw it: checked under the key's lock against the
    /// versions read quorum agrees on, `PreconditionFailed` otherwise. Lifecycle expiration
    /// uses it so that what it removes is exactly what its rules were evaluated on.
    pub expect: Option<DeleteExpectation>,
}

/// What a conditional delete ([`DeleteOptions::expect`]) expects of the version it removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeleteExpectation {
    /// Its modification time.
    pub mod_time: SystemTime,
    /// Its metadata stamp ([`ObjectInfo::meta_stamp`]): no tag, retention or other in-place
    /// change since.
    pub meta_stamp: i64,
    /// Where it stands among the key's versions.
    pub position: VersionPosition,
}

/// A version's place among its key's versions, as a conditional delete expects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionPosition {
    /// The current version, not a delete marker.
    Current,
    /// The key's only version.
    Only,
    /// A noncurrent version whose next newer version has this modification time, with at
    /// least `newer` versions newer than it.
    Noncurrent {
        /// The next newer version's modification time.
        successor: SystemTime,
        /// Versions newer than it, at least.
        newer: usize,
    },
}

/// What a delete did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteResult {
    /// The version id removed or created (delete marker): `"null"` for a null delete marker
    /// (a delete in a suspended bucket); `None` when nothing versioned was involved (an
    /// unversioned bucket's delete).
    pub version_id: Option<String>,
    /// Whether the version affected is (or was) a delete marker.
    pub delete_marker: bool,
}

/// Options of [`crate::ObjectLayer::list_objects`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Start after this key or common prefix (exclusive).
    pub marker: Option<String>,
    /// Page size, 0..=[`LIST_KEYS_MAX`] (larger values are clamped).
    pub max_keys: usize,
}

/// A page of [`crate::ObjectLayer::list_objects`].
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    /// Latest non-deleted versions, in key order.
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes (each ends with the delimiter), in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// Where the next page starts (the last key or prefix returned), when truncated.
    pub next_marker: Option<String>,
}

/// Options of [`crate::ObjectLayer::list_object_versions`].
#[derive(Clone, Debug, Default)]
pub struct ListVersionsOptions {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Start at this key (after it, unless `version_id_marker` is set).
    pub key_marker: Option<String>,
    /// Start after this version of `key_marker`.
    pub version_id_marker: Option<String>,
    /// Page size (versions + prefixes), clamped to [`LIST_KEYS_MAX`].
    pub max_keys: usize,
}

/// A page of [`crate::ObjectLayer::list_object_versions`].
#[derive(Clone, Debug, Default)]
pub struct ListVersionsResult {
    /// Versions and delete markers, by key, newest first within a key.
    pub versions: Vec<ObjectInfo>,
    /// Common prefixes.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// Key marker of the next page.
    pub next_key_marker: Option<String>,
    /// Version id marker of the next page (`"null"` for the null version).
    pub next_version_id_marker: Option<String>,
}

/// A multipart upload in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When the upload was created.
    pub initiated: SystemTime,
    /// Metadata the object will get.
    pub metadata: ObjectMetadata,
    /// The checksum algorithm and type the client chose for the upload, if any.
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

/// An uploaded part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number.
    pub number: u32,
    /// ETag (hex MD5, no quotes).
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub mod_time: SystemTime,
    /// The part's checksum with the upload's algorithm (CRC64NVME when the upload named none).
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
}

/// Options of [`crate::ObjectLayer::list_parts`].
#[derive(Clone, Debug, Default)]
pub struct ListPartsOptions {
    /// List parts after this number.
    pub part_number_marker: u32,
    /// Page size, clamped to [`LIST_KEYS_MAX`].
    pub max_parts: usize,
}

/// A page of [`crate::ObjectLayer::list_parts`].
#[derive(Clone, Debug)]
pub struct ListPartsResult {
    /// The upload.
    pub upload: UploadInfo,
    /// Parts in number order.
    pub parts: Vec<PartInfo>,
    /// Whether more parts follow.
    pub is_truncated: bool,
    /// Marker of the next page.
    pub next_part_number_marker: Option<u32>,
}

/// Options of [`crate::ObjectLayer::list_multipart_uploads`].
#[derive(Clone, Debug, Default)]
pub struct ListUploadsOptions {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Start at this key (after it, unless `upload_id_marker` is set).
    pub key_marker: Option<String>,
    /// Start after this upload of `key_marker`.
    pub upload_id_marker: Option<String>,
    /// Page size, clamped to [`LIST_KEYS_MAX`].
    pub max_uploads: usize,
}

/// A page of [`crate::ObjectLayer::list_multipart_uploads`].
#[derive(Clone, Debug, Default)]
pub struct ListUploadsResult {
    /// Uploads, by key then initiation.
    pub uploads: Vec<UploadInfo>,
    /// Common prefixes.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// Key marker of the next page.
    pub next_key_marker: Option<String>,
    /// Upload id marker of the next page.
    pub next_upload_id_marker: Option<String>,
}

/// One entry of a CompleteMultipartUpload request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletePart {
    /// Part number.
    pub number: u32,
    /// The ETag the client got for it (quotes are ignored).
    pub etag: String,
    /// The part's checksum as the client lists it, when it does.
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
}

/// Options of [`crate::ObjectLayer::complete_multipart_upload_with`].
#[derive(Clone, Debug, Default)]
pub struct CompleteOptions {
    /// Complete only when this holds for the key's current object at that moment.
    pub condition: Option<WriteCondition>,
    /// The whole object's checksum the client sent, checked against the one formed from the
    /// parts (its algorithm must be the upload's).
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// The checksum type the client named, which must be the upload's.
    pub checksum_type: Option<ChecksumType>,
    /// The object's size the client expects (`x-amz-mp-object-size`); the completion fails
    /// when the listed parts add up to another.
    pub object_size: Option<u64>,
}

/// Whether the object layer can serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Every erasure set has write quorum of online drives.
    pub write_quorum: bool,
    /// Every erasure set has read quorum of online drives.
    pub read_quorum: bool,
    /// Drives online / total.
    pub n_drives_online: usize,
    /// Total drives.
    pub n_drives: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored span by brute force: every package (part, index, stored start, stored end,
    /// content start, content end), then those the span touches.
    fn brute(g: SealGeometry, parts: &[(u64, u64)], offset: u64, length: u64) -> (usize, u64, u64, u64, u64) {
        let p = u64::from(g.package);
        let mut packages = Vec::new();
        let (mut content, mut stored) = (0, 0);
        for (idx, &(c, s)) in parts.iter().enumerate() {
            for k in 0..g.packages(c) {
                let plain = (c - k * p).min(p);
                packages.push((
                    idx,
                    k,
                    stored,
                    stored + plain + u64::from(g.overhead),
                    content,
                    content + plain,
                ));
                stored += plain + u64::from(g.overhead);
                content += plain;
            }
            assert_eq!(stored - parts[..idx].iter().map(|x| x.1).sum::<u64>(), s);
        }
        let end = offset + length;
        let first = packages.iter().find(|x| x.4 <= offset && offset < x.5).unwrap();
        let last = packages.iter().find(|x| x.4 < end && end <= x.5).unwrap();
        (first.0, first.1, offset - first.4, first.2, last.3 - first.2)
    }

    #[test]
    fn sealed_spans_cover_exactly_the_packages_of_the_content_span() {
        let g = SealGeometry {
            package: 16,
            overhead: 4,
        };
        let contents: [&[u64]; 4] = [&[1], &[16, 16], &[40, 0, 33], &[5, 16, 17, 1]];
        for content in contents {
            let parts: Vec<(u64, u64)> = content.iter().map(|&c| (c, g.sealed_size(c))).collect();
            let total: u64 = content.iter().sum();
            for offset in 0..total {
                for length in 1..=total - offset {
                    let span = g.span(&parts, offset, length).unwrap();
                    let want = brute(g, &parts, offset, length);
                    assert_eq!(
                        (
                            span.first_part,
                            span.first_package,
                            span.skip,
                            span.stored_offset,
                            span.stored_length
                        ),
                        want,
                        "{content:?} {offset}+{length}"
                    );
                }
            }
            assert_eq!(g.span(&parts, total, 1), None);
            assert_eq!(g.span(&parts, 0, 0), None);
        }
    }
}
