//! The script library: shell scripts with typed parameters, every saved change kept as a
//! version, every change audited.
//!
//! A script belongs to the whole organization or to some tags (its owner). Reading needs
//! `scripts.run` or `scripts.write` somewhere the script may run; changing or deleting it
//! needs `scripts.write` on every server it may run on (`Authz::holds_on`), so a group's
//! writer cannot change what another group runs. Saving a new body (or shell, parameters or
//! owner) needs a step-up, and whoever saved it has reviewed it; anyone else must step up
//! before running that version (see `handlers::executions`).
use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::json;
use steward_core::validate::{Name, Tag};
use steward_core::{Permission, Scope, ValidationError};
use steward_db::scripts::{self, ScriptRow, ScriptVersionRow};
use steward_proto::{
    ErrorBody, ParameterType, Script, ScriptInput, ScriptParameter, ScriptQuery, ScriptVersion,
    Shell,
};

use super::{tags, time};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, IdPath, clean_query_text};
use crate::state::AppState;
use steward_services::audit::Event;

/// Longest script body.
pub const MAX_BODY: usize = 256 * 1024;
/// Most parameters a script may take.
pub const MAX_PARAMETERS: usize = 32;

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ApiError {
    ValidationError::new(field, why).into()
}

fn parameters_of(json: &str) -> ApiResult<Vec<ScriptParameter>> {
    serde_json::from_str(json).map_err(ApiError::internal)
}

pub(crate) fn view(r: ScriptRow, reviewed: bool) -> ApiResult<Script> {
    Ok(Script {
        owner_tags: owner_tags_of(r.owner_tags.as_deref())?,
        reviewed,
        parameters: parameters_of(&r.parameters)?,
        shell: Shell::parse(&r.shell).unwrap_or_default(),
        created_at: time(r.created_at),
        updated_at: time(r.updated_at),
        id: r.id,
        name: r.name,
        description: r.description,
        body: r.body,
        version: r.version,
        updated_by: r.updated_by,
    })
}

fn version_view(r: ScriptVersionRow) -> ApiResult<ScriptVersion> {
    Ok(ScriptVersion {
        parameters: parameters_of(&r.parameters)?,
        shell: Shell::parse(&r.shell).unwrap_or_default(),
        changed_at: time(r.changed_at),
        version: r.version,
        name: r.name,
        description: r.description,
        body: r.body,
        changed_by: r.changed_by_name,
    })
}

fn owner_tags_of(json: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    json.map(|j| serde_json::from_str(j).map_err(ApiError::internal))
        .transpose()
}

/// The servers a script may run on, from its stored owner.
pub(crate) fn owner_scope(r: &ScriptRow) -> ApiResult<Scope> {
    Ok(match owner_tags_of(r.owner_tags.as_deref())? {
        None => Scope::All,
        Some(tags) => Scope::Tags(tags.into_iter().collect()),
    })
}

/// Whether the caller may see a script: it may run somewhere they run or write scripts.
fn may_read(p: &Principal, scope: &Scope) -> bool {
    [Permission::ScriptsRun, Permission::ScriptsWrite]
        .into_iter()
        .any(|perm| {
            p.authz
                .scope_of(perm)
                .is_some_and(|mine| mine.overlaps(scope))
        })
}

/// Changing a script changes what runs on every server it may run on.
fn require_write(p: &Principal, scope: &Scope) -> ApiResult<()> {
    if p.authz.holds_on(Permission::ScriptsWrite, scope) {
        return Ok(());
    }
    Err(ApiError::forbidden(match scope {
        Scope::All => {
            "this script may run on every server; changing it needs scripts.write on every server"
                .to_string()
        }
        Scope::Tags(t) => format!(
            "this script belongs to the tags {}; changing it needs scripts.write covering them",
            t.iter().map(String::as_str).collect::<Vec<_>>().join(", ")
        ),
    })
    .with_code("script_not_yours"))
}

/// The owner a save asks for, as stored: `[]` for the whole organization; absent keeps
/// `current` (a save) or takes the caller's `scripts.write` scope (a new script).
fn requested_owner(
    p: &Principal,
    asked: Option<&Vec<String>>,
    current: Option<Option<String>>,
) -> ApiResult<Option<String>> {
    let tags = match (asked, current) {
        (Some(list), _) if list.is_empty() => return Ok(None),
        (Some(list), _) => Tag::parse_set("owner_tags", list)?,
        (None, Some(current)) => return Ok(current),
        (None, None) => match p.authz.scope_of(Permission::ScriptsWrite) {
            Some(Scope::Tags(t)) => t,
            _ => return Ok(None),
        },
    };
    let tags: Vec<String> = tags.into_iter().collect();
    Ok(Some(
        serde_json::to_string(&tags).map_err(ApiError::internal)?,
    ))
}

