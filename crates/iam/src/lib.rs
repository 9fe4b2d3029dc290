//! Identity and access for Strata: who a request comes from, and whether it may do what it
//! asks.
//!
//! - [`policy`]: the AWS policy language (parsing with AWS's validation, one policy's verdict
//!   for a request).
//! - [`actions`]: every S3 operation's AWS action name.
//! - [`Iam`] ([`service`]): users, groups, service accounts and canned policies, kept in a
//!   [`SystemStore`] with secrets sealed ([`seal`]), cached in memory.
//! - [`sts`]: temporary credentials (sessions) that need no stored state.
//! - [`authorize()`]: AWS's combination of identity policies, a service account's embedded
//!   policy and the bucket policy into one [`Decision`].
//!
//! **Architecture invariant:** no HTTP, XML, S3 error codes or drives here. The front door
//! (`strata-s3`) turns a request into an action, a resource and a [`policy::Context`], and a
//! decision into an answer; persistence goes through [`SystemStore`], which the object layer's
//! system records implement.
//!
//! **Invariant:** secret keys never appear in `Debug` output, errors or logs.
#![deny(missing_docs)]

pub mod acl;
pub mod actions;
mod authorize;
mod error;
pub mod identity;
pub mod ldap;
pub mod oidc;
pub mod policy;
pub mod seal;
pub mod service;
pub mod store;
pub mod sts;

pub use authorize::{
    ACCOUNT_ADMIN_ACTIONS, Caller, DEPLOYMENT_RESOURCE, Decision, PrincipalKind, Reason, Source, authorize,
    authorize_admin, authorize_in,
};
pub use error::IamError;
pub use identity::{Status, deployment_account_id};
pub use service::{
    AccountInfo, Entity, GroupInfo, Iam, NewAccount, NewServiceAccount, PolicyInfo, RootKeys, Secret,
    ServiceAccountInfo, ServiceAccountUpdate, UserInfo,
};
pub use store::{MemoryStore, SystemStore};
