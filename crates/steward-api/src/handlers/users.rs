//! User management (needs `users.manage`). Guards: nobody can hand out more than they hold,
//! lock themselves out, or leave the organization without an active administrator.
use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::rbac::builtin;
use steward_core::validate::Email;
use steward_core::{Permission, password};
use steward_db::roles::RoleRow;
use steward_db::users::UserRow;
use steward_db::{roles, sessions, users};
use steward_proto::{
    CreateUserRequest, ErrorBody, ResetPasswordRequest, RoleRef, UpdateUserRequest, User,
};

use super::{opt_time, tags, time};
use crate::auth::Principal;
use crate::auth::principal::grant_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;
use steward_services::accounts::{self, NewAccount};
use steward_services::audit::Event;

/// The API view of an account.
pub(crate) fn view(u: UserRow, roles: Vec<RoleRef>) -> User {
    User {
        id: u.id,
        username: u.username,
        email: u.email,
        roles,
        disabled: u.disabled_at.is_some(),
        totp_enabled: u.totp_enabled_at.is_some(),
        require_totp: u.require_totp != 0,
        password_change_required: u.must_change_password != 0,
        last_login_at: opt_time(u.last_login_at),
        created_at: time(u.created_at),
    }
}

async fn load(st: &AppState, p: &Principal, id: &str) -> ApiResult<(UserRow, Vec<RoleRow>)> {
    let user = users::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let roles = roles::for_user(&st.db.pool, &user.id).await?;
    Ok((user, roles))
}

fn refs(roles: &[RoleRow]) -> Vec<RoleRef> {
    roles
        .iter()
        .map(|r| RoleRef {
            id: r.id.clone(),
            name: r.name.clone(),
        })
        .collect()
}

/// Resolves role ids or names, refusing unknown ones and any that would give the target more
/// than the caller holds.
async fn resolve_roles(
    st: &AppState,
    p: &Principal,
    wanted: &[String],
    already: &[RoleRow],
) -> ApiResult<Vec<RoleRow>> {
    let all = roles::list(&st.db.pool, &p.user.org_id).await?;
    let mut out: Vec<RoleRow> = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        let role = all
            .iter()
            .find(|r| r.id == *w || r.name == *w)
            .ok_or_else(|| {
                steward_core::ValidationError::new(format!("roles[{i}]"), "is not a known role")
            })?;
        if out.iter().any(|r| r.id == role.id) {
            continue;
        }
        let newly_given = !already.iter().any(|r| r.id == role.id);
        if newly_given && !p.authz.covers(&grant_of(role)?) {
            return Err(ApiError::forbidden(format!(
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
    st: &AppState,
    org_id: &str,
) -> ApiResult<(steward_db::Transaction<'static, steward_db::Any>, i64)> {
    let mut tx = st.db.begin().await?;
    let before = roles::lock_admins(&mut tx, org_id, builtin::ADMIN).await?;
    Ok((tx, before))
}

/// Refuses (rolling the transaction back) a change that left no active administrator where
/// there was one. Checked after the change, inside its transaction, under the lock.
async fn keep_an_admin(
    tx: &mut steward_db::AnyConnection,
    org_id: &str,
    before: i64,
) -> ApiResult<()> {
    if before > 0 && roles::count_active_holders(&mut *tx, org_id, builtin::ADMIN).await? == 0 {
        return Err(ApiError::conflict(
            "last_admin",
            "this is the last active administrator; make someone else admin first",
        ));
    }
    Ok(())
}

/// Every account.
#[utoipa::path(operation_id = "users_list", get, path = "/api/v1/users", tag = tags::USERS, responses((status = 200, body = [User]), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, p: Principal) -> ApiResult<Json<Vec<User>>> {
    p.require(Permission::UsersManage)?;
    let rows = users::list(&st.db.pool, &p.user.org_id).await?;
    let all_roles = roles::list(&st.db.pool, &p.user.org_id).await?;
    let assignments = roles::assignments(&st.db.pool, &p.user.org_id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|u| {
                let mine: Vec<RoleRef> = assignments
                    .iter()
                    .filter(|(uid, _)| *uid == u.id)
                    .filter_map(|(_, name)| all_roles.iter().find(|r| r.name == *name))
                    .map(|r| RoleRef {
                        id: r.id.clone(),
                        name: r.name.clone(),
                    })
                    .collect();
                view(u, mine)
            })
            .collect(),
    ))
}

/// One account.
#[utoipa::path(operation_id = "users_get", get, path = "/api/v1/users/{id}", tag = tags::USERS, params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<User>> {
    p.require(Permission::UsersManage)?;
    let (user, roles) = load(&st, &p, &id).await?;
    Ok(Json(view(user, refs(&roles))))
}

