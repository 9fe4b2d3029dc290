//! The client-side commands of the `strata` binary, in the style of MinIO's `mc`:
//! `strata alias set|list|remove` keeps named endpoints with their keys, and
//! `strata admin info|heal ALIAS[/BUCKET[/PREFIX]]` calls the admin API of the server an alias
//! names.
//!
//! Invariant: a secret key is read from the command line or the alias file and handed to the
//! signing client only; it is never printed, logged, or put into an error message.

mod accounts;
pub mod admin;
pub mod alias;
mod format;
pub mod health;
pub mod iam;
mod ilm;
mod kms;
pub mod prometheus;
mod tier;

use clap::Subcommand;

/// Region aliases are signed for unless told otherwise.
pub const DEFAULT_ALIAS_REGION: &str = "us-east-1";

/// `strata alias ...`.
#[derive(Debug, clap::Args)]
pub struct AliasArgs {
    #[command(subcommand)]
    pub command: AliasCommand,
}

/// Subcommands of `strata alias`.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Add an alias, or replace the one with that name.
    Set {
        /// Name of the alias (letters, digits, '.', '_', '-').
        name: String,
        /// Endpoint, http://HOST:PORT.
        url: String,
        /// Access key of the user (the admin API needs the root user).
        access_key: String,
        /// Secret key of the user (stored with mode 0600, never printed).
        secret_key: String,
        /// Region requests are signed for.
        #[arg(long, default_value = DEFAULT_ALIAS_REGION)]
        region: String,
    },
    /// List aliases with their endpoint and access key.
    #[command(visible_alias = "ls")]
    List {
        /// Print JSON (without secret keys).
        #[arg(long)]
        json: bool,
    },
    /// Remove an alias.
    #[command(visible_alias = "rm")]
    Remove {
        /// Name of the alias.
        name: String,
    },
}

/// `strata ilm ...`.
#[derive(Debug, clap::Args)]
pub struct IlmArgs {
    #[command(subcommand)]
    pub command: IlmCommand,
}

/// Subcommands of `strata ilm`.
#[derive(Debug, Subcommand)]
pub enum IlmCommand {
    /// A bucket's lifecycle rules: add, list, remove.
    Rule {
        #[command(subcommand)]
        command: IlmRuleCommand,
    },
}

/// What a lifecycle rule does and to which objects.
#[derive(Debug, Default, clap::Args)]
pub struct RuleArgs {
    /// The rule's ID [default: generated].
    #[arg(long)]
    pub id: Option<String>,
    /// Only keys starting with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only versions with these tags (`k1=v1&k2=v2`).
    #[arg(long)]
    pub tags: Option<String>,
    /// Only versions larger than this many bytes.
    #[arg(long)]
    pub size_gt: Option<u64>,
    /// Only versions smaller than this many bytes.
    #[arg(long)]
    pub size_lt: Option<u64>,
    /// Expire current versions this many days after they were written.
    #[arg(long)]
    pub expire_days: Option<u32>,
    /// Expire current versions on this date (YYYY-MM-DD, midnight UTC).
    #[arg(long)]
    pub expire_date: Option<String>,
    /// Remove delete markers that have no older versions left.
    #[arg(long)]
    pub expire_delete_marker: bool,
    /// Remove noncurrent versions this many days after they became noncurrent.
    #[arg(long)]
    pub noncurrent_expire_days: Option<u32>,
    /// Keep this many newest noncurrent versions whatever their age.
    #[arg(long)]
    pub noncurrent_keep: Option<u32>,
    /// Move current versions to `--transition-tier` this many days after they were written.
    #[arg(long)]
    pub transition_days: Option<u32>,
    /// The storage class or remote tier current versions move to.
    #[arg(long)]
    pub transition_tier: Option<String>,
    /// Move noncurrent versions to `--noncurrent-transition-tier` this many days after they
    /// became noncurrent.
    #[arg(long)]
    pub noncurrent_transition_days: Option<u32>,
    /// The storage class or remote tier noncurrent versions move to.
    #[arg(long)]
    pub noncurrent_transition_tier: Option<String>,
    /// Abort multipart uploads this many days after they were started.
    #[arg(long)]
    pub abort_uploads_days: Option<u32>,
    /// Add the rule disabled.
    #[arg(long)]
    pub disable: bool,
}

