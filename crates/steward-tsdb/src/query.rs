//! Range-query planning: which tier answers a query, with which step, and where each part of
//! the range is read from; then the aggregation of what was read into step-aligned points.
use crate::codec::Bucket;
use crate::rollup::{Tier, align_down, combine};

/// How long each tier is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples (default 7 days).
    pub raw_ms: i64,
    /// 1-minute buckets (default 90 days).
    pub minute_ms: i64,
    /// 1-hour buckets (default 2 years).
    pub hour_ms: i64,
}

const DAY_MS: i64 = 86_400_000;

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_ms: 7 * DAY_MS,
            minute_ms: 90 * DAY_MS,
            hour_ms: 730 * DAY_MS,
        }
    }
}

impl Retention {
    /// How long `tier` is kept.
    pub fn of(&self, tier: Tier) -> i64 {
        match tier {
            Tier::Raw => self.raw_ms,
            Tier::Minute => self.minute_ms,
            Tier::Hour => self.hour_ms,
        }
    }
}

/// At most this many points per series by default.
pub const MAX_POINTS: usize = 1000;

/// How a range query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The tier whose data is aggregated (finer tiers fill in what it has not rolled up yet).
    pub tier: Tier,
    /// The width of each returned point (a multiple of the tier's resolution).
    pub step_ms: i64,
    /// First bucket start (`from` aligned down to the step).
    pub from: i64,
    /// End of the range (inclusive).
    pub to: i64,
}

/// `a / b` rounded up, for `a >= 0` and `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// Plans a query of `[from, to]` with at least `step_ms` between points, at `now_ms`.
/// The step is enlarged so that no series returns more than `max_points` points (at least 3),
/// then the tier is the coarsest whose resolution fits in the step — a coarser one when the
/// finer tier's retention no longer reaches back to `from`.
pub fn plan(
    from: i64,
    to: i64,
    step_ms: i64,
    now_ms: i64,
    retention: &Retention,
    max_points: usize,
) -> Plan {
    let to = to.max(from);
    let span = to.saturating_sub(from);
    // Buckets touched: floor(to/s) - floor(from/s) + 1 <= span/s + 2.
    let slots = (max_points.max(3) - 2) as i64;
    let min_step = ceil_div(span, slots).max(1);
    let mut step = step_ms.max(min_step).max(1);
    let mut tier = if step >= Tier::Hour.resolution_ms() {
        Tier::Hour
    } else if step >= Tier::Minute.resolution_ms() {
        Tier::Minute
    } else {
        Tier::Raw
    };
    while from < now_ms.saturating_sub(retention.of(tier)) {
        match tier.coarser() {
            Some(c) => tier = c,
            None => break,
        }
    }
    let res = tier.resolution_ms();
    if res > 0 {
        step = ceil_div(step, res).saturating_mul(res);
    }
    // Whole steps: the last point covers its full step whichever tier answers it.
    Plan {
        tier,
        step_ms: step,
        from: align_down(from, step),
        to: align_down(to, step).saturating_add(step - 1),
    }
}

/// Where one part of a query's range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The tier to read (for [`Tier::Raw`]: stored chunks and the head).
    pub tier: Tier,
    /// First time (inclusive).
    pub from: i64,
    /// Last time (inclusive).
    pub to: i64,
}

/// How far the rollups of one series have got: every bucket before these times is stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// 1-minute buckets are complete before this time.
    pub minute_to: i64,
    /// 1-hour buckets are complete before this time.
    pub hour_to: i64,
}

/// Splits `[from, to]` of a series queried at `tier` into the parts each tier answers: the
/// tier itself up to its watermark, then the finer tiers for what is not rolled up yet.
pub fn sources(tier: Tier, from: i64, to: i64, w: Watermarks) -> Vec<Source> {
    let mut out = Vec::new();
    let mut start = from;
    let mut t = Some(tier);
    while let Some(cur) = t {
        let limit = match cur {
            Tier::Hour => w.hour_to,
            Tier::Minute => w.minute_to,
            Tier::Raw => i64::MAX,
        };
        let end = to.min(limit.saturating_sub(1));
        if start <= end {
            out.push(Source {
                tier: cur,
                from: start,
                to: end,
            });
            start = end.saturating_add(1);
        }
        if start > to {
            break;
        }
        t = cur.finer();
    }
    out
}

/// One returned point: the step's start and the min, average and max of what fell in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Start of the step (Unix ms).
    pub ts: i64,
    /// Smallest value.
    pub min: f64,
    /// Mean value.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
}

/// Raw samples as one-sample buckets, ready for [`aggregate`].
pub fn raw_buckets(ts: &[i64], values: &[f64]) -> Vec<Bucket> {
    ts.iter()
        .zip(values)
        .filter(|(_, v)| !v.is_nan())
        .map(|(&ts, &v)| Bucket {
            ts,
            min: v,
            max: v,
            sum: v,
            count: 1,
        })
        .collect()
}

