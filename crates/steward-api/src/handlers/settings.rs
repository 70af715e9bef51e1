//! Organization settings (needs `settings.manage`).
use axum::Json;
use axum::extract::State;
use serde_json::json;
use steward_core::{Permission, ValidationError};
use steward_db::settings::{self, CHECK_ALLOWED_NETWORKS, REQUIRE_TOTP};
use steward_proto::{ErrorBody, Settings, SettingsUpdate};

use super::tags;
use crate::auth::Principal;
use crate::auth::principal::org_requires_totp;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use steward_services::audit::Event;
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
    let now = st.now_ms();
    let org = &p.user.org_id;
    let before = current(&st, org).await?;
    let mut tx = st.db.begin().await?;
    settings::set(
        &mut *tx,
        org,
        REQUIRE_TOTP,
        if req.require_totp { "true" } else { "false" },
        &p.user.id,
        now,
    )
    .await?;
    let mut changes =
        json!({ "require_totp": { "from": before.require_totp, "to": req.require_totp } });
    if let Some(networks) = &networks {
        let text = serde_json::to_string(networks).map_err(ApiError::internal)?;
        settings::set(
            &mut *tx,
            org,
            CHECK_ALLOWED_NETWORKS,
            &text,
            &p.user.id,
            now,
        )
        .await?;
        if *networks != before.check_allowed_networks {
            changes["check_allowed_networks"] =
                json!({ "from": before.check_allowed_networks, "to": networks });
        }
    }
    Event::by(&p, "settings.update", now)
        .target("settings", org, "organization")
        .details(changes)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(Settings {
        require_totp: req.require_totp,
        check_allowed_networks: networks.unwrap_or(before.check_allowed_networks),
    }))
}
