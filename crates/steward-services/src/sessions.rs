//! Login sessions: listing one's own or a user's, ending one, all others or all, each change audited in its transaction.
//! Whoever calls these is a login session (an API token can neither end sessions nor manage
//! tokens); the HTTP layer checks that.
use serde_json::json;
use steward_core::Permission;
use steward_db::users::UserRow;
use steward_db::{api_tokens, roles, sessions, users};

use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

/// Ends one of the caller's sessions (ending the current one is logging out); 404 if no live
/// session of the caller's has this id.
pub async fn revoke_own(st: &Services, p: &Principal, id: &str) -> ServiceResult<()> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    if !sessions::revoke_for_user(&mut *tx, &p.user.id, id, "revoked by the user", now).await? {
        return Err(ServiceError::not_found("session"));
    }
    Event::by(p, "session.revoke", now)
        .target("user", &p.user.id, &p.user.username)
        .details(json!({ "session_id": id }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of the caller except the current one; returns how many ended.
pub async fn revoke_others(st: &Services, p: &Principal) -> ServiceResult<u64> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    let revoked = sessions::revoke_all_for_user(
        &mut *tx,
        &p.user.id,
        p.session_id(),
        "revoked by the user",
        now,
    )
    .await?;
    Event::by(p, "session.revoke_all", now)
        .target("user", &p.user.id, &p.user.username)
        .details(json!({ "revoked": revoked, "kept_current": true }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// The user `id`, if the caller may manage their sessions and tokens: `users.manage` and
/// every role of theirs covered (as for editing them). 404 for an unknown user.
pub async fn managed(st: &Services, p: &Principal, id: &str) -> ServiceResult<UserRow> {
    p.require(Permission::UsersManage)?;
    let user = users::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("user"))?;
    let held = roles::for_user(&st.db.pool, &user.id).await?;
    p.require_covers(&user.username, &held)?;
    Ok(user)
}

/// Ends one of user `user_id`'s sessions (see [`managed`]); 404 if it has no live session
/// `session_id`.
pub async fn revoke_for_user(
    st: &Services,
    p: &Principal,
    user_id: &str,
    session_id: &str,
) -> ServiceResult<()> {
    let user = managed(st, p, user_id).await?;
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    let reason = format!("revoked by {}", p.user.username);
    if !sessions::revoke_for_user(&mut *tx, &user.id, session_id, &reason, now).await? {
        return Err(ServiceError::not_found("session"));
    }
    Event::by(p, "session.revoke", now)
        .target("user", &user.id, &user.username)
        .details(json!({ "session_id": session_id }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Ends every session of user `user_id` (see [`managed`]); on oneself it keeps the current
/// session. Returns how many ended.
pub async fn revoke_all_for_user(
    st: &Services,
    p: &Principal,
    user_id: &str,
) -> ServiceResult<u64> {
    let user = managed(st, p, user_id).await?;
    let now = st.now_ms();
    let keep = if user.id == p.user.id {
        p.session_id()
    } else {
        None
    };
    let mut tx = st.db.begin().await?;
    let reason = format!("revoked by {}", p.user.username);
    let revoked = sessions::revoke_all_for_user(&mut *tx, &user.id, keep, &reason, now).await?;
    Event::by(p, "session.revoke_all", now)
        .target("user", &user.id, &user.username)
        .details(json!({ "revoked": revoked, "kept_current": keep.is_some() }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Revokes one of user `user_id`'s API tokens (see [`managed`]); 404 for a token not theirs.
pub async fn revoke_token_for_user(
    st: &Services,
    p: &Principal,
    user_id: &str,
    token_id: &str,
) -> ServiceResult<()> {
    let user = managed(st, p, user_id).await?;
    let row = api_tokens::get_for_user(&st.db.pool, &user.id, token_id)
        .await?
        .ok_or_else(|| ServiceError::not_found("API token"))?;
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    let was_live = api_tokens::revoke(&mut *tx, &row.id, now).await?;
    Event::by(p, "api_token.revoke", now)
        .target("api_token", &row.id, &row.name)
        .details(json!({ "user": user.username, "user_id": user.id, "was_live": was_live }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
