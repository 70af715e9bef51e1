//! Liveness and readiness probes.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_proto::StatusBody;

use super::tags;
use crate::state::AppState;

/// The process is alive.
#[utoipa::path(operation_id = "health_healthz", get, path = "/healthz", security(()), tag = tags::HEALTH, responses((status = 200, body = StatusBody)))]
pub async fn healthz() -> Json<StatusBody> {
    Json(StatusBody {
        status: "ok".into(),
    })
}

/// The database answers and every migration is applied.
#[utoipa::path(operation_id = "health_readyz", get, path = "/readyz", security(()), tag = tags::HEALTH, responses((status = 200, body = StatusBody), (status = 503, body = StatusBody)))]
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<StatusBody>) {
    match st.db.ready().await {
        Ok(true) => (
            StatusCode::OK,
            Json(StatusBody {
                status: "ready".into(),
            }),
        ),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusBody {
                status: "migrations pending".into(),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(StatusBody {
                    status: "database unavailable".into(),
                }),
            )
        }
    }
}
