//! The master keyring: its text format on disk and in `STEWARD_MASTER_KEY`.
//!
//! File format (one item per line, `#` comments):
//! ```text
//! primary <key id>
//! key <key id> <base64 of 32 bytes>
//! ```
//! Environment format: `<key id>:<base64>[,<key id>:<base64>…]`, the first being primary; a
//! bare `<base64>` is also accepted and gets an id derived from the key.
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::VaultError;

/// A key's public name: 16 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    fn parse(s: &str) -> Result<Self, VaultError> {
        if s.len() == 16
            && s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            Ok(Self(s.to_string()))
        } else {
            Err(VaultError::Malformed(format!(
                "`{}` is not a key id",
                s.chars().take(20).collect::<String>()
            )))
        }
    }

    fn random() -> Self {
        let mut b = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(hex::encode(b))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Key = Zeroizing<Vec<u8>>;

/// Keys by id; the first is primary.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(KeyId, Key)>,
}

fn decode_key(b64: &str) -> Result<Key, VaultError> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(b64.trim())
            .map_err(|_| VaultError::Malformed("a key is not valid base64".into()))?,
    );
    if bytes.len() != 32 {
        return Err(VaultError::Malformed(format!(
            "a key is {} bytes; AES-256 needs 32",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn random_key() -> Key {
    let mut k = Zeroizing::new(vec![0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut_slice());
    k
}

impl Keyring {
    /// A keyring with one fresh random key.
    pub fn generate() -> Self {
        Self {
            keys: vec![(KeyId::random(), random_key())],
        }
    }

    /// The primary key.
    pub(crate) fn primary(&self) -> (&KeyId, &Key) {
        let (id, key) = &self.keys[0];
        (id, key)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Key> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, key)| key)
    }

    pub(crate) fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|(id, _)| id.clone()).collect()
    }

    pub(crate) fn add_primary(&mut self) -> KeyId {
        let id = KeyId::random();
        self.keys.insert(0, (id.clone(), random_key()));
        id
    }

    pub(crate) fn retain_primary_only(&mut self) -> Vec<KeyId> {
        self.keys.drain(1..).map(|(id, _)| id).collect()
    }

    /// Parses the `STEWARD_MASTER_KEY` form.
    pub fn parse_env(value: &str) -> Result<Self, VaultError> {
        let mut keys = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, key) = match item.split_once(':') {
                Some((id, b64)) => (KeyId::parse(id)?, decode_key(b64)?),
                None => {
                    let key = decode_key(item)?;
                    let digest = Sha256::new()
                        .chain_update(b"steward-key-id")
                        .chain_update(key.as_slice())
                        .finalize();
                    (KeyId(hex::encode(&digest[..8])), key)
                }
            };
            keys.push((id, key));
        }
        if keys.is_empty() {
            return Err(VaultError::Malformed(
                "STEWARD_MASTER_KEY holds no key".into(),
            ));
        }
        Ok(Self { keys })
    }

    /// This keyring in the `STEWARD_MASTER_KEY` form.
    pub fn to_env_value(&self) -> String {
        self.keys
            .iter()
            .map(|(id, k)| format!("{}:{}", id.as_str(), STANDARD.encode(k.as_slice())))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn parse_file(text: &str) -> Result<Self, VaultError> {
        let mut primary = None;
        let mut keys = Vec::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["primary", id] => primary = Some(KeyId::parse(id)?),
                ["key", id, b64] => keys.push((KeyId::parse(id)?, decode_key(b64)?)),
                _ => return Err(VaultError::Malformed("unexpected line".into())),
            }
        }
        let primary = primary.ok_or_else(|| VaultError::Malformed("no `primary` line".into()))?;
        let pos = keys
            .iter()
            .position(|(id, _)| *id == primary)
            .ok_or_else(|| VaultError::Malformed("the primary key is not listed".into()))?;
        let p = keys.remove(pos);
        keys.insert(0, p);
        Ok(Self { keys })
    }

    fn to_file_text(&self) -> Zeroizing<String> {
        let mut s = String::from(
            "# Steward master keyring. Keep it secret and back it up with the database:\n\
             # without it, stored credentials cannot be decrypted.\n",
        );
        s.push_str(&format!("primary {}\n", self.keys[0].0.as_str()));
        for (id, key) in &self.keys {
            s.push_str(&format!(
                "key {} {}\n",
                id.as_str(),
                STANDARD.encode(key.as_slice())
            ));
        }
        Zeroizing::new(s)
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Keyring, VaultError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|source| VaultError::Io {
            path: path.to_path_buf(),
            source,
        })?,
    );
    Keyring::parse_file(&text)
}

/// Writes the keyring atomically (temp file + rename), readable by the owner only.
pub(crate) fn write_file(path: &Path, keyring: &Keyring) -> Result<(), VaultError> {
    let io = |source| VaultError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(keyring.to_file_text().as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}
