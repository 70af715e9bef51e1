//! An SSH server that records every authentication attempt offered to it and accepts none:
//! the attacker's server of the scope-escape tests, which would log a password sent to it in
//! clear. Built on russh's server side, on a loopback address of the test's choice.
use std::sync::{Arc, Mutex};

use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server::{Auth, Config, Handler, PublicKeyOffer};

/// One authentication attempt, as the client offered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    None { user: String },
    Password { user: String, password: String },
    PublicKey { user: String, key: String },
}

/// A running trap; stops when dropped.
pub struct Trap {
    pub host: String,
    pub port: u16,
    host_key: String,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    connections: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

struct Recorder {
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl Recorder {
    fn record(&self, a: Attempt) {
        self.attempts.lock().unwrap().push(a);
    }
}

impl Handler for Recorder {
    type Error = russh::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        self.record(Attempt::None { user: user.into() });
        Ok(Auth::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        self.record(Attempt::Password {
            user: user.into(),
            password: password.into(),
        });
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        self.record(Attempt::PublicKey {
            user: user.into(),
            key: offer.public_key.to_openssh().unwrap_or_default(),
        });
        Ok(Auth::reject())
    }
}

impl Trap {
    /// Listens on `host` (a loopback address) at a free port.
    pub async fn start(host: &str) -> Self {
        let seed: [u8; 32] = rand10::random();
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        let host_key = key.public_key().to_openssh().expect("public key");
        let config = Arc::new(Config {
            keys: vec![key],
            auth_rejection_time: std::time::Duration::from_millis(1),
            auth_rejection_time_initial: Some(std::time::Duration::from_millis(1)),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind((host, 0))
            .await
            .expect("bind trap");
        let port = listener.local_addr().expect("addr").port();
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (seen, count) = (attempts.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                let handler = Recorder {
                    attempts: seen.clone(),
                };
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        Self {
            host: host.into(),
            port,
            host_key,
            attempts,
            connections,
            task,
        }
    }

    /// Every attempt so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }

    /// The trap's host key, as an OpenSSH public key line.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.task.abort();
    }
}
