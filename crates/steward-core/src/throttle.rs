//! Login throttling: how long a key (an account or a source address) must wait between
//! attempts. Every attempt to prove an identity (a password or a code) is counted *before* it
//! is checked; the first few are free, then each needs a growing delay after the previous
//! one. Growing delays rather than hard lock-outs, so an attacker cannot lock a real user out
//! for long, yet guessing stays impractically slow.
//!
//! The schedule: with `free` free attempts, attempt number `n + 1` (counting from one) may
//! start [`delay_secs`]`(n, free)` seconds after attempt `n` — 0 for the free ones, then 1 s,
//! 2 s, 4 s … up to [`MAX_DELAY_SECS`]. A run is forgotten [`FORGET_AFTER_SECS`] after its
//! last counted attempt; a successful login clears the account's count.
use std::net::{IpAddr, Ipv6Addr};

/// Attempts an account may make before delays start.
pub const ACCOUNT_FREE_FAILURES: i64 = 5;
/// Attempts a source address may make before delays start (several users may share a NAT).
pub const ADDRESS_FREE_FAILURES: i64 = 20;
/// The longest delay, in seconds.
pub const MAX_DELAY_SECS: i64 = 15 * 60;
/// A run of attempts older than this is forgotten, in seconds.
pub const FORGET_AFTER_SECS: i64 = 60 * 60;

/// Seconds that must pass after the `attempts`-th counted attempt before the next one, when
/// the first `free` are free: 0 until then, then 1 s, 2 s, 4 s … up to [`MAX_DELAY_SECS`].
pub fn delay_secs(attempts: i64, free: i64) -> i64 {
    if attempts < free {
        return 0;
    }
    let exponent = (attempts - free).min(20) as u32;
    (1i64 << exponent).min(MAX_DELAY_SECS)
}

/// The smallest number of attempts past the free ones whose delay is [`MAX_DELAY_SECS`]: the
/// store computes [`delay_secs`] in SQL as `1 << (attempts - free)` below it and the maximum
/// from it on.
pub fn max_delay_exponent() -> i64 {
    let mut e = 0;
    while (1i64 << e) < MAX_DELAY_SECS {
        e += 1;
    }
    e
}

/// The throttle key of a source address. IPv4 clients are counted one by one; an IPv6 client
/// by its /64, the block a single site or subscriber usually gets, so rotating through the
/// addresses of one prefix does not buy more attempts. An IPv4-mapped IPv6 address
/// (`::ffff:a.b.c.d`) is the IPv4 client it maps.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "ip:unknown".into(),
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("ip:{prefix}/64")
        }
    }
}

/// The throttle key of an account name: trimmed, lower-cased, printable, at most 64
/// characters (so a key cannot grow with the request).
pub fn account_key(username: &str) -> String {
    let user: String = username
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    format!("user:{user}")
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

    #[test]
    fn the_sql_form_of_the_delay_matches() {
        let e = max_delay_exponent();
        for n in 0..40 {
            let sql_form = if n < ACCOUNT_FREE_FAILURES {
                0
            } else if n - ACCOUNT_FREE_FAILURES >= e {
                MAX_DELAY_SECS
            } else {
                1 << (n - ACCOUNT_FREE_FAILURES)
            };
            assert_eq!(sql_form, delay_secs(n, ACCOUNT_FREE_FAILURES), "{n}");
        }
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(key("192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "ip:192.0.2.7");
        assert_eq!(key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(
            key("2001:db8:1:2:ffff:ffff:ffff:fffe"),
            "ip:2001:db8:1:2::/64"
        );
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::1"), "ip:::/64");
        assert_eq!(address_key(None), "ip:unknown");
    }

    #[test]
    fn account_keys_are_normalised_and_bounded() {
        assert_eq!(account_key("  Admin\n"), "user:admin");
        assert_eq!(account_key(&"x".repeat(500)).len(), 5 + 64);
    }
}
