//! The store's background work, callable directly with an explicit time (tests move time
//! that way): flushing the head, rolling up, pruning.
use std::collections::HashMap;

use steward_db::metrics::{self as db, ChunkRow, FlushWrite, LogRow};
use steward_tsdb::codec;
use steward_tsdb::query;
use steward_tsdb::rollup::{HOUR_MS, Tier, align_down};
use steward_tsdb::{Bucket, SeriesId};

use super::{Store, StoreResult, complete_minutes, lock, rollup_windows};

/// What a flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Samples written to the head log.
    pub logged: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Bytes of chunk data stored.
    pub chunk_bytes: usize,
    /// Series whose open chunk was re-logged to release old log rows.
    pub checkpointed: usize,
}

/// What a rollup pass wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupStats {
    /// 1-minute chunks written (new or recomputed).
    pub minute_chunks: usize,
    /// 1-hour chunks written.
    pub hour_chunks: usize,
}

/// Chunks deleted by pruning, per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub raw: u64,
    pub minute: u64,
    pub hour: u64,
}

/// Series per batch of rollup queries.
const ROLLUP_BATCH: usize = 64;

impl Store {
    /// Flushes now (see [`Store::flush_at`]).
    pub async fn flush(&self) -> StoreResult<FlushStats> {
        self.flush_at(self.inner.clock.now_ms()).await
    }

    /// Seals the chunks of series quiet since `max_span_ms` before `now`, then writes in one
    /// transaction the head-log row of every sample accepted since the last flush, the
    /// sealed chunks, and the deletion of the log rows they cover. On failure everything
    /// stays in the head for the next flush.
    pub async fn flush_at(&self, now: i64) -> StoreResult<FlushStats> {
        let mut last_keep = self.inner.flushing.lock().await;
        let flush = {
            let mut head = lock(&self.inner.head);
            head.seal_idle(now);
            head.take_flush(now)
        };
        if flush.log.is_empty() && flush.sealed.is_empty() && flush.keep_from == *last_keep {
            lock(&self.inner.head).commit_flush(&flush);
            return Ok(FlushStats::default());
        }
        // Compression is CPU work: keep it off the async workers.
        let work = flush.clone();
        let (log, rows) = tokio::task::spawn_blocking(move || {
            let log = (!work.log.is_empty()).then(|| codec::encode_log(&work.log));
            let rows: Vec<ChunkRow> = work
                .sealed
                .iter()
                .map(|c| ChunkRow {
                    series_id: c.series,
                    tier: Tier::Raw.code(),
                    start_ms: c.ts[0],
                    end_ms: c.ts[c.ts.len() - 1],
                    samples: c.ts.len() as i64,
                    data: codec::encode_raw(&c.ts, &c.values),
                })
                .collect();
            (log, rows)
        })
        .await
        .inspect_err(|_| lock(&self.inner.head).abort_flush(flush.clone()))?;
        let mut raw_to: HashMap<SeriesId, i64> = HashMap::new();
        for r in &rows {
            let e = raw_to.entry(r.series_id).or_insert(r.end_ms);
            *e = (*e).max(r.end_ms);
        }
        let raw_to: Vec<(SeriesId, i64)> = raw_to.into_iter().collect();
        let stats = FlushStats {
            logged: flush.log.len(),
            chunks: rows.len(),
            chunk_bytes: rows.iter().map(|r| r.data.len()).sum(),
            checkpointed: flush.checkpointed,
        };
        let write = FlushWrite {
            log: log.map(|data| LogRow {
                seq: flush.epoch as i64,
                created_at: now,
                data,
            }),
            chunks: &rows,
            raw_to: &raw_to,
            delete_log_below: flush.keep_from as i64,
        };
        match db::write_flush(&self.inner.db.pool, &write).await {
            Ok(()) => {
                // Registry before head: a query in between reads the chunk twice (deduplicated)
                // rather than not at all.
                {
                    let mut reg = self
                        .inner
                        .registry
                        .write()
                        .unwrap_or_else(|e| e.into_inner());
                    for &(id, to) in &raw_to {
                        if let Some(m) = reg.meta.get_mut(&id) {
                            m.raw_to = Some(m.raw_to.map_or(to, |t| t.max(to)));
                        }
                    }
                }
                lock(&self.inner.head).commit_flush(&flush);
                *last_keep = flush.keep_from;
                Ok(stats)
            }
            Err(e) => {
                lock(&self.inner.head).abort_flush(flush);
                Err(e.into())
            }
        }
    }

