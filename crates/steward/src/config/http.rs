//! The `[http]` and `[auth]` sections: the web server, and signing in.
use std::net::SocketAddr;

use clap::Args;
use serde::{Deserialize, Serialize};
use steward_services::config::Config;

use super::{networks, positive, seconds, within};

/// `[http]`: the HTTP server.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "http")]
#[command(next_help_heading = "HTTP server ([http])")]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address to listen on.
    #[arg(long, env = "STEWARD_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// URL users reach Steward at (links, cookie security).
    #[arg(long, env = "STEWARD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Proxy address or network whose X-Forwarded-For is trusted (repeatable, comma-separated in env).
    #[arg(
        long = "trusted-proxy",
        env = "STEWARD_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Largest request body in bytes (a larger declared Content-Length is refused at once).
    #[arg(long, env = "STEWARD_MAX_BODY_BYTES", value_name = "N")]
    pub max_body_bytes: Option<usize>,
    /// Most HTTP connections open at once, WebSockets included; over it a new connection is
    /// answered 503 and closed.
    #[arg(long, env = "STEWARD_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<i64>,
    /// Seconds a client has to send a request's line and headers.
    #[arg(long, env = "STEWARD_HTTP_HEADER_TIMEOUT", value_name = "SECS")]
    pub http_header_timeout: Option<i64>,
    /// Seconds an HTTP connection may stay with no request being answered and nothing
    /// moving; a request body must also arrive within it. WebSockets are exempt.
    #[arg(long, env = "STEWARD_HTTP_IDLE_TIMEOUT", value_name = "SECS")]
    pub http_idle_timeout: Option<i64>,
    /// Most long-lived connections (live view, run output, terminals) one user may hold open
    /// on this instance at once.
    #[arg(long, env = "STEWARD_MAX_SOCKETS_PER_USER", value_name = "N")]
    pub max_sockets_per_user: Option<i64>,
}

impl HttpSection {
    /// Checks the values into `config`; returns the listen address.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<SocketAddr> {
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        config.public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{listen}"));
        config.secure_cookies = config.public_url.starts_with("https://");
        config.trusted_proxies = networks(
            "trusted proxy",
            self.trusted_proxies.as_deref().unwrap_or_default(),
        )?;
        config.max_body_bytes = self.max_body_bytes.unwrap_or(config.max_body_bytes);
        config.max_connections = within(
            "max-connections",
            self.max_connections,
            1..=1_000_000,
            "1 to 1000000",
        )?
        .map_or(config.max_connections, |n| n as usize);
        config.http_header_timeout = seconds(
            "http-header-timeout",
            self.http_header_timeout,
            config.http_header_timeout,
        )?;
        config.http_idle_timeout = seconds(
            "http-idle-timeout",
            self.http_idle_timeout,
            config.http_idle_timeout,
        )?;
        config.max_sockets_per_user = within(
            "max-sockets-per-user",
            self.max_sockets_per_user,
            1..=10_000,
            "1 to 10000",
        )?
        .map_or(config.max_sockets_per_user, |n| n as usize);
        Ok(listen)
    }
}

/// `[auth]`: sessions, tokens and password checks.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "auth")]
#[command(next_help_heading = "Sign-in ([auth])")]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Access-token lifetime in seconds.
    #[arg(long, env = "STEWARD_ACCESS_TOKEN_TTL", value_name = "SECS")]
    pub access_token_ttl: Option<i64>,
    /// Refresh-token lifetime in seconds.
    #[arg(long, env = "STEWARD_REFRESH_TOKEN_TTL", value_name = "SECS")]
    pub refresh_token_ttl: Option<i64>,
    /// Longest session, in seconds, however often refreshed.
    #[arg(long, env = "STEWARD_SESSION_MAX_AGE", value_name = "SECS")]
    pub session_max_age: Option<i64>,
    /// Seconds a step-up (password or code entered again) counts for sensitive actions.
    #[arg(long, env = "STEWARD_STEP_UP_WINDOW", value_name = "SECS")]
    pub step_up_window: Option<i64>,
    /// Most password hashes computed at once (19 MiB of memory each); more wait up to 2 s,
    /// then get 503 `busy` (default: the number of CPUs).
    #[arg(long, env = "STEWARD_PASSWORD_HASH_CONCURRENCY", value_name = "N")]
    pub password_hash_concurrency: Option<i64>,
}

impl AuthSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        let secs = |name, v| positive(name, v, "seconds");
        config.access_ttl_secs =
            secs("access-token-ttl", self.access_token_ttl)?.unwrap_or(config.access_ttl_secs);
        config.refresh_ttl_secs =
            secs("refresh-token-ttl", self.refresh_token_ttl)?.unwrap_or(config.refresh_ttl_secs);
        config.session_max_secs =
            secs("session-max-age", self.session_max_age)?.unwrap_or(config.session_max_secs);
        config.step_up_window =
            seconds("step-up-window", self.step_up_window, config.step_up_window)?;
        config.password_hash_concurrency = within(
            "password-hash-concurrency",
            self.password_hash_concurrency,
            1..=256,
            "1 to 256",
        )?
        .map_or(config.password_hash_concurrency, |n| n as usize);
        Ok(())
    }
}
