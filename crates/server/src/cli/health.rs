//! `strata health ...`: checks run beside a server, made for orchestrators (Kubernetes hooks
//! and `helm test`), with nothing but the `strata` binary in the image.
//!
//! - `wait-maintenance` waits until the deployment would keep write quorum without this node
//!   and no returned node's heal is outstanding (`/health/cluster?maintenance=true`), then
//!   waits the drain time: a pod's preStop hook, so a rolling restart never takes a second
//!   node while the first is still rejoining or being healed.
//! - `roundtrip` writes an object through the S3 API, reads it back, compares and deletes it.
//!
//! Invariant: keys come from the environment (`STRATA_ACCESS_KEY`, `STRATA_SECRET_KEY`) or the
//! command line and are handed to the signing client only; never printed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Subcommand;
use strata_client::{Client, ClientConfig};
use strata_cluster::topology::{LocalAddr, join_host_port};

/// Path the maintenance check asks.
const MAINTENANCE_PATH: &str = "/health/cluster?maintenance=true";
/// Pause between two maintenance checks.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Time for one check's answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of the roundtrip's object: above one erasure block, so every shard is written.
const ROUNDTRIP_OBJECT_BYTES: usize = 3 * 1024 * 1024 + 17;
/// Port of a server whose STRATA_ADDRESS does not say.
const DEFAULT_PORT: u16 = 9000;

/// `strata health ...`.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    #[command(subcommand)]
    pub command: HealthCommand,
}

