//! Creating accounts: the one way an account comes to exist, whether the first administrator
//! at set-up, an administrator's new user in the API, or `steward admin create-user` at the
//! console. [`NewAccount::check`] validates the name, e-mail and password (policy, then an
//! Argon2id hash under the bounded [`Hasher`]); [`create`] stores it with its roles and its
//! audit event in the caller's transaction, so a refused or failed creation leaves nothing.
use steward_core::validate::{Email, Username};
use steward_db::roles::RoleRow;
use steward_db::{Any, Transaction, roles, users};
use steward_proto::Sensitive;

use crate::audit::Event;
use crate::auth::password::Hasher;
use crate::error::ServiceResult;

/// An account that passed every check, ready to store.
#[derive(Debug)]
pub struct NewAccount {
    pub username: Username,
    pub email: Option<Email>,
    password_hash: String,
    /// The user must choose a new password at first login.
    pub must_change_password: bool,
    /// 2FA is required of this user whatever the organization's policy.
    pub require_totp: bool,
}

impl NewAccount {
    /// Checks a username, an optional e-mail (blank counts as none) and a password against
    /// the policy (which refuses a password close to the username), and hashes the password.
    pub async fn check(
        hasher: &Hasher,
        username: &str,
        email: Option<&str>,
        password: Sensitive,
    ) -> ServiceResult<Self> {
        let username = Username::parse(username)?;
        let email = email
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(Email::parse)
            .transpose()?;
        steward_core::password::check_policy("password", password.expose(), &[username.as_str()])?;
        let password_hash = hasher.hash(password).await?;
        Ok(Self {
            username,
            email,
            password_hash,
            must_change_password: false,
            require_totp: false,
        })
    }
}

/// Stores `account` in `org_id` with `roles` and writes the audit event `event` makes from the
/// new user's id (its target set to the new user) in `tx`; returns the new user's id. A taken
/// username is a conflict on `username`.
pub async fn create(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
    account: &NewAccount,
    roles: &[RoleRow],
    event: impl FnOnce(&str) -> Event,
    now: i64,
) -> ServiceResult<String> {
    let id = steward_db::new_id();
    users::insert(
        &mut **tx,
        &users::NewUser {
            id: &id,
            org_id,
            username: account.username.as_str(),
            email: account.email.as_ref().map(Email::as_str),
            password_hash: &account.password_hash,
            must_change_password: account.must_change_password,
        },
        now,
    )
    .await?;
    if account.require_totp {
        users::set_require_totp(&mut **tx, &id, true, now).await?;
    }
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
    roles::set_for_user(&mut *tx, &id, &role_ids).await?;
    event(&id)
        .target("user", &id, account.username.as_str())
        .write(&mut **tx)
        .await?;
    Ok(id)
}

pub mod manage;

/// Creates the first administrator (the built-in `admin` role) and closes set-up, audited as
/// `setup.complete` by the new user; `None` when set-up was closed meanwhile. Deleting the
/// setup token's hash is the lock: of two concurrent set-ups only one deletes it.
pub async fn create_first_administrator(
    st: &crate::Services,
    account: &NewAccount,
    client: &crate::principal::ClientInfo,
    now: i64,
) -> ServiceResult<Option<(String, RoleRow)>> {
    use steward_core::DEFAULT_ORG_ID;
    use steward_core::rbac::builtin;
    use steward_db::state as instance;
    let admin = roles::get_by_name(&st.db.pool, DEFAULT_ORG_ID, builtin::ADMIN)
        .await?
        .ok_or_else(|| {
            crate::ServiceError::internal(anyhow::anyhow!("built-in admin role is missing"))
        })?;
    let mut tx = st.db.begin().await?;
    if !instance::delete(&mut *tx, instance::SETUP_TOKEN_HASH).await? {
        return Ok(None);
    }
    let username = account.username.as_str().to_string();
    let id = create(
        &mut tx,
        DEFAULT_ORG_ID,
        account,
        std::slice::from_ref(&admin),
        |id| Event::new("setup.complete", client, now).actor(Some(id), &username),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(Some((id, admin)))
}

/// Changes the caller's own password (checked against the policy, hashed under the bounded
/// hasher) and ends their other sessions, audited as `user.change_password`. The current
/// password is confirmed by the caller before (the API's throttled check).
pub async fn change_own_password(
    st: &crate::Services,
    p: &crate::principal::Principal,
    new_password: Sensitive,
) -> ServiceResult<()> {
    let now = st.now_ms();
    steward_core::password::check_policy(
        "new_password",
        new_password.expose(),
        &[&p.user.username, p.user.email.as_deref().unwrap_or("")],
    )?;
    let hash = st.passwords.hash(new_password).await?;
    let mut tx = st.db.begin().await?;
    users::set_password(&mut *tx, &p.user.id, &hash, false, now).await?;
    steward_db::sessions::revoke_all_for_user(
        &mut *tx,
        &p.user.id,
        p.session_id(),
        "password changed",
        now,
    )
    .await?;
    Event::by(p, "user.change_password", now)
        .target("user", &p.user.id, &p.user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
