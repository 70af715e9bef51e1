//! Runner shells: a POSIX `sh` kept running on a session channel of a pooled connection, which
//! runs one command after another, so a warm command costs neither a new channel nor a new
//! sshd session nor a login shell (what Mitogen does for Ansible). `docs/notes/runner.md` has
//! the design and its limits.
//!
//! The channel runs `echo "steward-pid:$$" >&2; exec sh` through the account's login shell, as
//! the channel-per-command path does (so the environment is the same). sshd makes that shell
//! the leader of a new session and process group, so its pid, announced first on standard
//! error, names the process group of everything its commands start.
//!
//! A command is written to the runner's standard input as one line the runner always parses
//! (the body travels inside single quotes, every `'` written `'\''`):
//!
//! ```text
//! printf '\036N:go\n'; ( eval '<body>' ) </dev/null; printf '\036N:%d\n' $?; printf '\036N:end\n' >&2
//! ```
//!
//! `N` is a random nonce per command. The acknowledgement on standard output says the runner
//! has read the command (without it, nothing ran and the caller may run it elsewhere); the
//! other two mark the end of each stream, the first with the exit status. The exact marker
//! bytes are removed, so the output is the command's own, byte for byte. The subshell keeps
//! `exit`, `cd`, variables and traps from reaching the runner; its standard input is
//! `/dev/null`.
//!
//! A runner is used by one command at a time. An idle runner is watched: anything arriving on
//! its channel (output of a process a command left behind, its end) makes it unusable, and it
//! is closed. A runner is only put back after a command that ended cleanly (both markers, no
//! stray bytes); on a timeout or a cancel the caller kills its process group and drops it.
use std::sync::Mutex;

use russh::ChannelMsg;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::{Connection, Output, Sig, SshError};

/// Idle runners kept per connection. They count against the connection's channels (the
/// pool counts them as users), so only a few are kept.
pub const MAX_IDLE_RUNNERS: usize = 2;

/// A runner older than this is not reused: a command then sees the account's start-up
/// environment as it is now, give or take this long (a new session reads it again).
pub const MAX_RUNNER_AGE: std::time::Duration = std::time::Duration::from_secs(60);

const PID_PREFIX: &[u8] = b"steward-pid:";
const START: &str = "echo \"steward-pid:$$\" >&2; exec sh";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A runner shell that is not running a command.
pub struct Runner {
    channel: russh::Channel<russh::client::Msg>,
    /// The runner's pid (its process group), once announced.
    pid: Option<u32>,
    /// Standard error before the pid line of a new runner (`None` once it has been read).
    pid_line: Option<Vec<u8>>,
    /// Commands it has run before this one.
    used: u64,
    born: std::time::Instant,
}

struct Idle {
    /// Whose commands it ran: it only runs that owner's next ones.
    owner: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Option<Runner>>,
}

/// The idle runners of one connection.
#[derive(Default)]
pub(crate) struct Runners {
    idle: Mutex<Vec<Idle>>,
}

impl Runners {
    fn count(&self) -> usize {
        lock(&self.idle)
            .iter()
            .filter(|i| !i.task.is_finished())
            .count()
    }
}

/// Whether a message on an idle runner's channel means it is no longer usable.
fn breaks_idle(msg: &ChannelMsg) -> bool {
    matches!(
        msg,
        ChannelMsg::Data { .. }
            | ChannelMsg::ExtendedData { .. }
            | ChannelMsg::Eof
            | ChannelMsg::Close
            | ChannelMsg::ExitStatus { .. }
            | ChannelMsg::ExitSignal { .. }
            | ChannelMsg::Failure
    )
}

impl Connection {
    /// Idle runner shells on this connection (each holds a channel).
    pub fn idle_runners(&self) -> usize {
        self.runners.count()
    }

    /// An idle runner of `owner`'s that is still healthy, if there is one (dead ones are
    /// dropped). Runners are not shared between owners: a process a command leaves behind
    /// could write into the next command's output, which must then be the same owner's.
    pub async fn take_runner(&self, owner: &str) -> Option<Runner> {
        loop {
            let idle = {
                let mut idle = lock(&self.runners.idle);
                let i = idle.iter().rposition(|i| i.owner == owner)?;
                idle.remove(i)
            };
            let _ = idle.stop.send(());
            if let Ok(Some(runner)) = idle.task.await {
                return Some(runner);
            }
        }
    }

