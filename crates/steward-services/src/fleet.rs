//! Reaching managed servers over SSH, for everything that runs on them (scripts, terminals,
//! scans, metrics): the pooled connection for a server, made with its vault credential, its
//! trusted host key and its jump server.
//!
//! Host keys follow the same rules as the connection test: a server contacted for the first
//! time has its key recorded (trust on first use) and audited; a different key refuses the
//! connection before any credential is sent, and is recorded and audited for a user with
//! `servers.write` to review.

use serde_json::json;
use steward_core::{Authz, Permission};
use steward_db::credentials;
use steward_db::host_keys::{self, HostKeyRow};
use steward_db::servers::{self, ServerRow};
use steward_ssh::client::{self, Auth, Connection, HostKey, SshError, Target};
use steward_ssh::pool::Shared;
use zeroize::Zeroizing;

use crate::Services;
use crate::audit::{Event, Outcome};
use crate::bootstrap::load_secret;
use crate::error::ServiceError;
use crate::principal::{ClientInfo, Principal};

/// Who a connection is made for, as the audit log names them, and what they may do.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<String>,
    pub name: String,
    pub client: ClientInfo,
    /// For a user: what they may do, and the permission the action needs on the server. Both
    /// the server and its jump server must allow it (a jump server's credential carries the
    /// user's traffic). `None` for Steward's own scheduled work.
    pub acting: Option<(Authz, Permission)>,
}

impl Actor {
    /// A user acting through the API, for an action that needs `permission` on the server.
    pub fn user(p: &Principal, permission: Permission) -> Self {
        Self {
            user_id: Some(p.user.id.clone()),
            name: p.user.username.clone(),
            client: p.client.clone(),
            acting: Some((p.authz.clone(), permission)),
        }
    }

    /// Steward itself (scheduled work).
    pub fn system() -> Self {
        Self {
            user_id: None,
            name: "steward".into(),
            client: ClientInfo::default(),
            acting: None,
        }
    }

    /// Whether the actor may use `server` (with these tags) for its action.
    fn may_use(&self, tags: &[String]) -> bool {
        match &self.acting {
            None => true,
            Some((authz, permission)) => authz.can_on_server(*permission, tags),
        }
    }

    /// An audit event by this actor.
    pub fn event(&self, action: &str, at: i64) -> Event {
        Event::new(action, &self.client, at).actor(self.user_id.as_deref(), &self.name)
    }
}

/// Why a server could not be reached. `code()` is stable and shown translated in the UI.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("the server has no credential; set one first")]
    NoCredential,
    #[error(
        "the server's address, port, SSH user or jump server changed; someone with credentials.write must confirm it first"
    )]
    EndpointUnconfirmed,
    #[error("you may not use this server for that")]
    Forbidden,
    #[error("you may not route through the jump server {0}")]
    JumpForbidden(String),
    #[error("the server refused the credential for {0}")]
    AuthFailed(String),
    #[error("the server presented a different host key ({presented}); no credential was sent")]
    HostKeyMismatch { presented: String, expected: String },
    #[error("the jump server: {0}")]
    Jump(Box<ReachError>),
    #[error("{0}")]
    Ssh(#[from] SshError),
    #[error("internal error")]
    Internal(ServiceError),
}

impl From<ServiceError> for ReachError {
    fn from(e: ServiceError) -> Self {
        ReachError::Internal(e)
    }
}

