//! Endpoint arguments → pools → erasure sets → drives: the one layout every node of a
//! deployment computes from the same command line.
//!
//! Owns parsing of endpoint arguments (plain paths for a single node, `http(s)://host:port/path`
//! URLs for a distributed deployment), detection of which endpoints are on this node, the choice
//! of each pool's erasure-set size and the spreading of sets over nodes, and the fingerprint
//! nodes compare to make sure they agree on all of it.
//!
//! Invariants of a built [`Topology`]:
//! - every endpoint is of one kind: all plain paths (node `None`, all local) or all URLs of one
//!   scheme, each with an explicit non-zero port and an absolute path;
//! - no two endpoints name the same drive (same node and path);
//! - in a pool, every node holds the same number of drives, and every set has exactly
//!   `set_size` drives, `SET_DRIVES_MIN <= set_size <= SET_DRIVES_MAX`;
//! - a pool's drives are ordered node-interleaved (drive 0 of every node, then drive 1 of every
//!   node, ...) before being cut into consecutive sets, so a set spans as many nodes as it can;
//!   with one node the order is exactly the argument order (existing single-node deployments
//!   record `set_idx`/`drive_idx` by it on their drives);
//! - in distributed mode exactly one node (`host:port`) is this node;
//! - the layout depends only on the arguments, never on which node computes it, and neither
//!   does [`Topology::fingerprint`].

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ClusterError;
use crate::ellipsis;

/// Fewest drives in an erasure set. Equals `strata_erasure::SET_DRIVES_MIN` (checked by a test;
/// this crate does not depend on the erasure crate).
pub const SET_DRIVES_MIN: usize = 2;
/// Most drives in an erasure set. Equals `strata_erasure::SET_DRIVES_MAX` (checked by a test).
pub const SET_DRIVES_MAX: usize = 16;
const _: () = assert!(SET_DRIVES_MIN >= 2 && SET_DRIVES_MIN <= SET_DRIVES_MAX);

/// Domain separator and version of the fingerprint's canonical encoding; bump it whenever the
/// encoding changes so that nodes of different versions never falsely agree.
const FINGERPRINT_DOMAIN: &[u8] = b"strata-topology-v1";

fn invalid(reason: impl Into<String>) -> ClusterError {
    ClusterError::InvalidTopology {
        reason: reason.into(),
    }
}

/// Where this node listens (its S3/RPC address, e.g. `127.0.0.1:9001` or `0.0.0.0:9000`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    /// Host without IPv6 brackets; empty when the address was `:port` (all interfaces).
    host: String,
    port: u16,
    /// This node's host as the drive URLs spell it, when told (`--node-host`): then exactly
    /// the URLs with this host and the listen port are local, and no name is resolved.
    node_host: Option<String>,
}

impl LocalAddr {
    /// Parses `host:port`, `[v6]:port` or `:port` (all interfaces). Port 0 is accepted (a
    /// single-node server may listen on an ephemeral port; it then matches no URL endpoint).
    pub fn parse(address: &str) -> Result<LocalAddr, ClusterError> {
        let (host, port) =
            split_host_port(address).map_err(|why| invalid(format!("listen address {address:?}: {why}")))?;
        Ok(LocalAddr {
            host,
            port,
            node_host: None,
        })
    }

    /// Names this node's host in the drive URLs (e.g. a pod's DNS name, known before the name
    /// resolves anywhere); an empty name is ignored.
    pub fn with_node_host(mut self, node_host: Option<&str>) -> LocalAddr {
        self.node_host = node_host
            .map(|h| h.trim().trim_start_matches('[').trim_end_matches(']').to_owned())
            .filter(|h| !h.is_empty());
        self
    }

    /// The host, without IPv6 brackets (empty for "all interfaces").
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the node listens on every interface or on loopback only: then any name of this
    /// machine designates it.
    fn is_wildcard_or_loopback(&self, listen_ips: &[IpAddr]) -> bool {
        self.host.is_empty()
            || self.host.eq_ignore_ascii_case("localhost")
            || listen_ips
                .iter()
                .any(|ip| ip.is_unspecified() || ip.is_loopback())
    }
}

impl std::fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&join_host_port(&self.host, self.port))
    }
}

/// One drive of the deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriveEndpoint {
    /// `host:port` of the node holding it; `None` for a plain local path (single-node mode).
    pub node: Option<String>,
    /// The drive's path on its node, e.g. `/mnt/disk1`.
    pub path: String,
    /// Whether the drive is on this node.
    pub is_local: bool,
    /// Whether the URL scheme is `https` (meaningless for plain paths).
    https: bool,
}

impl DriveEndpoint {
    /// `http://host:port/path` (or `https://...`) for a URL endpoint, the path for a plain one.
    pub fn url(&self) -> String {
        match &self.node {
            Some(node) => format!("{}://{node}{}", scheme_str(self.https), self.path),
            None => self.path.clone(),
        }
    }
}

/// One pool: its drives cut into erasure sets of equal size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolTopology {
    /// The erasure sets, each of `set_size` drives, in set_idx order.
    pub sets: Vec<Vec<DriveEndpoint>>,
    /// Drives per erasure set.
    pub set_size: usize,
}

impl PoolTopology {
    /// Drives in the pool.
    pub fn n_drives(&self) -> usize {
        self.sets.iter().map(Vec::len).sum()
    }
}

