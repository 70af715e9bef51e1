//! A server's SSH credential (set, replace, remove; sealed by the vault) and its host-key trust (pin, accept, forget), each change audited in its transaction.
//!
//! Secrets go straight into the vault (`bootstrap::store_secret`) and never come back out: the
//! functions here return the stored rows, whose secrets are only ids.
use serde_json::json;
use steward_core::{Permission, ValidationError};
use steward_db::credentials::{self, CredentialRow};
use steward_db::secrets;
use steward_proto::{CredentialInput, CredentialKind};
use steward_ssh::keys;

use crate::Services;
use crate::audit::Event;
use crate::bootstrap::store_secret;
use crate::error::{ServiceError, ServiceResult};
use crate::fleet::visible_server;
use crate::principal::Principal;

mod host_key;

pub use host_key::{accept_host_key, forget_host_key, pin_host_key};

/// The longest SSH password accepted.
const MAX_PASSWORD_LEN: usize = 4096;

/// Sets the server's credential, replacing any previous one (whose secrets are deleted). An
/// uploaded key is checked with its passphrase first (`Validation` naming `private_key` or
/// `passphrase`); `Generate` makes an Ed25519 key pair, whose public half the returned row
/// carries. Needs `credentials.write` on the server. Audited `credential.set` or
/// `credential.generate`.
pub async fn set(
    st: &Services,
    p: &Principal,
    server_id: &str,
    req: &CredentialInput,
) -> ServiceResult<CredentialRow> {
    let now = st.now_ms();
    let server = visible_server(st, p, server_id).await?;
    p.require_on_server(Permission::CredentialsWrite, &server.tags)?;
    let comment = format!(
        "steward@{}",
        server
            .name
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .collect::<String>()
    );
    let previous = credentials::get(&st.db.pool, &server.id).await?;

    let mut tx = st.db.begin().await?;
    let (kind, secret_id, passphrase_secret_id, key) = match req {
        CredentialInput::PrivateKey {
            private_key,
            passphrase,
        } => {
            let info = keys::inspect_private_key(
                private_key.expose(),
                passphrase.as_ref().map(|p| p.expose()),
                &comment,
            )
            .map_err(|e| {
                ValidationError::new(
                    if matches!(
                        e,
                        keys::KeyError::PassphraseRequired
                            | keys::KeyError::WrongPassphrase
                            | keys::KeyError::UnexpectedPassphrase
                    ) {
                        "passphrase"
                    } else {
                        "private_key"
                    },
                    e.to_string(),
                )
            })?;
            let secret_id = store_secret(
                &mut *tx,
                &st.vault,
                "ssh_private_key",
                private_key.expose().as_bytes(),
                now,
            )
            .await
            .map_err(ServiceError::internal)?;
            let passphrase_secret_id = match passphrase
                .as_ref()
                .map(|p| p.expose())
                .filter(|p| !p.is_empty())
            {
                Some(pp) => Some(
                    store_secret(
                        &mut *tx,
                        &st.vault,
                        "ssh_key_passphrase",
                        pp.as_bytes(),
                        now,
                    )
                    .await
                    .map_err(ServiceError::internal)?,
                ),
                None => None,
            };
            (
                CredentialKind::PrivateKey,
                secret_id,
                passphrase_secret_id,
                Some(info),
            )
        }
        CredentialInput::Password { password } => {
            if password.expose().is_empty() || password.expose().len() > MAX_PASSWORD_LEN {
                return Err(ValidationError::new(
                    "password",
                    format!("must be 1 to {MAX_PASSWORD_LEN} bytes"),
                )
                .into());
            }
            // No SSH server accepts them (PAM passwords are C strings), so they are typos.
            if password.expose().chars().any(char::is_control) {
                return Err(ValidationError::new(
                    "password",
                    "must not contain control characters",
                )
                .into());
            }
            let secret_id = store_secret(
                &mut *tx,
                &st.vault,
                "ssh_password",
                password.expose().as_bytes(),
                now,
            )
            .await
            .map_err(ServiceError::internal)?;
            (CredentialKind::Password, secret_id, None, None)
        }
        CredentialInput::Generate {} => {
            let generated = keys::generate_ed25519(&comment).map_err(ServiceError::internal)?;
            let secret_id = store_secret(
                &mut *tx,
                &st.vault,
                "ssh_private_key",
                generated.private_openssh.as_bytes(),
                now,
            )
            .await
            .map_err(ServiceError::internal)?;
            (
                CredentialKind::GeneratedKey,
                secret_id,
                None,
                Some(generated.info),
            )
        }
    };
    let row = CredentialRow {
        server_id: server.id.clone(),
        org_id: server.org_id.clone(),
        kind: kind.as_str().into(),
        secret_id,
        passphrase_secret_id,
        key_type: key.as_ref().map(|k| k.key_type.clone()),
        public_key: key.as_ref().map(|k| k.public_key.clone()),
        fingerprint: key.map(|k| k.fingerprint),
        updated_by: Some(p.user.id.clone()),
        created_at: previous.as_ref().map_or(now, |c| c.created_at),
        updated_at: now,
    };
    credentials::upsert(&mut *tx, &row).await?;
    if let Some(old) = &previous {
        secrets::delete(&mut *tx, &old.secret_id).await?;
        if let Some(pp) = &old.passphrase_secret_id {
            secrets::delete(&mut *tx, pp).await?;
        }
    }
    let action = if matches!(req, CredentialInput::Generate {}) {
        "credential.generate"
    } else {
        "credential.set"
    };
    Event::by(p, action, now)
        .target("server", &server.id, &server.name)
        .details(json!({ "kind": row.kind, "fingerprint": row.fingerprint, "replaced": previous.is_some() }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(row)
}

/// Removes the server's credential and its secrets (`NotFound` `credential` when it has
/// none). Needs `credentials.write` on the server. Audited `credential.delete`.
pub async fn delete(st: &Services, p: &Principal, server_id: &str) -> ServiceResult<()> {
    let now = st.now_ms();
    let server = visible_server(st, p, server_id).await?;
    p.require_on_server(Permission::CredentialsWrite, &server.tags)?;
    let c = credentials::get(&st.db.pool, &server.id)
        .await?
        .ok_or_else(|| ServiceError::not_found("credential"))?;
    let mut tx = st.db.begin().await?;
    credentials::delete(&mut *tx, &server.id).await?;
    secrets::delete(&mut *tx, &c.secret_id).await?;
    if let Some(pp) = &c.passphrase_secret_id {
        secrets::delete(&mut *tx, pp).await?;
    }
    Event::by(p, "credential.delete", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "kind": c.kind }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(())
}
