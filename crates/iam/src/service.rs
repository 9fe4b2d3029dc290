//! [`Iam`]: the identities and policies of a deployment, cached in memory and kept in a
//! [`SystemStore`].
//!
//! Reads (a secret key for a signature check, a caller's policies) take a snapshot of the
//! in-memory [`IamState`] under a short read lock. Every change is a read-modify-write under
//! the store's deployment-wide lock: reload, check, write the changed records, reload again,
//! announce to the other nodes (which reload on the notice). A full reload also runs
//! periodically ([`RELOAD_INTERVAL`]) in case a notice was missed.
//!
//! Accounts ([`accounts`]): every identity, group and custom policy belongs to one account;
//! the management calls take the account they act in (the caller's) and neither see nor
//! change another account's entities (an entity of another account reads as absent).
//!
//! Invariants: secret keys are stored only sealed; a change is visible on this node when the
//! call returns; removing a user removes its service accounts and its group memberships.

mod accounts;

pub use accounts::{AccountInfo, NewAccount};

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::authorize::{Caller, PrincipalKind};
use crate::error::IamError;
use crate::identity::{
    ACCOUNT_PREFIX, AccountRecord, BUILTIN_POLICIES, DnPolicyRecord, GROUP_PREFIX, GroupRecord,
    LDAP_GROUP_PREFIX, LDAP_USER_PREFIX, POLICY_PREFIX, PolicyRecord, SEAL_CHECK_KEY, SEAL_CHECK_PLAINTEXT,
    SERVICE_ACCOUNT_PREFIX, ServiceAccountRecord, Status, USER_PREFIX, UserRecord, is_builtin_policy,
    normalize_dn, valid_access_key, valid_entity_name, valid_secret_key,
};
use crate::policy::{Policy, PolicyKind};
use crate::seal::Sealer;
use crate::store::SystemStore;
use crate::sts::{
    SESSION_POLICY_BYTES_MAX, SESSION_SECS_DEFAULT, SESSION_SECS_MAX, SESSION_SECS_MIN, SessionClaims,
    SessionCredentials, SessionKeys, is_session_key,
};

/// How often every node reloads the records even without a change notice.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);
/// What an unreadable policy stands for.
const DENY_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
/// Length of a generated access key.
const GENERATED_ACCESS_KEY_CHARS: usize = 20;
/// Length of a generated secret key.
const GENERATED_SECRET_KEY_CHARS: usize = 40;

/// A pair of root credentials.
#[derive(Clone)]
pub struct RootKeys {
    /// Access key.
    pub access_key: String,
    /// Secret key. Never logged.
    pub secret_key: String,
}

impl fmt::Debug for RootKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKeys")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// A secret key in memory; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret key.
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// The secret. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user as loaded.
#[derive(Clone, Debug)]
struct User {
    record: UserRecord,
    secret: Secret,
}

/// A service account as loaded.
#[derive(Clone, Debug)]
struct ServiceAccount {
    record: ServiceAccountRecord,
    secret: Secret,
    policy: Option<Arc<Policy>>,
}

/// An account as loaded.
#[derive(Clone, Debug)]
struct Account {
    record: AccountRecord,
    secret: Secret,
}

/// Every identity and policy, decoded.
#[derive(Debug, Default)]
pub struct IamState {
    /// Accounts other than the deployment's own, by id.
    accounts: BTreeMap<String, Account>,
    /// Account ids by their root's access key.
    account_roots: HashMap<String, String>,
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, GroupRecord>,
    service_accounts: BTreeMap<String, ServiceAccount>,
    /// Canned policies, built-in ones included: the stored record (none for built-ins) and
    /// the parsed document.
    policies: BTreeMap<String, (Option<PolicyRecord>, Arc<Policy>)>,
    /// Groups of each user, derived from the groups' member lists.
    user_groups: HashMap<String, Vec<String>>,
    /// Policies mapped to LDAP users' DNs (normalized).
    ldap_users: BTreeMap<String, DnPolicyRecord>,
    /// Policies mapped to LDAP groups' DNs (normalized).
    ldap_groups: BTreeMap<String, DnPolicyRecord>,
}

/// What `user-info` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// Enabled or disabled.
    pub status: Status,
    /// Attached policy names.
    pub policies: Vec<String>,
    /// Groups the user is a member of.
    pub member_of: Vec<String>,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
}

/// What `group` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group name.
    pub name: String,
    /// Enabled or disabled.
    pub status: Status,
    /// Member user names.
    pub members: Vec<String>,
    /// Attached policy names.
    pub policies: Vec<String>,
    /// Last change, Unix seconds.
    pub updated_unix: i64,
}

/// A canned policy as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Its name.
    pub name: String,
    /// The document.
    pub document: String,
    /// Built in (cannot be changed or removed).
    pub builtin: bool,
    /// Creation, Unix seconds (0 for built-ins).
    pub created_unix: i64,
    /// Last change, Unix seconds (0 for built-ins).
    pub updated_unix: i64,
}

/// A service account as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountInfo {
    /// Its access key.
    pub access_key: String,
    /// The parent user.
    pub parent: String,
    /// Its embedded policy, if any.
    pub policy: Option<String>,
    /// Expiry, Unix seconds.
    pub expiry_unix: Option<i64>,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Enabled or disabled.
    pub status: Status,
}

/// A new service account's settings.
#[derive(Clone, Debug, Default)]
pub struct NewServiceAccount {
    /// The parent user (root's access key for root's own).
    pub parent: String,
    /// A chosen access key, or generated when none.
    pub access_key: Option<String>,
    /// A chosen secret key, or generated when none.
    pub secret_key: Option<Secret>,
    /// An embedded policy narrowing the parent's rights.
    pub policy: Option<String>,
    /// Expiry, Unix seconds.
    pub expiry_unix: Option<i64>,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
}

/// Changes to a service account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ServiceAccountUpdate {
    /// A new secret key.
    pub secret_key: Option<Secret>,
    /// A new embedded policy; `Some(None)` removes it.
    pub policy: Option<Option<String>>,
    /// A new status.
    pub status: Option<Status>,
    /// A new expiry; `Some(None)` removes it.
    pub expiry_unix: Option<Option<i64>>,
    /// A new display name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
}

/// Who a policy is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entity {
    /// A user, by name.
    User(String),
    /// A group, by name.
    Group(String),
}

