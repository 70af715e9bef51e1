//! The HTTP edge: Steward's own accept loop around hyper's HTTP/1 server (with upgrades), so
//! that a client which is slow, or never finishes, cannot hold what others need:
//!
//! - at most `max_connections` sockets are open at once, WebSockets included; over the cap a
//!   new connection is answered `503 too_many_connections` and closed at once, with a warning
//!   at most every [`WARN_EVERY`] (the listener never waits on a slot, so it never spins);
//! - a request head must arrive within `http_header_timeout` (from the accept, or from its
//!   first byte on a kept-alive connection), a declared body within `http_idle_timeout`, and
//!   a connection with nothing to answer and nothing moving is closed after
//!   `http_idle_timeout` ([`conn`]);
//! - a body whose declared `Content-Length` is over `max_body_bytes` is refused with 413
//!   before any of it is read ([`refuse_oversized`]).
//!
//! Graceful shutdown: stop accepting, close connections that are not being answered, let the
//! others finish their answer, and wait for them (upgraded sockets are not waited for).
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::error::ApiError;

pub mod conn;

use conn::{Activity, ReceivedBody, SentBody, Stall, TrackedIo};

/// Shortest time between two warnings about the connection cap (or failing accepts).
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// What a connection over the cap gets before it is closed, if its socket takes it at once.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
content-length: 107\r\n\
retry-after: 1\r\n\
cache-control: no-store\r\n\
x-content-type-options: nosniff\r\n\
connection: close\r\n\
\r\n\
{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server has too many open connections\",\"details\":{}}}";

/// The connection cap and what the edge has done, for `/metrics`.
#[derive(Debug)]
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    refused: AtomicU64,
    closed: [AtomicU64; 3],
    warn: Warner,
    accept_warn: Warner,
}

impl Connections {
    /// At most `max` connections open at once.
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: AtomicU64::new(0),
            closed: Default::default(),
            warn: Warner::default(),
            accept_warn: Warner::default(),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now (upgraded ones included).
    pub fn open(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }

    /// Connections refused at the cap since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Connections closed for stalling, by reason, since start.
    pub fn closed(&self, stall: Stall) -> u64 {
        self.closed[stall.index()].load(Ordering::Relaxed)
    }

    fn refuse(&self, tcp: TcpStream, peer: SocketAddr) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        // Best effort and never waiting: a fresh socket's send buffer takes it.
        let _ = tcp.try_write(REFUSAL);
        drop(tcp);
        tracing::trace!(%peer, "refused a connection over the cap");
        if let Some(refused) = self.warn.due(Instant::now()) {
            tracing::warn!(
                max_connections = self.max,
                refused,
                "connection limit reached: new connections are answered 503 and closed \
                 (raise --max-connections if this is real load)"
            );
        }
    }
}

/// Lets a repeated warning through at most once every [`WARN_EVERY`], counting the others.
#[derive(Debug, Default)]
struct Warner(Mutex<(Option<Instant>, u64)>);

impl Warner {
    /// `Some(events since the last warning, this one included)` when a warning is due.
    fn due(&self, now: Instant) -> Option<u64> {
        let mut g = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (last, count) = &mut *g;
        *count += 1;
        if last.is_some_and(|l| now.saturating_duration_since(l) < WARN_EVERY) {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(count))
    }
}

/// 413 `payload_too_large` as soon as the headers declare a body over `max_body_bytes`,
/// before any of it is read (a body without a declared length is cut at the same limit as it
/// is read); the connection is closed after the answer.
pub async fn refuse_oversized(
    State(MaxBody(limit)): State<MaxBody>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => {
            let mut res = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body ({n} bytes) is over the limit of {limit} bytes"),
            )
            .into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
        _ => next.run(req).await,
    }
}

/// The largest request body, in bytes (the state of [`refuse_oversized`]).
#[derive(Debug, Clone, Copy)]
pub struct MaxBody(pub u64);

/// What the accept loop needs: the connection cap and the timeouts.
#[derive(Debug, Clone)]
pub struct Edge {
    pub connections: Arc<Connections>,
    /// The request line and headers must arrive within this.
    pub header_timeout: Duration,
    /// A connection with nothing moving and no request being answered closes after this.
    pub idle_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then drains connections.
pub async fn serve(
    listener: TcpListener,
    state: Edge,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(&state, e).await;
                    continue;
                }
            },
        };
        let Ok(slot) = state.connections.slots.clone().try_acquire_owned() else {
            state.connections.refuse(tcp, peer);
            continue;
        };
        // No Nagle delay: terminal keystrokes and echoes are tiny writes that must go at once.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!(error = %e, "cannot set TCP_NODELAY");
        }
        let activity = Activity::new();
        let io = TrackedIo::new(tcp, activity.clone(), slot);
        tasks.spawn(connection(
            io,
            activity,
            peer,
            app.clone(),
            state.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    stop.cancel();
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Out of file descriptors or memory: say so (now and then) and pause, so the loop does not
/// spin on a listener that keeps failing. A client that gave up before its accept is nothing.
async fn accept_failed(state: &Edge, e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    if let Some(failures) = state.connections.accept_warn.due(Instant::now()) {
        tracing::error!(error = %e, failures, "cannot accept connections; pausing 250 ms each time");
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// Serves one connection until it ends, stalls, or shutdown has let it finish.
async fn connection(
    io: TrackedIo,
    activity: Arc<Activity>,
    peer: SocketAddr,
    app: Router,
    state: Edge,
    stop: CancellationToken,
) {
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let (answering, receiving) = activity.request(!req.body().is_end_stream());
            let req = req.map(|b| Body::new(ReceivedBody::new(b, receiving)));
            let app = app.clone();
            async move {
                let res = app.oneshot(req).await.unwrap_or_else(|e| match e {});
                Ok::<_, Infallible>(res.map(|b| SentBody::new(b, answering)))
            }
        })
    };
    let mut conn = pin!(
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let (header, idle) = (state.header_timeout, state.idle_timeout);
    let mut stalled = pin!(conn::watchdog(&activity, header, idle));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            stall = &mut stalled => {
                state.connections.closed[stall.index()].fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, reason = stall.as_str(), "closed a stalled connection");
                break;
            }
            () = stop.cancelled(), if !stopping => {
                // Nothing to finish (idle, or a request head still arriving): close now.
                if !activity.answering() {
                    break;
                }
                // Finish the answer in progress, then close.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_warning_is_rate_limited_and_counts_what_it_skipped() {
        let w = Warner::default();
        let t0 = Instant::now();
        assert_eq!(w.due(t0), Some(1), "the first one is logged");
        for i in 1..=5 {
            assert_eq!(w.due(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(
            w.due(t0 + WARN_EVERY),
            Some(6),
            "then one line for six refusals"
        );
        assert_eq!(w.due(t0 + WARN_EVERY + Duration::from_secs(1)), None);
    }

    #[test]
    fn the_refusal_is_a_complete_json_answer() {
        let text = std::str::from_utf8(REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], "too_many_connections");
    }
}
