//! The wire types of Steward's HTTP API (`/api/v1`), shared by the server, the CLI and the
//! OpenAPI document the UI's client is generated from. Request types refuse unknown fields,
//! so a misspelt field is an error rather than silently ignored.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod agents;
pub mod audit;
pub mod auth;
pub mod checks;
pub mod error;
pub mod metrics;
pub mod roles;
pub mod scan;
pub mod scripts;
pub mod sensitive;
pub mod servers;
pub mod terminal;
pub mod users;

pub use agents::*;
pub use audit::*;
pub use auth::*;
pub use checks::*;
pub use error::*;
pub use metrics::*;
pub use roles::*;
pub use scan::*;
pub use scripts::*;
pub use sensitive::Sensitive;
pub use servers::*;
pub use terminal::*;
pub use users::*;

pub use steward_core::Permission;
