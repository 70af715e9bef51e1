//! Managing accounts (needs `users.manage`): creating one, changing its e-mail, roles,
//! disabled state or 2FA requirement, resetting its password or second factor, deleting it.
//! Guards: the caller must cover every role of the account they change and cannot hand out
//! more than they hold, nobody can lock themselves out, and no change may leave the
//! organization without an active administrator (checked under the administrators' lock, so
//! two administrators demoting each other at once cannot both succeed).
use std::collections::BTreeSet;

use serde_json::json;
use steward_core::rbac::builtin;
use steward_core::validate::Email;
use steward_core::{Permission, ValidationError, password};
use steward_db::roles::{self, RoleRow};
use steward_db::users::{self, UserRow};
use steward_db::{Any, AnyConnection, Transaction, sessions};
use steward_proto::{CreateUserRequest, ResetPasswordRequest, UpdateUserRequest};

use super::NewAccount;
use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::{Principal, grant_of};

/// An account of the caller's organization with its roles; 404 for an unknown id.
pub async fn load(
    st: &Services,
    p: &Principal,
    id: &str,
) -> ServiceResult<(UserRow, Vec<RoleRow>)> {
    let user = users::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    let roles = roles::for_user(&st.db.pool, &user.id).await?;
    Ok((user, roles))
}

/// Resolves role ids or names, refusing unknown ones (422 on `roles[i]`) and any that would
/// give the target more than the caller holds (403); roles in `already` stay allowed.
async fn resolve_roles(
    st: &Services,
    p: &Principal,
    wanted: &[String],
    already: &[RoleRow],
) -> ServiceResult<Vec<RoleRow>> {
    let all = roles::list(&st.db.pool, &p.user.org_id).await?;
    let mut out: Vec<RoleRow> = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        let role = all
            .iter()
            .find(|r| r.id == *w || r.name == *w)
            .ok_or_else(|| ValidationError::new(format!("roles[{i}]"), "is not a known role"))?;
        if out.iter().any(|r| r.id == role.id) {
            continue;
        }
        let newly_given = !already.iter().any(|r| r.id == role.id);
        if newly_given && !p.authz.covers(&grant_of(role)?) {
            return Err(ServiceError::forbidden(format!(
                "you cannot assign the role {}: it grants more than you hold",
                role.name
            )));
        }
        out.push(role.clone());
    }
    Ok(out)
}

/// Starts the transaction of a change that may remove an administrator (demoting,
/// disabling or deleting an account): takes the administrators' lock first (see
/// `roles::lock_admins`) and returns how many active administrators there are.
async fn begin_admin_change(
    st: &Services,
    org_id: &str,
) -> ServiceResult<(Transaction<'static, Any>, i64)> {
    let mut tx = st.db.begin().await?;
    let before = roles::lock_admins(&mut tx, org_id, builtin::ADMIN).await?;
    Ok((tx, before))
}

/// Refuses (the transaction then rolls back) a change that left no active administrator
/// where there was one. Checked after the change, inside its transaction, under the lock.
async fn keep_an_admin(tx: &mut AnyConnection, org_id: &str, before: i64) -> ServiceResult<()> {
    if before > 0 && roles::count_active_holders(&mut *tx, org_id, builtin::ADMIN).await? == 0 {
        return Err(ServiceError::conflict(
            "last_admin",
            "this is the last active administrator; make someone else admin first",
        ));
    }
    Ok(())
}

