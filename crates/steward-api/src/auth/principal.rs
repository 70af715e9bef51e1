//! Who is calling: the [`Principal`] extractor authenticates a request (access token in the
//! `Authorization` header or the session cookie, or a personal API token) and loads what the
//! caller may do, fresh from the database on every request — so disabling a user, revoking a
//! session or changing a role takes effect at once, on every instance.
use std::collections::BTreeSet;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use steward_core::{Authz, Grant, Permission, Scope};
use steward_db::roles::RoleRow;
use steward_db::users::UserRow;
use steward_db::{api_tokens, roles, sessions, users};

use super::cookies;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientInfo, client_info};
use crate::state::AppState;
use steward_services::auth::{jwt, tokens};

/// How the request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A login session (bearer access token or cookie).
    Session { session_id: String },
    /// A personal API token.
    ApiToken { token_id: String },
}

/// An authenticated caller whose account has nothing pending (2FA set-up, password change).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRow,
    pub roles: Vec<RoleRow>,
    pub authz: Authz,
    pub method: AuthMethod,
    pub client: ClientInfo,
    /// 2FA is required for this account (by policy or by an administrator).
    pub totp_required: bool,
    /// When the session last re-proved its user (never for API tokens).
    pub step_up_at: Option<i64>,
}

/// An authenticated caller who may still have to set up 2FA or change a password: accepted
/// only by the handlers that let them do so (and `me`, `logout`).
#[derive(Debug, Clone)]
pub struct PendingPrincipal(pub Principal);

impl Principal {
    /// Whether a required second factor still has to be set up.
    pub fn totp_setup_required(&self) -> bool {
        self.totp_required && self.user.totp_enabled_at.is_none()
    }

    /// Whether an administrator reset the password and a new one must be chosen.
    pub fn password_change_required(&self) -> bool {
        self.user.must_change_password != 0
    }

    /// The session, if the caller logged in (rather than using an API token).
    pub fn session_id(&self) -> Option<&str> {
        match &self.method {
            AuthMethod::Session { session_id } => Some(session_id),
            AuthMethod::ApiToken { .. } => None,
        }
    }

    /// Whether the caller is a personal API token.
    pub fn is_api_token(&self) -> bool {
        matches!(self.method, AuthMethod::ApiToken { .. })
    }

    /// Access to something the caller owns (their runs, terminal sessions and recordings): a
    /// login session has it by ownership alone; an API token only when its own permissions
    /// include `permission` (the one that made the thing: `scripts.run` for runs,
    /// `terminal.open` for terminals). A token narrowed to reading servers does not reach its
    /// owner's recordings or runs.
    pub fn owns(&self, owner_id: Option<&str>, permission: Permission) -> bool {
        owner_id == Some(self.user.id.as_str())
            && (!self.is_api_token() || self.authz.has(permission))
    }

    /// Fails with 403 unless the permission is held (anywhere, for server-scoped ones).
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.authz.has(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {permission} permission"
            )))
        }
    }

    /// Fails with 403 `step_up_required` unless the session re-proved its user (password or
    /// TOTP code, `POST /auth/step-up`) within the configured window.
    pub fn require_step_up(&self, state: &AppState, what: &str) -> ApiResult<()> {
        let window = i64::try_from(state.config.step_up_window.as_millis()).unwrap_or(i64::MAX);
        match self.step_up_at {
            Some(t) if state.now_ms().saturating_sub(t) <= window => Ok(()),
            _ => Err(ApiError::forbidden(format!(
                "{what} needs your password or an authentication code again"
            ))
            .with_code("step_up_required")),
        }
    }

    /// Managing an account (editing it, resetting its password or 2FA, deleting it, ending its
    /// sessions, revoking its API tokens or its terminals) is as good as taking it over:
    /// allowed only over accounts whose every role the caller covers (no more than the caller
    /// holds). 403 otherwise.
    pub fn require_covers(&self, username: &str, roles: &[RoleRow]) -> ApiResult<()> {
        for role in roles {
            if !self.authz.covers(&grant_of(role)?) {
                return Err(ApiError::forbidden(format!(
                    "{username} holds the role {}, which grants more than you hold",
                    role.name
                )));
            }
        }
        Ok(())
    }

    /// Whether a server with these tags is visible to the caller.
    pub fn can_see_server(&self, tags: &[String]) -> bool {
        self.authz.can_on_server(Permission::ServersRead, tags)
    }

    /// For an action on an existing server: 404 if the caller cannot see it (so its existence
    /// is not revealed), 403 if they can see it but lack `permission` on it.
    pub fn require_on_server(&self, permission: Permission, tags: &[String]) -> ApiResult<()> {
        if !self.can_see_server(tags) {
            return Err(ApiError::not_found("server"));
        }
        if !self.authz.can_on_server(permission, tags) {
            return Err(ApiError::forbidden(format!(
                "this needs the {permission} permission on this server"
            )));
        }
        Ok(())
    }

    /// Tags that limit which servers are visible: `None` for all servers.
    pub fn visible_tags(&self) -> Option<BTreeSet<String>> {
        match self.authz.scope_of(Permission::ServersRead) {
            Some(Scope::All) => None,
            Some(Scope::Tags(t)) => Some(t),
            None => Some(BTreeSet::new()),
        }
    }
}

/// A caller who logged in, with nothing pending: the extractor of the routes that manage the
/// account itself (its sessions, API tokens, 2FA), which API tokens may never call — a token
/// leaked from a script must not be able to mint more tokens, end its owner's sessions or
/// take over the account.
#[derive(Debug, Clone)]
pub struct SessionPrincipal(pub Principal);

/// Like [`SessionPrincipal`], for the routes also open to a session that still owes a 2FA
/// set-up or a password change.
#[derive(Debug, Clone)]
pub struct PendingSession(pub Principal);

