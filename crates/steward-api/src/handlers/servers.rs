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

/// Servers the caller may see, filtered, sorted and paged.
#[utoipa::path(operation_id = "servers_list", get, path = "/api/v1/servers", tag = tags::SERVERS, params(ServerQuery),
    responses((status = 200, body = ServerPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Json<ServerPage>> {
    p.require(Permission::ServersRead)?;
    let q: ServerQuery = ApiQuery::from_uri(&uri)?;
    let sort = match q.sort.as_deref().unwrap_or("name") {
        "name" => SortKey::Name,
        "host" => SortKey::Host,
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "sort must be name, host, created_at or updated_at",
            ));
        }
    };
    let descending = match q.order.as_deref().unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "order must be asc or desc",
            ));
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "offset must not be negative",
        ));
    }
    let tag_filter: Vec<String> = match q.tag.as_deref() {
        Some(t) if !t.trim().is_empty() => {
            let list: Vec<String> = t.split(',').map(str::to_string).collect();
            Tag::parse_set("tag", &list)
                .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    };
    let query = clean_query_text("q", q.q.as_deref())?;
    let visible = p.visible_tags();
    let (rows, total) = servers::list(
        &st.db.pool,
        &ServerFilter {
            org_id: &p.user.org_id,
            query: query.as_deref(),
            tags: &tag_filter,
            visible_tags: visible.as_ref(),
            sort,
            descending,
            limit,
            offset,
        },
    )
    .await?;
    Ok(Json(ServerPage {
        items: rows.into_iter().map(view).collect(),
        total,
        limit,
        offset,
    }))
}

/// Tags on the servers the caller may see, with counts.
#[utoipa::path(operation_id = "servers_tag_list", get, path = "/api/v1/tags", tag = tags::SERVERS, responses((status = 200, body = [TagCount])))]
pub async fn tag_list(State(st): State<AppState>, p: Principal) -> ApiResult<Json<Vec<TagCount>>> {
    p.require(Permission::ServersRead)?;
    let visible = p.visible_tags();
    let counts = servers::tag_counts(&st.db.pool, &p.user.org_id, visible.as_ref()).await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|(tag, count)| TagCount { tag, count })
            .collect(),
    ))
}

/// One server.
#[utoipa::path(operation_id = "servers_get", get, path = "/api/v1/servers/{id}", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = Server), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Server>> {
    Ok(Json(view(visible(&st, &p, &id).await?)))
}

