//! Argon2id password hashing, bounded. Each hash needs 19 MiB of working memory and tens of
//! milliseconds of CPU, so an unbounded number at once (a flood of logins) would take the
//! host's memory and CPU. [`Hasher`] runs at most `slots` at once on the blocking pool, each in
//! one of at most `slots` working buffers allocated once and reused (cleared after each use),
//! so the memory password hashing takes is at most `slots` × 19 MiB, however many requests
//! arrive; a caller that finds no free slot within [`WAIT`] gets [`ServiceError::Busy`] (the API
//! answers 503 `busy` with `Retry-After`). (Allocating per hash, as the argon2 crate does by default, leaves freed
//! 19 MiB blocks in glibc's heap once its dynamic mmap threshold has grown: a burst's memory
//! then stays with the process.)
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use steward_proto::Sensitive;

use crate::error::ServiceError;

/// OWASP's recommended Argon2id parameters: 19 MiB, 2 passes, 1 lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Bytes of working memory one hash takes.
pub const BYTES_PER_HASH: usize = M_COST_KIB as usize * 1024;
/// How long a request waits for a free slot before it is told the server is busy.
pub const WAIT: Duration = Duration::from_secs(2);

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default()
}

/// Working memory for one hash.
type Blocks = Box<[Block]>;

/// Runs Argon2id with a bounded number of hashes (and working buffers) at once.
#[derive(Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    /// Buffers not in use. At most as many exist as there are slots: a slot's holder takes
    /// one from here or, if none is left yet, allocates one.
    buffers: Arc<Mutex<Vec<Blocks>>>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("free_slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

fn busy() -> ServiceError {
    ServiceError::Busy {
        code: "busy",
        message: "the server is busy checking passwords; try again in a moment".into(),
        retry_after_secs: i64::try_from(WAIT.as_secs()).unwrap_or(1).max(1),
    }
}

impl Hasher {
    /// A hasher that runs at most `slots` (at least one) hashes at once.
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs `work` with a slot and a working buffer on the blocking pool; `Busy` if no
    /// slot frees up within [`WAIT`].
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let permit = tokio::time::timeout(WAIT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(ServiceError::internal)?;
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let taken = buffers.lock().map(|mut b| b.pop()).unwrap_or(None);
            let mut blocks =
                taken.unwrap_or_else(|| vec![Block::default(); params().block_count()].into());
            let out = work(&mut blocks);
            // What a hash leaves in its working memory is derived from the password.
            blocks.fill(Block::default());
            if let Ok(mut b) = buffers.lock() {
                b.push(blocks);
            }
            drop(permit);
            out
        })
        .await
        .map_err(ServiceError::internal)
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: Sensitive) -> Result<String, ServiceError> {
        self.run(move |blocks| hash_with(password.expose(), blocks))
            .await?
            .map_err(|e| ServiceError::internal(anyhow::anyhow!("password hashing failed: {e}")))
    }

    /// Checks a password against a PHC string (the outputs are compared in constant time).
    pub async fn verify(&self, password: Sensitive, phc: String) -> Result<bool, ServiceError> {
        self.run(move |blocks| verify_with(password.expose(), &phc, blocks))
            .await
    }
}

/// Hashes a password into a PHC string, with `blocks` as working memory.
fn hash_with(password: &str, blocks: &mut [Block]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        Ok(argon.hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            out,
            &mut *blocks,
        )?)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks a password against a PHC string with `blocks` as working memory. A stored hash
/// asking for more memory than a working buffer holds is refused (and logged) rather than
/// given more memory: every hash Steward writes uses [`params`].
fn verify_with(password: &str, phc: &str, blocks: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (&parsed.hash, &parsed.salt) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .unwrap_or(Version::default());
    if params.block_count() > blocks.len() {
        tracing::error!(
            m_cost = params.m_cost(),
            "a stored password hash needs more memory than Steward allows a hash; refusing it"
        );
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *blocks)?)
    });
    // `Output`'s equality is constant-time.
    computed.is_ok_and(|c| c == *expected)
}

/// Hashes a password without the bound, allocating its own memory: for the console (one
/// hash per command) and for the dummy hash made at start.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut blocks = vec![Block::default(); params().block_count()];
    hash_with(password, &mut blocks)
}

/// Checks a password without the bound (see [`hash`]).
pub fn verify(password: &str, phc: &str) -> bool {
    let mut blocks = vec![Block::default(); params().block_count()];
    verify_with(password, phc, &mut blocks)
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    #[test]
    fn hashes_round_trip_and_match_the_argon2_crate() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        // The crate's own verifier accepts our hashes, and ours accepts its hashes.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        let theirs = argon2::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, params()),
            b"pw-from-the-crate",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert!(verify("pw-from-the-crate", &theirs));
        assert!(!verify("pw", "not a phc string"));
    }

    #[test]
    fn a_hash_wanting_more_memory_is_refused_not_allocated() {
        let big = Params::new(M_COST_KIB * 2, 1, 1, None).unwrap();
        let phc = argon2::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, big),
            b"pw",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert!(!verify("pw", &phc));
    }

    #[tokio::test]
    async fn at_most_slots_buffers_exist() {
        let hasher = Hasher::new(2);
        let phc = hash("pw-pw-pw-pw").unwrap();
        let checks = (0..6).map(|_| hasher.verify(Sensitive::new("pw-pw-pw-pw"), phc.clone()));
        for ok in futures_util::future::join_all(checks).await {
            assert!(ok.unwrap());
        }
        assert!(hasher.buffers.lock().unwrap().len() <= 2);
    }
}
