//! Configuration: command-line flags, `STEWARD_*` environment variables, and an optional TOML
//! file, in that order of precedence, over built-in defaults. Every option is listed in the
//! README's configuration table.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// Run a fleet of Linux servers from one place.
#[derive(Debug, Parser)]
#[command(name = "steward", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalOpts {
    /// TOML configuration file.
    #[arg(long, global = true, env = "STEWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, the master keyring and the setup token.
    #[arg(long, global = true, env = "STEWARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://…` or `postgres://…` (default: SQLite in the data directory).
    #[arg(
        long,
        global = true,
        env = "STEWARD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Master keyring file (default: `<data-dir>/master.key`). `STEWARD_MASTER_KEY` overrides it.
    #[arg(long, global = true, env = "STEWARD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "STEWARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`).
    #[arg(long, global = true, env = "STEWARD_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What to do. (Parsed once at start-up, so the size of the `serve` options does not matter.)
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server.
    Serve(ServeOpts),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Administrative tasks at the console (for when nobody can log in).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Master keyring tasks.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Print the OpenAPI document.
    Openapi,
}

/// `steward serve` options.
#[derive(Debug, Args, Default)]
pub struct ServeOpts {
    /// Address to listen on.
    #[arg(long, env = "STEWARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// URL users reach Steward at (links, cookie security).
    #[arg(long, env = "STEWARD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "STEWARD_ACCESS_TOKEN_TTL")]
    pub access_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "STEWARD_REFRESH_TOKEN_TTL")]
    pub refresh_token_ttl: Option<i64>,
    /// Longest session, in seconds, however often refreshed.
    #[arg(long, env = "STEWARD_SESSION_MAX_AGE")]
    pub session_max_age: Option<i64>,
    /// Proxy address or network whose X-Forwarded-For is trusted (repeatable, comma-separated in env).
    #[arg(
        long = "trusted-proxy",
        env = "STEWARD_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Largest request body in bytes (a larger declared Content-Length is refused at once).
    #[arg(long, env = "STEWARD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most HTTP connections open at once, WebSockets included; over it a new connection is
    /// answered 503 and closed.
    #[arg(long, env = "STEWARD_MAX_CONNECTIONS")]
    pub max_connections: Option<i64>,
    /// Seconds a client has to send a request's line and headers.
    #[arg(long, env = "STEWARD_HTTP_HEADER_TIMEOUT")]
    pub http_header_timeout: Option<i64>,
    /// Seconds an HTTP connection may stay with no request being answered and nothing
    /// moving; a request body must also arrive within it. WebSockets are exempt.
    #[arg(long, env = "STEWARD_HTTP_IDLE_TIMEOUT")]
    pub http_idle_timeout: Option<i64>,
    /// Longest wait, in seconds, to connect to a managed server over SSH.
    #[arg(long, env = "STEWARD_SSH_CONNECT_TIMEOUT")]
    pub ssh_connect_timeout: Option<i64>,
    /// Most SSH connections open at once, over all servers.
    #[arg(long, env = "STEWARD_SSH_MAX_CONNECTIONS")]
    pub ssh_max_connections: Option<i64>,
    /// Seconds an unused SSH connection stays open.
    #[arg(long, env = "STEWARD_SSH_IDLE_TIMEOUT")]
    pub ssh_idle_timeout: Option<i64>,
    /// Seconds a step-up (password or code entered again) counts for sensitive actions.
    #[arg(long, env = "STEWARD_STEP_UP_WINDOW")]
    pub step_up_window: Option<i64>,
    /// Bytes of output kept per host and stream of a script run (more is cut and marked).
    #[arg(long, env = "STEWARD_EXECUTION_OUTPUT_CAP")]
    pub execution_output_cap: Option<i64>,
    /// Run `sh` scripts on runner shells kept on pooled SSH connections (default true).
    #[arg(long, env = "STEWARD_EXECUTION_RUNNERS", value_name = "BOOL")]
    pub execution_runners: Option<bool>,
    /// Hours between scheduled service-discovery scans of each server (0 turns them off).
    #[arg(long, env = "STEWARD_SCAN_INTERVAL")]
    pub scan_interval: Option<i64>,
    /// Seconds without keystrokes after which a web terminal is closed.
    #[arg(long, env = "STEWARD_TERMINAL_IDLE_TIMEOUT")]
    pub terminal_idle_timeout: Option<i64>,
    /// Days terminal recordings are kept.
    #[arg(long, env = "STEWARD_RECORDING_RETENTION_DAYS")]
    pub recording_retention_days: Option<i64>,
    /// Days script runs and their output are kept.
    #[arg(long, env = "STEWARD_EXECUTION_RETENTION_DAYS")]
    pub execution_retention_days: Option<i64>,
    /// Most agentless metric polls (over SSH) running at once; 0 turns agentless collection off.
    #[arg(long, env = "STEWARD_METRICS_COLLECT_CONCURRENCY")]
    pub metrics_collect_concurrency: Option<i64>,
    /// Days raw metric samples are kept.
    #[arg(long, env = "STEWARD_METRICS_RAW_DAYS")]
    pub metrics_raw_days: Option<i64>,
    /// Days 1-minute metric rollups (min/avg/max) are kept.
    #[arg(long, env = "STEWARD_METRICS_MINUTE_DAYS")]
    pub metrics_minute_days: Option<i64>,
    /// Days 1-hour metric rollups are kept.
    #[arg(long, env = "STEWARD_METRICS_HOUR_DAYS")]
    pub metrics_hour_days: Option<i64>,
    /// Bearer token Prometheus sends to scrape `GET /metrics` (at least 16 characters).
    #[arg(long, env = "STEWARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Addresses or networks that may scrape `GET /metrics` without the token (repeatable or
    /// comma-separated; default none). Opt-in: behind a proxy on the same host, loopback is
    /// every client.
    #[arg(long, env = "STEWARD_METRICS_ALLOW", value_delimiter = ',')]
    pub metrics_allow: Vec<String>,
    /// Most health checks running at once (0 turns the check scheduler off).
    #[arg(long, env = "STEWARD_CHECK_CONCURRENCY")]
    pub check_concurrency: Option<i64>,
    /// Days health-check results are kept (uptime comes from hourly roll-ups kept 400 days).
    #[arg(long, env = "STEWARD_CHECK_RETENTION_DAYS")]
    pub check_retention_days: Option<i64>,
    /// Addresses or networks health checks may reach although they are refused by default
    /// (loopback, link-local, the hub's own addresses …), besides those allowed in Settings
    /// (repeatable or comma-separated; default none).
    #[arg(long, env = "STEWARD_CHECK_ALLOW", value_delimiter = ',')]
    pub check_allow: Vec<String>,
    /// The `steward-agent` binary to serve to agents and install over SSH, or a directory
    /// with one build per architecture (default: a `steward-agent` file next to the
    /// `steward` executable).
    #[arg(long, env = "STEWARD_AGENT_BINARY")]
    pub agent_binary: Option<PathBuf>,
    /// Most long-lived connections (live view, run output, terminals) one user may hold open
    /// on this instance at once.
    #[arg(long, env = "STEWARD_MAX_SOCKETS_PER_USER")]
    pub max_sockets_per_user: Option<i64>,
    /// Output bytes recorded per terminal session; past it the recording stops (the session
    /// goes on, the user is told, the event is audited).
    #[arg(long, env = "STEWARD_TERMINAL_RECORDING_CAP")]
    pub terminal_recording_cap: Option<i64>,
    /// Most password hashes computed at once (19 MiB of memory each); more wait up to 2 s,
    /// then get 503 `busy` (default: the number of CPUs).
    #[arg(long, env = "STEWARD_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<i64>,
}