    /// Rolls stored raw chunks up into 1-minute buckets and those into 1-hour buckets, for
    /// every series with complete minutes or hours not rolled up yet. A window already
    /// partly rolled up is recomputed whole from the finer tier.
    pub async fn rollup_at(&self, _now: i64) -> StoreResult<RollupStats> {
        let _guard = self.inner.maintaining.lock().await;
        let mut stats = RollupStats::default();
        // Minutes from raw.
        let jobs: Vec<(SeriesId, Option<i64>, i64)> = {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner());
            reg.meta
                .iter()
                .filter_map(|(&id, m)| {
                    let target = complete_minutes(m.raw_to?);
                    (m.minute_to.is_none_or(|t| target > t)).then_some((id, m.minute_to, target))
                })
                .collect()
        };
        for batch in jobs.chunks(ROLLUP_BATCH) {
            stats.minute_chunks += self.rollup_batch(Tier::Minute, batch).await?;
        }
        // Hours from minutes.
        let jobs: Vec<(SeriesId, Option<i64>, i64)> = {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner());
            reg.meta
                .iter()
                .filter_map(|(&id, m)| {
                    let target = align_down(m.minute_to?, HOUR_MS);
                    (m.hour_to.is_none_or(|t| target > t)).then_some((id, m.hour_to, target))
                })
                .collect()
        };
        for batch in jobs.chunks(ROLLUP_BATCH) {
            stats.hour_chunks += self.rollup_batch(Tier::Hour, batch).await?;
        }
        Ok(stats)
    }

    /// Rolls a batch of series (id, current watermark, target watermark) up into `tier`.
    async fn rollup_batch(
        &self,
        tier: Tier,
        batch: &[(SeriesId, Option<i64>, i64)],
    ) -> StoreResult<usize> {
        let pool = &self.inner.db.pool;
        let finer = tier.finer().unwrap_or(Tier::Raw);
        let mut starts = Vec::with_capacity(batch.len());
        for &(id, mark, target) in batch {
            let start = match mark {
                Some(m) => Some(m),
                None => db::first_start(pool, id, finer.code()).await?,
            };
            // Windows are recomputed whole, from their aligned start.
            starts.push(start.map(|s| align_down(s.min(target), tier.window_ms())));
        }
        let ids: Vec<SeriesId> = batch.iter().map(|j| j.0).collect();
        let lo = starts.iter().flatten().copied().min();
        let hi = batch.iter().map(|j| j.2).max().unwrap_or(i64::MIN);
        let Some(lo) = lo else {
            return Ok(0);
        };
        let rows = db::chunks(pool, &ids, finer.code(), lo, hi - 1, self.max_span(finer)).await?;
        let mut by_series: HashMap<SeriesId, Vec<ChunkRow>> = HashMap::new();
        for r in rows {
            by_series.entry(r.series_id).or_default().push(r);
        }
        let mut out = Vec::new();
        let mut marks = Vec::new();
        for (&(id, _, target), start) in batch.iter().zip(starts) {
            let Some(start) = start else { continue };
            let chunks = by_series.remove(&id).unwrap_or_default();
            let mut buckets: Vec<Bucket> = Vec::new();
            for c in &chunks {
                if finer == Tier::Raw {
                    let (ts, vs) = codec::decode_raw(&c.data)?;
                    buckets.extend(query::raw_buckets(&ts, &vs));
                } else {
                    buckets.extend(codec::decode_rollup(&c.data)?);
                }
            }
            buckets.retain(|b| b.ts >= start && b.ts < target);
            out.extend(rollup_windows(id, tier, &buckets, start, target));
            marks.push(match tier {
                Tier::Hour => (id, None, Some(target)),
                _ => (id, Some(target), None),
            });
        }
        db::write_rollups(pool, &out, &marks).await?;
        let mut reg = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        for (id, minute_to, hour_to) in marks {
            if let Some(m) = reg.meta.get_mut(&id) {
                m.minute_to = minute_to.or(m.minute_to);
                m.hour_to = hour_to.or(m.hour_to);
            }
        }
        Ok(out.len())
    }

    /// Deletes the chunks older than each tier's retention at `now` (raw and 1-minute chunks
    /// only once rolled up into the next tier).
    pub async fn prune_at(&self, now: i64) -> StoreResult<PruneStats> {
        let _guard = self.inner.maintaining.lock().await;
        let r = &self.inner.config.retention;
        let pool = &self.inner.db.pool;
        Ok(PruneStats {
            raw: db::prune(pool, Tier::Raw.code(), now.saturating_sub(r.raw_ms)).await?,
            minute: db::prune(pool, Tier::Minute.code(), now.saturating_sub(r.minute_ms)).await?,
            hour: db::prune(pool, Tier::Hour.code(), now.saturating_sub(r.hour_ms)).await?,
        })
    }
}
