//! Reaching a server over SSH: the connection test, and the host key Steward trusts for it.
//! A host key that changed is refused, recorded, audited and shown; only a user with
//! `servers.write` and `credentials.write` who names the new fingerprint can accept it. A
//! trusted key decides where the server's credential may be sent, so pinning, accepting and
//! forgetting one need `credentials.write` as well.
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::Permission;
use steward_db::host_keys::{self, HostKeyRow};
use steward_proto::{
    AcceptHostKeyRequest, ConnectionProblem, ConnectionTest, ErrorBody, HostKeyCheck, HostKeyInfo,
    HostKeyMismatch, PinHostKeyRequest,
};
use steward_ssh::client::{self, SshError};

use super::servers::visible;
use super::{opt_time, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, IdPath};
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::credentials as service;
use steward_services::fleet::{
    self, Actor, ReachError, load_auth, record_first_use, record_mismatch, target_of,
};

fn view(r: HostKeyRow) -> HostKeyInfo {
    HostKeyInfo {
        algorithm: r.algorithm,
        fingerprint: r.fingerprint,
        public_key: r.public_key,
        source: r.source,
        trusted_at: time(r.trusted_at),
        mismatch: match (
            r.mismatch_fingerprint,
            r.mismatch_public_key,
            opt_time(r.mismatch_at),
        ) {
            (Some(fingerprint), Some(public_key), Some(seen_at)) => Some(HostKeyMismatch {
                fingerprint,
                public_key,
                seen_at,
            }),
            _ => None,
        },
    }
}

fn problem(code: &str, message: impl Into<String>) -> Option<ConnectionProblem> {
    Some(ConnectionProblem {
        code: code.into(),
        message: message.into(),
    })
}

/// Connects with the stored credential and trusted host key (through the jump server, like
/// every other connection), and runs a harmless command. On first contact the host key is
/// recorded ("trust on first use"). While the server's endpoint change is unconfirmed, no
/// credential is offered and no key is recorded: the test shows only what answers there.
#[utoipa::path(post, operation_id = "ssh_test_connection", path = "/api/v1/servers/{id}/test-connection", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = ConnectionTest, description = "the outcome, also when the server could not be reached"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_connection(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<ConnectionTest>> {
    let server = visible(&st, &p, &id).await?;
    p.require_on_server(Permission::ServersWrite, &server.tags)?;
    let unconfirmed = server.endpoint_changed_at.is_some();
    let auth = if unconfirmed {
        None
    } else {
        load_auth(&st, &server.id).await?
    };
    let actor = Actor::user(&p, Permission::ServersWrite);
    let trusted = host_keys::get(&st.db.pool, &server.id).await?;
    let target = target_of(&server);
    let timeout = st.config.ssh_connect_timeout;
    let now = st.now_ms();
    let mut outcome = ConnectionTest {
        reachable: false,
        authenticated: false,
        host_key: None,
        latency_ms: None,
        error: None,
    };

    let result = match fleet::jump_for(&st, &server, &actor).await {
        Ok(jump) => {
            client::connect_through(
                jump,
                &target,
                auth.as_ref(),
                trusted.as_ref().map(|t| t.public_key.as_str()),
                timeout,
            )
            .await
        }
        Err(ReachError::Internal(e)) => return Err(e.into()),
        Err(ReachError::JumpForbidden(name)) => {
            return Err(ApiError::forbidden(format!(
                "testing through the jump server {name} needs the servers.write permission on it"
            ))
            .with_code("jump_forbidden"));
        }
        Err(e) => {
            outcome.error = problem(e.code(), e.to_string());
            write_test_event(&st, &p, &server, &outcome, now).await?;
            return Ok(Json(outcome));
        }
    };
    match result {
        Ok(conn) => {
            outcome.reachable = true;
            outcome.authenticated = conn.authenticated;
            let status = if trusted.is_some() {
                "trusted"
            } else if unconfirmed {
                "unconfirmed"
            } else {
                record_first_use(&st, &server, &actor, &conn.host_key).await?;
                "first_use"
            };
            outcome.host_key = Some(HostKeyCheck {
                status: status.into(),
                algorithm: conn.host_key.algorithm.clone(),
                fingerprint: conn.host_key.fingerprint.clone(),
                expected_fingerprint: None,
            });
            if conn.authenticated {
                let started = Instant::now();
                match conn.exec("true", Duration::from_secs(10)).await {
                    Ok(_) => outcome.latency_ms = Some(started.elapsed().as_millis() as i64),
                    Err(e) => outcome.error = problem("ssh_error", e.to_string()),
                }
            } else if unconfirmed {
                outcome.error = problem(
                    "endpoint_unconfirmed",
                    ReachError::EndpointUnconfirmed.to_string(),
                );
            } else if auth.is_none() {
                outcome.error = problem(
                    "no_credential",
                    "the server has no credential; set one first",
                );
            } else {
                outcome.error = problem(
                    "auth_failed",
                    format!("the server refused the credential for {}", target.user),
                );
            }
            conn.close().await;
        }
        Err(SshError::HostKeyMismatch {
            presented,
            expected,
        }) => {
            outcome.reachable = true;
            record_mismatch(&st, &server, &actor, &presented, &expected).await?;
            outcome.error = problem(
                "host_key_mismatch",
                "the server presented a different host key; no credential was sent",
            );
            outcome.host_key = Some(HostKeyCheck {
                status: "mismatch".into(),
                algorithm: presented.algorithm,
                fingerprint: presented.fingerprint,
                expected_fingerprint: Some(expected),
            });
        }
        Err(SshError::Unreachable(m)) => outcome.error = problem("unreachable", m),
        Err(SshError::Timeout(d)) => {
            outcome.error = problem("timeout", format!("no answer within {} s", d.as_secs()))
        }
        Err(SshError::BadCredential(m)) => outcome.error = problem("bad_credential", m),
        Err(e) => outcome.error = problem("ssh_error", e.to_string()),
    }
    write_test_event(&st, &p, &server, &outcome, now).await?;
    Ok(Json(outcome))
}

