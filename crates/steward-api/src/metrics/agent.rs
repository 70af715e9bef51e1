//! The hub's side of the agent protocol ([`steward_metrics::agent_proto`]): one WebSocket per
//! enrolled agent, authenticated by its enrollment token before the upgrade.
//!
//! A batch is stored only if its `seq` is above the agent's stored `last_seq` (then that
//! advances), and every batch stored or already stored is acknowledged, so a batch resent
//! after a lost ack is never stored twice. A batch the hub failed to store (database down)
//! is not acknowledged: the connection is closed, `last_seq` stays, and the agent resends it
//! after reconnecting. Within the store, a snapshot not newer than the server's newest is
//! dropped as well. Rates are computed against the previous snapshot of the same server, kept across
//! reconnects, so a backfilled hour after an outage turns into the same rates it would have
//! given live.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use steward_db::agents::{self, AgentHello, AgentRow};
use steward_db::servers;
use steward_metrics::RawSnapshot;
use steward_metrics::agent_proto::{
    AgentMessage, HubMessage, PROTOCOL_VERSION, Samples, clamp_interval,
};
use tokio::sync::{oneshot, watch};

use crate::state::AppState;
use steward_services::metrics::store::StoreError;

/// How long an agent has to say hello after the upgrade.
const HELLO_WITHIN: Duration = Duration::from_secs(10);
/// How often a connected agent's server is re-read (interval changes, revocation, deletion).
const RECHECK: Duration = Duration::from_secs(10);
/// An agent silent this long (no batch, no ping) is disconnected; it reconnects by itself.
/// A row marked connected but not heard from for this long is not believed.
pub const SILENT_FOR: Duration = Duration::from_secs(180);

struct Live {
    stop: watch::Sender<bool>,
    generation: u64,
}

/// A stored batch whose `seq` waits to be recorded, and who waits for that.
struct PendingSeq {
    server_id: String,
    seq: i64,
    done: oneshot::Sender<Result<(), String>>,
}

/// Agents connected to this instance, and the last snapshot of each server (the base of the
/// next rates).
#[derive(Default)]
pub struct Registry {
    live: Mutex<HashMap<String, Live>>,
    last: Mutex<HashMap<String, RawSnapshot>>,
    generation: std::sync::atomic::AtomicU64,
    /// Group commit of acknowledged `seq`s ([`Registry::record_seq`]).
    pending_seqs: Mutex<Vec<PendingSeq>>,
    seq_writer: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// Whether a server's agent is connected here.
    pub fn is_connected(&self, server_id: &str) -> bool {
        lock(&self.live).contains_key(server_id)
    }

    /// Disconnects a server's agent (revoked, or its server deleted).
    pub fn disconnect(&self, server_id: &str) {
        if let Some(l) = lock(&self.live).get(server_id) {
            let _ = l.stop.send(true);
        }
        lock(&self.last).remove(server_id);
    }

    /// Registers a connection, ending an older one of the same agent (one connection each).
    fn attach(&self, server_id: &str) -> (u64, watch::Receiver<bool>) {
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (stop, rx) = watch::channel(false);
        if let Some(old) = lock(&self.live).insert(server_id.to_string(), Live { stop, generation })
        {
            let _ = old.stop.send(true);
        }
        (generation, rx)
    }

    /// Records that a server's batch `seq` is stored, together with every other agent's
    /// batch waiting at the same moment: one caller at a time writes all that is pending in
    /// one transaction while the others wait for its result (or take over when it is done
    /// and theirs is still pending). A thousand agents at 1 s then cost a few transactions a
    /// second on the database's writer instead of a thousand single-row ones, which on SQLite
    /// queued behind each other holding pool connections that API requests were waiting for.
    /// An error (or a writer cancelled mid-way) fails only the batches it carried, which are
    /// then not acknowledged and are resent.
    pub async fn record_seq(
        &self,
        db: &steward_db::Db,
        server_id: &str,
        seq: i64,
        now_ms: i64,
    ) -> Result<(), String> {
        let (done, mut rx) = oneshot::channel();
        lock(&self.pending_seqs).push(PendingSeq {
            server_id: server_id.to_string(),
            seq,
            done,
        });
        loop {
            tokio::select! {
                biased;
                r = &mut rx => return r.unwrap_or_else(|_| Err("the write was cancelled".into())),
                _writer = self.seq_writer.lock() => {
                    loop {
                        let batch = std::mem::take(&mut *lock(&self.pending_seqs));
                        if batch.is_empty() {
                            break;
                        }
                        let items: Vec<(&str, i64)> =
                            batch.iter().map(|p| (p.server_id.as_str(), p.seq)).collect();
                        let result = agents::stored_many(&db.pool, &items, now_ms)
                            .await
                            .map_err(|e| e.to_string());
                        for p in batch {
                            let _ = p.done.send(result.clone());
                        }
                    }
                }
            }
        }
    }

