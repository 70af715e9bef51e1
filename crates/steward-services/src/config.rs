//! The hub's settings, with their defaults.
use ipnet::IpNet;

/// The settings of a running hub. (Being split into sections shared by the command line and
/// the TOML file, issue 14; the HTTP ones will move to steward-api.)
#[derive(Debug, Clone)]
pub struct Config {
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

impl Default for Config {
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
