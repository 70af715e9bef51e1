//! The server inventory: creating, changing and deleting servers, with what an endpoint change does to their trust, each change audited in its transaction.
//!
//! A server the caller may not read is `NotFound`, exactly like one that does not exist. Tags
//! decide which roles reach a server, so a writer limited to some tags may only add or remove
//! tags inside that scope; a changed endpoint (host, port, SSH user, jump server) is where a
//! credential would be sent next, so only a `credentials.write` holder who stepped up keeps the
//! trust attached ([`endpoint`]).
use std::collections::BTreeSet;

use steward_core::validate::{Host, Name, Notes, SshUser, Tag, parse_port};
use steward_core::{Permission, Scope, ValidationError};
use steward_db::DbError;
use steward_db::servers::{self, ServerRow};
use steward_proto::{AuthMethod, Endpoint, Monitoring, ServerInput};

use crate::Services;
use crate::error::ServiceError;
use crate::principal::Principal;

pub mod endpoint;
mod write;

pub use endpoint::{EndpointDecision, confirm_endpoint};
pub use write::{create, delete, update};

/// Why a server could not be created or changed: a [`ServiceError`], or a refusal about what
/// one field of the definition asks for (403 whose details name the field).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The caller may not ask for this value of `field` (tags outside their scope, a jump
    /// server they may not route through).
    #[error("{message}")]
    FieldForbidden {
        field: &'static str,
        message: String,
    },
}

/// A server change's result.
pub type ServerResult<T> = Result<T, ServerError>;

impl From<DbError> for ServerError {
    fn from(e: DbError) -> Self {
        Self::Service(e.into())
    }
}

impl From<sqlx::Error> for ServerError {
    fn from(e: sqlx::Error) -> Self {
        Self::Service(e.into())
    }
}

impl From<ValidationError> for ServerError {
    fn from(e: ValidationError) -> Self {
        Self::Service(e.into())
    }
}

/// Where a stored server connects.
pub fn endpoint_of(r: &ServerRow) -> Endpoint {
    Endpoint {
        host: r.host.clone(),
        port: u16::try_from(r.port).unwrap_or(22),
        ssh_user: r.ssh_user.clone(),
        jump_server_id: r.jump_server_id.clone(),
    }
}

/// Validates a server definition into a row (id and times filled by the caller).
pub fn parse_input(req: &ServerInput, org_id: &str) -> Result<ServerRow, ValidationError> {
    Ok(ServerRow {
        id: String::new(),
        org_id: org_id.to_string(),
        name: Name::parse(&req.name)?.into_inner(),
        host: Host::parse(&req.host)?.into_inner(),
        port: i64::from(parse_port("port", req.port.unwrap_or(22))?),
        ssh_user: SshUser::parse(&req.ssh_user)?.into_inner(),
        auth_method: req
            .auth_method
            .unwrap_or(AuthMethod::Key)
            .as_str()
            .to_string(),
        notes: Notes::parse(&req.notes)?.into_inner(),
        created_by: None,
        created_at: 0,
        updated_at: 0,
        credential_kind: None,
        jump_server_id: None,
        monitoring: req
            .monitoring
            .unwrap_or(Monitoring::Agentless)
            .as_str()
            .to_string(),
        metrics_interval_secs: match req.metrics_interval_secs {
            None => 10,
            Some(n) if (1..=3600).contains(&n) => n,
            Some(_) => {
                return Err(ValidationError::new(
                    "metrics_interval_secs",
                    "must be 1 to 3600 seconds",
                ));
            }
        },
        endpoint_changed_at: None,
        endpoint_changed_by: None,
        endpoint_previous: None,
        tags: Tag::parse_set("tags", &req.tags)?.into_iter().collect(),
    })
}

/// Checks the requested jump server: one the caller can see, not the server itself, and
/// reached directly (one hop, like `ssh -J` with a single bastion).
async fn check_jump(
    st: &Services,
    p: &Principal,
    req: &ServerInput,
    this_id: Option<&str>,
) -> ServerResult<Option<String>> {
    let Some(id) = req
        .jump_server_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let invalid = |why: &str| ServerError::from(ValidationError::new("jump_server_id", why));
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid("is not a server id"));
    }
    if Some(id) == this_id {
        return Err(invalid("cannot be the server itself"));
    }
    let jump = match servers::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(s) if p.can_see_server(&s.tags) => s,
        _ => return Err(invalid("is not a server you can see")),
    };
    // Routing through a server uses its credential: setting it needs what setting the
    // target's endpoint needs, on the jump server too (each action through it is checked
    // again when it connects, see `fleet::connect`).
    if !p.authz.can_on_server(Permission::ServersWrite, &jump.tags) {
        return Err(ServerError::FieldForbidden {
            field: "jump_server_id",
            message: "routing through a server needs the servers.write permission on that server"
                .into(),
        });
    }
    if jump.jump_server_id.is_some() {
        return Err(invalid(
            "is itself reached through a jump server; use that one",
        ));
    }
    if let Some(this) = this_id
        && servers::jumping_through(&st.db.pool, this).await? > 0
    {
        return Err(invalid(
            "cannot be set on a server other servers jump through",
        ));
    }
    Ok(Some(jump.id))
}

/// Tags decide which roles reach a server. A caller whose write access is itself limited to
/// tags may put tags on a server, or take them off, only within that scope: otherwise they could
/// hand a server to (or take it from) another group, including through a tag no role uses yet
/// but someone's run or a future role will select.
fn check_scope_tags(p: &Principal, changed: &BTreeSet<String>) -> ServerResult<()> {
    let Some(Scope::Tags(mine)) = p.authz.scope_of(Permission::ServersWrite) else {
        return Ok(());
    };
    let outside: Vec<&str> = changed
        .iter()
        .filter(|t| !mine.contains(*t))
        .map(String::as_str)
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(ServerError::FieldForbidden {
        field: "tags",
        message: format!(
            "your role may only add or remove the tags it covers ({}), not {}",
            mine.iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            outside.join(", ")
        ),
    })
}

/// The new tags must stay within what the caller's `servers.write` covers.
fn check_covered(p: &Principal, row: &ServerRow, message: &str) -> ServerResult<()> {
    if p.authz.can_on_server(Permission::ServersWrite, &row.tags) {
        return Ok(());
    }
    Err(ServerError::FieldForbidden {
        field: "tags",
        message: message.into(),
    })
}
