//! Connecting to a managed server: host-key trust, authentication, and running a command.
//!
//! Host keys are never accepted blindly. The caller passes the key it trusts for the server, if
//! any: a different key aborts the handshake before any credential is sent, and the error
//! carries the key that was presented so the user can compare fingerprints. With no key on
//! record the connection proceeds ("trust on first use") and reports the key it saw, which the
//! caller records.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use zeroize::Zeroizing;

use crate::keys;

/// Signals a remote command can be sent.
pub use russh::Sig;

/// Where to connect, and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
}

/// How to authenticate. Secrets are wiped from memory when dropped.
pub enum Auth {
    /// A private key (OpenSSH, PEM or PuTTY text), with its passphrase if encrypted.
    Key {
        private_key: Zeroizing<String>,
        passphrase: Option<Zeroizing<String>>,
    },
    /// A password.
    Password(Zeroizing<String>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Key { .. } => "Auth::Key(<redacted>)",
            Auth::Password(_) => "Auth::Password(<redacted>)",
        })
    }
}

/// A host key's public facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` …
    pub algorithm: String,
    /// `SHA256:…`
    pub fingerprint: String,
    /// `authorized_keys` form, without comment.
    pub public_key: String,
}

impl HostKey {
    fn of(key: &PublicKey) -> Self {
        let mut k = key.clone();
        k.set_comment("");
        Self {
            algorithm: key.algorithm().as_str().to_string(),
            fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            public_key: k.to_openssh().unwrap_or_default().trim().to_string(),
        }
    }

    /// Parses an `authorized_keys`-form public key (an operator pinning a key in advance).
    pub fn parse(text: &str) -> Result<Self, SshError> {
        let key = PublicKey::from_openssh(text.trim())
            .map_err(|_| SshError::BadCredential("is not an SSH public key".into()))?;
        Ok(Self::of(&key))
    }
}

/// Why a connection or command failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// TCP connection refused or unreachable.
    #[error("cannot reach {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server presented a different host key than the one trusted. No credential was sent.
    #[error("the server's host key {} does not match the trusted key {expected}", presented.fingerprint)]
    HostKeyMismatch {
        presented: HostKey,
        expected: String,
    },
    /// The command needs an authenticated connection.
    #[error("not authenticated")]
    NotAuthenticated,
    /// The stored credential cannot be used.
    #[error("the credential {0}")]
    BadCredential(String),
    /// Anything else in the SSH protocol.
    #[error("SSH error: {0}")]
    Protocol(String),
}

struct Trust {
    expected: Option<PublicKey>,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for Trust {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = presented else {
            // Host certificates need a CA to check them against; none is configured.
            return Ok(false);
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        Ok(match &self.expected {
            None => true,
            Some(expected) => expected.key_data() == key.key_data(),
        })
    }
}

/// An authenticated SSH connection.
pub struct Connection {
    handle: Handle<Trust>,
    /// The host key the server presented (and that was accepted).
    pub host_key: HostKey,
    /// Whether the server accepted the credential (false also when none was given).
    pub authenticated: bool,
    /// Time to connect, exchange keys and authenticate.
    pub handshake: Duration,
    /// The jump server's connection this one is tunnelled through, kept alive as long as this
    /// one lives (closing it would cut the tunnel).
    via: Option<Arc<Connection>>,
    /// Idle runner shells (`runner`), closed with the connection.
    pub(crate) runners: crate::runner::Runners,
}

/// Cipher preference: AES-GCM first where the CPU has AES instructions (both ends then
/// encrypt in hardware: several times the throughput of ChaCha20-Poly1305, which stays first
/// elsewhere). Every choice is an authenticated cipher OpenSSH offers by default.
fn ciphers() -> &'static [russh::cipher::Name] {
    use russh::cipher::{AES_128_GCM, AES_256_CTR, AES_256_GCM, CHACHA20_POLY1305};
    static HW: &[russh::cipher::Name] = &[AES_256_GCM, AES_128_GCM, CHACHA20_POLY1305, AES_256_CTR];
    static SW: &[russh::cipher::Name] = &[CHACHA20_POLY1305, AES_256_GCM, AES_128_GCM, AES_256_CTR];
    #[cfg(target_arch = "x86_64")]
    let hw = std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("pclmulqdq");
    #[cfg(target_arch = "aarch64")]
    let hw = std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let hw = false;
    if hw { HW } else { SW }
}

