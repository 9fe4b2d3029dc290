//! The built-in KMS: named 256-bit keys with versions, from a keyring file (which can be a
//! Kubernetes Secret mounted as a file) or from one `name:base64` specification
//! (`STRATA_KMS_SECRET_KEY`, the simplest setup).
//!
//! Keyring file (JSON; versions oldest first, each 32 bytes in base64):
//!
//! ```json
//! { "default": "objects", "keys": { "objects": ["<base64>", "<base64>"], "backups": ["<base64>"] } }
//! ```
//!
//! Creating and rotating keys rewrite the file (written to a temporary file and renamed, so a
//! crash leaves the old or the new keyring, never half of one); a keyring from a specification
//! or a read-only file cannot change. Losing the keyring loses every object sealed with it:
//! keep a copy of it where the data is not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::RwLock;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use strata_sse::{DataKey, open_data_key, seal_data_key};
use zeroize::Zeroize;

use crate::{KeyInfo, Kms, KmsError, SealedKey};

const KEY_BYTES: usize = 32;

/// One version of a key's material; zeroed when dropped, never printed.
struct Material([u8; KEY_BYTES]);

impl Drop for Material {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Material {
    fn random() -> Result<Material, KmsError> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KmsError::Unavailable("no randomness available".into()))?;
        Ok(Material(bytes))
    }

    fn from_base64(text: &str) -> Result<Material, KmsError> {
        let bytes = base64_simd::STANDARD
            .decode_to_vec(text.trim().as_bytes())
            .map_err(|_| KmsError::Config("a key is not valid base64".into()))?;
        let array: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KmsError::Config(format!("a key must be {KEY_BYTES} bytes")))?;
        let mut bytes = bytes;
        bytes.zeroize();
        Ok(Material(array))
    }

    fn to_base64(&self) -> String {
        base64_simd::STANDARD.encode_to_string(self.0)
    }
}

/// Why a read-only keyring refuses changes.
const READ_ONLY: &str = "this keyring is read-only (one key from STRATA_KMS_SECRET_KEY, or a deployment of several nodes: change the keyring file every node mounts and restart them)";

/// The keyring file's form.
#[derive(Serialize, Deserialize)]
struct KeyringFile {
    default: String,
    keys: BTreeMap<String, Vec<String>>,
}

/// The built-in KMS.
pub struct BuiltinKms {
    keys: RwLock<BTreeMap<String, Vec<Material>>>,
    default: String,
    /// The keyring file, when changes are to be written back.
    file: Option<PathBuf>,
}

impl std::fmt::Debug for BuiltinKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .keys
            .read()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("BuiltinKms")
            .field("keys", &names)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

fn check_name(name: &str) -> Result<(), KmsError> {
    crate::check_key_name(name, 64)
}

impl BuiltinKms {
    /// One key from `name:base64` (32 bytes), read-only.
    pub fn from_secret_key(spec: &str) -> Result<BuiltinKms, KmsError> {
        let (name, key) = spec
            .split_once(':')
            .ok_or_else(|| KmsError::Config("expected name:base64".into()))?;
        check_name(name)?;
        let mut keys = BTreeMap::new();
        keys.insert(name.to_owned(), vec![Material::from_base64(key)?]);
        Ok(BuiltinKms {
            keys: RwLock::new(keys),
            default: name.to_owned(),
            file: None,
        })
    }

    /// The keys of a keyring file; `writable`: creating and rotating keys rewrite it.
    pub fn from_keyring_file(path: impl Into<PathBuf>, writable: bool) -> Result<BuiltinKms, KmsError> {
        let path = path.into();
        let text = std::fs::read_to_string(&path)
            .map_err(|err| KmsError::Config(format!("cannot read the keyring {}: {err}", path.display())))?;
        let file: KeyringFile = serde_json::from_str(&text)
            .map_err(|err| KmsError::Config(format!("the keyring {} is not valid: {err}", path.display())))?;
        let mut keys = BTreeMap::new();
        for (name, versions) in &file.keys {
            check_name(name)?;
            if versions.is_empty() {
                return Err(KmsError::Config(format!("key {name:?} has no versions")));
            }
            let materials = versions
                .iter()
                .map(|v| Material::from_base64(v))
                .collect::<Result<Vec<_>, _>>()?;
            keys.insert(name.clone(), materials);
        }
        if !keys.contains_key(&file.default) {
            return Err(KmsError::Config(format!(
                "the default key {:?} is not in the keyring",
                file.default
            )));
        }
        Ok(BuiltinKms {
            keys: RwLock::new(keys),
            default: file.default,
            file: writable.then_some(path),
        })
    }

