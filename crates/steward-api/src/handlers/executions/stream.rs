//! Following a run live over a WebSocket: a snapshot, then its events, until it finishes or
//! the caller may no longer see it.
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use steward_proto::{ErrorBody, ExecutionDetail, ExecutionEvent};

use super::{stored_detail, visible};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::IdPath;
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::runner::seq_of;

/// Live progress of a run over a WebSocket: a snapshot, then output and status messages as
/// JSON text frames (`ExecutionEvent`), ending with `finished`.
#[utoipa::path(get, operation_id = "executions_stream", path = "/api/v1/executions/{id}/stream", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 400, body = ErrorBody, description = "`websocket_required`"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stream(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let row = visible(&st, &p, &id).await?;
    crate::security::require_same_origin(&st, &headers)?;
    let ws = ws.map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "this endpoint speaks WebSocket; send an upgrade request",
        )
    })?;
    let slot = st
        .sockets
        .acquire(&p.user.id, st.config.max_sockets_per_user)?;
    let stored = if st.executions.get(&row.id).is_some() {
        None
    } else {
        Some(stored_detail(&st, &row).await?)
    };
    // The client only ever sends a close: a 4 KiB read buffer (it grows if needed) instead of
    // the 128 KiB default, allocated and zeroed per follower.
    Ok(ws
        .max_message_size(64 * 1024)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            follow(st, p, row.id, stored, socket).await;
            drop(slot);
        })
        .into_response())
}

async fn send(socket: &mut WebSocket, event: &ExecutionEvent) -> bool {
    match serde_json::to_string(event) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// Whether the stream's caller may still follow the run, asked again as at the upgrade:
/// `Ok(false)` when the session or token has ended, the account is disabled, or the caller no
/// longer sees the run. An error means it could not be told.
async fn still_allowed(st: &AppState, p: &Principal, id: &str) -> ApiResult<bool> {
    let Some(fresh) = crate::auth::revalidate(st, p).await? else {
        return Ok(false);
    };
    match visible(st, &fresh, id).await {
        Ok(_) => Ok(true),
        Err(e) if e.status.is_client_error() => Ok(false),
        Err(e) => Err(e),
    }
}

async fn follow(
    st: AppState,
    p: Principal,
    id: String,
    stored: Option<ExecutionDetail>,
    mut socket: WebSocket,
) {
    let live = st.executions.get(&id);
    let Some(live) = live else {
        // Finished (or run by another instance): what is stored, then the end.
        if let Some(detail) = stored {
            let status = detail.execution.status.clone();
            let summary = detail.execution.summary.clone();
            if send(
                &mut socket,
                &ExecutionEvent::Snapshot {
                    seq: 0,
                    execution: detail,
                },
            )
            .await
            {
                let _ = send(
                    &mut socket,
                    &ExecutionEvent::Finished {
                        seq: 0,
                        status,
                        summary,
                    },
                )
                .await;
            }
        }
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let (mut seen, detail, finished, mut rx) = live.subscribe();
    if !send(
        &mut socket,
        &ExecutionEvent::Snapshot {
            seq: seen,
            execution: detail.clone(),
        },
    )
    .await
    {
        return;
    }
    if finished {
        let _ = send(
            &mut socket,
            &ExecutionEvent::Finished {
                seq: seen,
                status: detail.execution.status.clone(),
                summary: detail.execution.summary.clone(),
            },
        )
        .await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    // Like the live view and terminals: the caller is asked again now and then, so a disabled
    // account, an ended session or a lost permission stops the output (on every instance:
    // the answer comes from the database).
    let every = st.config.live_recheck.max(Duration::from_millis(10));
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = recheck.tick() => match still_allowed(&st, &p, &id).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = socket
                        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                            code: 1008,
                            reason: "access_revoked".into(),
                        })))
                        .await;
                    return;
                }
                // Could not ask (the database failed): keep streaming, ask again later.
                Err(e) => tracing::warn!(error = %e.message, "re-checking a run stream's caller failed"),
            },
            msg = rx.recv() => match msg {
                Ok(event) => {
                    if seq_of(&event) <= seen {
                        continue;
                    }
                    seen = seq_of(&event);
                    if !send(&mut socket, &event).await {
                        return;
                    }
                    if matches!(*event, ExecutionEvent::Finished { .. }) {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: start again from a fresh snapshot.
                    let (seq, detail, finished, fresh) = live.subscribe();
                    rx = fresh;
                    seen = seq;
                    let (status, summary) = (detail.execution.status.clone(), detail.execution.summary.clone());
                    if !send(&mut socket, &ExecutionEvent::Snapshot { seq, execution: detail }).await {
                        return;
                    }
                    if finished {
                        let _ = send(&mut socket, &ExecutionEvent::Finished { seq, status, summary }).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // The client only listens; it closing (or going away) ends the stream.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
