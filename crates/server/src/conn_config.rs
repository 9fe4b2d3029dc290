//! Connection settings of `strata server` (timeouts of silent and idle connections, the global
//! and per-client connection caps): command-line flags with `STRATA_*` environment variables,
//! config-file keys, defaults.
//!
//! Invariant: the same precedence as every other setting (command line > environment > config
//! file > default); a zero timeout or cap is refused at start (it would close or refuse every
//! connection), never silently replaced.
//!
//! Why these defaults, for a public endpoint:
//! - first byte 10 s: a real client sends its request (or TLS ClientHello) right after
//!   connecting; 10 s covers a slow mobile link, and bounds what a silent socket costs.
//! - idle 60 s: longer than the idle time of most SDK connection pools (AWS Java SDK 60 s,
//!   boto3/urllib3 and the aws CLI reuse within seconds), so the server rarely closes a
//!   connection a client is about to reuse; also the longest a request body may pause.
//! - 4096 connections: the cap the server always had (it is lowered to half the descriptor
//!   limit when that is smaller).
//! - 512 per client: ten times what one busy SDK process opens (boto3 and the aws CLI 10,
//!   rclone about 12, the AWS Java SDK 50), so dozens of real clients behind one NAT fit, while
//!   one address can hold no more than an eighth of the global cap.

use std::time::Duration;

use serde::Deserialize;

use crate::idle::IdleTimeouts;

/// Default time a new connection has to send its first byte (and to finish a TLS handshake).
pub const CONNECTION_FIRST_BYTE_TIMEOUT_SECS_DEFAULT: u64 = 10;
/// Default time a connection may move no bytes while the server waits on the client.
pub const CONNECTION_IDLE_TIMEOUT_SECS_DEFAULT: u64 = 60;
/// Default most connections served at once.
pub const CONNECTIONS_MAX_DEFAULT: usize = 4096;
/// Default most connections served at once for one client address (IPv6: one /64).
pub const CONNECTIONS_PER_CLIENT_MAX_DEFAULT: usize = 512;

const _: () = assert!(CONNECTION_FIRST_BYTE_TIMEOUT_SECS_DEFAULT <= CONNECTION_IDLE_TIMEOUT_SECS_DEFAULT);
const _: () = assert!(CONNECTIONS_PER_CLIENT_MAX_DEFAULT <= CONNECTIONS_MAX_DEFAULT);

/// Command-line flags (each with its environment variable).
#[derive(Debug, Default, clap::Args)]
pub struct ConnArgs {
    /// Seconds a new connection has to send its first byte or finish its TLS handshake
    /// [default: 10].
    #[arg(long, env = "STRATA_CONNECTION_FIRST_BYTE_TIMEOUT_SECS")]
    pub connection_first_byte_timeout_secs: Option<u64>,
    /// Seconds a connection may stay idle between requests, and a request body may pause
    /// [default: 60].
    #[arg(long, env = "STRATA_CONNECTION_IDLE_TIMEOUT_SECS")]
    pub connection_idle_timeout_secs: Option<u64>,
    /// Most connections served at once (at most half the file descriptor limit) [default: 4096].
    #[arg(long, env = "STRATA_CONNECTIONS_MAX")]
    pub connections_max: Option<usize>,
    /// Most connections served at once from one client address (IPv6: one /64); further ones
    /// are closed at once [default: 512].
    #[arg(long, env = "STRATA_CONNECTIONS_PER_CLIENT_MAX")]
    pub connections_per_client_max: Option<usize>,
}

/// The same settings as config-file keys (flattened into the file's top level by the caller).
#[derive(Debug, Default, Deserialize)]
pub struct ConnFile {
    /// See [`ConnArgs`].
    pub connection_first_byte_timeout_secs: Option<u64>,
    /// See [`ConnArgs`].
    pub connection_idle_timeout_secs: Option<u64>,
    /// See [`ConnArgs`].
    pub connections_max: Option<usize>,
    /// See [`ConnArgs`].
    pub connections_per_client_max: Option<usize>,
}

/// Resolved connection settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnSettings {
    /// First-byte and idle timeouts.
    pub timeouts: IdleTimeouts,
    /// Most connections at once, before fitting to the descriptor limit.
    pub connections_max: usize,
    /// Most connections at once per client.
    pub connections_per_client_max: usize,
}

fn positive<T: PartialEq + Default + std::fmt::Display>(name: &str, v: T) -> anyhow::Result<T> {
    if v == T::default() {
        anyhow::bail!("{name} must be at least 1");
    }
    Ok(v)
}

/// Merges flags (with environment) over file keys over defaults.
pub fn resolve(a: ConnArgs, f: ConnFile) -> anyhow::Result<ConnSettings> {
    let first_byte_secs = positive(
        "connection_first_byte_timeout_secs",
        a.connection_first_byte_timeout_secs
            .or(f.connection_first_byte_timeout_secs)
            .unwrap_or(CONNECTION_FIRST_BYTE_TIMEOUT_SECS_DEFAULT),
    )?;
    let idle_secs = positive(
        "connection_idle_timeout_secs",
        a.connection_idle_timeout_secs
            .or(f.connection_idle_timeout_secs)
            .unwrap_or(CONNECTION_IDLE_TIMEOUT_SECS_DEFAULT),
    )?;
    Ok(ConnSettings {
        timeouts: IdleTimeouts {
            first_byte: Duration::from_secs(first_byte_secs),
            idle: Duration::from_secs(idle_secs),
        },
        connections_max: positive(
            "connections_max",
            a.connections_max
                .or(f.connections_max)
                .unwrap_or(CONNECTIONS_MAX_DEFAULT),
        )?,
        connections_per_client_max: positive(
            "connections_per_client_max",
            a.connections_per_client_max
                .or(f.connections_per_client_max)
                .unwrap_or(CONNECTIONS_PER_CLIENT_MAX_DEFAULT),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_precedence() {
        let s = resolve(ConnArgs::default(), ConnFile::default()).unwrap();
        assert_eq!(
            s.timeouts,
            IdleTimeouts {
                first_byte: Duration::from_secs(10),
                idle: Duration::from_secs(60)
            }
        );
        assert_eq!((s.connections_max, s.connections_per_client_max), (4096, 512));

        let f: ConnFile = toml::from_str(
            "connection_idle_timeout_secs = 30\nconnections_per_client_max = 64\nconnections_max = 1000",
        )
        .unwrap();
        let a = ConnArgs {
            connections_per_client_max: Some(8),
            connection_first_byte_timeout_secs: Some(2),
            ..ConnArgs::default()
        };
        let s = resolve(a, f).unwrap();
        assert_eq!(s.timeouts.first_byte, Duration::from_secs(2));
        assert_eq!(s.timeouts.idle, Duration::from_secs(30));
        assert_eq!((s.connections_max, s.connections_per_client_max), (1000, 8));
    }

    #[test]
    fn zero_is_refused() {
        for key in [
            "connection_first_byte_timeout_secs",
            "connection_idle_timeout_secs",
            "connections_max",
            "connections_per_client_max",
        ] {
            let f: ConnFile = toml::from_str(&format!("{key} = 0")).unwrap();
            let e = resolve(ConnArgs::default(), f).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
