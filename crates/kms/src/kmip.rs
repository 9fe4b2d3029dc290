//! KMIP (OASIS Key Management Interoperability Protocol, version 1.2) as the KMS: the enterprise
//! key managers' protocol, which Ceph speaks too. Strata keeps its KMS keys as AES-256 symmetric
//! keys on the KMIP server, one managed object per key version, named `NAME#vN`; it locates them
//! by name and gets their material over mutually authenticated TLS, and seals data keys with it
//! locally (the same envelope as the built-in keyring). Material is held in memory for at most
//! [`MATERIAL_TTL`]: after that the server is asked again, so a key revoked or destroyed on the
//! KMIP server stops working within that time, and a KMIP server that is down makes encrypted
//! requests answer 503 once it has passed.
//!
//! Messages are TTLV: a 3-byte tag, a 1-byte type, a 4-byte big-endian length, the value padded
//! to 8 bytes; one request per TLS connection (KMIP calls are rare: material is cached).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use strata_sse::DataKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zeroize::Zeroize as _;

use crate::{KeyInfo, Kms, KmsError, SealedKey};

/// How long key material fetched from the KMIP server is used before it is fetched again.
pub const MATERIAL_TTL: Duration = Duration::from_secs(60);
/// Longest a KMIP exchange may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response read.
const RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Most versions looked for when finding a key's newest one.
const VERSIONS_MAX: u32 = 10_000;

// Tags (KMIP 1.2, section 9.1.3.1).
mod tag {
    pub const ATTRIBUTE: u32 = 0x42_0008;
    pub const ATTRIBUTE_NAME: u32 = 0x42_000A;
    pub const ATTRIBUTE_VALUE: u32 = 0x42_000B;
    pub const BATCH_COUNT: u32 = 0x42_000D;
    pub const BATCH_ITEM: u32 = 0x42_000F;
    pub const KEY_BLOCK: u32 = 0x42_0040;
    pub const KEY_MATERIAL: u32 = 0x42_0043;
    pub const KEY_VALUE: u32 = 0x42_0045;
    pub const NAME_TYPE: u32 = 0x42_0054;
    pub const NAME_VALUE: u32 = 0x42_0055;
    pub const OBJECT_TYPE: u32 = 0x42_0057;
    pub const OPERATION: u32 = 0x42_005C;
    pub const PROTOCOL_VERSION: u32 = 0x42_0069;
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42_006A;
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42_006B;
    pub const REQUEST_HEADER: u32 = 0x42_0077;
    pub const REQUEST_MESSAGE: u32 = 0x42_0078;
    pub const REQUEST_PAYLOAD: u32 = 0x42_0079;
    pub const RESPONSE_PAYLOAD: u32 = 0x42_007C;
    pub const RESULT_MESSAGE: u32 = 0x42_007D;
    pub const RESULT_REASON: u32 = 0x42_007E;
    pub const RESULT_STATUS: u32 = 0x42_007F;
    pub const SYMMETRIC_KEY: u32 = 0x42_008F;
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x42_0091;
    pub const UNIQUE_IDENTIFIER: u32 = 0x42_0094;
}

mod op {
    pub const CREATE: u32 = 0x01;
    pub const LOCATE: u32 = 0x08;
    pub const GET: u32 = 0x0A;
    pub const ACTIVATE: u32 = 0x12;
}

const TYPE_STRUCTURE: u8 = 0x01;
const TYPE_INTEGER: u8 = 0x02;
const TYPE_ENUMERATION: u8 = 0x05;
const TYPE_TEXT: u8 = 0x07;
const TYPE_BYTES: u8 = 0x08;

const OBJECT_SYMMETRIC_KEY: u32 = 0x02;
const ALGORITHM_AES: u32 = 0x03;
const USAGE_ENCRYPT_DECRYPT: i32 = 0x04 | 0x08;
const NAME_TYPE_TEXT: u32 = 0x01;
const RESULT_SUCCESS: u32 = 0x00;
/// Result reason "Item Not Found".
const REASON_NOT_FOUND: u32 = 0x01;

