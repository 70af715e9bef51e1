//! Web terminals: opening one (a WebSocket), and the recorded sessions.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The terminal's initial size.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TerminalOpenQuery {
    /// Columns, 1–1000 (default 80).
    pub cols: Option<u32>,
    /// Rows, 1–1000 (default 24).
    pub rows: Option<u32>,
}

/// A control message from the browser (a WebSocket text frame). Keystrokes travel as binary
/// frames.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TerminalClientMessage {
    /// The terminal was resized.
    Resize { cols: u32, rows: u32 },
}

/// A control message from Steward (a WebSocket text frame). Output travels as binary frames.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TerminalServerMessage {
    /// The shell is running; its session (and recording) has this id.
    Ready { session_id: String },
    /// The session could not start, or failed: a stable `code` (`unreachable`,
    /// `auth_failed`, `host_key_mismatch`, `no_credential`, `timeout`, `ssh_error`,
    /// `bad_message` …) and a message.
    Error { code: String, message: String },
    /// The session ended: `exited` (the shell ended), `closed`, `idle_timeout`,
    /// `terminated` (by an administrator), `access_revoked` (the user was disabled, logged
    /// out or lost `terminal.open` on the server), `shutdown` or `error`.
    Closed { reason: String },
    /// The recording reached its size limit (`limit_bytes` of output) and stopped; the shell
    /// goes on, unrecorded from here.
    RecordingStopped { limit_bytes: u64 },
}

/// A recorded terminal session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TerminalSession {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub server_id: String,
    pub server_name: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// Output bytes recorded.
    pub bytes: i64,
    /// `closed`, `exited`, `idle_timeout`, `terminated`, `access_revoked`, `shutdown`,
    /// `error` or `interrupted`.
    pub end_reason: Option<String>,
    /// The initial size.
    pub cols: i64,
    pub rows: i64,
    /// The session is running now (on this instance).
    pub live: bool,
    /// When the recording stopped at its size limit (the session went on unrecorded).
    pub recording_capped_at: Option<DateTime<Utc>>,
}

/// A page of terminal sessions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TerminalSessionPage {
    pub items: Vec<TerminalSession>,
    /// How many match the filter in all.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Filters and paging for the terminal session list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TerminalSessionQuery {
    /// The user's id or name.
    pub user: Option<String>,
    /// The server's id or name.
    pub server: Option<String>,
    /// `true`: only running sessions; `false`: only ended ones.
    pub live: Option<bool>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}
