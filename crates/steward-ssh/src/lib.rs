//! SSH for Steward, on russh: connecting with host-key trust and running commands, parsing
//! uploaded private keys and generating key pairs. (PTYs, SFTP and pooling come next.)
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod client;
pub mod keys;
