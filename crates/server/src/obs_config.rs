//! Observability settings of `strata server` (logs, metrics auth, audit targets, usage walk):
//! command-line flags with `STRATA_*` environment variables, config-file keys, defaults.
//!
//! Invariant: the same precedence as every other setting (command line > environment > config
//! file > default); the webhook auth token is never shown in `--help` output or `Debug`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;
use strata_obs::{FileTargetConfig, MetricsAuth, WebhookConfig};

/// Default audit file rotation size: 100 MiB.
pub const AUDIT_FILE_ROTATE_BYTES_DEFAULT: u64 = 100 << 20;
/// Default rotated audit files kept.
pub const AUDIT_FILE_KEEP_DEFAULT: u32 = 5;
/// Default queue length of each audit target, in records.
pub const AUDIT_QUEUE_LEN_DEFAULT: usize = 10_000;
/// Default records per webhook POST.
pub const AUDIT_WEBHOOK_BATCH_SIZE_DEFAULT: usize = 1;
/// Default bound of the webhook spill directory: 1 GiB.
pub const AUDIT_WEBHOOK_SPILL_BYTES_MAX_DEFAULT: u64 = 1 << 30;
/// Default pause between bucket usage walks.
pub const USAGE_INTERVAL_SECS_DEFAULT: u64 = 300;

/// `metrics_auth` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAuthArg {
    /// Bearer token from `strata admin prometheus generate`.
    Jwt,
    /// No authentication.
    Public,
}

/// Command-line flags (each with its environment variable).
#[derive(Debug, Default, clap::Args)]
pub struct ObsArgs {
    /// Log level or filter (RUST_LOG, when set, takes precedence) [default: info].
    #[arg(long, env = "STRATA_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Who may scrape /metrics/node and /metrics/cluster [default: jwt].
    #[arg(long, env = "STRATA_METRICS_AUTH", value_enum)]
    pub metrics_auth: Option<MetricsAuthArg>,
    /// Audit log file (one JSON record per line) [default: none].
    #[arg(long, env = "STRATA_AUDIT_FILE")]
    pub audit_file: Option<PathBuf>,
    /// Rotate the audit file at this size [default: 104857600].
    #[arg(long, env = "STRATA_AUDIT_FILE_ROTATE_BYTES")]
    pub audit_file_rotate_bytes: Option<u64>,
    /// Rotated audit files kept [default: 5].
    #[arg(long, env = "STRATA_AUDIT_FILE_KEEP")]
    pub audit_file_keep: Option<u32>,
    /// Audit webhook endpoint, http://HOST:PORT/PATH [default: none].
    #[arg(long, env = "STRATA_AUDIT_WEBHOOK_ENDPOINT")]
    pub audit_webhook_endpoint: Option<String>,
    /// Bearer token sent to the audit webhook.
    #[arg(long, env = "STRATA_AUDIT_WEBHOOK_AUTH_TOKEN", hide_env_values = true)]
    pub audit_webhook_auth_token: Option<String>,
    /// Records each audit target queues in memory [default: 10000].
    #[arg(long, env = "STRATA_AUDIT_QUEUE_LEN")]
    pub audit_queue_len: Option<usize>,
    /// Records per webhook POST; above 1 the body is NDJSON [default: 1].
    #[arg(long, env = "STRATA_AUDIT_WEBHOOK_BATCH_SIZE")]
    pub audit_webhook_batch_size: Option<usize>,
    /// Directory where undelivered webhook records wait on disk [default: none].
    #[arg(long, env = "STRATA_AUDIT_WEBHOOK_SPILL_DIR")]
    pub audit_webhook_spill_dir: Option<PathBuf>,
    /// Most bytes the spill directory holds [default: 1073741824].
    #[arg(long, env = "STRATA_AUDIT_WEBHOOK_SPILL_BYTES_MAX")]
    pub audit_webhook_spill_bytes_max: Option<u64>,
    /// Seconds between bucket usage walks for the cluster metrics [default: 300].
    #[arg(long, env = "STRATA_USAGE_INTERVAL_SECS")]
    pub usage_interval_secs: Option<u64>,
}

/// The same settings as config-file keys (flattened into the file's top level by the caller).
#[derive(Debug, Default, Deserialize)]
pub struct ObsFile {
    /// See [`ObsArgs`].
    pub log_level: Option<String>,
    /// See [`ObsArgs`].
    pub metrics_auth: Option<MetricsAuthArg>,
    /// See [`ObsArgs`].
    pub audit_file: Option<PathBuf>,
    /// See [`ObsArgs`].
    pub audit_file_rotate_bytes: Option<u64>,
    /// See [`ObsArgs`].
    pub audit_file_keep: Option<u32>,
    /// See [`ObsArgs`].
    pub audit_webhook_endpoint: Option<String>,
    /// See [`ObsArgs`].
    pub audit_webhook_auth_token: Option<String>,
    /// See [`ObsArgs`].
    pub audit_queue_len: Option<usize>,
    /// See [`ObsArgs`].
    pub audit_webhook_batch_size: Option<usize>,
    /// See [`ObsArgs`].
    pub audit_webhook_spill_dir: Option<PathBuf>,
    /// See [`ObsArgs`].
    pub audit_webhook_spill_bytes_max: Option<u64>,
    /// See [`ObsArgs`].
    pub usage_interval_secs: Option<u64>,
}