    /// Writes the keyring back (temporary file, then rename).
    fn save(&self, keys: &BTreeMap<String, Vec<Material>>) -> Result<(), KmsError> {
        let Some(path) = &self.file else {
            return Err(KmsError::Unsupported(READ_ONLY));
        };
        let file = KeyringFile {
            default: self.default.clone(),
            keys: keys
                .iter()
                .map(|(name, versions)| (name.clone(), versions.iter().map(Material::to_base64).collect()))
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&file)
            .map_err(|err| KmsError::Config(format!("cannot encode the keyring: {err}")))?;
        let tmp = path.with_extension("tmp");
        let written = write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, path));
        text.zeroize();
        written.map_err(|err| {
            KmsError::Unavailable(format!("cannot write the keyring {}: {err}", path.display()))
        })
    }

    /// The keys, locked for a change that [`Self::save`] will write back; refused for a
    /// read-only keyring.
    fn keys_to_change(
        &self,
    ) -> Result<std::sync::RwLockWriteGuard<'_, BTreeMap<String, Vec<Material>>>, KmsError> {
        if self.file.is_none() {
            return Err(KmsError::Unsupported(READ_ONLY));
        }
        self.keys
            .write()
            .map_err(|_| KmsError::Unavailable("the keyring lock is poisoned".into()))
    }

    fn with_key<T>(
        &self,
        name: &str,
        f: impl FnOnce(&[Material]) -> Result<T, KmsError>,
    ) -> Result<T, KmsError> {
        let keys = self
            .keys
            .read()
            .map_err(|_| KmsError::Unavailable("the keyring lock is poisoned".into()))?;
        let versions = keys
            .get(name)
            .ok_or_else(|| KmsError::KeyNotFound(name.to_owned()))?;
        f(versions)
    }
}

