//! The deployment's remote tiers ([`Tiers`]): their configurations (system records
//! `tier/<NAME>`, reloaded on every node when one changes), their clients, the object layer's
//! [`RemoteTiers`] hook over them, and the worker that empties the remote-delete journal.
//!
//! Journal worker: every [`JOURNAL_POLL`] (at once when woken), for each entry due (a deletion
//! at once, an intent once older than [`TierSettings::intent_age`]): an object no version
//! names is deleted and the entry dropped; an object a version still names is kept, and its
//! entry dropped once older than the same age (a deletion is journaled before its records go,
//! so a younger one may be a removal in flight). A tier that is down keeps its entries for the next round. In a cluster one node
//! works the journal at a time (the `tier-journal` job lock).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use strata_object::{ListVersionsOptions, ObjectError, ObjectLayer, PutStream, RemoteTiers, Settled};

use crate::TierError;
use crate::config::{Credentials, TierConfig, TierInfo};
use crate::store::TierStore;

/// The system namespace of tier configurations.
pub const TIER_NAMESPACE: &str = "tier";
/// How often the journal is looked at without a wake-up.
pub const JOURNAL_POLL: Duration = Duration::from_secs(10);
/// The job lock of the journal worker.
const JOURNAL_JOB: &str = "tier-journal";

/// How the tiers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierSettings {
    /// Age after which a transition's intent (left by a crash) is handled as a deletion, and
    /// an entry whose object a version still names is dropped.
    pub intent_age: Duration,
}

impl Default for TierSettings {
    fn default() -> Self {
        TierSettings {
            intent_age: Duration::from_secs(3600),
        }
    }
}

/// Objects and bytes a tier holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierUsage {
    /// Versions whose data is there.
    pub objects: u64,
    /// Their stored bytes.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    remote_deletes: AtomicU64,
    journal_failures: AtomicU64,
    reads: AtomicU64,
    uploads: AtomicU64,
    errors: AtomicU64,
}

/// The deployment's remote tiers.
#[derive(Debug)]
pub struct Tiers {
    layer: Weak<ObjectLayer>,
    settings: TierSettings,
    stores: RwLock<BTreeMap<String, Arc<TierStore>>>,
    counters: Counters,
    backlog: AtomicU64,
    /// The configurations were read at least once (until then no tier is known, and the
    /// journal must not take that for "removed").
    loaded: std::sync::atomic::AtomicBool,
}

