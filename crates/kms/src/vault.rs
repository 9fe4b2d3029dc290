//! HashiCorp Vault / OpenBao Transit as the KMS (token authentication).
//!
//! Transit keys never leave Vault. Each data key is sealed in two layers: Vault's `datakey`
//! endpoint returns a fresh 256-bit key-encryption key `K` in plaintext and wrapped by the
//! named Transit key (`vault:vN:...`); the data key is sealed under `K` with the encryption
//! context as associated data (`strata_sse::seal_data_key`), so a sealed key moved to another
//! object fails to open whether or not the Transit key is derived. What is kept:
//!
//! ```text
//! 0      format = 1
//! 1..3   length L of Vault's ciphertext (u16, big-endian)
//! 3..3+L Vault's ciphertext of K ("vault:vN:...", N = the key version)
//! then   the data key sealed under K (strata_sse's 65-byte envelope)
//! ```
//!
//! Rotation is Transit's `rotate`; re-sealing is Transit's `rewrap` of `K` (neither the data
//! key nor `K` is seen in plaintext by that step).

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use strata_sse::{DataKey, open_data_key, seal_data_key};
use zeroize::Zeroize as _;

use crate::https::{Endpoint, JsonClient};
use crate::{KeyInfo, Kms, KmsError, SealedKey};

const FORMAT: u8 = 1;

