//! The byte streams under HTTP/2: [`Connector`] (client side) and [`Acceptor`] (server side).
//!
//! Both are plain TCP (h2c with prior knowledge) today. They are the seam where rustls goes:
//! a TLS variant wraps the TCP stream before HTTP/2 sees it, and nothing above changes, since
//! everything above works on a boxed [`RpcIo`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A connected byte stream HTTP/2 runs over.
pub(crate) trait RpcIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> RpcIo for T {}

/// How a client reaches a peer.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Connector {
    /// Plain TCP (h2c).
    #[default]
    Tcp,
}

impl Connector {
    /// Opens a stream to `authority` (`host:port`).
    pub(crate) async fn connect(&self, authority: &str) -> std::io::Result<Box<dyn RpcIo>> {
        match self {
            Connector::Tcp => {
                let stream = TcpStream::connect(authority).await?;
                // Small metadata calls must not wait for Nagle's algorithm.
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
        }
    }
}

/// How a server turns an accepted TCP connection into the stream HTTP/2 runs over.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Acceptor {
    /// Plain TCP (h2c).
    #[default]
    Tcp,
}

/// Longest a server waits for an accepted connection's handshake (TLS, later).
pub(crate) const ACCEPT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Acceptor {
    /// Wraps an accepted connection.
    pub(crate) async fn accept(&self, stream: TcpStream) -> std::io::Result<Box<dyn RpcIo>> {
        match self {
            Acceptor::Tcp => {
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
        }
    }
}
