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
    /// Seconds between two scanner cycles over every object [default: 60].
    #[arg(long, env = "STRATA_SCANNER_CYCLE_PAUSE_SECONDS")]
    pub scanner_cycle_pause_seconds: Option<u64>,
    /// Age in seconds after which data no record names (a write or transition a crash cut
    /// short) is removed by the scanner and the tier journal [default: 3600]. Lower only
    /// for tests: a write in flight for longer would lose its data.
    #[arg(long, env = "STRATA_ORPHAN_AGE_SECONDS", hide = true)]
    pub orphan_age_seconds: Option<u64>,
}

/// Background settings that are not the lifecycle job's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackgroundSettings {
    /// Pause between scanner cycles.
    pub scanner_cycle_pause: Duration,
    /// Age of unreferenced data before it is swept.
    pub orphan_age: Duration,
}

/// Resolves the scanner settings.
pub fn resolve_background(args: &LifecycleArgs, file: &LifecycleFile) -> BackgroundSettings {
    let defaults = strata_object::BackgroundConfig::default();
    BackgroundSettings {
        scanner_cycle_pause: args
            .scanner_cycle_pause_seconds
            .or(file.scanner_cycle_pause_seconds)
            .map_or(defaults.scanner_cycle_pause, Duration::from_secs),
        orphan_age: args
            .orphan_age_seconds
            .or(file.orphan_age_seconds)
            .map_or(defaults.orphan_age_min, Duration::from_secs),
    }
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
    /// See [`LifecycleArgs`].
    pub scanner_cycle_pause_seconds: Option<u64>,
    /// See [`LifecycleArgs`].
    pub orphan_age_seconds: Option<u64>,
}

/// Resolves the job's settings.
pub fn resolve(args: &LifecycleArgs, file: &LifecycleFile) -> anyhow::Result<LifecycleSettings> {
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
        let s = resolve(&LifecycleArgs::default(), &LifecycleFile::default()).unwrap();
        assert_eq!(s, LifecycleSettings::default());
        let file = LifecycleFile {
            lifecycle_interval_seconds: Some(60),
            lifecycle_actions_per_second: Some(5),
            lifecycle_day_seconds: Some(2),
            scanner_cycle_pause_seconds: Some(5),
            orphan_age_seconds: None,
        };
        let args = LifecycleArgs {
            orphan_age_seconds: Some(3),
            ..Default::default()
        };
        let bg = resolve_background(&args, &file);
        assert_eq!(bg.scanner_cycle_pause, Duration::from_secs(5));
        assert_eq!(bg.orphan_age, Duration::from_secs(3));
        let args = LifecycleArgs {
            lifecycle_interval_seconds: Some(10),
            ..Default::default()
        };
        let s = resolve(&args, &file).unwrap();
        assert_eq!(s.interval, Duration::from_secs(10));
        assert_eq!(s.actions_per_sec, 5);
        assert_eq!(s.day, DayLength::seconds(2));
        let zero = LifecycleArgs {
            lifecycle_actions_per_second: Some(0),
            ..Default::default()
        };
        assert!(resolve(&zero, &LifecycleFile::default()).is_err());
    }
}
