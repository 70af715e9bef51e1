//! Opaque random tokens (refresh, API, setup, recovery codes) and their stored hashes.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix that marks a personal API token.
pub const API_TOKEN_PREFIX: &str = "stw_";

/// `bytes` random bytes, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The stored form of a high-entropy token: hex SHA-256. (Tokens are random, so a fast hash
/// is enough; lookups go by hash, so no comparison of secrets happens in application code.)
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new personal API token.
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", random_token(32))
}

/// Characters of a recovery code: no look-alikes (0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters in a recovery code: 16 × log2(31) ≈ 79 bits, beyond offline guessing even from
/// a stolen database (where they are stored as plain SHA-256).
const RECOVERY_LEN: usize = 16;

/// A recovery code, shown as `xxxx-xxxx-xxxx-xxxx`.
pub fn new_recovery_code() -> String {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % RECOVERY_ALPHABET.len());
    let mut chars = String::with_capacity(RECOVERY_LEN);
    while chars.len() < RECOVERY_LEN {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        for x in b.iter().map(|x| usize::from(*x)).filter(|x| *x < limit) {
            if chars.len() < RECOVERY_LEN {
                chars.push(char::from(RECOVERY_ALPHABET[x % RECOVERY_ALPHABET.len()]));
            }
        }
    }
    group(&chars)
}

fn group(chars: &str) -> String {
    chars
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// Normalizes a typed recovery code (case, spaces, dashes) before hashing.
pub fn normalize_recovery_code(input: &str) -> String {
    let clean: String = input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(RECOVERY_LEN + 1)
        .collect();
    if clean.len() == RECOVERY_LEN {
        group(&clean)
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_normalize() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        assert_eq!(
            normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
            code
        );
    }

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = new_api_token();
        assert!(a.starts_with(API_TOKEN_PREFIX));
        assert_ne!(a, new_api_token());
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
    }
}
