//! An endpoint change (host, port, SSH user, jump server) and the server's trust: who may keep
//! the credential attached, and confirming a changed endpoint.
use std::future::Future;

use serde_json::json;
use steward_core::Permission;
use steward_db::servers::{self, ServerRow};

use super::endpoint_of;
use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::fleet::visible_server;
use crate::principal::Principal;

/// What an endpoint change does to the trust a server has built up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointDecision {
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
    /// What the audit event's `changes.endpoint` says, if anything.
    pub fn audit(&self) -> Option<&'static str> {
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
/// that credential (and proves themselves again: `Vouched` needs a step-up) can keep it
/// attached.
pub fn endpoint_decision(p: &Principal, old: &ServerRow, new: &ServerRow) -> EndpointDecision {
    if endpoint_of(old) == endpoint_of(new) {
        return EndpointDecision::Unchanged;
    }
    let guarded = old.credential_kind.is_some() || old.endpoint_changed_at.is_some();
    let may_vouch = p
        .authz
        .can_on_server(Permission::CredentialsWrite, &old.tags)
        && p.authz
            .can_on_server(Permission::CredentialsWrite, &new.tags);
    match (guarded, may_vouch) {
        (false, _) => EndpointDecision::Moved,
        (true, true) => EndpointDecision::Vouched,
        (true, false) => EndpointDecision::Detached,
    }
}

/// Confirms a changed endpoint: the credential is offered to it again, and the next contact
/// records its host key. Needs `credentials.write` on the server and a step-up:
/// `step_up(what)` is called once the server is known to have a change to confirm, before
/// anything is stored, and its error is returned as it is. `Conflict` `nothing_to_confirm`
/// when there is none. Returns the server as stored now.
pub async fn confirm_endpoint<E, F, Fut>(
    st: &Services,
    p: &Principal,
    id: &str,
    step_up: F,
) -> Result<ServerRow, E>
where
    E: From<ServiceError>,
    F: FnOnce(&'static str) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let server = visible_server(st, p, id).await?;
    p.require_on_server(Permission::CredentialsWrite, &server.tags)?;
    if server.endpoint_changed_at.is_none() {
        return Err(nothing_to_confirm().into());
    }
    step_up("confirming a server's endpoint").await?;
    Ok(confirm(st, p, &server).await?)
}

fn nothing_to_confirm() -> ServiceError {
    ServiceError::conflict(
        "nothing_to_confirm",
        "the server's endpoint has no unconfirmed change",
    )
}

/// Clears the pending change, audited, and re-reads the server.
async fn confirm(st: &Services, p: &Principal, server: &ServerRow) -> ServiceResult<ServerRow> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    if !servers::confirm_endpoint(&mut *tx, &server.id).await? {
        return Err(nothing_to_confirm());
    }
    Event::by(p, "server.endpoint_confirm", now)
        .target("server", &server.id, &server.name)
        .details(json!({
            "endpoint": endpoint_of(server),
            "previous": server.endpoint_previous.as_deref().and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()),
            "changed_by": server.endpoint_changed_by,
        }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    st.live.invalidate();
    visible_server(st, p, &server.id).await
}
