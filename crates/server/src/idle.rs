//! The idle watchdog of one client connection: [`IdleIo`] wraps the accepted stream (under TLS,
//! when there is one) and fails a read or write that has been waiting too long with nothing
//! moving; [`InFlight`] is the count of requests the server is working on, which the service
//! holds up while a handler runs; [`IdleBody`] ends a request body that stops arriving.
//!
//! Invariants:
//! - A connection that has not sent its first byte within `first_byte` (from accept) is failed
//!   with `TimedOut`; after that, one on which no byte was read or written for `idle` is failed
//!   the same way. The clock is only looked at while a read or a write is pending, so a
//!   connection the server is not asking anything of is never failed.
//! - Never while a request is in flight ([`InFlight::begin`] not yet dropped): a handler that
//!   works for a long time without sending anything (a large CompleteMultipartUpload) is not
//!   cut off, and neither is an HTTP/2 connection with an open stream. A response streaming to
//!   a slow reader stays alive as long as bytes move; one that stops moving is cut after `idle`.
//! - HTTP/2 keep-alive pings are traffic: an idle h2 connection whose peer answers them stays
//!   open (the per-client and global caps bound how many); one whose peer does not is closed by
//!   hyper's ping timeout.
//! - A request body that yields nothing for `idle` while its handler waits on it ends with an
//!   error (`IdleBody`), on HTTP/1.1 and on h2 streams alike.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The two timeouts of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdleTimeouts {
    /// From accept to the first byte received (also bounds a TLS handshake).
    pub first_byte: Duration,
    /// Longest time with no byte read or written while the server waits on the client.
    pub idle: Duration,
}

/// Requests of one connection the server is working on. Shared by the connection's
/// [`IdleIo`] and its service.
#[derive(Debug, Default)]
pub struct InFlight {
    n_requests: AtomicUsize,
}

impl InFlight {
    /// Marks a request in flight until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlightGuard {
        self.n_requests.fetch_add(1, Ordering::Relaxed);
        InFlightGuard {
            in_flight: Arc::clone(self),
        }
    }

    fn is_busy(&self) -> bool {
        self.n_requests.load(Ordering::Relaxed) > 0
    }
}

/// Holds a request in flight; see [`InFlight::begin`].
#[derive(Debug)]
pub struct InFlightGuard {
    in_flight: Arc<InFlight>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.in_flight.n_requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which timeout ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdleTimeout {
    /// Nothing received since the connection was accepted.
    #[error("the client sent nothing within {} ms of connecting", .0.as_millis())]
    FirstByte(Duration),
    /// Nothing read or written for the idle timeout.
    #[error("no bytes moved for {} ms", .0.as_millis())]
    Idle(Duration),
}

impl IdleTimeout {
    /// Whether `e` (possibly wrapped by hyper or rustls) is one of these timeouts.
    pub fn of(e: &(dyn std::error::Error + 'static)) -> Option<IdleTimeout> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(t) = err.downcast_ref::<IdleTimeout>() {
                return Some(*t);
            }
            if let Some(io) = err.downcast_ref::<io::Error>()
                && let Some(t) = io.get_ref().and_then(|i| i.downcast_ref::<IdleTimeout>())
            {
                return Some(*t);
            }
            cur = err.source();
        }
        None
    }
}

