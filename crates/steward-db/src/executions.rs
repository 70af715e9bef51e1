//! Runs of scripts and ad-hoc commands, with each host's outcome and (capped) output.
use sqlx::{Any, Executor};

use crate::{Arg, DbResult, SqlBuilder};

/// A run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExecutionRow {
    pub id: String,
    pub org_id: String,
    pub script_id: Option<String>,
    pub script_name: Option<String>,
    pub script_version: Option<i64>,
    pub command: String,
    pub shell: String,
    pub parameters: String,
    pub created_by: Option<String>,
    pub created_by_name: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// `running`, `finished`, `cancelled` or `interrupted`.
    pub status: String,
    pub timeout_secs: i64,
    pub concurrency: i64,
    pub stop_on_failure: i64,
    pub cancelled_by_name: Option<String>,
    pub hosts_total: i64,
    pub hosts_ok: i64,
    pub hosts_failed: i64,
    pub hosts_timed_out: i64,
    pub hosts_error: i64,
    pub hosts_cancelled: i64,
}

/// One host of a run.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct ExecutionHostRow {
    pub execution_id: String,
    pub server_id: String,
    pub server_name: String,
    /// `pending`, `running`, `ok`, `failed`, `timed_out`, `error`, `cancelled` or `skipped`.
    pub status: String,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_bytes: i64,
    pub stderr_bytes: i64,
    pub truncated: i64,
}

const COLUMNS: &str = "id, org_id, script_id, script_name, script_version, command, shell, parameters, created_by, \
    created_by_name, created_at, finished_at, status, timeout_secs, concurrency, stop_on_failure, cancelled_by_name, \
    hosts_total, hosts_ok, hosts_failed, hosts_timed_out, hosts_error, hosts_cancelled";
const HOST_COLUMNS: &str = "execution_id, server_id, server_name, status, exit_code, exit_signal, error_code, error, \
    started_at, finished_at, stdout, stderr, stdout_bytes, stderr_bytes, truncated";

/// Stores a new run and its hosts (all pending).
pub async fn insert(
    tx: &mut sqlx::AnyConnection,
    e: &ExecutionRow,
    hosts: &[(String, String)],
) -> DbResult<()> {
    sqlx::query(&format!(
        "INSERT INTO executions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
    ))
    .bind(&e.id)
    .bind(&e.org_id)
    .bind(&e.script_id)
    .bind(&e.script_name)
    .bind(e.script_version)
    .bind(&e.command)
    .bind(&e.shell)
    .bind(&e.parameters)
    .bind(&e.created_by)
    .bind(&e.created_by_name)
    .bind(e.created_at)
    .bind(e.finished_at)
    .bind(&e.status)
    .bind(e.timeout_secs)
    .bind(e.concurrency)
    .bind(e.stop_on_failure)
    .bind(&e.cancelled_by_name)
    .bind(e.hosts_total)
    .bind(e.hosts_ok)
    .bind(e.hosts_failed)
    .bind(e.hosts_timed_out)
    .bind(e.hosts_error)
    .bind(e.hosts_cancelled)
    .execute(&mut *tx)
    .await?;
    for (server_id, server_name) in hosts {
        sqlx::query(
            "INSERT INTO execution_hosts (execution_id, server_id, server_name, status, stdout, stderr) \
             VALUES ($1, $2, $3, 'pending', $4, $5)",
        )
        .bind(&e.id)
        .bind(server_id)
        .bind(server_name)
        .bind(Vec::<u8>::new())
        .bind(Vec::<u8>::new())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Stores a host's outcome.
pub async fn finish_host<'e>(
    ex: impl Executor<'e, Database = Any>,
    h: &ExecutionHostRow,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE execution_hosts SET status = $3, exit_code = $4, exit_signal = $5, error_code = $6, error = $7, \
         started_at = $8, finished_at = $9, stdout = $10, stderr = $11, stdout_bytes = $12, stderr_bytes = $13, \
         truncated = $14 WHERE execution_id = $1 AND server_id = $2",
    )
    .bind(&h.execution_id)
    .bind(&h.server_id)
    .bind(&h.status)
    .bind(h.exit_code)
    .bind(&h.exit_signal)
    .bind(&h.error_code)
    .bind(&h.error)
    .bind(h.started_at)
    .bind(h.finished_at)
    .bind(&h.stdout)
    .bind(&h.stderr)
    .bind(h.stdout_bytes)
    .bind(h.stderr_bytes)
    .bind(h.truncated)
    .execute(ex)
    .await?;
    Ok(())
}

