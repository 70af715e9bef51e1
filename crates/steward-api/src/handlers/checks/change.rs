//! Replacing a check's definition and deleting a check (stored by `steward_services::checks`).
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_proto::{Check, CheckInput, ErrorBody};

use super::{full_view, load, parse_input, require_write, target_server};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::{ApiJson, IdPath};
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::checks;

/// Replaces a check's definition; it runs again within seconds.
#[utoipa::path(put, operation_id = "checks_update", path = "/api/v1/checks/{id}", tag = tags::CHECKS, params(("id" = String, Path)), request_body = CheckInput,
    responses((status = 200, body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<CheckInput>,
) -> ApiResult<Json<Check>> {
    let (old, old_server) = load(&st, &p, &id).await?;
    require_write(&p, old_server.as_ref())?;
    let def = parse_input(&req)?;
    let server = target_server(&st, &p, req.server_id.as_deref()).await?;
    require_write(&p, server.as_ref())?;
    let row = checks::update(&st, &p, old, def, server.as_ref()).await?;
    Ok(Json(full_view(&st, row).await?))
}

/// Deletes a check and its results.
#[utoipa::path(delete, operation_id = "checks_delete", path = "/api/v1/checks/{id}", tag = tags::CHECKS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    let (old, server) = load(&st, &p, &id).await?;
    require_write(&p, server.as_ref())?;
    checks::delete(&st, &p, &old).await?;
    Ok(StatusCode::NO_CONTENT)
}
