//! IAM at start-up: the object layer's system records as IAM's store, the deployment's account
//! id, the re-seal of IAM secrets when the root credentials changed
//! (`STRATA_ROOT_USER_OLD` / `STRATA_ROOT_PASSWORD_OLD` name the previous ones), and the
//! identity providers (LDAP, OpenID Connect) from the config file's `[identity]` table and the
//! `STRATA_IDENTITY_*` variables, which override it.
//!
//! Invariant: the LDAP lookup password is never logged nor shown by `Debug`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use serde::Deserialize;
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
    let iam = Iam::unloaded(
        root,
        &strata_iam::deployment_account_id(layer.deployment_id().as_u128()),
        store,
    )?;
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

/// Prefix of every identity provider variable.
const IDENTITY_ENV: &str = "STRATA_IDENTITY_";
/// Prefix of the OpenID Connect provider settings; a provider named NAME uses the same
/// variables with `_NAME` appended (`STRATA_IDENTITY_OPENID_CONFIG_URL_DEX`, ...).
const OPENID_ENV: &str = "STRATA_IDENTITY_OPENID_";
/// Prefix of the LDAP settings.
const LDAP_ENV: &str = "STRATA_IDENTITY_LDAP_";
/// The name of the provider the unsuffixed variables (and a file entry without `name`) configure.
const OPENID_DEFAULT_NAME: &str = "openid";
/// Per-provider OpenID Connect variables (after the prefix, before the `_NAME` suffix).
const OPENID_SETTINGS: [&str; 5] = ["CONFIG_URL", "CLIENT_ID", "CLAIM_NAME", "ROLE_POLICY", "CA_FILE"];
/// The LDAP variables (after the prefix).
const LDAP_SETTINGS: [&str; 11] = [
    "SERVER_ADDR",
    "LOOKUP_BIND_DN",
    "LOOKUP_BIND_PASSWORD",
    "USER_DN_SEARCH_BASE_DN",
    "USER_DN_SEARCH_FILTER",
    "GROUP_SEARCH_BASE_DN",
    "GROUP_SEARCH_FILTER",
    "GROUP_SEARCH_NESTED",
    "START_TLS",
    "SERVER_INSECURE",
    "TLS_SKIP_VERIFY",
];
/// The claim naming a session's policies when none is configured.
const CLAIM_NAME_DEFAULT: &str = "policy";
/// The user search filter when none is configured.
const USER_SEARCH_FILTER_DEFAULT: &str = "(uid=%s)";
/// Largest discovery document or key set fetched.
const IDP_DOCUMENT_BYTES_MAX: u64 = 1024 * 1024;

/// The config file's `[identity]` table: the LDAP directory (`[identity.ldap]`) and the OpenID
/// Connect providers (`[[identity.openid]]`). `STRATA_IDENTITY_*` variables override it setting
/// by setting (see [`resolve_identity`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityFile {
    /// `[identity.ldap]`.
    pub ldap: Option<LdapFile>,
    /// `[[identity.openid]]`, one table per provider.
    #[serde(default)]
    pub openid: Vec<OpenIdFile>,
}

/// `[identity.ldap]`: the keys are the `STRATA_IDENTITY_LDAP_*` variables' names in lower case,
/// except `nested_groups` (`..._GROUP_SEARCH_NESTED`).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapFile {
    /// `host:port` of the directory.
    pub server_addr: Option<String>,
    /// The lookup account's DN.
    pub lookup_bind_dn: Option<String>,
    /// The lookup account's password (never logged or shown by `Debug`).
    pub lookup_bind_password: Option<String>,
    /// Where users are searched.
    pub user_dn_search_base_dn: Option<String>,
    /// How users are searched (`%s`: the user name).
    pub user_dn_search_filter: Option<String>,
    /// Where groups are searched.
    pub group_search_base_dn: Option<String>,
    /// How groups are searched (`%d`: the member's DN, `%s`: the user name).
    pub group_search_filter: Option<String>,
    /// Follow nested groups.
    pub nested_groups: Option<bool>,
    /// StartTLS instead of `ldaps://`.
    pub start_tls: Option<bool>,
    /// Plain LDAP (test setups).
    pub server_insecure: Option<bool>,
    /// Accept any server certificate (test setups).
    pub tls_skip_verify: Option<bool>,
}