/// Subcommands of `strata ilm rule`.
#[derive(Debug, Subcommand)]
pub enum IlmRuleCommand {
    /// Add a rule to a bucket's lifecycle configuration.
    Add {
        /// ALIAS/BUCKET.
        target: String,
        #[command(flatten)]
        rule: Box<RuleArgs>,
    },
    /// List a bucket's rules.
    #[command(visible_alias = "ls")]
    List {
        /// ALIAS/BUCKET.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule (or all of them).
    #[command(visible_alias = "rm")]
    Remove {
        /// ALIAS/BUCKET.
        target: String,
        /// The rule's ID.
        #[arg(long)]
        id: Option<String>,
        /// Remove every rule (the configuration goes).
        #[arg(long)]
        all: bool,
    },
}

impl IlmRuleCommand {
    /// The `ALIAS/BUCKET` the command acts on.
    pub fn target(&self) -> &str {
        match self {
            IlmRuleCommand::Add { target, .. }
            | IlmRuleCommand::List { target, .. }
            | IlmRuleCommand::Remove { target, .. } => target,
        }
    }
}

/// Runs `strata ilm ...`.
pub fn run_ilm(args: IlmArgs) -> anyhow::Result<()> {
    let IlmCommand::Rule { command } = args.command;
    let (alias, bucket) = command
        .target()
        .split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .ok_or_else(|| anyhow::anyhow!("the target is ALIAS/BUCKET"))?;
    let file = alias::AliasFile::load(&alias::config_dir()?)?;
    let client = admin::client_for(file.get(&alias)?)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    runtime.block_on(ilm::rule(&client, &bucket, command))
}

/// `strata admin ...`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Subcommands of `strata admin`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show the deployment: id, version, quorum, drives.
    Info {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Heal objects (rebuild missing or corrupt shards and records) and show the progress.
    /// Attaches to the running heal if there is one.
    Heal {
        /// ALIAS (whole deployment), ALIAS/BUCKET or ALIAS/BUCKET/PREFIX.
        target: String,
        /// Count what would be repaired without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Read every shard and verify its checksums (finds bitrot); otherwise only presence
        /// and sizes are checked.
        #[arg(long)]
        deep: bool,
        /// Print the final heal status as JSON (no progress display).
        #[arg(long)]
        json: bool,
    },
    /// Prometheus: generate a scrape config with a bearer token for the metrics endpoints.
    Prometheus {
        #[command(subcommand)]
        command: PrometheusCommand,
    },
    /// Pools: list them, or move every object out of one (decommission).
    Pool {
        #[command(subcommand)]
        command: PoolCommand,
    },
    /// Users: add, remove, enable, disable, list, show.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Groups of users: add members, remove members or the group, enable, disable, list, show.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Canned policies: create, remove, list, show, attach to and detach from users and groups.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Service accounts (child credentials of a user): add, list, show, enable, disable, remove.
    Svcacct {
        #[command(subcommand)]
        command: SvcacctCommand,
    },
    /// Accounts (tenants with their own root credentials, users and buckets): add, list, show,
    /// enable, disable, remove.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// The KMS: its status, and its keys (create, list, status, rotate).
    Kms {
        #[command(subcommand)]
        command: KmsCommand,
    },
    /// Remote tiers (S3, Azure, GCS) lifecycle rules transition to: add, list, edit, remove,
    /// verify, stats.
    Tier {
        #[command(subcommand)]
        command: TierCommand,
    },
}

/// What a tier is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TierKindArg {
    /// An S3-compatible service (AWS, another Strata, MinIO).
    S3,
    /// Azure Blob Storage.
    Azure,
    /// Google Cloud Storage.
    Gcs,
}

