//! The client-side commands of the `strata` binary, in the style of MinIO's `mc`:
//! `strata alias set|list|remove` keeps named endpoints with their keys, and
//! `strata admin info|heal ALIAS[/BUCKET[/PREFIX]]` calls the admin API of the server an alias
//! names.
//!
//! Invariant: a secret key is read from the command line or the alias file and handed to the
//! signing client only; it is never printed, logged, or put into an error message.

pub mod admin;
pub mod alias;
mod format;
pub mod prometheus;

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
    }
}
