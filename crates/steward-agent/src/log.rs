//! Log lines on stderr. Under systemd (`JOURNAL_STREAM` set) the journal adds the time;
//! anywhere else (the detached launcher's log file, a terminal, Docker) each line starts with
//! the UTC time. `STEWARD_AGENT_LOG=debug` shows the debug lines too.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static DEBUG: OnceLock<bool> = OnceLock::new();
static STAMPED: OnceLock<bool> = OnceLock::new();

pub fn debug_enabled() -> bool {
    *DEBUG.get_or_init(|| std::env::var("STEWARD_AGENT_LOG").is_ok_and(|v| v == "debug"))
}

/// The time at the start of a line (`2026-12-06T23:24:09Z `), or nothing under journald.
pub fn stamp() -> String {
    if !*STAMPED.get_or_init(|| std::env::var_os("JOURNAL_STREAM").is_none()) {
        return String::new();
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{} ", rfc3339(secs))
}

/// Seconds since the epoch as `YYYY-MM-DDThh:mm:ssZ` (proleptic Gregorian, UTC).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

macro_rules! info {
    ($($t:tt)*) => { eprintln!("{}steward-agent: {}", $crate::log::stamp(), format_args!($($t)*)) };
}
macro_rules! warning {
    ($($t:tt)*) => { eprintln!("{}steward-agent: warning: {}", $crate::log::stamp(), format_args!($($t)*)) };
}
macro_rules! error {
    ($($t:tt)*) => { eprintln!("{}steward-agent: error: {}", $crate::log::stamp(), format_args!($($t)*)) };
}
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::log::debug_enabled() {
            eprintln!("{}steward-agent: debug: {}", $crate::log::stamp(), format_args!($($t)*))
        }
    };
}
pub(crate) use {debug, error, info, warning};

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn times_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_796_598_249), "2026-12-06T23:04:09Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
    }
}
