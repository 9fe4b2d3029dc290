//! Server-side encryption settings: the KMS (`kms_secret_key`, a `kms_keyring` file, Vault
//! Transit `kms_vault_*`, a KMIP server `kms_kmip_*` or MinIO KES `kms_kes_*`), the
//! encrypt-everything switch (`sse_auto`) and whether SSE-C keys are accepted over plain HTTP
//! (`sse_c_allow_http`), each from the command line, the environment or the config file.
//!
//! Invariant: the secret key is taken from the environment or the config file only (a command
//! line is visible to every user of the machine), and never logged.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Deserialize;

/// Data keys a rotation re-seals per second by default: a remote KMS sees at most this many
/// calls a second from the job.
pub const DEFAULT_ROTATION_RATE: u32 = 500;

/// Command-line flags (with their environment variables).
#[derive(Debug, Default, clap::Args)]
pub struct KmsArgs {
    /// A JSON keyring of named KMS keys (`{"default": NAME, "keys": {NAME: [base64, ...]}}`,
    /// a file or a mounted Kubernetes Secret); created keys and rotations are written back.
    #[arg(long, env = "STRATA_KMS_KEYRING")]
    pub kms_keyring: Option<PathBuf>,
    /// Encrypt every object with SSE-S3 when its request and bucket ask for nothing (needs a
    /// KMS).
    #[arg(long, env = "STRATA_SSE_AUTO")]
    pub sse_auto: Option<bool>,
    /// Accept SSE-C keys over plain HTTP (a test setup, or TLS ended by a proxy in front).
    #[arg(long, env = "STRATA_SSE_C_ALLOW_HTTP")]
    pub sse_c_allow_http: Option<bool>,
    /// Data keys re-sealed per second at most by a key rotation's job [default: 500].
    #[arg(long, env = "STRATA_KMS_ROTATION_RATE")]
    pub kms_rotation_rate: Option<u32>,
    /// HashiCorp Vault / OpenBao as the KMS: its address, `https://HOST:PORT` (the token comes
    /// from STRATA_KMS_VAULT_TOKEN or the config file).
    #[arg(long, env = "STRATA_KMS_VAULT_ENDPOINT")]
    pub kms_vault_endpoint: Option<String>,
    /// The Transit engine's mount path [default: transit].
    #[arg(long, env = "STRATA_KMS_VAULT_MOUNT")]
    pub kms_vault_mount: Option<String>,
    /// The Transit key used when a request names none [default: strata-key].
    #[arg(long, env = "STRATA_KMS_VAULT_KEY")]
    pub kms_vault_key: Option<String>,
    /// PEM certificates to trust for Vault besides the system's.
    #[arg(long, env = "STRATA_KMS_VAULT_CA")]
    pub kms_vault_ca: Option<PathBuf>,
    /// A Vault Enterprise / HCP namespace.
    #[arg(long, env = "STRATA_KMS_VAULT_NAMESPACE")]
    pub kms_vault_namespace: Option<String>,
    /// A KMIP server as the KMS: `HOST:PORT` (KMIP's port is 5696).
    #[arg(long, env = "STRATA_KMS_KMIP_ADDRESS")]
    pub kms_kmip_address: Option<String>,
    /// The name the KMIP server's certificate is checked against [default: the host].
    #[arg(long, env = "STRATA_KMS_KMIP_SERVER_NAME")]
    pub kms_kmip_server_name: Option<String>,
    /// PEM certificates to trust for the KMIP server.
    #[arg(long, env = "STRATA_KMS_KMIP_CA")]
    pub kms_kmip_ca: Option<PathBuf>,
    /// The client certificate (PEM) Strata authenticates to the KMIP server with.
    #[arg(long, env = "STRATA_KMS_KMIP_CERT")]
    pub kms_kmip_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "STRATA_KMS_KMIP_CLIENT_KEY")]
    pub kms_kmip_client_key: Option<PathBuf>,
    /// The KMIP key used when a request names none [default: strata-key].
    #[arg(long, env = "STRATA_KMS_KMIP_KEY")]
    pub kms_kmip_key: Option<String>,
    /// MinIO KES as the KMS: `https://HOST:PORT`.
    #[arg(long, env = "STRATA_KMS_KES_ENDPOINT")]
    pub kms_kes_endpoint: Option<String>,
    /// PEM certificates to trust for KES besides the system's.
    #[arg(long, env = "STRATA_KMS_KES_CA")]
    pub kms_kes_ca: Option<PathBuf>,
    /// The client certificate (PEM) KES identifies Strata by.
    #[arg(long, env = "STRATA_KMS_KES_CERT")]
    pub kms_kes_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long, env = "STRATA_KMS_KES_CLIENT_KEY")]
    pub kms_kes_client_key: Option<PathBuf>,
    /// The KES key used when a request names none [default: strata-key].
    #[arg(long, env = "STRATA_KMS_KES_KEY")]
    pub kms_kes_key: Option<String>,
}