async fn write_test_event(
    st: &AppState,
    p: &Principal,
    server: &steward_db::servers::ServerRow,
    outcome: &ConnectionTest,
    now: i64,
) -> ApiResult<()> {
    Event::by(p, "server.test_connection", now)
        .target("server", &server.id, &server.name)
        .outcome(if outcome.authenticated && outcome.error.is_none() {
            Outcome::Success
        } else {
            Outcome::Failure
        })
        .details(json!({ "error": outcome.error.as_ref().map(|e| &e.code) }))
        .write(&st.db.pool)
        .await?;
    Ok(())
}

/// The host key trusted for the server (404 before first contact).
#[utoipa::path(get, operation_id = "ssh_get_host_key", path = "/api/v1/servers/{id}/host-key", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = HostKeyInfo), (status = 404, body = ErrorBody)))]
pub async fn get_host_key(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<HostKeyInfo>> {
    let server = visible(&st, &p, &id).await?;
    let r = host_keys::get(&st.db.pool, &server.id)
        .await?
        .ok_or_else(|| ApiError::not_found("host key"))?;
    Ok(Json(view(r)))
}

/// Pins the host key in advance (replacing any trusted one).
#[utoipa::path(put, operation_id = "ssh_pin_host_key", path = "/api/v1/servers/{id}/host-key", tag = tags::SERVERS, params(("id" = String, Path)), request_body = PinHostKeyRequest,
    responses((status = 200, body = HostKeyInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pin_host_key(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<PinHostKeyRequest>,
) -> ApiResult<Json<HostKeyInfo>> {
    let r = service::pin_host_key(&st, &p, &id, &req).await?;
    Ok(Json(view(r)))
}

/// Accepts the new key a server presented, after the user compared fingerprints.
#[utoipa::path(post, operation_id = "ssh_accept_host_key", path = "/api/v1/servers/{id}/host-key/accept", tag = tags::SERVERS, params(("id" = String, Path)), request_body = AcceptHostKeyRequest,
    responses((status = 200, body = HostKeyInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "no new key is pending, or it is not the named one")))]
pub async fn accept_host_key(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<AcceptHostKeyRequest>,
) -> ApiResult<Json<HostKeyInfo>> {
    let r = service::accept_host_key(&st, &p, &id, &req).await?;
    Ok(Json(view(r)))
}

/// Forgets the trusted key: the next contact trusts on first use again.
#[utoipa::path(delete, operation_id = "ssh_forget_host_key", path = "/api/v1/servers/{id}/host-key", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn forget_host_key(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    service::forget_host_key(&st, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
