//! The `strata` binary: `strata server` opens the drives, resolves root credentials, and serves
//! the S3 API; `strata alias` and `strata admin` are the client commands (module `cli`);
//! `strata --version` and `strata help` come from clap.
//!
//! Invariants: the secret key is printed only when it was generated on this start (so the
//! operator can copy it once) and is never written to the log; the object layer is shut down
//! only after the HTTP server has drained; `strata server` raises its file descriptor soft
//! limit to the hard limit before any thread starts, logs what it got, and serves at most half
//! that many connections.

mod admission;
mod allocator;
mod classes_config;
mod cli;
mod config;
mod conn_config;
mod credentials;
mod descriptors;
mod iam_setup;
mod idle;
mod kms_config;
mod lifecycle_config;
mod memory_config;
mod obs_config;
mod serve;
mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use strata_cluster::topology::{LocalAddr, Topology};

use crate::config::{Cli, Command, FileConfig, LogFormat, Settings};
use crate::credentials::Origin;

/// mimalloc instead of glibc's malloc: listing a million keys spent 13 % of the server's CPU in
/// glibc's `_int_malloc` (the metadata caches' page churn), see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Time background tasks get after the object layer has shut down.
const RUNTIME_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How many times (2 s apart) startup tries to open the configuration key while the KMS or a
/// quorum of drives is unavailable.
const CONFIG_KEY_ATTEMPTS: u32 = 60;

fn init_logging(format: LogFormat, level: Option<&str>) -> anyhow::Result<()> {
    let style = match format {
        LogFormat::Json => strata_obs::logging::LogStyle::Json,
        LogFormat::Text => strata_obs::logging::LogStyle::Text,
    };
    Ok(strata_obs::logging::init(style, level)?)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line, without a backtrace.
            eprintln!("strata: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => {
            let file = match &args.config {
                Some(path) => FileConfig::load(path)?,
                None => FileConfig::default(),
            };
            let settings = config::resolve(
                *args,
                file,
                env_var("STRATA_ROOT_USER"),
                env_var("STRATA_ROOT_PASSWORD"),
            )?;
            init_logging(settings.log_format, settings.obs.log_level.as_deref())?;
            let (nofile, error) = descriptors::raise_nofile_limit();
            descriptors::log_nofile_limit(nofile, error.as_ref());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("strata")
                .build()
                .context("starting the async runtime")?;
            let result = runtime.block_on(server(settings, nofile.soft));
            // Background tasks (drive maintenance, idle blocking threads) get a bounded time.
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
            result
        }
        Command::Alias(args) => cli::alias::run(args),
        Command::Admin(args) => cli::admin::run(args),
        Command::Ilm(args) => cli::run_ilm(args),
        Command::Health(args) => cli::health::run(args),
        Command::Bench(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("strata-bench")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(strata_bench::run(args))
        }
    }
}

/// The listener's limits: the configured ones, the connection cap fitted to the descriptor
/// limit `nofile_soft`.
fn connection_limits(settings: &Settings, nofile_soft: Option<u64>) -> serve::ConnectionLimits {
    let connections_max = descriptors::connections_max_for(settings.conn.connections_max, nofile_soft);
    if connections_max < settings.conn.connections_max {
        tracing::warn!(
            connections_max,
            configured = settings.conn.connections_max,
            nofile = nofile_soft.unwrap_or(u64::MAX),
            "serving fewer connections than configured: at most half the file descriptor limit (raise the hard limit, e.g. LimitNOFILE= in systemd)"
        );
    }
    serve::ConnectionLimits {
        timeouts: settings.conn.timeouts,
        connections_max,
        connections_per_client_max: settings.conn.connections_per_client_max,
    }
}