/// The same settings as config-file keys (`Debug` leaves the secret key and token out).
#[derive(Default, Deserialize)]
pub struct KmsFile {
    /// One KMS key, `NAME:BASE64` (32 bytes): the simplest setup (also
    /// `STRATA_KMS_SECRET_KEY`).
    pub kms_secret_key: Option<String>,
    /// See [`KmsArgs`].
    pub kms_keyring: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub sse_auto: Option<bool>,
    /// See [`KmsArgs`].
    pub sse_c_allow_http: Option<bool>,
    /// See [`KmsArgs`].
    pub kms_rotation_rate: Option<u32>,
    /// See [`KmsArgs`].
    pub kms_vault_endpoint: Option<String>,
    /// The Vault token (also `STRATA_KMS_VAULT_TOKEN`).
    pub kms_vault_token: Option<String>,
    /// See [`KmsArgs`].
    pub kms_vault_mount: Option<String>,
    /// See [`KmsArgs`].
    pub kms_vault_key: Option<String>,
    /// See [`KmsArgs`].
    pub kms_vault_ca: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_vault_namespace: Option<String>,
    /// See [`KmsArgs`].
    pub kms_kmip_address: Option<String>,
    /// See [`KmsArgs`].
    pub kms_kmip_server_name: Option<String>,
    /// See [`KmsArgs`].
    pub kms_kmip_ca: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_kmip_cert: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_kmip_client_key: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_kmip_key: Option<String>,
    /// See [`KmsArgs`].
    pub kms_kes_endpoint: Option<String>,
    /// See [`KmsArgs`].
    pub kms_kes_ca: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_kes_cert: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_kes_client_key: Option<PathBuf>,
    /// See [`KmsArgs`].
    pub kms_kes_key: Option<String>,
}

impl std::fmt::Debug for KmsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsFile")
            .field("kms_secret_key", &self.kms_secret_key.as_ref().map(|_| ".."))
            .field("kms_keyring", &self.kms_keyring)
            .field("kms_vault_endpoint", &self.kms_vault_endpoint)
            .field("kms_vault_token", &self.kms_vault_token.as_ref().map(|_| ".."))
            .field("kms_kmip_address", &self.kms_kmip_address)
            .field("kms_kes_endpoint", &self.kms_kes_endpoint)
            .finish_non_exhaustive()
    }
}

/// The resolved settings.
pub struct KmsSettings {
    secret_key: Option<String>,
    keyring: Option<PathBuf>,
    vault: Option<strata_kms::VaultConfig>,
    kmip: Option<strata_kms::KmipConfig>,
    kes: Option<strata_kms::KesConfig>,
    sse_auto: bool,
    sse_c_allow_http: bool,
    rotation_rate: u32,
}

impl std::fmt::Debug for KmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSettings")
            .field("secret_key", &self.secret_key.as_ref().map(|_| ".."))
            .field("keyring", &self.keyring)
            .field("vault", &self.vault)
            .field("kmip", &self.kmip)
            .field("kes", &self.kes)
            .field("sse_auto", &self.sse_auto)
            .field("sse_c_allow_http", &self.sse_c_allow_http)
            .field("rotation_rate", &self.rotation_rate)
            .finish()
    }
}

