//! SSH for Steward. For now: parsing uploaded private keys and generating key pairs, on
//! russh's key types. (Connections, PTYs, SFTP and host-key trust arrive with the SSH engine.)
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod keys;