/// The whole deployment's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// The pools, in argument order.
    pub pools: Vec<PoolTopology>,
    /// Distinct `host:port` in first-appearance order; empty in single-node (plain path) mode.
    nodes: Vec<String>,
    /// Index into `nodes` of this node; `None` in single-node mode.
    local_node_idx: Option<usize>,
    /// Endpoints are URLs.
    distributed: bool,
    /// URLs use `https`.
    https: bool,
}

impl Topology {
    /// Builds the layout. `pools[i]` is the list of endpoint arguments of pool i (each may
    /// contain `{a...b}` ellipses); `local` is this node's listen address.
    pub fn from_pools(pools: &[Vec<String>], local: &LocalAddr) -> Result<Topology, ClusterError> {
        if pools.is_empty() {
            return Err(invalid("no drives given"));
        }
        let mut parsed_pools: Vec<Vec<Parsed>> = Vec::with_capacity(pools.len());
        for (pool_idx, args) in pools.iter().enumerate() {
            let expanded = ellipsis::expand_all(args)?;
            if expanded.is_empty() {
                return Err(invalid(format!("pool #{} has no drives", pool_idx + 1)));
            }
            let parsed = expanded
                .iter()
                .map(|e| parse_endpoint(e))
                .collect::<Result<Vec<_>, _>>()?;
            parsed_pools.push(parsed);
        }

        let kind = check_one_kind(&parsed_pools)?;
        check_no_duplicates(&parsed_pools)?;

        let distributed = kind != Kind::Path;
        let https = kind == Kind::Https;
        let mut nodes: Vec<String> = Vec::new();
        let mut seen_nodes: HashSet<&str> = HashSet::new();
        for p in parsed_pools.iter().flatten() {
            if let Some(n) = &p.node
                && seen_nodes.insert(n.name.as_str())
            {
                nodes.push(n.name.clone());
            }
        }
        let local_node_idx = if distributed {
            Some(find_local_node(&parsed_pools, &nodes, local)?)
        } else {
            None
        };
        let local_node = local_node_idx.and_then(|i| nodes.get(i)).cloned();

        let mut out_pools = Vec::with_capacity(parsed_pools.len());
        for (pool_idx, parsed) in parsed_pools.into_iter().enumerate() {
            let drives = parsed.into_iter().map(|p| {
                let is_local = match &p.node {
                    Some(n) => Some(&n.name) == local_node.as_ref(),
                    None => true,
                };
                DriveEndpoint {
                    node: p.node.map(|n| n.name),
                    path: p.path,
                    is_local,
                    https,
                }
            });
            out_pools.push(build_pool(pool_idx, drives)?);
        }
        Ok(Topology {
            pools: out_pools,
            nodes,
            local_node_idx,
            distributed,
            https,
        })
    }

    /// MinIO's rule for command-line arguments: when every argument contains an ellipsis, each
    /// argument is one pool; otherwise all arguments together are one pool. No arguments give
    /// no pools.
    pub fn pools_from_args(args: &[String]) -> Vec<Vec<String>> {
        if args.is_empty() {
            Vec::new()
        } else if args.iter().all(|a| has_ellipsis(a)) {
            args.iter().map(|a| vec![a.clone()]).collect()
        } else {
            vec![args.to_vec()]
        }
    }

    /// Whether the endpoints are URLs (several nodes, or one node named by URL).
    pub fn is_distributed(&self) -> bool {
        self.distributed
    }

    /// Distinct `host:port` in first-appearance order; empty in single-node (plain path) mode.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// Index into [`Topology::nodes`] of this node; `None` in single-node (plain path) mode.
    pub fn local_node_idx(&self) -> Option<usize> {
        self.local_node_idx
    }

    /// Index into [`Topology::nodes`] of `node` (`host:port`), if it is one of them.
    pub fn node_idx(&self, node: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n == node)
    }

    /// `http://host:port` (or `https://`) of node `node_idx`; empty when `node_idx` is not below
    /// `nodes().len()`.
    pub fn node_url(&self, node_idx: usize) -> String {
        self.nodes
            .get(node_idx)
            .map(|n| format!("{}://{n}", scheme_str(self.https)))
            .unwrap_or_default()
    }

    /// Every drive with its pool, set and drive index, in pool, set, drive order.
    pub fn drives(&self) -> impl Iterator<Item = (usize, usize, usize, &DriveEndpoint)> {
        self.pools.iter().enumerate().flat_map(|(pool_idx, pool)| {
            pool.sets.iter().enumerate().flat_map(move |(set_idx, set)| {
                set.iter()
                    .enumerate()
                    .map(move |(drive_idx, d)| (pool_idx, set_idx, drive_idx, d))
            })
        })
    }

    /// A stable hex SHA-256 over the canonical layout (mode, pools, set sizes, sets, drive URLs
    /// in order); identical on every node given the same arguments, different when anything
    /// differs. Excludes `is_local`.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        put_bytes(&mut h, FINGERPRINT_DOMAIN);
        let mode: u64 = match (self.distributed, self.https) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
        put_u64(&mut h, mode);
        put_u64(&mut h, self.pools.len() as u64);
        for pool in &self.pools {
            put_u64(&mut h, pool.set_size as u64);
            put_u64(&mut h, pool.sets.len() as u64);
            for set in &pool.sets {
                put_u64(&mut h, set.len() as u64);
                for drive in set {
                    put_bytes(&mut h, drive.url().as_bytes());
                }
            }
        }
        hex::encode(h.finalize())
    }
}

