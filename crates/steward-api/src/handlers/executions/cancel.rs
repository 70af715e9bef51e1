//! Cancelling a run.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::Permission;
use steward_proto::{ErrorBody, ExecutionDetail};

use super::visible;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::IdPath;
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::audit::Event;

/// Cancels a run: hosts not started are cancelled, running commands are stopped.
#[utoipa::path(post, operation_id = "executions_cancel", path = "/api/v1/executions/{id}/cancel", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 202, body = ExecutionDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`not_running`")))]
pub async fn cancel(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<ExecutionDetail>)> {
    let row = visible(&st, &p, &id).await?;
    if !p.owns(row.created_by.as_deref(), Permission::ScriptsRun)
        && !p.authz.has(Permission::SettingsManage)
    {
        return Err(ApiError::forbidden(
            "only who started a run, or an administrator, can cancel it",
        ));
    }
    let Some(live) = st
        .executions
        .get(&row.id)
        .filter(|_| row.status == "running")
    else {
        return Err(ApiError::conflict("not_running", "the run is not running"));
    };
    if !live.cancel(&p.user.username) {
        return Err(ApiError::conflict("not_running", "the run is not running"));
    }
    Event::by(&p, "execution.cancel", st.now_ms())
        .target(
            "execution",
            &row.id,
            row.script_name.as_deref().unwrap_or("ad-hoc command"),
        )
        .write(&st.db.pool)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(live.snapshot())))
}