/// Subcommands of `strata admin tier`.
#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// Add a tier (checked first by writing, reading and deleting an object in it).
    Add {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The tier's name (upper case), the storage class rules transition to.
        name: String,
        /// What it is.
        #[arg(long = "type", value_enum)]
        kind: TierKindArg,
        /// Its URL (S3: required; Azure, GCS: for an emulator or private endpoint).
        #[arg(long)]
        endpoint: Option<String>,
        /// The bucket (S3, GCS) or container (Azure).
        #[arg(long)]
        bucket: String,
        /// A name prefix inside it.
        #[arg(long, default_value = "")]
        prefix: String,
        /// The region (S3).
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// The access key (S3).
        #[arg(long)]
        access_key: Option<String>,
        /// The secret key (S3), or the account key (Azure).
        #[arg(long)]
        secret_key: Option<String>,
        /// The storage account (Azure).
        #[arg(long)]
        account: Option<String>,
        /// A service account key file (GCS).
        #[arg(long)]
        credentials_file: Option<std::path::PathBuf>,
        /// Reads need a RestoreObject first.
        #[arg(long)]
        archival: bool,
        /// Add it without checking that it answers.
        #[arg(long)]
        skip_verify: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the tiers (no secrets).
    #[command(visible_alias = "ls")]
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a tier's credentials.
    Edit {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The tier.
        name: String,
        /// Its type (which credentials follow).
        #[arg(long = "type", value_enum)]
        kind: TierKindArg,
        /// The access key (S3).
        #[arg(long)]
        access_key: Option<String>,
        /// The secret key (S3), or the account key (Azure).
        #[arg(long)]
        secret_key: Option<String>,
        /// A service account key file (GCS).
        #[arg(long)]
        credentials_file: Option<std::path::PathBuf>,
        /// Change them without checking that the tier answers.
        #[arg(long)]
        skip_verify: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tier (refused while versions' data is there, unless forced).
    #[command(visible_alias = "rm")]
    Remove {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The tier.
        name: String,
        /// Remove it even though versions' data is there (they can no longer be read).
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that a tier answers (write, read, delete an object).
    Verify {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The tier.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Objects and bytes in each tier, and remote deletes waiting.
    Stats {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl TierCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            TierCommand::Add { alias, .. }
            | TierCommand::List { alias, .. }
            | TierCommand::Edit { alias, .. }
            | TierCommand::Remove { alias, .. }
            | TierCommand::Verify { alias, .. }
            | TierCommand::Stats { alias, .. } => alias,
        }
    }
}

/// Subcommands of `strata admin kms`.
#[derive(Debug, Subcommand)]
pub enum KmsCommand {
    /// The KMS backend, its default key, its keys and the last key rotation.
    Status {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// KMS keys.
    Key {
        #[command(subcommand)]
        command: KmsKeyCommand,
    },
}

/// Subcommands of `strata admin kms key`.
#[derive(Debug, Subcommand)]
pub enum KmsKeyCommand {
    /// Create a key.
    Create {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The key's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the keys and their versions.
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One key: its versions, a seal-and-open check, its rotation's progress.
    Status {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The key's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a version to a key and re-seal every object's data key under it (no data is
    /// rewritten); shows the progress until the job finishes.
    Rotate {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The key's name.
        name: String,
        /// Re-seal under the key's newest version without adding one (a version added
        /// outside Strata, such as in the shared keyring of several nodes).
        #[arg(long)]
        existing: bool,
        /// Start the rotation and return without waiting.
        #[arg(long)]
        no_wait: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl KmsCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            KmsCommand::Status { alias, .. }
            | KmsCommand::Key {
                command:
                    KmsKeyCommand::Create { alias, .. }
                    | KmsKeyCommand::List { alias, .. }
                    | KmsKeyCommand::Status { alias, .. }
                    | KmsKeyCommand::Rotate { alias, .. },
            } => alias,
        }
    }
}

/// Subcommands of `strata admin account`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id and its root's access and secret keys (the only time
    /// the secret key is shown).
    Add {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The account's display name (unique in the deployment).
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the accounts.
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one account.
    Info {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The 12-digit account id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let an account's identities sign again.
    Enable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The 12-digit account id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop every identity of an account from signing.
    Disable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The 12-digit account id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an empty account (no users, groups, policies, service accounts or buckets).
    Remove {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The 12-digit account id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

impl AccountCommand {
    /// The alias the command talks to.
    pub fn alias(&self) -> &str {
        match self {
            AccountCommand::Add { alias, .. }
            | AccountCommand::List { alias, .. }
            | AccountCommand::Info { alias, .. }
            | AccountCommand::Enable { alias, .. }
            | AccountCommand::Disable { alias, .. }
            | AccountCommand::Remove { alias, .. } => alias,
        }
    }
}

/// Subcommands of `strata admin user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or set an existing user's secret key).
    Add {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The user name, which is its access key.
        name: String,
        /// Its secret key (8 to 40 characters).
        secret_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user, its service accounts and its group memberships.
    #[command(visible_alias = "rm")]
    Remove {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The user name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled user sign requests again.
    Enable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The user name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refuse a user's requests (and its service accounts' and sessions') until enabled.
    Disable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The user name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users with their status and policies.
    #[command(visible_alias = "ls")]
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one user.
    Info {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The user name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `strata admin group`.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add users to a group, creating it.
    Add {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The group.
        group: String,
        /// Users to add.
        #[arg(required = true)]
        members: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove users from a group; with no users, remove the (empty) group.
    #[command(visible_alias = "rm")]
    Remove {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The group.
        group: String,
        /// Users to remove.
        members: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled group grant its policies again.
    Enable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The group.
        group: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a group from granting its policies.
    Disable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The group.
        group: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List groups.
    #[command(visible_alias = "ls")]
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a group's members, status and policies.
    Info {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The group.
        group: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `strata admin policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create (or replace) a canned policy from a JSON file.
    Create {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The policy's name.
        name: String,
        /// The policy document (AWS's policy language).
        file: std::path::PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a canned policy (it is detached from every user and group).
    #[command(visible_alias = "rm")]
    Remove {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The policy's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List canned policies, built-in ones included.
    #[command(visible_alias = "ls")]
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print JSON (names and documents).
        #[arg(long)]
        json: bool,
    },
    /// Print a canned policy's document.
    Info {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The policy's name.
        name: String,
        /// Print JSON with its dates too.
        #[arg(long)]
        json: bool,
    },
    /// Attach policies to a user or a group.
    Attach {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Policy names.
        #[arg(required = true)]
        policies: Vec<String>,
        /// The user.
        #[arg(long)]
        user: Option<String>,
        /// The group.
        #[arg(long)]
        group: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Detach policies from a user or a group.
    Detach {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Policy names.
        #[arg(required = true)]
        policies: Vec<String>,
        /// The user.
        #[arg(long)]
        user: Option<String>,
        /// The group.
        #[arg(long)]
        group: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show who holds which policy.
    Entities {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Users to show the policies of.
        #[arg(long = "user")]
        users: Vec<String>,
        /// Groups to show the policies of.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Policies to show the holders of.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `strata admin svcacct`.
#[derive(Debug, Subcommand)]
pub enum SvcacctCommand {
    /// Create a service account for a user (its rights, narrowed by --policy).
    Add {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The parent user.
        user: String,
        /// Its access key (generated when not given).
        #[arg(long)]
        access_key: Option<String>,
        /// Its secret key (generated and printed once when not given).
        #[arg(long)]
        secret_key: Option<String>,
        /// A JSON policy file that narrows the parent's rights.
        #[arg(long)]
        policy: Option<std::path::PathBuf>,
        /// A display name.
        #[arg(long)]
        name: Option<String>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// Expiry, RFC 3339 (2027-01-01T00:00:00Z).
        #[arg(long)]
        expiry: Option<String>,
        /// Print JSON (the credentials included).
        #[arg(long)]
        json: bool,
    },
    /// List a user's service accounts.
    #[command(visible_alias = "ls")]
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The parent user.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a service account (never its secret key).
    Info {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Its access key.
        access_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled service account sign requests again.
    Enable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Its access key.
        access_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refuse a service account's requests until enabled.
    Disable {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Its access key.
        access_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a service account.
    #[command(visible_alias = "rm")]
    Remove {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Its access key.
        access_key: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `strata admin pool`.
#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Show each pool and its decommission progress.
    List {
        /// An alias set with `strata alias set`.
        alias: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Start moving every object out of POOL (numbered from 0, as `list` shows). Once it is
    /// done, remove the pool from every node's configuration and restart them.
    Decommission {
        /// An alias set with `strata alias set`.
        alias: String,
        /// The pool's number.
        pool: usize,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

/// Subcommands of `strata admin prometheus`.
#[derive(Debug, Subcommand)]
pub enum PrometheusCommand {
    /// Print a Prometheus scrape config with a bearer token made from the alias's keys.
    Generate {
        /// An alias set with `strata alias set` (the root user's keys).
        alias: String,
        /// Scrape /metrics/node instead of /metrics/cluster.
        #[arg(long)]
        node: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{Cli, Command};

    #[test]
    fn client_commands_parse() {
        let cli = Cli::try_parse_from(["strata", "alias", "set", "local", "http://h:1", "AK", "SK"]).unwrap();
        let Command::Alias(AliasArgs {
            command: AliasCommand::Set { name, region, .. },
        }) = cli.command
        else {
            panic!("not alias set")
        };
        assert_eq!((name.as_str(), region.as_str()), ("local", DEFAULT_ALIAS_REGION));
        assert!(Cli::try_parse_from(["strata", "alias", "ls"]).is_ok());
        assert!(Cli::try_parse_from(["strata", "alias", "rm", "x"]).is_ok());

        let cli =
            Cli::try_parse_from(["strata", "admin", "heal", "local/b/p", "--deep", "--dry-run"]).unwrap();
        let Command::Admin(AdminArgs {
            command:
                AdminCommand::Heal {
                    target,
                    dry_run,
                    deep,
                    json,
                },
        }) = cli.command
        else {
            panic!("not admin heal")
        };
        assert_eq!(target, "local/b/p");
        assert!(dry_run && deep && !json);
        assert!(Cli::try_parse_from(["strata", "admin", "info", "local", "--json"]).is_ok());
        assert!(Cli::try_parse_from(["strata", "admin", "heal"]).is_err());
        for args in [
            &["strata", "admin", "user", "add", "local", "alice", "secret-key-1"][..],
            &["strata", "admin", "user", "ls", "local", "--json"],
            &["strata", "admin", "group", "add", "local", "team", "alice", "bob"],
            &[
                "strata", "admin", "policy", "attach", "local", "readonly", "--user", "alice",
            ],
            &[
                "strata", "admin", "policy", "entities", "local", "--user", "alice", "--policy", "p",
            ],
            &[
                "strata",
                "admin",
                "svcacct",
                "add",
                "local",
                "alice",
                "--expiry",
                "2027-01-01T00:00:00Z",
            ],
            &["strata", "admin", "svcacct", "rm", "local", "AKEY"],
        ] {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["strata", "admin", "group", "add", "local", "team"]).is_err());
        assert!(Cli::try_parse_from(["strata", "admin", "policy", "attach", "local"]).is_err());
    }
}
