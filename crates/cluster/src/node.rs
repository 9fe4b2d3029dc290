//! This node's part in a multi-node deployment: the node-level RPC service it answers
//! ([`ClusterNode`] as a [`NodeService`]: drive-format discovery, lock requests, bucket- and
//! system-record change notices), the start-up agreement on the deployment
//! ([`ClusterNode::settle`]), and the services the object layer calls ([`ClusterNode`] as
//! [`ClusterHooks`]: distributed locks, notices to peers, one-node background jobs).
//!
//! **Invariant:** a node opens its drives only once the deployment is settled: every node that
//! answered computed the same topology fingerprint (a mismatch stops the start with an error
//! naming the peer), and either a formatted drive names the one deployment id, or every drive
//! of the deployment answered unformatted (a fresh deployment, whose id is derived from the
//! fingerprint so that every node picks the same one without a round of voting). A node never
//! formats a drive of another node.
//!
//! **Invariant:** a local drive found unformatted in an existing deployment is opened as
//! *healing* (its silence proves nothing until healed), unless it is part of the fresh
//! formatting this or a peer node did for the deployment's very first start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strata_drive::{Drive, DriveError, DriveResult, LocalDrive};
use strata_object::{
    ClusterHooks, DeploymentSpec, DriveConnector, DriveLocation, DriveSpec, HeldLock, ObjectError,
    ObjectLayer, ObjectResult, PoolSpec,
};
use strata_rpc::{ClusterSecret, NodeService, Peer, RemoteDrive, RpcClientConfig, RpcError};

use crate::ClusterError;
use crate::lock::{
    DistLockGuard, DistLocker, LockConfig, LockRequest, LockResponse, LockServer, LockTransport,
    decode_request, decode_response, encode_request, encode_response,
};
use crate::topology::Topology;

/// Node operation: this node's topology fingerprint and its drives' formats.
pub const OP_STATUS: &str = "status";
/// Node operation: one distributed-lock request.
pub const OP_LOCK: &str = "lock";
/// Node operation: a bucket changed; reload it.
pub const OP_BUCKET_CHANGED: &str = "bucket-changed";
/// Node operation: the pool states changed; reload them.
pub const OP_POOLS_CHANGED: &str = "pools-changed";
/// Node operation: system records of a namespace (the body, UTF-8) changed; tell the
/// layer's subscribers.
pub const OP_SYSTEM_CHANGED: &str = "system-changed";
/// Node operation: does this node owe the deployment a heal? One byte, 1 or 0.
pub const OP_HEAL_OWED: &str = "heal-owed";

/// Deadline of one status or notice call to a peer.
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Deadline of one lock request to a peer.
const LOCK_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an object or bucket operation waits for its lock before answering 503.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How long a node tries for a background job's lock before leaving the job to another node.
const JOB_LOCK_WAIT: Duration = Duration::from_millis(500);
/// First pause between start-up polls of the peers; doubles up to [`SETTLE_RETRY_MAX`].
const SETTLE_RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest pause between start-up polls of the peers.
const SETTLE_RETRY_MAX: Duration = Duration::from_secs(5);
/// Deadline of each metadata call and of each step of a shard stream between nodes.
const RPC_CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a connection attempt to a peer may take.
const RPC_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What a node reports about one of its drives at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriveState {
    /// Formatted for this deployment id.
    Formatted {
        /// The id on the drive.
        deployment_id: uuid::Uuid,
    },
    /// Empty: never formatted, or wiped.
    Unformatted,
    /// The drive could not be read.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// A node's answer to [`OP_STATUS`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's [`Topology::fingerprint`].
    pub fingerprint: String,
    /// Its local drives, by path.
    pub drives: Vec<(String, DriveState)>,
    /// The deployment id this node formatted fresh drives for at the deployment's first start.
    pub fresh_deployment: Option<uuid::Uuid>,
    /// Pools this node found all empty in the existing deployment and formatted as added.
    #[serde(default)]
    pub added_pools: Vec<usize>,
}

/// What a node sends with [`OP_STATUS`]: who asks, and the topology it runs, so that a
/// mismatch is seen by both sides (the asker may be gone before the other side asks back).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StatusRequest {
    /// The asking node's address as the topology names it.
    node: String,
    /// The asking node's [`Topology::fingerprint`].
    fingerprint: String,
}