/// Resolved observability settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ObsSettings {
    /// Configured log filter (RUST_LOG still wins).
    pub log_level: Option<String>,
    /// Scrape authentication.
    pub metrics_auth: MetricsAuth,
    /// File audit target.
    pub audit_file: Option<FileTargetConfig>,
    /// Webhook audit target.
    pub audit_webhook: Option<WebhookConfig>,
    /// Pause between usage walks.
    pub usage_interval: Duration,
}

impl fmt::Debug for ObsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObsSettings")
            .field("log_level", &self.log_level)
            .field("metrics_auth", &self.metrics_auth)
            .field("audit_file", &self.audit_file)
            .field(
                "audit_webhook",
                &self.audit_webhook.as_ref().map(|w| (&w.endpoint, &w.spill_dir)),
            )
            .field("usage_interval", &self.usage_interval)
            .finish()
    }
}

fn text(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Merges flags (with environment) over file keys over defaults.
pub fn resolve(a: ObsArgs, f: ObsFile) -> ObsSettings {
    let queue_len = a
        .audit_queue_len
        .or(f.audit_queue_len)
        .unwrap_or(AUDIT_QUEUE_LEN_DEFAULT);
    let audit_file = a.audit_file.or(f.audit_file).map(|path| FileTargetConfig {
        path,
        rotate_bytes: a
            .audit_file_rotate_bytes
            .or(f.audit_file_rotate_bytes)
            .unwrap_or(AUDIT_FILE_ROTATE_BYTES_DEFAULT),
        n_keep: a
            .audit_file_keep
            .or(f.audit_file_keep)
            .unwrap_or(AUDIT_FILE_KEEP_DEFAULT),
        queue_len,
    });
    let audit_webhook = text(a.audit_webhook_endpoint)
        .or(text(f.audit_webhook_endpoint))
        .map(|endpoint| WebhookConfig {
            endpoint,
            auth_token: text(a.audit_webhook_auth_token).or(text(f.audit_webhook_auth_token)),
            queue_len,
            batch_size: a
                .audit_webhook_batch_size
                .or(f.audit_webhook_batch_size)
                .unwrap_or(AUDIT_WEBHOOK_BATCH_SIZE_DEFAULT),
            spill_dir: a.audit_webhook_spill_dir.or(f.audit_webhook_spill_dir),
            spill_bytes_max: a
                .audit_webhook_spill_bytes_max
                .or(f.audit_webhook_spill_bytes_max)
                .unwrap_or(AUDIT_WEBHOOK_SPILL_BYTES_MAX_DEFAULT),
        });
    ObsSettings {
        log_level: text(a.log_level).or(text(f.log_level)),
        metrics_auth: match a.metrics_auth.or(f.metrics_auth).unwrap_or(MetricsAuthArg::Jwt) {
            MetricsAuthArg::Jwt => MetricsAuth::Jwt,
            MetricsAuthArg::Public => MetricsAuth::Public,
        },
        audit_file,
        audit_webhook,
        usage_interval: Duration::from_secs(
            a.usage_interval_secs
                .or(f.usage_interval_secs)
                .unwrap_or(USAGE_INTERVAL_SECS_DEFAULT)
                .max(1),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_precedence() {
        let s = resolve(ObsArgs::default(), ObsFile::default());
        assert_eq!(s.metrics_auth, MetricsAuth::Jwt);
        assert!(s.audit_file.is_none() && s.audit_webhook.is_none());
        assert_eq!(s.usage_interval, Duration::from_secs(USAGE_INTERVAL_SECS_DEFAULT));

        let f: ObsFile = toml::from_str(
            "metrics_auth = \"public\"\naudit_webhook_endpoint = \"http://f/\"\naudit_webhook_batch_size = 5\naudit_file = \"/f.log\"",
        )
        .unwrap();
        let a = ObsArgs {
            audit_webhook_endpoint: Some("http://a/".into()),
            audit_queue_len: Some(7),
            ..ObsArgs::default()
        };
        let s = resolve(a, f);
        assert_eq!(s.metrics_auth, MetricsAuth::Public);
        let w = s.audit_webhook.unwrap();
        assert_eq!(
            (w.endpoint.as_str(), w.batch_size, w.queue_len),
            ("http://a/", 5, 7)
        );
        assert_eq!(s.audit_file.unwrap().path, PathBuf::from("/f.log"));
    }
}
