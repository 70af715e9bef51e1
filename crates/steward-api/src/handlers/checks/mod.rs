//! Health checks: list (with the last run and uptime), create, read, change, delete, results
//! for the chart, run now, and accepting a scan's proposal as a check.
//!
//! Who may do what: a check attached to a server is seen by whoever sees the server and
//! changed with `checks.write` on the server's tags; a standalone check concerns no server, so
//! it is seen with `servers.read` on every server and changed with `checks.write` on every
//! server. Checks make requests from the hub, so every change and every manual run is audited,
//! a definition naming an address checks may not reach is refused (`steward_services::checks::admit`),
//! and manual runs are rate-limited per user and per check.
//!
//! Split by route: `read` lists and shows checks and their results, `create` adds one,
//! `change` replaces or deletes one, `run` runs one now and `proposals` accepts a scan's
//! proposal as a check; the views and access rules they share are here. The writes, with
//! their audit events, are `steward_services::checks`.
mod change;
mod create;
mod proposals;
mod read;
mod run;

use steward_core::Permission;
use steward_core::rbac::Scope;
use steward_db::checks::{self, CheckRow, UptimeRow};
use steward_db::servers::ServerRow;
use steward_proto::{Check, CheckLast, CheckStatus, Uptime};

use super::servers::visible;
use super::time;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use steward_services::checks::spec_of;
use steward_services::checks::{Definition, parse_input};

// Each handler with the `__path_` type its `#[utoipa::path]` generates: `routes!` in
// `openapi.rs` names both as `checks::<handler>`.
pub use change::{__path_delete, __path_update, delete, update};
pub use create::{__path_create, create};
pub use proposals::{__path_proposal_accept, proposal_accept};
pub use read::{__path_get, __path_list, __path_results, get, list, results};
pub use run::{__path_run, run};

fn view(r: CheckRow, uptime: UptimeRow) -> ApiResult<Check> {
    let spec = spec_of(&r)?;
    let last = match (
        r.last_at,
        r.last_status.as_deref().and_then(CheckStatus::parse),
    ) {
        (Some(at), Some(status)) => Some(CheckLast {
            at: time(at),
            status,
            latency_ms: r.last_latency_ms,
            message: r.last_message.clone().unwrap_or_default(),
            http_status: r.last_http_status,
            cert_days_left: r.last_cert_days,
        }),
        _ => None,
    };
    Ok(Check {
        spec,
        last,
        uptime: Uptime {
            h24: uptime.h24,
            d7: uptime.d7,
            d30: uptime.d30,
        },
        interval_secs: r.interval_secs,
        timeout_secs: r.timeout_secs,
        enabled: r.enabled != 0,
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        id: r.id,
        name: r.name,
        server_id: r.server_id,
        server_name: r.server_name,
        proposal_id: r.proposal_id,
    })
}

/// The view of one check, with its uptime.
async fn full_view(st: &AppState, r: CheckRow) -> ApiResult<Check> {
    let uptime = checks::uptime(&st.db.pool, &r.org_id, st.now_ms())
        .await?
        .remove(&r.id)
        .unwrap_or_default();
    view(r, uptime)
}

/// Whether the caller sees every server (and so standalone checks).
fn sees_everything(p: &Principal) -> bool {
    p.visible_tags().is_none()
}

/// A check the caller can see, with its server; 404 otherwise.
async fn load(st: &AppState, p: &Principal, id: &str) -> ApiResult<(CheckRow, Option<ServerRow>)> {
    let row = checks::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("check"))?;
    let server = match &row.server_id {
        Some(sid) => Some(
            visible(st, p, sid)
                .await
                .map_err(|_| ApiError::not_found("check"))?,
        ),
        None if sees_everything(p) => None,
        None => return Err(ApiError::not_found("check")),
    };
    Ok((row, server))
}

/// 403 unless the caller may change checks of `server` (or standalone checks).
fn require_write(p: &Principal, server: Option<&ServerRow>) -> ApiResult<()> {
    let allowed = match server {
        Some(s) => p.authz.can_on_server(Permission::ChecksWrite, &s.tags),
        None => p.authz.scope_of(Permission::ChecksWrite) == Some(Scope::All),
    };
    if allowed {
        Ok(())
    } else if server.is_some() {
        Err(ApiError::forbidden(
            "this needs the checks.write permission on this server",
        ))
    } else {
        Err(ApiError::forbidden(
            "a check that belongs to no server needs the checks.write permission on every server",
        ))
    }
}

/// The server a check is to belong to: visible to the caller (404 otherwise).
async fn target_server(
    st: &AppState,
    p: &Principal,
    server_id: Option<&str>,
) -> ApiResult<Option<ServerRow>> {
    match server_id {
        None => Ok(None),
        Some(id) => {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(ApiError::not_found("server"));
            }
            Ok(Some(visible(st, p, id).await?))
        }
    }
}
