//! The `steward` binary's library half: [`app::build`], which wires an instance together once
//! for `steward serve` and for the tests (`steward-testkit`). The command line itself (`main.rs`,
//! `config/`, `commands/`) is the binary.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod app;