/// A stream whose pending reads and writes fail once the connection has been idle too long.
pub struct IdleIo<T> {
    inner: T,
    timeouts: IdleTimeouts,
    in_flight: Arc<InFlight>,
    /// When a byte last moved (accept time until then).
    last_progress: Instant,
    received_any: bool,
    /// Armed on the first pending read or write; re-armed lazily when it fires early.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> IdleIo<T> {
    /// Wraps a just-accepted stream.
    pub fn new(inner: T, timeouts: IdleTimeouts, in_flight: Arc<InFlight>) -> IdleIo<T> {
        IdleIo {
            inner,
            timeouts,
            in_flight,
            last_progress: Instant::now(),
            received_any: false,
            timer: None,
        }
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// The current timeout, and the error it ends in.
    fn limit(&self) -> (Duration, IdleTimeout) {
        if self.received_any {
            (self.timeouts.idle, IdleTimeout::Idle(self.timeouts.idle))
        } else {
            (
                self.timeouts.first_byte,
                IdleTimeout::FirstByte(self.timeouts.first_byte),
            )
        }
    }

    /// Called while a read or write is pending: `Ready` with the error once the connection is
    /// over its timeout, else `Pending` with the timer registered to wake this task.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let (limit, error) = self.limit();
            let deadline = self.last_progress + limit;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            if self.in_flight.is_busy() {
                // The server owes the client an answer: not the client's silence.
                timer.as_mut().reset(now + limit);
            } else if deadline > now {
                timer.as_mut().reset(deadline);
            } else {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, error));
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n_before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > n_before {
                    this.received_any = true;
                    this.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> IdleIo<T> {
    fn after_write(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.poll_idle(cx).map(Err),
            done => done,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The error of a request body that stopped arriving.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled: no bytes for {} ms", .0.as_millis())]
pub struct BodyStalled(pub Duration);

/// A request body that fails with [`BodyStalled`] when a poll has waited `idle` for data.
pub struct IdleBody<B> {
    inner: B,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
}

impl<B> IdleBody<B> {
    /// Wraps a request body.
    pub fn new(inner: B, idle: Duration) -> IdleBody<B> {
        IdleBody {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            armed: false,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    this.timer.as_mut().reset(Instant::now() + this.idle);
                }
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(Box::new(BodyStalled(this.idle)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const FIRST_BYTE: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    const TIMEOUTS: IdleTimeouts = IdleTimeouts {
        first_byte: FIRST_BYTE,
        idle: IDLE,
    };

    fn pair() -> (IdleIo<DuplexStream>, DuplexStream, Arc<InFlight>) {
        let (server, client) = tokio::io::duplex(64 * 1024);
        let in_flight = Arc::new(InFlight::default());
        (
            IdleIo::new(server, TIMEOUTS, Arc::clone(&in_flight)),
            client,
            in_flight,
        )
    }

    /// Reads one chunk from `io` within `within`: `Some(result)` if the read finished.
    async fn read_within(io: &mut IdleIo<DuplexStream>, within: Duration) -> Option<io::Result<usize>> {
        let mut buf = [0u8; 64];
        tokio::time::timeout(within, io.read(&mut buf)).await.ok()
    }

    fn timed_out_with(r: Option<io::Result<usize>>) -> Option<IdleTimeout> {
        let e = r?.err()?;
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        IdleTimeout::of(&e)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_fails_at_the_first_byte_timeout() {
        let (mut io, _client, _) = pair();
        let started = Instant::now();
        let r = read_within(&mut io, FIRST_BYTE * 3).await;
        assert_eq!(timed_out_with(r), Some(IdleTimeout::FirstByte(FIRST_BYTE)));
        assert_eq!(started.elapsed(), FIRST_BYTE);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_byte_the_idle_timeout_applies() {
        let (mut io, mut client, _) = pair();
        client.write_all(b"G").await.unwrap();
        assert_eq!(
            read_within(&mut io, Duration::from_secs(1))
                .await
                .unwrap()
                .unwrap(),
            1
        );
        let started = Instant::now();
        let r = read_within(&mut io, IDLE * 3).await;
        assert_eq!(timed_out_with(r), Some(IdleTimeout::Idle(IDLE)));
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_trickling_in_keep_it_open() {
        let (mut io, mut client, _) = pair();
        for _ in 0..10 {
            tokio::time::advance(IDLE - Duration::from_secs(1)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(read_within(&mut io, Duration::ZERO).await.unwrap().unwrap(), 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn writes_that_move_keep_a_pending_read_alive() {
        let (io, mut client, _) = pair();
        let (mut rd, mut wr) = tokio::io::split(io);
        client.write_all(b"GET").await.unwrap();
        let mut b = [0u8; 3];
        rd.read_exact(&mut b).await.unwrap();
        // The server streams a response to a slow reader: one chunk every half idle period.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            rd.read(&mut buf).await
        });
        for _ in 0..10 {
            tokio::time::sleep(IDLE / 2).await;
            wr.write_all(b"chunk").await.unwrap();
            let mut got = [0u8; 5];
            client.read_exact(&mut got).await.unwrap();
        }
        assert!(
            !reader.is_finished(),
            "the pending read was failed while bytes moved"
        );
        tokio::time::sleep(IDLE).await;
        let r = reader.await.unwrap();
        assert_eq!(timed_out_with(Some(r)), Some(IdleTimeout::Idle(IDLE)));
    }

    #[tokio::test(start_paused = true)]
    async fn never_while_a_request_is_in_flight() {
        let (mut io, mut client, in_flight) = pair();
        client.write_all(b"POST").await.unwrap();
        read_within(&mut io, Duration::ZERO).await.unwrap().unwrap();
        let busy = in_flight.begin();
        // A handler working for ten idle periods without sending anything.
        assert!(read_within(&mut io, IDLE * 10).await.is_none());
        drop(busy);
        let started = Instant::now();
        let r = read_within(&mut io, IDLE * 3).await;
        assert_eq!(timed_out_with(r), Some(IdleTimeout::Idle(IDLE)));
        assert!(started.elapsed() <= IDLE, "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_fails_after_the_idle_timeout() {
        let (server, _client) = tokio::io::duplex(16);
        let mut io = IdleIo::new(server, TIMEOUTS, Arc::new(InFlight::default()));
        io.received_any = true;
        let big = vec![0u8; 1024];
        let r = tokio::time::timeout(IDLE * 2, io.write_all(&big)).await.unwrap();
        let e = r.unwrap_err();
        assert_eq!(IdleTimeout::of(&e), Some(IdleTimeout::Idle(IDLE)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout() {
        use http_body_util::BodyExt;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, io::Error>>(1);
        let stream = http_body_util::StreamBody::new(tokio_stream_of(rx));
        let mut body = IdleBody::new(stream, IDLE);
        for _ in 0..5 {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(IDLE - Duration::from_secs(1)).await;
                let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"abc")))).await;
            });
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), "abc");
        }
        let started = Instant::now();
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(e.downcast_ref::<BodyStalled>().is_some(), "{e}");
        assert_eq!(started.elapsed(), IDLE);
        drop(tx);
    }

    /// A receiver as a stream of frames.
    fn tokio_stream_of(
        rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, io::Error>>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, io::Error>> + Unpin {
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}
