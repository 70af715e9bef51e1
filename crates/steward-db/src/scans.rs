//! Service discovery scans of servers, kept as history (the newest [`KEEP_PER_SERVER`] per
//! server).
use sqlx::{Any, Executor};

use crate::DbResult;

/// How many scans are kept per server; older ones are pruned after each scan.
pub const KEEP_PER_SERVER: i64 = 200;

/// One scan.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScanRow {
    pub id: String,
    pub org_id: String,
    pub server_id: String,
    /// `user` or `schedule`.
    pub trigger_kind: String,
    pub actor_id: Option<String>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The structured result (JSON), for successful scans.
    pub result: Option<String>,
}

const COLUMNS: &str = "id, org_id, server_id, trigger_kind, actor_id, started_at, finished_at, status, \
    error_code, error_message, result";
/// Every column but the (large) result.
const SUMMARY: &str = "id, org_id, server_id, trigger_kind, actor_id, started_at, finished_at, status, \
    error_code, error_message, NULL AS result";

/// Records a scan that has started.
pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, r: &ScanRow) -> DbResult<()> {
    let sql = format!(
        "INSERT INTO scans ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    sqlx::query(&sql)
        .bind(&r.id)
        .bind(&r.org_id)
        .bind(&r.server_id)
        .bind(&r.trigger_kind)
        .bind(&r.actor_id)
        .bind(r.started_at)
        .bind(r.finished_at)
        .bind(&r.status)
        .bind(&r.error_code)
        .bind(&r.error_message)
        .bind(&r.result)
        .execute(ex)
        .await?;
    Ok(())
}

/// Records how a scan ended.
pub async fn finish<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    finished_at: i64,
    status: &str,
    error: Option<(&str, &str)>,
    result: Option<&str>,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE scans SET finished_at = $2, status = $3, error_code = $4, error_message = $5, result = $6 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(finished_at)
    .bind(status)
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .bind(result)
    .execute(ex)
    .await?;
    Ok(())
}

/// A server's most recent scans, newest first, with their results when `with_result`.
pub async fn latest<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
    status: Option<&str>,
    limit: i64,
) -> DbResult<Vec<ScanRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scans WHERE server_id = $1 AND ($2 = '' OR status = $2) \
         ORDER BY started_at DESC, id DESC LIMIT $3"
    );
    Ok(sqlx::query_as(&sql)
        .bind(server_id)
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(ex)
        .await?)
}

/// A page of a server's scans (without results), newest first, and how many there are.
pub async fn page(
    pool: &sqlx::AnyPool,
    server_id: &str,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<ScanRow>, i64)> {
    let sql = format!(
        "SELECT {SUMMARY} FROM scans WHERE server_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    let rows = sqlx::query_as(&sql)
        .bind(server_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scans WHERE server_id = $1")
        .bind(server_id)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}

/// One scan of a server, if it exists.
pub async fn get(pool: &sqlx::AnyPool, server_id: &str, id: &str) -> DbResult<Option<ScanRow>> {
    let sql = format!("SELECT {COLUMNS} FROM scans WHERE server_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(server_id)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// The newest successful scan of a server that came before the scan started at `started_at`
/// with id `id`, in the order of [`latest`].
pub async fn succeeded_before(
    pool: &sqlx::AnyPool,
    server_id: &str,
    started_at: i64,
    id: &str,
) -> DbResult<Option<ScanRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM scans WHERE server_id = $1 AND status = 'succeeded' \
         AND (started_at < $2 OR (started_at = $2 AND id < $3)) \
         ORDER BY started_at DESC, id DESC LIMIT 1"
    );
    Ok(sqlx::query_as(&sql)
        .bind(server_id)
        .bind(started_at)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Deletes all but the newest [`KEEP_PER_SERVER`] scans of a server.
pub async fn prune<'e>(ex: impl Executor<'e, Database = Any>, server_id: &str) -> DbResult<u64> {
    let done = sqlx::query(
        "DELETE FROM scans WHERE server_id = $1 AND id NOT IN \
         (SELECT id FROM scans WHERE server_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2)",
    )
    .bind(server_id)
    .bind(KEEP_PER_SERVER)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Marks scans left `running` by a stopped process as failed.
pub async fn fail_abandoned<'e>(
    ex: impl Executor<'e, Database = Any>,
    started_before: i64,
    now: i64,
) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE scans SET status = 'failed', finished_at = $2, error_code = 'interrupted', \
         error_message = 'Steward stopped before the scan finished' \
         WHERE status = 'running' AND started_at < $1",
    )
    .bind(started_before)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Servers (of every organization) that have a credential and no scan started since `since`:
/// the ones a scheduled re-scan is due for. Returns (org id, server id), oldest server first.
pub async fn due(pool: &sqlx::AnyPool, since: i64) -> DbResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT s.org_id, s.id FROM servers s JOIN credentials c ON c.server_id = s.id \
         WHERE NOT EXISTS (SELECT 1 FROM scans x WHERE x.server_id = s.id AND x.started_at >= $1) \
         ORDER BY s.created_at, s.id",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}
