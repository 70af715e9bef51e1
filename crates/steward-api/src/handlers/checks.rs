//! Health checks: list (with the last run and uptime), create, read, change, delete, results
//! for the chart, run now, and accepting a scan's proposal as a check.
//!
//! Who may do what: a check attached to a server is seen by whoever sees the server and
//! changed with `checks.write` on the server's tags; a standalone check concerns no server, so
//! it is seen with `servers.read` on every server and changed with `checks.write` on every
//! server. Checks make requests from the hub, so every change and every manual run is audited,
//! a definition naming an address checks may not reach is refused (`steward_services::checks::admit`),
//! and manual runs are rate-limited per user and per check.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::rbac::Scope;
use steward_core::validate::Name;
use steward_core::{Permission, ValidationError};
use steward_db::checks::{self, CheckFilter, CheckRow, UptimeRow};
use steward_db::proposals::{self, ProposalRow};
use steward_db::servers::ServerRow;
use steward_proto::{
    Check, CheckInput, CheckLast, CheckQuery, CheckResultPoint, CheckResultQuery, CheckResults,
    CheckSpec, CheckStatus, ErrorBody, TcpCheck, Uptime,
};

use super::servers::visible;
use super::{tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, clean_query_text};
use crate::rate_limit::Limit;
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::checks::{admit, run_and_store, spec_of};

/// Most results returned for the chart.
const MAX_RESULTS: i64 = 5000;
/// Interval bounds (seconds).
const INTERVAL: (u32, u32) = (10, 86_400);
/// Timeout bounds (seconds).
const TIMEOUT: (u32, u32) = (1, 60);
/// Manual runs one user may start.
const RUNS_PER_USER: Limit = Limit {
    max: 10,
    window: std::time::Duration::from_secs(60),
};
/// Manual runs of one check, whoever starts them.
const RUNS_PER_CHECK: Limit = Limit {
    max: 5,
    window: std::time::Duration::from_secs(60),
};

fn view(r: CheckRow, uptime: UptimeRow) -> ApiResult<Check> {
    let spec = spec_of(&r)?;
    let last = match (
        r.last_at,
        r.last_status.as_deref().and_then(CheckStatus::parse),
    ) {
        (Some(at), Some(status)) => Some(CheckLast {
            at: time(at),
            status,
            latency_ms: r.last_latency_ms,
            message: r.last_message.clone().unwrap_or_default(),
            http_status: r.last_http_status,
            cert_days_left: r.last_cert_days,
        }),
        _ => None,
    };
    Ok(Check {
        spec,
        last,
        uptime: Uptime {
            h24: uptime.h24,
            d7: uptime.d7,
            d30: uptime.d30,
        },
        interval_secs: r.interval_secs,
        timeout_secs: r.timeout_secs,
        enabled: r.enabled != 0,
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        id: r.id,
        name: r.name,
        server_id: r.server_id,
        server_name: r.server_name,
        proposal_id: r.proposal_id,
    })
}

/// The view of one check, with its uptime.
async fn full_view(st: &AppState, r: CheckRow) -> ApiResult<Check> {
    let uptime = checks::uptime(&st.db.pool, &r.org_id, st.now_ms())
        .await?
        .remove(&r.id)
        .unwrap_or_default();
    view(r, uptime)
}

/// Whether the caller sees every server (and so standalone checks).
fn sees_everything(p: &Principal) -> bool {
    p.visible_tags().is_none()
}

/// A check the caller can see, with its server; 404 otherwise.
async fn load(st: &AppState, p: &Principal, id: &str) -> ApiResult<(CheckRow, Option<ServerRow>)> {
    let row = checks::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    let server = match &row.server_id {
        Some(sid) => Some(
            visible(st, p, sid)
                .await
                .map_err(|_| ApiError::not_found("check"))?,
        ),
        None if sees_everything(p) => None,
        None => return Err(ApiError::not_found("check")),
    };
    Ok((row, server))
}

