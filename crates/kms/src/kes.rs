//! MinIO KES as the KMS, for deployments that already run it: KES's HTTP API over mutual TLS
//! (KES identifies clients by their certificate). KES seals data keys itself and binds the
//! encryption context, so the stored ciphertext is KES's own. KES keys have no versions:
//! every key is version 1, and rotating means creating a new key and making it the default.

use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use strata_sse::DataKey;
use zeroize::Zeroize as _;

use crate::https::{Endpoint, JsonClient};
use crate::{GeneratedKey, KeyInfo, Kms, KmsError, SealedKey};

/// KES settings.
#[derive(Clone, Debug, Default)]
pub struct KesConfig {
    /// Where KES listens (`https://HOST:7373`), its CA, and Strata's client certificate.
    pub endpoint: Endpoint,
    /// The key used when a request names none.
    pub default_key: String,
}

/// The KES backend.
#[derive(Debug)]
pub struct KesKms {
    client: JsonClient,
    default_key: String,
}

fn b64(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

fn check_name(name: &str) -> Result<(), KmsError> {
    crate::check_key_name(name, 128)
}

fn data_key(answer: &Value) -> Result<DataKey, KmsError> {
    let mut plain = base64_simd::STANDARD
        .decode_to_vec(answer["plaintext"].as_str().unwrap_or_default())
        .map_err(|_| KmsError::Decrypt)?;
    let key = <[u8; 32]>::try_from(plain.as_slice())
        .map(DataKey::from_bytes)
        .map_err(|_| KmsError::Decrypt);
    plain.zeroize();
    key
}

impl KesKms {
    /// A client of the KES server (no call is made until a key is used).
    pub fn new(config: KesConfig) -> Result<KesKms, KmsError> {
        check_name(&config.default_key)?;
        if config.endpoint.client_cert.is_none() {
            return Err(KmsError::Config(
                "KES authenticates clients by certificate: a client certificate and key are required".into(),
            ));
        }
        Ok(KesKms {
            client: JsonClient::new(&config.endpoint)?,
            default_key: config.default_key,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<Value, KmsError> {
        let (status, answer) = self
            .client
            .call(method, path, &HeaderMap::new(), body.as_ref())
            .await?;
        if status.is_success() {
            return Ok(answer);
        }
        let message = answer["message"].as_str().unwrap_or("no message").to_owned();
        match status {
            StatusCode::NOT_FOUND => Err(KmsError::KeyNotFound(key.to_owned())),
            StatusCode::CONFLICT => Err(KmsError::KeyExists(key.to_owned())),
            StatusCode::TOO_MANY_REQUESTS => Err(KmsError::Unavailable(format!("KES: {message}"))),
            _ => Err(KmsError::Config(format!("KES refused ({status}): {message}"))),
        }
    }
}

#[async_trait::async_trait]
impl Kms for KesKms {
    fn backend(&self) -> &'static str {
        "kes"
    }

    fn default_key(&self) -> &str {
        &self.default_key
    }

    async fn generate_data_key(&self, key: Option<&str>, context: &[u8]) -> Result<GeneratedKey, KmsError> {
        let name = key.unwrap_or(&self.default_key);
        check_name(name)?;
        let answer = self
            .call(
                Method::POST,
                &format!("/v1/key/generate/{name}"),
                name,
                Some(json!({ "context": b64(context) })),
            )
            .await?;
        let ciphertext = base64_simd::STANDARD
            .decode_to_vec(answer["ciphertext"].as_str().unwrap_or_default())
            .map_err(|_| KmsError::Unavailable("KES's ciphertext is not base64".into()))?;
        Ok(GeneratedKey {
            plaintext: data_key(&answer)
                .map_err(|_| KmsError::Unavailable("KES's data key is not 256 bits".into()))?,
            sealed: SealedKey {
                key: name.to_owned(),
                version: 1,
                ciphertext,
            },
        })
    }

    async fn encrypt_data_key(
        &self,
        key: &str,
        plaintext: &DataKey,
        context: &[u8],
    ) -> Result<SealedKey, KmsError> {
        check_name(key)?;
        // KES encrypts what it is given (the data key leaves Strata only to KES, over TLS).
        let answer = self
            .call(
                Method::POST,
                &format!("/v1/key/encrypt/{key}"),
                key,
                Some(json!({ "plaintext": b64(plaintext.expose_for_wrapping()), "context": b64(context) })),
            )
            .await?;
        let ciphertext = base64_simd::STANDARD
            .decode_to_vec(answer["ciphertext"].as_str().unwrap_or_default())
            .map_err(|_| KmsError::Unavailable("KES's ciphertext is not base64".into()))?;
        Ok(SealedKey {
            key: key.to_owned(),
            version: 1,
            ciphertext,
        })
    }

    async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError> {
        check_name(&sealed.key)?;
        let answer = self
            .call(
                Method::POST,
                &format!("/v1/key/decrypt/{}", sealed.key),
                &sealed.key,
                Some(json!({ "ciphertext": b64(&sealed.ciphertext), "context": b64(context) })),
            )
            .await
            .map_err(|err| match err {
                // KES refuses a ciphertext or context that does not open with 400.
                KmsError::Config(_) => KmsError::Decrypt,
                other => other,
            })?;
        data_key(&answer)
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError> {
        let answer = self.call(Method::GET, "/v1/key/list/*", "*", None).await?;
        let names: Vec<String> = match answer.get("names").and_then(Value::as_array) {
            Some(names) => names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            None => Vec::new(),
        };
        Ok(names
            .into_iter()
            .map(|name| KeyInfo {
                default: name == self.default_key,
                name,
                versions: 1,
            })
            .collect())
    }

    async fn create_key(&self, name: &str) -> Result<(), KmsError> {
        check_name(name)?;
        self.call(Method::POST, &format!("/v1/key/create/{name}"), name, None)
            .await
            .map(drop)
    }

    async fn rotate_key(&self, _name: &str) -> Result<u32, KmsError> {
        Err(KmsError::Unsupported(
            "KES keys do not rotate: create a new key and make it the default",
        ))
    }
}
