//! Adding a check (stored by `steward_services::checks::insert`).
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::Permission;
use steward_proto::{Check, CheckInput, ErrorBody};

use super::{full_view, parse_input, require_write, target_server};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::checks::insert;

/// Adds a health check; it runs for the first time within seconds.
#[utoipa::path(post, operation_id = "checks_create", path = "/api/v1/checks", tag = tags::CHECKS, request_body = CheckInput,
    responses((status = 201, body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such server"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CheckInput>,
) -> ApiResult<(StatusCode, Json<Check>)> {
    p.require(Permission::ChecksWrite)?;
    let def = parse_input(&req)?;
    let server = target_server(&st, &p, req.server_id.as_deref()).await?;
    require_write(&p, server.as_ref())?;
    let row = insert(&st, &p, def, server.as_ref(), None).await?;
    Ok((StatusCode::CREATED, Json(full_view(&st, row).await?)))
}
