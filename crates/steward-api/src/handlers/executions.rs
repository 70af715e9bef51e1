//! Runs of saved scripts or ad-hoc commands across servers: start, watch live, cancel, and
//! the history. Running needs `scripts.run` on every target server, inside the script's
//! owner tags; an ad-hoc command, a run on more than ten servers, or a script version the
//! caller neither wrote nor ran before needs a step-up, and is audited with the full text. A
//! run names the script version its starter reviewed; a newer one refuses the run. Servers
//! whose endpoint change is unconfirmed are refused by id and left out of tags.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_core::validate::Tag;
use steward_core::{Permission, Scope, ValidationError};
use steward_db::executions::{self, ExecutionFilter, ExecutionRow};
use steward_db::servers::{self, ServerFilter, ServerRow, SortKey};
use steward_proto::{
    ErrorBody, Execution, ExecutionDetail, ExecutionEvent, ExecutionPage, ExecutionQuery,
    ExecutionRequest, ExecutionSummary, ScriptParameter, Shell,
};

use super::scripts::{check_value, load as load_script, owner_scope};
use super::{opt_time, tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::fleet::Actor;
use steward_services::runner::{self, Plan, host_view, seq_of, shell_quote, summarize};

/// Runs on more servers than this need a step-up.
pub const STEP_UP_ABOVE: usize = 10;
/// Most servers one run may target.
pub const MAX_TARGETS: usize = 5000;
/// Longest ad-hoc command.
pub const MAX_COMMAND: usize = 64 * 1024;

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ApiError {
    ValidationError::new(field, why).into()
}

pub(crate) fn execution_view(r: &ExecutionRow) -> Execution {
    let running = if r.status == "running" {
        r.hosts_total
            - r.hosts_ok
            - r.hosts_failed
            - r.hosts_timed_out
            - r.hosts_error
            - r.hosts_cancelled
    } else {
        0
    };
    Execution {
        id: r.id.clone(),
        script_id: r.script_id.clone(),
        script_name: r.script_name.clone(),
        script_version: r.script_version,
        command: r.command.clone(),
        shell: Shell::parse(&r.shell).unwrap_or_default(),
        parameters: serde_json::from_str(&r.parameters).unwrap_or_default(),
        created_by: r.created_by_name.clone(),
        created_at: time(r.created_at),
        finished_at: opt_time(r.finished_at),
        status: r.status.clone(),
        timeout_secs: r.timeout_secs,
        concurrency: r.concurrency,
        stop_on_failure: r.stop_on_failure != 0,
        cancelled_by: r.cancelled_by_name.clone(),
        summary: ExecutionSummary {
            total: r.hosts_total,
            ok: r.hosts_ok,
            failed: r.hosts_failed,
            timed_out: r.hosts_timed_out,
            error: r.hosts_error,
            cancelled: r.hosts_cancelled,
            running,
        },
    }
}

/// Whether the caller may see everyone's runs (auditors and administrators).
fn sees_all(p: &Principal) -> bool {
    p.authz.has(Permission::AuditRead)
}

/// A run the caller may see: their own (for an API token, only if the token may run
/// scripts), or any for those who see all. Others answer 404.
async fn visible(st: &AppState, p: &Principal, id: &str) -> ApiResult<ExecutionRow> {
    match executions::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(r) if sees_all(p) || p.owns(r.created_by.as_deref(), Permission::ScriptsRun) => Ok(r),
        _ => Err(ApiError::not_found("execution")),
    }
}

