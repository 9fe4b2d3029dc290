//! Server-side encryption at the front door (SSE-S3, SSE-KMS, SSE-C): which encryption a
//! write gets (its headers, else the bucket's default, else the server's encrypt-everything
//! setting), the version's data key (from the KMS, or sealed under the customer's key), the
//! sealer the object layer runs over the content, the opener of a sealed version's bytes, and
//! the response headers.
//!
//! What a version keeps is a [`Stored`] description in its metadata: the mode, the KMS key and
//! version, and the data key sealed (by the KMS, or for SSE-C under the customer's key, so a
//! wrong key fails to open it: that is the key's check, and nothing else of the key is kept).
//! The sealed key is bound to `mode, bucket, key` and the SSE-KMS context, so it does not
//! open for another object. The data itself is sealed in `strata_sse` packages; the object
//! layer stores the sealed bytes and their sizes only.
//!
//! Invariants: no key (data key, customer key, its MD5 is echoed only to the request that sent
//! it) is logged, put in an error, or stored in the clear; a KMS that cannot answer is 503,
//! never a 500 or a wrong key; a package that fails its tag is an error, never bytes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use md5::{Digest as _, Md5};
use s3s::dto::ServerSideEncryption;
use s3s::{S3Error, S3ErrorCode, S3Result};
use serde::{Deserialize, Serialize};
use strata_kms::{Kms, KmsError, SealedKey};
use strata_object::{
    BoxError, GetObjectReader, ObjectError, ObjectInfo, ObjectStream, PutStream, SealGeometry, Sealer,
};
use strata_sse::{Cipher, DataKey, PACKAGE_BYTES, PartOpener, PartSealer, TAG_BYTES};

/// The bucket configuration blob holding a bucket's default encryption.
pub(crate) const BUCKET_ENCRYPTION_CONFIG: &str = "encryption";

/// The server's encryption settings.
#[derive(Clone, Debug, Default)]
pub struct EncryptionConfig {
    /// The KMS that wraps data keys (SSE-S3, SSE-KMS); none: only SSE-C is offered.
    pub kms: Option<Arc<dyn Kms>>,
    /// Encrypt every object with SSE-S3 when its request and bucket ask for nothing.
    pub encrypt_all: bool,
    /// SSE-C is accepted: the server speaks TLS, or the operator allowed customer keys over
    /// plain HTTP (a test setup, or TLS ended by a proxy in front).
    pub customer_keys_allowed: bool,
}

/// The encryption modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    /// SSE-S3: the KMS's default key, `AES256` to clients.
    #[serde(rename = "S3")]
    S3,
    /// SSE-KMS: a named KMS key, `aws:kms` to clients.
    #[serde(rename = "KMS")]
    Kms,
    /// SSE-C: the customer's key, sent with every request.
    #[serde(rename = "C")]
    Customer,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::S3 => "S3",
            Mode::Kms => "KMS",
            Mode::Customer => "C",
        }
    }
}

/// A customer-provided key (SSE-C), checked against its MD5. `Debug` shows neither.
pub(crate) struct CustomerKey {
    key: DataKey,
    /// The key's MD5 as the client sent it (base64), echoed in responses.
    md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

/// What a write asks for.
#[derive(Debug)]
pub(crate) enum Requested {
    /// `x-amz-server-side-encryption: AES256`.
    S3,
    /// `x-amz-server-side-encryption: aws:kms`, with an optional key id and context.
    Kms {
        /// The key as the client named it (a name or an ARN); none: the default key.
        key_id: Option<String>,
        /// `x-amz-server-side-encryption-context` as sent (base64 of a JSON object).
        context: Option<String>,
        /// `x-amz-server-side-encryption-bucket-key-enabled` (accepted and echoed; every
        /// version has its own data key either way).
        bucket_key: bool,
    },
    /// SSE-C.
    Customer(CustomerKey),
}

/// The encryption headers of a request, as s3s parsed them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Headers<'a> {
    pub sse: Option<&'a ServerSideEncryption>,
    pub kms_key_id: Option<&'a str>,
    pub context: Option<&'a str>,
    pub bucket_key: Option<bool>,
    pub customer: CustomerHeaders<'a>,
}

/// The three SSE-C headers (or their `x-amz-copy-source-` forms).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CustomerHeaders<'a> {
    pub algorithm: Option<&'a str>,
    pub key: Option<&'a str>,
    pub key_md5: Option<&'a str>,
}

impl CustomerHeaders<'_> {
    fn any(&self) -> bool {
        self.algorithm.is_some() || self.key.is_some() || self.key_md5.is_some()
    }
}

fn invalid_argument(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message.to_owned())
}

fn invalid_request(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, message.to_owned())
}

/// The customer key the headers carry, checked (algorithm, length, MD5); none without SSE-C
/// headers. `allowed`: the server accepts customer keys on this connection.
pub(crate) fn customer_key(h: CustomerHeaders<'_>, allowed: bool) -> S3Result<Option<CustomerKey>> {
    if !h.any() {
        return Ok(None);
    }
    if !allowed {
        return Err(invalid_request(
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    match h.algorithm {
        Some("AES256") => {}
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidEncryptionAlgorithmError,
                "The Encryption request you specified is not valid. Supported value: AES256.",
            ));
        }
        None => {
            return Err(invalid_argument(
                "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
            ));
        }
    }
    let Some(key) = h.key else {
        return Err(invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
        ));
    };
    let Some(md5) = h.key_md5 else {
        return Err(invalid_argument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
        ));
    };
    let bytes = base64_simd::STANDARD
        .decode_to_vec(key.trim())
        .ok()
        .and_then(|mut v| {
            let key = <[u8; 32]>::try_from(v.as_slice()).ok();
            zeroize::Zeroize::zeroize(&mut v);
            key
        });
    let bytes =
        bytes.ok_or_else(|| invalid_argument("The secret key was invalid for the specified algorithm."))?;
    let digest = Md5::digest(bytes);
    let key = DataKey::from_bytes(bytes);
    let mut bytes = bytes;
    zeroize::Zeroize::zeroize(&mut bytes);
    let sent = base64_simd::STANDARD.decode_to_vec(md5.trim()).ok();
    if sent.as_deref() != Some(digest.as_slice()) {
        return Err(invalid_argument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(CustomerKey {
        key,
        md5: md5.trim().to_owned(),
    }))
}

