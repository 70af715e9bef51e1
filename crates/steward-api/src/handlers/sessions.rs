//! Login sessions and API tokens as things to review and end: a user's own sessions
//! (`/auth/sessions`), and, for holders of `users.manage` who cover the account, another
//! user's sessions and API tokens (`/users/{id}/sessions`, `/users/{id}/api-tokens`). Only a
//! login session may call these: an API token can neither end sessions nor manage tokens.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_db::api_tokens;
use steward_db::sessions::{self, SessionRow};
use steward_db::users::UserRow;
use steward_proto::{ApiToken, ErrorBody, RevokedCount, SessionInfo};

use super::{tags, time};
use crate::auth::SessionPrincipal;
use crate::error::ApiResult;
use crate::extract::{IdPair, IdPath};
use crate::state::AppState;

fn view(p: &SessionPrincipal, r: SessionRow) -> SessionInfo {
    SessionInfo {
        current: p.session_id() == Some(r.id.as_str()),
        created_at: time(r.created_at),
        last_seen_at: time(r.last_seen_at),
        expires_at: time(r.expires_at),
        id: r.id,
        source_ip: r.source_ip,
        user_agent: r.user_agent,
    }
}

/// The caller's live sessions, most recently used first; `current` marks this one.
#[utoipa::path(get, operation_id = "auth_sessions_list", path = "/api/v1/auth/sessions", tag = tags::AUTH,
    responses((status = 200, body = [SessionInfo]), (status = 403, body = ErrorBody, description = "`session_required`: API tokens cannot")))]
pub async fn list_own(
    State(st): State<AppState>,
    p: SessionPrincipal,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let rows = sessions::list_live_for_user(&st.db.pool, &p.user.id, st.now_ms()).await?;
    Ok(Json(rows.into_iter().map(|r| view(&p, r)).collect()))
}

/// Ends one of the caller's sessions (ending the current one is logging out).
#[utoipa::path(delete, operation_id = "auth_sessions_revoke", path = "/api/v1/auth/sessions/{id}", tag = tags::AUTH, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no live session of the caller's with this id")))]
pub async fn revoke_own(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    steward_services::sessions::revoke_own(&st, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller except this one.
#[utoipa::path(post, operation_id = "auth_sessions_revoke_others", path = "/api/v1/auth/sessions/revoke-others", tag = tags::AUTH,
    responses((status = 200, body = RevokedCount), (status = 403, body = ErrorBody)))]
pub async fn revoke_others(
    State(st): State<AppState>,
    p: SessionPrincipal,
) -> ApiResult<Json<RevokedCount>> {
    let revoked = steward_services::sessions::revoke_others(&st, &p).await?;
    Ok(Json(RevokedCount { revoked }))
}

/// The user `id`, if the caller may manage their sessions and tokens
/// (`steward_services::sessions::managed`).
async fn managed(st: &AppState, p: &SessionPrincipal, id: &str) -> ApiResult<UserRow> {
    Ok(steward_services::sessions::managed(st, p, id).await?)
}

/// A user's live sessions (needs `users.manage` covering the user).
#[utoipa::path(get, operation_id = "users_sessions_list", path = "/api/v1/users/{id}/sessions", tag = tags::USERS, params(("id" = String, Path)),
    responses((status = 200, body = [SessionInfo]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_for_user(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let user = managed(&st, &p, &id).await?;
    let rows = sessions::list_live_for_user(&st.db.pool, &user.id, st.now_ms()).await?;
    Ok(Json(rows.into_iter().map(|r| view(&p, r)).collect()))
}

/// Ends one of a user's sessions (needs `users.manage` covering the user).
#[utoipa::path(delete, operation_id = "users_sessions_revoke", path = "/api/v1/users/{id}/sessions/{session_id}", tag = tags::USERS, params(("id" = String, Path), ("session_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_for_user(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPair(id, session_id): IdPair,
) -> ApiResult<StatusCode> {
    steward_services::sessions::revoke_for_user(&st, &p, &id, &session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of a user (needs `users.manage` covering the user). On oneself it
/// keeps the current session.
#[utoipa::path(post, operation_id = "users_sessions_revoke_all", path = "/api/v1/users/{id}/sessions/revoke-all", tag = tags::USERS, params(("id" = String, Path)),
    responses((status = 200, body = RevokedCount), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_all_for_user(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPath(id): IdPath,
) -> ApiResult<Json<RevokedCount>> {
    let revoked = steward_services::sessions::revoke_all_for_user(&st, &p, &id).await?;
    Ok(Json(RevokedCount { revoked }))
}

/// A user's API tokens, newest first (needs `users.manage` covering the user).
#[utoipa::path(get, operation_id = "users_api_tokens_list", path = "/api/v1/users/{id}/api-tokens", tag = tags::USERS, params(("id" = String, Path)),
    responses((status = 200, body = [ApiToken]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn tokens_for_user(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let user = managed(&st, &p, &id).await?;
    Ok(Json(
        api_tokens::list_for_user(&st.db.pool, &user.id)
            .await?
            .into_iter()
            .map(super::api_tokens::view)
            .collect(),
    ))
}

/// Revokes one of a user's API tokens (needs `users.manage` covering the user).
#[utoipa::path(delete, operation_id = "users_api_tokens_revoke", path = "/api/v1/users/{id}/api-tokens/{token_id}", tag = tags::USERS, params(("id" = String, Path), ("token_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_token_for_user(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPair(id, token_id): IdPair,
) -> ApiResult<StatusCode> {
    steward_services::sessions::revoke_token_for_user(&st, &p, &id, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
