//! Web terminals: a browser's terminal bridged to an SSH PTY on the server's pooled
//! connection, every session recorded ([`recorder`]). The session speaks typed events: it
//! reads [`ClientEvent`]s from a stream and writes [`ServerEvent`]s to a sink, which
//! steward-api adapts to a WebSocket (binary frames for keystrokes and output, JSON text
//! frames for control messages).
//!
//! The [`Registry`] knows the sessions running on this instance: who owns each one, and how to
//! end it (an administrator's terminate). A running session also re-checks its user every
//! `live_recheck` and ends (`access_revoked`) once they could no longer open it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use steward_core::Permission;
use steward_db::servers::ServerRow;
use steward_db::terminal_sessions::{self, TerminalSessionRow};
use steward_proto::{TerminalClientMessage, TerminalServerMessage};
use tokio::sync::{mpsc, watch};

use steward_ssh::pty::{PtyEvent, PtyReader, PtyWriter};

use crate::Services;
use crate::audit::{Event, Outcome};
use crate::error::{ServiceError, ServiceResult};
use crate::fleet::{self, Actor};
use crate::principal::{Principal, revalidate};

mod recorder;
pub use recorder::{Recorder, decompress};

/// The terminal type announced to the server.
pub const TERM: &str = "xterm-256color";
/// Largest accepted width or height.
pub const MAX_SIZE: u32 = 1000;
/// Output already waiting when a frame is sent goes into the same frame, up to this size.
const FRAME_BYTES: usize = 64 * 1024;
/// The end reason of a session whose user lost access: logged out, disabled, or no longer
/// given `terminal.open` on the server by their roles.
pub const ACCESS_REVOKED: &str = "access_revoked";

struct Live {
    user_id: String,
    stop: watch::Sender<Option<&'static str>>,
}

/// The terminal sessions running on this instance.
#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<String, Live>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: &str, user_id: &str) -> watch::Receiver<Option<&'static str>> {
        let (stop, rx) = watch::channel(None);
        self.lock().insert(
            id.to_string(),
            Live {
                user_id: user_id.to_string(),
                stop,
            },
        );
        rx
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Whether the session is running here.
    pub fn is_live(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// The owner of a running session.
    pub fn owner(&self, id: &str) -> Option<String> {
        self.lock().get(id).map(|l| l.user_id.clone())
    }

    /// Ends a running session with reason `terminated`; false if it is not running here.
    pub fn terminate(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(l) => {
                let _ = l.stop.send(Some("terminated"));
                true
            }
            None => false,
        }
    }

    /// How many sessions are running.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Ends every running session with `reason` and waits (up to `wait`) until each has
    /// written its end — for shutdown.
    pub async fn stop_all(&self, reason: &'static str, wait: Duration) {
        for l in self.lock().values() {
            let _ = l.stop.send(Some(reason));
        }
        let deadline = Instant::now() + wait;
        while self.count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the browser's side sends a session.
#[derive(Debug)]
pub enum ClientEvent {
    /// Keystrokes.
    Input(Bytes),
    /// A control message (a resize).
    Message(TerminalClientMessage),
    /// A control message that could not be read, with why.
    BadMessage(String),
    /// The browser went.
    Closed,
}

/// What a session sends the browser's side.
#[derive(Debug)]
pub enum ServerEvent {
    /// What the shell printed.
    Output(Bytes),
    /// A control message.
    Message(TerminalServerMessage),
    /// The session is over: close the connection.
    Close,
}

/// Sends a failure and the end.
async fn fail<O: Sink<ServerEvent> + Unpin>(out: &mut O, code: &str, message: &str) {
    let _ = out
        .send(ServerEvent::Message(TerminalServerMessage::Error {
            code: code.into(),
            message: message.into(),
        }))
        .await;
    let _ = out
        .send(ServerEvent::Message(TerminalServerMessage::Closed {
            reason: "error".into(),
        }))
        .await;
    let _ = out.send(ServerEvent::Close).await;
}

/// What the input side tells the session loop.
enum Input {
    Resize(u32, u32),
    BadMessage(String),
    Closed,
    Failed,
}

/// When the user last typed or resized, for the idle timeout.
struct Activity {
    since: Instant,
    ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.since + Duration::from_millis(self.ms.load(Ordering::Relaxed))
    }
}