/// What a write's headers ask for (none: nothing; the bucket default may still apply).
pub(crate) fn requested(h: Headers<'_>, customer_keys_allowed: bool) -> S3Result<Option<Requested>> {
    let customer = customer_key(h.customer, customer_keys_allowed)?;
    if let Some(customer) = customer {
        if h.sse.is_some() || h.kms_key_id.is_some() {
            return Err(invalid_argument(
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
            ));
        }
        return Ok(Some(Requested::Customer(customer)));
    }
    let Some(sse) = h.sse else {
        if h.kms_key_id.is_some() || h.context.is_some() {
            return Err(invalid_argument(
                "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
            ));
        }
        return Ok(None);
    };
    match sse.as_str() {
        ServerSideEncryption::AES256 => {
            if h.kms_key_id.is_some() || h.context.is_some() {
                return Err(invalid_argument(
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
                ));
            }
            Ok(Some(Requested::S3))
        }
        ServerSideEncryption::AWS_KMS_DSSE => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Dual-layer server-side encryption (aws:kms:dsse) is not supported; use aws:kms",
        )),
        ServerSideEncryption::AWS_KMS => {
            if let Some(context) = h.context {
                check_context(context)?;
            }
            if let Some(key_id) = h.kms_key_id.filter(|k| !k.is_empty()) {
                check_key_id(key_id)?;
            }
            Ok(Some(Requested::Kms {
                key_id: h.kms_key_id.map(str::to_owned).filter(|k| !k.is_empty()),
                context: h.context.map(str::to_owned),
                bucket_key: h.bucket_key.unwrap_or(false),
            }))
        }
        _ => Err(invalid_argument(
            "The encryption method specified is not supported",
        )),
    }
}

/// An SSE-KMS encryption context must be base64 of a JSON object of string values.
fn check_context(context: &str) -> S3Result<()> {
    let valid = base64_simd::STANDARD
        .decode_to_vec(context.trim())
        .ok()
        .and_then(|json| serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).ok())
        .is_some_and(|map| map.values().all(serde_json::Value::is_string));
    if valid {
        Ok(())
    } else {
        Err(invalid_argument(
            "The x-amz-server-side-encryption-context header is not a base64-encoded JSON object of strings",
        ))
    }
}

/// A key id names a key Strata can have: 1-128 letters, digits, `-`, `_` or `.` once the ARN
/// prefix is taken off (anything else is no key here: 400, as AWS answers an unknown key).
fn check_key_id(key_id: &str) -> S3Result<()> {
    let name = kms_key_name(key_id);
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        return Ok(());
    }
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("KMS.NotFoundException".into()),
        "Invalid keyId",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    Err(e)
}

/// The KMS key name of a key id as clients give it: the name, `arn:aws:kms:REGION:ACCOUNT:key/NAME`,
/// or MinIO's `arn:aws:kms:NAME`.
fn kms_key_name(key_id: &str) -> &str {
    if let Some((_, name)) = key_id.rsplit_once(":key/") {
        return name;
    }
    key_id.strip_prefix("arn:aws:kms:").unwrap_or(key_id)
}

/// A bucket's default encryption, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BucketDefault {
    /// `AES256` or `aws:kms`.
    pub algorithm: String,
    /// The KMS key (aws:kms), as the configuration named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `BucketKeyEnabled`, as set.
    #[serde(default)]
    pub bucket_key: bool,
}

impl BucketDefault {
    fn requested(&self) -> Requested {
        if self.algorithm == ServerSideEncryption::AES256 {
            Requested::S3
        } else {
            Requested::Kms {
                key_id: self.kms_key_id.clone(),
                context: None,
                bucket_key: self.bucket_key,
            }
        }
    }

    /// Decodes a stored default. One that does not decode fails closed: SSE-S3 (logged), so
    /// a bucket meant to encrypt never stores plaintext.
    pub(crate) fn from_blob(bucket: &str, blob: &[u8]) -> Option<BucketDefault> {
        match serde_json::from_slice(blob) {
            Ok(config) => Some(config),
            Err(err) => {
                tracing::error!(bucket, %err, "stored default encryption does not decode; using SSE-S3");
                Some(BucketDefault {
                    algorithm: ServerSideEncryption::AES256.to_owned(),
                    kms_key_id: None,
                    bucket_key: false,
                })
            }
        }
    }
}

/// How a version is encrypted: kept in its metadata (`ObjectMetadata::encryption`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    #[serde(rename = "m")]
    pub mode: Mode,
    /// The KMS key that sealed the data key (SSE-S3, SSE-KMS).
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
    /// Its version.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub kms_version: Option<u32>,
    /// The key id as the client named it (echoed in responses).
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The sealed data key, base64.
    #[serde(rename = "s")]
    pub sealed: String,
    /// The SSE-KMS context as the client sent it (base64 JSON).
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The bucket-key flag as asked.
    #[serde(rename = "b", default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
    /// The key version a rotation re-sealed the data key under (so a rotation resumed after
    /// a restart counts what it did before it exactly).
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub rotated_to: Option<u32>,
}

impl Stored {
    /// A version's description; none for an unencrypted version. A description that does not
    /// decode is an error (the data would not open).
    pub(crate) fn of(info: &ObjectInfo) -> S3Result<Option<Stored>> {
        let Some(text) = info.metadata.encryption.as_deref() else {
            if info.seal.is_some() {
                return Err(corrupt(info, "sealed data without its encryption description"));
            }
            return Ok(None);
        };
        serde_json::from_str(text)
            .map(Some)
            .map_err(|_| corrupt(info, "its encryption description does not decode"))
    }

    pub(crate) fn encode(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What the sealed data key is bound to.
    pub(crate) fn binding(&self, bucket: &str, key: &str) -> Vec<u8> {
        binding(self.mode, bucket, key, self.context.as_deref())
    }

    fn sealed_bytes(&self) -> S3Result<Vec<u8>> {
        base64_simd::STANDARD
            .decode_to_vec(&self.sealed)
            .map_err(|_| internal("a version's sealed data key does not decode"))
    }
}

fn binding(mode: Mode, bucket: &str, key: &str, context: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + bucket.len() + key.len());
    out.extend_from_slice(b"strata-sse/v1\0");
    out.extend_from_slice(mode.name().as_bytes());
    out.push(0);
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out.push(0);
    out.extend_from_slice(context.unwrap_or_default().as_bytes());
    out
}

fn internal(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InternalError, message.to_owned())
}

fn corrupt(info: &ObjectInfo, what: &str) -> S3Error {
    tracing::error!(bucket = %info.bucket, key = %info.key, what, "encrypted version unreadable");
    internal("The object's encryption metadata is damaged")
}