async fn server(settings: Settings, nofile_soft: Option<u64>) -> anyhow::Result<()> {
    let limits = connection_limits(&settings, nofile_soft);
    let local_addr = LocalAddr::parse(&settings.address)?.with_node_host(settings.node_host.as_deref());
    let topology =
        Topology::from_pools(&settings.pools, &local_addr).context("reading the drive arguments")?;
    let tls = settings.certs_dir.as_deref().map(tls::load).transpose()?;
    tls::check_endpoints(&topology, tls.is_some())?;
    if let Some(tls) = &tls {
        Arc::clone(&tls.cert).spawn_reloader();
        let cert = Arc::downgrade(&tls.cert);
        strata_obs::jobs::set_tls_source(Box::new(move || {
            cert.upgrade()
                .and_then(|c| c.earliest_not_after())
                .and_then(|t| u64::try_from(t).ok())
                .map(|t| vec![("strata_tls_certificate_not_after_seconds", "", t)])
                .unwrap_or_default()
        }));
    }
    let server_tls = tls.as_ref().map(|t| Arc::clone(&t.server));
    // The built-in keyring is a file per node: on several nodes it is changed by changing the
    // shared file (a mounted Secret) everywhere, never through one node.
    let single_node = topology.drives().all(|(_, _, _, d)| d.is_local);
    let encryption = settings.kms.encryption(tls.is_some(), single_node)?;
    let local_drives: Vec<PathBuf> = topology
        .drives()
        .filter(|(_, _, _, d)| d.is_local)
        .map(|(_, _, _, d)| PathBuf::from(&d.path))
        .collect();
    for d in &local_drives {
        // A drive that cannot be created is left to the object layer, which serves while
        // quorum holds and reports the drive offline.
        if let Err(e) = std::fs::create_dir_all(d) {
            tracing::warn!(drive = %d.display(), error = %e, "cannot create drive directory");
        }
    }
    let first_drive = local_drives.first().context("no drives given")?;
    let memory = memory_config::MemoryPlan::new(settings.memory_budget_bytes, local_drives.len())?;
    // Before any drive opens: each takes its metadata cache from the budget.
    strata_drive::set_meta_cache_bytes(
        usize::try_from(memory.meta_cache_bytes_per_drive).unwrap_or(usize::MAX),
    );
    if memory.source != memory_config::BudgetSource::Machine {
        // A set or cgroup budget is a hard line: freed memory leaves at once.
        allocator::purge_freed_memory_at_once();
    }
    tracing::info!(
        budget_mib = memory.budget_bytes >> 20,
        source = ?memory.source,
        meta_cache_mib_per_drive = memory.meta_cache_bytes_per_drive >> 20,
        requests_mib = memory.request_bytes >> 20,
        "memory budget"
    );
    if topology.is_distributed() && (settings.root_user.is_none() || settings.root_password.is_none()) {
        anyhow::bail!(
            "a distributed deployment needs the same root credentials on every node: set STRATA_ROOT_USER and STRATA_ROOT_PASSWORD (or root_user/root_password in the config file)"
        );
    }
    let creds = credentials::resolve(
        settings.root_user.clone(),
        settings.root_password.clone(),
        &credentials::credentials_dir(first_drive),
    )?;
    let root = strata_s3::RootCredentials::new(&creds.access_key, &creds.secret_key)?;
    let listener = bind(&settings.address).await?;
    let local = listener.local_addr()?;

    let mut cluster_node = None;
    let (frontend, layer, serving) = if topology.is_distributed() {
        let secret = strata_rpc::ClusterSecret::derive_from_root_secret(&creds.secret_key);
        let node = strata_cluster::node::ClusterNode::new(
            Arc::new(topology),
            secret.clone(),
            tls.map(|t| t.connector).unwrap_or_default(),
        )?;
        let rpc = Arc::new(strata_rpc::RpcServer::new(secret, HashMap::new()));
        rpc.set_node_service(node.clone());
        let replays = Arc::downgrade(&rpc);
        strata_obs::connections::set_rpc_replays_refused_source(Box::new(move || {
            replays.upgrade().map_or(0, |rpc| rpc.replays_refused())
        }));
        let frontend = serve::Frontend::new(Some(rpc.clone()));
        // Serve RPC (and "starting" answers) while the deployment settles: peers need this
        // node's status to settle too.
        let mut serving = tokio::spawn(serve::run(listener, Arc::clone(&frontend), server_tls, limits));
        tracing::info!(address = %local, nodes = node.topology().nodes().len(), "waiting for the deployment to settle");
        let spec = tokio::select! {
            spec = node.settle() => spec?,
            served = &mut serving => {
                // Stopped (signal) before the deployment settled.
                return served.context("the HTTP server task failed")?;
            }
        };
        // Locks a previous process of this node held died with it.
        node.release_own_locks().await;
        let hooks: Arc<dyn strata_object::ClusterHooks> = node.clone();
        let layer = Arc::new(
            strata_object::ObjectLayer::open_deployment(spec, Some(hooks))
                .await
                .context("opening the drives")?,
        );
        node.attach_layer(&layer);
        rpc.set_drives(layer.local_drives());
        cluster_node = Some(node);
        (frontend, layer, serving)
    } else if topology.pools.len() > 1
        && !strata_cluster::node::single_node_formatted_as_one_pool(&topology).await
    {
        // One node, several pools (one per media class, say): decided from the drives.
        let spec = strata_cluster::node::single_node_spec(&topology).await?;
        let layer = Arc::new(
            strata_object::ObjectLayer::open_deployment(spec, None)
                .await
                .context("opening the drives")?,
        );
        let frontend = serve::Frontend::new(None);
        let serving = tokio::spawn(serve::run(listener, Arc::clone(&frontend), server_tls, limits));
        (frontend, layer, serving)
    } else {
        let layer = Arc::new(
            strata_object::ObjectLayer::open_local(&local_drives)
                .await
                .context("opening the drives")?,
        );
        let frontend = serve::Frontend::new(None);
        let serving = tokio::spawn(serve::run(listener, Arc::clone(&frontend), server_tls, limits));
        (frontend, layer, serving)
    };
    layer.memory().limit(memory.request_bytes, memory.budget_bytes);
    layer
        .set_storage_classes(settings.classes.clone())
        .context("the storage classes do not fit the pools")?;
    if settings.lifecycle.day != strata_lifecycle::DayLength::default() {
        // Test mode: a transitioned version's old data goes within a (short) day.
        layer.set_transition_grace(std::time::Duration::from_secs(settings.lifecycle.day.as_secs()));
    }
    layer.start_background(strata_object::BackgroundConfig {
        scanner_cycle_pause: settings.background.scanner_cycle_pause,
        orphan_age_min: settings.background.orphan_age,
        ..Default::default()
    });
    if let Some(kms) = &encryption.kms {
        // Configuration (IAM records, bucket settings) is sealed at rest with the KMS: its key
        // must be open before IAM loads. A KMS that is down at startup is waited for a while.
        let mut attempt = 0u32;
        loop {
            match strata_s3::seal_configuration(&layer, kms).await {
                Ok(()) => break,
                Err(err) if err.is_transient() && attempt < CONFIG_KEY_ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(%err, attempt, "cannot open the configuration key yet; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                Err(err) => return Err(err).context("opening the configuration key with the KMS"),
            }
        }
    }
    let iam = iam_setup::open(&layer, &creds.access_key, &creds.secret_key).await?;
    let tier_settings = strata_tier::TierSettings {
        intent_age: settings.background.orphan_age,
    };
    let tiers = strata_tier::Tiers::start(&layer, tier_settings)
        .await
        .context("loading the remote tiers")?;
    {
        let weak = Arc::downgrade(&tiers);
        strata_obs::jobs::set_tier_source(Box::new(move || {
            weak.upgrade().map(|t| t.metric_values()).unwrap_or_default()
        }));
    }
    let front = strata_s3::FrontDoorConfig {
        region: settings.region.clone(),
        domains: virtual_host_domains(settings.domain.as_deref(), &settings.address),
        root,
        iam,
        identity_providers: iam_setup::openid_providers(&settings.identity),
        ldap: iam_setup::ldap(&settings.identity),
        key_rotation: encryption
            .kms
            .clone()
            .map(|kms| strata_s3::KeyRotation::start(Arc::clone(&layer), kms, settings.kms.rotation_rate())),
        encryption,
        lifecycle: Some(start_lifecycle(&layer, settings.lifecycle)),
        tiers: Some(tiers),
    };
    let service = strata_s3::build_service(Arc::clone(&layer), &front)?;
    let obs = observability(&settings, &layer, &creds, front.domains.clone(), &front.iam)?;
    frontend.open(serve::App { service, obs });
    print_banner(&settings, local, &creds, layer.drive_statuses().len());
    tracing::info!(address = %local, region = %settings.region, n_drives = local_drives.len(), "serving S3");

    let served = serving.await.context("the HTTP server task failed")?;
    layer.shutdown().await;
    if let Some(node) = &cluster_node {
        // Background work cut short (heals, the scanner) may hold locks: free them now
        // rather than after their expiry.
        node.release_own_locks().await;
    }
    tracing::info!("object layer shut down");
    served
}

/// Starts the lifecycle job and publishes its counters to the metrics.
fn start_lifecycle(
    layer: &Arc<strata_object::ObjectLayer>,
    settings: strata_lifecycle::LifecycleSettings,
) -> Arc<strata_lifecycle::Lifecycle> {
    if settings.day != strata_lifecycle::DayLength::default() {
        tracing::warn!(
            day_seconds = settings.day.as_secs(),
            "lifecycle days are shortened (a test setting): rules act within seconds"
        );
    }
    let lifecycle = strata_lifecycle::Lifecycle::start(Arc::clone(layer), settings);
    let weak = Arc::downgrade(&lifecycle);
    strata_obs::jobs::set_lifecycle_source(Box::new(move || {
        weak.upgrade().map(|l| l.metric_values()).unwrap_or_default()
    }));
    lifecycle
}

/// Metrics (with the drive and erasure hooks), audit targets and the bucket usage walk.
fn observability(
    settings: &Settings,
    layer: &Arc<strata_object::ObjectLayer>,
    creds: &credentials::Resolved,
    domains: Vec<String>,
    iam: &Arc<strata_iam::Iam>,
) -> anyhow::Result<Arc<strata_obs::Observability>> {
    let metrics = Arc::new(strata_obs::Metrics::new()?);
    metrics.install_hooks();
    let mut targets: Vec<Box<dyn strata_obs::AuditTarget>> = Vec::new();
    if let Some(c) = &settings.obs.audit_file {
        targets.push(Box::new(strata_obs::FileTarget::start(c.clone())?));
        tracing::info!(path = %c.path.display(), "audit log to file");
    }
    if let Some(c) = &settings.obs.audit_webhook {
        targets.push(Box::new(strata_obs::WebhookTarget::start(c.clone())?));
        tracing::info!(endpoint = %c.endpoint, spill = ?c.spill_dir, "audit log to webhook");
    }
    let usage = Arc::new(strata_obs::UsageCache::default());
    usage.spawn(Arc::downgrade(layer), settings.obs.usage_interval);
    Ok(Arc::new(strata_obs::Observability::new(
        metrics,
        Arc::new(strata_obs::AuditLog::new(targets)),
        usage,
        Arc::clone(layer),
        strata_obs::ObservabilityConfig {
            metrics_auth: settings.obs.metrics_auth,
            domains,
            root_access_key: creds.access_key.clone(),
            root_secret_key: creds.secret_key.clone(),
            scrapers: Some(Arc::new(iam_setup::Scrapers::new(Arc::clone(iam)))),
        },
    )))
}

/// Binds the listen address. `:PORT` is every interface: IPv6 and IPv4 (a dual-stack socket),
/// or IPv4 alone where the host has no IPv6 (as in some Kubernetes pods).
async fn bind(address: &str) -> anyhow::Result<tokio::net::TcpListener> {
    if let Some(port) = address.strip_prefix(':') {
        match tokio::net::TcpListener::bind(format!("[::]:{port}")).await {
            Ok(listener) => return Ok(listener),
            Err(err) => tracing::debug!(%err, "no IPv6 listener; listening on IPv4 only"),
        }
        return tokio::net::TcpListener::bind(format!("0.0.0.0:{port}"))
            .await
            .with_context(|| format!("binding {address}"));
    }
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))
}

