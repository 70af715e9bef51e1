//! One host of a run: connect through the fleet, start the script on a channel of its own or a
//! runner shell, stream and store its output, and stop it (and everything it started) on
//! timeout or cancellation.
use super::output::Capped;
use super::*;

pub(super) struct HostJob {
    pub(super) st: Services,
    pub(super) live: Arc<LiveRun>,
    pub(super) execution_id: String,
    pub(super) server: ServerRow,
    pub(super) script: Arc<str>,
    pub(super) secrets: Arc<[Vec<u8>]>,
    pub(super) shell: Shell,
    pub(super) timeout: Duration,
    pub(super) actor: Actor,
    pub(super) store: tokio::sync::mpsc::UnboundedSender<ExecutionHostRow>,
    /// When the run started (for the phase timings).
    pub(super) run_clock: Instant,
}

pub(super) enum End {
    Exited(Option<u32>, Option<String>),
    TimedOut,
    Cancelled,
    Lost(String),
}

/// Where a host's command runs: a channel of its own, or a runner shell.
pub(super) enum Remote {
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
pub(super) struct Phases {
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
    pub(super) async fn run(self) -> String {
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

pub(super) async fn start_with_input(
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
pub(super) async fn kill(conn: &Connection, remote: &mut Remote, pid: Option<u32>) {
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
pub(super) fn may_start_background_jobs(script: &str) -> bool {
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