/// An S3 error for a KMS failure (no key material in any of them).
pub(crate) fn kms_error(err: KmsError) -> S3Error {
    match err {
        KmsError::Unavailable(why) => {
            tracing::warn!(%why, "KMS unavailable");
            let mut e = S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "The key management service is unavailable; please retry",
            );
            e.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            e
        }
        KmsError::KeyNotFound(name) => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("KMS.NotFoundException".into()),
                format!("The KMS key {name:?} does not exist"),
            );
            e.set_status_code(http::StatusCode::BAD_REQUEST);
            e
        }
        KmsError::VersionNotFound { name, version } => {
            tracing::error!(key = %name, version, "a version's KMS key version is gone");
            internal("The object's KMS key version no longer exists")
        }
        KmsError::Decrypt => internal("The object's data key does not open with its KMS key"),
        KmsError::KeyExists(name) => invalid_argument(&format!("The KMS key {name:?} already exists")),
        KmsError::Unsupported(what) => S3Error::with_message(S3ErrorCode::NotImplemented, what.to_owned()),
        KmsError::Config(why) => {
            tracing::error!(%why, "KMS configuration");
            internal("The key management service is misconfigured")
        }
    }
}

fn no_kms() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        "Server-side encryption with SSE-S3 or SSE-KMS needs a KMS: start the server with STRATA_KMS_SECRET_KEY or a KMS keyring",
    )
}

/// A write's encryption: what to store, and the data key to seal with. `Debug` shows the
/// description only (no key, no customer key MD5).
pub(crate) struct WriteKey {
    pub stored: Stored,
    key: DataKey,
    /// The customer key's MD5 (SSE-C), echoed.
    customer_md5: Option<String>,
}

impl std::fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteKey")
            .field("mode", &self.stored.mode)
            .field("kms_key", &self.stored.kms_key)
            .finish_non_exhaustive()
    }
}

impl WriteKey {
    /// A sealer for part `part_number` (1 for a single PUT).
    pub(crate) fn sealer(&self, part_number: u32) -> S3Result<Box<dyn Sealer>> {
        let sealer = PartSealer::new(&self.key, part_number, Cipher::preferred())
            .map_err(|_| internal("no randomness for the encryption"))?;
        Ok(Box::new(PackageSealer {
            sealer,
            etag_key: (self.stored.mode != Mode::S3).then(|| self.key.clone()),
        }))
    }

    /// The response headers of the write.
    pub(crate) fn response(&self, s3_region: &str, account: &str) -> ResponseFields {
        response_fields(&self.stored, self.customer_md5.as_deref(), s3_region, account)
    }
}

impl EncryptionConfig {
    fn kms(&self) -> S3Result<&Arc<dyn Kms>> {
        self.kms.as_ref().ok_or_else(no_kms)
    }

    /// The encryption of a new version of `bucket/key`: the request's, else the bucket's
    /// default, else SSE-S3 when the server encrypts everything; none: unencrypted.
    pub(crate) async fn for_write(
        &self,
        bucket: &str,
        key: &str,
        requested: Option<Requested>,
        bucket_default: Option<&BucketDefault>,
    ) -> S3Result<Option<WriteKey>> {
        let requested = match requested {
            Some(r) => r,
            None => match bucket_default {
                Some(d) => d.requested(),
                None if self.encrypt_all && self.kms.is_some() => Requested::S3,
                None => return Ok(None),
            },
        };
        let (mode, key_id, context, bucket_key) = match requested {
            Requested::Customer(customer) => {
                let data_key =
                    DataKey::generate().map_err(|_| internal("no randomness for the encryption"))?;
                let sealed = customer
                    .key
                    .seal_key(&data_key, &binding(Mode::Customer, bucket, key, None))
                    .map_err(|_| internal("sealing the data key failed"))?;
                return Ok(Some(WriteKey {
                    stored: Stored {
                        mode: Mode::Customer,
                        kms_key: None,
                        kms_version: None,
                        key_id: None,
                        sealed: base64_simd::STANDARD.encode_to_string(sealed),
                        context: None,
                        bucket_key: false,
                        rotated_to: None,
                    },
                    key: data_key,
                    customer_md5: Some(customer.md5),
                }));
            }
            Requested::S3 => (Mode::S3, None, None, false),
            Requested::Kms {
                key_id,
                context,
                bucket_key,
            } => (Mode::Kms, key_id, context, bucket_key),
        };
        let kms = self.kms()?;
        let name = key_id.as_deref().map(kms_key_name);
        let generated = kms
            .generate_data_key(name, &binding(mode, bucket, key, context.as_deref()))
            .await
            .map_err(kms_error)?;
        Ok(Some(WriteKey {
            stored: Stored {
                mode,
                kms_key: Some(generated.sealed.key),
                kms_version: Some(generated.sealed.version),
                key_id,
                sealed: base64_simd::STANDARD.encode_to_string(&generated.sealed.ciphertext),
                context,
                bucket_key,
                rotated_to: None,
            },
            key: generated.plaintext,
            customer_md5: None,
        }))
    }

