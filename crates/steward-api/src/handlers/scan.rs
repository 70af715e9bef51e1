//! Service discovery: scan a server now, its latest scan and what changed, its scan history
//! (each past scan with what changed before it), and the next steps proposed for the
//! databases found.
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use steward_core::Permission;
use steward_db::proposals::{self, ProposalRow};
use steward_db::scans::{self, ScanRow};
use steward_proto::{
    ErrorBody, Proposal, Scan, ScanError, ScanOverview, ScanPage, ScanQuery, ScanReport,
    ScanSummary,
};

use super::servers::visible;
use super::{opt_time, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath};
use crate::state::AppState;
use steward_services::discovery;
use steward_services::discovery::diff;
use steward_services::fleet::Actor;

fn summary(r: &ScanRow) -> ScanSummary {
    ScanSummary {
        id: r.id.clone(),
        trigger: r.trigger_kind.clone(),
        started_at: time(r.started_at),
        finished_at: opt_time(r.finished_at),
        status: r.status.clone(),
        error: r.error_code.as_ref().map(|code| ScanError {
            code: code.clone(),
            message: r.error_message.clone().unwrap_or_default(),
        }),
    }
}

fn report(r: &ScanRow) -> Option<ScanReport> {
    // A result this version cannot read is shown as no result rather than an error.
    r.result
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

fn full(r: &ScanRow) -> Scan {
    let s = summary(r);
    Scan {
        id: s.id,
        server_id: r.server_id.clone(),
        trigger: s.trigger,
        started_at: s.started_at,
        finished_at: s.finished_at,
        status: s.status,
        error: s.error,
        report: report(r),
    }
}

/// The latest scan, the latest successful one and what changed since the one before it.
async fn overview(st: &AppState, server_id: &str) -> ApiResult<ScanOverview> {
    let latest = scans::latest(&st.db.pool, server_id, None, 1).await?;
    let good = scans::latest(&st.db.pool, server_id, Some("succeeded"), 2).await?;
    let current = good.first();
    let previous = good.get(1);
    let changes = match (current.and_then(report), previous.and_then(report)) {
        (Some(now), Some(before)) => diff::changes(&before, &now),
        _ => Vec::new(),
    };
    Ok(ScanOverview {
        latest: latest.first().map(summary),
        current: current.map(full),
        previous_at: previous.map(|p| time(p.started_at)),
        changes,
    })
}

fn proposal_view(r: ProposalRow) -> Proposal {
    Proposal {
        spec: serde_json::from_str(&r.spec).unwrap_or(serde_json::Value::Null),
        created_at: time(r.created_at),
        decided_at: opt_time(r.decided_at),
        id: r.id,
        server_id: r.server_id,
        kind: r.kind,
        service: r.service,
        status: r.status,
    }
}

/// Scans the server now over SSH (read-only commands) and stores the result. A scan that could
/// not reach the server is stored as failed, with its error code, and returned the same way.
#[utoipa::path(post, operation_id = "scan_run", path = "/api/v1/servers/{id}/scan", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = ScanOverview, description = "the stored outcome, also when the scan failed"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "a scan of this server is already running")))]
pub async fn run(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<ScanOverview>> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersWrite, &server.tags)?;
    discovery::scan(
        &st,
        &server,
        &Actor::user(&p, Permission::ServersWrite),
        "user",
    )
    .await?;
    Ok(Json(overview(&st, &server.id).await?))
}

/// The latest scan of the server and what changed since the previous successful one.
#[utoipa::path(get, operation_id = "scan_latest", path = "/api/v1/servers/{id}/scan", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = ScanOverview), (status = 404, body = ErrorBody)))]
pub async fn latest(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<ScanOverview>> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersRead, &server.tags)?;
    Ok(Json(overview(&st, &server.id).await?))
}

/// The server's scans, newest first.
#[utoipa::path(get, operation_id = "scan_history", path = "/api/v1/servers/{id}/scans", tag = tags::SERVERS, params(("id" = String, Path), ScanQuery),
    responses((status = 200, body = ScanPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    uri: axum::http::Uri,
) -> ApiResult<Json<ScanPage>> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersRead, &server.tags)?;
    let q: ScanQuery = ApiQuery::from_uri(&uri)?;
    let limit = q.limit.unwrap_or(20);
    let offset = q.offset.unwrap_or(0);
    if !(1..=200).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200 and offset at least 0",
        ));
    }
    let (rows, total) = scans::page(&st.db.pool, &server.id, limit, offset).await?;
    Ok(Json(ScanPage {
        items: rows.iter().map(summary).collect(),
        total,
        limit,
        offset,
    }))
}

/// One scan of the server, and what changed since the successful scan before it (for a
/// successful scan). `latest` is that scan; `current` is it too when it succeeded.
#[utoipa::path(get, operation_id = "scan_get", path = "/api/v1/servers/{id}/scans/{scan_id}", tag = tags::SERVERS, params(("id" = String, Path), ("scan_id" = String, Path)),
    responses((status = 200, body = ScanOverview), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(st): State<AppState>,
    p: Principal,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<ScanOverview>> {
    // Every id is a UUID: anything else names nothing.
    let Ok(Path((id, scan_id))) = path else {
        return Err(ApiError::not_found("scan"));
    };
    if uuid::Uuid::parse_str(&id).is_err() || uuid::Uuid::parse_str(&scan_id).is_err() {
        return Err(ApiError::not_found("scan"));
    }
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersRead, &server.tags)?;
    let row = scans::get(&st.db.pool, &server.id, &scan_id)
        .await?
        .ok_or_else(|| ApiError::not_found("scan"))?;
    let succeeded = row.status == "succeeded";
    let previous = if succeeded {
        scans::succeeded_before(&st.db.pool, &server.id, row.started_at, &row.id).await?
    } else {
        None
    };
    let changes = match (report(&row), previous.as_ref().and_then(report)) {
        (Some(now), Some(before)) if succeeded => diff::changes(&before, &now),
        _ => Vec::new(),
    };
    Ok(Json(ScanOverview {
        latest: Some(summary(&row)),
        current: succeeded.then(|| full(&row)),
        previous_at: previous.map(|p| time(p.started_at)),
        changes,
    }))
}

/// The next steps proposed for the server's databases (health checks, backup jobs).
#[utoipa::path(get, operation_id = "proposals_list", path = "/api/v1/servers/{id}/proposals", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = Vec<Proposal>), (status = 404, body = ErrorBody)))]
pub async fn proposals_list(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<Proposal>>> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersRead, &server.tags)?;
    let rows = proposals::list_for_server(&st.db.pool, &server.id).await?;
    Ok(Json(rows.into_iter().map(proposal_view).collect()))
}

/// Dismisses a proposal: it is kept (so a re-scan does not propose it again) but set aside.
#[utoipa::path(post, operation_id = "proposals_dismiss", path = "/api/v1/proposals/{id}/dismiss", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = Proposal), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn proposal_dismiss(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Proposal>> {
    let row = discovery::dismiss_proposal(&st, &p, &id).await?;
    Ok(Json(proposal_view(row)))
}