/// The servers a request names, each one the caller may run on and inside `within` (the
/// script's owner tags). Named servers outside it, or whose endpoint change is unconfirmed,
/// refuse the run; a tag leaves such servers out.
async fn targets(
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
        let server = super::servers::visible(st, p, id)
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
fn parameter_values(
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
async fn script_changed(
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

/// Starts a run. Answers at once with the run (hosts pending); follow it on the stream.
#[utoipa::path(post, operation_id = "executions_create", path = "/api/v1/executions", tag = tags::SCRIPTS, request_body = ExecutionRequest,
    responses((status = 201, body = ExecutionDetail), (status = 403, body = ErrorBody, description = "no permission, `step_up_required` / `step_up_failed`, `outside_script_scope` or `jump_forbidden`"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`script_changed`: the script is no longer at `script_version`. `details` has `version` (now), `your_version`, `changed_by`, `changed_at`, `shell_changed`, `shell_before`, `shell`, `parameters_changed`, `parameters_diff` (unified diff of the definitions, one JSON object per line) and `diff` (unified diff of the body). `endpoint_unconfirmed`: a named server's endpoint changed and waits for confirmation."),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<ExecutionRequest>,
) -> ApiResult<(StatusCode, Json<ExecutionDetail>)> {
    p.require(Permission::ScriptsRun)?;
    let timeout = req.timeout_secs.unwrap_or(300);
    if !(1..=86_400).contains(&timeout) {
        return Err(invalid("timeout_secs", "must be 1 to 86400 seconds"));
    }
    let concurrency = req.concurrency.unwrap_or(10);
    if !(1..=200).contains(&concurrency) {
        return Err(invalid("concurrency", "must be 1 to 200"));
    }
    // What runs.
    let (script, body, shell, values) = match (&req.script_id, &req.command) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "script_id",
                "give either script_id or command, not both",
            ));
        }
        (Some(id), None) => {
            if uuid::Uuid::parse_str(id.trim()).is_err() {
                return Err(ApiError::not_found("script"));
            }
            if req.shell.is_some() {
                return Err(invalid("shell", "a saved script has its own shell"));
            }
            let script = load_script(&st, &p, id.trim()).await?;
            let Some(seen) = req.script_version else {
                return Err(invalid(
                    "script_version",
                    "give the version of the script you reviewed",
                ));
            };
            if seen != script.version {
                return Err(script_changed(&st, &script, seen).await?);
            }
            let defs: Vec<ScriptParameter> =
                serde_json::from_str(&script.parameters).map_err(ApiError::internal)?;
            let values = parameter_values(&defs, &req.parameters)?;
            let shell = Shell::parse(&script.shell).unwrap_or_default();
            let body = script.body.clone();
            (Some((script, defs)), body, shell, values)
        }
        (None, Some(command)) => {
            if req.script_version.is_some() {
                return Err(invalid(
                    "script_version",
                    "only a saved script has versions",
                ));
            }
            if command.trim().is_empty() {
                return Err(invalid("command", "must not be empty"));
            }
            if command.len() > MAX_COMMAND {
                return Err(invalid("command", "is longer than 64 KiB"));
            }
            if command.contains('\0') {
                return Err(invalid("command", "must not contain NUL characters"));
            }
            if !req.parameters.is_empty() {
                return Err(invalid(
                    "parameters",
                    "an ad-hoc command takes no parameters",
                ));
            }
            (
                None,
                command.clone(),
                req.shell.unwrap_or_default(),
                BTreeMap::new(),
            )
        }
    };
    let within = match &script {
        Some((s, _)) => owner_scope(s)?,
        None => Scope::All,
    };
    let servers = targets(&st, &p, &req, &within).await?;
    let secret_names: BTreeSet<String> = script
        .iter()
        .flat_map(|(_, defs)| defs.iter())
        .filter(|d| d.kind == steward_proto::ParameterType::Secret)
        .map(|d| d.name.clone())
        .collect();
    // What the run record, its details and the audit log show: secret values as `***`.
    let shown: BTreeMap<&str, &str> = values
        .iter()
        .map(|(k, v)| {
            let v = if secret_names.contains(k) && !v.is_empty() {
                "***"
            } else {
                v.as_str()
            };
            (k.as_str(), v)
        })
        .collect();

    // Step-up for ad-hoc commands, wide runs, and script versions the caller has not reviewed.
    let unreviewed = match &script {
        Some((s, _)) => {
            !steward_db::scripts::reviewed(&st.db.pool, &p.user.id, &s.id, s.version).await?
        }
        None => false,
    };
    if script.is_none() || servers.len() > STEP_UP_ABOVE || unreviewed {
        let what = if script.is_none() {
            "an ad-hoc command"
        } else if servers.len() > STEP_UP_ABOVE {
            "a run on more than 10 servers"
        } else {
            "running a script version you have not run before"
        };
        let check = super::step_up::require(&st, &p, req.step_up.as_ref(), what).await;
        if let Err(e) = check {
            Event::by(&p, "execution.start", st.now_ms())
                .outcome(Outcome::Denied)
                .details(json!({ "reason": "step-up required", "code": e.code, "command": body, "servers": servers.len() }))
                .write(&st.db.pool)
                .await?;
            return Err(e);
        }
    }

    let script = script.map(|(s, _)| s);
    let now = st.now_ms();
    // Parameters travel in the script's standard input (a runner shell's, or `sh -s`'s),
    // never on a command line, so no process listing on the server shows them.
    let mut input = String::new();
    for (name, value) in &values {
        input.push_str(&format!("{name}={}; export {name}\n", shell_quote(value)));
    }
    input.push_str(&body);
    if !input.ends_with('\n') {
        input.push('\n');
    }
    let row = ExecutionRow {
        id: steward_db::new_id(),
        org_id: p.user.org_id.clone(),
        script_id: script.as_ref().map(|s| s.id.clone()),
        script_name: script.as_ref().map(|s| s.name.clone()),
        script_version: script.as_ref().map(|s| s.version),
        command: body.to_string(),
        shell: shell.as_str().into(),
        parameters: serde_json::to_string(&shown).map_err(ApiError::internal)?,
        created_by: Some(p.user.id.clone()),
        created_by_name: p.user.username.clone(),
        created_at: now,
        finished_at: None,
        status: "running".into(),
        timeout_secs: timeout,
        concurrency,
        stop_on_failure: i64::from(req.stop_on_failure),
        cancelled_by_name: None,
        hosts_total: servers.len() as i64,
        hosts_ok: 0,
        hosts_failed: 0,
        hosts_timed_out: 0,
        hosts_error: 0,
        hosts_cancelled: 0,
    };
    let host_list: Vec<(String, String)> = servers
        .iter()
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let mut tx = st.db.begin().await?;
    executions::insert(&mut tx, &row, &host_list).await?;
    // Secret values are sealed in the vault for as long as the run goes (the runner holds
    // them in memory and forgets the sealed copies when it ends).
    let mut sealed = BTreeMap::new();
    for name in &secret_names {
        if let Some(value) = values.get(name).filter(|v| !v.is_empty()) {
            let id = steward_services::bootstrap::store_secret(
                &mut *tx,
                &st.vault,
                "script_parameter",
                value.as_bytes(),
                now,
            )
            .await
            .map_err(ApiError::internal)?;
            sealed.insert(name.to_string(), id);
        }
    }
    if !sealed.is_empty() {
        executions::set_secret_parameters(
            &mut *tx,
            &row.id,
            &serde_json::to_string(&sealed).map_err(ApiError::internal)?,
        )
        .await?;
    }
    if let Some(s) = &script {
        steward_db::scripts::record_review(&mut *tx, &p.user.id, &s.id, s.version, now).await?;
    }
    let names: Vec<&str> = servers.iter().take(100).map(|s| s.name.as_str()).collect();
    let mut event = Event::by(&p, "execution.start", now).details(json!({
        "execution_id": row.id,
        "command": body,
        "shell": row.shell,
        "parameters": shown,
        "servers": servers.len(),
        "server_names": names,
        "timeout_secs": timeout,
        "concurrency": concurrency,
        "stop_on_failure": req.stop_on_failure,
    }));
    if let Some(s) = &script {
        event = event
            .target("script", &s.id, &s.name)
            .details(json!({ "version": s.version }));
    } else {
        event = event.target("execution", &row.id, "ad-hoc command");
    }
    event.write(&mut *tx).await?;
    tx.commit().await?;

    let hosts = executions::hosts(&st.db.pool, &row.id).await?;
    let mut detail = ExecutionDetail {
        execution: execution_view(&row),
        hosts: hosts.iter().map(host_view).collect(),
        secret_parameters: secret_names.iter().cloned().collect(),
    };
    detail.execution.summary = summarize(&detail.hosts);
    runner::start(
        &st,
        Plan {
            detail: detail.clone(),
            org_id: p.user.org_id.clone(),
            servers,
            script: input,
            secrets: secret_names
                .iter()
                .filter_map(|n| values.get(n))
                .filter(|v| !v.is_empty())
                .cloned()
                .collect(),
            shell,
            timeout: Duration::from_secs(timeout as u64),
            concurrency: concurrency as usize,
            stop_on_failure: req.stop_on_failure,
            actor: Actor::user(&p, Permission::ScriptsRun),
        },
    );
    Ok((StatusCode::CREATED, Json(detail)))
}

