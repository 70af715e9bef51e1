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

use super::{tags, time};
use crate::auth::attempt::{self, Proof};
use crate::auth::{Principal, SessionPrincipal};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use steward_services::audit::Event;

/// Checks the proof: a TOTP code when one is given (and 2FA is on), else the password. It
/// goes through the throttle every password and code check shares; a wrong proof is audited
/// and answered 403 `step_up_failed`.
pub(crate) async fn verify(st: &AppState, p: &Principal, req: &StepUpRequest) -> ApiResult<()> {
    let code = req.totp_code.as_ref().filter(|c| !c.is_blank());
    let password = req.password.as_ref().filter(|c| !c.is_blank());
    let proof = match (code, password) {
        (Some(code), _) if p.user.totp_enabled_at.is_some() => Proof::TotpCode(code.expose()),
        (_, Some(password)) => Proof::Password(password),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "step_up_missing",
                "enter your password or an authentication code",
            ));
        }
    };
    if !attempt::confirm(st, p, proof, "auth.step_up").await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "step_up_failed",
            "the password or code is wrong",
        ));
    }
    let now = st.now_ms();
    if let Some(sid) = p.session_id() {
        sessions::set_step_up(&st.db.pool, sid, now).await?;
    }
    Event::by(p, "auth.step_up", now)
        .details(json!({ "method": proof.method() }))
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
        None => p
            .require_step_up(st.now_ms(), st.config.step_up_window, what)
            .map_err(ApiError::from),
    }
}

/// Proves the session's user again, for sensitive actions in the next minutes.
#[utoipa::path(post, operation_id = "auth_step_up", path = "/api/v1/auth/step-up", tag = tags::AUTH, request_body = StepUpRequest,
    responses((status = 200, body = StepUpResponse), (status = 403, body = ErrorBody, description = "`step_up_failed`, or an API token (they prove themselves inline)"), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "`too_many_attempts`"), (status = 503, body = ErrorBody, description = "`busy`")))]
pub async fn step_up(
    State(st): State<AppState>,
    p: SessionPrincipal,
    ApiJson(req): ApiJson<StepUpRequest>,
) -> ApiResult<Json<StepUpResponse>> {
    // API tokens prove their owner inline, with `step_up` in the request that needs it.
    verify(&st, &p, &req).await?;
    let window = i64::try_from(st.config.step_up_window.as_millis()).unwrap_or(i64::MAX);
    Ok(Json(StepUpResponse {
        valid_until: time(st.now_ms().saturating_add(window)),
    }))
}