    /// Starts a new runner shell on a new channel. It announces its pid and reads commands
    /// once the login shell has started it; a command can be sent at once.
    pub async fn start_runner(&self) -> Result<Runner, SshError> {
        let channel = self.open_session().await?;
        channel
            .exec(true, START)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))?;
        Ok(Runner {
            channel,
            pid: None,
            pid_line: Some(Vec::new()),
            used: 0,
            born: std::time::Instant::now(),
        })
    }

    /// Keeps a runner for `owner`'s later commands, watched while idle; closes it instead if
    /// this connection already keeps [`MAX_IDLE_RUNNERS`] or has closed.
    pub fn park_runner(&self, runner: Runner, owner: &str) {
        if self.is_closed() || self.idle_runners() >= MAX_IDLE_RUNNERS {
            runner.discard();
            return;
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut runner = runner;
            loop {
                tokio::select! {
                    biased;
                    asked = &mut stopped => {
                        if asked.is_ok() {
                            return Some(runner);
                        }
                        // The connection let go of it.
                        let _ = runner.channel.close().await;
                        return None;
                    }
                    msg = runner.channel.wait() => match msg {
                        Some(m) if !breaks_idle(&m) => continue,
                        other => {
                            tracing::debug!(msg = ?other.map(|m| format!("{m:?}")), "runner shell unusable while idle; closed");
                            let _ = runner.channel.close().await;
                            return None;
                        }
                    }
                }
            }
        });
        let mut idle = lock(&self.runners.idle);
        idle.retain(|i| !i.task.is_finished());
        idle.push(Idle {
            owner: owner.to_string(),
            stop,
            task,
        });
    }
}

/// Single-quotes text for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A fresh random nonce (128 bits, hex).
fn nonce() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The line a runner reads for one command. The subshell's `EXIT` trap says if the command
/// started a background job (`$!` set), which may outlive it holding its output: the runner is
/// then not reused.
fn command_line(nonce: &str, body: &str) -> String {
    format!(
        "printf '\\036{nonce}:go\\n'; ( trap '[ -z \"$!\" ] || printf \"\\036{nonce}:bg\\n\"' EXIT; eval {} ) </dev/null; printf '\\036{nonce}:%d\\n' $?; printf '\\036{nonce}:end\\n' >&2\n",
        quote(body)
    )
}

/// Why a command could not be handed to a runner. Nothing of it ran.
#[derive(Debug, thiserror::Error)]
#[error("the runner shell did not take the command: {0}")]
pub struct NotStarted(pub String);

impl Runner {
    /// The runner's pid, which is also its process group, once announced.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Commands this runner ran before.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Closes the runner's channel in the background (its shell then reads end of input and
    /// exits).
    pub fn discard(self) {
        tokio::spawn(async move {
            let _ = self.channel.close().await;
        });
    }

    /// Sends a command (a POSIX shell script without NUL characters). Its output is read with
    /// [`RunnerCommand::next`].
    pub async fn run(self, body: &str) -> Result<RunnerCommand, NotStarted> {
        if body.contains('\0') {
            self.discard();
            return Err(NotStarted("the script contains a NUL character".into()));
        }
        let nonce = nonce();
        let line = command_line(&nonce, body);
        if let Err(e) = self.channel.data(line.as_bytes()).await {
            self.discard();
            return Err(NotStarted(e.to_string()));
        }
        let mut runner = self;
        let p = Parser::new(&nonce, runner.used == 0, runner.pid, runner.pid_line.take());
        Ok(RunnerCommand { runner, p })
    }
}

impl Parser {
    fn new(nonce: &str, fresh: bool, pid: Option<u32>, pid_line: Option<Vec<u8>>) -> Self {
        Parser {
            stdout_marker: format!("\x1e{nonce}:").into_bytes(),
            stderr_marker: format!("\x1e{nonce}:end\n").into_bytes(),
            pid,
            pid_line,
            fresh,
            acked: false,
            out: Vec::new(),
            err: Vec::new(),
            held: Vec::new(),
            code: None,
            err_done: false,
            dirty: false,
            ended: None,
            exit: None,
            signal: None,
            queue: std::collections::VecDeque::new(),
        }
    }
}

/// A command running on a runner shell.
pub struct RunnerCommand {
    runner: Runner,
    p: Parser,
}

