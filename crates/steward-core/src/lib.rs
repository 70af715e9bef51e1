//! Steward's domain core: validated value types, permissions and RBAC decisions, password
//! policy and login-throttle maths. Pure logic only: no I/O, no web or database types.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod clock;
pub mod password;
pub mod rbac;
pub mod throttle;
pub mod validate;

pub use clock::{Clock, SystemClock};
pub use rbac::{Authz, Grant, Permission, Scope};
pub use validate::ValidationError;

/// The organization every row belongs to until multi-tenancy arrives.
pub const DEFAULT_ORG_ID: &str = "00000000-0000-0000-0000-000000000001";
