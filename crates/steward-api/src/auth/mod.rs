//! Authentication: passwords, access tokens (JWT), refresh and API tokens, TOTP, cookies, and
//! the [`Principal`] extractor that every protected handler takes.
pub mod cookies;
pub mod jwt;
pub mod password;
pub mod principal;
pub mod tokens;
pub mod totp;

pub use principal::{AuthMethod, PendingPrincipal, Principal};
