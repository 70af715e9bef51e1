//! Shared application state, passed to handlers through axum's `State`.
use std::sync::Arc;

use ipnet::IpNet;
use steward_core::Clock;
use steward_db::Db;
use steward_vault::Vault;

use steward_services::auth::jwt::JwtKeys;

/// Settings the API needs from the configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Access-token lifetime in seconds (default 900).
    pub access_ttl_secs: i64,
    /// Refresh-token lifetime in seconds; each refresh starts it again (default 14 days).
    pub refresh_ttl_secs: i64,
    /// Longest a session may last however often it is refreshed (default 30 days).
    pub session_max_secs: i64,
    /// Mark cookies `Secure` (when Steward is reached over HTTPS).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request body in bytes; a larger declared `Content-Length` is refused (413)
    /// before the body is read.
    pub max_body_bytes: usize,
    /// Most HTTP connections open at once, WebSockets included (default 10,000); over it a
    /// new connection is answered 503 and closed.
    pub max_connections: usize,
    /// A request line and headers must arrive within this, from the accept or from the first
    /// byte of the next request on a kept-alive connection (default 15 s).
    pub http_header_timeout: std::time::Duration,
    /// A connection with no request being answered and no bytes moving is closed after this;
    /// a declared request body must arrive in full within it (default 60 s). Not applied to
    /// upgraded connections (WebSockets).
    pub http_idle_timeout: std::time::Duration,
    /// The URL users reach Steward at (the logged setup URL; `https://` makes cookies `Secure`).
    pub public_url: String,
    /// The data directory (where the setup token file lives), if any.
    pub data_dir: Option<std::path::PathBuf>,
    /// Longest wait for an SSH connection (TCP, handshake and authentication).
    pub ssh_connect_timeout: std::time::Duration,
    /// How long a step-up (password or TOTP code entered again) counts.
    pub step_up_window: std::time::Duration,
    /// Most SSH connections open at once, over all servers.
    pub ssh_max_connections: usize,
    /// An SSH connection unused this long is closed.
    pub ssh_idle_timeout: std::time::Duration,
    /// Bytes of output kept per host and stream of a script run.
    pub execution_output_cap: usize,
    /// Whether `sh` scripts run on runner shells kept on the pooled connections (default
    /// true; false: a channel, sshd session and login shell per command, as before).
    pub execution_runners: bool,
    /// Re-scan every server with a credential this often (`None`: no scheduled scans).
    pub scan_interval: Option<std::time::Duration>,
    /// Most scheduled scans running at once.
    pub scan_concurrency: usize,
    /// Wait after startup before the first scheduled scans.
    pub scan_first_delay: std::time::Duration,
    /// A web terminal without keystrokes for this long is closed (default 15 minutes).
    pub terminal_idle_timeout: std::time::Duration,
    /// Terminal recordings are deleted this many days after they started (default 90).
    pub recording_retention_days: i64,
    /// Script runs (with their output) are deleted this many days after they started.
    pub execution_retention_days: i64,
    /// Most agentless metric polls running at once; 0 turns agentless collection off.
    pub metrics_collect_concurrency: usize,
    /// How long each tier of host metrics is kept.
    pub metrics_retention: steward_tsdb::Retention,
    /// SHA-256 (hex) of the bearer token that may scrape `GET /metrics` (the token itself is
    /// not kept).
    pub metrics_token_sha256: Option<String>,
    /// Addresses that may scrape `GET /metrics` without the token (default: none). Checked
    /// against the scraper's own address: a request relayed by a proxy that is not trusted,
    /// or by a trusted one that does not name the client in `X-Forwarded-For`, is not allowed.
    pub metrics_allow: Vec<IpNet>,
    /// How often a live-metrics WebSocket or a web terminal re-reads its session, user and
    /// roles (default 30 s).
    pub live_recheck: std::time::Duration,
    /// Most health checks running at once; 0 turns the check scheduler off.
    pub check_concurrency: usize,
    /// Health-check results are deleted this many days after the run (hourly roll-ups, which
    /// uptime is computed from, are kept for 400 days).
    pub check_retention_days: i64,
    /// Networks health checks may reach although they are restricted by default (loopback,
    /// link-local, the hub's own addresses …), besides those the organization's settings
    /// allow. Default none.
    pub check_allow: Vec<IpNet>,
    /// Most password hashes (Argon2id, 19 MiB each) computed at once; more wait up to 2 s,
    /// then get 503 `busy`. Default: the number of CPUs.
    pub password_hash_concurrency: usize,
    /// The `steward-agent` binary the hub serves (`GET /agent/download`) and installs over
    /// SSH; `None` or a missing file: no binary to hand out.
    pub agent_binary: Option<std::path::PathBuf>,
    /// Most long-lived sockets (live view, run streams, terminals) one user may hold open on
    /// one instance (default 50).
    pub max_sockets_per_user: usize,
    /// Output bytes recorded per terminal session; past it the recording stops (the shell goes
    /// on, the user is told, the event is audited). Default 256 MiB.
    pub terminal_recording_cap: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 14 * 24 * 3600,
            session_max_secs: 30 * 24 * 3600,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_connections: 10_000,
            http_header_timeout: std::time::Duration::from_secs(15),
            http_idle_timeout: std::time::Duration::from_secs(60),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: None,
            ssh_connect_timeout: std::time::Duration::from_secs(10),
            step_up_window: std::time::Duration::from_secs(10 * 60),
            ssh_max_connections: 512,
            ssh_idle_timeout: std::time::Duration::from_secs(300),
            execution_output_cap: 1024 * 1024,
            execution_runners: true,
            scan_interval: Some(std::time::Duration::from_secs(24 * 3600)),
            scan_concurrency: 4,
            scan_first_delay: std::time::Duration::from_secs(60),
            terminal_idle_timeout: std::time::Duration::from_secs(900),
            recording_retention_days: 90,
            execution_retention_days: 90,
            metrics_collect_concurrency: 32,
            metrics_retention: steward_tsdb::Retention::default(),
            metrics_token_sha256: None,
            metrics_allow: Vec::new(),
            live_recheck: std::time::Duration::from_secs(30),
            check_concurrency: 16,
            check_retention_days: 30,
            check_allow: Vec::new(),
            agent_binary: None,
            max_sockets_per_user: 50,
            terminal_recording_cap: 256 * 1024 * 1024,
            password_hash_concurrency: default_password_hash_concurrency(),
        }
    }
}

