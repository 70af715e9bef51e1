//! Who is calling: the [`Principal`] (an account, what its roles allow, how it
//! authenticated) and the [`ClientInfo`] it calls from. The API's extractors build them from
//! a request; services take them to decide and to audit.
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use steward_core::{Authz, Grant, Permission, Scope};
use steward_db::roles::{self, RoleRow};
use steward_db::users::UserRow;
use steward_db::{Db, api_tokens, sessions, users};

use crate::Services;
use crate::error::{ServiceError, ServiceResult};

/// Who is calling from where, for the audit log and throttling.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address (behind a trusted proxy: the forwarded one).
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl ClientInfo {
    /// The address as text, or `unknown`.
    pub fn ip_string(&self) -> String {
        self.ip
            .map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// How the request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A login session (bearer access token or cookie).
    Session { session_id: String },
    /// A personal API token.
    ApiToken { token_id: String },
}

/// An authenticated caller whose account has nothing pending (2FA set-up, password change).
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRow,
    pub roles: Vec<RoleRow>,
    pub authz: Authz,
    pub method: AuthMethod,
    pub client: ClientInfo,
    /// 2FA is required for this account (by policy or by an administrator).
    pub totp_required: bool,
    /// When the session last re-proved its user (never for API tokens).
    pub step_up_at: Option<i64>,
}

impl Principal {
    /// Whether a required second factor still has to be set up.
    pub fn totp_setup_required(&self) -> bool {
        self.totp_required && self.user.totp_enabled_at.is_none()
    }

    /// Whether an administrator reset the password and a new one must be chosen.
    pub fn password_change_required(&self) -> bool {
        self.user.must_change_password != 0
    }

    /// The session, if the caller logged in (rather than using an API token).
    pub fn session_id(&self) -> Option<&str> {
        match &self.method {
            AuthMethod::Session { session_id } => Some(session_id),
            AuthMethod::ApiToken { .. } => None,
        }
    }

    /// Whether the caller is a personal API token.
    pub fn is_api_token(&self) -> bool {
        matches!(self.method, AuthMethod::ApiToken { .. })
    }

    /// Access to something the caller owns (their runs, terminal sessions and recordings): a
    /// login session has it by ownership alone; an API token only when its own permissions
    /// include `permission` (the one that made the thing: `scripts.run` for runs,
    /// `terminal.open` for terminals). A token narrowed to reading servers does not reach its
    /// owner's recordings or runs.
    pub fn owns(&self, owner_id: Option<&str>, permission: Permission) -> bool {
        owner_id == Some(self.user.id.as_str())
            && (!self.is_api_token() || self.authz.has(permission))
    }

    /// Fails with 403 unless the permission is held (anywhere, for server-scoped ones).
    pub fn require(&self, permission: Permission) -> ServiceResult<()> {
        if self.authz.has(permission) {
            Ok(())
        } else {
            Err(ServiceError::forbidden(format!(
                "this needs the {permission} permission"
            )))
        }
    }

    /// Fails with 403 `step_up_required` unless the session re-proved its user (password or
    /// TOTP code, `POST /auth/step-up`) within the configured window.
    pub fn require_step_up(&self, now_ms: i64, window: Duration, what: &str) -> ServiceResult<()> {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        match self.step_up_at {
            Some(t) if now_ms.saturating_sub(t) <= window => Ok(()),
            _ => Err(ServiceError::Forbidden {
                code: "step_up_required",
                message: format!("{what} needs your password or an authentication code again"),
            }),
        }
    }

    /// Managing an account (editing it, resetting its password or 2FA, deleting it, ending its
    /// sessions, revoking its API tokens or its terminals) is as good as taking it over:
    /// allowed only over accounts whose every role the caller covers (no more than the caller
    /// holds). 403 otherwise.
    pub fn require_covers(&self, username: &str, roles: &[RoleRow]) -> ServiceResult<()> {
        for role in roles {
            if !self.authz.covers(&grant_of(role)?) {
                return Err(ServiceError::forbidden(format!(
                    "{username} holds the role {}, which grants more than you hold",
                    role.name
                )));
            }
        }
        Ok(())
    }

