//! Steward's domain services: what the hub does, without HTTP. The HTTP API (`steward-api`),
//! the command line and, later, the job engine's workers call these; nothing here knows of
//! axum, tower, hyper or WebSockets (a test over `cargo metadata` checks it). Failures are
//! [`ServiceError`]s, which the API maps to its answers.
//!
//! [`Services`] is the foundation every service takes. The move of the domain out of
//! steward-api happens in steps (issue 14); so far: the settings ([`config`]), the
//! authentication core ([`auth`]), who is calling ([`principal`]), the audit log ([`audit`]),
//! reaching managed servers ([`fleet`]), start-up preparation ([`bootstrap`]), the pure half of
//! service discovery ([`discovery`]) and the metrics store ([`metrics`]).
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod accounts;
pub mod agent_install;
pub mod agents;
pub mod api_tokens;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod checks;
pub mod config;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod fleet;
pub mod live;
pub mod metrics;
pub mod principal;
pub mod roles;
pub mod runner;
pub mod scripts;
pub mod second_factor;
pub mod servers;
mod services;
pub mod sessions;
pub mod settings;
pub mod terminal;

pub use error::{ServiceError, ServiceResult};
pub use services::{Inner, Services};
