//! The agent binary, for an enrolled agent's token: the manual install command downloads it
//! with curl.
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use steward_proto::{AgentDownloadQuery, ErrorBody};
use steward_services::agent_install;

use super::agent_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::handlers::tags;
use crate::state::AppState;

/// The agent binary, for the server whose enrollment token is in `Authorization: Bearer
/// stwa_…` (the manual install command downloads it with curl). `arch` (`uname -m` of the
/// server) picks among the hub's binaries; without it the hub's only one, or the one for the
/// hub's own architecture. `X-Steward-Agent-Arch` names the architecture it is built for, as
/// `uname -m` says it.
#[utoipa::path(get, operation_id = "agent_download", path = "/api/v1/agent/download", tag = tags::SERVERS, security(("bearer" = [])),
    params(AgentDownloadQuery),
    responses((status = 200, content_type = "application/octet-stream", body = String, description = "the steward-agent binary",
        headers(("x-steward-agent-arch" = String, description = "the architecture the binary is built for (`uname -m`): x86_64, aarch64 …"))),
        (status = 400, body = ErrorBody, description = "`invalid_query`"),
        (status = 401, body = ErrorBody, description = "no or unknown enrollment token"),
        (status = 404, body = ErrorBody, description = "`agent_binary_missing`: the hub has no agent binary (for that architecture)")))]
pub async fn download(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AgentDownloadQuery>,
) -> ApiResult<axum::response::Response> {
    agent_of(&st, &headers).await?;
    let bins = agent_install::hub_binaries(st.config.agent_binary.as_deref())
        .await
        .map_err(ApiError::internal)?;
    if bins.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "agent_binary_missing",
            "this hub has no steward-agent binary to hand out (see --agent-binary)",
        ));
    }
    let chosen = match q.arch.as_deref() {
        Some(uname) => agent_install::binary_for(&bins, uname).ok_or_else(|| {
            let shown: String = uname.chars().take(32).collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                "agent_binary_missing",
                format!(
                    "this hub has no steward-agent for {shown}; it has {}",
                    agent_install::arch_list(&bins)
                ),
            )
        })?,
        None if bins.len() == 1 => &bins[0],
        None => {
            agent_install::binary_for(&bins, agent_install::binary_arch(&[])).unwrap_or(&bins[0])
        }
    };
    let bytes = tokio::fs::read(&chosen.path)
        .await
        .map_err(ApiError::internal)?;
    let arch = chosen.arch;
    axum::response::Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, bytes.len())
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"steward-agent\"",
        )
        .header("x-steward-agent-arch", arch)
        .body(axum::body::Body::from(bytes))
        .map_err(ApiError::internal)
}