/// `steward admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user; the password is read from standard input.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Role names (repeatable).
        #[arg(long = "role", default_value = "admin")]
        roles: Vec<String>,
    },
    /// Set a user's password (read from standard input) and end their sessions.
    ResetPassword {
        #[arg(long)]
        username: String,
    },
    /// Turn off a user's two-factor authentication (a lost device).
    #[command(name = "disable-2fa")]
    Disable2fa {
        #[arg(long)]
        username: String,
    },
}

/// `steward vault …`.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Add a new master key, re-encrypt every secret under it; `--retire-old` then removes the
    /// old keys from the keyring.
    RotateKey {
        #[arg(long)]
        retire_old: bool,
    },
    /// Re-encrypt every secret under the current primary key (after changing STEWARD_MASTER_KEY).
    Reencrypt,
    /// Show the keyring's key ids and how many secrets each one seals.
    Status,
}

/// The TOML file's shape (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub session_max_age: Option<i64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    pub max_connections: Option<i64>,
    pub http_header_timeout: Option<i64>,
    pub http_idle_timeout: Option<i64>,
    pub ssh_connect_timeout: Option<i64>,
    pub ssh_max_connections: Option<i64>,
    pub ssh_idle_timeout: Option<i64>,
    pub step_up_window: Option<i64>,
    pub execution_output_cap: Option<i64>,
    pub execution_runners: Option<bool>,
    pub scan_interval: Option<i64>,
    pub terminal_idle_timeout: Option<i64>,
    pub recording_retention_days: Option<i64>,
    pub execution_retention_days: Option<i64>,
    pub metrics_collect_concurrency: Option<i64>,
    pub metrics_raw_days: Option<i64>,
    pub metrics_minute_days: Option<i64>,
    pub metrics_hour_days: Option<i64>,
    pub metrics_token: Option<String>,
    pub metrics_allow: Option<Vec<String>>,
    pub check_concurrency: Option<i64>,
    pub check_retention_days: Option<i64>,
    pub check_allow: Option<Vec<String>>,
    pub agent_binary: Option<PathBuf>,
    pub max_sockets_per_user: Option<i64>,
    pub terminal_recording_cap: Option<i64>,
    pub password_hash_concurrency: Option<i64>,
}

