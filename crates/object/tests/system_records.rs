//! System records over four temporary local drives (one 2+2 set: read quorum 2, write quorum
//! 3): put/list/delete round trips, namespaces kept apart, quorum agreement over missing,
//! stale and leftover copies, rollback of a write that missed quorum, the namespace lock,
//! change notices, and healing onto a wiped drive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_drive::{Drive, DriveError, DriveResult, LocalDrive, MetaOp, ScanRange, Table};
use strata_object::*;

const N_DRIVES: usize = 4;

struct Fixture {
    _dir: tempfile::TempDir,
    drives: Vec<PathBuf>,
    deployment_id: uuid::Uuid,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let drives = (0..N_DRIVES).map(|i| dir.path().join(format!("d{i}"))).collect();
        Fixture {
            _dir: dir,
            drives,
            deployment_id: uuid::Uuid::new_v4(),
        }
    }

    /// The layer over the four drives, with the drives in `offline` unreachable and `hooks`
    /// as its cluster services.
    async fn open_with(&self, offline: &[usize], hooks: Option<Arc<dyn ClusterHooks>>) -> ObjectLayer {
        let set = self
            .drives
            .iter()
            .enumerate()
            .map(|(idx, path)| DriveSpec {
                endpoint: path.display().to_string(),
                location: if offline.contains(&idx) {
                    DriveLocation::Remote(Arc::new(Unreachable(path.display().to_string())))
                } else {
                    DriveLocation::Local {
                        path: path.clone(),
                        new_in_existing: false,
                    }
                },
            })
            .collect();
        let spec = DeploymentSpec {
            deployment_id: self.deployment_id,
            pools: vec![PoolSpec {
                sets: vec![set],
                added: false,
            }],
        };
        ObjectLayer::open_deployment(spec, hooks).await.unwrap()
    }

    async fn open(&self) -> ObjectLayer {
        self.open_with(&[], None).await
    }
}

/// A drive whose node never answers.
#[derive(Debug)]
struct Unreachable(String);

#[async_trait::async_trait]
impl DriveConnector for Unreachable {
    async fn connect(&self) -> DriveResult<Arc<dyn Drive>> {
        Err(DriveError::Offline {
            endpoint: self.0.clone(),
        })
    }
}

