//! `ServiceError`: how a service says no. Each kind is something a caller can act on (the API
//! maps it to a status and a stable code; the CLI prints the message); `Internal` carries the
//! cause for the log and is never shown to a user.
use serde_json::{Value, json};
use steward_core::ValidationError;
use steward_db::DbError;

/// What went wrong in a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing asked for does not exist (or the caller may not know it exists).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The request clashes with what is stored (a taken name, a changed version …).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// The caller may not do this (`forbidden`, or a code saying what would allow it, such as
    /// `step_up_required`).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A value is not acceptable: a field that failed its rule.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The request as a whole is not acceptable (a code names which rule).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// A managed server or another peer could not be reached or refused us.
    #[error("{message}")]
    Unreachable { code: &'static str, message: String },
    /// Too much at once: try again after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        code: &'static str,
        message: String,
        retry_after_secs: i64,
    },
    /// A fault: logged with its cause, shown as a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A service's result.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// `NotFound` for `what` (`server`, `user` …).
    pub fn not_found(what: &'static str) -> Self {
        Self::NotFound { what }
    }

    /// `Conflict` with a code and a message.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    /// `Invalid` with a code and a message.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// `Unreachable` with a code and a message.
    pub fn unreachable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unreachable {
            code,
            message: message.into(),
        }
    }

    /// `Internal`, from any error.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self::Internal(source.into())
    }

    /// Adds facts for the caller to a `Conflict` or `Invalid` (other kinds have none).
    #[must_use]
    pub fn with_details(mut self, facts: Value) -> Self {
        if let Self::Conflict { details, .. } | Self::Invalid { details, .. } = &mut self {
            *details = facts;
        }
        self
    }
}

impl From<DbError> for ServiceError {
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

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        DbError::from(e).into()
    }
}

impl From<steward_vault::VaultError> for ServiceError {
    fn from(e: steward_vault::VaultError) -> Self {
        Self::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_is_a_conflict_naming_the_field_and_other_database_errors_are_faults() {
        let e = ServiceError::from(DbError::Conflict { field: "username" });
        match e {
            ServiceError::Conflict {
                code,
                message,
                details,
            } => {
                assert_eq!(code, "conflict");
                assert_eq!(message, "username is already taken");
                assert_eq!(details, json!({ "field": "username" }));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let e = ServiceError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(e, ServiceError::Internal(_)), "{e:?}");
    }

    #[test]
    fn details_attach_only_where_the_caller_can_use_them() {
        let e = ServiceError::not_found("server").with_details(json!({ "x": 1 }));
        assert_eq!(e.to_string(), "server not found");
        let e = ServiceError::invalid("invalid_body", "not a cron expression")
            .with_details(json!({ "field": "cron" }));
        assert!(
            matches!(e, ServiceError::Invalid { ref details, .. } if details["field"] == "cron")
        );
    }
}
