//! Property test: random sequences of PUTs, DELETEs (with and without a version id) and
//! versioning changes (enabled, suspended) against a model of S3's versioning rules give the
//! same ListObjectVersions and the same GETs, after every step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;
use strata_object::*;

/// One version in the model, newest first per key.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelVersion {
    /// `None`: the null version.
    id: Option<String>,
    marker: bool,
    /// The body (empty for markers).
    body: Vec<u8>,
}

#[derive(Default)]
struct Model {
    state: Option<VersioningState>,
    /// key → versions, newest first.
    keys: std::collections::BTreeMap<String, Vec<ModelVersion>>,
}

impl Model {
    fn versioning(&self) -> VersioningState {
        self.state.unwrap_or(VersioningState::Unversioned)
    }

    /// A write of `version` (a new object or a delete marker) at the top of `key`: without
    /// versioning enabled it replaces the null version.
    fn push(&mut self, key: &str, version: ModelVersion) {
        let versions = self.keys.entry(key.to_owned()).or_default();
        if version.id.is_none() {
            versions.retain(|v| v.id.is_some());
        }
        versions.insert(0, version);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(&'static str),
    Delete(&'static str),
    /// Deletes the n-th version (mod count) of the key, whatever it is.
    DeleteVersion(&'static str, usize),
    Versioning(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let key = proptest::sample::select(vec!["a", "b", "c/d"]);
    prop_oneof![
        4 => key.clone().prop_map(Op::Put),
        2 => key.clone().prop_map(Op::Delete),
        2 => (key, 0usize..4).prop_map(|(k, n)| Op::DeleteVersion(k, n)),
        1 => any::<bool>().prop_map(Op::Versioning),
    ]
}

fn body(data: Vec<u8>) -> PutStream {
    Box::pin(futures::stream::once(async move {
        Ok::<Bytes, BoxError>(Bytes::from(data))
    }))
}

async fn read_latest(layer: &ObjectLayer, key: &str) -> Option<Vec<u8>> {
    let reader = match layer.get_object("bucket", key, GetOptions::default()).await {
        Ok(reader) => reader,
        Err(ObjectError::NoSuchKey { .. }) => return None,
        Err(err) => panic!("GET {key}: {err}"),
    };
    let mut out = Vec::new();
    let mut stream = reader.body;
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    Some(out)
}

/// Checks the layer against the model: every version listed as the model has it, and every
/// key's GET.
async fn check(layer: &ObjectLayer, model: &Model, step: usize) {
    let listed = layer
        .list_object_versions(
            "bucket",
            ListVersionsOptions {
                max_keys: LIST_KEYS_MAX,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got: Vec<(String, Option<String>, bool, bool)> = listed
        .versions
        .iter()
        .map(|v| (v.key.clone(), v.version_id.clone(), v.delete_marker, v.is_latest))
        .collect();
    let expected: Vec<(String, Option<String>, bool, bool)> = model
        .keys
        .iter()
        .flat_map(|(key, versions)| {
            versions
                .iter()
                .enumerate()
                .map(move |(i, v)| (key.clone(), v.id.clone(), v.marker, i == 0))
        })
        .collect();
    assert_eq!(got, expected, "versions after step {step}");
    for key in ["a", "b", "c/d"] {
        let latest = model
            .keys
            .get(key)
            .and_then(|v| v.first())
            .filter(|v| !v.marker)
            .map(|v| v.body.clone());
        assert_eq!(
            read_latest(layer, key).await,
            latest,
            "GET {key} after step {step}"
        );
        // Every version reads back by id; a marker by id is `VersionIsDeleteMarker`.
        for version in model.keys.get(key).into_iter().flatten() {
            let opts = GetOptions {
                version_id: Some(version.id.clone().unwrap_or_else(|| "null".into())),
                ..Default::default()
            };
            match layer.get_object("bucket", key, opts).await {
                Ok(reader) => {
                    assert!(!version.marker, "{key} {:?} is a marker", version.id);
                    let mut out = Vec::new();
                    let mut stream = reader.body;
                    while let Some(chunk) = stream.next().await {
                        out.extend_from_slice(&chunk.unwrap());
                    }
                    assert_eq!(out, version.body);
                }
                Err(ObjectError::VersionIsDeleteMarker { .. }) => assert!(version.marker),
                Err(err) => panic!("GET {key} {:?}: {err}", version.id),
            }
        }
    }
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<std::path::PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    layer
        .make_bucket("bucket", MakeBucketOptions::default())
        .await
        .unwrap();
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put(key) => {
                let data = format!("{key} written at step {step}").into_bytes();
                let info = layer
                    .put_object("bucket", key, body(data.clone()), PutOptions::default())
                    .await
                    .unwrap();
                assert_eq!(
                    info.version_id.is_some(),
                    model.versioning() == VersioningState::Enabled
                );
                model.push(
                    key,
                    ModelVersion {
                        id: info.version_id,
                        marker: false,
                        body: data,
                    },
                );
            }
            Op::Delete(key) => {
                let result = layer.delete_object("bucket", key, DeleteOptions::default()).await;
                match model.versioning() {
                    VersioningState::Unversioned => {
                        // Without versioning a delete removes the object (a missing key is
                        // NoSuchKey here; the front door answers success for it).
                        match result {
                            Ok(_) | Err(ObjectError::NoSuchKey { .. }) => {}
                            Err(err) => panic!("delete {key}: {err}"),
                        }
                        model.keys.remove(key);
                    }
                    VersioningState::Enabled | VersioningState::Suspended => {
                        let result = result.unwrap();
                        assert!(result.delete_marker);
                        // A suspended bucket's marker is the null version ("null").
                        let id = result.version_id.filter(|id| id != "null");
                        assert_eq!(id.is_some(), model.versioning() == VersioningState::Enabled);
                        model.push(
                            key,
                            ModelVersion {
                                id,
                                marker: true,
                                body: Vec::new(),
                            },
                        );
                    }
                }
            }
            Op::DeleteVersion(key, n) => {
                let Some(versions) = model.keys.get_mut(key).filter(|v| !v.is_empty()) else {
                    continue;
                };
                let victim = versions.remove(n % versions.len());
                let id = victim.id.clone().unwrap_or_else(|| "null".into());
                let result = layer
                    .delete_object(
                        "bucket",
                        key,
                        DeleteOptions {
                            version_id: Some(id.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(result.delete_marker, victim.marker, "delete {key} {id}");
                if versions.is_empty() {
                    model.keys.remove(key);
                }
            }
            Op::Versioning(enabled) => {
                let state = if enabled {
                    VersioningState::Enabled
                } else {
                    VersioningState::Suspended
                };
                layer.set_bucket_versioning("bucket", state).await.unwrap();
                model.state = Some(state);
            }
        }
        check(&layer, &model, step).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn versioning_matches_the_model(ops in proptest::collection::vec(op(), 1..30)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(ops));
    }
}