/// Cluster services that grant every lock at once and record what they were asked.
#[derive(Debug, Default)]
struct Recorder {
    locked: Mutex<Vec<String>>,
    system_changed: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct Granted;

impl HeldLock for Granted {}

#[async_trait::async_trait]
impl ClusterHooks for Recorder {
    async fn lock(&self, resource: &str) -> ObjectResult<Box<dyn HeldLock>> {
        self.locked.lock().unwrap().push(resource.to_string());
        Ok(Box::new(Granted))
    }
    async fn bucket_changed(&self, _bucket: &str) {}
    async fn system_changed(&self, namespace: &str) {
        self.system_changed.lock().unwrap().push(namespace.to_string());
    }
    async fn pools_changed(&self) {}
    async fn may_lead(&self, _job: &str) -> Option<Box<dyn HeldLock>> {
        Some(Box::new(Granted))
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, Bytes)> {
    list.iter().map(|(k, v)| (k.to_string(), b(v))).collect()
}

/// Opens a drive of a closed layer directly.
async fn open_drive(path: &Path) -> Arc<LocalDrive> {
    let format = LocalDrive::read_format(path).await.unwrap().unwrap();
    LocalDrive::open(path.to_path_buf(), &format).await.unwrap()
}

/// The stored bytes of a `System` record on a closed layer's drive.
async fn raw_get(path: &Path, key: &[u8]) -> Option<Bytes> {
    open_drive(path).await.meta_get(Table::System, key).await.unwrap()
}

/// Every `System` key on a closed layer's drive.
async fn raw_keys(path: &Path) -> Vec<Vec<u8>> {
    let range = ScanRange {
        limit: 10_000,
        ..Default::default()
    };
    open_drive(path)
        .await
        .meta_scan(Table::System, range)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key.to_vec())
        .collect()
}

/// Commits `ops` on a closed layer's drive.
async fn raw_commit(path: &Path, ops: Vec<MetaOp>) {
    open_drive(path).await.meta_commit(ops).await.unwrap();
}

fn put_raw(key: &[u8], value: &Bytes) -> MetaOp {
    MetaOp::put(Table::System, key.to_vec(), value.to_vec())
}

#[tokio::test]
async fn put_list_delete_round_trip() {
    let f = Fixture::new();
    let layer = f.open().await;
    assert!(layer.list_system_records("iam").await.unwrap().is_empty());
    layer
        .put_system_record("iam", "users/bob", b("bob-1"))
        .await
        .unwrap();
    layer
        .put_system_record("iam", "users/alice", b("alice-1"))
        .await
        .unwrap();
    layer
        .put_system_record("iam", "policies/readonly", Bytes::new())
        .await
        .unwrap();
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[
            ("policies/readonly", ""),
            ("users/alice", "alice-1"),
            ("users/bob", "bob-1"),
        ])
    );
    // Overwrite, delete, and delete what is not there.
    layer
        .put_system_record("iam", "users/bob", b("bob-2"))
        .await
        .unwrap();
    layer.delete_system_record("iam", "users/alice").await.unwrap();
    layer.delete_system_record("iam", "users/nobody").await.unwrap();
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("policies/readonly", ""), ("users/bob", "bob-2")])
    );
    // Every drive holds exactly the records left (the delete reached all of them).
    drop(layer);
    for path in &f.drives {
        assert_eq!(
            raw_keys(path).await,
            vec![b"iam\0policies/readonly".to_vec(), b"iam\0users/bob".to_vec()]
        );
    }
    // They survive a restart.
    let layer = f.open().await;
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("policies/readonly", ""), ("users/bob", "bob-2")])
    );
    // Any bytes round-trip.
    let binary: Bytes = (0..=255u8).cycle().take(70_000).collect::<Vec<u8>>().into();
    layer
        .put_system_record("kms", "key", binary.clone())
        .await
        .unwrap();
    assert_eq!(
        layer.list_system_records("kms").await.unwrap(),
        vec![("key".to_string(), binary)]
    );
}

#[tokio::test]
async fn names_and_sizes_are_checked() {
    let f = Fixture::new();
    let layer = f.open().await;
    for (namespace, key) in [("", "k"), ("ns\0x", "k"), ("ns", ""), ("ns", "a\0b")] {
        assert!(
            matches!(
                layer.put_system_record(namespace, key, b("v")).await,
                Err(ObjectError::InvalidRequest { .. })
            ),
            "{namespace:?}/{key:?}"
        );
        assert!(layer.delete_system_record(namespace, key).await.is_err());
    }
    assert!(layer.list_system_records("").await.is_err());
    assert!(layer.lock_system("a\0").await.is_err());
    let long_ns = "n".repeat(SYSTEM_NAMESPACE_BYTES_MAX + 1);
    assert!(layer.put_system_record(&long_ns, "k", b("v")).await.is_err());
    let long_key = "k".repeat(SYSTEM_KEY_BYTES_MAX + 1);
    assert!(layer.put_system_record("ns", &long_key, b("v")).await.is_err());
    let too_big = Bytes::from(vec![0u8; SYSTEM_VALUE_BYTES_MAX + 1]);
    assert!(matches!(
        layer.put_system_record("ns", "k", too_big).await,
        Err(ObjectError::EntityTooLarge { .. })
    ));
    let largest = Bytes::from(vec![7u8; SYSTEM_VALUE_BYTES_MAX]);
    layer.put_system_record("ns", "k", largest.clone()).await.unwrap();
    assert_eq!(
        layer.list_system_records("ns").await.unwrap(),
        vec![("k".to_string(), largest)]
    );
}

