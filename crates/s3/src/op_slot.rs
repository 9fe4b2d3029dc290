//! [`OperationSlot`]: how the server learns which S3 operation s3s resolved a request to, which
//! access key it authenticated and whose rights the request ran with, for metrics and audit
//! records. The server puts an empty slot into the request's extensions; the access hooks
//! ([`crate::IamAccess`] and the intercept's) fill it before they decide (only requests whose
//! signature s3s accepted, or anonymous ones, reach them).

use std::sync::{Arc, OnceLock};

/// Whose rights a request ran with, for audit records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user the rights come from: `root`, a user name, a service account's or a session's
    /// parent user.
    pub user: String,
    /// `Root`, `User`, `ServiceAccount` or `AssumedRole` (an STS session).
    pub kind: &'static str,
    /// An STS session's name, if any.
    pub session: Option<String>,
}

/// What s3s resolved: the operation name (`GetObject`, ...) and the authenticated access key;
/// and, once the caller is known, its [`Principal`].
#[derive(Clone, Debug, Default)]
pub struct OperationSlot {
    operation: Arc<OnceLock<(String, Option<String>)>>,
    principal: Arc<OnceLock<Principal>>,
}

impl OperationSlot {
    /// The operation name and access key, once s3s got as far as the access check.
    pub fn get(&self) -> Option<&(String, Option<String>)> {
        self.operation.get()
    }

    /// The caller's principal, once the access hook resolved it.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.get()
    }

    pub(crate) fn set_operation(&self, name: String, access_key: Option<String>) {
        let _ = self.operation.set((name, access_key));
    }

    pub(crate) fn set_principal(&self, principal: Principal) {
        let _ = self.principal.set(principal);
    }
}
