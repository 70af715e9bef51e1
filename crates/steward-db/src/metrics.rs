//! Metric storage: series (integer ids, one per server/name/label), compressed chunks per
//! series and tier (`metric_chunks`, bytes produced by `steward-tsdb`'s codec), and the head
//! log (`metric_head_log`) that makes the in-memory head crash-safe. Series and their chunks
//! go when their server is deleted (foreign keys with `ON DELETE CASCADE`).
use sqlx::{Any, AnyPool, Executor};

use crate::{Arg, DbResult, SqlBuilder};

/// One series.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SeriesRow {
    pub id: i64,
    pub server_id: String,
    pub name: String,
    pub label: String,
    /// Raw samples up to and including this time are stored.
    pub raw_to: Option<i64>,
    /// 1-minute buckets before this time are stored.
    pub minute_to: Option<i64>,
    /// 1-hour buckets before this time are stored.
    pub hour_to: Option<i64>,
}

/// One stored chunk.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChunkRow {
    pub series_id: i64,
    /// 0 raw, 1 one-minute, 2 one-hour.
    pub tier: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Samples (raw) or buckets (rollups) in the chunk.
    pub samples: i64,
    pub data: Vec<u8>,
}

/// One head-log row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogRow {
    pub seq: i64,
    pub created_at: i64,
    pub data: Vec<u8>,
}

/// What one tier of one server holds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageRow {
    pub server_id: String,
    pub tier: i64,
    pub chunks: i64,
    /// Bytes of chunk data (without row and index overhead).
    pub bytes: i64,
    pub samples: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

const SERIES_COLUMNS: &str = "id, server_id, name, label, raw_to, minute_to, hour_to";

/// Rows per multi-row statement (6 parameters each; SQLite allows 32,766).
const BATCH: usize = 500;

/// Creates the missing series of `server_id` among `keys` (name, label) and returns every
/// series of the server.
pub async fn ensure_series(
    pool: &AnyPool,
    server_id: &str,
    keys: &[(String, String)],
    now: i64,
) -> DbResult<Vec<SeriesRow>> {
    for part in keys.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO metric_series (server_id, name, label, created_at) VALUES {} \
             ON CONFLICT (server_id, name, label) DO NOTHING",
            placeholders(part.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (name, label) in part {
            q = q
                .bind(server_id)
                .bind(name.as_str())
                .bind(label.as_str())
                .bind(now);
        }
        q.execute(pool).await?;
    }
    series_of_server(pool, server_id).await
}

/// The series of one server.
pub async fn series_of_server(pool: &AnyPool, server_id: &str) -> DbResult<Vec<SeriesRow>> {
    let sql =
        format!("SELECT {SERIES_COLUMNS} FROM metric_series WHERE server_id = $1 ORDER BY id");
    Ok(sqlx::query_as(&sql).bind(server_id).fetch_all(pool).await?)
}

/// Every series.
pub async fn all_series(pool: &AnyPool) -> DbResult<Vec<SeriesRow>> {
    let sql = format!("SELECT {SERIES_COLUMNS} FROM metric_series ORDER BY id");
    Ok(sqlx::query_as(&sql).fetch_all(pool).await?)
}

/// Deletes the series of a server and their chunks (deleting the server does the same).
pub async fn delete_server_series<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
) -> DbResult<u64> {
    Ok(
        sqlx::query("DELETE FROM metric_series WHERE server_id = $1")
            .bind(server_id)
            .execute(ex)
            .await?
            .rows_affected(),
    )
}

/// The head log, oldest first.
pub async fn head_log(pool: &AnyPool) -> DbResult<Vec<LogRow>> {
    Ok(
        sqlx::query_as("SELECT seq, created_at, data FROM metric_head_log ORDER BY seq")
            .fetch_all(pool)
            .await?,
    )
}

/// The highest head-log number ever written that is still there (0 for none).
pub async fn max_log_seq(pool: &AnyPool) -> DbResult<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM metric_head_log")
            .fetch_one(pool)
            .await?,
    )
}

/// `(p, p+1, …)` rows of `width` numbered placeholders.
fn placeholders(rows: usize, width: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * width + c + 1));
        }
        out.push(')');
    }
    out
}