#[tokio::test]
async fn namespaces_are_kept_apart() {
    let f = Fixture::new();
    let layer = f.open().await;
    for (namespace, key, value) in [
        ("iam", "users/a", "1"),
        ("iam2", "users/a", "2"),
        ("ia", "m", "3"),
        ("iam/x", "y", "4"),
        ("iam", "\u{e9}t\u{e9}", "5"),
    ] {
        layer.put_system_record(namespace, key, b(value)).await.unwrap();
    }
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("users/a", "1"), ("\u{e9}t\u{e9}", "5")])
    );
    assert_eq!(
        layer.list_system_records("iam2").await.unwrap(),
        pairs(&[("users/a", "2")])
    );
    assert_eq!(
        layer.list_system_records("ia").await.unwrap(),
        pairs(&[("m", "3")])
    );
    assert_eq!(
        layer.list_system_records("iam/x").await.unwrap(),
        pairs(&[("y", "4")])
    );
    assert!(layer.list_system_records("i").await.unwrap().is_empty());
    layer.delete_system_record("iam2", "users/a").await.unwrap();
    assert_eq!(layer.list_system_records("iam").await.unwrap().len(), 2);
}

#[tokio::test]
async fn system_records_are_never_buckets_or_objects() {
    let f = Fixture::new();
    let layer = f.open().await;
    layer
        .put_system_record("iam", "users/a", b("secret"))
        .await
        .unwrap();
    layer.put_system_record("photos", "k", b("x")).await.unwrap();
    assert!(layer.list_buckets().await.unwrap().is_empty());
    assert!(matches!(
        layer.bucket_info("iam").await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
    // A bucket named like a namespace holds only its own objects.
    layer
        .make_bucket("photos", MakeBucketOptions::default())
        .await
        .unwrap();
    let body: PutStream = Box::pin(futures::stream::once(async {
        Ok::<Bytes, BoxError>(Bytes::from_static(b"object"))
    }));
    layer
        .put_object("photos", "a.jpg", body, PutOptions::default())
        .await
        .unwrap();
    let opts = ListOptions {
        max_keys: 100,
        ..Default::default()
    };
    let page = layer.list_objects("photos", opts).await.unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["a.jpg"]);
    let versions = layer
        .list_object_versions(
            "photos",
            ListVersionsOptions {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(versions.versions.len(), 1);
    let names: Vec<String> = layer
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["photos"]);
    // Deleting the bucket leaves the namespace of the same name alone.
    layer
        .delete_object("photos", "a.jpg", DeleteOptions::default())
        .await
        .unwrap();
    layer.delete_bucket("photos", false).await.unwrap();
    assert_eq!(
        layer.list_system_records("photos").await.unwrap(),
        pairs(&[("k", "x")])
    );
}

#[tokio::test]
async fn read_quorum_agrees_over_missing_stale_and_leftover_copies() {
    let f = Fixture::new();
    let layer = f.open().await;
    layer.put_system_record("iam", "k", b("v1")).await.unwrap();
    layer.put_system_record("iam", "other", b("o")).await.unwrap();
    drop(layer);
    let key = b"iam\0k".to_vec();
    let v1 = raw_get(&f.drives[0], &key).await.unwrap();
    let layer = f.open().await;
    layer.put_system_record("iam", "k", b("v2")).await.unwrap();
    drop(layer);
    let v2 = raw_get(&f.drives[0], &key).await.unwrap();
    assert_ne!(v1, v2);

    // One drive holds the stale value, another lacks the key: three of four still agree.
    raw_commit(&f.drives[0], vec![put_raw(&key, &v1)]).await;
    raw_commit(&f.drives[1], vec![MetaOp::delete(Table::System, key.clone())]).await;
    // A leftover on one drive only (a write that never reached quorum) is not a record.
    raw_commit(&f.drives[2], vec![put_raw(b"iam\0leftover", &v1)]).await;
    let layer = f.open().await;
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "v2"), ("other", "o")])
    );
    drop(layer);

    // Two drives stale, two current: the later write wins, whichever drives hold it.
    for stale in [[0, 1], [2, 3]] {
        for (idx, path) in f.drives.iter().enumerate() {
            let value = if stale.contains(&idx) { &v1 } else { &v2 };
            raw_commit(path, vec![put_raw(&key, value)]).await;
        }
        let layer = f.open().await;
        assert_eq!(
            layer.list_system_records("iam").await.unwrap()[0],
            ("k".to_string(), b("v2")),
            "stale on {stale:?}"
        );
    }

    // One drive unreachable: the other three still answer, and writes still reach quorum.
    let layer = f.open_with(&[3], None).await;
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "v2"), ("other", "o")])
    );
    layer.put_system_record("iam", "k", b("v3")).await.unwrap();
    layer.delete_system_record("iam", "other").await.unwrap();
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "v3")])
    );
    drop(layer);
    // Back with all four: drive 3 missed both changes and is outvoted.
    let layer = f.open().await;
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "v3")])
    );
    drop(layer);

    // Three drives unreachable: no read quorum.
    let layer = f.open_with(&[1, 2, 3], None).await;
    assert!(matches!(
        layer.list_system_records("iam").await,
        Err(ObjectError::ReadQuorum { needed: 2, got: 1 })
    ));
}