/// Forwards the browser's keystrokes and resizes to the channel.
async fn pump_input<I: Stream<Item = ClientEvent> + Unpin>(
    mut rx: I,
    write: PtyWriter,
    events: mpsc::UnboundedSender<Input>,
    activity: Arc<Activity>,
) {
    while let Some(msg) = rx.next().await {
        match msg {
            ClientEvent::Input(data) => {
                // A keystroke only marks the time: no wake-up of the session loop.
                activity.touch();
                if write.input(data).await.is_err() {
                    let _ = events.send(Input::Failed);
                    return;
                }
            }
            ClientEvent::Message(TerminalClientMessage::Resize { cols, rows })
                if (1..=MAX_SIZE).contains(&cols) && (1..=MAX_SIZE).contains(&rows) =>
            {
                activity.touch();
                if write.resize(cols, rows).await.is_err() {
                    let _ = events.send(Input::Failed);
                    return;
                }
                let _ = events.send(Input::Resize(cols, rows));
            }
            ClientEvent::Message(TerminalClientMessage::Resize { .. }) => {
                let _ = events.send(Input::BadMessage(format!(
                    "cols and rows must be 1–{MAX_SIZE}"
                )));
            }
            ClientEvent::BadMessage(e) => {
                let _ = events.send(Input::BadMessage(e));
            }
            ClientEvent::Closed => break,
        }
    }
    let _ = events.send(Input::Closed);
}

/// Opens a terminal on a server, as at the upgrade and at every re-check: 404 when the caller
/// cannot see it, 403 without `terminal.open` on it.
pub async fn may_open(st: &Services, p: &Principal, id: &str) -> ServiceResult<ServerRow> {
    let server = fleet::visible_server(st, p, id).await?;
    p.require_on_server(Permission::TerminalOpen, &server.tags)?;
    Ok(server)
}

