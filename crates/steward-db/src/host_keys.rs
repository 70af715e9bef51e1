//! The SSH host key trusted for each server.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A trusted host key, and a different one the server presented since, if any.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HostKeyRow {
    pub server_id: String,
    pub org_id: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub public_key: String,
    /// `first_use`, `pinned` or `accepted`.
    pub source: String,
    pub trusted_at: i64,
    pub trusted_by: Option<String>,
    pub mismatch_public_key: Option<String>,
    pub mismatch_fingerprint: Option<String>,
    pub mismatch_at: Option<i64>,
}

const COLUMNS: &str = "server_id, org_id, algorithm, fingerprint, public_key, source, trusted_at, trusted_by, \
    mismatch_public_key, mismatch_fingerprint, mismatch_at";

/// The key trusted for a server.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
) -> DbResult<Option<HostKeyRow>> {
    let sql = format!("SELECT {COLUMNS} FROM host_keys WHERE server_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(server_id)
        .fetch_optional(ex)
        .await?)
}

/// Trusts a key for a server (replacing any previous one and clearing a recorded mismatch).
pub async fn trust<'e>(ex: impl Executor<'e, Database = Any>, r: &HostKeyRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO host_keys (server_id, org_id, algorithm, fingerprint, public_key, source, trusted_at, trusted_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (server_id) DO UPDATE SET algorithm = excluded.algorithm, fingerprint = excluded.fingerprint, \
           public_key = excluded.public_key, source = excluded.source, trusted_at = excluded.trusted_at, \
           trusted_by = excluded.trusted_by, mismatch_public_key = NULL, mismatch_fingerprint = NULL, mismatch_at = NULL",
    )
    .bind(&r.server_id)
    .bind(&r.org_id)
    .bind(&r.algorithm)
    .bind(&r.fingerprint)
    .bind(&r.public_key)
    .bind(&r.source)
    .bind(r.trusted_at)
    .bind(&r.trusted_by)
    .execute(ex)
    .await?;
    Ok(())
}

/// Trusts a key on first contact, unless one was recorded meanwhile; returns whether this call
/// recorded it.
pub async fn trust_first_use<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &HostKeyRow,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO host_keys (server_id, org_id, algorithm, fingerprint, public_key, source, trusted_at) \
         VALUES ($1, $2, $3, $4, $5, 'first_use', $6) ON CONFLICT (server_id) DO NOTHING",
    )
    .bind(&r.server_id)
    .bind(&r.org_id)
    .bind(&r.algorithm)
    .bind(&r.fingerprint)
    .bind(&r.public_key)
    .bind(r.trusted_at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a different key the server presented (shown to users until accepted or gone).
pub async fn record_mismatch<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    public_key: &str,
    fingerprint: &str,
    at: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE host_keys SET mismatch_public_key = $2, mismatch_fingerprint = $3, mismatch_at = $4 WHERE server_id = $1",
    )
    .bind(server_id)
    .bind(public_key)
    .bind(fingerprint)
    .bind(at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets a server's key (the next contact trusts on first use again).
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, server_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM host_keys WHERE server_id = $1")
        .bind(server_id)
        .execute(ex)
        .await?;
    Ok(())
}
