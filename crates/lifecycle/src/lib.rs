//! Bucket lifecycle (S3's lifecycle configuration): which versions expire and which uploads
//! are abandoned, decided by a bucket's rules and applied in the background.
//!
//! - [`config`]: the rules as stored and AWS's validation of them.
//! - [`eval`]: what the rules say about one key's versions at one moment (pure).
//! - [`worker`]: the job that walks the buckets and applies what is due, resumably, on one
//!   node of a cluster at a time.
//!
//! The front door (`strata-s3`) converts S3's XML into [`LifecycleConfig`], maps
//! [`LifecycleError`] to S3 error codes, reports `x-amz-expiration` from
//! [`eval::current_expiry`], and queues writes already due ([`Lifecycle::enqueue`]). This crate
//! knows no HTTP and touches no drive: it works through the object layer's listing and
//! (conditional) delete.
#![deny(missing_docs)]

pub mod config;
pub mod eval;
pub mod worker;

pub use config::{LifecycleConfig, LifecycleError};
pub use eval::{Action, DayLength, current_expiry, evaluate};
pub use worker::{BUCKET_LIFECYCLE_CONFIG, Lifecycle, LifecycleSettings, LifecycleStats, Progress};
