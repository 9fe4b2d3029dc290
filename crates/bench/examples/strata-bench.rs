//! Manual runs of the load generator without the `strata` binary:
//! `cargo run --release -p strata-bench --example strata-bench -- put --duration 5s`.

use clap::Parser;

/// Load generator for a running Strata (or any S3) server.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: strata_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    strata_bench::run(Cli::parse().bench).await
}
