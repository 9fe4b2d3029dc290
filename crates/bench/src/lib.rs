//! End-to-end S3 load generator behind `strata bench`, in the spirit of MinIO's warp: many
//! workers run one kind of S3 operation (or a mix) back to back against a running server for a
//! fixed time, and the tool reports operations per second, MiB/s, latency percentiles and
//! errors, as text or as one JSON line.
//!
//! Main items:
//! - [`BenchArgs`] (a `clap::Args`) and [`run`]: what the binary wires in as
//!   `strata bench <mode> [options]`.
//! - Modes ([`Mode`]): `put`, `get`, `stat`, `delete`, `mixed` (45 % get, 30 % stat, 15 % put,
//!   10 % delete), `list` (full ListObjectsV2 walks of a prefilled prefix, 1000-key pages) and
//!   `multipart`.
//! - [`report::Report`]: the results; [`histogram::LatencyHistogram`]: latencies.
//!
//! **Architecture invariant:** the load generator talks to the server only through
//! `strata-client`, i.e. over the wire like any S3 client; it links no server crate.
//!
//! **Architecture invariant:** the warm-up is excluded from every figure, each run stops by
//! itself (bounded duration, bounded waits), and by default it deletes what it created.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     bench: strata_bench::BenchArgs,
//! }
//! let cli = Cli::parse_from(["strata-bench", "get", "--size", "64KiB", "--duration", "10s"]);
//! strata_bench::run(cli.bench).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod histogram;
pub mod report;
mod runner;
pub mod units;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use strata_client::{Client, ClientConfig};
use strata_object::ChecksumAlgorithm;

use crate::report::{Report, RunFacts};
use crate::runner::Plan;
use crate::units::{parse_duration, parse_size};
use crate::workload::FastRng;

/// Most concurrent workers allowed.
pub const CONCURRENCY_MAX: u32 = 4096;
/// Largest object or part size: bodies come from one in-memory buffer of this size at most.
pub const BODY_SIZE_BYTES_MAX: u64 = 1 << 30;
/// Most objects a prefill may create.
pub const OBJECTS_COUNT_MAX: u64 = 10_000_000;
/// S3's smallest part size (all parts but the last).
pub const PART_SIZE_BYTES_MIN: u64 = 5 << 20;
/// S3's largest part count.
pub const PARTS_COUNT_MAX: u32 = 10_000;
const _: () = assert!(PART_SIZE_BYTES_MIN <= BODY_SIZE_BYTES_MAX);

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// PutObject of new keys.
    Put,
    /// GetObject of random prefilled keys (bodies streamed and discarded).
    Get,
    /// HeadObject of random prefilled keys.
    Stat,
    /// DeleteObject of prefilled keys (stops early when they run out).
    Delete,
    /// 45 % get, 30 % stat, 15 % put, 10 % delete over prefilled keys.
    Mixed,
    /// Repeated full ListObjectsV2 walks (1000-key pages) of the prefilled keys.
    List,
    /// Multipart uploads: create, `--parts` parts of `--part-size`, complete.
    Multipart,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Stat => "stat",
            Self::Delete => "delete",
            Self::Mixed => "mixed",
            Self::List => "list",
            Self::Multipart => "multipart",
        }
    }

    fn needs_prefill(self) -> bool {
        matches!(
            self,
            Self::Get | Self::Stat | Self::Delete | Self::Mixed | Self::List
        )
    }
}

/// Options of `strata bench`.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub mode: Mode,
    /// Server endpoint (http://host:port).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Access key [env: STRATA_ROOT_USER, else AWS_ACCESS_KEY_ID].
    #[arg(long, env = "STRATA_ROOT_USER", hide_env = true)]
    pub access_key: Option<String>,
    /// Secret key [env: STRATA_ROOT_PASSWORD, else AWS_SECRET_ACCESS_KEY].
    #[arg(long, env = "STRATA_ROOT_PASSWORD", hide_env = true, hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to use, created if missing [default: a fresh strata-bench-<random>].
    #[arg(long)]
    pub bucket: Option<String>,
    /// Object size: 4KiB, 1MiB, 64MiB, 5MB or plain bytes.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub size: u64,
    /// Concurrent workers (and keep-alive connections).
    #[arg(long, default_value_t = 8)]
    pub concurrency: u32,
    /// Measured time: 30s, 2m, 1m30s, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring, excluded from results.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Objects to prefill for get, stat, delete, mixed and list.
    #[arg(long, default_value_t = 1000)]
    pub objects: u64,
    /// Part size for multipart (at least 5MiB).
    #[arg(long, default_value = "5MiB", value_parser = parse_size)]
    pub part_size: u64,
    /// Parts per multipart object.
    #[arg(long, default_value_t = 4)]
    pub parts: u32,
    /// Send this additional checksum with every PUT body (CRC32, CRC32C, CRC64NVME, SHA1 or
    /// SHA256; computed once, as the bodies are all the same bytes), to measure the server's
    /// checksum verification.
    #[arg(long, value_name = "ALGORITHM")]
    pub checksum: Option<String>,
    /// Print one JSON line with all results (instead of text) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Keep the objects (and bucket) created instead of deleting them.
    #[arg(long)]
    pub keep: bool,
    /// Measure over the objects an earlier `--keep` run left under this prefix (with the same
    /// `--bucket`, `--objects`, `--size` and `--concurrency`) instead of prefilling; they are
    /// kept afterwards. Prefilling 1,000,000 keys takes minutes.
    #[arg(long, requires = "bucket", value_name = "PREFIX")]
    pub reuse_prefix: Option<String>,
}

