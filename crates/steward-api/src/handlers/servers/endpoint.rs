//! An endpoint change (host, port, SSH user, jump server) and the server's trust: who may keep
//! the credential attached, and confirming a changed endpoint.
use super::*;

/// What an endpoint change does to the trust a server has built up.
pub(super) enum EndpointDecision {
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
    pub(super) fn audit(&self) -> Option<&'static str> {
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
pub(super) async fn endpoint_decision(
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
            crate::handlers::step_up::require(
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
    crate::handlers::step_up::require(
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
