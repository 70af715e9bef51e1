//! The head: the open (not yet sealed) chunk of every series, in memory, plus the bookkeeping
//! of the head log that makes it crash-safe.
//!
//! - `append` accepts a sample only if its time is after the series' last one (a duplicate or
//!   out-of-order sample is counted and dropped), so backfill after a reconnect never stores a
//!   sample twice.
//! - A chunk is sealed when it holds [`HeadConfig::max_samples`] samples or spans
//!   [`HeadConfig::max_span_ms`] (checked on append, and against the clock by `seal_idle` for
//!   series that went quiet). Sealed chunks wait in the head, still queryable, until a flush
//!   has stored them.
//! - Every accepted sample is also queued for the head log. A flush (`take_flush`) writes the
//!   queue as one log row numbered by the head's epoch. Each open chunk remembers the epoch of
//!   the row holding its first sample; log rows older than every open chunk's epoch can be
//!   deleted in the same transaction that stores the sealed chunks. So that a slow series
//!   cannot pin the log for hours, a flush re-logs ("checkpoints") the whole open chunk of
//!   every series pinned to a row older than `max_pin_age_ms` — the log stays bounded by the
//!   head's size plus that age of ingest.
use std::collections::{HashMap, VecDeque};

use crate::codec::LogSample;

/// A series' id (the integer key in the database).
pub type SeriesId = i64;

/// When chunks are sealed.
#[derive(Debug, Clone, Copy)]
pub struct HeadConfig {
    /// Samples per chunk (720: two hours at 10 s, twelve minutes at 1 s). Fewer makes the
    /// per-chunk overhead (pco headers, row and index) weigh more; more costs memory.
    pub max_samples: usize,
    /// The longest time a chunk may span (6 h), so quiet series get sealed too.
    pub max_span_ms: i64,
    /// Log rows older than this are released by re-logging the open chunks pinned to them.
    pub max_pin_age_ms: i64,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            max_samples: 720,
            max_span_ms: 6 * 3_600_000,
            max_pin_age_ms: 10 * 60_000,
        }
    }
}

/// A chunk ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedChunk {
    /// The series.
    pub series: SeriesId,
    /// Times, strictly increasing (never empty).
    pub ts: Vec<i64>,
    /// Values, one per time.
    pub values: Vec<f64>,
}

/// What one flush must write, in one transaction: the log row `epoch` holding `log`, the
/// sealed chunks, and the deletion of log rows numbered below `keep_from`.
#[derive(Debug, Clone)]
pub struct Flush {
    /// The number of the log row to write.
    pub epoch: u64,
    /// The samples of the log row, in replay order.
    pub log: Vec<LogSample>,
    /// Chunks to store.
    pub sealed: Vec<SealedChunk>,
    /// Log rows numbered below this are no longer needed once this flush is committed.
    pub keep_from: u64,
    /// Series whose open chunk was re-logged in full into this row.
    pub checkpointed: usize,
}

#[derive(Debug, Default)]
struct Open {
    ts: Vec<i64>,
    values: Vec<f64>,
    /// Epoch of the log row holding the first sample of `ts`.
    first_epoch: u64,
    /// Samples at or before this time are refused.
    floor: i64,
    latest: Option<(i64, f64)>,
}

/// Counters for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadStats {
    /// Samples accepted.
    pub accepted: u64,
    /// Samples refused as duplicate or out of order.
    pub rejected: u64,
    /// Chunks sealed.
    pub sealed: u64,
}

/// The in-memory head of every series.
#[derive(Debug)]
pub struct Head {
    cfg: HeadConfig,
    series: HashMap<SeriesId, Open>,
    /// The number of the next log row.
    epoch: u64,
    /// When each log row still referenced was taken (epoch, ms).
    epoch_times: VecDeque<(u64, i64)>,
    pending: Vec<LogSample>,
    /// Sealed chunks not yet stored, with the epoch of the flush carrying them.
    unstored: Vec<(Option<u64>, SealedChunk)>,
    logging: bool,
    stats: HeadStats,
}

