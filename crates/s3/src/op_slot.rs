//! [`OperationSlot`]: how the server learns which S3 operation s3s resolved a request to and
//! which access key it authenticated, for metrics and audit records. The server puts an empty
//! slot into the request's extensions; the access hooks ([`crate::IamAccess`] and the
//! intercept's) fill it before they decide (only requests whose signature s3s accepted, or
//! anonymous ones, reach them).

use std::sync::{Arc, OnceLock};

/// What s3s resolved: the operation name (`GetObject`, ...) and the authenticated access key.
#[derive(Clone, Debug, Default)]
pub struct OperationSlot(pub Arc<OnceLock<(String, Option<String>)>>);

impl OperationSlot {
    /// The operation name and access key, once s3s got as far as the access check.
    pub fn get(&self) -> Option<&(String, Option<String>)> {
        self.0.get()
    }
}
