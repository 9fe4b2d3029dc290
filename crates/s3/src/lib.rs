//! The S3 front door: turns typed S3 operations (parsed, authenticated and serialized by
//! [`s3s`]) into calls on the Strata object layer, and object-layer answers back into S3 DTOs.
//!
//! Main types:
//! - [`StrataS3`] implements [`s3s::S3`] over an `Arc<strata_object::ObjectLayer>`. Handlers live
//!   in one file per operation family (`bucket.rs`, `object.rs`, `list.rs`, `multipart.rs`);
//!   each only validates its input, calls the object layer and builds the output DTO.
//! - [`IamAuth`] hands s3s the secret keys of root, users and service accounts for signature
//!   checks (SigV4 header, presigned and streaming chunked, SigV2); [`IamAccess`] decides each
//!   operation with `strata_iam`'s policies and the bucket's policy (`authz.rs`).
//! - [`HealthRoute`] answers `/health/live`, `/health/ready` and `/healthz` without a signature.
//! - [`AdminRoute`] answers the JSON admin API under `/strata/admin/v1/` (heal, info), and
//!   [`MinioAdminRoute`] MinIO's under `/minio/admin/v3/` (users, groups, policies, service
//!   accounts); one router dispatches between them and the health routes.
//! - [`build_service`] puts them together into a [`FrontDoorService`]: s3s's `S3Service` behind
//!   bucket CORS (`cors.rs`: preflights answered before s3s, `Access-Control-*` on answers to
//!   cross-origin requests), which a hyper server can serve.
//!
//! **Architecture invariant:** only this crate knows S3 error codes. Every [`ObjectError`] is
//! mapped to a code and status in exactly one place, [`map_object_error`]; internal failures are
//! logged with the request id and reach the client only as `InternalError` (or `SlowDown` for
//! lost quorum), never with their Rust message. Secrets never appear in errors or logs.
//!
//! **Architecture invariant:** no bytes are buffered whole: request bodies stream into the
//! object layer and object bodies stream out of it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use strata_s3::{build_service, FrontDoorConfig, RootCredentials};
//! let dirs: Vec<std::path::PathBuf> = (1..=4).map(|i| format!("/tmp/demo/disk{i}").into()).collect();
//! let layer = Arc::new(strata_object::ObjectLayer::open_local(&dirs).await?);
//! let root = RootCredentials::new("AKIAEXAMPLE000000000", "a-long-random-secret-of-forty-characters")?;
//! let iam = strata_iam::Iam::root_only(root.access_key(), root.secret_key()).await?;
//! let config = FrontDoorConfig { region: "us-east-1".into(), domains: vec![], root, iam, identity_providers: vec![], ldap: None, encryption: Default::default(), key_rotation: None, lifecycle: None, tiers: None };
//! let service = build_service(layer, &config)?;
//! # let _ = service; Ok(()) }
//! ```
#![deny(missing_docs)]

mod access_control;
mod admin;
mod attributes;
mod auth;
mod authz;
mod bucket;
mod bucket_policy;
mod convert;
mod cors;
mod encryption;
mod error;
mod form;
mod health;
mod integrity;
mod intercept;
mod key_rotation;
mod lifecycle;
mod limits;
mod list;
pub mod madmin_crypto;
mod minio_admin;
mod multipart;
mod object;
mod object_lock;
mod op_slot;
mod post_form;
mod precondition;
mod presign;
mod routes;
mod service;
mod storage_class;
mod sts;
mod tagging;
mod tier_admin;

pub use admin::{
    ACCOUNTS_PATH as ADMIN_ACCOUNTS_PATH, ADMIN_PATH_PREFIX, AdminRoute, DECOMMISSION_PATH, HEAL_PATH,
    INFO_PATH, KMS_KEY_ROTATE_PATH, KMS_KEY_STATUS_PATH, KMS_KEYS_PATH, KMS_STATUS_PATH, POOLS_PATH,
};
pub use auth::RootCredentials;
pub use authz::{ClientInfo, IamAccess, IamAuth};
pub use cors::FrontDoorService;
pub use encryption::{ConfigKeyError, EncryptionConfig, seal_configuration};
pub use error::{FrontDoorError, map_object_error};
pub use health::{HealthRoute, LIVE_PATH};
pub use key_rotation::{KeyRotation, RotateError};
pub use lifecycle::{lifecycle_from_xml, lifecycle_to_xml};
pub use limits::{HEADER_SECTION_BYTES_MAX, HEADER_VALUE_BYTES_MAX, USER_METADATA_BYTES_MAX};
pub use minio_admin::{MINIO_ADMIN_PREFIX, MinioAdminRoute};
pub use op_slot::{OperationSlot, Principal};
pub use service::{FrontDoorConfig, RequestId, StrataS3, build_service};
pub use tier_admin::{TIER_STATS_PATH, TIER_VERIFY_PATH, TIERS_PATH};

#[doc(no_inline)]
pub use strata_object::ObjectError;

/// A success status other than the one s3s gives an operation (RestoreObject's 202),
/// applied by [`FrontDoorService`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusOverride(pub http::StatusCode);
