//! Accepting a scan's health-check proposal as a TCP check of the service's port.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use steward_core::validate::Name;
use steward_db::proposals::{self, ProposalRow};
use steward_db::servers::ServerRow;
use steward_proto::{Check, CheckSpec, ErrorBody, TcpCheck};

use super::{Definition, full_view, require_write, visible};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::IdPath;
use crate::handlers::tags;
use crate::state::AppState;
use steward_services::checks::{accepted_already, insert};

/// Whether the address only means "this machine", seen from the server a scan ran on.
fn is_local(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "*" | "::" | "localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Turns a `health_check` proposal into a TCP check from the hub to the server's address
/// (a loopback or wildcard address in the proposal meant the server itself).
fn proposal_definition(pr: &ProposalRow, server: &ServerRow) -> ApiResult<Definition> {
    let unsupported = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "proposal_unsupported",
            "only health-check proposals can be accepted as checks",
        )
    };
    if pr.kind != "health_check" {
        return Err(unsupported());
    }
    let spec: serde_json::Value = serde_json::from_str(&pr.spec).map_err(|_| unsupported())?;
    let port = spec["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(unsupported)?;
    let host = match spec["host"].as_str() {
        Some(h) if !is_local(h) => h.to_string(),
        _ => server.host.clone(),
    };
    let service =
        steward_services::discovery::parse::service_name(&pr.service).unwrap_or(&pr.service);
    let service = match spec["container"].as_str() {
        Some(c) => format!("{service} ({c})"),
        None => service.to_string(),
    };
    let name: String = format!("{service} on {}", server.name)
        .chars()
        .take(100)
        .collect();
    let spec = CheckSpec::Tcp(TcpCheck { host, port });
    steward_checks::validate(&spec).map_err(|_| unsupported())?;
    Ok(Definition {
        name: Name::parse(&name)?.into_inner(),
        spec,
        interval_secs: 60,
        timeout_secs: 10,
        enabled: true,
    })
}

/// Accepts a scan's health-check proposal: creates a TCP check of the service's port on the
/// server (every 60 s) and marks the proposal accepted. A dismissed proposal can still be
/// accepted.
#[utoipa::path(post, operation_id = "proposals_accept", path = "/api/v1/proposals/{id}/accept", tag = tags::CHECKS, params(("id" = String, Path)),
    responses((status = 201, body = Check), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`proposal_accepted`: already accepted"), (status = 422, body = ErrorBody, description = "`proposal_unsupported`: not a health check")))]
pub async fn proposal_accept(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<Check>)> {
    let pr = proposals::get(&st.db.pool, &p.user.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("proposal"))?;
    let server = visible(&st, &p, &pr.server_id)
        .await
        .map_err(|_| ApiError::not_found("proposal"))?;
    require_write(&p, Some(&server))?;
    if pr.status == "accepted" {
        return Err(accepted_already().into());
    }
    let def = proposal_definition(&pr, &server)?;
    let row = insert(&st, &p, def, Some(&server), Some(&pr)).await?;
    Ok((StatusCode::CREATED, Json(full_view(&st, row).await?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses() {
        for h in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "*",
            "localhost",
            "[::1]",
        ] {
            assert!(is_local(h), "{h}");
        }
        for h in ["10.0.0.5", "db.internal", "192.0.2.1"] {
            assert!(!is_local(h), "{h}");
        }
    }
}
