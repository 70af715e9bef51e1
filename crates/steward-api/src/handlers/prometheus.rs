//! `GET /metrics`: the Prometheus text exposition of Steward's own metrics and the fleet's
//! latest host metrics, for an existing Prometheus to scrape. Allowed with the configured
//! bearer token, or from the configured addresses (loopback by default); anyone else gets 401.
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::tags;
use crate::auth::tokens::hash_token;
use crate::error::ApiError;
use crate::extract::ClientInfo;
use crate::state::AppState;

/// Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn allowed(st: &AppState, headers: &HeaderMap, client: &ClientInfo) -> bool {
    if let Some(expected) = &st.config.metrics_token_sha256
        && let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    {
        return bool::from(
            hash_token(given.trim())
                .as_bytes()
                .ct_eq(expected.as_bytes()),
        );
    }
    client
        .ip
        .is_some_and(|ip| st.config.metrics_allow.iter().any(|net| net.contains(&ip)))
}

/// Steward's and the fleet's metrics for Prometheus.
#[utoipa::path(operation_id = "prometheus_metrics", get, path = "/metrics", tag = tags::HEALTH,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        (status = 401, body = steward_proto::ErrorBody, description = "No valid token and not from an allowed address"),
    ))]
pub async fn metrics(
    State(st): State<AppState>,
    headers: HeaderMap,
    client: ClientInfo,
) -> Result<Response, ApiError> {
    if !allowed(&st, &headers, &client) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "scraping /metrics needs the metrics token or an allowed address",
        ));
    }
    let body = crate::telemetry::render_own(&st);
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}
