//! The wire format: operation names and paths, MessagePack request and response bodies, and
//! the encoding of drive errors. `docs/RPC.md` documents it for humans; this file is the truth.
//!
//! **Invariant:** every `DriveError` variant crosses the wire as itself (a remote
//! `ShardNotFound` is a local `ShardNotFound`); paths in errors are prefixed with the peer's
//! URL so logs say which node.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use strata_drive::{DataDirEntry, DataDirId, DriveError, MetaOp, ScanRange, Table};

/// Path segment after the drive id naming the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Format,
    MetaGet,
    MetaScan,
    MetaCommit,
    ShardWrite,
    ShardRead,
    ShardSize,
    ShardDelete,
    DataDirDelete,
    DataDirList,
    Info,
    HealingMark,
    SetHealingMark,
}

impl Op {
    pub(crate) const ALL: [Op; 13] = [
        Op::Format,
        Op::MetaGet,
        Op::MetaScan,
        Op::MetaCommit,
        Op::ShardWrite,
        Op::ShardRead,
        Op::ShardSize,
        Op::ShardDelete,
        Op::DataDirDelete,
        Op::DataDirList,
        Op::Info,
        Op::HealingMark,
        Op::SetHealingMark,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Format => "format",
            Op::MetaGet => "meta_get",
            Op::MetaScan => "meta_scan",
            Op::MetaCommit => "meta_commit",
            Op::ShardWrite => "shard_write",
            Op::ShardRead => "shard_read",
            Op::ShardSize => "shard_size",
            Op::ShardDelete => "shard_delete",
            Op::DataDirDelete => "data_dir_delete",
            Op::DataDirList => "data_dir_list",
            Op::Info => "info",
            Op::HealingMark => "healing_mark",
            Op::SetHealingMark => "set_healing_mark",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// Characters escaped in the drive-id path segment (everything but unreserved characters).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Path of a drive under [`crate::RPC_PATH_PREFIX`]: `drive/<percent-encoded id>/`.
pub(crate) fn drive_path(drive_id: &str) -> String {
    format!(
        "{}drive/{}/",
        crate::RPC_PATH_PREFIX,
        percent_encoding::utf8_percent_encode(drive_id, SEGMENT)
    )
}

/// Splits a request path into the drive id and operation.
/// Path of batch requests: `/strata/rpc/v1/batch`, carrying several unary drive calls.
pub(crate) const BATCH_PATH: &str = "batch";

/// Path of the hello: `/strata/rpc/v1/hello`, signed with the epoch `-`, answered with the
/// server's epoch (32 lowercase hex digits) that every other request must be signed with.
pub(crate) const HELLO_PATH: &str = "hello";

/// Several unary drive calls in one request (each `path` a drive call's path).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BatchRequest {
    pub(crate) calls: Vec<BatchCall>,
}

/// One call of a batch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BatchCall {
    pub(crate) path: String,
    pub(crate) body: Blob,
}

/// The answers of a batch, in the order of its calls: each the status and body the call would
/// have got alone.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BatchResponse {
    pub(crate) answers: Vec<BatchAnswer>,
}

/// One answer of a batch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BatchAnswer {
    pub(crate) status: u16,
    pub(crate) body: Blob,
}

/// Path prefix of node-level calls: `/strata/rpc/v1/node/<op>`.
pub(crate) const NODE_PATH: &str = "node/";