    /// The data key of a stored version, checking the customer key for SSE-C (required then,
    /// refused otherwise).
    pub(crate) async fn read_key(
        &self,
        bucket: &str,
        key: &str,
        stored: &Stored,
        customer: Option<&CustomerKey>,
    ) -> S3Result<DataKey> {
        let sealed = stored.sealed_bytes()?;
        let binding = stored.binding(bucket, key);
        match (stored.mode, customer) {
            (Mode::Customer, Some(customer)) => customer.key.open_key(&sealed, &binding).map_err(|_| {
                S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "The provided customer key does not match the key the object was encrypted with",
                )
            }),
            (Mode::Customer, None) => Err(invalid_request(
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
            )),
            (_, Some(_)) => Err(invalid_request(
                "The encryption parameters are not applicable to this object.",
            )),
            (Mode::S3 | Mode::Kms, None) => {
                let sealed_key = SealedKey {
                    key: stored.kms_key.clone().unwrap_or_default(),
                    version: stored.kms_version.unwrap_or(0),
                    ciphertext: sealed,
                };
                self.kms()?
                    .decrypt_data_key(&sealed_key, &binding)
                    .await
                    .map_err(kms_error)
            }
        }
    }

    /// Checks the customer key of a read that needs no data (HEAD): required for an SSE-C
    /// version and must open its data key, refused for other versions.
    pub(crate) fn check_customer_key(
        &self,
        bucket: &str,
        key: &str,
        stored: Option<&Stored>,
        customer: Option<&CustomerKey>,
    ) -> S3Result<()> {
        match (stored, customer) {
            (Some(s), Some(c)) if s.mode == Mode::Customer => c
                .key
                .open_key(&s.sealed_bytes()?, &s.binding(bucket, key))
                .map(drop)
                .map_err(|_| {
                    S3Error::with_message(
                        S3ErrorCode::AccessDenied,
                        "The provided customer key does not match the key the object was encrypted with",
                    )
                }),
            (Some(s), None) if s.mode == Mode::Customer => Err(invalid_request(
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
            )),
            (_, Some(_)) => Err(invalid_request(
                "The encryption parameters are not applicable to this object.",
            )),
            _ => Ok(()),
        }
    }

    /// A reader's content: its stored bytes opened with the version's key when it is
    /// encrypted (the key is fetched and checked here), else as they are.
    pub(crate) async fn open_reader(
        &self,
        reader: GetObjectReader,
        customer: Option<&CustomerKey>,
        (region, account): (&str, &str),
    ) -> S3Result<OpenedRead> {
        let GetObjectReader {
            info,
            offset,
            length,
            body,
        } = reader;
        let Some(stored) = Stored::of(&info)? else {
            if customer.is_some() {
                return Err(invalid_request(
                    "The encryption parameters are not applicable to this object.",
                ));
            }
            return Ok(OpenedRead {
                info,
                offset,
                length,
                body: BodySource::Plain(body),
                fields: ResponseFields::default(),
            });
        };
        let data_key = self.read_key(&info.bucket, &info.key, &stored, customer).await?;
        let mut opened = OpenedBody::new(&info, offset, length, body, data_key)?;
        // The first package is opened before the response starts: data that does not
        // authenticate (damaged beyond what erasure coding repairs, or moved from another
        // object) is then an error status, not a cut body.
        let first = match futures::StreamExt::next(&mut opened).await {
            None => None,
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(err)) => return Err(crate::map_object_error(err, None)),
        };
        let fields = response_fields(&stored, customer.map(|c| c.md5.as_str()), region, account);
        Ok(OpenedRead {
            info,
            offset,
            length,
            body: BodySource::Opened {
                first,
                rest: Box::new(opened),
            },
            fields,
        })
    }

    /// A copy source opener for `source` (the version read before the copy, whose data key is
    /// `data_key`): the object layer hands it the source as it opens it, and it opens the
    /// packages with that key. A source replaced meanwhile is refused (412).
    pub(crate) fn source_opener(
        source: &ObjectInfo,
        data_key: Option<DataKey>,
    ) -> strata_object::SourceOpener {
        // The version the key was fetched for: a rotation re-sealing it meanwhile changes its
        // description but not its data key, a new version of the key changes these.
        let expected = (source.version_id.clone(), source.etag.clone(), source.mod_time);
        let encrypted = data_key.is_some();
        Box::new(move |reader: GetObjectReader| {
            let now = (
                reader.info.version_id.clone(),
                reader.info.etag.clone(),
                reader.info.mod_time,
            );
            if now != expected || reader.info.seal.is_some() != encrypted {
                return Err(ObjectError::PreconditionFailed);
            }
            let body: PutStream = match data_key {
                None => Box::pin(futures::StreamExt::map(reader.body, |r| {
                    r.map_err(|e| Box::new(e) as BoxError)
                })),
                Some(key) => {
                    let GetObjectReader {
                        info,
                        offset,
                        length,
                        body,
                    } = reader;
                    let opened = OpenedBody::new(&info, offset, length, body, key).map_err(|_| {
                        ObjectError::Corrupt {
                            what: "the copy source's sealed parts do not cover its size".into(),
                        }
                    })?;
                    Box::pin(futures::StreamExt::map(opened, |r| {
                        r.map_err(|e| Box::new(e) as BoxError)
                    }))
                }
            };
            Ok(body)
        })
    }
}

impl crate::StrataS3 {
    /// The encryption of a new version of `bucket/key` with these request headers (the
    /// bucket's default, from the cached bucket settings, when they ask for nothing).
    pub(crate) async fn write_key(
        &self,
        bucket: &str,
        key: &str,
        headers: Headers<'_>,
    ) -> S3Result<Option<WriteKey>> {
        let requested = requested(headers, self.encryption.customer_keys_allowed)?;
        let bucket_default = match requested {
            Some(_) => None,
            None => self
                .access
                .get(bucket)
                .await
                .map_err(|err| crate::map_object_error(err, None))?
                .default_encryption
                .clone(),
        };
        self.encryption
            .for_write(bucket, key, requested, bucket_default.as_ref())
            .await
    }

    /// The key that seals parts of `upload` (none: the upload is not encrypted); an SSE-C
    /// upload's parts must carry its customer key, other uploads' parts none.
    pub(crate) async fn upload_key(
        &self,
        upload: &strata_object::UploadInfo,
        customer: Option<CustomerKey>,
    ) -> S3Result<Option<WriteKey>> {
        let Some(text) = upload.metadata.encryption.as_deref() else {
            if customer.is_some() {
                return Err(invalid_request(
                    "The encryption parameters are not applicable to this upload.",
                ));
            }
            return Ok(None);
        };
        let stored: Stored = serde_json::from_str(text)
            .map_err(|_| internal("The upload's encryption metadata is damaged"))?;
        let key = self
            .encryption
            .read_key(&upload.bucket, &upload.key, &stored, customer.as_ref())
            .await?;
        Ok(Some(WriteKey {
            stored,
            key,
            customer_md5: customer.map(|c| c.md5),
        }))
    }

    /// The response fields of a write with `key`.
    pub(crate) fn write_response(&self, key: Option<&WriteKey>) -> ResponseFields {
        key.map(|k| k.response(&self.region, &self.account_id))
            .unwrap_or_default()
    }

    /// The response fields of a version (its parsed description) read with `customer`'s key.
    pub(crate) fn read_response(
        &self,
        stored: Option<&Stored>,
        customer: Option<&CustomerKey>,
    ) -> ResponseFields {
        stored.map_or_else(ResponseFields::default, |stored| {
            response_fields(
                stored,
                customer.map(|c| c.md5.as_str()),
                &self.region,
                &self.account_id,
            )
        })
    }
}

