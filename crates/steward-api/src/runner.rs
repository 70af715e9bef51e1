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

use crate::handlers::{opt_time, time};
use crate::state::AppState;
use steward_services::fleet::{self, Actor};

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
        started_at: opt_time(h.started_at),
        finished_at: opt_time(h.finished_at),
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
pub fn start(st: &AppState, plan: Plan) -> Arc<LiveRun> {
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

async fn execute(st: &AppState, live: &Arc<LiveRun>, plan: Plan) {
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
pub async fn forget_secrets(st: &AppState, execution_id: &str) -> Result<(), steward_db::DbError> {
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

/// Replaces every occurrence of the secrets in a stream of bytes by `***`, holding back the
/// bytes that could be the start of one until the next chunk shows whether it is.
#[derive(Default)]
struct Mask {
    secrets: Arc<[Vec<u8>]>,
    held: Vec<u8>,
}

impl Mask {
    fn new(secrets: Arc<[Vec<u8>]>) -> Self {
        Self {
            secrets,
            held: Vec::new(),
        }
    }

    fn longest(&self) -> usize {
        self.secrets.iter().map(Vec::len).max().unwrap_or(0)
    }

    fn replace_all(&mut self) {
        for secret in self.secrets.iter().filter(|s| !s.is_empty()) {
            let mut out = Vec::with_capacity(self.held.len());
            let mut i = 0;
            while i < self.held.len() {
                if self.held[i..].starts_with(secret) {
                    out.extend_from_slice(b"***");
                    i += secret.len();
                } else {
                    out.push(self.held[i]);
                    i += 1;
                }
            }
            self.held = out;
        }
    }

    /// What may go out now.
    fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return data.to_vec();
        }
        self.held.extend_from_slice(data);
        self.replace_all();
        // A secret that starts in what goes out now ends inside `held`, so it was replaced.
        let keep = self.longest().saturating_sub(1).min(self.held.len());
        let rest = self.held.split_off(self.held.len() - keep);
        std::mem::replace(&mut self.held, rest)
    }

    /// Everything left, at the end of the stream.
    fn finish(&mut self) -> Vec<u8> {
        self.replace_all();
        std::mem::take(&mut self.held)
    }
}

/// Turns a stream of bytes into text without splitting a character across messages.
#[derive(Default)]
struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    fn push(&mut self, data: &[u8]) -> String {
        self.pending.extend_from_slice(data);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits for the rest; anything else is
            // replaced now.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(valid);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }

    fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// One stream's kept output, up to the cap, with secret values masked.
struct Capped {
    kept: Vec<u8>,
    total: i64,
    cap: usize,
    text: Utf8Stream,
    mask: Mask,
}

impl Capped {
    fn new(cap: usize, secrets: Arc<[Vec<u8>]>) -> Self {
        Self {
            kept: Vec::new(),
            total: 0,
            cap,
            text: Utf8Stream::default(),
            mask: Mask::new(secrets),
        }
    }

    /// Keeps what fits; returns the text to stream and whether this push hit the cap.
    fn push(&mut self, data: &[u8]) -> (String, bool) {
        let data = self.mask.push(data);
        self.keep(&data)
    }

    /// The text still held back, at the end of the stream.
    fn finish(&mut self) -> String {
        let rest = self.mask.finish();
        let (mut text, _) = self.keep(&rest);
        text.push_str(&self.text.finish());
        text
    }

    fn keep(&mut self, data: &[u8]) -> (String, bool) {
        self.total += data.len() as i64;
        let was_full = self.kept.len() >= self.cap;
        let room = self.cap.saturating_sub(self.kept.len());
        let keep = room.min(data.len());
        self.kept.extend_from_slice(&data[..keep]);
        let text = self.text.push(&data[..keep]);
        (text, !was_full && keep < data.len())
    }

    fn truncated(&self) -> bool {
        self.total > self.kept.len() as i64
    }
}

struct HostJob {
    st: AppState,
    live: Arc<LiveRun>,
    execution_id: String,
    server: ServerRow,
    script: Arc<str>,
    secrets: Arc<[Vec<u8>]>,
    shell: Shell,
    timeout: Duration,
    actor: Actor,
    store: tokio::sync::mpsc::UnboundedSender<ExecutionHostRow>,
    /// When the run started (for the phase timings).
    run_clock: Instant,
}

enum End {
    Exited(Option<u32>, Option<String>),
    TimedOut,
    Cancelled,
    Lost(String),
}

/// Where a host's command runs: a channel of its own, or a runner shell.
enum Remote {
    Channel(Process),
    Runner(Box<RunnerCommand>),
}

impl Remote {
    async fn next(&mut self) -> Option<Output> {
        match self {
            Remote::Channel(p) => p.next().await,
            Remote::Runner(c) => c.next().await,
        }
    }

    /// The runner's pid, which is its process group (a channel's comes from its output).
    fn pid(&self) -> Option<u32> {
        match self {
            Remote::Channel(_) => None,
            Remote::Runner(c) => c.pid(),
        }
    }

    async fn signal(&self, sig: Sig) {
        let _ = match self {
            Remote::Channel(p) => p.signal(sig).await,
            Remote::Runner(c) => c.signal(sig).await,
        };
    }

    async fn close(&mut self) {
        match self {
            Remote::Channel(p) => p.close().await,
            Remote::Runner(c) => c.close().await,
        }
    }
}

/// When a host's command reached each step, since the host started (for the debug log).
#[derive(Default)]
struct Phases {
    started: Option<Duration>,
    first: Option<Duration>,
    exit: Option<Duration>,
    done: Option<Duration>,
}

impl Phases {
    fn us(&self, d: Option<Duration>) -> u64 {
        d.map_or(0, |d| d.as_micros() as u64)
    }
}

impl HostJob {
    /// Who a runner shell works for: runners are reused only for the same user's runs.
    fn runner_owner(&self) -> &str {
        self.actor.user_id.as_deref().unwrap_or(&self.actor.name)
    }

    /// Runs on one host, stores and publishes the outcome; returns the host's final status.
    async fn run(self) -> String {
        let started = self.st.now_ms();
        let mut row = ExecutionHostRow {
            execution_id: self.execution_id.clone(),
            server_id: self.server.id.clone(),
            server_name: self.server.name.clone(),
            status: "running".into(),
            started_at: Some(started),
            ..Default::default()
        };
        self.live.host_event(&host_view(&row));
        let cap = self.st.config.execution_output_cap;
        let mut out = Capped::new(cap, self.secrets.clone());
        let mut err = Capped::new(cap, self.secrets.clone());
        let clock = Instant::now();

        let conn = tokio::select! {
            c = fleet::connect(&self.st, &self.server, &self.actor) => Some(c),
            _ = self.live.cancel.cancelled() => None,
            _ = tokio::time::sleep(self.timeout) => {
                row.status = "timed_out".into();
                row.error_code = Some("timeout".into());
                row.error = Some(format!("could not connect within {} s", self.timeout.as_secs()));
                return self.finish(row, out, err).await;
            }
        };
        let conn = match conn {
            None => {
                row.status = "cancelled".into();
                return self.finish(row, out, err).await;
            }
            Some(Err(e)) => {
                row.status = "error".into();
                row.error_code = Some(e.code().into());
                row.error = Some(e.to_string());
                return self.finish(row, out, err).await;
            }
            Some(Ok(c)) => c,
        };
        let connected = clock.elapsed();
        let deadline = tokio::time::Instant::now() + self.timeout.saturating_sub(clock.elapsed());
        // A POSIX `sh` script goes to a runner shell kept on the connection (warm: no new
        // channel, sshd session or login shell); anything else, or a runner that does not take
        // the command, to a channel of its own.
        let mut remote = None;
        if self.st.config.execution_runners
            && self.shell == Shell::Sh
            && !self.script.contains('\0')
            && !may_start_background_jobs(&self.script)
        {
            let runner = match conn.take_runner(self.runner_owner()).await {
                Some(r) => Some(r),
                None => match conn.start_runner().await {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::debug!(server = %self.server.name, error = %e, "no runner shell; one channel for the command");
                        None
                    }
                },
            };
            if let Some(runner) = runner {
                match runner.run(&self.script).await {
                    Ok(cmd) => remote = Some(Remote::Runner(Box::new(cmd))),
                    Err(e) => {
                        tracing::debug!(server = %self.server.name, error = %e, "runner shell refused the command")
                    }
                }
            }
        }
        let mut phases = Phases::default();
        let mut fell_back = false;
        let (end, mut remote, pid) = loop {
            let mut remote = match remote.take() {
                Some(r) => r,
                None => match self.start_channel(&conn).await {
                    Ok(p) => Remote::Channel(p),
                    Err(e) => {
                        row.status = "error".into();
                        row.error_code = Some("start_failed".into());
                        row.error = Some(e.to_string());
                        return self.finish(row, out, err).await;
                    }
                },
            };
            phases.started = Some(clock.elapsed());
            let (end, pid) = self
                .drive(
                    &mut remote,
                    deadline,
                    &mut out,
                    &mut err,
                    &mut row,
                    &mut phases,
                    clock,
                )
                .await;
            if let Remote::Runner(cmd) = &remote
                && !cmd.started()
                && matches!(end, End::Exited(..))
            {
                // The runner was gone before it read the command: nothing ran. Run it on a
                // channel of its own.
                tracing::debug!(server = %self.server.name, "runner shell gone; one channel for the command");
                cmd.close().await;
                fell_back = true;
                continue;
            }
            break (end, remote, pid);
        };
        phases.done = Some(clock.elapsed());
        let path = match &remote {
            Remote::Runner(c) if c.reused() => "runner (warm)",
            Remote::Runner(_) => "runner (new)",
            Remote::Channel(_) if fell_back => "channel (runner gone)",
            Remote::Channel(_) => "channel",
        };
        tracing::debug!(
            target: "steward_api::runner::phases",
            server = %self.server.name,
            path,
            host_start_us = clock.duration_since(self.run_clock).as_micros() as u64,
            connect_us = connected.as_micros() as u64,
            start_us = phases.us(phases.started),
            first_output_us = phases.us(phases.first),
            exit_us = phases.us(phases.exit),
            done_us = phases.us(phases.done),
            "host phases"
        );
        if matches!(end, End::Exited(..)) {
            if let Remote::Runner(cmd) = remote
                && let Some(runner) = cmd.finish()
            {
                conn.park_runner(runner, self.runner_owner());
            }
        } else {
            kill(&conn, &mut remote, pid).await;
        }
        let end = match end {
            End::Exited(None, None) if conn.is_closed() => {
                End::Lost("the connection closed before the command finished".into())
            }
            other => other,
        };
        match end {
            End::Exited(code, sig) => {
                row.exit_code = code.map(i64::from);
                row.exit_signal = sig.clone();
                row.status = if code == Some(0) { "ok" } else { "failed" }.into();
            }
            End::TimedOut => {
                row.status = "timed_out".into();
                row.error_code = Some("timeout".into());
                row.error = Some(format!(
                    "still running after {} s; stopped",
                    self.timeout.as_secs()
                ));
            }
            End::Cancelled => {
                row.status = "cancelled".into();
                row.error = Some("cancelled; the remote command was stopped".into());
            }
            End::Lost(why) => {
                row.status = "error".into();
                row.error_code = Some("connection_lost".into());
                row.error = Some(why);
            }
        }
        self.finish(row, out, err).await
    }

    /// Starts the script on a channel of its own: `sh -s` (or `bash -s`) fed the script.
    async fn start_channel(
        &self,
        conn: &Connection,
    ) -> Result<Process, steward_ssh::client::SshError> {
        let interpreter = match self.shell {
            Shell::Sh => "sh",
            Shell::Bash => "bash",
        };
        let wrapper = format!("echo \"steward-pid:$$\" >&2; exec {interpreter} -s");
        start_with_input(conn, &wrapper, self.script.as_bytes()).await
    }

    /// Passes the command's output on until it ends, the deadline passes or the run is
    /// cancelled; returns how it ended and the pid of its process group, if known.
    #[allow(clippy::too_many_arguments)]
    async fn drive(
        &self,
        remote: &mut Remote,
        deadline: tokio::time::Instant,
        out: &mut Capped,
        err: &mut Capped,
        row: &mut ExecutionHostRow,
        phases: &mut Phases,
        clock: Instant,
    ) -> (End, Option<u32>) {
        let mut pid: Option<u32> = None;
        // A channel of its own announces its pid first on standard error; a runner shell
        // reads its own.
        let mut pid_line: Option<Vec<u8>> = matches!(remote, Remote::Channel(_)).then(Vec::new);
        let mut exit: Option<u32> = None;
        let mut signal: Option<String> = None;
        let end = loop {
            tokio::select! {
                msg = remote.next() => {
                    if phases.first.is_none() {
                        phases.first = Some(clock.elapsed());
                    }
                    match msg {
                    None => break End::Exited(exit, signal.take()),
                    Some(Output::Exit(code)) => {
                        phases.exit = Some(clock.elapsed());
                        exit = Some(code);
                    }
                    Some(Output::Signal(s)) => signal = Some(s),
                    Some(Output::Stdout(data)) => self.output(out, "stdout", &data, row),
                    Some(Output::Stderr(data)) => {
                        let data = match pid_line.as_mut() {
                            None => data,
                            Some(buf) => {
                                buf.extend_from_slice(&data);
                                let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
                                    if buf.len() > 64 { let all = pid_line.take().unwrap_or_default(); self.output(err, "stderr", &all, row); }
                                    continue;
                                };
                                let line = buf[..nl].to_vec();
                                let rest = buf[nl + 1..].to_vec();
                                pid_line = None;
                                match line.strip_prefix(PID_PREFIX).and_then(|p| std::str::from_utf8(p).ok()).and_then(|p| p.trim().parse::<u32>().ok()) {
                                    Some(p) if p > 1 => { pid = Some(p); rest }
                                    _ => { let mut all = line; all.push(b'\n'); all.extend_from_slice(&rest); all }
                                }
                            }
                        };
                        self.output(err, "stderr", &data, row);
                    }
                }},
                _ = tokio::time::sleep_until(deadline) => break End::TimedOut,
                _ = self.live.cancel.cancelled() => break End::Cancelled,
            }
        };
        (end, pid.or_else(|| remote.pid()))
    }

    fn output(
        &self,
        c: &mut Capped,
        stream: &'static str,
        data: &[u8],
        row: &mut ExecutionHostRow,
    ) {
        let (text, hit_cap) = c.push(data);
        self.live.output_event(&self.server.id, stream, text);
        if hit_cap {
            row.truncated = 1;
            let mut view = host_view(row);
            view.stdout.clear();
            view.stderr.clear();
            self.live.host_event(&view);
        }
    }

    async fn finish(self, mut row: ExecutionHostRow, mut out: Capped, mut err: Capped) -> String {
        self.live
            .output_event(&self.server.id, "stdout", out.finish());
        self.live
            .output_event(&self.server.id, "stderr", err.finish());
        row.finished_at = Some(self.st.now_ms());
        row.truncated = i64::from(out.truncated() || err.truncated());
        row.stdout_bytes = out.total;
        row.stderr_bytes = err.total;
        row.stdout = std::mem::take(&mut out.kept);
        row.stderr = std::mem::take(&mut err.kept);
        let mut view = host_view(&row);
        view.stdout.clear();
        view.stderr.clear();
        self.live.host_event(&view);
        let status = row.status.clone();
        let _ = self.store.send(row);
        status
    }
}

