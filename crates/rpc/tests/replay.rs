//! Authentication against an on-path attacker, on 127.0.0.1: requests captured as a real
//! client sends them and replayed, sequence numbers outside the anti-replay window, requests
//! arriving out of order, shard streams changed in flight (both directions), and refusals that
//! say nothing about the server (issue 16, item 7).
//!
//! The attacker is an in-process HTTP/2 proxy in front of the `RpcServer`: the client talks to
//! the proxy, which records requests (headers and body) or changes stream bytes and trailers
//! before handing them to `RpcServer::handle`; recorded requests are replayed on a connection
//! of their own to the server's own listener.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use strata_drive::{DataDirId, Drive, DriveError, FormatRecord, LocalDrive, MetaOp, Table};
use strata_rpc::{
    ClusterSecret, Peer, REPLAY_WINDOW_SEQS, RemoteDrive, RpcClientConfig, RpcServer, RpcServerHandle,
    SignedFields,
};

const ROOT_SECRET: &str = "test-root-secret";

fn secret() -> ClusterSecret {
    ClusterSecret::derive_from_root_secret(ROOT_SECRET)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the proxy does to the requests (and responses) passing through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forward untouched.
    Pass,
    /// Forward, and record unary requests (headers and body) for a replay.
    Capture,
    /// Flip a bit in every data frame of shard write bodies.
    FlipWriteBytes,
    /// Replace the stream MAC of shard write commit trailers with another valid-looking one.
    WrongWriteMac,
    /// Remove the stream MAC from shard write commit trailers.
    NoWriteMac,
    /// Flip a bit in every data frame of shard read responses.
    FlipReadBytes,
}

