//! Replacing a check's definition and deleting a check.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_db::checks::{self, CheckRow};
use steward_proto::{Check, CheckInput, ErrorBody};

use super::{full_view, load, parse_input, require_write, spec_json, target_server};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::audit::Event;
use steward_services::checks::admit;

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
