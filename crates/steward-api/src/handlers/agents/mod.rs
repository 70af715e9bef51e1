//! The agent of a server: the agent's own WebSocket (`/agent/connect`, authenticated by its
//! enrollment token, not a user) and binary download, and for users enrollment, status,
//! revocation and the install and uninstall over SSH.
//!
//! Only HTTP is here; what these routes do is `steward_services::agent_install`. Split by
//! route: `enroll` reads, enrolls and revokes a server's agent, `install` installs and
//! uninstalls it (authorization, step-up and the streamed answer), `download` hands the binary
//! to an enrolled agent; the agent's WebSocket and its token check are here.
mod download;
mod enroll;
mod install;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use steward_db::agents::AgentRow;
use steward_proto::ErrorBody;
use steward_services::agent_install;

use super::tags;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

// Each handler with the `__path_` type its `#[utoipa::path]` generates: `routes!` in
// `openapi.rs` names both as `agents::<handler>`.
pub use download::{__path_download, download};
pub use enroll::{__path_enroll, __path_get, __path_revoke, enroll, get, revoke};
pub use install::{__path_install, __path_uninstall, install, uninstall};

/// The agent holding the enrollment token in `Authorization: Bearer stwa_…`; 401 otherwise.
async fn agent_of(st: &AppState, headers: &HeaderMap) -> ApiResult<AgentRow> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let agent = match token {
        Some(t) => agent_install::by_token(st, t).await?,
        None => None,
    };
    agent.ok_or_else(|| {
        ApiError::unauthorized(
            "unauthenticated",
            "an agent connects with its server's enrollment token",
        )
    })
}

/// The agent's connection: a WebSocket upgrade with `Authorization: Bearer <enrollment
/// token>`. Protocol: `steward_metrics::agent_proto` (JSON text frames: hello, welcome,
/// samples, ack, config).
#[utoipa::path(get, operation_id = "agent_connect", path = "/api/v1/agent/connect", tag = tags::SERVERS, security(("bearer" = [])),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 401, body = ErrorBody, description = "no or unknown enrollment token"), (status = 426, body = ErrorBody, description = "`websocket_required`")))]
pub async fn connect(
    State(st): State<AppState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<axum::response::Response> {
    let agent = agent_of(&st, &headers).await?;
    let Ok(ws) = ws else {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "agents connect with a WebSocket",
        ));
    };
    // A live batch is one snapshot (~2 KiB); the buffer grows for a backfill batch. The
    // default 128 KiB, allocated and zeroed per connection, is 128 MiB for 1,000 agents.
    Ok(ws
        .max_message_size(steward_metrics::agent_proto::MAX_MESSAGE_BYTES)
        .read_buffer_size(16 * 1024)
        .on_upgrade(move |socket| crate::metrics::agent::serve(st, agent, socket)))
}
