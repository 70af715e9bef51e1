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
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use steward_core::Clock;
use steward_db::metrics::{self as db, ChunkRow, SeriesRow};
use steward_db::{Db, DbError};
use steward_tsdb::codec::{self, Bucket, CodecError};
use steward_tsdb::query::{self, Point, Retention, Source, Watermarks};
use steward_tsdb::rollup::{self, MINUTE_MS, Tier, align_down};
use steward_tsdb::{Head, HeadConfig, SeriesId};
use tokio_util::sync::CancellationToken;

mod maintenance;

pub use maintenance::{FlushStats, PruneStats, RollupStats};

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

/// What an ingest call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Samples stored.
    pub accepted: usize,
    /// Samples dropped as duplicate or out of order (at or before the series' last time).
    pub rejected: usize,
}

/// One series of a range answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub label: String,
    /// Step-aligned points, oldest first.
    pub points: Vec<Point>,
}

/// A range answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeResult {
    /// The tier aggregated (finer tiers fill in what it has not rolled up yet).
    pub tier: Tier,
    /// The width of each point.
    pub step_ms: i64,
    pub series: Vec<Series>,
}

/// The last value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    pub name: String,
    pub label: String,
    pub ts: i64,
    pub value: f64,
}

/// Disk use of one tier of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct TierUsage {
    pub tier: Tier,
    pub chunks: i64,
    /// Chunk bytes plus an estimate of row and index overhead.
    pub bytes: i64,
    pub samples: i64,
    /// `bytes` over the days the tier's data covers (at least one day).
    pub bytes_per_day: f64,
    /// What the tier will hold at this rate once its retention is full.
    pub projected_bytes: f64,
}

/// Disk use of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerUsage {
    pub server_id: String,
    pub tiers: Vec<TierUsage>,
    /// Sum of the tiers' bytes per day.
    pub bytes_per_day: f64,
}

