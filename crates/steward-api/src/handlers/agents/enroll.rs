//! A server's agent for users: its status, enrolling it by hand (token shown once, with the
//! install command) and revoking it. Enrolling and revoking need `servers.write` on the server.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::Permission;
use steward_proto::{AgentEnrollment, AgentInfo, ErrorBody};
use steward_services::agent_install;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::IdPath;
use crate::handlers::servers::visible;
use crate::handlers::tags;
use crate::state::AppState;

/// The server's agent: enrolled, connected, what it reported.
#[utoipa::path(get, operation_id = "agent_get", path = "/api/v1/servers/{id}/agent", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = AgentInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<AgentInfo>> {
    let server = visible(&st, &p, &id).await?;
    Ok(Json(agent_install::status(&st, &st.agents, &server).await?))
}

/// Enrolls the server's agent: a new token (any previous one stops working), shown once,
/// with the commands that install it; the server's metrics now come from the agent.
#[utoipa::path(post, operation_id = "agent_enroll", path = "/api/v1/servers/{id}/agent", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 201, body = AgentEnrollment), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enroll(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<AgentEnrollment>)> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersWrite, &server.tags)?;
    let enrollment = agent_install::enroll(&st, &st.agents, &p, &server).await?;
    Ok((StatusCode::CREATED, Json(enrollment)))
}

/// Revokes the server's agent: its token stops working, a connected agent is disconnected,
/// and the server goes back to agentless collection. Revoking when no agent is enrolled does
/// nothing.
#[utoipa::path(delete, operation_id = "agent_revoke", path = "/api/v1/servers/{id}/agent", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersWrite, &server.tags)?;
    agent_install::revoke(&st, &st.agents, &p, &server, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
