//! Step-up authentication: before a sensitive action (a run on many servers, an ad-hoc
//! command, a terminal) the user proves themselves again with their password or a TOTP code.
//! A session stays proven for a configured window; an API token proves its owner inline, in
//! the request that needs it.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_db::sessions;
use steward_proto::{ErrorBody, StepUpRequest, StepUpResponse};

use super::auth::{record_failure, throttle_keys, throttle_wait};
use super::{tags, time};
use crate::audit::{Event, Outcome};
use crate::auth::{Principal, password as pw};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Checks the proof: a TOTP code when one is given (and 2FA is on), else the password. A
/// wrong proof is throttled like a failed login, audited, and answered 403 `step_up_failed`.
pub(crate) async fn verify(st: &AppState, p: &Principal, req: &StepUpRequest) -> ApiResult<()> {
    let now = st.now_ms();
    let keys = throttle_keys(&p.user.username, &p.client);
    let wait = throttle_wait(st, &keys, now).await?;
    if wait > 0 {
        Event::by(p, "auth.step_up", now)
            .outcome(Outcome::Denied)
            .details(json!({ "reason": "throttled" }))
            .write(&st.db.pool)
            .await?;
        return Err(ApiError::too_many_attempts(wait));
    }
    let code = req.totp_code.as_ref().filter(|c| !c.is_blank());
    let password = req.password.as_ref().filter(|c| !c.is_blank());
    let (ok, method) = match (code, password) {
        (Some(code), _) if p.user.totp_enabled_at.is_some() => (
            super::totp::check_code(st, &p.user, code.expose(), now).await?,
            "totp",
        ),
        (_, Some(password)) => (
            pw::verify_async(password.clone(), p.user.password_hash.clone()).await?,
            "password",
        ),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "step_up_missing",
                "enter your password or an authentication code",
            ));
        }
    };
    if !ok {
        record_failure(st, &keys, now).await?;
        Event::by(p, "auth.step_up", now)
            .outcome(Outcome::Failure)
            .details(json!({ "method": method }))
            .write(&st.db.pool)
            .await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "step_up_failed",
            "the password or code is wrong",
        ));
    }
    if let Some(sid) = p.session_id() {
        sessions::set_step_up(&st.db.pool, sid, now).await?;
    }
    Event::by(p, "auth.step_up", now)
        .details(json!({ "method": method }))
        .write(&st.db.pool)
        .await?;
    Ok(())
}

/// Requires a step-up for `what`: the proof given inline (API tokens, or instead of a separate
/// `POST /auth/step-up`), else a recent one of the session. 403 `step_up_required` or
/// `step_up_failed` otherwise.
pub(crate) async fn require(
    st: &AppState,
    p: &Principal,
    inline: Option<&StepUpRequest>,
    what: &str,
) -> ApiResult<()> {
    match inline {
        Some(proof) => verify(st, p, proof).await,
        None => p.require_step_up(st, what),
    }
}

/// Proves the session's user again, for sensitive actions in the next minutes.
#[utoipa::path(post, operation_id = "auth_step_up", path = "/api/v1/auth/step-up", tag = tags::AUTH, request_body = StepUpRequest,
    responses((status = 200, body = StepUpResponse), (status = 403, body = ErrorBody, description = "`step_up_failed`, or an API token (they prove themselves inline)"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn step_up(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<StepUpRequest>,
) -> ApiResult<Json<StepUpResponse>> {
    p.require_session("step up; pass `step_up` in the request that needs it")?;
    verify(&st, &p, &req).await?;
    let window = i64::try_from(st.config.step_up_window.as_millis()).unwrap_or(i64::MAX);
    Ok(Json(StepUpResponse {
        valid_until: time(st.now_ms().saturating_add(window)),
    }))
}