/// A TTLV item.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    Structure(u32, Vec<Item>),
    Integer(u32, i32),
    Enumeration(u32, u32),
    Text(u32, String),
    Bytes(u32, Vec<u8>),
    /// Any other type, kept as raw bytes (not used by Strata).
    Other(u32, u8, Vec<u8>),
}

impl Item {
    fn tag(&self) -> u32 {
        match self {
            Item::Structure(t, _)
            | Item::Integer(t, _)
            | Item::Enumeration(t, _)
            | Item::Text(t, _)
            | Item::Bytes(t, _)
            | Item::Other(t, _, _) => *t,
        }
    }

    #[allow(clippy::big_endian_bytes)] // TTLV is big-endian.
    fn encode(&self, out: &mut Vec<u8>) {
        let (kind, value): (u8, Vec<u8>) = match self {
            Item::Structure(_, items) => {
                let mut inner = Vec::new();
                for item in items {
                    item.encode(&mut inner);
                }
                (TYPE_STRUCTURE, inner)
            }
            Item::Integer(_, v) => (TYPE_INTEGER, v.to_be_bytes().to_vec()),
            Item::Enumeration(_, v) => (TYPE_ENUMERATION, v.to_be_bytes().to_vec()),
            Item::Text(_, s) => (TYPE_TEXT, s.as_bytes().to_vec()),
            Item::Bytes(_, b) => (TYPE_BYTES, b.clone()),
            Item::Other(_, kind, b) => (*kind, b.clone()),
        };
        out.extend_from_slice(&self.tag().to_be_bytes()[1..]);
        out.push(kind);
        out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&value);
        out.resize(out.len() + (8 - value.len() % 8) % 8, 0);
    }

    /// Decodes one item from the front of `bytes`; returns it and the bytes it took.
    #[allow(clippy::big_endian_bytes)] // TTLV is big-endian.
    fn decode(bytes: &[u8]) -> Result<(Item, usize), KmsError> {
        let bad = || KmsError::Unavailable("the KMIP server sent a malformed message".into());
        let header = bytes.get(..8).ok_or_else(bad)?;
        let tag = u32::from_be_bytes([0, header[0], header[1], header[2]]);
        let kind = header[3];
        let len = usize::try_from(u32::from_be_bytes([header[4], header[5], header[6], header[7]]))
            .map_err(|_| bad())?;
        let padded = len.checked_add((8 - len % 8) % 8).ok_or_else(bad)?;
        let value = bytes.get(8..8 + len).ok_or_else(bad)?;
        if bytes.len() < 8 + padded {
            return Err(bad());
        }
        let four = || -> Result<[u8; 4], KmsError> {
            value.get(..4).and_then(|v| v.try_into().ok()).ok_or_else(bad)
        };
        let item = match kind {
            TYPE_STRUCTURE => {
                let mut items = Vec::new();
                let mut at = 0;
                while at < value.len() {
                    let (item, used) = Item::decode(&value[at..])?;
                    items.push(item);
                    at += used;
                }
                Item::Structure(tag, items)
            }
            TYPE_INTEGER => Item::Integer(tag, i32::from_be_bytes(four()?)),
            TYPE_ENUMERATION => Item::Enumeration(tag, u32::from_be_bytes(four()?)),
            TYPE_TEXT => Item::Text(tag, String::from_utf8(value.to_vec()).map_err(|_| bad())?),
            TYPE_BYTES => Item::Bytes(tag, value.to_vec()),
            other => Item::Other(tag, other, value.to_vec()),
        };
        Ok((item, 8 + padded))
    }

    fn children(&self) -> &[Item] {
        match self {
            Item::Structure(_, items) => items,
            _ => &[],
        }
    }

    fn child(&self, tag: u32) -> Option<&Item> {
        self.children().iter().find(|i| i.tag() == tag)
    }

    fn enumeration(&self) -> Option<u32> {
        match self {
            Item::Enumeration(_, v) => Some(*v),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Item::Text(_, s) => Some(s),
            _ => None,
        }
    }
}

