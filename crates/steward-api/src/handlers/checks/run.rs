//! Running a check now, rate-limited per user and per check.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_db::checks;
use steward_proto::{Check, CheckStatus, ErrorBody};

use super::{full_view, load, require_write};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::IdPath;
use crate::handlers::tags;
use crate::rate_limit::Limit;
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::checks::run_and_store;

/// Manual runs one user may start.
const RUNS_PER_USER: Limit = Limit {
    max: 10,
    window: std::time::Duration::from_secs(60),
};
/// Manual runs of one check, whoever starts them.
const RUNS_PER_CHECK: Limit = Limit {
    max: 5,
    window: std::time::Duration::from_secs(60),
};

/// Runs a check now (also a disabled one), stores the result and returns the check. At most
/// 10 manual runs a minute per user, and 5 a minute per check.
#[utoipa::path(post, operation_id = "checks_run", path = "/api/v1/checks/{id}/run", tag = tags::CHECKS, params(("id" = String, Path)),
    responses((status = 200, body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "`rate_limited`: too many manual runs; see Retry-After")))]
pub async fn run(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Check>> {
    let (row, server) = load(&st, &p, &id).await?;
    require_write(&p, server.as_ref())?;
    let limited = async {
        RUNS_PER_USER
            .take(
                &st,
                &format!("check_run:user:{}", p.user.id),
                "you started too many check runs",
            )
            .await?;
        RUNS_PER_CHECK
            .take(
                &st,
                &format!("check_run:check:{}", row.id),
                "this check was run too often",
            )
            .await
    };
    if let Err(e) = limited.await {
        if e.status == StatusCode::TOO_MANY_REQUESTS {
            Event::by(&p, "check.run", st.now_ms())
                .target("check", &row.id, &row.name)
                .outcome(Outcome::Denied)
                .details(json!({ "reason": "rate_limited" }))
                .write(&st.db.pool)
                .await?;
        }
        return Err(e);
    }
    let result = run_and_store(&st, &row).await?;
    Event::by(&p, "check.run", st.now_ms())
        .target("check", &row.id, &row.name)
        .outcome(if result.status == CheckStatus::Down {
            Outcome::Failure
        } else {
            Outcome::Success
        })
        .details(json!({ "status": result.status, "message": result.message }))
        .write(&st.db.pool)
        .await?;
    let row = checks::get(&st.db.pool, &p.user.org_id, &row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    Ok(Json(full_view(&st, row).await?))
}
