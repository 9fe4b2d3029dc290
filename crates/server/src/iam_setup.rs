//! IAM at start-up: the object layer's system records as IAM's store, the deployment's account
//! id, and the re-seal of IAM secrets when the root credentials changed
//! (`STRATA_ROOT_USER_OLD` / `STRATA_ROOT_PASSWORD_OLD` name the previous ones).

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use strata_iam::store::StoreGuard;
use strata_iam::{Iam, IamError, RootKeys, SystemStore};
use strata_object::ObjectLayer;

/// First pause before retrying a load of the IAM records that storage refused.
const LOAD_RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// Attempts before the server opens its front door without the records (it then answers
/// not ready until a background task has read them).
const FIRST_LOAD_ATTEMPTS: usize = 1;
/// Longest pause between those retries.
const LOAD_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// The namespace of IAM's system records.
pub const IAM_NAMESPACE: &str = "iam";

/// IAM's records as system records of the object layer.
#[derive(Debug)]
pub struct LayerStore {
    layer: Arc<ObjectLayer>,
}

#[async_trait::async_trait]
impl SystemStore for LayerStore {
    async fn put(&self, key: &str, value: Bytes) -> Result<(), String> {
        self.layer
            .put_system_record(IAM_NAMESPACE, key, value)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.layer
            .delete_system_record(IAM_NAMESPACE, key)
            .await
            .map_err(|e| e.to_string())
    }

    async fn list(&self) -> Result<Vec<(String, Bytes)>, String> {
        self.layer
            .list_system_records(IAM_NAMESPACE)
            .await
            .map_err(|e| e.to_string())
    }

    async fn lock(&self) -> Result<StoreGuard, String> {
        let lock = self
            .layer
            .lock_system(IAM_NAMESPACE)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Box::new(lock))
    }

    async fn announce(&self) {
        self.layer.announce_system_change(IAM_NAMESPACE).await;
    }
}

/// The 12-digit account id of the deployment's root account, stable for its lifetime (derived
/// from the deployment id).
pub fn account_id(deployment_id: uuid::Uuid) -> String {
    format!("{:012}", deployment_id.as_u128() % 1_000_000_000_000)
}

