//! Personal API tokens for scripts: shown once, stored hashed, limited to a subset of the
//! owner's permissions (and always to what the owner currently holds).
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::validate::Name;
use steward_core::{Permission, ValidationError};
use steward_db::api_tokens::{self, ApiTokenRow};
use steward_proto::{ApiToken, CreateApiTokenRequest, CreatedApiToken, ErrorBody};

use super::{opt_time, tags, time};
use crate::auth::SessionPrincipal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;
use steward_services::audit::Event;
use steward_services::auth::tokens;

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
    let now = st.now_ms();
    let name = Name::parse(&req.name)?.into_inner();
    if req.permissions.is_empty() {
        return Err(
            ValidationError::new("permissions", "must name at least one permission").into(),
        );
    }
    if let Some(p) = req
        .permissions
        .iter()
        .find(|perm| p.authz.scope_of(**perm).is_none())
    {
        return Err(ApiError::forbidden(format!(
            "you do not hold {p}, so a token cannot have it"
        )));
    }
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(now + d * 86_400_000),
        Some(_) => {
            return Err(
                ValidationError::new("expires_in_days", "must be between 1 and 3650").into(),
            );
        }
    };
    let mut names: Vec<&str> = req.permissions.iter().map(|p| p.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let token = tokens::new_api_token();
    let row = ApiTokenRow {
        id: steward_db::new_id(),
        org_id: p.user.org_id.clone(),
        user_id: p.user.id.clone(),
        name,
        token_prefix: token.chars().take(12).collect(),
        permissions: serde_json::to_string(&names).map_err(ApiError::internal)?,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = st.db.begin().await?;
    api_tokens::insert(&mut *tx, &row, &tokens::hash_token(&token)).await?;
    Event::by(&p, "api_token.create", now)
        .target("api_token", &row.id, &row.name)
        .details(json!({ "permissions": names, "expires_at": expires_at }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken {
            token: token.into(),
            api_token: view(row),
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
    let now = st.now_ms();
    let row = api_tokens::get_for_user(&st.db.pool, &p.user.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("API token"))?;
    let mut tx = st.db.begin().await?;
    api_tokens::revoke(&mut *tx, &row.id, now).await?;
    Event::by(&p, "api_token.revoke", now)
        .target("api_token", &row.id, &row.name)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
