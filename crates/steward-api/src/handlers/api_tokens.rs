//! Personal API tokens for scripts: shown once, stored hashed, limited to a subset of the
//! owner's permissions (and always to what the owner currently holds).
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::Permission;
use steward_db::api_tokens::{self, ApiTokenRow};
use steward_proto::{ApiToken, CreateApiTokenRequest, CreatedApiToken, ErrorBody};

use super::{opt_time, tags, time};
use crate::auth::SessionPrincipal;
use crate::error::ApiResult;
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;

pub(crate) fn view(r: ApiTokenRow) -> ApiToken {
    let permissions = serde_json::from_str::<Vec<String>>(&r.permissions)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.parse::<Permission>().ok())
        .collect();
    ApiToken {
        id: r.id,
        name: r.name,
        prefix: r.token_prefix,
        permissions,
        created_at: time(r.created_at),
        expires_at: opt_time(r.expires_at),
        last_used_at: opt_time(r.last_used_at),
        revoked: r.revoked_at.is_some(),
    }
}

/// The caller's tokens.
#[utoipa::path(operation_id = "api_tokens_list", get, path = "/api/v1/api-tokens", tag = tags::TOKENS, responses((status = 200, body = [ApiToken])))]
pub async fn list(
    State(st): State<AppState>,
    p: SessionPrincipal,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(
        api_tokens::list_for_user(&st.db.pool, &p.user.id)
            .await?
            .into_iter()
            .map(view)
            .collect(),
    ))
}

/// Creates a token; the secret is in this answer only.
#[utoipa::path(operation_id = "api_tokens_create", post, path = "/api/v1/api-tokens", tag = tags::TOKENS, request_body = CreateApiTokenRequest,
    responses((status = 201, body = CreatedApiToken), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: SessionPrincipal,
    ApiJson(req): ApiJson<CreateApiTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    let issued = steward_services::api_tokens::create(&st, &p, &req).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken {
            token: issued.token.into(),
            api_token: view(issued.row),
        }),
    ))
}

/// Revokes one of the caller's tokens.
#[utoipa::path(operation_id = "api_tokens_revoke", delete, path = "/api/v1/api-tokens/{id}", tag = tags::TOKENS, params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    p: SessionPrincipal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    steward_services::api_tokens::revoke(&st, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