/// This node in its deployment: peers, lock table, and (once open) the object layer.
#[derive(Debug)]
pub struct ClusterNode {
    topology: Arc<Topology>,
    /// One entry per node of the topology, `None` for this node.
    peers: Vec<Option<Arc<Peer>>>,
    locks: Arc<LockServer>,
    locker: DistLocker,
    layer: OnceLock<Weak<ObjectLayer>>,
    fresh_deployment: Mutex<Option<uuid::Uuid>>,
    added_pools: Mutex<Vec<usize>>,
    /// A peer that asked our status while running a different topology: (its address, its
    /// fingerprint). Start-up stops on it.
    mismatched_asker: Mutex<Option<(String, String)>>,
}

impl ClusterNode {
    /// This node of `topology` (which must be distributed), talking to its peers with `secret`
    /// through `connector` (TLS for `https://` endpoints, plain TCP for `http://` ones).
    pub fn new(
        topology: Arc<Topology>,
        secret: ClusterSecret,
        connector: strata_rpc::Connector,
    ) -> Result<Arc<ClusterNode>, ClusterError> {
        let local = topology
            .local_node_idx()
            .ok_or_else(|| ClusterError::InvalidTopology {
                reason: "none of the endpoints is this node".to_string(),
            })?;
        let config = RpcClientConfig {
            call_timeout: RPC_CALL_TIMEOUT,
            connect_timeout: RPC_CONNECT_TIMEOUT,
            connector,
            ..RpcClientConfig::default()
        };
        let mut peers = Vec::with_capacity(topology.nodes().len());
        for idx in 0..topology.nodes().len() {
            if idx == local {
                peers.push(None);
            } else {
                let peer =
                    Peer::new(&topology.node_url(idx), secret.clone(), config.clone()).map_err(|e| {
                        ClusterError::InvalidTopology {
                            reason: e.to_string(),
                        }
                    })?;
                peers.push(Some(peer));
            }
        }
        let locks = Arc::new(LockServer::new());
        let transport = Arc::new(RpcLockTransport {
            peers: peers.clone(),
            local: Arc::clone(&locks),
        });
        let owner = topology.nodes()[local].clone();
        let locker = DistLocker::new(transport, owner, LockConfig::default());
        Ok(Arc::new(ClusterNode {
            topology,
            peers,
            locks,
            locker,
            layer: OnceLock::new(),
            fresh_deployment: Mutex::new(None),
            added_pools: Mutex::new(Vec::new()),
            mismatched_asker: Mutex::new(None),
        }))
    }

    /// The topology this node runs.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Drops every lock this node holds on any node: call at start (a previous process of
    /// this node may have died holding some) and after shutting down.
    pub async fn release_own_locks(&self) {
        self.locker.release_all_of_owner().await;
    }

    /// Hands the opened object layer to the node service (bucket notices reload through it).
    pub fn attach_layer(&self, layer: &Arc<ObjectLayer>) {
        let _ = self.layer.set(Arc::downgrade(layer));
    }

    /// This node's status: fingerprint and the formats of its local drives.
    pub async fn local_status(&self) -> NodeStatus {
        let fingerprint = self.topology.fingerprint();
        let fresh_deployment = *lock(&self.fresh_deployment);
        let mut drives = Vec::new();
        for (_, _, _, endpoint) in self.topology.drives() {
            if !endpoint.is_local {
                continue;
            }
            drives.push((endpoint.path.clone(), drive_state(&endpoint.path).await));
        }
        NodeStatus {
            fingerprint,
            drives,
            fresh_deployment,
            added_pools: lock(&self.added_pools).clone(),
        }
    }

    /// Remembers a status request from a node running another topology, so that this node
    /// stops starting too. Requests without a body (older nodes) carry nothing to compare.
    fn note_asker(&self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let Ok(request) = rmp_serde::from_slice::<StatusRequest>(body) else {
            tracing::debug!("undecodable status request");
            return;
        };
        if request.fingerprint != self.topology.fingerprint() {
            *lock(&self.mismatched_asker) = Some((request.node, request.fingerprint));
        }
    }

