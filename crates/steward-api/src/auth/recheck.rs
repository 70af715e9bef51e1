//! Re-checking the caller of a long-lived connection (the live-metrics socket, a web terminal):
//! the [`Principal`] extractor decides once, at the upgrade, so these connections ask again on
//! a timer whether the session or API token, the account and the roles still allow them.
use steward_db::{api_tokens, sessions, users};

use super::Principal;
use super::principal::{AuthMethod, load_authz, org_requires_totp, token_permissions};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The caller as the database sees them now: `Ok(None)` when the session has ended (logout,
/// revocation, expiry), the API token is revoked or expired, the account is disabled or gone,
/// or (for a session) it must first set up 2FA or change its password; otherwise the principal with its user, roles and permissions re-read (an API token's
/// permission list applied again) and a session's step-up time refreshed. The client facts
/// and the 2FA requirement are carried over from `p`.
///
/// An error means the question could not be answered (the database failed), not that access
/// was withdrawn: each caller decides whether to end the connection or ask again later.
pub(crate) async fn revalidate(st: &AppState, p: &Principal) -> ApiResult<Option<Principal>> {
    let now = st.now_ms();
    let pool = &st.db.pool;
    let mut step_up_at = None;
    let restrict = match &p.method {
        AuthMethod::Session { session_id } => {
            let Some(s) = sessions::get(pool, session_id).await? else {
                return Ok(None);
            };
            if s.revoked_at.is_some() || s.expires_at <= now || s.user_id != p.user.id {
                return Ok(None);
            }
            step_up_at = s.step_up_at;
            None
        }
        AuthMethod::ApiToken { token_id } => {
            let Some(t) = api_tokens::get_for_user(pool, &p.user.id, token_id).await? else {
                return Ok(None);
            };
            if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
                return Ok(None);
            }
            Some(token_permissions(&t.permissions).map_err(ApiError::internal)?)
        }
    };
    let Some(user) = users::get(pool, &p.user.org_id, &p.user.id).await? else {
        return Ok(None);
    };
    if user.disabled_at.is_some() {
        return Ok(None);
    }
    let (roles, authz) = load_authz(&st.db, &user.id).await?;
    let authz = match &restrict {
        Some(allowed) => authz.restrict_to(allowed),
        None => authz,
    };
    let totp_required = user.require_totp != 0 || org_requires_totp(&st.db, &user.org_id).await?;
    let fresh = Principal {
        user,
        roles,
        authz,
        step_up_at,
        totp_required,
        ..p.clone()
    };
    // As the `Principal` extractor refuses it: a session whose account must first set up 2FA
    // (newly required) or change its password (reset by an administrator).
    if fresh.session_id().is_some()
        && (fresh.totp_setup_required() || fresh.password_change_required())
    {
        return Ok(None);
    }
    Ok(Some(fresh))
}
