//! The host key Steward trusts for a server: pinning one in advance, accepting the new key a
//! server presented, forgetting it. A trusted key decides where the server's credential may be
//! sent, so each needs `servers.write` and `credentials.write` on the server.
use serde_json::json;
use steward_core::{Permission, ValidationError};
use steward_db::host_keys::{self, HostKeyRow};
use steward_db::servers::ServerRow;
use steward_proto::{AcceptHostKeyRequest, PinHostKeyRequest};
use steward_ssh::client::HostKey;

use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::fleet::{host_key_row, visible_server};
use crate::principal::Principal;

/// The server, if the caller may change which key is trusted for it: `servers.write` and
/// `credentials.write` on it (404 for a server they cannot see).
async fn trust_target(st: &Services, p: &Principal, server_id: &str) -> ServiceResult<ServerRow> {
    let server = visible_server(st, p, server_id).await?;
    p.require_on_server(Permission::ServersWrite, &server.tags)?;
    p.require_on_server(Permission::CredentialsWrite, &server.tags)?;
    Ok(server)
}

/// Pins the host key in advance (replacing any trusted one). Audited `host_key.pin`.
pub async fn pin_host_key(
    st: &Services,
    p: &Principal,
    server_id: &str,
    req: &PinHostKeyRequest,
) -> ServiceResult<HostKeyRow> {
    let server = trust_target(st, p, server_id).await?;
    if req.public_key.len() > 16 * 1024 {
        return Err(ValidationError::new("public_key", "is too long").into());
    }
    let key = HostKey::parse(&req.public_key)
        .map_err(|e| ValidationError::new("public_key", e.to_string()))?;
    let now = st.now_ms();
    let r = host_key_row(&server, &key, "pinned", Some(&p.user.id), now);
    let mut tx = st.db.begin().await?;
    host_keys::trust(&mut *tx, &r).await?;
    Event::by(p, "host_key.pin", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "fingerprint": key.fingerprint }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(r)
}

/// Accepts the new key the server presented, once the caller names its fingerprint
/// (`Conflict` `no_pending_host_key` or `fingerprint_mismatch` otherwise). Audited
/// `host_key.accept`.
pub async fn accept_host_key(
    st: &Services,
    p: &Principal,
    server_id: &str,
    req: &AcceptHostKeyRequest,
) -> ServiceResult<HostKeyRow> {
    let server = trust_target(st, p, server_id).await?;
    let current = host_keys::get(&st.db.pool, &server.id)
        .await?
        .ok_or_else(|| ServiceError::not_found("host key"))?;
    let (Some(pending_fp), Some(pending_key)) = (
        current.mismatch_fingerprint.clone(),
        current.mismatch_public_key.clone(),
    ) else {
        return Err(ServiceError::conflict(
            "no_pending_host_key",
            "the server has not presented a different host key",
        ));
    };
    if req.fingerprint.trim() != pending_fp {
        return Err(ServiceError::conflict(
            "fingerprint_mismatch",
            "that is not the fingerprint of the key the server presented",
        ));
    }
    let key = HostKey::parse(&pending_key).map_err(ServiceError::internal)?;
    let now = st.now_ms();
    let r = host_key_row(&server, &key, "accepted", Some(&p.user.id), now);
    let mut tx = st.db.begin().await?;
    host_keys::trust(&mut *tx, &r).await?;
    Event::by(p, "host_key.accept", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "old": current.fingerprint, "new": key.fingerprint }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(r)
}

/// Forgets the trusted key (`NotFound` `host key` when there is none): the next contact
/// trusts on first use again. Audited `host_key.forget`.
pub async fn forget_host_key(st: &Services, p: &Principal, server_id: &str) -> ServiceResult<()> {
    let server = trust_target(st, p, server_id).await?;
    let current = host_keys::get(&st.db.pool, &server.id)
        .await?
        .ok_or_else(|| ServiceError::not_found("host key"))?;
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    host_keys::delete(&mut *tx, &server.id).await?;
    Event::by(p, "host_key.forget", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "fingerprint": current.fingerprint }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.ssh.invalidate(&server.id);
    Ok(())
}
