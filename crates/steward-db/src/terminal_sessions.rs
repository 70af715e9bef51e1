//! Web terminal sessions and their recordings. A recording is a sequence of chunks, each a
//! complete zstd frame; concatenated in `seq` order they decompress to the asciicast v2 text.
use sqlx::{Any, Executor};

use crate::{Arg, DbResult, SqlBuilder};

/// One terminal session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TerminalSessionRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub username: String,
    pub server_id: String,
    pub server_name: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// Output bytes recorded so far.
    pub bytes: i64,
    /// `closed`, `exited`, `idle_timeout`, `terminated`, `shutdown`, `error` or `interrupted`.
    pub end_reason: Option<String>,
    pub width: i64,
    pub height: i64,
    /// When the recording stopped at its size cap (the session went on).
    pub recording_capped_at: Option<i64>,
}

const SELECT_COLUMNS: &str = "id, org_id, user_id, username, server_id, server_name, started_at, ended_at, \
    duration_ms, bytes, end_reason, width, height, recording_capped_at";
const COLUMNS: &str = "id, org_id, user_id, username, server_id, server_name, started_at, ended_at, \
    duration_ms, bytes, end_reason, width, height";

/// Records a session that starts.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    r: &TerminalSessionRow,
) -> DbResult<()> {
    let sql = format!(
        "INSERT INTO terminal_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    sqlx::query(&sql)
        .bind(&r.id)
        .bind(&r.org_id)
        .bind(&r.user_id)
        .bind(&r.username)
        .bind(&r.server_id)
        .bind(&r.server_name)
        .bind(r.started_at)
        .bind(r.ended_at)
        .bind(r.duration_ms)
        .bind(r.bytes)
        .bind(&r.end_reason)
        .bind(r.width)
        .bind(r.height)
        .execute(ex)
        .await?;
    Ok(())
}

/// Appends a chunk of the recording and updates the byte count.
pub async fn add_chunk(
    pool: &sqlx::AnyPool,
    session_id: &str,
    seq: i64,
    data: &[u8],
    bytes: i64,
) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO terminal_recording_chunks (session_id, seq, data) VALUES ($1, $2, $3)",
    )
    .bind(session_id)
    .bind(seq)
    .bind(data)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE terminal_sessions SET bytes = $1 WHERE id = $2")
        .bind(bytes)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a session ended.
pub async fn finish<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    ended_at: i64,
    bytes: i64,
    reason: &str,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE terminal_sessions SET ended_at = $1, duration_ms = $1 - started_at, bytes = $2, \
         end_reason = $3 WHERE id = $4 AND ended_at IS NULL",
    )
    .bind(ended_at)
    .bind(bytes)
    .bind(reason)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Ends every session still marked open (after a restart nothing is live): reason
/// `interrupted`. Returns how many.
pub async fn end_interrupted(pool: &sqlx::AnyPool, now: i64) -> DbResult<u64> {
    Ok(sqlx::query(
        "UPDATE terminal_sessions SET ended_at = $1, duration_ms = $1 - started_at, \
         end_reason = 'interrupted' WHERE ended_at IS NULL",
    )
    .bind(now)
    .execute(pool)
    .await?
    .rows_affected())
}

/// One session.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<TerminalSessionRow>> {
    let sql =
        format!("SELECT {SELECT_COLUMNS} FROM terminal_sessions WHERE org_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct TerminalFilter {
    pub org_id: String,
    /// Only this user's sessions (their id) — for callers who may see only their own.
    pub owner: Option<String>,
    /// Matches the user's id or name.
    pub user: Option<String>,
    /// Matches the server's id or name.
    pub server: Option<String>,
    /// Only sessions not ended (`Some(true)`), or only ended ones (`Some(false)`).
    pub open: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

fn filtered(select: &str, f: &TerminalFilter) -> SqlBuilder {
    let mut b = SqlBuilder::new(&format!(
        "SELECT {select} FROM terminal_sessions WHERE org_id = "
    ));
    b.bind(Arg::Text(f.org_id.clone()));
    if let Some(owner) = &f.owner {
        b.push(" AND user_id = ").bind(Arg::Text(owner.clone()));
    }
    if let Some(user) = &f.user {
        b.push(" AND (user_id = ").bind(Arg::Text(user.clone()));
        b.push(" OR username = ")
            .bind(Arg::Text(user.clone()))
            .push(")");
    }
    if let Some(server) = &f.server {
        b.push(" AND (server_id = ").bind(Arg::Text(server.clone()));
        b.push(" OR server_name = ")
            .bind(Arg::Text(server.clone()))
            .push(")");
    }
    match f.open {
        Some(true) => {
            b.push(" AND ended_at IS NULL");
        }
        Some(false) => {
            b.push(" AND ended_at IS NOT NULL");
        }
        None => {}
    }
    b
}

/// Sessions matching the filter, newest first, and how many match in all.
pub async fn list(
    pool: &sqlx::AnyPool,
    f: &TerminalFilter,
) -> DbResult<(Vec<TerminalSessionRow>, i64)> {
    let total: i64 = filtered("COUNT(*)", f)
        .query_scalar()
        .fetch_one(pool)
        .await?;
    let mut b = filtered(SELECT_COLUMNS, f);
    b.push(" ORDER BY started_at DESC, id DESC LIMIT ")
        .bind(Arg::Int(f.limit));
    b.push(" OFFSET ").bind(Arg::Int(f.offset));
    let rows = b.query_as().fetch_all(pool).await?;
    Ok((rows, total))
}

/// Deletes ended sessions (and their recordings) that started before `before`.
pub async fn prune(pool: &sqlx::AnyPool, before: i64) -> DbResult<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "DELETE FROM terminal_recording_chunks WHERE session_id IN \
         (SELECT id FROM terminal_sessions WHERE started_at < $1 AND ended_at IS NOT NULL)",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?;
    let n =
        sqlx::query("DELETE FROM terminal_sessions WHERE started_at < $1 AND ended_at IS NOT NULL")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    tx.commit().await?;
    Ok(n)
}

/// Records that a session's recording stopped at its size cap.
pub async fn set_recording_capped<'e>(
    ex: impl Executor<'e, Database = Any>,
    session_id: &str,
    at: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE terminal_sessions SET recording_capped_at = $2 WHERE id = $1")
        .bind(session_id)
        .bind(at)
        .execute(ex)
        .await?;
    Ok(())
}

/// The recording's chunk after `after_seq` (the first with `-1`), with its `seq`: a download
/// reads one chunk at a time, so its memory stays bounded however long the session was.
pub async fn chunk_after(
    pool: &sqlx::AnyPool,
    session_id: &str,
    after_seq: i64,
) -> DbResult<Option<(i64, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT seq, data FROM terminal_recording_chunks WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT 1",
    )
    .bind(session_id)
    .bind(after_seq)
    .fetch_optional(pool)
    .await?)
}