/// What a command's output says so far: the markers cut out, the rest passed on.
struct Parser {
    /// The runner's pid, and its pid line while not yet read (a new runner's).
    pid: Option<u32>,
    pid_line: Option<Vec<u8>>,
    fresh: bool,
    /// `\x1eN:` — the acknowledgement and the end of standard output follow it.
    stdout_marker: Vec<u8>,
    /// `\x1eN:end\n`, the end of standard error.
    stderr_marker: Vec<u8>,
    acked: bool,
    /// Standard output not yet passed on (a possible marker's beginning).
    out: Vec<u8>,
    /// Standard error not yet passed on.
    err: Vec<u8>,
    /// Output held until the acknowledgement, in arrival order.
    held: Vec<Output>,
    code: Option<u32>,
    err_done: bool,
    /// Bytes arrived that belong to no command: do not reuse the runner.
    dirty: bool,
    /// The channel ended (`Some(true)`) before the command did; `Some(false)` once the
    /// command's end was reported.
    ended: Option<bool>,
    exit: Option<u32>,
    signal: Option<String>,
    queue: std::collections::VecDeque<Output>,
}

/// Finds `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// How many bytes at the end of `buf` could be the beginning of `marker` (kept back until
/// the next bytes tell).
fn holdback(buf: &[u8], marker: &[u8]) -> usize {
    let max = marker.len().saturating_sub(1).min(buf.len());
    (1..=max)
        .rev()
        .find(|&k| buf.ends_with(&marker[..k]))
        .unwrap_or(0)
}

impl Parser {
    fn emit(&mut self, o: Output) {
        if self.acked {
            self.queue.push_back(o);
        } else {
            self.held.push(o);
        }
    }

    fn on_stdout(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        loop {
            let Some(i) = find(&self.out, &self.stdout_marker) else {
                let keep = holdback(&self.out, &self.stdout_marker);
                let pass: Vec<u8> = self.out.drain(..self.out.len() - keep).collect();
                self.stdout_bytes(pass);
                return;
            };
            let after = i + self.stdout_marker.len();
            // A marker's word: up to 12 lower-case letters or digits, then a newline.
            let word_len = self.out[after..]
                .iter()
                .take(13)
                .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit()));
            let nl = match word_len {
                Some(n) if self.out[after + n] == b'\n' => n,
                None if self.out.len() - after < 13 => {
                    // The marker's word has not all arrived yet.
                    let pass: Vec<u8> = self.out.drain(..i).collect();
                    self.stdout_bytes(pass);
                    return;
                }
                _ => {
                    // Not a marker after all (the nonce makes this practically impossible):
                    // ordinary output.
                    let pass: Vec<u8> = self.out.drain(..=i).collect();
                    self.stdout_bytes(pass);
                    continue;
                }
            };
            let word = self.out[after..after + nl].to_vec();
            let before: Vec<u8> = self.out.drain(..after + nl + 1).take(i).collect();
            self.stdout_bytes(before);
            match (self.acked, self.code, word.as_slice()) {
                (false, _, b"go") => {
                    self.acked = true;
                    let held = std::mem::take(&mut self.held);
                    self.queue.extend(held);
                }
                (true, None, b"bg") => self.dirty = true,
                (true, None, w) => match std::str::from_utf8(w).ok().and_then(|w| w.parse().ok()) {
                    Some(code) => self.code = Some(code),
                    None => self.dirty = true,
                },
                _ => self.dirty = true,
            }
        }
    }

    fn stdout_bytes(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        if self.code.is_some() || (!self.acked && !self.fresh) {
            // Before the acknowledgement of a reused runner or after the end: not this
            // command's (a process an earlier command left behind). Dropped, and the runner
            // is not reused.
            self.dirty = true;
            return;
        }
        // A new runner's login shell may print before the acknowledgement; the
        // channel-per-command path would show it too.
        self.emit(Output::Stdout(data));
    }

    fn on_stderr(&mut self, data: &[u8]) {
        let data = match self.pid_line.as_mut() {
            None => data.to_vec(),
            Some(buf) => {
                buf.extend_from_slice(data);
                let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
                    if buf.len() > 64 {
                        let all = self.pid_line.take().unwrap_or_default();
                        self.stderr_bytes(all);
                    }
                    return;
                };
                let line = buf[..nl].to_vec();
                let rest = buf[nl + 1..].to_vec();
                self.pid_line = None;
                match line
                    .strip_prefix(PID_PREFIX)
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|p| p.trim().parse::<u32>().ok())
                {
                    Some(p) if p > 1 => {
                        self.pid = Some(p);
                        rest
                    }
                    _ => {
                        let mut all = line;
                        all.push(b'\n');
                        all.extend_from_slice(&rest);
                        all
                    }
                }
            }
        };
        self.stderr_bytes(data);
    }

    fn stderr_bytes(&mut self, data: Vec<u8>) {
        if self.err_done {
            if !data.is_empty() {
                self.dirty = true;
            }
            return;
        }
        self.err.extend_from_slice(&data);
        if let Some(i) = find(&self.err, &self.stderr_marker) {
            let rest = self.err.split_off(i + self.stderr_marker.len());
            self.err.truncate(i);
            let pass = std::mem::take(&mut self.err);
            if !pass.is_empty() {
                self.emit(Output::Stderr(pass));
            }
            self.err_done = true;
            if !rest.is_empty() {
                self.dirty = true;
            }
            return;
        }
        let keep = holdback(&self.err, &self.stderr_marker);
        let pass: Vec<u8> = self.err.drain(..self.err.len() - keep).collect();
        if !pass.is_empty() {
            self.emit(Output::Stderr(pass));
        }
    }

    /// The next thing to report: queued output, then the command's end once both streams
    /// have ended.
    fn pop(&mut self) -> Option<Output> {
        if let Some(o) = self.queue.pop_front() {
            return Some(o);
        }
        if self.ended.is_none()
            && let (Some(code), true) = (self.code, self.err_done)
        {
            self.ended = Some(false);
            return Some(Output::Exit(code));
        }
        None
    }

    /// The runner is gone before the command's end: pass on what is left.
    fn channel_ended(&mut self) {
        self.ended = Some(true);
        self.dirty = true;
        if !self.acked {
            // Nothing ran; what a new runner printed will be printed again elsewhere.
            self.held.clear();
            return;
        }
        let out = std::mem::take(&mut self.out);
        if !out.is_empty() && self.code.is_none() {
            self.queue.push_back(Output::Stdout(out));
        }
        let err = std::mem::take(&mut self.err);
        if !err.is_empty() && !self.err_done {
            self.queue.push_back(Output::Stderr(err));
        }
        if let Some(s) = self.signal.take() {
            self.queue.push_back(Output::Signal(s));
        } else if let Some(code) = self.exit {
            self.queue.push_back(Output::Exit(code));
        }
    }
}

