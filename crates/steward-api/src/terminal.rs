//! Web terminals: a WebSocket bridged to an SSH PTY on the server's pooled connection, every
//! session recorded as asciicast v2 (output and resizes, never input: it may hold passwords),
//! zstd-compressed in chunks written every few seconds, so a crash loses little.
//!
//! The [`Registry`] knows the sessions running on this instance: who owns each one, and how to
//! end it (an administrator's terminate).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use russh::ChannelMsg;
use serde_json::json;
use steward_db::servers::ServerRow;
use steward_db::terminal_sessions::{self, TerminalSessionRow};
use steward_proto::{TerminalClientMessage, TerminalServerMessage};
use tokio::sync::{mpsc, watch};

use crate::audit::{Event, Outcome};
use crate::auth::Principal;
use crate::fleet::{self, Actor};
use crate::state::AppState;

/// The terminal type announced to the server.
pub const TERM: &str = "xterm-256color";
/// Largest accepted width or height.
pub const MAX_SIZE: u32 = 1000;
/// How often the recording is written.
const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// Recorded text held before an early write.
const FLUSH_BYTES: usize = 256 * 1024;

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

/// Takes the longest valid UTF-8 text from the front of `pending`, leaving an incomplete
/// trailing sequence for the next chunk (invalid bytes become U+FFFD).
fn take_utf8(pending: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0;
    loop {
        match std::str::from_utf8(&pending[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = pending.len();
                break;
            }
            Err(e) => {
                let valid = start + e.valid_up_to();
                out.push_str(&String::from_utf8_lossy(&pending[start..valid]));
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start = valid + n;
                    }
                    None => {
                        start = valid;
                        break;
                    }
                }
            }
        }
    }
    pending.drain(..start);
    out
}

/// Writes the asciicast v2 recording of one session. Chunks are stored by a writer task of
/// their own, in order, so a slow database never delays the terminal.
pub struct Recorder {
    started: Instant,
    text: String,
    pending: Vec<u8>,
    seq: i64,
    /// Output bytes seen.
    pub bytes: i64,
    chunks: Option<mpsc::UnboundedSender<(i64, Vec<u8>, i64)>>,
    writer: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Starts a recording with its header line.
    pub fn new(
        st: &AppState,
        session_id: &str,
        cols: u32,
        rows: u32,
        started_ms: i64,
        title: &str,
    ) -> Self {
        let header = json!({
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": started_ms / 1000,
            "title": title,
            "env": { "TERM": TERM, "SHELL": "/bin/sh" },
        });
        let (chunks, mut rx) = mpsc::unbounded_channel::<(i64, Vec<u8>, i64)>();
        let (st, id) = (st.clone(), session_id.to_string());
        let writer = tokio::spawn(async move {
            while let Some((seq, data, bytes)) = rx.recv().await {
                if let Err(e) =
                    terminal_sessions::add_chunk(&st.db.pool, &id, seq, &data, bytes).await
                {
                    tracing::warn!(error = %e, session = %id, "terminal recording: write failed");
                }
            }
        });
        Self {
            started: Instant::now(),
            text: format!("{header}\n"),
            pending: Vec::new(),
            seq: 0,
            bytes: 0,
            chunks: Some(chunks),
            writer,
        }
    }

    fn at(&self) -> f64 {
        (self.started.elapsed().as_micros() as f64) / 1e6
    }

    fn event(&mut self, kind: &str, data: &str) {
        let line = json!([self.at(), kind, data]);
        self.text.push_str(&line.to_string());
        self.text.push('\n');
    }

    /// Records output.
    pub fn output(&mut self, data: &[u8]) {
        self.bytes += data.len() as i64;
        self.pending.extend_from_slice(data);
        let text = take_utf8(&mut self.pending);
        if !text.is_empty() {
            self.event("o", &text);
        }
    }

    /// Records a resize.
    pub fn resize(&mut self, cols: u32, rows: u32) {
        self.event("r", &format!("{cols}x{rows}"));
    }

    fn due(&self) -> bool {
        self.text.len() >= FLUSH_BYTES
    }

