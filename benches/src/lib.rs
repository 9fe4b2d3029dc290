//! Benchmark support crate; the benchmarks are under `benches/benches/`.
#![deny(missing_docs)]