/// Drives per erasure set for a pool of `n_drives` drives spread over `n_nodes` nodes.
///
/// One node: all drives when at most [`SET_DRIVES_MAX`], else the largest divisor of `n_drives`
/// in `SET_DRIVES_MIN..=SET_DRIVES_MAX` (the rule single-node deployments were created with).
/// Several nodes: the largest such divisor that is a multiple or a divisor of `n_nodes` (so
/// every set holds the same number of drives of each node it touches), falling back to the
/// largest divisor.
pub fn set_size_for(n_drives: usize, n_nodes: usize) -> Result<usize, ClusterError> {
    set_size_or_reason(n_drives, n_nodes).map_err(invalid)
}

/// [`set_size_for`], failing with the bare reason so callers can prefix it.
fn set_size_or_reason(n_drives: usize, n_nodes: usize) -> Result<usize, String> {
    let largest_divisor = |accept: &dyn Fn(usize) -> bool| {
        (SET_DRIVES_MIN..=SET_DRIVES_MAX)
            .rev()
            .find(|&size| n_drives.is_multiple_of(size) && accept(size))
    };
    let no_split = || {
        format!(
            "{n_drives} drives cannot be split into equal erasure sets of \
             {SET_DRIVES_MIN} to {SET_DRIVES_MAX} drives"
        )
    };
    if n_nodes <= 1 {
        if n_drives < SET_DRIVES_MIN {
            return Err(format!(
                "{n_drives} drives given; at least {SET_DRIVES_MIN} are needed"
            ));
        }
        if n_drives <= SET_DRIVES_MAX {
            return Ok(n_drives);
        }
        return largest_divisor(&|_| true).ok_or_else(no_split);
    }
    largest_divisor(&|size| size.is_multiple_of(n_nodes) || n_nodes.is_multiple_of(size))
        .or_else(|| largest_divisor(&|_| true))
        .ok_or_else(no_split)
}

/// Whether `arg` contains a `{a...b}`-shaped pattern.
fn has_ellipsis(arg: &str) -> bool {
    arg.find('{').is_some_and(|open| {
        let rest = &arg[open..];
        rest.find("...").is_some_and(|dots| rest[dots..].contains('}'))
    })
}

/// Endpoint kinds; a deployment uses exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Path,
    Http,
    Https,
}

#[derive(Debug)]
struct ParsedNode {
    /// `host:port`, host lower-cased, IPv6 in brackets.
    name: String,
    /// Host without brackets.
    host: String,
    port: u16,
}

#[derive(Debug)]
struct Parsed {
    kind: Kind,
    node: Option<ParsedNode>,
    path: String,
    /// The original argument, for messages.
    arg: String,
}

fn parse_endpoint(arg: &str) -> Result<Parsed, ClusterError> {
    let bad = |why: &str| invalid(format!("endpoint {arg:?}: {why}"));
    let Some((scheme, rest)) = arg.split_once("://") else {
        if arg.is_empty() {
            return Err(bad("empty path"));
        }
        return Ok(Parsed {
            kind: Kind::Path,
            node: None,
            path: arg.to_owned(),
            arg: arg.to_owned(),
        });
    };
    let kind = if scheme.eq_ignore_ascii_case("http") {
        Kind::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        Kind::Https
    } else {
        return Err(bad("unsupported scheme (use http:// or https://)"));
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => {
            return Err(bad(
                "a URL endpoint needs an absolute path, as in http://host:9000/mnt/disk1",
            ));
        }
    };
    if authority.contains('@') {
        return Err(bad("user information is not allowed in an endpoint"));
    }
    let (host, port) = split_host_port(authority).map_err(|why| bad(&why))?;
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    if port == 0 {
        return Err(bad("port 0 is not a valid node port"));
    }
    if path.contains(['?', '#']) || path.chars().any(char::is_whitespace) {
        return Err(bad("the path may not contain '?', '#' or whitespace"));
    }
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Err(bad("the path may not be the root directory"));
    }
    let host = host.to_ascii_lowercase();
    Ok(Parsed {
        kind,
        node: Some(ParsedNode {
            name: join_host_port(&host, port),
            host,
            port,
        }),
        path: path.to_owned(),
        arg: arg.to_owned(),
    })
}

/// Splits `host:port`, `[v6]:port` or `:port`; the host comes back without brackets.
fn split_host_port(authority: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err("unclosed '[' in the host".to_owned());
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{v6:?} is not an IPv6 address"));
        }
        let Some(port) = after.strip_prefix(':') else {
            return Err("missing port (write host:port)".to_owned());
        };
        (v6, port)
    } else {
        let Some((host, port)) = authority.rsplit_once(':') else {
            return Err("missing port (write host:port)".to_owned());
        };
        if host.contains(':') {
            return Err("an IPv6 host must be written in brackets, as in [::1]:9000".to_owned());
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(format!("{host:?} is not a valid host name"));
        }
        (host, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port {port:?} is not a number"));
    }
    let port: u16 = port.parse().map_err(|_| format!("port {port} is out of range"))?;
    Ok((host.to_owned(), port))
}

