//! The process's memory budget: the `memory_budget` setting, its default from the cgroup limit
//! (or the machine's memory), and the plan that divides it among what grows with load.
//!
//! The plan ([`MemoryPlan::for_budget`]): a fixed part for the process itself
//! ([`PROCESS_BASE_BYTES`], the pooled shard write buffers, the ETag hasher's queue), a slack
//! for allocator fragmentation ([`SLACK_PERCENT`]), the metadata caches of this node's drives
//! ([`META_CACHE_SHARE_PERCENT`] of the rest, split per drive within
//! [`META_CACHE_BYTES_PER_DRIVE_MIN`]..=[`META_CACHE_BYTES_PER_DRIVE_MAX`]), and the rest for data
//! in flight (`strata_object::memory`: PUTs, parts, copies and GETs wait for their share).
//!
//! Invariants: the same precedence as every other setting (command line > environment >
//! config file > default); a budget too small for the fixed part plus the smallest caches and
//! request pool is refused at start, never silently exceeded.

use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// What the process needs whatever the load: code, runtime, threads' stacks, connection state,
/// bucket caches.
pub const PROCESS_BASE_BYTES: u64 = 96 * MIB;
/// Share of the budget left unplanned for allocator fragmentation (freed blocks the allocator
/// still holds, per-thread caches of the blocking pool) and whatever is not counted. Measured:
/// the resident peak runs about a fifth above the buffers counted under a PUT and GET load.
pub const SLACK_PERCENT: u64 = 25;
/// Share of what remains after the fixed part that the metadata caches get.
pub const META_CACHE_SHARE_PERCENT: u64 = 35;
/// Smallest metadata cache per drive (below it, listings read most pages from disk).
pub const META_CACHE_BYTES_PER_DRIVE_MIN: u64 = 8 * MIB;
/// Largest metadata cache per drive (more does not speed up listings measurably).
pub const META_CACHE_BYTES_PER_DRIVE_MAX: u64 = strata_drive::META_CACHE_BYTES as u64;
/// Share of a cgroup memory limit taken as the default budget (the rest is the kernel's page
/// cache and headroom before the OOM killer).
pub const CGROUP_LIMIT_SHARE_PERCENT: u64 = 75;
/// Share of the machine's memory taken as the default budget without a cgroup limit.
pub const PHYSICAL_MEMORY_SHARE_PERCENT: u64 = 50;

const MIB: u64 = 1024 * 1024;

/// Command-line flag (with its environment variable).
#[derive(Debug, Default, clap::Args)]
pub struct MemoryArgs {
    /// Memory the server may use, e.g. "512MiB", "4GiB" or bytes [default: 75 % of the cgroup
    /// memory limit, else 50 % of the machine's memory].
    #[arg(long, env = "STRATA_MEMORY_BUDGET")]
    pub memory_budget: Option<String>,
}

/// The same setting as a config-file key.
#[derive(Debug, Default, Deserialize)]
pub struct MemoryFile {
    /// See [`MemoryArgs`].
    pub memory_budget: Option<String>,
}

/// Where the budget came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BudgetSource {
    /// `memory_budget` was set.
    Configured,
    /// A share of the cgroup's memory limit.
    Cgroup,
    /// A share of the machine's memory.
    Machine,
}

/// The budget and how it is divided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The whole budget.
    pub budget_bytes: u64,
    /// Where it came from.
    pub source: BudgetSource,
    /// Metadata cache of each local drive.
    pub meta_cache_bytes_per_drive: u64,
    /// What data in flight may hold together.
    pub request_bytes: u64,
}

/// The configured budget, if any (flag and environment over the file).
pub fn resolve(args: MemoryArgs, file: MemoryFile) -> anyhow::Result<Option<u64>> {
    args.memory_budget
        .or(file.memory_budget)
        .map(|text| parse_bytes(&text).with_context(|| format!("memory_budget {text:?}")))
        .transpose()
}

impl MemoryPlan {
    /// The plan for the configured budget, or the default one, on a node with
    /// `n_local_drives` drives.
    pub fn new(configured: Option<u64>, n_local_drives: usize) -> anyhow::Result<MemoryPlan> {
        let (budget_bytes, source) = match configured {
            Some(bytes) => (bytes, BudgetSource::Configured),
            None => default_budget(),
        };
        MemoryPlan::for_budget(budget_bytes, source, n_local_drives)
    }

