//! Installing and uninstalling a server's agent over SSH: `servers.write` and a step-up
//! (checked, and a refusal audited, before anything runs), the server's claim (409
//! `agent_busy`), then `steward_services::agent_install`'s flow, answered as JSON or, for the
//! install, streamed as `application/x-ndjson` (`crate::agent_progress`).
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_core::Permission;
use steward_db::servers::ServerRow;
use steward_proto::{
    AgentInstallProgress, AgentInstallRequest, AgentInstallResult, AgentUninstallResult, ErrorBody,
};
use steward_services::ServiceError;
use steward_services::agent_install::{self, Failure};
use steward_services::audit::{Event, Outcome};
use tokio::sync::mpsc;

use crate::agent_progress;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{IdPath, OptionalJson};
use crate::handlers::servers::visible;
use crate::handlers::{step_up, tags};
use crate::state::AppState;

/// Checks `servers.write` on the server and the step-up (inline proof, or a session that
/// stepped up recently); a refusal is audited as `action`, denied.
async fn authorize_install(
    st: &AppState,
    p: &Principal,
    id: &str,
    req: &Option<AgentInstallRequest>,
    action: &str,
    what: &str,
) -> ApiResult<ServerRow> {
    let server = visible(st, p, id).await?;
    p.require_on_server(Permission::ServersWrite, &server.tags)?;
    let check = match req.as_ref().and_then(|r| r.step_up.as_ref()) {
        Some(proof) => step_up::verify(st, p, proof).await,
        None => p
            .require_step_up(st.now_ms(), st.config.step_up_window, what)
            .map_err(ApiError::from),
    };
    if let Err(e) = check {
        Event::by(p, action, st.now_ms())
            .target("server", &server.id, &server.name)
            .outcome(Outcome::Denied)
            .details(json!({ "reason": "step-up required", "code": e.code }))
            .write(&st.db.pool)
            .await?;
        return Err(e);
    }
    Ok(server)
}

/// The answer to a failed install or uninstall: the error, with the steps so far in
/// `details.steps` (a fault, 500 or 503, shows neither).
fn failure(f: Failure) -> ApiError {
    match f.error {
        e @ (ServiceError::Internal(_) | ServiceError::Busy { .. }) => e.into(),
        e => ApiError::from(e).with_details(json!({ "steps": f.steps })),
    }
}

/// Installs the agent on the server over its SSH connection: uploads the hub's binary by SFTP,
/// enrolls a new token (any previous one stops working) written to a 0600 file, installs a
/// systemd unit (system or user) or, without systemd, starts it detached, and waits briefly
/// for it to connect. Needs `servers.write` on the server and a step-up. On failure the error's
/// `details.steps` lists the steps so far. With `Accept: application/x-ndjson` the answer
/// streams each step as it ends, then the result or the error (`AgentInstallProgress` lines);
/// the install then finishes even if the client goes away.
#[utoipa::path(post, operation_id = "agent_install", path = "/api/v1/servers/{id}/agent/install", tag = tags::SERVERS, params(("id" = String, Path)),
    request_body(content = Option<AgentInstallRequest>, description = "optional: `step_up` for API tokens"),
    responses((status = 200, content((AgentInstallResult = "application/json"), (AgentInstallProgress = "application/x-ndjson")), description = "the result; with `Accept: application/x-ndjson`, one `AgentInstallProgress` line per step, then the result or the error (refusals before the install starts — 403, 404, 409 `agent_busy` — are answered as usual)"),
        (status = 403, body = ErrorBody, description = "no permission, or `step_up_required` / `step_up_failed`"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`no_credential`, `host_key_mismatch`, `bad_credential`, `wrong_architecture`, `agent_binary_missing`, `agent_busy`"),
        (status = 502, body = ErrorBody, description = "`unreachable`, `timeout`, `auth_failed`, `ssh_error`, `probe_failed`, `upload_failed`, `install_failed`, `no_permission`")))]
pub async fn install(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<AgentInstallRequest>,
) -> ApiResult<Response> {
    let server =
        authorize_install(&st, &p, &id, &req, "agent.install", "installing the agent").await?;
    let busy = agent_install::claim(&server.id)?;
    if agent_progress::wants_stream(&headers) {
        let (progress, steps) = mpsc::unbounded_channel();
        return Ok(agent_progress::stream(steps, async move {
            agent_install::install(&st, &st.agents, &p, &server, busy, Some(progress))
                .await
                .map_err(failure)
        }));
    }
    let r = agent_install::install(&st, &st.agents, &p, &server, busy, None).await;
    Ok(Json(r.map_err(failure)?).into_response())
}

/// Uninstalls the agent over SSH: stops it (system unit, user unit or detached process),
/// removes its binary, token, unit and logs, then revokes its token and goes back to agentless
/// collection. Needs `servers.write` and a step-up. Nothing is revoked if the server cannot be
/// reached or the files cannot all be removed (`details.steps` says what happened).
#[utoipa::path(post, operation_id = "agent_uninstall", path = "/api/v1/servers/{id}/agent/uninstall", tag = tags::SERVERS, params(("id" = String, Path)),
    request_body(content = Option<AgentInstallRequest>, description = "optional: `step_up` for API tokens"),
    responses((status = 200, body = AgentUninstallResult),
        (status = 403, body = ErrorBody, description = "no permission, or `step_up_required` / `step_up_failed`"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`no_credential`, `host_key_mismatch`, `bad_credential`, `agent_busy`, `no_permission` (system files and no root)"),
        (status = 502, body = ErrorBody, description = "`unreachable`, `timeout`, `auth_failed`, `ssh_error`, `probe_failed`, `uninstall_failed`")))]
pub async fn uninstall(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    OptionalJson(req): OptionalJson<AgentInstallRequest>,
) -> ApiResult<Json<AgentUninstallResult>> {
    let server = authorize_install(
        &st,
        &p,
        &id,
        &req,
        "agent.uninstall",
        "uninstalling the agent",
    )
    .await?;
    let busy = agent_install::claim(&server.id)?;
    let r = agent_install::uninstall(&st, &st.agents, &p, &server, busy, None).await;
    Ok(Json(r.map_err(failure)?))
}