fn scope_of_owner(owner: Option<&str>) -> ApiResult<Scope> {
    Ok(match owner_tags_of(owner)? {
        None => Scope::All,
        Some(tags) => Scope::Tags(tags.into_iter().collect()),
    })
}

/// Whether `name` can be a shell variable name.
pub(crate) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// Checks a value given for (or defaulted by) a parameter; returns it as text.
pub(crate) fn check_value(
    p: &ScriptParameter,
    value: &serde_json::Value,
    field: &str,
) -> ApiResult<String> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        _ => return Err(invalid(field, "must be a string, number or boolean")),
    };
    if text.len() > 64 * 1024 {
        return Err(invalid(field, "is longer than 64 KiB"));
    }
    if text.contains('\0') {
        return Err(invalid(field, "must not contain NUL characters"));
    }
    match p.kind {
        ParameterType::String | ParameterType::Secret => {}
        ParameterType::Integer => {
            if text.trim().parse::<i64>().is_err() {
                return Err(invalid(field, "must be a whole number"));
            }
        }
        ParameterType::Boolean => {
            if text != "true" && text != "false" {
                return Err(invalid(field, "must be true or false"));
            }
        }
        ParameterType::Choice => {
            if !p.choices.contains(&text) {
                return Err(invalid(
                    field,
                    format!("must be one of: {}", p.choices.join(", ")),
                ));
            }
        }
    }
    Ok(if p.kind == ParameterType::Integer {
        text.trim().to_string()
    } else {
        text
    })
}

