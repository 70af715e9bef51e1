//! What a run request resolves to before it starts: the target servers, the parameter
//! values, and the refusal of a run that names an older version of its script.
use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::json;
use steward_core::validate::Tag;
use steward_core::{Permission, Scope};
use steward_db::servers::{self, ServerFilter, ServerRow, SortKey};
use steward_proto::{ExecutionRequest, ScriptParameter};

use super::{MAX_TARGETS, invalid};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::handlers::scripts::check_value;
use crate::handlers::time;
use crate::state::AppState;

/// The servers a request names, each one the caller may run on and inside `within` (the
/// script's owner tags). Named servers outside it, or whose endpoint change is unconfirmed,
/// refuse the run; a tag leaves such servers out.
pub(super) async fn targets(
    st: &AppState,
    p: &Principal,
    req: &ExecutionRequest,
    within: &Scope,
) -> ApiResult<Vec<ServerRow>> {
    let mut chosen: BTreeMap<String, ServerRow> = BTreeMap::new();
    let ids: BTreeSet<&str> = req.server_ids.iter().map(|s| s.trim()).collect();
    if ids.len() > MAX_TARGETS {
        return Err(invalid(
            "server_ids",
            format!("at most {MAX_TARGETS} servers"),
        ));
    }
    for id in ids {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(ApiError::not_found("server").with_details(json!({ "server_id": id })));
        }
        let server = crate::handlers::servers::visible(st, p, id)
            .await
            .map_err(|e| e.with_details(json!({ "server_id": id })))?;
        p.require_on_server(Permission::ScriptsRun, &server.tags)?;
        if !within.covers_server(&server.tags) {
            return Err(ApiError::forbidden(format!(
                "the script may not run on {}: it belongs to other tags",
                server.name
            ))
            .with_code("outside_script_scope")
            .with_details(json!({ "server_id": id })));
        }
        if server.endpoint_changed_at.is_some() {
            return Err(ApiError::conflict(
                "endpoint_unconfirmed",
                format!(
                    "the address, port, SSH user or jump server of {} changed; someone with credentials.write must confirm it first",
                    server.name
                ),
            )
            .with_details(json!({ "server_id": id })));
        }
        chosen.insert(server.id.clone(), server);
    }
    let tag_set = Tag::parse_set("tags", &req.tags)?;
    let visible = p.visible_tags();
    for tag in tag_set {
        let only = BTreeSet::from([tag.clone()]);
        let scope = match &visible {
            // Servers with this tag that also carry a tag the caller can see.
            Some(v) => v.clone(),
            None => only.clone(),
        };
        let (rows, _) = servers::list(
            &st.db.pool,
            &ServerFilter {
                org_id: &p.user.org_id,
                query: None,
                tags: std::slice::from_ref(&tag),
                visible_tags: Some(&scope),
                sort: SortKey::Name,
                descending: false,
                limit: MAX_TARGETS as i64 + 1,
                offset: 0,
            },
        )
        .await?;
        for server in rows {
            // A server in the group that the caller may see but not run on, that the script
            // may not run on, or whose new endpoint nobody confirmed, is left out.
            if p.authz.can_on_server(Permission::ScriptsRun, &server.tags)
                && within.covers_server(&server.tags)
                && server.endpoint_changed_at.is_none()
            {
                chosen.insert(server.id.clone(), server);
            }
        }
    }
    if chosen.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_targets",
            "no server you may run on matches the selection",
        ));
    }
    if chosen.len() > MAX_TARGETS {
        return Err(invalid("tags", format!("at most {MAX_TARGETS} servers")));
    }
    let mut servers: Vec<ServerRow> = chosen.into_values().collect();
    servers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(servers)
}

/// The values a script runs with: given ones checked, defaults filled in, required present.
pub(super) fn parameter_values(
    defs: &[ScriptParameter],
    given: &BTreeMap<String, serde_json::Value>,
) -> ApiResult<BTreeMap<String, String>> {
    for name in given.keys() {
        if !defs.iter().any(|d| &d.name == name) {
            return Err(invalid(
                format!("parameters.{name}"),
                "the script has no such parameter",
            ));
        }
    }
    let mut values = BTreeMap::new();
    for d in defs {
        let field = format!("parameters.{}", d.name);
        let value = match given.get(&d.name) {
            Some(serde_json::Value::Null) | None => {
                d.default.clone().map(serde_json::Value::String)
            }
            Some(v) => Some(v.clone()),
        };
        match value {
            Some(v) => {
                let text = check_value(d, &v, &field)?;
                if d.required && text.is_empty() {
                    return Err(invalid(field, "is required"));
                }
                values.insert(d.name.clone(), text);
            }
            None if d.required => return Err(invalid(field, "is required")),
            None => {
                values.insert(d.name.clone(), String::new());
            }
        }
    }
    Ok(values)
}

/// The refusal of a run that names an older version than the script's: who changed it, when,
/// and the difference since the named version.
pub(super) async fn script_changed(
    st: &AppState,
    script: &steward_db::scripts::ScriptRow,
    seen: i64,
) -> ApiResult<ApiError> {
    let old = steward_db::scripts::version(&st.db.pool, &script.id, seen).await?;
    let diff = old.as_ref().map(|o| {
        similar::TextDiff::from_lines(o.body.as_str(), script.body.as_str())
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("version {seen}"),
                &format!("version {}", script.version),
            )
            .to_string()
    });
    // The parameter definitions, one per line, diffed the same way.
    let definitions = |json: &str| -> String {
        serde_json::from_str::<Vec<ScriptParameter>>(json)
            .unwrap_or_default()
            .iter()
            .filter_map(|d| serde_json::to_string(d).ok())
            .map(|line| line + "\n")
            .collect()
    };
    let parameters_diff = old
        .as_ref()
        .filter(|o| o.parameters != script.parameters)
        .map(|o| {
            let (before, after) = (definitions(&o.parameters), definitions(&script.parameters));
            similar::TextDiff::from_lines(before.as_str(), after.as_str())
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("parameters of version {seen}"),
                    &format!("parameters of version {}", script.version),
                )
                .to_string()
        });
    Ok(ApiError::conflict(
        "script_changed",
        format!(
            "the script changed since version {seen}: it is at version {}, saved by {} at {}; review it and run again",
            script.version,
            script.updated_by.as_deref().unwrap_or("someone"),
            time(script.updated_at).to_rfc3339(),
        ),
    )
    .with_details(json!({
        "version": script.version,
        "your_version": seen,
        "changed_by": script.updated_by,
        "changed_at": time(script.updated_at),
        "shell_changed": old.as_ref().map(|o| o.shell != script.shell),
        "shell_before": old.as_ref().map(|o| o.shell.clone()),
        "shell": script.shell,
        "parameters_changed": old.as_ref().map(|o| o.parameters != script.parameters),
        "parameters_diff": parameters_diff,
        "diff": diff,
    })))
}
