//! Exponential backoff with jitter between connection attempts, so a fleet of agents does
//! not reconnect in step after a hub restart.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays that double from `base` up to `cap`, each drawn uniformly from the upper half
/// (`[d/2, d]`).
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = full / 2;
        let ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(random() % ms.saturating_add(1))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Randomness enough for jitter, from the standard library's randomly keyed hasher.
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        let bounds = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30];
        for (d, hi) in delays.iter().zip(bounds) {
            let hi = Duration::from_secs(hi);
            assert!(
                *d >= hi / 2 && *d <= hi,
                "{d:?} within [{:?}, {hi:?}]",
                hi / 2
            );
        }
        let many: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(many.iter().any(|d| *d != many[0]), "jittered: {many:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }
}
