//! Agentless collection: every server in `agentless` mode with a credential is polled at its
//! own interval over its pooled SSH connection, with one read-only script
//! ([`steward_metrics::AGENTLESS_SCRIPT`], fed to `sh -s`) that reads `/proc` and `statfs`.
//! Nothing is installed on the server. Counters become rates here, against the server's
//! previous snapshot.
//!
//! One scheduler task keeps the list of targets (re-read from the database every few seconds,
//! so a server added, switched to an agent or deleted is picked up without a restart) and
//! starts the polls that are due, at most `metrics_collect_concurrency` at once. A server that
//! cannot be reached is retried no sooner than [`RETRY_AFTER`], so a fleet with some hosts
//! down does not keep the SSH pool busy with doomed connections.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use steward_db::servers::{self, ServerRow};
use steward_metrics::{RawSnapshot, derive, parse_agentless};
use steward_ssh::client::Output;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::Services;
use crate::fleet::{self, Actor};

/// How often the list of servers to poll is read again.
const REFRESH: Duration = Duration::from_secs(5);
/// Shortest interval between polls of one server.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// After a failed poll, the server waits at least this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Longest a poll may take (a hung NFS mount is cut off by the script's own `timeout 5`).
const POLL_TIMEOUT: Duration = Duration::from_secs(20);
/// Most output a poll may print (a host with thousands of mounts or containers).
const MAX_OUTPUT: usize = 8 << 20;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    Reach(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the collection script printed more than {MAX_OUTPUT} bytes")]
    TooLarge,
    #[error("the collection script failed: {0}")]
    Script(String),
}

/// Runs the collection script once on a server and parses what it printed, stamped with the
/// hub's clock when the output arrived.
pub async fn poll(st: &Services, server: &ServerRow) -> Result<RawSnapshot, PollError> {
    let conn = fleet::connect(st, server, &Actor::system())
        .await
        .map_err(|e| PollError::Reach(e.to_string()))?;
    let run = async {
        let mut process = conn
            .start("sh -s")
            .await
            .map_err(|e| PollError::Script(e.to_string()))?;
        process
            .write(steward_metrics::AGENTLESS_SCRIPT.as_bytes())
            .await
            .map_err(|e| PollError::Script(e.to_string()))?;
        process
            .eof()
            .await
            .map_err(|e| PollError::Script(e.to_string()))?;
        let mut out = Vec::new();
        let mut status = None;
        while let Some(o) = process.next().await {
            match o {
                Output::Stdout(d) => {
                    if out.len() + d.len() > MAX_OUTPUT {
                        process.close().await;
                        return Err(PollError::TooLarge);
                    }
                    out.extend_from_slice(&d);
                }
                Output::Exit(code) => status = Some(code),
                _ => {}
            }
        }
        match status {
            Some(0) | None if !out.is_empty() => Ok(out),
            other => Err(PollError::Script(format!("exit status {other:?}"))),
        }
    };
    let out = tokio::time::timeout(POLL_TIMEOUT, run)
        .await
        .map_err(|_| PollError::Timeout(POLL_TIMEOUT))??;
    parse_agentless(&String::from_utf8_lossy(&out), st.now_ms())
        .map_err(|e| PollError::Script(e.to_string()))
}

struct Target {
    server: ServerRow,
    next: Instant,
    busy: bool,
    prev: Option<RawSnapshot>,
    failures: u32,
}

fn interval_of(server: &ServerRow) -> Duration {
    Duration::from_secs(server.metrics_interval_secs.clamp(1, 3600) as u64).max(MIN_INTERVAL)
}

/// Starts agentless collection (none when `metrics_collect_concurrency` is 0).
pub fn spawn(st: Services) -> Option<tokio::task::JoinHandle<()>> {
    let concurrency = st.config.metrics_collect_concurrency;
    if concurrency == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let limit = Arc::new(Semaphore::new(concurrency));
        let (done_tx, mut done) =
            mpsc::unbounded_channel::<(String, Result<RawSnapshot, PollError>)>();
        let mut targets: HashMap<String, Target> = HashMap::new();
        let mut refreshed: Option<Instant> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some((id, result)) = done.recv() => {
                    finish(&st, &mut targets, &id, result).await;
                    continue;
                }
            }
            let now = Instant::now();
            if refreshed.is_none_or(|r| now.duration_since(r) >= REFRESH) {
                refreshed = Some(now);
                match servers::monitored(&st.db.pool, "agentless").await {
                    Ok(rows) => refresh(&mut targets, rows, now),
                    Err(e) => tracing::warn!(error = %e, "listing servers to monitor failed"),
                }
            }
            for (id, t) in targets.iter_mut() {
                if t.busy || t.next > now {
                    continue;
                }
                t.busy = true;
                t.next = now + interval_of(&t.server);
                let (st, server, id) = (st.clone(), t.server.clone(), id.clone());
                let (limit, done_tx) = (limit.clone(), done_tx.clone());
                tokio::spawn(async move {
                    let Ok(_permit) = limit.acquire_owned().await else {
                        return;
                    };
                    let result = poll(&st, &server).await;
                    let _ = done_tx.send((id, result));
                });
            }
        }
    }))
}

fn refresh(targets: &mut HashMap<String, Target>, rows: Vec<ServerRow>, now: Instant) {
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        seen.insert(row.id.clone());
        match targets.get_mut(&row.id) {
            Some(t) => {
                // A new address or credential makes the next poll a new baseline.
                if t.server.host != row.host || t.server.port != row.port {
                    t.prev = None;
                }
                t.server = row;
            }
            None => {
                // Spread the first polls over the first second rather than all at once.
                let spread = Duration::from_millis(rand::random::<u64>() % 1000);
                targets.insert(
                    row.id.clone(),
                    Target {
                        server: row,
                        next: now + spread,
                        busy: false,
                        prev: None,
                        failures: 0,
                    },
                );
            }
        }
    }
    targets.retain(|id, t| seen.contains(id) || t.busy);
}

async fn finish(
    st: &Services,
    targets: &mut HashMap<String, Target>,
    id: &str,
    result: Result<RawSnapshot, PollError>,
) {
    let Some(t) = targets.get_mut(id) else {
        return;
    };
    t.busy = false;
    match result {
        Ok(snapshot) => {
            t.failures = 0;
            let points = derive(t.prev.as_ref(), &snapshot);
            if let Err(e) = super::record(st, id, snapshot.ts_ms, &points).await {
                tracing::warn!(server = %t.server.name, error = %e, "storing metrics failed");
            }
            t.prev = Some(snapshot);
        }
        Err(e) => {
            t.failures += 1;
            // The first failure is worth a line; a host that stays down is not, every time.
            if t.failures == 1 {
                tracing::info!(server = %t.server.name, error = %e, "agentless collection failed");
            } else {
                tracing::debug!(server = %t.server.name, error = %e, failures = t.failures, "agentless collection failed");
            }
            // A gap: rates must not span it.
            t.prev = None;
            t.next = t.next.max(Instant::now() + RETRY_AFTER);
        }
    }
}
