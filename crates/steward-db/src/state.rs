//! Instance-wide state shared by every Steward process on this database (setup token hash,
//! the id of the token-signing secret).
use sqlx::{Any, Executor};

use crate::DbResult;

/// Key: SHA-256 of the one-time setup token, while setup is open.
pub const SETUP_TOKEN_HASH: &str = "setup_token_hash";
/// Key: id of the secret holding the access-token signing key.
pub const JWT_SECRET_ID: &str = "jwt_secret_id";

/// Reads a value.
pub async fn get<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> DbResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM instance_state WHERE key = $1")
            .bind(key)
            .fetch_optional(ex)
            .await?,
    )
}

/// Sets a value, replacing any previous one.
pub async fn set<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
    value: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO instance_state (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Sets a value only if none is set; returns whether this call set it.
pub async fn set_if_absent<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
    value: &str,
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO instance_state (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a value; returns whether it existed.
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> DbResult<bool> {
    let done = sqlx::query("DELETE FROM instance_state WHERE key = $1")
        .bind(key)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}
