//! First-run setup, login, sessions, two-factor authentication and API tokens.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_core::Permission;
use utoipa::ToSchema;

use crate::Sensitive;

/// Whether the instance still needs its first administrator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupStatus {
    pub setup_required: bool,
}

/// Creates the first administrator. Only valid with the one-time setup token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "token": "4f2b9c1e0a7d5f3b8e6c2a9d", "username": "admin", "password": "violet-harbour-engine-42", "email": "admin@example.com" })
))]
pub struct SetupRequest {
    /// The token from `<data-dir>/setup-token` (also printed in the log).
    #[schema(value_type = String, format = Password)]
    pub token: Sensitive,
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: Sensitive,
    #[serde(default)]
    pub email: Option<String>,
}

/// Logs in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "username": "alice", "password": "violet-harbour-engine-42" }),
    json!({ "username": "alice", "password": "violet-harbour-engine-42", "totp_code": "492039" })
))]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: Sensitive,
    /// The 6-digit code from the authenticator app, when 2FA is on.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub totp_code: Option<Sensitive>,
    /// A one-time recovery code, instead of `totp_code`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub recovery_code: Option<Sensitive>,
}

/// Tokens after login or refresh. Browsers also get them as HttpOnly cookies.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT for the `Authorization: Bearer` header.
    #[schema(value_type = String)]
    pub access_token: Sensitive,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: i64,
    /// Opaque, single-use token for `/auth/refresh`.
    #[schema(value_type = String)]
    pub refresh_token: Sensitive,
}

/// Exchanges a refresh token (from the body or the cookie) for new tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "refresh_token": "GZ1n4cXbJ0bQyq2k7v5s8w3r6t9u0x1z2a4b6c8d0e" }),
    json!({})
))]
pub struct RefreshRequest {
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub refresh_token: Option<Sensitive>,
}

/// The logged-in account, with what it may do.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub locale: Option<String>,
    pub roles: Vec<String>,
    /// Every permission held somewhere (server-scoped ones may be limited to tags).
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<Permission>,
    /// Where each server-scoped permission applies: `null` on every server, otherwise the
    /// tags it is limited to (a server carrying one of them). Lets a client show only the
    /// actions the server would allow on a given server.
    #[schema(value_type = std::collections::BTreeMap<String, Option<Vec<String>>>)]
    pub scopes: std::collections::BTreeMap<String, Option<Vec<String>>>,
    pub totp_enabled: bool,
    /// 2FA is required for this account (by policy or by an administrator).
    pub totp_required: bool,
    /// 2FA is required but not yet set up: only setting it up is allowed until then.
    pub totp_setup_required: bool,
    /// An administrator reset the password: only changing it is allowed until then.
    pub password_change_required: bool,
    pub recovery_codes_left: i64,
    /// How this request authenticated: `session` or `api_token`.
    pub auth_method: String,
}

/// Changes the caller's own password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "current_password": "violet-harbour-engine-42", "new_password": "amber-lantern-river-77" })
))]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    pub current_password: Sensitive,
    #[schema(value_type = String, format = Password)]
    pub new_password: Sensitive,
}

/// Updates the caller's profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "email": "alice@example.com", "locale": "de" })
))]
pub struct UpdateProfileRequest {
    #[serde(default)]
    pub email: Option<String>,
    /// UI language (`en`, `de`, `fr`, `es`, `pt-BR`, `ru`, `zh-CN`, `ja`).
    #[serde(default)]
    pub locale: Option<String>,
}

/// A new, unconfirmed TOTP secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrollResponse {
    /// Base32 secret, for manual entry.
    #[schema(value_type = String)]
    pub secret: Sensitive,
    /// `otpauth://` URL, for a QR code.
    #[schema(value_type = String)]
    pub otpauth_url: Sensitive,
}

/// Confirms enrollment with a code from the app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "code": "492039" })
))]
pub struct TotpConfirmRequest {
    #[schema(value_type = String, format = Password)]
    pub code: Sensitive,
}

/// One-time recovery codes, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(value_type = Vec<String>)]
    pub recovery_codes: Vec<Sensitive>,
}

/// Re-authentication for a sensitive change of one's own account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "password": "violet-harbour-engine-42" })
))]
pub struct PasswordConfirmation {
    #[schema(value_type = String, format = Password)]
    pub password: Sensitive,
}

/// A personal API token (never its secret after creation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<Permission>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// Creates a personal API token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "name": "backup script", "permissions": ["servers.read", "scripts.run"], "expires_in_days": 90 })
))]
pub struct CreateApiTokenRequest {
    pub name: String,
    /// A subset of the caller's permissions.
    #[schema(value_type = Vec<String>)]
    pub permissions: Vec<Permission>,
    /// Days until it expires (1–3650); none for no expiry.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// A created token: `token` is shown this once and never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiToken {
    #[schema(value_type = String, format = Password)]
    pub token: Sensitive,
    pub api_token: ApiToken,
}

/// Organization settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Settings {
    /// Every user must use two-factor authentication.
    pub require_totp: bool,
    /// Networks health checks may reach although they are refused by default (loopback,
    /// link-local, the hub's own addresses, multicast, cloud metadata addresses), in CIDR form.
    pub check_allowed_networks: Vec<String>,
}

/// New organization settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "require_totp": true }),
    json!({ "require_totp": false, "check_allowed_networks": ["127.0.0.0/8", "::1"] })
))]
pub struct SettingsUpdate {
    /// Every user must use two-factor authentication.
    pub require_totp: bool,
    /// Replaces the networks health checks may reach although they are refused by default:
    /// networks (`127.0.0.0/8`, `fe80::/10`) or single addresses, at most 100. Left out: kept
    /// as they are.
    #[serde(default)]
    pub check_allowed_networks: Option<Vec<String>>,
}

/// Proves the caller again before a sensitive action (a fleet-wide run, an ad-hoc command, a
/// terminal): their password, or a code from their authenticator app.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(
    json!({ "password": "violet-harbour-engine-42" }),
    json!({ "totp_code": "492039" })
))]
pub struct StepUpRequest {
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Sensitive>,
    /// The 6-digit code from the authenticator app (when 2FA is on).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub totp_code: Option<Sensitive>,
}

/// The session is proven until this time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepUpResponse {
    pub valid_until: chrono::DateTime<chrono::Utc>,
}

/// A live login session (a browser or client that logged in), for the account's owner or an
/// administrator to review and end.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub id: String,
    /// The session this request was made with.
    pub current: bool,
    pub created_at: DateTime<Utc>,
    /// The last request (at most a minute behind) or token refresh.
    pub last_seen_at: DateTime<Utc>,
    /// When it ends however often it is refreshed.
    pub expires_at: DateTime<Utc>,
    /// The address it logged in from.
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// How many sessions or tokens a revocation ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: u64,
}
