//! `ApiError`: every failure a handler returns, rendered as
//! `{"error":{"code","message","details"}}` with the right status. Server errors are logged
//! with their cause chain and answered with a generic message.
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use steward_core::ValidationError;
use steward_db::DbError;
use steward_services::ServiceError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
    source: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
            headers: Vec::new(),
            source: None,
        }
    }

    /// Replaces the code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// Adds facts for clients.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 with a specific code.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found` for `what` (`server`, `user` …).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// Adds `Retry-After` (seconds) and `details.retry_after`.
    pub fn with_retry_after(mut self, secs: impl Into<i64>) -> Self {
        let secs: i64 = secs.into();
        if let Some(d) = self.details.as_object_mut() {
            d.insert("retry_after".into(), json!(secs));
        }
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            self.headers.push((header::RETRY_AFTER, v));
        }
        self
    }

    /// 429 with `Retry-After`.
    pub fn too_many_attempts(retry_after_secs: i64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("too many attempts; try again in {retry_after_secs} s"),
        )
        .with_retry_after(retry_after_secs)
    }

    /// 429 `rate_limited` with `Retry-After`: `what` happened too often.
    pub fn rate_limited(what: &str, retry_after_secs: i64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{what}; try again in {retry_after_secs} s"),
        )
        .with_retry_after(retry_after_secs)
    }

    /// 500, logging `source`; the client sees only a generic message.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal server error",
        );
        e.source = Some(source.into());
        e
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            e.to_string(),
        )
        .with_details(json!({ "field": e.field, "reason": e.message }))
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict { field } => {
                Self::conflict("conflict", format!("{field} is already taken"))
                    .with_details(json!({ "field": field }))
            }
            other => Self::internal(other),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound { what } => Self::not_found(what),
            ServiceError::Conflict {
                code,
                message,
                details,
            } => Self::conflict(code, message).with_details(details),
            ServiceError::Forbidden { code, message } => Self::forbidden(message).with_code(code),
            ServiceError::Validation(v) => v.into(),
            ServiceError::Invalid {
                code,
                message,
                details,
            } => Self::bad_request(code, message).with_details(details),
            ServiceError::Unreachable { code, message } => {
                Self::new(StatusCode::BAD_GATEWAY, code, message)
            }
            ServiceError::Busy {
                code,
                message,
                retry_after_secs,
            } => Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
                .with_retry_after(retry_after_secs),
            ServiceError::Internal(source) => Self::internal(source),
        }
    }
}

impl From<steward_vault::VaultError> for ApiError {
    fn from(e: steward_vault::VaultError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // `busy` (503) is the answer to a flood, not a fault: one log line per refused request
        // would only add to the flood.
        if self.status.is_server_error() && self.code != "busy" {
            match &self.source {
                Some(source) => tracing::error!(
                    error = format!("{source:#}"),
                    code = self.code,
                    "request failed"
                ),
                None => {
                    tracing::error!(code = self.code, message = %self.message, "request failed")
                }
            }
        }
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut response = (self.status, axum::Json(body)).into_response();
        for (k, v) in self.headers {
            response.headers_mut().insert(k, v);
        }
        response
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
