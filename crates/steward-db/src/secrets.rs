//! The vault's ciphertexts. Only sealed text is ever stored here; the master keyring lives
//! outside the database.
use sqlx::{Any, Executor};

use crate::DbResult;

/// One sealed secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecretRow {
    /// Id, also part of the associated data the ciphertext is bound to.
    pub id: String,
    /// What it is for (`ssh_private_key`, `totp`, …), also bound.
    pub purpose: String,
    /// The key that sealed it.
    pub key_id: String,
    /// `stw1:<key id>:<base64>`.
    pub ciphertext: String,
}

/// Stores a new sealed secret.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    row: &SecretRow,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO secrets (id, org_id, purpose, key_id, ciphertext, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&row.id)
    .bind(org_id)
    .bind(&row.purpose)
    .bind(&row.key_id)
    .bind(&row.ciphertext)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Reads a sealed secret.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> DbResult<Option<SecretRow>> {
    Ok(
        sqlx::query_as("SELECT id, purpose, key_id, ciphertext FROM secrets WHERE id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?,
    )
}

/// Replaces a secret's ciphertext (re-encryption under a new key).
pub async fn update_ciphertext<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    key_id: &str,
    ciphertext: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE secrets SET key_id = $2, ciphertext = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(key_id)
        .bind(ciphertext)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes a secret.
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM secrets WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Up to `limit` secrets sealed with a key other than `key_id`.
pub async fn list_not_under_key<'e>(
    ex: impl Executor<'e, Database = Any>,
    key_id: &str,
    limit: i64,
) -> DbResult<Vec<SecretRow>> {
    Ok(sqlx::query_as(
        "SELECT id, purpose, key_id, ciphertext FROM secrets WHERE key_id <> $1 ORDER BY id LIMIT $2",
    )
    .bind(key_id)
    .bind(limit)
    .fetch_all(ex)
    .await?)
}

/// How many secrets each key has sealed.
pub async fn count_by_key<'e>(
    ex: impl Executor<'e, Database = Any>,
) -> DbResult<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT key_id, COUNT(*) FROM secrets GROUP BY key_id ORDER BY key_id")
            .fetch_all(ex)
            .await?,
    )
}
