//! Next steps proposed from scans (health checks and backup jobs for the databases found).
use sqlx::{Any, Executor};

use crate::DbResult;

/// A proposal.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProposalRow {
    pub id: String,
    pub org_id: String,
    pub server_id: String,
    /// `health_check` or `backup_job`.
    pub kind: String,
    pub service: String,
    /// What makes two proposals the same (one row per server and key).
    pub dedupe_key: String,
    /// JSON object.
    pub spec: String,
    /// `proposed`, `accepted` or `dismissed`.
    pub status: String,
    pub scan_id: Option<String>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
}

const COLUMNS: &str = "id, org_id, server_id, kind, service, dedupe_key, spec, status, scan_id, created_at, \
    decided_at, decided_by";

/// Adds a proposal unless the server already has one with the same key (whatever its status);
/// returns whether it was added.
pub async fn insert_new<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &ProposalRow,
) -> DbResult<bool> {
    let sql = format!(
        "INSERT INTO proposals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (server_id, dedupe_key) DO NOTHING"
    );
    let done = sqlx::query(&sql)
        .bind(&r.id)
        .bind(&r.org_id)
        .bind(&r.server_id)
        .bind(&r.kind)
        .bind(&r.service)
        .bind(&r.dedupe_key)
        .bind(&r.spec)
        .bind(&r.status)
        .bind(&r.scan_id)
        .bind(r.created_at)
        .bind(r.decided_at)
        .bind(&r.decided_by)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A server's proposals, oldest first.
pub async fn list_for_server<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
) -> DbResult<Vec<ProposalRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM proposals WHERE server_id = $1 ORDER BY created_at, service, kind DESC, id"
    );
    Ok(sqlx::query_as(&sql).bind(server_id).fetch_all(ex).await?)
}

/// One proposal of an organization.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<ProposalRow>> {
    let sql = format!("SELECT {COLUMNS} FROM proposals WHERE org_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// Records a decision on a proposal.
pub async fn decide<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    status: &str,
    at: i64,
    by: Option<&str>,
) -> DbResult<()> {
    sqlx::query("UPDATE proposals SET status = $2, decided_at = $3, decided_by = $4 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(at)
        .bind(by)
        .execute(ex)
        .await?;
    Ok(())
}

/// Marks a proposal accepted unless it already is; returns whether this call did (so two
/// concurrent accepts cannot both act on it).
pub async fn accept<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    at: i64,
    by: &str,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE proposals SET status = 'accepted', decided_at = $2, decided_by = $3 \
         WHERE id = $1 AND status <> 'accepted'",
    )
    .bind(id)
    .bind(at)
    .bind(by)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
