//! Roles: the built-in three and custom ones (needs `roles.manage`; `users.manage` may read
//! them to assign them).
use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::validate::{Name, Notes, Tag};
use steward_core::{Grant, Permission, Scope, ValidationError};
use steward_db::roles::{self, RoleRow};
use steward_proto::{ErrorBody, PermissionInfo, Role, RoleInput};

use super::{tags, time};
use crate::auth::Principal;
use crate::auth::principal::grant_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;
use steward_services::audit::Event;

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

/// Validates a role definition into (name, description, grant).
fn parse_input(req: &RoleInput) -> ApiResult<(String, String, Grant)> {
    let name = Name::parse(&req.name)?.into_inner();
    let description = Notes::parse(&req.description)
        .map_err(|e| e.in_field("description"))?
        .into_inner();
    if req.permissions.is_empty() {
        return Err(
            ValidationError::new("permissions", "must name at least one permission").into(),
        );
    }
    let permissions: BTreeSet<Permission> = req.permissions.iter().copied().collect();
    let scope = match &req.server_tags {
        None => Scope::All,
        Some(list) => {
            let tags = Tag::parse_set("server_tags", list)?;
            if tags.is_empty() {
                return Err(ValidationError::new(
                    "server_tags",
                    "must name at least one tag, or be null for all servers",
                )
                .into());
            }
            if let Some(p) = permissions.iter().find(|p| !p.is_server_scoped()) {
                return Err(ValidationError::new(
                    "permissions",
                    format!(
                        "{p} applies to the whole organization and cannot be limited to server tags"
                    ),
                )
                .into());
            }
            Scope::Tags(tags)
        }
    };
    Ok((name, description, Grant { permissions, scope }))
}

fn row_from(
    id: String,
    org_id: String,
    name: String,
    description: String,
    grant: &Grant,
    created_at: i64,
    now: i64,
) -> ApiResult<RoleRow> {
    let perms: Vec<&str> = grant.permissions.iter().map(|p| p.as_str()).collect();
    Ok(RoleRow {
        id,
        org_id,
        name,
        description,
        builtin: 0,
        permissions: serde_json::to_string(&perms).map_err(ApiError::internal)?,
        server_tags: match &grant.scope {
            Scope::All => None,
            Scope::Tags(t) => Some(serde_json::to_string(t).map_err(ApiError::internal)?),
        },
        created_at,
        updated_at: now,
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
    p.require(Permission::RolesManage)?;
    let now = st.now_ms();
    let (name, description, grant) = parse_input(&req)?;
    if !p.authz.covers(&grant) {
        return Err(ApiError::forbidden(
            "a role cannot grant more than you hold yourself",
        ));
    }
    let row = row_from(
        steward_db::new_id(),
        p.user.org_id.clone(),
        name,
        description,
        &grant,
        now,
        now,
    )?;
    let mut tx = st.db.begin().await?;
    roles::insert(&mut *tx, &row).await?;
    Event::by(&p, "role.create", now)
        .target("role", &row.id, &row.name)
        .details(json!({ "permissions": req.permissions, "server_tags": req.server_tags }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
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
    p.require(Permission::RolesManage)?;
    let now = st.now_ms();
    let old = roles::get(&st.db.pool, &p.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    if old.builtin != 0 {
        return Err(ApiError::conflict(
            "builtin_role",
            "built-in roles cannot be changed; create a custom role instead",
        ));
    }
    let (name, description, grant) = parse_input(&req)?;
    if !p.authz.covers(&grant) || !p.authz.covers(&grant_of(&old)?) {
        return Err(ApiError::forbidden(
            "a role cannot grant more than you hold yourself",
        ));
    }
    let row = row_from(
        old.id.clone(),
        old.org_id.clone(),
        name,
        description,
        &grant,
        old.created_at,
        now,
    )?;
    let mut tx = st.db.begin().await?;
    roles::update(&mut *tx, &row).await?;
    let before = view(old, 0)?;
    Event::by(&p, "role.update", now)
        .target("role", &row.id, &row.name)
        .details(json!({
            "from": { "name": before.name, "permissions": before.permissions, "server_tags": before.server_tags },
            "to": { "name": row.name, "permissions": req.permissions, "server_tags": req.server_tags },
        }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
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
    p.require(Permission::RolesManage)?;
    let now = st.now_ms();
    let old = roles::get(&st.db.pool, &p.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("role"))?;
    if old.builtin != 0 {
        return Err(ApiError::conflict(
            "builtin_role",
            "built-in roles cannot be deleted",
        ));
    }
    if !p.authz.covers(&grant_of(&old)?) {
        return Err(ApiError::forbidden(
            "you cannot delete a role that grants more than you hold",
        ));
    }
    let mut tx = st.db.begin().await?;
    roles::delete(&mut *tx, &old.id).await?;
    Event::by(&p, "role.delete", now)
        .target("role", &old.id, &old.name)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
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