impl std::fmt::Debug for LdapFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapFile")
            .field("server_addr", &self.server_addr)
            .field("lookup_bind_dn", &self.lookup_bind_dn)
            .field(
                "lookup_bind_password",
                &self.lookup_bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("user_dn_search_base_dn", &self.user_dn_search_base_dn)
            .field("user_dn_search_filter", &self.user_dn_search_filter)
            .field("group_search_base_dn", &self.group_search_base_dn)
            .field("group_search_filter", &self.group_search_filter)
            .field("nested_groups", &self.nested_groups)
            .field("start_tls", &self.start_tls)
            .field("server_insecure", &self.server_insecure)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .finish()
    }
}

/// One `[[identity.openid]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenIdFile {
    /// The provider's name (`openid` when absent): sessions' ARNs and the role ARN
    /// `arn:minio:iam:::role/<name>` use it, and `STRATA_IDENTITY_OPENID_*_<NAME>` variables
    /// override this table's settings.
    pub name: Option<String>,
    /// The discovery document's URL.
    pub config_url: Option<String>,
    /// The audience tokens must carry.
    pub client_id: Option<String>,
    /// The claim naming the session's policies (`policy`).
    pub claim_name: Option<String>,
    /// Policies for every token of this provider instead of a claim (gives it a role ARN).
    pub role_policy: Option<Vec<String>>,
    /// Extra trusted certificates (PEM) for the provider's HTTPS.
    pub ca_file: Option<PathBuf>,
}

/// One OpenID Connect provider as configured (file and environment merged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenIdSettings {
    /// The provider.
    pub config: strata_iam::oidc::OidcConfig,
    /// Extra trusted certificates for its HTTPS.
    pub ca_file: Option<PathBuf>,
}

/// The identity providers as configured (file and environment merged).
#[derive(Debug, Default)]
pub struct IdentitySettings {
    /// The LDAP directory, when one is configured.
    pub ldap: Option<strata_iam::ldap::LdapConfig>,
    /// The OpenID Connect providers, file order first, then those only the environment names
    /// (the unsuffixed one first, then by name).
    pub openid: Vec<OpenIdSettings>,
}

/// The `STRATA_IDENTITY_*` variables with a value that is not blank.
pub fn identity_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, v)| k.starts_with(IDENTITY_ENV) && !v.trim().is_empty())
        .collect()
}

/// A switch's value: `on`/`true`/`1`/`yes` or `off`/`false`/`0`/`no`.
fn switch(var: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => anyhow::bail!("{var}={value}: use on or off"),
    }
}

