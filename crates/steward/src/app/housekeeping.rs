//! Hourly housekeeping: expired sessions, refresh tokens, throttle counters and rate-limit
//! windows go, and so do terminal recordings, script runs and health-check results older than
//! their retention.
use std::sync::Arc;

use steward_core::Clock;

/// How many days each kind of history is kept.
pub(super) struct Retention {
    pub recording_days: i64,
    pub execution_days: i64,
    pub check_days: i64,
}

/// Prunes expired sessions, refresh tokens, throttle counters and rate-limit windows, and
/// terminal recordings, script runs and health-check results older than their retention, now
/// and then every hour.
pub(super) async fn run(db: steward_db::Db, clock: Arc<dyn Clock>, retention: Retention) {
    let Retention {
        recording_days: recording_retention_days,
        execution_days: execution_retention_days,
        check_days: check_retention_days,
    } = retention;
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let now = clock.now_ms();
        let forget = now - steward_core::throttle::FORGET_AFTER_SECS * 1000;
        match steward_db::maintenance::prune(&db, now, forget).await {
            Ok(p) => tracing::debug!(
                sessions = p.sessions,
                refresh_tokens = p.refresh_tokens,
                throttle = p.throttle_counters,
                "pruned"
            ),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry in an hour"),
        }
        // Rate-limit windows last minutes; an hour-old one is over.
        if let Err(e) = steward_db::rate_limits::prune(&db.pool, now - 3_600_000).await {
            tracing::warn!(error = %e, "pruning rate limits failed; will retry in an hour");
        }
        let before = now.saturating_sub(recording_retention_days.saturating_mul(24 * 3600 * 1000));
        match steward_db::terminal_sessions::prune(&db.pool, before).await {
            Ok(n) => tracing::debug!(recordings = n, "pruned terminal recordings"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning terminal recordings failed; will retry in an hour")
            }
        }
        let before = now.saturating_sub(execution_retention_days.saturating_mul(24 * 3600 * 1000));
        match steward_db::executions::prune(&db.pool, before).await {
            Ok(n) => tracing::debug!(runs = n, "pruned script runs"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning script runs failed; will retry in an hour")
            }
        }
        let before = now.saturating_sub(check_retention_days.saturating_mul(24 * 3600 * 1000));
        let rollups_before = now.saturating_sub(400 * 24 * 3600 * 1000);
        match steward_db::checks::prune(&db.pool, before, rollups_before).await {
            Ok(n) => tracing::debug!(results = n, "pruned health-check results"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning health-check results failed; will retry in an hour")
            }
        }
    }
}
