//! Starting a run: checks, step-up, the stored run and its audit event, then the runner.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use steward_core::{Permission, Scope};
use steward_db::executions::{self, ExecutionRow};
use steward_proto::{ErrorBody, ExecutionDetail, ExecutionRequest, ScriptParameter, Shell};

use super::request::{parameter_values, script_changed, targets};
use super::{MAX_COMMAND, STEP_UP_ABOVE, execution_view, invalid};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::handlers::scripts::{load as load_script, owner_scope};
use crate::handlers::{step_up, tags};
use crate::state::AppState;
use steward_services::audit::{Event, Outcome};
use steward_services::fleet::Actor;
use steward_services::runner::{self, Plan, host_view, shell_quote, summarize};

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
        let check = step_up::require(&st, &p, req.step_up.as_ref(), what).await;
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
    let secrets: Vec<(&str, &str)> = secret_names
        .iter()
        .filter_map(|n| values.get(n).map(|v| (n.as_str(), v.as_str())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    runner::record_start(
        &st,
        runner::NewRun {
            row: &row,
            hosts: &host_list,
            secrets: &secrets,
            reviewed: script
                .as_ref()
                .map(|s| (p.user.id.as_str(), s.id.as_str(), s.version)),
        },
        event,
    )
    .await?;

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
