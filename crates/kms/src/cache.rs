//! A bounded, short-lived cache of opened data keys in front of a remote KMS, so that reading an
//! object again does not cost a KMS round trip each time, and a KMS that has a bad minute does
//! not fail the reads of objects read moments ago.
//!
//! Invariants: an entry is never used after [`CachingKms::new`]'s `ttl` (default
//! [`DEFAULT_TTL`]) from the KMS answer that filled it; at most `max_entries` keys are held
//! (zeroed when dropped); entries are found by a digest of the sealed key and its context, so a
//! sealed key presented with another context never hits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::digest;

use crate::{DataKey, GeneratedKey, KeyInfo, Kms, KmsError, SealedKey};

/// How long an opened data key is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// How many opened data keys are held at most.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

type Entries = HashMap<[u8; 32], (Instant, DataKey)>;

/// A KMS with a cache of opened data keys.
pub struct CachingKms {
    inner: Arc<dyn Kms>,
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<Entries>,
}

impl std::fmt::Debug for CachingKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingKms")
            .field("inner", &self.inner)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn cache_key(sealed: &SealedKey, context: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [sealed.key.as_bytes(), &sealed.ciphertext, context] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part);
    }
    ctx.update(&sealed.version.to_le_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl CachingKms {
    /// `inner` with opened keys reused for `ttl`, at most `max_entries` at a time.
    pub fn new(inner: Arc<dyn Kms>, ttl: Duration, max_entries: usize) -> CachingKms {
        CachingKms {
            inner,
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[async_trait::async_trait]
impl Kms for CachingKms {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn default_key(&self) -> &str {
        self.inner.default_key()
    }

    async fn generate_data_key(&self, key: Option<&str>, context: &[u8]) -> Result<GeneratedKey, KmsError> {
        self.inner.generate_data_key(key, context).await
    }

    async fn encrypt_data_key(
        &self,
        key: &str,
        plaintext: &DataKey,
        context: &[u8],
    ) -> Result<SealedKey, KmsError> {
        self.inner.encrypt_data_key(key, plaintext, context).await
    }

    async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError> {
        let id = cache_key(sealed, context);
        if let Some((at, key)) = self.entries().get(&id)
            && at.elapsed() < self.ttl
        {
            return Ok(key.clone());
        }
        let key = self.inner.decrypt_data_key(sealed, context).await?;
        let mut entries = self.entries();
        if entries.len() >= self.max_entries {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(id, (Instant::now(), key.clone()));
        Ok(key)
    }

    async fn rewrap(&self, sealed: &SealedKey, context: &[u8]) -> Result<SealedKey, KmsError> {
        self.inner.rewrap(sealed, context).await
    }

    async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError> {
        self.inner.list_keys().await
    }

    async fn key_info(&self, name: &str) -> Result<KeyInfo, KmsError> {
        self.inner.key_info(name).await
    }

    async fn create_key(&self, name: &str) -> Result<(), KmsError> {
        self.inner.create_key(name).await
    }

    async fn rotate_key(&self, name: &str) -> Result<u32, KmsError> {
        self.inner.rotate_key(name).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts the calls that reach the backend.
    #[derive(Debug)]
    struct Counting {
        inner: crate::BuiltinKms,
        decrypts: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Kms for Counting {
        fn backend(&self) -> &'static str {
            "counting"
        }
        fn default_key(&self) -> &str {
            self.inner.default_key()
        }
        async fn generate_data_key(
            &self,
            key: Option<&str>,
            context: &[u8],
        ) -> Result<GeneratedKey, KmsError> {
            self.inner.generate_data_key(key, context).await
        }
        async fn encrypt_data_key(
            &self,
            key: &str,
            plaintext: &DataKey,
            context: &[u8],
        ) -> Result<SealedKey, KmsError> {
            self.inner.encrypt_data_key(key, plaintext, context).await
        }
        async fn decrypt_data_key(&self, sealed: &SealedKey, context: &[u8]) -> Result<DataKey, KmsError> {
            self.decrypts.fetch_add(1, Ordering::SeqCst);
            self.inner.decrypt_data_key(sealed, context).await
        }
        async fn list_keys(&self) -> Result<Vec<KeyInfo>, KmsError> {
            self.inner.list_keys().await
        }
        async fn create_key(&self, name: &str) -> Result<(), KmsError> {
            self.inner.create_key(name).await
        }
        async fn rotate_key(&self, name: &str) -> Result<u32, KmsError> {
            self.inner.rotate_key(name).await
        }
    }

    #[tokio::test]
    async fn opened_keys_are_reused_for_a_bounded_time_and_never_across_contexts() {
        let backend = Arc::new(Counting {
            inner: crate::BuiltinKms::from_secret_key("k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
                .unwrap(),
            decrypts: AtomicUsize::new(0),
        });
        let kms = CachingKms::new(backend.clone(), Duration::from_millis(200), 2);
        let a = kms.generate_data_key(None, b"a").await.unwrap();
        let b = kms.generate_data_key(None, b"b").await.unwrap();
        for _ in 0..3 {
            kms.decrypt_data_key(&a.sealed, b"a").await.unwrap();
        }
        assert_eq!(backend.decrypts.load(Ordering::SeqCst), 1);
        // Another context does not hit (and fails at the backend).
        assert!(kms.decrypt_data_key(&a.sealed, b"b").await.is_err());
        assert_eq!(backend.decrypts.load(Ordering::SeqCst), 2);
        kms.decrypt_data_key(&b.sealed, b"b").await.unwrap();
        assert_eq!(backend.decrypts.load(Ordering::SeqCst), 3);
        // After the time-to-live the backend is asked again.
        tokio::time::sleep(Duration::from_millis(250)).await;
        kms.decrypt_data_key(&a.sealed, b"a").await.unwrap();
        assert_eq!(backend.decrypts.load(Ordering::SeqCst), 4);
        assert!(kms.entries().len() <= 2);
    }
}