impl ReachError {
    /// A stable code: `no_credential`, `endpoint_unconfirmed`, `forbidden`, `jump_forbidden`,
    /// `auth_failed`, `host_key_mismatch`, `unreachable`,
    /// `timeout`, `bad_credential`, `ssh_error` or `internal` (a jump server's failure has the
    /// jump server's code).
    pub fn code(&self) -> &'static str {
        match self {
            ReachError::NoCredential => "no_credential",
            ReachError::EndpointUnconfirmed => "endpoint_unconfirmed",
            ReachError::Forbidden => "forbidden",
            ReachError::JumpForbidden(_) => "jump_forbidden",
            ReachError::AuthFailed(_) => "auth_failed",
            ReachError::HostKeyMismatch { .. } => "host_key_mismatch",
            ReachError::Jump(inner) => inner.code(),
            ReachError::Ssh(SshError::Unreachable(_)) => "unreachable",
            ReachError::Ssh(SshError::Timeout(_)) => "timeout",
            ReachError::Ssh(SshError::BadCredential(_)) => "bad_credential",
            ReachError::Ssh(_) => "ssh_error",
            ReachError::Internal(_) => "internal",
        }
    }
}

/// The server's stored credential, opened from the vault.
pub async fn load_auth(st: &Services, server_id: &str) -> Result<Option<Auth>, ServiceError> {
    let Some(c) = credentials::get(&st.db.pool, server_id).await? else {
        return Ok(None);
    };
    let open = |id: String| async move {
        let bytes = load_secret(&st.db, &st.vault, &id)
            .await
            .map_err(ServiceError::internal)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| ServiceError::internal(anyhow::anyhow!("secret {id} is not text")))
    };
    Ok(Some(if c.kind == "password" {
        Auth::Password(open(c.secret_id).await?)
    } else {
        let passphrase = match c.passphrase_secret_id {
            Some(id) => Some(open(id).await?),
            None => None,
        };
        Auth::Key {
            private_key: open(c.secret_id).await?,
            passphrase,
        }
    }))
}

/// Where to connect for a stored server.
pub fn target_of(server: &ServerRow) -> Target {
    Target {
        host: server.host.clone(),
        port: u16::try_from(server.port).unwrap_or(22),
        user: server.ssh_user.clone(),
    }
}

/// A trusted-key row for a key just seen.
pub fn host_key_row(
    server: &ServerRow,
    key: &HostKey,
    source: &str,
    by: Option<&str>,
    now: i64,
) -> HostKeyRow {
    HostKeyRow {
        server_id: server.id.clone(),
        org_id: server.org_id.clone(),
        algorithm: key.algorithm.clone(),
        fingerprint: key.fingerprint.clone(),
        public_key: key.public_key.clone(),
        source: source.into(),
        trusted_at: now,
        trusted_by: by.map(str::to_string),
        mismatch_public_key: None,
        mismatch_fingerprint: None,
        mismatch_at: None,
    }
}

/// Records a key a server presented that differs from the trusted one, and audits it.
pub async fn record_mismatch(
    st: &Services,
    server: &ServerRow,
    actor: &Actor,
    presented: &HostKey,
    expected: &str,
) -> Result<(), ServiceError> {
    let now = st.now_ms();
    host_keys::record_mismatch(
        &st.db.pool,
        &server.id,
        &presented.public_key,
        &presented.fingerprint,
        now,
    )
    .await?;
    actor
        .event("host_key.mismatch", now)
        .target("server", &server.id, &server.name)
        .outcome(Outcome::Denied)
        .details(json!({ "presented": presented.fingerprint, "trusted": expected }))
        .write(&st.db.pool)
        .await?;
    tracing::warn!(server = %server.name, presented = %presented.fingerprint, trusted = %expected, "host key mismatch; connection refused");
    Ok(())
}

/// Records the key of a server contacted for the first time, and audits it.
pub async fn record_first_use(
    st: &Services,
    server: &ServerRow,
    actor: &Actor,
    key: &HostKey,
) -> Result<(), ServiceError> {
    let now = st.now_ms();
    let first = host_keys::trust_first_use(
        &st.db.pool,
        &host_key_row(server, key, "first_use", None, now),
    )
    .await?;
    if first {
        actor
            .event("host_key.first_use", now)
            .target("server", &server.id, &server.name)
            .details(json!({ "fingerprint": key.fingerprint, "algorithm": key.algorithm }))
            .write(&st.db.pool)
            .await?;
    }
    Ok(())
}