    fn detach(&self, server_id: &str, generation: u64) {
        let mut live = lock(&self.live);
        if live
            .get(server_id)
            .is_some_and(|l| l.generation == generation)
        {
            live.remove(server_id);
        }
    }
}

fn frame(msg: &HubMessage) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).unwrap_or_else(|_| "{}".into()),
    ))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Stores one batch (if new) and returns the `seq` to acknowledge, or why it failed. A batch
/// is acknowledged only once every snapshot of it is stored and its `seq` recorded: on a
/// failure nothing is acknowledged and `last_seq` stays, so the agent keeps the batch and
/// resends it after reconnecting. Snapshots of it stored before the failure are skipped on
/// the resend (they are not newer than the server's newest), so nothing is stored twice.
///
/// A snapshot the store refuses for good (a bad metric name, too many series for the
/// server) is skipped and logged, as before: resending it could never succeed and would
/// wedge the agent's buffer behind it.
async fn store_batch(
    st: &AppState,
    agent: &AgentRow,
    last_seq: &mut u64,
    batch: Samples,
) -> Result<u64, String> {
    if batch.seq <= *last_seq {
        return Ok(batch.seq);
    }
    let server_id = agent.server_id.as_str();
    let mut prev = lock(&st.agents.last).remove(server_id);
    let mut failed = None;
    for snap in batch.snapshots {
        if prev.as_ref().is_some_and(|p| snap.ts_ms <= p.ts_ms) {
            continue;
        }
        let points = steward_metrics::derive(prev.as_ref(), &snap);
        match steward_services::metrics::record(st, server_id, snap.ts_ms, &points).await {
            Ok(()) => {}
            Err(StoreError::Invalid(why)) => {
                tracing::warn!(server = %server_id, error = %why, "agent snapshot refused by the metric store; skipped");
            }
            Err(e) => {
                failed = Some(e.to_string());
                break;
            }
        }
        prev = Some(snap);
    }
    // The base of the next rates is the last snapshot stored (or skipped for good).
    if let Some(p) = prev {
        lock(&st.agents.last).insert(server_id.to_string(), p);
    }
    if let Some(why) = failed {
        return Err(why);
    }
    st.agents
        .record_seq(&st.db, server_id, batch.seq as i64, st.now_ms())
        .await
        .map_err(|e| format!("recording the batch's seq: {e}"))?;
    *last_seq = batch.seq;
    Ok(batch.seq)
}