/// The node-level operation named by a path, if it is one.
pub(crate) fn parse_node_path(path: &str) -> Option<&str> {
    let op = path
        .strip_prefix(crate::RPC_PATH_PREFIX)?
        .strip_prefix(NODE_PATH)?;
    (!op.is_empty()
        && op
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(op)
}

pub(crate) fn parse_path(path: &str) -> Option<(String, Op)> {
    let rest = path
        .strip_prefix(crate::RPC_PATH_PREFIX)?
        .strip_prefix("drive/")?;
    let (drive, op) = rest.split_once('/')?;
    let drive = percent_encoding::percent_decode_str(drive).decode_utf8().ok()?;
    Some((drive.into_owned(), Op::from_name(op)?))
}

/// Query of a shard write: `dir=<32 hex digits>&part=<n>`.
pub(crate) fn shard_write_query(dir: DataDirId, part: u32) -> String {
    format!("dir={}&part={part}", dir.0.as_simple())
}

pub(crate) fn parse_shard_write_query(query: &str) -> Option<(DataDirId, u32)> {
    let (mut dir, mut part) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("dir", v) => dir = Some(DataDirId(uuid::Uuid::try_parse(v).ok()?)),
            ("part", v) => part = Some(v.parse().ok()?),
            _ => return None,
        }
    }
    Some((dir?, part?))
}

/// Header carrying the call's remaining time budget in milliseconds.
pub(crate) const TIMEOUT_HEADER: &str = "x-strata-timeout-ms";
/// Trailer that ends a shard write: [`SHARD_COMMIT`] or [`SHARD_ABORT`].
pub(crate) const SHARD_END_TRAILER: &str = "x-strata-shard";
pub(crate) const SHARD_COMMIT: &str = "commit";
pub(crate) const SHARD_ABORT: &str = "abort";
/// Trailer of a shard read that failed after its first chunk: hex MessagePack [`WireError`].
pub(crate) const ERROR_TRAILER: &str = "x-strata-error";
/// Content type of every MessagePack body.
pub(crate) const MSGPACK_CONTENT_TYPE: &str = "application/msgpack";

