//! The agent of a server: the agent's own WebSocket (`/agent/connect`, authenticated by its
//! enrollment token, not a user), and enrollment, status and revocation for users.
//!
//! Enrolling needs `servers.write` on the server; it creates (or replaces) the token, shown
//! once, and switches the server's collection to `agent`. Revoking deletes the token, ends a
//! connected agent and switches back to agentless collection.
use axum::Json;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;
use steward_core::Permission;
use steward_db::agents::{self, AgentRow};
use steward_proto::{AgentEnrollment, AgentInfo, ErrorBody};

use super::servers::visible;
use super::{opt_time, tags};
use crate::audit::Event;
use crate::auth::Principal;
use crate::auth::tokens::{hash_token, random_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::IdPath;
use crate::state::AppState;

/// Prefix of enrollment tokens, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "stwa_";

fn info(monitoring: &str, row: Option<AgentRow>, connected_here: bool) -> AgentInfo {
    match row {
        None => AgentInfo {
            enrolled: false,
            connected: false,
            monitoring: monitoring.into(),
            enrolled_at: None,
            connected_at: None,
            last_seen_at: None,
            last_seq: 0,
            agent_version: None,
            hostname: None,
            os: None,
            arch: None,
            kernel: None,
        },
        Some(r) => AgentInfo {
            enrolled: true,
            connected: connected_here || r.connected == 1,
            monitoring: monitoring.into(),
            enrolled_at: opt_time(Some(r.created_at)),
            connected_at: opt_time(r.connected_at),
            last_seen_at: opt_time(r.last_seen_at),
            last_seq: r.last_seq,
            agent_version: r.agent_version,
            hostname: r.hostname,
            os: r.os,
            arch: r.arch,
            kernel: r.kernel,
        },
    }
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
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(TOKEN_PREFIX));
    let agent = match token {
        Some(t) => agents::by_token(&st.db.pool, &hash_token(t)).await?,
        None => None,
    };
    let Some(agent) = agent else {
        return Err(ApiError::unauthorized(
            "unauthenticated",
            "an agent connects with its server's enrollment token",
        ));
    };
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

/// The server's agent: enrolled, connected, what it reported.
#[utoipa::path(get, operation_id = "agent_get", path = "/api/v1/servers/{id}/agent", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = AgentInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<AgentInfo>> {
    let server = visible(&st, &p, &id).await?;
    let row = agents::get(&st.db.pool, &server.id).await?;
    Ok(Json(info(
        &server.monitoring,
        row,
        st.agents.is_connected(&server.id),
    )))
}

/// Commands that install the agent as a systemd service: the token in a root-only file,
/// handed to an unprivileged dynamic user through systemd's credentials (`%d`), the service
/// sandboxed (no new privileges, read-only system, no home directories).
fn install_command(hub: &str, token: &str, interval: i64) -> String {
    format!(
        "install -d -m 0700 /etc/steward-agent && \\\n\
         printf '%s\\n' '{token}' > /etc/steward-agent/token && chmod 0600 /etc/steward-agent/token && \\\n\
         install -m 0755 steward-agent /usr/local/bin/steward-agent && \\\n\
         cat > /etc/systemd/system/steward-agent.service <<'UNIT'\n\
         [Unit]\n\
         Description=Steward agent (pushes host metrics to {hub})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\n\
         [Service]\n\
         ExecStart=/usr/local/bin/steward-agent --hub {hub} --token-file %d/token --interval {interval}\n\
         DynamicUser=yes\n\
         LoadCredential=token:/etc/steward-agent/token\n\
         Restart=always\n\
         RestartSec=5\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n\
         UNIT\n\
         systemctl daemon-reload && systemctl enable --now steward-agent"
    )
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
    let token = format!("{TOKEN_PREFIX}{}", random_token(32));
    let now = st.now_ms();
    let replaced = agents::get(&st.db.pool, &server.id).await?.is_some();
    let mut tx = st.db.begin().await?;
    agents::enroll(
        &mut *tx,
        &server.id,
        &server.org_id,
        &hash_token(&token),
        Some(&p.user.id),
        now,
    )
    .await?;
    agents::set_monitoring(&mut *tx, &server.id, "agent", now).await?;
    Event::by(&p, "agent.enroll", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "replaced": replaced }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    // A replaced token must not keep its connection.
    st.agents.disconnect(&server.id);
    let row = agents::get(&st.db.pool, &server.id).await?;
    let hub = st.config.public_url.trim_end_matches('/').to_string();
    let interval = server.metrics_interval_secs.clamp(1, 60);
    Ok((
        StatusCode::CREATED,
        Json(AgentEnrollment {
            install_command: install_command(&hub, &token, interval),
            token: token.into(),
            hub_url: hub,
            agent: info("agent", row, false),
        }),
    ))
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
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    // Idempotent: revoking what is not enrolled changes nothing.
    if !agents::delete(&mut *tx, &server.id).await? {
        return Ok(StatusCode::NO_CONTENT);
    }
    agents::set_monitoring(&mut *tx, &server.id, "agentless", now).await?;
    Event::by(&p, "agent.revoke", now)
        .target("server", &server.id, &server.name)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.agents.disconnect(&server.id);
    Ok(StatusCode::NO_CONTENT)
}
