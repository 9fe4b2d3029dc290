//! Distributed mode: one deployment made of several nodes.
//!
//! - `ellipsis`: MinIO-style `{1...4}` expansion of endpoint arguments.
//! - `topology`: endpoint arguments → pools → erasure sets → drives, identical on every node,
//!   with each set spread over as many nodes as possible.
//! - `lock`: quorum-based distributed locks with expiry and refresh.
//! - `node`: this node in its deployment: start-up agreement, node RPC service, and the
//!   cluster services the object layer calls.
#![deny(missing_docs)]

pub mod ellipsis;
pub mod error;
pub mod lock;
pub mod node;
pub mod topology;

pub use error::ClusterError;