    /// Every node's status; `None` for nodes that did not answer.
    async fn statuses(&self) -> Result<Vec<Option<NodeStatus>>, ClusterError> {
        let own = self.local_status().await;
        let request = rmp_serde::to_vec(&StatusRequest {
            node: self
                .topology
                .local_node_idx()
                .and_then(|idx| self.topology.nodes().get(idx))
                .cloned()
                .unwrap_or_default(),
            fingerprint: own.fingerprint.clone(),
        })
        .map_err(|e| ClusterError::InvalidTopology {
            reason: format!("cannot encode a status request: {e}"),
        })?;
        let answers = join_all(self.peers.iter().map(|peer| {
            let request = request.clone();
            async move {
            let peer = peer.as_ref()?;
            match peer.node_call(OP_STATUS, request, PEER_CALL_TIMEOUT).await {
                Ok(bytes) => match rmp_serde::from_slice::<NodeStatus>(&bytes) {
                    Ok(status) => Some(Ok(status)),
                    Err(err) => Some(Err(format!("undecodable status from {}: {err}", peer.url()))),
                },
                Err(RpcError::Unauthorized { endpoint, reason }) => Some(Err(format!(
                    "{endpoint} refused our calls ({reason}): the root credentials (or cluster secret) differ between nodes"
                ))),
                Err(err) => {
                    tracing::debug!(%err, "peer status unavailable");
                    None
                }
            }
            }
        }))
        .await;
        let mut out = Vec::with_capacity(answers.len());
        for (idx, answer) in answers.into_iter().enumerate() {
            match answer {
                _ if self.peers[idx].is_none() => out.push(Some(own.clone())),
                Some(Ok(status)) => out.push(Some(status)),
                Some(Err(reason)) => return Err(ClusterError::InvalidTopology { reason }),
                None => out.push(None),
            }
        }
        Ok(out)
    }

