//! TLS from a certificate directory (MinIO's layout): `public.crt` (PEM chain, leaf first) and
//! `private.key` (PEM, PKCS#8, RSA or EC) give the listener its server configuration (TLS 1.2
//! and 1.3, ALPN `h2` and `http/1.1`); the chain of `public.crt` plus every PEM certificate in
//! `CAs/` are the roots other nodes are verified against (RPC client configuration).
//!
//! [`check_endpoints`] keeps the drive endpoints' scheme in step: `https://` exactly when a
//! certificate directory is configured.
//!
//! Several certificates (SNI): each subdirectory but `CAs/` holding its own `public.crt` and
//! `private.key` (MinIO's layout, e.g. `s3.example.com/`) is served to clients that name a host
//! its certificate is valid for; every other client gets the top-level pair.
//!
//! The listener's certificates are reloaded while the server runs ([`ReloadingCert`]): every
//! [`RELOAD_INTERVAL`] each pair's modification times are checked (following symlinks, so a
//! Kubernetes Secret's atomic update is seen), and a changed pair that loads and matches
//! replaces the served one for new connections; a pair that does not load is logged and the
//! previous one kept. Peer trust roots (`CAs/`) and the set of subdirectories are read at
//! startup only.
//!
//! Invariant: at startup a missing, unreadable or malformed file is an error naming that file;
//! the system's trust roots are never used; a reload never leaves the listener without a
//! certificate.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use strata_cluster::topology::Topology;

/// The certificate chain file in the certificate directory.
pub const PUBLIC_CERT_FILE: &str = "public.crt";
/// The private key file in the certificate directory.
pub const PRIVATE_KEY_FILE: &str = "private.key";
/// The subdirectory of extra trust roots for connections to other nodes.
pub const CAS_DIR: &str = "CAs";

/// How often the certificate files are checked for a new pair.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The TLS configurations of this node.
#[derive(Debug)]
pub struct Tls {
    /// What the listener serves (S3 and RPC on one port).
    pub server: Arc<rustls::ServerConfig>,
    /// How this node reaches its peers.
    pub connector: strata_rpc::Connector,
    /// The listener's certificate, reloadable.
    pub cert: Arc<ReloadingCert>,
}

/// One certificate and key, replaced when their files change.
struct CertPair {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<rustls::sign::CertifiedKey>>,
    /// The files' modification times the current pair was loaded at (or last tried at).
    loaded: RwLock<(Option<SystemTime>, Option<SystemTime>)>,
}

/// The listener's certificates: the top-level pair and one per host subdirectory.
pub struct ReloadingCert {
    default: CertPair,
    by_host: Vec<CertPair>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.default.cert_path)
            .field("hosts", &self.by_host.len())
            .finish_non_exhaustive()
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        if let Some(name) = hello.server_name()
            && let Ok(host) = rustls::pki_types::ServerName::try_from(name)
        {
            for pair in &self.by_host {
                let Some(key) = pair.current() else { continue };
                let valid = key.end_entity_cert().ok().is_some_and(|der| {
                    webpki::EndEntityCert::try_from(der)
                        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&host).is_ok())
                });
                if valid {
                    return Some(key);
                }
            }
        }
        self.default.current()
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl CertPair {
    /// The pair in `dir`, loaded now.
    fn open(dir: &Path) -> anyhow::Result<CertPair> {
        let cert_path = dir.join(PUBLIC_CERT_FILE);
        let key_path = dir.join(PRIVATE_KEY_FILE);
        let pair = CertPair {
            loaded: RwLock::new((modified(&cert_path), modified(&key_path))),
            current: RwLock::new(load_pair(&cert_path, &key_path)?),
            cert_path,
            key_path,
        };
        Ok(pair)
    }

    fn current(&self) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }

    fn load_pair(&self) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
        load_pair(&self.cert_path, &self.key_path)
    }
}

fn load_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let chain = read_certs(cert_path)?;
    let key = read_key(key_path)?;
    strata_rpc::certified_key(chain, key)
        .with_context(|| format!("loading {} with {}", cert_path.display(), key_path.display()))
}

