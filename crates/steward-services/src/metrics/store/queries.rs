//! Queries: points of a range (planned over the tiers, the head filling in what is not
//! stored yet), a series' raw samples, and the last value of each series.
use std::collections::HashMap;

use steward_db::metrics::{self as db, ChunkRow};
use steward_tsdb::SeriesId;
use steward_tsdb::codec::{self, Bucket};
use steward_tsdb::query::{self, Point, Source, Watermarks};
use steward_tsdb::rollup::Tier;

use super::{Store, StoreResult, lock};

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

impl Store {
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
}
