//! Two-factor authentication with an authenticator app, and recovery codes.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_db::users::UserRow;
use steward_proto::{
    ErrorBody, PasswordConfirmation, RecoveryCodes, TotpConfirmRequest, TotpEnrollResponse,
};

use super::auth::confirm_password;
use super::tags;
use crate::auth::{PendingSession, attempt};
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;
use steward_services::auth::totp;
use steward_services::second_factor;

/// Checks a TOTP code for a user with 2FA on, refusing a replayed code
/// (`steward_services::second_factor::check_code`).
pub(crate) async fn check_code(
    st: &AppState,
    user: &UserRow,
    code: &str,
    now_ms: i64,
) -> ApiResult<bool> {
    Ok(second_factor::check_code(st, user, code, now_ms).await?)
}

/// Starts 2FA set-up: a new secret to scan. Replaces any unconfirmed one.
#[utoipa::path(operation_id = "totp_enroll", post, path = "/api/v1/auth/totp/enroll", tag = tags::AUTH,
    responses((status = 200, body = TotpEnrollResponse), (status = 409, body = ErrorBody, description = "2FA is already on")))]
pub async fn enroll(
    State(st): State<AppState>,
    principal: PendingSession,
) -> ApiResult<Json<TotpEnrollResponse>> {
    Ok(Json(second_factor::enroll(&st, &principal.0).await?))
}

/// Confirms set-up with a code from the app; turns 2FA on and returns recovery codes (once).
#[utoipa::path(operation_id = "totp_confirm", post, path = "/api/v1/auth/totp/confirm", tag = tags::AUTH, request_body = TotpConfirmRequest,
    responses((status = 200, body = RecoveryCodes), (status = 400, body = ErrorBody, description = "`invalid_totp` or no enrollment in progress"), (status = 429, body = ErrorBody, description = "`too_many_attempts`")))]
pub async fn confirm(
    State(st): State<AppState>,
    principal: PendingSession,
    ApiJson(req): ApiJson<TotpConfirmRequest>,
) -> ApiResult<Json<RecoveryCodes>> {
    let p = principal.0;
    let now = st.now_ms();
    let secret = second_factor::pending_secret(&st, &p).await?;
    // Counted like every code check, so a stolen session cannot guess its way through.
    let step = attempt::guarded(&st, &p, "auth.totp_enable", "bad code", || async {
        Ok(totp::verify(&secret, req.code.expose(), now / 1000))
    })
    .await?;
    let codes = second_factor::enable(&st, &p, step).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes.into_iter().map(Into::into).collect(),
    }))
}

/// Turns 2FA off (the password is asked again). Refused while policy requires 2FA.
#[utoipa::path(operation_id = "totp_disable", delete, path = "/api/v1/auth/totp", tag = tags::AUTH, request_body = PasswordConfirmation,
    responses((status = 204), (status = 403, body = ErrorBody, description = "wrong password"), (status = 409, body = ErrorBody, description = "required by policy"), (status = 429, body = ErrorBody, description = "`too_many_attempts`")))]
pub async fn disable(
    State(st): State<AppState>,
    principal: PendingSession,
    ApiJson(req): ApiJson<PasswordConfirmation>,
) -> ApiResult<StatusCode> {
    let p = principal.0;
    confirm_password(&st, &p, req.password, "auth.totp_disable").await?;
    second_factor::disable(&st, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the recovery codes (the password is asked again).
#[utoipa::path(operation_id = "totp_regenerate_codes", post, path = "/api/v1/auth/totp/recovery-codes", tag = tags::AUTH, request_body = PasswordConfirmation,
    responses((status = 200, body = RecoveryCodes), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = "2FA is off"), (status = 429, body = ErrorBody, description = "`too_many_attempts`")))]
pub async fn regenerate_codes(
    State(st): State<AppState>,
    principal: PendingSession,
    ApiJson(req): ApiJson<PasswordConfirmation>,
) -> ApiResult<Json<RecoveryCodes>> {
    let p = principal.0;
    second_factor::require_enabled(&p)?;
    confirm_password(&st, &p, req.password, "auth.recovery_codes_regenerate").await?;
    let codes = second_factor::regenerate_codes(&st, &p).await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes.into_iter().map(Into::into).collect(),
    }))
}
