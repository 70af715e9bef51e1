//! Personal API tokens: issuing (shown once, stored as a hash), listing and revoking, each change audited in its transaction.
use serde_json::json;
use steward_core::ValidationError;
use steward_core::validate::Name;
use steward_db::api_tokens::{self, ApiTokenRow};
use steward_proto::CreateApiTokenRequest;

use crate::Services;
use crate::audit::Event;
use crate::auth::tokens;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

/// A token just issued: its secret, which is never stored or shown again, and its row.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub row: ApiTokenRow,
}

/// Issues a token to the caller (a login session; the caller checks that) with a subset of
/// the permissions they hold, expiring after 1 to 3650 days or never.
pub async fn create(
    st: &Services,
    p: &Principal,
    req: &CreateApiTokenRequest,
) -> ServiceResult<Issued> {
    let now = st.now_ms();
    let name = Name::parse(&req.name)?.into_inner();
    if req.permissions.is_empty() {
        return Err(
            ValidationError::new("permissions", "must name at least one permission").into(),
        );
    }
    if let Some(perm) = req
        .permissions
        .iter()
        .find(|perm| p.authz.scope_of(**perm).is_none())
    {
        return Err(ServiceError::forbidden(format!(
            "you do not hold {perm}, so a token cannot have it"
        )));
    }
    let expires_at = match req.expires_in_days {
        None => None,
        Some(d) if (1..=3650).contains(&d) => Some(now + d * 86_400_000),
        Some(_) => {
            return Err(
                ValidationError::new("expires_in_days", "must be between 1 and 3650").into(),
            );
        }
    };
    let mut names: Vec<&str> = req.permissions.iter().map(|p| p.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let token = tokens::new_api_token();
    let row = ApiTokenRow {
        id: steward_db::new_id(),
        org_id: p.user.org_id.clone(),
        user_id: p.user.id.clone(),
        name,
        token_prefix: token.chars().take(12).collect(),
        permissions: serde_json::to_string(&names).map_err(ServiceError::internal)?,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = st.db.begin().await?;
    api_tokens::insert(&mut *tx, &row, &tokens::hash_token(&token)).await?;
    Event::by(p, "api_token.create", now)
        .target("api_token", &row.id, &row.name)
        .details(json!({ "permissions": names, "expires_at": expires_at }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Issued { token, row })
}

/// Revokes one of the caller's own tokens (404 for another's or an unknown one).
pub async fn revoke(st: &Services, p: &Principal, id: &str) -> ServiceResult<()> {
    let now = st.now_ms();
    let row = api_tokens::get_for_user(&st.db.pool, &p.user.id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("API token"))?;
    let mut tx = st.db.begin().await?;
    api_tokens::revoke(&mut *tx, &row.id, now).await?;
    Event::by(p, "api_token.revoke", now)
        .target("api_token", &row.id, &row.name)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
