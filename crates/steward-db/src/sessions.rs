//! Login sessions and their rotating refresh tokens. A session is a refresh-token family:
//! revoking it ends every token in it.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A stored session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// When the session last proved its user again (password or TOTP code).
    pub step_up_at: Option<i64>,
}

/// A stored refresh token (its hash only).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub session_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "id, org_id, user_id, created_at, last_seen_at, expires_at, revoked_at, revoke_reason, source_ip, user_agent, step_up_at";

/// Creates a session.
pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, s: &SessionRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, org_id, user_id, created_at, last_seen_at, expires_at, source_ip, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&s.id)
    .bind(&s.org_id)
    .bind(&s.user_id)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .bind(s.expires_at)
    .bind(&s.source_ip)
    .bind(&s.user_agent)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records that the session's user proved themselves again just now.
pub async fn set_step_up<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE sessions SET step_up_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// A session by id.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> DbResult<Option<SessionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(ex).await?)
}

/// An account's live sessions (not ended, not expired), most recently used first.
pub async fn list_live_for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    now: i64,
) -> DbResult<Vec<SessionRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         ORDER BY last_seen_at DESC, id DESC"
    );
    Ok(sqlx::query_as(&sql)
        .bind(user_id)
        .bind(now)
        .fetch_all(ex)
        .await?)
}

/// Ends one live session of an account; returns whether there was one to end (a session of
/// another account, or one already ended, is left alone).
pub async fn revoke_for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    id: &str,
    reason: &str,
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $3, revoke_reason = $4 \
         WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(id)
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a session (and so every refresh token in it); returns whether it was live.
pub async fn revoke<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    reason: &str,
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every live session of an account, except `keep` (the caller's own, if given).
pub async fn revoke_all_for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: i64,
) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 \
         WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4",
    )
    .bind(user_id)
    .bind(now)
    .bind(reason)
    .bind(keep.unwrap_or(""))
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}

/// Records activity on a session.
pub async fn touch<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Stores a new refresh token's hash.
pub async fn insert_refresh<'e>(
    ex: impl Executor<'e, Database = Any>,
    session_id: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(crate::new_id())
    .bind(session_id)
    .bind(token_hash)
    .bind(now)
    .bind(expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// A refresh token by its hash.
pub async fn get_refresh<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> DbResult<Option<RefreshRow>> {
    Ok(sqlx::query_as(
        "SELECT id, session_id, created_at, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(ex)
    .await?)
}

/// Marks a refresh token used, atomically: returns false if it had been used already (a
/// second presentation — the sign of a stolen token).
pub async fn spend_refresh<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> DbResult<bool> {
    let done =
        sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() == 1)
}
