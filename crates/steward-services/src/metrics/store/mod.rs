//! The metric store: ingest into the in-memory head, range queries over the head and the
//! stored tiers, and the background work (flush with the head log, rollups, pruning).
//!
//! - `ingest` resolves series ids through an in-memory registry (creating missing series in
//!   one statement) and appends to the head: samples are queryable as soon as it returns.
//! - `flush` writes, in one transaction, a head-log row with every sample accepted since the
//!   previous flush, the chunks sealed since, and deletes the log rows those chunks cover.
//!   `open` replays the log, so a killed hub loses at most one flush interval.
//! - `rollup` turns stored raw chunks into 1-minute buckets and those into 1-hour buckets,
//!   per aligned window (6 h of minutes, 4 days of hours), only over complete minutes/hours.
//! - `range` plans the tier, reads each part of the range from the tier that has it, and
//!   aggregates into at most ~1,000 step-aligned points per series.
//!
//! This module holds the store itself (settings, errors, the series registry, opening and the
//! background tasks) and the rollup window helpers; [`ingest`](Store::ingest) lives in
//! `ingest`, the range, raw and latest queries in `queries`, disk use in `usage`, and flushing,
//! rollups and pruning in `maintenance`.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use steward_core::Clock;
use steward_db::metrics::{self as db, ChunkRow, SeriesRow};
use steward_db::{Db, DbError};
use steward_tsdb::codec::{self, Bucket, CodecError};
use steward_tsdb::query::{self, Retention, Watermarks};
use steward_tsdb::rollup::{self, MINUTE_MS, Tier, align_down};
use steward_tsdb::{Head, HeadConfig, SeriesId};
use tokio_util::sync::CancellationToken;

mod ingest;
mod maintenance;
mod queries;
mod usage;

pub use ingest::IngestOutcome;
pub use maintenance::{FlushStats, PruneStats, RollupStats};
pub use queries::{Latest, RangeResult, Series};
pub use usage::{ServerUsage, TierUsage};

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// How long each tier is kept (7 days, 90 days, 2 years).
    pub retention: Retention,
    /// How often the head is flushed: the most of accepted data a crash can lose (5 s).
    pub flush_interval: Duration,
    /// How often rollups run (1 minute).
    pub rollup_interval: Duration,
    /// How often expired chunks are deleted (1 hour).
    pub prune_interval: Duration,
    /// When chunks are sealed.
    pub head: HeadConfig,
    /// Most points per series a range query returns (1,000).
    pub max_points: usize,
    /// Most series one server may have; further new series are refused (2,000).
    pub max_series_per_server: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            flush_interval: Duration::from_secs(5),
            rollup_interval: Duration::from_secs(60),
            prune_interval: Duration::from_secs(3600),
            head: HeadConfig::default(),
            max_points: query::MAX_POINTS,
            max_series_per_server: 2_000,
        }
    }
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A stored chunk could not be decoded.
    #[error("corrupt metric chunk: {0}")]
    Codec(#[from] CodecError),
    /// A sample was refused (bad name, too many series).
    #[error("{0}")]
    Invalid(String),
    /// A blocking task died.
    #[error("metric store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
struct Meta {
    raw_to: Option<i64>,
    minute_to: Option<i64>,
    hour_to: Option<i64>,
}

#[derive(Debug, Default)]
struct Registry {
    /// server → (name, label) → id
    by_key: HashMap<String, HashMap<(String, String), SeriesId>>,
    meta: HashMap<SeriesId, Meta>,
}

impl Registry {
    fn add(&mut self, r: SeriesRow) {
        self.by_key
            .entry(r.server_id)
            .or_default()
            .insert((r.name, r.label), r.id);
        self.meta.insert(
            r.id,
            Meta {
                raw_to: r.raw_to,
                minute_to: r.minute_to,
                hour_to: r.hour_to,
            },
        );
    }

    fn marks(&self, id: SeriesId) -> Watermarks {
        let m = &self.meta[&id];
        Watermarks {
            minute_to: m.minute_to.unwrap_or(i64::MIN),
            hour_to: m.hour_to.unwrap_or(i64::MIN),
        }
    }
}

struct Inner {
    db: Db,
    config: StoreConfig,
    clock: Arc<dyn Clock>,
    head: Mutex<Head>,
    registry: RwLock<Registry>,
    /// One flush at a time; holds the `keep_from` of the last one.
    flushing: tokio::sync::Mutex<u64>,
    /// One rollup or prune at a time.
    maintaining: tokio::sync::Mutex<()>,
}

/// The metric store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves the head consistent enough to keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Opens the store: loads the series and replays the head log, so that everything
    /// flushed before a crash is back in the head.
    pub async fn open(db: Db, config: StoreConfig, clock: Arc<dyn Clock>) -> StoreResult<Store> {
        let mut registry = Registry::default();
        let series = db::all_series(&db.pool).await?;
        let next = db::max_log_seq(&db.pool).await? + 1;
        let mut head = Head::new(config.head, next as u64);
        for s in series {
            if let Some(t) = s.raw_to {
                head.set_floor(s.id, t);
            }
            registry.add(s);
        }
        let rows = db::head_log(&db.pool).await?;
        let mut replayed = 0usize;
        for row in rows {
            match codec::decode_log(&row.data) {
                Ok(mut samples) => {
                    samples.retain(|s| registry.meta.contains_key(&s.series));
                    replayed += samples.len();
                    head.replay(row.seq as u64, row.created_at, &samples);
                }
                Err(e) => {
                    tracing::error!(seq = row.seq, error = %e, "unreadable metric head-log row skipped")
                }
            }
        }
        if replayed > 0 {
            tracing::info!(samples = replayed, "metric head log replayed");
        }
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                config,
                clock,
                head: Mutex::new(head),
                registry: RwLock::new(registry),
                flushing: tokio::sync::Mutex::new(0),
                maintaining: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// The longest span of one stored chunk of `tier`.
    fn max_span(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw => self.inner.config.head.max_span_ms,
            t => t.window_ms(),
        }
    }

    /// Starts the background work: a flush every `flush_interval`, rollups every
    /// `rollup_interval`, pruning every `prune_interval`. When `shutdown` is cancelled the
    /// head is flushed once more and the task ends.
    pub fn spawn_background(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let flusher = {
            let store = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(store.inner.config.flush_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = shutdown.cancelled() => break,
                    }
                    if let Err(e) = store.flush().await {
                        tracing::warn!(error = %e, "metric flush failed; retrying at the next one");
                    }
                }
                if let Err(e) = store.flush().await {
                    tracing::error!(error = %e, "final metric flush failed");
                }
            })
        };
        let maintainer = {
            let store = self.clone();
            tokio::spawn(async move {
                let cfg = &store.inner.config;
                let mut rollups = tokio::time::interval(cfg.rollup_interval);
                let mut prunes = tokio::time::interval(cfg.prune_interval);
                rollups.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                prunes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = rollups.tick() => {
                            if let Err(e) = store.rollup_at(store.inner.clock.now_ms()).await {
                                tracing::warn!(error = %e, "metric rollup failed");
                            }
                        }
                        _ = prunes.tick() => {
                            if let Err(e) = store.prune_at(store.inner.clock.now_ms()).await {
                                tracing::warn!(error = %e, "metric pruning failed");
                            }
                        }
                        _ = shutdown.cancelled() => break,
                    }
                }
            })
        };
        tokio::spawn(async move {
            let _ = maintainer.await;
            let _ = flusher.await;
        })
    }
}

