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
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_core::Permission;
use steward_db::agents::{self, AgentRow};
use steward_db::servers::ServerRow;
use steward_proto::{
    AgentDownloadQuery, AgentEnrollment, AgentInfo, AgentInstallMode, AgentInstallProgress,
    AgentInstallRequest, AgentInstallResult, AgentInstallStep, AgentInstallWarning,
    AgentServiceKind, AgentUninstallResult, ErrorBody,
};
use zeroize::Zeroizing;

use super::servers::visible;
use super::{opt_time, tags};
use crate::agent_progress::{self, Steps};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath, OptionalJson};
use crate::state::AppState;
use steward_services::agent_install::{self, Busy, Probe, step};
use steward_services::audit::{Event, Outcome};
use steward_services::auth::tokens::{hash_token, random_token};
use steward_services::fleet::{self, Actor, ReachError};

/// Prefix of enrollment tokens, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "stwa_";

/// `connected` is true when this instance holds the agent's connection, or when the row says
/// another instance does and the agent was heard from recently (a row left behind by an
/// instance that died is not believed for longer than an agent may stay silent).
fn info(monitoring: &str, row: Option<AgentRow>, connected_here: bool, now_ms: i64) -> AgentInfo {
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
            connected: connected_here
                || (r.connected == 1
                    && r.last_seen_at.is_some_and(|t| {
                        now_ms - t < crate::metrics::agent::SILENT_FOR.as_millis() as i64
                    })),
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

/// The agent holding the enrollment token in `Authorization: Bearer stwa_…`; 401 otherwise.
async fn agent_of(st: &AppState, headers: &HeaderMap) -> ApiResult<AgentRow> {
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
        st.now_ms(),
    )))
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
    let (token, _) = new_token(&st, &p, &server, "enroll").await?;
    let row = agents::get(&st.db.pool, &server.id).await?;
    let hub = st.config.public_url.trim_end_matches('/').to_string();
    let interval = server.metrics_interval_secs.clamp(1, 60);
    let builds = hub_builds(&st).await?;
    Ok((
        StatusCode::CREATED,
        Json(AgentEnrollment {
            install_command: agent_install::manual_command(&hub, &token, interval, &builds),
            token: token.to_string().into(),
            hub_url: hub,
            agent: info("agent", row, false, st.now_ms()),
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
    revoke_agent(&st, &p, &server, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the server's agent token, switches it back to agentless collection, audits
/// `agent.revoke` (with `details`) in the same transaction and disconnects a connected agent.
/// Idempotent: revoking what is not enrolled changes nothing and returns false.
async fn revoke_agent(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    details: Option<serde_json::Value>,
) -> ApiResult<bool> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    if !agents::delete(&mut *tx, &server.id).await? {
        return Ok(false);
    }
    agents::set_monitoring(&mut *tx, &server.id, "agentless", now).await?;
    let mut event = Event::by(p, "agent.revoke", now).target("server", &server.id, &server.name);
    if let Some(d) = details {
        event = event.details(d);
    }
    event.write(&mut *tx).await?;
    tx.commit().await?;
    st.agents.disconnect(&server.id);
    Ok(true)
}

/// Runs an install or uninstall script; a script that could not run at all is a failed
/// `name` step and a 502 `code`.
async fn run_or_fail(
    conn: &steward_ssh::client::Connection,
    script: &str,
    name: &str,
    code: &'static str,
    what: &str,
    steps: &mut Steps,
) -> Result<agent_install::ScriptOutput, Failure> {
    // The script's steps join `steps` (and any progress stream) as it prints them.
    match agent_install::run_script_live(conn, script, |s| steps.push(s)).await {
        Ok(o) => Ok(o),
        Err(e) => {
            steps.push(step(name, false, e.clone()));
            Err(Failure::new(
                StatusCode::BAD_GATEWAY,
                code,
                format!("the {what} script failed: {e}"),
                steps,
            ))
        }
    }
}

/// A new enrollment token for the server (any previous one stops working and its agent is
/// disconnected); the server's metrics now come from the agent. Stored as a hash, audited
/// (`agent.enroll`) in the same transaction.
async fn new_token(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    via: &str,
) -> ApiResult<(Zeroizing<String>, bool)> {
    let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", random_token(32)));
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
    Event::by(p, "agent.enroll", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "replaced": replaced, "via": via }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    // A replaced token must not keep its connection.
    st.agents.disconnect(&server.id);
    Ok((token, replaced))
}

/// The architectures the hub has agent binaries for (the hub's own when it has none).
/// The architectures the hub serves agents for, each with its binary's SHA-256 (which the
/// manual install checks). Without a binary, the hub's own architecture and an empty sum: the
/// download then fails with `agent_binary_missing`.
async fn hub_builds(st: &AppState) -> ApiResult<Vec<(&'static str, String)>> {
    let bins = agent_install::hub_binaries(st.config.agent_binary.as_deref())
        .await
        .unwrap_or_default();
    if bins.is_empty() {
        return Ok(vec![(agent_install::binary_arch(&[]), String::new())]);
    }
    let mut out = Vec::with_capacity(bins.len());
    for b in bins {
        let sum = agent_install::binary_sha256(&b.path)
            .await
            .map_err(ApiError::internal)?;
        out.push((b.arch, sum));
    }
    Ok(out)
}

fn binary_missing(status: StatusCode) -> ApiError {
    ApiError::new(
        status,
        "agent_binary_missing",
        "this hub has no steward-agent binary to hand out (see --agent-binary)",
    )
}

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
        return Err(binary_missing(StatusCode::NOT_FOUND));
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
        Some(proof) => super::step_up::verify(st, p, proof).await,
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

/// A failed install or uninstall: the error, with the steps so far in `details.steps`.
struct Failure {
    error: ApiError,
    steps: Vec<AgentInstallStep>,
}

impl Failure {
    fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        steps: &[AgentInstallStep],
    ) -> Self {
        Self {
            error: ApiError::new(status, code, message),
            steps: steps.to_vec(),
        }
    }

    fn into_error(self) -> ApiError {
        if self.error.status.is_server_error() && !self.error.status.eq(&StatusCode::BAD_GATEWAY) {
            return self.error;
        }
        self.error.with_details(json!({ "steps": self.steps }))
    }
}

/// The HTTP error for a server that cannot be reached.
fn reach_failure(e: &ReachError, steps: &[AgentInstallStep]) -> Failure {
    let message = e.to_string();
    let (status, code) = match e.code() {
        "no_credential" => (StatusCode::CONFLICT, "no_credential"),
        "host_key_mismatch" => (StatusCode::CONFLICT, "host_key_mismatch"),
        "bad_credential" => (StatusCode::CONFLICT, "bad_credential"),
        "auth_failed" => (StatusCode::BAD_GATEWAY, "auth_failed"),
        "unreachable" => (StatusCode::BAD_GATEWAY, "unreachable"),
        "timeout" => (StatusCode::BAD_GATEWAY, "timeout"),
        _ => (StatusCode::BAD_GATEWAY, "ssh_error"),
    };
    Failure::new(status, code, message, steps)
}

/// Connects and probes the server.
async fn connect_and_probe(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    make_tmp: bool,
    steps: &mut Steps,
) -> Result<(steward_ssh::pool::Shared, Probe), Failure> {
    let target = format!("{}@{}:{}", server.ssh_user, server.host, server.port);
    let conn = match fleet::connect(st, server, &Actor::user(p, Permission::ServersWrite)).await {
        Ok(c) => c,
        Err(ReachError::Internal(e)) => {
            return Err(Failure {
                error: e.into(),
                steps: steps.to_vec(),
            });
        }
        Err(e) => {
            steps.push(step("connect", false, format!("{target}: {e}")));
            return Err(reach_failure(&e, steps));
        }
    };
    steps.push(step("connect", true, target));
    let out = agent_install::run_script(&conn, &agent_install::probe_script(make_tmp)).await;
    let probe = out.as_ref().ok().and_then(Probe::from);
    let Some(probe) = probe else {
        let detail = match out {
            Ok(o) => format!("unexpected answer (exit {:?}): {}", o.exit, o.stderr.trim()),
            Err(e) => e,
        };
        steps.push(step("probe", false, detail.clone()));
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "probe_failed",
            format!("could not find out what the server is: {detail}"),
            steps,
        ));
    };
    steps.push(step("probe", true, probe.summary()));
    Ok((conn, probe))
}

/// A warning the scripts printed (by code), with its English text.
fn warning(code: &str, probe: &Probe) -> AgentInstallWarning {
    AgentInstallWarning {
        code: code.into(),
        message: warning_text(code, probe),
    }
}

fn warning_text(code: &str, probe: &Probe) -> String {
    match code {
        "no_boot_start" => "No systemd and no cron on this server: a detached launcher runs the agent and starts it again when it exits, but nothing starts it after a reboot. Install it again after a reboot, or have the server's own init system run the launcher (`start`, next to the token).".into(),
        "runs_as_root" => "Without systemd the agent runs as root; with systemd it would run as the unprivileged steward-agent account.".into(),
        "no_linger" => format!("Lingering could not be enabled for {}: the user service stops when their last session ends and does not start at boot until an administrator runs `loginctl enable-linger {}`.", probe.user, probe.user),
        other => other.to_string(),
    }
}

/// Waits up to `secs` for the server's agent to connect (to this or another instance).
async fn wait_connected(st: &AppState, server_id: &str, secs: u64) -> bool {
    for _ in 0..secs * 4 {
        if st.agents.is_connected(server_id) {
            return true;
        }
        if let Ok(Some(r)) = agents::get(&st.db.pool, server_id).await
            && r.connected == 1
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    false
}

fn mode_name(m: AgentInstallMode) -> &'static str {
    match m {
        AgentInstallMode::System => "system",
        AgentInstallMode::User => "user",
    }
}

fn service_name(s: AgentServiceKind) -> &'static str {
    match s {
        AgentServiceKind::Systemd => "systemd",
        AgentServiceKind::SystemdUser => "systemd-user",
        AgentServiceKind::Detached => "detached",
    }
}

