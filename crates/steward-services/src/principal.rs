//! Who is calling: the [`Principal`] (an account, what its roles allow, how it
//! authenticated) and the [`ClientInfo`] it calls from. The API's extractors build them from
//! a request; services take them to decide and to audit.
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use steward_core::{Authz, Grant, Permission, Scope};
use steward_db::Db;
use steward_db::roles::{self, RoleRow};
use steward_db::users::UserRow;

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
