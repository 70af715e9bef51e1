//! Configuration: command-line flags, `STEWARD_*` environment variables and an optional TOML
//! file, in that order of precedence, over built-in defaults.
//!
//! Each setting is declared once, as a field of a section struct that is both a clap `Args`
//! (flattened into `steward serve` under its own help heading) and a table of the file
//! (`[http]`, `[auth]` …). The global options are top-level keys. Clap reads the flag or the
//! environment variable, serde the file; [`overlay`] lays the first over the second for every
//! section alike, and each section's `resolve` checks its values into the runtime
//! [`Config`]. The README's configuration table lists every setting; a test (`readme.rs`)
//! checks it against these structs.
mod file;
mod fleet;
mod http;
mod monitoring;
#[cfg(test)]
mod readme;
mod secret;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use steward_services::config::Config;

use file::overlay;
pub use file::{FileConfig, load_file};
pub use fleet::{AgentSection, ExecutionSection, ScanSection, SshSection, TerminalSection};
pub use http::{AuthSection, HttpSection};
pub use monitoring::{ChecksSection, MetricsSection};
pub use secret::Secret;

/// Run a fleet of Linux servers from one place.
#[derive(Debug, Parser)]
#[command(name = "steward", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; in the file, the top-level keys.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
pub struct GlobalOpts {
    /// TOML configuration file.
    #[arg(long, global = true, env = "STEWARD_CONFIG", value_name = "PATH", value_parser = utf8_path)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Directory for the SQLite database, the master keyring and the setup token.
    #[arg(long, global = true, env = "STEWARD_DATA_DIR", value_name = "PATH", value_parser = utf8_path)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://…` or `postgres://…` (default: SQLite in the data directory).
    #[arg(
        long,
        global = true,
        env = "STEWARD_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<Secret>,
    /// Master keyring file (default: `<data-dir>/master.key`). `STEWARD_MASTER_KEY` overrides it.
    #[arg(long, global = true, env = "STEWARD_MASTER_KEY_FILE", value_name = "PATH", value_parser = utf8_path)]
    pub master_key_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "STEWARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`).
    #[arg(long, global = true, env = "STEWARD_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
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

/// `steward serve` options, one section each. A field's name is the section's TOML table and
/// its clap group (`#[group(id = …)]` on the section), which `file.rs` reads the layout from.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(skip)]
#[serde(default)]
pub struct ServeOpts {
    #[command(flatten)]
    pub http: HttpSection,
    #[command(flatten)]
    pub auth: AuthSection,
    #[command(flatten)]
    pub ssh: SshSection,
    #[command(flatten)]
    pub execution: ExecutionSection,
    #[command(flatten)]
    pub terminal: TerminalSection,
    #[command(flatten)]
    pub scan: ScanSection,
    #[command(flatten)]
    pub metrics: MetricsSection,
    #[command(flatten)]
    pub checks: ChecksSection,
    #[command(flatten)]
    pub agent: AgentSection,
}

impl ServeOpts {
    /// Checks every section into the runtime settings; returns the listen address with them.
    pub fn resolve(&self, data_dir: &Path) -> anyhow::Result<(SocketAddr, Config)> {
        let mut config = Config {
            data_dir: Some(data_dir.to_path_buf()),
            ..Config::default()
        };
        let listen = self.http.resolve(&mut config)?;
        self.auth.resolve(&mut config)?;
        self.ssh.resolve(&mut config)?;
        self.execution.resolve(&mut config)?;
        self.terminal.resolve(&mut config)?;
        self.scan.resolve(&mut config)?;
        self.metrics.resolve(&mut config)?;
        self.checks.resolve(&mut config)?;
        self.agent.resolve(&mut config);
        Ok((listen, config))
    }
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

/// Resolved settings shared by every command.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub data_dir: PathBuf,
    pub database_url: Secret,
    pub master_key_file: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Resolved {
    /// Flags and environment over the file over defaults.
    pub fn new(g: &GlobalOpts, file: &FileConfig) -> Self {
        // Only plain values and UTF-8 paths (`utf8_path`), which always make the round trip.
        let g = overlay(g, &file.global).expect("global options round-trip through serde");
        let data_dir = g
            .data_dir
            .unwrap_or_else(|| PathBuf::from("./steward-data"));
        let database_url = g.database_url.unwrap_or_else(|| {
            Secret::from(format!(
                "sqlite://{}",
                data_dir.join("steward.db").display()
            ))
        });
        let master_key_file = g
            .master_key_file
            .unwrap_or_else(|| data_dir.join("master.key"));
        Self {
            data_dir,
            database_url,
            master_key_file,
            log_format: g.log_format.unwrap_or_default(),
            log_level: g.log_level.unwrap_or_else(|| "info".into()),
        }
    }
}

/// Resolved `serve` settings: the options clap read (flags, environment) over the file's.
pub fn api_config(
    s: &ServeOpts,
    file: &FileConfig,
    data_dir: &Path,
) -> anyhow::Result<(SocketAddr, Config)> {
    overlay(s, &file.serve)?.resolve(data_dir)
}

/// A path given on the command line or in the environment; UTF-8 like the file's, so that
/// every option can be serialized for [`overlay`].
fn utf8_path(s: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s))
}

/// A positive number of seconds (`name` is the flag, for the message), or `default`.
fn seconds(name: &str, v: Option<i64>, default: Duration) -> anyhow::Result<Duration> {
    Ok(positive(name, v, "seconds")?.map_or(default, |s| Duration::from_secs(s as u64)))
}

/// A positive number of `unit`, if given.
fn positive(name: &str, v: Option<i64>, unit: &str) -> anyhow::Result<Option<i64>> {
    match v {
        Some(x) if x <= 0 => anyhow::bail!("{name} must be a positive number of {unit}"),
        other => Ok(other),
    }
}

/// A number within `range`, if given; `expected` ends the message ("1 to 1000000").
fn within(
    name: &str,
    v: Option<i64>,
    range: RangeInclusive<i64>,
    expected: &str,
) -> anyhow::Result<Option<i64>> {
    match v {
        Some(x) if !range.contains(&x) => anyhow::bail!("{name} must be {expected}"),
        other => Ok(other),
    }
}

/// Addresses or networks (`10.0.0.0/8`, `192.168.1.1`), as given.
fn networks(name: &str, list: &[String]) -> anyhow::Result<Vec<ipnet::IpNet>> {
    list.iter()
        .map(|p| {
            let p = p.trim();
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| anyhow::anyhow!("{name} `{p}` is not an address or network"))
        })
        .collect()
}
