//! Command line and settings: `strata server [--address] [--region] [--config] [--domain]
//! [--certs-dir] [DRIVES...]`, merged with `STRATA_*` environment variables and the TOML config file.
//!
//! The `[identity]` table (LDAP directory, OpenID Connect providers) has no command-line flags:
//! its `STRATA_IDENTITY_*` variables override its keys one by one and add providers
//! (`crate::iam_setup::resolve_identity`).
//!
//! Invariant: precedence is command line > environment > config file > built-in defaults, for
//! every setting; unknown keys in the config file are an error (a typo must not be ignored).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use strata_cluster::ellipsis;
use strata_cluster::topology::Topology;

/// Default listen address (loopback only: exposing the server is a deliberate choice).
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9000";
/// Default region.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default drives of the embedded single-node setup: four directories, erasure coded 2+2.
pub const DEFAULT_DRIVES: &str = "./data/disk{1...4}";

/// Strata: an S3-compatible, erasure-coded object store.
#[derive(Debug, Parser)]
#[command(name = "strata", version, propagate_version = true)]
#[command(about = "Strata: an S3-compatible, erasure-coded object store")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 API over local drive directories.
    Server(Box<ServerArgs>),
    /// Manage named endpoints (URL and keys) for the client commands.
    Alias(crate::cli::AliasArgs),
    /// Administer a deployment: info, heal.
    Admin(crate::cli::AdminArgs),
    /// Bucket lifecycle rules (expiration, transitions), in the style of `mc ilm`.
    Ilm(crate::cli::IlmArgs),
    /// Checks beside a server for orchestrators: wait for quorum without this node (a preStop
    /// hook), write-read-delete an object (`helm test`).
    Health(crate::cli::health::HealthArgs),
    /// Load-generate against an S3 endpoint (put, get, stat, delete, mixed, list, multipart).
    Bench(strata_bench::BenchArgs),
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on, HOST:PORT [default: 127.0.0.1:9000].
    #[arg(long, env = "STRATA_ADDRESS")]
    pub address: Option<String>,
    /// This node's host name as the drive URLs spell it (e.g. a Kubernetes pod's DNS name from
    /// the Downward API). When set, the URLs with this host and the listen port are this node's
    /// drives, decided without resolving any name.
    #[arg(long, env = "STRATA_NODE_HOST")]
    pub node_host: Option<String>,
    /// Region this deployment answers for [default: us-east-1].
    #[arg(long, env = "STRATA_REGION")]
    pub region: Option<String>,
    /// Path of a TOML config file (see config/strata.toml).
    #[arg(long, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Base domain for virtual-host-style requests (bucket.DOMAIN); path style always works.
    #[arg(long, env = "STRATA_DOMAIN")]
    pub domain: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "STRATA_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// TLS certificate directory: `public.crt` and `private.key` (PEM) turn on TLS for S3 and
    /// node-to-node RPC; certificates in its `CAs/` subdirectory are trusted for peers.
    #[arg(long, env = "STRATA_CERTS_DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Observability: log level, metrics auth, audit targets.
    #[command(flatten)]
    pub obs: crate::obs_config::ObsArgs,
    /// Connections: timeouts of silent and idle connections, global and per-client caps.
    #[command(flatten)]
    pub conn: crate::conn_config::ConnArgs,
    /// Memory: the budget the server stays within.
    #[command(flatten)]
    pub memory: crate::memory_config::MemoryArgs,
    #[command(flatten)]
    pub lifecycle: crate::lifecycle_config::LifecycleArgs,
    /// Media classes of the pools and the storage classes over them.
    #[command(flatten)]
    pub classes: crate::classes_config::ClassesArgs,
    /// Server-side encryption: the KMS keyring and the SSE switches.
    #[command(flatten)]
    pub kms: crate::kms_config::KmsArgs,
    /// Drives: local directories (one node), or `http://HOST:PORT/PATH` URLs of every node's
    /// drives (a distributed deployment; every node gets the same list). `{1...4}` ellipses
    /// expand; when every argument has one, each argument is a pool [default:
    /// ./data/disk{1...4}].
    pub drives: Vec<String>,
}

/// The config file's contents; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub address: Option<String>,
    /// This node's host name in the drive URLs (see `ServerArgs::node_host`).
    pub node_host: Option<String>,
    pub region: Option<String>,
    pub domain: Option<String>,
    pub drives: Option<Vec<String>>,
    /// Pools, each a list of drive arguments (instead of `drives`).
    pub pools: Option<Vec<Vec<String>>>,
    pub root_user: Option<String>,
    pub root_password: Option<String>,
    pub log_format: Option<LogFormat>,
    /// TLS certificate directory (see `ServerArgs::certs_dir`).
    pub certs_dir: Option<PathBuf>,
    /// Observability keys (log level, metrics auth, audit targets); unknown keys still fail.
    #[serde(flatten)]
    pub obs: crate::obs_config::ObsFile,
    /// Connection keys (timeouts, caps).
    #[serde(flatten)]
    pub conn: crate::conn_config::ConnFile,
    /// Memory keys (the budget).
    #[serde(flatten)]
    pub memory: crate::memory_config::MemoryFile,
    /// Lifecycle job keys.
    #[serde(flatten)]
    pub lifecycle: crate::lifecycle_config::LifecycleFile,
    /// Media and storage class keys.
    #[serde(flatten)]
    pub classes: crate::classes_config::ClassesFile,
    /// Server-side encryption keys (the KMS, the SSE switches).
    #[serde(flatten)]
    pub kms: crate::kms_config::KmsFile,
    /// `[identity]`: the LDAP directory and OpenID Connect providers.
    #[serde(default)]
    pub identity: crate::iam_setup::IdentityFile,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }
}