    /// Hands what was recorded since the last time to the writer, as one compressed chunk.
    pub fn flush(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        let compressed = match zstd::bulk::compress(text.as_bytes(), 3) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "terminal recording: compression failed");
                return;
            }
        };
        if let Some(chunks) = &self.chunks {
            let _ = chunks.send((self.seq, compressed, self.bytes));
        }
        self.seq += 1;
    }

    /// Flushes, and waits until every chunk is stored.
    pub async fn finish(&mut self) {
        self.flush();
        self.chunks = None;
        let _ = (&mut self.writer).await;
    }
}

/// Decompresses a recording's chunks into the asciicast text.
pub fn decompress(chunks: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for c in chunks {
        out.extend_from_slice(&zstd::stream::decode_all(c.as_slice())?);
    }
    Ok(out)
}

fn text(msg: &TerminalServerMessage) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).unwrap_or_else(|_| "{}".into()),
    ))
}

/// Sends a failure and closes the socket.
async fn fail(socket: &mut WebSocket, code: &str, message: &str) {
    let _ = socket
        .send(text(&TerminalServerMessage::Error {
            code: code.into(),
            message: message.into(),
        }))
        .await;
    let _ = socket
        .send(text(&TerminalServerMessage::Closed {
            reason: "error".into(),
        }))
        .await;
    let _ = socket.send(Message::Close(None)).await;
}

/// What the input side tells the session loop.
enum Input {
    Activity,
    Resize(u32, u32),
    BadMessage(String),
    Closed,
    Failed,
}