/// One change to the stored records.
enum Write {
    Put(String, Vec<u8>),
    Delete(String),
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, IamError> {
    rmp_serde::to_vec_named(value).map_err(|e| IamError::Store {
        reason: format!("encoding an IAM record: {e}"),
    })
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T, IamError> {
    rmp_serde::from_slice(bytes).map_err(|e| IamError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn random_key(alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rand::random_range(0..alphabet.len())]))
        .collect()
}

/// A fresh access key (upper-case letters and digits).
pub fn generate_access_key() -> String {
    random_key(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        GENERATED_ACCESS_KEY_CHARS,
    )
}

/// A fresh secret key.
pub fn generate_secret_key() -> Secret {
    Secret(random_key(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        GENERATED_SECRET_KEY_CHARS,
    ))
}

fn store_err(reason: String) -> IamError {
    IamError::Store { reason }
}

/// The identities and policies of a deployment.
pub struct Iam {
    root: RootKeys,
    sealer: Sealer,
    account_id: String,
    store: Arc<dyn SystemStore>,
    state: RwLock<Arc<IamState>>,
    /// Serializes list-and-install, so a reload that listed before a change cannot install
    /// its older view after the change's own reload.
    reload_lock: tokio::sync::Mutex<()>,
    /// The records were read and their seal checked.
    loaded: std::sync::atomic::AtomicBool,
    /// Issue and check temporary credentials.
    sessions: SessionKeys,
}

impl fmt::Debug for Iam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iam")
            .field("root", &self.root)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl Iam {
    /// Loads the records from `store`: [`Iam::unloaded`] then [`Iam::open_records`].
    pub async fn load(
        root: RootKeys,
        old_root: Option<RootKeys>,
        account_id: &str,
        store: Arc<dyn SystemStore>,
    ) -> Result<Arc<Iam>, IamError> {
        let iam = Iam::unloaded(root, account_id, store)?;
        iam.open_records(old_root.as_ref()).await?;
        Ok(iam)
    }

    /// An IAM that knows the root user only, until [`Iam::open_records`] succeeds: root can
    /// sign (its credentials need no record), every other access key is refused and changes
    /// are refused. A server opens its front door with it while the records are unreadable
    /// (drives still starting, or beyond quorum), so root and anonymous requests get their
    /// real answers instead of "starting".
    pub fn unloaded(
        root: RootKeys,
        account_id: &str,
        store: Arc<dyn SystemStore>,
    ) -> Result<Arc<Iam>, IamError> {
        let sealer = Sealer::from_root(&root.access_key, &root.secret_key)?;
        let sessions = SessionKeys::from_root(&root.access_key, &root.secret_key)?;
        Ok(Arc::new(Iam {
            root,
            sealer,
            account_id: account_id.to_string(),
            store,
            state: RwLock::new(Arc::new(IamState::default())),
            reload_lock: tokio::sync::Mutex::new(()),
            loaded: std::sync::atomic::AtomicBool::new(false),
            sessions,
        }))
    }

    /// Whether the records were read ([`Iam::open_records`] succeeded).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Reads the records, checking which root credentials sealed them. On a store sealed
    /// under other root credentials, it re-seals every secret when `old_root` opens them, and
    /// refuses otherwise ([`IamError::SealedWithOtherRoot`]); a first start writes the check
    /// record.
    pub async fn open_records(&self, old_root: Option<&RootKeys>) -> Result<(), IamError> {
        let _guard = self.store.lock().await.map_err(store_err)?;
        let records = self.store.list().await.map_err(store_err)?;
        let check = records
            .iter()
            .find(|(k, _)| k == SEAL_CHECK_KEY)
            .map(|(_, v)| v.clone());
        match check {
            None => {
                if records.iter().any(|(k, _)| is_sealed_record(k)) {
                    return Err(IamError::SealedWithOtherRoot);
                }
                let sealed = self.sealer.seal(SEAL_CHECK_KEY, SEAL_CHECK_PLAINTEXT)?;
                self.store
                    .put(SEAL_CHECK_KEY, Bytes::from(sealed))
                    .await
                    .map_err(store_err)?;
            }
            Some(sealed) if self.sealer.open(SEAL_CHECK_KEY, &sealed).is_ok() => {}
            Some(sealed) => {
                let Some(old) = old_root else {
                    return Err(IamError::SealedWithOtherRoot);
                };
                let old_sealer = Sealer::from_root(&old.access_key, &old.secret_key)?;
                if old_sealer.open(SEAL_CHECK_KEY, &sealed).is_err() {
                    return Err(IamError::SealedWithOtherRoot);
                }
                self.reseal(&old_sealer, &records).await?;
                tracing::info!("IAM secrets re-sealed under the new root credentials");
            }
        }
        self.reload_records().await?;
        self.loaded.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// An IAM that knows only the root user and keeps its records in memory (nothing
    /// persists): for tests and for front doors embedded without a store.
    pub async fn root_only(access_key: &str, secret_key: &str) -> Result<Arc<Iam>, IamError> {
        let root = RootKeys {
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
        };
        Iam::load(
            root,
            None,
            "000000000000",
            Arc::new(crate::MemoryStore::default()),
        )
        .await
    }

    /// Re-seals every sealed record from `old` to this deployment's sealer (root credentials
    /// changed). The check record is written last, so an interrupted re-seal is redone on the
    /// next start with the old credentials still given.
    async fn reseal(&self, old: &Sealer, records: &[(String, Bytes)]) -> Result<(), IamError> {
        for (key, value) in records {
            if key.starts_with(ACCOUNT_PREFIX) {
                let mut rec: AccountRecord = decode(key, value)?;
                let name = rec.root_access_key.clone();
                if self.sealer.open(&name, &rec.sealed_secret).is_ok() {
                    continue;
                }
                let secret = old.open(&name, &rec.sealed_secret)?;
                rec.sealed_secret = self.sealer.seal(&name, &secret)?;
                self.store
                    .put(key, Bytes::from(encode(&rec)?))
                    .await
                    .map_err(store_err)?;
            } else if let Some(name) = key.strip_prefix(USER_PREFIX) {
                let mut rec: UserRecord = decode(key, value)?;
                if self.sealer.open(name, &rec.sealed_secret).is_ok() {
                    continue;
                }
                let secret = old.open(name, &rec.sealed_secret)?;
                rec.sealed_secret = self.sealer.seal(name, &secret)?;
                self.store
                    .put(key, Bytes::from(encode(&rec)?))
                    .await
                    .map_err(store_err)?;
            } else if let Some(name) = key.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
                let mut rec: ServiceAccountRecord = decode(key, value)?;
                if self.sealer.open(name, &rec.sealed_secret).is_ok() {
                    continue;
                }
                let secret = old.open(name, &rec.sealed_secret)?;
                rec.sealed_secret = self.sealer.seal(name, &secret)?;
                self.store
                    .put(key, Bytes::from(encode(&rec)?))
                    .await
                    .map_err(store_err)?;
            }
        }
        let sealed = self.sealer.seal(SEAL_CHECK_KEY, SEAL_CHECK_PLAINTEXT)?;
        self.store
            .put(SEAL_CHECK_KEY, Bytes::from(sealed))
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// The deployment's account id (12 digits).
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// The root user's access key.
    pub fn root_access_key(&self) -> &str {
        &self.root.access_key
    }

    fn snapshot(&self) -> Arc<IamState> {
        match self.state.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn install(&self, state: IamState) {
        let state = Arc::new(state);
        match self.state.write() {
            Ok(mut guard) => *guard = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Keeps this node's copy current: reloads on every notice for `namespace` arriving on
    /// `changes` (and when notices were missed), and every [`RELOAD_INTERVAL`]. Returns when
    /// the sender is gone.
    pub async fn watch(
        self: Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<String>,
        namespace: &str,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let mut periodic = tokio::time::interval(RELOAD_INTERVAL);
        periodic.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        periodic.tick().await;
        loop {
            let reload = tokio::select! {
                _ = periodic.tick() => true,
                notice = changes.recv() => match notice {
                    Ok(changed) => changed == namespace,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                },
            };
            if reload && let Err(err) = self.reload().await {
                tracing::warn!(%err, "reloading IAM records failed; keeping the previous copy");
            }
        }
    }

    /// Re-reads every record (another node changed them, or the periodic reload).
    pub async fn reload(&self) -> Result<(), IamError> {
        if !self.is_loaded() {
            // Nothing to refresh before the records were opened (and their seal checked).
            return Ok(());
        }
        self.reload_records().await
    }

    async fn reload_records(&self) -> Result<(), IamError> {
        let _serial = self.reload_lock.lock().await;
        let records = self.store.list().await.map_err(store_err)?;
        let state = self.build_state(&records);
        self.install(state);
        Ok(())
    }

    fn build_state(&self, records: &[(String, Bytes)]) -> IamState {
        let mut state = IamState::default();
        for (name, document) in BUILTIN_POLICIES {
            match Policy::parse(document.as_bytes(), PolicyKind::Identity) {
                Ok(policy) => {
                    state
                        .policies
                        .insert((*name).to_string(), (None, Arc::new(policy)));
                }
                Err(err) => tracing::error!(%err, policy = name, "built-in policy does not parse"),
            }
        }
        for (key, value) in records {
            if let Err(err) = self.load_record(&mut state, key, value) {
                tracing::warn!(%err, key, "skipping an IAM record");
            }
        }
        for group in state.groups.values() {
            for member in &group.members {
                state
                    .user_groups
                    .entry(member.clone())
                    .or_default()
                    .push(group.name.clone());
            }
        }
        state
    }

    fn load_record(&self, state: &mut IamState, key: &str, value: &[u8]) -> Result<(), IamError> {
        if key.starts_with(ACCOUNT_PREFIX) {
            let record: AccountRecord = decode(key, value)?;
            let secret = self.open_secret(&record.root_access_key, &record.sealed_secret)?;
            state
                .account_roots
                .insert(record.root_access_key.clone(), record.id.clone());
            state
                .accounts
                .insert(record.id.clone(), Account { record, secret });
        } else if let Some(name) = key.strip_prefix(USER_PREFIX) {
            let record: UserRecord = decode(key, value)?;
            let secret = self.open_secret(name, &record.sealed_secret)?;
            state.users.insert(name.to_string(), User { record, secret });
        } else if let Some(name) = key.strip_prefix(GROUP_PREFIX) {
            let record: GroupRecord = decode(key, value)?;
            state.groups.insert(name.to_string(), record);
        } else if let Some(name) = key.strip_prefix(SERVICE_ACCOUNT_PREFIX) {
            let record: ServiceAccountRecord = decode(key, value)?;
            let secret = self.open_secret(name, &record.sealed_secret)?;
            let policy = record
                .policy
                .as_deref()
                .map(|doc| Policy::parse(doc.as_bytes(), PolicyKind::Identity).map(Arc::new))
                .transpose()?;
            state.service_accounts.insert(
                name.to_string(),
                ServiceAccount {
                    record,
                    secret,
                    policy,
                },
            );
        } else if let Some(dn) = key.strip_prefix(LDAP_USER_PREFIX) {
            state.ldap_users.insert(dn.to_string(), decode(key, value)?);
        } else if let Some(dn) = key.strip_prefix(LDAP_GROUP_PREFIX) {
            state.ldap_groups.insert(dn.to_string(), decode(key, value)?);
        } else if let Some(name) = key.strip_prefix(POLICY_PREFIX) {
            // A policy that cannot be read must not lose its Deny statements: it denies
            // everything to whoever it is attached to until it is replaced.
            let parsed = decode::<PolicyRecord>(key, value).and_then(|record| {
                let policy = Policy::parse(record.document.as_bytes(), PolicyKind::Identity)?;
                Ok((record, policy))
            });
            match parsed {
                Ok((record, policy)) => {
                    state
                        .policies
                        .insert(name.to_string(), (Some(record), Arc::new(policy)));
                }
                Err(err) => {
                    tracing::error!(%err, policy = name, "unreadable policy: it denies everything until replaced");
                    let deny = Policy::parse(DENY_ALL.as_bytes(), PolicyKind::Identity)?;
                    state.policies.insert(name.to_string(), (None, Arc::new(deny)));
                }
            }
        }
        Ok(())
    }

    fn open_secret(&self, name: &str, sealed: &[u8]) -> Result<Secret, IamError> {
        let bytes = self.sealer.open(name, sealed)?;
        String::from_utf8(bytes).map(Secret).map_err(|_| IamError::Seal {
            reason: "a sealed secret is not UTF-8",
        })
    }

    /// Runs a change: under the store lock, on fresh state, `change` computes the records to
    /// write; they are written, the state reloaded and the change announced.
    async fn change<T>(
        &self,
        change: impl FnOnce(&IamState, &Sealer) -> Result<(Vec<Write>, T), IamError>,
    ) -> Result<T, IamError> {
        if !self.is_loaded() {
            return Err(IamError::Store {
                reason: "the IAM records are not loaded yet".to_string(),
            });
        }
        let guard = self.store.lock().await.map_err(store_err)?;
        self.reload_records().await?;
        let state = self.snapshot();
        let (writes, out) = change(&state, &self.sealer)?;
        // Writes are ordered so that stopping part-way leaves nothing that grants more than
        // before (children before parents, detachments before removals).
        let mut written = false;
        let mut failed = None;
        for write in writes {
            let result = match write {
                Write::Put(key, value) => self.store.put(&key, Bytes::from(value)).await,
                Write::Delete(key) => self.store.delete(&key).await,
            };
            match result {
                Ok(()) => written = true,
                Err(reason) => {
                    failed = Some(store_err(reason));
                    break;
                }
            }
        }
        // Whatever was written is installed here and announced, even when a later write failed.
        let reloaded = if written {
            self.reload_records().await
        } else {
            Ok(())
        };
        drop(guard);
        if written {
            self.store.announce().await;
        }
        if let Some(err) = failed {
            return Err(err);
        }
        reloaded.map(|()| out)
    }

    // ------------------------------------------------------------ lookups

    /// The secret key of an access key that may sign requests now: root, an enabled user, an
    /// enabled and unexpired service account of an enabled parent.
    pub fn secret_key(&self, access_key: &str) -> Option<Secret> {
        if access_key == self.root.access_key {
            return Some(Secret(self.root.secret_key.clone()));
        }
        if is_session_key(access_key) {
            // Derived, not stored: the request's session token is checked by the access hook
            // (`Iam::session_caller`) before anything is allowed.
            return self
                .is_loaded()
                .then(|| self.sessions.secret_of(access_key).ok().map(Secret))
                .flatten();
        }
        // The same conditions as `caller_in`, without assembling the caller's policies: the
        // access hook does that once for the request.
        let state = self.snapshot();
        if let Some(account) = state.enabled_account_of_root(access_key) {
            return Some(account.secret.clone());
        }
        if let Some(user) = state.users.get(access_key) {
            return state.user_enabled(access_key).then(|| user.secret.clone());
        }
        let svc = state.service_accounts.get(access_key)?;
        let parent = &svc.record.parent;
        let usable = svc.record.status == Status::Enabled
            && svc.record.expiry_unix.is_none_or(|t| t > now_unix())
            && (*parent == self.root.access_key
                || state.enabled_account_of_root(parent).is_some()
                || state.user_enabled(parent));
        usable.then(|| svc.secret.clone())
    }

    /// The caller signing with `access_key`, with the policies that apply to it; `None` when
    /// the key is unknown, disabled, expired, or its parent is.
    pub fn caller(&self, access_key: &str) -> Option<Caller> {
        let state = self.snapshot();
        self.caller_in(&state, access_key)
    }

    /// What a bucket policy's `Principal` names a user of `account` by: its ARN only (bare
    /// names and access keys would let a chosen access key pose as another principal).
    fn principal_ids(account: &str, user: &str) -> Vec<String> {
        vec![format!("arn:aws:iam::{account}:user/{user}")]
    }

    /// An account's root: its ARN and the bare account id (AWS accepts both in a Principal).
    fn root_principal_ids(account: &str) -> Vec<String> {
        vec![account.to_string(), format!("arn:aws:iam::{account}:root")]
    }

    /// A caller with no policies of its own, in `account`.
    fn bare_caller(&self, kind: PrincipalKind, access_key: &str, account: &str) -> Caller {
        Caller {
            kind,
            access_key: access_key.to_string(),
            user: access_key.to_string(),
            parent_is_root: false,
            account_root: false,
            tenant: account != self.account_id,
            policies: Vec::new(),
            embedded: None,
            principal_ids: Vec::new(),
            account_id: account.to_string(),
            session_name: None,
            token_claims: Vec::new(),
        }
    }

    fn caller_in(&self, state: &IamState, access_key: &str) -> Option<Caller> {
        if access_key == self.root.access_key {
            return Some(Caller {
                principal_ids: Iam::root_principal_ids(&self.account_id),
                ..self.bare_caller(PrincipalKind::Root, access_key, &self.account_id)
            });
        }
        if let Some(account) = state.enabled_account_of_root(access_key) {
            let id = &account.record.id;
            return Some(Caller {
                account_root: true,
                principal_ids: Iam::root_principal_ids(id),
                ..self.bare_caller(PrincipalKind::AccountRoot, access_key, id)
            });
        }
        if state.users.contains_key(access_key) {
            let (policies, principal_ids, account) = self.user_rights(state, access_key)?;
            return Some(Caller {
                policies,
                principal_ids,
                ..self.bare_caller(PrincipalKind::User, access_key, &account)
            });
        }
        let svc = state.service_accounts.get(access_key)?;
        if svc.record.status != Status::Enabled || svc.record.expiry_unix.is_some_and(|t| t <= now_unix()) {
            return None;
        }
        let parent = &svc.record.parent;
        let parent_is_root = *parent == self.root.access_key;
        // A service account is named by its parent's principal; its embedded policy still
        // bounds what a bucket policy grants that principal.
        let (policies, principal_ids, account, account_root) = if parent_is_root {
            (
                Vec::new(),
                Iam::root_principal_ids(&self.account_id),
                self.account_id.clone(),
                false,
            )
        } else if let Some(account) = state.enabled_account_of_root(parent) {
            let id = account.record.id.clone();
            (Vec::new(), Iam::root_principal_ids(&id), id, true)
        } else {
            let (policies, ids, account) = self.user_rights(state, parent)?;
            (policies, ids, account, false)
        };
        Some(Caller {
            user: parent.clone(),
            parent_is_root,
            account_root,
            policies,
            embedded: svc.policy.clone(),
            principal_ids,
            ..self.bare_caller(PrincipalKind::ServiceAccount, access_key, &account)
        })
    }

    /// An enabled user's policies (its own and its enabled groups'), principal ids and
    /// account (none when the user or its account is disabled).
    #[allow(clippy::type_complexity)]
    fn user_rights(
        &self,
        state: &IamState,
        name: &str,
    ) -> Option<(Vec<(String, Arc<Policy>)>, Vec<String>, String)> {
        let user = state.users.get(name)?;
        if !state.user_enabled(name) {
            return None;
        }
        let account = self.account_of(&user.record.account).to_string();
        let mut names: Vec<&String> = user.record.policies.iter().collect();
        for group in state.user_groups.get(name).into_iter().flatten() {
            if let Some(g) = state.groups.get(group)
                && g.status == Status::Enabled
            {
                names.extend(g.policies.iter());
            }
        }
        names.sort();
        names.dedup();
        // Only policies the user's account sees (built-ins and its own): names are global, and
        // another account's policy must never decide for this user.
        let policies = names
            .into_iter()
            .filter(|n| self.policy_visible(state, &account, n))
            .filter_map(|n| state.policies.get(n).map(|(_, p)| (n.clone(), Arc::clone(p))))
            .collect();
        let ids = Iam::principal_ids(&account, name);
        Some((policies, ids, account))
    }

    /// The account a record belongs to (the deployment's when it names none).
    fn account_of<'a>(&'a self, account: &'a Option<String>) -> &'a str {
        account.as_deref().unwrap_or(&self.account_id)
    }

    /// How a record stores `account`: none for the deployment's own.
    fn stored_account(&self, account: &str) -> Option<String> {
        (account != self.account_id).then(|| account.to_string())
    }

    // ------------------------------------------------------------ sessions

    /// Issues temporary credentials carrying `caller`'s rights (STS AssumeRole): only users
    /// may ask; `duration_secs` between 15 minutes and 12 hours (1 hour when none); an inline
    /// `policy` narrows the session further.
    pub fn assume_role(
        &self,
        caller: &Caller,
        duration_secs: Option<u64>,
        policy: Option<&str>,
        session_name: &str,
    ) -> Result<SessionCredentials, IamError> {
        if caller.kind != PrincipalKind::User {
            return Err(IamError::NotAllowed {
                reason: "only users may assume a role: root and service accounts have long-term credentials of their own, sessions cannot renew themselves".to_string(),
            });
        }
        let secs = session_secs(duration_secs, policy)?;
        self.sessions.issue(&SessionClaims {
            parent: caller.user.clone(),
            expiry_unix: now_unix().saturating_add(secs),
            session_name: session_name.to_string(),
            policy: policy.map(str::to_string),
            federated: None,
        })
    }

    /// The caller behind a request signed with temporary credentials: its token must have been
    /// issued by this deployment for `access_key`, be unexpired, and its parent user must still
    /// be enabled.
    pub fn session_caller(&self, access_key: &str, token: &str) -> Result<Caller, IamError> {
        let claims = self.sessions.open(access_key, token)?;
        if claims.expiry_unix <= now_unix() {
            return Err(IamError::ExpiredSessionToken);
        }
        let state = self.snapshot();
        let mut token_claims = Vec::new();
        let (policies, principal_ids, account) = match &claims.federated {
            // A web identity: the policies its token named, as they are now.
            Some(federated) => {
                // Identity-provider sessions belong to the deployment's account: only its
                // policies (and the built-ins) apply, never a same-named one of a tenant.
                let policies = federated
                    .policies
                    .iter()
                    .filter(|name| self.policy_visible(&state, &self.account_id, name))
                    .filter_map(|name| {
                        state
                            .policies
                            .get(name)
                            .map(|(_, p)| (name.clone(), Arc::clone(p)))
                    })
                    .collect();
                match &federated.subject_dn {
                    Some(dn) => {
                        token_claims.push(("ldap:username".to_string(), claims.parent.clone()));
                        token_claims.push(("ldap:user".to_string(), dn.clone()));
                    }
                    None => {
                        token_claims.push(("jwt:sub".to_string(), claims.parent.clone()));
                        token_claims.push(("jwt:iss".to_string(), federated.issuer.clone()));
                    }
                }
                let arn = format!(
                    "arn:aws:sts::{}:assumed-role/{}/{}",
                    self.account_id, federated.provider, claims.parent
                );
                (policies, vec![arn], self.account_id.clone())
            }
            None => self
                .user_rights(&state, &claims.parent)
                .ok_or(IamError::InvalidSessionToken)?,
        };
        let embedded = claims
            .policy
            .as_deref()
            .map(|doc| Policy::parse(doc.as_bytes(), PolicyKind::Identity).map(Arc::new))
            .transpose()?;
        Ok(Caller {
            user: claims.parent.clone(),
            policies,
            embedded,
            principal_ids,
            session_name: Some(claims.session_name).filter(|n| !n.is_empty()),
            token_claims,
            ..self.bare_caller(PrincipalKind::Session, access_key, &account)
        })
    }

    /// Issues temporary credentials for a verified web identity (STS
    /// `AssumeRoleWithWebIdentity`): the canned policies its token named, narrowed by an inline
    /// `policy`, for `duration_secs` (15 minutes to 12 hours, 1 hour by default). A token that
    /// names no existing policy gets nothing: refused.
    pub fn assume_role_with_web_identity(
        &self,
        identity: &crate::oidc::WebIdentity,
        duration_secs: Option<u64>,
        policy: Option<&str>,
        session_name: &str,
    ) -> Result<SessionCredentials, IamError> {
        let state = self.snapshot();
        let known: Vec<String> = identity
            .policies
            .iter()
            .filter(|name| self.policy_visible(&state, &self.account_id, name))
            .cloned()
            .collect();
        if known.is_empty() {
            return Err(IamError::NotAllowed {
                reason: "the token names no policy of this deployment".to_string(),
            });
        }
        let secs = session_secs(duration_secs, policy)?;
        self.sessions.issue(&SessionClaims {
            parent: identity.subject.clone(),
            expiry_unix: now_unix().saturating_add(secs),
            session_name: session_name.to_string(),
            policy: policy.map(str::to_string),
            federated: Some(crate::sts::Federated {
                provider: identity.provider.clone(),
                issuer: identity.issuer.clone(),
                policies: known,
                subject_dn: None,
            }),
        })
    }

    /// Issues temporary credentials for a user the directory vouched for (STS
    /// `AssumeRoleWithLDAPIdentity`): the policies mapped to its DN and its groups' DNs,
    /// narrowed by an inline `policy`. A user with no mapped policy is refused.
    pub fn assume_role_with_ldap(
        &self,
        identity: &crate::ldap::LdapIdentity,
        server: &str,
        duration_secs: Option<u64>,
        policy: Option<&str>,
        session_name: &str,
    ) -> Result<SessionCredentials, IamError> {
        let policies = self.ldap_policies(identity);
        if policies.is_empty() {
            return Err(IamError::NotAllowed {
                reason: "no policy is mapped to this LDAP user or its groups".to_string(),
            });
        }
        let secs = session_secs(duration_secs, policy)?;
        self.sessions.issue(&SessionClaims {
            parent: identity.username.clone(),
            expiry_unix: now_unix().saturating_add(secs),
            session_name: session_name.to_string(),
            policy: policy.map(str::to_string),
            federated: Some(crate::sts::Federated {
                provider: "ldap".to_string(),
                issuer: server.to_string(),
                policies,
                subject_dn: Some(identity.user_dn.clone()),
            }),
        })
    }

    /// The existing canned policies mapped to an LDAP user's DN and its groups' DNs.
    pub fn ldap_policies(&self, identity: &crate::ldap::LdapIdentity) -> Vec<String> {
        let state = self.snapshot();
        let mut names: Vec<String> = state
            .ldap_users
            .get(&normalize_dn(&identity.user_dn))
            .into_iter()
            .chain(
                identity
                    .group_dns
                    .iter()
                    .filter_map(|dn| state.ldap_groups.get(&normalize_dn(dn))),
            )
            .flat_map(|r| r.policies.iter().cloned())
            .filter(|name| self.policy_visible(&state, &self.account_id, name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Maps (or with `detach`, unmaps) canned policies to an LDAP user's or group's DN
    /// (MinIO's `idp/ldap/policy/attach|detach`). Returns the policies that changed.
    pub async fn attach_ldap_policies(
        &self,
        entity: &Entity,
        names: &[String],
        detach: bool,
    ) -> Result<Vec<String>, IamError> {
        if names.is_empty() {
            return Err(IamError::InvalidArgument {
                reason: "no policy named".to_string(),
            });
        }
        let (prefix, dn) = match entity {
            Entity::User(dn) => (LDAP_USER_PREFIX, dn),
            Entity::Group(dn) => (LDAP_GROUP_PREFIX, dn),
        };
        if dn.trim().is_empty() || !dn.contains('=') {
            return Err(IamError::InvalidArgument {
                reason: format!("{dn:?} is not an LDAP DN"),
            });
        }
        let key_dn = normalize_dn(dn);
        self.change(|state, _| {
            if !detach
                && let Some(missing) = names
                    .iter()
                    .find(|n| !self.policy_visible(state, &self.account_id, n))
            {
                return Err(IamError::NoSuchPolicy {
                    name: missing.clone(),
                });
            }
            let map = if prefix == LDAP_USER_PREFIX {
                &state.ldap_users
            } else {
                &state.ldap_groups
            };
            let mut record = map.get(&key_dn).cloned().unwrap_or_else(|| DnPolicyRecord {
                dn: dn.clone(),
                policies: Vec::new(),
                updated_unix: now_unix(),
            });
            let changed: Vec<String> = names
                .iter()
                .filter(|n| record.policies.contains(n) == detach)
                .cloned()
                .collect();
            if detach {
                record.policies.retain(|p| !names.contains(p));
            } else {
                record.policies.extend(changed.iter().cloned());
            }
            record.updated_unix = now_unix();
            let key = format!("{prefix}{key_dn}");
            let write = if record.policies.is_empty() {
                Write::Delete(key)
            } else {
                Write::Put(key, encode(&record)?)
            };
            Ok((vec![write], changed))
        })
        .await
    }

    // ------------------------------------------------------------ users

    /// Creates a user in `account`, or sets an existing user's secret key (MinIO's `add-user`).
    pub async fn add_user(
        &self,
        account: &str,
        access_key: &str,
        secret_key: &Secret,
    ) -> Result<(), IamError> {
        valid_access_key(access_key).map_err(|reason| IamError::InvalidAccessKey { reason })?;
        valid_secret_key(secret_key.expose()).map_err(|reason| IamError::InvalidSecretKey { reason })?;
        if access_key == self.root.access_key {
            return Err(IamError::AccessKeyInUse {
                access_key: access_key.to_string(),
            });
        }
        self.change(|state, sealer| {
            let taken_elsewhere = state
                .users
                .get(access_key)
                .is_some_and(|u| self.account_of(&u.record.account) != account);
            if taken_elsewhere
                || state.service_accounts.contains_key(access_key)
                || state.account_roots.contains_key(access_key)
            {
                return Err(IamError::AccessKeyInUse {
                    access_key: access_key.to_string(),
                });
            }
            let record = match state.users.get(access_key) {
                Some(user) => UserRecord {
                    sealed_secret: sealer.seal(access_key, secret_key.expose().as_bytes())?,
                    updated_unix: now_unix(),
                    ..user.record.clone()
                },
                None => UserRecord {
                    access_key: access_key.to_string(),
                    sealed_secret: sealer.seal(access_key, secret_key.expose().as_bytes())?,
                    status: Status::Enabled,
                    policies: Vec::new(),
                    updated_unix: now_unix(),
                    account: self.stored_account(account),
                },
            };
            Ok((
                vec![Write::Put(format!("{USER_PREFIX}{access_key}"), encode(&record)?)],
                (),
            ))
        })
        .await
    }

    /// Removes a user of `account` with its service accounts and group memberships.
    pub async fn remove_user(&self, account: &str, name: &str) -> Result<(), IamError> {
        self.change(|state, _| {
            self.scoped_user(state, account, name)?;
            let mut writes = Vec::new();
            for (key, svc) in &state.service_accounts {
                if svc.record.parent == name {
                    writes.push(Write::Delete(format!("{SERVICE_ACCOUNT_PREFIX}{key}")));
                }
            }
            for group in state.groups.values() {
                if group.members.iter().any(|m| m == name) {
                    let mut group = group.clone();
                    group.members.retain(|m| m != name);
                    group.updated_unix = now_unix();
                    writes.push(Write::Put(
                        format!("{GROUP_PREFIX}{}", group.name),
                        encode(&group)?,
                    ));
                }
            }
            writes.push(Write::Delete(format!("{USER_PREFIX}{name}")));
            Ok((writes, ()))
        })
        .await
    }

    /// Enables or disables a user of `account`.
    pub async fn set_user_status(&self, account: &str, name: &str, status: Status) -> Result<(), IamError> {
        self.change(|state, _| {
            let user = self.scoped_user(state, account, name)?;
            let record = UserRecord {
                status,
                updated_unix: now_unix(),
                ..user.record.clone()
            };
            Ok((
                vec![Write::Put(format!("{USER_PREFIX}{name}"), encode(&record)?)],
                (),
            ))
        })
        .await
    }

    /// Every user of `account`.
    pub fn list_users(&self, account: &str) -> Vec<UserInfo> {
        let state = self.snapshot();
        state
            .users
            .iter()
            .filter(|(_, u)| self.account_of(&u.record.account) == account)
            .filter_map(|(n, _)| user_info(&state, n))
            .collect()
    }

    /// One user of `account`.
    pub fn user_info(&self, account: &str, name: &str) -> Result<UserInfo, IamError> {
        let state = self.snapshot();
        self.scoped_user(&state, account, name)?;
        user_info(&state, name).ok_or_else(|| IamError::NoSuchUser {
            name: name.to_string(),
        })
    }

    /// A user of `account`; another account's reads as absent.
    fn scoped_user<'a>(&self, state: &'a IamState, account: &str, name: &str) -> Result<&'a User, IamError> {
        state
            .users
            .get(name)
            .filter(|u| self.account_of(&u.record.account) == account)
            .ok_or_else(|| IamError::NoSuchUser {
                name: name.to_string(),
            })
    }

    /// A group of `account`; another account's reads as absent.
    fn scoped_group<'a>(
        &self,
        state: &'a IamState,
        account: &str,
        name: &str,
    ) -> Result<&'a GroupRecord, IamError> {
        state
            .groups
            .get(name)
            .filter(|g| self.account_of(&g.account) == account)
            .ok_or_else(|| IamError::NoSuchGroup {
                name: name.to_string(),
            })
    }

    /// Whether `account` sees the canned policy `name`: a built-in, or one of its own.
    fn policy_visible(&self, state: &IamState, account: &str, name: &str) -> bool {
        match state.policies.get(name) {
            Some((Some(record), _)) => self.account_of(&record.account) == account,
            Some((None, _)) => true,
            None => false,
        }
    }

    /// The account a service account acts in: its parent's.
    fn service_account_account(&self, state: &IamState, svc: &ServiceAccountRecord) -> String {
        if let Some(id) = state.account_roots.get(&svc.parent) {
            return id.clone();
        }
        match state.users.get(&svc.parent) {
            Some(user) => self.account_of(&user.record.account).to_string(),
            None => self.account_id.clone(),
        }
    }

    /// A service account acting in `account`; another account's reads as absent.
    fn scoped_service_account<'a>(
        &self,
        state: &'a IamState,
        account: &str,
        access_key: &str,
    ) -> Result<&'a ServiceAccount, IamError> {
        state
            .service_accounts
            .get(access_key)
            .filter(|s| self.service_account_account(state, &s.record) == account)
            .ok_or_else(|| IamError::NoSuchServiceAccount {
                access_key: access_key.to_string(),
            })
    }

    // ------------------------------------------------------------ groups

    /// Adds members to a group (creating it), or removes them; removing with no members
    /// removes the group itself, which must then be empty.
    pub async fn update_group_members(
        &self,
        account: &str,
        group: &str,
        members: &[String],
        remove: bool,
    ) -> Result<(), IamError> {
        valid_entity_name(group).map_err(|reason| IamError::InvalidArgument { reason })?;
        self.change(|state, _| {
            for member in members {
                self.scoped_user(state, account, member)?;
            }
            let key = format!("{GROUP_PREFIX}{group}");
            let existing = state.groups.get(group);
            if existing.is_some_and(|g| self.account_of(&g.account) != account) {
                // Group names are deployment-wide: another account's group is not ours to
                // change, and its name cannot be taken.
                return Err(if remove {
                    IamError::NoSuchGroup {
                        name: group.to_string(),
                    }
                } else {
                    IamError::NameInUse {
                        name: group.to_string(),
                    }
                });
            }
            if remove {
                let Some(existing) = existing else {
                    return Err(IamError::NoSuchGroup {
                        name: group.to_string(),
                    });
                };
                if members.is_empty() {
                    if !existing.members.is_empty() {
                        return Err(IamError::GroupNotEmpty {
                            name: group.to_string(),
                        });
                    }
                    return Ok((vec![Write::Delete(key)], ()));
                }
                let mut record = existing.clone();
                record.members.retain(|m| !members.contains(m));
                record.updated_unix = now_unix();
                return Ok((vec![Write::Put(key, encode(&record)?)], ()));
            }
            let mut record = existing.cloned().unwrap_or_else(|| GroupRecord {
                name: group.to_string(),
                members: Vec::new(),
                status: Status::Enabled,
                policies: Vec::new(),
                updated_unix: now_unix(),
                account: self.stored_account(account),
            });
            record.members.extend(members.iter().cloned());
            record.members.sort();
            record.members.dedup();
            record.updated_unix = now_unix();
            Ok((vec![Write::Put(key, encode(&record)?)], ()))
        })
        .await
    }

    /// Enables or disables a group of `account`.
    pub async fn set_group_status(&self, account: &str, group: &str, status: Status) -> Result<(), IamError> {
        self.change(|state, _| {
            let existing = self.scoped_group(state, account, group)?;
            let record = GroupRecord {
                status,
                updated_unix: now_unix(),
                ..existing.clone()
            };
            Ok((
                vec![Write::Put(format!("{GROUP_PREFIX}{group}"), encode(&record)?)],
                (),
            ))
        })
        .await
    }

    /// Every group name of `account`.
    pub fn list_groups(&self, account: &str) -> Vec<String> {
        self.snapshot()
            .groups
            .iter()
            .filter(|(_, g)| self.account_of(&g.account) == account)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// One group of `account`.
    pub fn group_info(&self, account: &str, group: &str) -> Result<GroupInfo, IamError> {
        let state = self.snapshot();
        let g = self.scoped_group(&state, account, group)?;
        Ok(GroupInfo {
            name: g.name.clone(),
            status: g.status,
            members: g.members.clone(),
            policies: g.policies.clone(),
            updated_unix: g.updated_unix,
        })
    }

    // ------------------------------------------------------------ policies

    /// Adds or replaces a canned policy of `account`.
    pub async fn add_policy(&self, account: &str, name: &str, document: &str) -> Result<(), IamError> {
        valid_entity_name(name).map_err(|reason| IamError::InvalidArgument { reason })?;
        if is_builtin_policy(name) {
            return Err(IamError::InvalidArgument {
                reason: format!("{name} is a built-in policy and cannot be changed"),
            });
        }
        Policy::parse(document.as_bytes(), PolicyKind::Identity)?;
        self.change(|state, _| {
            if state.policies.contains_key(name) && !self.policy_visible(state, account, name) {
                return Err(IamError::NameInUse {
                    name: name.to_string(),
                });
            }
            let now = now_unix();
            let created = state
                .policies
                .get(name)
                .and_then(|(rec, _)| rec.as_ref())
                .map_or(now, |rec| rec.created_unix);
            let record = PolicyRecord {
                name: name.to_string(),
                document: document.to_string(),
                created_unix: created,
                updated_unix: now,
                account: self.stored_account(account),
            };
            Ok((
                vec![Write::Put(format!("{POLICY_PREFIX}{name}"), encode(&record)?)],
                (),
            ))
        })
        .await
    }

    /// Removes a canned policy of `account` and detaches it from every user and group.
    pub async fn remove_policy(&self, account: &str, name: &str) -> Result<(), IamError> {
        if is_builtin_policy(name) {
            return Err(IamError::InvalidArgument {
                reason: format!("{name} is a built-in policy and cannot be removed"),
            });
        }
        self.change(|state, _| {
            if !self.policy_visible(state, account, name) {
                return Err(IamError::NoSuchPolicy {
                    name: name.to_string(),
                });
            }
            let mut writes = Vec::new();
            for user in state.users.values() {
                if user.record.policies.iter().any(|p| p == name) {
                    let mut record = user.record.clone();
                    record.policies.retain(|p| p != name);
                    writes.push(Write::Put(
                        format!("{USER_PREFIX}{}", record.access_key),
                        encode(&record)?,
                    ));
                }
            }
            for group in state.groups.values() {
                if group.policies.iter().any(|p| p == name) {
                    let mut record = group.clone();
                    record.policies.retain(|p| p != name);
                    writes.push(Write::Put(
                        format!("{GROUP_PREFIX}{}", record.name),
                        encode(&record)?,
                    ));
                }
            }
            for (prefix, map) in [
                (LDAP_USER_PREFIX, &state.ldap_users),
                (LDAP_GROUP_PREFIX, &state.ldap_groups),
            ] {
                for (dn, record) in map {
                    if record.policies.iter().any(|p| p == name) {
                        let mut record = record.clone();
                        record.policies.retain(|p| p != name);
                        writes.push(if record.policies.is_empty() {
                            Write::Delete(format!("{prefix}{dn}"))
                        } else {
                            Write::Put(format!("{prefix}{dn}"), encode(&record)?)
                        });
                    }
                }
            }
            writes.push(Write::Delete(format!("{POLICY_PREFIX}{name}")));
            Ok((writes, ()))
        })
        .await
    }

    /// Every canned policy `account` sees, built-ins included.
    pub fn list_policies(&self, account: &str) -> Vec<PolicyInfo> {
        let state = self.snapshot();
        state
            .policies
            .keys()
            .filter(|n| self.policy_visible(&state, account, n))
            .filter_map(|n| policy_info(&state, n))
            .collect()
    }

    /// One canned policy `account` sees.
    pub fn policy_info(&self, account: &str, name: &str) -> Result<PolicyInfo, IamError> {
        let state = self.snapshot();
        self.policy_visible(&state, account, name)
            .then(|| policy_info(&state, name))
            .flatten()
            .ok_or_else(|| IamError::NoSuchPolicy {
                name: name.to_string(),
            })
    }

    /// Attaches (or with `detach`, detaches) canned policies to a user or group. Attaching an
    /// attached policy or detaching one that is not attached is an error, as in MinIO.
    pub async fn attach_policies(
        &self,
        account: &str,
        entity: &Entity,
        names: &[String],
        detach: bool,
    ) -> Result<(), IamError> {
        if names.is_empty() {
            return Err(IamError::InvalidArgument {
                reason: "no policy named".to_string(),
            });
        }
        self.change(|state, _| {
            for name in names {
                if !detach && !self.policy_visible(state, account, name) {
                    return Err(IamError::NoSuchPolicy { name: name.clone() });
                }
            }
            let apply = |current: &mut Vec<String>| -> Result<(), IamError> {
                for name in names {
                    let present = current.contains(name);
                    if detach && !present {
                        return Err(IamError::InvalidArgument {
                            reason: format!("the policy {name} is not attached"),
                        });
                    }
                    if !detach && present {
                        return Err(IamError::InvalidArgument {
                            reason: format!("the policy {name} is already attached"),
                        });
                    }
                }
                if detach {
                    current.retain(|p| !names.contains(p));
                } else {
                    current.extend(names.iter().cloned());
                }
                Ok(())
            };
            let write = match entity {
                Entity::User(user) => {
                    let mut record = self.scoped_user(state, account, user)?.record.clone();
                    apply(&mut record.policies)?;
                    record.updated_unix = now_unix();
                    Write::Put(format!("{USER_PREFIX}{user}"), encode(&record)?)
                }
                Entity::Group(group) => {
                    let mut record = self.scoped_group(state, account, group)?.clone();
                    apply(&mut record.policies)?;
                    record.updated_unix = now_unix();
                    Write::Put(format!("{GROUP_PREFIX}{group}"), encode(&record)?)
                }
            };
            Ok((vec![write], ()))
        })
        .await
    }

    /// Replaces the policies attached to a user or group (MinIO's `set-user-or-group-policy`,
    /// a comma-separated list; empty detaches all).
    pub async fn set_policies(
        &self,
        account: &str,
        entity: &Entity,
        names: &[String],
    ) -> Result<(), IamError> {
        self.change(|state, _| {
            for name in names {
                if !self.policy_visible(state, account, name) {
                    return Err(IamError::NoSuchPolicy { name: name.clone() });
                }
            }
            let write = match entity {
                Entity::User(user) => {
                    let mut record = self.scoped_user(state, account, user)?.record.clone();
                    record.policies = names.to_vec();
                    record.updated_unix = now_unix();
                    Write::Put(format!("{USER_PREFIX}{user}"), encode(&record)?)
                }
                Entity::Group(group) => {
                    let mut record = self.scoped_group(state, account, group)?.clone();
                    record.policies = names.to_vec();
                    record.updated_unix = now_unix();
                    Write::Put(format!("{GROUP_PREFIX}{group}"), encode(&record)?)
                }
            };
            Ok((vec![write], ()))
        })
        .await
    }

    /// Users and groups each policy is attached to (`policy-entities`), for the policies
    /// named (all when empty).
    pub fn policy_entities(
        &self,
        account: &str,
        policies: &[String],
    ) -> Vec<(String, Vec<String>, Vec<String>)> {
        let state = self.snapshot();
        state
            .policies
            .keys()
            .filter(|name| policies.is_empty() || policies.contains(name))
            .filter(|name| self.policy_visible(&state, account, name))
            .map(|name| {
                let users = state
                    .users
                    .values()
                    .filter(|u| self.account_of(&u.record.account) == account)
                    .filter(|u| u.record.policies.contains(name))
                    .map(|u| u.record.access_key.clone())
                    .collect();
                let groups = state
                    .groups
                    .values()
                    .filter(|g| self.account_of(&g.account) == account)
                    .filter(|g| g.policies.contains(name))
                    .map(|g| g.name.clone())
                    .collect();
                (name.clone(), users, groups)
            })
            .collect()
    }

    // ------------------------------------------------------------ service accounts

    /// Creates a service account of a parent in `account`; answers its access key and secret
    /// key.
    pub async fn add_service_account(
        &self,
        account: &str,
        new: NewServiceAccount,
    ) -> Result<(String, Secret), IamError> {
        let access_key = new.access_key.clone().unwrap_or_else(generate_access_key);
        let secret = new.secret_key.clone().unwrap_or_else(generate_secret_key);
        valid_access_key(&access_key).map_err(|reason| IamError::InvalidAccessKey { reason })?;
        valid_secret_key(secret.expose()).map_err(|reason| IamError::InvalidSecretKey { reason })?;
        if let Some(doc) = &new.policy {
            Policy::parse(doc.as_bytes(), PolicyKind::Identity)?;
        }
        if new.expiry_unix.is_some_and(|t| t <= now_unix()) {
            return Err(IamError::InvalidArgument {
                reason: "the expiry is in the past".to_string(),
            });
        }
        if access_key == self.root.access_key {
            return Err(IamError::AccessKeyInUse { access_key });
        }
        let root = self.root.access_key.clone();
        self.change(|state, sealer| {
            let parent_ok = if new.parent == root {
                account == self.account_id
            } else if let Some(id) = state.account_roots.get(&new.parent) {
                id == account
            } else {
                self.scoped_user(state, account, &new.parent).is_ok()
            };
            if !parent_ok {
                return Err(IamError::NoSuchUser {
                    name: new.parent.clone(),
                });
            }
            if state.access_key_taken(&access_key) {
                return Err(IamError::AccessKeyInUse {
                    access_key: access_key.clone(),
                });
            }
            let record = ServiceAccountRecord {
                access_key: access_key.clone(),
                sealed_secret: sealer.seal(&access_key, secret.expose().as_bytes())?,
                parent: new.parent.clone(),
                policy: new.policy.clone(),
                expiry_unix: new.expiry_unix,
                name: new.name.clone(),
                description: new.description.clone(),
                status: Status::Enabled,
                updated_unix: now_unix(),
            };
            Ok((
                vec![Write::Put(
                    format!("{SERVICE_ACCOUNT_PREFIX}{access_key}"),
                    encode(&record)?,
                )],
                (),
            ))
        })
        .await?;
        Ok((access_key, secret))
    }

    /// Changes a service account acting in `account`.
    pub async fn update_service_account(
        &self,
        account: &str,
        access_key: &str,
        update: ServiceAccountUpdate,
    ) -> Result<(), IamError> {
        if let Some(secret) = &update.secret_key {
            valid_secret_key(secret.expose()).map_err(|reason| IamError::InvalidSecretKey { reason })?;
        }
        if let Some(Some(doc)) = &update.policy {
            Policy::parse(doc.as_bytes(), PolicyKind::Identity)?;
        }
        self.change(|state, sealer| {
            let svc = self.scoped_service_account(state, account, access_key)?;
            let mut record = svc.record.clone();
            if let Some(secret) = &update.secret_key {
                record.sealed_secret = sealer.seal(access_key, secret.expose().as_bytes())?;
            }
            if let Some(policy) = &update.policy {
                record.policy = policy.clone();
            }
            if let Some(status) = update.status {
                record.status = status;
            }
            if let Some(expiry) = update.expiry_unix {
                record.expiry_unix = expiry;
            }
            if let Some(name) = &update.name {
                record.name = name.clone();
            }
            if let Some(description) = &update.description {
                record.description = description.clone();
            }
            record.updated_unix = now_unix();
            Ok((
                vec![Write::Put(
                    format!("{SERVICE_ACCOUNT_PREFIX}{access_key}"),
                    encode(&record)?,
                )],
                (),
            ))
        })
        .await
    }

    /// Removes a service account acting in `account`.
    pub async fn remove_service_account(&self, account: &str, access_key: &str) -> Result<(), IamError> {
        self.change(|state, _| {
            self.scoped_service_account(state, account, access_key)?;
            Ok((
                vec![Write::Delete(format!("{SERVICE_ACCOUNT_PREFIX}{access_key}"))],
                (),
            ))
        })
        .await
    }

    /// One service account acting in `account`.
    pub fn service_account_info(
        &self,
        account: &str,
        access_key: &str,
    ) -> Result<ServiceAccountInfo, IamError> {
        let state = self.snapshot();
        self.scoped_service_account(&state, account, access_key)
            .map(service_account_info)
    }

    /// The service accounts of one parent in `account`.
    pub fn list_service_accounts(&self, account: &str, parent: &str) -> Vec<ServiceAccountInfo> {
        let state = self.snapshot();
        state
            .service_accounts
            .values()
            .filter(|s| s.record.parent == parent)
            .filter(|s| self.service_account_account(&state, &s.record) == account)
            .map(service_account_info)
            .collect()
    }
}

/// A session's length in seconds, checked against STS's bounds, and its inline policy.
fn session_secs(duration_secs: Option<u64>, policy: Option<&str>) -> Result<i64, IamError> {
    let secs = duration_secs.unwrap_or(SESSION_SECS_DEFAULT);
    if !(SESSION_SECS_MIN..=SESSION_SECS_MAX).contains(&secs) {
        return Err(IamError::InvalidArgument {
            reason: format!("DurationSeconds must be between {SESSION_SECS_MIN} and {SESSION_SECS_MAX}"),
        });
    }
    if let Some(doc) = policy {
        if doc.len() > SESSION_POLICY_BYTES_MAX {
            return Err(IamError::InvalidArgument {
                reason: format!("the session policy is larger than {SESSION_POLICY_BYTES_MAX} bytes"),
            });
        }
        Policy::parse(doc.as_bytes(), PolicyKind::Identity)?;
    }
    Ok(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Whether a record key holds a sealed secret.
fn is_sealed_record(key: &str) -> bool {
    key.starts_with(USER_PREFIX) || key.starts_with(SERVICE_ACCOUNT_PREFIX) || key.starts_with(ACCOUNT_PREFIX)
}

fn user_info(state: &IamState, name: &str) -> Option<UserInfo> {
    let user = state.users.get(name)?;
    Some(UserInfo {
        name: name.to_string(),
        status: user.record.status,
        policies: user.record.policies.clone(),
        member_of: state.user_groups.get(name).cloned().unwrap_or_default(),
        updated_unix: user.record.updated_unix,
    })
}

fn policy_info(state: &IamState, name: &str) -> Option<PolicyInfo> {
    let (record, _) = state.policies.get(name)?;
    Some(match record {
        Some(rec) => PolicyInfo {
            name: name.to_string(),
            document: rec.document.clone(),
            builtin: false,
            created_unix: rec.created_unix,
            updated_unix: rec.updated_unix,
        },
        None => PolicyInfo {
            name: name.to_string(),
            document: BUILTIN_POLICIES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| (*d).to_string())
                .unwrap_or_default(),
            builtin: true,
            created_unix: 0,
            updated_unix: 0,
        },
    })
}

fn service_account_info(svc: &ServiceAccount) -> ServiceAccountInfo {
    ServiceAccountInfo {
        access_key: svc.record.access_key.clone(),
        parent: svc.record.parent.clone(),
        policy: svc.record.policy.clone(),
        expiry_unix: svc.record.expiry_unix,
        name: svc.record.name.clone(),
        description: svc.record.description.clone(),
        status: svc.record.status,
    }
}
