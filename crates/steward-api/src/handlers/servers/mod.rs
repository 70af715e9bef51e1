//! The server inventory. A server the caller may not read answers 404, exactly like one that
//! does not exist.
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use steward_core::Permission;
use steward_core::validate::Tag;
use steward_db::servers::{self, ServerFilter, ServerRow, SortKey};
use steward_proto::{
    AuthMethod, ConfirmEndpointRequest, CredentialKind, EndpointChange, ErrorBody, Monitoring,
    Server, ServerInput, ServerPage, ServerQuery, TagCount,
};
use steward_services::servers::{self as service, ServerError};

use super::{step_up, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, clean_query_text};
use crate::state::AppState;

mod endpoint;
mod read;
mod write;

pub use endpoint::{__path_confirm_endpoint, confirm_endpoint};
pub use read::{__path_get, __path_list, __path_tag_list, get, list, tag_list};
pub use write::{__path_create, __path_delete, __path_update, create, delete, update};

pub(crate) fn view(r: ServerRow) -> Server {
    Server {
        port: u16::try_from(r.port).unwrap_or(22),
        auth_method: AuthMethod::parse(&r.auth_method).unwrap_or(AuthMethod::Key),
        credential_kind: r.credential_kind.as_deref().and_then(CredentialKind::parse),
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        id: r.id,
        name: r.name,
        host: r.host,
        ssh_user: r.ssh_user,
        tags: r.tags,
        notes: r.notes,
        jump_server_id: r.jump_server_id,
        monitoring: Monitoring::parse(&r.monitoring).unwrap_or(Monitoring::Agentless),
        metrics_interval_secs: r.metrics_interval_secs,
        endpoint_change: r.endpoint_changed_at.map(|at| EndpointChange {
            changed_at: time(at),
            changed_by: r.endpoint_changed_by.clone(),
            previous: r
                .endpoint_previous
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
        }),
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::Service(e) => e.into(),
            ServerError::FieldForbidden { field, message } => {
                ApiError::forbidden(message).with_details(json!({ "field": field }))
            }
        }
    }
}

/// Loads a server the caller may see, or 404.
pub(crate) async fn visible(st: &AppState, p: &Principal, id: &str) -> ApiResult<ServerRow> {
    Ok(steward_services::fleet::visible_server(st, p, id).await?)
}