/// PutBucketEncryption: one rule with a default of SSE-S3 or SSE-KMS (with a key id).
pub(crate) async fn put_bucket_encryption(
    s3: &crate::StrataS3,
    req: s3s::S3Request<s3s::dto::PutBucketEncryptionInput>,
) -> S3Result<s3s::S3Response<s3s::dto::PutBucketEncryptionOutput>> {
    let map_err = crate::service::err_mapper(&req);
    let input = req.input;
    let malformed = || {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let [rule] = input.server_side_encryption_configuration.rules.as_slice() else {
        return Err(malformed());
    };
    let by_default = rule
        .apply_server_side_encryption_by_default
        .as_ref()
        .ok_or_else(malformed)?;
    let algorithm = by_default.sse_algorithm.as_str();
    let kms_key_id = by_default.kms_master_key_id.clone().filter(|k| !k.is_empty());
    match algorithm {
        ServerSideEncryption::AES256 if kms_key_id.is_some() => {
            return Err(invalid_argument(
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms",
            ));
        }
        ServerSideEncryption::AES256 | ServerSideEncryption::AWS_KMS | ServerSideEncryption::AWS_KMS_DSSE => {
        }
        _ => return Err(malformed()),
    }
    if s3.encryption.kms.is_none() {
        return Err(no_kms());
    }
    let config = BucketDefault {
        algorithm: if algorithm == ServerSideEncryption::AES256 {
            ServerSideEncryption::AES256.to_owned()
        } else {
            ServerSideEncryption::AWS_KMS.to_owned()
        },
        kms_key_id,
        bucket_key: rule.bucket_key_enabled.unwrap_or(false),
    };
    let blob = serde_json::to_vec(&config).map_err(|_| internal("encoding the configuration failed"))?;
    s3.layer
        .put_bucket_config(&input.bucket, BUCKET_ENCRYPTION_CONFIG, Bytes::from(blob))
        .await
        .map_err(&map_err)?;
    s3.access.invalidate(&input.bucket);
    Ok(s3s::S3Response::new(
        s3s::dto::PutBucketEncryptionOutput::default(),
    ))
}

/// GetBucketEncryption: the default as set; `ServerSideEncryptionConfigurationNotFoundError`
/// (404) when none is.
pub(crate) async fn get_bucket_encryption(
    s3: &crate::StrataS3,
    req: s3s::S3Request<s3s::dto::GetBucketEncryptionInput>,
) -> S3Result<s3s::S3Response<s3s::dto::GetBucketEncryptionOutput>> {
    let map_err = crate::service::err_mapper(&req);
    let config = s3.access.fresh(&req.input.bucket).await.map_err(&map_err)?;
    let Some(default) = config.default_encryption.clone() else {
        let mut err = S3Error::with_message(
            S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
            "The server side encryption configuration was not found",
        );
        err.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(err);
    };
    let rule = s3s::dto::ServerSideEncryptionRule {
        apply_server_side_encryption_by_default: Some(s3s::dto::ServerSideEncryptionByDefault {
            kms_master_key_id: default.kms_key_id,
            sse_algorithm: ServerSideEncryption::from(default.algorithm),
        }),
        bucket_key_enabled: Some(default.bucket_key),
    };
    Ok(s3s::S3Response::new(s3s::dto::GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(s3s::dto::ServerSideEncryptionConfiguration {
            rules: vec![rule],
        }),
    }))
}

/// DeleteBucketEncryption: new objects are no longer encrypted by default (existing ones stay
/// as they are).
pub(crate) async fn delete_bucket_encryption(
    s3: &crate::StrataS3,
    req: s3s::S3Request<s3s::dto::DeleteBucketEncryptionInput>,
) -> S3Result<s3s::S3Response<s3s::dto::DeleteBucketEncryptionOutput>> {
    let bucket = req.input.bucket.as_str();
    s3.layer
        .delete_bucket_config(bucket, BUCKET_ENCRYPTION_CONFIG)
        .await
        .map_err(crate::service::err_mapper(&req))?;
    s3.access.invalidate(bucket);
    Ok(crate::access_control::no_content(
        s3s::dto::DeleteBucketEncryptionOutput::default(),
    ))
}

/// The system record (in the never-sealed `kms` namespace) holding the configuration key,
/// sealed by the KMS.
const CONFIG_KEY_RECORD: &str = "config-key";
/// What the configuration key is bound to in the KMS.
const CONFIG_KEY_CONTEXT: &[u8] = b"strata-sse/v1 configuration key";

/// The configuration key as stored.
#[derive(Serialize, Deserialize)]
struct StoredConfigKey {
    key: String,
    version: u32,
    sealed: String,
}

/// Seals configuration values with the configuration key.
#[derive(Debug)]
struct ConfigSealer(strata_sse::ValueKey);

impl strata_object::ValueSealer for ConfigSealer {
    fn seal(&self, scope: &[u8], plain: &[u8]) -> Result<Vec<u8>, BoxError> {
        Ok(self.0.seal(scope, plain)?)
    }

    fn open(&self, scope: &[u8], stored: &[u8]) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(self.0.open(scope, stored)?)
    }
}

/// Why configuration sealing could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigKeyError {
    /// The KMS refused or is unavailable.
    #[error("the KMS: {0}")]
    Kms(#[from] KmsError),
    /// The record could not be read or written.
    #[error("the configuration key's record: {0}")]
    Store(#[from] ObjectError),
    /// The stored key does not decode.
    #[error("the configuration key's record does not decode")]
    Corrupt,
}

impl ConfigKeyError {
    /// Whether trying again later may work (the KMS or the drives had a bad moment).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConfigKeyError::Kms(KmsError::Unavailable(_))
                | ConfigKeyError::Store(ObjectError::ReadQuorum { .. } | ObjectError::WriteQuorum { .. })
        )
    }
}

async fn stored_config_key(
    layer: &strata_object::ObjectLayer,
) -> Result<Option<StoredConfigKey>, ConfigKeyError> {
    let records = layer
        .list_system_records(strata_kms::rotation::SYSTEM_NAMESPACE)
        .await?;
    match records.into_iter().find(|(name, _)| name == CONFIG_KEY_RECORD) {
        None => Ok(None),
        Some((_, blob)) => serde_json::from_slice(&blob)
            .map(Some)
            .map_err(|_| ConfigKeyError::Corrupt),
    }
}

/// How often a server whose KMS could not create the configuration key at startup tries again.
const CONFIG_KEY_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Turns on sealing of configuration at rest (IAM records, bucket configuration).
///
/// When the deployment has a configuration key, it is opened with the KMS (an error here, such
/// as a KMS that is down, fails the call: sealed configuration cannot be read without it). When
/// it has none yet, one is created (under the `kms` namespace's lock, so nodes starting
/// together agree on one); if the KMS cannot create it now (its default key does not exist
/// yet, or it is down), configuration stays unsealed, a warning says so, and a background task
/// tries again every [`CONFIG_KEY_RETRY`]. Values written before sealing stay readable and
/// are sealed when next written.
pub async fn seal_configuration(
    layer: &Arc<strata_object::ObjectLayer>,
    kms: &Arc<dyn Kms>,
) -> Result<(), ConfigKeyError> {
    if let Some(stored) = stored_config_key(layer).await? {
        return install_config_key(layer, kms.as_ref(), stored).await;
    }
    if let Err(err) = create_config_key(layer, kms.as_ref()).await {
        tracing::warn!(
            %err,
            "configuration (IAM, bucket settings) stays unsealed until the KMS can create the configuration key; retrying"
        );
        let (layer, kms) = (Arc::downgrade(layer), Arc::clone(kms));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CONFIG_KEY_RETRY).await;
                let Some(layer) = layer.upgrade() else { return };
                match create_config_key(&layer, kms.as_ref()).await {
                    Ok(()) => {
                        tracing::info!("configuration is now sealed at rest");
                        return;
                    }
                    Err(err) => tracing::debug!(%err, "configuration key still not created"),
                }
            }
        });
    }
    Ok(())
}

