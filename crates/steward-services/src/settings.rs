//! The organization's settings: whether everyone needs 2FA, and the networks its health checks
//! may reach besides the defaults. A change is audited with what it was and what it became.
use serde_json::json;
use steward_db::settings::{self, CHECK_ALLOWED_NETWORKS, REQUIRE_TOTP};
use steward_proto::Settings;

use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

/// Stores the settings the caller chose (`networks`: `None` leaves the list as it is) over
/// `before`, as one audited change. The caller checked `settings.manage` and the input.
pub async fn update(
    st: &Services,
    p: &Principal,
    before: &Settings,
    require_totp: bool,
    networks: Option<&[String]>,
) -> ServiceResult<()> {
    let now = st.now_ms();
    let org = &p.user.org_id;
    let mut tx = st.db.begin().await?;
    settings::set(
        &mut *tx,
        org,
        REQUIRE_TOTP,
        if require_totp { "true" } else { "false" },
        &p.user.id,
        now,
    )
    .await?;
    let mut changes =
        json!({ "require_totp": { "from": before.require_totp, "to": require_totp } });
    if let Some(networks) = networks {
        let text = serde_json::to_string(networks).map_err(ServiceError::internal)?;
        settings::set(
            &mut *tx,
            org,
            CHECK_ALLOWED_NETWORKS,
            &text,
            &p.user.id,
            now,
        )
        .await?;
        if networks != before.check_allowed_networks.as_slice() {
            changes["check_allowed_networks"] =
                json!({ "from": before.check_allowed_networks, "to": networks });
        }
    }
    Event::by(p, "settings.update", now)
        .target("settings", org, "organization")
        .details(changes)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