/// `host:port`, bracketing an IPv6 host.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn scheme_str(https: bool) -> &'static str {
    if https { "https" } else { "http" }
}

fn check_one_kind(pools: &[Vec<Parsed>]) -> Result<Kind, ClusterError> {
    let mut all = pools.iter().flatten();
    let Some(first) = all.next() else {
        return Err(invalid("no drives given"));
    };
    for p in all {
        if p.kind == first.kind {
            continue;
        }
        let reason = if p.kind == Kind::Path || first.kind == Kind::Path {
            format!(
                "endpoints mix plain paths and URLs ({:?} and {:?}); use only paths for a \
                 single node or only http(s)://host:port/path URLs for a distributed deployment",
                first.arg, p.arg
            )
        } else {
            format!(
                "endpoints mix http:// and https:// ({:?} and {:?})",
                first.arg, p.arg
            )
        };
        return Err(invalid(reason));
    }
    Ok(first.kind)
}

/// A drive's identity for duplicate detection: node plus path with `.` components and trailing
/// slashes removed.
fn drive_key(p: &Parsed) -> (Option<&str>, PathBuf) {
    let path: PathBuf = Path::new(&p.path)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    (p.node.as_ref().map(|n| n.name.as_str()), path)
}

fn check_no_duplicates(pools: &[Vec<Parsed>]) -> Result<(), ClusterError> {
    let mut seen = HashSet::new();
    for p in pools.iter().flatten() {
        if !seen.insert(drive_key(p)) {
            return Err(invalid(format!(
                "duplicate endpoint {:?}: a drive may appear only once",
                p.arg
            )));
        }
    }
    Ok(())
}

/// Resolves `host` to its addresses; empty when it does not resolve.
fn resolve(host: &str, port: u16) -> Vec<IpAddr> {
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a: SocketAddr| a.ip()).collect(),
        Err(err) => {
            tracing::debug!(host, %err, "endpoint host does not resolve; treating it as remote");
            Vec::new()
        }
    }
}