#[tokio::test]
async fn a_write_missing_quorum_is_rolled_back() {
    let f = Fixture::new();
    let layer = f.open().await;
    layer.put_system_record("iam", "k", b("old")).await.unwrap();
    drop(layer);
    // Two of four drives: read quorum, not write quorum.
    let layer = f.open_with(&[2, 3], None).await;
    assert!(matches!(
        layer.put_system_record("iam", "k", b("new")).await,
        Err(ObjectError::WriteQuorum { needed: 3, got: 2 })
    ));
    assert!(matches!(
        layer.put_system_record("iam", "fresh", b("x")).await,
        Err(ObjectError::WriteQuorum { .. })
    ));
    assert!(matches!(
        layer.delete_system_record("iam", "k").await,
        Err(ObjectError::WriteQuorum { .. })
    ));
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "old")])
    );
    drop(layer);
    // Nothing of the failed writes is left on the drives that took them.
    let layer = f.open().await;
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "old")])
    );
    drop(layer);
    for path in &f.drives {
        assert_eq!(raw_keys(path).await, vec![b"iam\0k".to_vec()]);
    }
}

#[tokio::test]
async fn the_namespace_lock_excludes_and_namespaces_lock_apart() {
    let f = Fixture::new();
    let layer = Arc::new(f.open().await);
    let held = layer.lock_system("iam").await.unwrap();
    let other = layer.lock_system("iam2").await.unwrap();
    let waiter = {
        let layer = Arc::clone(&layer);
        tokio::spawn(async move {
            let _lock = layer.lock_system("iam").await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "a second holder got the lock");
    drop(other);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "another namespace's lock released this one"
    );
    drop(held);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    // The lock guard can be boxed as a plain `Send + Sync` value (as callers store it).
    let boxed: Box<dyn Send + Sync> = Box::new(layer.lock_system("iam").await.unwrap());
    drop(boxed);
}

#[tokio::test]
async fn notices_go_to_the_cluster_and_come_back_to_subscribers() {
    let f = Fixture::new();
    let hooks = Arc::new(Recorder::default());
    let layer = f
        .open_with(&[], Some(hooks.clone() as Arc<dyn ClusterHooks>))
        .await;
    // In a cluster the namespace lock is the deployment-wide `system/<ns>` one.
    drop(layer.lock_system("iam").await.unwrap());
    assert_eq!(*hooks.locked.lock().unwrap(), ["system/iam"]);
    let mut changes = layer.system_changes();
    let mut changes2 = layer.system_changes();
    layer.put_system_record("iam", "k", b("v")).await.unwrap();
    layer.announce_system_change("iam").await;
    assert_eq!(*hooks.system_changed.lock().unwrap(), ["iam"]);
    // The writer's own subscribers hear nothing of their node's announcement...
    assert!(changes.try_recv().is_err());
    // ...but every subscriber hears what arrives from a peer.
    layer.notify_system_change("iam");
    layer.notify_system_change("tier");
    for rx in [&mut changes, &mut changes2] {
        assert_eq!(rx.recv().await.unwrap(), "iam");
        assert_eq!(rx.recv().await.unwrap(), "tier");
    }
    // Nobody listening is fine.
    drop(changes);
    drop(changes2);
    layer.notify_system_change("iam");

    // On a single node, announcing is a no-op.
    drop(layer);
    let layer = f.open().await;
    let mut changes = layer.system_changes();
    layer.announce_system_change("iam").await;
    assert!(changes.try_recv().is_err());
}

#[tokio::test]
async fn heal_brings_system_records_to_a_wiped_drive() {
    let f = Fixture::new();
    let layer = f.open().await;
    for i in 0..20 {
        layer
            .put_system_record("iam", &format!("users/u{i:02}"), b(&format!("user {i}")))
            .await
            .unwrap();
    }
    layer
        .put_system_record("tier", "warm", b("config"))
        .await
        .unwrap();
    let expected = layer.list_system_records("iam").await.unwrap();
    drop(layer);
    // Drive 3 is replaced by an empty one: opened again, it is formatted and marked healing.
    std::fs::remove_dir_all(&f.drives[3]).unwrap();
    std::fs::create_dir(&f.drives[3]).unwrap();
    let layer = Arc::new(ObjectLayer::open_local(&f.drives).await.unwrap());
    assert!(layer.drive_statuses()[3].healing);
    // Its emptiness is no evidence: the records stay visible.
    assert_eq!(layer.list_system_records("iam").await.unwrap(), expected);
    layer
        .start_heal(HealScope::default(), HealOptions::default())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while layer.heal_status().state != HealState::Done || layer.drive_statuses()[3].healing {
        assert!(Instant::now() < deadline, "{:?}", layer.heal_status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = layer.heal_status();
    assert_eq!(status.counters.records_healed, 21, "{status:?}");
    assert_eq!(status.counters.objects_failed, 0, "{status:?}");
    // A second heal finds nothing to do.
    assert_eq!(layer.heal_system_records().await, HealCounters::default());
    drop(layer);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(raw_keys(&f.drives[3]).await.len(), 21);

    // The healed drive now carries the records: with two of the others gone, they are
    // still read from it and drive 0.
    let layer = f.open_with(&[1, 2], None).await;
    assert_eq!(layer.list_system_records("iam").await.unwrap(), expected);
    assert_eq!(
        layer.list_system_records("tier").await.unwrap(),
        pairs(&[("warm", "config")])
    );
}

#[tokio::test]
async fn heal_repairs_stale_values_and_removes_leftovers_only_when_all_answer() {
    let f = Fixture::new();
    let layer = f.open().await;
    layer.put_system_record("iam", "k", b("v1")).await.unwrap();
    drop(layer);
    let key = b"iam\0k".to_vec();
    let v1 = raw_get(&f.drives[0], &key).await.unwrap();
    let layer = f.open().await;
    layer.put_system_record("iam", "k", b("v2")).await.unwrap();
    drop(layer);
    raw_commit(&f.drives[0], vec![put_raw(&key, &v1)]).await;
    raw_commit(&f.drives[1], vec![MetaOp::delete(Table::System, key.clone())]).await;
    raw_commit(&f.drives[2], vec![put_raw(b"iam\0leftover", &v1)]).await;
    raw_commit(&f.drives[2], vec![put_raw(b"gone\0x", &v1)]).await;

    // With drive 1 unreachable, the stale copy on drive 0 is repaired, but nothing is
    // removed: the silent drive might hold what the others lack.
    let layer = f.open_with(&[1], None).await;
    let counters = layer.heal_system_records().await;
    assert_eq!(counters.records_healed, 1, "{counters:?}");
    drop(layer);
    assert_eq!(raw_get(&f.drives[2], b"iam\0leftover").await, Some(v1.clone()));
    let v2 = raw_get(&f.drives[3], &key).await.unwrap();
    assert_eq!(raw_get(&f.drives[0], &key).await, Some(v2.clone()));

    // With every drive answering, drive 1 gets the record and the leftovers go.
    let layer = f.open().await;
    let counters = layer.heal_system_records().await;
    assert_eq!(counters.records_healed, 3, "{counters:?}");
    assert_eq!(counters.objects_failed, 0, "{counters:?}");
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "v2")])
    );
    drop(layer);
    for path in &f.drives {
        assert_eq!(raw_keys(path).await, vec![key.clone()]);
        assert_eq!(raw_get(path, &key).await, Some(v2.clone()));
    }
}

