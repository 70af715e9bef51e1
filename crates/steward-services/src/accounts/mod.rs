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