/// Creates the configuration key (or opens the one another node created meanwhile) and
/// installs it.
async fn create_config_key(layer: &strata_object::ObjectLayer, kms: &dyn Kms) -> Result<(), ConfigKeyError> {
    let _lock = layer.lock_system(strata_kms::rotation::SYSTEM_NAMESPACE).await?;
    if let Some(stored) = stored_config_key(layer).await? {
        return install_config_key(layer, kms, stored).await;
    }
    let generated = kms.generate_data_key(None, CONFIG_KEY_CONTEXT).await?;
    let stored = StoredConfigKey {
        key: generated.sealed.key,
        version: generated.sealed.version,
        sealed: base64_simd::STANDARD.encode_to_string(&generated.sealed.ciphertext),
    };
    write_config_key(layer, &stored).await?;
    tracing::info!(kms_key = %stored.key, "configuration key created");
    install_config_key(layer, kms, stored).await
}

async fn write_config_key(
    layer: &strata_object::ObjectLayer,
    stored: &StoredConfigKey,
) -> Result<(), ConfigKeyError> {
    let blob = serde_json::to_vec(stored).map_err(|_| ConfigKeyError::Corrupt)?;
    layer
        .put_system_record(
            strata_kms::rotation::SYSTEM_NAMESPACE,
            CONFIG_KEY_RECORD,
            Bytes::from(blob),
        )
        .await?;
    Ok(())
}

fn sealed_config_key(stored: &StoredConfigKey) -> Result<SealedKey, ConfigKeyError> {
    Ok(SealedKey {
        key: stored.key.clone(),
        version: stored.version,
        ciphertext: base64_simd::STANDARD
            .decode_to_vec(&stored.sealed)
            .map_err(|_| ConfigKeyError::Corrupt)?,
    })
}

async fn install_config_key(
    layer: &strata_object::ObjectLayer,
    kms: &dyn Kms,
    stored: StoredConfigKey,
) -> Result<(), ConfigKeyError> {
    let key = kms
        .decrypt_data_key(&sealed_config_key(&stored)?, CONFIG_KEY_CONTEXT)
        .await?;
    let value_key = strata_sse::ValueKey::new(&key).map_err(|_| ConfigKeyError::Corrupt)?;
    layer.set_value_sealer(Arc::new(ConfigSealer(value_key)));
    Ok(())
}

/// Re-seals the configuration key under the newest version of its KMS key when a rotation of
/// that key targets a newer version than the one sealing it (so the old version can be
/// retired once the rotation finished); true when it did.
pub(crate) async fn rewrap_config_key(
    layer: &strata_object::ObjectLayer,
    kms: &dyn Kms,
    key: &str,
    target_version: u32,
) -> Result<bool, ConfigKeyError> {
    let _lock = layer.lock_system(strata_kms::rotation::SYSTEM_NAMESPACE).await?;
    let Some(stored) = stored_config_key(layer).await? else {
        return Ok(false);
    };
    if stored.key != key || stored.version >= target_version {
        return Ok(false);
    }
    let fresh = kms
        .rewrap(&sealed_config_key(&stored)?, CONFIG_KEY_CONTEXT)
        .await?;
    let stored = StoredConfigKey {
        key: fresh.key,
        version: fresh.version,
        sealed: base64_simd::STANDARD.encode_to_string(&fresh.ciphertext),
    };
    write_config_key(layer, &stored).await?;
    Ok(true)
}

/// The outcome of a key's seal-and-open check (MinIO's `kms/key/status` shape): an empty
/// string where the step worked.
#[derive(Debug, Default)]
pub(crate) struct KeyCheck {
    pub encryption_error: String,
    pub decryption_error: String,
}

/// Generates a data key with `name` and opens it again, as a health check of the key.
pub(crate) async fn key_check(kms: &dyn Kms, name: &str) -> KeyCheck {
    let context = b"strata-sse/v1 key status check";
    match kms.generate_data_key(Some(name), context).await {
        Err(err) => KeyCheck {
            encryption_error: err.to_string(),
            decryption_error: String::new(),
        },
        Ok(generated) => match kms.decrypt_data_key(&generated.sealed, context).await {
            Err(err) => KeyCheck {
                encryption_error: String::new(),
                decryption_error: err.to_string(),
            },
            Ok(opened) => {
                // Both must be the same key: seal with one, open with the other.
                let probe = DataKey::from_bytes([0x5a; 32]);
                let same = opened
                    .seal_key(&probe, context)
                    .ok()
                    .and_then(|sealed| generated.plaintext.open_key(&sealed, context).ok())
                    .is_some();
                KeyCheck {
                    encryption_error: String::new(),
                    decryption_error: if same {
                        String::new()
                    } else {
                        "the opened data key is not the one generated".to_owned()
                    },
                }
            }
        },
    }
}

/// A read's content and what its response says about the encryption.
pub(crate) struct OpenedRead {
    pub info: ObjectInfo,
    /// First content byte served.
    pub offset: u64,
    /// Content bytes served.
    pub length: u64,
    pub body: BodySource,
    pub fields: ResponseFields,
}

/// The body of a read: stored bytes as they are, or opened packages.
pub(crate) enum BodySource {
    /// An unencrypted version's bytes.
    Plain(ObjectStream),
    /// An encrypted version's content: its first chunk (opened already), then the rest.
    Opened {
        first: Option<Bytes>,
        rest: Box<OpenedBody>,
    },
}

impl Stream for BodySource {
    type Item = Result<Bytes, ObjectError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            BodySource::Plain(s) => Pin::new(s).poll_next(cx),
            BodySource::Opened { first, rest } => match first.take() {
                Some(chunk) => Poll::Ready(Some(Ok(chunk))),
                None => Pin::new(rest.as_mut()).poll_next(cx),
            },
        }
    }
}

/// The response headers that describe a version's encryption.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResponseFields {
    pub sse: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub context: Option<String>,
    pub bucket_key: Option<bool>,
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

fn response_fields(
    stored: &Stored,
    customer_md5: Option<&str>,
    region: &str,
    account: &str,
) -> ResponseFields {
    match stored.mode {
        Mode::S3 => ResponseFields {
            sse: Some(ServerSideEncryption::from_static(ServerSideEncryption::AES256)),
            ..Default::default()
        },
        Mode::Kms => ResponseFields {
            sse: Some(ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS)),
            kms_key_id: Some(stored.key_id.clone().unwrap_or_else(|| {
                format!(
                    "arn:aws:kms:{region}:{account}:key/{}",
                    stored.kms_key.as_deref().unwrap_or_default()
                )
            })),
            context: stored.context.clone(),
            bucket_key: stored.bucket_key.then_some(true),
            ..Default::default()
        },
        Mode::Customer => ResponseFields {
            customer_algorithm: Some("AES256".to_owned()),
            customer_key_md5: customer_md5.map(str::to_owned),
            ..Default::default()
        },
    }
}

