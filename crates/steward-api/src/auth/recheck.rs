//! Re-checking the caller of a long-lived connection: `steward_services::principal::revalidate`.
pub use steward_services::principal::revalidate;
