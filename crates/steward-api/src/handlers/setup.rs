//! First-run setup: the holder of the one-time setup token creates the first administrator.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::DEFAULT_ORG_ID;
use steward_db::{state as instance, users};
use steward_proto::{ErrorBody, RoleRef, SetupRequest, SetupStatus, User};
use subtle::ConstantTimeEq;

use super::tags;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientInfo};
use crate::state::AppState;
use steward_services::accounts::{self, NewAccount};
use steward_services::audit::{Event, Outcome};
use steward_services::auth::tokens;

/// Whether setup is still open.
#[utoipa::path(operation_id = "setup_status", get, path = "/api/v1/setup", security(()), tag = tags::SETUP, responses((status = 200, body = SetupStatus)))]
pub async fn status(State(st): State<AppState>) -> ApiResult<Json<SetupStatus>> {
    Ok(Json(SetupStatus {
        setup_required: users::count_all(&st.db.pool).await? == 0,
    }))
}

/// Creates the first administrator with the one-time setup token.
#[utoipa::path(operation_id = "setup_create", post, path = "/api/v1/setup", security(()), tag = tags::SETUP, request_body = SetupRequest,
    responses((status = 201, body = User), (status = 403, body = ErrorBody, description = "wrong token"),
        (status = 409, body = ErrorBody, description = "already set up"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<SetupRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let now = st.now_ms();
    let closed = || {
        ApiError::conflict(
            "already_set_up",
            "Steward is already set up; log in instead",
        )
    };
    if users::count_all(&st.db.pool).await? > 0 {
        return Err(closed());
    }
    let expected = instance::get(&st.db.pool, instance::SETUP_TOKEN_HASH)
        .await?
        .ok_or_else(closed)?;
    let given = tokens::hash_token(req.token.expose().trim());
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Event::new("setup.complete", &client, now)
            .outcome(Outcome::Denied)
            .details(serde_json::json!({ "reason": "wrong setup token" }))
            .write(&st.db.pool)
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_setup_token",
            "the setup token is not valid",
        ));
    }
    let account = NewAccount::check(
        &st.passwords,
        &req.username,
        req.email.as_deref(),
        req.password,
    )
    .await?;
    let username = account.username.clone();
    let (id, admin) =
        match accounts::create_first_administrator(&st, &account, &client, now).await? {
            Some(created) => created,
            None => return Err(closed()),
        };

    if let Some(dir) = &st.config.data_dir {
        let path = dir.join(steward_services::bootstrap::SETUP_TOKEN_FILE);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove the used setup token file");
        }
    }
    tracing::info!(username = %username, "first administrator created; setup is closed");
    let row = users::get(&st.db.pool, DEFAULT_ORG_ID, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok((
        StatusCode::CREATED,
        Json(super::users::view(
            row,
            vec![RoleRef {
                id: admin.id,
                name: admin.name,
            }],
        )),
    ))
}
