//! One HTTP connection as the edge watches it: which phase it is in — reading a request head,
//! receiving a request body, being answered, or idle between requests — and since when, so
//! that [`watchdog`] can close a connection that stalls in a phase the client controls.
//!
//! The socket ([`TrackedIo`]) reports bytes moving, the service reports a request starting
//! ([`Activity::request`]) and the guards carried by the request body ([`ReceivedBody`]) and
//! the response body ([`SentBody`]) report their ends. While a handler runs or its response
//! streams, no deadline applies: a long scan or a streamed agent install is Steward's doing,
//! not the client's. An upgraded connection (a WebSocket) leaves hyper's connection future,
//! and with it the watchdog, behind: only its slot stays taken, inside the upgraded socket.
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// The request line and headers did not arrive within the header timeout.
    Header,
    /// The declared request body did not arrive in full within the idle timeout.
    Body,
    /// Nothing moved, and no request was being answered, for the idle timeout.
    Idle,
}

impl Stall {
    /// Every reason, in the order of [`Stall::index`].
    pub const ALL: [Stall; 3] = [Stall::Header, Stall::Body, Stall::Idle];

    /// The label value in `/metrics` and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Stall::Header => "header_timeout",
            Stall::Body => "body_timeout",
            Stall::Idle => "idle_timeout",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Stall::Header => 0,
            Stall::Body => 1,
            Stall::Idle => 2,
        }
    }
}

#[derive(Debug)]
struct State {
    /// The last time bytes moved either way.
    last_io: Instant,
    /// A request head is being waited for since then: from the accept, or from the first
    /// byte after an idle stretch.
    head_since: Option<Instant>,
    /// A request body is being received since then.
    body_since: Option<Instant>,
    /// Requests being answered (the handler runs or the response body is being sent).
    answering: usize,
    /// No request has been in progress since then.
    idle_since: Instant,
}

/// What a connection is doing; shared by its socket, its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection just accepted: its first request head is due within the header timeout.
    pub fn new() -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Self {
            state: Mutex::new(State {
                last_io: now,
                head_since: Some(now),
                body_since: None,
                answering: 0,
                idle_since: now,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut State, Instant)) {
        f(&mut self.lock(), Instant::now());
        // One watchdog per connection: a stored permit wakes it even if it is not waiting yet.
        self.changed.notify_one();
    }

    fn read(&self) {
        let mut s = self.lock();
        let now = Instant::now();
        s.last_io = now;
        if s.answering == 0 && s.head_since.is_none() {
            // The next request starts: its head is now due within the header timeout.
            s.head_since = Some(now);
            drop(s);
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        // A later last write only moves the idle deadline later: the watchdog sees it when
        // it wakes, no need to wake it now.
        self.lock().last_io = Instant::now();
    }

    /// A request head has been read; the guards end its phases when dropped.
    pub fn request(self: &Arc<Self>, has_body: bool) -> (Answering, Option<Receiving>) {
        self.update(|s, now| {
            s.answering += 1;
            s.head_since = None;
            if has_body {
                s.body_since = Some(now);
            }
        });
        let receiving = has_body.then(|| Receiving(self.clone()));
        (Answering(self.clone()), receiving)
    }

    /// Whether a request is being answered (its handler runs or its response is being sent).
    pub fn answering(&self) -> bool {
        self.lock().answering > 0
    }

    /// The next deadline and what missing it means, or `None` while Steward is answering.
    fn deadline(&self, header: Duration, idle: Duration) -> Option<(Instant, Stall)> {
        let s = self.lock();
        if let Some(since) = s.body_since {
            Some((since + idle, Stall::Body))
        } else if s.answering > 0 {
            None
        } else if let Some(since) = s.head_since {
            Some((since + header, Stall::Header))
        } else {
            Some((s.idle_since.max(s.last_io) + idle, Stall::Idle))
        }
    }
}

/// Ends when the connection has stalled, saying how. Drop it to stop watching.
pub async fn watchdog(activity: &Activity, header: Duration, idle: Duration) -> Stall {
    loop {
        match activity.deadline(header, idle) {
            Some((at, stall)) if at <= Instant::now() => return stall,
            Some((at, _)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = activity.changed.notified() => {}
                }
            }
            None => activity.changed.notified().await,
        }
    }
}

