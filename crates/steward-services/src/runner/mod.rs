//! Running a script or command on many servers: bounded concurrency, a timeout per host,
//! optional stop on the first failure, cancellation that kills the remote processes, output
//! capped per host and stream (the cut is recorded, never silent), and a live event stream
//! for the UI.
//!
//! The remote side: Steward runs `echo steward-pid:$$ >&2; exec sh -s` and writes the script
//! (parameter assignments, then the body) to its standard input. sshd starts every session in
//! a new session and process group led by that shell, so the announced pid names the process
//! group of everything the script starts; cancelling or timing out sends SIGTERM to the group
//! (then SIGKILL if it lingers) over a second channel, besides the SSH `signal` request.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_db::executions::{self, ExecutionHostRow};
use steward_db::servers::ServerRow;
use steward_proto::{ExecutionDetail, ExecutionEvent, ExecutionHost, ExecutionSummary, Shell};
use steward_ssh::client::{Connection, Output, Process, Sig};
use steward_ssh::runner::RunnerCommand;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::Services;
use crate::fleet::{self, Actor};
use steward_core::clock::from_ms as time;

mod host;
mod output;
mod record;

pub use record::{NewRun, record_start};

use host::HostJob;

const PID_PREFIX: &[u8] = b"steward-pid:";

/// Runs in progress on this instance.
#[derive(Default)]
pub struct Registry {
    runs: Mutex<HashMap<String, Arc<LiveRun>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// A run in progress (or just finished) on this instance.
    pub fn get(&self, id: &str) -> Option<Arc<LiveRun>> {
        lock(&self.runs).get(id).cloned()
    }

    fn insert(&self, run: Arc<LiveRun>) {
        lock(&self.runs).insert(run.id.clone(), run);
    }

    fn remove(&self, id: &str) {
        lock(&self.runs).remove(id);
    }

    /// How many runs are still going.
    pub fn running(&self) -> usize {
        lock(&self.runs)
            .values()
            .filter(|r| !lock(&r.state).finished)
            .count()
    }

    /// Whether any run is still going.
    pub fn any_running(&self) -> bool {
        lock(&self.runs).values().any(|r| !lock(&r.state).finished)
    }

    /// Cancels every run (on shutdown).
    pub fn cancel_all(&self) {
        for run in lock(&self.runs).values() {
            run.cancel.cancel();
        }
    }
}

struct LiveState {
    seq: u64,
    detail: ExecutionDetail,
    finished: bool,
}

/// A run in progress: its state so far and a stream of what happens next.
pub struct LiveRun {
    pub id: String,
    state: Mutex<LiveState>,
    tx: broadcast::Sender<Arc<ExecutionEvent>>,
    cancel: CancellationToken,
    cancelled_by: Mutex<Option<String>>,
}

impl LiveRun {
    /// The run so far, and the events after it.
    pub fn subscribe(
        &self,
    ) -> (
        u64,
        ExecutionDetail,
        bool,
        broadcast::Receiver<Arc<ExecutionEvent>>,
    ) {
        let state = lock(&self.state);
        let rx = self.tx.subscribe();
        (state.seq, state.detail.clone(), state.finished, rx)
    }

    /// The run so far.
    pub fn snapshot(&self) -> ExecutionDetail {
        lock(&self.state).detail.clone()
    }

    /// Asks the run to stop: hosts not started are cancelled, running ones are killed.
    /// False if it had already finished.
    pub fn cancel(&self, by: &str) -> bool {
        if lock(&self.state).finished {
            return false;
        }
        lock(&self.cancelled_by).get_or_insert_with(|| by.to_string());
        self.cancel.cancel();
        true
    }

    /// Applies a change and publishes the event it makes, under one lock so that snapshots
    /// and events never disagree.
    fn publish(&self, change: impl FnOnce(&mut LiveState, u64) -> Option<ExecutionEvent>) {
        let mut state = lock(&self.state);
        let seq = state.seq + 1;
        if let Some(event) = change(&mut state, seq) {
            state.seq = seq;
            let _ = self.tx.send(Arc::new(event));
        }
    }

