//! RPC over TLS on 127.0.0.1: a round trip through a `RemoteDrive` to an `RpcServer` whose
//! self-signed certificate the client trusts; clients that do not trust it (or speak the
//! wrong protocol) get no answer, and a peer whose certificate changes goes offline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use strata_drive::{DataDirId, Drive, DriveError, FormatRecord, LocalDrive};
use strata_rpc::{
    ALPN_H2, Acceptor, ClusterSecret, Connector, Peer, RemoteDrive, RpcClientConfig, RpcError, RpcServer,
    RpcServerHandle, tls_client_config, tls_server_config,
};
use tokio::time::Instant;

/// A self-signed certificate for 127.0.0.1 and its key.
struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn identity() -> Identity {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    Identity {
        cert: generated.cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()),
    }
}

fn acceptor(id: &Identity) -> Acceptor {
    let key = PrivateKeyDer::Pkcs8(id.key.clone_key());
    Acceptor::Tls(tls_server_config(vec![id.cert.clone()], key, &[ALPN_H2]).unwrap())
}

fn connector(trusted: &Identity) -> Connector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.cert.clone()).unwrap();
    Connector::Tls(tls_client_config(roots).unwrap())
}

fn config(connector: Connector) -> RpcClientConfig {
    RpcClientConfig {
        call_timeout: Duration::from_millis(2000),
        connect_timeout: Duration::from_millis(1000),
        reconnect_backoff: Duration::from_millis(50),
        connector,
    }
}

fn secret() -> ClusterSecret {
    ClusterSecret::derive_from_root_secret("tls-test-root-secret")
}

struct Node {
    _dir: tempfile::TempDir,
    drive_id: String,
    drives: HashMap<String, Arc<dyn Drive>>,
    handle: RpcServerHandle,
}

impl Node {
    async fn start(acceptor: Acceptor) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let format = FormatRecord::new_deployment(uuid::Uuid::new_v4(), 0, 0, 0, 2, 2);
        let local = LocalDrive::open(dir.path().to_path_buf(), &format).await.unwrap();
        let drive_id = dir.path().to_string_lossy().into_owned();
        let drives = HashMap::from([(drive_id.clone(), local as Arc<dyn Drive>)]);
        let server = Arc::new(RpcServer::new(secret(), drives.clone()).with_acceptor(acceptor));
        let handle = server.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        Node {
            _dir: dir,
            drive_id,
            drives,
            handle,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    fn peer(&self, scheme: &str, connector: Connector) -> Arc<Peer> {
        Peer::new(
            &format!("{scheme}://{}", self.addr()),
            secret(),
            config(connector),
        )
        .unwrap()
    }
}

fn pattern(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_calls_round_trip_over_tls() {
    let id = identity();
    let node = Node::start(acceptor(&id)).await;
    let peer = node.peer("https", connector(&id));
    assert!(peer.url().starts_with("https://127.0.0.1:"));
    let remote = RemoteDrive::connect(peer, &node.drive_id).await.unwrap();
    let local = &node.drives[&node.drive_id];
    assert_eq!(remote.format(), local.format());

    // A streamed shard write and read (several chunks each way) over the TLS connection.
    let data = pattern(3 * 1024 * 1024 + 17);
    let dir = DataDirId::new_random();
    let mut writer = remote.shard_create(dir, 1).await.unwrap();
    for piece in data.chunks(700 * 1024) {
        writer.write(data.slice_ref(piece)).await.unwrap();
    }
    writer.commit().await.unwrap();
    assert_eq!(local.shard_size(dir, 1).await.unwrap(), data.len() as u64);
    let read = remote.shard_read(dir, 1, 0, data.len() as u64).await.unwrap();
    assert_eq!(read, data);
    let info = remote.info().await.unwrap();
    assert!(info.total_bytes > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_or_plain_peer_gets_no_answer() {
    let id = identity();
    let node = Node::start(acceptor(&id)).await;

    // A client trusting another certificate: the handshake fails, setup is an error and
    // calls are offline.
    let stranger = identity();
    let untrusting = node.peer("https", connector(&stranger));
    match RemoteDrive::connect(Arc::clone(&untrusting), &node.drive_id).await {
        Err(RpcError::Drive(DriveError::Offline { endpoint })) => {
            assert!(endpoint.starts_with("https://"), "{endpoint}")
        }
        other => panic!("expected an offline drive, got {other:?}"),
    }
    match untrusting
        .node_call("ping", Vec::new(), Duration::from_secs(2))
        .await
    {
        Err(RpcError::Unreachable { reason, .. }) => {
            assert!(
                reason.contains("connecting") || reason.contains("moments ago"),
                "{reason}"
            )
        }
        other => panic!("expected an unreachable peer, got {other:?}"),
    }

    // Plain h2c to the TLS listener, and TLS to a plain listener: no answer either way.
    let plain = node.peer("http", Connector::Tcp);
    assert!(matches!(
        RemoteDrive::connect(plain, &node.drive_id).await,
        Err(RpcError::Drive(DriveError::Offline { .. }))
    ));
    let plain_node = Node::start(Acceptor::Tcp).await;
    let tls_to_plain = plain_node.peer("https", connector(&id));
    assert!(matches!(
        RemoteDrive::connect(tls_to_plain, &plain_node.drive_id).await,
        Err(RpcError::Drive(DriveError::Offline { .. }))
    ));

    // The listener survived the failed handshakes: a trusting client still gets through.
    let trusting = node.peer("https", connector(&id));
    RemoteDrive::connect(trusting, &node.drive_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_certificate_changes_goes_offline() {
    let id = identity();
    let node = Node::start(acceptor(&id)).await;
    let peer = node.peer("https", connector(&id));
    let remote = RemoteDrive::connect(peer, &node.drive_id).await.unwrap();
    remote.info().await.unwrap();

    // The same node comes back on the same address with a certificate the client does not
    // trust: every drive call is offline once the old connection is gone.
    let addr = node.addr();
    node.handle.shutdown().await;
    let impostor = identity();
    let server = Arc::new(RpcServer::new(secret(), node.drives.clone()).with_acceptor(acceptor(&impostor)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let _handle = loop {
        match Arc::clone(&server).bind(addr).await {
            Ok(handle) => break handle,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(error) => panic!("rebinding {addr}: {error}"),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match remote.info().await {
            Ok(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Ok(_) => panic!("calls still succeed against an untrusted certificate"),
            Err(DriveError::Offline { .. }) => break,
            Err(other) => panic!("expected Offline, got {other:?}"),
        }
    }
    assert!(matches!(
        remote.meta_get(strata_drive::Table::Buckets, b"x").await,
        Err(DriveError::Offline { .. })
    ));
}
