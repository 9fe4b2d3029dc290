//! `strata admin info` and `strata admin heal`: signed calls to the admin API of the server an
//! alias names, with human output (a table; a live progress display on a terminal, one line
//! per change otherwise) or `--json`.
//!
//! Invariants:
//! - `heal` follows exactly one sequence: the one it started, or the running one it attached
//!   to after a `409`; if another sequence replaces it, that is an error, never a silent switch.
//! - `heal` exits 0 only when the sequence is `done` with no failed objects.
//! - Polls are [`POLL_INTERVAL`] apart; a poll that fails is retried up to
//!   [`POLL_FAILURES_MAX`] times in a row before giving up.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use http::{Method, StatusCode};
use serde::Deserialize;
use strata_client::{Client, ClientConfig, ClientError};

use super::alias::{Alias, AliasFile, config_dir};
use super::format;
use super::{AdminArgs, AdminCommand};

/// Time between two status polls of a heal.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Consecutive failed polls tolerated (a restarting server, a dropped connection).
pub const POLL_FAILURES_MAX: u32 = 10;
/// Redraw interval of the terminal spinner.
const SPINNER_TICK: Duration = Duration::from_millis(120);

/// Path of the heal endpoint.
const HEAL_PATH: &str = strata_s3::HEAL_PATH;
/// Path of the info endpoint.
const INFO_PATH: &str = strata_s3::INFO_PATH;
/// Environment variable naming a PEM file of extra trusted certificates for `https://` aliases.
pub const CA_FILE_ENV: &str = "STRATA_CA_FILE";
const POOLS_PATH: &str = strata_s3::POOLS_PATH;
const DECOMMISSION_PATH: &str = strata_s3::DECOMMISSION_PATH;

/// What `ALIAS[/BUCKET[/PREFIX]]` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Alias name.
    pub alias: String,
    /// Bucket, or the whole deployment.
    pub bucket: Option<String>,
    /// Key prefix inside the bucket (empty: all keys).
    pub prefix: String,
}

/// Splits `ALIAS[/BUCKET[/PREFIX]]`.
pub fn parse_target(text: &str) -> anyhow::Result<Target> {
    let (alias, rest) = text.split_once('/').unwrap_or((text, ""));
    if alias.is_empty() {
        bail!("{text:?} does not start with an alias (ALIAS[/BUCKET[/PREFIX]])");
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() && !prefix.is_empty() {
        bail!("{text:?} has a prefix but no bucket (ALIAS/BUCKET/PREFIX)");
    }
    Ok(Target {
        alias: alias.to_owned(),
        bucket: (!bucket.is_empty()).then(|| bucket.to_owned()),
        prefix: prefix.to_owned(),
    })
}

/// The query of `POST heal` for a target and flags.
pub fn heal_query(target: &Target, dry_run: bool, deep: bool) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    if let Some(bucket) = &target.bucket {
        query.push(("bucket", bucket.clone()));
        if !target.prefix.is_empty() {
            query.push(("prefix", target.prefix.clone()));
        }
    }
    query.push(("dry-run", dry_run.to_string()));
    query.push(("deep", deep.to_string()));
    query
}

/// Heal counters as the server reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Counters {
    pub objects_scanned: u64,
    pub objects_healed: u64,
    pub objects_failed: u64,
    pub shards_healed: u64,
    pub records_healed: u64,
    pub dangling_removed: u64,
    pub bytes_written: u64,
}

/// Scope of a sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Scope {
    pub bucket: Option<String>,
    pub prefix: String,
}

/// A heal sequence's status.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Sequence {
    pub id: u64,
    pub state: String,
    pub scope: Scope,
    pub dry_run: bool,
    pub started_unix_secs: u64,
    pub finished_unix_secs: u64,
    pub counters: Counters,
    pub error: Option<String>,
}

impl Sequence {
    fn is_running(&self) -> bool {
        self.state == "running"
    }

    fn scope_text(&self) -> String {
        match &self.scope.bucket {
            None => "all buckets".to_owned(),
            Some(b) if self.scope.prefix.is_empty() => format!("bucket {b}"),
            Some(b) => format!("bucket {b}, prefix {}", self.scope.prefix),
        }
    }
}

/// One line of progress.
fn progress_line(seq: &Sequence) -> String {
    let c = &seq.counters;
    format!(
        "heal {}: {}, scanned {}, healed {}, failed {}, shards healed {}, written {}",
        seq.id,
        seq.state,
        c.objects_scanned,
        c.objects_healed,
        c.objects_failed,
        c.shards_healed,
        format::bytes(c.bytes_written)
    )
}