/// The default number of password hashes at once: the number of CPUs.
pub fn default_password_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    pub db: Db,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
    pub config: ApiConfig,
    pub jwt: JwtKeys,
    /// A hash verified against when a login names no account, so timing does not tell.
    pub dummy_password_hash: String,
    /// Password hashing and checking, with a bounded number at once.
    pub passwords: steward_services::auth::password::Hasher,
    /// One SSH connection per managed server, shared.
    pub ssh: steward_ssh::pool::Pool,
    /// Script runs in progress on this instance.
    pub executions: crate::runner::Registry,
    /// The web terminal sessions running on this instance.
    pub terminals: crate::terminal::Registry,
    /// Host metrics: the time-series store.
    pub metrics: steward_services::metrics::store::Store,
    /// The latest values of every server and the live-update hub (`/api/v1/live`).
    pub live: crate::metrics::live::Hub,
    /// Agents connected to this instance.
    pub agents: crate::metrics::agent::Registry,
    /// Long-lived sockets each user holds on this instance.
    pub sockets: crate::sockets::PerUser,
    /// The addresses this instance is known by, which health checks may not reach by default.
    pub hub_addresses: steward_checks::HubAddresses,
    /// The HTTP connection cap and what the edge refused or closed.
    pub connections: crate::edge::Connections,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state; `jwt` comes from [`steward_services::bootstrap::prepare`], `metrics` from
    /// [`steward_services::metrics::store::Store::open`]. Must be called within
    /// a Tokio runtime (the SSH pool starts its idle-connection reaper).
    pub fn new(
        db: Db,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
        jwt: JwtKeys,
        metrics: steward_services::metrics::store::Store,
    ) -> Self {
        let dummy_password_hash =
            steward_services::auth::password::hash(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_default();
        let passwords =
            steward_services::auth::password::Hasher::new(config.password_hash_concurrency);
        let ssh = steward_ssh::pool::Pool::new(steward_ssh::pool::PoolConfig {
            max_connections: config.ssh_max_connections,
            idle_timeout: config.ssh_idle_timeout,
            ..Default::default()
        });
        let state = Self(Arc::new(Inner {
            live: crate::metrics::live::Hub::default(),
            ssh,
            executions: crate::runner::Registry::default(),
            terminals: Default::default(),
            metrics,
            agents: Default::default(),
            sockets: Default::default(),
            hub_addresses: Default::default(),
            connections: crate::edge::Connections::new(config.max_connections),
            db,
            vault,
            clock,
            config,
            jwt,
            dummy_password_hash,
            passwords,
        }));
        state.live.spawn_ticker(Arc::downgrade(&state.0));
        state
    }

    /// The state behind a weak reference, if it still exists (for background tasks that must
    /// not keep it alive).
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(Self)
    }

    /// Now, in stored form (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
