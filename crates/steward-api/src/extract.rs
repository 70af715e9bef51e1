//! Extractors that turn malformed requests into clear JSON errors: a JSON body, query
//! parameters, and facts about the client (address, user agent, request id).
use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON object body whose rejections are [`ApiError`]s: 415 without a JSON content type,
/// 413 past the body limit, 400 for text that is not JSON, 422 for JSON of the wrong shape
/// (including a top-level array, which serde would otherwise map onto struct fields in order).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a body with Content-Type: application/json",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        parse_object(&bytes).map(Self)
    }
}

/// An optional JSON object body: absent (empty) is `None`; present, it is checked like
/// [`ApiJson`] except that the content type is not required.
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        parse_object(&bytes).map(|v| Self(Some(v)))
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

async fn body_bytes(req: Request, state: &AppState) -> Result<bytes::Bytes, ApiError> {
    bytes::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is too large",
            )
        } else {
            ApiError::bad_request("bad_request", e.body_text())
        }
    })
}

fn invalid_body(message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        format!("invalid request body: {message}"),
    )
}

fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Well-formed JSON first (strings and escapes included), so "not JSON" (400) and "JSON of
    // the wrong shape" (422) are told apart even where serde_json would call a shape error a
    // syntax error (an enum given a number); and only an object, so a top-level array cannot
    // fill a struct's fields by position.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid_body("expected a JSON object"));
    }
    // Then the typed parse from the text itself, which also refuses duplicated keys (a parsed
    // value would have kept only the last).
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            invalid_body(e.into_inner())
        } else {
            invalid_body(format!("{path}: {}", e.into_inner()))
        }
    })
}

/// A `{id}` path segment. Every id Steward hands out is a UUID, so anything else — including
/// text that is not UTF-8 — is simply not found, before any database lookup.
#[derive(Debug, Clone)]
pub struct IdPath(pub String);

impl FromRequestParts<AppState> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("object"))?;
        uuid::Uuid::parse_str(&raw)
            .map(|u| Self(u.to_string()))
            .map_err(|_| ApiError::not_found("object"))
    }
}

/// Two id path segments (`/users/{id}/sessions/{session_id}`), each a UUID like [`IdPath`]'s;
/// anything else is not found.
#[derive(Debug, Clone)]
pub struct IdPair(pub String, pub String);

impl FromRequestParts<AppState> for IdPair {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("object"))?;
        match (uuid::Uuid::parse_str(&a), uuid::Uuid::parse_str(&b)) {
            (Ok(a), Ok(b)) => Ok(Self(a.to_string(), b.to_string())),
            _ => Err(ApiError::not_found("object")),
        }
    }
}

/// Refuses control characters in free text from a query string (search terms, filters).
pub fn clean_query_text(field: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.chars().any(char::is_control) => Err(ApiError::bad_request(
            "invalid_query",
            format!("{field} must not contain control characters"),
        )),
        Some(s) => Ok(Some(s.chars().take(200).collect())),
    }
}

/// Query parameters whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> ApiQuery<T> {
    /// Parses the query string of `uri`. Handlers that must check permissions before looking at
    /// the parameters take the `Uri` and call this afterwards.
    pub fn from_uri(uri: &axum::http::Uri) -> Result<T, ApiError> {
        match axum::extract::Query::<T>::try_from_uri(uri) {
            Ok(q) => Ok(q.0),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                "invalid_query",
                format!("invalid query parameters: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::bad_request("invalid_query", e.body_text())),
        }
    }
}

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Self::from_uri(&parts.uri).map(Self)
    }
}

pub use steward_services::principal::ClientInfo;

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_info(parts, state))
    }
}

/// Reads client facts from request parts.
pub fn client_info(parts: &Parts, state: &AppState) -> ClientInfo {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = match peer {
        Some(p) if state.config.trusted_proxies.iter().any(|n| n.contains(&p)) => {
            forwarded_for(parts, &state.config.trusted_proxies).or(Some(p))
        }
        other => other,
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect::<String>())
    };
    ClientInfo {
        ip,
        user_agent: header("user-agent"),
        request_id: header("x-request-id"),
    }
}

/// The right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
pub(crate) fn forwarded_for(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let value = parts.headers.get("x-forwarded-for")?.to_str().ok()?;
    value
        .split(',')
        .rev()
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .find(|ip| !trusted.iter().any(|n| n.contains(ip)))
}

/// The items of a comma-separated header list (`Connection`, `Accept`,
/// `Sec-WebSocket-Extensions` …) over every occurrence of the header, trimmed.
pub fn header_list(
    headers: &axum::http::HeaderMap,
    name: axum::http::header::HeaderName,
) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}
