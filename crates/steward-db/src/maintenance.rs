//! Housekeeping: forgetting what has expired, so tables stay small over years.
use crate::{Db, DbResult};

/// How long an ended session is kept (for the record) before it is deleted.
pub const ENDED_SESSION_KEEP_MS: i64 = 30 * 24 * 3600 * 1000;

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub throttle_counters: u64,
}

/// Deletes long-ended sessions (their refresh tokens cascade), expired refresh tokens, and
/// login-failure counters older than `throttle_forget_before`.
pub async fn prune(db: &Db, now: i64, throttle_forget_before: i64) -> DbResult<Pruned> {
    let keep_from = now - ENDED_SESSION_KEEP_MS;
    let sessions = sqlx::query(
        "DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at IS NOT NULL AND revoked_at < $1)",
    )
    .bind(keep_from)
    .execute(&db.pool)
    .await?
    .rows_affected();
    // A spent token is kept until it expires, so presenting it again is still seen as theft.
    let refresh_tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(now)
        .execute(&db.pool)
        .await?
        .rows_affected();
    let throttle_counters = sqlx::query("DELETE FROM login_throttle WHERE last_failure_at < $1")
        .bind(throttle_forget_before)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(Pruned {
        sessions,
        refresh_tokens,
        throttle_counters,
    })
}
