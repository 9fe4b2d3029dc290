//! [`SystemStore`]: where IAM keeps its records, and an in-memory implementation for tests.
//!
//! The object layer implements the trait over its system records (namespace `iam`): one
//! record per entity, committed on every erasure set, read back by quorum, with a change
//! notice to every other node after each change.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;

/// A held lock on the IAM namespace; dropping it releases the lock.
pub type StoreGuard = Box<dyn Send + Sync>;

/// Persistent, deployment-wide storage of IAM records.
#[async_trait::async_trait]
pub trait SystemStore: Send + Sync + std::fmt::Debug {
    /// Stores one record.
    async fn put(&self, key: &str, value: Bytes) -> Result<(), String>;
    /// Removes one record (absent is fine).
    async fn delete(&self, key: &str) -> Result<(), String>;
    /// Every record, sorted by key.
    async fn list(&self) -> Result<Vec<(String, Bytes)>, String>;
    /// Takes the deployment-wide lock for a read-modify-write of the records.
    async fn lock(&self) -> Result<StoreGuard, String>;
    /// Tells the other nodes that records changed.
    async fn announce(&self);
}

/// Records in memory: for tests, and for nothing else.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<String, Bytes>>,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl MemoryStore {
    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        match self.records.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A copy of one record's bytes (tests look at what was stored).
    pub fn raw(&self, key: &str) -> Option<Bytes> {
        self.records().get(key).cloned()
    }
}

#[async_trait::async_trait]
impl SystemStore for MemoryStore {
    async fn put(&self, key: &str, value: Bytes) -> Result<(), String> {
        self.records().insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.records().remove(key);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<(String, Bytes)>, String> {
        Ok(self
            .records()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn lock(&self) -> Result<StoreGuard, String> {
        Ok(Box::new(std::sync::Arc::clone(&self.lock).lock_owned().await))
    }

    async fn announce(&self) {}
}
