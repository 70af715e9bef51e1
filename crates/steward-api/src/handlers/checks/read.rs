//! Reading checks: the list (with the last run and uptime), one check, and its results for
//! the history chart.
use axum::Json;
use axum::extract::State;
use steward_core::Permission;
use steward_db::checks::{self, CheckFilter};
use steward_proto::{
    Check, CheckQuery, CheckResultPoint, CheckResultQuery, CheckResults, CheckStatus, ErrorBody,
};

use super::{full_view, load, view};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath, clean_query_text};
use crate::handlers::{tags, time};
use crate::state::AppState;

/// Most results returned for the chart.
const MAX_RESULTS: i64 = 5000;

/// Health checks the caller can see, by name, with their last run and uptime.
#[utoipa::path(get, operation_id = "checks_list", path = "/api/v1/checks", tag = tags::CHECKS, params(CheckQuery),
    responses((status = 200, body = [Check]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Json<Vec<Check>>> {
    p.require(Permission::ServersRead)?;
    let q: CheckQuery = ApiQuery::from_uri(&uri)?;
    let query = clean_query_text("q", q.q.as_deref())?;
    if let Some(s) = q.status.as_deref()
        && !["up", "degraded", "down", "pending"].contains(&s)
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "status must be up, degraded, down or pending",
        ));
    }
    if let Some(id) = q.server_id.as_deref()
        && uuid::Uuid::parse_str(id).is_err()
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "server_id must be a server id",
        ));
    }
    let visible_tags = p.visible_tags();
    let rows = checks::list(
        &st.db.pool,
        &CheckFilter {
            org_id: &p.user.org_id,
            server_id: q.server_id.as_deref(),
            status: q.status.as_deref(),
            query: query.as_deref(),
            visible_tags: visible_tags.as_ref(),
        },
    )
    .await?;
    let mut uptime = checks::uptime(&st.db.pool, &p.user.org_id, st.now_ms()).await?;
    let items = rows
        .into_iter()
        .map(|r| {
            let u = uptime.remove(&r.id).unwrap_or_default();
            view(r, u)
        })
        .collect::<ApiResult<_>>()?;
    Ok(Json(items))
}

/// One health check.
#[utoipa::path(get, operation_id = "checks_get", path = "/api/v1/checks/{id}", tag = tags::CHECKS, params(("id" = String, Path)),
    responses((status = 200, body = Check), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Check>> {
    let (row, _) = load(&st, &p, &id).await?;
    Ok(Json(full_view(&st, row).await?))
}

/// A check's runs in the last hours (default 24), oldest first, for the history chart.
#[utoipa::path(get, operation_id = "checks_results", path = "/api/v1/checks/{id}/results", tag = tags::CHECKS, params(("id" = String, Path), CheckResultQuery),
    responses((status = 200, body = CheckResults), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn results(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    uri: axum::http::Uri,
) -> ApiResult<Json<CheckResults>> {
    let (row, _) = load(&st, &p, &id).await?;
    let q: CheckResultQuery = ApiQuery::from_uri(&uri)?;
    let hours = q.hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "hours must be 1 to 720",
        ));
    }
    let since = st.now_ms() - hours * 3_600_000;
    let (rows, truncated) = checks::results(&st.db.pool, &row.id, since, MAX_RESULTS).await?;
    let items = rows
        .into_iter()
        .map(|r| CheckResultPoint {
            at: time(r.at),
            status: CheckStatus::parse(&r.status).unwrap_or(CheckStatus::Down),
            latency_ms: r.latency_ms,
            message: r.message.unwrap_or_default(),
            http_status: r.http_status,
            cert_days_left: r.cert_days,
        })
        .collect();
    Ok(Json(CheckResults { items, truncated }))
}