/// A deployment of `pools` (each a list of sets, each a list of drive paths), the drives in
/// `offline` unreachable and the pools in `added` new.
async fn open_pools(
    deployment_id: uuid::Uuid,
    pools: &[Vec<Vec<PathBuf>>],
    offline: &[&Path],
    added: &[usize],
) -> ObjectLayer {
    let pools = pools
        .iter()
        .enumerate()
        .map(|(pool_idx, sets)| PoolSpec {
            sets: sets
                .iter()
                .map(|drives| {
                    drives
                        .iter()
                        .map(|path| DriveSpec {
                            endpoint: path.display().to_string(),
                            location: if offline.contains(&path.as_path()) {
                                DriveLocation::Remote(Arc::new(Unreachable(path.display().to_string())))
                            } else {
                                DriveLocation::Local {
                                    path: path.clone(),
                                    new_in_existing: false,
                                }
                            },
                        })
                        .collect()
                })
                .collect(),
            added: added.contains(&pool_idx),
        })
        .collect();
    let spec = DeploymentSpec { deployment_id, pools };
    ObjectLayer::open_deployment(spec, None).await.unwrap()
}

fn drive_paths(root: &Path, name: &str) -> Vec<PathBuf> {
    (0..N_DRIVES).map(|i| root.join(format!("{name}-d{i}"))).collect()
}

