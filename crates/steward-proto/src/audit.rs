//! The audit log.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One recorded action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub source_ip: Option<String>,
    /// e.g. `auth.login`, `server.create`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A page of events, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `cursor` for the next (older) page; absent at the end.
    pub next_cursor: Option<String>,
}

/// Filters for the audit log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Actor id or username.
    pub actor: Option<String>,
    /// Exact action, or a prefix ending in `.` or `*` (`auth.`).
    pub action: Option<String>,
    /// Target id or name.
    pub target: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: Option<String>,
    /// RFC 3339 time, inclusive.
    pub from: Option<String>,
    /// RFC 3339 time, exclusive.
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// 1–500, default 100 (export: up to 100,000).
    pub limit: Option<i64>,
    /// `csv` or `json` to download every matching event as a file.
    pub format: Option<String>,
}