    /// Waits until the deployment can be opened and returns its spec: polls every node's
    /// status (logging who is missing), stops with an error on a topology mismatch or on two
    /// deployment ids, and decides which local drives are new.
    pub async fn settle(self: &Arc<Self>) -> Result<DeploymentSpec, ClusterError> {
        let own_fingerprint = self.topology.fingerprint();
        let n_nodes = self.topology.nodes().len();
        let mut pause = SETTLE_RETRY_MIN;
        let started = Instant::now();
        loop {
            let statuses = self.statuses().await?;
            if let Some((node, fingerprint)) = lock(&self.mismatched_asker).clone() {
                return Err(ClusterError::InvalidTopology {
                    reason: format!(
                        "node {node} runs a different topology (fingerprint {} here, {} there): every node must be started with the same endpoints, in the same order",
                        short(&own_fingerprint),
                        short(&fingerprint)
                    ),
                });
            }
            for (idx, status) in statuses.iter().enumerate() {
                if let Some(status) = status
                    && status.fingerprint != own_fingerprint
                {
                    return Err(ClusterError::InvalidTopology {
                        reason: format!(
                            "node {} runs a different topology (fingerprint {} here, {} there): every node must be started with the same endpoints, in the same order",
                            self.topology.nodes()[idx],
                            short(&own_fingerprint),
                            short(&status.fingerprint)
                        ),
                    });
                }
            }
            match decide(&statuses, &self.pool_drives(), n_nodes, &own_fingerprint)? {
                Decision::Open {
                    deployment_id,
                    fresh,
                    added_pools,
                } => {
                    if fresh {
                        *lock(&self.fresh_deployment) = Some(deployment_id);
                    }
                    *lock(&self.added_pools) = added_pools
                        .iter()
                        .enumerate()
                        .filter(|(_, added)| **added)
                        .map(|(idx, _)| idx)
                        .collect();
                    let fresh_ids: Vec<uuid::Uuid> = statuses
                        .iter()
                        .flatten()
                        .filter_map(|s| s.fresh_deployment)
                        .collect();
                    let part_of_fresh = fresh || fresh_ids.contains(&deployment_id);
                    tracing::info!(%deployment_id, fresh, ?added_pools, "deployment settled");
                    return self.spec(deployment_id, part_of_fresh, &added_pools, &statuses);
                }
                Decision::Wait { reason } => {
                    tracing::info!(
                        waited_secs = started.elapsed().as_secs(),
                        retry_in_ms = pause.as_millis() as u64,
                        reason,
                        "waiting for the deployment"
                    );
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(SETTLE_RETRY_MAX);
        }
    }

    /// Each pool's drives as (node index, path).
    fn pool_drives(&self) -> Vec<Vec<(usize, String)>> {
        self.topology
            .pools
            .iter()
            .map(|pool| {
                pool.sets
                    .iter()
                    .flatten()
                    .filter_map(|d| {
                        let node = self.topology.node_idx(d.node.as_deref()?)?;
                        Some((node, d.path.clone()))
                    })
                    .collect()
            })
            .collect()
    }

    /// The spec of the settled deployment, as this node opens it.
    fn spec(
        &self,
        deployment_id: uuid::Uuid,
        part_of_fresh: bool,
        added_pools: &[bool],
        statuses: &[Option<NodeStatus>],
    ) -> Result<DeploymentSpec, ClusterError> {
        let local_idx = self.topology.local_node_idx();
        let own_states: HashMap<&str, &DriveState> = local_idx
            .and_then(|idx| statuses.get(idx))
            .and_then(Option::as_ref)
            .map(|s| s.drives.iter().map(|(p, st)| (p.as_str(), st)).collect())
            .unwrap_or_default();
        let mut pools = Vec::new();
        for (pool_idx, pool) in self.topology.pools.iter().enumerate() {
            let added = added_pools.get(pool_idx).copied().unwrap_or(false);
            let mut sets = Vec::new();
            for set in &pool.sets {
                let mut drives = Vec::with_capacity(set.len());
                for endpoint in set {
                    let location = if endpoint.is_local {
                        DriveLocation::Local {
                            path: endpoint.path.clone().into(),
                            new_in_existing: !part_of_fresh
                                && !added
                                && own_states.get(endpoint.path.as_str()) == Some(&&DriveState::Unformatted),
                        }
                    } else {
                        let peer = endpoint
                            .node
                            .as_deref()
                            .and_then(|node| self.topology.node_idx(node))
                            .and_then(|idx| self.peers.get(idx).cloned().flatten())
                            .ok_or_else(|| ClusterError::InvalidTopology {
                                reason: format!("no peer for the node of {}", endpoint.url()),
                            })?;
                        DriveLocation::Remote(Arc::new(RpcDriveConnector {
                            peer,
                            drive_id: endpoint.path.clone(),
                        }))
                    };
                    drives.push(DriveSpec {
                        endpoint: endpoint.url(),
                        location,
                    });
                }
                sets.push(drives);
            }
            pools.push(PoolSpec { sets, added });
        }
        Ok(DeploymentSpec { deployment_id, pools })
    }

    fn layer(&self) -> Option<Arc<ObjectLayer>> {
        self.layer.get().and_then(Weak::upgrade)
    }
}

/// What a local drive's format record says.
async fn drive_state(path: &str) -> DriveState {
    match LocalDrive::read_format(std::path::Path::new(path)).await {
        Ok(Some(format)) => DriveState::Formatted {
            deployment_id: format.deployment_id,
        },
        Ok(None) => DriveState::Unformatted,
        Err(err) => DriveState::Unavailable {
            reason: err.to_string(),
        },
    }
}

/// Whether a single node started with several pools' worth of drive arguments was formatted
/// before those arguments made pools (every drive in one pool, as earlier versions did): it
/// then keeps opening as one pool.
pub async fn single_node_formatted_as_one_pool(topology: &Topology) -> bool {
    for (pool_idx, pool) in topology.pools.iter().enumerate().skip(1) {
        for endpoint in pool.sets.iter().flatten() {
            if let Ok(Some(format)) = LocalDrive::read_format(std::path::Path::new(&endpoint.path)).await
                && format.pool_idx as usize != pool_idx
            {
                return true;
            }
        }
    }
    false
}

/// The deployment of a single node with several pools (plain paths, one directory set per
/// media class, say), decided from its drives' formats as a cluster would with one node: a
/// fresh deployment when every drive is empty, else the one id on them, with pools whose
/// drives are all empty taken as added and empty drives of other pools as replacements.
pub async fn single_node_spec(topology: &Topology) -> Result<DeploymentSpec, ClusterError> {
    let mut drives = Vec::new();
    for (_, _, _, endpoint) in topology.drives() {
        drives.push((endpoint.path.clone(), drive_state(&endpoint.path).await));
    }
    let fingerprint = topology.fingerprint();
    let pools: Vec<Vec<(usize, String)>> = topology
        .pools
        .iter()
        .map(|pool| pool.sets.iter().flatten().map(|d| (0, d.path.clone())).collect())
        .collect();
    let status = NodeStatus {
        fingerprint: fingerprint.clone(),
        drives,
        fresh_deployment: None,
        added_pools: Vec::new(),
    };
    let (deployment_id, fresh, added_pools) = match decide(&[Some(status.clone())], &pools, 1, &fingerprint)?
    {
        Decision::Open {
            deployment_id,
            fresh,
            added_pools,
        } => (deployment_id, fresh, added_pools),
        Decision::Wait { reason } => return Err(ClusterError::InvalidTopology { reason }),
    };
    let states: HashMap<&str, &DriveState> = status.drives.iter().map(|(p, s)| (p.as_str(), s)).collect();
    let spec_pools = topology
        .pools
        .iter()
        .enumerate()
        .map(|(pool_idx, pool)| {
            let added = added_pools.get(pool_idx).copied().unwrap_or(false);
            let sets = pool
                .sets
                .iter()
                .map(|set| {
                    set.iter()
                        .map(|endpoint| DriveSpec {
                            endpoint: endpoint.path.clone(),
                            location: DriveLocation::Local {
                                path: endpoint.path.clone().into(),
                                new_in_existing: !fresh
                                    && !added
                                    && states.get(endpoint.path.as_str()) == Some(&&DriveState::Unformatted),
                            },
                        })
                        .collect()
                })
                .collect();
            PoolSpec { sets, added }
        })
        .collect();
    Ok(DeploymentSpec {
        deployment_id,
        pools: spec_pools,
    })
}

/// What start-up should do after one poll.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Open the deployment; `added_pools[p]`: every drive of pool p is empty while the
    /// deployment exists (a pool just added).
    Open {
        deployment_id: uuid::Uuid,
        fresh: bool,
        added_pools: Vec<bool>,
    },
    Wait {
        reason: String,
    },
}

/// Decides from one poll of every node's status (`None`: no answer); `pools[p]` lists pool
/// p's drives as (node index, path).
fn decide(
    statuses: &[Option<NodeStatus>],
    pools: &[Vec<(usize, String)>],
    n_nodes: usize,
    fingerprint: &str,
) -> Result<Decision, ClusterError> {
    let n_answered = statuses.iter().flatten().count();
    let mut ids: Vec<uuid::Uuid> = Vec::new();
    let mut n_unavailable = 0;
    for status in statuses.iter().flatten() {
        for (_, state) in &status.drives {
            match state {
                DriveState::Formatted { deployment_id } => {
                    if !ids.contains(deployment_id) {
                        ids.push(*deployment_id);
                    }
                }
                DriveState::Unformatted => {}
                DriveState::Unavailable { .. } => n_unavailable += 1,
            }
        }
    }
    if ids.len() > 1 {
        return Err(ClusterError::InvalidTopology {
            reason: format!(
                "drives of this deployment belong to different deployments ({}); refusing to start",
                ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    if let Some(&deployment_id) = ids.first() {
        // An existing deployment: open once a majority of nodes is up (quorum is then possible;
        // the rest are connected by the drive monitor when they come).
        if n_answered * 2 <= n_nodes {
            return Ok(Decision::Wait {
                reason: format!("{n_answered} of {n_nodes} nodes answer; waiting for a majority"),
            });
        }
        let state_of = |node: usize, path: &str| {
            statuses
                .get(node)
                .and_then(Option::as_ref)
                .and_then(|s| s.drives.iter().find(|(p, _)| p == path).map(|(_, st)| st))
        };
        let mut added_pools = Vec::with_capacity(pools.len());
        for (pool_idx, drives) in pools.iter().enumerate() {
            let states: Vec<Option<&DriveState>> = drives.iter().map(|(n, p)| state_of(*n, p)).collect();
            let any_formatted = states
                .iter()
                .any(|s| matches!(s, Some(DriveState::Formatted { .. })));
            let all_empty = states.iter().all(|s| matches!(s, Some(DriveState::Unformatted)));
            // A node that already formatted its share of an added pool says so (its drives
            // no longer look empty to the nodes deciding after it).
            let added_by_peer = statuses
                .iter()
                .flatten()
                .any(|s| s.added_pools.contains(&pool_idx));
            if added_by_peer {
                added_pools.push(true);
                continue;
            }
            if !any_formatted && !all_empty {
                // A pool without one formatted drive is either new or lost entirely: only
                // every drive answering empty says which.
                return Ok(Decision::Wait {
                    reason: format!(
                        "pool {pool_idx} has no formatted drive; waiting for all its drives to answer"
                    ),
                });
            }
            added_pools.push(all_empty);
        }
        return Ok(Decision::Open {
            deployment_id,
            fresh: false,
            added_pools,
        });
    }
    if n_answered == n_nodes && n_unavailable == 0 {
        // Every drive of the deployment answered, all empty: its first start.
        return Ok(Decision::Open {
            deployment_id: fresh_deployment_id(fingerprint),
            fresh: true,
            added_pools: vec![false; pools.len()],
        });
    }
    Ok(Decision::Wait {
        reason: format!(
            "new deployment: waiting for every node and drive ({n_answered} of {n_nodes} nodes answer, {n_unavailable} drives unreadable)"
        ),
    })
}

/// The id of a fresh deployment: derived from the topology, so every node derives the same.
fn fresh_deployment_id(fingerprint: &str) -> uuid::Uuid {
    let digest = Sha256::new()
        .chain_update(b"strata fresh deployment id v1\0")
        .chain_update(fingerprint.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[async_trait]
impl NodeService for ClusterNode {
    async fn call(&self, op: &str, body: Bytes) -> Result<Vec<u8>, String> {
        match op {
            OP_STATUS => {
                self.note_asker(&body);
                rmp_serde::to_vec(&self.local_status().await).map_err(|e| e.to_string())
            }
            OP_LOCK => {
                let request = decode_request(&body).map_err(|e| e.to_string())?;
                Ok(encode_response(&self.locks.handle(request)))
            }
            OP_BUCKET_CHANGED => {
                let bucket =
                    std::str::from_utf8(&body).map_err(|_| "bucket name is not UTF-8".to_string())?;
                let layer = self
                    .layer()
                    .ok_or_else(|| "the object layer is not open yet".to_string())?;
                layer.reload_bucket(bucket).await.map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
            OP_SYSTEM_CHANGED => {
                let namespace =
                    std::str::from_utf8(&body).map_err(|_| "namespace is not UTF-8".to_string())?;
                let layer = self
                    .layer()
                    .ok_or_else(|| "the object layer is not open yet".to_string())?;
                layer.notify_system_change(namespace);
                Ok(Vec::new())
            }
            OP_POOLS_CHANGED => {
                let layer = self
                    .layer()
                    .ok_or_else(|| "the object layer is not open yet".to_string())?;
                layer.load_pools_record().await.map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
            OP_HEAL_OWED => {
                let layer = self
                    .layer()
                    .ok_or_else(|| "the object layer is not open yet".to_string())?;
                Ok(vec![u8::from(layer.heal_owed())])
            }
            other => Err(format!("unknown node operation {other:?}")),
        }
    }
}

/// A held distributed lock, as the object layer sees it.
#[derive(Debug)]
struct ClusterLock(#[allow(dead_code)] DistLockGuard);

impl HeldLock for ClusterLock {}

#[async_trait]
impl ClusterHooks for ClusterNode {
    async fn lock(&self, resource: &str) -> ObjectResult<Box<dyn HeldLock>> {
        match self.locker.lock(resource, LOCK_WAIT).await {
            Ok(guard) => Ok(Box::new(ClusterLock(guard))),
            Err(err) => {
                tracing::warn!(resource, %err, "distributed lock unavailable");
                Err(ObjectError::LockUnavailable {
                    resource: resource.to_string(),
                })
            }
        }
    }

    async fn bucket_changed(&self, bucket: &str) {
        let calls = self.peers.iter().flatten().map(|peer| async move {
            if let Err(err) = peer
                .node_call(OP_BUCKET_CHANGED, bucket.as_bytes().to_vec(), PEER_CALL_TIMEOUT)
                .await
            {
                // The peer reloads its bucket list within its cache lifetime anyway.
                tracing::info!(peer = peer.url(), bucket, %err, "bucket change notice not delivered");
            }
        });
        join_all(calls).await;
    }

    async fn system_changed(&self, namespace: &str) {
        let calls = self.peers.iter().flatten().map(|peer| async move {
            if let Err(err) = peer
                .node_call(
                    OP_SYSTEM_CHANGED,
                    namespace.as_bytes().to_vec(),
                    PEER_CALL_TIMEOUT,
                )
                .await
            {
                // The peer's subscribers reload on their own schedule (IAM: every 60 s).
                tracing::info!(peer = peer.url(), namespace, %err, "system change notice not delivered");
            }
        });
        join_all(calls).await;
    }

    async fn pools_changed(&self) {
        let calls = self.peers.iter().flatten().map(|peer| async move {
            if let Err(err) = peer
                .node_call(OP_POOLS_CHANGED, Vec::new(), PEER_CALL_TIMEOUT)
                .await
            {
                // The peer rereads the pool states on its own within a few seconds.
                tracing::info!(peer = peer.url(), %err, "pool change notice not delivered");
            }
        });
        join_all(calls).await;
    }

    async fn peers_owe_heal(&self) -> bool {
        let asks = self.peers.iter().flatten().map(|peer| async move {
            match peer.node_call(OP_HEAL_OWED, Vec::new(), PEER_CALL_TIMEOUT).await {
                Ok(answer) => answer.first() != Some(&0),
                // A node of an older version does not know the question.
                Err(strata_rpc::RpcError::Node { reason, .. })
                    if reason.contains("unknown node operation") =>
                {
                    false
                }
                Err(err) => {
                    tracing::debug!(peer = peer.url(), %err, "cannot ask whether the peer owes a heal");
                    true
                }
            }
        });
        join_all(asks).await.into_iter().any(|owes| owes)
    }

    async fn may_lead(&self, job: &str) -> Option<Box<dyn HeldLock>> {
        match self.locker.lock(&format!("job/{job}"), JOB_LOCK_WAIT).await {
            Ok(guard) => Some(Box::new(ClusterLock(guard))),
            Err(_) => None,
        }
    }
}

/// Lock requests to every node: this node's table directly, peers over node RPC.
#[derive(Debug)]
struct RpcLockTransport {
    peers: Vec<Option<Arc<Peer>>>,
    local: Arc<LockServer>,
}

#[async_trait]
impl LockTransport for RpcLockTransport {
    fn n_nodes(&self) -> usize {
        self.peers.len()
    }

    async fn send(&self, node_idx: usize, request: LockRequest) -> Result<LockResponse, String> {
        match self.peers.get(node_idx) {
            Some(None) => Ok(self.local.handle(request)),
            Some(Some(peer)) => {
                let bytes = peer
                    .node_call(OP_LOCK, encode_request(&request), LOCK_CALL_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())?;
                decode_response(&bytes).map_err(|e| e.to_string())
            }
            None => Err(format!("no node {node_idx}")),
        }
    }
}

/// Connects a drive on a peer through its RPC service.
#[derive(Debug)]
struct RpcDriveConnector {
    peer: Arc<Peer>,
    drive_id: String,
}

#[async_trait]
impl DriveConnector for RpcDriveConnector {
    async fn connect(&self) -> DriveResult<Arc<dyn Drive>> {
        match RemoteDrive::connect(Arc::clone(&self.peer), &self.drive_id).await {
            Ok(drive) => Ok(drive as Arc<dyn Drive>),
            Err(RpcError::Drive(err)) => Err(err),
            Err(err @ RpcError::UnknownDrive { .. }) => {
                // The peer is up but has not opened its drives yet.
                tracing::debug!(peer = self.peer.url(), drive = self.drive_id, %err, "remote drive not served yet");
                Err(DriveError::Offline {
                    endpoint: format!("{}{}", self.peer.url(), self.drive_id),
                })
            }
            Err(err) => {
                tracing::warn!(peer = self.peer.url(), drive = self.drive_id, %err, "remote drive refused");
                Err(DriveError::Offline {
                    endpoint: format!("{}{}", self.peer.url(), self.drive_id),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(fingerprint: &str, drives: &[DriveState]) -> Option<NodeStatus> {
        Some(NodeStatus {
            fingerprint: fingerprint.to_string(),
            drives: drives
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("/d{i}"), s.clone()))
                .collect(),
            fresh_deployment: None,
            added_pools: Vec::new(),
        })
    }

    /// One pool holding every drive the statuses name.
    fn one_pool(statuses: &[Option<NodeStatus>], drives_per_node: usize) -> Vec<Vec<(usize, String)>> {
        vec![
            (0..statuses.len())
                .flat_map(|n| (0..drives_per_node).map(move |d| (n, format!("/d{d}"))))
                .collect(),
        ]
    }

    #[test]
    fn fresh_deployment_needs_every_node_and_drive() {
        let empty = [DriveState::Unformatted, DriveState::Unformatted];
        let all = vec![status("fp", &empty), status("fp", &empty), status("fp", &empty)];
        let decision = decide(&all, &one_pool(&all, 2), 3, "fp").unwrap();
        assert_eq!(
            decision,
            Decision::Open {
                deployment_id: fresh_deployment_id("fp"),
                fresh: true,
                added_pools: vec![false],
            }
        );
        let missing = vec![status("fp", &empty), None, status("fp", &empty)];
        assert!(matches!(
            decide(&missing, &one_pool(&missing, 2), 3, "fp").unwrap(),
            Decision::Wait { .. }
        ));
        let unreadable = vec![
            status("fp", &empty),
            status(
                "fp",
                &[
                    DriveState::Unformatted,
                    DriveState::Unavailable { reason: "eio".into() },
                ],
            ),
            status("fp", &empty),
        ];
        assert!(matches!(
            decide(&unreadable, &one_pool(&unreadable, 2), 3, "fp").unwrap(),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn existing_deployment_opens_with_a_majority_of_nodes() {
        let id = uuid::Uuid::new_v4();
        let formatted = [DriveState::Formatted { deployment_id: id }];
        let two_of_four = vec![status("fp", &formatted), status("fp", &formatted), None, None];
        assert!(matches!(
            decide(&two_of_four, &one_pool(&two_of_four, 1), 4, "fp").unwrap(),
            Decision::Wait { .. }
        ));
        let three_of_four = vec![
            status("fp", &formatted),
            status("fp", &formatted),
            None,
            status("fp", &[DriveState::Unformatted]),
        ];
        assert_eq!(
            decide(&three_of_four, &one_pool(&three_of_four, 1), 4, "fp").unwrap(),
            Decision::Open {
                deployment_id: id,
                fresh: false,
                added_pools: vec![false],
            }
        );
    }

    #[test]
    fn two_deployment_ids_refuse_to_start() {
        let a = [DriveState::Formatted {
            deployment_id: uuid::Uuid::new_v4(),
        }];
        let b = [DriveState::Formatted {
            deployment_id: uuid::Uuid::new_v4(),
        }];
        let both = [status("fp", &a), status("fp", &b)];
        let err = decide(&both, &one_pool(&both, 1), 2, "fp").unwrap_err();
        assert!(err.to_string().contains("different deployments"), "{err}");
    }

    #[test]
    fn an_empty_pool_in_an_existing_deployment_is_added_once_all_its_drives_answer() {
        let id = uuid::Uuid::new_v4();
        // Two nodes: drive /d0 of each is pool 0 (formatted), /d1 of each is pool 1 (empty).
        let node = |second: DriveState| status("fp", &[DriveState::Formatted { deployment_id: id }, second]);
        let pools = vec![
            vec![
                (0, "/d0".to_string()),
                (1, "/d0".to_string()),
                (2, "/d0".to_string()),
            ],
            vec![
                (0, "/d1".to_string()),
                (1, "/d1".to_string()),
                (2, "/d1".to_string()),
            ],
        ];
        let all = vec![
            node(DriveState::Unformatted),
            node(DriveState::Unformatted),
            node(DriveState::Unformatted),
        ];
        assert_eq!(
            decide(&all, &pools, 3, "fp").unwrap(),
            Decision::Open {
                deployment_id: id,
                fresh: false,
                added_pools: vec![false, true],
            }
        );
        // One node of the empty pool silent: new pool or lost pool cannot be told apart yet.
        let partial = vec![node(DriveState::Unformatted), node(DriveState::Unformatted), None];
        assert!(matches!(
            decide(&partial, &pools, 3, "fp").unwrap(),
            Decision::Wait { .. }
        ));
        // A pool with a formatted drive is not added: its empty drives are replacements...
        let mut mixed = vec![
            node(DriveState::Unformatted),
            node(DriveState::Formatted { deployment_id: id }),
            node(DriveState::Unformatted),
        ];
        assert_eq!(
            decide(&mixed, &pools, 3, "fp").unwrap(),
            Decision::Open {
                deployment_id: id,
                fresh: false,
                added_pools: vec![false, false],
            }
        );
        // ...unless the node that formatted it did so as part of adding the pool.
        if let Some(Some(status)) = mixed.get_mut(1) {
            status.added_pools = vec![1];
        }
        assert_eq!(
            decide(&mixed, &pools, 3, "fp").unwrap(),
            Decision::Open {
                deployment_id: id,
                fresh: false,
                added_pools: vec![false, true],
            }
        );
    }

    #[test]
    fn fresh_ids_are_stable_and_topology_specific() {
        assert_eq!(fresh_deployment_id("abc"), fresh_deployment_id("abc"));
        assert_ne!(fresh_deployment_id("abc"), fresh_deployment_id("abd"));
    }
}