/// Creates an account with the roles asked for (none beyond what the caller holds); by
/// default the user must choose a new password at first login. Returns the new user's id.
pub async fn create(st: &Services, p: &Principal, req: CreateUserRequest) -> ServiceResult<String> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let mut account = NewAccount::check(
        &st.passwords,
        &req.username,
        req.email.as_deref(),
        req.password,
    )
    .await?;
    account.must_change_password = req.password_change_required.unwrap_or(true);
    account.require_totp = req.require_totp;
    let assigned = resolve_roles(st, p, &req.roles, &[]).await?;
    let mut tx = st.db.begin().await?;
    let details = json!({ "roles": assigned.iter().map(|r| &r.name).collect::<Vec<_>>(), "require_totp": req.require_totp });
    let id = super::create(
        &mut tx,
        &p.user.org_id,
        &account,
        &assigned,
        |_| Event::by(p, "user.create", now).details(details),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Changes an account's e-mail (blank clears it), roles, disabled state or 2FA requirement.
/// Disabling ends the user's sessions at once; one cannot disable oneself (`self_lockout`),
/// nor leave no active administrator (`last_admin`). One audit event covers the changes
/// (`user.disable`, `user.enable` or `user.update`); none if nothing changed.
pub async fn update(
    st: &Services,
    p: &Principal,
    id: &str,
    req: &UpdateUserRequest,
) -> ServiceResult<()> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, current) = load(st, p, id).await?;
    p.require_covers(&user.username, &current)?;
    let is_self = user.id == p.user.id;
    let email = match req.email.as_deref().map(str::trim) {
        None => user.email.clone(),
        Some("") => None,
        Some(e) => Some(Email::parse(e)?.into_inner()),
    };
    let new_roles = match &req.roles {
        Some(wanted) => Some(resolve_roles(st, p, wanted, &current).await?),
        None => None,
    };
    let disable = req.disabled.unwrap_or(user.disabled_at.is_some());
    if is_self && disable {
        return Err(ServiceError::conflict(
            "self_lockout",
            "you cannot disable your own account",
        ));
    }

    let mut changes = serde_json::Map::new();
    let (mut tx, admins_before) = begin_admin_change(st, &p.user.org_id).await?;
    if email != user.email {
        users::update_profile(
            &mut *tx,
            &user.id,
            email.as_deref(),
            user.locale.as_deref(),
            now,
        )
        .await?;
        changes.insert("email_changed".into(), json!(true));
    }
    if let Some(new_roles) = &new_roles {
        let before: BTreeSet<&str> = current.iter().map(|r| r.name.as_str()).collect();
        let after: BTreeSet<&str> = new_roles.iter().map(|r| r.name.as_str()).collect();
        if before != after {
            let ids: Vec<String> = new_roles.iter().map(|r| r.id.clone()).collect();
            roles::set_for_user(&mut tx, &user.id, &ids).await?;
            changes.insert("roles".into(), json!({ "from": before, "to": after }));
        }
    }
    if disable != user.disabled_at.is_some() {
        users::set_disabled(&mut *tx, &user.id, disable.then_some(now), now).await?;
        if disable {
            sessions::revoke_all_for_user(&mut *tx, &user.id, None, "account disabled", now)
                .await?;
        }
        changes.insert("disabled".into(), json!(disable));
    }
    if let Some(require) = req.require_totp
        && require != (user.require_totp != 0)
    {
        users::set_require_totp(&mut *tx, &user.id, require, now).await?;
        changes.insert("require_totp".into(), json!(require));
    }
    keep_an_admin(&mut tx, &p.user.org_id, admins_before).await?;
    if !changes.is_empty() {
        let action = match req.disabled {
            Some(true) if user.disabled_at.is_none() => "user.disable",
            Some(false) if user.disabled_at.is_some() => "user.enable",
            _ => "user.update",
        };
        Event::by(p, action, now)
            .target("user", &user.id, &user.username)
            .details(serde_json::Value::Object(changes))
            .write(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sets a new password for a user (by default to be changed at next login) and ends their
/// sessions; their API tokens are revoked too, as a reset usually means the account was lost
/// or taken.
pub async fn reset_password(
    st: &Services,
    p: &Principal,
    id: &str,
    req: ResetPasswordRequest,
) -> ServiceResult<()> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, roles) = load(st, p, id).await?;
    p.require_covers(&user.username, &roles)?;
    password::check_policy("new_password", req.new_password.expose(), &[&user.username])?;
    let hash = st.passwords.hash(req.new_password).await?;
    let must_change = req.password_change_required.unwrap_or(true);
    let mut tx = st.db.begin().await?;
    users::set_password(&mut *tx, &user.id, &hash, must_change, now).await?;
    sessions::revoke_all_for_user(&mut *tx, &user.id, None, "password reset", now).await?;
    let tokens_revoked =
        steward_db::api_tokens::revoke_all_for_user(&mut *tx, &user.id, now).await?;
    Event::by(p, "user.password_reset", now)
        .target("user", &user.id, &user.username)
        .details(json!({ "password_change_required": must_change, "api_tokens_revoked": tokens_revoked }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns off a user's 2FA (a lost phone); they set it up again at next login if required.
pub async fn reset_totp(st: &Services, p: &Principal, id: &str) -> ServiceResult<()> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, roles) = load(st, p, id).await?;
    p.require_covers(&user.username, &roles)?;
    let event = Event::by(p, "user.totp_reset", now).target("user", &user.id, &user.username);
    crate::second_factor::remove(st, &user, now, event).await
}

/// Deletes an account (not one's own: `self_lockout`; not the last active administrator:
/// `last_admin`) and its TOTP secret. Its audit records stay.
pub async fn delete(st: &Services, p: &Principal, id: &str) -> ServiceResult<()> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, current) = load(st, p, id).await?;
    if user.id == p.user.id {
        return Err(ServiceError::conflict(
            "self_lockout",
            "you cannot delete your own account",
        ));
    }
    p.require_covers(&user.username, &current)?;
    let (mut tx, admins_before) = begin_admin_change(st, &p.user.org_id).await?;
    users::delete(&mut *tx, &user.id).await?;
    keep_an_admin(&mut tx, &p.user.org_id, admins_before).await?;
    if let Some(secret_id) = &user.totp_secret_id {
        steward_db::secrets::delete(&mut *tx, secret_id).await?;
    }
    Event::by(p, "user.delete", now)
        .target("user", &user.id, &user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
