//! Call authentication: the cluster secret, request signatures (scheme `STRATA-RPC-V2`), their
//! verification, and the MAC over shard streams.
//!
//! # Request signature
//!
//! Every request carries these headers (all ASCII):
//!
//! | header | value |
//! |---|---|
//! | `x-strata-date` | Unix time in seconds, decimal |
//! | `x-strata-epoch` | the server's epoch: 32 lowercase hex digits (16 random bytes the server drew at start, learnt by the client's hello), or `-` on the hello itself |
//! | `x-strata-session` | the client's session: 32 lowercase hex digits (16 random bytes drawn per [`crate::Peer`], i.e. per client process and server) |
//! | `x-strata-seq` | the request's number in its session, decimal `u64`, from 1, strictly increasing |
//! | `x-strata-content-sha256` | lowercase hex SHA-256 of the body, or `STREAMING` (shard writes) |
//! | `x-strata-signature` | lowercase hex HMAC-SHA256 under the cluster secret of the string to sign |
//!
//! ```text
//! string_to_sign = "STRATA-RPC-V2\n" + method + "\n" + path_and_query + "\n" + date + "\n"
//!                  + epoch + "\n" + session + "\n" + seq + "\n" + content_sha256
//! ```
//!
//! The server checks, in this order: every header present and well formed; the date within
//! [`crate::CLOCK_SKEW_SECS_MAX`] of its clock; the signature (constant time); the epoch equal
//! to its own (`-` only on the hello path); then the session's anti-replay window
//! ([`crate::replay`]): a sequence number already accepted, or older than the window, is
//! refused. So a request is accepted at most once by one server instance, a request captured
//! before a server restart names an epoch that no longer exists, and a session the server has
//! forgotten can only have had requests that are stale by their date.
//!
//! # Stream MAC
//!
//! The bytes of a shard stream are not in the signature (they are not known when it is
//! made). Each stream gets its own MAC, keyed BLAKE3 under the stream key
//! (`HMAC-SHA256(cluster_secret, "strata-rpc-stream-v2")`, so the signing key is never used as
//! a BLAKE3 key) over
//!
//! ```text
//! label + "\n" + signature + "\n" + every byte of the stream, in order
//! ```
//!
//! where `label` is `STRATA-SHARD-WRITE-V2` (client to server, sent in the commit trailer) or
//! `STRATA-SHARD-READ-V2` (server to client, in a response header or trailer) and `signature`
//! is the request's hex signature: a MAC is valid for one request and one direction only.
//! Sent as 64 lowercase hex digits in `x-strata-stream-mac`.
//!
//! **Invariant:** signatures and stream MACs are compared in constant time (`hmac`'s
//! `verify_slice`, `blake3::Hash`'s `PartialEq`); neither is ever logged, nor is the secret.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::CLOCK_SKEW_SECS_MAX;

type HmacSha256 = Hmac<Sha256>;

/// Header with the request time in Unix seconds.
pub(crate) const DATE_HEADER: &str = "x-strata-date";
/// Header with the server epoch the request is meant for ([`HELLO_EPOCH`] on a hello).
pub(crate) const EPOCH_HEADER: &str = "x-strata-epoch";
/// Header with the client's session id.
pub(crate) const SESSION_HEADER: &str = "x-strata-session";
/// Header with the request's sequence number in its session.
pub(crate) const SEQ_HEADER: &str = "x-strata-seq";
/// Header with the hex SHA-256 of the body, or [`STREAMING_PAYLOAD`].
pub(crate) const CONTENT_SHA256_HEADER: &str = "x-strata-content-sha256";
/// Header with the hex HMAC-SHA256 signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-strata-signature";
/// Header (shard read) or trailer (shard write commit, streamed shard read) with the stream MAC.
pub(crate) const STREAM_MAC_HEADER: &str = "x-strata-stream-mac";
/// Body hash of a streamed body (shard writes), which is covered by the stream MAC instead.
pub(crate) const STREAMING_PAYLOAD: &str = "STREAMING";
/// The epoch of a hello, which asks for the server's epoch.
pub(crate) const HELLO_EPOCH: &str = "-";