/// The closing summary.
fn summary(seq: &Sequence) -> String {
    let c = &seq.counters;
    let took = seq.finished_unix_secs.saturating_sub(seq.started_unix_secs);
    let mut out = format!(
        "Heal {} {} in {} ({}{})\n",
        seq.id,
        seq.state,
        format::duration_secs(took),
        seq.scope_text(),
        if seq.dry_run { ", dry run" } else { "" }
    );
    let bytes = format!("{} ({} bytes)", format::bytes(c.bytes_written), c.bytes_written);
    let rows = [
        ("objects scanned", c.objects_scanned.to_string()),
        ("objects healed", c.objects_healed.to_string()),
        ("objects failed", c.objects_failed.to_string()),
        ("shards healed", c.shards_healed.to_string()),
        ("records healed", c.records_healed.to_string()),
        ("dangling removed", c.dangling_removed.to_string()),
        ("bytes written", bytes),
    ];
    for (name, value) in rows {
        out.push_str(&format!("  {name:<17}{value}\n"));
    }
    if seq.dry_run {
        out.push_str("  (dry run: the counts are what would be repaired; nothing was written)\n");
    }
    if let Some(err) = &seq.error {
        out.push_str(&format!("  error: {err}\n"));
    }
    out
}

/// Whether a finished sequence is a success (exit code 0).
fn outcome(seq: &Sequence) -> anyhow::Result<()> {
    match seq.state.as_str() {
        "done" if seq.counters.objects_failed == 0 => Ok(()),
        "done" => bail!(
            "heal {} finished, but {} objects could not be healed",
            seq.id,
            seq.counters.objects_failed
        ),
        "failed" => bail!(
            "heal {} failed: {}",
            seq.id,
            seq.error.as_deref().unwrap_or("no reason given")
        ),
        other => bail!("heal {} ended in unexpected state {other:?}", seq.id),
    }
}

/// A client error as the operator should read it: the JSON `{code, message}` of admin errors
/// unpacked, access refusals explained.
pub(crate) fn describe(err: ClientError, what: &str) -> anyhow::Error {
    if let ClientError::UnexpectedStatus {
        status,
        code,
        message,
        ..
    } = &err
    {
        let (code, message) = match serde_json::from_str::<serde_json::Value>(message) {
            Ok(v) if code.is_empty() && v["code"].is_string() => (
                v["code"].as_str().unwrap_or_default().to_owned(),
                v["message"].as_str().unwrap_or_default().to_owned(),
            ),
            _ => (code.clone(), message.clone()),
        };
        let detail = if message.is_empty() {
            code
        } else {
            format!("{code}: {message}")
        };
        if *status == StatusCode::FORBIDDEN {
            return anyhow!(
                "{what}: access denied ({detail}); the admin API needs the root user's keys in the alias"
            );
        }
        return anyhow!("{what}: server answered {status} {detail}");
    }
    anyhow::Error::new(err).context(what.to_owned())
}

pub(crate) fn client_for(alias: &Alias) -> anyhow::Result<Client> {
    let endpoint = alias
        .url
        .parse()
        .with_context(|| format!("alias URL {:?} is not a URL", alias.url))?;
    let mut config = ClientConfig::new(endpoint, alias.access_key.clone(), alias.secret_key.clone());
    // https:// with a private CA or a self-signed certificate: trust this PEM file too.
    config.ca_file = std::env::var_os(CA_FILE_ENV).map(std::path::PathBuf::from);
    config.region = alias.region.clone();
    config.pool_idle_connections = 1;
    Client::new(config).context("creating the HTTP client")
}

