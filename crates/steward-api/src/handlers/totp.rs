//! Two-factor authentication with an authenticator app, and recovery codes.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_db::users::UserRow;
use steward_db::{secrets, users};
use steward_proto::{
    ErrorBody, PasswordConfirmation, RecoveryCodes, TotpConfirmRequest, TotpEnrollResponse,
};

use super::auth::confirm_password;
use super::tags;
use crate::auth::{PendingSession, attempt};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use steward_services::audit::Event;
use steward_services::auth::{tokens, totp};
use steward_services::bootstrap::{load_secret, store_secret};

const RECOVERY_CODE_COUNT: usize = 10;
const ISSUER: &str = "Steward";

/// Checks a TOTP code for a user with 2FA on, refusing a replayed code
/// (`steward_services::second_factor::check_code`).
pub(crate) async fn check_code(
    st: &AppState,
    user: &UserRow,
    code: &str,
    now_ms: i64,
) -> ApiResult<bool> {
    Ok(steward_services::second_factor::check_code(st, user, code, now_ms).await?)
}

async fn new_recovery_codes(
    user_id: &str,
    now: i64,
    tx: &mut steward_db::AnyConnection,
) -> ApiResult<Vec<String>> {
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| tokens::new_recovery_code())
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| tokens::hash_token(c)).collect();
    users::replace_recovery_codes(tx, user_id, &hashes, now).await?;
    Ok(codes)
}

/// Starts 2FA set-up: a new secret to scan. Replaces any unconfirmed one.
#[utoipa::path(operation_id = "totp_enroll", post, path = "/api/v1/auth/totp/enroll", tag = tags::AUTH,
    responses((status = 200, body = TotpEnrollResponse), (status = 409, body = ErrorBody, description = "2FA is already on")))]
pub async fn enroll(
    State(st): State<AppState>,
    principal: PendingSession,
) -> ApiResult<Json<TotpEnrollResponse>> {
    let p = principal.0;
    let now = st.now_ms();
    if p.user.totp_enabled_at.is_some() {
        return Err(ApiError::conflict(
            "totp_already_enabled",
            "two-factor authentication is already on; turn it off first",
        ));
    }
    let secret = totp::new_secret();
    let mut tx = st.db.begin().await?;
    let secret_id = store_secret(&mut *tx, &st.vault, "totp", &secret, now)
        .await
        .map_err(ApiError::internal)?;
    users::set_pending_totp(&mut *tx, &p.user.id, &secret_id, now).await?;
    if let Some(old) = &p.user.totp_secret_id {
        secrets::delete(&mut *tx, old).await?;
    }
    Event::by(&p, "auth.totp_enroll", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(TotpEnrollResponse {
        secret: totp::base32(&secret).into(),
        otpauth_url: totp::otpauth_url(&secret, &p.user.username, ISSUER).into(),
    }))
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
    if p.user.totp_enabled_at.is_some() {
        return Err(ApiError::conflict(
            "totp_already_enabled",
            "two-factor authentication is already on",
        ));
    }
    let secret_id = p.user.totp_secret_id.clone().ok_or_else(|| {
        ApiError::bad_request("totp_not_enrolled", "start with /auth/totp/enroll")
    })?;
    let secret = load_secret(&st.db, &st.vault, &secret_id)
        .await
        .map_err(ApiError::internal)?;
    // Counted like every code check, so a stolen session cannot guess its way through.
    let step = attempt::guarded(&st, &p, "auth.totp_enable", "bad code", || async {
        Ok(totp::verify(&secret, req.code.expose(), now / 1000))
    })
    .await?;
    let Some(step) = step else {
        return Err(ApiError::bad_request(
            "invalid_totp",
            "the code does not match; check the device's clock and try again",
        ));
    };
    let mut tx = st.db.begin().await?;
    users::enable_totp(&mut *tx, &p.user.id, step, now).await?;
    let codes = new_recovery_codes(&p.user.id, now, &mut tx).await?;
    Event::by(&p, "auth.totp_enable", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
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
    let now = st.now_ms();
    confirm_password(&st, &p, req.password, "auth.totp_disable").await?;
    if p.totp_required {
        return Err(ApiError::conflict(
            "totp_required_by_policy",
            "two-factor authentication is required for this account",
        ));
    }
    let event =
        Event::by(&p, "auth.totp_disable", now).target("user", &p.user.id, &p.user.username);
    steward_services::second_factor::remove(&st, &p.user, now, event).await?;
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
    let now = st.now_ms();
    if p.user.totp_enabled_at.is_none() {
        return Err(ApiError::conflict(
            "totp_not_enabled",
            "two-factor authentication is off",
        ));
    }
    confirm_password(&st, &p, req.password, "auth.recovery_codes_regenerate").await?;
    let mut tx = st.db.begin().await?;
    let codes = new_recovery_codes(&p.user.id, now, &mut tx).await?;
    Event::by(&p, "auth.recovery_codes_regenerate", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes.into_iter().map(Into::into).collect(),
    }))
}
