//! Adding a check, and storing a new one with its audit event (also for an accepted proposal).
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::Permission;
use steward_db::checks::{self, CheckRow};
use steward_db::proposals::{self, ProposalRow};
use steward_db::servers::ServerRow;
use steward_proto::{Check, CheckInput, ErrorBody};

use super::proposals::accepted_already;
use super::{Definition, full_view, parse_input, require_write, spec_json, target_server};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::audit::Event;
use steward_services::checks::admit;

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
pub(super) async fn insert(
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
