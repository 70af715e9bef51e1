//! SSH for Steward, on russh: connecting with host-key trust (directly or through a jump
//! host), running commands, a pool that keeps one connection per server, parsing uploaded
//! private keys and generating key pairs.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod client;
pub mod keys;
pub mod pool;
pub mod pty;
pub mod runner;