/// A field of an agent's hello as stored and shown: control characters (escape sequences, line
/// breaks that would forge log lines) dropped, at most `max` characters.
pub fn hello_field(value: &str, max: usize) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Serves one agent's connection until it goes, is replaced, revoked or silent.
pub async fn serve(st: AppState, agent: AgentRow, mut socket: WebSocket) {
    let server_id = agent.server_id.clone();
    // Hello first.
    let hello = match tokio::time::timeout(HELLO_WITHIN, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<AgentMessage>(&t) {
            Ok(AgentMessage::Hello(h)) => h,
            _ => return close(&mut socket, 1008, "expected hello").await,
        },
        _ => return close(&mut socket, 1008, "expected hello").await,
    };
    if hello.protocol != PROTOCOL_VERSION {
        return close(&mut socket, 1008, "unsupported protocol version").await;
    }
    let Ok(Some(server)) = servers::get(&st.db.pool, &agent.org_id, &server_id).await else {
        return close(&mut socket, 1008, "server deleted").await;
    };
    // What an agent says of itself is shown in the UI and the logs: bounded, one line each.
    let (agent_version, hostname, os, arch, kernel) = (
        hello_field(&hello.agent_version, 64),
        hello_field(&hello.hostname, 253),
        hello_field(&hello.os, 128),
        hello_field(&hello.arch, 32),
        hello_field(&hello.kernel, 128),
    );
    let info = AgentHello {
        agent_version: &agent_version,
        hostname: &hostname,
        os: &os,
        arch: &arch,
        kernel: &kernel,
    };
    if let Err(e) = agents::connected(&st.db.pool, &server_id, &info, st.now_ms()).await {
        tracing::warn!(server = %server.name, error = %e, "recording the agent's connection failed");
    }
    // Attached (shown as connected) only once its hello is stored, so "connected" never comes
    // with an empty version, host name or OS.
    let (generation, mut stop) = st.agents.attach(&server_id);
    tracing::info!(server = %server.name, version = %agent_version, "agent connected");
    let mut last_seq = u64::try_from(agent.last_seq).unwrap_or(0);
    let mut interval = clamp_interval(server.metrics_interval_secs.clamp(1, 60) as u32);
    let welcome = HubMessage::Welcome {
        server_id: server_id.clone(),
        interval_secs: interval,
        last_seq,
    };
    let mut reason = "closed";
    if socket.send(frame(&welcome)).await.is_ok() {
        let mut recheck = tokio::time::interval(RECHECK.min(st.config.live_recheck));
        recheck.tick().await;
        let mut silent_at = tokio::time::Instant::now() + SILENT_FOR;
        reason = loop {
            tokio::select! {
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        silent_at = tokio::time::Instant::now() + SILENT_FOR;
                        match serde_json::from_str::<AgentMessage>(&t) {
                            Ok(AgentMessage::Samples(batch)) => {
                                if let Err(e) = batch.check() {
                                    tracing::warn!(server = %server.name, error = %e, "agent batch refused");
                                    close(&mut socket, 1008, "malformed batch").await;
                                    break "malformed batch";
                                }
                                let seq = match store_batch(&st, &agent, &mut last_seq, batch).await {
                                    Ok(seq) => seq,
                                    Err(why) => {
                                        // No ack: the agent keeps the batch and resends it
                                        // (renumbered from the welcome's `last_seq`) after
                                        // reconnecting with its backoff.
                                        tracing::warn!(server = %server.name, error = %why, "storing an agent batch failed; closing without an ack");
                                        close(&mut socket, 1011, "storing the batch failed").await;
                                        break "store failed";
                                    }
                                };
                                if socket.send(frame(&HubMessage::Ack { seq })).await.is_err() {
                                    break "closed";
                                }
                            }
                            Ok(AgentMessage::Hello(_)) => {}
                            // Unknown message types are skipped (newer agents).
                            Err(_) => {}
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        silent_at = tokio::time::Instant::now() + SILENT_FOR;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "closed",
                    Some(Ok(Message::Binary(_))) => {}
                },
                _ = recheck.tick() => {
                    // Revoked or replaced through another instance: this one learns it from the
                    // database (its own revocations also arrive on `stop` at once).
                    match agents::get(&st.db.pool, &server_id).await {
                        Ok(Some(now)) if now.token_sha256 == agent.token_sha256 => {}
                        Ok(_) => {
                            close(&mut socket, 1008, "agent revoked or replaced").await;
                            break "revoked or replaced";
                        }
                        Err(_) => {}
                    }
                    match servers::get(&st.db.pool, &agent.org_id, &server_id).await {
                        Ok(Some(s)) => {
                            let now = clamp_interval(s.metrics_interval_secs.clamp(1, 60) as u32);
                            if now != interval {
                                interval = now;
                                if socket.send(frame(&HubMessage::Config { interval_secs: now })).await.is_err() {
                                    break "closed";
                                }
                            }
                        }
                        Ok(None) => {
                            close(&mut socket, 1008, "server deleted").await;
                            break "server deleted";
                        }
                        Err(_) => {}
                    }
                },
                () = tokio::time::sleep_until(silent_at) => {
                    close(&mut socket, 1001, "silent too long").await;
                    break "silent";
                },
                _ = stop.changed() => {
                    close(&mut socket, 1008, "agent revoked or replaced").await;
                    break "revoked or replaced";
                },
            }
        };
    }
    st.agents.detach(&server_id, generation);
    if !st.agents.is_connected(&server_id)
        && let Err(e) = agents::disconnected(&st.db.pool, &server_id, st.now_ms()).await
    {
        tracing::warn!(server = %server.name, error = %e, "recording the agent's disconnection failed");
    }
    tracing::info!(server = %server.name, reason, "agent disconnected");
}

#[cfg(test)]
mod tests {
    use super::hello_field;

    #[test]
    fn hello_fields_lose_control_characters_and_are_bounded() {
        assert_eq!(hello_field("web-1", 253), "web-1");
        // A forged log line and a terminal escape sequence.
        assert_eq!(
            hello_field("web-1\nlevel=ERROR msg=\"admin logged in\"", 253),
            "web-1level=ERROR msg=\"admin logged in\""
        );
        assert_eq!(
            hello_field("\u{1b}[2J\u{1b}]0;pwned\u{7}x86_64", 32),
            "[2J]0;pwnedx86_64"
        );
        assert_eq!(hello_field(&"a".repeat(10_000), 64).len(), 64);
        assert_eq!(hello_field(&"é".repeat(100), 10), "é".repeat(10));
        assert_eq!(hello_field("  \t ", 10), "");
    }
}
