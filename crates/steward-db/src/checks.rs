//! Health checks (`checks`), their results (`check_results`) and the hourly roll-ups
//! (`check_rollups`) that uptime over 24 hours, 7 days and 30 days is computed from.
use std::collections::{BTreeSet, HashMap};

use sqlx::{Any, Executor};

use crate::{Arg, DbResult, SqlBuilder, like_escape};

/// One hour in ms: the roll-up bucket.
pub const HOUR_MS: i64 = 3_600_000;

/// A check, with the name of its server.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CheckRow {
    pub id: String,
    pub org_id: String,
    pub server_id: Option<String>,
    pub name: String,
    /// `http`, `tcp` or `dns`.
    pub kind: String,
    /// JSON object.
    pub spec: String,
    pub interval_secs: i64,
    pub timeout_secs: i64,
    pub enabled: i64,
    pub proposal_id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_run_at: i64,
    pub last_at: Option<i64>,
    pub last_status: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub last_message: Option<String>,
    pub last_http_status: Option<i64>,
    pub last_cert_days: Option<i64>,
    /// From `servers` (not stored with the check).
    pub server_name: Option<String>,
}

const SELECT: &str = "SELECT c.id, c.org_id, c.server_id, c.name, c.kind, c.spec, c.interval_secs, \
    c.timeout_secs, c.enabled, c.proposal_id, c.created_by, c.created_at, c.updated_at, \
    c.next_run_at, c.last_at, c.last_status, c.last_latency_ms, c.last_message, \
    c.last_http_status, c.last_cert_days, s.name AS server_name \
    FROM checks c LEFT JOIN servers s ON s.id = c.server_id";

/// One run of a check.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ResultRow {
    pub at: i64,
    /// `up`, `degraded` or `down`.
    pub status: String,
    pub latency_ms: Option<i64>,
    pub http_status: Option<i64>,
    pub cert_days: Option<i64>,
    /// Why it was not up (`None` when up).
    pub message: Option<String>,
}

/// What to list.
#[derive(Debug, Clone)]
pub struct CheckFilter<'a> {
    pub org_id: &'a str,
    pub server_id: Option<&'a str>,
    /// `up`, `degraded`, `down`, or `pending` (never run).
    pub status: Option<&'a str>,
    /// Case-insensitive part of the name.
    pub query: Option<&'a str>,
    /// Visibility: `None` = every check; `Some(tags)` = only checks of servers carrying one of
    /// these tags (standalone checks need visibility of every server).
    pub visible_tags: Option<&'a BTreeSet<String>>,
}

/// The checks matching the filter, by name.
pub async fn list(pool: &sqlx::AnyPool, f: &CheckFilter<'_>) -> DbResult<Vec<CheckRow>> {
    let mut b = SqlBuilder::new(SELECT);
    b.push(" WHERE c.org_id = ")
        .bind(Arg::Text(f.org_id.to_string()));
    if let Some(id) = f.server_id {
        b.push(" AND c.server_id = ")
            .bind(Arg::Text(id.to_string()));
    }
    match f.status {
        Some("pending") => {
            b.push(" AND c.last_status IS NULL");
        }
        Some(s) => {
            b.push(" AND c.last_status = ")
                .bind(Arg::Text(s.to_string()));
        }
        None => {}
    }
    if let Some(q) = f.query.filter(|q| !q.is_empty()) {
        b.push(" AND LOWER(c.name) LIKE ")
            .bind(Arg::Text(format!("%{}%", like_escape(&q.to_lowercase()))))
            .push(" ESCAPE '\\'");
    }
    if let Some(visible) = f.visible_tags {
        if visible.is_empty() {
            b.push(" AND 1 = 0");
        } else {
            b.push(" AND EXISTS (SELECT 1 FROM server_tags v WHERE v.server_id = c.server_id AND v.tag IN ");
            b.bind_list(visible).push(")");
        }
    }
    b.push(" ORDER BY c.name, c.id");
    Ok(b.query_as().fetch_all(pool).await?)
}