/// A run with every host's outcome and output.
#[utoipa::path(get, operation_id = "executions_get", path = "/api/v1/executions/{id}", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 200, body = ExecutionDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<ExecutionDetail>> {
    let row = visible(&st, &p, &id).await?;
    if let Some(live) = st.executions.get(&row.id) {
        return Ok(Json(live.snapshot()));
    }
    Ok(Json(stored_detail(&st, &row).await?))
}

async fn stored_detail(st: &AppState, row: &ExecutionRow) -> ApiResult<ExecutionDetail> {
    let hosts = executions::hosts(&st.db.pool, &row.id).await?;
    let hosts: Vec<_> = hosts.iter().map(host_view).collect();
    let mut execution = execution_view(row);
    execution.summary = summarize(&hosts);
    // Which parameters were secret: from the definitions of the version that ran.
    let mut secret_parameters = Vec::new();
    if let (Some(script_id), Some(version)) = (&row.script_id, row.script_version)
        && let Some(v) = steward_db::scripts::version(&st.db.pool, script_id, version).await?
    {
        let defs: Vec<ScriptParameter> = serde_json::from_str(&v.parameters).unwrap_or_default();
        secret_parameters = defs
            .into_iter()
            .filter(|d| d.kind == steward_proto::ParameterType::Secret)
            .map(|d| d.name)
            .collect();
    }
    Ok(ExecutionDetail {
        execution,
        hosts,
        secret_parameters,
    })
}

