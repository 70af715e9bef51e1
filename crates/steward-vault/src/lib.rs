//! The secret vault: AES-256-GCM encryption under a master keyring kept outside the database.
//!
//! Every sealed value names the key that sealed it (`stw1:<key id>:<base64 nonce+ciphertext>`),
//! and binds its context (which row and purpose it belongs to) as associated data, so a
//! ciphertext copied into another row does not decrypt. The keyring holds one primary key used
//! for new encryptions and any number of older keys kept for decryption until every ciphertext
//! has been re-encrypted (`steward vault rotate-key`).
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

mod keyring;

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use zeroize::Zeroizing;

pub use keyring::{KeyId, Keyring};

const PREFIX: &str = "stw1";
const NONCE_LEN: usize = 12;

/// What went wrong with the vault. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The keyring file could not be read or written.
    #[error("master keyring {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The keyring text is not valid.
    #[error("master keyring is malformed: {0}")]
    Malformed(String),
    /// A ciphertext names a key the keyring does not hold.
    #[error("secret was sealed with key {0}, which is not in the master keyring")]
    UnknownKey(String),
    /// A ciphertext is not in the vault's format.
    #[error("sealed value is malformed")]
    BadCiphertext,
    /// Authentication failed: wrong key, wrong context, or tampering.
    #[error("secret could not be decrypted (wrong key or tampered data)")]
    Decrypt,
    /// This keyring comes from the environment and cannot be changed by Steward.
    #[error("the master key comes from STEWARD_MASTER_KEY; {0}")]
    ReadOnly(&'static str),
}

/// A sealed secret: the key id (also inside the text) and the text to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The key that sealed it.
    pub key_id: KeyId,
    /// `stw1:<key id>:<base64>`.
    pub text: String,
}

enum Source {
    File {
        path: PathBuf,
        modified: Option<SystemTime>,
    },
    Env,
}

struct Inner {
    keyring: Keyring,
    source: Source,
}

/// The vault. Cheap to share behind an `Arc`; reloads the keyring file when it changes on disk,
/// so a rotation done by the CLI is picked up by running servers without a restart.
pub struct Vault {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault { .. }")
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Vault {
    /// Opens the keyring file, creating it (mode 0600) with a fresh key when it is missing.
    /// Returns the vault and whether the file was created.
    pub fn open_or_create(path: &Path) -> Result<(Self, bool), VaultError> {
        let created = if path.exists() {
            false
        } else {
            keyring::write_file(path, &Keyring::generate())?;
            true
        };
        let keyring = keyring::read_file(path)?;
        let source = Source::File {
            path: path.to_path_buf(),
            modified: modified(path),
        };
        Ok((
            Self {
                inner: RwLock::new(Inner { keyring, source }),
            },
            created,
        ))
    }

    /// Uses the keyring given in `STEWARD_MASTER_KEY` (see [`Keyring::parse_env`]).
    pub fn from_env(value: &str) -> Result<Self, VaultError> {
        let keyring = Keyring::parse_env(value)?;
        Ok(Self {
            inner: RwLock::new(Inner {
                keyring,
                source: Source::Env,
            }),
        })
    }

    /// Re-reads the keyring file when its modification time changed.
    fn refresh(&self) -> Result<(), VaultError> {
        let (path, seen) = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            match &inner.source {
                Source::File { path, modified } => (path.clone(), *modified),
                Source::Env => return Ok(()),
            }
        };
        let now = modified(&path);
        if now != seen {
            let keyring = keyring::read_file(&path)?;
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.keyring = keyring;
            inner.source = Source::File {
                path,
                modified: now,
            };
            tracing::info!("master keyring reloaded from disk");
        }
        Ok(())
    }

    /// The id of the key new secrets are sealed with.
    pub fn primary_key_id(&self) -> Result<KeyId, VaultError> {
        self.refresh()?;
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        Ok(inner.keyring.primary().0.clone())
    }

    /// The ids of every key in the keyring, primary first.
    pub fn key_ids(&self) -> Result<Vec<KeyId>, VaultError> {
        self.refresh()?;
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        Ok(inner.keyring.ids())
    }