    /// Divides `budget_bytes` (see the module docs).
    pub fn for_budget(
        budget_bytes: u64,
        source: BudgetSource,
        n_local_drives: usize,
    ) -> anyhow::Result<MemoryPlan> {
        let n_drives = n_local_drives.max(1) as u64;
        let fixed = fixed_bytes();
        let usable = budget_bytes - budget_bytes * SLACK_PERCENT / 100;
        let needed_min = fixed
            + n_drives * META_CACHE_BYTES_PER_DRIVE_MIN
            + strata_object::memory::REQUEST_MEMORY_BYTES_MIN;
        if usable < needed_min {
            anyhow::bail!(
                "memory_budget of {} MiB is too small for {n_drives} drives: at least {} MiB are needed",
                budget_bytes / MIB,
                (needed_min * 100 / (100 - SLACK_PERCENT)).div_ceil(MIB)
            );
        }
        let rest = usable - fixed;
        let meta_cache_bytes_per_drive = (rest * META_CACHE_SHARE_PERCENT / 100 / n_drives)
            .clamp(META_CACHE_BYTES_PER_DRIVE_MIN, META_CACHE_BYTES_PER_DRIVE_MAX);
        let request_bytes = rest - meta_cache_bytes_per_drive * n_drives;
        Ok(MemoryPlan {
            budget_bytes,
            source,
            meta_cache_bytes_per_drive,
            request_bytes,
        })
    }
}

/// What the process holds whatever the load: itself, the pooled shard write buffers, the ETag
/// hasher's queue.
fn fixed_bytes() -> u64 {
    PROCESS_BASE_BYTES
        + strata_drive::SHARD_WRITE_BUFFERS_POOLED_BYTES_MAX
        + strata_object::ETAG_QUEUE_BYTES_MAX
}

/// `CGROUP_LIMIT_SHARE_PERCENT` of the cgroup limit, else `PHYSICAL_MEMORY_SHARE_PERCENT` of
/// the machine's memory, else 4 GiB.
fn default_budget() -> (u64, BudgetSource) {
    if let Some(limit) = cgroup_memory_limit(Path::new("/sys/fs/cgroup")) {
        return (limit / 100 * CGROUP_LIMIT_SHARE_PERCENT, BudgetSource::Cgroup);
    }
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total_bytes(&text))
        .unwrap_or(8 * 1024 * MIB);
    (
        physical / 100 * PHYSICAL_MEMORY_SHARE_PERCENT,
        BudgetSource::Machine,
    )
}

/// The memory limit of this process's cgroup (v2 `memory.max`, else v1
/// `memory/memory.limit_in_bytes`), if it sets one.
fn cgroup_memory_limit(root: &Path) -> Option<u64> {
    // v2: the limit of the process's own cgroup (`0::/path` in /proc/self/cgroup).
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("0::").map(str::to_owned))
        })
        .unwrap_or_default();
    let candidates = [
        root.join(own.trim_start_matches('/')).join("memory.max"),
        root.join("memory.max"),
        root.join("memory/memory.limit_in_bytes"),
    ];
    candidates.iter().find_map(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.trim();
        if text == "max" {
            return None;
        }
        // cgroup v1 reports "no limit" as a huge page-aligned number.
        text.parse::<u64>().ok().filter(|bytes| *bytes < (1 << 60))
    })
}

fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// "512MiB", "4GiB", "1.5GiB", "1073741824" (bytes), also "512M"/"4G"/"4GB" (binary units).
fn parse_bytes(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().context("not a number")?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => anyhow::bail!("unknown unit {other:?} (use B, KiB, MiB, GiB or TiB)"),
    };
    let bytes = number * factor as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        anyhow::bail!("out of range");
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        for (text, bytes) in [
            ("512MiB", 512 * MIB),
            ("512M", 512 * MIB),
            ("4GiB", 4096 * MIB),
            ("1.5GiB", 1536 * MIB),
            ("1048576", MIB),
            (" 2 GB ", 2048 * MIB),
        ] {
            assert_eq!(parse_bytes(text).unwrap(), bytes, "{text}");
        }
        for bad in ["", "MiB", "-1GiB", "4XB", "0"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_512_mib_budget_on_8_drives_fits_everything_under_it() {
        let plan = MemoryPlan::for_budget(512 * MIB, BudgetSource::Configured, 8).unwrap();
        let planned = fixed_bytes() + 8 * plan.meta_cache_bytes_per_drive + plan.request_bytes;
        assert!(planned <= 512 * MIB - 512 * MIB * SLACK_PERCENT / 100, "{plan:?}");
        assert!(plan.meta_cache_bytes_per_drive >= META_CACHE_BYTES_PER_DRIVE_MIN);
        assert!(plan.request_bytes >= strata_object::memory::REQUEST_MEMORY_BYTES_MIN);
    }

    #[test]
    fn large_budgets_cap_the_caches_and_small_ones_are_refused() {
        let big = MemoryPlan::for_budget(64 * 1024 * MIB, BudgetSource::Machine, 4).unwrap();
        assert_eq!(big.meta_cache_bytes_per_drive, META_CACHE_BYTES_PER_DRIVE_MAX);
        assert!(MemoryPlan::for_budget(128 * MIB, BudgetSource::Configured, 16).is_err());
    }

    #[test]
    fn cgroup_limits_are_read_and_max_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_memory_limit(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "1073741824\n").unwrap();
        assert_eq!(cgroup_memory_limit(dir.path()), Some(1024 * MIB));
        assert_eq!(
            mem_total_bytes("MemTotal:       24575152 kB\n"),
            Some(24575152 * 1024)
        );
    }
}
