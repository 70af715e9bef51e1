//! The hub's side of the agent protocol that is not the socket: the agents connected to this
//! instance ([`Registry`]: one connection per agent, the last snapshot of each server as the
//! base of the next rates, the group commit of acknowledged `seq`s) and [`store_batch`], which
//! stores a batch once. steward-api's `metrics/agent.rs` runs the WebSocket and calls these.
//!
//! A batch is stored only if its `seq` is above the agent's stored `last_seq` (then that
//! advances), and every batch stored or already stored is acknowledged, so a batch resent
//! after a lost ack is never stored twice. A batch the hub failed to store (database down)
//! is not acknowledged: the connection is closed, `last_seq` stays, and the agent resends it
//! after reconnecting. Rates are computed against the previous snapshot of the same server,
//! kept across reconnects, so a backfilled hour after an outage turns into the same rates it
//! would have given live.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use steward_db::agents::{self, AgentRow};
use steward_metrics::RawSnapshot;
use steward_metrics::agent_proto::Samples;
use tokio::sync::{oneshot, watch};

use crate::Services;
use crate::agent_install::AgentConnections;
use crate::metrics::store::StoreError;

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
    pub fn attach(&self, server_id: &str) -> (u64, watch::Receiver<bool>) {
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

    pub fn detach(&self, server_id: &str, generation: u64) {
        let mut live = lock(&self.live);
        if live
            .get(server_id)
            .is_some_and(|l| l.generation == generation)
        {
            live.remove(server_id);
        }
    }
}

/// The agents connected to this instance, for enrollment and the install flows.
impl AgentConnections for Registry {
    fn is_connected(&self, server_id: &str) -> bool {
        Registry::is_connected(self, server_id)
    }

    fn disconnect(&self, server_id: &str) {
        Registry::disconnect(self, server_id);
    }

    fn silent_for(&self) -> Duration {
        SILENT_FOR
    }
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
pub async fn store_batch(
    st: &Services,
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
        match crate::metrics::record(st, server_id, snap.ts_ms, &points).await {
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
