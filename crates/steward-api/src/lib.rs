//! Steward's HTTP API: the axum router, its handlers, authentication and authorization, the
//! OpenAPI document, and `serve()`, which runs it on a listener until shutdown.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod agent_progress;
pub mod auth;

pub mod edge;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
mod router;
mod security;
pub mod sockets;
mod state;
pub mod telemetry;
mod web;
pub mod ws_deflate;

pub use error::ApiError;
pub use router::{router, serve};
pub use state::{ApiConfig, AppState};