/// 403 unless the caller may change checks of `server` (or standalone checks).
fn require_write(p: &Principal, server: Option<&ServerRow>) -> ApiResult<()> {
    let allowed = match server {
        Some(s) => p.authz.can_on_server(Permission::ChecksWrite, &s.tags),
        None => p.authz.scope_of(Permission::ChecksWrite) == Some(Scope::All),
    };
    if allowed {
        Ok(())
    } else if server.is_some() {
        Err(ApiError::forbidden(
            "this needs the checks.write permission on this server",
        ))
    } else {
        Err(ApiError::forbidden(
            "a check that belongs to no server needs the checks.write permission on every server",
        ))
    }
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ApiError {
    ValidationError::new(field, why).into()
}

/// A validated definition.
struct Definition {
    name: String,
    spec: CheckSpec,
    interval_secs: i64,
    timeout_secs: i64,
    enabled: bool,
}

fn parse_input(req: &CheckInput) -> ApiResult<Definition> {
    let name = Name::parse(&req.name)?.into_inner();
    steward_checks::validate(&req.spec).map_err(|e| invalid(e.field, e.message))?;
    let interval = req.interval_secs.unwrap_or(60);
    if !(INTERVAL.0..=INTERVAL.1).contains(&interval) {
        return Err(invalid(
            "interval_secs",
            format!("must be {} to {} seconds", INTERVAL.0, INTERVAL.1),
        ));
    }
    let timeout = req.timeout_secs.unwrap_or(10.min(interval - 1));
    if !(TIMEOUT.0..=TIMEOUT.1).contains(&timeout) || timeout >= interval {
        return Err(invalid(
            "timeout_secs",
            format!(
                "must be {} to {} seconds and shorter than the interval",
                TIMEOUT.0, TIMEOUT.1
            ),
        ));
    }
    let mut spec = req.spec.clone();
    // Stored trimmed, as checked.
    match &mut spec {
        CheckSpec::Http(h) => h.url = h.url.trim().to_string(),
        CheckSpec::Tcp(t) => t.host = t.host.trim().to_string(),
        CheckSpec::Dns(d) => {
            d.name = d.name.trim().to_string();
            d.resolver = d.resolver.as_ref().map(|r| r.trim().to_string());
        }
    }
    Ok(Definition {
        name,
        spec,
        interval_secs: i64::from(interval),
        timeout_secs: i64::from(timeout),
        enabled: req.enabled.unwrap_or(true),
    })
}

/// The server a check is to belong to: visible to the caller (404 otherwise).
async fn target_server(
    st: &AppState,
    p: &Principal,
    server_id: Option<&str>,
) -> ApiResult<Option<ServerRow>> {
    match server_id {
        None => Ok(None),
        Some(id) => {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(ApiError::not_found("server"));
            }
            Ok(Some(visible(st, p, id).await?))
        }
    }
}

fn spec_json(spec: &CheckSpec) -> ApiResult<String> {
    serde_json::to_string(spec).map_err(ApiError::internal)
}

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

