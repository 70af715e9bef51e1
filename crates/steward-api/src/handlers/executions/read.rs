//! Reading runs: one run with every host's outcome and output, and the history.
use axum::Json;
use axum::extract::State;
use steward_core::Permission;
use steward_db::executions::{self, ExecutionFilter};
use steward_proto::{ErrorBody, Execution, ExecutionDetail, ExecutionPage, ExecutionQuery};

use super::{execution_view, sees_all, stored_detail, visible};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath};
use crate::handlers::tags;
use crate::state::AppState;

/// A run with every host's outcome and output.
#[utoipa::path(get, operation_id = "executions_get", path = "/api/v1/executions/{id}", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 200, body = ExecutionDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<ExecutionDetail>> {
    let row = visible(&st, &p, &id).await?;
    if let Some(live) = st.executions.get(&row.id) {
        return Ok(Json(live.snapshot()));
    }
    Ok(Json(stored_detail(&st, &row).await?))
}

/// The run history, newest first: your own runs, or everyone's with `audit.read`.
#[utoipa::path(get, operation_id = "executions_list", path = "/api/v1/executions", tag = tags::SCRIPTS, params(ExecutionQuery),
    responses((status = 200, body = ExecutionPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Json<ExecutionPage>> {
    if !p.authz.has(Permission::ScriptsRun) && !sees_all(&p) {
        return Err(ApiError::forbidden(
            "this needs the scripts.run or audit.read permission",
        ));
    }
    let q: ExecutionQuery = ApiQuery::from_uri(&uri)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    if let Some(s) = &q.status
        && !["running", "finished", "cancelled", "interrupted"].contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "status must be running, finished, cancelled or interrupted",
        ));
    }
    for (name, v) in [("script_id", &q.script_id), ("server_id", &q.server_id)] {
        if let Some(v) = v
            && uuid::Uuid::parse_str(v).is_err()
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} is not an id"),
            ));
        }
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| ApiError::bad_request("invalid_query", "cursor is not valid"))?,
        ),
    };
    let mine = q.mine.unwrap_or(false) || !sees_all(&p);
    let rows = executions::list(
        &st.db.pool,
        &ExecutionFilter {
            org_id: p.user.org_id.clone(),
            created_by: mine.then(|| p.user.id.clone()),
            status: q.status.clone(),
            script_id: q.script_id.clone(),
            server_id: q.server_id.clone(),
            before,
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Execution> = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            let mut e = execution_view(r);
            if let Some(live) = st.executions.get(&r.id) {
                e.summary = live.snapshot().execution.summary;
            }
            e
        })
        .collect();
    let next_cursor = if more {
        rows.get(limit as usize - 1)
            .map(|r| format!("{}_{}", r.created_at, r.id))
    } else {
        None
    };
    Ok(Json(ExecutionPage { items, next_cursor }))
}
