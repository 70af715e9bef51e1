//! The script library: shell scripts with typed parameters, every saved change kept as a
//! version, every change audited.
//!
//! A script belongs to the whole organization or to some tags (its owner). Reading needs
//! `scripts.run` or `scripts.write` somewhere the script may run; changing or deleting it
//! needs `scripts.write` on every server it may run on (`Authz::holds_on`), so a group's
//! writer cannot change what another group runs. Saving a new body (or shell, parameters or
//! owner) needs a step-up, and whoever saved it has reviewed it; anyone else must step up
//! before running that version (see `handlers::executions`).
//!
//! The handlers check the definition, the owner and the caller's rights; the writes, with
//! their audit events, are `steward_services::scripts`.
use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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
use steward_services::scripts as service;

mod read;
mod versions;
mod write;

pub use read::{__path_get, __path_list, get, list};
pub use versions::{__path_version, __path_versions, version, versions};
pub use write::{__path_create, __path_delete, __path_update, create, delete, update};

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
    Ok(service::owner_tags_of(json)?)
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
    Ok(service::reviewed(st, p, r).await?)
}
