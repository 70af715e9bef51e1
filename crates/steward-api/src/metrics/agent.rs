//! The hub's side of the agent protocol ([`steward_metrics::agent_proto`]): one WebSocket per
//! enrolled agent, authenticated by its enrollment token before the upgrade. What is not the
//! socket (the registry of connected agents, storing a batch once) is
//! `steward_services::agents`.
//!
//! A batch is stored only if its `seq` is above the agent's stored `last_seq` (then that
//! advances), and every batch stored or already stored is acknowledged, so a batch resent
//! after a lost ack is never stored twice. A batch the hub failed to store (database down)
//! is not acknowledged: the connection is closed, `last_seq` stays, and the agent resends it
//! after reconnecting. Within the store, a snapshot not newer than the server's newest is
//! dropped as well. Rates are computed against the previous snapshot of the same server, kept across
//! reconnects, so a backfilled hour after an outage turns into the same rates it would have
//! given live.
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use steward_db::agents::{self, AgentHello, AgentRow};
use steward_db::servers;
use steward_metrics::agent_proto::{AgentMessage, HubMessage, PROTOCOL_VERSION, clamp_interval};

use crate::state::AppState;
use steward_services::agents::{SILENT_FOR, hello_field, store_batch};

/// How long an agent has to say hello after the upgrade.
const HELLO_WITHIN: Duration = Duration::from_secs(10);
/// How often a connected agent's server is re-read (interval changes, revocation, deletion).
const RECHECK: Duration = Duration::from_secs(10);
fn frame(msg: &HubMessage) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(msg).unwrap_or_else(|_| "{}".into()),
    ))
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

/// Serves one agent's connection until it goes, is replaced, revoked or silent.
pub async fn serve(st: AppState, agent: AgentRow, mut socket: WebSocket) {
    let server_id = agent.server_id.clone();
    // Hello first.
    let hello = match tokio::time::timeout(HELLO_WITHIN, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<AgentMessage>(&t) {
            Ok(AgentMessage::Hello(h)) => h,
            _ => return close(&mut socket, 1008, "expected hello").await,
        },
        _ => return close(&mut socket, 1008, "expected hello").await,
    };
    if hello.protocol != PROTOCOL_VERSION {
        return close(&mut socket, 1008, "unsupported protocol version").await;
    }
    let Ok(Some(server)) = servers::get(&st.db.pool, &agent.org_id, &server_id).await else {
        return close(&mut socket, 1008, "server deleted").await;
    };
    // What an agent says of itself is shown in the UI and the logs: bounded, one line each.
    let (agent_version, hostname, os, arch, kernel) = (
        hello_field(&hello.agent_version, 64),
        hello_field(&hello.hostname, 253),
        hello_field(&hello.os, 128),
        hello_field(&hello.arch, 32),
        hello_field(&hello.kernel, 128),
    );
    let info = AgentHello {
        agent_version: &agent_version,
        hostname: &hostname,
        os: &os,
        arch: &arch,
        kernel: &kernel,
    };
    if let Err(e) = agents::connected(&st.db.pool, &server_id, &info, st.now_ms()).await {
        tracing::warn!(server = %server.name, error = %e, "recording the agent's connection failed");
    }
    // Attached (shown as connected) only once its hello is stored, so "connected" never comes
    // with an empty version, host name or OS.
    let (generation, mut stop) = st.agents.attach(&server_id);
    tracing::info!(server = %server.name, version = %agent_version, "agent connected");
    let mut last_seq = u64::try_from(agent.last_seq).unwrap_or(0);
    let mut interval = clamp_interval(server.metrics_interval_secs.clamp(1, 60) as u32);
    let welcome = HubMessage::Welcome {
        server_id: server_id.clone(),
        interval_secs: interval,
        last_seq,
    };
    let mut reason = "closed";
    if socket.send(frame(&welcome)).await.is_ok() {
        let mut recheck = tokio::time::interval(RECHECK.min(st.config.live_recheck));
        recheck.tick().await;
        let mut silent_at = tokio::time::Instant::now() + SILENT_FOR;
        reason = loop {
            tokio::select! {
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        silent_at = tokio::time::Instant::now() + SILENT_FOR;
                        match serde_json::from_str::<AgentMessage>(&t) {
                            Ok(AgentMessage::Samples(batch)) => {
                                if let Err(e) = batch.check() {
                                    tracing::warn!(server = %server.name, error = %e, "agent batch refused");
                                    close(&mut socket, 1008, "malformed batch").await;
                                    break "malformed batch";
                                }
                                let seq = match store_batch(&st, &agent, &mut last_seq, batch).await {
                                    Ok(seq) => seq,
                                    Err(why) => {
                                        // No ack: the agent keeps the batch and resends it
                                        // (renumbered from the welcome's `last_seq`) after
                                        // reconnecting with its backoff.
                                        tracing::warn!(server = %server.name, error = %why, "storing an agent batch failed; closing without an ack");
                                        close(&mut socket, 1011, "storing the batch failed").await;
                                        break "store failed";
                                    }
                                };
                                if socket.send(frame(&HubMessage::Ack { seq })).await.is_err() {
                                    break "closed";
                                }
                            }
                            Ok(AgentMessage::Hello(_)) => {}
                            // Unknown message types are skipped (newer agents).
                            Err(_) => {}
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                        silent_at = tokio::time::Instant::now() + SILENT_FOR;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break "closed",
                    Some(Ok(Message::Binary(_))) => {}
                },
                _ = recheck.tick() => {
                    // Revoked or replaced through another instance: this one learns it from the
                    // database (its own revocations also arrive on `stop` at once).
                    match agents::get(&st.db.pool, &server_id).await {
                        Ok(Some(now)) if now.token_sha256 == agent.token_sha256 => {}
                        Ok(_) => {
                            close(&mut socket, 1008, "agent revoked or replaced").await;
                            break "revoked or replaced";
                        }
                        Err(_) => {}
                    }
                    match servers::get(&st.db.pool, &agent.org_id, &server_id).await {
                        Ok(Some(s)) => {
                            let now = clamp_interval(s.metrics_interval_secs.clamp(1, 60) as u32);
                            if now != interval {
                                interval = now;
                                if socket.send(frame(&HubMessage::Config { interval_secs: now })).await.is_err() {
                                    break "closed";
                                }
                            }
                        }
                        Ok(None) => {
                            close(&mut socket, 1008, "server deleted").await;
                            break "server deleted";
                        }
                        Err(_) => {}
                    }
                },
                () = tokio::time::sleep_until(silent_at) => {
                    close(&mut socket, 1001, "silent too long").await;
                    break "silent";
                },
                _ = stop.changed() => {
                    close(&mut socket, 1008, "agent revoked or replaced").await;
                    break "revoked or replaced";
                },
            }
        };
    }
    st.agents.detach(&server_id, generation);
    if !st.agents.is_connected(&server_id)
        && let Err(e) = agents::disconnected(&st.db.pool, &server_id, st.now_ms()).await
    {
        tracing::warn!(server = %server.name, error = %e, "recording the agent's disconnection failed");
    }
    tracing::info!(server = %server.name, reason, "agent disconnected");
}
