//! Limits on how often something costly may be done (a manual health-check run), counted in
//! the database so that they hold across instances. A refused call is answered 429
//! `rate_limited` with `Retry-After`.
use std::time::Duration;

use steward_db::rate_limits;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// At most `max` calls per `window` for one key.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: i64,
    pub window: Duration,
}

impl Limit {
    /// Counts one call of `key`; refuses it (429, saying `what` happened too often) past the
    /// limit. Refused calls count too, so hammering does not get through sooner.
    pub async fn take(&self, st: &AppState, key: &str, what: &str) -> ApiResult<()> {
        let window_ms = i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX);
        let now = st.now_ms();
        let w = rate_limits::hit(&st.db.pool, key, now, window_ms).await?;
        if w.hits <= self.max {
            return Ok(());
        }
        let left_ms = (w.window_start + window_ms - now).max(0);
        let retry_after = ((left_ms + 999) / 1000).max(1);
        Err(ApiError::rate_limited(what, retry_after))
    }
}
