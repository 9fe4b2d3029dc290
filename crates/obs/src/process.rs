//! Process metrics from `/proc/self` (Linux): resident memory, open file descriptors, CPU time
//! and start time, under the standard `process_*` names Prometheus' own client libraries use.
//!
//! Invariant: a value that cannot be read is left out of the scrape, never reported as 0.

use prometheus::{Gauge, Registry};

use crate::error::ObsError;

/// What `/proc/self` says about this process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size.
    pub resident_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// User plus system CPU time.
    pub cpu_seconds: Option<f64>,
    /// Start time, seconds since the epoch.
    pub start_unix_secs: Option<f64>,
}

/// Fields of `/proc/self/stat` after the command name (field 3 onwards).
fn stat_fields(stat: &str) -> Vec<&str> {
    // The command name (field 2) is in parentheses and may itself contain spaces.
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// Reads the current values.
pub fn read() -> ProcessStats {
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page_bytes = rustix::param::page_size() as u64;
    let mut s = ProcessStats {
        resident_bytes: std::fs::read_to_string("/proc/self/statm").ok().and_then(|t| {
            t.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
                .map(|pages| pages * page_bytes)
        }),
        open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64),
        ..ProcessStats::default()
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let f = stat_fields(&stat);
        // utime and stime are fields 14 and 15, starttime field 22 (1-based); f[0] is field 3.
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(u), Some(k)) = (num(11), num(12)) {
            s.cpu_seconds = Some((u + k) / ticks);
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        if let (Some(start), Some(boot)) = (num(19), boot) {
            s.start_unix_secs = Some(boot + start / ticks);
        }
    }
    s
}

/// Registers the process families with the current values into a per-scrape registry.
pub fn register(r: &Registry) -> Result<(), ObsError> {
    let s = read();
    let put = |name: &str, help: &str, v: Option<f64>| -> Result<(), ObsError> {
        if let Some(v) = v {
            let g = Gauge::new(name, help)?;
            g.set(v);
            r.register(Box::new(g))?;
        }
        Ok(())
    };
    put(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        s.resident_bytes.map(|v| v as f64),
    )?;
    put(
        "process_open_fds",
        "Number of open file descriptors.",
        s.open_fds.map(|v| v as f64),
    )?;
    put(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        s.start_unix_secs,
    )?;
    if let Some(cpu) = s.cpu_seconds {
        // A counter in Prometheus terms: exposed through a counter family so rate() applies.
        let c = prometheus::Counter::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        )?;
        c.inc_by(cpu);
        r.register(Box::new(c))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = read();
        assert!(s.resident_bytes.unwrap() > 1024 * 1024);
        assert!(s.open_fds.unwrap() >= 3);
        assert!(s.cpu_seconds.unwrap() >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = s.start_unix_secs.unwrap();
        assert!(start <= now + 1.0 && start > now - 86400.0 * 365.0);
        assert_eq!(stat_fields("1 (a b) S 2 3"), ["S", "2", "3"]);
    }
}
