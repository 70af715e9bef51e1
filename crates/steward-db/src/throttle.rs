//! Login-failure counters, kept in the database so every Steward instance sees them.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A key's current run of failures.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ThrottleRow {
    /// Consecutive failures.
    pub failures: i64,
    /// When the last one happened (ms).
    pub last_failure_at: i64,
}

/// Reads a key's counter.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
) -> DbResult<Option<ThrottleRow>> {
    Ok(
        sqlx::query_as("SELECT failures, last_failure_at FROM login_throttle WHERE key = $1")
            .bind(key)
            .fetch_optional(ex)
            .await?,
    )
}

/// Records one more failure; a run older than `forget_before` starts again at one.
pub async fn record_failure<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
    now: i64,
    forget_before: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.last_failure_at < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
           last_failure_at = excluded.last_failure_at",
    )
    .bind(key)
    .bind(now)
    .bind(forget_before)
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets a key's failures (after a successful login).
pub async fn clear<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(ex)
        .await?;
    Ok(())
}
