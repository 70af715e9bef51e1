//! Log lines on stderr (journald and Docker add the time). `STEWARD_AGENT_LOG=debug` shows
//! the debug lines too.

use std::sync::OnceLock;

static DEBUG: OnceLock<bool> = OnceLock::new();

pub fn debug_enabled() -> bool {
    *DEBUG.get_or_init(|| std::env::var("STEWARD_AGENT_LOG").is_ok_and(|v| v == "debug"))
}

macro_rules! info {
    ($($t:tt)*) => { eprintln!("steward-agent: {}", format_args!($($t)*)) };
}
macro_rules! warning {
    ($($t:tt)*) => { eprintln!("steward-agent: warning: {}", format_args!($($t)*)) };
}
macro_rules! error {
    ($($t:tt)*) => { eprintln!("steward-agent: error: {}", format_args!($($t)*)) };
}
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::log::debug_enabled() {
            eprintln!("steward-agent: debug: {}", format_args!($($t)*))
        }
    };
}
pub(crate) use {debug, error, info, warning};
