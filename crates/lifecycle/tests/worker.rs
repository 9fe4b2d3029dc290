//! The lifecycle job over a real (local, four-drive) object layer, with one-second days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_lifecycle::config::{Expiration, Filter, NoncurrentExpiration, Rule, Scope};
use strata_lifecycle::{BUCKET_LIFECYCLE_CONFIG, DayLength, Lifecycle, LifecycleConfig, LifecycleSettings};
use strata_object::{
    DeleteOptions, GetOptions, ListVersionsOptions, MakeBucketOptions, ObjectLayer, ObjectMetadata,
    PutOptions, PutStream, VersioningState,
};

fn body(data: &'static [u8]) -> PutStream {
    Box::pin(futures::stream::once(async move { Ok(Bytes::from_static(data)) }))
}

fn rule(id: &str, scope: Scope) -> Rule {
    Rule {
        id: id.to_owned(),
        enabled: true,
        scope,
        expiration: None,
        noncurrent_expiration: None,
        abort_incomplete_upload_days: None,
        transitions: Vec::new(),
        noncurrent_transitions: Vec::new(),
    }
}

async fn configure(layer: &ObjectLayer, bucket: &str, rules: Vec<Rule>) {
    let config = LifecycleConfig {
        rules,
        transition_default_minimum_object_size: None,
    };
    config.validate(&|_| false).unwrap();
    layer
        .put_bucket_config(bucket, BUCKET_LIFECYCLE_CONFIG, config.to_blob().into())
        .await
        .unwrap();
}

async fn put(layer: &ObjectLayer, bucket: &str, key: &str, metadata: ObjectMetadata) -> Option<String> {
    let opts = PutOptions {
        metadata,
        ..Default::default()
    };
    layer
        .put_object(bucket, key, body(b"data"), opts)
        .await
        .unwrap()
        .version_id
}

async fn versions(layer: &ObjectLayer, bucket: &str, key: &str) -> Vec<(Option<String>, bool)> {
    let opts = ListVersionsOptions {
        prefix: key.to_owned(),
        max_keys: 1000,
        ..Default::default()
    };
    let page = layer.list_object_versions(bucket, opts).await.unwrap();
    page.versions
        .into_iter()
        .filter(|v| v.key == key)
        .map(|v| (v.version_id, v.delete_marker))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_expire_versions_markers_and_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("d{i}"))).collect();
    let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
    for bucket in ["plain", "kept"] {
        layer
            .make_bucket(bucket, MakeBucketOptions::default())
            .await
            .unwrap();
    }
    layer
        .set_bucket_versioning("kept", VersioningState::Enabled)
        .await
        .unwrap();

    let mut expire_old = rule("old", Scope::Prefix("old/".into()));
    expire_old.expiration = Some(Expiration {
        days: Some(1),
        ..Default::default()
    });
    let mut abort = rule("uploads", Scope::Filter(Filter::All));
    abort.abort_incomplete_upload_days = Some(1);
    configure(&layer, "plain", vec![expire_old, abort]).await;
    let mut noncurrent = rule("versions", Scope::Filter(Filter::All));
    noncurrent.noncurrent_expiration = Some(NoncurrentExpiration {
        noncurrent_days: 1,
        newer_noncurrent_versions: Some(1),
    });
    noncurrent.expiration = Some(Expiration {
        expired_object_delete_marker: true,
        ..Default::default()
    });
    configure(&layer, "kept", vec![noncurrent]).await;

    let lifecycle = Lifecycle::start(
        Arc::clone(&layer),
        LifecycleSettings {
            day: DayLength::seconds(1),
            interval: Duration::from_secs(3600),
            actions_per_sec: 1000,
        },
    );

    put(&layer, "plain", "old/a", ObjectMetadata::default()).await;
    put(&layer, "plain", "new/a", ObjectMetadata::default()).await;
    let upload = layer
        .create_multipart_upload("plain", "tmp/big", PutOptions::default())
        .await
        .unwrap()
        .upload_id;
    let v1 = put(&layer, "kept", "k", ObjectMetadata::default()).await;
    let v2 = put(&layer, "kept", "k", ObjectMetadata::default()).await;
    let v3 = put(&layer, "kept", "k", ObjectMetadata::default()).await;
    let held = ObjectMetadata {
        legal_hold: true,
        ..Default::default()
    };
    let h1 = put(&layer, "kept", "held", held).await;
    put(&layer, "kept", "held", ObjectMetadata::default()).await;
    put(&layer, "kept", "held", ObjectMetadata::default()).await;
    let g1 = put(&layer, "kept", "gone", ObjectMetadata::default()).await;
    layer
        .delete_object("kept", "gone", DeleteOptions::default())
        .await
        .unwrap();
    layer
        .delete_object(
            "kept",
            "gone",
            DeleteOptions {
                version_id: g1,
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // Nothing is due yet (a cycle may have run at start).
    assert!(lifecycle.run_now().await.unwrap());
    assert!(
        layer
            .head_object("plain", "old/a", GetOptions::default())
            .await
            .is_ok()
    );
    assert_eq!(versions(&layer, "kept", "k").await.len(), 3);

    // Two one-second days later everything above is due.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(lifecycle.run_now().await.unwrap());
    assert!(
        layer
            .head_object("plain", "old/a", GetOptions::default())
            .await
            .is_err()
    );
    assert!(
        layer
            .head_object("plain", "new/a", GetOptions::default())
            .await
            .is_ok()
    );
    assert!(layer.upload("plain", "tmp/big", &upload).await.is_err());
    // The newest noncurrent version is kept (NewerNoncurrentVersions 1), the older goes.
    let kept: Vec<_> = versions(&layer, "kept", "k")
        .await
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert_eq!(kept, vec![v3, v2]);
    assert_ne!(kept.first(), Some(&v1));
    // Object lock: the held version, due like v1 of "k", stays.
    let held_versions: Vec<_> = versions(&layer, "kept", "held")
        .await
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert_eq!(held_versions.len(), 3);
    assert_eq!(held_versions.last(), Some(&h1));
    // The lone delete marker is gone.
    assert!(versions(&layer, "kept", "gone").await.is_empty());

    let stats = lifecycle.stats();
    assert_eq!(stats.current_expired, 1);
    assert_eq!(stats.uploads_aborted, 1);
    assert_eq!(stats.delete_markers_removed, 1);
    assert_eq!(stats.noncurrent_removed, 1, "{stats:?}");
    assert_eq!(stats.failures, 0);
    let progress = lifecycle.progress().await.unwrap().unwrap();
    assert!(progress.finished_unix.is_some() && progress.bucket.is_none());
}
