//! Roles: creating, changing and deleting custom roles, never granting more than the caller holds, each change audited in its transaction.
use std::collections::BTreeSet;

use serde_json::json;
use steward_core::validate::{Name, Notes, Tag};
use steward_core::{Grant, Permission, Scope, ValidationError};
use steward_db::roles::{self, RoleRow};
use steward_proto::RoleInput;

use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::{Principal, grant_of};

/// Validates a role definition into (name, description, grant).
fn parse_input(req: &RoleInput) -> ServiceResult<(String, String, Grant)> {
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
) -> ServiceResult<RoleRow> {
    let perms: Vec<&str> = grant.permissions.iter().map(|p| p.as_str()).collect();
    Ok(RoleRow {
        id,
        org_id,
        name,
        description,
        builtin: 0,
        permissions: serde_json::to_string(&perms).map_err(ServiceError::internal)?,
        server_tags: match &grant.scope {
            Scope::All => None,
            Scope::Tags(t) => Some(serde_json::to_string(t).map_err(ServiceError::internal)?),
        },
        created_at,
        updated_at: now,
    })
}

/// A custom role of the caller's organization, for changing it: 404 for an unknown id,
/// `builtin_role` (409, with `builtin_message`) for a built-in one.
async fn custom(
    st: &Services,
    p: &Principal,
    id: &str,
    builtin_message: &str,
) -> ServiceResult<RoleRow> {
    let old = roles::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("role"))?;
    if old.builtin != 0 {
        return Err(ServiceError::conflict("builtin_role", builtin_message));
    }
    Ok(old)
}

/// Creates a custom role (needs `roles.manage`); it may not grant more than the caller holds.
/// Returns the stored row.
pub async fn create(st: &Services, p: &Principal, req: &RoleInput) -> ServiceResult<RoleRow> {
    p.require(Permission::RolesManage)?;
    let now = st.now_ms();
    let (name, description, grant) = parse_input(req)?;
    if !p.authz.covers(&grant) {
        return Err(ServiceError::forbidden(
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
    Event::by(p, "role.create", now)
        .target("role", &row.id, &row.name)
        .details(json!({ "permissions": req.permissions, "server_tags": req.server_tags }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces a custom role's definition (needs `roles.manage`, and the caller must hold both
/// the old and the new grant); built-in roles cannot change. Returns the stored row.
pub async fn update(
    st: &Services,
    p: &Principal,
    id: &str,
    req: &RoleInput,
) -> ServiceResult<RoleRow> {
    p.require(Permission::RolesManage)?;
    let now = st.now_ms();
    let old = custom(
        st,
        p,
        id,
        "built-in roles cannot be changed; create a custom role instead",
    )
    .await?;
    let (name, description, grant) = parse_input(req)?;
    if !p.authz.covers(&grant) || !p.authz.covers(&grant_of(&old)?) {
        return Err(ServiceError::forbidden(
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
    let old_grant = grant_of(&old)?;
    let before_permissions: Vec<Permission> = old_grant.permissions.into_iter().collect();
    let before_tags: Option<Vec<String>> = match old_grant.scope {
        Scope::All => None,
        Scope::Tags(t) => Some(t.into_iter().collect()),
    };
    Event::by(p, "role.update", now)
        .target("role", &row.id, &row.name)
        .details(json!({
            "from": { "name": old.name, "permissions": before_permissions, "server_tags": before_tags },
            "to": { "name": row.name, "permissions": req.permissions, "server_tags": req.server_tags },
        }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a custom role (needs `roles.manage` and holding what it grants); its holders lose
/// it. Built-in roles cannot be deleted.
pub async fn delete(st: &Services, p: &Principal, id: &str) -> ServiceResult<()> {
    p.require(Permission::RolesManage)?;
    let now = st.now_ms();
    let old = custom(st, p, id, "built-in roles cannot be deleted").await?;
    if !p.authz.covers(&grant_of(&old)?) {
        return Err(ServiceError::forbidden(
            "you cannot delete a role that grants more than you hold",
        ));
    }
    let mut tx = st.db.begin().await?;
    roles::delete(&mut *tx, &old.id).await?;
    Event::by(p, "role.delete", now)
        .target("role", &old.id, &old.name)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
