//! Login-attempt counters, kept in the database so every Steward instance sees them. An
//! attempt is reserved (counted) by one atomic statement before the password or code is
//! checked, so concurrent attempts cannot all read the same count and all go ahead.
//!
//! The columns keep their first names: `failures` is the number of counted attempts of the
//! current run, `last_failure_at` when the last one was counted.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A key's current run of counted attempts.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ThrottleRow {
    /// Counted attempts.
    pub failures: i64,
    /// When the last one was counted (ms).
    pub last_failure_at: i64,
}

/// The schedule a key follows (see `steward_core::throttle`).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Attempts allowed without delay.
    pub free: i64,
    /// Past `free`, the delay is `1 << (attempts - free)` seconds below this exponent …
    pub max_exponent: i64,
    /// … and this many seconds from it on.
    pub max_delay_secs: i64,
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

/// Counts one more attempt for `key` if the schedule allows one at `now`, in one statement
/// (an upsert whose update applies only when allowed). A run whose last attempt is older than
/// `forget_before` starts again at one. Returns the attempt's number, or `None` when it must
/// wait (nothing is counted then).
pub async fn reserve<'e>(
    ex: impl Executor<'e, Database = Any>,
    key: &str,
    now: i64,
    forget_before: i64,
    schedule: Schedule,
) -> DbResult<Option<i64>> {
    // The delay after `failures` attempts, in ms, as steward_core::throttle::delay_secs.
    const DELAY_MS: &str = "CASE WHEN login_throttle.failures < $4 THEN 0 \
         WHEN login_throttle.failures - $4 >= $5 THEN $6 * 1000 \
         ELSE (CAST(1 AS BIGINT) << CAST(login_throttle.failures - $4 AS INTEGER)) * 1000 END";
    let sql = format!(
        "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.last_failure_at < $3 THEN 1 \
                      ELSE login_throttle.failures + 1 END, \
           last_failure_at = excluded.last_failure_at \
         WHERE login_throttle.last_failure_at < $3 \
            OR $2 >= login_throttle.last_failure_at + ({DELAY_MS}) \
         RETURNING failures"
    );
    Ok(sqlx::query_scalar(&sql)
        .bind(key)
        .bind(now)
        .bind(forget_before)
        .bind(schedule.free)
        .bind(schedule.max_exponent)
        .bind(schedule.max_delay_secs)
        .fetch_optional(ex)
        .await?)
}

/// Gives back one reserved attempt (it turned out not to be a guess: the password was right,
/// or it was never checked).
pub async fn refund<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0",
    )
    .bind(key)
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets a key's attempts (after a successful login).
pub async fn clear<'e>(ex: impl Executor<'e, Database = Any>, key: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1")
        .bind(key)
        .execute(ex)
        .await?;
    Ok(())
}
