//! Changing servers: create, replace (with what an endpoint change does to the server's trust)
//! and delete.
use std::collections::BTreeSet;
use std::future::Future;

use serde_json::json;
use steward_core::Permission;
use steward_db::servers::{self, ServerRow};
use steward_db::{credentials, host_keys, secrets};
use steward_proto::ServerInput;

use super::endpoint::{EndpointDecision, endpoint_decision};
use super::{
    ServerError, ServerResult, check_covered, check_jump, check_scope_tags, endpoint_of,
    parse_input,
};
use crate::Services;
use crate::audit::Event;
use crate::error::ServiceResult;
use crate::fleet::visible_server;
use crate::principal::Principal;

/// Registers a server. A caller limited to some tags must tag it with one of them.
pub async fn create(st: &Services, p: &Principal, req: &ServerInput) -> ServerResult<ServerRow> {
    p.require(Permission::ServersWrite)?;
    let now = st.now_ms();
    let mut row = parse_input(req, &p.user.org_id)?;
    check_covered(
        p,
        &row,
        "you may only add servers carrying one of the tags your role covers",
    )?;
    check_scope_tags(p, &row.tags.iter().cloned().collect())?;
    row.jump_server_id = check_jump(st, p, req, None).await?;
    row.id = steward_db::new_id();
    row.created_by = Some(p.user.id.clone());
    row.created_at = now;
    row.updated_at = now;
    let mut tx = st.db.begin().await?;
    servers::insert(&mut tx, &row).await?;
    Event::by(p, "server.create", now)
        .target("server", &row.id, &row.name)
        .details(json!({ "host": row.host, "port": row.port, "ssh_user": row.ssh_user, "tags": row.tags }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    Ok(row)
}

/// Replaces a server's definition, and decides what a changed endpoint does to its trust
/// ([`EndpointDecision`]). Keeping the trust needs a step-up: `step_up(what)` is called then,
/// and only then, before anything is stored (the API checks the proof in the request or the
/// session's recent one), and its error is returned as it is.
pub async fn update<E, F, Fut>(
    st: &Services,
    p: &Principal,
    id: &str,
    req: &ServerInput,
    step_up: F,
) -> Result<ServerRow, E>
where
    E: From<ServerError>,
    F: FnOnce(&'static str) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let now = st.now_ms();
    let (old, row, endpoint) = plan_update(st, p, id, req).await?;
    if matches!(endpoint, EndpointDecision::Vouched) {
        step_up("changing where a server with a credential connects").await?;
    }
    Ok(apply_update(st, p, old, row, endpoint, now)
        .await
        .map_err(ServerError::from)?)
}

/// Checks a replacement and builds the new row (everything but the step-up).
async fn plan_update(
    st: &Services,
    p: &Principal,
    id: &str,
    req: &ServerInput,
) -> ServerResult<(ServerRow, ServerRow, EndpointDecision)> {
    let old = visible_server(st, p, id).await?;
    p.require_on_server(Permission::ServersWrite, &old.tags)?;
    let mut row = parse_input(req, &p.user.org_id)?;
    check_covered(
        p,
        &row,
        "the new tags would move the server outside what your role covers",
    )?;
    let before: BTreeSet<String> = old.tags.iter().cloned().collect();
    let after: BTreeSet<String> = row.tags.iter().cloned().collect();
    check_scope_tags(p, &before.symmetric_difference(&after).cloned().collect())?;
    row.jump_server_id = check_jump(st, p, req, Some(&old.id)).await?;
    if req.monitoring.is_none() {
        row.monitoring = old.monitoring.clone();
    }
    if req.metrics_interval_secs.is_none() {
        row.metrics_interval_secs = old.metrics_interval_secs;
    }
    row.id = old.id.clone();
    row.created_by = old.created_by.clone();
    row.created_at = old.created_at;
    row.credential_kind = old.credential_kind.clone();
    row.endpoint_changed_at = old.endpoint_changed_at;
    row.endpoint_changed_by = old.endpoint_changed_by.clone();
    row.endpoint_previous = old.endpoint_previous.clone();
    let endpoint = endpoint_decision(p, &old, &row);
    Ok((old, row, endpoint))
}

/// Stores a checked replacement with its endpoint decision and its audit event.
async fn apply_update(
    st: &Services,
    p: &Principal,
    old: ServerRow,
    mut row: ServerRow,
    endpoint: EndpointDecision,
    now: i64,
) -> ServiceResult<ServerRow> {
    row.updated_at = now;
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
    Event::by(p, "server.update", now)
        .target("server", &row.id, &row.name)
        .details(json!({ "changes": changed }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    st.ssh.invalidate(&row.id);
    Ok(row)
}

/// Deletes a server, its credential and the credential's secrets.
pub async fn delete(st: &Services, p: &Principal, id: &str) -> ServiceResult<()> {
    let now = st.now_ms();
    let old = visible_server(st, p, id).await?;
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
    Event::by(p, "server.delete", now)
        .target("server", &old.id, &old.name)
        .details(json!({ "host": old.host }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    st.ssh.invalidate(&old.id);
    st.metrics.forget_server(&old.id);
    Ok(())
}