/// Writes `bytes` to a new file readable by its owner only, synced.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[async_trait::async_trait]
impl Kms for BuiltinKms {
    fn backend(&self) -> &'static str {
        "builtin"
    }

    fn default_key(&self) -> &str {
        &self.default
    }

    async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError> {
        self.with_key(&sealed.key, |versions| {
            let material = usize::try_from(sealed.version)
                .ok()
                .and_then(|v| v.checked_sub(1))
                .and_then(|idx| versions.get(idx))
                .ok_or_else(|| KmsError::VersionNotFound {
                    name: sealed.key.clone(),
                    version: sealed.version,
                })?;
            open_data_key(&material.0, &sealed.ciphertext, context).map_err(|_| KmsError::Decrypt)
        })
    }

    async fn encrypt_data_key(
        &self,
        key: &str,
        plaintext: &DataKey,
        context: &[u8],
    ) -> Result<SealedKey, KmsError> {
        let (version, ciphertext) = self.with_key(key, |versions| {
            let newest = versions
                .last()
                .ok_or_else(|| KmsError::KeyNotFound(key.to_owned()))?;
            let sealed = seal_data_key(&newest.0, plaintext, context)
                .map_err(|_| KmsError::Unavailable("sealing failed".into()))?;
            Ok((u32::try_from(versions.len()).unwrap_or(u32::MAX), sealed))
        })?;
        Ok(SealedKey {
            key: key.to_owned(),
            version,
            ciphertext,
        })
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError> {
        let keys = self
            .keys
            .read()
            .map_err(|_| KmsError::Unavailable("the keyring lock is poisoned".into()))?;
        Ok(keys
            .iter()
            .map(|(name, versions)| KeyInfo {
                name: name.clone(),
                versions: u32::try_from(versions.len()).unwrap_or(u32::MAX),
                default: *name == self.default,
            })
            .collect())
    }

    async fn create_key(&self, name: &str) -> Result<(), KmsError> {
        check_name(name)?;
        let mut keys = self.keys_to_change()?;
        if keys.contains_key(name) {
            return Err(KmsError::KeyExists(name.to_owned()));
        }
        keys.insert(name.to_owned(), vec![Material::random()?]);
        if let Err(err) = self.save(&keys) {
            keys.remove(name);
            return Err(err);
        }
        Ok(())
    }

    async fn rotate_key(&self, name: &str) -> Result<u32, KmsError> {
        let mut keys = self.keys_to_change()?;
        let versions = keys
            .get_mut(name)
            .ok_or_else(|| KmsError::KeyNotFound(name.to_owned()))?;
        versions.push(Material::random()?);
        let version = u32::try_from(versions.len()).unwrap_or(u32::MAX);
        if let Err(err) = self.save(&keys) {
            if let Some(versions) = keys.get_mut(name) {
                versions.pop();
            }
            return Err(err);
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[tokio::test]
    async fn generated_keys_open_with_their_context_only() {
        let kms = BuiltinKms::from_secret_key(&format!("main:{KEY_A}")).unwrap();
        assert_eq!(kms.default_key(), "main");
        let generated = kms.generate_data_key(None, b"bucket/key").await.unwrap();
        assert_eq!(
            (generated.sealed.key.as_str(), generated.sealed.version),
            ("main", 1)
        );
        // The data key round-trips: a part sealed with it opens with the decrypted key.
        let (header, part) =
            strata_sse::PartSealer::seal_all(&generated.plaintext, 1, strata_sse::Cipher::Aes256Gcm, b"data")
                .unwrap();
        let opened = kms
            .decrypt_data_key(&generated.sealed, b"bucket/key")
            .await
            .unwrap();
        assert_eq!(
            strata_sse::PartOpener::open_all(&opened, 1, &header, &part).unwrap(),
            b"data"
        );
        assert_eq!(
            kms.decrypt_data_key(&generated.sealed, b"bucket/other")
                .await
                .err(),
            Some(KmsError::Decrypt)
        );
        assert_eq!(
            kms.generate_data_key(Some("missing"), b"x").await.err(),
            Some(KmsError::KeyNotFound("missing".into()))
        );
        assert_eq!(
            kms.create_key("new").await.err(),
            Some(KmsError::Unsupported(READ_ONLY))
        );
        // No key material in Debug.
        assert!(!format!("{kms:?}").contains(KEY_A));
    }

    #[test]
    fn specifications_are_checked() {
        for bad in [
            "nocolon",
            ":AAAA",
            "bad name:AAAA",
            &format!("k:{}", &KEY_A[..20]),
            "k:!!!",
        ] {
            assert!(
                matches!(BuiltinKms::from_secret_key(bad), Err(KmsError::Config(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn keyring_files_create_and_rotate_keys_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        std::fs::write(
            &path,
            format!(r#"{{"default": "main", "keys": {{"main": ["{KEY_A}"]}}}}"#),
        )
        .unwrap();
        let kms = BuiltinKms::from_keyring_file(&path, true).unwrap();
        let old = kms.generate_data_key(None, b"ctx").await.unwrap();
        assert_eq!(kms.rotate_key("main").await.unwrap(), 2);
        let new = kms.generate_data_key(None, b"ctx").await.unwrap();
        assert_eq!(new.sealed.version, 2);
        kms.create_key("backups").await.unwrap();
        assert_eq!(
            kms.create_key("backups").await.err(),
            Some(KmsError::KeyExists("backups".into()))
        );
        // A restart reads what was written: both versions still open what they sealed.
        let reopened = BuiltinKms::from_keyring_file(&path, false).unwrap();
        assert!(reopened.decrypt_data_key(&old.sealed, b"ctx").await.is_ok());
        assert!(reopened.decrypt_data_key(&new.sealed, b"ctx").await.is_ok());
        // Rewrapping moves a data key to the newest version without changing it.
        let rewrapped = reopened.rewrap(&old.sealed, b"ctx").await.unwrap();
        assert_eq!((rewrapped.key.as_str(), rewrapped.version), ("main", 2));
        let (header, part) =
            strata_sse::PartSealer::seal_all(&old.plaintext, 1, strata_sse::Cipher::Aes256Gcm, b"data")
                .unwrap();
        let opened = reopened.decrypt_data_key(&rewrapped, b"ctx").await.unwrap();
        assert_eq!(
            strata_sse::PartOpener::open_all(&opened, 1, &header, &part).unwrap(),
            b"data"
        );
        assert!(reopened.rewrap(&old.sealed, b"other").await.is_err());
        let listed = reopened.list_keys().await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|k| (k.name.as_str(), k.versions, k.default))
                .collect::<Vec<_>>(),
            [("backups", 1, false), ("main", 2, true)]
        );
        let missing = SealedKey {
            version: 9,
            ..old.sealed.clone()
        };
        assert!(matches!(
            reopened.decrypt_data_key(&missing, b"ctx").await,
            Err(KmsError::VersionNotFound { .. })
        ));
        // A default that is not in the keyring, or a short key, is refused at start.
        std::fs::write(
            &path,
            format!(r#"{{"default": "x", "keys": {{"main": ["{KEY_A}"]}}}}"#),
        )
        .unwrap();
        assert!(matches!(
            BuiltinKms::from_keyring_file(&path, false),
            Err(KmsError::Config(_))
        ));
    }
}
