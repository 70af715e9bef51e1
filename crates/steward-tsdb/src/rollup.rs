//! Rollups: raw samples into 1-minute buckets, 1-minute buckets into 1-hour buckets. A bucket
//! keeps min, max, sum and count, so coarser buckets combine exactly (the hourly average is
//! the sum over the count of all samples in the hour, not an average of minute averages).
//!
//! NaN samples are left out of every aggregate; a bucket with only NaNs does not exist.
use crate::codec::Bucket;

/// The storage tiers, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Every sample as ingested.
    Raw,
    /// 1-minute buckets.
    Minute,
    /// 1-hour buckets.
    Hour,
}

/// One minute, in ms.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;

impl Tier {
    /// All tiers, finest first.
    pub const ALL: [Tier; 3] = [Tier::Raw, Tier::Minute, Tier::Hour];

    /// The number stored in the database.
    pub fn code(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Minute => 1,
            Tier::Hour => 2,
        }
    }

    /// The tier stored as `code`.
    pub fn from_code(code: i64) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The bucket width (0 for raw).
    pub fn resolution_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Minute => MINUTE_MS,
            Tier::Hour => HOUR_MS,
        }
    }

    /// The aligned time span one stored chunk of this rollup tier covers: 6 hours of minutes
    /// (360 buckets), 4 days of hours (96 buckets). Raw chunks are cut by the head instead.
    pub fn window_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::Minute => 6 * HOUR_MS,
            Tier::Hour => 96 * HOUR_MS,
        }
    }

    /// The next finer tier, which this one is computed from.
    pub fn finer(self) -> Option<Tier> {
        match self {
            Tier::Raw => None,
            Tier::Minute => Some(Tier::Raw),
            Tier::Hour => Some(Tier::Minute),
        }
    }

    /// The next coarser tier.
    pub fn coarser(self) -> Option<Tier> {
        match self {
            Tier::Raw => Some(Tier::Minute),
            Tier::Minute => Some(Tier::Hour),
            Tier::Hour => None,
        }
    }
}

/// `t` rounded down to a multiple of `step` (`step > 0`), also for negative `t`.
pub fn align_down(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

/// Folds one bucket into another (both already non-empty).
pub fn merge(into: &mut Bucket, b: &Bucket) {
    into.min = into.min.min(b.min);
    into.max = into.max.max(b.max);
    into.sum += b.sum;
    into.count += b.count;
}

/// Raw samples (sorted by time) into buckets of `width` ms, aligned to multiples of it.
pub fn rollup_raw(ts: &[i64], values: &[f64], width: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for (&t, &v) in ts.iter().zip(values) {
        if v.is_nan() {
            continue;
        }
        let start = align_down(t, width);
        match out.last_mut() {
            Some(b) if b.ts == start => merge(
                b,
                &Bucket {
                    ts: start,
                    min: v,
                    max: v,
                    sum: v,
                    count: 1,
                },
            ),
            _ => out.push(Bucket {
                ts: start,
                min: v,
                max: v,
                sum: v,
                count: 1,
            }),
        }
    }
    out
}

/// Finer buckets (sorted by time) into coarser buckets of `width` ms.
pub fn combine(buckets: &[Bucket], width: i64) -> Vec<Bucket> {
    let mut out: Vec<Bucket> = Vec::new();
    for b in buckets {
        let start = align_down(b.ts, width);
        match out.last_mut() {
            Some(o) if o.ts == start => merge(o, b),
            _ => out.push(Bucket { ts: start, ..*b }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{self, Rng};

    /// The naive computation: group every sample by its bucket, then aggregate each group.
    fn naive(samples: &[(i64, f64)], width: i64) -> Vec<(i64, f64, f64, f64, u64)> {
        let mut groups: std::collections::BTreeMap<i64, Vec<f64>> = Default::default();
        for &(t, v) in samples {
            if !v.is_nan() {
                groups
                    .entry(t.div_euclid(width) * width)
                    .or_default()
                    .push(v);
            }
        }
        groups
            .into_iter()
            .map(|(k, vs)| {
                let min = vs.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = vs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = vs.iter().sum();
                (k, min, max, sum, vs.len() as u64)
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    fn check(got: &[Bucket], want: &[(i64, f64, f64, f64, u64)]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.ts, g.count), (w.0, w.4));
            assert_eq!((g.min, g.max), (w.1, w.2), "min/max are exact");
            assert!(close(g.sum, w.3), "sum {} vs {}", g.sum, w.3);
            assert!(close(g.avg(), w.3 / w.4 as f64));
        }
    }

    #[test]
    fn minute_and_hour_rollups_match_naive() {
        let mut rng = Rng::new(77);
        for case in 0..40 {
            let interval = [1_000, 7_000, 10_000, 45_000, 90_000][case % 5];
            let kind = sim::KINDS[case % sim::KINDS.len()];
            let n = rng.range(1, 5_000) as usize;
            let start = 1_700_000_000_000 + rng.range(-10_000_000, 10_000_000);
            let mut s = sim::series(case as u64, kind, start, interval, n);
            // gaps and NaNs
            if case % 3 == 0 {
                s.retain(|_| rng.unit() > 0.3);
                if let Some(p) = s.get_mut(0) {
                    p.1 = f64::NAN;
                }
            }
            let (ts, vs): (Vec<i64>, Vec<f64>) = s.iter().cloned().unzip();
            let minutes = rollup_raw(&ts, &vs, MINUTE_MS);
            check(&minutes, &naive(&s, MINUTE_MS));
            let hours = combine(&minutes, HOUR_MS);
            check(&hours, &naive(&s, HOUR_MS));
            // combining in arbitrary slices (as windows do) changes nothing
            let cut = minutes.len() / 2;
            let mut parts = combine(&minutes[..cut], HOUR_MS);
            let rest = combine(&minutes[cut..], HOUR_MS);
            match (parts.last_mut(), rest.first()) {
                (Some(a), Some(b)) if a.ts == b.ts => {
                    merge(a, b);
                    parts.extend_from_slice(&rest[1..]);
                }
                _ => parts.extend_from_slice(&rest),
            }
            check(&parts, &naive(&s, HOUR_MS));
        }
    }

    #[test]
    fn hourly_average_is_not_an_average_of_averages() {
        // 59 minutes with one sample of 0, one minute with 60 samples of 60.
        let mut ts = Vec::new();
        let mut vs = Vec::new();
        for m in 0..59 {
            ts.push(m * MINUTE_MS);
            vs.push(0.0);
        }
        for s in 0..60 {
            ts.push(59 * MINUTE_MS + s * 1000);
            vs.push(60.0);
        }
        let hour = combine(&rollup_raw(&ts, &vs, MINUTE_MS), HOUR_MS);
        assert_eq!(hour.len(), 1);
        assert_eq!(hour[0].count, 119);
        assert!(close(hour[0].avg(), 3600.0 / 119.0));
    }

    #[test]
    fn negative_times_align_down() {
        assert_eq!(align_down(-1, MINUTE_MS), -MINUTE_MS);
        assert_eq!(align_down(0, MINUTE_MS), 0);
        assert_eq!(align_down(MINUTE_MS + 5, MINUTE_MS), MINUTE_MS);
    }
}