/// Inserts or replaces chunks (same series, tier and start). Chunks of series deleted in the
/// meantime are skipped rather than failing the whole write.
async fn upsert_chunks(tx: &mut sqlx::AnyConnection, chunks: &[ChunkRow]) -> DbResult<()> {
    for part in chunks.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO metric_chunks (series_id, tier, start_ms, end_ms, samples, data) \
             SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6 \
             FROM (VALUES {}) AS v \
             WHERE EXISTS (SELECT 1 FROM metric_series s WHERE s.id = v.column1) \
             ON CONFLICT (series_id, tier, start_ms) DO UPDATE SET end_ms = excluded.end_ms, \
             samples = excluded.samples, data = excluded.data",
            placeholders(part.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for c in part {
            q = q
                .bind(c.series_id)
                .bind(c.tier)
                .bind(c.start_ms)
                .bind(c.end_ms)
                .bind(c.samples)
                .bind(c.data.as_slice());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// What one flush of the head writes, atomically.
#[derive(Debug, Default)]
pub struct FlushWrite<'a> {
    /// The new head-log row, if there was anything to log.
    pub log: Option<LogRow>,
    /// Sealed raw chunks.
    pub chunks: &'a [ChunkRow],
    /// (series, last stored raw time) for the series whose chunks are in `chunks`.
    pub raw_to: &'a [(i64, i64)],
    /// Head-log rows numbered below this are deleted.
    pub delete_log_below: i64,
}

/// Writes a flush in one transaction: the log row, the chunks, the series' `raw_to`, and the
/// deletion of the log rows the chunks made redundant.
pub async fn write_flush(pool: &AnyPool, w: &FlushWrite<'_>) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    if let Some(log) = &w.log {
        sqlx::query("INSERT INTO metric_head_log (seq, created_at, data) VALUES ($1, $2, $3)")
            .bind(log.seq)
            .bind(log.created_at)
            .bind(log.data.as_slice())
            .execute(&mut *tx)
            .await?;
    }
    upsert_chunks(&mut tx, w.chunks).await?;
    for &(id, to) in w.raw_to {
        sqlx::query(
            "UPDATE metric_series SET raw_to = $1 WHERE id = $2 AND (raw_to IS NULL OR raw_to < $1)",
        )
        .bind(to)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM metric_head_log WHERE seq < $1")
        .bind(w.delete_log_below)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Stores rollup chunks and moves the series' watermarks forward, in one transaction.
/// `marks` holds (series, minute_to, hour_to); `None` leaves a watermark as it is.
pub async fn write_rollups(
    pool: &AnyPool,
    chunks: &[ChunkRow],
    marks: &[(i64, Option<i64>, Option<i64>)],
) -> DbResult<()> {
    let mut tx = pool.begin().await?;
    upsert_chunks(&mut tx, chunks).await?;
    for &(id, minute_to, hour_to) in marks {
        sqlx::query(
            "UPDATE metric_series SET minute_to = COALESCE($1, minute_to), \
             hour_to = COALESCE($2, hour_to) WHERE id = $3",
        )
        .bind(minute_to)
        .bind(hour_to)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The chunks of `series` in `tier` that may hold times in `[from, to]`, ordered by series
/// and start. `max_span` is the longest time one chunk of the tier covers, which bounds the
/// index range read.
pub async fn chunks(
    pool: &AnyPool,
    series: &[i64],
    tier: i64,
    from: i64,
    to: i64,
    max_span: i64,
) -> DbResult<Vec<ChunkRow>> {
    let mut out = Vec::new();
    for part in series.chunks(BATCH) {
        let mut b = SqlBuilder::new(
            "SELECT series_id, tier, start_ms, end_ms, samples, data FROM metric_chunks \
             WHERE tier = ",
        );
        b.bind(Arg::Int(tier));
        b.push(" AND series_id IN (");
        for (i, id) in part.iter().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.bind(Arg::Int(*id));
        }
        b.push(") AND start_ms >= ")
            .bind(Arg::Int(from.saturating_sub(max_span)));
        b.push(" AND start_ms <= ").bind(Arg::Int(to));
        b.push(" AND end_ms >= ").bind(Arg::Int(from));
        b.push(" ORDER BY series_id, start_ms");
        out.extend(b.query_as::<ChunkRow>().fetch_all(pool).await?);
    }
    Ok(out)
}

/// The last chunk of a series in a tier.
pub async fn last_chunk(pool: &AnyPool, series: i64, tier: i64) -> DbResult<Option<ChunkRow>> {
    Ok(sqlx::query_as(
        "SELECT series_id, tier, start_ms, end_ms, samples, data FROM metric_chunks \
         WHERE series_id = $1 AND tier = $2 ORDER BY start_ms DESC LIMIT 1",
    )
    .bind(series)
    .bind(tier)
    .fetch_optional(pool)
    .await?)
}

/// Where the first chunk of a series in a tier starts.
pub async fn first_start(pool: &AnyPool, series: i64, tier: i64) -> DbResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT start_ms FROM metric_chunks WHERE series_id = $1 AND tier = $2 \
         ORDER BY start_ms LIMIT 1",
    )
    .bind(series)
    .bind(tier)
    .fetch_optional(pool)
    .await?)
}

/// Deletes the chunks of `tier` that end before `before`. Raw and 1-minute chunks are kept
/// until the next tier has rolled them up, so nothing is lost when rollups fall behind.
pub async fn prune(pool: &AnyPool, tier: i64, before: i64) -> DbResult<u64> {
    let guard = match tier {
        0 => {
            " AND EXISTS (SELECT 1 FROM metric_series s WHERE s.id = metric_chunks.series_id \
               AND s.minute_to > metric_chunks.end_ms)"
        }
        1 => {
            " AND EXISTS (SELECT 1 FROM metric_series s WHERE s.id = metric_chunks.series_id \
               AND s.hour_to > metric_chunks.end_ms)"
        }
        _ => "",
    };
    let sql = format!("DELETE FROM metric_chunks WHERE tier = $1 AND end_ms < $2{guard}");
    Ok(sqlx::query(&sql)
        .bind(tier)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected())
}

/// Chunks, bytes and samples per server and tier, with the time span they cover.
pub async fn disk_usage(pool: &AnyPool) -> DbResult<Vec<UsageRow>> {
    Ok(sqlx::query_as(
        "SELECT s.server_id AS server_id, c.tier AS tier, CAST(COUNT(*) AS BIGINT) AS chunks, \
         CAST(SUM(LENGTH(c.data)) AS BIGINT) AS bytes, CAST(SUM(c.samples) AS BIGINT) AS samples, \
         MIN(c.start_ms) AS first_ms, MAX(c.end_ms) AS last_ms \
         FROM metric_chunks c JOIN metric_series s ON s.id = c.series_id \
         GROUP BY s.server_id, c.tier ORDER BY s.server_id, c.tier",
    )
    .fetch_all(pool)
    .await?)
}
