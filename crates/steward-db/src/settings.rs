//! Organization settings: JSON values by key.
use sqlx::{Any, Executor};

use crate::DbResult;

/// Key: whether every user must have two-factor authentication.
pub const REQUIRE_TOTP: &str = "auth.require_totp";
/// Key: the networks health checks may reach although they are restricted by default
/// (loopback, link-local, the hub's own addresses …), as a JSON array of CIDR strings.
pub const CHECK_ALLOWED_NETWORKS: &str = "checks.allowed_networks";

/// Reads a setting's JSON text.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    key: &str,
) -> DbResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE org_id = $1 AND key = $2")
            .bind(org_id)
            .bind(key)
            .fetch_optional(ex)
            .await?,
    )
}

/// Writes a setting's JSON text.
pub async fn set<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    key: &str,
    value: &str,
    by: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO settings (org_id, key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (org_id, key) DO UPDATE SET value = excluded.value, \
           updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(org_id)
    .bind(key)
    .bind(value)
    .bind(by)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