/// Opens the IAM records, retrying storage errors up to `attempts` times with backoff.
async fn open_records(iam: &Iam, old_root: Option<&RootKeys>, attempts: usize) -> Result<(), IamError> {
    let mut pause = LOAD_RETRY_MIN;
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match iam.open_records(old_root).await {
            Ok(()) => {
                if attempt > 1 {
                    tracing::info!(waited_secs = started.elapsed().as_secs(), "IAM records loaded");
                }
                return Ok(());
            }
            Err(err @ IamError::Store { .. }) if attempt < attempts => {
                tracing::info!(
                    %err,
                    waited_secs = started.elapsed().as_secs(),
                    retry_in_ms = pause.as_millis() as u64,
                    "waiting for the IAM records"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LOAD_RETRY_MAX);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Loads IAM over `layer`'s system records and keeps it current (change notices from other
/// nodes, and a periodic reload).
pub async fn open(layer: &Arc<ObjectLayer>, access_key: &str, secret_key: &str) -> anyhow::Result<Arc<Iam>> {
    let root = RootKeys {
        access_key: access_key.to_owned(),
        secret_key: secret_key.to_owned(),
    };
    let old_root = match (
        std::env::var("STRATA_ROOT_USER_OLD")
            .ok()
            .filter(|s| !s.is_empty()),
        std::env::var("STRATA_ROOT_PASSWORD_OLD")
            .ok()
            .filter(|s| !s.is_empty()),
    ) {
        (Some(access_key), Some(secret_key)) => Some(RootKeys {
            access_key,
            secret_key,
        }),
        (None, None) => None,
        _ => anyhow::bail!("set both STRATA_ROOT_USER_OLD and STRATA_ROOT_PASSWORD_OLD, or neither"),
    };
    let store = Arc::new(LayerStore {
        layer: Arc::clone(layer),
    });
    let changes = layer.system_changes();
    let iam = Iam::unloaded(root, &account_id(layer.deployment_id()), store)?;
    // Right after start the other nodes' drives may not all be connected yet, and past
    // quorum loss the records cannot be read at all: the front door opens anyway (root and
    // anonymous requests are answered, other keys get 503, /health/ready says not ready)
    // while a task keeps trying.
    match open_records(&iam, old_root.as_ref(), FIRST_LOAD_ATTEMPTS).await {
        Ok(()) => {}
        Err(err @ IamError::Store { .. }) => {
            tracing::warn!(%err, "IAM records not readable yet; serving root only until they are");
            let iam = Arc::clone(&iam);
            tokio::spawn(async move {
                if let Err(err) = open_records(&iam, old_root.as_ref(), usize::MAX).await {
                    tracing::error!(%err, "IAM records cannot be opened; only root can sign");
                }
            });
        }
        Err(err) => return Err(err).context("loading users and policies"),
    }
    tokio::spawn(Arc::clone(&iam).watch(changes, IAM_NAMESPACE));
    Ok(iam)
}

/// Prefix of the OpenID Connect provider settings; a provider named NAME uses the same
/// variables with `_NAME` appended (`STRATA_IDENTITY_OPENID_CONFIG_URL_DEX`, ...).
const OPENID_ENV: &str = "STRATA_IDENTITY_OPENID_";
/// Largest discovery document or key set fetched.
const IDP_DOCUMENT_BYTES_MAX: u64 = 1024 * 1024;

/// Fetches public documents of identity providers over HTTP(S) (system trust roots, plus the
/// PEM file `STRATA_IDENTITY_OPENID_CA_FILE` names).
pub struct HttpFetch {
    ca_file: Option<std::path::PathBuf>,
}

#[async_trait::async_trait]
impl strata_iam::oidc::Fetch for HttpFetch {
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let uri: http::Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(format!("{url} is not an absolute URL"));
        };
        let endpoint: http::Uri = format!("{scheme}://{authority}")
            .parse()
            .map_err(|_| format!("{url} is not a URL"))?;
        let mut config = strata_client::ClientConfig::new(endpoint, String::new(), String::new());
        config.ca_file = self.ca_file.clone();
        config.request_timeout = std::time::Duration::from_secs(10);
        let client = strata_client::Client::new(config).map_err(|e| e.to_string())?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        client
            .get_unsigned(path, IDP_DOCUMENT_BYTES_MAX)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string())
    }
}

/// The OpenID Connect providers the environment configures: `STRATA_IDENTITY_OPENID_CONFIG_URL`
/// (the discovery document) and `..._CLIENT_ID` (the audience) each enable one, with optional
/// `..._CLAIM_NAME` (the claim naming policies; `policy`) or `..._ROLE_POLICY` (comma-separated
/// policies for every token of the provider); `_NAME` suffixes configure more providers.
pub fn openid_providers_from_env() -> anyhow::Result<Vec<Arc<strata_iam::oidc::OidcProvider>>> {
    let vars: std::collections::BTreeMap<String, String> = std::env::vars()
        .filter(|(k, v)| k.starts_with(OPENID_ENV) && !v.trim().is_empty())
        .collect();
    let fetch: Arc<dyn strata_iam::oidc::Fetch> = Arc::new(HttpFetch {
        ca_file: vars
            .get("STRATA_IDENTITY_OPENID_CA_FILE")
            .map(std::path::PathBuf::from),
    });
    let mut providers = Vec::new();
    for (key, url) in &vars {
        let Some(suffix) = key.strip_prefix("STRATA_IDENTITY_OPENID_CONFIG_URL") else {
            continue;
        };
        let name = suffix.trim_start_matches('_');
        let get = |setting: &str| vars.get(&format!("{OPENID_ENV}{setting}{suffix}")).cloned();
        let client_id = get("CLIENT_ID").with_context(|| {
            format!("{key} is set but {OPENID_ENV}CLIENT_ID{suffix} (the audience) is not")
        })?;
        let role_policies = get("ROLE_POLICY").map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        });
        let config = strata_iam::oidc::OidcConfig {
            name: if name.is_empty() {
                "openid".to_owned()
            } else {
                name.to_ascii_lowercase()
            },
            config_url: url.clone(),
            client_id,
            claim_name: get("CLAIM_NAME").unwrap_or_else(|| "policy".to_owned()),
            role_policies,
        };
        tracing::info!(
            provider = config.name.as_str(),
            url = url.as_str(),
            "OpenID Connect provider configured"
        );
        providers.push(Arc::new(strata_iam::oidc::OidcProvider::new(
            config,
            Arc::clone(&fetch),
        )));
    }
    Ok(providers)
}

