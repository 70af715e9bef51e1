//! A user's second factor at sign-in and at every re-confirmation: [`check_code`] opens the
//! user's sealed TOTP secret and accepts a code at most once per time step.
use steward_db::secrets;
use steward_db::users::{self, UserRow};

use crate::Services;
use crate::audit::Event;
use crate::bootstrap::load_secret;
use crate::error::{ServiceError, ServiceResult};

/// Checks a TOTP code for a user with 2FA on, refusing a replayed code (each time step counts
/// once per user, on every instance).
pub async fn check_code(
    st: &Services,
    user: &UserRow,
    code: &str,
    now_ms: i64,
) -> ServiceResult<bool> {
    let Some(secret_id) = &user.totp_secret_id else {
        return Ok(false);
    };
    let secret = load_secret(&st.db, &st.vault, secret_id)
        .await
        .map_err(ServiceError::internal)?;
    match crate::auth::totp::verify(&secret, code, now_ms / 1000) {
        Some(step) => Ok(users::claim_totp_step(&st.db.pool, &user.id, step).await?),
        None => Ok(false),
    }
}

/// Removes a user's second factor and recovery codes (their TOTP secret goes too), recording
/// `event` in the same transaction.
pub async fn remove(st: &Services, user: &UserRow, now: i64, event: Event) -> ServiceResult<()> {
    let mut tx = st.db.begin().await?;
    users::clear_totp(&mut *tx, &user.id, now).await?;
    users::delete_recovery_codes(&mut *tx, &user.id).await?;
    if let Some(secret_id) = &user.totp_secret_id {
        secrets::delete(&mut *tx, secret_id).await?;
    }
    event.write(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