/// Estimated row plus index overhead of one chunk (row header, key columns, index entry).
const ROW_OVERHEAD: i64 = 80;

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

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && !s.chars().any(char::is_control)
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

    /// Stores one sample time of a server: `(name, label, value)` per series. Samples at or
    /// before a series' last time are dropped and counted.
    pub async fn ingest(
        &self,
        server_id: &str,
        ts_ms: i64,
        samples: &[(&str, &str, f64)],
    ) -> StoreResult<IngestOutcome> {
        let ids = self.resolve(server_id, samples).await?;
        let mut out = IngestOutcome::default();
        let mut head = lock(&self.inner.head);
        for (id, (_, _, v)) in ids.into_iter().zip(samples) {
            if head.append(id, ts_ms, *v) {
                out.accepted += 1;
            } else {
                out.rejected += 1;
            }
        }
        Ok(out)
    }

    /// The series ids of `samples`, creating the missing series.
    async fn resolve(
        &self,
        server_id: &str,
        samples: &[(&str, &str, f64)],
    ) -> StoreResult<Vec<SeriesId>> {
        let lookup = |reg: &Registry| -> Vec<Option<SeriesId>> {
            let map = reg.by_key.get(server_id);
            samples
                .iter()
                .map(|(n, l, _)| {
                    map.and_then(|m| m.get(&((*n).to_string(), (*l).to_string())).copied())
                })
                .collect()
        };
        let found = lookup(
            &self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let mut missing: Vec<(String, String)> = Vec::new();
        for ((n, l, _), id) in samples.iter().zip(&found) {
            if id.is_none() {
                if !valid_name(n, 128) || !(l.is_empty() || valid_name(l, 256)) {
                    return Err(StoreError::Invalid(format!(
                        "metric name {n:?} / label {l:?} must be 1–128 / 0–256 characters without control characters"
                    )));
                }
                let key = ((*n).to_string(), (*l).to_string());
                if !missing.contains(&key) {
                    missing.push(key);
                }
            }
        }
        let known = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .get(server_id)
            .map_or(0, HashMap::len);
        if known + missing.len() > self.inner.config.max_series_per_server {
            return Err(StoreError::Invalid(format!(
                "server {server_id} would have more than {} metric series",
                self.inner.config.max_series_per_server
            )));
        }
        let now = self.inner.clock.now_ms();
        let rows = db::ensure_series(&self.inner.db.pool, server_id, &missing, now).await?;
        {
            let mut reg = self
                .inner
                .registry
                .write()
                .unwrap_or_else(|e| e.into_inner());
            let mut head = lock(&self.inner.head);
            for r in rows {
                if !reg.meta.contains_key(&r.id) {
                    if let Some(t) = r.raw_to {
                        head.set_floor(r.id, t);
                    }
                    reg.add(r);
                }
            }
        }
        let found = lookup(
            &self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        );
        found
            .into_iter()
            .map(|id| id.ok_or_else(|| StoreError::Invalid("series vanished while created".into())))
            .collect()
    }

    /// Forgets a deleted server's series in memory (the database drops them with the server).
    pub fn forget_server(&self, server_id: &str) {
        let mut reg = self
            .inner
            .registry
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(map) = reg.by_key.remove(server_id) {
            let ids: Vec<SeriesId> = map.into_values().collect();
            for id in &ids {
                reg.meta.remove(id);
            }
            lock(&self.inner.head).remove_series(&ids);
        }
    }

    /// The series of a server (id, name, label), sorted by name and label.
    fn series_of(
        &self,
        server_id: &str,
        names: Option<&[&str]>,
    ) -> Vec<(SeriesId, String, String, Watermarks)> {
        let reg = self
            .inner
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<_> = reg
            .by_key
            .get(server_id)
            .into_iter()
            .flatten()
            .filter(|((n, _), _)| names.is_none_or(|ns| ns.contains(&n.as_str())))
            .map(|((n, l), &id)| (id, n.clone(), l.clone(), reg.marks(id)))
            .collect();
        out.sort_by(|a, b| (&a.1, &a.2).cmp(&(&b.1, &b.2)));
        out
    }

    /// Points of the named series of a server (every label of each name) over `[from, to]`,
    /// at least `step_ms` apart and at most `max_points` per series.
    pub async fn range(
        &self,
        server_id: &str,
        names: &[&str],
        from: i64,
        to: i64,
        step_ms: i64,
    ) -> StoreResult<RangeResult> {
        let now = self.inner.clock.now_ms();
        let plan = query::plan(
            from,
            to,
            step_ms,
            now,
            &self.inner.config.retention,
            self.inner.config.max_points,
        );
        let series = self.series_of(server_id, Some(names));
        let parts: Vec<Vec<Source>> = series
            .iter()
            .map(|(_, _, _, w)| query::sources(plan.tier, plan.from, plan.to, *w))
            .collect();
        let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); series.len()];
        for tier in [Tier::Hour, Tier::Minute, Tier::Raw] {
            let wanted: Vec<(usize, Source)> = parts
                .iter()
                .enumerate()
                .flat_map(|(i, ps)| ps.iter().filter(|s| s.tier == tier).map(move |s| (i, *s)))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let ids: Vec<SeriesId> = wanted.iter().map(|(i, _)| series[*i].0).collect();
            let lo = wanted
                .iter()
                .map(|(_, s)| s.from)
                .min()
                .unwrap_or(plan.from);
            let hi = wanted.iter().map(|(_, s)| s.to).max().unwrap_or(plan.to);
            let rows = db::chunks(
                &self.inner.db.pool,
                &ids,
                tier.code(),
                lo,
                hi,
                self.max_span(tier),
            )
            .await?;
            let mut by_series: HashMap<SeriesId, Vec<ChunkRow>> = HashMap::new();
            for r in rows {
                by_series.entry(r.series_id).or_default().push(r);
            }
            for (i, src) in wanted {
                let id = series[i].0;
                let chunks = by_series.remove(&id).unwrap_or_default();
                let got = if tier == Tier::Raw {
                    let (ts, vs) = self.raw_points(id, &chunks, src.from, src.to)?;
                    query::raw_buckets(&ts, &vs)
                } else {
                    let mut out = Vec::new();
                    for c in &chunks {
                        out.extend(
                            codec::decode_rollup(&c.data)?
                                .into_iter()
                                .filter(|b| b.ts >= src.from && b.ts <= src.to),
                        );
                    }
                    out
                };
                buckets[i].extend(got);
            }
        }
        let series = series
            .into_iter()
            .zip(buckets)
            .map(|((_, name, label, _), b)| Series {
                name,
                label,
                points: query::aggregate(&b, &plan),
            })
            .collect();
        Ok(RangeResult {
            tier: plan.tier,
            step_ms: plan.step_ms,
            series,
        })
    }

    /// The longest span of one stored chunk of `tier`.
    fn max_span(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw => self.inner.config.head.max_span_ms,
            t => t.window_ms(),
        }
    }

    /// Raw samples of a series in `[from, to]`: the stored chunks given, then the head, in
    /// time order without duplicates (a flush may store a chunk while it is still in the head).
    fn raw_points(
        &self,
        id: SeriesId,
        chunks: &[ChunkRow],
        from: i64,
        to: i64,
    ) -> StoreResult<(Vec<i64>, Vec<f64>)> {
        let mut pts: Vec<(i64, f64)> = Vec::new();
        for c in chunks {
            let (ts, vs) = codec::decode_raw(&c.data)?;
            pts.extend(
                ts.into_iter()
                    .zip(vs)
                    .filter(|(t, _)| *t >= from && *t <= to),
            );
        }
        let (hts, hvs) = lock(&self.inner.head).points(id, from, to);
        pts.extend(hts.into_iter().zip(hvs));
        pts.sort_by_key(|p| p.0);
        pts.dedup_by_key(|p| p.0);
        Ok(pts.into_iter().unzip())
    }

    /// The raw samples of one series over `[from, to]`, exactly as stored (for tests and
    /// exports).
    pub async fn raw(
        &self,
        server_id: &str,
        name: &str,
        label: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, f64)>> {
        let id = {
            let reg = self
                .inner
                .registry
                .read()
                .unwrap_or_else(|e| e.into_inner());
            reg.by_key
                .get(server_id)
                .and_then(|m| m.get(&(name.to_string(), label.to_string())).copied())
        };
        let Some(id) = id else {
            return Ok(Vec::new());
        };
        let rows = db::chunks(
            &self.inner.db.pool,
            &[id],
            Tier::Raw.code(),
            from,
            to,
            self.max_span(Tier::Raw),
        )
        .await?;
        let (ts, vs) = self.raw_points(id, &rows, from, to)?;
        Ok(ts.into_iter().zip(vs).collect())
    }

    /// The last value of every series of a server.
    pub async fn latest(&self, server_id: &str) -> StoreResult<Vec<Latest>> {
        let mut out = Vec::new();
        for (id, name, label, _) in self.series_of(server_id, None) {
            let in_head = lock(&self.inner.head).latest(id);
            let last = match in_head {
                Some(p) => Some(p),
                None => match db::last_chunk(&self.inner.db.pool, id, Tier::Raw.code()).await? {
                    Some(c) => {
                        let (ts, vs) = codec::decode_raw(&c.data)?;
                        ts.last().copied().zip(vs.last().copied())
                    }
                    None => None,
                },
            };
            if let Some((ts, value)) = last {
                out.push(Latest {
                    name,
                    label,
                    ts,
                    value,
                });
            }
        }
        Ok(out)
    }

    /// Disk use per server and tier, with bytes per day and what each tier will hold once its
    /// retention is full. Scans the chunk table: call it from a page, not per sample.
    pub async fn disk_usage(&self) -> StoreResult<Vec<ServerUsage>> {
        const DAY: f64 = 86_400_000.0;
        let rows = db::disk_usage(&self.inner.db.pool).await?;
        let mut out: Vec<ServerUsage> = Vec::new();
        for r in rows {
            let Some(tier) = Tier::from_code(r.tier) else {
                continue;
            };
            let bytes = r.bytes + r.chunks * ROW_OVERHEAD;
            let days = ((r.last_ms - r.first_ms) as f64 / DAY).max(1.0);
            let per_day = bytes as f64 / days;
            let usage = TierUsage {
                tier,
                chunks: r.chunks,
                bytes,
                samples: r.samples,
                bytes_per_day: per_day,
                projected_bytes: per_day * self.inner.config.retention.of(tier) as f64 / DAY,
            };
            match out.last_mut() {
                Some(s) if s.server_id == r.server_id => {
                    s.bytes_per_day += per_day;
                    s.tiers.push(usage);
                }
                _ => out.push(ServerUsage {
                    server_id: r.server_id,
                    bytes_per_day: per_day,
                    tiers: vec![usage],
                }),
            }
        }
        Ok(out)
    }

    /// Samples held in memory.
    pub fn samples_in_memory(&self) -> usize {
        lock(&self.inner.head).samples_in_memory()
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
