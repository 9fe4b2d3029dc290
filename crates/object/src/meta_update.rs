//! In-place metadata changes: one version's tags or access control list rewritten without
//! touching its data.
//!
//! The change runs under the key's lock (deployment-wide in a cluster), so it is ordered with
//! every write and delete of the key. It rewrites the version record on each drive that holds
//! it, with a fresh `meta_time_ns` stamp, and succeeds at write quorum; on fewer it puts the
//! previous record back where the new one landed. Readers and heal take the holder with the
//! newest stamp ([`crate::set::resolve`]), so a drive that missed an acknowledged change never
//! wins: write and read quorums overlap, and every read sees at least one drive that took it.

use std::time::SystemTime;

use futures::future::join_all;
use strata_drive::{MetaOp, Table};

use crate::api::{ObjectInfo, ObjectMetadata};
use crate::error::ObjectResult;
use crate::layer::{ObjectLayer, object_info};
use crate::record::{self, VersionRecord};
use crate::set::ErasureSet;

impl ObjectLayer {
    /// Changes one version's metadata in place: the latest version when `version_id` is
    /// `None`. `update` sees the current metadata and may refuse with an error, which is
    /// returned as is. A delete marker has no metadata to change: `NoSuchKey` when it is the
    /// latest, `VersionIsDeleteMarker` when named. Returns the version as updated.
    pub async fn update_object_metadata(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        update: impl FnOnce(&mut ObjectMetadata) -> ObjectResult<()>,
    ) -> ObjectResult<ObjectInfo> {
        self.update_object_metadata_if(bucket, key, version_id, None, update)
            .await
    }

    /// [`Self::update_object_metadata`], only if the version still has modification time
    /// `mod_time_ns` when given (checked under the key's lock; `PreconditionFailed` otherwise).
    pub(crate) async fn update_object_metadata_if(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        mod_time_ns: Option<i64>,
        update: impl FnOnce(&mut ObjectMetadata) -> ObjectResult<()>,
    ) -> ObjectResult<ObjectInfo> {
        let _guard = self.lock_key(bucket, key).await?;
        let (resolved, is_latest, set) = self.resolve_for_read(bucket, key, version_id).await?;
        let before = resolved.record;
        if mod_time_ns.is_some_and(|t| t != before.mod_time_ns) {
            return Err(crate::error::ObjectError::PreconditionFailed);
        }
        let mut after = before.clone();
        update(&mut after.metadata)?;
        if after.metadata == before.metadata {
            return Ok(object_info(bucket, key, &before, is_latest));
        }
        after.meta_time_ns = record::to_unix_nanos(SystemTime::now()).max(before.meta_time_ns + 1);
        let holders = resolved.holders;
        if holders.len() < set.write_quorum() {
            return Err(set.write_quorum_error(holders.len()));
        }
        if let Err(failed) = rewrite_or_roll_back(set, &resolved.key, &before, &after, &holders, false).await
        {
            if !failed.rolled_back {
                tracing::warn!(
                    bucket,
                    key,
                    "rolling back a failed metadata change missed a drive; heal settles it"
                );
            }
            return Err(failed.err);
        }
        Ok(object_info(bucket, key, &after, is_latest))
    }
}

/// A record rewrite that missed write quorum.
pub(crate) struct RewriteFailed {
    /// The quorum error to report.
    pub(crate) err: crate::error::ObjectError,
    /// Every drive that took the new record got the previous one back.
    pub(crate) rolled_back: bool,
}

/// Rewrites one version's record from `before` to `after` (a newer `meta_time_ns`) on its
/// holders, dropping its inline shard too when `drop_inline`. Below write quorum, puts
/// `before` back (with a stamp newer still) where `after` landed, so an unacknowledged change
/// does not surface later through a drive that took it. Returns how many holders took it.
pub(crate) async fn rewrite_or_roll_back(
    set: &ErasureSet,
    key: &[u8],
    before: &VersionRecord,
    after: &VersionRecord,
    holders: &[(usize, u32)],
    drop_inline: bool,
) -> Result<usize, RewriteFailed> {
    let written = write_records_with(set, key, after, holders, drop_inline).await;
    let n_ok = written.iter().filter(|ok| **ok).count();
    if n_ok >= set.write_quorum() {
        return Ok(n_ok);
    }
    let took: Vec<(usize, u32)> = holders
        .iter()
        .zip(&written)
        .filter(|(_, ok)| **ok)
        .map(|(holder, _)| *holder)
        .collect();
    let mut restore = before.clone();
    restore.meta_time_ns = after.meta_time_ns + 1;
    let restored = write_records(set, key, &restore, &took).await;
    Err(RewriteFailed {
        err: set.write_quorum_error(n_ok),
        rolled_back: restored.iter().all(|ok| *ok),
    })
}

