//! Accounts: tenants of one deployment, each with its own root credentials, users, groups,
//! policies and buckets (as AWS accounts and Ceph RGW accounts are).
//!
//! The deployment's own account (its id derived from the deployment id) always exists and
//! has the deployment's root credentials; [`Iam::create_account`] adds others, managed only
//! by the deployment's operators (the admin API asks `admin:CreateAccount` and friends, which
//! no account other than the deployment's can hold). An account's id is 12 random digits and
//! its canonical id is derived from it ([`crate::acl::canonical_id`]); its root's secret is
//! sealed like every other secret. Disabling an account stops every identity of it from
//! signing; removing one requires it to be empty (no identities; the front door checks its
//! buckets before asking).

use serde::{Deserialize, Serialize};

use super::{
    Account, Iam, IamState, Secret, Write, encode, generate_access_key, generate_secret_key, now_unix,
};
use crate::error::IamError;
use crate::identity::{
    ACCOUNT_PREFIX, AccountRecord, Status, valid_access_key, valid_entity_name, valid_secret_key,
};

/// An account as listed (never with its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The 12-digit account id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The canonical user id ACLs name it by.
    pub canonical_id: String,
    /// The account root's access key.
    pub root_access_key: String,
    /// Enabled or disabled.
    pub status: Status,
    /// Creation, Unix seconds.
    pub created_unix: i64,
}

/// A new account's settings.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    /// Display name (unique in the deployment).
    pub name: String,
    /// A chosen root access key, or generated when none.
    pub access_key: Option<String>,
    /// A chosen root secret key, or generated when none.
    pub secret_key: Option<Secret>,
}

impl IamState {
    /// The enabled account whose root signs with `access_key`.
    pub(super) fn enabled_account_of_root(&self, access_key: &str) -> Option<&Account> {
        let id = self.account_roots.get(access_key)?;
        self.accounts
            .get(id)
            .filter(|a| a.record.status == Status::Enabled)
    }

    /// Whether `account` (none: the deployment's own) may act.
    pub(super) fn account_enabled(&self, account: Option<&str>) -> bool {
        account.is_none_or(|id| {
            self.accounts
                .get(id)
                .is_some_and(|a| a.record.status == Status::Enabled)
        })
    }

    /// Whether a user exists, is enabled, and its account is.
    pub(super) fn user_enabled(&self, name: &str) -> bool {
        self.users.get(name).is_some_and(|u| {
            u.record.status == Status::Enabled && self.account_enabled(u.record.account.as_deref())
        })
    }

    /// Whether an access key is taken by anyone (users, service accounts, account roots).
    pub(super) fn access_key_taken(&self, access_key: &str) -> bool {
        self.users.contains_key(access_key)
            || self.service_accounts.contains_key(access_key)
            || self.account_roots.contains_key(access_key)
    }
}

fn account_info(account: &Account) -> AccountInfo {
    AccountInfo {
        id: account.record.id.clone(),
        name: account.record.name.clone(),
        canonical_id: crate::acl::canonical_id(&account.record.id),
        root_access_key: account.record.root_access_key.clone(),
        status: account.record.status,
        created_unix: account.record.created_unix,
    }
}

fn no_such_account(id: &str) -> IamError {
    IamError::NoSuchAccount { id: id.to_string() }
}

impl Iam {
    /// Whether `id` names an account: the deployment's own or one created here.
    pub fn account_exists(&self, id: &str) -> bool {
        id == self.account_id || self.snapshot().accounts.contains_key(id)
    }

    /// Whether `access_key` is the root of an account other than the deployment's.
    pub fn is_account_root(&self, access_key: &str) -> bool {
        self.snapshot().account_roots.contains_key(access_key)
    }