impl Head {
    /// An empty head whose next log row is `epoch`.
    pub fn new(cfg: HeadConfig, epoch: u64) -> Self {
        Self {
            cfg,
            series: HashMap::new(),
            epoch,
            epoch_times: VecDeque::new(),
            pending: Vec::new(),
            unstored: Vec::new(),
            logging: true,
            stats: HeadStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> HeadConfig {
        self.cfg
    }

    /// Refuses samples of `series` at or before `ts` (what is already stored).
    pub fn set_floor(&mut self, series: SeriesId, ts: i64) {
        let epoch = self.epoch;
        let o = self.series.entry(series).or_insert_with(|| Open {
            first_epoch: epoch,
            floor: i64::MIN,
            ..Default::default()
        });
        o.floor = o.floor.max(ts);
    }

    /// Adds a sample; false if it is not after the series' last one (or its floor).
    pub fn append(&mut self, series: SeriesId, ts: i64, value: f64) -> bool {
        let epoch = self.epoch;
        let o = self.series.entry(series).or_insert_with(|| Open {
            first_epoch: epoch,
            floor: i64::MIN,
            ..Default::default()
        });
        if ts <= o.floor {
            self.stats.rejected += 1;
            return false;
        }
        if let Some(&first) = o.ts.first()
            && (o.ts.len() >= self.cfg.max_samples
                || ts.saturating_sub(first) >= self.cfg.max_span_ms)
        {
            let sealed = SealedChunk {
                series,
                ts: std::mem::take(&mut o.ts),
                values: std::mem::take(&mut o.values),
            };
            self.unstored.push((None, sealed));
            self.stats.sealed += 1;
        }
        if o.ts.is_empty() {
            o.first_epoch = epoch;
        }
        o.ts.push(ts);
        o.values.push(value);
        o.floor = ts;
        o.latest = Some((ts, value));
        self.stats.accepted += 1;
        if self.logging {
            self.pending.push(LogSample { series, ts, value });
        }
        true
    }

    /// Replays one log row (numbered `epoch`, taken at `at_ms`) after a restart: its samples
    /// go into the head without being logged again. Call in increasing `epoch` order.
    pub fn replay(&mut self, epoch: u64, at_ms: i64, samples: &[LogSample]) {
        let next = self.epoch.max(epoch + 1);
        self.epoch = epoch;
        self.logging = false;
        for s in samples {
            self.append(s.series, s.ts, s.value);
        }
        self.logging = true;
        self.epoch = next;
        self.epoch_times.push_back((epoch, at_ms));
    }

    /// Seals the open chunks whose first sample is `max_span_ms` or more before `now_ms`
    /// (series that went quiet). Returns how many.
    pub fn seal_idle(&mut self, now_ms: i64) -> usize {
        let mut n = 0;
        for (&id, o) in self.series.iter_mut() {
            if let Some(&first) = o.ts.first()
                && now_ms.saturating_sub(first) >= self.cfg.max_span_ms
            {
                self.unstored.push((
                    None,
                    SealedChunk {
                        series: id,
                        ts: std::mem::take(&mut o.ts),
                        values: std::mem::take(&mut o.values),
                    },
                ));
                n += 1;
            }
        }
        self.stats.sealed += n as u64;
        n
    }

    /// Takes what the next flush must write (see [`Flush`]). `now_ms` dates the log row.
    /// Until [`Head::commit_flush`] or [`Head::abort_flush`], the sealed chunks stay
    /// queryable here.
    pub fn take_flush(&mut self, now_ms: i64) -> Flush {
        let epoch = self.epoch;
        self.epoch += 1;
        // Rows taken at or before this time are too old to keep pinned.
        let too_old = now_ms.saturating_sub(self.cfg.max_pin_age_ms);
        let checkpoint_before = self
            .epoch_times
            .iter()
            .take_while(|(_, at)| *at <= too_old)
            .last()
            .map_or(0, |(e, _)| e + 1);
        let mut log = std::mem::take(&mut self.pending);
        let mut checkpoint: HashMap<SeriesId, i64> = HashMap::new();
        for (&id, o) in self.series.iter_mut() {
            if let Some(&first) = o.ts.first()
                && o.first_epoch < checkpoint_before
            {
                checkpoint.insert(id, first);
                o.first_epoch = epoch;
            }
        }
        if !checkpoint.is_empty() {
            // The re-logged chunks already contain their pending samples.
            log.retain(|s| checkpoint.get(&s.series).is_none_or(|&first| s.ts < first));
            for &id in checkpoint.keys() {
                let o = &self.series[&id];
                log.extend(o.ts.iter().zip(&o.values).map(|(&ts, &value)| LogSample {
                    series: id,
                    ts,
                    value,
                }));
            }
        }
        let mut sealed = Vec::new();
        for (tag, c) in self.unstored.iter_mut() {
            if tag.is_none() {
                *tag = Some(epoch);
                sealed.push(c.clone());
            }
        }
        let keep_from = self
            .series
            .values()
            .filter(|o| !o.ts.is_empty())
            .map(|o| o.first_epoch)
            .min()
            .unwrap_or(self.epoch)
            .min(self.epoch);
        self.epoch_times.push_back((epoch, now_ms));
        Flush {
            epoch,
            log,
            sealed,
            keep_from,
            checkpointed: checkpoint.len(),
        }
    }

    /// The flush numbered `epoch` is stored: drop its sealed chunks and forget older rows.
    pub fn commit_flush(&mut self, flush: &Flush) {
        self.unstored.retain(|(tag, _)| *tag != Some(flush.epoch));
        while self
            .epoch_times
            .front()
            .is_some_and(|(e, _)| *e < flush.keep_from)
        {
            self.epoch_times.pop_front();
        }
    }

    /// The flush failed: its samples and chunks go back to wait for the next one.
    pub fn abort_flush(&mut self, flush: Flush) {
        for (tag, _) in self.unstored.iter_mut() {
            if *tag == Some(flush.epoch) {
                *tag = None;
            }
        }
        let mut log = flush.log;
        log.append(&mut self.pending);
        self.pending = log;
        self.epoch_times.retain(|(e, _)| *e != flush.epoch);
    }

    /// The samples of `series` held here (sealed but not stored, and open) with
    /// `from <= ts <= to`, in time order.
    pub fn points(&self, series: SeriesId, from: i64, to: i64) -> (Vec<i64>, Vec<f64>) {
        let mut ts = Vec::new();
        let mut values = Vec::new();
        let mut chunks: Vec<(&[i64], &[f64])> = self
            .unstored
            .iter()
            .filter(|(_, c)| c.series == series)
            .map(|(_, c)| (c.ts.as_slice(), c.values.as_slice()))
            .collect();
        if let Some(o) = self.series.get(&series) {
            chunks.push((&o.ts, &o.values));
        }
        chunks.sort_by_key(|(t, _)| t.first().copied());
        for (t, v) in chunks {
            let lo = t.partition_point(|&x| x < from);
            let hi = t.partition_point(|&x| x <= to);
            if lo < hi {
                ts.extend_from_slice(&t[lo..hi]);
                values.extend_from_slice(&v[lo..hi]);
            }
        }
        (ts, values)
    }

    /// The last sample accepted for `series` since start (or replayed).
    pub fn latest(&self, series: SeriesId) -> Option<(i64, f64)> {
        self.series.get(&series).and_then(|o| o.latest)
    }

    /// Forgets series (their server was deleted).
    pub fn remove_series(&mut self, ids: &[SeriesId]) {
        for id in ids {
            self.series.remove(id);
        }
        self.unstored.retain(|(_, c)| !ids.contains(&c.series));
        self.pending.retain(|s| !ids.contains(&s.series));
    }

    /// Samples held in memory (open and sealed-but-unstored).
    pub fn samples_in_memory(&self) -> usize {
        self.series.values().map(|o| o.ts.len()).sum::<usize>()
            + self.unstored.iter().map(|(_, c)| c.ts.len()).sum::<usize>()
    }

    /// Counters.
    pub fn stats(&self) -> HeadStats {
        self.stats
    }

    /// The number of the next log row.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Rng;

    fn cfg() -> HeadConfig {
        HeadConfig {
            max_samples: 10,
            max_span_ms: 1_000_000,
            max_pin_age_ms: 50_000,
        }
    }

    #[test]
    fn refuses_duplicates_and_out_of_order() {
        let mut h = Head::new(cfg(), 1);
        assert!(h.append(1, 100, 1.0));
        assert!(!h.append(1, 100, 2.0), "duplicate");
        assert!(!h.append(1, 50, 2.0), "out of order");
        assert!(h.append(1, 101, 3.0));
        assert!(h.append(2, 50, 3.0), "another series has its own clock");
        h.set_floor(3, 500);
        assert!(!h.append(3, 500, 0.0), "stored already");
        assert!(h.append(3, 501, 0.0));
        assert_eq!(
            h.points(1, i64::MIN, i64::MAX),
            (vec![100, 101], vec![1.0, 3.0])
        );
        assert_eq!(h.stats().rejected, 3);
        assert_eq!(h.latest(1), Some((101, 3.0)));
    }

    #[test]
    fn seals_by_count_and_span_and_keeps_everything_queryable() {
        let mut h = Head::new(cfg(), 1);
        for i in 0..25 {
            h.append(1, i * 1000, i as f64);
        }
        // a quiet series: a long gap seals it
        h.append(2, 0, 1.0);
        h.append(2, 2_000_000, 2.0);
        let f = h.take_flush(0);
        let lens: Vec<usize> = f.sealed.iter().map(|c| c.ts.len()).collect();
        assert_eq!(lens, vec![10, 10, 1], "{lens:?}");
        let (ts, _) = h.points(1, 0, i64::MAX);
        assert_eq!(ts.len(), 25, "sealed but unstored chunks are still read");
        h.commit_flush(&f);
        let (ts, _) = h.points(1, 0, i64::MAX);
        assert_eq!(ts, (20..25).map(|i| i * 1000).collect::<Vec<_>>());
        assert_eq!(h.seal_idle(1_019_999), 0);
        assert_eq!(h.seal_idle(1_020_000), 1, "series 1 went quiet");
        assert_eq!(h.seal_idle(3_000_000), 1, "then series 2");
    }

    /// Replaying the log rows that a flush keeps gives back every sample not in a stored chunk.
    #[test]
    fn log_rows_kept_cover_everything_unstored() {
        let mut rng = Rng::new(5);
        let mut h = Head::new(cfg(), 1);
        let mut rows: std::collections::BTreeMap<u64, (i64, Vec<LogSample>)> = Default::default();
        let mut stored: Vec<SealedChunk> = Vec::new();
        let mut now = 0i64;
        let mut all: HashMap<SeriesId, Vec<i64>> = HashMap::new();
        for round in 0..200 {
            for _ in 0..rng.range(0, 30) {
                let id = rng.range(0, 6);
                // series 5 is slow: it pins old rows until a checkpoint re-logs it
                if id == 5 && rng.unit() < 0.9 {
                    continue;
                }
                now += rng.range(0, 300);
                if h.append(id, now, 0.0) {
                    all.entry(id).or_default().push(now);
                }
            }
            now += 5_000;
            let f = h.take_flush(now);
            if round % 17 == 3 {
                h.abort_flush(f);
                continue;
            }
            rows.insert(f.epoch, (now, f.log.clone()));
            stored.extend(f.sealed.iter().cloned());
            rows.retain(|&e, _| e >= f.keep_from);
            h.commit_flush(&f);
            // bounded: only rows younger than the pin age plus one flush survive
            let oldest = rows.values().map(|(at, _)| *at).min().unwrap_or(now);
            assert!(
                now - oldest <= 50_000 + 5_000 * 2,
                "log not bounded: {}",
                now - oldest
            );
        }
        // crash: rebuild from stored chunks + kept log rows
        let mut h2 = Head::new(cfg(), 1);
        let mut floors: HashMap<SeriesId, i64> = HashMap::new();
        for c in &stored {
            let f = floors.entry(c.series).or_insert(i64::MIN);
            *f = (*f).max(*c.ts.last().expect("non-empty"));
        }
        for (&id, &f) in &floors {
            h2.set_floor(id, f);
        }
        for (&e, (at, samples)) in &rows {
            h2.replay(e, *at, samples);
        }
        for (id, ts) in all {
            let mut got: Vec<i64> = stored
                .iter()
                .filter(|c| c.series == id)
                .flat_map(|c| c.ts.clone())
                .collect();
            got.extend(h2.points(id, i64::MIN, i64::MAX).0);
            assert_eq!(got, ts, "series {id}");
        }
    }
}