impl RunnerCommand {
    /// The runner's pid (its process group), if known.
    pub fn pid(&self) -> Option<u32> {
        self.p.pid
    }

    /// Whether the runner took the command (acknowledged it). If the channel ends before,
    /// nothing of the command ran.
    pub fn started(&self) -> bool {
        self.p.acked
    }

    /// Whether this command went to a runner that had run commands before.
    pub fn reused(&self) -> bool {
        !self.p.fresh
    }

    /// The next piece of output; then `Exit` with the command's status (both streams ended)
    /// and `None`. If the runner's channel ends first, what it reported (`Exit` or `Signal`
    /// of the runner shell itself), then `None`.
    pub async fn next(&mut self) -> Option<Output> {
        loop {
            if let Some(o) = self.p.pop() {
                return Some(o);
            }
            if self.p.ended.is_some() {
                return None;
            }
            match self.runner.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self.p.on_stdout(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => self.p.on_stderr(&data),
                Some(ChannelMsg::ExitStatus { exit_status }) => self.p.exit = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    self.p.signal = Some(format!("{signal_name:?}"));
                }
                Some(ChannelMsg::Failure) | None => self.p.channel_ended(),
                Some(_) => {}
            }
        }
    }

    /// Whether the channel of the runner ended before the command did.
    pub fn runner_died(&self) -> bool {
        self.p.ended == Some(true)
    }

    /// Asks the server to deliver a signal to the runner shell.
    pub async fn signal(&self, signal: Sig) -> Result<(), SshError> {
        self.runner
            .channel
            .signal(signal)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// The runner, if the command ended cleanly and it can run another (and it is younger
    /// than [`MAX_RUNNER_AGE`]); otherwise it is closed.
    pub fn finish(mut self) -> Option<Runner> {
        self.runner.pid = self.p.pid;
        self.runner.pid_line = self.p.pid_line.take();
        if self.p.ended == Some(false)
            && !self.p.dirty
            && self.runner.pid.is_some()
            && self.runner.born.elapsed() < MAX_RUNNER_AGE
        {
            self.runner.used += 1;
            Some(self.runner)
        } else {
            self.runner.discard();
            None
        }
    }

    /// Closes the runner (after a kill, or when the command's end is not awaited).
    pub async fn close(&self) {
        let _ = self.runner.channel.close().await;
    }
}

#[cfg(test)]
mod tests;