/// Creates an account. By default the user must choose a new password at first login.
#[utoipa::path(operation_id = "users_create", post, path = "/api/v1/users", tag = tags::USERS, request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
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
    let assigned = resolve_roles(&st, &p, &req.roles, &[]).await?;
    let mut tx = st.db.begin().await?;
    let details = json!({ "roles": assigned.iter().map(|r| &r.name).collect::<Vec<_>>(), "require_totp": req.require_totp });
    let id = accounts::create(
        &mut tx,
        &p.user.org_id,
        &account,
        &assigned,
        |_| Event::by(&p, "user.create", now).details(details),
        now,
    )
    .await?;
    tx.commit().await?;
    let (user, roles) = load(&st, &p, &id).await?;
    Ok((StatusCode::CREATED, Json(view(user, refs(&roles)))))
}

/// Changes e-mail, roles, disabled state or the 2FA requirement. Disabling ends the user's
/// sessions at once.
#[utoipa::path(operation_id = "users_update", patch, path = "/api/v1/users/{id}", tag = tags::USERS, params(("id" = String, Path)), request_body = UpdateUserRequest,
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`last_admin` or `self_lockout`")))]
pub async fn update(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, current) = load(&st, &p, &id).await?;
    p.require_covers(&user.username, &current)?;
    let is_self = user.id == p.user.id;
    let email = match req.email.as_deref().map(str::trim) {
        None => user.email.clone(),
        Some("") => None,
        Some(e) => Some(Email::parse(e)?.into_inner()),
    };
    let new_roles = match &req.roles {
        Some(wanted) => Some(resolve_roles(&st, &p, wanted, &current).await?),
        None => None,
    };
    let disable = req.disabled.unwrap_or(user.disabled_at.is_some());
    if is_self && disable {
        return Err(ApiError::conflict(
            "self_lockout",
            "you cannot disable your own account",
        ));
    }

    let mut changes = serde_json::Map::new();
    let (mut tx, admins_before) = begin_admin_change(&st, &p.user.org_id).await?;
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
        Event::by(&p, action, now)
            .target("user", &user.id, &user.username)
            .details(serde_json::Value::Object(changes))
            .write(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let (user, roles) = load(&st, &p, &id).await?;
    Ok(Json(view(user, refs(&roles))))
}

/// Sets a new password for a user and ends their sessions.
#[utoipa::path(operation_id = "users_reset_password", post, path = "/api/v1/users/{id}/password", tag = tags::USERS, params(("id" = String, Path)), request_body = ResetPasswordRequest,
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reset_password(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, roles) = load(&st, &p, &id).await?;
    p.require_covers(&user.username, &roles)?;
    password::check_policy("new_password", req.new_password.expose(), &[&user.username])?;
    let hash = st.passwords.hash(req.new_password).await?;
    let must_change = req.password_change_required.unwrap_or(true);
    let mut tx = st.db.begin().await?;
    users::set_password(&mut *tx, &user.id, &hash, must_change, now).await?;
    sessions::revoke_all_for_user(&mut *tx, &user.id, None, "password reset", now).await?;
    // A reset usually means the account was lost or taken: its automation tokens go too.
    let tokens_revoked =
        steward_db::api_tokens::revoke_all_for_user(&mut *tx, &user.id, now).await?;
    Event::by(&p, "user.password_reset", now)
        .target("user", &user.id, &user.username)
        .details(json!({ "password_change_required": must_change, "api_tokens_revoked": tokens_revoked }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns off a user's 2FA (a lost phone); they set it up again at next login if required.
#[utoipa::path(operation_id = "users_reset_totp", delete, path = "/api/v1/users/{id}/totp", tag = tags::USERS, params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn reset_totp(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, roles) = load(&st, &p, &id).await?;
    p.require_covers(&user.username, &roles)?;
    let event = Event::by(&p, "user.totp_reset", now).target("user", &user.id, &user.username);
    super::totp::remove_totp(&st, &user, now, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an account. Its audit records stay.
#[utoipa::path(operation_id = "users_delete", delete, path = "/api/v1/users/{id}", tag = tags::USERS, params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    p.require(Permission::UsersManage)?;
    let now = st.now_ms();
    let (user, current) = load(&st, &p, &id).await?;
    if user.id == p.user.id {
        return Err(ApiError::conflict(
            "self_lockout",
            "you cannot delete your own account",
        ));
    }
    p.require_covers(&user.username, &current)?;
    let (mut tx, admins_before) = begin_admin_change(&st, &p.user.org_id).await?;
    users::delete(&mut *tx, &user.id).await?;
    keep_an_admin(&mut tx, &p.user.org_id, admins_before).await?;
    if let Some(secret_id) = &user.totp_secret_id {
        steward_db::secrets::delete(&mut *tx, secret_id).await?;
    }
    Event::by(&p, "user.delete", now)
        .target("user", &user.id, &user.username)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