impl ReloadingCert {
    /// The expiry (Unix seconds) of the earliest-expiring end-entity certificate served.
    pub fn earliest_not_after(&self) -> Option<i64> {
        std::iter::once(&self.default)
            .chain(&self.by_host)
            .filter_map(CertPair::current)
            .filter_map(|key| {
                let der = key.end_entity_cert().ok()?;
                let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
                Some(cert.validity().not_after.timestamp())
            })
            .min()
    }

    /// Loads the files again where their modification times changed; returns whether a
    /// served pair was replaced.
    pub fn reload_if_changed(&self) -> bool {
        let mut replaced = self.default.reload_if_changed();
        for pair in &self.by_host {
            replaced |= pair.reload_if_changed();
        }
        replaced
    }
}

impl CertPair {
    /// Loads the files again when their modification times changed; returns whether the
    /// served pair was replaced.
    fn reload_if_changed(&self) -> bool {
        let stamps = (modified(&self.cert_path), modified(&self.key_path));
        if self.loaded.read().is_ok_and(|loaded| *loaded == stamps) {
            return false;
        }
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = stamps;
        }
        match self.load_pair() {
            Ok(pair) => {
                if let Ok(mut current) = self.current.write() {
                    *current = pair;
                }
                tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                true
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "TLS certificate files changed but do not load; keeping the previous certificate"
                );
                false
            }
        }
    }
}

impl ReloadingCert {
    /// Checks the files every [`RELOAD_INTERVAL`] until the process ends.
    pub fn spawn_reloader(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(RELOAD_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let cert = Arc::clone(&self);
                // File reads are blocking; a slow filesystem must not stall a runtime worker.
                let _ = tokio::task::spawn_blocking(move || cert.reload_if_changed()).await;
            }
        });
    }
}

/// Every certificate in the PEM file `path`; at least one.
fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading TLS certificate file {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading TLS certificate file {}", path.display()))?;
    if certs.is_empty() {
        bail!("TLS certificate file {} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

/// The private key in the PEM file `path`.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "TLS private key file {} holds no PEM private key (PKCS#8, RSA or EC)",
            path.display()
        ),
        other => anyhow::anyhow!("reading TLS private key file {}: {other}", path.display()),
    })
}

/// The certificates of every file in `dir` (sorted by name), each file holding at least one.
fn read_cas(dir: &Path) -> anyhow::Result<Vec<(std::path::PathBuf, Vec<CertificateDer<'static>>)>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading TLS CA directory {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading TLS CA directory {}", dir.display()))?;
        let path = entry.path();
        // Follows symlinks (certificate managers link files in).
        if std::fs::metadata(&path)
            .with_context(|| format!("reading TLS CA file {}", path.display()))?
            .is_file()
        {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| read_certs(&path).map(|certs| (path, certs)))
        .collect()
}

/// Loads the certificate directory `dir`.
pub fn load(dir: &Path) -> anyhow::Result<Tls> {
    if !dir.is_dir() {
        bail!(
            "TLS certificate directory {} does not exist or is not a directory",
            dir.display()
        );
    }
    let cert_path = dir.join(PUBLIC_CERT_FILE);
    let key_path = dir.join(PRIVATE_KEY_FILE);
    let chain = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;

    let mut roots = RootCertStore::empty();
    for cert in &chain {
        roots
            .add(cert.clone())
            .with_context(|| format!("using {} as a trust root for peers", cert_path.display()))?;
    }
    let cas_dir = dir.join(CAS_DIR);
    if cas_dir.exists() {
        if !cas_dir.is_dir() {
            bail!("{} is not a directory", cas_dir.display());
        }
        for (path, certs) in read_cas(&cas_dir)? {
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("using {} as a trust root for peers", path.display()))?;
            }
        }
    }

    drop((chain, key));
    let mut by_host = Vec::new();
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading TLS certificate directory {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        // Hidden entries are not hosts: a Kubernetes Secret volume keeps its files in `..data`
        // and `..<timestamp>` directories, and the latter is deleted on every update.
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n != CAS_DIR && !n.to_string_lossy().starts_with('.'))
                && p.join(PUBLIC_CERT_FILE).exists()
        })
        .collect();
    subdirs.sort();
    for sub in subdirs {
        by_host.push(CertPair::open(&sub)?);
        tracing::info!(dir = %sub.display(), "TLS certificate for the hosts it names (SNI)");
    }
    let cert = Arc::new(ReloadingCert {
        default: CertPair::open(dir)?,
        by_host,
    });
    let resolver: Arc<dyn rustls::server::ResolvesServerCert> = cert.clone();
    let server =
        strata_rpc::tls_server_config_with_resolver(resolver, &[strata_rpc::ALPN_H2, strata_rpc::ALPN_HTTP1])
            .context("building the TLS server configuration")?;
    let client = strata_rpc::tls_client_config(roots).context("building the TLS client configuration")?;
    Ok(Tls {
        server,
        connector: strata_rpc::Connector::Tls(client),
        cert,
    })
}