/// Label the cluster secret is derived under, so the secret is never the root key itself.
const CLUSTER_SECRET_LABEL: &[u8] = b"strata-cluster-v1";
/// Label the stream key is derived from the cluster secret under.
const STREAM_KEY_LABEL: &[u8] = b"strata-rpc-stream-v2";
/// First line of every string to sign (versions the signature scheme).
const SIGNATURE_SCHEME: &str = "STRATA-RPC-V2";
/// Length of a cluster secret (and of the stream key).
const CLUSTER_SECRET_BYTES: usize = 32;
/// Length of an epoch and of a session id.
pub(crate) const NONCE_BYTES: usize = 16;

/// The secret every node of a deployment shares to authenticate RPC calls.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret {
    key: [u8; CLUSTER_SECRET_BYTES],
    stream_key: [u8; CLUSTER_SECRET_BYTES],
}

impl ClusterSecret {
    /// `HMAC-SHA256(root_secret_key, "strata-cluster-v1")`: every node with the same root
    /// credentials derives the same secret, and the RPC key never reveals the root key.
    pub fn derive_from_root_secret(root_secret_key: &str) -> Self {
        Self::from_key(hmac_sha256(root_secret_key.as_bytes(), CLUSTER_SECRET_LABEL))
    }

    /// A dedicated cluster secret (any length; it is hashed into the key with the same label).
    pub fn from_dedicated_secret(secret: &[u8]) -> Self {
        Self::from_key(hmac_sha256(secret, CLUSTER_SECRET_LABEL))
    }

    fn from_key(key: [u8; CLUSTER_SECRET_BYTES]) -> Self {
        ClusterSecret {
            key,
            stream_key: hmac_sha256(&key, STREAM_KEY_LABEL),
        }
    }

    fn mac(&self, fields: &SignedFields<'_>) -> HmacSha256 {
        let mut mac = new_mac(&self.key);
        let SignedFields {
            method,
            path_and_query,
            date_secs,
            epoch,
            session,
            seq,
            content_sha256,
        } = fields;
        let to_sign = format!(
            "{SIGNATURE_SCHEME}\n{method}\n{path_and_query}\n{date_secs}\n{epoch}\n{session}\n{seq}\n{content_sha256}"
        );
        mac.update(to_sign.as_bytes());
        mac
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// The signed fields of a request, as they appear in its headers (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct SignedFields<'a> {
    /// HTTP method (`POST`).
    pub method: &'a str,
    /// Path and query, as sent.
    pub path_and_query: &'a str,
    /// `x-strata-date`.
    pub date_secs: u64,
    /// `x-strata-epoch`: the server's epoch, or `-` on a hello.
    pub epoch: &'a str,
    /// `x-strata-session`: 32 lowercase hex digits.
    pub session: &'a str,
    /// `x-strata-seq`.
    pub seq: u64,
    /// `x-strata-content-sha256`.
    pub content_sha256: &'a str,
}

/// The hex signature of a request (what goes into `x-strata-signature`).
pub fn sign_request(secret: &ClusterSecret, fields: &SignedFields<'_>) -> String {
    hex::encode(secret.mac(fields).finalize().into_bytes())
}

/// Why a request was refused. The details go to the server's log only; the caller gets
/// [`REFUSAL_REASON`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// A header is missing or malformed.
    Malformed(&'static str),
    /// The date is too far from ours.
    Stale { date_secs: u64, now_secs: u64 },
    /// The signature does not match.
    BadSignature,
    /// A well-signed request for another epoch of this server (sent before it restarted), or a
    /// hello epoch on another path.
    WrongEpoch,
    /// The sequence number was accepted before (a replay).
    Replay,
    /// The sequence number is older than the session's anti-replay window.
    OutsideWindow,
    /// A new session, while [`crate::REPLAY_SESSIONS_MAX`] sessions are live.
    SessionsFull,
}

/// What a refused caller is told, whatever the reason: nothing about the server.
pub(crate) const REFUSAL_REASON: &str =
    "request not authenticated (check that all nodes share the cluster secret and have synchronized clocks)";

impl AuthFailure {
    /// Index of the kind, for per-kind log rate limiting.
    pub(crate) fn kind_idx(&self) -> usize {
        match self {
            AuthFailure::Malformed(_) => 0,
            AuthFailure::Stale { .. } => 1,
            AuthFailure::BadSignature => 2,
            AuthFailure::WrongEpoch => 3,
            AuthFailure::Replay => 4,
            AuthFailure::OutsideWindow => 5,
            AuthFailure::SessionsFull => 6,
        }
    }
}

/// Number of [`AuthFailure`] kinds.
pub(crate) const AUTH_FAILURE_KINDS: usize = 7;

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Malformed(what) => write!(f, "missing or malformed {what}"),
            AuthFailure::Stale { date_secs, now_secs } => write!(
                f,
                "request time {date_secs} is more than {CLOCK_SKEW_SECS_MAX} s from this server's {now_secs}: synchronize the clocks"
            ),
            AuthFailure::BadSignature => {
                f.write_str("bad signature: the nodes do not share the same cluster secret")
            }
            AuthFailure::WrongEpoch => f.write_str(
                "signed for another run of this server (a replay, or a client that missed a restart)",
            ),
            AuthFailure::Replay => f.write_str("sequence number already used in its session (a replay)"),
            AuthFailure::OutsideWindow => {
                f.write_str("sequence number older than its session's anti-replay window")
            }
            AuthFailure::SessionsFull => {
                f.write_str("too many live client sessions; new sessions are refused until old ones expire")
            }
        }
    }
}