/// Merges the config file's `[identity]` table with the `STRATA_IDENTITY_*` variables `env`:
/// a variable overrides the file's key of the same setting (for OpenID Connect, of the
/// provider its `_NAME` suffix names, the unsuffixed ones the provider named `openid`), and
/// providers only the environment names are added. Unknown variables and keys, a provider
/// without its discovery URL or audience, and a directory without its lookup account or user
/// search base are errors.
pub fn resolve_identity(
    file: IdentityFile,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<IdentitySettings> {
    for key in env.keys() {
        let known = key.starts_with(OPENID_ENV)
            || key
                .strip_prefix(LDAP_ENV)
                .is_some_and(|s| LDAP_SETTINGS.contains(&s));
        if !known {
            anyhow::bail!("unknown identity variable {key}");
        }
    }
    Ok(IdentitySettings {
        ldap: resolve_ldap(file.ldap, env)?,
        openid: resolve_openid(file.openid, env)?,
    })
}

fn resolve_ldap(
    file: Option<LdapFile>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Option<strata_iam::ldap::LdapConfig>> {
    use strata_iam::ldap::{LdapConfig, LdapTransport};
    let in_file = file.is_some();
    let file = file.unwrap_or_default();
    let var = |name: &str| env.get(&format!("{LDAP_ENV}{name}")).cloned();
    let flag = |name: &str, from_file: Option<bool>| -> anyhow::Result<bool> {
        match var(name) {
            Some(v) => switch(&format!("{LDAP_ENV}{name}"), &v),
            None => Ok(from_file.unwrap_or(false)),
        }
    };
    let Some(server_addr) = var("SERVER_ADDR").or(file.server_addr) else {
        if in_file {
            anyhow::bail!("[identity.ldap] needs server_addr (or {LDAP_ENV}SERVER_ADDR)");
        }
        return Ok(None);
    };
    let required = |name: &str, key: &str, from_file: Option<String>| {
        var(name).or(from_file).with_context(|| {
            format!("LDAP is configured but not {key} ([identity.ldap]) or {LDAP_ENV}{name}")
        })
    };
    let transport = if flag("SERVER_INSECURE", file.server_insecure)? {
        LdapTransport::Plain
    } else if flag("START_TLS", file.start_tls)? {
        LdapTransport::StartTls
    } else {
        LdapTransport::Tls
    };
    let group_search_base = var("GROUP_SEARCH_BASE_DN").or(file.group_search_base_dn);
    let group_search_filter = var("GROUP_SEARCH_FILTER").or(file.group_search_filter);
    let nested_groups = flag("GROUP_SEARCH_NESTED", file.nested_groups)?;
    match (&group_search_base, &group_search_filter) {
        (Some(_), Some(_)) => {}
        (None, None) if !nested_groups => {}
        (None, None) => {
            anyhow::bail!(
                "nested LDAP groups are on but there is no group search (group_search_base_dn, group_search_filter)"
            )
        }
        _ => anyhow::bail!(
            "set both group_search_base_dn and group_search_filter ({LDAP_ENV}GROUP_SEARCH_BASE_DN, {LDAP_ENV}GROUP_SEARCH_FILTER), or neither"
        ),
    }
    Ok(Some(LdapConfig {
        server_addr,
        transport,
        tls_skip_verify: flag("TLS_SKIP_VERIFY", file.tls_skip_verify)?,
        lookup_bind_dn: required("LOOKUP_BIND_DN", "lookup_bind_dn", file.lookup_bind_dn)?,
        lookup_bind_password: required(
            "LOOKUP_BIND_PASSWORD",
            "lookup_bind_password",
            file.lookup_bind_password,
        )?,
        user_search_base: required(
            "USER_DN_SEARCH_BASE_DN",
            "user_dn_search_base_dn",
            file.user_dn_search_base_dn,
        )?,
        user_search_filter: var("USER_DN_SEARCH_FILTER")
            .or(file.user_dn_search_filter)
            .unwrap_or_else(|| USER_SEARCH_FILTER_DEFAULT.to_owned()),
        group_search_base,
        group_search_filter,
        nested_groups,
    }))
}

/// The `_NAME` suffix of a provider's variables (none for the default provider).
fn openid_suffix(name: &str) -> String {
    if name == OPENID_DEFAULT_NAME {
        String::new()
    } else {
        format!("_{}", name.to_ascii_uppercase())
    }
}

/// A provider name in the form names are compared in (lower case), checked: it ends role ARNs.
fn provider_name(name: &str) -> anyhow::Result<String> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        anyhow::bail!("OpenID Connect provider name {name:?}: use letters, digits, - and _");
    }
    Ok(name)
}