/// The complete minutes of a series whose raw data is stored up to `raw_to`: every sample
/// still to come is later than `raw_to`, so minutes ending at or before `raw_to + 1` cannot
/// change.
fn complete_minutes(raw_to: i64) -> i64 {
    align_down(raw_to.saturating_add(1), MINUTE_MS)
}

/// Recomputes the rollup windows of `tier` from `start` (aligned down to a window) up to
/// `target` (exclusive) out of the finer tier's buckets, as chunk rows.
fn rollup_windows(
    series: SeriesId,
    tier: Tier,
    finer: &[Bucket],
    start: i64,
    target: i64,
) -> Vec<ChunkRow> {
    let window = tier.window_ms();
    let buckets = rollup::combine(finer, tier.resolution_ms());
    let mut out = Vec::new();
    let mut w = align_down(start, window);
    while w < target {
        let end = (w + window).min(target);
        let lo = buckets.partition_point(|b| b.ts < w);
        let hi = buckets.partition_point(|b| b.ts < end);
        if lo < hi {
            let part = &buckets[lo..hi];
            out.push(ChunkRow {
                series_id: series,
                tier: tier.code(),
                start_ms: w,
                end_ms: part[part.len() - 1].ts,
                samples: part.len() as i64,
                data: codec::encode_rollup(part),
            });
        }
        w += window;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_tsdb::rollup::HOUR_MS;

    #[test]
    fn complete_minutes_only() {
        assert_eq!(complete_minutes(59_999), 60_000);
        assert_eq!(complete_minutes(60_000), 60_000);
        assert_eq!(complete_minutes(119_998), 60_000);
    }

    #[test]
    fn windows_are_aligned_and_bounded() {
        let finer: Vec<Bucket> = (0..1000)
            .map(|i| Bucket {
                ts: i * MINUTE_MS,
                min: 1.0,
                max: 1.0,
                sum: 1.0,
                count: 1,
            })
            .collect();
        let rows = rollup_windows(7, Tier::Hour, &finer, 0, 10 * HOUR_MS);
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].start_ms, rows[0].samples), (0, 10));
        let rows = rollup_windows(7, Tier::Minute, &[], 0, 10 * HOUR_MS);
        assert!(rows.is_empty());
    }
}
