//! Steward's integration tests, in one test binary (linking the whole server once instead of
//! once per file): each module drives a real `steward` — in process through
//! [`steward_testkit::TestApp`], or as a child process — against real sshd, PostgreSQL or
//! SQLite, HTTP and Docker peers on loopback. Run one area with
//! `cargo nextest run -p steward --test it -E 'test(/^scope::/)'`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod agent_install;
mod agent_systemd;
mod architecture;
mod audit;
mod auth;
mod auth_limits;
mod bad_input;
mod checks;
mod cli;
mod collection;
mod docker;
mod edge;
mod executions;
mod metrics_store;
mod monitoring;
mod prometheus;
mod rbac;
mod scan;
mod scope;
mod servers;
mod setup;
mod ssh;
mod terminal;
mod web;