impl BenchArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.concurrency > CONCURRENCY_MAX {
            bail!("--concurrency must be 1 to {CONCURRENCY_MAX}");
        }
        if self.size > BODY_SIZE_BYTES_MAX {
            bail!("--size must be at most {BODY_SIZE_BYTES_MAX} bytes");
        }
        if self.duration.is_zero() {
            bail!("--duration must be positive");
        }
        if self.mode.needs_prefill() && (self.objects == 0 || self.objects > OBJECTS_COUNT_MAX) {
            bail!(
                "--objects must be 1 to {OBJECTS_COUNT_MAX} for {}",
                self.mode.name()
            );
        }
        if self.mode == Mode::Mixed && self.objects < u64::from(self.concurrency) {
            bail!("--objects must be at least --concurrency for mixed (each worker owns its keys)");
        }
        if let Some(name) = &self.checksum
            && ChecksumAlgorithm::from_name(name).is_none()
        {
            bail!("--checksum must be one of CRC32, CRC32C, CRC64NVME, SHA1, SHA256");
        }
        if self.mode == Mode::Multipart {
            if self.part_size < PART_SIZE_BYTES_MIN || self.part_size > BODY_SIZE_BYTES_MAX {
                bail!("--part-size must be {PART_SIZE_BYTES_MIN} to {BODY_SIZE_BYTES_MAX} bytes");
            }
            if self.parts == 0 || self.parts > PARTS_COUNT_MAX {
                bail!("--parts must be 1 to {PARTS_COUNT_MAX}");
            }
        }
        Ok(())
    }

    fn credentials(&self) -> anyhow::Result<(String, String)> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let access = self
            .access_key
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| from_env("AWS_ACCESS_KEY_ID"));
        let secret = self
            .secret_key
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| from_env("AWS_SECRET_ACCESS_KEY"));
        match (access, secret) {
            (Some(access), Some(secret)) => Ok((access, secret)),
            _ => bail!(
                "credentials needed: --access-key/--secret-key, STRATA_ROOT_USER/STRATA_ROOT_PASSWORD \
                 or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ),
        }
    }
}

/// Runs one benchmark and prints its report (text, or one JSON line with `--json`).
/// Progress goes to stderr. Fails if setup fails, or if errors occurred and nothing succeeded.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = run_report(args.clone()).await?;
    if args.json {
        println!("{}", report.to_json_line());
    } else {
        print!("{}", report.to_text());
    }
    if report.total.ops == 0 && report.total.errors > 0 {
        bail!(
            "every measured operation failed (first: {})",
            report.error_samples.first().map_or("", |s| s.as_str())
        );
    }
    Ok(())
}

/// The `x-amz-checksum-*` header of every PUT body (the first `size` bytes of `buffer`).
fn checksum_headers(algorithm: Option<&str>, buffer: &[u8], size: u64) -> anyhow::Result<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    let Some(algorithm) = algorithm.and_then(ChecksumAlgorithm::from_name) else {
        return Ok(headers);
    };
    let body = &buffer[..usize::try_from(size).unwrap_or(usize::MAX).min(buffer.len())];
    let name = format!("x-amz-checksum-{}", algorithm.name().to_ascii_lowercase());
    let value = base64_simd::STANDARD.encode_to_string(algorithm.digest(body));
    headers.insert(
        http::HeaderName::try_from(name).context("checksum header name")?,
        http::HeaderValue::try_from(value).context("checksum header value")?,
    );
    Ok(headers)
}

