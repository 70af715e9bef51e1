//! The SSH credential attached to a server: metadata here, the secret parts in `secrets`.
use sqlx::{Any, Executor};

use crate::DbResult;

/// A stored credential.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub server_id: String,
    pub org_id: String,
    /// `private_key`, `generated_key` or `password`.
    pub kind: String,
    pub secret_id: String,
    pub passphrase_secret_id: Option<String>,
    pub key_type: Option<String>,
    pub public_key: Option<String>,
    pub fingerprint: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "server_id, org_id, kind, secret_id, passphrase_secret_id, key_type, public_key, \
    fingerprint, updated_by, created_at, updated_at";

/// A server's credential.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
) -> DbResult<Option<CredentialRow>> {
    let sql = format!("SELECT {COLUMNS} FROM credentials WHERE server_id = $1");
    Ok(sqlx::query_as(&sql)
        .bind(server_id)
        .fetch_optional(ex)
        .await?)
}

/// Attaches a credential, replacing any previous one.
pub async fn upsert<'e>(ex: impl Executor<'e, Database = Any>, c: &CredentialRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO credentials (server_id, org_id, kind, secret_id, passphrase_secret_id, key_type, public_key, \
           fingerprint, updated_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (server_id) DO UPDATE SET kind = excluded.kind, secret_id = excluded.secret_id, \
           passphrase_secret_id = excluded.passphrase_secret_id, key_type = excluded.key_type, \
           public_key = excluded.public_key, fingerprint = excluded.fingerprint, \
           updated_by = excluded.updated_by, updated_at = excluded.updated_at",
    )
    .bind(&c.server_id)
    .bind(&c.org_id)
    .bind(&c.kind)
    .bind(&c.secret_id)
    .bind(&c.passphrase_secret_id)
    .bind(&c.key_type)
    .bind(&c.public_key)
    .bind(&c.fingerprint)
    .bind(&c.updated_by)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Detaches a server's credential.
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, server_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM credentials WHERE server_id = $1")
        .bind(server_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// What connecting to a server needs from the database, in one query: which credential (and
/// its version) and the host key trusted for it, if any.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReachRow {
    pub secret_id: String,
    pub updated_at: i64,
    pub trusted_public_key: Option<String>,
    /// Set while the server's endpoint changed and nobody with `credentials.write` confirmed it:
    /// the credential must not be offered.
    pub endpoint_changed_at: Option<i64>,
}

/// A server's credential version and trusted host key; `None` without a credential.
pub async fn reach<'e>(
    ex: impl Executor<'e, Database = Any>,
    server_id: &str,
) -> DbResult<Option<ReachRow>> {
    Ok(sqlx::query_as(
        "SELECT c.secret_id, c.updated_at, h.public_key AS trusted_public_key, s.endpoint_changed_at \
         FROM credentials c JOIN servers s ON s.id = c.server_id \
         LEFT JOIN host_keys h ON h.server_id = c.server_id \
         WHERE c.server_id = $1",
    )
    .bind(server_id)
    .fetch_optional(ex)
    .await?)
}
