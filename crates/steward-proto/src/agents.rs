//! The agent of a server: enrollment and status.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::sensitive::Sensitive;

/// A server's agent, as the hub last saw it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    /// An enrollment token exists for this server.
    pub enrolled: bool,
    /// The agent is connected now.
    pub connected: bool,
    /// How the server's metrics are collected: `agentless`, `agent` or `off`.
    pub monitoring: String,
    pub enrolled_at: Option<DateTime<Utc>>,
    pub connected_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The highest sample batch stored.
    pub last_seq: i64,
    pub agent_version: Option<String>,
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub kernel: Option<String>,
}

/// A new enrollment: `token` is shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentEnrollment {
    #[schema(value_type = String, format = Password)]
    pub token: Sensitive,
    /// The hub URL the agent connects to.
    pub hub_url: String,
    /// Shell commands that install and start the agent on the server (as root), with the
    /// token in a 0600 file.
    pub install_command: String,
    pub agent: AgentInfo,
}

/// Installing (or uninstalling) the agent over SSH. The body may be left out: a session that
/// stepped up recently (`POST /auth/step-up`) needs nothing more; an API token proves its
/// owner inline with `step_up`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({}),
    json!({ "step_up": { "password": "violet-harbour-engine-42" } })
))]
pub struct AgentInstallRequest {
    #[serde(default)]
    pub step_up: Option<crate::StepUpRequest>,
}

/// Which agent binary to download.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentDownloadQuery {
    /// The server's `uname -m` (`x86_64`, `aarch64`, `arm64` …); default: the hub's only
    /// binary, or the one for the hub's own architecture.
    pub arch: Option<String>,
}

/// Where the agent was installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AgentInstallMode {
    /// `/usr/local/bin/steward-agent`, `/etc/steward-agent/token` (as root, or with `sudo -n`).
    System,
    /// `~/.local/bin/steward-agent`, `~/.config/steward-agent/token` (the login user, no root).
    User,
}

/// What keeps the agent running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentServiceKind {
    /// A system unit, `steward-agent.service`, enabled: starts at boot, restarted on failure.
    Systemd,
    /// A `systemctl --user` unit of the login user.
    SystemdUser,
    /// No systemd: a background process (pid file and log file); it does not start again
    /// after a reboot.
    Detached,
}

/// One step of an install or uninstall, in the order they ran.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInstallStep {
    /// `connect`, `probe`, `architecture`, `upload`, `enroll`, `token`, `install`, `account`
    /// (systemd: the `steward-agent` system account), `start`, `verify`, `boot`, `connected`,
    /// `cleanup`; for uninstall `stop`, `remove`, `revoke`.
    pub name: String,
    pub ok: bool,
    /// What happened, for people (never contains the token).
    pub detail: String,
}

/// Something that works but deserves attention.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInstallWarning {
    /// `no_boot_start` (detached, no cron: restarted when it exits, not started after a
    /// reboot), `runs_as_root`
    /// (detached system install), `no_linger` (a user service that stops at logout),
    /// `not_connected` (running, not connected yet).
    pub code: String,
    /// The same in English, with the specifics.
    pub message: String,
}

/// The result of an install over SSH.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInstallResult {
    pub mode: AgentInstallMode,
    pub service: AgentServiceKind,
    /// Where the binary is on the server.
    pub binary_path: String,
    /// The hub URL the agent connects to.
    pub hub_url: String,
    pub steps: Vec<AgentInstallStep>,
    /// Things that work but deserve attention (no start at boot, a user service that stops
    /// at logout, not connected yet …).
    pub warnings: Vec<AgentInstallWarning>,
    pub agent: AgentInfo,
}

/// One line of an install answered as `application/x-ndjson` (asked for with that `Accept`
/// header): each step as it ends, then the result or the error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentInstallProgress {
    /// A step has ended.
    Step { step: AgentInstallStep },
    /// The install succeeded: the same answer as without streaming.
    Result { result: Box<AgentInstallResult> },
    /// The install failed: the HTTP status and the error it would have answered with.
    Error {
        status: u16,
        error: crate::ErrorDetail,
    },
}

/// The result of an uninstall over SSH: the agent is stopped and removed, and its token
/// revoked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentUninstallResult {
    pub steps: Vec<AgentInstallStep>,
    pub warnings: Vec<AgentInstallWarning>,
    pub agent: AgentInfo,
}
