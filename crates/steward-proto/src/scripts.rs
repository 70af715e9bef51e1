//! The script library and runs of scripts or commands across servers.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::StepUpRequest;

/// The shell a script runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    #[default]
    Sh,
    Bash,
}

impl Shell {
    pub fn as_str(self) -> &'static str {
        match self {
            Shell::Sh => "sh",
            Shell::Bash => "bash",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sh" => Some(Shell::Sh),
            "bash" => Some(Shell::Bash),
            _ => None,
        }
    }
}

/// The type of a script parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    String,
    Integer,
    Boolean,
    /// One of `choices`.
    Choice,
    /// A password, token or key: given for each run (never a default), sealed in the vault
    /// while the run goes, shown as `***` in run details and the audit log, and masked in the
    /// output. It reaches the script as an environment variable, never on a command line.
    Secret,
}

/// A parameter a script takes. Its value reaches the script as the environment variable
/// `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptParameter {
    /// Letters, digits and `_`, not starting with a digit (it becomes a variable name).
    pub name: String,
    /// What the run dialog shows; the name when empty.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    #[serde(default)]
    pub required: bool,
    /// Used when no value is given.
    #[serde(default)]
    pub default: Option<String>,
    /// The allowed values of a `choice`.
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A saved script.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Script {
    pub id: String,
    pub name: String,
    pub description: String,
    pub shell: Shell,
    pub body: String,
    pub parameters: Vec<ScriptParameter>,
    /// Goes up by one with every saved change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who saved the current version.
    pub updated_by: Option<String>,
    /// Where the script may run, and who may change it: `null` for the whole organization
    /// (changed with `scripts.write` on every server), otherwise tags (changed with
    /// `scripts.write` covering them; runs only on servers carrying one of them).
    pub owner_tags: Option<Vec<String>>,
    /// Whether the caller wrote or already ran this version: running an unreviewed version
    /// needs a step-up.
    pub reviewed: bool,
}

/// Creates a script, or saves a new version of one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "name": "Disk usage", "description": "Largest directories under a path", "shell": "sh", "body": "du -xh \"$DIR\" | sort -h | tail -n \"$N\"", "parameters": [{ "name": "DIR", "type": "string", "required": true }, { "name": "N", "type": "integer", "default": "10" }] }),
    json!({ "name": "Rotate the database password", "body": "psql -c \"ALTER ROLE app PASSWORD '$NEW_PASSWORD'\"", "parameters": [{ "name": "NEW_PASSWORD", "type": "secret", "required": true }], "owner_tags": ["db"], "step_up": { "password": "violet-harbour-engine-42" } })
))]
pub struct ScriptInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub shell: Shell,
    pub body: String,
    #[serde(default)]
    pub parameters: Vec<ScriptParameter>,
    /// When saving: the version the change was made on. If someone saved meanwhile, the save
    /// is refused (409 `version_conflict`) instead of overwriting their change.
    #[serde(default)]
    pub base_version: Option<i64>,
    /// Where the script may run and who may change it: `[]` for the whole organization,
    /// otherwise tags inside your `scripts.write` scope. Absent: unchanged on a save; on
    /// creation, the whole organization if your `scripts.write` covers every server, else the
    /// tags it covers.
    #[serde(default)]
    pub owner_tags: Option<Vec<String>>,
    /// Proves the caller again inline (API tokens): a new or changed body needs a step-up.
    #[serde(default)]
    pub step_up: Option<StepUpRequest>,
}

/// Filters for the script list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScriptQuery {
    /// Case-insensitive text in name or description.
    pub q: Option<String>,
}

/// One saved version of a script.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScriptVersion {
    pub version: i64,
    pub name: String,
    pub description: String,
    pub shell: Shell,
    pub body: String,
    pub parameters: Vec<ScriptParameter>,
    pub changed_by: Option<String>,
    pub changed_at: DateTime<Utc>,
}