fn session_required() -> ApiError {
    ApiError::forbidden("API tokens cannot do this: it needs a login session")
        .with_code("session_required")
}

impl std::ops::Deref for SessionPrincipal {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl std::ops::Deref for PendingSession {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequestParts<AppState> for SessionPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let p = Principal::from_request_parts(parts, state).await?;
        if p.is_api_token() {
            return Err(session_required());
        }
        Ok(Self(p))
    }
}

impl FromRequestParts<AppState> for PendingSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let PendingPrincipal(p) = PendingPrincipal::from_request_parts(parts, state).await?;
        if p.is_api_token() {
            return Err(session_required());
        }
        Ok(Self(p))
    }
}

/// Turns a stored role into the grant it gives.
pub fn grant_of(role: &RoleRow) -> ApiResult<Grant> {
    let names: Vec<String> = serde_json::from_str(&role.permissions).map_err(ApiError::internal)?;
    let permissions = names
        .iter()
        .filter_map(|n| n.parse::<Permission>().ok())
        .collect();
    let scope = match &role.server_tags {
        None => Scope::All,
        Some(json) => {
            Scope::Tags(serde_json::from_str::<BTreeSet<String>>(json).map_err(ApiError::internal)?)
        }
    };
    Ok(Grant { permissions, scope })
}

/// Loads an account's roles and the decisions they allow.
pub async fn load_authz(state: &AppState, user_id: &str) -> ApiResult<(Vec<RoleRow>, Authz)> {
    let roles = roles::for_user(&state.db.pool, user_id).await?;
    let grants = roles.iter().map(grant_of).collect::<ApiResult<Vec<_>>>()?;
    Ok((roles, Authz::new(grants)))
}

/// The permissions an API token is limited to, from its stored JSON list (names this version
/// does not know are skipped).
pub(crate) fn token_permissions(json: &str) -> serde_json::Result<BTreeSet<Permission>> {
    Ok(serde_json::from_str::<Vec<String>>(json)?
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Whether the organization requires 2FA of everyone.
pub async fn org_requires_totp(state: &AppState, org_id: &str) -> ApiResult<bool> {
    let value =
        steward_db::settings::get(&state.db.pool, org_id, steward_db::settings::REQUIRE_TOTP)
            .await?;
    Ok(value.as_deref() == Some("true"))
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn unauthenticated() -> ApiError {
    ApiError::unauthorized("unauthenticated", "authentication required")
}

async fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<Principal> {
    let client = client_info(parts, state);
    let now = state.now_ms();
    let token = bearer(parts)
        .or_else(|| {
            let name = cookies::names(state.config.secure_cookies).access;
            cookies::get(&parts.headers, name)
        })
        .ok_or_else(unauthenticated)?;

    let mut step_up_at = None;
    let (user_id, method, restrict) = if token.starts_with(tokens::API_TOKEN_PREFIX) {
        let row = api_tokens::get_by_hash(&state.db.pool, &tokens::hash_token(&token))
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid_token", "API token is not valid"))?;
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "API token is revoked or expired",
            ));
        }
        // Record use at most once a minute, to keep reads from turning into writes.
        if row.last_used_at.is_none_or(|t| now - t > 60_000) {
            api_tokens::touch(&state.db.pool, &row.id, now).await?;
        }
        let allowed = token_permissions(&row.permissions).map_err(ApiError::internal)?;
        (
            row.user_id,
            AuthMethod::ApiToken { token_id: row.id },
            Some(allowed),
        )
    } else {
        let claims: jwt::Claims = state.jwt.verify(&token).ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "access token is invalid or expired")
        })?;
        let session = sessions::get(&state.db.pool, &claims.sid)
            .await?
            .ok_or_else(unauthenticated)?;
        if session.revoked_at.is_some()
            || session.expires_at <= now
            || session.user_id != claims.sub
        {
            return Err(ApiError::unauthorized(
                "session_ended",
                "the session has ended; log in again",
            ));
        }
        // Shown in the session list; written at most once a minute, as for API tokens.
        if now - session.last_seen_at > 60_000 {
            sessions::touch(&state.db.pool, &session.id, now).await?;
        }
        step_up_at = session.step_up_at;
        (
            claims.sub,
            AuthMethod::Session {
                session_id: session.id,
            },
            None,
        )
    };

    let user = users::get(&state.db.pool, steward_core::DEFAULT_ORG_ID, &user_id)
        .await?
        .ok_or_else(unauthenticated)?;
    if user.disabled_at.is_some() {
        return Err(ApiError::unauthorized(
            "account_disabled",
            "this account is disabled",
        ));
    }
    let (roles, authz) = load_authz(state, &user.id).await?;
    let authz = match &restrict {
        Some(allowed) => authz.restrict_to(allowed),
        None => authz,
    };
    let totp_required = user.require_totp != 0 || org_requires_totp(state, &user.org_id).await?;
    Ok(Principal {
        user,
        roles,
        authz,
        method,
        client,
        totp_required,
        step_up_at,
    })
}

impl FromRequestParts<AppState> for PendingPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Self(p.clone()));
        }
        let p = authenticate(parts, state).await?;
        parts.extensions.insert(p.clone());
        Ok(Self(p))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let PendingPrincipal(p) = PendingPrincipal::from_request_parts(parts, state).await?;
        if p.session_id().is_some() {
            if p.totp_setup_required() {
                return Err(
                    ApiError::forbidden("two-factor authentication must be set up first")
                        .with_code("totp_setup_required"),
                );
            }
            if p.password_change_required() {
                return Err(ApiError::forbidden("the password must be changed first")
                    .with_code("password_change_required"));
            }
        }
        Ok(p)
    }
}