/// A check of an organization.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<CheckRow>> {
    let sql = format!("{SELECT} WHERE c.org_id = $1 AND c.id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// Stores a new check (the `last_*` fields are ignored).
pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, c: &CheckRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO checks (id, org_id, server_id, name, kind, spec, interval_secs, timeout_secs, \
         enabled, proposal_id, created_by, created_at, updated_at, next_run_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.server_id)
    .bind(&c.name)
    .bind(&c.kind)
    .bind(&c.spec)
    .bind(c.interval_secs)
    .bind(c.timeout_secs)
    .bind(c.enabled)
    .bind(&c.proposal_id)
    .bind(&c.created_by)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.next_run_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Saves a check's definition and its next run.
pub async fn update<'e>(ex: impl Executor<'e, Database = Any>, c: &CheckRow) -> DbResult<()> {
    sqlx::query(
        "UPDATE checks SET server_id = $2, name = $3, kind = $4, spec = $5, interval_secs = $6, \
         timeout_secs = $7, enabled = $8, updated_at = $9, next_run_at = $10 WHERE id = $1",
    )
    .bind(&c.id)
    .bind(&c.server_id)
    .bind(&c.name)
    .bind(&c.kind)
    .bind(&c.spec)
    .bind(c.interval_secs)
    .bind(c.timeout_secs)
    .bind(c.enabled)
    .bind(c.updated_at)
    .bind(c.next_run_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Deletes a check with its results.
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM checks WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Enabled checks whose next run is due, the longest overdue first.
pub async fn due(pool: &sqlx::AnyPool, now: i64, limit: i64) -> DbResult<Vec<CheckRow>> {
    let sql = format!(
        "{SELECT} WHERE c.enabled = 1 AND c.next_run_at <= $1 ORDER BY c.next_run_at, c.id LIMIT $2"
    );
    Ok(sqlx::query_as(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// Moves a due check's next run from `seen` to `next`; false if someone else (another
/// instance, an edit) moved it first, so exactly one runner takes each run.
pub async fn claim(pool: &sqlx::AnyPool, id: &str, seen: i64, next: i64) -> DbResult<bool> {
    let done = sqlx::query("UPDATE checks SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2")
        .bind(id)
        .bind(seen)
        .bind(next)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The start of the hour `at` falls in.
pub fn hour_of(at: i64) -> i64 {
    at - at.rem_euclid(HOUR_MS)
}

/// Stores a run: the result row, its hour's roll-up, and the check's last run with `summary`
/// (unless a newer one is already there). A second result at the same millisecond is ignored.
pub async fn record(
    tx: &mut sqlx::AnyConnection,
    check_id: &str,
    r: &ResultRow,
    summary: &str,
) -> DbResult<()> {
    let added = sqlx::query(
        "INSERT INTO check_results (check_id, at, status, latency_ms, http_status, cert_days, message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (check_id, at) DO NOTHING",
    )
    .bind(check_id)
    .bind(r.at)
    .bind(&r.status)
    .bind(r.latency_ms)
    .bind(r.http_status)
    .bind(r.cert_days)
    .bind(&r.message)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 0 {
        return Ok(());
    }
    let count = |s: &str| i64::from(r.status == s);
    sqlx::query(
        "INSERT INTO check_rollups (check_id, hour, up, degraded, down, latency_sum, latency_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (check_id, hour) DO UPDATE SET \
         up = check_rollups.up + excluded.up, degraded = check_rollups.degraded + excluded.degraded, \
         down = check_rollups.down + excluded.down, \
         latency_sum = check_rollups.latency_sum + excluded.latency_sum, \
         latency_count = check_rollups.latency_count + excluded.latency_count",
    )
    .bind(check_id)
    .bind(hour_of(r.at))
    .bind(count("up"))
    .bind(count("degraded"))
    .bind(count("down"))
    .bind(r.latency_ms.unwrap_or(0))
    .bind(i64::from(r.latency_ms.is_some()))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE checks SET last_at = $2, last_status = $3, last_latency_ms = $4, last_message = $5, \
         last_http_status = $6, last_cert_days = $7 WHERE id = $1 AND (last_at IS NULL OR last_at <= $2)",
    )
    .bind(check_id)
    .bind(r.at)
    .bind(&r.status)
    .bind(r.latency_ms)
    .bind(summary)
    .bind(r.http_status)
    .bind(r.cert_days)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A check's runs since `since`, oldest first: the newest `limit`, and whether older ones in
/// the window were left out.
pub async fn results(
    pool: &sqlx::AnyPool,
    check_id: &str,
    since: i64,
    limit: i64,
) -> DbResult<(Vec<ResultRow>, bool)> {
    let mut rows: Vec<ResultRow> = sqlx::query_as(
        "SELECT at, status, latency_ms, http_status, cert_days, message FROM check_results \
         WHERE check_id = $1 AND at >= $2 ORDER BY at DESC LIMIT $3",
    )
    .bind(check_id)
    .bind(since)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let truncated = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    rows.reverse();
    Ok((rows, truncated))
}

/// Uptime in percent over the last 24 hours, 7 days and 30 days (each in whole hours, the
/// current one included); `None` for a window without runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UptimeRow {
    pub h24: Option<f64>,
    pub d7: Option<f64>,
    pub d30: Option<f64>,
}

fn percent(good: i64, total: i64) -> Option<f64> {
    (total > 0).then(|| good as f64 * 100.0 / total as f64)
}

/// Uptime of every check of the organization that ran in the last 30 days, from the roll-ups
/// (at most 720 rows per check). Degraded runs count as up.
pub async fn uptime(
    pool: &sqlx::AnyPool,
    org_id: &str,
    now: i64,
) -> DbResult<HashMap<String, UptimeRow>> {
    let start = |hours: i64| hour_of(now - hours * HOUR_MS);
    let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT check_id, \
         CAST(SUM(CASE WHEN hour >= $1 THEN up + degraded ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN hour >= $1 THEN up + degraded + down ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN hour >= $2 THEN up + degraded ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN hour >= $2 THEN up + degraded + down ELSE 0 END) AS BIGINT), \
         CAST(SUM(up + degraded) AS BIGINT), CAST(SUM(up + degraded + down) AS BIGINT) \
         FROM check_rollups WHERE hour >= $3 \
         AND check_id IN (SELECT id FROM checks WHERE org_id = $4) GROUP BY check_id",
    )
    .bind(start(24))
    .bind(start(7 * 24))
    .bind(start(30 * 24))
    .bind(org_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, g1, t1, g7, t7, g30, t30)| {
            (
                id,
                UptimeRow {
                    h24: percent(g1, t1),
                    d7: percent(g7, t7),
                    d30: percent(g30, t30),
                },
            )
        })
        .collect())
}

/// Deletes results older than `results_before` and roll-ups older than `rollups_before`;
/// returns how many results went.
pub async fn prune(
    pool: &sqlx::AnyPool,
    results_before: i64,
    rollups_before: i64,
) -> DbResult<u64> {
    let n = sqlx::query("DELETE FROM check_results WHERE at < $1")
        .bind(results_before)
        .execute(pool)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM check_rollups WHERE hour < $1")
        .bind(rollups_before)
        .execute(pool)
        .await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours() {
        assert_eq!(hour_of(HOUR_MS * 5 + 17), HOUR_MS * 5);
        assert_eq!(hour_of(HOUR_MS * 5), HOUR_MS * 5);
        assert_eq!(percent(1, 4), Some(25.0));
        assert_eq!(percent(0, 0), None);
    }
}