fn config(timeout: Duration) -> Arc<client::Config> {
    Arc::new(client::Config {
        inactivity_timeout: Some(timeout.max(Duration::from_secs(30))),
        keepalive_interval: Some(Duration::from_secs(15)),
        nodelay: true,
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(ciphers()),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Connects, checks the host key against `trusted` (an `authorized_keys`-form key, or `None` to
/// trust on first use), and authenticates with `auth` if given, all within `timeout`. A refused
/// credential is not an error: the connection reports `authenticated: false` and its host key.
pub async fn connect(
    target: &Target,
    auth: Option<&Auth>,
    trusted: Option<&str>,
    timeout: Duration,
) -> Result<Connection, SshError> {
    connect_through(None, target, auth, trusted, timeout).await
}

/// Like [`connect`], but reaches the target through `jump` (a bastion Steward is already
/// connected to) with a `direct-tcpip` channel, as `ssh -J` does. The target's host key is
/// checked end to end: the bastion cannot impersonate it.
pub async fn connect_through(
    jump: Option<Arc<Connection>>,
    target: &Target,
    auth: Option<&Auth>,
    trusted: Option<&str>,
    timeout: Duration,
) -> Result<Connection, SshError> {
    let expected = trusted
        .map(|t| {
            PublicKey::from_openssh(t.trim()).map_err(|_| {
                SshError::Protocol("the trusted host key on record is unreadable".into())
            })
        })
        .transpose()?;
    let expected_fp = expected
        .as_ref()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string());
    let seen = Arc::new(Mutex::new(None));
    let handler = Trust {
        expected,
        seen: seen.clone(),
    };
    let started = Instant::now();
    let addr = format!("{}:{}", target.host, target.port);

    let run = async {
        let handshake = match jump.as_deref() {
            None => {
                let socket = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
                    .await
                    .map_err(|e| SshError::Unreachable(format!("{addr}: {e}")))?;
                client::connect_stream(config(timeout), socket, handler).await
            }
            Some(jump) => {
                if !jump.authenticated {
                    return Err(SshError::NotAuthenticated);
                }
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.host.as_str(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| {
                        SshError::Unreachable(format!("{addr} through the jump host: {e}"))
                    })?;
                client::connect_stream(config(timeout), channel.into_stream(), handler).await
            }
        };
        let mut handle = handshake.map_err(|e| {
            let presented = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match (e, presented, &expected_fp) {
                (russh::Error::UnknownKey, Some(key), Some(expected)) => {
                    SshError::HostKeyMismatch {
                        presented: HostKey::of(&key),
                        expected: expected.clone(),
                    }
                }
                (other, _, _) => SshError::Protocol(other.to_string()),
            }
        })?;
        let ok = match auth {
            None => false,
            Some(Auth::Password(password)) => handle
                .authenticate_password(target.user.clone(), password.as_str())
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?
                .success(),
            Some(Auth::Key {
                private_key,
                passphrase,
            }) => {
                let key = russh::keys::decode_secret_key(
                    private_key,
                    passphrase.as_ref().map(|p| p.as_str()),
                )
                .map_err(|_| SshError::BadCredential(keys::KeyError::Unreadable.to_string()))?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?
                    .flatten();
                handle
                    .authenticate_publickey(
                        target.user.clone(),
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                    .map_err(|e| SshError::Protocol(e.to_string()))?
                    .success()
            }
        };
        let key = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| SshError::Protocol("no host key".into()))?;
        Ok(Connection {
            handle,
            host_key: HostKey::of(&key),
            authenticated: ok,
            handshake: started.elapsed(),
            via: jump.clone(),
            runners: Default::default(),
        })
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| SshError::Timeout(timeout))?
}

/// What a running command sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The command exited with this status.
    Exit(u32),
    /// The command was killed by this signal (`TERM`, `KILL` …).
    Signal(String),
}

/// A command running on the server, on its own channel of the connection.
pub struct Process {
    channel: russh::Channel<russh::client::Msg>,
}

impl Process {
    /// The next piece of output, or `None` once the channel is closed.
    pub async fn next(&mut self) -> Option<Output> {
        loop {
            match self.channel.wait().await? {
                ChannelMsg::Data { data } => return Some(Output::Stdout(data.to_vec())),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    return Some(Output::Stderr(data.to_vec()));
                }
                ChannelMsg::ExitStatus { exit_status } => return Some(Output::Exit(exit_status)),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    return Some(Output::Signal(format!("{signal_name:?}")));
                }
                _ => {}
            }
        }
    }

    /// Writes to the command's standard input.
    pub async fn write(&self, data: &[u8]) -> Result<(), SshError> {
        self.channel
            .data(data)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// Closes the command's standard input.
    pub async fn eof(&self) -> Result<(), SshError> {
        self.channel
            .eof()
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// Asks the server to deliver a signal to the command (honoured by OpenSSH ≥ 8.1 for
    /// commands without a terminal; the caller should not rely on it alone).
    pub async fn signal(&self, signal: Sig) -> Result<(), SshError> {
        self.channel
            .signal(signal)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// Closes the channel.
    pub async fn close(&self) {
        let _ = self.channel.close().await;
    }
}

/// A finished command.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: Option<u32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Connection {
    /// The jump server's connection this one goes through, if any.
    pub fn jump(&self) -> Option<&Arc<Connection>> {
        self.via.as_ref()
    }

    /// Whether the connection has closed (the server went away, or it was disconnected).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Opens a session channel, for callers that drive it themselves (terminals, SFTP).
    pub async fn open_session(&self) -> Result<russh::Channel<russh::client::Msg>, SshError> {
        if !self.authenticated {
            return Err(SshError::NotAuthenticated);
        }
        self.handle
            .channel_open_session()
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))
    }

    /// Opens an SFTP session on a new channel (file transfer for installs and backups).
    pub async fn sftp(&self) -> Result<russh_sftp::client::SftpSession, SshError> {
        let channel = self.open_session().await?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))?;
        russh_sftp::client::SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| {
                SshError::Protocol(format!(
                    "SFTP: {e} (does the server's sshd offer the sftp subsystem?)"
                ))
            })
    }

    /// Writes `data` to a new file at `path` over SFTP, created with `mode` (so a secret is
    /// never readable by others, not even for a moment) and set to exactly `mode` afterwards
    /// (the server's umask may have narrowed it). Fails if the file already exists: callers
    /// write into a fresh private directory.
    pub async fn upload(&self, path: &str, data: &[u8], mode: u32) -> Result<(), SshError> {
        use russh_sftp::protocol::{FileAttributes, OpenFlags};
        use tokio::io::AsyncWriteExt;
        let sftp = self.sftp().await?;
        let err = |what: &str, e: &dyn std::fmt::Display| {
            SshError::Protocol(format!("SFTP {what} {path}: {e}"))
        };
        let result = async {
            let attrs = FileAttributes {
                permissions: Some(mode),
                ..Default::default()
            };
            let mut file = sftp
                .open_with_flags_and_attributes(
                    path,
                    OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
                    attrs,
                )
                .await
                .map_err(|e| err("create", &e))?;
            file.write_all(data).await.map_err(|e| err("write", &e))?;
            file.shutdown().await.map_err(|e| err("close", &e))?;
            sftp.set_metadata(
                path,
                FileAttributes {
                    permissions: Some(mode),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| err("chmod", &e))?;
            let size = sftp
                .metadata(path)
                .await
                .map_err(|e| err("stat", &e))?
                .len();
            if size != data.len() as u64 {
                return Err(SshError::Protocol(format!(
                    "SFTP: {path} has {size} bytes after writing {}",
                    data.len()
                )));
            }
            Ok(())
        }
        .await;
        let _ = sftp.close().await;
        result
    }

    /// Starts a command on a new channel and returns at once; read its output with
    /// [`Process::next`].
    pub async fn start(&self, command: &str) -> Result<Process, SshError> {
        let channel = self.open_session().await?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| SshError::Protocol(e.to_string()))?;
        Ok(Process { channel })
    }

    /// Runs a command and collects its output, within `timeout`.
    pub async fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SshError> {
        if !self.authenticated {
            return Err(SshError::NotAuthenticated);
        }
        let run = async {
            let mut channel = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| SshError::Protocol(e.to_string()))?;
            let mut out = ExecOutput::default();
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.exit_code = Some(exit_status),
                    _ => {}
                }
            }
            Ok(out)
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| SshError::Timeout(timeout))?
    }

    /// Closes the connection politely.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}
