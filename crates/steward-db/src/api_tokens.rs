//! Personal API tokens for automation: stored as hashes, scoped to permissions.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A stored token (its hash only).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    /// The first characters of the token, to recognise it in lists.
    pub token_prefix: String,
    /// JSON array of permission names.
    pub permissions: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "id, org_id, user_id, name, token_prefix, permissions, created_at, expires_at, last_used_at, revoked_at";

/// Stores a new token.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    t: &ApiTokenRow,
    token_hash: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, org_id, user_id, name, token_prefix, token_hash, permissions, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.id)
    .bind(&t.org_id)
    .bind(&t.user_id)
    .bind(&t.name)
    .bind(&t.token_prefix)
    .bind(token_hash)
    .bind(&t.permissions)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// A token by its hash.
pub async fn get_by_hash<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> DbResult<Option<ApiTokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1");
    Ok(sqlx::query_as(&sql)
        .bind(token_hash)
        .fetch_optional(ex)
        .await?)
}

/// A token by id, if it belongs to `user_id`.
pub async fn get_for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    id: &str,
) -> DbResult<Option<ApiTokenRow>> {
    let sql = format!("SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(user_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// An account's tokens, newest first.
pub async fn list_for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> DbResult<Vec<ApiTokenRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
    );
    Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(ex).await?)
}

/// Revokes a token; returns whether it was live.
pub async fn revoke<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> DbResult<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Records use of a token.
pub async fn touch<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> DbResult<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Revokes every live token of an account (after an administrator reset its password).
pub async fn revoke_all_for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    now: i64,
) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected())
}