/// Whether the session's user may still have it, asked again as at opening: `Ok(false)` when
/// the session or account has ended, or the fresh roles no longer give `terminal.open` on the
/// server (or it is gone, or out of their sight). An error means it could not be told.
async fn still_allowed(st: &Services, p: &Principal, server_id: &str) -> ServiceResult<bool> {
    let Some(fresh) = revalidate(st, p).await? else {
        return Ok(false);
    };
    match may_open(st, &fresh, server_id).await {
        Ok(_) => Ok(true),
        // Not found or forbidden: the answer is no.
        Err(ServiceError::NotFound { .. } | ServiceError::Forbidden { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The recording reached its size cap: stored with the session and audited (the shell goes on).
async fn recording_capped(st: &Services, p: &Principal, server: &ServerRow, session_id: &str) {
    let now = st.now_ms();
    let done = async {
        let mut tx = st.db.begin().await?;
        terminal_sessions::set_recording_capped(&mut *tx, session_id, now).await?;
        Event::by(p, "terminal.recording_capped", now)
            .target("server", &server.id, &server.name)
            .details(json!({ "session_id": session_id, "limit_bytes": st.config.terminal_recording_cap }))
            .write(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, ServiceError>(())
    }
    .await;
    if let Err(e) = done {
        tracing::error!(error = ?e, session = %session_id, "terminal: cannot record that the recording stopped");
    }
    tracing::warn!(session = %session_id, user = %p.user.username, server = %server.name, "terminal recording reached its size limit and stopped; the session goes on");
}

/// Runs one terminal session, until the shell exits, the browser goes, the session idles out,
/// its user loses access, or an administrator ends it. `input` is what the browser sends,
/// `output` where the session's output and control messages go.
pub async fn run<I, O>(
    st: Services,
    p: Principal,
    server: ServerRow,
    cols: u32,
    rows: u32,
    input: I,
    mut output: O,
) where
    I: Stream<Item = ClientEvent> + Unpin + Send + 'static,
    O: Sink<ServerEvent> + Unpin,
{
    let actor = Actor::user(&p, Permission::TerminalOpen);
    let opened = st.now_ms();
    let conn = match fleet::connect(&st, &server, &actor).await {
        Ok(c) => c,
        Err(e) => {
            let _ = Event::by(&p, "terminal.open", opened)
                .target("server", &server.id, &server.name)
                .outcome(Outcome::Failure)
                .details(json!({ "error": e.code() }))
                .write(&st.db.pool)
                .await;
            fail(&mut output, e.code(), &e.to_string()).await;
            return;
        }
    };
    let pty = match conn.open_pty(TERM, cols, rows).await {
        Ok(p) => p,
        Err(e) => {
            let _ = Event::by(&p, "terminal.open", opened)
                .target("server", &server.id, &server.name)
                .outcome(Outcome::Failure)
                .details(json!({ "error": "ssh_error" }))
                .write(&st.db.pool)
                .await;
            fail(&mut output, "ssh_error", &e.to_string()).await;
            return;
        }
    };
    let (mut read, write) = pty;

    let id = steward_db::new_id();
    let started = st.now_ms();
    let row = TerminalSessionRow {
        id: id.clone(),
        org_id: server.org_id.clone(),
        user_id: p.user.id.clone(),
        username: p.user.username.clone(),
        server_id: server.id.clone(),
        server_name: server.name.clone(),
        started_at: started,
        ended_at: None,
        duration_ms: None,
        bytes: 0,
        end_reason: None,
        width: i64::from(cols),
        height: i64::from(rows),
        recording_capped_at: None,
    };
    let begun = async {
        let mut tx = st.db.begin().await?;
        terminal_sessions::insert(&mut *tx, &row).await?;
        Event::by(&p, "terminal.open", started)
            .target("server", &server.id, &server.name)
            .details(json!({ "session_id": id, "cols": cols, "rows": rows }))
            .write(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, ServiceError>(())
    }
    .await;
    if let Err(e) = begun {
        tracing::error!(error = ?e, "terminal: cannot record the session");
        write.close().await;
        fail(&mut output, "internal_error", "internal server error").await;
        return;
    }
    let mut stop = st.terminals.insert(&id, &p.user.id);
    let mut rec = Recorder::new(
        &st,
        &id,
        cols,
        rows,
        started,
        &format!("{}@{}", p.user.username, server.name),
    );
    if output
        .send(ServerEvent::Message(TerminalServerMessage::Ready {
            session_id: id.clone(),
        }))
        .await
        .is_err()
    {
        tracing::debug!("terminal: the browser left before the shell started");
    }

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let activity = Arc::new(Activity::new());
    let input = tokio::spawn(pump_input(
        input,
        write.clone(),
        events_tx,
        activity.clone(),
    ));
    let idle = st.config.terminal_idle_timeout;
    let mut idle_at = tokio::time::Instant::now() + idle;
    // A message read while gathering output into one frame, handled on the next turn.
    let mut held: Option<PtyEvent> = None;
    // `interval` panics on a zero period; a few milliseconds is as good as "always".
    let every = st.config.live_recheck.max(Duration::from_millis(10));
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let reason: &'static str = loop {
        tokio::select! {
            msg = async { match held.take() { Some(m) => m, None => read.next().await } } => match msg {
                PtyEvent::Output(first) => {
                    let frame = gather(&mut read, first, &mut held);
                    if rec.output(frame.clone()).await {
                        recording_capped(&st, &p, &server, &id).await;
                        let _ = output
                            .send(ServerEvent::Message(TerminalServerMessage::RecordingStopped {
                                limit_bytes: st.config.terminal_recording_cap,
                            }))
                            .await;
                    }
                    if output.send(ServerEvent::Output(frame)).await.is_err() {
                        break "closed";
                    }
                }
                PtyEvent::Ended => break "exited",
                PtyEvent::Other => {}
            },
            ev = events.recv() => match ev {
                Some(Input::Resize(c, r)) => rec.resize(c, r).await,
                Some(Input::BadMessage(m)) => {
                    let _ = output.send(ServerEvent::Message(TerminalServerMessage::Error { code: "bad_message".into(), message: m })).await;
                }
                Some(Input::Failed) => break "error",
                Some(Input::Closed) | None => break "closed",
            },
            () = tokio::time::sleep_until(idle_at) => {
                let due = tokio::time::Instant::from_std(activity.last()) + idle;
                if due <= tokio::time::Instant::now() {
                    break "idle_timeout";
                }
                idle_at = due;
            },
            _ = recheck.tick() => match still_allowed(&st, &p, &server.id).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(session = %id, user = %p.user.username, "terminal: access revoked, ending the session");
                    break ACCESS_REVOKED;
                }
                // A database hiccup must not kill a shell someone is working in (and SIGHUP
                // what runs in it); the next tick asks again.
                Err(e) => {
                    tracing::warn!(error = ?e, session = %id, "terminal: cannot re-check access, trying again later");
                }
            },
            changed = stop.changed() => {
                let why = if changed.is_ok() { *stop.borrow() } else { None };
                if let Some(why) = why {
                    break why;
                }
            },
        }
    };

    input.abort();
    write.close().await;
    // Whatever the shell printed last.
    while let Ok(PtyEvent::Output(data)) =
        tokio::time::timeout(Duration::from_millis(50), read.next()).await
    {
        if rec.output(data.clone()).await {
            recording_capped(&st, &p, &server, &id).await;
        }
        if reason != "closed" {
            let _ = output.send(ServerEvent::Output(data)).await;
        }
    }
    rec.finish().await;
    if reason != "closed" {
        let _ = output
            .send(ServerEvent::Message(TerminalServerMessage::Closed {
                reason: reason.into(),
            }))
            .await;
    }
    let _ = output.send(ServerEvent::Close).await;
    let ended = st.now_ms();
    let finished = async {
        let mut tx = st.db.begin().await?;
        terminal_sessions::finish(&mut *tx, &id, ended, rec.bytes, reason).await?;
        Event::by(&p, "terminal.close", ended)
            .target("server", &server.id, &server.name)
            .details(json!({
                "session_id": id,
                "reason": reason,
                "duration_ms": ended - started,
                "bytes": rec.bytes,
            }))
            .write(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, ServiceError>(())
    }
    .await;
    if let Err(e) = finished {
        tracing::error!(error = ?e, session = %id, "terminal: cannot record the end of the session");
    }
    st.terminals.remove(&id);
    drop(conn);
}

/// One frame of output: `first` and whatever else the shell has already printed, up to
/// [`FRAME_BYTES`] (fewer frames and writes when a program prints a lot, no waiting when it
/// does not). Something other than output is kept in `held` for the next turn.
fn gather(read: &mut PtyReader, first: Bytes, held: &mut Option<PtyEvent>) -> Bytes {
    let mut frame: Option<bytes::BytesMut> = None;
    while frame.as_ref().map_or(first.len(), bytes::BytesMut::len) < FRAME_BYTES {
        match read.next_now() {
            Some(PtyEvent::Output(more)) => {
                frame
                    .get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
                    .extend_from_slice(&more);
            }
            Some(other) => {
                *held = Some(other);
                break;
            }
            None => break,
        }
    }
    frame.map_or(first, bytes::BytesMut::freeze)
}