/// Forwards the browser's keystrokes and resizes to the channel.
async fn pump_input(
    mut rx: futures_util::stream::SplitStream<WebSocket>,
    write: Arc<russh::ChannelWriteHalf<russh::client::Msg>>,
    events: mpsc::UnboundedSender<Input>,
) {
    while let Some(msg) = rx.next().await {
        match msg {
            Ok(Message::Binary(data)) => {
                let _ = events.send(Input::Activity);
                if write.data_bytes(data).await.is_err() {
                    let _ = events.send(Input::Failed);
                    return;
                }
            }
            Ok(Message::Text(t)) => match serde_json::from_str::<TerminalClientMessage>(&t) {
                Ok(TerminalClientMessage::Resize { cols, rows })
                    if (1..=MAX_SIZE).contains(&cols) && (1..=MAX_SIZE).contains(&rows) =>
                {
                    if write.window_change(cols, rows, 0, 0).await.is_err() {
                        let _ = events.send(Input::Failed);
                        return;
                    }
                    let _ = events.send(Input::Resize(cols, rows));
                }
                Ok(TerminalClientMessage::Resize { .. }) => {
                    let _ = events.send(Input::BadMessage(format!(
                        "cols and rows must be 1–{MAX_SIZE}"
                    )));
                }
                Err(e) => {
                    let _ = events.send(Input::BadMessage(e.to_string()));
                }
            },
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = events.send(Input::Closed);
}

/// Runs one terminal session on an upgraded socket, until the shell exits, the browser goes,
/// the session idles out or an administrator ends it.
pub async fn run(
    st: AppState,
    p: Principal,
    server: ServerRow,
    cols: u32,
    rows: u32,
    mut socket: WebSocket,
) {
    let actor = Actor::user(&p);
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
            fail(&mut socket, e.code(), &e.to_string()).await;
            return;
        }
    };
    let channel = async {
        let channel = conn.open_session().await.map_err(|e| e.to_string())?;
        channel
            .request_pty(true, TERM, cols, rows, 0, 0, &[])
            .await
            .map_err(|e| e.to_string())?;
        channel
            .request_shell(true)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(channel)
    }
    .await;
    let channel = match channel {
        Ok(c) => c,
        Err(message) => {
            let _ = Event::by(&p, "terminal.open", opened)
                .target("server", &server.id, &server.name)
                .outcome(Outcome::Failure)
                .details(json!({ "error": "ssh_error" }))
                .write(&st.db.pool)
                .await;
            fail(&mut socket, "ssh_error", &message).await;
            return;
        }
    };

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
        Ok::<_, crate::error::ApiError>(())
    }
    .await;
    if let Err(e) = begun {
        tracing::error!(error = ?e, "terminal: cannot record the session");
        let _ = channel.close().await;
        fail(&mut socket, "internal_error", "internal server error").await;
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
    if socket
        .send(text(&TerminalServerMessage::Ready {
            session_id: id.clone(),
        }))
        .await
        .is_err()
    {
        tracing::debug!("terminal: the browser left before the shell started");
    }

    let (mut ws_tx, ws_rx) = socket.split();
    let (mut read, write) = channel.split();
    let write = Arc::new(write);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let input = tokio::spawn(pump_input(ws_rx, write.clone(), events_tx));
    let idle = st.config.terminal_idle_timeout;
    let mut idle_at = tokio::time::Instant::now() + idle;
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let reason: &'static str = loop {
        tokio::select! {
            msg = read.wait() => match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    rec.output(&data);
                    if ws_tx.send(Message::Binary(bytes::Bytes::copy_from_slice(&data))).await.is_err() {
                        break "closed";
                    }
                    if rec.due() {
                        rec.flush();
                    }
                }
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | None => break "exited",
                Some(_) => {}
            },
            ev = events.recv() => match ev {
                Some(Input::Activity) => idle_at = tokio::time::Instant::now() + idle,
                Some(Input::Resize(c, r)) => {
                    idle_at = tokio::time::Instant::now() + idle;
                    rec.resize(c, r);
                }
                Some(Input::BadMessage(m)) => {
                    let _ = ws_tx.send(text(&TerminalServerMessage::Error { code: "bad_message".into(), message: m })).await;
                }
                Some(Input::Failed) => break "error",
                Some(Input::Closed) | None => break "closed",
            },
            () = tokio::time::sleep_until(idle_at) => break "idle_timeout",
            changed = stop.changed() => {
                let why = if changed.is_ok() { *stop.borrow() } else { None };
                if let Some(why) = why {
                    break why;
                }
            },
            _ = flush.tick() => rec.flush(),
        }
    };

    input.abort();
    let _ = write.close().await;
    // Whatever the shell printed last.
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(50), read.wait()).await {
        if let ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } = msg {
            rec.output(&data);
            if reason != "closed" {
                let _ = ws_tx
                    .send(Message::Binary(bytes::Bytes::copy_from_slice(&data)))
                    .await;
            }
        }
    }
    rec.finish().await;
    if reason != "closed" {
        let _ = ws_tx
            .send(text(&TerminalServerMessage::Closed {
                reason: reason.into(),
            }))
            .await;
        let _ = ws_tx.send(Message::Close(None)).await;
    }
    let _ = ws_tx.close().await;
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
        Ok::<_, crate::error::ApiError>(())
    }
    .await;
    if let Err(e) = finished {
        tracing::error!(error = ?e, session = %id, "terminal: cannot record the end of the session");
    }
    st.terminals.remove(&id);
    drop(conn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_kept_whole() {
        let text = "ünï".as_bytes();
        // "ü" (two bytes), "n", and the first byte of "ï".
        let mut p = text[..4].to_vec();
        assert_eq!(take_utf8(&mut p), "ün");
        assert_eq!(p, vec![text[3]]);
        p.extend_from_slice(&text[4..]);
        assert_eq!(take_utf8(&mut p), "ï");
        assert!(p.is_empty());
        let mut bad = vec![b'a', 0xff, b'b'];
        assert_eq!(take_utf8(&mut bad), "a\u{FFFD}b");
    }

    #[test]
    fn chunks_decompress_to_the_recording() {
        let a = zstd::bulk::compress(b"{\"version\":2}\n", 3).expect("zstd");
        let b = zstd::bulk::compress(b"[0.1,\"o\",\"hi\"]\n", 3).expect("zstd");
        assert_eq!(
            decompress(&[a, b]).expect("decompress"),
            b"{\"version\":2}\n[0.1,\"o\",\"hi\"]\n"
        );
    }
}
