//! The agent of a server: enrollment and status.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
