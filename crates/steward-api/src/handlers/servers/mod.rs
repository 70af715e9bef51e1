//! The server inventory. A server the caller may not read answers 404, exactly like one that
//! does not exist.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;

use steward_core::validate::{Host, Name, Notes, SshUser, Tag, parse_port};
use steward_core::{Permission, Scope};
use steward_db::servers::{self, ServerFilter, ServerRow, SortKey};
use steward_db::{credentials, secrets};
use steward_proto::{
    AuthMethod, ConfirmEndpointRequest, CredentialKind, Endpoint, EndpointChange, ErrorBody,
    Monitoring, Server, ServerInput, ServerPage, ServerQuery, TagCount,
};

use super::{tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, clean_query_text};
use crate::state::AppState;
use steward_db::host_keys;
use steward_services::audit::Event;

mod endpoint;
mod read;
mod write;

pub use endpoint::{__path_confirm_endpoint, confirm_endpoint};
pub use read::{__path_get, __path_list, __path_tag_list, get, list, tag_list};
pub use write::{__path_create, __path_delete, __path_update, create, delete, update};

pub(crate) fn view(r: ServerRow) -> Server {
    Server {
        port: u16::try_from(r.port).unwrap_or(22),
        auth_method: AuthMethod::parse(&r.auth_method).unwrap_or(AuthMethod::Key),
        credential_kind: r.credential_kind.as_deref().and_then(CredentialKind::parse),
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        id: r.id,
        name: r.name,
        host: r.host,
        ssh_user: r.ssh_user,
        tags: r.tags,
        notes: r.notes,
        jump_server_id: r.jump_server_id,
        monitoring: Monitoring::parse(&r.monitoring).unwrap_or(Monitoring::Agentless),
        metrics_interval_secs: r.metrics_interval_secs,
        endpoint_change: r.endpoint_changed_at.map(|at| EndpointChange {
            changed_at: time(at),
            changed_by: r.endpoint_changed_by.clone(),
            previous: r
                .endpoint_previous
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
        }),
    }
}

/// Where a stored server connects.
fn endpoint_of(r: &ServerRow) -> Endpoint {
    Endpoint {
        host: r.host.clone(),
        port: u16::try_from(r.port).unwrap_or(22),
        ssh_user: r.ssh_user.clone(),
        jump_server_id: r.jump_server_id.clone(),
    }
}

/// Validates a server definition into a row (id and times filled by the caller).
fn parse_input(req: &ServerInput, org_id: &str) -> ApiResult<ServerRow> {
    Ok(ServerRow {
        id: String::new(),
        org_id: org_id.to_string(),
        name: Name::parse(&req.name)?.into_inner(),
        host: Host::parse(&req.host)?.into_inner(),
        port: i64::from(parse_port("port", req.port.unwrap_or(22))?),
        ssh_user: SshUser::parse(&req.ssh_user)?.into_inner(),
        auth_method: req
            .auth_method
            .unwrap_or(AuthMethod::Key)
            .as_str()
            .to_string(),
        notes: Notes::parse(&req.notes)?.into_inner(),
        created_by: None,
        created_at: 0,
        updated_at: 0,
        credential_kind: None,
        jump_server_id: None,
        monitoring: req
            .monitoring
            .unwrap_or(Monitoring::Agentless)
            .as_str()
            .to_string(),
        metrics_interval_secs: match req.metrics_interval_secs {
            None => 10,
            Some(n) if (1..=3600).contains(&n) => n,
            Some(_) => {
                return Err(steward_core::ValidationError::new(
                    "metrics_interval_secs",
                    "must be 1 to 3600 seconds",
                )
                .into());
            }
        },
        endpoint_changed_at: None,
        endpoint_changed_by: None,
        endpoint_previous: None,
        tags: Tag::parse_set("tags", &req.tags)?.into_iter().collect(),
    })
}

/// Checks the requested jump server: one the caller can see, not the server itself, and
/// reached directly (one hop, like `ssh -J` with a single bastion).
async fn check_jump(
    st: &AppState,
    p: &Principal,
    req: &ServerInput,
    this_id: Option<&str>,
) -> ApiResult<Option<String>> {
    let Some(id) = req
        .jump_server_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let invalid =
        |why: &str| ApiError::from(steward_core::ValidationError::new("jump_server_id", why));
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid("is not a server id"));
    }
    if Some(id) == this_id {
        return Err(invalid("cannot be the server itself"));
    }
    let jump = match servers::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(s) if p.can_see_server(&s.tags) => s,
        _ => return Err(invalid("is not a server you can see")),
    };
    // Routing through a server uses its credential: setting it needs what setting the
    // target's endpoint needs, on the jump server too (each action through it is checked
    // again when it connects, see `fleet::connect`).
    if !p.authz.can_on_server(Permission::ServersWrite, &jump.tags) {
        return Err(ApiError::forbidden(
            "routing through a server needs the servers.write permission on that server",
        )
        .with_details(json!({ "field": "jump_server_id" })));
    }
    if jump.jump_server_id.is_some() {
        return Err(invalid(
            "is itself reached through a jump server; use that one",
        ));
    }
    if let Some(this) = this_id
        && servers::jumping_through(&st.db.pool, this).await? > 0
    {
        return Err(invalid(
            "cannot be set on a server other servers jump through",
        ));
    }
    Ok(Some(jump.id))
}

/// Tags decide which roles reach a server. A caller whose write access is itself limited to
/// tags may put tags on a server, or take them off, only within that scope: otherwise they could
/// hand a server to (or take it from) another group, including through a tag no role uses yet
/// but someone's run or a future role will select.
fn check_scope_tags(p: &Principal, changed: &BTreeSet<String>) -> ApiResult<()> {
    let Some(Scope::Tags(mine)) = p.authz.scope_of(Permission::ServersWrite) else {
        return Ok(());
    };
    let outside: Vec<&str> = changed
        .iter()
        .filter(|t| !mine.contains(*t))
        .map(String::as_str)
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "your role may only add or remove the tags it covers ({}), not {}",
        mine.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        outside.join(", ")
    ))
    .with_details(json!({ "field": "tags" })))
}

/// Loads a server the caller may see, or 404.
pub(crate) async fn visible(st: &AppState, p: &Principal, id: &str) -> ApiResult<ServerRow> {
    Ok(steward_services::fleet::visible_server(st, p, id).await?)
}
