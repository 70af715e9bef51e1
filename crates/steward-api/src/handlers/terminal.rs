//! Web terminals: opening one on a server (a WebSocket), and the recorded sessions.
//!
//! Opening needs `terminal.open` on the server and a recent step-up; the upgrade must come from
//! Steward's own pages (a present `Origin` must match the `Host`). A session belongs to the
//! user who opened it: nothing attaches to it. Recordings are readable by their own user
//! (through an API token, only one with `terminal.open`) and by holders of `audit.read`; a
//! running session can be ended by holders of `users.manage` who cover every role of its user
//! (the administrators who manage what that user may do), and ends by itself once its user may
//! no longer open it (see `steward_services::terminal::run`). [`bridge`] adapts the WebSocket
//! to the session's typed events.
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, http::Uri};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use steward_core::Permission;
use steward_db::servers::ServerRow;
use steward_db::terminal_sessions::{self, TerminalFilter, TerminalSessionRow};
use steward_proto::{
    ErrorBody, TerminalClientMessage, TerminalOpenQuery, TerminalSession, TerminalSessionPage,
    TerminalSessionQuery,
};

use super::{opt_time, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, IdPath, clean_query_text};
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::terminal::{self, ClientEvent, MAX_SIZE, ServerEvent};

fn view(st: &AppState, r: TerminalSessionRow) -> TerminalSession {
    TerminalSession {
        live: r.ended_at.is_none() && st.terminals.is_live(&r.id),
        started_at: time(r.started_at),
        ended_at: opt_time(r.ended_at),
        id: r.id,
        user_id: r.user_id,
        username: r.username,
        server_id: r.server_id,
        server_name: r.server_name,
        duration_ms: r.duration_ms,
        bytes: r.bytes,
        end_reason: r.end_reason,
        cols: r.width,
        rows: r.height,
        recording_capped_at: opt_time(r.recording_capped_at),
    }
}

/// The server, if the caller may have a terminal on it: 404 if they cannot see it, 403 without
/// `terminal.open` there (`steward_services::terminal::may_open`, asked again while a session
/// runs).
async fn may_open(st: &AppState, p: &Principal, id: &str) -> ApiResult<ServerRow> {
    Ok(terminal::may_open(st, p, id).await?)
}

/// Opens a terminal: upgrade to a WebSocket. Binary frames carry keystrokes in and output
/// out; text frames carry JSON control messages (`TerminalClientMessage` in,
/// `TerminalServerMessage` out). A plain GET (no upgrade) is checked like an upgrade and
/// answered 426 `websocket_required` when allowed — the UI calls it first to learn whether a
/// step-up is needed.
#[utoipa::path(get, operation_id = "terminal_open", path = "/api/v1/servers/{id}/terminal", tag = tags::SERVERS, params(("id" = String, Path), TerminalOpenQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "no `terminal.open`, `step_up_required`, or `cross_origin`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`endpoint_unconfirmed`"), (status = 426, body = ErrorBody, description = "`websocket_required`: allowed, but not a WebSocket upgrade"), (status = 429, body = ErrorBody, description = "`too_many_sockets`")))]
pub async fn open(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let server = may_open(&st, &p, &id).await?;
    crate::security::require_same_origin(&st, &headers)?;
    if server.endpoint_changed_at.is_some() {
        return Err(ApiError::conflict(
            "endpoint_unconfirmed",
            "the server's address, port, SSH user or jump server changed; someone with credentials.write must confirm it first",
        ));
    }
    if let Err(e) = p.require_step_up(st.now_ms(), st.config.step_up_window, "opening a terminal") {
        Event::by(&p, "terminal.open", st.now_ms())
            .target("server", &server.id, &server.name)
            .outcome(Outcome::Denied)
            .details(json!({ "reason": "step_up_required" }))
            .write(&st.db.pool)
            .await?;
        return Err(e.into());
    }
    let q: TerminalOpenQuery = ApiQuery::from_uri(&uri)?;
    let cols = q.cols.unwrap_or(80);
    let rows = q.rows.unwrap_or(24);
    if !(1..=MAX_SIZE).contains(&cols) || !(1..=MAX_SIZE).contains(&rows) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("cols and rows must be 1–{MAX_SIZE}"),
        ));
    }
    let slot = st
        .sockets
        .acquire(&p.user.id, st.config.max_sockets_per_user)?;
    let Ok(ws) = ws else {
        // The UI's preflight: it learns here, with a readable reason, what a refused upgrade
        // would not tell a browser (too many sockets, a step-up, an unconfirmed endpoint).
        drop(slot);
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "websocket_required",
            "open the terminal with a WebSocket",
        ));
    };
    // Keystrokes are small: a 16 KiB read buffer, which grows for a large paste (up to the
    // 1 MiB message limit), instead of the 128 KiB default per terminal.
    Ok(ws
        .max_message_size(1024 * 1024)
        .read_buffer_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            bridge(st, p, server, cols, rows, socket).await;
            drop(slot);
        }))
}