/// Marks a run done, with its counts.
pub async fn finish<'e>(ex: impl Executor<'e, Database = Any>, e: &ExecutionRow) -> DbResult<()> {
    sqlx::query(
        "UPDATE executions SET status = $2, finished_at = $3, cancelled_by_name = $4, hosts_ok = $5, hosts_failed = $6, \
         hosts_timed_out = $7, hosts_error = $8, hosts_cancelled = $9 WHERE id = $1",
    )
    .bind(&e.id)
    .bind(&e.status)
    .bind(e.finished_at)
    .bind(&e.cancelled_by_name)
    .bind(e.hosts_ok)
    .bind(e.hosts_failed)
    .bind(e.hosts_timed_out)
    .bind(e.hosts_error)
    .bind(e.hosts_cancelled)
    .execute(ex)
    .await?;
    Ok(())
}

/// A run by id.
pub async fn get<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    id: &str,
) -> DbResult<Option<ExecutionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM executions WHERE org_id = $1 AND id = $2");
    Ok(sqlx::query_as(&sql)
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await?)
}

/// A run's hosts, by server name.
pub async fn hosts<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> DbResult<Vec<ExecutionHostRow>> {
    let sql = format!(
        "SELECT {HOST_COLUMNS} FROM execution_hosts WHERE execution_id = $1 ORDER BY server_name"
    );
    Ok(sqlx::query_as(&sql).bind(id).fetch_all(ex).await?)
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub org_id: String,
    /// Only runs started by this user (for callers who may not see everyone's).
    pub created_by: Option<String>,
    pub status: Option<String>,
    pub script_id: Option<String>,
    pub server_id: Option<String>,
    /// Runs created before this (created_at, id), for paging.
    pub before: Option<(i64, String)>,
    pub limit: i64,
}

/// Runs, newest first.
pub async fn list(pool: &sqlx::AnyPool, f: &ExecutionFilter) -> DbResult<Vec<ExecutionRow>> {
    let mut b = SqlBuilder::new(&format!("SELECT {COLUMNS} FROM executions WHERE org_id = "));
    b.bind(Arg::Text(f.org_id.clone()));
    if let Some(u) = &f.created_by {
        b.push(" AND created_by = ").bind(Arg::Text(u.clone()));
    }
    if let Some(s) = &f.status {
        b.push(" AND status = ").bind(Arg::Text(s.clone()));
    }
    if let Some(s) = &f.script_id {
        b.push(" AND script_id = ").bind(Arg::Text(s.clone()));
    }
    if let Some(s) = &f.server_id {
        b.push(" AND id IN (SELECT execution_id FROM execution_hosts WHERE server_id = ")
            .bind(Arg::Text(s.clone()))
            .push(")");
    }
    if let Some((at, id)) = &f.before {
        b.push(" AND (created_at < ").bind(Arg::Int(*at));
        b.push(" OR (created_at = ").bind(Arg::Int(*at));
        b.push(" AND id < ").bind(Arg::Text(id.clone())).push("))");
    }
    b.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(Arg::Int(f.limit));
    Ok(b.query_as().fetch_all(pool).await?)
}

/// Marks runs left running by a previous process as interrupted (at start-up). Returns how
/// many there were.
pub async fn interrupt_running(pool: &sqlx::AnyPool, now: i64) -> DbResult<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE execution_hosts SET status = 'cancelled', error_code = 'interrupted', \
         error = 'Steward stopped while this host was running', finished_at = $1 \
         WHERE status IN ('pending', 'running') AND execution_id IN (SELECT id FROM executions WHERE status = 'running')",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let done = sqlx::query(
        "UPDATE executions SET status = 'interrupted', finished_at = $1 WHERE status = 'running'",
    )
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Deletes runs created before `cutoff`. Returns how many.
pub async fn prune(pool: &sqlx::AnyPool, cutoff: i64) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM executions WHERE created_at < $1 AND status <> 'running'")
        .bind(cutoff)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Records the sealed secret parameter values of a run (JSON object of name to secret id).
pub async fn set_secret_parameters<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    json: &str,
) -> DbResult<()> {
    sqlx::query("UPDATE executions SET secret_parameters = $2 WHERE id = $1")
        .bind(id)
        .bind(json)
        .execute(ex)
        .await?;
    Ok(())
}

/// The sealed secret parameter values of a run (JSON), if any are left.
pub async fn secret_parameters<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> DbResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT secret_parameters FROM executions WHERE id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?
            .flatten(),
    )
}

/// Forgets a run's sealed secret parameter values (the caller deletes the secrets).
pub async fn clear_secret_parameters<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> DbResult<()> {
    sqlx::query("UPDATE executions SET secret_parameters = NULL WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Runs that ended (or were interrupted) with sealed secret values still recorded.
pub async fn with_leftover_secrets(pool: &sqlx::AnyPool) -> DbResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM executions WHERE secret_parameters IS NOT NULL AND status <> 'running'",
    )
    .fetch_all(pool)
    .await?)
}
