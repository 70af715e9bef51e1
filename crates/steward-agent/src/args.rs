//! Command line and environment. Hand-written (six options do not need clap, which would
//! double the binary).

use std::path::PathBuf;

use steward_metrics::agent_proto::{CONNECT_PATH, MAX_INTERVAL_SECS, MIN_INTERVAL_SECS};

pub const USAGE: &str = "\
steward-agent: pushes this host's metrics to a Steward hub. Never executes commands.

Usage: steward-agent --hub URL (--token-file PATH | STEWARD_AGENT_TOKEN) [options]

Options (each also read from the environment variable shown):
  --hub URL           hub base URL: http://, https://, ws:// or wss://   [STEWARD_AGENT_HUB]
  --token-file PATH   file holding this server's enrollment token;
                      re-read before every connection attempt      [STEWARD_AGENT_TOKEN_FILE]
                      (or the token itself in STEWARD_AGENT_TOKEN)
  --interval SECS     collection interval, 1-60 (default 10);
                      the hub's setting wins once connected        [STEWARD_AGENT_INTERVAL]
  --ca-file PEM       trust only these CA certificates for https/wss
                      (default: the system's trust store)          [STEWARD_AGENT_CA_FILE]
  --help, --version
";

/// Where the token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    Value(String),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::File(p) => f.debug_tuple("File").field(p).finish(),
            TokenSource::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// The agent's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `ws://…/api/v1/agent/connect` or `wss://…`.
    pub url: String,
    pub tls: bool,
    pub token: TokenSource,
    pub interval_secs: u32,
    pub ca_file: Option<PathBuf>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Config),
    Help,
    Version,
}

/// Parses `args` (without the program name) with `env` as the fallback for each option.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, String> {
    let mut hub = None;
    let mut token_file = None;
    let mut interval = None;
    let mut ca_file = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let slot = match name.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--hub" => &mut hub,
            "--token-file" => &mut token_file,
            "--interval" => &mut interval,
            "--ca-file" => &mut ca_file,
            other => return Err(format!("unknown option {other:?}; see --help")),
        };
        let value = match inline.or_else(|| args.next()) {
            Some(v) if !v.is_empty() => v,
            _ => return Err(format!("{name} needs a value")),
        };
        *slot = Some(value);
    }
    let hub = hub
        .or_else(|| env("STEWARD_AGENT_HUB"))
        .ok_or("--hub is required (or STEWARD_AGENT_HUB)")?;
    let (url, tls) = connect_url(&hub)?;
    let token = match token_file.or_else(|| env("STEWARD_AGENT_TOKEN_FILE")) {
        Some(path) => TokenSource::File(PathBuf::from(path)),
        None => match env("STEWARD_AGENT_TOKEN") {
            Some(t) if !t.trim().is_empty() => TokenSource::Value(t.trim().to_owned()),
            _ => return Err("--token-file or STEWARD_AGENT_TOKEN is required".into()),
        },
    };
    let interval_secs = match interval.or_else(|| env("STEWARD_AGENT_INTERVAL")) {
        None => 10,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|s| (MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(s))
            .ok_or_else(|| {
                format!(
                    "--interval must be {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS} seconds, not {v:?}"
                )
            })?,
    };
    let ca_file = ca_file
        .or_else(|| env("STEWARD_AGENT_CA_FILE"))
        .map(PathBuf::from);
    Ok(Command::Run(Config {
        url,
        tls,
        token,
        interval_secs,
        ca_file,
    }))
}

/// The WebSocket URL of the hub's agent endpoint, and whether it uses TLS. A path in the
/// hub URL is kept (a hub behind a reverse proxy at `/steward`).
pub fn connect_url(hub: &str) -> Result<(String, bool), String> {
    let hub = hub.trim();
    let (scheme, rest) = hub
        .split_once("://")
        .ok_or_else(|| format!("hub URL {hub:?} needs a scheme (https://…)"))?;
    let (ws, tls) = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => ("ws", false),
        "https" | "wss" => ("wss", true),
        other => {
            return Err(format!(
                "hub URL scheme {other:?}: use http, https, ws or wss"
            ));
        }
    };
    if rest.contains(['?', '#']) {
        return Err("hub URL: no query or fragment, please".into());
    }
    let rest = rest.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(format!("hub URL {hub:?} needs a host (and no user info)"));
    }
    // Someone pasting the full endpoint URL gets what they meant.
    let rest = rest.strip_suffix(CONNECT_PATH).unwrap_or(rest);
    Ok((format!("{ws}://{rest}{CONNECT_PATH}"), tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(|s| s.to_string()), move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn flags_and_environment() {
        let Ok(Command::Run(c)) = run(
            &[
                "--hub",
                "https://hub.example:8443/",
                "--token-file=/etc/t",
                "--interval",
                "5",
            ],
            &[],
        ) else {
            panic!("run");
        };
        assert_eq!(c.url, "wss://hub.example:8443/api/v1/agent/connect");
        assert!(c.tls);
        assert_eq!(c.token, TokenSource::File("/etc/t".into()));
        assert_eq!(c.interval_secs, 5);

        let Ok(Command::Run(c)) = run(
            &[],
            &[
                ("STEWARD_AGENT_HUB", "http://10.0.0.1/steward"),
                ("STEWARD_AGENT_TOKEN", " tok \n"),
            ],
        ) else {
            panic!("run");
        };
        assert_eq!(c.url, "ws://10.0.0.1/steward/api/v1/agent/connect");
        assert_eq!(c.token, TokenSource::Value("tok".into()));
        assert_eq!(c.interval_secs, 10);
        assert_eq!(format!("{:?}", c.token), "Value(<redacted>)");
    }

    #[test]
    fn mistakes_are_explained() {
        let err = |a: &[&str]| run(a, &[("STEWARD_AGENT_TOKEN", "t")]).expect_err("error");
        assert!(err(&[]).contains("--hub is required"));
        assert!(err(&["--hub", "ftp://x"]).contains("scheme"));
        assert!(err(&["--hub", "hub.example"]).contains("needs a scheme"));
        assert!(err(&["--hub", "http://x", "--interval", "0"]).contains("1 to 60"));
        assert!(err(&["--hub", "http://x", "--interval", "61"]).contains("1 to 60"));
        assert!(err(&["--hub"]).contains("needs a value"));
        assert!(err(&["--hub", "http://x", "--bogus"]).contains("unknown option"));
        assert!(run(&["--hub", "http://x"], &[]).is_err(), "no token");
        assert_eq!(run(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(
            connect_url("wss://h/api/v1/agent/connect"),
            Ok(("wss://h/api/v1/agent/connect".into(), true))
        );
    }
}
