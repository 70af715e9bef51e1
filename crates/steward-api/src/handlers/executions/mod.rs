//! Runs of saved scripts or ad-hoc commands across servers: start, watch live, cancel, and
//! the history. Running needs `scripts.run` on every target server, inside the script's
//! owner tags; an ad-hoc command, a run on more than ten servers, or a script version the
//! caller neither wrote nor ran before needs a step-up, and is audited with the full text. A
//! run names the script version its starter reviewed; a newer one refuses the run. Servers
//! whose endpoint change is unconfirmed are refused by id and left out of tags.
//!
//! Split by route: `create` starts a run (with `request` resolving its targets and parameter
//! values), `read` lists and shows runs, `cancel` stops one and `stream` follows one over a
//! WebSocket; the helpers they share are here.
mod cancel;
mod create;
mod read;
mod request;
mod stream;

use steward_core::{Permission, ValidationError};
use steward_db::executions::{self, ExecutionRow};
use steward_proto::{Execution, ExecutionDetail, ExecutionSummary, ScriptParameter, Shell};

use super::{opt_time, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use steward_services::runner::{host_view, summarize};

// Each handler with the `__path_` type its `#[utoipa::path]` generates: `routes!` in
// `openapi.rs` names both as `executions::<handler>`.
pub use cancel::{__path_cancel, cancel};
pub use create::{__path_create, create};
pub use read::{__path_get, __path_list, get, list};
pub use stream::{__path_stream, stream};

/// Runs on more servers than this need a step-up.
pub const STEP_UP_ABOVE: usize = 10;
/// Most servers one run may target.
pub const MAX_TARGETS: usize = 5000;
/// Longest ad-hoc command.
pub const MAX_COMMAND: usize = 64 * 1024;

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ApiError {
    ValidationError::new(field, why).into()
}

pub(crate) fn execution_view(r: &ExecutionRow) -> Execution {
    let running = if r.status == "running" {
        r.hosts_total
            - r.hosts_ok
            - r.hosts_failed
            - r.hosts_timed_out
            - r.hosts_error
            - r.hosts_cancelled
    } else {
        0
    };
    Execution {
        id: r.id.clone(),
        script_id: r.script_id.clone(),
        script_name: r.script_name.clone(),
        script_version: r.script_version,
        command: r.command.clone(),
        shell: Shell::parse(&r.shell).unwrap_or_default(),
        parameters: serde_json::from_str(&r.parameters).unwrap_or_default(),
        created_by: r.created_by_name.clone(),
        created_at: time(r.created_at),
        finished_at: opt_time(r.finished_at),
        status: r.status.clone(),
        timeout_secs: r.timeout_secs,
        concurrency: r.concurrency,
        stop_on_failure: r.stop_on_failure != 0,
        cancelled_by: r.cancelled_by_name.clone(),
        summary: ExecutionSummary {
            total: r.hosts_total,
            ok: r.hosts_ok,
            failed: r.hosts_failed,
            timed_out: r.hosts_timed_out,
            error: r.hosts_error,
            cancelled: r.hosts_cancelled,
            running,
        },
    }
}

/// Whether the caller may see everyone's runs (auditors and administrators).
fn sees_all(p: &Principal) -> bool {
    p.authz.has(Permission::AuditRead)
}

/// A run the caller may see: their own (for an API token, only if the token may run
/// scripts), or any for those who see all. Others answer 404.
async fn visible(st: &AppState, p: &Principal, id: &str) -> ApiResult<ExecutionRow> {
    match executions::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(r) if sees_all(p) || p.owns(r.created_by.as_deref(), Permission::ScriptsRun) => Ok(r),
        _ => Err(ApiError::not_found("execution")),
    }
}

async fn stored_detail(st: &AppState, row: &ExecutionRow) -> ApiResult<ExecutionDetail> {
    let hosts = executions::hosts(&st.db.pool, &row.id).await?;
    let hosts: Vec<_> = hosts.iter().map(host_view).collect();
    let mut execution = execution_view(row);
    execution.summary = summarize(&hosts);
    // Which parameters were secret: from the definitions of the version that ran.
    let mut secret_parameters = Vec::new();
    if let (Some(script_id), Some(version)) = (&row.script_id, row.script_version)
        && let Some(v) = steward_db::scripts::version(&st.db.pool, script_id, version).await?
    {
        let defs: Vec<ScriptParameter> = serde_json::from_str(&v.parameters).unwrap_or_default();
        secret_parameters = defs
            .into_iter()
            .filter(|d| d.kind == steward_proto::ParameterType::Secret)
            .map(|d| d.name)
            .collect();
    }
    Ok(ExecutionDetail {
        execution,
        hosts,
        secret_parameters,
    })
}