/// A request as the client sent it.
#[derive(Clone, Debug)]
struct Captured {
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

struct Harness {
    _dir: tempfile::TempDir,
    local: Arc<LocalDrive>,
    drive_id: String,
    server: Arc<RpcServer>,
    /// The server's own listener (replays go here).
    handle: RpcServerHandle,
    proxy_addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    captured: Arc<Mutex<Vec<Captured>>>,
    _proxy: tokio::task::JoinHandle<()>,
}

fn flip(frame: Frame<Bytes>) -> Frame<Bytes> {
    match frame.into_data() {
        Ok(data) if !data.is_empty() => {
            let mut bytes = data.to_vec();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            Frame::data(Bytes::from(bytes))
        }
        Ok(data) => Frame::data(data),
        Err(frame) => frame,
    }
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
        let local = LocalDrive::open(dir.path().to_path_buf(), &format).await.unwrap();
        let drive_id = dir.path().to_string_lossy().into_owned();
        let drives = HashMap::from([(drive_id.clone(), local.clone() as Arc<dyn Drive>)]);
        let server = Arc::new(RpcServer::new(secret(), drives));
        let handle = Arc::clone(&server)
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let captured = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let proxy = tokio::spawn({
            let (server, mode, captured) = (Arc::clone(&server), Arc::clone(&mode), Arc::clone(&captured));
            async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (server, mode, captured) =
                        (Arc::clone(&server), Arc::clone(&mode), Arc::clone(&captured));
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (server, mode, captured) =
                            (Arc::clone(&server), Arc::clone(&mode), Arc::clone(&captured));
                        async move {
                            let mode = *mode.lock().unwrap();
                            Ok::<_, std::convert::Infallible>(proxy(&server, mode, &captured, req).await)
                        }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Harness {
            _dir: dir,
            local,
            drive_id,
            server,
            handle,
            proxy_addr,
            mode,
            captured,
            _proxy: proxy,
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// A client whose calls go through the proxy.
    async fn remote(&self) -> Arc<RemoteDrive> {
        let config = RpcClientConfig {
            call_timeout: Duration::from_secs(5),
            ..RpcClientConfig::default()
        };
        let peer = Peer::new(&format!("http://{}", self.proxy_addr), secret(), config).unwrap();
        RemoteDrive::connect(peer, &self.drive_id).await.unwrap()
    }

    fn drive_path(&self, op: &str) -> String {
        format!(
            "/strata/rpc/v1/drive/{}/{op}",
            percent_encoding::utf8_percent_encode(&self.drive_id, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

async fn proxy(
    server: &RpcServer,
    mode: Mode,
    captured: &Mutex<Vec<Captured>>,
    req: Request<Incoming>,
) -> http::Response<ProxyBody> {
    let path = req.uri().path().to_string();
    let is_write = path.ends_with("/shard_write");
    let is_read = path.ends_with("/shard_read");
    let (parts, body) = req.into_parts();
    let response = match mode {
        Mode::Capture if !is_write => {
            let bytes = body.collect().await.unwrap().to_bytes();
            captured.lock().unwrap().push(Captured {
                path_and_query: parts.uri.path_and_query().unwrap().to_string(),
                headers: parts.headers.clone(),
                body: bytes.clone(),
            });
            server.handle(Request::from_parts(parts, Full::new(bytes))).await
        }
        Mode::FlipWriteBytes if is_write => {
            server
                .handle(Request::from_parts(parts, body.map_frame(flip)))
                .await
        }
        Mode::WrongWriteMac | Mode::NoWriteMac if is_write => {
            let body = body.map_frame(move |frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    match mode {
                        Mode::NoWriteMac => drop(trailers.remove("x-strata-stream-mac")),
                        _ => drop(trailers.insert("x-strata-stream-mac", "ab".repeat(32).parse().unwrap())),
                    }
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            });
            server.handle(Request::from_parts(parts, body)).await
        }
        _ => server.handle(Request::from_parts(parts, body)).await,
    };
    let response = response.map(|b| b.map_err(std::io::Error::other).boxed());
    if mode == Mode::FlipReadBytes && is_read {
        response.map(|b| b.map_frame(flip).boxed())
    } else {
        response
    }
}

/// A hand-made client on its own connection to the server: its own session, signing what the
/// test tells it to.
struct RawClient {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    session: String,
    epoch: String,
}

impl RawClient {
    async fn connect(addr: SocketAddr, session: &str) -> RawClient {
        let io = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut client = RawClient {
            sender,
            addr,
            session: session.to_string(),
            epoch: "-".to_string(),
        };
        let (status, epoch) = client.send("/strata/rpc/v1/hello", b"", 1, now_secs()).await;
        assert_eq!(status, StatusCode::OK);
        client.epoch = String::from_utf8(epoch.to_vec()).unwrap();
        client
    }

    fn request(&self, path: &str, body: &'static [u8], seq: u64, date_secs: u64) -> Request<Full<Bytes>> {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
        let signature = strata_rpc::sign_request(
            &secret(),
            &SignedFields {
                method: "POST",
                path_and_query: path,
                date_secs,
                epoch: &self.epoch,
                session: &self.session,
                seq,
                content_sha256: &hash,
            },
        );
        Request::post(format!("http://{}{path}", self.addr))
            .header("x-strata-date", date_secs)
            .header("x-strata-epoch", &self.epoch)
            .header("x-strata-session", &self.session)
            .header("x-strata-seq", seq)
            .header("x-strata-content-sha256", &hash)
            .header("x-strata-signature", signature)
            .header("x-strata-timeout-ms", 5000)
            .body(Full::new(Bytes::from_static(body)))
            .unwrap()
    }

    async fn send(
        &mut self,
        path: &str,
        body: &'static [u8],
        seq: u64,
        date_secs: u64,
    ) -> (StatusCode, Bytes) {
        let request = self.request(path, body, seq, date_secs);
        send(&mut self.sender, request).await
    }

    async fn replay(&mut self, captured: &Captured) -> (StatusCode, Bytes) {
        let mut request = Request::post(format!("http://{}{}", self.addr, captured.path_and_query))
            .body(Full::new(captured.body.clone()))
            .unwrap();
        *request.headers_mut() = captured.headers.clone();
        send(&mut self.sender, request).await
    }
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes())
}

/// MessagePack of an empty map: the body of parameterless calls.
const EMPTY_MAP: &[u8] = b"\x80";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_request_replayed_is_refused() {
    let harness = Harness::start().await;
    harness.set_mode(Mode::Capture);
    let remote = harness.remote().await;
    remote
        .meta_commit(vec![MetaOp::put(
            Table::Objects,
            b"k".to_vec(),
            b"first".to_vec(),
        )])
        .await
        .unwrap();
    harness.set_mode(Mode::Pass);
    let captured = harness.captured.lock().unwrap().clone();
    // The hello, the format call of `connect`, and the commit: each succeeded once.
    let paths: Vec<_> = captured.iter().map(|c| c.path_and_query.as_str()).collect();
    assert!(paths[0].ends_with("/hello"), "{paths:?}");
    assert!(paths.last().unwrap().ends_with("/meta_commit"), "{paths:?}");
    // The value changes after the commit; replaying the commit must not bring it back.
    harness
        .local
        .meta_commit(vec![MetaOp::put(
            Table::Objects,
            b"k".to_vec(),
            b"second".to_vec(),
        )])
        .await
        .unwrap();
    let mut attacker = RawClient::connect(harness.handle.local_addr(), &"5".repeat(32)).await;
    for request in &captured {
        let (status, body) = attacker.replay(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}", request.path_and_query);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("request not authenticated"), "{text}");
    }
    assert_eq!(
        harness
            .local
            .meta_get(Table::Objects, b"k")
            .await
            .unwrap()
            .unwrap(),
        Bytes::from_static(b"second")
    );
    assert_eq!(harness.server.replays_refused(), captured.len() as u64);
    // The real client goes on working (its session is not harmed by the replays).
    assert_eq!(
        remote.meta_get(Table::Objects, b"k").await.unwrap().unwrap(),
        Bytes::from_static(b"second")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_numbers_older_than_the_window_are_refused() {
    let harness = Harness::start().await;
    let path = harness.drive_path("info");
    let mut client = RawClient::connect(harness.handle.local_addr(), &"a".repeat(32)).await;
    let now = now_secs();
    let top = 2 + REPLAY_WINDOW_SEQS + 10;
    assert_eq!(client.send(&path, EMPTY_MAP, top, now).await.0, StatusCode::OK);
    // 2 was never used, but it is older than the window now: it may have been.
    assert_eq!(
        client.send(&path, EMPTY_MAP, 2, now).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client
            .send(&path, EMPTY_MAP, top - REPLAY_WINDOW_SEQS, now)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Just inside the window, never used: accepted once.
    let inside = top - REPLAY_WINDOW_SEQS + 1;
    assert_eq!(client.send(&path, EMPTY_MAP, inside, now).await.0, StatusCode::OK);
    assert_eq!(
        client.send(&path, EMPTY_MAP, inside, now).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        client.send(&path, EMPTY_MAP, top, now).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(harness.server.replays_refused(), 4);
    // Another session is independent.
    let mut other = RawClient::connect(harness.handle.local_addr(), &"b".repeat(32)).await;
    assert_eq!(other.send(&path, EMPTY_MAP, 2, now).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_out_of_order_within_the_window_all_succeed() {
    let harness = Harness::start().await;
    let path = harness.drive_path("info");
    let client = RawClient::connect(harness.handle.local_addr(), &"c".repeat(32)).await;
    let now = now_secs();
    // Signed in order 2..=401, sent concurrently in a scrambled order (reversed halves
    // interleaved), spanning a large part of the window.
    let mut seqs: Vec<u64> = (2..=401).collect();
    seqs.reverse();
    let (a, b) = seqs.split_at(200);
    let mut order: Vec<u64> = a.iter().zip(b).flat_map(|(x, y)| [*y, *x]).collect();
    order.push(REPLAY_WINDOW_SEQS - 1000);
    let requests: Vec<_> = order
        .iter()
        .map(|&seq| client.request(&path, EMPTY_MAP, seq, now))
        .collect();
    let answers = futures::future::join_all(requests.into_iter().map(|request| {
        let mut sender = client.sender.clone();
        async move { send(&mut sender, request).await.0 }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");
    // And through the real client: many concurrent calls, batched or not, all answered.
    let remote = harness.remote().await;
    let calls = futures::future::join_all((0..200u32).map(|i| {
        let remote = Arc::clone(&remote);
        async move {
            match i % 2 {
                0 => remote.info().await.map(drop),
                _ => remote.meta_get(Table::Objects, &i.to_le_bytes()).await.map(drop),
            }
        }
    }))
    .await;
    assert!(calls.iter().all(Result::is_ok), "{calls:?}");
    assert_eq!(harness.server.replays_refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_writes_changed_in_flight_commit_nothing() {
    let harness = Harness::start().await;
    let remote = harness.remote().await;
    let data = Bytes::from((0..700_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    for (part, mode) in [Mode::FlipWriteBytes, Mode::WrongWriteMac, Mode::NoWriteMac]
        .into_iter()
        .enumerate()
    {
        harness.set_mode(mode);
        let dir = DataDirId::new_random();
        let mut writer = remote.shard_create(dir, part as u32).await.unwrap();
        let written = writer.write(data.clone()).await;
        let outcome = match written {
            Ok(()) => writer.commit().await,
            Err(error) => Err(error),
        };
        let error = outcome.expect_err("a tampered shard stream was committed");
        assert!(
            matches!(&error, DriveError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied),
            "{mode:?}: {error:?}"
        );
        harness.set_mode(Mode::Pass);
        assert!(
            matches!(
                harness.local.shard_size(dir, part as u32).await,
                Err(DriveError::ShardNotFound)
            ),
            "{mode:?}"
        );
        assert!(matches!(
            remote.shard_size(dir, part as u32).await,
            Err(DriveError::ShardNotFound)
        ));
    }
    // Untouched, the same write commits.
    let dir = DataDirId::new_random();
    let mut writer = remote.shard_create(dir, 0).await.unwrap();
    writer.write(data.clone()).await.unwrap();
    writer.commit().await.unwrap();
    assert_eq!(harness.local.shard_size(dir, 0).await.unwrap(), data.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_reads_changed_in_flight_are_refused() {
    let harness = Harness::start().await;
    let remote = harness.remote().await;
    let dir = DataDirId::new_random();
    // One shard read in one chunk (MAC in a header), one streamed (MAC in the trailer).
    let small = Bytes::from_static(b"a small shard");
    let large = Bytes::from((0..900_000u32).map(|i| (i % 241) as u8).collect::<Vec<_>>());
    for (part, data) in [(0u32, &small), (1, &large)] {
        let mut writer = harness.local.shard_create(dir, part).await.unwrap();
        writer.write(data.clone()).await.unwrap();
        writer.commit().await.unwrap();
    }
    for (part, data) in [(0u32, &small), (1, &large)] {
        harness.set_mode(Mode::FlipReadBytes);
        let tampered = remote.shard_read(dir, part, 0, data.len() as u64).await;
        assert!(
            matches!(tampered, Err(DriveError::Offline { .. })),
            "part {part}: {tampered:?}"
        );
        harness.set_mode(Mode::Pass);
        assert_eq!(
            remote.shard_read(dir, part, 0, data.len() as u64).await.unwrap(),
            *data
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_future_requests_are_refused_without_the_servers_clock() {
    let harness = Harness::start().await;
    let path = harness.drive_path("info");
    let mut client = RawClient::connect(harness.handle.local_addr(), &"d".repeat(32)).await;
    let now = now_secs();
    assert_eq!(client.send(&path, EMPTY_MAP, 2, now).await.0, StatusCode::OK);
    for (seq, date) in [(3, now - 400), (4, now + 400)] {
        let (status, body) = client.send(&path, EMPTY_MAP, seq, date).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("request not authenticated"), "{text}");
        // No number at all, let alone the server's time.
        assert!(!text.bytes().any(|b| b.is_ascii_digit()), "{text}");
    }
    assert_eq!(
        client.send(&path, EMPTY_MAP, 5, now - 200).await.0,
        StatusCode::OK
    );
    // A wrong signature and an old-scheme (V1) request get the very same answer.
    let mut bad = client.request(&path, EMPTY_MAP, 6, now);
    bad.headers_mut()
        .insert("x-strata-signature", "00".repeat(32).parse().unwrap());
    let (status, bad_body) = send(&mut client.sender, bad).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut v1 = client.request(&path, EMPTY_MAP, 7, now);
    for name in ["x-strata-epoch", "x-strata-session", "x-strata-seq"] {
        v1.headers_mut().remove(name);
    }
    let (status, v1_body) = send(&mut client.sender, v1).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, stale_body) = client.send(&path, EMPTY_MAP, 8, now - 400).await;
    assert_eq!(bad_body, stale_body);
    assert_eq!(v1_body, stale_body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_signed_for_another_server_run_are_refused() {
    let harness = Harness::start().await;
    let path = harness.drive_path("info");
    let mut client = RawClient::connect(harness.handle.local_addr(), &"e".repeat(32)).await;
    let now = now_secs();
    assert_eq!(client.send(&path, EMPTY_MAP, 2, now).await.0, StatusCode::OK);
    // Same server, another run (epoch), a fresh session: signed correctly, still refused.
    client.epoch = "0".repeat(32);
    client.session = "f".repeat(32);
    assert_eq!(
        client.send(&path, EMPTY_MAP, 2, now).await.0,
        StatusCode::FORBIDDEN
    );
    // The hello epoch is for the hello only.
    client.epoch = "-".to_string();
    assert_eq!(
        client.send(&path, EMPTY_MAP, 3, now).await.0,
        StatusCode::FORBIDDEN
    );
}
