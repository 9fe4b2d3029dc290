//! Two nodes in one process, each with two drives of one 2+2 erasure set, talking node RPC
//! over 127.0.0.1: a system record written on one node is read on the other, the writer's
//! change notice reaches the other node's subscribers (and not its own), and the namespace
//! lock excludes across nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test helpers fail loudly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_cluster::node::{ClusterNode, OP_SYSTEM_CHANGED};
use strata_cluster::topology::{LocalAddr, Topology};
use strata_object::{BackgroundConfig, ClusterHooks, ObjectLayer};
use strata_rpc::{ClusterSecret, Connector, NodeService, RpcServer, RpcServerHandle};

const N_NODES: usize = 2;
const DRIVES_PER_NODE: usize = 2;

/// A directory removed when dropped (this crate's tests have no tempfile).
struct TempRoot(PathBuf);

impl TempRoot {
    fn new() -> TempRoot {
        let path = std::env::temp_dir().join(format!("strata-cluster-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        TempRoot(path)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Node {
    node: Arc<ClusterNode>,
    layer: Arc<ObjectLayer>,
    handle: RpcServerHandle,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the nodes the way the server does: serve node RPC, settle, open the layer, serve
/// the drives; then waits until every node sees every drive online.
async fn start(root: &Path) -> Vec<Node> {
    let ports: Vec<u16> = (0..N_NODES).map(|_| free_port()).collect();
    let endpoints: Vec<String> = ports
        .iter()
        .enumerate()
        .flat_map(|(n, port)| {
            (0..DRIVES_PER_NODE).map(move |d| format!("http://127.0.0.1:{port}{}/n{n}/d{d}", root.display()))
        })
        .collect();
    let secret = ClusterSecret::derive_from_root_secret("system-changes-test-secret");
    let mut started = Vec::new();
    for port in &ports {
        let local = LocalAddr::parse(&format!("127.0.0.1:{port}")).unwrap();
        let topology = Topology::from_pools(std::slice::from_ref(&endpoints), &local).unwrap();
        let node = ClusterNode::new(Arc::new(topology), secret.clone(), Connector::default()).unwrap();
        let rpc = Arc::new(RpcServer::new(secret.clone(), HashMap::new()));
        rpc.set_node_service(node.clone());
        let handle = Arc::clone(&rpc)
            .bind(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        started.push((node, rpc, handle));
    }
    let specs = futures::future::join_all(started.iter().map(|(node, _, _)| node.settle())).await;
    let mut nodes = Vec::new();
    for ((node, rpc, handle), spec) in started.into_iter().zip(specs) {
        node.release_own_locks().await;
        let hooks: Arc<dyn ClusterHooks> = node.clone();
        let layer = Arc::new(
            ObjectLayer::open_deployment(spec.unwrap(), Some(hooks))
                .await
                .unwrap(),
        );
        node.attach_layer(&layer);
        rpc.set_drives(layer.local_drives());
        // The monitor connects the drives of nodes that were not serving yet.
        layer.start_background(BackgroundConfig {
            monitor_interval: Duration::from_millis(100),
            scanner_cycle_pause: Duration::from_secs(3600),
            ..BackgroundConfig::default()
        });
        nodes.push(Node { node, layer, handle });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &nodes {
        while !node.layer.drive_statuses().iter().all(|d| d.online) {
            assert!(Instant::now() < deadline, "{:?}", node.layer.drive_statuses());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    nodes
}

async fn stop(nodes: Vec<Node>) {
    for node in nodes {
        node.node.release_own_locks().await;
        drop(node.layer);
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_reaches_the_other_nodes_subscribers() {
    let root = TempRoot::new();
    let nodes = start(&root.0).await;
    let (a, b) = (&nodes[0].layer, &nodes[1].layer);
    let mut a_changes = a.system_changes();
    let mut b_changes = b.system_changes();

    {
        let _lock = a.lock_system("iam").await.unwrap();
        a.put_system_record("iam", "users/alice", Bytes::from_static(b"alice"))
            .await
            .unwrap();
        a.announce_system_change("iam").await;
    }
    let notice = tokio::time::timeout(Duration::from_secs(5), b_changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notice, "iam");
    // The other node reads what the notice is about, through its own and the remote drives.
    assert_eq!(
        b.list_system_records("iam").await.unwrap(),
        vec![("users/alice".to_string(), Bytes::from_static(b"alice"))]
    );
    // The writer's own subscribers are not told of its own change.
    assert!(a_changes.try_recv().is_err());

    // And the other way round.
    b.delete_system_record("iam", "users/alice").await.unwrap();
    b.announce_system_change("iam").await;
    let notice = tokio::time::timeout(Duration::from_secs(5), a_changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(notice, "iam");
    assert!(a.list_system_records("iam").await.unwrap().is_empty());
    assert!(b_changes.try_recv().is_err());

    // The node operation itself: the namespace goes to the layer's subscribers.
    nodes[1]
        .node
        .call(OP_SYSTEM_CHANGED, Bytes::from_static(b"tier"))
        .await
        .unwrap();
    assert_eq!(b_changes.recv().await.unwrap(), "tier");
    assert!(
        nodes[1]
            .node
            .call(OP_SYSTEM_CHANGED, Bytes::from_static(b"\xff"))
            .await
            .is_err()
    );
    stop(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_lock_excludes_across_nodes() {
    let root = TempRoot::new();
    let nodes = start(&root.0).await;
    let held = nodes[0].layer.lock_system("iam").await.unwrap();
    let waiter = {
        let layer = Arc::clone(&nodes[1].layer);
        tokio::spawn(async move {
            let _lock = layer.lock_system("iam").await.unwrap();
        })
    };
    // Another namespace is free meanwhile.
    drop(nodes[1].layer.lock_system("kms").await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "both nodes hold the lock");
    drop(held);
    tokio::time::timeout(Duration::from_secs(9), waiter)
        .await
        .unwrap()
        .unwrap();
    stop(nodes).await;
}
