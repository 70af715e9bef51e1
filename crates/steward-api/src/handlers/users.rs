//! User management (needs `users.manage`). Guards: nobody can hand out more than they hold,
//! lock themselves out, or leave the organization without an active administrator.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::Permission;
use steward_db::roles::{self, RoleRow};
use steward_db::users::{self, UserRow};
use steward_proto::{
    CreateUserRequest, ErrorBody, ResetPasswordRequest, RoleRef, UpdateUserRequest, User,
};

use super::{opt_time, tags, time};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;
use steward_services::accounts::manage;

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

fn refs(roles: &[RoleRow]) -> Vec<RoleRef> {
    roles
        .iter()
        .map(|r| RoleRef {
            id: r.id.clone(),
            name: r.name.clone(),
        })
        .collect()
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
    let (user, roles) = manage::load(&st, &p, &id).await?;
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
    let id = manage::create(&st, &p, req).await?;
    let (user, roles) = manage::load(&st, &p, &id).await?;
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
    manage::update(&st, &p, &id, &req).await?;
    let (user, roles) = manage::load(&st, &p, &id).await?;
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
    manage::reset_password(&st, &p, &id, req).await?;
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
    manage::reset_totp(&st, &p, &id).await?;
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
    manage::delete(&st, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
