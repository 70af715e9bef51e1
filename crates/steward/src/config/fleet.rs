//! The sections about working on managed servers: `[ssh]`, `[execution]`, `[terminal]`,
//! `[scan]` and `[agent]`.
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use steward_services::config::Config;

use super::{positive, seconds, utf8_path, within};

/// `[ssh]`: the pooled SSH connections to managed servers.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "ssh")]
#[command(next_help_heading = "SSH connections ([ssh])")]
#[serde(deny_unknown_fields)]
pub struct SshSection {
    /// Longest wait, in seconds, to connect to a managed server over SSH.
    #[arg(long, env = "STEWARD_SSH_CONNECT_TIMEOUT", value_name = "SECS")]
    pub ssh_connect_timeout: Option<i64>,
    /// Most SSH connections open at once, over all servers.
    #[arg(long, env = "STEWARD_SSH_MAX_CONNECTIONS", value_name = "N")]
    pub ssh_max_connections: Option<i64>,
    /// Seconds an unused SSH connection stays open.
    #[arg(long, env = "STEWARD_SSH_IDLE_TIMEOUT", value_name = "SECS")]
    pub ssh_idle_timeout: Option<i64>,
}

impl SshSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        config.ssh_connect_timeout = seconds(
            "ssh-connect-timeout",
            self.ssh_connect_timeout,
            config.ssh_connect_timeout,
        )?;
        config.ssh_max_connections = positive(
            "ssh-max-connections",
            self.ssh_max_connections,
            "connections",
        )?
        .map_or(config.ssh_max_connections, |n| n as usize);
        config.ssh_idle_timeout = seconds(
            "ssh-idle-timeout",
            self.ssh_idle_timeout,
            config.ssh_idle_timeout,
        )?;
        Ok(())
    }
}

/// `[execution]`: script runs.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "execution")]
#[command(next_help_heading = "Script runs ([execution])")]
#[serde(deny_unknown_fields)]
pub struct ExecutionSection {
    /// Bytes of output kept per host and stream of a script run (more is cut and marked).
    #[arg(long, env = "STEWARD_EXECUTION_OUTPUT_CAP", value_name = "BYTES")]
    pub execution_output_cap: Option<i64>,
    /// Run `sh` scripts on runner shells kept on pooled SSH connections (default true).
    #[arg(long, env = "STEWARD_EXECUTION_RUNNERS", value_name = "BOOL")]
    pub execution_runners: Option<bool>,
    /// Days script runs and their output are kept.
    #[arg(long, env = "STEWARD_EXECUTION_RETENTION_DAYS", value_name = "DAYS")]
    pub execution_retention_days: Option<i64>,
}

impl ExecutionSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        config.execution_output_cap =
            positive("execution-output-cap", self.execution_output_cap, "bytes")?
                .map_or(config.execution_output_cap, |n| n as usize);
        config.execution_runners = self.execution_runners.unwrap_or(config.execution_runners);
        config.execution_retention_days = positive(
            "execution-retention-days",
            self.execution_retention_days,
            "days",
        )?
        .unwrap_or(config.execution_retention_days);
        Ok(())
    }
}

/// `[terminal]`: web terminals and their recordings.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "terminal")]
#[command(next_help_heading = "Web terminals ([terminal])")]
#[serde(deny_unknown_fields)]
pub struct TerminalSection {
    /// Seconds without keystrokes after which a web terminal is closed.
    #[arg(long, env = "STEWARD_TERMINAL_IDLE_TIMEOUT", value_name = "SECS")]
    pub terminal_idle_timeout: Option<i64>,
    /// Days terminal recordings are kept.
    #[arg(long, env = "STEWARD_RECORDING_RETENTION_DAYS", value_name = "DAYS")]
    pub recording_retention_days: Option<i64>,
    /// Output bytes recorded per terminal session; past it the recording stops (the session
    /// goes on, the user is told, the event is audited).
    #[arg(long, env = "STEWARD_TERMINAL_RECORDING_CAP", value_name = "BYTES")]
    pub terminal_recording_cap: Option<i64>,
}

impl TerminalSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        config.terminal_idle_timeout = seconds(
            "terminal-idle-timeout",
            self.terminal_idle_timeout,
            config.terminal_idle_timeout,
        )?;
        config.recording_retention_days = positive(
            "recording-retention-days",
            self.recording_retention_days,
            "days",
        )?
        .unwrap_or(config.recording_retention_days);
        config.terminal_recording_cap = within(
            "terminal-recording-cap",
            self.terminal_recording_cap,
            64 * 1024..=i64::MAX,
            "at least 65536 bytes",
        )?
        .map_or(config.terminal_recording_cap, |n| n as u64);
        Ok(())
    }
}

/// `[scan]`: scheduled service discovery.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "scan")]
#[command(next_help_heading = "Service discovery ([scan])")]
#[serde(deny_unknown_fields)]
pub struct ScanSection {
    /// Hours between scheduled service-discovery scans of each server (0 turns them off).
    #[arg(long, env = "STEWARD_SCAN_INTERVAL", value_name = "HOURS")]
    pub scan_interval: Option<i64>,
}

impl ScanSection {
    /// Checks the values into `config`.
    pub fn resolve(&self, config: &mut Config) -> anyhow::Result<()> {
        let hours = within(
            "scan-interval",
            self.scan_interval,
            0..=24 * 365,
            "0 (off) or 1 to 8760 hours",
        )?;
        config.scan_interval = match hours {
            None => config.scan_interval,
            Some(0) => None,
            Some(h) => Some(Duration::from_secs(h as u64 * 3600)),
        };
        Ok(())
    }
}

/// `[agent]`: the `steward-agent` binary the hub hands out.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
#[group(id = "agent")]
#[command(next_help_heading = "Agent ([agent])")]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The `steward-agent` binary to serve to agents and install over SSH, or a directory
    /// with one build per architecture (default: a `steward-agent` file next to the
    /// `steward` executable).
    #[arg(long, env = "STEWARD_AGENT_BINARY", value_name = "PATH", value_parser = utf8_path)]
    pub agent_binary: Option<PathBuf>,
}

impl AgentSection {
    /// Sets the binary in `config`.
    pub fn resolve(&self, config: &mut Config) {
        config.agent_binary = self.agent_binary.clone().or_else(default_agent_binary);
    }
}

/// `steward-agent` next to the running executable (where `make build` puts it).
fn default_agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join("steward-agent"))
}
