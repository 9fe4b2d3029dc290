//! What the object layer needs to know about a deployment that spans nodes: where each drive
//! is ([`DriveLocation`]), how to reach a remote one ([`DriveConnector`]), and the cluster
//! services the layer calls ([`ClusterHooks`]: distributed key locks, bucket- and
//! system-record change notices). The cluster crate implements these over node RPC; a single
//! node needs none.
//!
//! **Invariant:** the layer never decides a deployment's identity or formats a remote drive:
//! the caller settles the deployment id and which local drives are new before opening, so every
//! node opens the same layout with the same id.

use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use strata_drive::{Drive, DriveResult};

use crate::error::ObjectResult;

/// Opens a connection to a drive on another node.
#[async_trait]
pub trait DriveConnector: Send + Sync + Debug {
    /// The drive, connected, with its format record as found on it (the caller checks that it
    /// is the expected position). Fails like a drive call fails (`Offline` when unreachable).
    async fn connect(&self) -> DriveResult<Arc<dyn Drive>>;
}

/// Where one drive of the deployment lives.
#[derive(Clone, Debug)]
pub enum DriveLocation {
    /// A directory on this node.
    Local {
        /// The directory.
        path: PathBuf,
        /// The directory was unformatted while the deployment already existed: after
        /// formatting it is marked *healing* until a full heal completes.
        new_in_existing: bool,
    },
    /// A drive on another node.
    Remote(Arc<dyn DriveConnector>),
}

/// One drive position of the deployment.
#[derive(Clone, Debug)]
pub struct DriveSpec {
    /// Display name (`http://node:9000/mnt/disk1`, or the local path).
    pub endpoint: String,
    /// Where it is.
    pub location: DriveLocation,
}

/// One pool of a deployment: erasure sets of one size.
#[derive(Clone, Debug)]
pub struct PoolSpec {
    /// Erasure sets (all the same size), each listing its drives in position order.
    pub sets: Vec<Vec<DriveSpec>>,
    /// Every drive of the pool was empty while the deployment already existed: the pool was
    /// just added (its drives are formatted fresh, not healed).
    pub added: bool,
}

/// A settled deployment: its id and its pools, in the same order on every node.
#[derive(Clone, Debug)]
pub struct DeploymentSpec {
    /// Shared by every drive's format record; keys placement.
    pub deployment_id: uuid::Uuid,
    /// The pools; objects live in exactly one.
    pub pools: Vec<PoolSpec>,
}

/// A distributed lock held on behalf of the layer; dropping it releases the lock. The holder
/// refreshes it while held; a holder cut off from the quorum for longer than the lock's expiry
/// may lose it (see the cluster crate's lock module for the limits).
pub trait HeldLock: Send + Sync + Debug {}

/// Services of a multi-node deployment.
#[async_trait]
pub trait ClusterHooks: Send + Sync + Debug {
    /// Takes the deployment-wide exclusive lock on `resource`, waiting a bounded time; an
    /// error (no quorum of nodes) surfaces to the client as "try again" (503).
    async fn lock(&self, resource: &str) -> ObjectResult<Box<dyn HeldLock>>;

    /// Tells every other node that `bucket`'s record or configuration changed, so their caches
    /// reload it before answering. Returns once every reachable node has been told.
    async fn bucket_changed(&self, bucket: &str);

    /// Tells every other node that system records of `namespace` changed, so that each
    /// delivers the namespace to its subscribers (`ObjectLayer::notify_system_change`), which
    /// reload it. Returns once every reachable node has been told.
    async fn system_changed(&self, namespace: &str);

    /// Tells every other node that the pool states (decommissions) changed, so they reload
    /// them before placing another object. Returns once every reachable node has been told.
    async fn pools_changed(&self);

    /// Whether this node may start deployment-wide background work that one node is enough
    /// for (automatic heal sequences after drives return). A node that cannot reach a quorum
    /// of the others says no.
    async fn may_lead(&self, job: &str) -> Option<Box<dyn HeldLock>>;

    /// Whether another node owes the deployment a heal (`ObjectLayer::heal_owed`), or cannot
    /// say (unreachable): then no node may leave for maintenance. Nodes that do not know the
    /// question (older versions) count as owing nothing.
    async fn peers_owe_heal(&self) -> bool {
        false
    }
}
