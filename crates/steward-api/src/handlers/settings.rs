//! Organization settings (needs `settings.manage`).
use axum::Json;
use axum::extract::State;
use steward_core::{Permission, ValidationError};
use steward_proto::{ErrorBody, Settings, SettingsUpdate};

use super::tags;
use crate::auth::Principal;
use crate::auth::principal::org_requires_totp;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;
use steward_services::checks::allowed_networks;

/// Most networks in the health checks' allow-list.
const MAX_ALLOWED_NETWORKS: usize = 100;

async fn current(st: &AppState, org_id: &str) -> ApiResult<Settings> {
    Ok(Settings {
        require_totp: org_requires_totp(&st.db, org_id).await?,
        check_allowed_networks: allowed_networks(st, org_id).await?,
    })
}

/// The allow-list as stored: each entry parsed, host bits cleared, duplicates dropped.
fn parse_networks(list: &[String]) -> ApiResult<Vec<String>> {
    let field = "check_allowed_networks";
    if list.len() > MAX_ALLOWED_NETWORKS {
        return Err(ValidationError::new(
            field,
            format!("must have at most {MAX_ALLOWED_NETWORKS} networks"),
        )
        .into());
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let net = steward_checks::parse_network(entry)
            .map_err(|m| ValidationError::new(format!("{field}[{i}]"), m))?
            .to_string();
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

/// Current settings.
#[utoipa::path(operation_id = "settings_get", get, path = "/api/v1/settings", tag = tags::SETTINGS, responses((status = 200, body = Settings), (status = 403, body = ErrorBody)))]
pub async fn get(State(st): State<AppState>, p: Principal) -> ApiResult<Json<Settings>> {
    p.require(Permission::SettingsManage)?;
    Ok(Json(current(&st, &p.user.org_id).await?))
}

/// Changes settings. Requiring 2FA sends every user without it to set-up at their next request.
/// The health checks' allow-list takes effect at their next run.
#[utoipa::path(operation_id = "settings_put", put, path = "/api/v1/settings", tag = tags::SETTINGS, request_body = SettingsUpdate,
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<SettingsUpdate>,
) -> ApiResult<Json<Settings>> {
    p.require(Permission::SettingsManage)?;
    let networks = req
        .check_allowed_networks
        .as_deref()
        .map(parse_networks)
        .transpose()?;
    let org = &p.user.org_id;
    let before = current(&st, org).await?;
    steward_services::settings::update(&st, &p, &before, req.require_totp, networks.as_deref())
        .await?;
    Ok(Json(Settings {
        require_totp: req.require_totp,
        check_allowed_networks: networks.unwrap_or(before.check_allowed_networks),
    }))
}