async fn start_with_input(
    conn: &Connection,
    command: &str,
    input: &[u8],
) -> Result<Process, steward_ssh::client::SshError> {
    let process = conn.start(command).await?;
    process.write(input).await?;
    process.eof().await?;
    Ok(process)
}

/// Stops a remote command and everything it started: the SSH signal request, then SIGTERM to
/// its process group (a runner shell's group: the runner goes too), SIGKILL after two seconds
/// if anything is left, then the channel closes.
async fn kill(conn: &Connection, remote: &mut Remote, pid: Option<u32>) {
    remote.signal(Sig::TERM).await;
    if let Some(pid) = pid {
        let cmd = format!(
            "kill -TERM -- -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; i=0; \
             while [ $i -lt 20 ] && kill -0 -- -{pid} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; \
             kill -KILL -- -{pid} 2>/dev/null; true"
        );
        if let Err(e) = conn.exec(&cmd, Duration::from_secs(10)).await {
            tracing::warn!(error = %e, "could not signal the remote process group");
        }
    }
    remote.close().await;
}

/// Whether a script may start a background job (`&` other than in `&&`, `>&` or `<&`): such
/// a job can outlive the script while still writing its output, which a channel of its own
/// waits for (and a runner shell would not), so such scripts do not go to a runner. Quotes and
/// comments are not parsed: an `&` in them counts too, which only costs a channel.
fn may_start_background_jobs(script: &str) -> bool {
    let b = script.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&' {
            if b.get(i + 1) == Some(&b'&') {
                i += 2;
                continue;
            }
            if i == 0 || !matches!(b[i - 1], b'>' | b'<') {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Single-quotes a value for the shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
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