/// Runs `strata admin ...`.
pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let file = AliasFile::load(&config_dir()?)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match args.command {
        AdminCommand::Info { alias, json } => {
            let client = client_for(file.get(&alias)?)?;
            runtime.block_on(info(&client, json))
        }
        AdminCommand::Heal {
            target,
            dry_run,
            deep,
            json,
        } => {
            let target = parse_target(&target)?;
            let client = client_for(file.get(&target.alias)?)?;
            runtime.block_on(heal(&client, &target, dry_run, deep, json))
        }
        AdminCommand::Prometheus {
            command: super::PrometheusCommand::Generate { alias, node },
        } => super::prometheus::generate(&file, &alias, node),
        AdminCommand::Pool {
            command: super::PoolCommand::List { alias, json },
        } => {
            let client = client_for(file.get(&alias)?)?;
            runtime.block_on(pools(&client, json))
        }
        AdminCommand::Pool {
            command: super::PoolCommand::Decommission { alias, pool, json },
        } => {
            let client = client_for(file.get(&alias)?)?;
            runtime.block_on(decommission(&client, pool, json))
        }
        AdminCommand::User { command } => {
            let alias = file.get(command.alias())?;
            let client = client_for(alias)?;
            runtime.block_on(super::iam::user(&client, &alias.secret_key, command))
        }
        AdminCommand::Group { command } => {
            let client = client_for(file.get(command.alias())?)?;
            runtime.block_on(super::iam::group(&client, command))
        }
        AdminCommand::Policy { command } => {
            let alias = file.get(command.alias())?;
            let client = client_for(alias)?;
            runtime.block_on(super::iam::policy(&client, &alias.secret_key, command))
        }
        AdminCommand::Svcacct { command } => {
            let alias = file.get(command.alias())?;
            let client = client_for(alias)?;
            runtime.block_on(super::iam::svcacct(&client, &alias.secret_key, command))
        }
        AdminCommand::Account { command } => {
            let alias = file.get(command.alias())?;
            let client = client_for(alias)?;
            runtime.block_on(super::accounts::account(&client, &alias.secret_key, command))
        }
        AdminCommand::Kms { command } => {
            let client = client_for(file.get(command.alias())?)?;
            runtime.block_on(super::kms::kms(&client, command))
        }
        AdminCommand::Tier { command } => {
            let alias = file.get(command.alias())?;
            let client = client_for(alias)?;
            runtime.block_on(super::tier::tier(&client, &alias.secret_key, command))
        }
    }
}

async fn pools(client: &Client, json: bool) -> anyhow::Result<()> {
    let value = client
        .admin_json(Method::GET, POOLS_PATH, &[], None)
        .await
        .map_err(|e| describe(e, "admin pool list"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("encoding JSON")?
        );
        return Ok(());
    }
    let pools: Vec<PoolLine> = serde_json::from_value(value).context("decoding the pool list")?;
    for p in pools {
        let state = match &p.decommission {
            None => "active".to_owned(),
            Some(d) => format!(
                "decommission {}: {} objects, {} bytes moved, {} failed",
                d.state, d.objects_moved, d.bytes_moved, d.objects_failed
            ),
        };
        println!(
            "pool {}  {} sets, {} drives  {state}",
            p.pool, p.n_sets, p.n_drives
        );
    }
    Ok(())
}

async fn decommission(client: &Client, pool: usize, json: bool) -> anyhow::Result<()> {
    let value = client
        .admin_json(
            Method::POST,
            DECOMMISSION_PATH,
            &[("pool", &pool.to_string())],
            None,
        )
        .await
        .map_err(|e| describe(e, "admin pool decommission"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("encoding JSON")?
        );
    } else {
        println!("decommission of pool {pool} started; `strata admin pool list` shows its progress");
    }
    Ok(())
}

#[derive(Deserialize)]
struct DecommissionLine {
    state: String,
    objects_moved: u64,
    bytes_moved: u64,
    objects_failed: u64,
}

#[derive(Deserialize)]
struct PoolLine {
    pool: usize,
    n_sets: usize,
    n_drives: usize,
    decommission: Option<DecommissionLine>,
}

async fn info(client: &Client, json: bool) -> anyhow::Result<()> {
    let value = client
        .admin_json(Method::GET, INFO_PATH, &[], None)
        .await
        .map_err(|e| describe(e, "admin info"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).context("encoding JSON")?
        );
        return Ok(());
    }
    print!("{}", info_text(&value)?);
    Ok(())
}

#[derive(Deserialize)]
struct InfoHealth {
    write_quorum: bool,
    read_quorum: bool,
    drives_online: u64,
    drives_total: u64,
}

#[derive(Deserialize)]
struct InfoDrive {
    endpoint: String,
    pool: u32,
    set: u32,
    drive: u32,
    online: bool,
    healing: bool,
    io_errors: u64,
}

#[derive(Deserialize)]
struct Info {
    deployment_id: String,
    version: String,
    health: InfoHealth,
    drives: Vec<InfoDrive>,
}

