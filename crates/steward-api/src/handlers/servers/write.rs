//! Changing servers: create, replace (with what an endpoint change does to the server's trust)
//! and delete.
use super::endpoint::{EndpointDecision, endpoint_decision};
use super::*;

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