/// The install itself, up to the result; the caller audits.
async fn run_install(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    steps: &mut Steps,
    probe_out: &mut Option<Probe>,
) -> Result<(AgentInstallResult, bool), Failure> {
    let bins = agent_install::hub_binaries(st.config.agent_binary.as_deref())
        .await
        .map_err(|e| Failure {
            error: ApiError::internal(e),
            steps: vec![],
        })?;
    if bins.is_empty() {
        return Err(Failure {
            error: binary_missing(StatusCode::CONFLICT),
            steps: vec![],
        });
    }
    let (conn, probe) = connect_and_probe(st, p, server, true, steps).await?;
    *probe_out = Some(probe.clone());
    let tmp = probe.tmp.clone();
    let result = install_on(st, p, server, &conn, &probe, &bins, steps).await;
    // The temporary directory (binary, token copy, unit) goes whatever happened.
    if let Some(tmp) = tmp {
        let rm = format!("rm -rf {}", steward_services::runner::shell_quote(&tmp));
        match conn.exec(&rm, std::time::Duration::from_secs(30)).await {
            Ok(o) if o.exit_code == Some(0) => {
                steps.push(step("cleanup", true, format!("removed {tmp}")))
            }
            Ok(o) => steps.push(step(
                "cleanup",
                false,
                format!(
                    "could not remove {tmp}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )),
            Err(e) => steps.push(step(
                "cleanup",
                false,
                format!("could not remove {tmp}: {e}"),
            )),
        }
    }
    match result {
        Ok((mut result, replaced)) => {
            result.steps = steps.to_vec();
            Ok((result, replaced))
        }
        Err(mut f) => {
            // The failure's steps, with the cleanup after it.
            f.steps = steps.to_vec();
            Err(f)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn install_on(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    conn: &steward_ssh::client::Connection,
    probe: &Probe,
    bins: &[agent_install::HubBinary],
    steps: &mut Steps,
) -> Result<(AgentInstallResult, bool), Failure> {
    let available = agent_install::arch_list(bins);
    let Some(chosen) = agent_install::binary_for(bins, &probe.arch) else {
        steps.push(step(
            "architecture",
            false,
            format!(
                "the server is {}, the hub has agents for {available}",
                probe.arch
            ),
        ));
        return Err(Failure::new(
            StatusCode::CONFLICT,
            "wrong_architecture",
            format!(
                "the server is {} but the hub has steward-agent builds for {available} only; add a build for {} to --agent-binary (a directory may hold one per architecture)",
                probe.arch, probe.arch
            ),
            steps,
        ));
    };
    let binary = match tokio::fs::read(&chosen.path).await {
        Ok(b) => b,
        Err(e) => {
            return Err(Failure {
                error: ApiError::internal(e),
                steps: steps.to_vec(),
            });
        }
    };
    let binary = binary.as_slice();
    steps.push(step(
        "architecture",
        true,
        format!(
            "{} runs the hub's {} build ({})",
            probe.arch,
            chosen.arch,
            chosen.path.display()
        ),
    ));
    let Some(tmp) = probe.tmp.clone() else {
        steps.push(step(
            "upload",
            false,
            "could not make a private temporary directory (mktemp -d)",
        ));
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "upload_failed",
            "could not make a private temporary directory on the server",
            steps,
        ));
    };
    let hub = st.config.public_url.trim_end_matches('/').to_string();
    let interval = server.metrics_interval_secs.clamp(1, 60);
    let unit = match probe.service() {
        AgentServiceKind::Systemd => agent_install::system_unit(&hub, interval),
        _ => agent_install::user_unit(&hub, interval),
    };
    let upload = async {
        conn.upload(&format!("{tmp}/steward-agent"), binary, 0o700)
            .await?;
        conn.upload(
            &format!("{tmp}/steward-agent.service"),
            unit.as_bytes(),
            0o600,
        )
        .await
    };
    if let Err(e) = upload.await {
        steps.push(step("upload", false, e.to_string()));
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "upload_failed",
            format!("uploading the agent failed: {e}"),
            steps,
        ));
    }
    steps.push(step(
        "upload",
        true,
        format!("{} bytes by SFTP to {tmp}", binary.len()),
    ));

    // From here on the server's old token no longer works.
    let (token, replaced) = new_token(st, p, server, "install")
        .await
        .map_err(|e| Failure {
            error: e,
            steps: steps.to_vec(),
        })?;
    steps.push(step(
        "enroll",
        true,
        if replaced {
            "new token; the previous one no longer works"
        } else {
            "new token"
        },
    ));
    let mut line = Zeroizing::new(String::with_capacity(token.len() + 1));
    line.push_str(&token);
    line.push('\n');
    drop(token);
    if let Err(e) = conn
        .upload(&format!("{tmp}/token"), line.as_bytes(), 0o600)
        .await
    {
        steps.push(step("token", false, e.to_string()));
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "upload_failed",
            format!("writing the token failed: {e}"),
            steps,
        ));
    }
    drop(line);
    steps.push(step("token", true, "written by SFTP, mode 0600"));

    let script = agent_install::install_script(probe, &tmp, &hub, interval);
    let out = run_or_fail(conn, &script, "install", "install_failed", "install", steps).await?;
    if out.failed() {
        let failed = out.steps.iter().find(|s| !s.ok);
        let detail = match failed {
            Some(s) => format!("{}: {}", s.name, s.detail),
            None => format!("exit {:?}: {}", out.exit, out.stderr.trim()),
        };
        if failed.is_none() {
            steps.push(step("install", false, detail.clone()));
        }
        let no_permission = detail.contains("ermission denied") || detail.contains("not permitted");
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            if no_permission {
                "no_permission"
            } else {
                "install_failed"
            },
            format!("installing the agent failed at {detail}"),
            steps,
        ));
    }
    let mut warnings: Vec<AgentInstallWarning> =
        out.warnings.iter().map(|w| warning(w, probe)).collect();
    if wait_connected(st, &server.id, 10).await {
        steps.push(step(
            "connected",
            true,
            format!("the agent connected to {hub}"),
        ));
    } else {
        warnings.push(AgentInstallWarning {
            code: "not_connected".into(),
            message: format!(
                "The agent runs but has not connected yet: check that the server can reach {hub}."
            ),
        });
    }
    let row = agents::get(&st.db.pool, &server.id)
        .await
        .map_err(|e| Failure {
            error: e.into(),
            steps: steps.to_vec(),
        })?;
    Ok((
        AgentInstallResult {
            mode: probe.mode(),
            service: probe.service(),
            binary_path: probe.binary_path(),
            hub_url: hub.clone(),
            steps: vec![],
            warnings,
            agent: info(
                "agent",
                row,
                st.agents.is_connected(&server.id),
                st.now_ms(),
            ),
        },
        replaced,
    ))
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
    let Some(busy) = Busy::claim(&server.id) else {
        return Err(ApiError::conflict(
            "agent_busy",
            "an install or uninstall is already running on this server",
        ));
    };
    if agent_progress::wants_stream(&headers) {
        let (steps, live) = Steps::live();
        return Ok(agent_progress::stream(live, async move {
            let _busy = busy;
            install_and_audit(&st, &p, &server, steps).await
        }));
    }
    let r = install_and_audit(&st, &p, &server, Steps::default()).await;
    drop(busy);
    Ok(Json(r?).into_response())
}

