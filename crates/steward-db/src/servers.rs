//! The server inventory and its tags.
use std::collections::{BTreeSet, HashMap};

use sqlx::{Any, Executor};

use crate::{Arg, DbResult, SqlBuilder, conflict_on, like_escape};

/// A stored server, with its tags and the kind of credential attached (if any).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub host: String,
    pub port: i64,
    pub ssh_user: String,
    pub auth_method: String,
    pub notes: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub credential_kind: Option<String>,
    /// The server to connect through (a bastion), if any.
    pub jump_server_id: Option<String>,
    /// How metrics are collected: `agentless`, `agent` or `off`.
    pub monitoring: String,
    /// Seconds between metric samples.
    pub metrics_interval_secs: i64,
    /// When the endpoint (host, port, SSH user or jump server) was changed by someone who could
    /// not vouch for it; `None` once confirmed. While set, nothing connects to the server.
    pub endpoint_changed_at: Option<i64>,
    /// Who made that change (username).
    pub endpoint_changed_by: Option<String>,
    /// The last confirmed endpoint, as JSON (`host`, `port`, `ssh_user`, `jump_server_id`).
    pub endpoint_previous: Option<String>,
    #[sqlx(skip)]
    pub tags: Vec<String>,
}

const SELECT: &str = "SELECT s.id, s.org_id, s.name, s.host, s.port, s.ssh_user, s.auth_method, s.notes, \
    s.created_by, s.created_at, s.updated_at, c.kind AS credential_kind, s.jump_server_id, \
    s.monitoring, s.metrics_interval_secs, s.endpoint_changed_at, s.endpoint_changed_by, s.endpoint_previous \
    FROM servers s LEFT JOIN credentials c ON c.server_id = s.id";

/// Sort orders for listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Host,
    CreatedAt,
    UpdatedAt,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::Name => "s.name",
            SortKey::Host => "s.host",
            SortKey::CreatedAt => "s.created_at",
            SortKey::UpdatedAt => "s.updated_at",
        }
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct ServerFilter<'a> {
    pub org_id: &'a str,
    /// Case-insensitive substring of name, host or notes.
    pub query: Option<&'a str>,
    /// Servers must carry every one of these tags.
    pub tags: &'a [String],
    /// Visibility: `None` = every server, `Some(tags)` = servers carrying one of these.
    pub visible_tags: Option<&'a BTreeSet<String>>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
}

fn push_filters(b: &mut SqlBuilder, f: &ServerFilter<'_>) {
    b.push(" WHERE s.org_id = ")
        .bind(Arg::Text(f.org_id.to_string()));
    if let Some(q) = f.query.filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", like_escape(&q.to_lowercase()));
        b.push(" AND (LOWER(s.name) LIKE ")
            .bind(Arg::Text(pattern.clone()));
        b.push(" ESCAPE '\\' OR LOWER(s.host) LIKE ")
            .bind(Arg::Text(pattern.clone()));
        b.push(" ESCAPE '\\' OR LOWER(s.notes) LIKE ")
            .bind(Arg::Text(pattern));
        b.push(" ESCAPE '\\')");
    }
    for tag in f.tags {
        b.push(" AND EXISTS (SELECT 1 FROM server_tags t WHERE t.server_id = s.id AND t.tag = ")
            .bind(Arg::Text(tag.clone()))
            .push(")");
    }
    if let Some(visible) = f.visible_tags {
        if visible.is_empty() {
            b.push(" AND 1 = 0");
        } else {
            b.push(
                " AND EXISTS (SELECT 1 FROM server_tags v WHERE v.server_id = s.id AND v.tag IN ",
            );
            b.bind_list(visible).push(")");
        }
    }
}

async fn attach_tags<'e>(
    ex: impl Executor<'e, Database = Any>,
    rows: &mut [ServerRow],
) -> DbResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut b = SqlBuilder::new("SELECT server_id, tag FROM server_tags WHERE server_id IN ");
    b.bind_list(&ids).push(" ORDER BY tag");
    let pairs: Vec<(String, String)> = b.query_as().fetch_all(ex).await?;
    let mut by_server: HashMap<String, Vec<String>> = HashMap::new();
    for (id, tag) in pairs {
        by_server.entry(id).or_default().push(tag);
    }
    for r in rows {
        r.tags = by_server.remove(&r.id).unwrap_or_default();
    }
    Ok(())
}

/// One page of servers and the total matching the filter.
pub async fn list(pool: &sqlx::AnyPool, f: &ServerFilter<'_>) -> DbResult<(Vec<ServerRow>, i64)> {
    let mut count = SqlBuilder::new("SELECT COUNT(*) FROM servers s");
    push_filters(&mut count, f);
    let total: i64 = count.query_scalar().fetch_one(pool).await?;

    let mut b = SqlBuilder::new(SELECT);
    push_filters(&mut b, f);
    let dir = if f.descending { "DESC" } else { "ASC" };
    b.push(&format!(
        " ORDER BY {} {dir}, s.id {dir} LIMIT ",
        f.sort.column()
    ))
    .bind(Arg::Int(f.limit))
    .push(" OFFSET ")
    .bind(Arg::Int(f.offset));
    let mut rows: Vec<ServerRow> = b.query_as().fetch_all(pool).await?;
    attach_tags(pool, &mut rows).await?;
    Ok((rows, total))
}