/// Writes `rec` (with each holder's own shard index) on each holder; whether each succeeded.
pub(crate) async fn write_records(
    set: &ErasureSet,
    key: &[u8],
    rec: &VersionRecord,
    holders: &[(usize, u32)],
) -> Vec<bool> {
    write_records_with(set, key, rec, holders, false).await
}

/// [`write_records`], dropping the key's inline shard in the same commit when
/// `drop_inline` (a version whose data moved to a tier object).
pub(crate) async fn write_records_with(
    set: &ErasureSet,
    key: &[u8],
    rec: &VersionRecord,
    holders: &[(usize, u32)],
    drop_inline: bool,
) -> Vec<bool> {
    join_all(holders.iter().map(|&(drive_idx, shard_idx)| {
        let mut rec = rec.clone();
        rec.shard_idx = shard_idx;
        let mut ops = vec![MetaOp::put(Table::Objects, key.to_vec(), record::encode(&rec))];
        if drop_inline {
            ops.push(MetaOp::delete(Table::InlineData, key.to_vec()));
        }
        let drive = set.drives[drive_idx].clone();
        async move {
            match drive.meta_commit(ops).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::debug!(drive = drive.endpoint(), %err, "rewriting a version record failed");
                    false
                }
            }
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::api::{GetOptions, MakeBucketOptions, PutOptions, PutStream};
    use crate::error::ObjectError;
    use crate::heal::HealOptions;

    fn body(data: &'static [u8]) -> PutStream {
        Box::pin(futures::stream::once(async move {
            Ok::<Bytes, crate::api::BoxError>(Bytes::from_static(data))
        }))
    }

    async fn layer(dir: &std::path::Path) -> ObjectLayer {
        let drives: Vec<std::path::PathBuf> = (0..4).map(|i| dir.join(format!("d{i}"))).collect();
        let layer = ObjectLayer::open_local(&drives).await.unwrap();
        layer
            .make_bucket("bkt", MakeBucketOptions::default())
            .await
            .unwrap();
        layer
    }

    fn tag(metadata: &mut ObjectMetadata, value: &str) {
        metadata.tags.insert("k".into(), value.into());
    }

    #[tokio::test]
    async fn tags_change_in_place_and_a_drive_that_missed_it_never_wins() {
        let dir = tempfile::tempdir().unwrap();
        let layer = layer(dir.path()).await;
        layer
            .put_object("bkt", "o", body(b"hello"), PutOptions::default())
            .await
            .unwrap();
        let set = &layer.sets[0];
        let (before, _, _) = layer.resolve_for_read("bkt", "o", None).await.unwrap();

        let info = layer
            .update_object_metadata("bkt", "o", None, |m| {
                tag(m, "v1");
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(info.metadata.tags.get("k").map(String::as_str), Some("v1"));
        assert_eq!(info.etag, "5d41402abc4b2a76b9719d911017c592");

        // One drive loses the change (it was offline): reads still see it, heal restores it.
        let stale = before.holders[0];
        let ok = write_records(set, &before.key, &before.record, &[stale]).await;
        assert_eq!(ok, vec![true]);
        let head = layer
            .head_object("bkt", "o", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(head.metadata.tags.get("k").map(String::as_str), Some("v1"));
        let healed = layer
            .heal_object("bkt", "o", HealOptions::default())
            .await
            .unwrap();
        assert_eq!(healed.records_healed, 1);
        let entries = set.drives[stale.0]
            .meta_get(Table::Objects, &before.key)
            .await
            .unwrap()
            .unwrap();
        let rec: VersionRecord = record::decode(&entries).unwrap();
        assert_eq!(rec.metadata.tags.get("k").map(String::as_str), Some("v1"));
        assert_eq!(rec.shard_idx, stale.1);

        // The data is untouched.
        let reader = layer.get_object("bkt", "o", GetOptions::default()).await.unwrap();
        assert_eq!(reader.length, 5);
    }

    #[tokio::test]
    async fn refusals_and_missing_versions_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layer = layer(dir.path()).await;
        let err = layer
            .update_object_metadata("bkt", "missing", None, |_| Ok(()))
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectError::NoSuchKey { .. }), "{err:?}");
        layer
            .put_object("bkt", "o", body(b"x"), PutOptions::default())
            .await
            .unwrap();
        let err = layer
            .update_object_metadata("bkt", "o", None, |m| {
                tag(m, "never");
                Err(ObjectError::InvalidRequest { reason: "refused" })
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectError::InvalidRequest { .. }), "{err:?}");
        let head = layer
            .head_object("bkt", "o", GetOptions::default())
            .await
            .unwrap();
        assert!(head.metadata.tags.is_empty());
        let err = layer
            .update_object_metadata("bkt", "o", Some("00000000-0000-0000-0000-000000000001"), |_| {
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectError::NoSuchVersion { .. }), "{err:?}");
    }
}