/// Runs the install and writes its audit event.
async fn install_and_audit(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    mut steps: Steps,
) -> ApiResult<AgentInstallResult> {
    let mut probe = None;
    let result = run_install(st, p, server, &mut steps, &mut probe).await;
    let event =
        Event::by(p, "agent.install", st.now_ms()).target("server", &server.id, &server.name);
    match result {
        Ok((r, replaced)) => {
            event
                .details(json!({
                    "mode": mode_name(r.mode),
                    "service": service_name(r.service),
                    "binary_path": r.binary_path,
                    "replaced": replaced,
                    "connected": r.agent.connected,
                    "steps": r.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "warnings": r.warnings.len(),
                }))
                .write(&st.db.pool)
                .await?;
            Ok(r)
        }
        Err(f) => {
            let failed = f.steps.iter().find(|s| !s.ok).map(|s| s.name.clone());
            event
                .outcome(Outcome::Failure)
                .details(json!({
                    "code": f.error.code,
                    "failed_step": failed,
                    "mode": probe.as_ref().map(|p| mode_name(p.mode())),
                    "service": probe.as_ref().map(|p| service_name(p.service())),
                }))
                .write(&st.db.pool)
                .await?;
            Err(f.into_error())
        }
    }
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
    let Some(_busy) = Busy::claim(&server.id) else {
        return Err(ApiError::conflict(
            "agent_busy",
            "an install or uninstall is already running on this server",
        ));
    };
    let mut steps = Steps::default();
    let result = run_uninstall(&st, &p, &server, &mut steps).await;
    let event =
        Event::by(&p, "agent.uninstall", st.now_ms()).target("server", &server.id, &server.name);
    match result {
        Ok(r) => {
            event
                .details(json!({ "steps": r.steps.iter().map(|s| &s.name).collect::<Vec<_>>() }))
                .write(&st.db.pool)
                .await?;
            Ok(Json(r))
        }
        Err(f) => {
            let failed = f.steps.iter().find(|s| !s.ok).map(|s| s.name.clone());
            event
                .outcome(Outcome::Failure)
                .details(json!({ "code": f.error.code, "failed_step": failed }))
                .write(&st.db.pool)
                .await?;
            Err(f.into_error())
        }
    }
}