/// Refuses a topology whose endpoint scheme does not match whether TLS is configured: `https://`
/// endpoints need a certificate directory, and with one every endpoint is `https://` (peers
/// speak only TLS to this node's port).
pub fn check_endpoints(topology: &Topology, tls_configured: bool) -> anyhow::Result<()> {
    if !topology.is_distributed() {
        return Ok(());
    }
    let https = topology.node_url(0).starts_with("https://");
    match (https, tls_configured) {
        (true, false) => bail!(
            "the drive endpoints are https:// but no TLS certificates are configured: set --certs-dir (STRATA_CERTS_DIR, certs_dir) to a directory holding {PUBLIC_CERT_FILE} and {PRIVATE_KEY_FILE}"
        ),
        (false, true) => bail!(
            "TLS certificates are configured (certs_dir), so this node serves only TLS, but the drive endpoints are http://: write them as https://HOST:PORT/PATH"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_cluster::topology::LocalAddr;

    #[test]
    fn endpoint_schemes_follow_the_certificates() {
        let local = LocalAddr::parse("127.0.0.1:9000").unwrap();
        let topology = |scheme: &str| {
            let pool = vec![
                format!("{scheme}://127.0.0.1:9000/d{{1...4}}"),
                format!("{scheme}://127.0.0.1:9001/d{{1...4}}"),
            ];
            Topology::from_pools(&[pool], &local).unwrap()
        };
        check_endpoints(&topology("https"), true).unwrap();
        check_endpoints(&topology("http"), false).unwrap();
        let e = check_endpoints(&topology("https"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--certs-dir"), "{e}");
        let e = check_endpoints(&topology("http"), true).unwrap_err().to_string();
        assert!(e.contains("https://"), "{e}");
        let single = Topology::from_pools(&[vec!["/d{1...4}".to_string()]], &local).unwrap();
        check_endpoints(&single, true).unwrap();
        check_endpoints(&single, false).unwrap();
    }

    fn write_identity(dir: &Path) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        let id = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        std::fs::write(dir.join(PUBLIC_CERT_FILE), id.cert.pem()).unwrap();
        std::fs::write(dir.join(PRIVATE_KEY_FILE), id.signing_key.serialize_pem()).unwrap();
        id
    }

    fn error_of(dir: &Path) -> String {
        format!("{:#}", load(dir).unwrap_err())
    }

    fn served(tls: &Tls) -> Vec<u8> {
        let current = tls.cert.default.current.read().unwrap();
        current.cert[0].as_ref().to_vec()
    }

    #[test]
    fn a_changed_pair_is_served_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_identity(dir.path());
        let tls = load(dir.path()).unwrap();
        assert_eq!(served(&tls), first.cert.der().to_vec());
        assert!(!tls.cert.reload_if_changed(), "unchanged files are not reloaded");
        std::thread::sleep(Duration::from_millis(20));
        let second = write_identity(dir.path());
        assert!(tls.cert.reload_if_changed());
        assert_eq!(served(&tls), second.cert.der().to_vec());
        // A half-written or mismatched pair keeps the previous certificate.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join(PUBLIC_CERT_FILE), first.cert.pem()).unwrap();
        assert!(
            !tls.cert.reload_if_changed(),
            "a certificate without its key is not served"
        );
        assert_eq!(served(&tls), second.cert.der().to_vec());
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join(PUBLIC_CERT_FILE), "garbage").unwrap();
        assert!(!tls.cert.reload_if_changed());
        assert_eq!(served(&tls), second.cert.der().to_vec());
    }

    /// Lays out `dir` as the kubelet does a Secret volume: the files live in `..<version>`,
    /// `..data` links to it, and each file name links into `..data`. Returns the identity.
    fn write_secret_volume(dir: &Path, version: &str) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        let versioned = dir.join(format!("..{version}"));
        std::fs::create_dir(&versioned).unwrap();
        let id = write_identity(&versioned);
        let data = dir.join("..data");
        let tmp_link = dir.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..{version}"), &tmp_link).unwrap();
        std::fs::rename(&tmp_link, &data).unwrap();
        for name in [PUBLIC_CERT_FILE, PRIVATE_KEY_FILE] {
            let link = dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
            }
        }
        id
    }

    #[test]
    fn a_kubernetes_secret_volume_is_one_pair_and_its_updates_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_secret_volume(dir.path(), "2026_01_01");
        let tls = load(dir.path()).unwrap();
        assert!(
            tls.cert.by_host.is_empty(),
            "the kubelet's hidden directories are not hosts"
        );
        assert_eq!(served(&tls), first.cert.der().to_vec());
        // A renewal: a new versioned directory, `..data` swapped to it, the old one deleted.
        std::thread::sleep(Duration::from_millis(20));
        let second = write_secret_volume(dir.path(), "2026_02_01");
        std::fs::remove_dir_all(dir.path().join("..2026_01_01")).unwrap();
        assert!(tls.cert.reload_if_changed());
        assert_eq!(served(&tls), second.cert.der().to_vec());
    }

    #[test]
    fn the_served_certificate_expiry_is_read_for_the_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 17);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join(PUBLIC_CERT_FILE), cert.pem()).unwrap();
        std::fs::write(dir.path().join(PRIVATE_KEY_FILE), key.serialize_pem()).unwrap();
        let tls = load(dir.path()).unwrap();
        // 2031-05-17T00:00:00Z
        assert_eq!(tls.cert.earliest_not_after(), Some(1_936_742_400));
    }

    #[test]
    fn loads_a_directory_with_cas() {
        let dir = tempfile::tempdir().unwrap();
        write_identity(dir.path());
        let tls = load(dir.path()).unwrap();
        assert_eq!(tls.server.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(tls.connector.scheme(), "https");

        let other = rcgen::generate_simple_self_signed(vec!["10.0.0.2".to_string()]).unwrap();
        std::fs::create_dir(dir.path().join(CAS_DIR)).unwrap();
        std::fs::write(dir.path().join(CAS_DIR).join("peer.crt"), other.cert.pem()).unwrap();
        load(dir.path()).unwrap();
    }

    #[test]
    fn missing_or_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(error_of(&missing).contains("nope"), "{}", error_of(&missing));

        let e = error_of(dir.path());
        assert!(e.contains(PUBLIC_CERT_FILE), "{e}");

        let id = write_identity(dir.path());
        std::fs::remove_file(dir.path().join(PRIVATE_KEY_FILE)).unwrap();
        let e = error_of(dir.path());
        assert!(e.contains(PRIVATE_KEY_FILE), "{e}");

        // A key file holding a certificate, and a certificate file holding a key.
        std::fs::write(dir.path().join(PRIVATE_KEY_FILE), id.cert.pem()).unwrap();
        let e = error_of(dir.path());
        assert!(
            e.contains(PRIVATE_KEY_FILE) && e.contains("no PEM private key"),
            "{e}"
        );
        std::fs::write(dir.path().join(PUBLIC_CERT_FILE), id.signing_key.serialize_pem()).unwrap();
        let e = error_of(dir.path());
        assert!(
            e.contains(PUBLIC_CERT_FILE) && e.contains("no PEM certificate"),
            "{e}"
        );

        // A key that does not belong to the certificate.
        let id = write_identity(dir.path());
        let stranger = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.path().join(PRIVATE_KEY_FILE), stranger.serialize_pem()).unwrap();
        let e = error_of(dir.path());
        assert!(e.contains(PRIVATE_KEY_FILE), "{e}");
        std::fs::write(dir.path().join(PRIVATE_KEY_FILE), id.signing_key.serialize_pem()).unwrap();
        load(dir.path()).unwrap();

        // A file in CAs/ without a certificate.
        std::fs::create_dir(dir.path().join(CAS_DIR)).unwrap();
        std::fs::write(dir.path().join(CAS_DIR).join("notes.txt"), "hello").unwrap();
        let e = error_of(dir.path());
        assert!(e.contains("notes.txt"), "{e}");
    }
}
