//! Authentication: passwords, access tokens (JWT), refresh and API tokens, TOTP, cookies, and
//! the [`Principal`] extractor that every protected handler takes, and `revalidate`, which
//! long-lived connections use to ask again.
pub(crate) mod attempt;
pub mod cookies;
pub mod principal;
mod recheck;

pub use principal::{AuthMethod, PendingPrincipal, PendingSession, Principal, SessionPrincipal};
pub(crate) use recheck::revalidate;
