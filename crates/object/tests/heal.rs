//! Healing, the scanner and drive replacement, over temporary local drives.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)] // Test helpers fail loudly; drive indexes read clearer as indexes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use strata_object::*;

fn pattern(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

fn body(data: &[u8]) -> PutStream {
    let chunks: Vec<Result<Bytes, BoxError>> = data
        .chunks(100_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn read_all(layer: &ObjectLayer, key: &str) -> ObjectResult<Vec<u8>> {
    let reader = layer.get_object("bucket", key, GetOptions::default()).await?;
    let mut out = Vec::new();
    let mut stream = reader.body;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

struct Fixture {
    dir: tempfile::TempDir,
    drives: Vec<PathBuf>,
    layer: Arc<ObjectLayer>,
    objects: Vec<(String, Vec<u8>)>,
}

/// A 4-drive set with an inline object, a multi-block object and a multipart object.
async fn fixture(background: Option<BackgroundConfig>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
    let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
    if let Some(config) = background {
        layer.start_background(config);
    }
    layer
        .make_bucket("bucket", MakeBucketOptions::default())
        .await
        .unwrap();
    let mut objects = vec![
        ("small".to_string(), pattern(3000, 1)),
        ("large".to_string(), pattern(3 << 20, 2)),
    ];
    for (key, data) in &objects {
        layer
            .put_object("bucket", key, body(data), PutOptions::default())
            .await
            .unwrap();
    }
    let upload = layer
        .create_multipart_upload("bucket", "multi", PutOptions::default())
        .await
        .unwrap();
    let p1 = pattern(5 << 20, 3);
    let p2 = pattern(700_000, 4);
    let i1 = layer
        .upload_part(
            "bucket",
            "multi",
            &upload.upload_id,
            1,
            body(&p1),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let i2 = layer
        .upload_part(
            "bucket",
            "multi",
            &upload.upload_id,
            2,
            body(&p2),
            PutOptions::default(),
        )
        .await
        .unwrap();
    layer
        .complete_multipart_upload(
            "bucket",
            "multi",
            &upload.upload_id,
            vec![
                CompletePart {
                    number: 1,
                    etag: i1.etag,
                    checksum: None,
                },
                CompletePart {
                    number: 2,
                    etag: i2.etag,
                    checksum: None,
                },
            ],
        )
        .await
        .unwrap();
    objects.push(("multi".to_string(), [p1, p2].concat()));
    Fixture {
        dir,
        drives,
        layer,
        objects,
    }
}

fn shard_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(root.join("data"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for dir in std::fs::read_dir(fan.path()).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                out.push(file.path());
            }
        }
    }
    out
}

fn flip_bytes(root: &Path) -> usize {
    let files = shard_files(root);
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x5a;
        std::fs::write(file, bytes).unwrap();
    }
    files.len()
}

/// Checks every object through the layer, and proves full redundancy: with any two drives'
/// shard files destroyed, everything still reads.
async fn assert_fully_redundant(f: &Fixture, pairs: &[(usize, usize)]) {
    for (key, data) in &f.objects {
        assert_eq!(&read_all(&f.layer, key).await.unwrap(), data, "{key}");
    }
    for &(a, b) in pairs {
        let saved: Vec<(PathBuf, Vec<u8>)> = [a, b]
            .iter()
            .flat_map(|i| shard_files(&f.drives[*i]))
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        for (path, _) in &saved {
            std::fs::write(path, b"garbage").unwrap();
        }
        for (key, data) in &f.objects {
            if key != "small" {
                assert_eq!(
                    &read_all(&f.layer, key).await.unwrap(),
                    data,
                    "{key} with drives {a},{b} damaged"
                );
            }
        }
        for (path, bytes) in saved {
            std::fs::write(path, bytes).unwrap();
        }
    }
}

#[tokio::test]
async fn deep_heal_repairs_bitrot() {
    let f = fixture(None).await;
    assert!(flip_bytes(&f.drives[1]) > 0);
    let opts = HealOptions {
        dry_run: true,
        deep: true,
    };
    let dry = f.layer.heal_object("bucket", "large", opts).await.unwrap();
    assert_eq!(dry.shards_healed, 1, "{dry:?}");
    let opts = HealOptions {
        dry_run: false,
        deep: true,
    };
    let mut total = HealCounters::default();
    for key in ["small", "large", "multi"] {
        total.add(&f.layer.heal_object("bucket", key, opts).await.unwrap());
    }
    assert_eq!(total.objects_healed, 2, "{total:?}");
    assert_eq!(total.shards_healed, 3, "large has one part, multi two: {total:?}");
    // Healed: a second deep heal finds nothing, and two other drives may now fail.
    let again = f.layer.heal_object("bucket", "multi", opts).await.unwrap();
    assert_eq!(again.shards_healed, 0, "{again:?}");
    assert_fully_redundant(&f, &[(0, 2), (2, 3)]).await;
}

#[tokio::test]
async fn scanner_heals_damage_it_was_not_told_about() {
    let config = BackgroundConfig {
        scanner_cycle_pause: Duration::from_millis(200),
        scanner_objects_per_sec: 1000,
        scanner_deep: true,
        monitor_interval: Duration::from_secs(3600),
        orphan_age_min: Duration::from_secs(3600),
    };
    let f = fixture(Some(config)).await;
    flip_bytes(&f.drives[2]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.layer.scanner_status().counters.shards_healed < 3 {
        assert!(
            Instant::now() < deadline,
            "scanner did not heal in time: {:?}",
            f.layer.scanner_status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_fully_redundant(&f, &[(0, 1), (1, 3)]).await;
}

#[tokio::test]
async fn replaced_drive_is_formatted_and_healed() {
    let config = BackgroundConfig {
        scanner_cycle_pause: Duration::from_secs(3600),
        monitor_interval: Duration::from_millis(100),
        ..BackgroundConfig::default()
    };
    let f = fixture(Some(config)).await;
    std::fs::remove_dir_all(&f.drives[3]).unwrap();
    std::fs::create_dir(&f.drives[3]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = f.layer.heal_status();
        if status.state == HealState::Done && status.counters.objects_scanned >= 3 {
            assert!(status.counters.records_healed >= 3, "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "no heal after replacement: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(f.layer.drive_statuses().iter().all(|d| d.online));
    // The new drive holds its shards: losing two of the others still leaves everything.
    assert_fully_redundant(&f, &[(0, 1), (1, 2)]).await;
    // And the bucket record.
    let reopened = {
        let drives = f.drives.clone();
        drop(f.layer);
        // Background tasks hold the layer for at most one tick after the last handle is gone.
        tokio::time::sleep(Duration::from_millis(500)).await;
        ObjectLayer::open_local(&drives).await.unwrap()
    };
    assert!(reopened.bucket_info("bucket").await.is_ok());
    drop(f.dir);
}

#[tokio::test]
async fn lost_records_are_rewritten_and_dangling_versions_removed() {
    let f = fixture(None).await;
    let none = f
        .layer
        .heal_object("bucket", "nothing-here", HealOptions::default())
        .await
        .unwrap();
    assert_eq!(
        none,
        HealCounters {
            objects_scanned: 1,
            ..HealCounters::default()
        }
    );
    let drives = f.drives.clone();
    drop(f.layer);
    // Two drives lose all metadata (replaced by empty directories): every version is left on
    // exactly read quorum (two drives), so it is healable and never dangling.
    for i in [0, 1] {
        std::fs::remove_dir_all(&drives[i]).unwrap();
    }
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    layer.heal_buckets().await.unwrap();
    for (key, _) in &f.objects {
        let counters = layer
            .heal_object("bucket", key, HealOptions::default())
            .await
            .unwrap();
        assert_eq!(counters.dangling_removed, 0);
        assert_eq!(counters.records_healed, 2, "{key}: {counters:?}");
    }
    for (key, data) in &f.objects {
        assert_eq!(&read_all(&layer, key).await.unwrap(), data);
    }
    // The two new drives stay marked as healing until a full heal sequence completes.
    assert_eq!(layer.drive_statuses().iter().filter(|d| d.healing).count(), 2);
    let layer = Arc::new(layer);
    layer
        .start_heal(HealScope::default(), HealOptions::default())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer.heal_status().state != HealState::Done || layer.drive_statuses().iter().any(|d| d.healing) {
        assert!(Instant::now() < deadline, "{:?}", layer.heal_status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(layer);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Now leave "large"'s record on one drive only, with every drive answering: it can never
    // be read again (an acknowledged write reached three drives), so it is dangling.
    for path in &drives[1..] {
        assert_eq!(delete_records(path, b"bucket\0large\0").await, 1);
    }
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    assert!(matches!(
        read_all(&layer, "large").await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    let counters = layer
        .heal_object("bucket", "large", HealOptions::default())
        .await
        .unwrap();
    assert_eq!(counters.dangling_removed, 1, "{counters:?}");
    let versions = layer
        .list_object_versions(
            "bucket",
            ListVersionsOptions {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        versions
            .versions
            .iter()
            .map(|v| v.key.as_str())
            .collect::<Vec<_>>(),
        vec!["multi", "small"]
    );
    let again = layer
        .heal_object("bucket", "large", HealOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.dangling_removed, 0,
        "the dangling record is gone: {again:?}"
    );
    drop(f.dir);
}

#[tokio::test]
async fn new_drives_heal_and_never_hide_objects() {
    let f = fixture(None).await;
    let drives = f.drives.clone();
    drop(f.layer);
    // Three of four drives lost and replaced by empty ones: one shard is left of each object,
    // which is below read quorum. Reads must fail as unavailable (503), never claim the object
    // does not exist.
    let saved = tempfile::tempdir().unwrap();
    for i in 1..4 {
        std::fs::rename(&drives[i], saved.path().join(format!("disk{i}"))).unwrap();
    }
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    let err = read_all(&layer, "large").await.unwrap_err();
    assert!(matches!(err, ObjectError::ReadQuorum { .. }), "{err:?}");
    let err = layer
        .list_objects(
            "bucket",
            ListOptions {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::ReadQuorum { .. }), "{err:?}");
    drop(layer);
    // Put two back: one drive is new, and it is healed in the background.
    for i in 1..3 {
        std::fs::remove_dir_all(&drives[i]).unwrap();
        std::fs::rename(saved.path().join(format!("disk{i}")), &drives[i]).unwrap();
    }
    std::fs::remove_dir_all(&drives[3]).unwrap();
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    let statuses = layer.drive_statuses();
    assert_eq!(statuses.iter().filter(|d| d.healing).count(), 1, "{statuses:?}");
    // The mark survives a restart before healing ran.
    drop(layer);
    let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
    let statuses = layer.drive_statuses();
    assert_eq!(
        statuses.iter().filter(|d| d.healing).count(),
        1,
        "after restart: {statuses:?}"
    );
    layer.start_background(BackgroundConfig {
        monitor_interval: Duration::from_millis(100),
        scanner_cycle_pause: Duration::from_secs(3600),
        ..BackgroundConfig::default()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer.drive_statuses().iter().any(|d| d.healing) {
        assert!(
            Instant::now() < deadline,
            "healing did not finish: {:?}",
            layer.heal_status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let f = Fixture {
        dir: f.dir,
        drives,
        layer,
        objects: f.objects,
    };
    assert_fully_redundant(&f, &[(1, 2), (0, 1)]).await;
    assert!(
        !f.drives[3].join(".strata").join("healing").exists(),
        "the mark is cleared on disk"
    );
}

/// Deletes the `Objects` records under `prefix` from the (closed) drive at `path`; returns how
/// many there were.
async fn delete_records(path: &Path, prefix: &[u8]) -> usize {
    let format = strata_drive::LocalDrive::read_format(path)
        .await
        .unwrap()
        .unwrap();
    let drive = strata_drive::LocalDrive::open(path.to_path_buf(), &format)
        .await
        .unwrap();
    let range = strata_drive::ScanRange {
        prefix: prefix.to_vec(),
        limit: 1000,
        ..Default::default()
    };
    let entries = strata_drive::Drive::meta_scan(drive.as_ref(), strata_drive::Table::Objects, range)
        .await
        .unwrap();
    let ops = entries
        .iter()
        .map(|e| strata_drive::MetaOp::delete(strata_drive::Table::Objects, e.key.to_vec()))
        .collect();
    strata_drive::Drive::meta_commit(drive.as_ref(), ops)
        .await
        .unwrap();
    entries.len()
}

type Listing = (Vec<(String, u64, String)>, Vec<(String, Option<String>)>);

/// Keys, sizes and ETags of `bucket`'s objects, and its version ids.
async fn listing(layer: &ObjectLayer) -> Listing {
    let opts = ListOptions {
        max_keys: 100,
        ..Default::default()
    };
    let page = layer.list_objects("bucket", opts).await.unwrap();
    let objects = page
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.size, o.etag.clone()))
        .collect();
    let opts = ListVersionsOptions {
        max_keys: 100,
        ..Default::default()
    };
    let versions = layer.list_object_versions("bucket", opts).await.unwrap();
    let versions = versions
        .versions
        .iter()
        .map(|v| (v.key.clone(), v.version_id.clone()))
        .collect();
    (objects, versions)
}

/// A listing decodes records from one drive's scan and only compares keys on the others; a
/// version that drive lacks (it missed writes while offline, not yet healed) is still listed.
#[tokio::test]
async fn listing_finds_versions_the_record_drive_lacks() {
    let f = fixture(None).await;
    let expected = listing(&f.layer).await;
    assert_eq!(expected.0.len(), f.objects.len());
    let drives = f.drives.clone();
    drop(f.layer);
    // Every object record gone from the first drive: each version is on the other three.
    assert_eq!(delete_records(&drives[0], b"bucket\0").await, expected.1.len());

    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    assert_eq!(listing(&layer).await, expected);
    drop(f.dir);
}

#[tokio::test]
async fn orphaned_data_is_swept_when_old_enough() {
    let f = fixture(None).await;
    // Leftovers of a write that died between its shards and its record.
    let orphan = uuid::Uuid::new_v4().as_simple().to_string();
    let orphan_dir = f.drives[0].join("data").join(&orphan[..2]).join(&orphan);
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join("part.1"), b"shard without a record").unwrap();
    let n_before: usize = f.drives.iter().map(|d| shard_files(d).len()).sum();
    assert_eq!(
        f.layer.sweep_orphans(Duration::from_secs(3600)).await.unwrap(),
        0,
        "too young"
    );
    assert!(orphan_dir.exists());
    assert_eq!(f.layer.sweep_orphans(Duration::ZERO).await.unwrap(), 1);
    assert!(!orphan_dir.exists());
    let n_after: usize = f.drives.iter().map(|d| shard_files(d).len()).sum();
    assert_eq!(n_after, n_before - 1, "only the orphan went");
    for (key, data) in &f.objects {
        assert_eq!(&read_all(&f.layer, key).await.unwrap(), data);
    }
}