/// Resolved settings shared by every command.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub master_key_file: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
}

/// Reads the TOML file, if one is named.
pub fn load_file(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl Resolved {
    /// Flags and environment over the file over defaults.
    pub fn new(g: &GlobalOpts, file: &FileConfig) -> Self {
        let data_dir = g
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./steward-data"));
        let database_url = g
            .database_url
            .clone()
            .or_else(|| file.database_url.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("steward.db").display()));
        let master_key_file = g
            .master_key_file
            .clone()
            .or_else(|| file.master_key_file.clone())
            .unwrap_or_else(|| data_dir.join("master.key"));
        Self {
            data_dir,
            database_url,
            master_key_file,
            log_format: g.log_format.or(file.log_format).unwrap_or_default(),
            log_level: g
                .log_level
                .clone()
                .or_else(|| file.log_level.clone())
                .unwrap_or_else(|| "info".into()),
        }
    }
}

/// Resolved `serve` settings.
pub fn api_config(
    s: &ServeOpts,
    file: &FileConfig,
    data_dir: &Path,
) -> anyhow::Result<(SocketAddr, steward_api::ApiConfig)> {
    let defaults = steward_api::ApiConfig::default();
    let listen = s
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let public_url = s
        .public_url
        .clone()
        .or_else(|| file.public_url.clone())
        .unwrap_or_else(|| format!("http://{listen}"));
    let proxies_raw = if s.trusted_proxies.is_empty() {
        file.trusted_proxies.clone().unwrap_or_default()
    } else {
        s.trusted_proxies.clone()
    };
    let trusted_proxies = proxies_raw
        .iter()
        .map(|p| {
            let p = p.trim();
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .with_context(|| format!("trusted proxy `{p}` is not an address or network"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let metrics_token_sha256 = match s.metrics_token.clone().or(file.metrics_token.clone()) {
        Some(t) if t.trim().chars().count() < 16 => {
            anyhow::bail!("metrics-token must be at least 16 characters")
        }
        Some(t) => Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            t.trim().as_bytes(),
        ))),
        None => None,
    };
    let allow_raw = if s.metrics_allow.is_empty() {
        file.metrics_allow.clone()
    } else {
        Some(s.metrics_allow.clone())
    };
    let metrics_allow = match allow_raw {
        None => defaults.metrics_allow.clone(),
        Some(list) if list.iter().any(|a| a.trim() == "none") => Vec::new(),
        Some(list) => list
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .with_context(|| format!("metrics-allow `{p}` is not an address or network"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let check_allow = if s.check_allow.is_empty() {
        file.check_allow.clone().unwrap_or_default()
    } else {
        s.check_allow.clone()
    }
    .iter()
    .map(|n| steward_checks::parse_network(n).map_err(|m| anyhow::anyhow!("check-allow: {m}")))
    .collect::<anyhow::Result<Vec<_>>>()?;
    let days = |name: &str, v: Option<i64>, default_ms: i64| -> anyhow::Result<i64> {
        match v {
            None => Ok(default_ms),
            Some(d) if (1..=36_500).contains(&d) => Ok(d * 86_400_000),
            Some(_) => anyhow::bail!("{name} must be 1 to 36500 days"),
        }
    };
    let dr = defaults.metrics_retention;
    let metrics_retention = steward_tsdb::Retention {
        raw_ms: days(
            "metrics-raw-days",
            s.metrics_raw_days.or(file.metrics_raw_days),
            dr.raw_ms,
        )?,
        minute_ms: days(
            "metrics-minute-days",
            s.metrics_minute_days.or(file.metrics_minute_days),
            dr.minute_ms,
        )?,
        hour_ms: days(
            "metrics-hour-days",
            s.metrics_hour_days.or(file.metrics_hour_days),
            dr.hour_ms,
        )?,
    };
    if metrics_retention.raw_ms > metrics_retention.minute_ms
        || metrics_retention.minute_ms > metrics_retention.hour_ms
    {
        anyhow::bail!(
            "metric retentions must not shrink from raw to 1-minute to 1-hour (metrics-raw-days <= metrics-minute-days <= metrics-hour-days)"
        );
    }
    let metrics_collect_concurrency = match s
        .metrics_collect_concurrency
        .or(file.metrics_collect_concurrency)
    {
        None => defaults.metrics_collect_concurrency,
        Some(n) if (0..=4096).contains(&n) => n as usize,
        Some(_) => anyhow::bail!("metrics-collect-concurrency must be 0 (off) to 4096"),
    };
    let positive = |name: &str, v: Option<i64>, d: i64| -> anyhow::Result<i64> {
        match v {
            Some(x) if x <= 0 => anyhow::bail!("{name} must be a positive number of seconds"),
            Some(x) => Ok(x),
            None => Ok(d),
        }
    };
    Ok((
        listen,
        steward_api::ApiConfig {
            access_ttl_secs: positive(
                "access-token-ttl",
                s.access_token_ttl.or(file.access_token_ttl),
                defaults.access_ttl_secs,
            )?,
            refresh_ttl_secs: positive(
                "refresh-token-ttl",
                s.refresh_token_ttl.or(file.refresh_token_ttl),
                defaults.refresh_ttl_secs,
            )?,
            session_max_secs: positive(
                "session-max-age",
                s.session_max_age.or(file.session_max_age),
                defaults.session_max_secs,
            )?,
            secure_cookies: public_url.starts_with("https://"),
            trusted_proxies,
            max_body_bytes: s
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(defaults.max_body_bytes),
            max_connections: match s.max_connections.or(file.max_connections) {
                None => defaults.max_connections,
                Some(n) if (1..=1_000_000).contains(&n) => n as usize,
                Some(_) => anyhow::bail!("max-connections must be 1 to 1000000"),
            },
            http_header_timeout: std::time::Duration::from_secs(positive(
                "http-header-timeout",
                s.http_header_timeout.or(file.http_header_timeout),
                defaults.http_header_timeout.as_secs() as i64,
            )? as u64),
            http_idle_timeout: std::time::Duration::from_secs(positive(
                "http-idle-timeout",
                s.http_idle_timeout.or(file.http_idle_timeout),
                defaults.http_idle_timeout.as_secs() as i64,
            )? as u64),
            public_url,
            data_dir: Some(data_dir.to_path_buf()),
            ssh_connect_timeout: std::time::Duration::from_secs(positive(
                "ssh-connect-timeout",
                s.ssh_connect_timeout.or(file.ssh_connect_timeout),
                10,
            )? as u64),
            ssh_max_connections: positive(
                "ssh-max-connections",
                s.ssh_max_connections.or(file.ssh_max_connections),
                defaults.ssh_max_connections as i64,
            )? as usize,
            ssh_idle_timeout: std::time::Duration::from_secs(positive(
                "ssh-idle-timeout",
                s.ssh_idle_timeout.or(file.ssh_idle_timeout),
                defaults.ssh_idle_timeout.as_secs() as i64,
            )? as u64),
            step_up_window: std::time::Duration::from_secs(positive(
                "step-up-window",
                s.step_up_window.or(file.step_up_window),
                defaults.step_up_window.as_secs() as i64,
            )? as u64),
            execution_output_cap: positive(
                "execution-output-cap",
                s.execution_output_cap.or(file.execution_output_cap),
                defaults.execution_output_cap as i64,
            )? as usize,
            execution_runners: s
                .execution_runners
                .or(file.execution_runners)
                .unwrap_or(defaults.execution_runners),
            scan_interval: match s.scan_interval.or(file.scan_interval) {
                None => defaults.scan_interval,
                Some(0) => None,
                Some(h) if (1..=24 * 365).contains(&h) => {
                    Some(std::time::Duration::from_secs(h as u64 * 3600))
                }
                Some(_) => anyhow::bail!("scan-interval must be 0 (off) or 1 to 8760 hours"),
            },
            terminal_idle_timeout: std::time::Duration::from_secs(positive(
                "terminal-idle-timeout",
                s.terminal_idle_timeout.or(file.terminal_idle_timeout),
                defaults.terminal_idle_timeout.as_secs() as i64,
            )? as u64),
            recording_retention_days: match s
                .recording_retention_days
                .or(file.recording_retention_days)
            {
                Some(d) if d <= 0 => {
                    anyhow::bail!("recording-retention-days must be a positive number of days")
                }
                Some(d) => d,
                None => defaults.recording_retention_days,
            },
            execution_retention_days: match s
                .execution_retention_days
                .or(file.execution_retention_days)
            {
                Some(d) if d <= 0 => {
                    anyhow::bail!("execution-retention-days must be a positive number of days")
                }
                Some(d) => d,
                None => defaults.execution_retention_days,
            },
            metrics_token_sha256,
            metrics_allow,
            metrics_retention,
            metrics_collect_concurrency,
            check_concurrency: match s.check_concurrency.or(file.check_concurrency) {
                None => defaults.check_concurrency,
                Some(n) if (0..=1024).contains(&n) => n as usize,
                Some(_) => anyhow::bail!("check-concurrency must be 0 (off) to 1024"),
            },
            check_retention_days: match s.check_retention_days.or(file.check_retention_days) {
                Some(d) if !(1..=400).contains(&d) => {
                    anyhow::bail!("check-retention-days must be 1 to 400 days")
                }
                Some(d) => d,
                None => defaults.check_retention_days,
            },
            check_allow,
            agent_binary: s
                .agent_binary
                .clone()
                .or_else(|| file.agent_binary.clone())
                .or_else(default_agent_binary),
            max_sockets_per_user: match s.max_sockets_per_user.or(file.max_sockets_per_user) {
                None => defaults.max_sockets_per_user,
                Some(n) if (1..=10_000).contains(&n) => n as usize,
                Some(_) => anyhow::bail!("max-sockets-per-user must be 1 to 10000"),
            },
            terminal_recording_cap: match s.terminal_recording_cap.or(file.terminal_recording_cap) {
                None => defaults.terminal_recording_cap,
                Some(n) if n >= 64 * 1024 => n as u64,
                Some(_) => anyhow::bail!("terminal-recording-cap must be at least 65536 bytes"),
            },
            password_hash_concurrency: match s
                .password_hash_concurrency
                .or(file.password_hash_concurrency)
            {
                None => defaults.password_hash_concurrency,
                Some(n) if (1..=256).contains(&n) => n as usize,
                Some(_) => anyhow::bail!("password-hash-concurrency must be 1 to 256"),
            },
            ..defaults
        },
    ))
}

/// `steward-agent` next to the running executable (where `make build` puts it).
fn default_agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("steward-agent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("steward").chain(args.iter().copied())).expect("parse")
    }

    #[test]
    fn scan_interval_is_hours_and_zero_turns_it_off() {
        let hours = |args: &[&str], toml_text: &str| {
            let file: FileConfig = toml::from_str(toml_text).expect("toml");
            let cli = parse(args);
            let Command::Serve(serve) = cli.command else {
                panic!("serve")
            };
            api_config(&serve, &file, Path::new("/tmp")).map(|(_, a)| a.scan_interval)
        };
        let h = |n: u64| Some(std::time::Duration::from_secs(n * 3600));
        assert_eq!(hours(&["serve"], "").expect("default"), h(24));
        assert_eq!(hours(&["serve"], "scan_interval = 6").expect("file"), h(6));
        assert_eq!(
            hours(&["serve", "--scan-interval", "0"], "scan_interval = 6").expect("flag"),
            None
        );
        assert!(hours(&["serve", "--scan-interval=-1"], "").is_err());
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            data_dir = "/var/lib/steward"
            log_format = "json"
            listen = "0.0.0.0:9000"
            public_url = "https://steward.example.com"
            trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
            access_token_ttl = 300
            "#,
        )
        .expect("toml");
        let cli = parse(&["--data-dir", "/srv/s", "serve", "--access-token-ttl", "600"]);
        let r = Resolved::new(&cli.global, &file);
        assert_eq!(r.data_dir, PathBuf::from("/srv/s"));
        assert_eq!(r.database_url, "sqlite:///srv/s/steward.db");
        assert_eq!(r.master_key_file, PathBuf::from("/srv/s/master.key"));
        assert_eq!(r.log_format, LogFormat::Json);
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        let (listen, api) = api_config(&serve, &file, &r.data_dir).expect("config");
        assert_eq!(listen.to_string(), "0.0.0.0:9000");
        assert_eq!(api.access_ttl_secs, 600);
        assert!(api.secure_cookies, "https public URL means Secure cookies");
        assert_eq!(api.trusted_proxies.len(), 2);
        assert_eq!(api.refresh_ttl_secs, 14 * 24 * 3600);
    }

    #[test]
    fn check_allow_from_the_flag_or_the_file() {
        let serve = |args: &[&str]| {
            let Command::Serve(s) = parse(args).command else {
                panic!("serve")
            };
            s
        };
        let dir = PathBuf::from("/tmp/s");
        let none = FileConfig::default();
        let (_, api) = api_config(&serve(&["serve"]), &none, &dir).expect("config");
        assert!(
            api.check_allow.is_empty(),
            "nothing restricted is allowed by default"
        );
        let file: FileConfig = toml::from_str(r#"check_allow = ["10.9.8.7/8"]"#).expect("toml");
        let (_, api) = api_config(&serve(&["serve"]), &file, &dir).expect("config");
        assert_eq!(
            api.check_allow,
            ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]
        );
        let flag = serve(&["serve", "--check-allow", "127.0.0.0/8,::1"]);
        let (_, api) = api_config(&flag, &file, &dir).expect("config");
        assert_eq!(
            api.check_allow,
            [
                "127.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        let bad = serve(&["serve", "--check-allow", "localhost"]);
        assert!(api_config(&bad, &none, &dir).is_err());
    }

    #[test]
    fn defaults_and_bad_values() {
        let cli = parse(&["serve"]);
        let r = Resolved::new(&cli.global, &FileConfig::default());
        assert_eq!(r.data_dir, PathBuf::from("./steward-data"));
        assert_eq!(r.log_format, LogFormat::Text);
        let Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        let (listen, api) =
            api_config(&serve, &FileConfig::default(), &r.data_dir).expect("config");
        assert_eq!(listen.to_string(), "127.0.0.1:8080");
        assert!(!api.secure_cookies);
        let exe_dir = std::env::current_exe()
            .expect("exe")
            .parent()
            .expect("dir")
            .to_path_buf();
        assert_eq!(api.agent_binary, Some(exe_dir.join("steward-agent")));
        let file: FileConfig = toml::from_str(r#"agent_binary = "/opt/a""#).expect("toml");
        let (_, api) = api_config(&serve, &file, &r.data_dir).expect("config");
        assert_eq!(api.agent_binary, Some(PathBuf::from("/opt/a")));
        let flag = parse(&["serve", "--agent-binary", "/opt/b"]);
        let Command::Serve(flag) = flag.command else {
            panic!("serve")
        };
        let (_, api) = api_config(&flag, &file, &r.data_dir).expect("config");
        assert_eq!(api.agent_binary, Some(PathBuf::from("/opt/b")));

        let bad = parse(&["serve", "--trusted-proxy", "not-an-ip"]);
        let Command::Serve(serve) = bad.command else {
            panic!("serve")
        };
        assert!(api_config(&serve, &FileConfig::default(), &r.data_dir).is_err());
        let bad = parse(&["serve", "--access-token-ttl", "0"]);
        let Command::Serve(serve) = bad.command else {
            panic!("serve")
        };
        assert!(api_config(&serve, &FileConfig::default(), &r.data_dir).is_err());
        assert!(
            toml::from_str::<FileConfig>("no_such_option = 1").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn edge_settings_and_the_metrics_scrape_defaults() {
        let r = Resolved::new(&parse(&["serve"]).global, &FileConfig::default());
        let serve_of = |args: &[&str]| match parse(args).command {
            Command::Serve(s) => s,
            _ => panic!("serve"),
        };
        let (_, api) =
            api_config(&serve_of(&["serve"]), &FileConfig::default(), &r.data_dir).expect("config");
        assert_eq!(api.max_connections, 10_000);
        assert_eq!(api.http_header_timeout.as_secs(), 15);
        assert_eq!(api.http_idle_timeout.as_secs(), 60);
        assert!(
            api.metrics_allow.is_empty(),
            "no address may scrape by default"
        );
        assert!(api.metrics_token_sha256.is_none());
        let file: FileConfig = toml::from_str(
            "max_connections = 500\nhttp_header_timeout = 5\nhttp_idle_timeout = 30\nmetrics_allow = [\"10.0.0.0/8\"]",
        )
        .expect("toml");
        let (_, api) = api_config(&serve_of(&["serve"]), &file, &r.data_dir).expect("config");
        assert_eq!(
            (
                api.max_connections,
                api.http_header_timeout.as_secs(),
                api.http_idle_timeout.as_secs()
            ),
            (500, 5, 30)
        );
        assert_eq!(
            api.metrics_allow,
            vec!["10.0.0.0/8".parse::<ipnet::IpNet>().expect("net")]
        );
        let serve = serve_of(&[
            "serve",
            "--max-connections",
            "64",
            "--http-header-timeout",
            "2",
            "--metrics-allow",
            "none",
        ]);
        let (_, api) = api_config(&serve, &file, &r.data_dir).expect("config");
        assert_eq!(
            (api.max_connections, api.http_header_timeout.as_secs()),
            (64, 2)
        );
        assert!(api.metrics_allow.is_empty());
        for bad in [
            ["serve", "--max-connections", "0"],
            ["serve", "--http-header-timeout", "0"],
            ["serve", "--http-idle-timeout", "0"],
        ] {
            assert!(api_config(&serve_of(&bad), &FileConfig::default(), &r.data_dir).is_err());
        }
    }

    #[test]
    fn terminal_settings() {
        let r = Resolved::new(&parse(&["serve"]).global, &FileConfig::default());
        let serve_of = |args: &[&str]| match parse(args).command {
            Command::Serve(s) => s,
            _ => panic!("serve"),
        };
        let (_, api) =
            api_config(&serve_of(&["serve"]), &FileConfig::default(), &r.data_dir).expect("config");
        assert_eq!(api.terminal_idle_timeout.as_secs(), 900);
        assert_eq!(api.recording_retention_days, 90);
        let file: FileConfig =
            toml::from_str("terminal_idle_timeout = 60\nrecording_retention_days = 30")
                .expect("toml");
        let (_, api) = api_config(&serve_of(&["serve"]), &file, &r.data_dir).expect("config");
        assert_eq!(
            (
                api.terminal_idle_timeout.as_secs(),
                api.recording_retention_days
            ),
            (60, 30)
        );
        let serve = serve_of(&[
            "serve",
            "--terminal-idle-timeout",
            "120",
            "--recording-retention-days",
            "7",
        ]);
        let (_, api) = api_config(&serve, &file, &r.data_dir).expect("config");
        assert_eq!(
            (
                api.terminal_idle_timeout.as_secs(),
                api.recording_retention_days
            ),
            (120, 7)
        );
        for bad in [
            ["serve", "--terminal-idle-timeout", "0"],
            ["serve", "--recording-retention-days", "0"],
        ] {
            assert!(api_config(&serve_of(&bad), &FileConfig::default(), &r.data_dir).is_err());
        }
    }
}
