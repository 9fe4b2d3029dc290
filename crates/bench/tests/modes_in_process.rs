//! Every mode of the load generator, briefly, against the real front door (SigV4 checked)
//! served in-process over loopback HTTP: each measures successful operations without errors
//! and leaves nothing behind.

// Test helpers outside #[test] functions: clippy.toml's test exemption does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use strata_bench::{BenchArgs, run_report};
use strata_client::{Client, ClientConfig};
use strata_object::ObjectLayer;
use strata_s3::{FrontDoorConfig, RootCredentials, build_service};

const ACCESS_KEY: &str = "AKIATESTBENCH0000000";
const SECRET_KEY: &str = "test-secret-key-for-the-bench-tests-00001";

async fn serve() -> (tempfile::TempDir, String, tokio::task::JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    let drives: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("disk{i}"))).collect();
    for d in &drives {
        std::fs::create_dir_all(d).unwrap();
    }
    let layer = Arc::new(ObjectLayer::open_local(&drives).await.unwrap());
    let root = RootCredentials::new(ACCESS_KEY, SECRET_KEY).unwrap();
    let service = build_service(
        layer,
        &FrontDoorConfig {
            region: "us-east-1".into(),
            domains: vec![],
            root,
            iam: strata_iam::Iam::root_only(ACCESS_KEY, SECRET_KEY).await.unwrap(),
            identity_providers: Vec::new(),
            ldap: None,
            encryption: Default::default(),
            key_rotation: None,
            lifecycle: None,
            tiers: None,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = service.clone();
            tokio::spawn(async move {
                let hyper_service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let svc = svc.clone();
                    async move { svc.call(req.map(s3s::Body::from)).await }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), hyper_service)
                    .await;
            });
        }
    });
    (dir, endpoint, task)
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_measures_without_errors_and_cleans_up() {
    let (_dir, endpoint, server) = serve().await;
    let client = Client::new(ClientConfig::new(
        endpoint.parse().unwrap(),
        ACCESS_KEY,
        SECRET_KEY,
    ))
    .unwrap();
    for (mode, extra) in [
        ("put", &["--objects", "40", "--concurrency", "4"][..]),
        ("get", &["--objects", "40", "--concurrency", "4"]),
        ("stat", &["--objects", "40", "--concurrency", "4"]),
        ("delete", &["--objects", "4000", "--concurrency", "4"]),
        ("mixed", &["--objects", "40", "--concurrency", "4"]),
        ("list", &["--objects", "1500", "--concurrency", "4"]),
        ("multipart", &["--parts", "2", "--concurrency", "2"]),
    ] {
        let bucket = format!("bench-test-{mode}");
        let mut argv = vec![
            "bench",
            mode,
            "--endpoint",
            &endpoint,
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            "--bucket",
            &bucket,
            "--size",
            "4KiB",
            "--duration",
            // A multipart upload of 10 MiB takes most of a second in a debug build on a busy
            // machine: a 700 ms window once measured none.
            if mode == "multipart" { "2s" } else { "700ms" },
            "--warmup",
            "200ms",
        ];
        argv.extend_from_slice(extra);
        let args = Cli::try_parse_from(argv).unwrap().bench;
        let report = run_report(args).await.unwrap();
        assert!(report.total.ops > 0, "{mode}: {}", report.to_text());
        assert_eq!(report.total.errors, 0, "{mode}: {}", report.to_text());
        assert!(
            report.window_s > 0.0 && report.window_s < 5.0,
            "{mode}: {}",
            report.to_text()
        );
        assert!(report.total.latency_ms.p50 > 0.0, "{mode}");
        match mode {
            "list" => assert!(
                report.total.keys >= 1500,
                "a full walk lists every key: {}",
                report.to_text()
            ),
            "mixed" => assert!(report.by_op.len() >= 3, "{}", report.to_text()),
            "multipart" => assert_eq!(report.object_size_bytes, 10 << 20),
            "get" => assert_eq!(report.total.bytes, report.total.ops * 4096),
            _ => {}
        }
        // Cleanup deleted the run's objects and the bucket it created.
        assert!(
            client.create_bucket(&bucket).await.unwrap(),
            "{mode}: bucket should be gone"
        );
        assert!(
            client
                .list_objects_v2(&bucket, "", None, 10)
                .await
                .unwrap()
                .keys
                .is_empty()
        );
        client.delete_bucket(&bucket).await.unwrap();
    }
    server.abort();
}