/// Held while a request is being answered: from its head until its response body is done.
#[derive(Debug)]
pub struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.update(|s, now| {
            s.answering = s.answering.saturating_sub(1);
            if s.answering == 0 {
                s.idle_since = now;
            }
        });
    }
}

/// Held while a request body is still arriving.
#[derive(Debug)]
pub struct Receiving(Arc<Activity>);

impl Drop for Receiving {
    fn drop(&mut self) {
        self.0.update(|s, _| s.body_since = None);
    }
}

/// The request body, which reports when it has arrived in full (or is abandoned).
pub struct ReceivedBody {
    inner: hyper::body::Incoming,
    receiving: Option<Receiving>,
}

impl ReceivedBody {
    pub fn new(inner: hyper::body::Incoming, receiving: Option<Receiving>) -> Self {
        Self { inner, receiving }
    }
}

impl http_body::Body for ReceivedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.receiving = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body, which reports when it has been sent (or abandoned).
pub struct SentBody {
    inner: Body,
    _answering: Answering,
}

impl SentBody {
    pub fn new(inner: Body, answering: Answering) -> Self {
        Self {
            inner,
            _answering: answering,
        }
    }
}

impl http_body::Body for SentBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The accepted socket: reports bytes moving, and holds the connection's slot under the cap
/// for as long as the socket lives, upgraded or not.
pub struct TrackedIo {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl TrackedIo {
    pub fn new(tcp: TcpStream, activity: Arc<Activity>, slot: OwnedSemaphorePermit) -> Self {
        Self {
            tcp,
            activity,
            _slot: slot,
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn phase(a: &Activity) -> Option<Stall> {
        a.deadline(HEADER, IDLE).map(|(_, s)| s)
    }

    #[tokio::test]
    async fn a_connection_moves_through_its_phases() {
        let a = Activity::new();
        assert_eq!(
            phase(&a),
            Some(Stall::Header),
            "a new connection owes a head"
        );
        let (answering, receiving) = a.request(true);
        assert_eq!(phase(&a), Some(Stall::Body), "then its body");
        drop(receiving);
        assert_eq!(phase(&a), None, "no deadline while Steward answers");
        a.read();
        assert_eq!(phase(&a), None, "bytes read while answering start no head");
        drop(answering);
        assert_eq!(phase(&a), Some(Stall::Idle), "then idle");
        a.wrote();
        assert_eq!(phase(&a), Some(Stall::Idle), "writing keeps it idle");
        a.read();
        assert_eq!(
            phase(&a),
            Some(Stall::Header),
            "a byte after idle starts a head"
        );
        let (answering, receiving) = a.request(false);
        assert!(receiving.is_none());
        assert_eq!(phase(&a), None);
        drop(answering);
        assert_eq!(phase(&a), Some(Stall::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_fires_at_the_deadline_of_the_current_phase() {
        let a = Activity::new();
        let started = Instant::now();
        assert_eq!(watchdog(&a, HEADER, IDLE).await, Stall::Header);
        assert_eq!(started.elapsed(), HEADER);
        let a = Activity::new();
        let (answering, _) = a.request(false);
        let waiting = {
            let a = a.clone();
            tokio::spawn(async move { watchdog(&a, HEADER, IDLE).await })
        };
        tokio::time::sleep(IDLE * 3).await;
        assert!(!waiting.is_finished(), "no deadline while answering");
        let ended = Instant::now();
        drop(answering);
        assert_eq!(waiting.await.expect("watchdog"), Stall::Idle);
        assert_eq!(ended.elapsed(), IDLE);
    }
}