/// The SSE-C headers of an s3s input (every input names them alike); `copy_source`: the
/// `x-amz-copy-source-server-side-encryption-customer-*` ones.
macro_rules! customer_headers {
    ($input:expr) => {
        $crate::encryption::CustomerHeaders {
            algorithm: $input.sse_customer_algorithm.as_deref(),
            key: $input.sse_customer_key.as_deref(),
            key_md5: $input.sse_customer_key_md5.as_deref(),
        }
    };
    ($input:expr, copy_source) => {
        $crate::encryption::CustomerHeaders {
            algorithm: $input.copy_source_sse_customer_algorithm.as_deref(),
            key: $input.copy_source_sse_customer_key.as_deref(),
            key_md5: $input.copy_source_sse_customer_key_md5.as_deref(),
        }
    };
}
pub(crate) use customer_headers;

/// The encryption headers of a write's s3s input (PutObject, CopyObject,
/// CreateMultipartUpload name them alike).
macro_rules! write_headers {
    ($input:expr) => {
        $crate::encryption::Headers {
            sse: $input.server_side_encryption.as_ref(),
            kms_key_id: $input.ssekms_key_id.as_deref(),
            context: $input.ssekms_encryption_context.as_deref(),
            bucket_key: $input.bucket_key_enabled,
            customer: $crate::encryption::customer_headers!($input),
        }
    };
}
pub(crate) use write_headers;

/// Sets an output's encryption fields (every write and read output has the same names).
macro_rules! set_encryption_fields {
    ($output:expr, $fields:expr) => {{
        let fields: $crate::encryption::ResponseFields = $fields;
        $output.server_side_encryption = fields.sse;
        $output.ssekms_key_id = fields.kms_key_id;
        $output.bucket_key_enabled = fields.bucket_key;
        $output.sse_customer_algorithm = fields.customer_algorithm;
        $output.sse_customer_key_md5 = fields.customer_key_md5;
        fields.context
    }};
}
pub(crate) use set_encryption_fields;

/// The stored description of a write, for its metadata.
pub(crate) fn stored_text(key: Option<&WriteKey>) -> Option<String> {
    key.map(|k| k.stored.encode())
}

/// Seals content for the object layer: `strata_sse` packages under a part key.
struct PackageSealer {
    sealer: PartSealer,
    /// The data key, for the ETag of SSE-KMS and SSE-C versions (not the content's MD5).
    etag_key: Option<DataKey>,
}

impl std::fmt::Debug for PackageSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageSealer").finish_non_exhaustive()
    }
}

/// The object layer's view of the package format.
fn geometry() -> SealGeometry {
    SealGeometry {
        package: PACKAGE_BYTES as u32,
        overhead: TAG_BYTES as u32,
    }
}

impl Sealer for PackageSealer {
    fn geometry(&self) -> SealGeometry {
        geometry()
    }

    fn header(&self) -> Vec<u8> {
        self.sealer.header().to_vec()
    }

    fn seal(&mut self, plain: &[u8], last: bool, out: &mut BytesMut) -> Result<(), BoxError> {
        if plain.is_empty() {
            if !last {
                return Ok(());
            }
            if self.sealer.finished() {
                return Err("content sealed past its end".into());
            }
            let tag = self.sealer.seal_package_in_place(&mut [], true)?;
            out.extend_from_slice(&tag);
            return Ok(());
        }
        let n_packages = plain.len().div_ceil(PACKAGE_BYTES);
        out.reserve(plain.len() + n_packages * TAG_BYTES);
        for (idx, package) in plain.chunks(PACKAGE_BYTES).enumerate() {
            let start = out.len();
            out.extend_from_slice(package);
            let tag = self
                .sealer
                .seal_package_in_place(&mut out[start..], last && idx + 1 == n_packages)?;
            out.extend_from_slice(&tag);
        }
        Ok(())
    }

    fn etag(&self, md5: &[u8; 16]) -> String {
        match &self.etag_key {
            Some(key) => hex::encode(strata_sse::opaque_etag(key, md5)),
            None => hex::encode(md5),
        }
    }
}

/// One sealed part of a version, as the opener walks them.
struct SealedPartRef {
    number: u32,
    stored_size: u64,
    header: Vec<u8>,
}

/// The content of a sealed version's span: reads whole packages from the object layer's
/// stored bytes, opens each (a failed tag ends the stream with an error), and trims the
/// first and last to the span.
pub(crate) struct OpenedBody {
    inner: ObjectStream,
    key: DataKey,
    parts: Vec<SealedPartRef>,
    part_idx: usize,
    opener: Option<PartOpener>,
    package: u64,
    /// Content bytes to drop from the next opened package.
    skip: usize,
    /// Content bytes still to yield.
    remaining: u64,
    /// Stored bytes of the package being assembled (or of whole packages, taken over from
    /// a chunk without copying).
    buffer: BytesMut,
    /// The rest of a chunk whose head completed the buffered package.
    pending: Option<Bytes>,
    done: bool,
}

impl OpenedBody {
    fn new(
        info: &ObjectInfo,
        offset: u64,
        length: u64,
        body: ObjectStream,
        key: DataKey,
    ) -> S3Result<OpenedBody> {
        let geometry = info.seal.unwrap_or_else(geometry);
        if geometry != self::geometry() {
            return Err(corrupt(info, "sealed with an unknown package geometry"));
        }
        let mut parts = Vec::with_capacity(info.parts.len());
        let mut sizes = Vec::with_capacity(info.parts.len());
        for p in &info.parts {
            let header = p
                .seal_header
                .clone()
                .ok_or_else(|| corrupt(info, "a sealed part without its header"))?;
            parts.push(SealedPartRef {
                number: p.number,
                stored_size: p.stored_size,
                header,
            });
            sizes.push((p.size, p.stored_size));
        }
        let mut body = OpenedBody {
            inner: body,
            key,
            parts,
            part_idx: 0,
            opener: None,
            package: 0,
            skip: 0,
            remaining: length,
            buffer: BytesMut::new(),
            pending: None,
            done: length == 0,
        };
        if length > 0 {
            let span = geometry
                .span(&sizes, offset, length)
                .ok_or_else(|| corrupt(info, "sealed parts do not cover the object's size"))?;
            body.part_idx = span.first_part;
            body.package = span.first_package;
            body.skip = usize::try_from(span.skip).unwrap_or(0);
            body.open_part()
                .map_err(|_| corrupt(info, "a sealed part's header is not valid"))?;
        }
        Ok(body)
    }

    fn open_part(&mut self) -> Result<(), ObjectError> {
        let part = self
            .parts
            .get(self.part_idx)
            .ok_or_else(|| ObjectError::Corrupt {
                what: "sealed data runs past its last part".into(),
            })?;
        self.opener = Some(
            PartOpener::new(&self.key, part.number, &part.header, part.stored_size).map_err(|err| {
                ObjectError::Corrupt {
                    what: format!("sealed part header: {err}"),
                }
            })?,
        );
        Ok(())
    }

