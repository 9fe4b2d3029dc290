//! A deployment of two pools over temporary local drives: new keys spread over both pools,
//! a key stays in its pool when overwritten, and a decommission moves every version (with its
//! identity) out of a pool while reads keep working, leaving the pool without data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use strata_object::*;

const DRIVES_PER_POOL: usize = 4;

fn spec(root: &Path) -> (DeploymentSpec, Vec<Vec<PathBuf>>) {
    let mut pools = Vec::new();
    let mut paths = Vec::new();
    for pool in 0..2 {
        let drives: Vec<PathBuf> = (0..DRIVES_PER_POOL)
            .map(|d| root.join(format!("pool{pool}-d{d}")))
            .collect();
        let set = drives
            .iter()
            .map(|path| DriveSpec {
                endpoint: path.display().to_string(),
                location: DriveLocation::Local {
                    path: path.clone(),
                    new_in_existing: false,
                },
            })
            .collect();
        pools.push(PoolSpec {
            sets: vec![set],
            added: false,
        });
        paths.push(drives);
    }
    let spec = DeploymentSpec {
        deployment_id: uuid::Uuid::new_v4(),
        pools,
    };
    (spec, paths)
}

fn body(data: &[u8]) -> PutStream {
    let chunk = Bytes::copy_from_slice(data);
    Box::pin(futures::stream::once(async move { Ok::<Bytes, BoxError>(chunk) }))
}

fn data_of(i: usize, generation: u8) -> Vec<u8> {
    let size = [50, 300_000, 1_500_000][i % 3];
    (0..size)
        .map(|b| (b as u8).wrapping_mul(7) ^ i as u8 ^ generation)
        .collect()
}

async fn read_all(layer: &ObjectLayer, key: &str, version_id: Option<String>) -> Vec<u8> {
    let opts = GetOptions {
        version_id,
        ..GetOptions::default()
    };
    let reader = layer.get_object("bkt", key, opts).await.unwrap();
    let mut out = Vec::new();
    let mut body = reader.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Shard files under the drives' data directories (not the trash).
fn shard_files(drives: &[PathBuf]) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    usize::from(e.file_name().to_string_lossy().starts_with("part."))
                }
            })
            .sum()
    }
    drives.iter().map(|d| walk(&d.join("data"))).sum()
}