/// Runs one benchmark and returns its report without printing it (progress goes to stderr).
pub async fn run_report(args: BenchArgs) -> anyhow::Result<Report> {
    args.check()?;
    let (access_key, secret_key) = args.credentials()?;
    let endpoint: http::Uri = args
        .endpoint
        .parse()
        .with_context(|| format!("--endpoint {}", args.endpoint))?;
    let mut config = ClientConfig::new(endpoint, access_key, secret_key);
    config.region = args.region.clone();
    // https:// with a private CA or a self-signed certificate: trust this PEM file too.
    config.ca_file = std::env::var_os("STRATA_CA_FILE").map(std::path::PathBuf::from);
    config.pool_idle_connections = usize::try_from(args.concurrency).unwrap_or(usize::MAX);
    let client = Client::new(config)?;

    let mut rng = FastRng::from_clock(0);
    let bucket = args
        .bucket
        .clone()
        .unwrap_or_else(|| format!("strata-bench-{:08x}", rng.next_u64() as u32));
    let created_bucket = client
        .create_bucket(&bucket)
        .await
        .with_context(|| format!("create bucket {bucket}"))?;
    let run_prefix = match &args.reuse_prefix {
        Some(prefix) => prefix.trim_end_matches('/').to_owned(),
        None => format!("bench-{:08x}", rng.next_u64() as u32),
    };

    let body_size_bytes = if args.mode == Mode::Multipart {
        args.part_size
    } else {
        args.size
    };
    let mut buffer = vec![0u8; usize::try_from(body_size_bytes).context("--size does not fit in memory")?];
    rng.fill(&mut buffer);
    let put_headers = checksum_headers(args.checksum.as_deref(), &buffer, args.size)?;
    let plan = Arc::new(Plan {
        mode: args.mode,
        client: client.clone(),
        bucket: bucket.clone(),
        run_prefix,
        buffer: Bytes::from(buffer),
        size_bytes: args.size,
        part_size_bytes: args.part_size,
        n_parts: args.parts,
        n_workers: args.concurrency,
        n_objects: if args.mode.needs_prefill() {
            args.objects
        } else {
            0
        },
        put_headers,
    });

    let outcome = measure_phase(&plan, &args).await;
    if args.keep || args.reuse_prefix.is_some() {
        eprintln!("keeping bucket {bucket}, prefix {}/", plan.run_prefix);
    } else {
        match runner::cleanup(&plan).await {
            Ok(n_deleted) => eprintln!("cleanup: deleted {n_deleted} objects"),
            Err(err) => eprintln!(
                "cleanup failed (objects under {}/ may remain): {err:#}",
                plan.run_prefix
            ),
        }
        if created_bucket && let Err(err) = client.delete_bucket(&bucket).await {
            eprintln!("cleanup: could not delete bucket {bucket}: {err}");
        }
    }
    let measured = outcome?;

    let facts = RunFacts {
        mode: args.mode.name().to_owned(),
        endpoint: args.endpoint.clone(),
        bucket,
        concurrency: args.concurrency,
        object_size_bytes: if args.mode == Mode::Multipart {
            args.part_size.saturating_mul(u64::from(args.parts))
        } else {
            args.size
        },
        duration: args.duration,
        warmup: args.warmup,
        prefilled_objects: plan.n_objects,
        stopped_early: measured.stopped_early,
    };
    Ok(Report::new(facts, &measured.stats))
}

async fn measure_phase(plan: &Arc<Plan>, args: &BenchArgs) -> anyhow::Result<runner::Measured> {
    if plan.n_objects > 0 && args.reuse_prefix.is_some() {
        eprintln!("reusing {} objects under {}/", plan.n_objects, plan.run_prefix);
    } else if plan.n_objects > 0 {
        eprintln!("prefill: {} objects of {} bytes", plan.n_objects, plan.size_bytes);
        runner::prefill(plan).await?;
    }
    eprintln!(
        "{}: {} workers, {:.1} s warm-up + {:.1} s",
        args.mode.name(),
        args.concurrency,
        args.warmup.as_secs_f64(),
        args.duration.as_secs_f64()
    );
    Ok(runner::measure(plan, args.warmup, args.duration).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|cli| cli.bench)
    }

    #[test]
    fn options_parse_with_units_and_defaults() {
        let args = parse(&[
            "multipart",
            "--size",
            "64MiB",
            "--duration",
            "1m30s",
            "--warmup",
            "500ms",
            "--part-size",
            "8MiB",
            "--parts",
            "3",
            "--json",
            "--keep",
            "--access-key",
            "a",
            "--secret-key",
            "s",
        ])
        .unwrap();
        assert_eq!(args.mode, Mode::Multipart);
        assert_eq!(args.size, 64 << 20);
        assert_eq!(args.duration, Duration::from_secs(90));
        assert_eq!(args.warmup, Duration::from_millis(500));
        assert_eq!(args.part_size, 8 << 20);
        assert_eq!(args.parts, 3);
        assert!(args.json && args.keep);
        assert!(args.check().is_ok());
        assert_eq!(args.credentials().unwrap(), ("a".to_string(), "s".to_string()));

        let defaults = parse(&["get"]).unwrap();
        assert_eq!(defaults.endpoint, "http://127.0.0.1:9000");
        assert_eq!(defaults.size, 1 << 20);
        assert_eq!(defaults.concurrency, 8);
        assert_eq!(defaults.duration, Duration::from_secs(30));
        assert_eq!(defaults.objects, 1000);
        assert!(defaults.check().is_ok());
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(parse(&["put", "--size", "1.5MiB"]).is_err());
        assert!(parse(&["teleport"]).is_err());
        for args in [
            &["put", "--concurrency", "0"][..],
            &["put", "--duration", "0s"],
            &["put", "--size", "2GiB"],
            &["get", "--objects", "0"],
            &["mixed", "--objects", "4", "--concurrency", "8"],
            &["multipart", "--part-size", "1MiB"],
            &["multipart", "--parts", "0"],
        ] {
            assert!(parse(args).unwrap().check().is_err(), "{args:?}");
        }
    }
}