/// A request whose date and signature were verified (its epoch and sequence number are
/// checked next by the caller).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) date_secs: u64,
    /// The epoch header as sent (`-` or 32 hex digits).
    pub(crate) epoch: String,
    pub(crate) session: u128,
    pub(crate) seq: u64,
    /// The hex signature, which binds stream MACs to this request.
    pub(crate) signature: String,
}

/// Checks a request's headers, date and signature (the epoch, the replay window and the body
/// hash are checked by the caller).
pub(crate) fn verify_request(
    secret: &ClusterSecret,
    method: &str,
    path_and_query: &str,
    headers: &http::HeaderMap,
    now_secs: u64,
) -> Result<Verified, AuthFailure> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthFailure::Malformed(name))
    };
    let date_secs: u64 = header(DATE_HEADER)?
        .parse()
        .map_err(|_| AuthFailure::Malformed(DATE_HEADER))?;
    let epoch = header(EPOCH_HEADER)?;
    if epoch != HELLO_EPOCH && parse_nonce(epoch).is_none() {
        return Err(AuthFailure::Malformed(EPOCH_HEADER));
    }
    let session_hex = header(SESSION_HEADER)?;
    let session = parse_nonce(session_hex).ok_or(AuthFailure::Malformed(SESSION_HEADER))?;
    let seq_text = header(SEQ_HEADER)?;
    let seq: u64 = seq_text
        .parse::<u64>()
        .ok()
        .filter(|&seq| seq > 0 && seq.to_string() == seq_text)
        .ok_or(AuthFailure::Malformed(SEQ_HEADER))?;
    let content_sha256 = header(CONTENT_SHA256_HEADER)?;
    let signature_hex = header(SIGNATURE_HEADER)?;
    let signature = hex::decode(signature_hex).map_err(|_| AuthFailure::Malformed(SIGNATURE_HEADER))?;
    if date_secs.abs_diff(now_secs) > CLOCK_SKEW_SECS_MAX {
        return Err(AuthFailure::Stale { date_secs, now_secs });
    }
    let fields = SignedFields {
        method,
        path_and_query,
        date_secs,
        epoch,
        session: session_hex,
        seq,
        content_sha256,
    };
    secret
        .mac(&fields)
        .verify_slice(&signature)
        .map_err(|_| AuthFailure::BadSignature)?;
    Ok(Verified {
        date_secs,
        epoch: epoch.to_string(),
        session,
        seq,
        signature: signature_hex.to_string(),
    })
}

