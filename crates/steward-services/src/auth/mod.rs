//! The authentication core: password hashing under a bounded number of slots ([`password`]),
//! access-token signing ([`jwt`]), refresh, API and setup tokens ([`tokens`]), and TOTP
//! ([`totp`]).
pub mod jwt;
pub mod password;
pub mod tokens;
pub mod totp;