fn check_text(field: &str, s: &str, max_chars: usize) -> ApiResult<()> {
    if s.chars().count() > max_chars {
        return Err(invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Validates a script definition into a row (ids, versions and times filled by the caller).
fn parse_input(req: &ScriptInput, org_id: &str) -> ApiResult<ScriptRow> {
    let name = Name::parse(&req.name)?.into_inner();
    check_text("description", &req.description, 10_000)?;
    if req.body.trim().is_empty() {
        return Err(invalid("body", "must not be empty"));
    }
    if req.body.len() > MAX_BODY {
        return Err(invalid("body", "is longer than 256 KiB"));
    }
    if req.body.contains('\0') {
        return Err(invalid("body", "must not contain NUL characters"));
    }
    if req.parameters.len() > MAX_PARAMETERS {
        return Err(invalid(
            "parameters",
            format!("at most {MAX_PARAMETERS} parameters"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut parameters = Vec::with_capacity(req.parameters.len());
    for (i, p) in req.parameters.iter().enumerate() {
        let field = format!("parameters[{i}]");
        let mut p = p.clone();
        p.name = p.name.trim().to_string();
        if !is_variable_name(&p.name) {
            return Err(invalid(
                format!("{field}.name"),
                "must be letters, digits and _, not starting with a digit (at most 64)",
            ));
        }
        if !seen.insert(p.name.clone()) {
            return Err(invalid(format!("{field}.name"), "is used twice"));
        }
        check_text(&format!("{field}.label"), &p.label, 200)?;
        check_text(&format!("{field}.description"), &p.description, 2_000)?;
        if p.kind == ParameterType::Choice {
            if p.choices.is_empty() || p.choices.len() > 100 {
                return Err(invalid(
                    format!("{field}.choices"),
                    "a choice needs 1 to 100 choices",
                ));
            }
            for c in &p.choices {
                check_text(&format!("{field}.choices"), c, 200)?;
            }
        } else if !p.choices.is_empty() {
            return Err(invalid(
                format!("{field}.choices"),
                "only a choice parameter has choices",
            ));
        }
        if p.kind == ParameterType::Secret && p.default.is_some() {
            return Err(invalid(
                format!("{field}.default"),
                "a secret parameter has no default: it is given for each run",
            ));
        }
        if let Some(d) = &p.default {
            check_value(
                &p,
                &serde_json::Value::String(d.clone()),
                &format!("{field}.default"),
            )?;
        }
        parameters.push(p);
    }
    Ok(ScriptRow {
        id: String::new(),
        org_id: org_id.to_string(),
        name,
        description: req.description.clone(),
        shell: req.shell.as_str().to_string(),
        body: req.body.replace("\r\n", "\n"),
        parameters: serde_json::to_string(&parameters).map_err(ApiError::internal)?,
        version: 1,
        created_by: None,
        created_at: 0,
        updated_by: None,
        updated_at: 0,
        owner_tags: None,
    })
}

/// Reading the library needs either script permission.
fn require_read(p: &Principal) -> ApiResult<()> {
    if p.authz.has(Permission::ScriptsRun) || p.authz.has(Permission::ScriptsWrite) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this needs the scripts.run or scripts.write permission",
        ))
    }
}

/// A script the caller may see, or 404.
pub(crate) async fn load(st: &AppState, p: &Principal, id: &str) -> ApiResult<ScriptRow> {
    match scripts::get(&st.db.pool, &p.user.org_id, id).await? {
        Some(r) if may_read(p, &owner_scope(&r)?) => Ok(r),
        _ => Err(ApiError::not_found("script")),
    }
}

/// Whether the caller wrote or ran this version of the script.
async fn reviewed(st: &AppState, p: &Principal, r: &ScriptRow) -> ApiResult<bool> {
    Ok(scripts::reviewed(&st.db.pool, &p.user.id, &r.id, r.version).await?)
}

/// The script library, by name.
#[utoipa::path(get, operation_id = "scripts_list", path = "/api/v1/scripts", tag = tags::SCRIPTS, params(ScriptQuery),
    responses((status = 200, body = [Script]), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Json<Vec<Script>>> {
    require_read(&p)?;
    let q: ScriptQuery = ApiQuery::from_uri(&uri)?;
    let query = clean_query_text("q", q.q.as_deref())?;
    let rows = scripts::list(&st.db.pool, &p.user.org_id, query.as_deref()).await?;
    let reviewed: BTreeSet<String> = scripts::reviewed_current(&st.db.pool, &p.user.id)
        .await?
        .into_iter()
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if may_read(&p, &owner_scope(&r)?) {
            let seen = reviewed.contains(&r.id);
            out.push(view(r, seen)?);
        }
    }
    Ok(Json(out))
}

/// One script, at its current version.
#[utoipa::path(get, operation_id = "scripts_get", path = "/api/v1/scripts/{id}", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 200, body = Script), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Script>> {
    require_read(&p)?;
    let r = load(&st, &p, &id).await?;
    let seen = reviewed(&st, &p, &r).await?;
    Ok(Json(view(r, seen)?))
}

/// Adds a script to the library (version 1).
#[utoipa::path(post, operation_id = "scripts_create", path = "/api/v1/scripts", tag = tags::SCRIPTS, request_body = ScriptInput,
    responses((status = 201, body = Script), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<ScriptInput>,
) -> ApiResult<(StatusCode, Json<Script>)> {
    p.require(Permission::ScriptsWrite)?;
    let mut row = parse_input(&req, &p.user.org_id)?;
    row.owner_tags = requested_owner(&p, req.owner_tags.as_ref(), None)?;
    require_write(&p, &scope_of_owner(row.owner_tags.as_deref())?)?;
    super::step_up::require(&st, &p, req.step_up.as_ref(), "saving a script").await?;
    let now = st.now_ms();
    row.id = steward_db::new_id();
    row.created_by = Some(p.user.id.clone());
    row.updated_by = Some(p.user.username.clone());
    row.created_at = now;
    row.updated_at = now;
    let mut tx = st.db.begin().await?;
    scripts::insert(&mut tx, &row, &p.user.username).await?;
    scripts::record_review(&mut *tx, &p.user.id, &row.id, row.version, now).await?;
    Event::by(&p, "script.create", now)
        .target("script", &row.id, &row.name)
        .details(json!({ "version": 1, "shell": row.shell, "body": row.body, "owner_tags": owner_tags_of(row.owner_tags.as_deref())? }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(row, true)?)))
}

/// Saves a new version of a script.
#[utoipa::path(put, operation_id = "scripts_update", path = "/api/v1/scripts/{id}", tag = tags::SCRIPTS, params(("id" = String, Path)), request_body = ScriptInput,
    responses((status = 200, body = Script), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`version_conflict`: saved by someone else meanwhile; or the name is taken"), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<ScriptInput>,
) -> ApiResult<Json<Script>> {
    p.require(Permission::ScriptsWrite)?;
    let old = load(&st, &p, &id).await?;
    require_write(&p, &owner_scope(&old)?)?;
    let mut row = parse_input(&req, &p.user.org_id)?;
    row.owner_tags = requested_owner(&p, req.owner_tags.as_ref(), Some(old.owner_tags.clone()))?;
    require_write(&p, &scope_of_owner(row.owner_tags.as_deref())?)?;
    let conflict = || {
        ApiError::conflict(
            "version_conflict",
            "someone saved this script since you opened it; reload to see their change",
        )
    };
    if req.base_version.is_some_and(|v| v != old.version) {
        return Err(conflict());
    }
    // What runs (and where) changes only with a step-up; a new name or description does not.
    let runs_differently =
        row.shell != old.shell || row.body != old.body || row.parameters != old.parameters;
    let owner_changed = row.owner_tags != old.owner_tags;
    let content_changed =
        runs_differently || row.name != old.name || row.description != old.description;
    if !content_changed && !owner_changed {
        // Nothing changed: no new version.
        let seen = reviewed(&st, &p, &old).await?;
        return Ok(Json(view(old, seen)?));
    }
    if runs_differently || owner_changed {
        super::step_up::require(&st, &p, req.step_up.as_ref(), "changing a script").await?;
    }
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    if content_changed {
        row.id = old.id.clone();
        row.version = old.version + 1;
        row.created_by = old.created_by.clone();
        row.created_at = old.created_at;
        row.updated_by = Some(p.user.username.clone());
        row.updated_at = now;
        if !scripts::update(&mut tx, &row, &p.user.username).await? {
            return Err(conflict());
        }
        if !runs_differently {
            scripts::carry_reviews(&mut *tx, &row.id, old.version, row.version).await?;
        }
    } else {
        if !scripts::set_owner(&mut *tx, &old.id, old.version, row.owner_tags.as_deref()).await? {
            return Err(conflict());
        }
        row = ScriptRow {
            owner_tags: row.owner_tags.clone(),
            ..old.clone()
        };
    }
    let author_reviewed = if runs_differently {
        true
    } else {
        reviewed(&st, &p, &old).await?
    };
    if author_reviewed {
        scripts::record_review(&mut *tx, &p.user.id, &row.id, row.version, now).await?;
    }
    let mut changed = serde_json::Map::new();
    if old.name != row.name {
        changed.insert("name".into(), json!({ "from": old.name, "to": row.name }));
    }
    if old.description != row.description {
        changed.insert("description".into(), json!("changed"));
    }
    if old.shell != row.shell {
        changed.insert(
            "shell".into(),
            json!({ "from": old.shell, "to": row.shell }),
        );
    }
    if old.parameters != row.parameters {
        changed.insert("parameters".into(), json!({ "from": serde_json::from_str::<serde_json::Value>(&old.parameters).unwrap_or_default(), "to": serde_json::from_str::<serde_json::Value>(&row.parameters).unwrap_or_default() }));
    }
    if old.body != row.body {
        changed.insert("body".into(), json!({ "from": old.body, "to": row.body }));
    }
    if owner_changed {
        changed.insert(
            "owner_tags".into(),
            json!({ "from": owner_tags_of(old.owner_tags.as_deref())?, "to": owner_tags_of(row.owner_tags.as_deref())? }),
        );
    }
    Event::by(&p, "script.update", now)
        .target("script", &row.id, &row.name)
        .details(json!({ "version": row.version, "changes": changed }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(view(row, author_reviewed)?))
}

/// Deletes a script and its versions. Past runs keep its name and the text that ran.
#[utoipa::path(delete, operation_id = "scripts_delete", path = "/api/v1/scripts/{id}", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    p.require(Permission::ScriptsWrite)?;
    let old = load(&st, &p, &id).await?;
    require_write(&p, &owner_scope(&old)?)?;
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    scripts::delete(&mut *tx, &old.id).await?;
    Event::by(&p, "script.delete", now)
        .target("script", &old.id, &old.name)
        .details(json!({ "version": old.version }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every saved version of a script, newest first.
#[utoipa::path(get, operation_id = "scripts_versions", path = "/api/v1/scripts/{id}/versions", tag = tags::SCRIPTS, params(("id" = String, Path)),
    responses((status = 200, body = [ScriptVersion]), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Vec<ScriptVersion>>> {
    require_read(&p)?;
    let script = load(&st, &p, &id).await?;
    let rows = scripts::versions(&st.db.pool, &script.id).await?;
    Ok(Json(
        rows.into_iter()
            .map(version_view)
            .collect::<ApiResult<_>>()?,
    ))
}

/// One saved version of a script.
#[utoipa::path(get, operation_id = "scripts_version", path = "/api/v1/scripts/{id}/versions/{version}", tag = tags::SCRIPTS, params(("id" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = ScriptVersion), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(st): State<AppState>,
    p: Principal,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Json<ScriptVersion>> {
    require_read(&p)?;
    // A path that is not even text names nothing.
    let Ok(Path((id, version))) = path else {
        return Err(ApiError::not_found("script"));
    };
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::not_found("script"));
    }
    let script = load(&st, &p, &id).await?;
    let n: i64 = version
        .parse()
        .map_err(|_| ApiError::not_found("script version"))?;
    let row = scripts::version(&st.db.pool, &script.id, n)
        .await?
        .ok_or_else(|| ApiError::not_found("script version"))?;
    Ok(Json(version_view(row)?))
}