/// Registers a server. A caller limited to some tags must tag it with one of them.
#[utoipa::path(operation_id = "servers_create", post, path = "/api/v1/servers", tag = tags::SERVERS, request_body = ServerInput,
    responses((status = 201, body = Server), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<ServerInput>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    p.require(Permission::ServersWrite)?;
    let now = st.now_ms();
    let mut row = parse_input(&req, &p.user.org_id)?;
    if !p.authz.can_on_server(Permission::ServersWrite, &row.tags) {
        return Err(ApiError::forbidden(
            "you may only add servers carrying one of the tags your role covers",
        )
        .with_details(json!({ "field": "tags" })));
    }
    check_scope_tags(&p, &row.tags.iter().cloned().collect())?;
    row.jump_server_id = check_jump(&st, &p, &req, None).await?;
    row.id = steward_db::new_id();
    row.created_by = Some(p.user.id.clone());
    row.created_at = now;
    row.updated_at = now;
    let mut tx = st.db.begin().await?;
    servers::insert(&mut tx, &row).await?;
    Event::by(&p, "server.create", now)
        .target("server", &row.id, &row.name)
        .details(json!({ "host": row.host, "port": row.port, "ssh_user": row.ssh_user, "tags": row.tags }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// Replaces a server's definition.
#[utoipa::path(operation_id = "servers_update", put, path = "/api/v1/servers/{id}", tag = tags::SERVERS, params(("id" = String, Path)), request_body = ServerInput,
    responses((status = 200, body = Server), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<ServerInput>,
) -> ApiResult<Json<Server>> {
    let now = st.now_ms();
    let old = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersWrite, &old.tags)?;
    let mut row = parse_input(&req, &p.user.org_id)?;
    if !p.authz.can_on_server(Permission::ServersWrite, &row.tags) {
        return Err(ApiError::forbidden(
            "the new tags would move the server outside what your role covers",
        )
        .with_details(json!({ "field": "tags" })));
    }
    let before: BTreeSet<String> = old.tags.iter().cloned().collect();
    let after: BTreeSet<String> = row.tags.iter().cloned().collect();
    check_scope_tags(&p, &before.symmetric_difference(&after).cloned().collect())?;
    row.jump_server_id = check_jump(&st, &p, &req, Some(&old.id)).await?;
    if req.monitoring.is_none() {
        row.monitoring = old.monitoring.clone();
    }
    if req.metrics_interval_secs.is_none() {
        row.metrics_interval_secs = old.metrics_interval_secs;
    }
    row.id = old.id.clone();
    row.created_by = old.created_by.clone();
    row.created_at = old.created_at;
    row.updated_at = now;
    row.credential_kind = old.credential_kind.clone();
    row.endpoint_changed_at = old.endpoint_changed_at;
    row.endpoint_changed_by = old.endpoint_changed_by.clone();
    row.endpoint_previous = old.endpoint_previous.clone();
    let endpoint = endpoint_decision(&st, &p, &old, &row, req.step_up.as_ref()).await?;
    let mut tx = st.db.begin().await?;
    servers::update(&mut tx, &row).await?;
    match endpoint {
        EndpointDecision::Unchanged => {}
        EndpointDecision::Vouched => {
            servers::confirm_endpoint(&mut *tx, &row.id).await?;
            row.endpoint_changed_at = None;
            row.endpoint_changed_by = None;
            row.endpoint_previous = None;
        }
        EndpointDecision::Moved => {
            host_keys::delete(&mut *tx, &row.id).await?;
        }
        EndpointDecision::Detached => {
            let previous = old
                .endpoint_previous
                .clone()
                .unwrap_or_else(|| json!(endpoint_of(&old)).to_string());
            servers::mark_endpoint_changed(&mut *tx, &row.id, now, &p.user.username, &previous)
                .await?;
            host_keys::delete(&mut *tx, &row.id).await?;
            row.endpoint_changed_at = Some(now);
            row.endpoint_changed_by = Some(p.user.username.clone());
            row.endpoint_previous = Some(previous);
        }
    }
    let mut changed = serde_json::Map::new();
    for (field, before, after) in [
        ("name", json!(old.name), json!(row.name)),
        ("host", json!(old.host), json!(row.host)),
        ("port", json!(old.port), json!(row.port)),
        ("ssh_user", json!(old.ssh_user), json!(row.ssh_user)),
        (
            "auth_method",
            json!(old.auth_method),
            json!(row.auth_method),
        ),
        ("tags", json!(old.tags), json!(row.tags)),
        (
            "jump_server_id",
            json!(old.jump_server_id),
            json!(row.jump_server_id),
        ),
        ("monitoring", json!(old.monitoring), json!(row.monitoring)),
        (
            "metrics_interval_secs",
            json!(old.metrics_interval_secs),
            json!(row.metrics_interval_secs),
        ),
    ] {
        if before != after {
            changed.insert(field.into(), json!({ "from": before, "to": after }));
        }
    }
    if old.notes != row.notes {
        changed.insert("notes".into(), json!("changed"));
    }
    if let Some(what) = endpoint.audit() {
        changed.insert("endpoint".into(), json!(what));
    }
    Event::by(&p, "server.update", now)
        .target("server", &row.id, &row.name)
        .details(json!({ "changes": changed }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    st.ssh.invalidate(&row.id);
    Ok(Json(view(row)))
}

/// What an endpoint change does to the trust a server has built up.
enum EndpointDecision {
    /// Host, port, SSH user and jump server are as they were.
    Unchanged,
    /// The caller holds `credentials.write` on the server and stepped up: the credential and
    /// the trusted host key stay, and any pending change is confirmed by this one.
    Vouched,
    /// Nothing to protect (no credential, nothing pending): the old host key is forgotten.
    Moved,
    /// The credential is detached (kept sealed, offered to nobody) and the host key forgotten
    /// until someone with `credentials.write` confirms the new endpoint.
    Detached,
}

impl EndpointDecision {
    fn audit(&self) -> Option<&'static str> {
        match self {
            EndpointDecision::Unchanged => None,
            EndpointDecision::Vouched => Some("vouched"),
            EndpointDecision::Moved => Some("host_key_forgotten"),
            EndpointDecision::Detached => Some("credential_detached"),
        }
    }
}

/// Decides what a change of `old` into `new` does to the server's credential and host key.
/// A changed endpoint is where a credential would be sent next, so only someone who may set
/// that credential (and proved themselves again) can keep it attached.
async fn endpoint_decision(
    st: &AppState,
    p: &Principal,
    old: &ServerRow,
    new: &ServerRow,
    step_up: Option<&steward_proto::StepUpRequest>,
) -> ApiResult<EndpointDecision> {
    if endpoint_of(old) == endpoint_of(new) {
        return Ok(EndpointDecision::Unchanged);
    }
    let guarded = old.credential_kind.is_some() || old.endpoint_changed_at.is_some();
    let may_vouch = p
        .authz
        .can_on_server(Permission::CredentialsWrite, &old.tags)
        && p.authz
            .can_on_server(Permission::CredentialsWrite, &new.tags);
    if may_vouch {
        if guarded {
            super::step_up::require(
                st,
                p,
                step_up,
                "changing where a server with a credential connects",
            )
            .await?;
            return Ok(EndpointDecision::Vouched);
        }
        return Ok(EndpointDecision::Moved);
    }
    Ok(if guarded {
        EndpointDecision::Detached
    } else {
        EndpointDecision::Moved
    })
}

/// Confirms a changed endpoint: the credential is offered to it again, and the next contact
/// records its host key (pin the key first where that contact could be intercepted).
#[utoipa::path(operation_id = "servers_confirm_endpoint", post, path = "/api/v1/servers/{id}/endpoint/confirm", tag = tags::SERVERS, params(("id" = String, Path)), request_body = ConfirmEndpointRequest,
    responses((status = 200, body = Server), (status = 403, body = ErrorBody, description = "no `credentials.write`, or `step_up_required` / `step_up_failed`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`nothing_to_confirm`")))]
pub async fn confirm_endpoint(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<ConfirmEndpointRequest>,
) -> ApiResult<Json<Server>> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::CredentialsWrite, &server.tags)?;
    if server.endpoint_changed_at.is_none() {
        return Err(ApiError::conflict(
            "nothing_to_confirm",
            "the server's endpoint has no unconfirmed change",
        ));
    }
    super::step_up::require(
        &st,
        &p,
        req.step_up.as_ref(),
        "confirming a server's endpoint",
    )
    .await?;
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    if !servers::confirm_endpoint(&mut *tx, &server.id).await? {
        return Err(ApiError::conflict(
            "nothing_to_confirm",
            "the server's endpoint has no unconfirmed change",
        ));
    }
    Event::by(&p, "server.endpoint_confirm", now)
        .target("server", &server.id, &server.name)
        .details(json!({
            "endpoint": endpoint_of(&server),
            "previous": server.endpoint_previous.as_deref().and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()),
            "changed_by": server.endpoint_changed_by,
        }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    st.live.invalidate();
    let fresh = visible(&st, &p, &id).await?;
    Ok(Json(view(fresh)))
}

/// Deletes a server and its credential.
#[utoipa::path(operation_id = "servers_delete", delete, path = "/api/v1/servers/{id}", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    let now = st.now_ms();
    let old = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersWrite, &old.tags)?;
    let credential = credentials::get(&st.db.pool, &old.id).await?;
    let mut tx = st.db.begin().await?;
    servers::delete(&mut *tx, &old.id).await?;
    if let Some(c) = credential {
        secrets::delete(&mut *tx, &c.secret_id).await?;
        if let Some(pp) = &c.passphrase_secret_id {
            secrets::delete(&mut *tx, pp).await?;
        }
    }
    Event::by(&p, "server.delete", now)
        .target("server", &old.id, &old.name)
        .details(json!({ "host": old.host }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    st.ssh.invalidate(&old.id);
    st.metrics.forget_server(&old.id);
    Ok(StatusCode::NO_CONTENT)
}