/// Whether this machine owns `ip`: binding a socket to it only succeeds for local addresses
/// (unless the host enables `net.ipv4.ip_nonlocal_bind`, which this check cannot see through).
fn is_owned_ip(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Whether `node` is this node: same port as `local`, and a host that designates this machine
/// (equal to the listen host; or, when listening on every interface or on loopback, `localhost`
/// or a name resolving to a loopback or owned address; else a name resolving to a listen IP).
fn is_local_node(node: &ParsedNode, local: &LocalAddr, listen_ips: &[IpAddr]) -> bool {
    if node.port != local.port {
        return false;
    }
    if let Some(node_host) = &local.node_host {
        return node.host.eq_ignore_ascii_case(node_host);
    }
    if node.host.eq_ignore_ascii_case(&local.host) {
        return true;
    }
    if local.is_wildcard_or_loopback(listen_ips) {
        if node.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        return resolve(&node.host, node.port)
            .into_iter()
            .any(|ip| ip.is_loopback() || (!ip.is_unspecified() && is_owned_ip(ip)));
    }
    resolve(&node.host, node.port)
        .into_iter()
        .any(|ip| listen_ips.contains(&ip))
}

/// The index in `nodes` of the one node that is this node.
fn find_local_node(
    pools: &[Vec<Parsed>],
    nodes: &[String],
    local: &LocalAddr,
) -> Result<usize, ClusterError> {
    let listen_ips = if local.host.is_empty() {
        Vec::new()
    } else {
        resolve(&local.host, local.port)
    };
    let mut by_name: HashMap<&str, &ParsedNode> = HashMap::new();
    for n in pools.iter().flatten().filter_map(|p| p.node.as_ref()) {
        by_name.entry(n.name.as_str()).or_insert(n);
    }
    let mut local_idxs = Vec::new();
    for (node_idx, name) in nodes.iter().enumerate() {
        if let Some(node) = by_name.get(name.as_str())
            && is_local_node(node, local, &listen_ips)
        {
            local_idxs.push(node_idx);
        }
    }
    match local_idxs.as_slice() {
        [] => Err(invalid(match &local.node_host {
            Some(node_host) => format!(
                "none of the endpoints has this node's host {node_host:?} and port {}",
                local.port
            ),
            None => format!("none of the endpoints is this node's address {local}"),
        })),
        [one] => Ok(*one),
        [a, b, ..] => Err(invalid(format!(
            "endpoints name this node ({local}) under several addresses: {} and {}",
            nodes.get(*a).map_or("", String::as_str),
            nodes.get(*b).map_or("", String::as_str),
        ))),
    }
}

/// Groups a pool's drives by node (first-appearance order), checks every node holds the same
/// count, interleaves them and cuts the result into sets.
fn build_pool(
    pool_idx: usize,
    drives: impl Iterator<Item = DriveEndpoint>,
) -> Result<PoolTopology, ClusterError> {
    let mut groups: Vec<(Option<String>, Vec<DriveEndpoint>)> = Vec::new();
    for d in drives {
        match groups.iter_mut().find(|(node, _)| *node == d.node) {
            Some((_, group)) => group.push(d),
            None => groups.push((d.node.clone(), vec![d])),
        }
    }
    let n_nodes = groups.len();
    let per_node_max = groups.iter().map(|(_, g)| g.len()).max().unwrap_or(0);
    if groups.iter().any(|(_, g)| g.len() != per_node_max) {
        let counts: Vec<String> = groups
            .iter()
            .map(|(node, g)| format!("{} has {}", node.as_deref().unwrap_or("this node"), g.len()))
            .collect();
        return Err(invalid(format!(
            "pool #{}: every node must hold the same number of drives, but {}",
            pool_idx + 1,
            counts.join(", ")
        )));
    }
    let n_drives = n_nodes * per_node_max;
    let set_size = set_size_or_reason(n_drives, n_nodes)
        .map_err(|why| invalid(format!("pool #{}: {why}", pool_idx + 1)))?;

    let mut per_node: Vec<_> = groups.into_iter().map(|(_, g)| g.into_iter()).collect();
    let mut ordered = Vec::with_capacity(n_drives);
    for _ in 0..per_node_max {
        for node_drives in per_node.iter_mut() {
            ordered.extend(node_drives.next());
        }
    }
    let mut sets = Vec::with_capacity(n_drives / set_size);
    let mut rest = ordered.into_iter();
    loop {
        let set: Vec<DriveEndpoint> = rest.by_ref().take(set_size).collect();
        if set.is_empty() {
            break;
        }
        sets.push(set);
    }
    Ok(PoolTopology { sets, set_size })
}

fn put_u64(h: &mut Sha256, v: u64) {
    h.update(v.to_le_bytes());
}

fn put_bytes(h: &mut Sha256, b: &[u8]) {
    put_u64(h, b.len() as u64);
    h.update(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    fn build(pools: &[&[&str]], local: &str) -> Result<Topology, ClusterError> {
        let pools: Vec<Vec<String>> = pools.iter().map(|p| strings(p)).collect();
        Topology::from_pools(&pools, &LocalAddr::parse(local).unwrap())
    }

    #[test]
    fn a_named_node_host_finds_this_node_without_resolving_any_name() {
        // Pod DNS names as a StatefulSet behind a headless Service gives them: none resolves
        // here (the `.invalid` top-level domain never does).
        let pools = [strings(&[
            "http://strata-{0...3}.strata-hl.ns.svc.cluster.invalid:9000/data/disk{1...2}",
        ])];
        let local = LocalAddr::parse(":9000")
            .unwrap()
            .with_node_host(Some("STRATA-2.strata-hl.ns.svc.cluster.invalid"));
        let t = Topology::from_pools(&pools, &local).unwrap();
        assert_eq!(t.local_node_idx(), Some(2));
        assert_eq!(t.drives().filter(|(_, _, _, d)| d.is_local).count(), 2);
        // Without it nothing designates this node; with a host on the wrong port neither.
        assert!(Topology::from_pools(&pools, &LocalAddr::parse(":9000").unwrap()).is_err());
        let other_port = LocalAddr::parse(":9001")
            .unwrap()
            .with_node_host(Some("strata-2.strata-hl.ns.svc.cluster.invalid"));
        let err = Topology::from_pools(&pools, &other_port).unwrap_err().to_string();
        assert!(err.contains("strata-2.strata-hl.ns.svc.cluster.invalid"), "{err}");
        // An empty name is no name.
        let blank = LocalAddr::parse(":9000").unwrap().with_node_host(Some("  "));
        assert_eq!(blank, LocalAddr::parse(":9000").unwrap());
    }

    fn reason(r: Result<Topology, ClusterError>) -> String {
        match r {
            Err(ClusterError::InvalidTopology { reason }) => reason,
            other => panic!("expected InvalidTopology, got {other:?}"),
        }
    }

    /// Drives of each node in each set: `counts[set_idx][node]`.
    fn per_node_counts(pool: &PoolTopology) -> Vec<HashMap<String, usize>> {
        pool.sets
            .iter()
            .map(|set| {
                let mut m = HashMap::new();
                for d in set {
                    *m.entry(d.node.clone().unwrap()).or_insert(0) += 1;
                }
                m
            })
            .collect()
    }

    #[test]
    fn set_limits_equal_the_erasure_crate() {
        assert_eq!(SET_DRIVES_MIN, strata_erasure::SET_DRIVES_MIN);
        assert_eq!(SET_DRIVES_MAX, strata_erasure::SET_DRIVES_MAX);
    }

    #[test]
    fn single_node_set_sizes_keep_the_old_rule() {
        for (n_drives, expected) in [(2, 2), (4, 4), (5, 5), (16, 16), (24, 12), (32, 16), (48, 16)] {
            assert_eq!(set_size_for(n_drives, 1).unwrap(), expected, "{n_drives}");
        }
        assert!(set_size_for(0, 1).is_err());
        assert!(set_size_for(1, 1).is_err());
        assert!(set_size_for(17, 1).is_err());
    }

    #[test]
    fn multi_node_set_sizes() {
        for (n_drives, n_nodes, expected) in [
            (16, 4, 16),
            (32, 4, 16),
            (12, 2, 12),
            (20, 2, 10),
            (18, 3, 9),
            (20, 5, 10),
            (24, 8, 8),
            (32, 32, 16),
            (34, 17, 2), // no size fits 17 nodes: largest divisor
        ] {
            assert_eq!(
                set_size_for(n_drives, n_nodes).unwrap(),
                expected,
                "{n_drives}/{n_nodes}"
            );
        }
        assert!(set_size_for(17, 17).is_err());
    }

    #[test]
    fn single_node_default() {
        let pools = Topology::pools_from_args(&strings(&["./data/disk{1...4}"]));
        let t = Topology::from_pools(&pools, &LocalAddr::parse("127.0.0.1:9000").unwrap()).unwrap();
        assert!(!t.is_distributed());
        assert!(t.nodes().is_empty());
        assert_eq!(t.local_node_idx(), None);
        assert_eq!(t.pools.len(), 1);
        assert_eq!(t.pools[0].set_size, 4);
        assert_eq!(t.pools[0].sets.len(), 1);
        let urls: Vec<String> = t.pools[0].sets[0].iter().map(DriveEndpoint::url).collect();
        assert_eq!(
            urls,
            ["./data/disk1", "./data/disk2", "./data/disk3", "./data/disk4"]
        );
        assert!(t.pools[0].sets[0].iter().all(|d| d.is_local && d.node.is_none()));
    }

    #[test]
    fn thirty_two_local_drives_make_two_sets_in_order() {
        let t = build(&[&["/mnt/d{1...32}"]], "127.0.0.1:9000").unwrap();
        let pool = &t.pools[0];
        assert_eq!(pool.set_size, 16);
        assert_eq!(pool.sets.len(), 2);
        assert_eq!(pool.n_drives(), 32);
        assert_eq!(pool.sets[0][0].path, "/mnt/d1");
        assert_eq!(pool.sets[0][15].path, "/mnt/d16");
        assert_eq!(pool.sets[1][0].path, "/mnt/d17");
        assert_eq!(pool.sets[1][15].path, "/mnt/d32");
    }

    fn check_four_by_four(t: &Topology, path_of: impl Fn(usize, usize) -> String) {
        assert!(t.is_distributed());
        let expected_nodes: Vec<String> = (9001..=9004).map(|p| format!("127.0.0.1:{p}")).collect();
        assert_eq!(t.nodes(), expected_nodes);
        assert_eq!(t.local_node_idx(), Some(1));
        assert_eq!(t.node_url(1), "http://127.0.0.1:9002");
        assert_eq!(t.node_url(4), "");
        assert_eq!(t.node_idx("127.0.0.1:9003"), Some(2));
        assert_eq!(t.pools.len(), 1);
        let pool = &t.pools[0];
        assert_eq!(pool.set_size, 16);
        assert_eq!(pool.sets.len(), 1);
        for counts in per_node_counts(pool) {
            assert_eq!(counts.len(), 4);
            assert!(counts.values().all(|&c| c == 4));
        }
        // Node-interleaved: drive d of node n sits at d * 4 + n.
        for (i, d) in pool.sets[0].iter().enumerate() {
            let (drive, node) = (i / 4, i % 4);
            assert_eq!(d.node.as_deref(), Some(expected_nodes[node].as_str()));
            assert_eq!(d.path, path_of(node, drive));
            assert_eq!(d.is_local, node == 1, "{}", d.url());
        }
        assert_eq!(
            pool.sets[0][1].url(),
            format!("http://127.0.0.1:9002{}", path_of(1, 0))
        );
        assert_eq!(t.drives().filter(|(_, _, _, d)| d.is_local).count(), 4);
    }

    #[test]
    fn four_nodes_one_set_of_sixteen() {
        let t = build(&[&["http://127.0.0.1:{9001...9004}/d{1...4}"]], "127.0.0.1:9002").unwrap();
        check_four_by_four(&t, |_, drive| format!("/d{}", drive + 1));
    }

    #[test]
    fn four_nodes_with_own_paths_as_four_arguments_of_one_pool() {
        let t = build(
            &[&[
                "http://127.0.0.1:9001/tmp/n1/d{1...4}",
                "http://127.0.0.1:9002/tmp/n2/d{1...4}",
                "http://127.0.0.1:9003/tmp/n3/d{1...4}",
                "http://127.0.0.1:9004/tmp/n4/d{1...4}",
            ]],
            "127.0.0.1:9002",
        )
        .unwrap();
        check_four_by_four(&t, |node, drive| format!("/tmp/n{}/d{}", node + 1, drive + 1));
    }

    #[test]
    fn sets_spread_evenly_over_nodes() {
        // 2 nodes x 6 drives: one set of 12, 6 per node.
        let t = build(&[&["http://127.0.0.1:{9001...9002}/d{1...6}"]], "127.0.0.1:9001").unwrap();
        assert_eq!(t.pools[0].set_size, 12);
        let counts = per_node_counts(&t.pools[0]);
        assert_eq!(counts.len(), 1);
        assert!(counts[0].values().all(|&c| c == 6));

        // 2 nodes x 10 drives: two sets of 10, 5 per node each.
        let t = build(&[&["http://127.0.0.1:{9001...9002}/d{1...10}"]], "127.0.0.1:9001").unwrap();
        assert_eq!(t.pools[0].set_size, 10);
        for counts in per_node_counts(&t.pools[0]) {
            assert_eq!(counts.len(), 2);
            assert!(counts.values().all(|&c| c == 5));
        }

        // 4 nodes x 8 drives: two sets of 16, 4 per node each.
        let t = build(&[&["http://127.0.0.1:{9001...9004}/d{1...8}"]], "127.0.0.1:9001").unwrap();
        assert_eq!(t.pools[0].sets.len(), 2);
        for counts in per_node_counts(&t.pools[0]) {
            assert_eq!(counts.len(), 4);
            assert!(counts.values().all(|&c| c == 4));
        }

        // 8 nodes x 3 drives: three sets of 8, one drive of every node each.
        let t = build(&[&["http://127.0.0.1:{9001...9008}/d{1...3}"]], "127.0.0.1:9001").unwrap();
        assert_eq!(t.pools[0].set_size, 8);
        assert_eq!(t.pools[0].sets.len(), 3);
        for counts in per_node_counts(&t.pools[0]) {
            assert_eq!(counts.len(), 8);
            assert!(counts.values().all(|&c| c == 1));
        }
    }

    #[test]
    fn several_pools_share_the_node_list() {
        let t = build(
            &[
                &["http://127.0.0.1:{9001...9004}/a{1...4}"],
                &["http://127.0.0.1:{9003...9006}/b{1...2}"],
            ],
            "127.0.0.1:9005",
        )
        .unwrap();
        assert_eq!(t.pools.len(), 2);
        assert_eq!(t.pools[1].set_size, 8);
        assert_eq!(t.nodes().len(), 6);
        assert_eq!(t.nodes()[5], "127.0.0.1:9006");
        assert_eq!(t.local_node_idx(), Some(4));
        assert!(t.pools[0].sets[0].iter().all(|d| !d.is_local));
        let (pool_idx, _, _, d) = t.drives().find(|(_, _, _, d)| d.is_local).unwrap();
        assert_eq!((pool_idx, d.path.as_str()), (1, "/b1"));
    }

    #[test]
    fn pools_from_args_rule() {
        let all = strings(&["http://n{1...4}:9000/d{1...4}", "http://m{1...4}:9000/d{1...4}"]);
        assert_eq!(
            Topology::pools_from_args(&all),
            vec![vec![all[0].clone()], vec![all[1].clone()]]
        );
        let mixed = strings(&["/d{1...4}", "/e"]);
        assert_eq!(Topology::pools_from_args(&mixed), vec![mixed.clone()]);
        let none = strings(&["/a", "/b"]);
        assert_eq!(Topology::pools_from_args(&none), vec![none.clone()]);
        assert!(Topology::pools_from_args(&[]).is_empty());
        assert!(!has_ellipsis("/d{1..4}"));
        assert!(!has_ellipsis("/d...}{"));
    }

    #[test]
    fn mismatched_drive_counts_are_rejected() {
        let r = reason(build(
            &[&["http://127.0.0.1:9001/d{1...4}", "http://127.0.0.1:9002/d{1...3}"]],
            "127.0.0.1:9001",
        ));
        assert!(
            reason_has(&r, &["127.0.0.1:9001 has 4", "127.0.0.1:9002 has 3"]),
            "{r}"
        );
    }

    fn reason_has(reason: &str, parts: &[&str]) -> bool {
        parts.iter().all(|p| reason.contains(p))
    }

    #[test]
    fn mixed_kinds_are_rejected() {
        let r = reason(build(&[&["/d1", "http://127.0.0.1:9000/d2"]], "127.0.0.1:9000"));
        assert!(r.contains("mix plain paths and URLs"), "{r}");
        let r = reason(build(
            &[&["/d{1...4}"], &["http://127.0.0.1:9000/e{1...4}"]],
            "127.0.0.1:9000",
        ));
        assert!(r.contains("mix plain paths and URLs"), "{r}");
        let r = reason(build(
            &[&[
                "http://127.0.0.1:9000/d{1...2}",
                "https://127.0.0.1:9001/d{1...2}",
            ]],
            "127.0.0.1:9000",
        ));
        assert!(r.contains("http:// and https://"), "{r}");
    }

    #[test]
    fn no_local_endpoint_is_rejected() {
        let r = reason(build(
            &[&["http://127.0.0.1:{9001...9004}/d{1...4}"]],
            "127.0.0.1:9009",
        ));
        assert!(
            r.contains("none of the endpoints is this node's address 127.0.0.1:9009"),
            "{r}"
        );
    }

    #[test]
    fn duplicate_endpoints_are_rejected() {
        let r = reason(build(
            &[&[
                "http://127.0.0.1:{9001...9002}/d{1...2}",
                "http://127.0.0.1:9001/d2/",
            ]],
            "127.0.0.1:9001",
        ));
        assert!(r.contains("duplicate endpoint"), "{r}");
        let r = reason(build(&[&["/d{1...4}"], &["/d{4...7}"]], "127.0.0.1:9000"));
        assert!(r.contains("duplicate endpoint \"/d4\""), "{r}");
        let r = reason(build(&[&["./d1", "d1", "/d2", "/d3"]], "127.0.0.1:9000"));
        assert!(r.contains("duplicate endpoint"), "{r}");
        // Host names are case-insensitive.
        let r = reason(build(
            &[&["http://LOCALHOST:9000/d1", "http://localhost:9000/d1"]],
            "localhost:9000",
        ));
        assert!(r.contains("duplicate endpoint"), "{r}");
    }

    #[test]
    fn malformed_urls_are_rejected() {
        for (arg, why) in [
            ("http://127.0.0.1/d1", "missing port"),
            ("http://127.0.0.1:/d1", "not a number"),
            ("http://127.0.0.1:99999/d1", "out of range"),
            ("http://127.0.0.1:0/d1", "port 0"),
            ("http://127.0.0.1:9000", "absolute path"),
            ("http://127.0.0.1:9000/", "root directory"),
            ("http://:9000/d1", "missing host"),
            ("http://::1:9000/d1", "brackets"),
            ("http://u@127.0.0.1:9000/d1", "user information"),
            ("ftp://127.0.0.1:9000/d1", "unsupported scheme"),
            ("http://127.0.0.1:9000/d1?x", "may not contain"),
        ] {
            let r = reason(build(&[&[arg, "http://127.0.0.1:9000/z"]], "127.0.0.1:9000"));
            assert!(r.contains(why), "{arg}: {r}");
        }
        assert!(matches!(
            build(&[&["/d{1...4"]], "127.0.0.1:9000"),
            Err(ClusterError::Ellipsis(_))
        ));
        assert!(reason(build(&[], "127.0.0.1:9000")).contains("no drives"));
        assert!(reason(build(&[&["/d{1...4}"], &[]], "127.0.0.1:9000")).contains("pool #2"));
        let r = reason(build(&[&["/only"]], "127.0.0.1:9000"));
        assert_eq!(r, "pool #1: 1 drives given; at least 2 are needed");
    }

    #[test]
    fn fingerprint_is_the_same_on_every_node_and_tracks_changes() {
        let args: &[&[&str]] = &[&["http://127.0.0.1:{9001...9004}/d{1...4}"]];
        let a = build(args, "127.0.0.1:9001").unwrap();
        let b = build(args, "127.0.0.1:9003").unwrap();
        assert_ne!(a, b, "local flags differ");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
        let changed = build(
            &[&[
                "http://127.0.0.1:{9001...9003}/d{1...4}",
                "http://127.0.0.1:9004/d{1...3}",
                "http://127.0.0.1:9004/x",
            ]],
            "127.0.0.1:9001",
        )
        .unwrap();
        assert_ne!(a.fingerprint(), changed.fingerprint());
        let https = build(&[&["https://127.0.0.1:{9001...9004}/d{1...4}"]], "127.0.0.1:9001").unwrap();
        assert_ne!(a.fingerprint(), https.fingerprint());
        assert_eq!(https.node_url(0), "https://127.0.0.1:9001");
        assert_eq!(https.pools[0].sets[0][0].url(), "https://127.0.0.1:9001/d1");
        // Same drives, different pool split.
        let one_pool = build(&[&["/a{1...4}", "/b{1...4}"]], "127.0.0.1:9000").unwrap();
        let two_pools = build(&[&["/a{1...4}"], &["/b{1...4}"]], "127.0.0.1:9000").unwrap();
        assert_ne!(one_pool.fingerprint(), two_pools.fingerprint());
    }

    #[test]
    fn wildcard_listen_address_finds_localhost_and_loopback() {
        for host in ["localhost", "127.0.0.1", "LocalHost"] {
            let arg = format!("http://{host}:9000/d{{1...4}}");
            let remote = "http://192.0.2.10:9000/d{1...4}";
            for listen in ["0.0.0.0:9000", "[::]:9000", ":9000"] {
                let pools = vec![vec![arg.clone(), remote.to_owned()]];
                let t = Topology::from_pools(&pools, &LocalAddr::parse(listen).unwrap()).unwrap();
                assert_eq!(t.local_node_idx(), Some(0), "{host} {listen}");
                assert_eq!(t.drives().filter(|(_, _, _, d)| d.is_local).count(), 4);
            }
        }
        // Listening on loopback: `localhost` designates this node too.
        let t = build(&[&["http://localhost:9000/d{1...4}"]], "127.0.0.1:9000").unwrap();
        assert_eq!(t.local_node_idx(), Some(0));
        // A specific non-loopback address only matches itself.
        let r = reason(build(&[&["http://127.0.0.1:9000/d{1...4}"]], "192.0.2.10:9000"));
        assert!(r.contains("none of the endpoints"), "{r}");
    }

    #[test]
    fn one_node_under_two_names_is_rejected() {
        let r = reason(build(
            &[&["http://localhost:9000/a{1...2}", "http://127.0.0.1:9000/b{1...2}"]],
            "0.0.0.0:9000",
        ));
        assert!(r.contains("several addresses"), "{r}");
    }

    #[test]
    fn local_addr_parsing() {
        let a = LocalAddr::parse("127.0.0.1:9001").unwrap();
        assert_eq!((a.host(), a.port()), ("127.0.0.1", 9001));
        let a = LocalAddr::parse("[::]:9000").unwrap();
        assert_eq!(
            (a.host(), a.port(), a.to_string().as_str()),
            ("::", 9000, "[::]:9000")
        );
        let a = LocalAddr::parse(":9000").unwrap();
        assert_eq!((a.host(), a.port()), ("", 9000));
        assert_eq!(LocalAddr::parse("localhost:0").unwrap().port(), 0);
        for bad in [
            "9000",
            "host:",
            "host:x",
            "host:70000",
            "::1:9000",
            "[::1]9000",
            "[zz]:1",
            "a b:1",
        ] {
            assert!(LocalAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