    fn host_mut<'a>(state: &'a mut LiveState, server_id: &str) -> Option<&'a mut ExecutionHost> {
        state
            .detail
            .hosts
            .iter_mut()
            .find(|h| h.server_id == server_id)
    }

    fn host_event(&self, host: &ExecutionHost) {
        let update = host.clone();
        self.publish(|state, seq| {
            let h = Self::host_mut(state, &update.server_id)?;
            // Output is kept from the output events; a status change does not repeat it.
            let (stdout, stderr) = (std::mem::take(&mut h.stdout), std::mem::take(&mut h.stderr));
            *h = update.clone();
            h.stdout = stdout;
            h.stderr = stderr;
            state.detail.execution.summary = summarize(&state.detail.hosts);
            Some(ExecutionEvent::Host { seq, host: update })
        });
    }

    fn output_event(&self, server_id: &str, stream: &'static str, text: String) {
        if text.is_empty() {
            return;
        }
        self.publish(|state, seq| {
            let h = Self::host_mut(state, server_id)?;
            if stream == "stdout" {
                h.stdout.push_str(&text);
            } else {
                h.stderr.push_str(&text);
            }
            Some(ExecutionEvent::Output {
                seq,
                server_id: server_id.to_string(),
                stream: stream.into(),
                data: text,
            })
        });
    }
}

/// The seq of an event.
pub fn seq_of(e: &ExecutionEvent) -> u64 {
    match e {
        ExecutionEvent::Snapshot { seq, .. }
        | ExecutionEvent::Output { seq, .. }
        | ExecutionEvent::Host { seq, .. }
        | ExecutionEvent::Finished { seq, .. } => *seq,
    }
}

/// Counts hosts by outcome.
pub fn summarize(hosts: &[ExecutionHost]) -> ExecutionSummary {
    let mut s = ExecutionSummary {
        total: hosts.len() as i64,
        ..Default::default()
    };
    for h in hosts {
        match h.status.as_str() {
            "ok" => s.ok += 1,
            "failed" => s.failed += 1,
            "timed_out" => s.timed_out += 1,
            "error" => s.error += 1,
            "cancelled" | "skipped" => s.cancelled += 1,
            _ => s.running += 1,
        }
    }
    s
}

/// A stored host row as the API shows it.
pub fn host_view(h: &ExecutionHostRow) -> ExecutionHost {
    ExecutionHost {
        server_id: h.server_id.clone(),
        server_name: h.server_name.clone(),
        status: h.status.clone(),
        exit_code: h.exit_code,
        exit_signal: h.exit_signal.clone(),
        error_code: h.error_code.clone(),
        error: h.error.clone(),
        started_at: h.started_at.map(time),
        finished_at: h.finished_at.map(time),
        duration_ms: h.started_at.zip(h.finished_at).map(|(s, f)| f - s),
        stdout: String::from_utf8_lossy(&h.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&h.stderr).into_owned(),
        stdout_bytes: h.stdout_bytes,
        stderr_bytes: h.stderr_bytes,
        truncated: h.truncated != 0,
    }
}

/// What to run, where, and how.
pub struct Plan {
    pub detail: ExecutionDetail,
    pub org_id: String,
    pub servers: Vec<ServerRow>,
    /// Parameter assignments and the body, written to the remote shell's standard input.
    pub script: String,
    /// Values of secret parameters: masked (`***`) in the output streamed and stored.
    pub secrets: Vec<String>,
    pub shell: Shell,
    pub timeout: Duration,
    pub concurrency: usize,
    pub stop_on_failure: bool,
    pub actor: Actor,
}

