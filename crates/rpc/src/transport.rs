//! The byte streams under HTTP/2: [`Connector`] (client side) and [`Acceptor`] (server side),
//! plain TCP (h2c with prior knowledge) or TLS (rustls with the `ring` provider), and the TLS
//! configurations they use ([`tls_client_config`], [`tls_server_config`]).
//!
//! A TLS variant wraps the TCP stream before HTTP/2 sees it, and nothing above changes, since
//! everything above works on a boxed [`RpcIo`].
//!
//! **Invariant:** TLS here is TLS 1.2 or 1.3 only, and a client verifies the peer's
//! certificate chain against the roots it was given (never the system's) and the peer URL's
//! host (a DNS name or an IP address).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::RpcError;

/// A connected byte stream HTTP/2 runs over.
pub(crate) trait RpcIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> RpcIo for T {}

/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// TLS versions spoken, both sides.
static TLS_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for RPC over TLS: TLS 1.2/1.3, ALPN `h2`, peers verified against
/// `roots` only. Fails when `roots` is empty (no peer could ever be trusted).
pub fn tls_client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, RpcError> {
    if roots.is_empty() {
        return Err(RpcError::Tls {
            reason: "no trust roots for verifying peers".to_string(),
        });
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)
        .map_err(|e| RpcError::Tls {
            reason: format!("client TLS versions: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration: TLS 1.2/1.3, certificate chain `chain` (leaf first) with its
/// private `key`, offering the ALPN protocols `alpn` in order of preference (a client without
/// ALPN is served too). Fails when the key does not match the certificate or is unsupported.
pub fn tls_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, RpcError> {
    let resolver = rustls::sign::SingleCertAndKey::from(certified_key(chain, key)?);
    tls_server_config_with_resolver(Arc::new(resolver), alpn)
}

/// A certificate chain and its private key as one signing identity, checked to match.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::sign::CertifiedKey>, RpcError> {
    let provider = crypto_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| RpcError::Tls {
            reason: format!("private key: {e}"),
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| RpcError::Tls {
        reason: format!("certificate and private key: {e}"),
    })?;
    Ok(Arc::new(certified))
}

/// A server configuration (TLS 1.2 and 1.3, `alpn`) whose certificate comes from `resolver`
/// at each handshake, so it can be replaced while the server runs.
pub fn tls_server_config_with_resolver(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, RpcError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(TLS_VERSIONS)
        .map_err(|e| RpcError::Tls {
            reason: format!("server TLS versions: {e}"),
        })?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// How a client reaches a peer.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Connector {
    /// Plain TCP (h2c); peers are `http://` URLs.
    #[default]
    Tcp,
    /// TLS over TCP (see [`tls_client_config`]); peers are `https://` URLs.
    Tls(Arc<ClientConfig>),
}

impl Connector {
    /// The URL scheme of peers reached through this connector.
    pub fn scheme(&self) -> &'static str {
        match self {
            Connector::Tcp => "http",
            Connector::Tls(_) => "https",
        }
    }

    /// Opens a stream to `authority` (`host:port`).
    pub(crate) async fn connect(&self, authority: &str) -> std::io::Result<Box<dyn RpcIo>> {
        let stream = TcpStream::connect(authority).await?;
        // Small metadata calls must not wait for Nagle's algorithm.
        stream.set_nodelay(true)?;
        match self {
            Connector::Tcp => Ok(Box::new(stream)),
            Connector::Tls(config) => {
                let name = server_name(authority)?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, stream)
                    .await?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// The name a peer's certificate must carry: the host of `authority`, a DNS name or an IP
/// address (`[v6]` without the brackets).
pub(crate) fn server_name(authority: &str) -> std::io::Result<ServerName<'static>> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let parsed: http::uri::Authority = authority
        .parse()
        .map_err(|_| invalid(format!("{authority:?} is not host:port")))?;
    let host = parsed.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_string())
        .map_err(|_| invalid(format!("{host:?} is neither a DNS name nor an IP address")))
}

/// How a server turns an accepted TCP connection into the stream HTTP/2 runs over.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Acceptor {
    /// Plain TCP (h2c).
    #[default]
    Tcp,
    /// TLS (see [`tls_server_config`]; offer ALPN `h2`).
    Tls(Arc<ServerConfig>),
}

/// Longest a server waits for an accepted connection's handshake.
pub(crate) const ACCEPT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Acceptor {
    /// Wraps an accepted connection.
    pub(crate) async fn accept(&self, stream: TcpStream) -> std::io::Result<Box<dyn RpcIo>> {
        stream.set_nodelay(true)?;
        match self {
            Acceptor::Tcp => Ok(Box::new(stream)),
            Acceptor::Tls(config) => {
                let tls = tokio_rustls::TlsAcceptor::from(Arc::clone(config))
                    .accept(stream)
                    .await?;
                Ok(Box::new(tls))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_authorities() {
        assert!(matches!(
            server_name("127.0.0.1:9000").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:9000").unwrap(),
            ServerName::IpAddress(_)
        ));
        match server_name("node-1.example:9000").unwrap() {
            ServerName::DnsName(name) => assert_eq!(name.as_ref(), "node-1.example"),
            other => panic!("expected a DNS name, got {other:?}"),
        }
        assert!(server_name("bad host:1").is_err());
    }

    #[test]
    fn a_client_needs_roots() {
        assert!(matches!(
            tls_client_config(RootCertStore::empty()),
            Err(RpcError::Tls { .. })
        ));
    }

    #[test]
    fn schemes() {
        assert_eq!(Connector::Tcp.scheme(), "http");
        let mut roots = RootCertStore::empty();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        roots.add(cert.cert.der().clone()).unwrap();
        assert_eq!(
            Connector::Tls(tls_client_config(roots).unwrap()).scheme(),
            "https"
        );
    }
}