fn resolve_openid(
    files: Vec<OpenIdFile>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<OpenIdSettings>> {
    // The variables by provider name and setting; the unsuffixed CA_FILE is every provider's
    // fallback rather than a provider of its own.
    let mut from_env: BTreeMap<String, BTreeMap<&str, (&str, &str)>> = BTreeMap::new();
    let mut shared_ca_file = None;
    for (key, value) in env.range(OPENID_ENV.to_owned()..) {
        let Some(rest) = key.strip_prefix(OPENID_ENV) else {
            break;
        };
        if rest == "CA_FILE" {
            shared_ca_file = Some(PathBuf::from(value));
            continue;
        }
        let (setting, name) = OPENID_SETTINGS
            .iter()
            .find_map(|s| {
                if rest == *s {
                    Some((*s, OPENID_DEFAULT_NAME.to_owned()))
                } else {
                    rest.strip_prefix(s)
                        .and_then(|r| r.strip_prefix('_'))
                        .map(|n| (*s, n.to_owned()))
                }
            })
            .with_context(|| format!("unknown identity variable {key}"))?;
        let name = provider_name(&name).with_context(|| format!("in {key}"))?;
        let settings = from_env.entry(name).or_default();
        if let Some((other, _)) = settings.insert(setting, (key.as_str(), value.as_str())) {
            anyhow::bail!("{other} and {key} set the same thing: use one");
        }
    }
    let mut named: Vec<(String, OpenIdFile)> = Vec::new();
    for file in files {
        let name = provider_name(file.name.as_deref().unwrap_or(OPENID_DEFAULT_NAME))?;
        if named.iter().any(|(n, _)| *n == name) {
            anyhow::bail!("two [[identity.openid]] providers are named {name}");
        }
        named.push((name, file));
    }
    // Providers only the environment names: the unsuffixed one first, then by name.
    let mut env_only: Vec<&String> = from_env
        .keys()
        .filter(|n| !named.iter().any(|(f, _)| f == *n))
        .collect();
    env_only.sort_by_key(|n| (n.as_str() != OPENID_DEFAULT_NAME, n.as_str()));
    let env_only: Vec<(String, OpenIdFile)> = env_only
        .into_iter()
        .map(|n| (n.clone(), OpenIdFile::default()))
        .collect();
    let mut out = Vec::new();
    for (name, file) in named.into_iter().chain(env_only) {
        let vars = from_env.get(&name);
        let var = |setting: &str| {
            vars.and_then(|v| v.get(setting))
                .map(|(_, value)| value.to_string())
        };
        let suffix = openid_suffix(&name);
        let config_url = var("CONFIG_URL").or(file.config_url).with_context(|| {
            format!("OpenID Connect provider {name}: no config_url (or {OPENID_ENV}CONFIG_URL{suffix})")
        })?;
        if !(config_url.starts_with("https://") || config_url.starts_with("http://")) {
            anyhow::bail!("OpenID Connect provider {name}: config_url {config_url} is not an http(s) URL");
        }
        let client_id = var("CLIENT_ID").or(file.client_id).with_context(|| {
            format!(
                "OpenID Connect provider {name}: no client_id, the audience (or {OPENID_ENV}CLIENT_ID{suffix})"
            )
        })?;
        let role_policies = match var("ROLE_POLICY") {
            Some(list) => Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            None => file.role_policy.map(|list| {
                list.iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        };
        if role_policies.as_ref().is_some_and(Vec::is_empty) {
            anyhow::bail!("OpenID Connect provider {name}: role_policy names no policy");
        }
        out.push(OpenIdSettings {
            config: strata_iam::oidc::OidcConfig {
                name,
                config_url,
                client_id,
                claim_name: var("CLAIM_NAME")
                    .or(file.claim_name)
                    .unwrap_or_else(|| CLAIM_NAME_DEFAULT.to_owned()),
                role_policies,
            },
            ca_file: var("CA_FILE")
                .map(PathBuf::from)
                .or(file.ca_file)
                .or_else(|| shared_ca_file.clone()),
        });
    }
    Ok(out)
}

/// Fetches public documents of identity providers over HTTP(S) (system trust roots, plus the
/// PEM file the provider's `ca_file` names).
pub struct HttpFetch {
    ca_file: Option<PathBuf>,
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

/// The configured OpenID Connect providers, each fetching over HTTP(S) with its own trusted
/// certificates; logs each, with its role ARN when it has a role.
pub fn openid_providers(identity: &IdentitySettings) -> Vec<Arc<strata_iam::oidc::OidcProvider>> {
    identity
        .openid
        .iter()
        .map(|p| {
            let config = &p.config;
            match config.role_arn() {
                Some(role_arn) => tracing::info!(
                    provider = config.name.as_str(),
                    url = config.config_url.as_str(),
                    role_arn = role_arn.as_str(),
                    policies = ?config.role_policies.as_deref().unwrap_or_default(),
                    "OpenID Connect provider configured with a role"
                ),
                None => tracing::info!(
                    provider = config.name.as_str(),
                    url = config.config_url.as_str(),
                    claim = config.claim_name.as_str(),
                    "OpenID Connect provider configured"
                ),
            }
            let fetch: Arc<dyn strata_iam::oidc::Fetch> = Arc::new(HttpFetch {
                ca_file: p.ca_file.clone(),
            });
            Arc::new(strata_iam::oidc::OidcProvider::new(config.clone(), fetch))
        })
        .collect()
}

/// The configured LDAP directory, logged (never its password).
pub fn ldap(identity: &IdentitySettings) -> Option<Arc<strata_iam::ldap::LdapConfig>> {
    let config = identity.ldap.clone()?;
    if config.transport == strata_iam::ldap::LdapTransport::Plain {
        tracing::warn!(
            server = config.server_addr.as_str(),
            "LDAP without TLS: passwords cross the network in clear"
        );
    }
    tracing::info!(
        server = config.server_addr.as_str(),
        nested_groups = config.nested_groups,
        "LDAP directory configured"
    );
    Some(Arc::new(config))
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

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A config file holding only an `[identity]` table.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FileTop {
        identity: IdentityFile,
    }

    fn file(text: &str) -> IdentityFile {
        toml::from_str::<FileTop>(text).unwrap().identity
    }

    const FILE: &str = r#"
        [identity.ldap]
        server_addr = "ldap.example.com:636"
        lookup_bind_dn = "cn=lookup,dc=example,dc=com"
        lookup_bind_password = "file-lookup-secret"
        user_dn_search_base_dn = "ou=people,dc=example,dc=com"
        group_search_base_dn = "ou=groups,dc=example,dc=com"
        group_search_filter = "(&(objectclass=groupOfNames)(member=%d))"
        nested_groups = true

        [[identity.openid]]
        config_url = "https://idp.example.com/.well-known/openid-configuration"
        client_id = "strata"

        [[identity.openid]]
        name = "Apps"
        config_url = "https://apps.example.com/.well-known/openid-configuration"
        client_id = "apps"
        claim_name = "groups"
        role_policy = ["readwrite", " diagnostics "]
        ca_file = "/etc/strata/apps-ca.pem"
    "#;

    #[test]
    fn the_identity_table_is_read() {
        let identity = resolve_identity(file(FILE), &BTreeMap::new()).unwrap();
        let ldap = identity.ldap.unwrap();
        assert_eq!(ldap.server_addr, "ldap.example.com:636");
        assert_eq!(ldap.transport, strata_iam::ldap::LdapTransport::Tls);
        assert!(!ldap.tls_skip_verify);
        assert_eq!(ldap.lookup_bind_password, "file-lookup-secret");
        assert_eq!(ldap.user_search_filter, "(uid=%s)");
        assert_eq!(
            ldap.group_search_base.as_deref(),
            Some("ou=groups,dc=example,dc=com")
        );
        assert!(ldap.nested_groups);
        let [default, apps] = identity.openid.as_slice() else {
            panic!("{:?}", identity.openid)
        };
        assert_eq!(default.config.name, "openid");
        assert_eq!(default.config.claim_name, "policy");
        assert_eq!(default.config.role_policies, None);
        assert_eq!(default.config.role_arn(), None);
        assert_eq!(default.ca_file, None);
        assert_eq!(apps.config.name, "apps");
        assert_eq!(apps.config.claim_name, "groups");
        assert_eq!(
            apps.config.role_policies,
            Some(vec!["readwrite".to_string(), "diagnostics".to_string()])
        );
        assert_eq!(
            apps.config.role_arn().as_deref(),
            Some("arn:minio:iam:::role/apps")
        );
        assert_eq!(apps.ca_file, Some(PathBuf::from("/etc/strata/apps-ca.pem")));
        // An empty table configures nothing.
        let none = resolve_identity(IdentityFile::default(), &BTreeMap::new()).unwrap();
        assert!(none.ldap.is_none() && none.openid.is_empty());
    }

    #[test]
    fn variables_override_the_file_and_add_providers() {
        let vars = env(&[
            ("STRATA_IDENTITY_LDAP_LOOKUP_BIND_PASSWORD", "env-lookup-secret"),
            ("STRATA_IDENTITY_LDAP_GROUP_SEARCH_NESTED", "off"),
            ("STRATA_IDENTITY_LDAP_SERVER_INSECURE", "on"),
            ("STRATA_IDENTITY_OPENID_CLIENT_ID", "strata-from-env"),
            ("STRATA_IDENTITY_OPENID_ROLE_POLICY_APPS", "readonly"),
            (
                "STRATA_IDENTITY_OPENID_CONFIG_URL_DEX",
                "http://dex:5556/.well-known/openid-configuration",
            ),
            ("STRATA_IDENTITY_OPENID_CLIENT_ID_DEX", "dex-client"),
            ("STRATA_IDENTITY_OPENID_CA_FILE", "/etc/strata/ca.pem"),
        ]);
        let identity = resolve_identity(file(FILE), &vars).unwrap();
        let ldap = identity.ldap.unwrap();
        assert_eq!(ldap.lookup_bind_password, "env-lookup-secret");
        assert!(
            !ldap.nested_groups,
            "off in the environment beats true in the file"
        );
        assert_eq!(ldap.transport, strata_iam::ldap::LdapTransport::Plain);
        assert_eq!(ldap.server_addr, "ldap.example.com:636", "kept from the file");
        let names: Vec<&str> = identity.openid.iter().map(|p| p.config.name.as_str()).collect();
        assert_eq!(names, ["openid", "apps", "dex"]);
        assert_eq!(identity.openid[0].config.client_id, "strata-from-env");
        assert_eq!(
            identity.openid[1].config.role_policies,
            Some(vec!["readonly".to_string()])
        );
        assert_eq!(
            identity.openid[1].config.claim_name, "groups",
            "kept from the file"
        );
        // The unsuffixed CA file is the fallback of providers without their own.
        assert_eq!(
            identity.openid[0].ca_file,
            Some(PathBuf::from("/etc/strata/ca.pem"))
        );
        assert_eq!(
            identity.openid[1].ca_file,
            Some(PathBuf::from("/etc/strata/apps-ca.pem"))
        );
        assert_eq!(
            identity.openid[2].ca_file,
            Some(PathBuf::from("/etc/strata/ca.pem"))
        );
        assert_eq!(identity.openid[2].config.client_id, "dex-client");
    }

    #[test]
    fn the_environment_alone_works_as_before() {
        let vars = env(&[
            (
                "STRATA_IDENTITY_OPENID_CONFIG_URL_SHORT",
                "http://127.0.0.1:2/.well-known/openid-configuration",
            ),
            ("STRATA_IDENTITY_OPENID_CLIENT_ID_SHORT", "https://strata.test"),
            (
                "STRATA_IDENTITY_OPENID_CONFIG_URL",
                "http://127.0.0.1:1/.well-known/openid-configuration",
            ),
            ("STRATA_IDENTITY_OPENID_CLIENT_ID", "https://strata.test"),
            ("STRATA_IDENTITY_OPENID_ROLE_POLICY", "readonly, writeonly"),
            ("STRATA_IDENTITY_LDAP_SERVER_ADDR", "127.0.0.1:389"),
            ("STRATA_IDENTITY_LDAP_START_TLS", "on"),
            ("STRATA_IDENTITY_LDAP_LOOKUP_BIND_DN", "cn=lookup"),
            ("STRATA_IDENTITY_LDAP_LOOKUP_BIND_PASSWORD", "secret"),
            ("STRATA_IDENTITY_LDAP_USER_DN_SEARCH_BASE_DN", "ou=people"),
        ]);
        let identity = resolve_identity(IdentityFile::default(), &vars).unwrap();
        let names: Vec<&str> = identity.openid.iter().map(|p| p.config.name.as_str()).collect();
        assert_eq!(names, ["openid", "short"]);
        assert_eq!(
            identity.openid[0].config.role_arn().as_deref(),
            Some("arn:minio:iam:::role/openid")
        );
        assert_eq!(
            identity.openid[0].config.role_policies,
            Some(vec!["readonly".to_string(), "writeonly".to_string()])
        );
        let ldap = identity.ldap.unwrap();
        assert_eq!(ldap.transport, strata_iam::ldap::LdapTransport::StartTls);
        assert!(ldap.group_search_base.is_none() && !ldap.nested_groups);
        // LDAP variables without the server address configure nothing, as before.
        let partial = env(&[("STRATA_IDENTITY_LDAP_LOOKUP_BIND_DN", "cn=lookup")]);
        assert!(
            resolve_identity(IdentityFile::default(), &partial)
                .unwrap()
                .ldap
                .is_none()
        );
    }

    #[test]
    fn the_lookup_password_is_never_shown() {
        let parsed = file(FILE);
        assert!(!format!("{parsed:?}").contains("file-lookup-secret"));
        let identity = resolve_identity(parsed, &BTreeMap::new()).unwrap();
        assert!(!format!("{identity:?}").contains("file-lookup-secret"));
    }

    #[test]
    fn mistakes_are_errors() {
        let error_of = |text: &str, vars: &[(&str, &str)]| -> String {
            match toml::from_str::<FileTop>(text) {
                Err(e) => e.to_string(),
                Ok(top) => match resolve_identity(top.identity, &env(vars)) {
                    Err(e) => format!("{e:#}"),
                    Ok(identity) => panic!("accepted {text} {vars:?}: {identity:?}"),
                },
            }
        };
        let provider = "[[identity.openid]]\nconfig_url = \"https://i/\"\nclient_id = \"c\"\n";
        let ldap = "[identity.ldap]\nserver_addr = \"h:1\"\nlookup_bind_dn = \"cn=l\"\n\
                    lookup_bind_password = \"p\"\nuser_dn_search_base_dn = \"ou=p\"\n";
        resolve_identity(file(&format!("{ldap}{provider}")), &BTreeMap::new()).unwrap();
        /// A config file, the variables, and what the error says.
        type Case<'a> = (String, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case; 17] = [
            (
                "[identity.ldap]\nserver_adr = \"h:1\"".into(),
                &[],
                "unknown field",
            ),
            ("[identity]\nsaml = true".into(), &[], "unknown field"),
            (
                "[identity.ldap]\nlookup_bind_dn = \"cn=l\"".into(),
                &[],
                "needs server_addr",
            ),
            (
                "[identity.ldap]\nserver_addr = \"h:1\"".into(),
                &[],
                "lookup_bind_dn",
            ),
            (
                format!("{provider}role_policy = \"readonly\""),
                &[],
                "invalid type",
            ),
            (format!("{provider}role_policy = [\" \"]"), &[], "names no policy"),
            (
                "[[identity.openid]]\nconfig_url = \"https://i/\"".into(),
                &[],
                "no client_id",
            ),
            (
                "[[identity.openid]]\nconfig_url = \"idp\"\nclient_id = \"c\"".into(),
                &[],
                "http(s)",
            ),
            (format!("{provider}name = \"a b\""), &[], "use letters"),
            (
                format!(
                    "{provider}[[identity.openid]]\nname = \"OpenID\"\nconfig_url = \"https://j/\"\nclient_id = \"d\""
                ),
                &[],
                "two [[identity.openid]]",
            ),
            (
                ldap.into(),
                &[("STRATA_IDENTITY_LDAP_SERVER_INSECURE", "maybe")],
                "use on or off",
            ),
            (
                ldap.into(),
                &[("STRATA_IDENTITY_LDAP_GROUP_SEARCH_NESTED", "on")],
                "no group search",
            ),
            (
                ldap.into(),
                &[("STRATA_IDENTITY_LDAP_GROUP_SEARCH_BASE_DN", "ou=g")],
                "or neither",
            ),
            (
                ldap.into(),
                &[("STRATA_IDENTITY_LDAP_SERVR_ADDR", "h:1")],
                "unknown identity variable",
            ),
            (
                ldap.into(),
                &[("STRATA_IDENTITY_OPENID_CLIENTID", "c")],
                "unknown identity variable",
            ),
            (
                ldap.into(),
                &[("STRATA_IDENTITY_OPENID_CLIENT_ID_DEX", "c")],
                "no config_url",
            ),
            (
                provider.into(),
                &[
                    ("STRATA_IDENTITY_OPENID_CONFIG_URL", "https://i/"),
                    ("STRATA_IDENTITY_OPENID_CONFIG_URL_OPENID", "https://j/"),
                ],
                "set the same thing",
            ),
        ];
        for (text, vars, expected) in cases {
            let error = error_of(&text, vars);
            assert!(error.contains(expected), "{text} {vars:?}: {error}");
        }
    }
}