/// Secrets taken from the environment only (never a command-line flag).
#[derive(Default)]
pub struct KmsSecretsEnv {
    /// `STRATA_KMS_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `STRATA_KMS_VAULT_TOKEN`.
    pub vault_token: Option<String>,
}

impl KmsSecretsEnv {
    /// The process's environment.
    pub fn from_env() -> KmsSecretsEnv {
        let var = |name| std::env::var(name).ok().filter(|s: &String| !s.trim().is_empty());
        KmsSecretsEnv {
            secret_key: var("STRATA_KMS_SECRET_KEY"),
            vault_token: var("STRATA_KMS_VAULT_TOKEN"),
        }
    }
}

/// Flags and environment over the file.
pub fn resolve(args: KmsArgs, file: KmsFile, env: KmsSecretsEnv) -> anyhow::Result<KmsSettings> {
    let secret_key = env.secret_key.or(file.kms_secret_key);
    let keyring = args.kms_keyring.or(file.kms_keyring);
    let vault = match args.kms_vault_endpoint.or(file.kms_vault_endpoint) {
        None => None,
        Some(url) => Some(strata_kms::VaultConfig {
            endpoint: strata_kms::Endpoint {
                url,
                ca_file: args.kms_vault_ca.or(file.kms_vault_ca),
                client_cert: None,
            },
            token: env
                .vault_token
                .or(file.kms_vault_token)
                .context("a Vault endpoint needs a token: STRATA_KMS_VAULT_TOKEN or kms_vault_token")?,
            mount: args
                .kms_vault_mount
                .or(file.kms_vault_mount)
                .unwrap_or_else(|| "transit".to_owned()),
            default_key: args
                .kms_vault_key
                .or(file.kms_vault_key)
                .unwrap_or_else(|| "strata-key".to_owned()),
            namespace: args.kms_vault_namespace.or(file.kms_vault_namespace),
        }),
    };
    let kmip = match args.kms_kmip_address.or(file.kms_kmip_address) {
        None => None,
        Some(address) => Some(strata_kms::KmipConfig {
            address,
            server_name: args.kms_kmip_server_name.or(file.kms_kmip_server_name),
            ca_file: args
                .kms_kmip_ca
                .or(file.kms_kmip_ca)
                .context("a KMIP server needs its CA: STRATA_KMS_KMIP_CA or kms_kmip_ca")?,
            client_cert: args
                .kms_kmip_cert
                .or(file.kms_kmip_cert)
                .context("a KMIP server needs a client certificate: STRATA_KMS_KMIP_CERT or kms_kmip_cert")?,
            client_key: args.kms_kmip_client_key.or(file.kms_kmip_client_key).context(
                "a KMIP server needs the client key: STRATA_KMS_KMIP_CLIENT_KEY or kms_kmip_client_key",
            )?,
            default_key: args
                .kms_kmip_key
                .or(file.kms_kmip_key)
                .unwrap_or_else(|| "strata-key".to_owned()),
        }),
    };
    let kes = match args.kms_kes_endpoint.or(file.kms_kes_endpoint) {
        None => None,
        Some(url) => {
            let cert = args
                .kms_kes_cert
                .or(file.kms_kes_cert)
                .context("KES needs a client certificate: STRATA_KMS_KES_CERT or kms_kes_cert")?;
            let key = args
                .kms_kes_client_key
                .or(file.kms_kes_client_key)
                .context("KES needs the client key: STRATA_KMS_KES_CLIENT_KEY or kms_kes_client_key")?;
            Some(strata_kms::KesConfig {
                endpoint: strata_kms::Endpoint {
                    url,
                    ca_file: args.kms_kes_ca.or(file.kms_kes_ca),
                    client_cert: Some((cert, key)),
                },
                default_key: args
                    .kms_kes_key
                    .or(file.kms_kes_key)
                    .unwrap_or_else(|| "strata-key".to_owned()),
            })
        }
    };
    let n_backends = usize::from(secret_key.is_some())
        + usize::from(keyring.is_some())
        + usize::from(vault.is_some())
        + usize::from(kmip.is_some())
        + usize::from(kes.is_some());
    if n_backends > 1 {
        anyhow::bail!("more than one KMS is configured (secret key, keyring, Vault, KMIP, KES); use one");
    }
    Ok(KmsSettings {
        secret_key,
        keyring,
        vault,
        kmip,
        kes,
        sse_auto: args.sse_auto.or(file.sse_auto).unwrap_or(false),
        sse_c_allow_http: args.sse_c_allow_http.or(file.sse_c_allow_http).unwrap_or(false),
        rotation_rate: args
            .kms_rotation_rate
            .or(file.kms_rotation_rate)
            .unwrap_or(DEFAULT_ROTATION_RATE)
            .max(1),
    })
}