/// A session id or epoch from its 32 lowercase hex digits.
pub(crate) fn parse_nonce(text: &str) -> Option<u128> {
    if text.len() != 2 * NONCE_BYTES || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

/// The 32 lowercase hex digits of a session id or epoch.
pub(crate) fn nonce_hex(nonce: u128) -> String {
    format!("{nonce:032x}")
}

/// A fresh random session id or epoch.
pub(crate) fn random_nonce() -> u128 {
    rand::random()
}

/// Which way a shard stream flows (each direction has its own MAC label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamDirection {
    /// Client to server: a shard write's request body.
    Write,
    /// Server to client: a shard read's response body.
    Read,
}

/// The running MAC over one shard stream (see the module docs).
#[derive(Clone)]
pub(crate) struct StreamMac(blake3::Hasher);

impl fmt::Debug for StreamMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamMac(..)")
    }
}

impl StreamMac {
    /// The MAC of the stream of the request signed `signature` (hex), flowing `direction`.
    pub(crate) fn new(secret: &ClusterSecret, direction: StreamDirection, signature: &str) -> Self {
        let label: &[u8] = match direction {
            StreamDirection::Write => b"STRATA-SHARD-WRITE-V2\n",
            StreamDirection::Read => b"STRATA-SHARD-READ-V2\n",
        };
        let mut hasher = blake3::Hasher::new_keyed(&secret.stream_key);
        hasher.update(label);
        hasher.update(signature.as_bytes());
        hasher.update(b"\n");
        StreamMac(hasher)
    }

    /// Adds the next bytes of the stream.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The MAC of the stream so far, as sent (64 lowercase hex digits).
    pub(crate) fn hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }

    /// Whether `sent` (hex, as received) is the MAC of the stream so far; constant time.
    pub(crate) fn matches(&self, sent: Option<&[u8]>) -> bool {
        let Some(sent) = sent.and_then(|s| blake3::Hash::from_hex(s).ok()) else {
            return false;
        };
        self.0.finalize() == sent
    }
}