async fn versions(layer: &ObjectLayer) -> Vec<(String, Option<String>, String)> {
    let listed = layer
        .list_object_versions(
            "bkt",
            ListVersionsOptions {
                max_keys: 1000,
                ..ListVersionsOptions::default()
            },
        )
        .await
        .unwrap();
    listed
        .versions
        .iter()
        .map(|v| (v.key.clone(), v.version_id.clone(), v.etag.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_spread_over_pools_and_a_decommission_empties_one() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, paths) = spec(dir.path());
    let layer = Arc::new(ObjectLayer::open_deployment(spec, None).await.unwrap());
    layer
        .make_bucket("bkt", MakeBucketOptions::default())
        .await
        .unwrap();
    layer
        .set_bucket_versioning("bkt", VersioningState::Enabled)
        .await
        .unwrap();
    let n_keys = 24;
    for i in 0..n_keys {
        for generation in 0..2 {
            let data = data_of(i, generation);
            layer
                .put_object("bkt", &format!("k{i}"), body(&data), PutOptions::default())
                .await
                .unwrap();
        }
    }
    // Equal free space: both pools hold some (all 24 in one pool: chance 2^-23).
    let (in_pool0, in_pool1) = (shard_files(&paths[0]), shard_files(&paths[1]));
    assert!(in_pool0 > 0 && in_pool1 > 0, "{in_pool0} / {in_pool1}");
    let before = versions(&layer).await;
    assert_eq!(before.len(), n_keys * 2, "one entry per version, none doubled");

    let started = layer.start_decommission(1).await.unwrap();
    assert_eq!(started.state, DecommissionState::Running);
    assert!(
        layer.start_decommission(1).await.is_err(),
        "a second start is refused"
    );
    assert!(
        layer.start_decommission(0).await.is_err(),
        "no pool would be left"
    );
    // Reads keep working while objects move.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        for i in (0..n_keys).step_by(5) {
            assert_eq!(read_all(&layer, &format!("k{i}"), None).await, data_of(i, 1));
        }
        let status = layer.pool_statuses()[1].decommission.clone().unwrap();
        if status.state != DecommissionState::Running {
            assert_eq!(status.state, DecommissionState::Done, "{status:?}");
            assert_eq!(status.objects_failed, 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "decommission did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(shard_files(&paths[1]), 0, "data left in the decommissioned pool");
    // Every version is still there, with the same ids, ETags and bytes.
    assert_eq!(versions(&layer).await, before);
    for (key, version_id, _) in &before {
        let i: usize = key[1..].parse().unwrap();
        let got = read_all(&layer, key, version_id.clone()).await;
        assert!(got == data_of(i, 0) || got == data_of(i, 1));
    }
    // New keys avoid the decommissioned pool.
    for i in 0..8 {
        layer
            .put_object(
                "bkt",
                &format!("new{i}"),
                body(&data_of(1, 9)),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    assert_eq!(shard_files(&paths[1]), 0);
}

/// Pools of two media classes: new keys of a class land on its pool, a transition moves a
/// version's data to the other pool's drives while reads stay byte-identical, and removing the
/// version removes its tier object; a tier object no version names is swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_classes_place_and_transition_between_pools() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, paths) = spec(dir.path());
    let layer = Arc::new(ObjectLayer::open_deployment(spec, None).await.unwrap());
    layer
        .set_storage_classes(StorageClassConfig {
            pool_classes: vec!["NVME".into(), "HDD".into()],
            storage_classes: [("WARM".to_owned(), "HDD".to_owned())].into(),
        })
        .unwrap();
    layer.set_transition_grace(Duration::from_millis(100));
    assert!(layer.storage_class_exists("WARM") && !layer.storage_class_exists("COLD"));
    layer
        .make_bucket("bkt", MakeBucketOptions::default())
        .await
        .unwrap();
    layer
        .set_bucket_versioning("bkt", VersioningState::Enabled)
        .await
        .unwrap();
    // STANDARD keys go to the NVME pool, WARM keys to the HDD pool.
    for i in 0..6 {
        let data = data_of(3 * i + 2, 0);
        layer
            .put_object("bkt", &format!("k{i}"), body(&data), PutOptions::default())
            .await
            .unwrap();
    }
    assert!(shard_files(&paths[0]) > 0);
    assert_eq!(shard_files(&paths[1]), 0);
    let warm = PutOptions {
        metadata: ObjectMetadata {
            storage_class: Some("WARM".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let w = data_of(2, 1);
    layer.put_object("bkt", "w", body(&w), warm).await.unwrap();
    assert!(shard_files(&paths[1]) > 0);
    let unknown = PutOptions {
        metadata: ObjectMetadata {
            storage_class: Some("COLD".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = layer
        .put_object("bkt", "c", body(b"x"), unknown)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::UnknownStorageClass { .. }), "{err:?}");

    // A transition moves k0's data to the HDD pool; reads are the same throughout.
    let before_nvme = shard_files(&paths[0]);
    let before_hdd = shard_files(&paths[1]);
    let info = layer
        .head_object("bkt", "k0", GetOptions::default())
        .await
        .unwrap();
    let data = data_of(2, 0);
    let moved = layer
        .transition_version("bkt", "k0", None, info.mod_time, "WARM")
        .await
        .unwrap();
    assert_eq!(
        moved,
        TransitionOutcome::Moved {
            bytes: data.len() as u64
        }
    );
    assert_eq!(read_all(&layer, "k0", None).await, data);
    let ranged = layer
        .get_object(
            "bkt",
            "k0",
            GetOptions {
                range: Some(ByteRange::FromTo {
                    first: 1000,
                    last: 1_200_000,
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut stream = ranged.body;
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(got, data[1000..=1_200_000]);
    let after = layer
        .head_object("bkt", "k0", GetOptions::default())
        .await
        .unwrap();
    assert_eq!(after.metadata.storage_class.as_deref(), Some("WARM"));
    assert_eq!(
        (after.etag.clone(), after.mod_time),
        (info.etag.clone(), info.mod_time)
    );
    assert!(shard_files(&paths[1]) > before_hdd);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        shard_files(&paths[0]) < before_nvme,
        "the old data left the NVME pool"
    );
    // Again to the same class: nothing to do; a stale modification time: refused.
    assert_eq!(
        layer
            .transition_version("bkt", "k0", None, info.mod_time, "WARM")
            .await
            .unwrap(),
        TransitionOutcome::Unchanged
    );
    let stale = info.mod_time - Duration::from_secs(1);
    assert!(matches!(
        layer
            .transition_version("bkt", "k0", None, stale, "STANDARD")
            .await,
        Err(ObjectError::PreconditionFailed)
    ));

    // A tier object nobody names is swept; the ones in use stay.
    let tier_objects = |layer: Arc<ObjectLayer>| async move {
        layer
            .list_objects(
                TIER_BUCKET,
                ListOptions {
                    max_keys: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .objects
            .len()
    };
    assert_eq!(tier_objects(Arc::clone(&layer)).await, 1);
    let stray = PutOptions {
        metadata: ObjectMetadata {
            user: [
                ("strata-home-bucket".to_owned(), "bkt".to_owned()),
                ("strata-home-key".to_owned(), "gone".to_owned()),
                ("strata-home-version".to_owned(), "null".to_owned()),
            ]
            .into(),
            ..Default::default()
        },
        ..Default::default()
    };
    layer
        .put_object(TIER_BUCKET, "stray", body(b"stray"), stray)
        .await
        .unwrap();
    assert_eq!(layer.sweep_tier_orphans(Duration::ZERO).await.unwrap(), 1);
    assert_eq!(tier_objects(Arc::clone(&layer)).await, 1);

    // Removing the transitioned version removes its tier object.
    layer
        .delete_object(
            "bkt",
            "k0",
            DeleteOptions {
                version_id: info.version_id.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tier_objects(Arc::clone(&layer)).await, 0);
}