/// Stores a new check and its audit event; returns it as stored.
async fn insert(
    st: &AppState,
    p: &Principal,
    def: Definition,
    server: Option<&ServerRow>,
    proposal: Option<&ProposalRow>,
) -> ApiResult<CheckRow> {
    admit(st, &p.user.org_id, &def.spec).await?;
    let now = st.now_ms();
    let row = CheckRow {
        id: steward_db::new_id(),
        org_id: p.user.org_id.clone(),
        server_id: server.map(|s| s.id.clone()),
        name: def.name,
        kind: def.spec.kind().into(),
        spec: spec_json(&def.spec)?,
        interval_secs: def.interval_secs,
        timeout_secs: def.timeout_secs,
        enabled: i64::from(def.enabled),
        proposal_id: proposal.map(|pr| pr.id.clone()),
        created_by: Some(p.user.id.clone()),
        created_at: now,
        updated_at: now,
        next_run_at: now,
        last_at: None,
        last_status: None,
        last_latency_ms: None,
        last_message: None,
        last_http_status: None,
        last_cert_days: None,
        server_name: server.map(|s| s.name.clone()),
    };
    let mut tx = st.db.begin().await?;
    checks::insert(&mut *tx, &row).await?;
    if let Some(pr) = proposal
        && !proposals::accept(&mut *tx, &pr.id, now, &p.user.id).await?
    {
        // Accepted by someone else meanwhile: dropping the transaction drops the check.
        return Err(accepted_already());
    }
    Event::by(p, "check.create", now)
        .target("check", &row.id, &row.name)
        .details(json!({
            "kind": row.kind,
            "spec": def.spec,
            "server_id": row.server_id,
            "interval_secs": row.interval_secs,
            "timeout_secs": row.timeout_secs,
            "enabled": def.enabled,
            "proposal_id": row.proposal_id,
        }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

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
    admit(&st, &p.user.org_id, &def.spec).await?;
    let now = st.now_ms();
    let spec = spec_json(&def.spec)?;
    let old_spec: serde_json::Value = serde_json::from_str(&old.spec).unwrap_or_default();
    let mut changes = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
        if from != to {
            changes.insert(field.into(), json!({ "from": from, "to": to }));
        }
    };
    note("name", json!(old.name), json!(def.name));
    note(
        "server_id",
        json!(old.server_id),
        json!(server.as_ref().map(|s| &s.id)),
    );
    note(
        "spec",
        old_spec,
        serde_json::to_value(&def.spec).map_err(ApiError::internal)?,
    );
    note(
        "interval_secs",
        json!(old.interval_secs),
        json!(def.interval_secs),
    );
    note(
        "timeout_secs",
        json!(old.timeout_secs),
        json!(def.timeout_secs),
    );
    note("enabled", json!(old.enabled != 0), json!(def.enabled));
    let row = CheckRow {
        server_id: server.as_ref().map(|s| s.id.clone()),
        server_name: server.as_ref().map(|s| s.name.clone()),
        name: def.name,
        kind: def.spec.kind().into(),
        spec,
        interval_secs: def.interval_secs,
        timeout_secs: def.timeout_secs,
        enabled: i64::from(def.enabled),
        updated_at: now,
        next_run_at: now,
        ..old
    };
    let mut tx = st.db.begin().await?;
    checks::update(&mut *tx, &row).await?;
    Event::by(&p, "check.update", now)
        .target("check", &row.id, &row.name)
        .details(json!({ "changes": changes }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    // Enabling, disabling or moving a check can change a server's status.
    st.live.invalidate();
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
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    checks::delete(&mut *tx, &old.id).await?;
    Event::by(&p, "check.delete", now)
        .target("check", &old.id, &old.name)
        .details(json!({ "kind": old.kind, "server_id": old.server_id }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    Ok(StatusCode::NO_CONTENT)
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

/// Runs a check now (also a disabled one), stores the result and returns the check. At most
/// 10 manual runs a minute per user, and 5 a minute per check.
#[utoipa::path(post, operation_id = "checks_run", path = "/api/v1/checks/{id}/run", tag = tags::CHECKS, params(("id" = String, Path)),
    responses((status = 200, body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "`rate_limited`: too many manual runs; see Retry-After")))]
pub async fn run(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Check>> {
    let (row, server) = load(&st, &p, &id).await?;
    require_write(&p, server.as_ref())?;
    let limited = async {
        RUNS_PER_USER
            .take(
                &st,
                &format!("check_run:user:{}", p.user.id),
                "you started too many check runs",
            )
            .await?;
        RUNS_PER_CHECK
            .take(
                &st,
                &format!("check_run:check:{}", row.id),
                "this check was run too often",
            )
            .await
    };
    if let Err(e) = limited.await {
        if e.status == StatusCode::TOO_MANY_REQUESTS {
            Event::by(&p, "check.run", st.now_ms())
                .target("check", &row.id, &row.name)
                .outcome(Outcome::Denied)
                .details(json!({ "reason": "rate_limited" }))
                .write(&st.db.pool)
                .await?;
        }
        return Err(e);
    }
    let result = run_and_store(&st, &row).await?;
    Event::by(&p, "check.run", st.now_ms())
        .target("check", &row.id, &row.name)
        .outcome(if result.status == CheckStatus::Down {
            Outcome::Failure
        } else {
            Outcome::Success
        })
        .details(json!({ "status": result.status, "message": result.message }))
        .write(&st.db.pool)
        .await?;
    let row = checks::get(&st.db.pool, &p.user.org_id, &row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    Ok(Json(full_view(&st, row).await?))
}

/// Whether the address only means "this machine", seen from the server a scan ran on.
fn is_local(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "*" | "::" | "localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Turns a `health_check` proposal into a TCP check from the hub to the server's address
/// (a loopback or wildcard address in the proposal meant the server itself).
fn proposal_definition(pr: &ProposalRow, server: &ServerRow) -> ApiResult<Definition> {
    let unsupported = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "proposal_unsupported",
            "only health-check proposals can be accepted as checks",
        )
    };
    if pr.kind != "health_check" {
        return Err(unsupported());
    }
    let spec: serde_json::Value = serde_json::from_str(&pr.spec).map_err(|_| unsupported())?;
    let port = spec["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(unsupported)?;
    let host = match spec["host"].as_str() {
        Some(h) if !is_local(h) => h.to_string(),
        _ => server.host.clone(),
    };
    let service =
        steward_services::discovery::parse::service_name(&pr.service).unwrap_or(&pr.service);
    let service = match spec["container"].as_str() {
        Some(c) => format!("{service} ({c})"),
        None => service.to_string(),
    };
    let name: String = format!("{service} on {}", server.name)
        .chars()
        .take(100)
        .collect();
    let spec = CheckSpec::Tcp(TcpCheck { host, port });
    steward_checks::validate(&spec).map_err(|_| unsupported())?;
    Ok(Definition {
        name: Name::parse(&name)?.into_inner(),
        spec,
        interval_secs: 60,
        timeout_secs: 10,
        enabled: true,
    })
}

fn accepted_already() -> ApiError {
    ApiError::conflict("proposal_accepted", "this proposal was already accepted")
}

/// Accepts a scan's health-check proposal: creates a TCP check of the service's port on the
/// server (every 60 s) and marks the proposal accepted. A dismissed proposal can still be
/// accepted.
#[utoipa::path(post, operation_id = "proposals_accept", path = "/api/v1/proposals/{id}/accept", tag = tags::CHECKS, params(("id" = String, Path)),
    responses((status = 201, body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`proposal_accepted`: already accepted"), (status = 422, body = ErrorBody, description = "`proposal_unsupported`: not a health check")))]
pub async fn proposal_accept(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<Check>)> {
    let pr = proposals::get(&st.db.pool, &p.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("proposal"))?;
    let server = visible(&st, &p, &pr.server_id)
        .await
        .map_err(|_| ApiError::not_found("proposal"))?;
    require_write(&p, Some(&server))?;
    if pr.status == "accepted" {
        return Err(accepted_already());
    }
    let def = proposal_definition(&pr, &server)?;
    let row = insert(&st, &p, def, Some(&server), Some(&pr)).await?;
    Ok((StatusCode::CREATED, Json(full_view(&st, row).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses() {
        for h in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "*",
            "localhost",
            "[::1]",
        ] {
            assert!(is_local(h), "{h}");
        }
        for h in ["10.0.0.5", "db.internal", "192.0.2.1"] {
            assert!(!is_local(h), "{h}");
        }
    }
}
