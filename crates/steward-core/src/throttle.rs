//! Login throttling: how long a key (an account or a source address) must wait after a run of
//! failures. Growing delays rather than hard lock-outs, so an attacker cannot lock a real user
//! out for long, yet guessing stays impractically slow.

/// Failures an account may have before delays start.
pub const ACCOUNT_FREE_FAILURES: i64 = 5;
/// Failures a source address may have before delays start (several users may share a NAT).
pub const ADDRESS_FREE_FAILURES: i64 = 20;
/// The longest delay, in seconds.
pub const MAX_DELAY_SECS: i64 = 15 * 60;
/// A run of failures older than this is forgotten, in seconds.
pub const FORGET_AFTER_SECS: i64 = 60 * 60;

/// Seconds to wait after `failures` consecutive failures when the first `free` are free:
/// 0 until then, then 1 s, 2 s, 4 s … up to [`MAX_DELAY_SECS`].
pub fn delay_secs(failures: i64, free: i64) -> i64 {
    if failures < free {
        return 0;
    }
    let exponent = (failures - free).min(20) as u32;
    (1i64 << exponent).min(MAX_DELAY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        assert_eq!(delay_secs(4, ACCOUNT_FREE_FAILURES), 0);
        assert_eq!(delay_secs(5, ACCOUNT_FREE_FAILURES), 1);
        assert_eq!(delay_secs(6, ACCOUNT_FREE_FAILURES), 2);
        assert_eq!(delay_secs(9, ACCOUNT_FREE_FAILURES), 16);
        assert_eq!(delay_secs(500, ACCOUNT_FREE_FAILURES), MAX_DELAY_SECS);
    }
}