/// Starts a run of a saved script or an ad-hoc command on servers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "script_id": "0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d", "script_version": 3, "parameters": { "DIR": "/var", "N": 5 }, "tags": ["web"], "concurrency": 5 }),
    json!({ "command": "uptime", "server_ids": ["0190f3c4-8b6d-7a2e-9c1f-3d5e7a9b1c2d"], "step_up": { "password": "violet-harbour-engine-42" } })
))]
pub struct ExecutionRequest {
    /// A saved script…
    #[serde(default)]
    pub script_id: Option<String>,
    /// …at the version you reviewed (required with `script_id`): if the script changed since,
    /// the run is refused (409 `script_changed`, with the difference).
    #[serde(default)]
    pub script_version: Option<i64>,
    /// …or an ad-hoc command (always needs a step-up).
    #[serde(default)]
    pub command: Option<String>,
    /// The shell for an ad-hoc command (default `sh`).
    #[serde(default)]
    pub shell: Option<Shell>,
    /// Values of the script's parameters, by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Servers by id…
    #[serde(default)]
    pub server_ids: Vec<String>,
    /// …and/or every server carrying one of these tags (that you may run on).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Per host, in seconds (default 300, at most 86,400).
    #[serde(default)]
    pub timeout_secs: Option<i64>,
    /// Hosts running at once (default 10, at most 200).
    #[serde(default)]
    pub concurrency: Option<i64>,
    /// Start no further host once one fails (hosts already running finish).
    #[serde(default)]
    pub stop_on_failure: bool,
    /// Proves the caller again inline (API tokens; or instead of `POST /auth/step-up`).
    #[serde(default)]
    pub step_up: Option<StepUpRequest>,
}

/// How a run went, by host status.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ExecutionSummary {
    pub total: i64,
    pub ok: i64,
    pub failed: i64,
    pub timed_out: i64,
    /// Could not connect or start.
    pub error: i64,
    /// Cancelled or skipped.
    pub cancelled: i64,
    /// Still pending or running.
    pub running: i64,
}

/// A run, without its hosts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Execution {
    pub id: String,
    pub script_id: Option<String>,
    pub script_name: Option<String>,
    pub script_version: Option<i64>,
    /// What ran: the script body or the ad-hoc command.
    pub command: String,
    pub shell: Shell,
    #[schema(value_type = Object)]
    pub parameters: BTreeMap<String, String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `finished`, `cancelled` or `interrupted`.
    pub status: String,
    pub timeout_secs: i64,
    pub concurrency: i64,
    pub stop_on_failure: bool,
    pub cancelled_by: Option<String>,
    pub summary: ExecutionSummary,
}

/// One host of a run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionHost {
    pub server_id: String,
    pub server_name: String,
    /// `pending`, `running`, `ok`, `failed`, `timed_out`, `error`, `cancelled` or `skipped`.
    pub status: String,
    pub exit_code: Option<i64>,
    /// The signal that killed the command, if one did.
    pub exit_signal: Option<String>,
    /// Why the host could not run it (`unreachable`, `auth_failed`, `host_key_mismatch` …).
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    /// Standard output as text (invalid UTF-8 replaced), up to the cap.
    pub stdout: String,
    pub stderr: String,
    /// Bytes the command wrote in all, including any cut off.
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    /// Output went over the cap and was cut; the kept part is the beginning.
    pub truncated: bool,
}

/// A run with its hosts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub execution: Execution,
    pub hosts: Vec<ExecutionHost>,
    /// The parameters whose values are secret: `parameters` shows them as `***`, and their
    /// values are masked in the output.
    #[serde(default)]
    pub secret_parameters: Vec<String>,
}

/// A page of runs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExecutionPage {
    pub items: Vec<Execution>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Filters for the run history.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExecutionQuery {
    /// `running`, `finished`, `cancelled` or `interrupted`.
    pub status: Option<String>,
    pub script_id: Option<String>,
    /// Runs that included this server.
    pub server_id: Option<String>,
    /// Only my runs (those with `audit.read` see everyone's otherwise).
    pub mine: Option<bool>,
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

/// A message of the live stream (`/executions/{id}/stream`), sent as a JSON text frame.
/// `seq` grows with each message; a `snapshot` covers every message up to its `seq`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutionEvent {
    /// The whole run so far (first message, and again after the client fell behind).
    Snapshot {
        seq: u64,
        execution: ExecutionDetail,
    },
    /// Output from one host.
    Output {
        seq: u64,
        server_id: String,
        /// `stdout` or `stderr`.
        stream: String,
        data: String,
    },
    /// A host changed status (started, finished, was cut off…).
    Host { seq: u64, host: ExecutionHost },
    /// The run ended; the stream closes after this.
    Finished {
        seq: u64,
        status: String,
        summary: ExecutionSummary,
    },
}
