//! Observability for Strata: what operators point Prometheus, Grafana and their log pipeline
//! at.
//!
//! - [`metrics`]: the Prometheus registry (`/metrics/node`, `/metrics/cluster`): requests by API
//!   and status, latency and time-to-first-byte histograms, bytes, errors by S3 code, drives,
//!   sets, healing, scanner, metadata commits, erasure coding, audit targets, process.
//! - [`token`]: scrape tokens (HS512 JWT from the root credentials, as MinIO's).
//! - [`audit`], [`audit_file`], [`webhook`]: one JSON audit record per request, to a rotated file
//!   and/or HTTP webhooks with bounded queues, retries with backoff and an on-disk spill.
//! - [`observe`]: the per-request glue the server calls ([`Observability`]).
//! - [`classify`]: API name, bucket, object and claimed access key from the raw request.
//! - [`usage`]: objects and bytes per bucket, walked in the background.
//! - [`logging`]: `tracing` setup (text or JSON, `RUST_LOG` or configured level).
//!
//! **Architecture invariant:** observability never blocks or slows a request beyond a bounded
//! amount of in-memory work: metrics are atomics, audit records are handed over with `try_send`
//! (a full queue drops and counts), scrape-time state is read only when scraped.
//!
//! **Architecture invariant:** no secret is ever recorded or logged: no `Authorization` header,
//! signature, security token or SSE-C key, no query string (presigned URLs carry signatures),
//! no secret key; tokens are compared in constant time and never echoed.
#![deny(missing_docs)]

pub mod audit;
pub mod audit_file;
pub mod classify;
pub mod connections;
mod error;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod process;
pub mod token;
pub mod usage;
pub mod webhook;

pub use audit::{AuditLog, AuditRecord, AuditTarget, TargetStats};
pub use audit_file::{FileTarget, FileTargetConfig};
pub use error::ObsError;
pub use metrics::{Metrics, Scope};
pub use observe::{
    MetricsAuth, Observability, ObservabilityConfig, RequestObservation, Resolved, ScrapeAuthorizer,
};
pub use usage::UsageCache;
pub use webhook::{WebhookConfig, WebhookTarget};
