//! A server's SSH credential: uploaded key, password, or a generated key pair. Secrets go
//! straight into the vault (`steward_services::credentials`) and never come back out through
//! the API.
use axum::Json;
use axum::extract::State;
use steward_db::credentials::{self, CredentialRow};
use steward_proto::{CredentialInfo, CredentialInput, CredentialKind, ErrorBody};
use steward_services::credentials as service;

use super::{servers::visible, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;

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
    let row = service::set(&st, &p, &id, &req).await?;
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
    service::delete(&st, &p, &id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
