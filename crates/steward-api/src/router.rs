//! The full router: documented API routes, fallbacks, and the layers every request passes
//! (request id, tracing, body limit and the early 413, panic catching, security headers).
use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// The application with all layers, ready to serve.
pub fn router(state: AppState) -> Router {
    let (api, _doc) = crate::openapi::api_routes().split_for_parts();
    let max_body = state.config.max_body_bytes;
    Router::new()
        .merge(api)
        .fallback(crate::web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            crate::edge::MaxBody(max_body as u64),
            crate::edge::refuse_oversized,
        ))
        .layer(axum::middleware::from_fn(crate::telemetry::track))
        // Streamed progress (`application/x-ndjson`) is not compressed, like SSE, so each line
        // goes out as it is written.
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new().and(NotForContentType::const_new(crate::agent_progress::NDJSON)),
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::security::headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetSensitiveHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
            axum::http::header::SET_COOKIE,
        ]))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes, then drains connections
/// (through the edge: connection cap and timeouts, `crate::edge`).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Health checks may not reach the address the API listens on.
    state.hub_addresses.add_listen(listener.local_addr()?.ip());
    let app = router(state.clone());
    let edge = crate::edge::Edge {
        connections: state.connections.clone(),
        header_timeout: state.config.http_header_timeout,
        idle_timeout: state.config.http_idle_timeout,
    };
    crate::edge::serve(listener, edge, app, shutdown).await?;
    // Upgraded connections (web terminals) are not drained: end them, recorded.
    state
        .terminals
        .stop_all("shutdown", std::time::Duration::from_secs(5))
        .await;
    Ok(())
}
