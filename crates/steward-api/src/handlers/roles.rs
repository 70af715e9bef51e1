//! Roles: the built-in three and custom ones (needs `roles.manage`; `users.manage` may read
//! them to assign them).
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::{Permission, Scope};
use steward_db::roles::{self, RoleRow};
use steward_proto::{ErrorBody, PermissionInfo, Role, RoleInput};

use super::{tags, time};
use crate::auth::Principal;
use crate::auth::principal::grant_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;

fn view(r: RoleRow, user_count: i64) -> ApiResult<Role> {
    let grant = grant_of(&r)?;
    Ok(Role {
        id: r.id,
        name: r.name,
        description: r.description,
        builtin: r.builtin != 0,
        permissions: grant.permissions.into_iter().collect(),
        server_tags: match grant.scope {
            Scope::All => None,
            Scope::Tags(t) => Some(t.into_iter().collect()),
        },
        user_count,
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
    })
}

async fn user_counts(st: &AppState, org_id: &str) -> ApiResult<Vec<(String, String)>> {
    Ok(roles::assignments(&st.db.pool, org_id).await?)
}

fn require_read(p: &Principal) -> ApiResult<()> {
    if p.authz.has(Permission::RolesManage) || p.authz.has(Permission::UsersManage) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this needs the roles.manage or users.manage permission",
        ))
    }
}

/// Every role.
#[utoipa::path(operation_id = "roles_list", get, path = "/api/v1/roles", tag = tags::ROLES, responses((status = 200, body = [Role]), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, p: Principal) -> ApiResult<Json<Vec<Role>>> {
    require_read(&p)?;
    let assignments = user_counts(&st, &p.user.org_id).await?;
    let rows = roles::list(&st.db.pool, &p.user.org_id).await?;
    rows.into_iter()
        .map(|r| {
            let n = assignments
                .iter()
                .filter(|(_, name)| *name == r.name)
                .count() as i64;
            view(r, n)
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

/// One role.
#[utoipa::path(operation_id = "roles_get", get, path = "/api/v1/roles/{id}", tag = tags::ROLES, params(("id" = String, Path)),
    responses((status = 200, body = Role), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Role>> {
    require_read(&p)?;
    let row = roles::get(&st.db.pool, &p.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    let n = user_counts(&st, &p.user.org_id)
        .await?
        .iter()
        .filter(|(_, name)| *name == row.name)
        .count() as i64;
    Ok(Json(view(row, n)?))
}

/// Creates a custom role. It may not grant more than the caller holds.
#[utoipa::path(operation_id = "roles_create", post, path = "/api/v1/roles", tag = tags::ROLES, request_body = RoleInput,
    responses((status = 201, body = Role), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<RoleInput>,
) -> ApiResult<(StatusCode, Json<Role>)> {
    let row = steward_services::roles::create(&st, &p, &req).await?;
    Ok((StatusCode::CREATED, Json(view(row, 0)?)))
}

/// Replaces a custom role's definition; built-in roles cannot change.
#[utoipa::path(operation_id = "roles_update", put, path = "/api/v1/roles/{id}", tag = tags::ROLES, params(("id" = String, Path)), request_body = RoleInput,
    responses((status = 200, body = Role), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`builtin_role` or name taken"), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<RoleInput>,
) -> ApiResult<Json<Role>> {
    let row = steward_services::roles::update(&st, &p, &id, &req).await?;
    let n = user_counts(&st, &p.user.org_id)
        .await?
        .iter()
        .filter(|(_, name)| *name == row.name)
        .count() as i64;
    Ok(Json(view(row, n)?))
}

/// Deletes a custom role; its holders lose it.
#[utoipa::path(operation_id = "roles_delete", delete, path = "/api/v1/roles/{id}", tag = tags::ROLES, params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    steward_services::roles::delete(&st, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every permission, for building roles.
#[utoipa::path(operation_id = "roles_permissions", get, path = "/api/v1/permissions", tag = tags::ROLES, responses((status = 200, body = [PermissionInfo])))]
pub async fn permissions(_p: Principal) -> Json<Vec<PermissionInfo>> {
    Json(
        Permission::ALL
            .iter()
            .map(|p| PermissionInfo {
                name: p.as_str().into(),
                description: p.description().into(),
                server_scoped: p.is_server_scoped(),
            })
            .collect(),
    )
}
