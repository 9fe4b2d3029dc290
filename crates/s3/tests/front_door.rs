//! In-process tests of the front door: an s3s service over a temp-dir object layer, driven with
//! plain HTTP requests (unsigned, through a service without auth; and through the real
//! `build_service` to check that unsigned requests are refused and health routes are open).

// Test helpers outside #[test] functions: clippy.toml's test exemption does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use s3s::service::{S3Service, S3ServiceBuilder};
use strata_object::ObjectLayer;
use strata_s3::{FrontDoorConfig, RootCredentials, StrataS3, build_service};

struct Fixture {
    _dir: tempfile::TempDir,
    layer: Arc<ObjectLayer>,
    root: RootCredentials,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
    for d in &drives {
        std::fs::create_dir_all(d).unwrap();
    }
    let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
    let root =
        RootCredentials::new("AKIATESTROOT00000000", "test-secret-key-for-the-front-door-tests").unwrap();
    Fixture {
        _dir: dir,
        layer,
        root,
    }
}

/// A service without authentication: exercises the handlers only.
fn open_service(f: &Fixture) -> S3Service {
    S3ServiceBuilder::new(StrataS3::new(Arc::clone(&f.layer), "us-east-1")).build()
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(svc: &S3Service, method: Method, uri: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1:9000");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    if !body.is_empty() {
        builder = builder.header("content-length", body.len().to_string());
    }
    let req = builder
        .body(s3s::Body::from(Bytes::copy_from_slice(body)))
        .unwrap();
    let resp = svc.call(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[tokio::test]
async fn bucket_object_round_trip() {
    let f = fixture().await;
    let svc = open_service(&f);

    let r = send(&svc, Method::PUT, "/photos", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // Re-creating one's own bucket: 200 in us-east-1 (AWS's legacy rule), 409 elsewhere.
    let r = send(&svc, Method::PUT, "/photos", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let elsewhere = S3ServiceBuilder::new(StrataS3::new(Arc::clone(&f.layer), "eu-west-1")).build();
    let r = send(&elsewhere, Method::PUT, "/photos", &[], b"").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text().contains("BucketAlreadyOwnedByYou"), "{}", r.text());

    let r = send(
        &svc,
        Method::PUT,
        "/photos/dir/a.txt",
        &[("content-type", "text/plain"), ("x-amz-meta-color", "blue")],
        b"hello world",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let etag = r.header("etag").unwrap().to_owned();
    assert_eq!(etag, "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"");

    let r = send(&svc, Method::GET, "/photos/dir/a.txt", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello world");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-amz-meta-color"), Some("blue"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let r = send(
        &svc,
        Method::GET,
        "/photos/dir/a.txt",
        &[("range", "bytes=6-")],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], b"world");
    assert_eq!(r.header("content-range"), Some("bytes 6-10/11"));

    let r = send(
        &svc,
        Method::GET,
        "/photos/dir/a.txt",
        &[("if-none-match", &etag)],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
    let r = send(
        &svc,
        Method::GET,
        "/photos/dir/a.txt",
        &[("if-match", "\"nope\"")],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

    let r = send(&svc, Method::HEAD, "/photos/dir/a.txt", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-length"), Some("11"));

    let r = send(&svc, Method::GET, "/photos?list-type=2&delimiter=/", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("<Prefix>dir/</Prefix>"), "{}", r.text());

    let r = send(&svc, Method::GET, "/photos?list-type=2&prefix=dir/", &[], b"").await;
    assert!(r.text().contains("<Key>dir/a.txt</Key>"), "{}", r.text());
    assert!(r.text().contains("<KeyCount>1</KeyCount>"), "{}", r.text());

    // Copy onto itself without REPLACE is refused.
    let r = send(
        &svc,
        Method::PUT,
        "/photos/dir/a.txt",
        &[("x-amz-copy-source", "/photos/dir/a.txt")],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("copy an object to itself"), "{}", r.text());

    let r = send(
        &svc,
        Method::PUT,
        "/photos/b.txt",
        &[("x-amz-copy-source", "/photos/dir/a.txt")],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("5eb63bbbe01eeed093cb22bb8f5acdc3"),
        "{}",
        r.text()
    );

    let r = send(&svc, Method::DELETE, "/photos", &[], b"").await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let r = send(&svc, Method::DELETE, "/photos/dir/a.txt", &[], b"").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(&svc, Method::GET, "/photos/dir/a.txt", &[], b"").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("NoSuchKey"));

    let r = send(&svc, Method::GET, "/nobucket/x", &[], b"").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("NoSuchBucket"), "{}", r.text());
}

#[tokio::test]
async fn multipart_round_trip() {
    let f = fixture().await;
    let svc = open_service(&f);
    assert_eq!(
        send(&svc, Method::PUT, "/mpbucket", &[], b"").await.status,
        StatusCode::OK
    );

    let r = send(&svc, Method::POST, "/mpbucket/big?uploads", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let text = r.text();
    let upload_id = text
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_owned();

    let part1 = vec![b'a'; 5 * 1024 * 1024];
    let r = send(
        &svc,
        Method::PUT,
        &format!("/mpbucket/big?partNumber=1&uploadId={upload_id}"),
        &[],
        &part1,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let etag1 = r.header("etag").unwrap().to_owned();
    let r = send(
        &svc,
        Method::PUT,
        &format!("/mpbucket/big?partNumber=2&uploadId={upload_id}"),
        &[],
        b"tail",
    )
    .await;
    let etag2 = r.header("etag").unwrap().to_owned();

    let r = send(
        &svc,
        Method::GET,
        &format!("/mpbucket/big?uploadId={upload_id}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("<PartNumber>2</PartNumber>"), "{}", r.text());

    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part>\
         <Part><PartNumber>2</PartNumber><ETag>{etag2}</ETag></Part></CompleteMultipartUpload>"
    );
    let r = send(
        &svc,
        Method::POST,
        &format!("/mpbucket/big?uploadId={upload_id}"),
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("-2&quot;") || r.text().contains("-2\""),
        "{}",
        r.text()
    );

    let r = send(&svc, Method::HEAD, "/mpbucket/big?partNumber=2", &[], b"").await;
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(r.header("x-amz-mp-parts-count"), Some("2"));
    let r = send(&svc, Method::GET, "/mpbucket/big?partNumber=2", &[], b"").await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.body[..], b"tail");
}

#[tokio::test]
async fn versioning_and_delete_objects() {
    let f = fixture().await;
    let svc = open_service(&f);
    assert_eq!(
        send(&svc, Method::PUT, "/ver", &[], b"").await.status,
        StatusCode::OK
    );
    let r = send(&svc, Method::GET, "/ver?versioning", &[], b"").await;
    assert!(!r.text().contains("<Status>"), "{}", r.text());
    let cfg = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let r = send(&svc, Method::PUT, "/ver?versioning", &[], cfg).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = send(&svc, Method::GET, "/ver?versioning", &[], b"").await;
    assert!(r.text().contains("<Status>Enabled</Status>"), "{}", r.text());

    send(&svc, Method::PUT, "/ver/k", &[], b"one").await;
    send(&svc, Method::PUT, "/ver/k", &[], b"two").await;
    let r = send(&svc, Method::DELETE, "/ver/k", &[], b"").await;
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));
    let r = send(&svc, Method::GET, "/ver/k", &[], b"").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.header("x-amz-delete-marker"), Some("true"));

    let r = send(&svc, Method::GET, "/ver?versions", &[], b"").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert_eq!(text.matches("<Version>").count(), 2, "{text}");
    assert_eq!(text.matches("<DeleteMarker>").count(), 1, "{text}");

    let del = b"<Delete><Object><Key>k</Key></Object><Object><Key>missing</Key></Object></Delete>";
    let md5 = {
        use md5::Digest;
        base64_of(&md5::Md5::digest(del))
    };
    let r = send(&svc, Method::POST, "/ver?delete", &[("content-md5", &md5)], del).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text().matches("<Deleted>").count(), 2, "{}", r.text());
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn real_service_requires_signature_but_not_for_health() {
    let f = fixture().await;
    let config = FrontDoorConfig {
        region: "us-east-1".into(),
        domains: vec![],
        root: f.root.clone(),
        iam: strata_iam::Iam::root_only(f.root.access_key(), f.root.secret_key())
            .await
            .unwrap(),
        identity_providers: Vec::new(),
        ldap: None,
        encryption: Default::default(),
        key_rotation: None,
        lifecycle: None,
        tiers: None,
    };
    let svc = build_service(Arc::clone(&f.layer), &config).unwrap();
    let r = send(&svc, Method::GET, "/", &[], b"").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    for path in ["/health/live", "/health/ready", "/healthz"] {
        let r = send(&svc, Method::GET, path, &[], b"").await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    }
}