/// Fully resolved server settings.
#[derive(Debug)]
pub struct Settings {
    pub address: String,
    /// This node's host name in the drive URLs; `None`: found by resolving the URLs' hosts.
    pub node_host: Option<String>,
    pub region: String,
    pub domain: Option<String>,
    /// Drive arguments of each pool, unexpanded (the topology expands and checks them).
    pub pools: Vec<Vec<String>>,
    pub root_user: Option<String>,
    pub root_password: Option<String>,
    pub log_format: LogFormat,
    /// TLS certificate directory; `None` serves plain HTTP.
    pub certs_dir: Option<PathBuf>,
    pub obs: crate::obs_config::ObsSettings,
    pub conn: crate::conn_config::ConnSettings,
    /// The configured memory budget in bytes (`None`: the default from the cgroup or machine).
    pub memory_budget_bytes: Option<u64>,
    /// Identity providers: the `[identity]` table with the `STRATA_IDENTITY_*` variables over it.
    pub identity: crate::iam_setup::IdentitySettings,
    /// Server-side encryption: the KMS and the SSE switches.
    pub kms: crate::kms_config::KmsSettings,
    /// The lifecycle job.
    pub lifecycle: strata_lifecycle::LifecycleSettings,
    /// Media and storage classes.
    pub classes: strata_object::StorageClassConfig,
    /// Scanner pause and orphan age.
    pub background: crate::lifecycle_config::BackgroundSettings,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Merges the command line (already merged with the environment by clap), the remaining
/// environment variables (`STRATA_ROOT_*`), the config file and the defaults.
pub fn resolve(
    args: ServerArgs,
    file: FileConfig,
    env_root_user: Option<String>,
    env_root_password: Option<String>,
) -> anyhow::Result<Settings> {
    let pools = if !args.drives.is_empty() {
        Topology::pools_from_args(&args.drives)
    } else if let Some(pools) = file.pools.filter(|p| !p.is_empty()) {
        if file.drives.is_some() {
            anyhow::bail!("the config file sets both `drives` and `pools`; use one");
        }
        pools
    } else if let Some(d) = file.drives.filter(|d| !d.is_empty()) {
        Topology::pools_from_args(&d)
    } else {
        vec![vec![DEFAULT_DRIVES.to_owned()]]
    };
    for arg in pools.iter().flatten() {
        // Typos in ellipses fail here, with the argument named.
        ellipsis::expand(arg)?;
    }
    Ok(Settings {
        address: non_empty(args.address)
            .or(non_empty(file.address))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned()),
        node_host: non_empty(args.node_host).or(non_empty(file.node_host)),
        region: non_empty(args.region)
            .or(non_empty(file.region))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        domain: non_empty(args.domain).or(non_empty(file.domain)),
        pools,
        root_user: non_empty(env_root_user).or(non_empty(file.root_user)),
        root_password: non_empty(env_root_password).or(non_empty(file.root_password)),
        log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
        certs_dir: args
            .certs_dir
            .filter(|d| !d.as_os_str().is_empty())
            .or(file.certs_dir.filter(|d| !d.as_os_str().is_empty())),
        obs: crate::obs_config::resolve(args.obs, file.obs),
        conn: crate::conn_config::resolve(args.conn, file.conn)?,
        memory_budget_bytes: crate::memory_config::resolve(args.memory, file.memory)?,
        lifecycle: crate::lifecycle_config::resolve(&args.lifecycle, &file.lifecycle)?,
        background: crate::lifecycle_config::resolve_background(&args.lifecycle, &file.lifecycle),
        classes: crate::classes_config::resolve(args.classes, file.classes)?,
        identity: crate::iam_setup::resolve_identity(file.identity, &crate::iam_setup::identity_env())?,
        kms: crate::kms_config::resolve(args.kms, file.kms, crate::kms_config::KmsSecretsEnv::from_env())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(address: Option<&str>, drives: &[&str]) -> ServerArgs {
        ServerArgs {
            address: address.map(str::to_owned),
            node_host: None,
            region: None,
            config: None,
            domain: None,
            log_format: None,
            certs_dir: None,
            obs: Default::default(),
            conn: Default::default(),
            memory: Default::default(),
            lifecycle: Default::default(),
            classes: Default::default(),
            kms: Default::default(),
            drives: drives.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn defaults() {
        let s = resolve(args(None, &[]), FileConfig::default(), None, None).unwrap();
        assert_eq!(s.address, DEFAULT_ADDRESS);
        assert_eq!(s.region, DEFAULT_REGION);
        assert_eq!(s.pools, [[DEFAULT_DRIVES]]);
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(s.root_user.is_none());
        assert!(s.certs_dir.is_none());
    }

    #[test]
    fn certs_dir_precedence() {
        let file: FileConfig = toml::from_str("certs_dir = \"/etc/strata/certs\"").unwrap();
        let s = resolve(args(None, &[]), file, None, None).unwrap();
        assert_eq!(s.certs_dir, Some(PathBuf::from("/etc/strata/certs")));
        let file: FileConfig = toml::from_str("certs_dir = \"/etc/strata/certs\"").unwrap();
        let mut a = args(None, &[]);
        a.certs_dir = Some(PathBuf::from("/cli/certs"));
        let s = resolve(a, file, None, None).unwrap();
        assert_eq!(s.certs_dir, Some(PathBuf::from("/cli/certs")));
        let cli = Cli::try_parse_from(["strata", "server", "--certs-dir", "/c", "/d{1...4}"]).unwrap();
        let Command::Server(a) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(a.certs_dir, Some(PathBuf::from("/c")));
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let file = FileConfig {
            address: Some("0.0.0.0:9100".into()),
            region: Some("eu-west-1".into()),
            drives: Some(vec!["/f{1...2}".into()]),
            root_user: Some("fileuser".into()),
            root_password: Some("filepassword".into()),
            log_format: Some(LogFormat::Json),
            ..Default::default()
        };
        let s = resolve(
            args(Some("127.0.0.1:1"), &["/c{1...4}"]),
            file,
            Some("envuser".into()),
            None,
        )
        .unwrap();
        assert_eq!(s.address, "127.0.0.1:1");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.pools, [["/c{1...4}"]]);
        assert_eq!(s.root_user.as_deref(), Some("envuser"));
        assert_eq!(s.root_password.as_deref(), Some("filepassword"));
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn file_rejects_unknown_keys() {
        assert!(toml::from_str::<FileConfig>("adress = \"x\"").is_err());
        assert!(toml::from_str::<FileConfig>("audit_fil = \"x\"").is_err());
        let f: FileConfig = toml::from_str("audit_file = \"/a.log\"\nregion = \"r\"").unwrap();
        assert_eq!(f.obs.audit_file, Some(PathBuf::from("/a.log")));
        assert!(toml::from_str::<FileConfig>("connections_per_client = 1").is_err());
        let f: FileConfig =
            toml::from_str("connections_per_client_max = 7\naudit_file = \"/a.log\"").unwrap();
        assert_eq!(f.conn.connections_per_client_max, Some(7));
        assert_eq!(f.obs.audit_file, Some(PathBuf::from("/a.log")));
        let f: FileConfig = toml::from_str("log_format = \"json\"\ndrives = [\"/d{1...4}\"]").unwrap();
        assert_eq!(f.log_format, Some(LogFormat::Json));
        let f: FileConfig = toml::from_str(
            "pools = [[\"http://n1:9000/d{1...4}\", \"http://n2:9000/d{1...4}\"], [\"http://n{3...4}:9000/d{1...4}\"]]",
        )
        .unwrap();
        let s = resolve(args(None, &[]), f, None, None).unwrap();
        assert_eq!(s.pools.len(), 2);
        assert_eq!(s.pools[0].len(), 2);
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/strata.toml");
        FileConfig::load(&path).unwrap();
    }

    #[test]
    fn example_identity_section_parses_when_uncommented() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/strata.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let (_, section) = text.split_once("-- identity\n").unwrap();
        // The example's tables and keys, uncommented (lines "# [..." and "# key = ...").
        let uncommented: String = section
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with('[') || l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let file: FileConfig = toml::from_str(&uncommented).unwrap();
        let ldap = file.identity.ldap.as_ref().unwrap();
        assert_eq!(ldap.nested_groups, Some(true));
        assert!(ldap.lookup_bind_password.is_some());
        assert_eq!(file.identity.openid.len(), 2);
        let identity =
            crate::iam_setup::resolve_identity(file.identity, &std::collections::BTreeMap::new()).unwrap();
        assert!(identity.ldap.unwrap().nested_groups);
        assert_eq!(
            identity.openid[1].config.role_arn().as_deref(),
            Some("arn:minio:iam:::role/apps")
        );
    }

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from(["strata", "server", "--address", "127.0.0.1:0", "/d{1...4}"]).unwrap();
        let Command::Server(a) = cli.command else {
            panic!("parsed as another command")
        };
        assert_eq!(a.address.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(a.drives, ["/d{1...4}"]);
    }
}
