//! The append-only audit log.
use sqlx::{Any, Executor};

use crate::{Arg, DbResult, SqlBuilder, like_escape};

/// One audit event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub org_id: String,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub source_ip: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub target_name: Option<String>,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// JSON object.
    pub details: String,
    pub request_id: Option<String>,
}

const COLUMNS: &str = "id, org_id, at, actor_id, actor_name, source_ip, action, target_type, target_id, \
    target_name, outcome, details, request_id";

/// Appends an event.
pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, e: &AuditRow) -> DbResult<()> {
    let sql = format!(
        "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    );
    sqlx::query(&sql)
        .bind(&e.id)
        .bind(&e.org_id)
        .bind(e.at)
        .bind(&e.actor_id)
        .bind(&e.actor_name)
        .bind(&e.source_ip)
        .bind(&e.action)
        .bind(&e.target_type)
        .bind(&e.target_id)
        .bind(&e.target_name)
        .bind(&e.outcome)
        .bind(&e.details)
        .bind(&e.request_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Which events to read. Text filters are exact, except `action` ending in `.` or `*`, which
/// matches the prefix (`auth.` → every authentication event).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub org_id: String,
    /// Matches the actor's id or name.
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Matches the target's id or name.
    pub target: Option<String>,
    pub outcome: Option<String>,
    /// Inclusive lower bound (ms).
    pub from: Option<i64>,
    /// Exclusive upper bound (ms).
    pub to: Option<i64>,
    /// Continue after this (at, id) position, newest first.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// Events matching the filter, newest first.
pub async fn list(pool: &sqlx::AnyPool, f: &AuditFilter) -> DbResult<Vec<AuditRow>> {
    let mut b = SqlBuilder::new(&format!(
        "SELECT {COLUMNS} FROM audit_events WHERE org_id = "
    ));
    b.bind(Arg::Text(f.org_id.clone()));
    if let Some(actor) = &f.actor {
        b.push(" AND (actor_id = ").bind(Arg::Text(actor.clone()));
        b.push(" OR actor_name = ")
            .bind(Arg::Text(actor.clone()))
            .push(")");
    }
    if let Some(action) = &f.action {
        if let Some(prefix) = action
            .strip_suffix('*')
            .or_else(|| action.ends_with('.').then_some(action.as_str()))
        {
            b.push(" AND action LIKE ")
                .bind(Arg::Text(format!("{}%", like_escape(prefix))))
                .push(" ESCAPE '\\'");
        } else {
            b.push(" AND action = ").bind(Arg::Text(action.clone()));
        }
    }
    if let Some(target) = &f.target {
        b.push(" AND (target_id = ").bind(Arg::Text(target.clone()));
        b.push(" OR target_name = ")
            .bind(Arg::Text(target.clone()))
            .push(")");
    }
    if let Some(outcome) = &f.outcome {
        b.push(" AND outcome = ").bind(Arg::Text(outcome.clone()));
    }
    if let Some(from) = f.from {
        b.push(" AND at >= ").bind(Arg::Int(from));
    }
    if let Some(to) = f.to {
        b.push(" AND at < ").bind(Arg::Int(to));
    }
    if let Some((at, id)) = &f.before {
        b.push(" AND (at < ").bind(Arg::Int(*at));
        b.push(" OR (at = ").bind(Arg::Int(*at));
        b.push(" AND id < ").bind(Arg::Text(id.clone())).push("))");
    }
    b.push(" ORDER BY at DESC, id DESC LIMIT ")
        .bind(Arg::Int(f.limit));
    Ok(b.query_as().fetch_all(pool).await?)
}