    /// Creates an account; answers it with its root's access key and secret key.
    pub async fn create_account(&self, new: NewAccount) -> Result<(AccountInfo, Secret), IamError> {
        valid_entity_name(&new.name).map_err(|reason| IamError::InvalidArgument { reason })?;
        let access_key = new.access_key.clone().unwrap_or_else(generate_access_key);
        let secret = new.secret_key.clone().unwrap_or_else(generate_secret_key);
        valid_access_key(&access_key).map_err(|reason| IamError::InvalidAccessKey { reason })?;
        valid_secret_key(secret.expose()).map_err(|reason| IamError::InvalidSecretKey { reason })?;
        if access_key == self.root.access_key {
            return Err(IamError::AccessKeyInUse { access_key });
        }
        let info = self
            .change(|state, sealer| {
                if state.access_key_taken(&access_key) {
                    return Err(IamError::AccessKeyInUse {
                        access_key: access_key.clone(),
                    });
                }
                if state.accounts.values().any(|a| a.record.name == new.name) {
                    return Err(IamError::NameInUse {
                        name: new.name.clone(),
                    });
                }
                let id = loop {
                    let id = format!(
                        "{:012}",
                        rand::random_range(100_000_000_000u64..1_000_000_000_000)
                    );
                    if id != self.account_id && !state.accounts.contains_key(&id) {
                        break id;
                    }
                };
                let now = now_unix();
                let record = AccountRecord {
                    id: id.clone(),
                    name: new.name.clone(),
                    root_access_key: access_key.clone(),
                    sealed_secret: sealer.seal(&access_key, secret.expose().as_bytes())?,
                    status: Status::Enabled,
                    created_unix: now,
                    updated_unix: now,
                };
                let info = account_info(&Account {
                    record: record.clone(),
                    secret: secret.clone(),
                });
                Ok((
                    vec![Write::Put(format!("{ACCOUNT_PREFIX}{id}"), encode(&record)?)],
                    info,
                ))
            })
            .await?;
        Ok((info, secret))
    }

    /// Removes an empty account (no users, groups, policies or service accounts left).
    pub async fn remove_account(&self, id: &str) -> Result<(), IamError> {
        self.change(|state, _| {
            let account = state.accounts.get(id).ok_or_else(|| no_such_account(id))?;
            let mine = |account: &Option<String>| account.as_deref() == Some(id);
            let mut left = Vec::new();
            let users = state.users.values().filter(|u| mine(&u.record.account)).count();
            if users > 0 {
                left.push(format!("{users} users"));
            }
            let groups = state.groups.values().filter(|g| mine(&g.account)).count();
            if groups > 0 {
                left.push(format!("{groups} groups"));
            }
            let policies = state
                .policies
                .values()
                .filter(|(rec, _)| rec.as_ref().is_some_and(|r| mine(&r.account)))
                .count();
            if policies > 0 {
                left.push(format!("{policies} policies"));
            }
            let root_key = &account.record.root_access_key;
            let service_accounts = state
                .service_accounts
                .values()
                .filter(|s| s.record.parent == *root_key)
                .count();
            if service_accounts > 0 {
                left.push(format!("{service_accounts} service accounts"));
            }
            if !left.is_empty() {
                return Err(IamError::AccountNotEmpty {
                    id: id.to_string(),
                    what: left.join(", "),
                });
            }
            Ok((vec![Write::Delete(format!("{ACCOUNT_PREFIX}{id}"))], ()))
        })
        .await
    }

    /// Enables or disables an account (a disabled account's identities cannot sign).
    pub async fn set_account_status(&self, id: &str, status: Status) -> Result<(), IamError> {
        self.change(|state, _| {
            let account = state.accounts.get(id).ok_or_else(|| no_such_account(id))?;
            let record = AccountRecord {
                status,
                updated_unix: now_unix(),
                ..account.record.clone()
            };
            Ok((
                vec![Write::Put(format!("{ACCOUNT_PREFIX}{id}"), encode(&record)?)],
                (),
            ))
        })
        .await
    }

    /// Every account other than the deployment's own.
    pub fn list_accounts(&self) -> Vec<AccountInfo> {
        self.snapshot().accounts.values().map(account_info).collect()
    }

    /// One account other than the deployment's own.
    pub fn account_info(&self, id: &str) -> Result<AccountInfo, IamError> {
        self.snapshot()
            .accounts
            .get(id)
            .map(account_info)
            .ok_or_else(|| no_such_account(id))
    }
}