/// A server by id, with tags.
pub async fn get(pool: &sqlx::AnyPool, org_id: &str, id: &str) -> DbResult<Option<ServerRow>> {
    let sql = format!("{SELECT} WHERE s.org_id = $1 AND s.id = $2");
    let row: Option<ServerRow> = sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(mut row) = row else { return Ok(None) };
    attach_tags(pool, std::slice::from_mut(&mut row)).await?;
    Ok(Some(row))
}

/// Every distinct tag in use on servers the filter lets through (`visible_tags` as in
/// [`ServerFilter`]), with how many such servers carry it.
pub async fn tag_counts(
    pool: &sqlx::AnyPool,
    org_id: &str,
    visible_tags: Option<&BTreeSet<String>>,
) -> DbResult<Vec<(String, i64)>> {
    let filter = ServerFilter {
        org_id,
        query: None,
        tags: &[],
        visible_tags,
        sort: SortKey::Name,
        descending: false,
        limit: 0,
        offset: 0,
    };
    let mut b = SqlBuilder::new(
        "SELECT t.tag, COUNT(*) FROM server_tags t JOIN servers s ON s.id = t.server_id",
    );
    push_filters(&mut b, &filter);
    b.push(" GROUP BY t.tag ORDER BY t.tag");
    Ok(b.query_as().fetch_all(pool).await?)
}

async fn replace_tags(
    tx: &mut sqlx::AnyConnection,
    server_id: &str,
    tags: &[String],
) -> DbResult<()> {
    sqlx::query("DELETE FROM server_tags WHERE server_id = $1")
        .bind(server_id)
        .execute(&mut *tx)
        .await?;
    for tag in tags {
        sqlx::query("INSERT INTO server_tags (server_id, tag) VALUES ($1, $2)")
            .bind(server_id)
            .bind(tag)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Creates a server with its tags; a taken name is a conflict on `name`.
pub async fn insert(tx: &mut sqlx::AnyConnection, s: &ServerRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO servers (id, org_id, name, host, port, ssh_user, auth_method, notes, created_by, created_at, updated_at, jump_server_id, \
           monitoring, metrics_interval_secs) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&s.id)
    .bind(&s.org_id)
    .bind(&s.name)
    .bind(&s.host)
    .bind(s.port)
    .bind(&s.ssh_user)
    .bind(&s.auth_method)
    .bind(&s.notes)
    .bind(&s.created_by)
    .bind(s.created_at)
    .bind(s.updated_at)
    .bind(&s.jump_server_id)
    .bind(&s.monitoring)
    .bind(s.metrics_interval_secs)
    .execute(&mut *tx)
    .await
    .map_err(conflict_on("name"))?;
    replace_tags(tx, &s.id, &s.tags).await
}

/// Replaces a server's fields and tags; a taken name is a conflict on `name`.
pub async fn update(tx: &mut sqlx::AnyConnection, s: &ServerRow) -> DbResult<()> {
    sqlx::query(
        "UPDATE servers SET name = $2, host = $3, port = $4, ssh_user = $5, auth_method = $6, notes = $7, \
         updated_at = $8, jump_server_id = $9, monitoring = $10, metrics_interval_secs = $11 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.name)
    .bind(&s.host)
    .bind(s.port)
    .bind(&s.ssh_user)
    .bind(&s.auth_method)
    .bind(&s.notes)
    .bind(s.updated_at)
    .bind(&s.jump_server_id)
    .bind(&s.monitoring)
    .bind(s.metrics_interval_secs)
    .execute(&mut *tx)
    .await
    .map_err(conflict_on("name"))?;
    replace_tags(tx, &s.id, &s.tags).await
}

/// Marks the endpoint as changed and unconfirmed (keeping the first unconfirmed change's
/// `previous`, the last endpoint someone vouched for).
pub async fn mark_endpoint_changed<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    at: i64,
    by: &str,
    previous: &str,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE servers SET endpoint_changed_at = $2, endpoint_changed_by = $3, \
         endpoint_previous = COALESCE(endpoint_previous, $4) WHERE id = $1",
    )
    .bind(id)
    .bind(at)
    .bind(by)
    .bind(previous)
    .execute(ex)
    .await?;
    Ok(())
}

/// Confirms the current endpoint: connections may use it again. False if nothing was pending.
pub async fn confirm_endpoint<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE servers SET endpoint_changed_at = NULL, endpoint_changed_by = NULL, \
         endpoint_previous = NULL WHERE id = $1 AND endpoint_changed_at IS NOT NULL",
    )
    .bind(id)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// How many servers are reached through this one.
pub async fn jumping_through(pool: &sqlx::AnyPool, id: &str) -> DbResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM servers WHERE jump_server_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// Deletes a server (tags and credential link cascade; the caller deletes the secrets).
pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM servers WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Every server (of every organization) whose metrics are collected in `mode` and that has a
/// credential, without tags.
pub async fn monitored(pool: &sqlx::AnyPool, mode: &str) -> DbResult<Vec<ServerRow>> {
    let sql = format!("{SELECT} WHERE s.monitoring = $1 AND c.kind IS NOT NULL ORDER BY s.id");
    Ok(sqlx::query_as(&sql).bind(mode).fetch_all(pool).await?)
}