/// Starts a stored run in the background and returns its live handle.
pub fn start(st: &Services, plan: Plan) -> Arc<LiveRun> {
    let (tx, _) = broadcast::channel(4096);
    let live = Arc::new(LiveRun {
        id: plan.detail.execution.id.clone(),
        state: Mutex::new(LiveState {
            seq: 0,
            detail: plan.detail.clone(),
            finished: false,
        }),
        tx,
        cancel: CancellationToken::new(),
        cancelled_by: Mutex::new(None),
    });
    st.executions.insert(live.clone());
    let st = st.clone();
    let run = live.clone();
    tokio::spawn(async move {
        let id = run.id.clone();
        execute(&st, &run, plan).await;
        // Late subscribers still get the live state for a while; the database has it after.
        tokio::time::sleep(Duration::from_secs(60)).await;
        st.executions.remove(&id);
    });
    live
}

async fn execute(st: &Services, live: &Arc<LiveRun>, plan: Plan) {
    let run_clock = Instant::now();
    let sem = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    // Cancelled on the first failure (with stop-on-failure) or by a cancel: no new hosts.
    let stop = live.cancel.child_token();
    let script: Arc<str> = plan.script.into();
    let secrets: Arc<[Vec<u8>]> = plan.secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
    // Hosts hand their outcome to one writer, which stores whatever has arrived in one
    // transaction: SQLite makes concurrent writers wait on each other in sleeps.
    let (store, mut finished) = tokio::sync::mpsc::unbounded_channel::<ExecutionHostRow>();
    let db = st.db.clone();
    let writer = tokio::spawn(async move {
        while let Some(first) = finished.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = finished.try_recv() {
                batch.push(more);
            }
            let result = async {
                let mut tx = db.begin().await?;
                for row in &batch {
                    executions::finish_host(&mut *tx, row).await?;
                }
                tx.commit().await?;
                Ok::<_, steward_db::DbError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, hosts = batch.len(), "storing hosts' outcomes failed");
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut not_started = Vec::new();
    for server in plan.servers {
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.ok(),
            _ = stop.cancelled() => None,
        };
        let Some(permit) = permit.filter(|_| !stop.is_cancelled()) else {
            not_started.push(server);
            continue;
        };
        let job = HostJob {
            st: st.clone(),
            live: live.clone(),
            execution_id: live.id.clone(),
            server,
            script: script.clone(),
            secrets: secrets.clone(),
            shell: plan.shell,
            timeout: plan.timeout,
            actor: plan.actor.clone(),
            run_clock,
            store: store.clone(),
        };
        let stop = stop.clone();
        let stop_on_failure = plan.stop_on_failure;
        tasks.spawn(async move {
            let status = job.run().await;
            drop(permit);
            if stop_on_failure && status != "ok" {
                stop.cancel();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let hosts_done = run_clock.elapsed();

    let cancelled = live.cancel.is_cancelled();
    let now = st.now_ms();
    for server in not_started {
        let row = ExecutionHostRow {
            execution_id: live.id.clone(),
            server_id: server.id.clone(),
            server_name: server.name.clone(),
            status: if cancelled { "cancelled" } else { "skipped" }.into(),
            finished_at: Some(now),
            ..Default::default()
        };
        live.host_event(&host_view(&row));
        let _ = store.send(row);
    }
    drop(store);
    let _ = writer.await;
    let stored = run_clock.elapsed();

    let status = if cancelled { "cancelled" } else { "finished" };
    let cancelled_by = lock(&live.cancelled_by).clone();
    let summary = summarize(&live.snapshot().hosts);
    let mut row = match executions::get(&st.db.pool, &plan.org_id, &live.id).await {
        Ok(Some(r)) => r,
        other => {
            tracing::error!(execution = %live.id, result = ?other.err(), "the run's record is gone");
            return;
        }
    };
    row.status = status.into();
    row.finished_at = Some(now);
    row.cancelled_by_name = cancelled_by.clone();
    row.hosts_ok = summary.ok;
    row.hosts_failed = summary.failed;
    row.hosts_timed_out = summary.timed_out;
    row.hosts_error = summary.error;
    row.hosts_cancelled = summary.cancelled;
    if let Err(e) = executions::finish(&st.db.pool, &row).await {
        tracing::error!(error = %e, "storing the run's end failed");
    }
    if let Err(e) = forget_secrets(st, &live.id).await {
        tracing::error!(error = %e, execution = %live.id, "forgetting the run's sealed secret parameters failed");
    }
    live.publish(|state, seq| {
        state.finished = true;
        state.detail.execution.status = status.into();
        state.detail.execution.finished_at = Some(time(now));
        state.detail.execution.cancelled_by = cancelled_by.clone();
        state.detail.execution.summary = summary.clone();
        Some(ExecutionEvent::Finished {
            seq,
            status: status.into(),
            summary: summary.clone(),
        })
    });
    tracing::debug!(
        target: "steward_api::runner::phases",
        execution = %live.id,
        hosts_done_us = hosts_done.as_micros() as u64,
        hosts_stored_us = stored.as_micros() as u64,
        finished_us = run_clock.elapsed().as_micros() as u64,
        "run phases"
    );
    tracing::info!(execution = %live.id, status, ok = summary.ok, failed = summary.failed, timed_out = summary.timed_out, error = summary.error, "run finished");
}

/// Deletes the sealed secret parameter values of a run that ended (also used at start-up for
/// runs a stopped process left behind).
pub async fn forget_secrets(st: &Services, execution_id: &str) -> Result<(), steward_db::DbError> {
    let Some(json) = executions::secret_parameters(&st.db.pool, execution_id).await? else {
        return Ok(());
    };
    let ids: BTreeMap<String, String> = serde_json::from_str(&json).unwrap_or_default();
    let mut tx = st.db.begin().await?;
    for id in ids.values() {
        steward_db::secrets::delete(&mut *tx, id).await?;
    }
    executions::clear_secret_parameters(&mut *tx, execution_id).await?;
    tx.commit().await?;
    Ok(())
}

/// Single-quotes a value for the shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::host::may_start_background_jobs;
    use super::output::{Capped, Utf8Stream};
    use super::*;

    #[test]
    fn utf8_characters_split_across_chunks_are_joined() {
        let mut s = Utf8Stream::default();
        let bytes = "ünï".as_bytes();
        assert_eq!(s.push(&bytes[..1]), "");
        assert_eq!(s.push(&bytes[1..4]), "ün");
        assert_eq!(s.push(&bytes[4..]), "ï");
        assert_eq!(s.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn output_over_the_cap_is_cut_and_counted() {
        let mut c = Capped::new(5, Arc::from(Vec::new()));
        assert_eq!(c.push(b"abc"), ("abc".into(), false));
        assert_eq!(c.push(b"defg"), ("de".into(), true));
        assert_eq!(c.push(b"hij"), ("".into(), false));
        assert_eq!(c.kept, b"abcde");
        assert_eq!(c.total, 10);
        assert!(c.truncated());
    }

    #[test]
    fn secrets_are_masked_across_chunks() {
        let secrets: Arc<[Vec<u8>]> = Arc::from(vec![b"hunter22".to_vec(), b"pw".to_vec()]);
        let mut c = Capped::new(1024, secrets);
        let mut shown = String::new();
        for chunk in [
            &b"user hun"[..],
            b"ter22 and p",
            b"w; hunter2",
            b"2!",
            b" hunter",
        ] {
            shown.push_str(&c.push(chunk).0);
        }
        shown.push_str(&c.finish());
        assert_eq!(shown, "user *** and ***; ***! hunter");
        assert_eq!(String::from_utf8_lossy(&c.kept), shown);
        // Without secrets nothing is held back.
        let mut plain = Capped::new(1024, Arc::from(Vec::new()));
        assert_eq!(plain.push(b"hunter22").0, "hunter22");
    }

    #[test]
    fn background_jobs_are_told_from_and_lists_and_redirections() {
        for no in ["true", "a && b", "echo x >&2", "cat <&3", "a 2>&1 | b && c"] {
            assert!(!may_start_background_jobs(no), "{no}");
        }
        for yes in [
            "sleep 5 &",
            "a & b",
            "a &> f",
            "a && b & c",
            "(x) &\nwait",
            "&",
        ] {
            assert!(may_start_background_jobs(yes), "{yes}");
        }
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
