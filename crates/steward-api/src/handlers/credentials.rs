//! A server's SSH credential: uploaded key, password, or a generated key pair. Secrets go
//! straight into the vault and never come back out through the API.
use axum::Json;
use axum::extract::State;
use serde_json::json;
use steward_core::{Permission, ValidationError};
use steward_db::credentials::{self, CredentialRow};
use steward_db::secrets;
use steward_proto::{CredentialInfo, CredentialInput, CredentialKind, ErrorBody};
use steward_ssh::keys;

use super::{servers::visible, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;
use steward_services::audit::Event;
use steward_services::bootstrap::store_secret;

/// The longest SSH password accepted.
const MAX_PASSWORD_LEN: usize = 4096;

fn view(c: &CredentialRow) -> CredentialInfo {
    CredentialInfo {
        kind: CredentialKind::parse(&c.kind).unwrap_or(CredentialKind::Password),
        key_type: c.key_type.clone(),
        public_key: c.public_key.clone(),
        fingerprint: c.fingerprint.clone(),
        has_passphrase: c.passphrase_secret_id.is_some(),
        updated_at: time(c.updated_at),
    }
}

/// The credential's public facts (never its secret).
#[utoipa::path(operation_id = "credentials_get", get, path = "/api/v1/servers/{id}/credential", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = CredentialInfo), (status = 404, body = ErrorBody, description = "no such server, or no credential")))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<CredentialInfo>> {
    let server = visible(&st, &p, &id).await?;
    let c = credentials::get(&st.db.pool, &server.id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    Ok(Json(view(&c)))
}

/// Sets the credential, replacing any previous one. For `generate`, the answer carries the
/// public key to paste into the server's `authorized_keys`.
#[utoipa::path(operation_id = "credentials_put", put, path = "/api/v1/servers/{id}/credential", tag = tags::SERVERS, params(("id" = String, Path)), request_body = CredentialInput,
    responses((status = 200, body = CredentialInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody, description = "unreadable key, missing or wrong passphrase")))]
pub async fn put(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<CredentialInput>,
) -> ApiResult<Json<CredentialInfo>> {
    let now = st.now_ms();
    let server = visible(&st, &p, &id).await?;
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
    let (kind, secret_id, passphrase_secret_id, key) = match &req {
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
            .map_err(ApiError::internal)?;
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
                    .map_err(ApiError::internal)?,
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
            .map_err(ApiError::internal)?;
            (CredentialKind::Password, secret_id, None, None)
        }
        CredentialInput::Generate {} => {
            let generated = keys::generate_ed25519(&comment).map_err(ApiError::internal)?;
            let secret_id = store_secret(
                &mut *tx,
                &st.vault,
                "ssh_private_key",
                generated.private_openssh.as_bytes(),
                now,
            )
            .await
            .map_err(ApiError::internal)?;
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
    Event::by(&p, action, now)
        .target("server", &server.id, &server.name)
        .details(json!({ "kind": row.kind, "fingerprint": row.fingerprint, "replaced": previous.is_some() }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(Json(view(&row)))
}

/// Removes the credential and its secrets.
#[utoipa::path(operation_id = "credentials_delete", delete, path = "/api/v1/servers/{id}/credential", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<axum::http::StatusCode> {
    let now = st.now_ms();
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::CredentialsWrite, &server.tags)?;
    let c = credentials::get(&st.db.pool, &server.id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    let mut tx = st.db.begin().await?;
    credentials::delete(&mut *tx, &server.id).await?;
    secrets::delete(&mut *tx, &c.secret_id).await?;
    if let Some(pp) = &c.passphrase_secret_id {
        secrets::delete(&mut *tx, pp).await?;
    }
    Event::by(&p, "credential.delete", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "kind": c.kind }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(axum::http::StatusCode::NO_CONTENT)
}