/// The run history, newest first: your own runs, or everyone's with `audit.read`.
#[utoipa::path(get, operation_id = "executions_list", path = "/api/v1/executions", tag = tags::SCRIPTS, params(ExecutionQuery),
    responses((status = 200, body = ExecutionPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Json<ExecutionPage>> {
    if !p.authz.has(Permission::ScriptsRun) && !sees_all(&p) {
        return Err(ApiError::forbidden(
            "this needs the scripts.run or audit.read permission",
        ));
    }
    let q: ExecutionQuery = ApiQuery::from_uri(&uri)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 200",
        ));
    }
    if let Some(s) = &q.status
        && !["running", "finished", "cancelled", "interrupted"].contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "status must be running, finished, cancelled or interrupted",
        ));
    }
    for (name, v) in [("script_id", &q.script_id), ("server_id", &q.server_id)] {
        if let Some(v) = v
            && uuid::Uuid::parse_str(v).is_err()
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("{name} is not an id"),
            ));
        }
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| ApiError::bad_request("invalid_query", "cursor is not valid"))?,
        ),
    };
    let mine = q.mine.unwrap_or(false) || !sees_all(&p);
    let rows = executions::list(
        &st.db.pool,
        &ExecutionFilter {
            org_id: p.user.org_id.clone(),
            created_by: mine.then(|| p.user.id.clone()),
            status: q.status.clone(),
            script_id: q.script_id.clone(),
            server_id: q.server_id.clone(),
            before,
            limit: limit + 1,
        },
    )
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Execution> = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            let mut e = execution_view(r);
            if let Some(live) = st.executions.get(&r.id) {
                e.summary = live.snapshot().execution.summary;
            }
            e
        })
        .collect();
    let next_cursor = if more {
        rows.get(limit as usize - 1)
            .map(|r| format!("{}_{}", r.created_at, r.id))
    } else {
        None
    };
    Ok(Json(ExecutionPage { items, next_cursor }))
}

/// Cancels a run: hosts not started are cancelled, running commands are stopped.
#[utoipa::path(post, operation_id = "executions_cancel", path = "/api/v1/executions/{id}/cancel", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 202, body = ExecutionDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`not_running`")))]
pub async fn cancel(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<(StatusCode, Json<ExecutionDetail>)> {
    let row = visible(&st, &p, &id).await?;
    if !p.owns(row.created_by.as_deref(), Permission::ScriptsRun)
        && !p.authz.has(Permission::SettingsManage)
    {
        return Err(ApiError::forbidden(
            "only who started a run, or an administrator, can cancel it",
        ));
    }
    let Some(live) = st
        .executions
        .get(&row.id)
        .filter(|_| row.status == "running")
    else {
        return Err(ApiError::conflict("not_running", "the run is not running"));
    };
    if !live.cancel(&p.user.username) {
        return Err(ApiError::conflict("not_running", "the run is not running"));
    }
    Event::by(&p, "execution.cancel", st.now_ms())
        .target(
            "execution",
            &row.id,
            row.script_name.as_deref().unwrap_or("ad-hoc command"),
        )
        .write(&st.db.pool)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(live.snapshot())))
}

