//! Who is calling: the [`Principal`] extractor authenticates a request (access token in the
//! `Authorization` header or the session cookie, or a personal API token) and loads what the
//! caller may do, fresh from the database on every request — so disabling a user, revoking a
//! session or changing a role takes effect at once, on every instance.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use steward_db::{api_tokens, sessions, users};

use super::cookies;
use crate::error::{ApiError, ApiResult};
use crate::extract::client_info;
use crate::state::AppState;
use steward_services::auth::{jwt, tokens};
pub use steward_services::principal::{
    AuthMethod, ClientInfo, Principal, grant_of, load_authz, org_requires_totp, token_permissions,
};

/// An authenticated caller who may still have to set up 2FA or change a password: accepted
/// only by the handlers that let them do so (and `me`, `logout`).
#[derive(Debug, Clone)]
pub struct PendingPrincipal(pub Principal);

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
    let (roles, authz) = load_authz(&state.db, &user.id).await?;
    let authz = match &restrict {
        Some(allowed) => authz.restrict_to(allowed),
        None => authz,
    };
    let totp_required =
        user.require_totp != 0 || org_requires_totp(&state.db, &user.org_id).await?;
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
