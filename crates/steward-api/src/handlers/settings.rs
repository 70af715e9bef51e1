//! Organization settings (needs `settings.manage`).
use axum::Json;
use axum::extract::State;
use serde_json::json;
use steward_core::Permission;
use steward_db::settings::{self, REQUIRE_TOTP};
use steward_proto::{ErrorBody, Settings};

use super::tags;
use crate::audit::Event;
use crate::auth::Principal;
use crate::auth::principal::org_requires_totp;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::AppState;

/// Current settings.
#[utoipa::path(operation_id = "settings_get", get, path = "/api/v1/settings", tag = tags::SETTINGS, responses((status = 200, body = Settings), (status = 403, body = ErrorBody)))]
pub async fn get(State(st): State<AppState>, p: Principal) -> ApiResult<Json<Settings>> {
    p.require(Permission::SettingsManage)?;
    Ok(Json(Settings {
        require_totp: org_requires_totp(&st, &p.user.org_id).await?,
    }))
}

/// Changes settings. Requiring 2FA sends every user without it to set-up at their next request.
#[utoipa::path(operation_id = "settings_put", put, path = "/api/v1/settings", tag = tags::SETTINGS, request_body = Settings,
    responses((status = 200, body = Settings), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<Settings>,
) -> ApiResult<Json<Settings>> {
    p.require(Permission::SettingsManage)?;
    let now = st.now_ms();
    let before = org_requires_totp(&st, &p.user.org_id).await?;
    let mut tx = st.db.begin().await?;
    settings::set(
        &mut *tx,
        &p.user.org_id,
        REQUIRE_TOTP,
        if req.require_totp { "true" } else { "false" },
        &p.user.id,
        now,
    )
    .await?;
    Event::by(&p, "settings.update", now)
        .target("settings", &p.user.org_id, "organization")
        .details(json!({ "require_totp": { "from": before, "to": req.require_totp } }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(Settings {
        require_totp: req.require_totp,
    }))
}