/// The human form of an `info` answer.
fn info_text(value: &serde_json::Value) -> anyhow::Result<String> {
    let info = Info::deserialize(value).context("the server's info answer has an unexpected shape")?;
    let h = &info.health;
    let mut out = String::new();
    out.push_str(&format!("Deployment   {}\n", info.deployment_id));
    out.push_str(&format!("Version      {}\n", info.version));
    out.push_str(&format!(
        "Quorum       write {}, read {}\n",
        format::yes_no(h.write_quorum),
        format::yes_no(h.read_quorum)
    ));
    out.push_str(&format!(
        "Drives       {}/{} online\n\n",
        h.drives_online, h.drives_total
    ));
    let mut rows = vec![
        [
            "POOL",
            "SET",
            "DRIVE",
            "STATE",
            "HEALING",
            "IO ERRORS",
            "ENDPOINT",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for d in &info.drives {
        rows.push(vec![
            d.pool.to_string(),
            d.set.to_string(),
            d.drive.to_string(),
            if d.online { "online" } else { "offline" }.to_owned(),
            format::yes_no(d.healing).to_owned(),
            d.io_errors.to_string(),
            d.endpoint.clone(),
        ]);
    }
    out.push_str(&format::table(&rows));
    Ok(out)
}

/// The latest sequence, typed and as the server sent it.
async fn heal_sequence_now(client: &Client) -> anyhow::Result<(Sequence, serde_json::Value)> {
    let mut value = client
        .admin_json(Method::GET, HEAL_PATH, &[], None)
        .await
        .map_err(|e| describe(e, "heal status"))?;
    let raw = value["sequence"].take();
    let seq = Sequence::deserialize(&raw).context("the server's heal status has an unexpected shape")?;
    Ok((seq, raw))
}

/// How progress is shown.
enum Display {
    /// Nothing until the end (`--json`).
    Quiet,
    /// A spinner line redrawn in place (stdout is a terminal).
    Live(indicatif::ProgressBar),
    /// One line per change (stdout is a file or pipe).
    Lines { last: Option<String> },
}

impl Display {
    fn new(json: bool) -> Display {
        if json {
            return Display::Quiet;
        }
        if !std::io::stdout().is_terminal() {
            return Display::Lines { last: None };
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stdout());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(SPINNER_TICK);
        Display::Live(bar)
    }

    fn show(&mut self, seq: &Sequence) {
        let line = progress_line(seq);
        match self {
            Display::Quiet => {}
            Display::Live(bar) => bar.set_message(line),
            Display::Lines { last } => {
                if last.as_deref() != Some(line.as_str()) {
                    println!("{line}");
                    *last = Some(line);
                }
            }
        }
    }

    fn finish(&self) {
        if let Display::Live(bar) = self {
            bar.finish_and_clear();
        }
    }
}

async fn heal(client: &Client, target: &Target, dry_run: bool, deep: bool, json: bool) -> anyhow::Result<()> {
    let query = heal_query(target, dry_run, deep);
    let query_refs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = match client
        .admin_json(Method::POST, HEAL_PATH, &query_refs, None)
        .await
    {
        Ok(value) => {
            Sequence::deserialize(&value).context("the server's heal answer has an unexpected shape")?
        }
        Err(e) if e.status() == Some(StatusCode::CONFLICT) => {
            let (running, _) = heal_sequence_now(client).await?;
            eprintln!(
                "A heal is already running (heal {}, {}{}); showing its progress.",
                running.id,
                running.scope_text(),
                if running.dry_run { ", dry run" } else { "" }
            );
            running
        }
        Err(e) => return Err(describe(e, "starting the heal")),
    };
    let id = first.id;
    let mut display = Display::new(json);
    if !json && matches!(display, Display::Lines { .. }) {
        println!(
            "heal {id} started: {}{}{}",
            first.scope_text(),
            if first.dry_run { ", dry run" } else { "" },
            if deep { ", deep" } else { "" }
        );
    }
    let started = Instant::now();
    let mut failures = 0u32;
    let (last, last_raw) = loop {
        let (seq, raw) = match heal_sequence_now(client).await {
            Ok(got) => {
                failures = 0;
                got
            }
            Err(e) => {
                failures += 1;
                if failures > POLL_FAILURES_MAX {
                    display.finish();
                    return Err(e.context(format!("{POLL_FAILURES_MAX} status polls in a row failed")));
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        if seq.id != id {
            display.finish();
            bail!(
                "heal {id} was replaced by heal {} before its end could be seen ({:.1}s after start)",
                seq.id,
                started.elapsed().as_secs_f64()
            );
        }
        display.show(&seq);
        if !seq.is_running() {
            break (seq, raw);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    display.finish();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&last_raw).context("encoding JSON")?
        );
    } else {
        print!("{}", summary(&last));
    }
    outcome(&last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_alias_bucket_prefix() {
        let t = parse_target("local").unwrap();
        assert_eq!(
            (t.alias.as_str(), t.bucket, t.prefix.as_str()),
            ("local", None, "")
        );
        assert_eq!(parse_target("local/").unwrap().bucket, None);
        let t = parse_target("local/bkt").unwrap();
        assert_eq!((t.bucket.as_deref(), t.prefix.as_str()), (Some("bkt"), ""));
        assert_eq!(parse_target("local/bkt/").unwrap().prefix, "");
        let t = parse_target("local/bkt/dir/sub/").unwrap();
        assert_eq!(
            (t.bucket.as_deref(), t.prefix.as_str()),
            (Some("bkt"), "dir/sub/")
        );
        assert!(parse_target("").is_err());
        assert!(parse_target("/bkt").is_err());
        assert!(parse_target("local//prefix").is_err());
    }

    #[test]
    fn heal_queries() {
        let all = parse_target("local").unwrap();
        assert_eq!(
            heal_query(&all, false, true),
            vec![("dry-run", "false".to_owned()), ("deep", "true".to_owned())]
        );
        let some = parse_target("local/bkt/p q").unwrap();
        assert_eq!(
            heal_query(&some, true, false),
            vec![
                ("bucket", "bkt".to_owned()),
                ("prefix", "p q".to_owned()),
                ("dry-run", "true".to_owned()),
                ("deep", "false".to_owned()),
            ]
        );
    }

    fn sequence(state: &str, failed: u64) -> Sequence {
        let value = serde_json::json!({
            "id": 3, "state": state, "scope": {"bucket": "bkt", "prefix": ""}, "dry_run": false,
            "started_unix_secs": 100, "finished_unix_secs": 102,
            "counters": {"objects_scanned": 10, "objects_healed": 2, "objects_failed": failed,
                         "shards_healed": 4, "records_healed": 0, "dangling_removed": 0,
                         "bytes_written": 3 * 1024 * 1024},
            "error": null,
        });
        Sequence::deserialize(&value).unwrap()
    }

    #[test]
    fn outcomes_and_summaries() {
        let done = sequence("done", 0);
        outcome(&done).unwrap();
        let text = summary(&done);
        assert!(text.starts_with("Heal 3 done in 2s (bucket bkt)"), "{text}");
        assert!(text.contains("shards healed    4"), "{text}");
        assert!(text.contains("3.0 MiB (3145728 bytes)"), "{text}");
        assert!(outcome(&sequence("done", 1)).is_err());
        let mut failed = sequence("failed", 0);
        failed.error = Some("read quorum lost".into());
        let err = outcome(&failed).unwrap_err();
        assert!(err.to_string().contains("read quorum lost"), "{err}");
        assert!(progress_line(&done).contains("shards healed 4"));
    }

    #[test]
    fn info_is_a_table() {
        let value = serde_json::json!({
            "deployment_id": "d-1", "version": "0.1.0",
            "health": {"write_quorum": true, "read_quorum": true, "drives_online": 3, "drives_total": 4},
            "drives": [{"endpoint": "/d1", "pool": 0, "set": 0, "drive": 0, "online": false,
                        "healing": false, "io_errors": 5}],
        });
        let text = info_text(&value).unwrap();
        assert!(text.contains("Drives       3/4 online"), "{text}");
        assert!(text.contains("offline"), "{text}");
        assert!(text.contains("/d1"), "{text}");
        assert!(info_text(&serde_json::json!({"version": 1})).is_err());
    }

    #[test]
    fn admin_errors_are_unpacked() {
        let err = ClientError::UnexpectedStatus {
            operation: "admin",
            status: StatusCode::CONFLICT,
            code: String::new(),
            message: r#"{"code":"HealAlreadyRunning","message":"busy"}"#.into(),
        };
        let text = describe(err, "starting the heal").to_string();
        assert_eq!(
            text,
            "starting the heal: server answered 409 Conflict HealAlreadyRunning: busy"
        );
        let err = ClientError::UnexpectedStatus {
            operation: "admin",
            status: StatusCode::FORBIDDEN,
            code: "SignatureDoesNotMatch".into(),
            message: "bad".into(),
        };
        assert!(describe(err, "x").to_string().contains("access denied"));
    }
}