/// Live progress of a run over a WebSocket: a snapshot, then output and status messages as
/// JSON text frames (`ExecutionEvent`), ending with `finished`.
#[utoipa::path(get, operation_id = "executions_stream", path = "/api/v1/executions/{id}/stream", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 400, body = ErrorBody, description = "`websocket_required`"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stream(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let row = visible(&st, &p, &id).await?;
    crate::security::require_same_origin(&st, &headers)?;
    let ws = ws.map_err(|_| {
        ApiError::bad_request(
            "websocket_required",
            "this endpoint speaks WebSocket; send an upgrade request",
        )
    })?;
    let slot = st
        .sockets
        .acquire(&p.user.id, st.config.max_sockets_per_user)?;
    let stored = if st.executions.get(&row.id).is_some() {
        None
    } else {
        Some(stored_detail(&st, &row).await?)
    };
    // The client only ever sends a close: a 4 KiB read buffer (it grows if needed) instead of
    // the 128 KiB default, allocated and zeroed per follower.
    Ok(ws
        .max_message_size(64 * 1024)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            follow(st, p, row.id, stored, socket).await;
            drop(slot);
        })
        .into_response())
}

async fn send(socket: &mut WebSocket, event: &ExecutionEvent) -> bool {
    match serde_json::to_string(event) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

/// Whether the stream's caller may still follow the run, asked again as at the upgrade:
/// `Ok(false)` when the session or token has ended, the account is disabled, or the caller no
/// longer sees the run. An error means it could not be told.
async fn still_allowed(st: &AppState, p: &Principal, id: &str) -> ApiResult<bool> {
    let Some(fresh) = crate::auth::revalidate(st, p).await? else {
        return Ok(false);
    };
    match visible(st, &fresh, id).await {
        Ok(_) => Ok(true),
        Err(e) if e.status.is_client_error() => Ok(false),
        Err(e) => Err(e),
    }
}

async fn follow(
    st: AppState,
    p: Principal,
    id: String,
    stored: Option<ExecutionDetail>,
    mut socket: WebSocket,
) {
    let live = st.executions.get(&id);
    let Some(live) = live else {
        // Finished (or run by another instance): what is stored, then the end.
        if let Some(detail) = stored {
            let status = detail.execution.status.clone();
            let summary = detail.execution.summary.clone();
            if send(
                &mut socket,
                &ExecutionEvent::Snapshot {
                    seq: 0,
                    execution: detail,
                },
            )
            .await
            {
                let _ = send(
                    &mut socket,
                    &ExecutionEvent::Finished {
                        seq: 0,
                        status,
                        summary,
                    },
                )
                .await;
            }
        }
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let (mut seen, detail, finished, mut rx) = live.subscribe();
    if !send(
        &mut socket,
        &ExecutionEvent::Snapshot {
            seq: seen,
            execution: detail.clone(),
        },
    )
    .await
    {
        return;
    }
    if finished {
        let _ = send(
            &mut socket,
            &ExecutionEvent::Finished {
                seq: seen,
                status: detail.execution.status.clone(),
                summary: detail.execution.summary.clone(),
            },
        )
        .await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    // Like the live view and terminals: the caller is asked again now and then, so a disabled
    // account, an ended session or a lost permission stops the output (on every instance:
    // the answer comes from the database).
    let every = st.config.live_recheck.max(Duration::from_millis(10));
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = recheck.tick() => match still_allowed(&st, &p, &id).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = socket
                        .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                            code: 1008,
                            reason: "access_revoked".into(),
                        })))
                        .await;
                    return;
                }
                // Could not ask (the database failed): keep streaming, ask again later.
                Err(e) => tracing::warn!(error = %e.message, "re-checking a run stream's caller failed"),
            },
            msg = rx.recv() => match msg {
                Ok(event) => {
                    if seq_of(&event) <= seen {
                        continue;
                    }
                    seen = seq_of(&event);
                    if !send(&mut socket, &event).await {
                        return;
                    }
                    if matches!(*event, ExecutionEvent::Finished { .. }) {
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: start again from a fresh snapshot.
                    let (seq, detail, finished, fresh) = live.subscribe();
                    rx = fresh;
                    seen = seq;
                    let (status, summary) = (detail.execution.status.clone(), detail.execution.summary.clone());
                    if !send(&mut socket, &ExecutionEvent::Snapshot { seq, execution: detail }).await {
                        return;
                    }
                    if finished {
                        let _ = send(&mut socket, &ExecutionEvent::Finished { seq, status, summary }).await;
                        let _ = socket.send(Message::Close(None)).await;
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // The client only listens; it closing (or going away) ends the stream.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