impl Tiers {
    /// Loads the tiers (retrying in the background while the deployment has no read quorum
    /// yet), hands the layer its hook, and starts the reload and journal tasks.
    pub async fn start(layer: &Arc<ObjectLayer>, settings: TierSettings) -> Result<Arc<Tiers>, TierError> {
        // reqwest's TLS takes the process's rustls provider: ring, as everywhere here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tiers = Arc::new(Tiers {
            layer: Arc::downgrade(layer),
            settings,
            stores: RwLock::new(BTreeMap::new()),
            counters: Counters::default(),
            backlog: AtomicU64::new(0),
            loaded: std::sync::atomic::AtomicBool::new(false),
        });
        // Other nodes may still be starting (no read quorum yet): the tiers load once they can,
        // as IAM does; until then their versions answer 503 and transitions to them wait.
        if let Err(err) = tiers.reload().await {
            tracing::warn!(%err, "remote tiers not readable yet; retrying");
            let weak = Arc::downgrade(&tiers);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let Some(tiers) = weak.upgrade() else { return };
                    match tiers.reload().await {
                        Ok(()) => {
                            tracing::info!("remote tiers loaded");
                            return;
                        }
                        Err(err) => tracing::debug!(%err, "remote tiers still not readable"),
                    }
                }
            });
        }
        layer.set_remote_tiers(Arc::clone(&tiers) as Arc<dyn RemoteTiers>);
        let weak = Arc::downgrade(&tiers);
        let mut changes = layer.system_changes();
        tokio::spawn(async move {
            loop {
                let reload = match changes.recv().await {
                    Ok(namespace) => namespace == TIER_NAMESPACE,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(tiers) = weak.upgrade() else { return };
                if reload && let Err(err) = tiers.reload().await {
                    tracing::warn!(%err, "reloading the tiers failed");
                }
            }
        });
        let weak = Arc::downgrade(&tiers);
        tokio::spawn(async move {
            loop {
                let Some(tiers) = weak.upgrade() else { return };
                let Some(layer) = tiers.layer.upgrade() else {
                    return;
                };
                tiers.work_journal(&layer).await;
                drop(tiers);
                let wakeup = layer.tier_journal_wakeup();
                let _ = tokio::time::timeout(JOURNAL_POLL, wakeup.notified()).await;
            }
        });
        Ok(tiers)
    }

    fn layer(&self) -> Result<Arc<ObjectLayer>, TierError> {
        self.layer.upgrade().ok_or(TierError::ShuttingDown)
    }

    fn store(&self, tier: &str) -> Option<Arc<TierStore>> {
        match self.stores.read() {
            Ok(stores) => stores.get(tier).cloned(),
            Err(poisoned) => poisoned.into_inner().get(tier).cloned(),
        }
    }

    async fn configs(&self) -> Result<BTreeMap<String, TierConfig>, TierError> {
        let layer = self.layer()?;
        let mut out = BTreeMap::new();
        for (name, blob) in layer.list_system_records(TIER_NAMESPACE).await? {
            match serde_json::from_slice::<TierConfig>(&blob) {
                Ok(config) => {
                    out.insert(name, config);
                }
                Err(err) => {
                    tracing::error!(tier = %name, %err, "a stored tier configuration does not decode")
                }
            }
        }
        Ok(out)
    }

    /// Reads the configurations again and reconnects the tiers that changed.
    pub async fn reload(&self) -> Result<(), TierError> {
        let configs = self.configs().await?;
        let mut next = BTreeMap::new();
        for (name, config) in configs {
            if let Some(existing) = self.store(&name)
                && *existing.config() == config
            {
                next.insert(name, existing);
                continue;
            }
            match TierStore::connect(&config) {
                Ok(store) => {
                    next.insert(name, Arc::new(store));
                }
                Err(err) => tracing::error!(tier = %name, %err, "cannot set up a tier"),
            }
        }
        let mut stores = match self.stores.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *stores = next;
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// The tiers, without secrets.
    pub fn list(&self) -> Vec<TierInfo> {
        let stores = match self.stores.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        stores.values().map(|s| s.config().public()).collect()
    }

    /// Adds a tier after checking that it answers (unless `skip_verify`).
    pub async fn add(&self, config: TierConfig, skip_verify: bool) -> Result<(), TierError> {
        config.validate()?;
        let layer = self.layer()?;
        if layer.storage_class_exists(&config.name) {
            return Err(TierError::Invalid(format!(
                "{} is a storage class of this deployment; a tier needs another name",
                config.name
            )));
        }
        let store = TierStore::connect(&config)?;
        if !skip_verify {
            store.verify().await?;
        }
        let _lock = layer.lock_system(TIER_NAMESPACE).await?;
        if self.configs().await?.contains_key(&config.name) {
            return Err(TierError::Exists(config.name));
        }
        self.save(&layer, &config).await
    }

    /// Replaces a tier's credentials (checked first, unless `skip_verify`).
    pub async fn edit(&self, name: &str, creds: Credentials, skip_verify: bool) -> Result<(), TierError> {
        let layer = self.layer()?;
        let _lock = layer.lock_system(TIER_NAMESPACE).await?;
        let config = self
            .configs()
            .await?
            .remove(name)
            .ok_or_else(|| TierError::NotFound(name.to_owned()))?
            .with_credentials(creds)?;
        if !skip_verify {
            TierStore::connect(&config)?.verify().await?;
        }
        self.save(&layer, &config).await
    }

    async fn save(&self, layer: &ObjectLayer, config: &TierConfig) -> Result<(), TierError> {
        let blob = serde_json::to_vec(config).map_err(|e| TierError::Invalid(e.to_string()))?;
        layer
            .put_system_record(TIER_NAMESPACE, &config.name, Bytes::from(blob))
            .await?;
        layer.announce_system_change(TIER_NAMESPACE).await;
        self.reload().await
    }

    /// Removes a tier; refused while a version's data is there, unless `force` (those
    /// versions then cannot be read).
    pub async fn remove(&self, name: &str, force: bool) -> Result<(), TierError> {
        let layer = self.layer()?;
        if !self.configs().await?.contains_key(name) {
            return Err(TierError::NotFound(name.to_owned()));
        }
        if !force {
            let usage = self.usage().await?;
            if let Some(used) = usage.get(name).filter(|u| u.objects > 0) {
                return Err(TierError::InUse {
                    tier: name.to_owned(),
                    objects: used.objects,
                });
            }
        }
        let _lock = layer.lock_system(TIER_NAMESPACE).await?;
        layer.delete_system_record(TIER_NAMESPACE, name).await?;
        layer.announce_system_change(TIER_NAMESPACE).await;
        self.reload().await
    }

    /// Checks that a tier answers.
    pub async fn verify(&self, name: &str) -> Result<(), TierError> {
        let store = self
            .store(name)
            .ok_or_else(|| TierError::NotFound(name.to_owned()))?;
        store.verify().await
    }

    /// Objects and bytes in each tier, counted over every version of every bucket.
    pub async fn usage(&self) -> Result<BTreeMap<String, TierUsage>, TierError> {
        let layer = self.layer()?;
        let mut usage: BTreeMap<String, TierUsage> = self
            .list()
            .into_iter()
            .map(|t| (t.name, TierUsage::default()))
            .collect();
        for bucket in layer.list_buckets().await? {
            let (mut key_marker, mut version_marker) = (None, None);
            loop {
                let opts = ListVersionsOptions {
                    key_marker,
                    version_id_marker: version_marker,
                    max_keys: 1000,
                    ..Default::default()
                };
                let page = match layer.list_object_versions(&bucket.name, opts).await {
                    Ok(page) => page,
                    Err(ObjectError::NoSuchBucket { .. }) => break,
                    Err(err) => return Err(err.into()),
                };
                for v in &page.versions {
                    if let Some(tier) = &v.remote_tier {
                        let entry = usage.entry(tier.clone()).or_default();
                        entry.objects += 1;
                        entry.bytes += v.stored_size;
                    }
                }
                if !page.is_truncated {
                    break;
                }
                key_marker = page.next_key_marker;
                version_marker = page.next_version_id_marker;
            }
        }
        Ok(usage)
    }

    /// Journal entries waiting (as of the worker's last round).
    pub fn journal_backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Counters for the metrics: `(family, label, value)`.
    pub fn metric_values(&self) -> Vec<(&'static str, &'static str, u64)> {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            ("strata_tier_operations_total", "upload", get(&c.uploads)),
            ("strata_tier_operations_total", "read", get(&c.reads)),
            (
                "strata_tier_operations_total",
                "remote_delete",
                get(&c.remote_deletes),
            ),
            ("strata_tier_errors_total", "", get(&c.errors)),
            ("strata_tier_journal_failures_total", "", get(&c.journal_failures)),
            ("strata_tier_journal_backlog", "", self.journal_backlog()),
        ]
    }

    /// One round over the journal (none before the tiers are loaded).
    async fn work_journal(&self, layer: &Arc<ObjectLayer>) {
        if !self.loaded.load(Ordering::Acquire) {
            return;
        }
        let entries = match layer.tier_journal().await {
            Ok(entries) => entries,
            Err(err) => {
                tracing::debug!(%err, "cannot read the tier journal");
                return;
            }
        };
        self.backlog.store(entries.len() as u64, Ordering::Relaxed);
        if entries.is_empty() {
            return;
        }
        let Some(_lease) = layer.lead_job(JOURNAL_JOB).await else {
            return;
        };
        let mut left = entries.len() as u64;
        for entry in entries {
            match layer.settle_journal_entry(&entry, self.settings.intent_age).await {
                Ok(Settled::Deleted) => {
                    self.counters.remote_deletes.fetch_add(1, Ordering::Relaxed);
                    left -= 1;
                }
                Ok(Settled::Kept) => left -= 1,
                Ok(Settled::Waiting) => {}
                Err(err) => {
                    self.counters.journal_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(tier = %entry.tier, name = %entry.name, %err, "deleting a remote tier object failed; retried later");
                }
            }
        }
        self.backlog.store(left, Ordering::Relaxed);
    }

    fn counted<T>(&self, result: Result<T, ObjectError>) -> Result<T, ObjectError> {
        if result.is_err() {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

fn missing(tier: &str) -> ObjectError {
    ObjectError::TierUnavailable {
        tier: tier.to_owned(),
        reason: "no such tier is configured".to_owned(),
    }
}

#[async_trait]
impl RemoteTiers for Tiers {
    fn has_tier(&self, tier: &str) -> bool {
        self.store(tier).is_some()
    }

    fn is_archival(&self, tier: &str) -> bool {
        self.store(tier).is_some_and(|s| s.config().archival)
    }

    async fn put(&self, tier: &str, name: &str, body: PutStream, size: u64) -> Result<(), ObjectError> {
        let store = self.store(tier).ok_or_else(|| missing(tier))?;
        self.counters.uploads.fetch_add(1, Ordering::Relaxed);
        self.counted(store.put(name, body, size).await)
    }

    async fn get(&self, tier: &str, name: &str, offset: u64, length: u64) -> Result<PutStream, ObjectError> {
        let store = self.store(tier).ok_or_else(|| missing(tier))?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.counted(store.get(name, offset, length).await)
    }

    async fn delete(&self, tier: &str, name: &str) -> Result<(), ObjectError> {
        let store = self.store(tier).ok_or_else(|| missing(tier))?;
        self.counted(store.delete(name).await)
    }

    async fn exists(&self, tier: &str, name: &str) -> Result<bool, ObjectError> {
        let store = self.store(tier).ok_or_else(|| missing(tier))?;
        self.counted(store.exists(name).await)
    }
}
