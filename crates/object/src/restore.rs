//! RestoreObject: a temporary copy, in the deployment, of a version whose data is in an
//! archival remote tier (whose objects are not read directly).
//!
//! A restore marks the version's metadata `restore = ongoing` (an in-place metadata change),
//! then a task copies the remote object into a tier object of the hidden tier bucket (with the
//! version's back-reference, like a transition's) and marks it done with the copy's name and
//! its expiry. Reads of the version use the copy while it has not expired. Asked again while a
//! copy is readable, only the expiry moves. The copy goes when the tier sweep finds it expired
//! (or its version gone); an ongoing restore older than an hour (a restart cut its copy short)
//! may be asked for again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::{ObjectMetadata, PutOptions, RestoreState};
use crate::error::{ObjectError, ObjectResult};
use crate::layer::ObjectLayer;
use crate::record::{self, TieredData};
use crate::transition::{REF_BUCKET, REF_KEY, REF_VERSION, TIER_BUCKET};

/// What a restore request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreStart {
    /// A copy is being made (S3: 202 Accepted).
    Started,
    /// A copy was readable already; its expiry moved (S3: 200).
    Extended,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ObjectLayer {
    /// Restores a version from its archival tier until `expiry` (see the module documentation).
    pub async fn restore_version(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        expiry: SystemTime,
    ) -> ObjectResult<RestoreStart> {
        let (resolved, _, _) = self.resolve_for_read(bucket, key, version_id).await?;
        let rec = resolved.record;
        let Some(TieredData {
            remote: Some(tier),
            name,
        }) = rec.tiered.clone()
        else {
            return Err(ObjectError::NotArchived);
        };
        if !self.remote_tiers().is_some_and(|t| t.is_archival(&tier)) {
            return Err(ObjectError::NotArchived);
        }
        let version = record::version_id_string(rec.version_id).unwrap_or_else(|| "null".to_owned());
        let now = unix(SystemTime::now());
        let expiry_unix = unix(expiry);
        let mut outcome = RestoreStart::Started;
        let mod_time_ns = rec.mod_time_ns;
        self.update_object_metadata_if(bucket, key, Some(&version), Some(mod_time_ns), |m| {
            match &mut m.restore {
                Some(r) if r.in_progress(now) => return Err(ObjectError::RestoreInProgress),
                Some(r) if r.readable(now) => {
                    r.expiry_unix = r.expiry_unix.max(expiry_unix);
                    outcome = RestoreStart::Extended;
                }
                _ => {
                    m.restore = Some(RestoreState {
                        ongoing: true,
                        started_unix: now,
                        expiry_unix,
                        copy: None,
                    });
                }
            }
            Ok(())
        })
        .await?;
        if outcome == RestoreStart::Started {
            let layer = Arc::clone(self);
            let (bucket, key) = (bucket.to_owned(), key.to_owned());
            tokio::spawn(async move {
                let copied = layer
                    .copy_from_archive(&bucket, &key, &version, &tier, &name, rec.size)
                    .await;
                // Only over this restore's own state: a restore started again after this one
                // was taken for cut short owns it otherwise (this copy is then swept).
                let finish = |m: &mut ObjectMetadata| {
                    if !m
                        .restore
                        .as_ref()
                        .is_some_and(|r| r.ongoing && r.started_unix == now)
                    {
                        return Err(ObjectError::PreconditionFailed);
                    }
                    m.restore = match &copied {
                        Ok(copy) => Some(RestoreState {
                            ongoing: false,
                            started_unix: now,
                            expiry_unix,
                            copy: Some(copy.clone()),
                        }),
                        Err(_) => None,
                    };
                    Ok(())
                };
                if let Err(err) = &copied {
                    tracing::warn!(bucket, key, tier, %err, "restoring a version from its archival tier failed; it may be asked for again");
                }
                if let Err(err) = layer
                    .update_object_metadata_if(&bucket, &key, Some(&version), Some(mod_time_ns), finish)
                    .await
                {
                    // The version went or changed meanwhile: the copy is left to the tier sweep.
                    tracing::debug!(bucket, key, %err, "recording a finished restore failed");
                }
            });
        }
        Ok(outcome)
    }

    /// Copies an archived version's stored bytes into a new tier object; its name.
    async fn copy_from_archive(
        &self,
        bucket: &str,
        key: &str,
        version: &str,
        tier: &str,
        name: &str,
        size: u64,
    ) -> ObjectResult<String> {
        let tiers = self.remote_tiers().ok_or_else(|| ObjectError::TierUnavailable {
            tier: tier.to_owned(),
            reason: "remote tiers are not configured".to_owned(),
        })?;
        self.ensure_tier_bucket().await?;
        let body = tiers.get(tier, name, 0, size).await?;
        let copy = uuid::Uuid::new_v4().as_simple().to_string();
        let user: BTreeMap<String, String> = [
            (REF_BUCKET.to_owned(), bucket.to_owned()),
            (REF_KEY.to_owned(), key.to_owned()),
            (REF_VERSION.to_owned(), version.to_owned()),
        ]
        .into();
        let opts = PutOptions {
            size: Some(size),
            metadata: ObjectMetadata {
                user,
                ..Default::default()
            },
            ..Default::default()
        };
        self.put_object(TIER_BUCKET, &copy, body, opts).await?;
        Ok(copy)
    }
}