/// Prefix of the LDAP settings.
const LDAP_ENV: &str = "STRATA_IDENTITY_LDAP_";

/// The LDAP directory the environment configures: `STRATA_IDENTITY_LDAP_SERVER_ADDR`
/// (`host:port`) enables it, with `..._LOOKUP_BIND_DN` / `..._LOOKUP_BIND_PASSWORD`,
/// `..._USER_DN_SEARCH_BASE_DN` / `..._USER_DN_SEARCH_FILTER` (`(uid=%s)`), optionally
/// `..._GROUP_SEARCH_BASE_DN` / `..._GROUP_SEARCH_FILTER` (`(&(objectclass=groupOfNames)(member=%d))`),
/// and the transport: `ldaps://` by default, `..._START_TLS=on` for StartTLS,
/// `..._SERVER_INSECURE=on` for plain LDAP (test setups), `..._TLS_SKIP_VERIFY=on`.
pub fn ldap_from_env() -> anyhow::Result<Option<Arc<strata_iam::ldap::LdapConfig>>> {
    use strata_iam::ldap::{LdapConfig, LdapTransport};
    let get = |name: &str| {
        std::env::var(format!("{LDAP_ENV}{name}"))
            .ok()
            .filter(|v| !v.trim().is_empty())
    };
    let on = |name: &str| {
        get(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "on" | "true" | "1"))
    };
    let Some(server_addr) = get("SERVER_ADDR") else {
        return Ok(None);
    };
    let required = |name: &str| {
        get(name).with_context(|| format!("{LDAP_ENV}SERVER_ADDR is set but {LDAP_ENV}{name} is not"))
    };
    let transport = if on("SERVER_INSECURE") {
        LdapTransport::Plain
    } else if on("START_TLS") {
        LdapTransport::StartTls
    } else {
        LdapTransport::Tls
    };
    let config = LdapConfig {
        server_addr,
        transport,
        tls_skip_verify: on("TLS_SKIP_VERIFY"),
        lookup_bind_dn: required("LOOKUP_BIND_DN")?,
        lookup_bind_password: required("LOOKUP_BIND_PASSWORD")?,
        user_search_base: required("USER_DN_SEARCH_BASE_DN")?,
        user_search_filter: get("USER_DN_SEARCH_FILTER").unwrap_or_else(|| "(uid=%s)".to_owned()),
        group_search_base: get("GROUP_SEARCH_BASE_DN"),
        group_search_filter: get("GROUP_SEARCH_FILTER"),
    };
    if config.transport == LdapTransport::Plain {
        tracing::warn!(
            server = config.server_addr.as_str(),
            "LDAP without TLS: passwords cross the network in clear"
        );
    }
    tracing::info!(server = config.server_addr.as_str(), "LDAP directory configured");
    Ok(Some(Arc::new(config)))
}

/// Scrapers other than root: identities whose policies allow `admin:Prometheus`.
pub struct Scrapers {
    iam: Arc<Iam>,
}

impl Scrapers {
    pub fn new(iam: Arc<Iam>) -> Scrapers {
        Scrapers { iam }
    }
}

impl strata_obs::ScrapeAuthorizer for Scrapers {
    fn scrape_secret(&self, access_key: &str) -> Option<String> {
        let caller = self.iam.caller(access_key)?;
        let decision =
            strata_iam::authorize_admin(&caller, "admin:Prometheus", strata_iam::policy::Context::new());
        if !decision.allowed {
            tracing::debug!(access_key, reason = ?decision.reason, "metrics scrape not allowed");
            return None;
        }
        self.iam.secret_key(access_key).map(|s| s.expose().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_have_twelve_digits() {
        let id = account_id(uuid::Uuid::from_u128(42));
        assert_eq!(id, "000000000042");
        let id = account_id(uuid::Uuid::from_u128(u128::MAX));
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_digit()));
    }
}