async fn run_uninstall(
    st: &AppState,
    p: &Principal,
    server: &ServerRow,
    steps: &mut Steps,
) -> Result<AgentUninstallResult, Failure> {
    let (conn, probe) = connect_and_probe(st, p, server, false, steps).await?;
    let script = agent_install::uninstall_script(&probe);
    let out = run_or_fail(
        &conn,
        &script,
        "remove",
        "uninstall_failed",
        "uninstall",
        steps,
    )
    .await?;
    if out.failed() {
        if out.exit == Some(3) {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                "no_permission",
                "the agent was installed system-wide, and this login has neither root nor passwordless sudo to remove it; its token was not revoked",
                steps,
            ));
        }
        if out.steps.iter().all(|s| s.ok) {
            steps.push(step(
                "remove",
                false,
                format!("exit {:?}: {}", out.exit, out.stderr.trim()),
            ));
        }
        return Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "uninstall_failed",
            "uninstalling the agent failed; its token was not revoked",
            steps,
        ));
    }
    // Revoke, as DELETE …/agent does.
    let revoked = revoke_agent(st, p, server, Some(json!({ "via": "uninstall" })))
        .await
        .map_err(|e| Failure {
            error: e,
            steps: steps.to_vec(),
        })?;
    steps.push(step(
        "revoke",
        true,
        if revoked {
            "token revoked; metrics are collected agentless again"
        } else {
            "no token was enrolled"
        },
    ));
    let row = agents::get(&st.db.pool, &server.id)
        .await
        .map_err(|e| Failure {
            error: e.into(),
            steps: steps.to_vec(),
        })?;
    let monitoring = if revoked {
        "agentless"
    } else {
        server.monitoring.as_str()
    };
    Ok(AgentUninstallResult {
        steps: steps.to_vec(),
        warnings: vec![],
        agent: info(monitoring, row, false, st.now_ms()),
    })
}
