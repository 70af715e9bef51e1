//! Accounts, their second factor and recovery codes.
use sqlx::{Any, Executor};

use crate::{DbResult, conflict_on};

/// A stored account. Its `Debug` leaves out the password hash.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub username: String,
    pub email: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub locale: Option<String>,
    pub disabled_at: Option<i64>,
    /// 1 when an administrator requires 2FA for this account.
    pub require_totp: i64,
    /// The TOTP secret (pending until `totp_enabled_at` is set).
    pub totp_secret_id: Option<String>,
    pub totp_enabled_at: Option<i64>,
    pub totp_last_step: Option<i64>,
    pub password_changed_at: i64,
    pub must_change_password: i64,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("disabled_at", &self.disabled_at)
            .field("totp_enabled_at", &self.totp_enabled_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, org_id, username, email, password_hash, locale, disabled_at, require_totp, \
    totp_secret_id, totp_enabled_at, totp_last_step, password_changed_at, must_change_password, \
    last_login_at, created_at, updated_at";

/// What a new account needs.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub must_change_password: bool,
}

/// Creates an account; a taken username is a conflict on `username`.
pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    u: &NewUser<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO users (id, org_id, username, email, password_hash, password_changed_at, \
         must_change_password, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $6)",
    )
    .bind(u.id)
    .bind(u.org_id)
    .bind(u.username)
    .bind(u.email)
    .bind(u.password_hash)
    .bind(now)
    .bind(i64::from(u.must_change_password))
    .execute(ex)
    .await
    .map_err(conflict_on("username"))?;
    Ok(())
}

/// An account by id, within an organization.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE org_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// An account by login name, within an organization.
pub async fn get_by_username<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    username: &str,
) -> DbResult<Option<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE org_id = $1 AND username = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(username)
        .fetch_optional(ex)
        .await?)
}

/// Every account of an organization, by username.
pub async fn list<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
) -> DbResult<Vec<UserRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE org_id = $1 ORDER BY username");
    Ok(sqlx::query_as(&sql).bind(org_id).fetch_all(ex).await?)
}

/// How many accounts exist at all (any organization): zero means setup is still open.
pub async fn count_all<'e>(ex: impl Executor<'e, Database = Any>) -> DbResult<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(ex)
        .await?)
}

/// Changes e-mail and locale.
pub async fn update_profile<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    email: Option<&str>,
    locale: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE users SET email = $2, locale = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(email)
        .bind(locale)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Replaces the password hash.
pub async fn set_password<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    password_hash: &str,
    must_change: bool,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, must_change_password = $3, password_changed_at = $4, \
         updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .bind(i64::from(must_change))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Disables (with the time) or re-enables (`None`) an account.
pub async fn set_disabled<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    disabled_at: Option<i64>,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE users SET disabled_at = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(disabled_at)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Requires (or stops requiring) 2FA for one account.
pub async fn set_require_totp<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    on: bool,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE users SET require_totp = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(i64::from(on))
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Stores a pending (not yet confirmed) TOTP secret.
pub async fn set_pending_totp<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    secret_id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET totp_secret_id = $2, totp_enabled_at = NULL, totp_last_step = NULL, \
         updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(secret_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks the pending TOTP secret as confirmed and in force.
pub async fn enable_totp<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    step: i64,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET totp_enabled_at = $2, totp_last_step = $3, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(step)
    .execute(ex)
    .await?;
    Ok(())
}

/// Removes the second factor (the secret row is deleted by the caller).
pub async fn clear_totp<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE users SET totp_secret_id = NULL, totp_enabled_at = NULL, totp_last_step = NULL, \
         updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records a TOTP time step as used, atomically refusing a step at or before the last one
/// (a replayed code). Returns whether the step was accepted.
pub async fn claim_totp_step<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    step: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(id)
    .bind(step)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a successful login.
pub async fn touch_login<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Deletes an account (sessions, tokens and role links cascade).
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Replaces an account's recovery codes with new hashes.
pub async fn replace_recovery_codes(
    tx: &mut sqlx::AnyConnection,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> DbResult<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(crate::new_id())
            .bind(user_id)
            .bind(h)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Spends a recovery code atomically; returns whether an unused one matched.
pub async fn use_recovery_code<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    hash: &str,
    now: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(hash)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Unused recovery codes left.
pub async fn count_recovery_codes<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> DbResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await?)
}

/// Deletes every recovery code of an account.
pub async fn delete_recovery_codes<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> DbResult<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}
