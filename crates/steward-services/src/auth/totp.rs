//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s), accepting one step of
//! clock drift either way and returning the matched step so a code cannot be replayed.
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

/// Secret length in bytes (160 bits, as RFC 4226 recommends).
pub const SECRET_LEN: usize = 20;
const STEP: u64 = 30;

fn totp(secret: &[u8], account: &str, issuer: &str) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret.to_vec(),
        Some(issuer.to_string()),
        account.to_string(),
    )
    .ok()
}

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut b = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// The secret in base32 (for manual entry).
pub fn base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The `otpauth://` URL authenticator apps scan.
pub fn otpauth_url(secret: &[u8], account: &str, issuer: &str) -> String {
    totp(secret, account, issuer)
        .map(|t| t.get_url())
        .unwrap_or_default()
}

/// If `code` is valid at `now_secs` (± one step), the time step it belongs to.
pub fn verify(secret: &[u8], code: &str, now_secs: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "x", "x")?;
    let now = u64::try_from(now_secs).ok()?;
    let current = now / STEP;
    let mut matched = None;
    // Check every candidate (no early exit) so timing does not reveal which step matched.
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = t.generate(step * STEP);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            matched = Some(step as i64);
        }
    }
    matched
}

/// The code for a time (tests and tools).
pub fn code_at(secret: &[u8], now_secs: i64) -> String {
    totp(secret, "x", "x")
        .map(|t| t.generate(now_secs.max(0) as u64))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_drift_of_one_step_and_returns_the_step() {
        let s = new_secret();
        let now = 1_700_000_000;
        assert_eq!(verify(&s, &code_at(&s, now), now), Some(now / 30));
        assert_eq!(verify(&s, &code_at(&s, now - 30), now), Some(now / 30 - 1));
        assert_eq!(verify(&s, &code_at(&s, now - 90), now), None);
        assert_eq!(verify(&s, "12345", now), None);
        assert_eq!(verify(&s, "abcdef", now), None);
    }

    #[test]
    fn url_has_issuer_and_secret() {
        let s = new_secret();
        let url = otpauth_url(&s, "alice", "Steward");
        assert!(url.starts_with("otpauth://totp/Steward:alice?"));
        assert!(url.contains(&base32(&s)));
    }
}