    /// Encrypts `plaintext` under the primary key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Sealed, VaultError> {
        self.refresh()?;
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let (key_id, key) = inner.keyring.primary();
        let cipher = Aes256Gcm::new_from_slice(key.as_slice()).map_err(|_| VaultError::Decrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Decrypt)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key_id.clone(),
            text: format!(
                "{PREFIX}:{}:{}",
                key_id.as_str(),
                STANDARD_NO_PAD.encode(blob)
            ),
        })
    }

    /// Decrypts a sealed text that was bound to `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(PREFIX), Some(kid), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(VaultError::BadCiphertext);
        };
        let blob = STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| VaultError::BadCiphertext)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(VaultError::BadCiphertext);
        }
        self.refresh()?;
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let key = inner
            .keyring
            .get(kid)
            .ok_or_else(|| VaultError::UnknownKey(kid.to_string()))?;
        let cipher = Aes256Gcm::new_from_slice(key.as_slice()).map_err(|_| VaultError::Decrypt)?;
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Decrypt)
    }

    /// Adds a fresh key to the keyring file and makes it primary; older keys stay for
    /// decryption. Returns the new key's id.
    pub fn add_primary_key(&self) -> Result<KeyId, VaultError> {
        self.refresh()?;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Source::File { path, .. } = &inner.source else {
            return Err(VaultError::ReadOnly(
                "put the new key first in STEWARD_MASTER_KEY instead",
            ));
        };
        let path = path.clone();
        let mut keyring = inner.keyring.clone();
        let id = keyring.add_primary();
        keyring::write_file(&path, &keyring)?;
        inner.keyring = keyring;
        inner.source = Source::File {
            modified: modified(&path),
            path,
        };
        Ok(id)
    }

    /// Removes every key but the primary from the keyring file. Call only once no stored
    /// ciphertext uses them.
    pub fn retire_old_keys(&self) -> Result<Vec<KeyId>, VaultError> {
        self.refresh()?;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Source::File { path, .. } = &inner.source else {
            return Err(VaultError::ReadOnly(
                "remove old keys from STEWARD_MASTER_KEY instead",
            ));
        };
        let path = path.clone();
        let mut keyring = inner.keyring.clone();
        let retired = keyring.retain_primary_only();
        keyring::write_file(&path, &keyring)?;
        inner.keyring = keyring;
        inner.source = Source::File {
            modified: modified(&path),
            path,
        };
        Ok(retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_vault() -> (Vault, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("steward-vault-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("master.key");
        let (vault, created) = Vault::open_or_create(&path).expect("vault");
        assert!(created);
        (vault, path)
    }

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let (vault, _) = temp_vault();
        let sealed = vault
            .seal(b"-----BEGIN OPENSSH PRIVATE KEY-----", "secret:1:key")
            .expect("seal");
        assert!(!sealed.text.contains("OPENSSH"));
        assert!(
            sealed
                .text
                .starts_with(&format!("stw1:{}:", sealed.key_id.as_str()))
        );
        let plain = vault.open(&sealed.text, "secret:1:key").expect("open");
        assert_eq!(plain.as_slice(), b"-----BEGIN OPENSSH PRIVATE KEY-----");
        assert!(matches!(
            vault.open(&sealed.text, "secret:2:key"),
            Err(VaultError::Decrypt)
        ));
        assert!(matches!(
            vault.open("stw1:x:!!", "c"),
            Err(VaultError::BadCiphertext)
        ));
    }

    #[test]
    fn keyring_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_, path) = temp_vault();
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn rotation_keeps_old_secrets_readable_until_retired() {
        let (vault, path) = temp_vault();
        let old = vault.seal(b"pw", "c").expect("seal");
        let new_id = vault.add_primary_key().expect("rotate");
        assert_ne!(new_id, old.key_id);
        assert_eq!(vault.primary_key_id().expect("primary"), new_id);
        assert_eq!(
            vault.open(&old.text, "c").expect("old opens").as_slice(),
            b"pw"
        );
        let resealed = vault.seal(b"pw", "c").expect("seal");
        assert_eq!(resealed.key_id, new_id);

        // A second process (the CLI) sees the same file.
        let (other, created) = Vault::open_or_create(&path).expect("reopen");
        assert!(!created);
        assert_eq!(other.primary_key_id().expect("primary"), new_id);

        let retired = vault.retire_old_keys().expect("retire");
        assert_eq!(retired, vec![old.key_id.clone()]);
        assert!(matches!(
            vault.open(&old.text, "c"),
            Err(VaultError::UnknownKey(_))
        ));
        assert_eq!(
            vault
                .open(&resealed.text, "c")
                .expect("new opens")
                .as_slice(),
            b"pw"
        );
    }

    #[test]
    fn env_keyring() {
        let single = Keyring::generate().to_env_value();
        let vault = Vault::from_env(&single).expect("env vault");
        let sealed = vault.seal(b"x", "c").expect("seal");
        assert_eq!(
            vault.open(&sealed.text, "c").expect("open").as_slice(),
            b"x"
        );
        assert!(matches!(
            vault.add_primary_key(),
            Err(VaultError::ReadOnly(_))
        ));
        assert!(Vault::from_env("not-base64!").is_err());
        assert!(Vault::from_env("c2hvcnQ").is_err());
    }
}
