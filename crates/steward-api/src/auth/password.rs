//! Argon2id password hashing. Hashing is slow on purpose, so async callers use the `_async`
//! forms, which run it on the blocking pool.
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use steward_proto::Sensitive;

use crate::error::ApiError;

fn argon2() -> Argon2<'static> {
    // OWASP's recommended Argon2id parameters: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Checks a password against a PHC string (constant-time comparison inside argon2).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// [`hash`] on the blocking pool.
pub async fn hash_async(password: Sensitive) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash(password.expose()))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(anyhow::anyhow!("password hashing failed: {e}")))
}

/// [`verify`] on the blocking pool.
pub async fn verify_async(password: Sensitive, phc: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || verify(password.expose(), &phc))
        .await
        .map_err(ApiError::internal)
}