/// The jump server's pooled connection, for a connection to `server` through it, if it has
/// one. The actor needs the same permission on the jump server as on the target.
pub async fn jump_for(
    st: &Services,
    server: &ServerRow,
    actor: &Actor,
) -> Result<Option<Shared>, ReachError> {
    let Some(id) = &server.jump_server_id else {
        return Ok(None);
    };
    let jump = servers::get(&st.db.pool, &server.org_id, id)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| {
            ReachError::Jump(Box::new(ReachError::Ssh(SshError::Unreachable(
                "the jump server was deleted".into(),
            ))))
        })?;
    if !actor.may_use(&jump.tags) {
        return Err(ReachError::JumpForbidden(jump.name));
    }
    // One hop: the jump server's own jump server (which the API does not allow) is not
    // followed.
    let conn = connect_direct(st, &jump, None, actor)
        .await
        .map_err(|e| ReachError::Jump(Box::new(e)))?;
    Ok(Some(conn))
}

/// The pooled, authenticated connection to `server` (through its jump server, if it has one).
/// A user's action is checked here once more, on the server and on its jump server, with the
/// permission it named ([`Actor::user`]), whatever the caller checked before.
pub async fn connect(
    st: &Services,
    server: &ServerRow,
    actor: &Actor,
) -> Result<Shared, ReachError> {
    if !actor.may_use(&server.tags) {
        return Err(ReachError::Forbidden);
    }
    let jump = jump_for(st, server, actor).await?;
    connect_direct(st, server, jump, actor).await
}

async fn connect_direct(
    st: &Services,
    server: &ServerRow,
    jump: Option<Shared>,
    actor: &Actor,
) -> Result<Shared, ReachError> {
    let cred = credentials::reach(&st.db.pool, &server.id)
        .await
        .map_err(ServiceError::from)?
        .ok_or(ReachError::NoCredential)?;
    // Read with the credential, so a change confirmed or made a moment ago counts.
    if cred.endpoint_changed_at.is_some() {
        return Err(ReachError::EndpointUnconfirmed);
    }
    // Anything that should make a new connection when it changes. (A change of the trusted
    // host key invalidates the server's connection explicitly.)
    let version = format!(
        "{}|{}|{}|{}|{}|{}",
        server.host,
        server.port,
        server.ssh_user,
        cred.secret_id,
        cred.updated_at,
        server.jump_server_id.as_deref().unwrap_or(""),
    );
    let trusted_key = cred.trusted_public_key.clone();
    st.ssh
        .get(&server.id, &version, || async {
            let auth = load_auth(st, &server.id)
                .await?
                .ok_or(ReachError::NoCredential)?;
            let result = client::connect_through(
                jump.clone(),
                &target_of(server),
                Some(&auth),
                trusted_key.as_deref(),
                st.config.ssh_connect_timeout,
            )
            .await;
            let conn: Connection = match result {
                Ok(c) => c,
                Err(SshError::HostKeyMismatch {
                    presented,
                    expected,
                }) => {
                    record_mismatch(st, server, actor, &presented, &expected).await?;
                    return Err(ReachError::HostKeyMismatch {
                        presented: presented.fingerprint,
                        expected,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            if trusted_key.is_none() {
                record_first_use(st, server, actor, &conn.host_key).await?;
            }
            if !conn.authenticated {
                conn.close().await;
                return Err(ReachError::AuthFailed(server.ssh_user.clone()));
            }
            Ok(conn)
        })
        .await
}

/// A server the caller may see, by id: `NotFound` when it does not exist or is out of their
/// sight (so its existence is not revealed).
pub async fn visible_server(
    st: &Services,
    p: &Principal,
    id: &str,
) -> Result<ServerRow, ServiceError> {
    match servers::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(s) if p.can_see_server(&s.tags) => Ok(s),
        _ => Err(ServiceError::not_found("server")),
    }
}