    /// Whether a server with these tags is visible to the caller.
    pub fn can_see_server(&self, tags: &[String]) -> bool {
        self.authz.can_on_server(Permission::ServersRead, tags)
    }

    /// For an action on an existing server: 404 if the caller cannot see it (so its existence
    /// is not revealed), 403 if they can see it but lack `permission` on it.
    pub fn require_on_server(&self, permission: Permission, tags: &[String]) -> ServiceResult<()> {
        if !self.can_see_server(tags) {
            return Err(ServiceError::not_found("server"));
        }
        if !self.authz.can_on_server(permission, tags) {
            return Err(ServiceError::forbidden(format!(
                "this needs the {permission} permission on this server"
            )));
        }
        Ok(())
    }

    /// Tags that limit which servers are visible: `None` for all servers.
    pub fn visible_tags(&self) -> Option<BTreeSet<String>> {
        match self.authz.scope_of(Permission::ServersRead) {
            Some(Scope::All) => None,
            Some(Scope::Tags(t)) => Some(t),
            None => Some(BTreeSet::new()),
        }
    }
}

/// Turns a stored role into the grant it gives.
pub fn grant_of(role: &RoleRow) -> ServiceResult<Grant> {
    let names: Vec<String> =
        serde_json::from_str(&role.permissions).map_err(ServiceError::internal)?;
    let permissions = names
        .iter()
        .filter_map(|n| n.parse::<Permission>().ok())
        .collect();
    let scope = match &role.server_tags {
        None => Scope::All,
        Some(json) => Scope::Tags(
            serde_json::from_str::<BTreeSet<String>>(json).map_err(ServiceError::internal)?,
        ),
    };
    Ok(Grant { permissions, scope })
}

/// Loads an account's roles and the decisions they allow.
pub async fn load_authz(db: &Db, user_id: &str) -> ServiceResult<(Vec<RoleRow>, Authz)> {
    let roles = roles::for_user(&db.pool, user_id).await?;
    let grants = roles
        .iter()
        .map(grant_of)
        .collect::<ServiceResult<Vec<_>>>()?;
    Ok((roles, Authz::new(grants)))
}

/// The permissions an API token is limited to, from its stored JSON list (names this version
/// does not know are skipped).
pub fn token_permissions(json: &str) -> serde_json::Result<BTreeSet<Permission>> {
    Ok(serde_json::from_str::<Vec<String>>(json)?
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Whether the organization requires 2FA of everyone.
pub async fn org_requires_totp(db: &Db, org_id: &str) -> ServiceResult<bool> {
    let value =
        steward_db::settings::get(&db.pool, org_id, steward_db::settings::REQUIRE_TOTP).await?;
    Ok(value.as_deref() == Some("true"))
}

/// Re-checking the caller of a long-lived connection (the live-metrics socket, a web
/// terminal, a run stream): the API decides once, at the upgrade, so these connections ask
/// again on a timer whether the session or API token, the account and the roles still allow
/// them.
/// The caller as the database sees them now: `Ok(None)` when the session has ended (logout,
/// revocation, expiry), the API token is revoked or expired, the account is disabled or gone,
/// or (for a session) it must first set up 2FA or change its password; otherwise the principal with its user, roles and permissions re-read (an API token's
/// permission list applied again) and a session's step-up time refreshed. The client facts
/// and the 2FA requirement are carried over from `p`.
///
/// An error means the question could not be answered (the database failed), not that access
/// was withdrawn: each caller decides whether to end the connection or ask again later.
pub async fn revalidate(st: &Services, p: &Principal) -> ServiceResult<Option<Principal>> {
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
            Some(token_permissions(&t.permissions).map_err(ServiceError::internal)?)
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