fn name_attribute(name: &str) -> Item {
    Item::Structure(
        tag::ATTRIBUTE,
        vec![
            Item::Text(tag::ATTRIBUTE_NAME, "Name".into()),
            Item::Structure(
                tag::ATTRIBUTE_VALUE,
                vec![
                    Item::Text(tag::NAME_VALUE, name.into()),
                    Item::Enumeration(tag::NAME_TYPE, NAME_TYPE_TEXT),
                ],
            ),
        ],
    )
}

fn request(operation: u32, payload: Vec<Item>) -> Vec<u8> {
    let message = Item::Structure(
        tag::REQUEST_MESSAGE,
        vec![
            Item::Structure(
                tag::REQUEST_HEADER,
                vec![
                    Item::Structure(
                        tag::PROTOCOL_VERSION,
                        vec![
                            Item::Integer(tag::PROTOCOL_VERSION_MAJOR, 1),
                            Item::Integer(tag::PROTOCOL_VERSION_MINOR, 2),
                        ],
                    ),
                    Item::Integer(tag::BATCH_COUNT, 1),
                ],
            ),
            Item::Structure(
                tag::BATCH_ITEM,
                vec![
                    Item::Enumeration(tag::OPERATION, operation),
                    Item::Structure(tag::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    );
    let mut out = Vec::with_capacity(256);
    message.encode(&mut out);
    out
}

/// KMIP settings.
#[derive(Clone, Debug, Default)]
pub struct KmipConfig {
    /// `HOST:PORT` of the KMIP server (5696 is KMIP's port).
    pub address: String,
    /// The name the server's certificate is checked against (the host by default).
    pub server_name: Option<String>,
    /// PEM certificates to trust for the server (KMIP servers use private CAs).
    pub ca_file: PathBuf,
    /// The client certificate and key (PEM) the server authenticates Strata by.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// The key used when a request names none.
    pub default_key: String,
}

/// What a KMIP call can end in besides success.
enum Failure {
    NotFound,
    Other(KmsError),
}

impl From<KmsError> for Failure {
    fn from(err: KmsError) -> Failure {
        Failure::Other(err)
    }
}

/// Key material by (key, version), with when it was fetched.
type MaterialCache = HashMap<(String, u32), (Instant, Vec<Arc<DataKey>>)>;

/// The KMIP backend.
pub struct KmipKms {
    address: String,
    server_name: ServerName<'static>,
    tls: tokio_rustls::TlsConnector,
    default_key: String,
    /// Material by (key, version), with when it was fetched.
    material: Mutex<MaterialCache>,
    /// Each key's newest version, with when it was found.
    newest: Mutex<HashMap<String, (Instant, u32)>>,
}

impl std::fmt::Debug for KmipKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmipKms")
            .field("address", &self.address)
            .field("default_key", &self.default_key)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), KmsError> {
    crate::check_key_name(name, 128)
}

fn version_name(name: &str, version: u32) -> String {
    format!("{name}#v{version}")
}

impl KmipKms {
    /// A client of the KMIP server (no call is made until a key is used).
    pub fn new(config: KmipConfig) -> Result<KmipKms, KmsError> {
        check_name(&config.default_key)?;
        let cfg = |what: &str, err: &dyn std::fmt::Display| KmsError::Config(format!("KMIP {what}: {err}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&config.ca_file)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| cfg("CA file", &e))?
        {
            roots.add(cert).map_err(|e| cfg("CA file", &e))?;
        }
        let chain = CertificateDer::pem_file_iter(&config.client_cert)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| cfg("client certificate", &e))?;
        let key = PrivateKeyDer::from_pem_file(&config.client_key).map_err(|e| cfg("client key", &e))?;
        let tls =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| cfg("TLS", &e))?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .map_err(|e| cfg("client certificate", &e))?;
        let host = config
            .server_name
            .clone()
            .or_else(|| {
                config
                    .address
                    .rsplit_once(':')
                    .map(|(h, _)| h.trim_matches(['[', ']']).to_owned())
            })
            .ok_or_else(|| {
                KmsError::Config(format!("KMIP address {:?} must be HOST:PORT", config.address))
            })?;
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| KmsError::Config(format!("KMIP server name {host:?}")))?;
        Ok(KmipKms {
            address: config.address,
            server_name,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            default_key: config.default_key,
            material: Mutex::new(HashMap::new()),
            newest: Mutex::new(HashMap::new()),
        })
    }

    /// One request, one response, over a fresh TLS connection.
    async fn exchange(&self, operation: u32, payload: Vec<Item>) -> Result<Item, Failure> {
        let message = request(operation, payload);
        let unavailable = |why: String| KmsError::Unavailable(format!("KMIP server {}: {why}", self.address));
        let response = tokio::time::timeout(CALL_TIMEOUT, async {
            let tcp = tokio::net::TcpStream::connect(&self.address)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let mut tls = self
                .tls
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            tls.write_all(&message)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            tls.flush().await.map_err(|e| unavailable(e.to_string()))?;
            let mut header = [0u8; 8];
            tls.read_exact(&mut header)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            #[allow(clippy::big_endian_bytes)] // TTLV is big-endian.
            let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if len > RESPONSE_BYTES_MAX {
                return Err(unavailable("response too large".into()));
            }
            let mut body = vec![0u8; len + (8 - len % 8) % 8];
            tls.read_exact(&mut body)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let _ = tls.shutdown().await;
            let mut whole = header.to_vec();
            whole.extend_from_slice(&body);
            Ok::<_, KmsError>(whole)
        })
        .await
        .map_err(|_| unavailable(format!("no answer within {CALL_TIMEOUT:?}")))??;
        let (message, _) = Item::decode(&response)?;
        let item = message
            .child(tag::BATCH_ITEM)
            .ok_or_else(|| unavailable("a response without a batch item".into()))?;
        let status = item.child(tag::RESULT_STATUS).and_then(Item::enumeration);
        if status != Some(RESULT_SUCCESS) {
            let reason = item.child(tag::RESULT_REASON).and_then(Item::enumeration);
            if reason == Some(REASON_NOT_FOUND) {
                return Err(Failure::NotFound);
            }
            let text = item
                .child(tag::RESULT_MESSAGE)
                .and_then(Item::text)
                .unwrap_or("no message")
                .to_owned();
            return Err(Failure::Other(KmsError::Config(format!(
                "the KMIP server refused: {text}"
            ))));
        }
        Ok(item
            .child(tag::RESPONSE_PAYLOAD)
            .cloned()
            .unwrap_or(Item::Structure(tag::RESPONSE_PAYLOAD, Vec::new())))
    }

    /// The unique identifiers of objects named `name`.
    async fn locate(&self, name: &str) -> Result<Vec<String>, KmsError> {
        match self.exchange(op::LOCATE, vec![name_attribute(name)]).await {
            Ok(payload) => Ok(payload
                .children()
                .iter()
                .filter(|i| i.tag() == tag::UNIQUE_IDENTIFIER)
                .filter_map(|i| i.text().map(str::to_owned))
                .collect()),
            Err(Failure::NotFound) => Ok(Vec::new()),
            Err(Failure::Other(err)) => Err(err),
        }
    }

    /// Version `version` of `name`'s material: from memory when fetched less than
    /// [`MATERIAL_TTL`] ago, else from the server.
    /// Every object holding version `version` of `name` (normally one; two rotations racing
    /// on the KMIP server can create two, and then each is tried when opening).
    async fn material(&self, name: &str, version: u32) -> Result<Vec<Arc<DataKey>>, KmsError> {
        let id = (name.to_owned(), version);
        if let Some((at, keys)) = self.cache().get(&id)
            && at.elapsed() < MATERIAL_TTL
        {
            return Ok(keys.clone());
        }
        let uids = self.locate(&version_name(name, version)).await?;
        if uids.is_empty() {
            return Err(if version == 1 {
                KmsError::KeyNotFound(name.to_owned())
            } else {
                KmsError::VersionNotFound {
                    name: name.to_owned(),
                    version,
                }
            });
        }
        if uids.len() > 1 {
            tracing::warn!(
                key = name,
                version,
                objects = uids.len(),
                "several KMIP objects hold one key version"
            );
        }
        let mut keys = Vec::with_capacity(uids.len());
        for uid in &uids {
            keys.push(self.fetch(name, uid).await?);
        }
        self.cache().insert(id, (Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// The material of the object `uid`.
    async fn fetch(&self, name: &str, uid: &str) -> Result<Arc<DataKey>, KmsError> {
        let payload = self
            .exchange(op::GET, vec![Item::Text(tag::UNIQUE_IDENTIFIER, uid.to_owned())])
            .await
            .map_err(|f| match f {
                Failure::NotFound => KmsError::KeyNotFound(name.to_owned()),
                Failure::Other(err) => err,
            })?;
        let material = payload
            .child(tag::SYMMETRIC_KEY)
            .and_then(|k| k.child(tag::KEY_BLOCK))
            .and_then(|b| b.child(tag::KEY_VALUE))
            .and_then(|v| v.child(tag::KEY_MATERIAL));
        let Some(Item::Bytes(_, bytes)) = material else {
            return Err(KmsError::Config(format!(
                "the KMIP object {uid} is not a raw symmetric key"
            )));
        };
        let mut bytes = bytes.clone();
        let key = <[u8; 32]>::try_from(bytes.as_slice())
            .map(|k| Arc::new(DataKey::from_bytes(k)))
            .map_err(|_| KmsError::Config(format!("the KMIP object {uid} is not a 256-bit key")));
        bytes.zeroize();
        key
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, MaterialCache> {
        match self.material.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The newest version of `name` (0: the key does not exist).
    /// The newest version of `name` (0: the key does not exist), from memory when found less
    /// than [`MATERIAL_TTL`] ago.
    async fn newest_version(&self, name: &str) -> Result<u32, KmsError> {
        if let Some((at, version)) = self.newest().get(name)
            && at.elapsed() < MATERIAL_TTL
        {
            return Ok(*version);
        }
        let mut version = 0;
        while version < VERSIONS_MAX && !self.locate(&version_name(name, version + 1)).await?.is_empty() {
            version += 1;
        }
        if version > 0 {
            self.newest().insert(name.to_owned(), (Instant::now(), version));
        }
        Ok(version)
    }

    fn newest(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        match self.newest.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Creates and activates version `version` of `name` (refused when it exists already).
    async fn create_version(&self, name: &str, version: u32) -> Result<(), KmsError> {
        if !self.locate(&version_name(name, version)).await?.is_empty() {
            return Err(KmsError::KeyExists(version_name(name, version)));
        }
        let attr = |attr_name: &str, value: Item| {
            Item::Structure(
                tag::ATTRIBUTE,
                vec![Item::Text(tag::ATTRIBUTE_NAME, attr_name.into()), value],
            )
        };
        let payload = vec![
            Item::Enumeration(tag::OBJECT_TYPE, OBJECT_SYMMETRIC_KEY),
            Item::Structure(
                tag::TEMPLATE_ATTRIBUTE,
                vec![
                    attr(
                        "Cryptographic Algorithm",
                        Item::Enumeration(tag::ATTRIBUTE_VALUE, ALGORITHM_AES),
                    ),
                    attr("Cryptographic Length", Item::Integer(tag::ATTRIBUTE_VALUE, 256)),
                    attr(
                        "Cryptographic Usage Mask",
                        Item::Integer(tag::ATTRIBUTE_VALUE, USAGE_ENCRYPT_DECRYPT),
                    ),
                    name_attribute(&version_name(name, version)),
                ],
            ),
        ];
        let created = self.exchange(op::CREATE, payload).await.map_err(|f| match f {
            Failure::NotFound => KmsError::Config("the KMIP server could not create the key".into()),
            Failure::Other(err) => err,
        })?;
        let uid = created
            .child(tag::UNIQUE_IDENTIFIER)
            .and_then(Item::text)
            .ok_or_else(|| {
                KmsError::Unavailable("the KMIP server created a key without an identifier".into())
            })?
            .to_owned();
        self.exchange(op::ACTIVATE, vec![Item::Text(tag::UNIQUE_IDENTIFIER, uid)])
            .await
            .map_err(|f| match f {
                Failure::NotFound => KmsError::Config("the created KMIP key vanished".into()),
                Failure::Other(err) => err,
            })?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Kms for KmipKms {
    fn backend(&self) -> &'static str {
        "kmip"
    }

    fn default_key(&self) -> &str {
        &self.default_key
    }

    async fn encrypt_data_key(
        &self,
        key: &str,
        plaintext: &DataKey,
        context: &[u8],
    ) -> Result<SealedKey, KmsError> {
        check_name(key)?;
        let version = self.newest_version(key).await?;
        if version == 0 {
            return Err(KmsError::KeyNotFound(key.to_owned()));
        }
        let material = self.material(key, version).await?;
        let ciphertext = material
            .first()
            .ok_or_else(|| KmsError::KeyNotFound(key.to_owned()))?
            .seal_key(plaintext, context)
            .map_err(|_| KmsError::Unavailable("sealing failed".into()))?;
        Ok(SealedKey {
            key: key.to_owned(),
            version,
            ciphertext,
        })
    }

    async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError> {
        check_name(&sealed.key)?;
        let material = self.material(&sealed.key, sealed.version).await?;
        material
            .iter()
            .find_map(|key| key.open_key(&sealed.ciphertext, context).ok())
            .ok_or(KmsError::Decrypt)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError> {
        Err(KmsError::Unsupported(
            "listing keys is not offered with KMIP: ask for a key by name (kms key status NAME)",
        ))
    }

    async fn key_info(&self, name: &str) -> Result<KeyInfo, KmsError> {
        check_name(name)?;
        match self.newest_version(name).await? {
            0 => Err(KmsError::KeyNotFound(name.to_owned())),
            versions => Ok(KeyInfo {
                name: name.to_owned(),
                versions,
                default: name == self.default_key,
            }),
        }
    }

    async fn create_key(&self, name: &str) -> Result<(), KmsError> {
        check_name(name)?;
        if self.newest_version(name).await? > 0 {
            return Err(KmsError::KeyExists(name.to_owned()));
        }
        self.create_version(name, 1).await
    }

    async fn rotate_key(&self, name: &str) -> Result<u32, KmsError> {
        check_name(name)?;
        // Asked of the server, not memory: another node may have rotated meanwhile.
        self.newest().remove(name);
        let version = self.newest_version(name).await?;
        if version == 0 {
            return Err(KmsError::KeyNotFound(name.to_owned()));
        }
        self.create_version(name, version + 1).await?;
        self.newest()
            .insert(name.to_owned(), (Instant::now(), version + 1));
        Ok(version + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttlv_round_trips_and_pads_to_eight_bytes() {
        let message = request(op::LOCATE, vec![name_attribute("k#v1")]);
        assert_eq!(message.len() % 8, 0);
        let (item, used) = Item::decode(&message).unwrap();
        assert_eq!(used, message.len());
        assert_eq!(item.tag(), tag::REQUEST_MESSAGE);
        let batch = item.child(tag::BATCH_ITEM).unwrap();
        assert_eq!(
            batch.child(tag::OPERATION).and_then(Item::enumeration),
            Some(op::LOCATE)
        );
        // The header of an integer: tag 42006A, type 02, length 4, value, 4 bytes of padding.
        let mut out = Vec::new();
        Item::Integer(tag::PROTOCOL_VERSION_MAJOR, 1).encode(&mut out);
        assert_eq!(out, [0x42, 0x00, 0x6A, 0x02, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]);
        // A text of 5 bytes is padded to 8.
        let mut out = Vec::new();
        Item::Text(tag::NAME_VALUE, "abcde".into()).encode(&mut out);
        assert_eq!(out.len(), 16);
        assert_eq!(
            Item::decode(&out).unwrap().0,
            Item::Text(tag::NAME_VALUE, "abcde".into())
        );
        // Truncated input is an error, not a panic.
        assert!(Item::decode(&message[..message.len() - 3]).is_err());
        assert!(Item::decode(&message[..5]).is_err());
    }
}
