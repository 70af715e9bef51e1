//! `GET /metrics`: the Prometheus text exposition of Steward's own metrics and the fleet's
//! latest host metrics, for an existing Prometheus to scrape.
//!
//! The fleet series name every server (name, id, tags) with its latest values, whatever any
//! role allows: they are organization-wide data, so the route answers only the bearer token
//! set with `--metrics-token` — or, opted into with `--metrics-allow`, a scraper whose own
//! address is in the allow-list. Nothing is allowed by default, loopback included: behind a
//! reverse proxy on the same host every client is loopback.
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::tags;
use crate::error::ApiError;
use crate::state::AppState;
use steward_services::auth::tokens::hash_token;

/// Prometheus text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Headers a reverse proxy uses to say whom it relays for.
const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// The scraper's own address, or `None` when it cannot be known: a request relayed by a proxy
/// Steward does not trust (it carries a forwarding header, so the peer is not the scraper),
/// or by a trusted proxy that does not name the client in `X-Forwarded-For`.
fn scraper_address(st: &AppState, parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let trusted = &st.config.trusted_proxies;
    if trusted.iter().any(|n| n.contains(&peer)) {
        return crate::extract::forwarded_for(parts, trusted);
    }
    let relayed = FORWARDING_HEADERS
        .iter()
        .any(|h| parts.headers.contains_key(*h));
    (!relayed).then_some(peer)
}

fn allowed(st: &AppState, parts: &Parts) -> bool {
    if let Some(expected) = &st.config.metrics_token_sha256
        && let Some(given) = parts
            .headers
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
    !st.config.metrics_allow.is_empty()
        && scraper_address(st, parts)
            .is_some_and(|ip| st.config.metrics_allow.iter().any(|net| net.contains(&ip)))
}

/// Steward's and the fleet's metrics for Prometheus.
///
/// The fleet series cover every server of the organization, whatever the scraper's role
/// (organization-wide data): only the metrics token (or an address opted into with
/// `--metrics-allow`) may read them.
#[utoipa::path(operation_id = "prometheus_metrics", get, path = "/metrics", tag = tags::HEALTH,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4: Steward's own metrics and every server's latest values (organization-wide)", content_type = "text/plain", body = String),
        (status = 401, body = steward_proto::ErrorBody, description = "Not the metrics token (`--metrics-token`), and not from an address opted into with `--metrics-allow`"),
    ))]
pub async fn metrics(State(st): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    if !allowed(&st, &parts) {
        let message =
            if st.config.metrics_token_sha256.is_none() && st.config.metrics_allow.is_empty() {
                "scraping /metrics is off: set --metrics-token (or --metrics-allow)"
            } else {
                "scraping /metrics needs the metrics token"
            };
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            message,
        ));
    }
    let body = crate::telemetry::render_own(&st);
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}