#[tokio::test]
async fn records_are_on_every_set_and_a_write_failing_in_one_is_rolled_back_in_all() {
    let dir = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::new_v4();
    let sets = vec![drive_paths(dir.path(), "s0"), drive_paths(dir.path(), "s1")];
    let pools = vec![sets.clone()];
    let layer = open_pools(id, &pools, &[], &[]).await;
    layer.put_system_record("iam", "k", b("old")).await.unwrap();
    drop(layer);
    for path in sets.iter().flatten() {
        assert_eq!(
            raw_keys(path).await,
            vec![b"iam\0k".to_vec()],
            "{}",
            path.display()
        );
    }
    // The second set misses write quorum: the first set, which took the write, is rolled back.
    let offline = [sets[1][0].as_path(), sets[1][1].as_path()];
    let layer = open_pools(id, &pools, &offline, &[]).await;
    assert!(matches!(
        layer.put_system_record("iam", "k", b("new")).await,
        Err(ObjectError::WriteQuorum { needed: 3, got: 2 })
    ));
    assert!(matches!(
        layer.put_system_record("iam", "k2", b("new")).await,
        Err(ObjectError::WriteQuorum { .. })
    ));
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("k", "old")])
    );
    drop(layer);
    let old = raw_get(&sets[0][0], b"iam\0k").await;
    for path in sets.iter().flatten() {
        assert_eq!(
            raw_keys(path).await,
            vec![b"iam\0k".to_vec()],
            "{}",
            path.display()
        );
        assert_eq!(raw_get(path, b"iam\0k").await, old, "{}", path.display());
    }
}

#[tokio::test]
async fn an_added_pool_gets_the_system_records_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::new_v4();
    let first = vec![vec![drive_paths(dir.path(), "p0")]];
    let layer = open_pools(id, &first, &[], &[]).await;
    layer.put_system_record("iam", "a", b("1")).await.unwrap();
    layer.put_system_record("kms", "b", b("2")).await.unwrap();
    drop(layer);
    let added = drive_paths(dir.path(), "p1");
    let both = vec![first[0].clone(), vec![added.clone()]];
    let layer = open_pools(id, &both, &[], &[1]).await;
    assert_eq!(
        layer.list_system_records("iam").await.unwrap(),
        pairs(&[("a", "1")])
    );
    drop(layer);
    for path in &added {
        assert_eq!(
            raw_keys(path).await,
            vec![b"iam\0a".to_vec(), b"kms\0b".to_vec()],
            "{}",
            path.display()
        );
    }
}