/// Bytes on the wire as MessagePack `bin`, not an array of integers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl<'de> Visitor<'de> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Blob(out))
            }
        }
        deserializer.deserialize_byte_buf(BlobVisitor)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MetaGetRequest {
    pub table: String,
    pub key: Blob,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MetaGetResponse {
    pub value: Option<Blob>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MetaScanRequest {
    pub table: String,
    pub prefix: Blob,
    pub start: Blob,
    pub start_exclusive: bool,
    pub limit: u32,
    /// Absent from older peers' requests: values wanted.
    #[serde(default)]
    pub keys_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireEntry {
    pub key: Blob,
    pub value: Blob,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MetaScanResponse {
    pub entries: Vec<WireEntry>,
}

/// One op of a batch; `value: None` is a delete.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireMetaOp {
    pub table: String,
    pub key: Blob,
    pub value: Option<Blob>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MetaCommitRequest {
    pub ops: Vec<WireMetaOp>,
    /// The batch deletes and may use the drive's space reserve (`Drive::meta_commit_deleting`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ShardReadRequest {
    pub dir: uuid::Uuid,
    pub part: u32,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ShardRef {
    pub dir: uuid::Uuid,
    pub part: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ShardSizeResponse {
    pub size_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DataDirDeleteRequest {
    pub dir: uuid::Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DataDirListRequest {
    pub start_after: Option<uuid::Uuid>,
    pub limit: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireDataDirEntry {
    pub id: uuid::Uuid,
    /// Modification time since the Unix epoch (clamped to it).
    pub modified_unix_nanos: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DataDirListResponse {
    pub entries: Vec<WireDataDirEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InfoResponse {
    pub total_bytes: u64,
    pub free_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HealingMarkResponse {
    pub on: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SetHealingMarkRequest {
    pub on: bool,
}

/// The final message of a shard write's response: `None` once committed (or aborted) durably.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ShardWriteOutcome {
    pub error: Option<WireError>,
}

/// A failed call, as the body of a non-200 response (or a shard write's outcome).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireError {
    Unformatted {
        path: String,
    },
    FormatMismatch {
        path: String,
        found: String,
        expected: String,
    },
    Corrupt {
        path: String,
        what: String,
    },
    ShardNotFound,
    Offline {
        endpoint: String,
    },
    Full {
        path: String,
    },
    ReadOnly {
        path: String,
    },
    StoreReopening {
        path: String,
    },
    ProcessResources {
        path: String,
        what: String,
    },
    Io {
        path: String,
        raw_os_error: Option<i32>,
        message: String,
    },
    RecordTooLarge {
        key_bytes: u64,
        key_bytes_max: u64,
        value_bytes: u64,
        value_bytes_max: u64,
    },
    MetaStore {
        path: String,
        message: String,
    },
    /// A drive error this version does not know how to carry.
    OtherDrive {
        message: String,
    },
    /// Authentication failed (403).
    Unauthorized {
        reason: String,
    },
    /// The request was malformed (400).
    BadRequest {
        reason: String,
    },
    /// The server serves no such drive (404).
    UnknownDrive {
        drive_id: String,
    },
    /// The server gave up when the call's deadline passed (504).
    DeadlineExceeded,
    /// A node-level service call failed on the peer (500), or no such service runs there yet.
    Node {
        reason: String,
    },
}

impl WireError {
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            WireError::Unauthorized { .. } => http::StatusCode::FORBIDDEN,
            WireError::BadRequest { .. } => http::StatusCode::BAD_REQUEST,
            WireError::UnknownDrive { .. } => http::StatusCode::NOT_FOUND,
            WireError::DeadlineExceeded => http::StatusCode::GATEWAY_TIMEOUT,
            WireError::Node { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            _ => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn from_drive(error: &DriveError) -> Self {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        match error {
            DriveError::Unformatted { path: p } => WireError::Unformatted { path: path(p) },
            DriveError::FormatMismatch {
                path: p,
                found,
                expected,
            } => WireError::FormatMismatch {
                path: path(p),
                found: found.clone(),
                expected: expected.clone(),
            },
            DriveError::Corrupt { path: p, what } => WireError::Corrupt {
                path: path(p),
                what: what.clone(),
            },
            DriveError::ShardNotFound => WireError::ShardNotFound,
            DriveError::Offline { endpoint } => WireError::Offline {
                endpoint: endpoint.clone(),
            },
            DriveError::Full { path: p } => WireError::Full { path: path(p) },
            DriveError::ReadOnly { path: p } => WireError::ReadOnly { path: path(p) },
            DriveError::StoreReopening { path: p } => WireError::StoreReopening { path: path(p) },
            DriveError::ProcessResources { path: p, what } => WireError::ProcessResources {
                path: path(p),
                what: what.clone(),
            },
            DriveError::Io { path: p, source } => WireError::Io {
                path: path(p),
                raw_os_error: source.raw_os_error(),
                message: source.to_string(),
            },
            DriveError::RecordTooLarge {
                key_bytes,
                key_bytes_max,
                value_bytes,
                value_bytes_max,
            } => WireError::RecordTooLarge {
                key_bytes: *key_bytes,
                key_bytes_max: *key_bytes_max,
                value_bytes: *value_bytes,
                value_bytes_max: *value_bytes_max,
            },
            DriveError::MetaStore { path: p, message } => WireError::MetaStore {
                path: path(p),
                message: message.clone(),
            },
            other => WireError::OtherDrive {
                message: other.to_string(),
            },
        }
    }

    /// The drive error this stands for, on a drive at `endpoint` of the peer at `peer_url`.
    pub(crate) fn into_drive(self, peer_url: &str, endpoint: &str) -> DriveError {
        let remote = |p: String| {
            if p.starts_with('/') {
                PathBuf::from(format!("{peer_url}{p}"))
            } else {
                PathBuf::from(format!("{peer_url}/{p}"))
            }
        };
        match self {
            WireError::Unformatted { path } => DriveError::Unformatted { path: remote(path) },
            WireError::FormatMismatch {
                path,
                found,
                expected,
            } => DriveError::FormatMismatch {
                path: remote(path),
                found,
                expected,
            },
            WireError::Corrupt { path, what } => DriveError::Corrupt {
                path: remote(path),
                what,
            },
            WireError::ShardNotFound => DriveError::ShardNotFound,
            WireError::Offline { .. } | WireError::DeadlineExceeded => DriveError::Offline {
                endpoint: endpoint.to_string(),
            },
            WireError::Full { path } => DriveError::Full { path: remote(path) },
            WireError::ReadOnly { path } => DriveError::ReadOnly { path: remote(path) },
            WireError::StoreReopening { path } => DriveError::StoreReopening { path: remote(path) },
            WireError::ProcessResources { path, what } => DriveError::ProcessResources {
                path: remote(path),
                what,
            },
            WireError::Io {
                path,
                raw_os_error,
                message,
            } => DriveError::Io {
                path: remote(path),
                source: match raw_os_error {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::other(message),
                },
            },
            WireError::RecordTooLarge {
                key_bytes,
                key_bytes_max,
                value_bytes,
                value_bytes_max,
            } => DriveError::RecordTooLarge {
                key_bytes,
                key_bytes_max,
                value_bytes,
                value_bytes_max,
            },
            WireError::MetaStore { path, message } => DriveError::MetaStore {
                path: remote(path),
                message,
            },
            WireError::OtherDrive { message } => DriveError::Io {
                path: PathBuf::from(endpoint),
                source: std::io::Error::other(message),
            },
            WireError::Unauthorized { reason } => DriveError::Io {
                path: PathBuf::from(endpoint),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("peer refused the RPC call (403): {reason}"),
                ),
            },
            WireError::BadRequest { reason } => DriveError::Io {
                path: PathBuf::from(endpoint),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("peer rejected the RPC call (400): {reason}"),
                ),
            },
            // Not served (yet): the peer is starting, or its drive is not open.
            WireError::UnknownDrive { drive_id } => {
                tracing::debug!(endpoint, drive_id, "peer does not serve the drive");
                DriveError::Offline {
                    endpoint: endpoint.to_string(),
                }
            }
            WireError::Node { reason } => DriveError::Io {
                path: PathBuf::from(endpoint),
                source: std::io::Error::other(format!("node call failed on the peer: {reason}")),
            },
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs of strings, integers and bytes into a Vec cannot fail; an empty
    // body would fail decoding on the other side rather than pass silently.
    rmp_serde::to_vec_named(value).unwrap_or_default()
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
}

pub(crate) fn table_from_name(name: &str) -> Option<Table> {
    Table::ALL.into_iter().find(|t| t.name() == name)
}

pub(crate) fn meta_op_to_wire(op: MetaOp) -> WireMetaOp {
    match op {
        MetaOp::Put { table, key, value } => WireMetaOp {
            table: table.name().to_string(),
            key: Blob(key),
            value: Some(Blob(value)),
        },
        MetaOp::Delete { table, key } => WireMetaOp {
            table: table.name().to_string(),
            key: Blob(key),
            value: None,
        },
    }
}

pub(crate) fn meta_op_from_wire(op: WireMetaOp) -> Option<MetaOp> {
    let table = table_from_name(&op.table)?;
    Some(match op.value {
        Some(value) => MetaOp::put(table, op.key.0, value.0),
        None => MetaOp::delete(table, op.key.0),
    })
}

pub(crate) fn scan_to_wire(table: Table, range: ScanRange) -> MetaScanRequest {
    MetaScanRequest {
        table: table.name().to_string(),
        prefix: Blob(range.prefix),
        start: Blob(range.start),
        start_exclusive: range.start_exclusive,
        limit: range.limit,
        keys_only: range.keys_only,
    }
}

pub(crate) fn data_dir_entry_to_wire(entry: &DataDirEntry) -> WireDataDirEntry {
    let nanos = entry
        .modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    WireDataDirEntry {
        id: entry.id.0,
        modified_unix_nanos: nanos,
    }
}

pub(crate) fn data_dir_entry_from_wire(entry: &WireDataDirEntry) -> DataDirEntry {
    DataDirEntry {
        id: DataDirId(entry.id),
        modified: SystemTime::UNIX_EPOCH + Duration::from_nanos(entry.modified_unix_nanos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for id in ["/mnt/disk1", "disk 2", "d%/é", ""] {
            for op in Op::ALL {
                let path = format!("{}{}", drive_path(id), op.name());
                assert_eq!(parse_path(&path), Some((id.to_string(), op)), "{path}");
            }
        }
        assert_eq!(parse_path("/strata/rpc/v1/drive/x/nope"), None);
        assert_eq!(parse_path("/other/drive/x/info"), None);
        let dir = DataDirId::new_random();
        assert_eq!(
            parse_shard_write_query(&shard_write_query(dir, 7)),
            Some((dir, 7))
        );
        assert_eq!(parse_shard_write_query("dir=zz&part=1"), None);
        assert_eq!(parse_shard_write_query("part=1"), None);
    }

    #[test]
    fn blobs_are_msgpack_bin() {
        let bytes = encode(&MetaGetRequest {
            table: "objects".into(),
            key: Blob(vec![0xff; 300]),
        });
        // 300 bytes as `bin 16` (3 bytes of header) rather than 300 two-byte integers.
        assert!(bytes.len() < 300 + 32, "{}", bytes.len());
        let back: MetaGetRequest = decode(&bytes).unwrap();
        assert_eq!(back.key, Blob(vec![0xff; 300]));
    }

    #[test]
    fn drive_errors_keep_their_variant() {
        let peer = "http://node2:9000";
        let endpoint = "http://node2:9000/mnt/disk1";
        let cases: Vec<DriveError> = vec![
            DriveError::ShardNotFound,
            DriveError::Corrupt {
                path: "/mnt/disk1".into(),
                what: "bad".into(),
            },
            DriveError::Full {
                path: "/mnt/disk1".into(),
            },
            DriveError::ReadOnly {
                path: "/mnt/disk1".into(),
            },
            DriveError::StoreReopening {
                path: "/mnt/disk1".into(),
            },
            DriveError::ProcessResources {
                path: "/mnt/disk1".into(),
                what: "Too many open files".into(),
            },
            DriveError::Unformatted {
                path: "/mnt/disk1".into(),
            },
            DriveError::Offline {
                endpoint: "/mnt/disk1".into(),
            },
            DriveError::MetaStore {
                path: "/mnt/disk1".into(),
                message: "m".into(),
            },
            DriveError::Io {
                path: "/mnt/disk1/x".into(),
                source: std::io::Error::from_raw_os_error(28),
            },
            DriveError::RecordTooLarge {
                key_bytes: 1,
                key_bytes_max: 2,
                value_bytes: 3,
                value_bytes_max: 4,
            },
        ];
        for error in cases {
            let wire: WireError = decode(&encode(&WireError::from_drive(&error))).unwrap();
            let back = wire.into_drive(peer, endpoint);
            assert_eq!(
                std::mem::discriminant(&back),
                std::mem::discriminant(&error),
                "{error:?} -> {back:?}"
            );
            match (&error, &back) {
                (DriveError::Corrupt { what: a, .. }, DriveError::Corrupt { what: b, path }) => {
                    assert_eq!(a, b);
                    assert_eq!(path, &PathBuf::from("http://node2:9000/mnt/disk1"));
                }
                (DriveError::Io { source: a, .. }, DriveError::Io { source: b, .. }) => {
                    assert_eq!(a.kind(), b.kind());
                }
                (DriveError::Offline { .. }, DriveError::Offline { endpoint: e }) => assert_eq!(e, endpoint),
                _ => {}
            }
        }
    }

    #[test]
    fn meta_ops_round_trip() {
        let ops = vec![
            MetaOp::put(Table::Objects, b"k".to_vec(), b"v".to_vec()),
            MetaOp::delete(Table::Parts, b"p".to_vec()),
        ];
        let wire = MetaCommitRequest {
            ops: ops.clone().into_iter().map(meta_op_to_wire).collect(),
            deleting: true,
        };
        let back: MetaCommitRequest = decode(&encode(&wire)).unwrap();
        assert!(back.deleting);
        let back: Vec<MetaOp> = back
            .ops
            .into_iter()
            .map(|op| meta_op_from_wire(op).unwrap())
            .collect();
        assert_eq!(back, ops);
    }
}