/// Subcommands of `strata health`.
#[derive(Debug, Subcommand)]
pub enum HealthCommand {
    /// Wait until the deployment keeps write quorum without this node, then wait the drain
    /// time (a Kubernetes preStop hook). Exits 1 if quorum without this node never came.
    WaitMaintenance {
        /// The node's URL [default: from STRATA_NODE_HOST (else 127.0.0.1), the port of
        /// STRATA_ADDRESS and https when STRATA_CERTS_DIR is set].
        #[arg(long)]
        url: Option<String>,
        /// A PEM CA to trust [default: $STRATA_CERTS_DIR/CAs/ca.crt when present].
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Longest wait for quorum without this node; 0 skips the check (a single-node
        /// deployment, which cannot keep quorum without its only node).
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
        /// Seconds to wait afterwards, while load balancers stop sending to this node.
        #[arg(long, default_value_t = 10)]
        drain_seconds: u64,
    },
    /// Write an object, read it back and compare, delete it (and the bucket, if this created
    /// it). Exits non-zero on any failure.
    Roundtrip {
        /// The S3 endpoint, http(s)://HOST:PORT.
        #[arg(long)]
        url: String,
        /// Bucket to use; created (and removed afterwards) when missing.
        #[arg(long, default_value = "strata-roundtrip")]
        bucket: String,
        /// Region requests are signed for.
        #[arg(long, default_value = super::DEFAULT_ALIAS_REGION)]
        region: String,
        /// A PEM CA to trust besides the system's.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Access key.
        #[arg(long, env = "STRATA_ACCESS_KEY")]
        access_key: String,
        /// Secret key (prefer the environment variable: arguments are visible to `ps`).
        #[arg(long, env = "STRATA_SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
}

/// Runs `strata health ...`.
pub fn run(args: HealthArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        HealthCommand::WaitMaintenance {
            url,
            ca_file,
            timeout_seconds,
            drain_seconds,
        } => {
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let url = match url {
                Some(url) => url,
                None => node_url(
                    env("STRATA_NODE_HOST").as_deref(),
                    env("STRATA_ADDRESS").as_deref(),
                    env("STRATA_CERTS_DIR").is_some(),
                )?,
            };
            let ca_file = ca_file.or_else(|| {
                env("STRATA_CERTS_DIR")
                    .map(|dir| PathBuf::from(dir).join("CAs").join("ca.crt"))
                    .filter(|path| path.is_file())
            });
            let client = client(&url, "", "", super::DEFAULT_ALIAS_REGION, ca_file)?;
            runtime.block_on(wait_maintenance(
                &client,
                &url,
                Duration::from_secs(timeout_seconds),
                Duration::from_secs(drain_seconds),
            ))
        }
        HealthCommand::Roundtrip {
            url,
            bucket,
            region,
            ca_file,
            access_key,
            secret_key,
        } => {
            let client = client(&url, &access_key, &secret_key, &region, ca_file)?;
            runtime.block_on(roundtrip(&client, &bucket))
        }
    }
}

/// This node's URL from its server settings: `host` as the drive URLs spell it (else
/// loopback), the port of `address` (`HOST:PORT` or `:PORT`).
fn node_url(host: Option<&str>, address: Option<&str>, tls: bool) -> anyhow::Result<String> {
    // The server's own reading of its listen address.
    let port = match address {
        None => DEFAULT_PORT,
        Some(address) => LocalAddr::parse(address)
            .with_context(|| format!("STRATA_ADDRESS {address:?}"))?
            .port(),
    };
    let host = host.map_or("127.0.0.1", |h| h.trim_start_matches('[').trim_end_matches(']'));
    Ok(format!(
        "{}://{}",
        if tls { "https" } else { "http" },
        join_host_port(host, port)
    ))
}

fn client(
    url: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
    ca_file: Option<PathBuf>,
) -> anyhow::Result<Client> {
    let endpoint = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    let mut config = ClientConfig::new(endpoint, access_key, secret_key);
    config.ca_file = ca_file;
    config.region = region.to_owned();
    config.pool_idle_connections = 1;
    config.connect_timeout = CHECK_TIMEOUT;
    config.request_timeout = CHECK_TIMEOUT;
    Client::new(config).context("creating the HTTP client")
}

async fn wait_maintenance(
    client: &Client,
    url: &str,
    timeout: Duration,
    drain: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    if timeout.is_zero() {
        println!(
            "{url}: no wait for quorum (timeout 0); draining {} s",
            drain.as_secs()
        );
        tokio::time::sleep(drain).await;
        return Ok(());
    }
    loop {
        let last = match client.get_unsigned(MAINTENANCE_PATH, 64).await {
            Ok(_) => {
                println!(
                    "{url}: the deployment keeps write quorum without this node (after {} s); \
                     draining {} s",
                    started.elapsed().as_secs(),
                    drain.as_secs()
                );
                tokio::time::sleep(drain).await;
                return Ok(());
            }
            Err(err) => err.to_string(),
        };
        if started.elapsed() >= timeout {
            bail!(
                "{url}: the deployment would lose write quorum without this node, or owes a heal \
                 of a returned node, still after {} s (last answer: {last}); Kubernetes stops \
                 the pod anyway",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn roundtrip(client: &Client, bucket: &str) -> anyhow::Result<()> {
    let created = client
        .create_bucket(bucket)
        .await
        .with_context(|| format!("creating bucket {bucket}"))?;
    let result = put_get_delete(client, bucket).await;
    if created {
        let removed = client
            .delete_bucket(bucket)
            .await
            .with_context(|| format!("removing bucket {bucket}"));
        result.and(removed)?;
    } else {
        result?;
    }
    println!("roundtrip ok: {ROUNDTRIP_OBJECT_BYTES} bytes written, read back identical, deleted");
    Ok(())
}

async fn put_get_delete(client: &Client, bucket: &str) -> anyhow::Result<()> {
    let mut data = vec![0u8; ROUNDTRIP_OBJECT_BYTES];
    rand::fill(&mut data[..]);
    let data = Bytes::from(data);
    let key = format!("strata-roundtrip/{:016x}", rand::random::<u64>());
    client
        .put_object(bucket, &key, data.clone())
        .await
        .with_context(|| format!("writing {bucket}/{key}"))?;
    let read = client
        .get_object_bytes(bucket, &key, ROUNDTRIP_OBJECT_BYTES as u64)
        .await
        .with_context(|| format!("reading {bucket}/{key}"));
    let deleted = client
        .delete_object(bucket, &key)
        .await
        .with_context(|| format!("deleting {bucket}/{key}"));
    let read = read?;
    deleted?;
    if read != data {
        bail!(
            "{bucket}/{key} read back differs from what was written ({} bytes read, {} written)",
            read.len(),
            data.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_url_follows_the_server_settings() {
        assert_eq!(node_url(None, None, false).unwrap(), "http://127.0.0.1:9000");
        assert_eq!(
            node_url(Some("s-pool0-1.s-hl.ns.svc.cluster.local"), Some(":9100"), true).unwrap(),
            "https://s-pool0-1.s-hl.ns.svc.cluster.local:9100"
        );
        assert_eq!(
            node_url(Some("::1"), Some("[::]:9000"), false).unwrap(),
            "http://[::1]:9000"
        );
        assert!(node_url(None, Some("9000"), false).is_err());
        assert!(node_url(None, Some(":x"), false).is_err());
    }
}