/// Aggregates buckets (sorted by time, from any tier) into the plan's steps.
pub fn aggregate(buckets: &[Bucket], plan: &Plan) -> Vec<Point> {
    combine(buckets, plan.step_ms)
        .into_iter()
        .filter(|b| b.ts >= plan.from && b.ts <= plan.to && b.count > 0)
        .map(|b| Point {
            ts: b.ts,
            min: b.min,
            avg: b.avg(),
            max: b.max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::{HOUR_MS, MINUTE_MS, rollup_raw};
    use crate::sim::{self, Rng};

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn picks_tier_by_step_and_caps_points() {
        let r = Retention::default();
        let p = plan(NOW - HOUR_MS, NOW, 0, NOW, &r, MAX_POINTS);
        assert_eq!(p.tier, Tier::Raw);
        let p = plan(NOW - DAY_MS, NOW, 10_000, NOW, &r, MAX_POINTS);
        assert_eq!(
            (p.tier, p.step_ms),
            (Tier::Minute, 2 * MINUTE_MS),
            "24 h: ≥ 86.4 s → 2 min"
        );
        let p = plan(NOW - 30 * DAY_MS, NOW, 0, NOW, &r, MAX_POINTS);
        assert_eq!((p.tier, p.step_ms), (Tier::Minute, 44 * MINUTE_MS));
        let p = plan(NOW - 365 * DAY_MS, NOW, 0, NOW, &r, MAX_POINTS);
        assert_eq!((p.tier, p.step_ms), (Tier::Hour, 9 * HOUR_MS));
        // fine step asked for old data: raw is pruned there, and 1-minute data too
        let p = plan(
            NOW - 10 * DAY_MS,
            NOW - 10 * DAY_MS + HOUR_MS,
            1_000,
            NOW,
            &r,
            MAX_POINTS,
        );
        assert_eq!((p.tier, p.step_ms), (Tier::Minute, MINUTE_MS));
        let p = plan(
            NOW - 100 * DAY_MS,
            NOW - 100 * DAY_MS + HOUR_MS,
            1_000,
            NOW,
            &r,
            MAX_POINTS,
        );
        assert_eq!((p.tier, p.step_ms), (Tier::Hour, HOUR_MS));
    }

    #[test]
    fn never_more_than_max_points() {
        let mut rng = Rng::new(3);
        let r = Retention::default();
        for _ in 0..5_000 {
            let from = NOW - rng.range(0, 800 * DAY_MS);
            let to = from + rng.range(0, 800 * DAY_MS);
            let step = if rng.unit() < 0.5 {
                0
            } else {
                rng.range(1, 10 * HOUR_MS)
            };
            let max = rng.range(3, 2_000) as usize;
            let p = plan(from, to, step, NOW, &r, max);
            let buckets = to.div_euclid(p.step_ms) - from.div_euclid(p.step_ms) + 1;
            assert!(buckets as usize <= max, "{buckets} > {max} for {p:?}");
            assert!(p.step_ms >= step && p.step_ms % p.tier.resolution_ms().max(1) == 0);
            assert!(p.from <= from && from - p.from < p.step_ms);
        }
    }

    #[test]
    fn sources_cover_the_range_once() {
        let w = Watermarks {
            minute_to: 10 * HOUR_MS,
            hour_to: 8 * HOUR_MS,
        };
        assert_eq!(
            sources(Tier::Hour, 0, 12 * HOUR_MS, w),
            vec![
                Source {
                    tier: Tier::Hour,
                    from: 0,
                    to: 8 * HOUR_MS - 1
                },
                Source {
                    tier: Tier::Minute,
                    from: 8 * HOUR_MS,
                    to: 10 * HOUR_MS - 1
                },
                Source {
                    tier: Tier::Raw,
                    from: 10 * HOUR_MS,
                    to: 12 * HOUR_MS
                },
            ]
        );
        assert_eq!(
            sources(Tier::Minute, 11 * HOUR_MS, 12 * HOUR_MS, w),
            vec![Source {
                tier: Tier::Raw,
                from: 11 * HOUR_MS,
                to: 12 * HOUR_MS
            }]
        );
        assert_eq!(
            sources(Tier::Raw, 0, 5, w),
            vec![Source {
                tier: Tier::Raw,
                from: 0,
                to: 5
            }]
        );
        assert_eq!(sources(Tier::Hour, 0, 5, w).len(), 1);
    }

    /// Aggregating rolled-up minutes gives the same points as aggregating the raw samples,
    /// whenever the step is a multiple of a minute.
    #[test]
    fn aggregating_rollups_equals_aggregating_raw() {
        for seed in 0..20 {
            let s = sim::series(
                seed,
                sim::KINDS[seed as usize % 5],
                NOW - DAY_MS,
                10_000,
                8_640,
            );
            let (ts, vs): (Vec<i64>, Vec<f64>) = s.into_iter().unzip();
            let r = Retention::default();
            let p = plan(NOW - DAY_MS, NOW, 0, NOW, &r, MAX_POINTS);
            let from_raw = aggregate(&raw_buckets(&ts, &vs), &p);
            let from_min = aggregate(&rollup_raw(&ts, &vs, MINUTE_MS), &p);
            assert_eq!(from_raw.len(), from_min.len());
            assert!(from_raw.len() <= MAX_POINTS);
            for (a, b) in from_raw.iter().zip(&from_min) {
                assert_eq!((a.ts, a.min, a.max), (b.ts, b.min, b.max));
                assert!((a.avg - b.avg).abs() <= 1e-9 * a.avg.abs().max(1.0));
            }
        }
    }
}