impl KmsSettings {
    /// Re-seals per second of a key rotation's job.
    pub fn rotation_rate(&self) -> u32 {
        self.rotation_rate
    }

    /// The front door's encryption settings; `tls`: the server speaks TLS; `single_node`: the
    /// keyring file may be rewritten by key creation and rotation (on several nodes each has
    /// its own copy, so it is read-only). A keyring file without write permission (a mounted
    /// Kubernetes Secret) is read-only too: its keys change by changing the file.
    pub fn encryption(&self, tls: bool, single_node: bool) -> anyhow::Result<strata_s3::EncryptionConfig> {
        let kms: Option<Arc<dyn strata_kms::Kms>> = if let Some(spec) = &self.secret_key {
            Some(Arc::new(
                strata_kms::BuiltinKms::from_secret_key(spec).context("STRATA_KMS_SECRET_KEY")?,
            ))
        } else if let Some(path) = &self.keyring {
            let writable = single_node && std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly());
            Some(Arc::new(
                strata_kms::BuiltinKms::from_keyring_file(path, writable)
                    .with_context(|| format!("KMS keyring {}", path.display()))?,
            ))
        } else if let Some(vault) = &self.vault {
            // Opened data keys are reused for a minute: reads do not wait on Vault each time.
            let vault: Arc<dyn strata_kms::Kms> =
                Arc::new(strata_kms::VaultKms::new(vault.clone()).context("the Vault KMS settings")?);
            Some(Arc::new(strata_kms::CachingKms::new(
                vault,
                strata_kms::cache::DEFAULT_TTL,
                strata_kms::cache::DEFAULT_MAX_ENTRIES,
            )))
        } else if let Some(kmip) = &self.kmip {
            // KMIP material is held for a bounded time by the backend itself.
            Some(Arc::new(
                strata_kms::KmipKms::new(kmip.clone()).context("the KMIP KMS settings")?,
            ))
        } else if let Some(kes) = &self.kes {
            let kes: Arc<dyn strata_kms::Kms> =
                Arc::new(strata_kms::KesKms::new(kes.clone()).context("the KES settings")?);
            Some(Arc::new(strata_kms::CachingKms::new(
                kes,
                strata_kms::cache::DEFAULT_TTL,
                strata_kms::cache::DEFAULT_MAX_ENTRIES,
            )))
        } else {
            None
        };
        if self.sse_auto && kms.is_none() {
            anyhow::bail!("sse_auto needs a KMS (STRATA_KMS_SECRET_KEY, a keyring, Vault or KMIP)");
        }
        if let Some(kms) = &kms {
            tracing::info!(
                backend = kms.backend(),
                default_key = kms.default_key(),
                sse_auto = self.sse_auto,
                "KMS configured"
            );
        }
        Ok(strata_s3::EncryptionConfig {
            kms,
            encrypt_all: self.sse_auto,
            customer_keys_allowed: tls || self.sse_c_allow_http,
        })
    }
}