/// Hex SHA-256 of a body.
pub(crate) fn content_sha256(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer keys are hashed, shorter padded), so this
    // constructor cannot fail; the fallback exists only to avoid an unwrap.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => HmacSha256::new(&Default::default()),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; CLUSTER_SECRET_BYTES] {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/strata/rpc/v1/drive/d/info";
    const EPOCH: &str = "0123456789abcdef0123456789abcdef";
    const SESSION: &str = "fedcba9876543210fedcba9876543210";

    fn fields(date_secs: u64, hash: &str) -> SignedFields<'_> {
        SignedFields {
            method: "POST",
            path_and_query: PATH,
            date_secs,
            epoch: EPOCH,
            session: SESSION,
            seq: 7,
            content_sha256: hash,
        }
    }

    fn signed_headers(secret: &ClusterSecret, date_secs: u64) -> http::HeaderMap {
        let hash = content_sha256(b"body");
        let mut headers = http::HeaderMap::new();
        headers.insert(DATE_HEADER, date_secs.to_string().parse().unwrap());
        headers.insert(EPOCH_HEADER, EPOCH.parse().unwrap());
        headers.insert(SESSION_HEADER, SESSION.parse().unwrap());
        headers.insert(SEQ_HEADER, "7".parse().unwrap());
        headers.insert(CONTENT_SHA256_HEADER, hash.parse().unwrap());
        let signature = sign_request(secret, &fields(date_secs, &hash));
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    #[test]
    fn derivation_is_deterministic_and_labelled() {
        let a = ClusterSecret::derive_from_root_secret("secret");
        assert_eq!(a, ClusterSecret::derive_from_root_secret("secret"));
        assert_ne!(a, ClusterSecret::derive_from_root_secret("other"));
        assert_ne!(a.key.to_vec(), b"secret".to_vec());
        assert_ne!(a.key, a.stream_key);
        assert_eq!(format!("{a:?}"), "ClusterSecret(..)");
    }

    #[test]
    fn verification_cases() {
        let secret = ClusterSecret::derive_from_root_secret("secret");
        let now = 1_700_000_000;
        let check = |headers: &http::HeaderMap, method: &str, path: &str| {
            verify_request(&secret, method, path, headers, now).map(|v| (v.session, v.seq))
        };
        let session = u128::from_str_radix(SESSION, 16).unwrap();
        assert_eq!(
            check(&signed_headers(&secret, now), "POST", PATH),
            Ok((session, 7))
        );
        assert!(check(&signed_headers(&secret, now - CLOCK_SKEW_SECS_MAX), "POST", PATH).is_ok());
        for date in [now - CLOCK_SKEW_SECS_MAX - 1, now + CLOCK_SKEW_SECS_MAX + 1] {
            assert!(matches!(
                check(&signed_headers(&secret, date), "POST", PATH),
                Err(AuthFailure::Stale { .. })
            ));
        }
        let other = ClusterSecret::derive_from_root_secret("other");
        assert_eq!(
            check(&signed_headers(&other, now), "POST", PATH),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            check(&signed_headers(&secret, now), "GET", PATH),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            check(
                &signed_headers(&secret, now),
                "POST",
                "/strata/rpc/v1/drive/e/info"
            ),
            Err(AuthFailure::BadSignature)
        );
        // Every signed header is covered.
        for (name, value) in [
            (CONTENT_SHA256_HEADER, content_sha256(b"other")),
            (SEQ_HEADER, "8".to_string()),
            (SESSION_HEADER, SESSION.replace('f', "e")),
            (EPOCH_HEADER, EPOCH.replace('0', "1")),
            (EPOCH_HEADER, HELLO_EPOCH.to_string()),
        ] {
            let mut tampered = signed_headers(&secret, now);
            tampered.insert(name, value.parse().unwrap());
            assert_eq!(
                check(&tampered, "POST", PATH),
                Err(AuthFailure::BadSignature),
                "{name}"
            );
        }
        for (name, value) in [
            (SEQ_HEADER, "0"),
            (SEQ_HEADER, "07"),
            (SEQ_HEADER, "-1"),
            (SESSION_HEADER, "FEDCBA9876543210FEDCBA9876543210"),
            (SESSION_HEADER, "abc"),
            (EPOCH_HEADER, "x"),
        ] {
            let mut malformed = signed_headers(&secret, now);
            malformed.insert(name, value.parse().unwrap());
            assert_eq!(
                check(&malformed, "POST", PATH),
                Err(AuthFailure::Malformed(name)),
                "{value}"
            );
        }
        let mut missing = signed_headers(&secret, now);
        missing.remove(SIGNATURE_HEADER);
        assert_eq!(
            check(&missing, "POST", PATH),
            Err(AuthFailure::Malformed(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn stream_macs_are_bound_to_the_request_and_direction() {
        let secret = ClusterSecret::derive_from_root_secret("secret");
        let mac = |direction, signature: &str, data: &[&[u8]]| {
            let mut mac = StreamMac::new(&secret, direction, signature);
            for piece in data {
                mac.update(piece);
            }
            mac
        };
        let sent = mac(StreamDirection::Write, "aa", &[b"hello ", b"world"]).hex();
        assert_eq!(sent.len(), 64);
        // Chunking does not matter; every byte, the request and the direction do.
        assert!(mac(StreamDirection::Write, "aa", &[b"hello world"]).matches(Some(sent.as_bytes())));
        assert!(!mac(StreamDirection::Write, "aa", &[b"hello worle"]).matches(Some(sent.as_bytes())));
        assert!(!mac(StreamDirection::Write, "aa", &[b"hello worl"]).matches(Some(sent.as_bytes())));
        assert!(!mac(StreamDirection::Write, "ab", &[b"hello world"]).matches(Some(sent.as_bytes())));
        assert!(!mac(StreamDirection::Read, "aa", &[b"hello world"]).matches(Some(sent.as_bytes())));
        assert!(!mac(StreamDirection::Write, "aa", &[b"hello world"]).matches(None));
        assert!(!mac(StreamDirection::Write, "aa", &[b"hello world"]).matches(Some(b"zz")));
        let other = ClusterSecret::derive_from_root_secret("other");
        let mut forged = StreamMac::new(&other, StreamDirection::Write, "aa");
        forged.update(b"hello world");
        assert_ne!(forged.hex(), sent);
    }
}