/// Vault Transit settings.
#[derive(Clone, Default)]
pub struct VaultConfig {
    /// Where Vault listens, and its TLS.
    pub endpoint: Endpoint,
    /// A Vault token allowed to use the Transit keys (`datakey`, `decrypt`, `rewrap`, and for
    /// administration `keys`, `rotate`).
    pub token: String,
    /// The Transit mount path (`transit` by default).
    pub mount: String,
    /// The key used when a request names none.
    pub default_key: String,
    /// A Vault Enterprise / HCP namespace, if any.
    pub namespace: Option<String>,
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("endpoint", &self.endpoint)
            .field("mount", &self.mount)
            .field("default_key", &self.default_key)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// The Vault Transit backend.
#[derive(Debug)]
pub struct VaultKms {
    client: JsonClient,
    headers: HeaderMap,
    mount: String,
    default_key: String,
}

fn check_name(name: &str) -> Result<(), KmsError> {
    crate::check_key_name(name, 128)
}

/// The key version of a Transit ciphertext (`vault:vN:...`).
fn version_of(ciphertext: &str) -> Option<u32> {
    ciphertext
        .strip_prefix("vault:v")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// Vault's first error message, for a refusal.
fn vault_message(answer: &Value) -> String {
    answer["errors"]
        .as_array()
        .and_then(|e| e.first())
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned()
}

impl VaultKms {
    /// A client of the Transit engine (no call is made until a key is used).
    pub fn new(config: VaultConfig) -> Result<VaultKms, KmsError> {
        if config.token.is_empty() {
            return Err(KmsError::Config("a Vault token is required".into()));
        }
        check_name(&config.default_key)?;
        let mut headers = HeaderMap::new();
        let mut token = HeaderValue::from_str(&config.token)
            .map_err(|_| KmsError::Config("the Vault token is not a header value".into()))?;
        token.set_sensitive(true);
        headers.insert("x-vault-token", token);
        if let Some(ns) = &config.namespace {
            headers.insert(
                "x-vault-namespace",
                HeaderValue::from_str(ns)
                    .map_err(|_| KmsError::Config("the Vault namespace is not a header value".into()))?,
            );
        }
        let mount = config.mount.trim_matches('/');
        Ok(VaultKms {
            client: JsonClient::new(&config.endpoint)?,
            headers,
            mount: if mount.is_empty() {
                "transit".to_owned()
            } else {
                mount.to_owned()
            },
            default_key: config.default_key,
        })
    }

    /// Calls Transit; a missing key is `KeyNotFound`, other refusals `Config` (a token without
    /// the rights, a bad request), with Vault's message.
    async fn transit(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<Value, KmsError> {
        let (status, answer) = self
            .client
            .call(
                method,
                &format!("/v1/{}/{path}", self.mount),
                &self.headers,
                body.as_ref(),
            )
            .await?;
        if status.is_success() {
            return Ok(answer);
        }
        let message = vault_message(&answer);
        if status == StatusCode::NOT_FOUND || message.contains("not found") {
            return Err(KmsError::KeyNotFound(key.to_owned()));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(KmsError::Unavailable(format!("Vault: {message}")));
        }
        Err(KmsError::Config(format!("Vault refused ({status}): {message}")))
    }

    /// A fresh key-encryption key from Transit: plaintext and Vault's ciphertext.
    async fn new_kek(&self, key: &str) -> Result<([u8; 32], String), KmsError> {
        check_name(key)?;
        let answer = self
            .transit(
                Method::POST,
                &format!("datakey/plaintext/{key}"),
                key,
                Some(json!({ "bits": 256 })),
            )
            .await?;
        let ciphertext = answer["data"]["ciphertext"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut plain = base64_simd::STANDARD
            .decode_to_vec(answer["data"]["plaintext"].as_str().unwrap_or_default())
            .map_err(|_| KmsError::Unavailable("Vault's data key is not base64".into()))?;
        let kek = <[u8; 32]>::try_from(plain.as_slice())
            .map_err(|_| KmsError::Unavailable("Vault's data key is not 256 bits".into()));
        plain.zeroize();
        Ok((kek?, ciphertext))
    }

    fn pack(vault_ciphertext: &str, envelope: &[u8]) -> Result<Vec<u8>, KmsError> {
        let len = u16::try_from(vault_ciphertext.len())
            .map_err(|_| KmsError::Unavailable("Vault's ciphertext is too long".into()))?;
        let mut out = Vec::with_capacity(3 + vault_ciphertext.len() + envelope.len());
        out.push(FORMAT);
        #[allow(clippy::big_endian_bytes)] // The stored format fixes big-endian.
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(vault_ciphertext.as_bytes());
        out.extend_from_slice(envelope);
        Ok(out)
    }

    fn unpack(sealed: &[u8]) -> Result<(&str, &[u8]), KmsError> {
        if sealed.len() < 3 || sealed[0] != FORMAT {
            return Err(KmsError::Decrypt);
        }
        #[allow(clippy::big_endian_bytes)] // The stored format fixes big-endian.
        let len = usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
        let end = 3 + len;
        let vault = sealed.get(3..end).ok_or(KmsError::Decrypt)?;
        let vault = std::str::from_utf8(vault).map_err(|_| KmsError::Decrypt)?;
        Ok((vault, &sealed[end..]))
    }

    async fn key_versions(&self, name: &str) -> Result<u32, KmsError> {
        check_name(name)?;
        let answer = self
            .transit(Method::GET, &format!("keys/{name}"), name, None)
            .await?;
        answer["data"]["latest_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| KmsError::Unavailable("Vault's key answer has no latest_version".into()))
    }
}

#[async_trait::async_trait]
impl Kms for VaultKms {
    fn backend(&self) -> &'static str {
        "vault"
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
        let (mut kek, vault_ciphertext) = self.new_kek(key).await?;
        let envelope = seal_data_key(&kek, plaintext, context);
        kek.zeroize();
        let envelope = envelope.map_err(|_| KmsError::Unavailable("sealing failed".into()))?;
        let version = version_of(&vault_ciphertext)
            .ok_or_else(|| KmsError::Unavailable("Vault's ciphertext names no key version".into()))?;
        Ok(SealedKey {
            key: key.to_owned(),
            version,
            ciphertext: Self::pack(&vault_ciphertext, &envelope)?,
        })
    }

    async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError> {
        check_name(&sealed.key)?;
        let (vault_ciphertext, envelope) = Self::unpack(&sealed.ciphertext)?;
        let answer = self
            .transit(
                Method::POST,
                &format!("decrypt/{}", sealed.key),
                &sealed.key,
                Some(json!({ "ciphertext": vault_ciphertext })),
            )
            .await
            .map_err(|err| match err {
                // Vault refuses a ciphertext it cannot open with 400.
                KmsError::Config(_) => KmsError::Decrypt,
                other => other,
            })?;
        let mut plain = base64_simd::STANDARD
            .decode_to_vec(answer["data"]["plaintext"].as_str().unwrap_or_default())
            .map_err(|_| KmsError::Decrypt)?;
        let kek = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| KmsError::Decrypt);
        plain.zeroize();
        let mut kek = kek?;
        let opened = open_data_key(&kek, envelope, context).map_err(|_| KmsError::Decrypt);
        kek.zeroize();
        opened
    }

    async fn rewrap(&self, sealed: &SealedKey, context: &[u8]) -> Result<SealedKey, KmsError> {
        let _ = context; // The envelope under K keeps its binding; only K is re-wrapped.
        check_name(&sealed.key)?;
        let (vault_ciphertext, envelope) = Self::unpack(&sealed.ciphertext)?;
        let answer = self
            .transit(
                Method::POST,
                &format!("rewrap/{}", sealed.key),
                &sealed.key,
                Some(json!({ "ciphertext": vault_ciphertext })),
            )
            .await?;
        let fresh = answer["data"]["ciphertext"].as_str().unwrap_or_default();
        let version = version_of(fresh)
            .ok_or_else(|| KmsError::Unavailable("Vault's ciphertext names no key version".into()))?;
        Ok(SealedKey {
            key: sealed.key.clone(),
            version,
            ciphertext: Self::pack(fresh, envelope)?,
        })
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError> {
        let names = match self.transit(Method::GET, "keys?list=true", "", None).await {
            Ok(answer) => answer["data"]["keys"]
                .as_array()
                .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            // Vault answers 404 for an empty list.
            Err(KmsError::KeyNotFound(_)) => Vec::new(),
            Err(err) => return Err(err),
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let versions = self.key_versions(&name).await?;
            out.push(KeyInfo {
                default: name == self.default_key,
                name,
                versions,
            });
        }
        Ok(out)
    }

    async fn key_info(&self, name: &str) -> Result<KeyInfo, KmsError> {
        Ok(KeyInfo {
            name: name.to_owned(),
            versions: self.key_versions(name).await?,
            default: name == self.default_key,
        })
    }

    async fn create_key(&self, name: &str) -> Result<(), KmsError> {
        check_name(name)?;
        match self.key_versions(name).await {
            Ok(_) => return Err(KmsError::KeyExists(name.to_owned())),
            Err(KmsError::KeyNotFound(_)) => {}
            Err(err) => return Err(err),
        }
        self.transit(
            Method::POST,
            &format!("keys/{name}"),
            name,
            Some(json!({ "type": "aes256-gcm96" })),
        )
        .await
        .map(drop)
    }

    async fn rotate_key(&self, name: &str) -> Result<u32, KmsError> {
        check_name(name)?;
        self.transit(Method::POST, &format!("keys/{name}/rotate"), name, None)
            .await?;
        self.key_versions(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_pack_and_unpack() {
        let packed = VaultKms::pack("vault:v3:abc", &[9; 65]).unwrap();
        let (vault, envelope) = VaultKms::unpack(&packed).unwrap();
        assert_eq!((vault, envelope), ("vault:v3:abc", &[9u8; 65][..]));
        assert_eq!(version_of(vault), Some(3));
        assert_eq!(version_of("vault:x:abc"), None);
        assert!(VaultKms::unpack(&[2, 0, 0]).is_err());
        assert!(VaultKms::unpack(&[1, 0, 9, b'v']).is_err());
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let config = VaultConfig {
            endpoint: Endpoint {
                url: "https://127.0.0.1:8200".into(),
                ..Default::default()
            },
            token: "s.supersecret".into(),
            mount: String::new(),
            default_key: "k".into(),
            namespace: None,
        };
        assert!(!format!("{config:?}").contains("supersecret"));
        let kms = VaultKms::new(config).unwrap();
        assert!(!format!("{kms:?}").contains("supersecret"));
        assert_eq!(kms.mount, "transit");
    }
}
