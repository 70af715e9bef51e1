//! Request handlers, one module per resource.
pub mod agents;
pub mod api_tokens;
pub mod audit;
pub mod auth;
pub mod checks;
pub mod credentials;
pub mod executions;
pub mod health;
pub mod metrics;
pub mod prometheus;
pub mod roles;
pub mod scan;
pub mod scripts;
pub mod servers;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod ssh;
pub mod step_up;
pub mod terminal;
pub mod totp;
pub mod users;

use chrono::{DateTime, Utc};

/// Stored milliseconds to an API time.
pub fn time(ms: i64) -> DateTime<Utc> {
    steward_core::clock::from_ms(ms)
}

/// Optional stored milliseconds to an optional API time.
pub fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

/// The tag used by every route of a resource in the OpenAPI document.
pub(crate) mod tags {
    pub const SETUP: &str = "setup";
    pub const AUTH: &str = "auth";
    pub const USERS: &str = "users";
    pub const ROLES: &str = "roles";
    pub const SERVERS: &str = "servers";
    pub const SCRIPTS: &str = "scripts";
    pub const CHECKS: &str = "checks";
    pub const AUDIT: &str = "audit";
    pub const TOKENS: &str = "api-tokens";
    pub const SETTINGS: &str = "settings";
    pub const HEALTH: &str = "health";
    pub const METRICS: &str = "metrics";
}