/// The session if the caller may see it (its own user — for an API token, only if the token
/// may open terminals — or `audit.read`); else 404.
async fn readable(st: &AppState, p: &Principal, id: &str) -> ApiResult<TerminalSessionRow> {
    match terminal_sessions::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(r)
            if p.owns(Some(&r.user_id), Permission::TerminalOpen)
                || p.authz.has(Permission::AuditRead) =>
        {
            Ok(r)
        }
        _ => Err(ApiError::not_found("terminal session")),
    }
}

/// Terminal sessions, newest first: the caller's own, or everyone's with `audit.read`.
#[utoipa::path(get, operation_id = "terminal_sessions_list", path = "/api/v1/terminal-sessions", tag = tags::SERVERS, params(TerminalSessionQuery),
    responses((status = 200, body = TerminalSessionPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: Uri,
) -> ApiResult<Json<TerminalSessionPage>> {
    let sees_all = p.authz.has(Permission::AuditRead);
    if !sees_all && !p.owns(Some(&p.user.id), Permission::TerminalOpen) {
        return Err(ApiError::forbidden(
            "this API token may not see terminal sessions: it needs terminal.open or audit.read",
        ));
    }
    let q: TerminalSessionQuery = ApiQuery::from_uri(&uri)?;
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1–500 and offset not negative",
        ));
    }
    let filter = TerminalFilter {
        org_id: p.user.org_id.clone(),
        owner: (!sees_all).then(|| p.user.id.clone()),
        user: clean_query_text("user", q.user.as_deref())?,
        server: clean_query_text("server", q.server.as_deref())?,
        open: q.live,
        limit,
        offset,
    };
    let (rows, total) = terminal_sessions::list(&st.db.pool, &filter).await?;
    Ok(Json(TerminalSessionPage {
        items: rows.into_iter().map(|r| view(&st, r)).collect(),
        total,
        limit,
        offset,
    }))
}

/// One terminal session.
#[utoipa::path(get, operation_id = "terminal_sessions_get", path = "/api/v1/terminal-sessions/{id}", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = TerminalSession), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<TerminalSession>> {
    let r = readable(&st, &p, &id).await?;
    Ok(Json(view(&st, r)))
}

