//! Changing the library: create, update (a new version, reviewed by its writer) and delete,
//! stored by `steward_services::scripts`.
use super::*;

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
    crate::handlers::step_up::require(&st, &p, req.step_up.as_ref(), "saving a script").await?;
    let row = service::create(&st, &p, row).await?;
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
    let (row, reviewed) = service::update(&st, &p, old, row, req.base_version, |what| {
        crate::handlers::step_up::require(&st, &p, req.step_up.as_ref(), what)
    })
    .await?;
    Ok(Json(view(row, reviewed)?))
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
    service::delete(&st, &p, &old).await?;
    Ok(StatusCode::NO_CONTENT)
}
