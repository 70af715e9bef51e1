//! The script library. Every saved change is a new version; old versions are kept.
use sqlx::{Any, Executor};

use crate::{Arg, DbResult, SqlBuilder, conflict_on, like_escape};

/// A script at its current version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScriptRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub description: String,
    /// `sh` or `bash`.
    pub shell: String,
    pub body: String,
    /// JSON array of parameter definitions.
    pub parameters: String,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_by: Option<String>,
    pub updated_at: i64,
    /// JSON array of the tags the script belongs to; `None` for the whole organization.
    pub owner_tags: Option<String>,
}

/// One saved version of a script.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScriptVersionRow {
    pub script_id: String,
    pub version: i64,
    pub name: String,
    pub description: String,
    pub shell: String,
    pub body: String,
    pub parameters: String,
    pub changed_by: Option<String>,
    pub changed_by_name: Option<String>,
    pub changed_at: i64,
}

const COLUMNS: &str = "id, org_id, name, description, shell, body, parameters, version, created_by, created_at, updated_by, updated_at, owner_tags";
const VERSION_COLUMNS: &str = "script_id, version, name, description, shell, body, parameters, changed_by, changed_by_name, changed_at";

/// Scripts whose name or description contains `query` (case-insensitive), by name.
pub async fn list(
    pool: &sqlx::AnyPool,
    org_id: &str,
    query: Option<&str>,
) -> DbResult<Vec<ScriptRow>> {
    let mut b = SqlBuilder::new(&format!("SELECT {COLUMNS} FROM scripts WHERE org_id = "));
    b.bind(Arg::Text(org_id.into()));
    if let Some(q) = query {
        let pattern = format!("%{}%", like_escape(&q.to_lowercase()));
        b.push(" AND (LOWER(name) LIKE ")
            .bind(Arg::Text(pattern.clone()))
            .push(" ESCAPE '\\' OR LOWER(description) LIKE ")
            .bind(Arg::Text(pattern))
            .push(" ESCAPE '\\')");
    }
    b.push(" ORDER BY name");
    Ok(b.query_as().fetch_all(pool).await?)
}

/// A script by id.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<ScriptRow>> {
    let sql = format!("SELECT {COLUMNS} FROM scripts WHERE org_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// Records `s` as version `s.version` in the history.
async fn record_version(
    tx: &mut sqlx::AnyConnection,
    s: &ScriptRow,
    by_name: &str,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO script_versions (script_id, version, name, description, shell, body, parameters, changed_by, changed_by_name, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&s.id)
    .bind(s.version)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.shell)
    .bind(&s.body)
    .bind(&s.parameters)
    .bind(&s.updated_by)
    .bind(by_name)
    .bind(s.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Creates a script (version 1); a taken name is a conflict on `name`.
pub async fn insert(tx: &mut sqlx::AnyConnection, s: &ScriptRow, by_name: &str) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO scripts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&s.id)
    .bind(&s.org_id)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.shell)
    .bind(&s.body)
    .bind(&s.parameters)
    .bind(s.version)
    .bind(&s.created_by)
    .bind(s.created_at)
    .bind(&s.updated_by)
    .bind(s.updated_at)
    .bind(&s.owner_tags)
    .execute(&mut *tx)
    .await
    .map_err(conflict_on("name"))?;
    record_version(tx, s, by_name).await
}

/// Saves `s` as the next version, if the stored version is still `s.version - 1`. Returns
/// false when somebody else saved in between (nothing is written then).
pub async fn update(tx: &mut sqlx::AnyConnection, s: &ScriptRow, by_name: &str) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE scripts SET name = $3, description = $4, shell = $5, body = $6, parameters = $7, \
         version = $8, updated_by = $9, updated_at = $10, owner_tags = $11 WHERE id = $1 AND version = $2",
    )
    .bind(&s.id)
    .bind(s.version - 1)
    .bind(&s.name)
    .bind(&s.description)
    .bind(&s.shell)
    .bind(&s.body)
    .bind(&s.parameters)
    .bind(s.version)
    .bind(&s.updated_by)
    .bind(s.updated_at)
    .bind(&s.owner_tags)
    .execute(&mut *tx)
    .await
    .map_err(conflict_on("name"))?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    record_version(tx, s, by_name).await?;
    Ok(true)
}

/// Deletes a script and its history (past runs keep its name and text).
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM scripts WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Every version of a script, newest first.
pub async fn versions(pool: &sqlx::AnyPool, script_id: &str) -> DbResult<Vec<ScriptVersionRow>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM script_versions WHERE script_id = $1 ORDER BY version DESC"
    );
    Ok(sqlx::query_as(&sql).bind(script_id).fetch_all(pool).await?)
}

/// One version of a script.
pub async fn version(
    pool: &sqlx::AnyPool,
    script_id: &str,
    version: i64,
) -> DbResult<Option<ScriptVersionRow>> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM script_versions WHERE script_id = $1 AND version = $2"
    );
    Ok(sqlx::query_as(&sql)
        .bind(script_id)
        .bind(version)
        .fetch_optional(pool)
        .await?)
}

/// Changes only who owns a script (not a new version), if it is still at `version`. False
/// when somebody saved in between.
pub async fn set_owner<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    version: i64,
    owner_tags: Option<&str>,
) -> DbResult<bool> {
    let done = sqlx::query("UPDATE scripts SET owner_tags = $3 WHERE id = $1 AND version = $2")
        .bind(id)
        .bind(version)
        .bind(owner_tags)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records that `user_id` wrote or ran this version (running it again needs no step-up).
pub async fn record_review<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    script_id: &str,
    version: i64,
    at: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO script_reviews (user_id, script_id, version, reviewed_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, script_id, version) DO NOTHING",
    )
    .bind(user_id)
    .bind(script_id)
    .bind(version)
    .bind(at)
    .execute(ex)
    .await?;
    Ok(())
}

/// Whether `user_id` wrote or ran this version.
pub async fn reviewed<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    script_id: &str,
    version: i64,
) -> DbResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM script_reviews WHERE user_id = $1 AND script_id = $2 AND version = $3",
    )
    .bind(user_id)
    .bind(script_id)
    .bind(version)
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}

/// The scripts whose current version `user_id` wrote or ran.
pub async fn reviewed_current(pool: &sqlx::AnyPool, user_id: &str) -> DbResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT r.script_id FROM script_reviews r JOIN scripts s ON s.id = r.script_id AND s.version = r.version \
         WHERE r.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// Carries every review of version `from` over to `to` (a change that does not alter what
/// runs: a new name or description).
pub async fn carry_reviews<'e>(
    ex: impl Executor<'e, Database = Any>,
    script_id: &str,
    from: i64,
    to: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO script_reviews (user_id, script_id, version, reviewed_at) \
         SELECT user_id, script_id, $3, reviewed_at FROM script_reviews WHERE script_id = $1 AND version = $2 \
         ON CONFLICT (user_id, script_id, version) DO NOTHING",
    )
    .bind(script_id)
    .bind(from)
    .bind(to)
    .execute(ex)
    .await?;
    Ok(())
}