/// The session's recording: asciicast v2 text (output and resizes; input is never recorded),
/// as a download. A running session's recording is complete up to the last few seconds.
#[utoipa::path(get, operation_id = "terminal_sessions_recording", path = "/api/v1/terminal-sessions/{id}/recording", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, content_type = "application/x-asciicast", body = String, description = "asciicast v2"), (status = 404, body = ErrorBody)))]
pub async fn recording(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let r = readable(&st, &p, &id).await?;
    // One chunk at a time from the database, decompressed and sent: memory stays bounded
    // however long the session, and however many downloads run at once.
    let (db, session) = (st.db.clone(), r.id.clone());
    let body = futures_util::stream::unfold(Some(-1_i64), move |after| {
        let (db, session) = (db.clone(), session.clone());
        async move {
            let after = after?;
            let next = match terminal_sessions::chunk_after(&db.pool, &session, after).await {
                Ok(Some(next)) => next,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(error = %e, session = %session, "reading a terminal recording failed");
                    return Some((
                        Err(std::io::Error::other("reading the recording failed")),
                        None,
                    ));
                }
            };
            let (seq, data) = next;
            match tokio::task::spawn_blocking(move || terminal::decompress(&[data])).await {
                Ok(Ok(text)) => Some((Ok(bytes::Bytes::from(text)), Some(seq))),
                _ => Some((
                    Err(std::io::Error::other("a recording chunk is damaged")),
                    None,
                )),
            }
        }
    });
    // Fused: the compression layer polls once more after the end, which a bare `unfold`
    // answers with a panic.
    let body = axum::body::Body::from_stream(futures_util::StreamExt::fuse(body));
    let stamp = time(r.started_at).format("%Y%m%dT%H%M%SZ");
    let name: String = r
        .server_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-asciicast"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"steward-terminal-{name}-{stamp}.cast\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok((headers, body).into_response())
}

/// Ends a running session (needs `users.manage` and to cover every role of the session's
/// user): the user's terminal closes with reason `terminated`.
#[utoipa::path(post, operation_id = "terminal_sessions_terminate", path = "/api/v1/terminal-sessions/{id}/terminate", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`session_not_live`")))]
pub async fn terminate(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    p.require(Permission::UsersManage)?;
    let r = terminal_sessions::get(&st.db.pool, &p.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("terminal session"))?;
    // Ending someone's shell is managing their account: only over users the caller covers.
    let owner_roles = steward_db::roles::for_user(&st.db.pool, &r.user_id).await?;
    p.require_covers(&r.username, &owner_roles)?;
    if r.ended_at.is_some() || !st.terminals.is_live(&r.id) {
        return Err(ApiError::conflict(
            "session_not_live",
            "the session is not running",
        ));
    }
    Event::by(&p, "terminal.terminate", st.now_ms())
        .target("server", &r.server_id, &r.server_name)
        .details(json!({ "session_id": r.id, "user": r.username }))
        .write(&st.db.pool)
        .await?;
    st.terminals.terminate(&r.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a terminal session on an upgraded socket: binary frames are keystrokes in and output
/// out, text frames JSON control messages (`TerminalClientMessage` in,
/// `TerminalServerMessage` out).
async fn bridge(
    st: AppState,
    p: Principal,
    server: ServerRow,
    cols: u32,
    rows: u32,
    socket: WebSocket,
) {
    let (mut tx, rx) = socket.split();
    let input = Box::pin(rx.filter_map(|m| {
        futures_util::future::ready(match m {
            Ok(Message::Binary(data)) => Some(ClientEvent::Input(data)),
            Ok(Message::Text(t)) => Some(match serde_json::from_str::<TerminalClientMessage>(&t) {
                Ok(m) => ClientEvent::Message(m),
                Err(e) => ClientEvent::BadMessage(e.to_string()),
            }),
            Ok(Message::Close(_)) | Err(_) => Some(ClientEvent::Closed),
            Ok(_) => None,
        })
    }));
    let output = (&mut tx).with(|event: ServerEvent| {
        futures_util::future::ready(Ok::<_, axum::Error>(match event {
            ServerEvent::Output(data) => Message::Binary(data),
            ServerEvent::Message(m) => Message::Text(Utf8Bytes::from(
                serde_json::to_string(&m).unwrap_or_else(|_| "{}".into()),
            )),
            ServerEvent::Close => Message::Close(None),
        }))
    });
    terminal::run(st.services.clone(), p, server, cols, rows, input, output).await;
    let _ = tx.close().await;
}
