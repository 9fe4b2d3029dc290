//! [`OperationSlot`]: how the server learns which S3 operation s3s resolved a request to and
//! which access key it authenticated, for metrics and audit records. The server puts an empty
//! slot into the request's extensions; [`RecordingAccess`], the service's access hook, fills
//! it (only requests whose signature s3s accepted, or anonymous ones, reach the hook).
//!
//! Invariant: the access decision is exactly s3s's default (signed requests pass, anonymous
//! ones are denied); filling the slot changes nothing about it.

use std::sync::{Arc, OnceLock};

use s3s::S3Result;
use s3s::access::{S3Access, S3AccessContext};

/// What s3s resolved: the operation name (`GetObject`, ...) and the authenticated access key.
#[derive(Clone, Debug, Default)]
pub struct OperationSlot(pub Arc<OnceLock<(String, Option<String>)>>);

impl OperationSlot {
    /// The operation name and access key, once s3s got as far as the access check.
    pub fn get(&self) -> Option<&(String, Option<String>)> {
        self.0.get()
    }
}

/// The access hook: records the operation, then applies s3s's default rule.
#[derive(Debug, Default)]
pub struct RecordingAccess;

#[async_trait::async_trait]
impl S3Access for RecordingAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let name = cx.s3_op().name().to_owned();
        let access_key = cx.credentials().map(|c| c.access_key.clone());
        let signed = access_key.is_some();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set((name, access_key));
        }
        if signed {
            Ok(())
        } else {
            Err(s3s::s3_error!(AccessDenied, "Signature is required"))
        }
    }
}
