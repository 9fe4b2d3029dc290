//! [`RpcBody`]: the one HTTP body type of RPC requests and responses, either a small body held
//! whole (metadata) or a stream fed through a bounded channel (shard data).
//!
//! **Invariant:** a streamed body holds at most the channel's capacity in frames; the sender
//! waits when it is full, so backpressure from HTTP/2 flow control reaches the producer.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// One frame of a streamed body, or the error that resets the stream.
pub(crate) type BodyItem = Result<Frame<Bytes>, std::io::Error>;

/// The body of an RPC request or response.
#[derive(Debug)]
pub struct RpcBody(Inner);

#[derive(Debug)]
enum Inner {
    /// The whole body (taken when sent).
    Full(Option<Bytes>),
    /// Frames from a bounded channel; the body ends when every sender is dropped.
    Channel(mpsc::Receiver<BodyItem>),
}

impl RpcBody {
    /// A body held whole.
    pub(crate) fn full(bytes: Bytes) -> Self {
        RpcBody(Inner::Full(Some(bytes)))
    }

    /// A streamed body and the sender that feeds it, holding at most `capacity` frames.
    pub(crate) fn channel(capacity: usize) -> (mpsc::Sender<BodyItem>, Self) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, RpcBody(Inner::Channel(rx)))
    }
}

impl Body for RpcBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.0 {
            Inner::Full(bytes) => {
                Poll::Ready(bytes.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b))))
            }
            Inner::Channel(rx) => rx.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
            Inner::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Inner::Channel(_) => SizeHint::default(),
        }
    }
}
