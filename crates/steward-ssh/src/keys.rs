//! Private keys: checking an uploaded key (and its passphrase) before it is stored, and
//! generating ed25519 key pairs whose public half the user pastes into `authorized_keys`.
use rand::RngCore;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};
use zeroize::Zeroizing;

/// The largest private key text accepted (a 16384-bit RSA key in PEM is ~13 KiB).
pub const MAX_KEY_LEN: usize = 32 * 1024;

/// Why a key was refused. Messages never include key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a private key in a format we read.
    #[error("is not a private key in OpenSSH, PEM (PKCS#1/PKCS#8) or PuTTY format")]
    Unreadable,
    /// Encrypted, and no passphrase was given.
    #[error("is encrypted: a passphrase is required")]
    PassphraseRequired,
    /// Not encrypted, yet a passphrase was given (probably the wrong key was pasted).
    #[error("is not encrypted: leave the passphrase empty, or upload the encrypted key")]
    UnexpectedPassphrase,
    /// Encrypted, and the passphrase did not open it.
    #[error("could not be decrypted with the given passphrase")]
    WrongPassphrase,
    /// Too large to be a key.
    #[error("is larger than {MAX_KEY_LEN} bytes")]
    TooLarge,
    /// A key type SSH servers no longer accept.
    #[error("uses an unsupported key type ({0})")]
    Unsupported(String),
}

/// What Steward shows about a key: never the private part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `rsa-sha2-512` …
    pub key_type: String,
    /// The public key in `authorized_keys` form.
    pub public_key: String,
    /// `SHA256:…`.
    pub fingerprint: String,
}

fn looks_encrypted(text: &str) -> bool {
    if text.contains("ENCRYPTED") {
        return true;
    }
    PrivateKey::from_openssh(text)
        .map(|k| k.is_encrypted())
        .unwrap_or(false)
}

fn info(key: &PrivateKey, comment: &str) -> KeyInfo {
    let mut public = key.public_key().clone();
    public.set_comment(comment);
    KeyInfo {
        key_type: key.algorithm().as_str().to_string(),
        public_key: public.to_openssh().unwrap_or_default(),
        fingerprint: key.public_key().fingerprint(HashAlg::Sha256).to_string(),
    }
}

/// Checks that `text` is a usable private key (decrypting it with `passphrase` when it is
/// encrypted) and describes it.
pub fn inspect_private_key(
    text: &str,
    passphrase: Option<&str>,
    comment: &str,
) -> Result<KeyInfo, KeyError> {
    if text.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLarge);
    }
    let encrypted = looks_encrypted(text);
    let passphrase = passphrase.filter(|p| !p.is_empty());
    if encrypted && passphrase.is_none() {
        return Err(KeyError::PassphraseRequired);
    }
    let key = russh::keys::decode_secret_key(text, passphrase).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => KeyError::PassphraseRequired,
        russh::keys::Error::UnsupportedKeyType {
            key_type_string, ..
        } => KeyError::Unsupported(key_type_string),
        _ if encrypted => KeyError::WrongPassphrase,
        _ => KeyError::Unreadable,
    })?;
    if key.is_encrypted() {
        return Err(KeyError::WrongPassphrase);
    }
    // Checked once the text is known to be a key, so garbage is reported as garbage.
    if !encrypted && passphrase.is_some() {
        return Err(KeyError::UnexpectedPassphrase);
    }
    Ok(info(&key, comment))
}

/// A freshly generated key pair: the private key in OpenSSH format and its description.
pub struct GeneratedKey {
    /// Unencrypted OpenSSH private key text (to be sealed in the vault at once).
    pub private_openssh: Zeroizing<String>,
    /// The public half.
    pub info: KeyInfo,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("private_openssh", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// Generates an ed25519 key pair with `comment` on its public half.
pub fn generate_ed25519(comment: &str) -> Result<GeneratedKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment);
    let private_openssh = key
        .to_openssh(LineEnding::LF)
        .map_err(|_| KeyError::Unreadable)?;
    Ok(GeneratedKey {
        private_openssh: Zeroizing::new(private_openssh.to_string()),
        info: info(&key, comment),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_reads_back() {
        let generated = generate_ed25519("steward@test").expect("generate");
        assert!(generated.info.public_key.starts_with("ssh-ed25519 "));
        assert!(generated.info.public_key.ends_with(" steward@test"));
        assert!(generated.info.fingerprint.starts_with("SHA256:"));
        let info =
            inspect_private_key(&generated.private_openssh, None, "steward@test").expect("inspect");
        assert_eq!(info, generated.info);
        assert_eq!(
            inspect_private_key(
                &generated.private_openssh,
                Some("pointless"),
                "steward@test"
            ),
            Err(KeyError::UnexpectedPassphrase)
        );
        assert!(!format!("{generated:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn encrypted_keys_need_the_right_passphrase() {
        let generated = generate_ed25519("x").expect("generate");
        let key = PrivateKey::from_openssh(generated.private_openssh.as_str()).expect("parse");
        let encrypted = key
            .encrypt(&mut rand10(), "correct horse")
            .expect("encrypt");
        let text = encrypted.to_openssh(LineEnding::LF).expect("encode");
        assert_eq!(
            inspect_private_key(&text, None, "x"),
            Err(KeyError::PassphraseRequired)
        );
        assert_eq!(
            inspect_private_key(&text, Some("wrong"), "x"),
            Err(KeyError::WrongPassphrase)
        );
        let info = inspect_private_key(&text, Some("correct horse"), "x").expect("decrypts");
        assert_eq!(info.fingerprint, generated.info.fingerprint);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            inspect_private_key("hello", None, "x"),
            Err(KeyError::Unreadable)
        );
        assert_eq!(
            inspect_private_key(
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
                None,
                "x"
            ),
            Err(KeyError::Unreadable)
        );
        assert_eq!(
            inspect_private_key(&"A".repeat(MAX_KEY_LEN + 1), None, "x"),
            Err(KeyError::TooLarge)
        );
    }

    fn rand10() -> impl russh::keys::ssh_key::rand_core::CryptoRng {
        rand10::rng()
    }
}
