//! The object layer's error type: domain facts the S3 front door maps to S3 codes.

use strata_drive::DriveError;
use strata_erasure::ErasureError;

/// Everything an object-layer operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The bucket does not exist.
    #[error("bucket {bucket:?} does not exist")]
    NoSuchBucket {
        /// Bucket name.
        bucket: String,
    },
    /// The bucket already exists (this deployment has a single owner, so it is "yours").
    #[error("bucket {bucket:?} already exists")]
    BucketExists {
        /// Bucket name.
        bucket: String,
    },
    /// The bucket still holds objects or uploads.
    #[error("bucket {bucket:?} is not empty")]
    BucketNotEmpty {
        /// Bucket name.
        bucket: String,
    },
    /// The bucket name breaks S3's naming rules.
    #[error("invalid bucket name {bucket:?}: {reason}")]
    InvalidBucketName {
        /// Bucket name.
        bucket: String,
        /// Which rule.
        reason: &'static str,
    },
    /// The object key is longer than S3 allows.
    #[error("the object key is {len_bytes} bytes, longer than the 1024 allowed")]
    KeyTooLong {
        /// Its length.
        len_bytes: usize,
    },
    /// The object key is empty or not acceptable.
    #[error("invalid object key: {reason}")]
    InvalidObjectKey {
        /// Which rule.
        reason: &'static str,
    },
    /// No such key (or its latest version is a delete marker).
    #[error("key {key:?} does not exist in bucket {bucket:?}")]
    NoSuchKey {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// When the latest version is a delete marker, its version id ("null" for null).
        delete_marker_version: Option<String>,
    },
    /// No such version of the key.
    #[error("version {version_id:?} of key {key:?} does not exist")]
    NoSuchVersion {
        /// Object key.
        key: String,
        /// Version asked for.
        version_id: String,
    },
    /// The version asked for by id is a delete marker, which has no content (S3 answers 405).
    #[error("version {version_id:?} of key {key:?} is a delete marker")]
    VersionIsDeleteMarker {
        /// Object key.
        key: String,
        /// Version asked for.
        version_id: String,
    },
    /// A version id that is not in Strata's format.
    #[error("invalid version id {version_id:?}")]
    InvalidVersionId {
        /// What was given.
        version_id: String,
    },
    /// The range lies outside the object.
    #[error("range not satisfiable for an object of {size} bytes")]
    InvalidRange {
        /// Object size.
        size: u64,
    },
    /// The part number asked for does not exist in the object.
    #[error("part {part_number} does not exist (object has {n_parts} parts)")]
    InvalidPartNumber {
        /// Part asked for.
        part_number: u32,
        /// Parts the object has.
        n_parts: u32,
    },
    /// The body was shorter or longer than announced.
    #[error("body length {got} does not match the announced {expected}")]
    IncompleteBody {
        /// Announced length.
        expected: u64,
        /// Received length.
        got: u64,
    },
    /// The body is larger than one PUT or part may be.
    #[error("entity of {size_bytes} bytes is larger than allowed ({max_bytes})")]
    EntityTooLarge {
        /// Size received so far.
        size_bytes: u64,
        /// Limit.
        max_bytes: u64,
    },
    /// The body's MD5 is not the Content-MD5 sent.
    #[error("the Content-MD5 does not match the body")]
    BadDigest,
    /// The body's SHA-256 is not the payload hash that was signed.
    #[error("the x-amz-content-sha256 does not match the body")]
    Sha256Mismatch,
    /// Reading the request body failed.
    #[error("reading the request body failed: {0}")]
    BodyRead(#[source] crate::api::BoxError),
    /// No such multipart upload.
    #[error("upload {upload_id:?} does not exist")]
    NoSuchUpload {
        /// Upload id.
        upload_id: String,
    },
    /// A part listed in CompleteMultipartUpload is missing or has another ETag.
    #[error("part {number} was not uploaded or its ETag differs")]
    InvalidPart {
        /// Part number.
        number: u32,
    },
    /// Parts in CompleteMultipartUpload are not in ascending order.
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum part size.
    #[error("part {number} is {size_bytes} bytes, smaller than the minimum allowed")]
    EntityTooSmall {
        /// Part number.
        number: u32,
        /// Its size.
        size_bytes: u64,
    },
    /// A part number outside 1..=10000.
    #[error("part number {number} is outside 1..=10000")]
    InvalidPartNumberArgument {
        /// What was given.
        number: u32,
    },
    /// The request is not valid for a reason stated (for example a copy onto itself that
    /// changes nothing).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// Why.
        reason: &'static str,
    },
    /// UploadPartCopy's source range reaches past the source's end.
    #[error("the copy range is not within the source object of {size} bytes")]
    CopyRangeOutsideSource {
        /// The source's size.
        size: u64,
    },
    /// The body's additional checksum is not the one the client sent.
    #[error("the {algorithm} checksum sent does not match the body")]
    ChecksumMismatch {
        /// The algorithm.
        algorithm: crate::checksum::ChecksumAlgorithm,
    },
    /// The request is not valid, for the reason stated to the client (a checksum algorithm
    /// other than the upload's, a type the algorithm does not support, a part listed without
    /// its checksum, an expected size that is not the object's).
    #[error("invalid request: {message}")]
    InvalidRequestMessage {
        /// What is wrong, for the client.
        message: String,
    },
    /// A conditional write's condition does not hold.
    #[error("the write's precondition does not hold")]
    PreconditionFailed,
    /// The bucket's state does not allow the request (object lock and versioning rules).
    #[error("invalid bucket state: {reason}")]
    InvalidBucketState {
        /// Why.
        reason: &'static str,
    },
    /// The version is protected by object lock (a retention period not yet over, or a legal
    /// hold): it cannot be deleted, nor its protection weakened.
    #[error("object locked: {reason}")]
    ObjectLocked {
        /// Which protection refused.
        reason: &'static str,
    },
    /// Not enough drives answered consistently to read.
    #[error("read quorum not met: needed {needed}, got {got}")]
    ReadQuorum {
        /// Drives needed.
        needed: usize,
        /// Drives that answered.
        got: usize,
    },
    /// Not enough drives accepted the write; it was rolled back.
    #[error("write quorum not met: needed {needed}, got {got}")]
    WriteQuorum {
        /// Drives needed.
        needed: usize,
        /// Drives that accepted.
        got: usize,
    },
    /// Not enough drives accepted the write because drives of the set are full (the write was
    /// rolled back). Unlike [`ObjectError::WriteQuorum`], retrying soon will not help: space
    /// must be freed first (deletes still work).
    #[error("storage full: write quorum not met (needed {needed}, got {got}) because drives are full")]
    StorageFull {
        /// Drives needed.
        needed: usize,
        /// Drives that accepted.
        got: usize,
    },
    /// The request waited too long for memory from the process's budget (the server is at its
    /// memory limit with requests in flight; S3: 503 SlowDown, retry later).
    #[error("no memory for the request within {waited_ms} ms (the memory budget is in use)")]
    MemoryBusy {
        /// How long it waited.
        waited_ms: u64,
    },
    /// The deployment-wide lock on a key or bucket could not be taken from a quorum of nodes
    /// in time (nodes unreachable, or a long-held lock).
    #[error("lock on {resource} unavailable: no quorum of nodes granted it in time")]
    LockUnavailable {
        /// The locked resource.
        resource: String,
    },
    /// Stored data is damaged beyond what parity can repair.
    #[error("object data is corrupt beyond repair: {what}")]
    Corrupt {
        /// What was found.
        what: String,
    },
    /// A server-side helper failed (no stored data is affected; the request may be retried).
    #[error("internal error: {what}")]
    Internal {
        /// What failed.
        what: &'static str,
    },
    /// A remote tier did not answer, or refused (S3: 503, retry later).
    #[error("the remote tier {tier} is unavailable: {reason}")]
    TierUnavailable {
        /// The tier.
        tier: String,
        /// What happened (no credentials in it).
        reason: String,
    },
    /// The version's data is in an archival tier and has not been restored (S3:
    /// `InvalidObjectState`).
    #[error("the object is in the archival tier {tier}; restore it first")]
    NotRestored {
        /// The tier.
        tier: String,
    },
    /// RestoreObject on a version whose data is not in an archival tier (S3: 403
    /// `InvalidObjectState`).
    #[error("restore is not allowed for the object's storage class")]
    NotArchived,
    /// A restore of the version is running (S3: 409 `RestoreAlreadyInProgress`).
    #[error("a restore of the object is in progress")]
    RestoreInProgress,
    /// A storage class this deployment does not have.
    #[error("the storage class {name:?} does not exist here")]
    UnknownStorageClass {
        /// The class asked for.
        name: String,
    },
    /// The drives given cannot form a deployment (too few, inconsistent formats).
    #[error("invalid topology: {reason}")]
    InvalidTopology {
        /// Why.
        reason: String,
    },
    /// A drive failed in a way the operation could not work around.
    #[error(transparent)]
    Drive(#[from] DriveError),
    /// The erasure coder refused its input (a broken invariant or damaged data).
    #[error(transparent)]
    Erasure(#[from] ErasureError),
}

impl ObjectError {
    /// Whether the error says "quorum was not available" (S3: 503 SlowDown).
    pub fn is_quorum(&self) -> bool {
        matches!(
            self,
            ObjectError::ReadQuorum { .. }
                | ObjectError::WriteQuorum { .. }
                | ObjectError::LockUnavailable { .. }
                | ObjectError::MemoryBusy { .. }
        )
    }
}

/// Result type of object-layer operations.
pub type ObjectResult<T> = Result<T, ObjectError>;
