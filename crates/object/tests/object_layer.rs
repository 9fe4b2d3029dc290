//! End-to-end tests of the object layer over temporary local drives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt;
use strata_object::*;

struct Fixture {
    _dir: tempfile::TempDir,
    drives: Vec<PathBuf>,
    layer: ObjectLayer,
}

async fn fixture(n_drives: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=n_drives)
        .map(|i| dir.path().join(format!("disk{i}")))
        .collect();
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    layer
        .make_bucket("bucket", MakeBucketOptions::default())
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        drives,
        layer,
    }
}

fn body(data: &[u8]) -> PutStream {
    // Chunks of odd sizes, to cross block boundaries at awkward places.
    let chunks: Vec<Result<Bytes, BoxError>> = data
        .chunks(77_777)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

fn pattern(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

async fn read_all(layer: &ObjectLayer, key: &str, opts: GetOptions) -> ObjectResult<Vec<u8>> {
    let reader = layer.get_object("bucket", key, opts).await?;
    let mut out = Vec::with_capacity(reader.length as usize);
    let mut body = reader.body;
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    assert_eq!(out.len() as u64, reader.length);
    Ok(out)
}

async fn put(layer: &ObjectLayer, key: &str, data: &[u8]) -> ObjectInfo {
    layer
        .put_object("bucket", key, body(data), PutOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn put_get_sizes_and_ranges() {
    let f = fixture(4).await;
    for size in [
        0usize,
        1,
        4096,
        200_000,
        262_144,
        262_145,
        1 << 20,
        (1 << 20) + 1,
        3 * (1 << 20) + 12_345,
    ] {
        let data = pattern(size, size as u8);
        let key = format!("obj-{size}");
        let info = put(&f.layer, &key, &data).await;
        assert_eq!(info.size, size as u64);
        assert_eq!(info.etag, hex::encode(md5_of(&data)));
        assert_eq!(
            read_all(&f.layer, &key, GetOptions::default()).await.unwrap(),
            data,
            "size {size}"
        );
        if size > 10 {
            let range = ByteRange::FromTo {
                first: 3,
                last: size as u64 - 5,
            };
            let got = read_all(
                &f.layer,
                &key,
                GetOptions {
                    range: Some(range),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(got, data[3..size - 4]);
            let suffix = ByteRange::Suffix { len: 7 };
            let got = read_all(
                &f.layer,
                &key,
                GetOptions {
                    range: Some(suffix),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            assert_eq!(got, data[size - 7..]);
        }
    }
    let err = f
        .layer
        .get_object(
            "bucket",
            "obj-1",
            GetOptions {
                range: Some(ByteRange::From { first: 1 }),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::InvalidRange { size: 1 }), "{err:?}");
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(data).into()
}

#[tokio::test]
async fn size_and_digest_mismatches_store_nothing() {
    let f = fixture(4).await;
    let data = pattern(2 << 20, 1);
    let short = PutOptions {
        size: Some(data.len() as u64 + 1),
        ..Default::default()
    };
    let err = f
        .layer
        .put_object("bucket", "k", body(&data), short)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::IncompleteBody { .. }), "{err:?}");
    let bad_md5 = PutOptions {
        content_md5: Some([0; 16]),
        ..Default::default()
    };
    let err = f
        .layer
        .put_object("bucket", "k", body(&data), bad_md5)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::BadDigest), "{err:?}");
    assert!(matches!(
        f.layer.head_object("bucket", "k", GetOptions::default()).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    let good_md5 = PutOptions {
        content_md5: Some(md5_of(&data)),
        ..Default::default()
    };
    f.layer
        .put_object("bucket", "k", body(&data), good_md5)
        .await
        .unwrap();
}

#[tokio::test]
async fn overwrite_delete_and_metadata() {
    let f = fixture(4).await;
    let mut meta = ObjectMetadata {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    meta.user.insert("color".into(), "blue".into());
    let opts = PutOptions {
        metadata: meta.clone(),
        ..Default::default()
    };
    f.layer
        .put_object("bucket", "k", body(b"one"), opts)
        .await
        .unwrap();
    let info = f
        .layer
        .head_object("bucket", "k", GetOptions::default())
        .await
        .unwrap();
    assert_eq!(info.metadata, meta);
    assert_eq!(info.version_id, None);
    put(&f.layer, "k", &pattern(3 << 20, 9)).await;
    assert_eq!(
        read_all(&f.layer, "k", GetOptions::default()).await.unwrap(),
        pattern(3 << 20, 9)
    );
    let versions = f
        .layer
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
        versions.versions.len(),
        1,
        "an unversioned bucket keeps one null version"
    );
    f.layer
        .delete_object("bucket", "k", DeleteOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        read_all(&f.layer, "k", GetOptions::default()).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    // Deleting what is not there succeeds, as in S3.
    f.layer
        .delete_object("bucket", "k", DeleteOptions::default())
        .await
        .unwrap();
}

/// A delete conditioned on a modification time removes nothing that changed since.
#[tokio::test]
async fn deletes_conditioned_on_modification_time() {
    let f = fixture(4).await;
    let delete = |version_id: Option<String>, at, position| {
        f.layer.delete_object(
            "bucket",
            "k",
            DeleteOptions {
                version_id,
                expect: Some(DeleteExpectation {
                    mod_time: at,
                    meta_stamp: 0,
                    position,
                }),
                ..Default::default()
            },
        )
    };
    let current = VersionPosition::Current;
    // Unversioned: an overwrite since makes the old time stale.
    let old = put(&f.layer, "k", b"old").await;
    let new = put(&f.layer, "k", b"new").await;
    let err = delete(None, old.mod_time, current).await.unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    assert_eq!(
        read_all(&f.layer, "k", GetOptions::default()).await.unwrap(),
        b"new"
    );
    // A tag change since is a change too.
    f.layer
        .update_object_metadata("bucket", "k", None, |m| {
            m.tags.insert("t".into(), "1".into());
            Ok(())
        })
        .await
        .unwrap();
    let err = delete(None, new.mod_time, current).await.unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    let tagged = f
        .layer
        .head_object("bucket", "k", GetOptions::default())
        .await
        .unwrap();
    let opts = DeleteOptions {
        expect: Some(DeleteExpectation {
            mod_time: tagged.mod_time,
            meta_stamp: tagged.meta_stamp,
            position: current,
        }),
        ..Default::default()
    };
    f.layer.delete_object("bucket", "k", opts).await.unwrap();
    assert!(read_all(&f.layer, "k", GetOptions::default()).await.is_err());

    // Versioned: a delete marker is made only over the version evaluated; a noncurrent
    // version goes only while it is noncurrent under the same successor.
    f.layer
        .set_bucket_versioning("bucket", VersioningState::Enabled)
        .await
        .unwrap();
    let v1 = put(&f.layer, "k", b"one").await;
    let v2 = put(&f.layer, "k", b"two").await;
    let below = |successor: &ObjectInfo| VersionPosition::Noncurrent {
        successor: successor.mod_time,
        newer: 1,
    };
    let err = delete(None, v1.mod_time, current).await.unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    let err = delete(v1.version_id.clone(), v2.mod_time, below(&v2))
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    assert!(delete(None, v2.mod_time, current).await.unwrap().delete_marker);
    // The current version is now a delete marker: expiring "v2 as current" again is refused,
    // and v1's successor is no longer what was seen.
    let err = delete(None, v2.mod_time, current).await.unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    let err = delete(v1.version_id.clone(), v1.mod_time, below(&v1))
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    delete(v1.version_id.clone(), v1.mod_time, below(&v2))
        .await
        .unwrap();
    let opts = GetOptions {
        version_id: v2.version_id.clone(),
        ..Default::default()
    };
    assert_eq!(read_all(&f.layer, "k", opts).await.unwrap(), b"two");
    // Rolled back: with the versions above it deleted, v2 is current again and a
    // "noncurrent" delete of it is refused.
    let listed = f
        .layer
        .list_object_versions(
            "bucket",
            ListVersionsOptions {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let marker = listed.versions[0].clone();
    assert!(marker.delete_marker);
    let opts = DeleteOptions {
        version_id: marker.version_id.clone(),
        ..Default::default()
    };
    f.layer.delete_object("bucket", "k", opts).await.unwrap();
    let err = delete(v2.version_id.clone(), v2.mod_time, below(&marker))
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::PreconditionFailed), "{err:?}");
    delete(v2.version_id.clone(), v2.mod_time, VersionPosition::Only)
        .await
        .unwrap();
}

#[tokio::test]
async fn versioning_and_delete_markers() {
    let f = fixture(4).await;
    f.layer
        .set_bucket_versioning("bucket", VersioningState::Enabled)
        .await
        .unwrap();
    let v1 = put(&f.layer, "k", b"first").await;
    let v2 = put(&f.layer, "k", b"second").await;
    assert_ne!(v1.version_id, v2.version_id);
    let del = f
        .layer
        .delete_object("bucket", "k", DeleteOptions::default())
        .await
        .unwrap();
    assert!(del.delete_marker);
    let err = f
        .layer
        .head_object("bucket", "k", GetOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ObjectError::NoSuchKey {
                delete_marker_version: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    let old = GetOptions {
        version_id: v1.version_id.clone(),
        ..Default::default()
    };
    assert_eq!(read_all(&f.layer, "k", old).await.unwrap(), b"first");
    let listed = f
        .layer
        .list_object_versions(
            "bucket",
            ListVersionsOptions {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.versions.len(), 3);
    assert!(listed.versions[0].delete_marker && listed.versions[0].is_latest);
    assert_eq!(listed.versions[1].version_id, v2.version_id);
    assert_eq!(listed.versions[2].version_id, v1.version_id);
    let page = f
        .layer
        .list_objects(
            "bucket",
            ListOptions {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.objects.is_empty(), "a delete marker hides the key");
    // Removing the marker brings v2 back.
    let marker_id = listed.versions[0].version_id.clone();
    f.layer
        .delete_object(
            "bucket",
            "k",
            DeleteOptions {
                version_id: marker_id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        read_all(&f.layer, "k", GetOptions::default()).await.unwrap(),
        b"second"
    );
    // Paging versions one at a time visits all of them.
    let mut seen = Vec::new();
    let mut opts = ListVersionsOptions {
        max_keys: 1,
        ..Default::default()
    };
    loop {
        let page = f
            .layer
            .list_object_versions("bucket", opts.clone())
            .await
            .unwrap();
        seen.extend(page.versions.iter().map(|v| v.version_id.clone()));
        if !page.is_truncated {
            break;
        }
        opts.key_marker = page.next_key_marker;
        opts.version_id_marker = page.next_version_id_marker;
    }
    assert_eq!(seen, vec![v2.version_id, v1.version_id]);
}

#[tokio::test]
async fn multipart_upload() {
    let f = fixture(4).await;
    let upload = f
        .layer
        .create_multipart_upload("bucket", "big", PutOptions::default())
        .await
        .unwrap();
    let p1 = pattern(5 << 20, 1);
    let p2 = pattern(1234, 2);
    let p3 = pattern(5 << 20, 3);
    let i3 = f
        .layer
        .upload_part(
            "bucket",
            "big",
            &upload.upload_id,
            3,
            body(&p3),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let i1 = f
        .layer
        .upload_part(
            "bucket",
            "big",
            &upload.upload_id,
            1,
            body(&p1),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let i2 = f
        .layer
        .upload_part(
            "bucket",
            "big",
            &upload.upload_id,
            2,
            body(&p2),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let listed = f
        .layer
        .list_parts(
            "bucket",
            "big",
            &upload.upload_id,
            ListPartsOptions {
                max_parts: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let uploads = f
        .layer
        .list_multipart_uploads(
            "bucket",
            ListUploadsOptions {
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(uploads.uploads.len(), 1);

    let cp = |number: u32, info: &PartInfo| CompletePart {
        number,
        etag: format!("\"{}\"", info.etag),
        checksum: None,
    };
    let err = f
        .layer
        .complete_multipart_upload("bucket", "big", &upload.upload_id, vec![cp(2, &i2), cp(3, &i3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ObjectError::EntityTooSmall { number: 2, .. }),
        "{err:?}"
    );
    let err = f
        .layer
        .complete_multipart_upload("bucket", "big", &upload.upload_id, vec![cp(3, &i3), cp(1, &i1)])
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::InvalidPartOrder), "{err:?}");
    let err = f
        .layer
        .complete_multipart_upload("bucket", "big", &upload.upload_id, vec![cp(1, &i2)])
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::InvalidPart { number: 1 }), "{err:?}");

    let info = f
        .layer
        .complete_multipart_upload("bucket", "big", &upload.upload_id, vec![cp(1, &i1), cp(3, &i3)])
        .await
        .unwrap();
    let mut md5s = Vec::new();
    md5s.extend_from_slice(&md5_of(&p1));
    md5s.extend_from_slice(&md5_of(&p3));
    assert_eq!(info.etag, format!("{}-2", hex::encode(md5_of(&md5s))));
    let whole = [p1.clone(), p3.clone()].concat();
    assert_eq!(
        read_all(&f.layer, "big", GetOptions::default()).await.unwrap(),
        whole
    );
    let part2 = read_all(
        &f.layer,
        "big",
        GetOptions {
            part_number: Some(2),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(part2, p3);
    // A range across the part boundary.
    let range = ByteRange::FromTo {
        first: (5 << 20) - 10,
        last: (5 << 20) + 10,
    };
    let got = read_all(
        &f.layer,
        "big",
        GetOptions {
            range: Some(range),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(got, whole[(5 << 20) - 10..=(5 << 20) + 10]);
    let err = f
        .layer
        .list_parts("bucket", "big", &upload.upload_id, ListPartsOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::NoSuchUpload { .. }), "{err:?}");

    // Abort.
    let upload = f
        .layer
        .create_multipart_upload("bucket", "gone", PutOptions::default())
        .await
        .unwrap();
    f.layer
        .upload_part(
            "bucket",
            "gone",
            &upload.upload_id,
            1,
            body(&p2),
            PutOptions::default(),
        )
        .await
        .unwrap();
    f.layer
        .abort_multipart_upload("bucket", "gone", &upload.upload_id)
        .await
        .unwrap();
    let err = f
        .layer
        .abort_multipart_upload("bucket", "gone", &upload.upload_id)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::NoSuchUpload { .. }), "{err:?}");
}

#[tokio::test]
async fn copy_object_server_side() {
    let f = fixture(4).await;
    let data = pattern(2 << 20, 4);
    put(&f.layer, "src", &data).await;
    let mut meta = ObjectMetadata::default();
    meta.user.insert("a".into(), "b".into());
    let info = f
        .layer
        .copy_object(
            ("bucket", "src", GetOptions::default()),
            ("bucket", "dst"),
            CopyOptions::default(),
            |_| meta.clone(),
        )
        .await
        .unwrap();
    assert_eq!(info.etag, hex::encode(md5_of(&data)));
    assert_eq!(
        read_all(&f.layer, "dst", GetOptions::default()).await.unwrap(),
        data
    );
    assert_eq!(
        f.layer
            .head_object("bucket", "dst", GetOptions::default())
            .await
            .unwrap()
            .metadata,
        meta
    );
}

#[tokio::test]
async fn buckets() {
    let f = fixture(4).await;
    assert!(matches!(
        f.layer.make_bucket("bucket", MakeBucketOptions::default()).await,
        Err(ObjectError::BucketExists { .. })
    ));
    assert!(matches!(
        f.layer
            .make_bucket("Bad_Name", MakeBucketOptions::default())
            .await,
        Err(ObjectError::InvalidBucketName { .. })
    ));
    put(&f.layer, "k", b"x").await;
    assert!(matches!(
        f.layer.delete_bucket("bucket", false).await,
        Err(ObjectError::BucketNotEmpty { .. })
    ));
    f.layer
        .put_bucket_config("bucket", "policy", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        f.layer
            .get_bucket_config("bucket", "policy")
            .await
            .unwrap()
            .unwrap(),
        "{}"
    );
    f.layer.delete_bucket("bucket", true).await.unwrap();
    assert!(matches!(
        f.layer.bucket_info("bucket").await,
        Err(ObjectError::NoSuchBucket { .. })
    ));
    assert!(f.layer.list_buckets().await.unwrap().is_empty());
}

#[tokio::test]
async fn survives_restart() {
    let f = fixture(4).await;
    let big = pattern(3 << 20, 5);
    put(&f.layer, "small", b"tiny").await;
    put(&f.layer, "big", &big).await;
    let drives = f.drives.clone();
    drop(f.layer);
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    assert_eq!(
        read_all(&layer, "small", GetOptions::default()).await.unwrap(),
        b"tiny"
    );
    assert_eq!(read_all(&layer, "big", GetOptions::default()).await.unwrap(), big);
    drop(f._dir);
}

/// Flips bytes in every shard file under `dir` (a drive root) and returns how many files.
fn corrupt_shard_files(root: &std::path::Path) -> usize {
    let mut n = 0;
    let data = root.join("data");
    for fan in std::fs::read_dir(&data).into_iter().flatten().flatten() {
        for dir in std::fs::read_dir(fan.path()).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let mut bytes = std::fs::read(file.path()).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
                bytes[20] ^= 0x01;
                std::fs::write(file.path(), bytes).unwrap();
                n += 1;
            }
        }
    }
    n
}

#[tokio::test]
async fn corrupt_shards_are_detected_and_reconstructed() {
    let f = fixture(4).await;
    let data = pattern(5 << 20, 6);
    put(&f.layer, "k", &data).await;
    // Damage two drives' shards: parity is 2, so every block still decodes.
    assert!(corrupt_shard_files(&f.drives[0]) > 0);
    assert!(corrupt_shard_files(&f.drives[3]) > 0);
    assert_eq!(
        read_all(&f.layer, "k", GetOptions::default()).await.unwrap(),
        data
    );
    // A third damaged drive is beyond parity: the read fails, it never returns wrong bytes.
    corrupt_shard_files(&f.drives[1]);
    assert!(read_all(&f.layer, "k", GetOptions::default()).await.is_err());
}

#[tokio::test]
async fn missing_drives_up_to_parity() {
    let f = fixture(4).await;
    let big = pattern(3 << 20, 7);
    put(&f.layer, "big", &big).await;
    put(&f.layer, "small", b"small object").await;
    let drives = f.drives.clone();
    drop(f.layer);
    std::fs::remove_dir_all(&drives[1]).unwrap();
    std::fs::remove_dir_all(&drives[2]).unwrap();
    // Lost drives come back as fresh empty directories (formatted into the same position).
    let layer = ObjectLayer::open_local(&drives).await.unwrap();
    assert_eq!(read_all(&layer, "big", GetOptions::default()).await.unwrap(), big);
    assert_eq!(
        read_all(&layer, "small", GetOptions::default()).await.unwrap(),
        b"small object"
    );
    let page = layer
        .list_objects(
            "bucket",
            ListOptions {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 2);
    drop(f._dir);
}

#[tokio::test]
async fn concurrent_writers_to_one_key() {
    let f = fixture(4).await;
    let layer = std::sync::Arc::new(f.layer);
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let layer = layer.clone();
        tasks.push(tokio::spawn(async move {
            let data = pattern(if i % 2 == 0 { 1000 } else { 1 << 20 }, i);
            layer
                .put_object("bucket", "hot", body(&data), PutOptions::default())
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = read_all(&layer, "hot", GetOptions::default()).await.unwrap();
    assert!(
        (0..8u8).any(|i| got == pattern(if i % 2 == 0 { 1000 } else { 1 << 20 }, i)),
        "a whole object wins"
    );
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
    assert_eq!(versions.versions.len(), 1);
}

#[tokio::test]
async fn listing_with_delimiters_and_pages() {
    let f = fixture(4).await;
    let keys = ["a", "a/", "a/b", "a/b/c", "a/c", "b", "b/x", "c ü", "c/€", "d"];
    for k in keys {
        put(&f.layer, k, k.as_bytes()).await;
    }
    let page = f
        .layer
        .list_objects(
            "bucket",
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, vec!["a", "b", "c ü", "d"]);
    assert_eq!(page.common_prefixes, vec!["a/", "b/", "c/"]);
    let page = f
        .layer
        .list_objects(
            "bucket",
            ListOptions {
                prefix: "a/".into(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        page.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["a/", "a/b", "a/c"]
    );
    assert_eq!(page.common_prefixes, vec!["a/b/"]);
    // Page by two through everything with a delimiter.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = f
            .layer
            .list_objects(
                "bucket",
                ListOptions {
                    delimiter: Some("/".into()),
                    max_keys: 2,
                    marker: marker.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        seen.extend(page.common_prefixes.iter().cloned());
        if !page.is_truncated {
            break;
        }
        marker = page.next_marker;
    }
    seen.sort();
    assert_eq!(seen, vec!["a", "a/", "b", "b/", "c ü", "c/", "d"]);
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Put(String),
        Delete(String),
    }

    fn key() -> impl Strategy<Value = String> {
        proptest::sample::select(vec![
            "a", "a/", "a/b", "a/b/c", "ab", "b", "b/c/d", "é", "é/x", "z/z",
        ])
        .prop_map(str::to_string)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![3 => key().prop_map(Op::Put), 1 => key().prop_map(Op::Delete)]
    }

    /// S3 listing semantics over a model of the live keys.
    fn model_list(live: &BTreeMap<String, u64>, prefix: &str, delimiter: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in live.keys().filter(|k| k.starts_with(prefix)) {
            let entry = match delimiter.and_then(|d| {
                k[prefix.len()..]
                    .find(d)
                    .map(|p| k[..prefix.len() + p + d.len()].to_string())
            }) {
                Some(cp) => cp,
                None => k.clone(),
            };
            if out.last() != Some(&entry) {
                out.push(entry);
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn listing_matches_model(ops in proptest::collection::vec(op(), 1..25), prefix in proptest::sample::select(vec!["", "a", "a/", "b/", "é"]), delimited in any::<bool>(), page in 1usize..4) {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                let f = fixture(4).await;
                let mut live: BTreeMap<String, u64> = BTreeMap::new();
                for op in &ops {
                    match op {
                        Op::Put(k) => { put(&f.layer, k, k.as_bytes()).await; live.insert(k.clone(), 0); }
                        Op::Delete(k) => { f.layer.delete_object("bucket", k, DeleteOptions::default()).await.unwrap(); live.remove(k); }
                    }
                }
                let delimiter = delimited.then_some("/");
                let expected = model_list(&live, prefix, delimiter);
                let mut got = Vec::new();
                let mut marker = None;
                loop {
                    let result = f.layer.list_objects("bucket", ListOptions { prefix: prefix.into(), delimiter: delimiter.map(String::from), marker: marker.clone(), max_keys: page }).await.unwrap();
                    let mut entries: Vec<String> = result.objects.iter().map(|o| o.key.clone()).chain(result.common_prefixes.iter().cloned()).collect();
                    entries.sort();
                    assert!(entries.len() <= page);
                    got.extend(entries);
                    if !result.is_truncated { break; }
                    marker = result.next_marker;
                }
                assert_eq!(got, expected);
                let versions = f.layer.list_object_versions("bucket", ListVersionsOptions { prefix: prefix.into(), max_keys: 1000, ..Default::default() }).await.unwrap();
                let listed: Vec<String> = versions.versions.iter().map(|v| v.key.clone()).collect();
                let expected_all: Vec<String> = live.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
                assert_eq!(listed, expected_all);
            });
        }
    }
}

/// Reads the first chunk of a GET of `key`, lets `change` run, then reads the rest.
async fn read_around(
    layer: &ObjectLayer,
    key: &str,
    change: impl std::future::Future<Output = ()>,
) -> Vec<u8> {
    let mut body = layer
        .get_object("bucket", key, GetOptions::default())
        .await
        .unwrap()
        .body;
    let mut got = body.next().await.unwrap().unwrap().to_vec();
    change.await;
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    got
}

/// A GET that started before its version was replaced returns the whole old version: the old
/// shards stay readable from the drives' trash for a grace period (`drive::maintenance`).
#[tokio::test]
async fn get_under_way_survives_overwrite_and_delete() {
    let f = fixture(4).await;
    let old = pattern(8 << 20, 1);
    put(&f.layer, "k", &old).await;
    // Replaced while the GET has read one chunk of eight blocks.
    let new = pattern(3 << 20, 2);
    let got = read_around(&f.layer, "k", async {
        put(&f.layer, "k", &new).await;
    })
    .await;
    assert!(got == old, "the GET under way returned other bytes");
    assert_eq!(read_all(&f.layer, "k", GetOptions::default()).await.unwrap(), new);
    // Deleted while a GET is under way.
    let got = read_around(&f.layer, "k", async {
        f.layer
            .delete_object("bucket", "k", DeleteOptions::default())
            .await
            .unwrap();
    })
    .await;
    assert!(got == new, "the GET under way returned other bytes");
}

#[tokio::test]
async fn object_lock_protects_versions_from_deletion() {
    use strata_object::{DeleteOptions, Retention, RetentionMode, VersioningState, now_unix_ms};
    let f = fixture(4).await;
    f.layer
        .make_bucket(
            "locked",
            MakeBucketOptions {
                object_lock: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let info = f.layer.bucket_info("locked").await.unwrap();
    assert!(info.object_lock);
    assert_eq!(info.versioning, VersioningState::Enabled);
    assert!(matches!(
        f.layer
            .set_bucket_versioning("locked", VersioningState::Suspended)
            .await
            .unwrap_err(),
        ObjectError::InvalidBucketState { .. }
    ));
    let put_with = |metadata: ObjectMetadata| {
        let layer = &f.layer;
        async move {
            layer
                .put_object(
                    "locked",
                    "k",
                    body(b"data"),
                    PutOptions {
                        metadata,
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
                .version_id
                .unwrap()
        }
    };
    let until = now_unix_ms() + 3_600_000;
    let governed = put_with(ObjectMetadata {
        retention: Some(Retention {
            mode: RetentionMode::Governance,
            until_unix_ms: until,
        }),
        ..Default::default()
    })
    .await;
    let complied = put_with(ObjectMetadata {
        retention: Some(Retention {
            mode: RetentionMode::Compliance,
            until_unix_ms: until,
        }),
        ..Default::default()
    })
    .await;
    let held = put_with(ObjectMetadata {
        legal_hold: true,
        ..Default::default()
    })
    .await;
    let delete = |version: &str, bypass: bool| {
        f.layer.delete_object(
            "locked",
            "k",
            DeleteOptions {
                version_id: Some(version.to_string()),
                bypass_governance: bypass,
                ..Default::default()
            },
        )
    };
    for version in [&governed, &complied, &held] {
        let err = delete(version, false).await.unwrap_err();
        assert!(matches!(err, ObjectError::ObjectLocked { .. }), "{err:?}");
    }
    // Bypass lifts governance only.
    assert!(matches!(
        delete(&complied, true).await.unwrap_err(),
        ObjectError::ObjectLocked { .. }
    ));
    assert!(matches!(
        delete(&held, true).await.unwrap_err(),
        ObjectError::ObjectLocked { .. }
    ));
    delete(&governed, true).await.unwrap();
    // A delete without a version id only adds a delete marker: allowed, nothing lost.
    f.layer
        .delete_object("locked", "k", DeleteOptions::default())
        .await
        .unwrap();
    // The legal hold lifted (in place, under the key's lock), the version may go.
    f.layer
        .update_object_metadata("locked", "k", Some(&held), |m| {
            m.legal_hold = false;
            Ok(())
        })
        .await
        .unwrap();
    delete(&held, false).await.unwrap();
    // Compliance retention can be extended, never shortened.
    let longer = Some(Retention {
        mode: RetentionMode::Compliance,
        until_unix_ms: until + 1000,
    });
    let shorter = Some(Retention {
        mode: RetentionMode::Compliance,
        until_unix_ms: until - 1000,
    });
    let meta = f
        .layer
        .head_object(
            "locked",
            "k",
            GetOptions {
                version_id: Some(complied.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .metadata;
    assert!(meta.check_retention_change(longer, false).is_ok());
    assert!(meta.check_retention_change(shorter, true).is_err());
    assert!(meta.check_retention_change(None, true).is_err());
}

#[tokio::test]
async fn a_protected_null_version_is_never_replaced() {
    let f = fixture(4).await;
    f.layer
        .put_object(
            "bucket",
            "held",
            body(b"kept"),
            PutOptions {
                metadata: ObjectMetadata {
                    legal_hold: true,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let err = f
        .layer
        .put_object("bucket", "held", body(b"overwrite"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::ObjectLocked { .. }), "{err:?}");
    assert_eq!(
        read_all(&f.layer, "held", GetOptions::default()).await.unwrap(),
        b"kept"
    );
}

#[tokio::test]
async fn heal_restores_bucket_configuration_and_removes_deleted_blobs() {
    use strata_drive::{MetaOp, Table};
    let f = fixture(4).await;
    f.layer
        .put_bucket_config("bucket", "policy", Bytes::from_static(b"{\"deny\":true}"))
        .await
        .unwrap();
    let mut drives: Vec<_> = f.layer.local_drives().into_values().collect();
    drives.sort_by(|a, b| a.endpoint().cmp(b.endpoint()));
    let key = |name: &str| [b"bucket\0".as_slice(), name.as_bytes()].concat();
    // A replaced drive lost the policy; another drive kept a blob deleted while it was away.
    drives[0]
        .meta_commit(vec![MetaOp::delete(Table::BucketConfig, key("policy"))])
        .await
        .unwrap();
    drives[1]
        .meta_commit(vec![MetaOp::put(
            Table::BucketConfig,
            key("cors"),
            b"stale".to_vec(),
        )])
        .await
        .unwrap();
    assert!(f.layer.heal_buckets().await.unwrap() >= 2);
    for drive in &drives {
        assert_eq!(
            drive
                .meta_get(Table::BucketConfig, &key("policy"))
                .await
                .unwrap()
                .as_deref(),
            Some(&b"{\"deny\":true}"[..]),
            "{}",
            drive.endpoint()
        );
        assert!(
            drive
                .meta_get(Table::BucketConfig, &key("cors"))
                .await
                .unwrap()
                .is_none()
        );
    }
}

fn sent(algorithm: ChecksumAlgorithm, value: Vec<u8>) -> Option<ChecksumSpec> {
    Some(ChecksumSpec {
        algorithm,
        kind: None,
        expected: ExpectedChecksum::Value(value),
    })
}

#[tokio::test]
async fn checksums_are_verified_before_commit_and_stored() {
    let f = fixture(4).await;
    // None sent: CRC64NVME of the whole body is stored (S3's default), inline and sharded.
    for size in [0, 100, 3 << 20] {
        let data = pattern(size, 5);
        let info = put(&f.layer, "default", &data).await;
        let expected = ObjectChecksum::full(
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumAlgorithm::Crc64Nvme.digest(&data),
        );
        assert_eq!(info.checksum.as_ref(), Some(&expected), "size {size}");
        let head = f
            .layer
            .head_object("bucket", "default", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(head.checksum, Some(expected));
    }
    // Each algorithm, sent right, is stored; sent wrong, nothing is stored.
    let data = pattern(2 << 20, 9);
    for algorithm in ChecksumAlgorithm::ALL {
        let key = format!("k-{algorithm}");
        let wrong = PutOptions {
            checksum: sent(algorithm, algorithm.digest(b"something else")),
            ..PutOptions::default()
        };
        let err = f
            .layer
            .put_object("bucket", &key, body(&data), wrong)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ObjectError::ChecksumMismatch { algorithm: a } if a == algorithm),
            "{err}"
        );
        assert!(
            f.layer
                .head_object("bucket", &key, GetOptions::default())
                .await
                .is_err()
        );
        let right = PutOptions {
            checksum: sent(algorithm, algorithm.digest(&data)),
            ..PutOptions::default()
        };
        let info = f
            .layer
            .put_object("bucket", &key, body(&data), right)
            .await
            .unwrap();
        assert_eq!(
            info.checksum,
            Some(ObjectChecksum::full(algorithm, algorithm.digest(&data)))
        );
    }
    // A trailer's value is read once the body has ended.
    let trailer_data = data.clone();
    let opts = PutOptions {
        checksum: Some(ChecksumSpec {
            algorithm: ChecksumAlgorithm::Crc32c,
            kind: None,
            expected: ExpectedChecksum::Trailer(std::sync::Arc::new(move || {
                Ok(ChecksumAlgorithm::Crc32c.digest(&trailer_data))
            })),
        }),
        ..PutOptions::default()
    };
    f.layer
        .put_object("bucket", "trailer", body(&data), opts)
        .await
        .unwrap();
    // A copy keeps the source's algorithm (checking the bytes against it) or takes the one asked.
    let copied = f
        .layer
        .copy_object(
            ("bucket", "k-SHA256", GetOptions::default()),
            ("bucket", "copy"),
            CopyOptions::default(),
            |i| i.metadata.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        copied.checksum.map(|c| c.value),
        Some(ChecksumAlgorithm::Sha256.digest(&data))
    );
    let copied = f
        .layer
        .copy_object(
            ("bucket", "k-SHA256", GetOptions::default()),
            ("bucket", "copy"),
            CopyOptions {
                checksum: Some(ChecksumAlgorithm::Crc32),
                ..CopyOptions::default()
            },
            |i| i.metadata.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        copied.checksum.map(|c| c.value),
        Some(ChecksumAlgorithm::Crc32.digest(&data))
    );
}

#[tokio::test]
async fn multipart_checksums_composite_and_full_object() {
    let f = fixture(4).await;
    let p1 = pattern(5 << 20, 1);
    let p2 = pattern(1 << 20, 2);
    let whole = [p1.clone(), p2.clone()].concat();
    let create = |algorithm: ChecksumAlgorithm, kind: Option<ChecksumType>| PutOptions {
        checksum: Some(ChecksumSpec {
            algorithm,
            kind,
            expected: ExpectedChecksum::None,
        }),
        ..PutOptions::default()
    };
    // SHA-256 cannot be full-object; CRC64NVME cannot be composite.
    for (algorithm, kind) in [
        (ChecksumAlgorithm::Sha256, ChecksumType::FullObject),
        (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite),
    ] {
        let err = f
            .layer
            .create_multipart_upload("bucket", "mp", create(algorithm, Some(kind)))
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectError::InvalidRequestMessage { .. }), "{err}");
    }
    for (algorithm, kind) in [
        (Some(ChecksumAlgorithm::Sha256), ChecksumType::Composite),
        (Some(ChecksumAlgorithm::Crc32), ChecksumType::FullObject),
        (None, ChecksumType::FullObject),
    ] {
        let opts = match algorithm {
            Some(a) => create(a, Some(kind)),
            None => PutOptions::default(),
        };
        let upload = f
            .layer
            .create_multipart_upload("bucket", "mp", opts)
            .await
            .unwrap();
        let stored = algorithm.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
        // A part sent with another algorithm than the upload's is refused.
        if let Some(a) = algorithm {
            let other = if a == ChecksumAlgorithm::Crc32 {
                ChecksumAlgorithm::Sha1
            } else {
                ChecksumAlgorithm::Crc32
            };
            let err = f
                .layer
                .upload_part(
                    "bucket",
                    "mp",
                    &upload.upload_id,
                    1,
                    body(&p1),
                    PutOptions {
                        checksum: sent(other, other.digest(&p1)),
                        ..PutOptions::default()
                    },
                )
                .await
                .unwrap_err();
            assert!(matches!(err, ObjectError::InvalidRequestMessage { .. }), "{err}");
        }
        let i1 = f
            .layer
            .upload_part(
                "bucket",
                "mp",
                &upload.upload_id,
                1,
                body(&p1),
                PutOptions {
                    checksum: sent(stored, stored.digest(&p1)),
                    ..PutOptions::default()
                },
            )
            .await
            .unwrap();
        let shown = algorithm.map(|a| (a, a.digest(&p1)));
        assert_eq!(
            i1.checksum, shown,
            "a part shows the checksum of the upload's algorithm only"
        );
        let i2 = f
            .layer
            .upload_part(
                "bucket",
                "mp",
                &upload.upload_id,
                2,
                body(&p2),
                PutOptions::default(),
            )
            .await
            .unwrap();
        let listed = |info: &PartInfo, number: u32, with_checksum: bool| CompletePart {
            number,
            etag: info.etag.clone(),
            checksum: with_checksum.then(|| info.checksum.clone()).flatten(),
        };
        if kind == ChecksumType::Composite {
            // Composite uploads must list every part's checksum.
            let err = f
                .layer
                .complete_multipart_upload(
                    "bucket",
                    "mp",
                    &upload.upload_id,
                    vec![listed(&i1, 1, true), listed(&i2, 2, false)],
                )
                .await
                .unwrap_err();
            assert!(matches!(err, ObjectError::InvalidRequestMessage { .. }), "{err}");
        }
        // A listed checksum that is not the part's.
        let mut bad = listed(&i1, 1, true);
        bad.checksum = Some((stored, stored.digest(b"x")));
        if algorithm.is_some() {
            let err = f
                .layer
                .complete_multipart_upload("bucket", "mp", &upload.upload_id, vec![bad, listed(&i2, 2, true)])
                .await
                .unwrap_err();
            assert!(matches!(err, ObjectError::InvalidPart { number: 1 }), "{err}");
        }
        let expected = match kind {
            ChecksumType::FullObject => stored.digest(&whole),
            ChecksumType::Composite => stored.digest(&[stored.digest(&p1), stored.digest(&p2)].concat()),
        };
        // A whole-object checksum sent wrong fails the completion.
        let err = f
            .layer
            .complete_multipart_upload_with(
                "bucket",
                "mp",
                &upload.upload_id,
                vec![listed(&i1, 1, true), listed(&i2, 2, true)],
                CompleteOptions {
                    checksum: Some((stored, stored.digest(b"x"))),
                    ..CompleteOptions::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectError::ChecksumMismatch { .. }), "{err}");
        let parts = vec![listed(&i1, 1, true), listed(&i2, 2, true)];
        let info = f
            .layer
            .complete_multipart_upload_with(
                "bucket",
                "mp",
                &upload.upload_id,
                parts.clone(),
                CompleteOptions {
                    checksum: Some((stored, expected.clone())),
                    ..CompleteOptions::default()
                },
            )
            .await
            .unwrap();
        let checksum = info.checksum.clone().unwrap();
        assert_eq!(
            (checksum.algorithm, checksum.kind, &checksum.value),
            (stored, kind, &expected)
        );
        assert_eq!(
            checksum.parts,
            if kind == ChecksumType::Composite { 2 } else { 0 }
        );
        // Parts show their checksums only for composite objects.
        let head = f
            .layer
            .head_object("bucket", "mp", GetOptions::default())
            .await
            .unwrap();
        assert_eq!(head.parts[0].checksum.is_some(), kind == ChecksumType::Composite);
        // Completing again with the same parts answers the same object; with others, no upload.
        let again = f
            .layer
            .complete_multipart_upload("bucket", "mp", &upload.upload_id, parts)
            .await
            .unwrap();
        assert_eq!(
            (again.etag, again.version_id, again.checksum),
            (info.etag, info.version_id, info.checksum)
        );
        let err = f
            .layer
            .complete_multipart_upload("bucket", "mp", &upload.upload_id, vec![listed(&i1, 1, true)])
            .await
            .unwrap_err();
        assert!(matches!(err, ObjectError::NoSuchUpload { .. }), "{err}");
        assert_eq!(
            read_all(&f.layer, "mp", GetOptions::default()).await.unwrap(),
            whole
        );
    }
}
