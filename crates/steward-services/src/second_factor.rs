//! A user's second factor at sign-in and at every re-confirmation: [`check_code`] opens the
//! user's sealed TOTP secret and accepts a code at most once per time step. Setting it up
//! ([`enroll`], then [`pending_secret`] and [`enable`] around the throttled code check),
//! turning it off ([`disable`], [`remove`]) and replacing the recovery codes
//! ([`regenerate_codes`]) each write their audit event in their transaction.
use steward_db::users::{self, UserRow};
use steward_db::{AnyConnection, secrets};
use steward_proto::TotpEnrollResponse;

use crate::Services;
use crate::audit::Event;
use crate::auth::{tokens, totp};
use crate::bootstrap::{load_secret, store_secret};
use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

const RECOVERY_CODE_COUNT: usize = 10;
const ISSUER: &str = "Steward";

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

async fn new_recovery_codes(
    user_id: &str,
    now: i64,
    tx: &mut AnyConnection,
) -> ServiceResult<Vec<String>> {
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| tokens::new_recovery_code())
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| tokens::hash_token(c)).collect();
    users::replace_recovery_codes(tx, user_id, &hashes, now).await?;
    Ok(codes)
}

/// Starts the caller's 2FA set-up: a new secret to scan, replacing any unconfirmed one
/// (`totp_already_enabled` if 2FA is on).
pub async fn enroll(st: &Services, p: &Principal) -> ServiceResult<TotpEnrollResponse> {
    let now = st.now_ms();
    if p.user.totp_enabled_at.is_some() {
        return Err(ServiceError::conflict(
            "totp_already_enabled",
            "two-factor authentication is already on; turn it off first",
        ));
    }
    let secret = totp::new_secret();
    let mut tx = st.db.begin().await?;
    let secret_id = store_secret(&mut *tx, &st.vault, "totp", &secret, now)
        .await
        .map_err(ServiceError::internal)?;
    users::set_pending_totp(&mut *tx, &p.user.id, &secret_id, now).await?;
    if let Some(old) = &p.user.totp_secret_id {
        secrets::delete(&mut *tx, old).await?;
    }
    Event::by(p, "auth.totp_enroll", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(TotpEnrollResponse {
        secret: totp::base32(&secret).into(),
        otpauth_url: totp::otpauth_url(&secret, &p.user.username, ISSUER).into(),
    })
}

/// The secret of the caller's set-up in progress, to check a code against
/// (`totp_already_enabled` if 2FA is on, `totp_not_enrolled` if no set-up was started).
pub async fn pending_secret(
    st: &Services,
    p: &Principal,
) -> ServiceResult<zeroize::Zeroizing<Vec<u8>>> {
    if p.user.totp_enabled_at.is_some() {
        return Err(ServiceError::conflict(
            "totp_already_enabled",
            "two-factor authentication is already on",
        ));
    }
    let secret_id = p.user.totp_secret_id.clone().ok_or_else(|| {
        ServiceError::invalid("totp_not_enrolled", "start with /auth/totp/enroll")
    })?;
    load_secret(&st.db, &st.vault, &secret_id)
        .await
        .map_err(ServiceError::internal)
}

/// Turns the caller's 2FA on once a code from the app matched [`pending_secret`] at time
/// step `step` (`None`: it did not, `invalid_totp`); returns the new recovery codes, shown
/// once.
pub async fn enable(st: &Services, p: &Principal, step: Option<i64>) -> ServiceResult<Vec<String>> {
    let now = st.now_ms();
    let Some(step) = step else {
        return Err(ServiceError::invalid(
            "invalid_totp",
            "the code does not match; check the device's clock and try again",
        ));
    };
    let mut tx = st.db.begin().await?;
    users::enable_totp(&mut *tx, &p.user.id, step, now).await?;
    let codes = new_recovery_codes(&p.user.id, now, &mut tx).await?;
    Event::by(p, "auth.totp_enable", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(codes)
}

/// Turns the caller's 2FA off (their password was confirmed); refused while policy requires
/// it (`totp_required_by_policy`).
pub async fn disable(st: &Services, p: &Principal) -> ServiceResult<()> {
    let now = st.now_ms();
    if p.totp_required {
        return Err(ServiceError::conflict(
            "totp_required_by_policy",
            "two-factor authentication is required for this account",
        ));
    }
    let event = Event::by(p, "auth.totp_disable", now).target("user", &p.user.id, &p.user.username);
    remove(st, &p.user, now, event).await
}

/// Refuses (`totp_not_enabled`) when the caller has no second factor, so has no recovery
/// codes to replace.
pub fn require_enabled(p: &Principal) -> ServiceResult<()> {
    if p.user.totp_enabled_at.is_none() {
        return Err(ServiceError::conflict(
            "totp_not_enabled",
            "two-factor authentication is off",
        ));
    }
    Ok(())
}

/// Replaces the caller's recovery codes (their password was confirmed; see
/// [`require_enabled`]); returns the new ones, shown once.
pub async fn regenerate_codes(st: &Services, p: &Principal) -> ServiceResult<Vec<String>> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    let codes = new_recovery_codes(&p.user.id, now, &mut tx).await?;
    Event::by(p, "auth.recovery_codes_regenerate", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(codes)
}
