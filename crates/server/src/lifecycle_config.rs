//! Lifecycle job settings: how often a cycle starts (`lifecycle_interval_seconds`), how many
//! deletes and aborts a second it may issue (`lifecycle_actions_per_second`), and, for tests
//! only, the length of a lifecycle day (`STRATA_LIFECYCLE_DAY_SECONDS`), each from the command
//! line, the environment or the config file (command line > environment > file > default).
//!
//! Invariant: a shortened day is never the default and is logged as a warning at start: it
//! makes `Days` rules act in seconds.

use std::time::Duration;

use serde::Deserialize;
use strata_lifecycle::{DayLength, LifecycleSettings};

/// Seconds from the end of one cycle to the start of the next by default.
pub const DEFAULT_INTERVAL_SECONDS: u64 = 3600;
/// Deletes and aborts per second a cycle issues at most by default.
pub const DEFAULT_ACTIONS_PER_SECOND: u32 = 1000;

/// Command-line flags (with their environment variables).
#[derive(Debug, Default, clap::Args)]
pub struct LifecycleArgs {
    /// Seconds between the end of one lifecycle cycle and the start of the next [default: 3600].
    #[arg(long, env = "STRATA_LIFECYCLE_INTERVAL_SECONDS")]
    pub lifecycle_interval_seconds: Option<u64>,
    /// Deletes and aborts per second the lifecycle job issues at most [default: 1000].
    #[arg(long, env = "STRATA_LIFECYCLE_ACTIONS_PER_SECOND")]
    pub lifecycle_actions_per_second: Option<u32>,
    /// TESTS ONLY: the length of a lifecycle day in seconds, so that `Days` rules act within
    /// seconds [default: 86400].
    #[arg(long, env = "STRATA_LIFECYCLE_DAY_SECONDS", hide = true)]
    pub lifecycle_day_seconds: Option<u64>,
}

/// The same settings as config-file keys.
#[derive(Debug, Default, Deserialize)]
pub struct LifecycleFile {
    /// See [`LifecycleArgs`].
    pub lifecycle_interval_seconds: Option<u64>,
    /// See [`LifecycleArgs`].
    pub lifecycle_actions_per_second: Option<u32>,
    /// See [`LifecycleArgs`].
    pub lifecycle_day_seconds: Option<u64>,
}

/// Resolves the job's settings.
pub fn resolve(args: LifecycleArgs, file: LifecycleFile) -> anyhow::Result<LifecycleSettings> {
    let interval = args
        .lifecycle_interval_seconds
        .or(file.lifecycle_interval_seconds)
        .unwrap_or(DEFAULT_INTERVAL_SECONDS);
    let rate = args
        .lifecycle_actions_per_second
        .or(file.lifecycle_actions_per_second)
        .unwrap_or(DEFAULT_ACTIONS_PER_SECOND);
    if rate == 0 {
        anyhow::bail!("lifecycle_actions_per_second must be at least 1");
    }
    let day = match args.lifecycle_day_seconds.or(file.lifecycle_day_seconds) {
        Some(0) => anyhow::bail!("lifecycle_day_seconds must be at least 1"),
        Some(secs) => DayLength::seconds(secs),
        None => DayLength::default(),
    };
    Ok(LifecycleSettings {
        day,
        interval: Duration::from_secs(interval.max(1)),
        actions_per_sec: rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_over_file_over_defaults() {
        let s = resolve(LifecycleArgs::default(), LifecycleFile::default()).unwrap();
        assert_eq!(s, LifecycleSettings::default());
        let file = LifecycleFile {
            lifecycle_interval_seconds: Some(60),
            lifecycle_actions_per_second: Some(5),
            lifecycle_day_seconds: Some(2),
        };
        let args = LifecycleArgs {
            lifecycle_interval_seconds: Some(10),
            ..Default::default()
        };
        let s = resolve(args, file).unwrap();
        assert_eq!(s.interval, Duration::from_secs(10));
        assert_eq!(s.actions_per_sec, 5);
        assert_eq!(s.day, DayLength::seconds(2));
        let zero = LifecycleArgs {
            lifecycle_actions_per_second: Some(0),
            ..Default::default()
        };
        assert!(resolve(zero, LifecycleFile::default()).is_err());
    }
}
