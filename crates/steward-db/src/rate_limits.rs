//! Rate limits kept in the database, so the limit holds across instances: each key counts its
//! hits in a fixed window that opens with the first hit. One atomic statement counts a hit and
//! returns the count, so concurrent requests cannot all read the same count and all go ahead.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A key's window after a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Window {
    /// Hits in the window, this one included.
    pub hits: i64,
    /// When the window opened (ms).
    pub window_start: i64,
}

/// Counts one hit of `key` at `now` in a window of `window_ms`; a window older than that is
/// replaced by a new one that opens now.
pub async fn hit<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
    now: i64,
    window_ms: i64,
) -> DbResult<Window> {
    // Both assignments read the row as it was, so they agree on whether the window expired.
    Ok(sqlx::query_as(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           hits = CASE WHEN rate_limits.window_start <= $3 THEN 1 ELSE rate_limits.hits + 1 END, \
           window_start = CASE WHEN rate_limits.window_start <= $3 THEN excluded.window_start \
                          ELSE rate_limits.window_start END \
         RETURNING hits, window_start",
    )
    .bind(key)
    .bind(now)
    .bind(now - window_ms)
    .fetch_one(ex)
    .await?)
}

/// Deletes the counters whose window opened before `before`; returns how many.
pub async fn prune<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> DbResult<u64> {
    Ok(
        sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
            .bind(before)
            .execute(ex)
            .await?
            .rows_affected(),
    )
}
