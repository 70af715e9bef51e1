//! A server's agent as the hub knows it: enrollment (a new token, shown once and stored as a
//! SHA-256, which switches the server to agent collection), revocation (back to agentless),
//! what the agent reported, and [`AgentConnections`], the agents connected to this instance.
use std::time::Duration;

use serde_json::{Value, json};
use steward_db::agents::{self, AgentRow};
use steward_db::servers::ServerRow;
use steward_proto::{AgentEnrollment, AgentInfo};
use zeroize::Zeroizing;

use super::{binary_arch, binary_sha256, hub_binaries, manual_command};
use crate::audit::Event;
use crate::auth::tokens::{hash_token, random_token};
use crate::principal::Principal;
use crate::{ServiceError, ServiceResult, Services};

/// Prefix of enrollment tokens, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "stwa_";

/// The agents connected to this instance, as enrollment and the install flows need them: a
/// replaced or revoked token must not keep its connection, and an install waits for the new
/// agent to connect. (The agent's WebSocket, and so the registry, lives in the HTTP crate.)
pub trait AgentConnections: Send + Sync {
    /// Whether the server's agent is connected to this instance.
    fn is_connected(&self, server_id: &str) -> bool;
    /// Ends the server's agent connection on this instance, if there is one.
    fn disconnect(&self, server_id: &str);
    /// How long an agent may stay silent: a row marked connected by another instance is not
    /// believed for longer.
    fn silent_for(&self) -> Duration;
}

/// `connected` is true when this instance holds the agent's connection, or when the row says
/// another instance does and the agent was heard from recently (a row left behind by an
/// instance that died is not believed for longer than an agent may stay silent).
pub fn info(
    monitoring: &str,
    row: Option<AgentRow>,
    connected_here: bool,
    now_ms: i64,
    silent_for: Duration,
) -> AgentInfo {
    let time = |ms: i64| steward_core::clock::from_ms(ms);
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
                    && r.last_seen_at
                        .is_some_and(|t| now_ms - t < silent_for.as_millis() as i64)),
            monitoring: monitoring.into(),
            enrolled_at: Some(time(r.created_at)),
            connected_at: r.connected_at.map(time),
            last_seen_at: r.last_seen_at.map(time),
            last_seq: r.last_seq,
            agent_version: r.agent_version,
            hostname: r.hostname,
            os: r.os,
            arch: r.arch,
            kernel: r.kernel,
        },
    }
}

/// The server's agent: enrolled, connected, what it reported.
pub async fn status(
    st: &Services,
    agents: &dyn AgentConnections,
    server: &ServerRow,
) -> ServiceResult<AgentInfo> {
    let row = agents::get(&st.db.pool, &server.id).await?;
    Ok(info(
        &server.monitoring,
        row,
        agents.is_connected(&server.id),
        st.now_ms(),
        agents.silent_for(),
    ))
}

/// The agent holding enrollment token `token`; `None` for an unknown token or one that is
/// not an enrollment token at all.
pub async fn by_token(st: &Services, token: &str) -> ServiceResult<Option<AgentRow>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(agents::by_token(&st.db.pool, &hash_token(token)).await?)
}

/// Enrolls the server's agent by hand: a new token (any previous one stops working), with the
/// self-contained command that installs it; the server's metrics now come from the agent.
/// The caller has checked `servers.write` on the server.
pub async fn enroll(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
) -> ServiceResult<AgentEnrollment> {
    let (token, _) = new_token(st, agents, p, server, "enroll").await?;
    let row = agents::get(&st.db.pool, &server.id).await?;
    let hub = st.config.public_url.trim_end_matches('/').to_string();
    let interval = server.metrics_interval_secs.clamp(1, 60);
    let builds = hub_builds(st).await?;
    Ok(AgentEnrollment {
        install_command: manual_command(&hub, &token, interval, &builds),
        token: token.to_string().into(),
        hub_url: hub,
        agent: info("agent", row, false, st.now_ms(), agents.silent_for()),
    })
}

/// A new enrollment token for the server (any previous one stops working and its agent is
/// disconnected); the server's metrics now come from the agent. Stored as a hash, audited
/// (`agent.enroll`, `via` the manual enrollment or an install) in the same transaction.
/// Returns the token and whether it replaced one.
pub(super) async fn new_token(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    via: &str,
) -> ServiceResult<(Zeroizing<String>, bool)> {
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
    agents.disconnect(&server.id);
    Ok((token, replaced))
}

/// Deletes the server's agent token, switches it back to agentless collection, audits
/// `agent.revoke` (with `details`) in the same transaction and disconnects a connected agent.
/// Idempotent: revoking what is not enrolled changes nothing and returns false. The caller has
/// checked `servers.write` on the server.
pub async fn revoke(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    details: Option<Value>,
) -> ServiceResult<bool> {
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
    agents.disconnect(&server.id);
    Ok(true)
}

/// The architectures the hub serves agents for, each with its binary's SHA-256 (which the
/// manual install checks). Without a binary, the hub's own architecture and an empty sum: the
/// download then fails with `agent_binary_missing`.
async fn hub_builds(st: &Services) -> ServiceResult<Vec<(&'static str, String)>> {
    let bins = hub_binaries(st.config.agent_binary.as_deref())
        .await
        .unwrap_or_default();
    if bins.is_empty() {
        return Ok(vec![(binary_arch(&[]), String::new())]);
    }
    let mut out = Vec::with_capacity(bins.len());
    for b in bins {
        let sum = binary_sha256(&b.path)
            .await
            .map_err(ServiceError::internal)?;
        out.push((b.arch, sum));
    }
    Ok(out)
}

/// Waits up to `secs` for the server's agent to connect (to this or another instance).
pub(super) async fn wait_connected(
    st: &Services,
    agents: &dyn AgentConnections,
    server_id: &str,
    secs: u64,
) -> bool {
    for _ in 0..secs * 4 {
        if agents.is_connected(server_id) {
            return true;
        }
        if let Ok(Some(r)) = agents::get(&st.db.pool, server_id).await
            && r.connected == 1
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
