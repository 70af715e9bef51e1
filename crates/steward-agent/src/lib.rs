//! steward-agent: reads this host's counters every interval and pushes them to the Steward
//! hub over one outgoing WebSocket (see `steward_metrics::agent_proto`). It never executes
//! anything the hub sends and needs no root.
//!
//! Two threads: the collector (a plain thread, because statfs of a hung NFS mount blocks)
//! pushes snapshots into the shared [`buffer::Buffer`] and wakes the sender; the sender (a
//! single-threaded tokio runtime) keeps the connection, with backoff between attempts.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod args;
mod backoff;
pub mod buffer;
pub mod collect;
mod conn;
mod hostinfo;
mod log;
mod tls;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tokio_tungstenite::Connector;

use crate::args::{Command, Config, TokenSource};
use crate::backoff::Backoff;
use crate::buffer::Buffer;
use crate::conn::{ConnectError, End};
use crate::log::{error, info, warning};

/// State shared by the collector thread and the sender.
pub struct Shared {
    buffer: Mutex<Buffer>,
    /// Rung by the collector after each snapshot.
    wake: Notify,
    interval_secs: AtomicU32,
    collector: OnceLock<std::thread::Thread>,
}

impl Shared {
    fn new(interval_secs: u32) -> Shared {
        Shared {
            buffer: Mutex::new(Buffer::new(interval_secs)),
            wake: Notify::new(),
            interval_secs: AtomicU32::new(interval_secs),
            collector: OnceLock::new(),
        }
    }

    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_interval(&self, secs: u32) {
        if self.interval_secs.swap(secs, Ordering::Relaxed) != secs {
            self.buffer().set_interval(secs);
            if let Some(t) = self.collector.get() {
                t.unpark();
            }
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The collector: one snapshot at start, then one on every multiple of the interval (wall
/// clock), so agents of a fleet sample at the same instants.
fn collector_loop(shared: &Shared) {
    let mut collector = collect::Collector::new();
    loop {
        let taken = now_ms();
        let snapshot = collector.collect(taken);
        shared.buffer().push(snapshot);
        shared.wake.notify_one();
        loop {
            let step = i64::from(shared.interval_secs.load(Ordering::Relaxed)) * 1000;
            let now = now_ms();
            let mut next = (now / step + 1) * step;
            // Rates over a sliver of time are noise (CPU time moves in 10 ms ticks): a
            // boundary too close to the last snapshot is skipped.
            if next - taken < step / 2 {
                next += step;
            }
            // Unparked early by an interval change: the next boundary is worked out again.
            std::thread::park_timeout(Duration::from_millis((next - now).unsigned_abs()));
            if now_ms() >= next {
                break;
            }
        }
    }
}

/// The token, re-read from its file before each attempt, so fixing the file needs no
/// restart.
fn read_token(source: &TokenSource) -> Result<String, String> {
    match source {
        TokenSource::Value(t) => Ok(t.clone()),
        TokenSource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", path.display()));
            }
            Ok(token.to_owned())
        }
    }
}

fn warn_if_readable_by_others(source: &TokenSource) {
    use std::os::unix::fs::PermissionsExt;
    if let TokenSource::File(path) = source
        && let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warning!(
            "the token file {} is readable by others; chmod 600 it",
            path.display()
        );
    }
}

/// The sender: connect, run a session, back off, again, until `stop`.
async fn sender(
    config: Config,
    connector: Connector,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let hello = hostinfo::hello();
    let mut network = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    // A refused token will not fix itself quickly: retry slower, but keep retrying (the
    // file may be corrected, or the server enrolled, without touching the agent).
    let mut refused = Backoff::new(Duration::from_secs(5), Duration::from_secs(300));
    loop {
        let attempt = async {
            let token = read_token(&config.token).map_err(ConnectError::Failed)?;
            tokio::time::timeout(
                Duration::from_secs(20),
                conn::connect(&config.url, &token, connector.clone(), &hello),
            )
            .await
            .map_err(|_| ConnectError::Failed("timed out".into()))?
        };
        let result = tokio::select! {
            r = attempt => r,
            () = stopped(&mut stop) => return,
        };
        let delay = match result {
            Ok((mut ws, welcome)) => {
                let pending = {
                    let mut buf = shared.buffer();
                    buf.welcomed(welcome.last_seq);
                    buf.snapshots()
                };
                shared.set_interval(welcome.interval_secs);
                info!(
                    "connected to {} as server {}; interval {} s, {} snapshots to send",
                    config.url, welcome.server_id, welcome.interval_secs, pending
                );
                refused.reset();
                let started = tokio::time::Instant::now();
                let end = conn::session(&mut ws, &shared, &mut stop).await;
                shared.buffer().disconnected();
                let why = match end {
                    End::Shutdown => return,
                    End::Lost(why) => why,
                };
                // A hub that drops every connection at once must not get a reconnect storm.
                if started.elapsed() > Duration::from_secs(30) {
                    network.reset();
                }
                let d = network.next_delay();
                warning!(
                    "connection to the hub lost: {why}; reconnecting in {:.1} s",
                    d.as_secs_f32()
                );
                d
            }
            Err(ConnectError::Unauthorized) => {
                let d = refused.next_delay();
                error!(
                    "the hub at {} refused the enrollment token (401 Unauthorized): check the \
                     token (--token-file or STEWARD_AGENT_TOKEN); next try in {} s",
                    config.url,
                    d.as_secs()
                );
                d
            }
            Err(ConnectError::Failed(why)) => {
                let d = network.next_delay();
                warning!(
                    "cannot connect to the hub at {}: {why}; next try in {:.1} s",
                    config.url,
                    d.as_secs_f32()
                );
                d
            }
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// Runs the agent until SIGTERM or SIGINT.
fn run(config: Config) -> ExitCode {
    let connector = if config.tls {
        match tls::client_config(config.ca_file.as_deref()) {
            Ok(c) => Connector::Rustls(c),
            Err(e) => {
                error!("{e}");
                return ExitCode::from(2);
            }
        }
    } else {
        Connector::Plain
    };
    if let Err(e) = read_token(&config.token) {
        // Not fatal: the file may appear later (enrollment after install).
        warning!("{e}");
    }
    warn_if_readable_by_others(&config.token);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(1)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shared = Arc::new(Shared::new(config.interval_secs));
    let for_collector = Arc::clone(&shared);
    let spawned = std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || collector_loop(&for_collector));
    match spawned {
        Ok(handle) => {
            let _ = shared.collector.set(handle.thread().clone());
        }
        Err(e) => {
            error!("cannot start the collector: {e}");
            return ExitCode::FAILURE;
        }
    }
    info!(
        "steward-agent {} pushing to {} every {} s",
        env!("CARGO_PKG_VERSION"),
        config.url,
        config.interval_secs
    );
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot listen for signals");
            return ExitCode::FAILURE;
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let sending = tokio::spawn(sender(config, connector, Arc::clone(&shared), stop_rx));
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping"),
            _ = int.recv() => info!("SIGINT: stopping"),
        }
        let _ = stop_tx.send(true);
        let _ = sending.await;
        let dropped = shared.buffer().dropped_total();
        if dropped > 0 {
            info!("{dropped} snapshots were dropped over an hour old while the hub was away");
        }
        ExitCode::SUCCESS
    })
}

/// The program: parse the command line and environment, then run.
pub fn main() -> ExitCode {
    let parsed = args::parse(std::env::args().skip(1), |k| std::env::var(k).ok());
    match parsed {
        Ok(Command::Run(config)) => run(config),
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("steward-agent {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            ExitCode::from(2)
        }
    }
}
