//! First-run setup, login, sessions, two-factor authentication and API tokens.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use steward_core::Permission;
use utoipa::ToSchema;

/// Whether the instance still needs its first administrator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupStatus {
    pub setup_required: bool,
}

/// Creates the first administrator. Only valid with the one-time setup token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The token from `<data-dir>/setup-token` (also printed in the log).
    pub token: String,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// Logs in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The 6-digit code from the authenticator app, when 2FA is on.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// A one-time recovery code, instead of `totp_code`.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// Tokens after login or refresh. Browsers also get them as HttpOnly cookies.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived JWT for the `Authorization: Bearer` header.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: i64,
    /// Opaque, single-use token for `/auth/refresh`.
    pub refresh_token: String,
}

/// Exchanges a refresh token (from the body or the cookie) for new tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
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
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// Updates the caller's profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
    pub secret: String,
    /// `otpauth://` URL, for a QR code.
    pub otpauth_url: String,
}

/// Confirms enrollment with a code from the app.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    pub code: String,
}

/// One-time recovery codes, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Re-authentication for a sensitive change of one's own account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirmation {
    pub password: String,
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
    pub token: String,
    pub api_token: ApiToken,
}

/// Organization settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Every user must use two-factor authentication.
    pub require_totp: bool,
}
