//! Enrolled agents: one per server, found by the SHA-256 of its enrollment token.
use sqlx::{Any, Executor};

use crate::DbResult;

/// An enrolled agent and what it last reported about itself.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub server_id: String,
    pub org_id: String,
    pub token_sha256: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    /// Highest sample batch stored.
    pub last_seq: i64,
    /// 1 while an instance holds its connection.
    pub connected: i64,
    pub connected_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub agent_version: Option<String>,
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub arch: Option<String>,
    pub kernel: Option<String>,
}

const COLUMNS: &str = "server_id, org_id, token_sha256, created_by, created_at, last_seq, connected, \
    connected_at, last_seen_at, agent_version, hostname, os, arch, kernel";

/// Enrolls (or re-enrolls with a new token) the agent of a server. Re-enrolling keeps the
/// batch counter, so a reinstalled agent continues after what is stored.
pub async fn enroll<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    org_id: &str,
    token_sha256: &str,
    created_by: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO agents (server_id, org_id, token_sha256, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (server_id) DO UPDATE SET token_sha256 = excluded.token_sha256, \
           created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(server_id)
    .bind(org_id)
    .bind(token_sha256)
    .bind(created_by)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// The agent holding this token.
pub async fn by_token<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_sha256: &str,
) -> DbResult<Option<AgentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM agents WHERE token_sha256 = $1");
    Ok(sqlx::query_as(&sql)
        .bind(token_sha256)
        .fetch_optional(ex)
        .await?)
}

/// A server's agent.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
) -> DbResult<Option<AgentRow>> {
    let sql = format!("SELECT {COLUMNS} FROM agents WHERE server_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(server_id)
        .fetch_optional(ex)
        .await?)
}

/// Revokes a server's agent (its token stops working); false if there was none.
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, server_id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM agents WHERE server_id = $1")
        .bind(server_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// What the agent said about itself when it connected.
#[derive(Debug, Clone, Default)]
pub struct AgentHello<'a> {
    pub agent_version: &'a str,
    pub hostname: &'a str,
    pub os: &'a str,
    pub arch: &'a str,
    pub kernel: &'a str,
}

/// Marks the agent connected.
pub async fn connected<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    hello: &AgentHello<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE agents SET connected = 1, connected_at = $2, last_seen_at = $2, agent_version = $3, \
         hostname = $4, os = $5, arch = $6, kernel = $7 WHERE server_id = $1",
    )
    .bind(server_id)
    .bind(now)
    .bind(hello.agent_version)
    .bind(hello.hostname)
    .bind(hello.os)
    .bind(hello.arch)
    .bind(hello.kernel)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a stored batch.
pub async fn stored<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    seq: i64,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE agents SET last_seq = $2, last_seen_at = $3 WHERE server_id = $1 AND last_seq < $2",
    )
    .bind(server_id)
    .bind(seq)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records many stored batches (`(server id, seq)`) in one transaction: the hub's group commit
/// of acknowledgements, so a thousand agents reporting every second cost a few write
/// transactions a second, not a thousand.
pub async fn stored_many(pool: &sqlx::AnyPool, items: &[(&str, i64)], now: i64) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    for (server_id, seq) in items {
        stored(&mut *tx, server_id, *seq, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks the agent disconnected.
pub async fn disconnected<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE agents SET connected = 0, last_seen_at = $2 WHERE server_id = $1")
        .bind(server_id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Agents left marked connected by an instance that stopped, called at start: those not
/// heard from since `seen_before` (ms). An agent another running instance serves keeps
/// sending batches, so its row stays fresh and is left alone.
pub async fn reset_connected<'e>(
    ex: impl Executor<'e, Database = Any>,
    seen_before: i64,
) -> DbResult<u64> {
    let r = sqlx::query(
        "UPDATE agents SET connected = 0 \
         WHERE connected = 1 AND (last_seen_at IS NULL OR last_seen_at < $1)",
    )
    .bind(seen_before)
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Sets how a server's metrics are collected.
pub async fn set_monitoring<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    mode: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE servers SET monitoring = $2, updated_at = $3 WHERE id = $1")
        .bind(server_id)
        .bind(mode)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}