    /// Stored bytes of the current package.
    fn package_len(&self) -> usize {
        let part = &self.parts[self.part_idx];
        let whole = geometry().sealed_package();
        let start = self.package * whole;
        usize::try_from(part.stored_size.saturating_sub(start).min(whole)).unwrap_or(0)
    }

    /// Takes in a chunk of stored bytes. An empty buffer takes the chunk over (no copy when the
    /// chunk is the only reference to its block, as the object layer's are); otherwise only
    /// what completes the buffered package is copied, and the rest waits in `pending`.
    fn absorb(&mut self, mut chunk: Bytes) {
        if self.buffer.is_empty() {
            self.buffer = BytesMut::from(chunk);
            return;
        }
        let need = self
            .package_len()
            .saturating_sub(self.buffer.len())
            .min(chunk.len());
        self.buffer.extend_from_slice(&chunk[..need]);
        bytes::Buf::advance(&mut chunk, need);
        if !chunk.is_empty() {
            self.pending = Some(chunk);
        }
    }

    /// Opens the package at the buffer's front, if it is all there.
    fn next_package(&mut self) -> Option<Result<Bytes, ObjectError>> {
        let len = self.package_len();
        if len == 0 || self.buffer.len() < len {
            return None;
        }
        let mut sealed = self.buffer.split_to(len);
        let opener = self.opener.as_ref()?;
        let plain_len = match opener.open_package(self.package, &mut sealed) {
            Ok(plain) => plain.len(),
            Err(err) => {
                let part = self.parts[self.part_idx].number;
                return Some(Err(ObjectError::Corrupt {
                    what: format!("part {part} package {}: {err}", self.package),
                }));
            }
        };
        let mut plain = sealed.freeze().slice(..plain_len);
        let skip = self.skip.min(plain.len());
        self.skip = 0;
        plain = plain.slice(skip..);
        let take = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(plain.len());
        plain.truncate(take);
        self.remaining -= take as u64;
        self.package += 1;
        if self.package >= opener.packages() && self.remaining > 0 {
            self.part_idx += 1;
            self.package = 0;
            if let Err(err) = self.open_part() {
                return Some(Err(err));
            }
        }
        Some(Ok(plain))
    }
}

impl Stream for OpenedBody {
    type Item = Result<Bytes, ObjectError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.remaining == 0 {
                this.done = true;
                return Poll::Ready(None);
            }
            if let Some(result) = this.next_package() {
                match result {
                    Ok(chunk) if chunk.is_empty() => continue,
                    Ok(chunk) => return Poll::Ready(Some(Ok(chunk))),
                    Err(err) => {
                        this.done = true;
                        return Poll::Ready(Some(Err(err)));
                    }
                }
            }
            if let Some(rest) = this.pending.take() {
                this.absorb(rest);
                continue;
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.absorb(chunk),
                Poll::Ready(Some(Err(err))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(ObjectError::Corrupt {
                        what: "sealed data ends before the content does".into(),
                    })));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64_simd::STANDARD.encode_to_string(bytes)
    }

    #[test]
    fn customer_keys_are_checked() {
        let key = [7u8; 32];
        let md5 = b64(&Md5::digest(key));
        let good = CustomerHeaders {
            algorithm: Some("AES256"),
            key: Some(&b64(&key)),
            key_md5: Some(&md5),
        };
        assert!(customer_key(good, true).unwrap().is_some());
        assert_eq!(
            customer_key(good, false).unwrap_err().code(),
            &S3ErrorCode::InvalidRequest
        );
        let wrong_md5 = b64(&Md5::digest([8u8; 32]));
        let bad = CustomerHeaders {
            key_md5: Some(&wrong_md5),
            ..good
        };
        assert_eq!(
            customer_key(bad, true).unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
        let short = b64(&[1u8; 16]);
        let bad = CustomerHeaders {
            key: Some(&short),
            ..good
        };
        assert_eq!(
            customer_key(bad, true).unwrap_err().code(),
            &S3ErrorCode::InvalidArgument
        );
        let bad = CustomerHeaders {
            algorithm: Some("AES128"),
            ..good
        };
        assert_eq!(
            customer_key(bad, true).unwrap_err().code(),
            &S3ErrorCode::InvalidEncryptionAlgorithmError
        );
        assert!(customer_key(CustomerHeaders::default(), false).unwrap().is_none());
        let shown = format!("{:?}", customer_key(good, true).unwrap());
        assert!(!shown.contains(&md5) && !shown.contains(&b64(&key)), "{shown}");
    }

    #[test]
    fn kms_key_ids_name_keys() {
        assert_eq!(kms_key_name("my-key"), "my-key");
        assert_eq!(
            kms_key_name("arn:aws:kms:us-east-1:123456789012:key/my-key"),
            "my-key"
        );
        assert_eq!(kms_key_name("arn:aws:kms:my-key"), "my-key");
    }

    #[test]
    fn contexts_must_be_json_objects_of_strings() {
        assert!(check_context(&b64(br#"{"a":"b"}"#)).is_ok());
        assert!(check_context(&b64(br#"{"a":1}"#)).is_err());
        assert!(check_context(&b64(b"[1]")).is_err());
        assert!(check_context("not base64!").is_err());
    }

    #[test]
    fn headers_choose_one_mode() {
        let kms = ServerSideEncryption::from_static(ServerSideEncryption::AWS_KMS);
        let aes = ServerSideEncryption::from_static(ServerSideEncryption::AES256);
        let r = requested(
            Headers {
                sse: Some(&kms),
                kms_key_id: Some("k1"),
                ..Default::default()
            },
            true,
        )
        .unwrap();
        assert!(matches!(r, Some(Requested::Kms { key_id: Some(ref k), .. }) if k == "k1"));
        assert!(matches!(
            requested(
                Headers {
                    sse: Some(&aes),
                    ..Default::default()
                },
                true
            ),
            Ok(Some(Requested::S3))
        ));
        assert!(
            requested(
                Headers {
                    sse: Some(&aes),
                    kms_key_id: Some("k1"),
                    ..Default::default()
                },
                true
            )
            .is_err()
        );
        assert!(
            requested(
                Headers {
                    kms_key_id: Some("k1"),
                    ..Default::default()
                },
                true
            )
            .is_err()
        );
        let odd = ServerSideEncryption::from("rot13".to_owned());
        assert!(
            requested(
                Headers {
                    sse: Some(&odd),
                    ..Default::default()
                },
                true
            )
            .is_err()
        );
        assert!(matches!(requested(Headers::default(), true), Ok(None)));
    }
}
