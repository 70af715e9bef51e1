//! The error body every failing request answers with.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `totp_required`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// Extra facts, e.g. `{"field": "name"}`.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A simple status answer (`/healthz`, `/readyz`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    pub status: String,
}
