//! User management.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Sensitive;

/// A role, by id and name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
}

/// An account as administrators see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<RoleRef>,
    pub disabled: bool,
    pub totp_enabled: bool,
    /// An administrator requires 2FA for this account.
    pub require_totp: bool,
    pub password_change_required: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Creates an account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "username": "alice", "password": "violet-harbour-engine-42", "email": "alice@example.com", "roles": ["operator"] })
))]
pub struct CreateUserRequest {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: Sensitive,
    #[serde(default)]
    pub email: Option<String>,
    /// Role ids or names.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub require_totp: bool,
    /// Make the user choose a new password at first login (default true).
    #[serde(default)]
    pub password_change_required: Option<bool>,
}

/// Changes an account; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "roles": ["viewer"], "disabled": false })
))]
pub struct UpdateUserRequest {
    #[serde(default)]
    pub email: Option<String>,
    /// Role ids or names, replacing the current ones.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub require_totp: Option<bool>,
}

/// Sets a new password for someone else.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "new_password": "amber-lantern-river-77" })
))]
pub struct ResetPasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub new_password: Sensitive,
    /// Make the user choose another at next login (default true).
    #[serde(default)]
    pub password_change_required: Option<bool>,
}
