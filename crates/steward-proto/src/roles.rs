//! Roles and permissions.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_core::Permission;
use utoipa::ToSchema;

/// A role: permissions granted on all servers, or on the servers carrying one of its tags.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Built-in roles (admin, operator, viewer) cannot be changed.
    pub builtin: bool,
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<Permission>,
    /// `null`: all servers; otherwise only servers with one of these tags.
    pub server_tags: Option<Vec<String>>,
    pub user_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates or replaces a custom role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "name": "web-operators", "description": "Run scripts on the web servers", "permissions": ["servers.read", "scripts.run", "checks.write"], "server_tags": ["web"] })
))]
pub struct RoleInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<Permission>,
    /// Limit the role to servers with one of these tags; `null` or absent for all servers.
    #[serde(default)]
    pub server_tags: Option<Vec<String>>,
}

/// A permission and what it allows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PermissionInfo {
    pub name: String,
    pub description: String,
    /// Whether it applies per server (and so can be limited to tags).
    pub server_scoped: bool,
}