/// The configured domain, plus `domain:port` of the listen address: clients put the port in
/// the Host header and s3s matches domains literally.
fn virtual_host_domains(domain: Option<&str>, address: &str) -> Vec<String> {
    let Some(d) = domain else { return Vec::new() };
    let mut out = vec![d.to_owned()];
    if !d.contains(':')
        && let Some((_, port)) = address.rsplit_once(':')
    {
        out.push(format!("{d}:{port}"));
    }
    out
}

fn print_banner(
    settings: &Settings,
    local: std::net::SocketAddr,
    creds: &credentials::Resolved,
    n_drives: usize,
) {
    let scheme = if settings.certs_dir.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = format!("{scheme}://{local}");
    let mut out = String::new();
    out.push_str(&format!("Strata {} serving S3\n", env!("CARGO_PKG_VERSION")));
    out.push_str(&format!("  Endpoint:   {endpoint}\n"));
    out.push_str(&format!("  Region:     {}\n", settings.region));
    if let Some(d) = &settings.domain {
        out.push_str(&format!(
            "  Domain:     {d} (virtual-host style: http://BUCKET.{d})\n"
        ));
    }
    out.push_str(&format!("  Drives:     {n_drives}\n"));
    out.push_str(&format!("  AccessKey:  {}\n", creds.access_key));
    match creds.origin {
        Origin::Generated => {
            out.push_str(&format!("  SecretKey:  {}\n", creds.secret_key));
            if let Some(p) = &creds.path {
                out.push_str(&format!(
                    "  (generated on this first start and stored in {} with mode 0600)\n",
                    p.display()
                ));
            }
        }
        Origin::Stored => {
            if let Some(p) = &creds.path {
                out.push_str(&format!("  SecretKey:  stored in {}\n", p.display()));
            }
        }
        Origin::Configured => {
            out.push_str("  SecretKey:  as configured (STRATA_ROOT_PASSWORD or config file)\n")
        }
    }
    out.push_str("\nConfigure the aws CLI:\n");
    out.push_str(&format!(
        "  aws configure set aws_access_key_id {}\n",
        creds.access_key
    ));
    out.push_str("  aws configure set aws_secret_access_key <SecretKey>\n");
    out.push_str(&format!("  aws configure set region {}\n", settings.region));
    out.push_str(&format!("  aws --endpoint-url {endpoint} s3 mb s3://my-bucket\n"));
    out.push_str(&format!("  aws --endpoint-url {endpoint} s3 ls\n"));
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_host_domains_add_the_port() {
        assert!(virtual_host_domains(None, "127.0.0.1:9000").is_empty());
        assert_eq!(
            virtual_host_domains(Some("s3.local"), "0.0.0.0:9000"),
            ["s3.local", "s3.local:9000"]
        );
        assert_eq!(
            virtual_host_domains(Some("s3.local:80"), "0.0.0.0:9000"),
            ["s3.local:80"]
        );
    }
}
