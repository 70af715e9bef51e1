//! Roles (named permission sets with an optional server-tag scope) and their assignment.
use sqlx::{Any, Executor};

use crate::{DbResult, conflict_on};

/// A stored role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoleRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    /// 1 for admin, operator and viewer, which cannot be edited or deleted.
    pub builtin: i64,
    /// JSON array of permission names.
    pub permissions: String,
    /// JSON array of tags, or NULL for all servers.
    pub server_tags: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, org_id, name, description, builtin, permissions, server_tags, created_at, updated_at";

/// Creates a role; a taken name is a conflict on `name`.
pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, r: &RoleRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO roles (id, org_id, name, description, builtin, permissions, server_tags, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.id)
    .bind(&r.org_id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(r.builtin)
    .bind(&r.permissions)
    .bind(&r.server_tags)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(ex)
    .await
    .map_err(conflict_on("name"))?;
    Ok(())
}

/// Makes sure a built-in role exists with exactly the permissions this binary defines.
pub async fn upsert_builtin<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    name: &str,
    description: &str,
    permissions: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO roles (id, org_id, name, description, builtin, permissions, server_tags, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, NULL, $6, $6) \
         ON CONFLICT (org_id, name) DO UPDATE SET description = excluded.description, \
           permissions = excluded.permissions, builtin = 1, server_tags = NULL",
    )
    .bind(crate::new_id())
    .bind(org_id)
    .bind(name)
    .bind(description)
    .bind(permissions)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// A role by id.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<RoleRow>> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE org_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// A role by name.
pub async fn get_by_name<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    name: &str,
) -> DbResult<Option<RoleRow>> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE org_id = $1 AND name = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(name)
        .fetch_optional(ex)
        .await?)
}

/// Every role of an organization: built-ins first, then by name.
pub async fn list<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
) -> DbResult<Vec<RoleRow>> {
    let sql = format!("SELECT {COLUMNS} FROM roles WHERE org_id = $1 ORDER BY builtin DESC, name");
    Ok(sqlx::query_as(&sql).bind(org_id).fetch_all(ex).await?)
}

/// Changes a custom role.
pub async fn update<'e>(ex: impl Executor<'e, Database = Any>, r: &RoleRow) -> DbResult<()> {
    sqlx::query(
        "UPDATE roles SET name = $2, description = $3, permissions = $4, server_tags = $5, updated_at = $6 \
         WHERE id = $1 AND builtin = 0",
    )
    .bind(&r.id)
    .bind(&r.name)
    .bind(&r.description)
    .bind(&r.permissions)
    .bind(&r.server_tags)
    .bind(r.updated_at)
    .execute(ex)
    .await
    .map_err(conflict_on("name"))?;
    Ok(())
}

/// Deletes a custom role (its assignments cascade).
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM roles WHERE id = $1 AND builtin = 0")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The roles assigned to an account.
pub async fn for_user<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> DbResult<Vec<RoleRow>> {
    let sql = format!(
        "SELECT {} FROM roles r JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = $1 ORDER BY r.name",
        COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(ex).await?)
}

/// Every (user id, role name) assignment of an organization, for listing users.
pub async fn assignments<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
) -> DbResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT ur.user_id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
         WHERE r.org_id = $1 ORDER BY r.name",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await?)
}

/// Replaces an account's roles.
pub async fn set_for_user(
    tx: &mut sqlx::AnyConnection,
    user_id: &str,
    role_ids: &[String],
) -> DbResult<()> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for role_id in role_ids {
        sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
            .bind(user_id)
            .bind(role_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Serializes every change that could leave an organization without an active
/// administrator, and returns how many there are now. Call it as the first statement of the
/// transaction that makes the change, then [`count_active_holders`] inside the same
/// transaction after it: a change that takes the count from some to none is refused.
///
/// It writes the built-in `admin_role`'s row (to itself): on PostgreSQL that row lock makes a
/// second such transaction wait until the first commits, and its later statements then see
/// the first's changes (READ COMMITTED takes a snapshot per statement); on SQLite a write as
/// the first statement takes the database's single write lock, waiting under the busy
/// timeout. Two administrators demoting each other at the same moment therefore cannot both
/// see the other still in place.
pub async fn lock_admins(
    tx: &mut sqlx::AnyConnection,
    org_id: &str,
    admin_role: &str,
) -> DbResult<i64> {
    sqlx::query(
        "UPDATE roles SET updated_at = updated_at WHERE org_id = $1 AND name = $2 AND builtin = 1",
    )
    .bind(org_id)
    .bind(admin_role)
    .execute(&mut *tx)
    .await?;
    count_active_holders(&mut *tx, org_id, admin_role).await
}

/// Active (not disabled) accounts holding the role named `name`.
pub async fn count_active_holders<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    name: &str,
) -> DbResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id JOIN users u ON u.id = ur.user_id \
         WHERE r.org_id = $1 AND r.name = $2 AND u.disabled_at IS NULL",
    )
    .bind(org_id)
    .bind(name)
    .fetch_one(ex)
    .await?)
}

/// Every tag some role is scoped to: the tags that decide who may access a server.
pub async fn scope_tags<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
) -> DbResult<std::collections::BTreeSet<String>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT server_tags FROM roles WHERE org_id = $1 AND server_tags IS NOT NULL",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await?;
    let mut out = std::collections::BTreeSet::new();
    for json in rows {
        let tags: Vec<String> = serde_json::from_str(&json)
            .map_err(|_| crate::DbError::Corrupt("roles.server_tags"))?;
        out.extend(tags);
    }
    Ok(out)
}
