//! Changing servers: create, replace (with what an endpoint change does to the server's trust,
//! decided by `steward_services::servers`) and delete.
use super::*;

/// Registers a server. A caller limited to some tags must tag it with one of them.
#[utoipa::path(operation_id = "servers_create", post, path = "/api/v1/servers", tag = tags::SERVERS, request_body = ServerInput,
    responses((status = 201, body = Server), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    p: Principal,
    ApiJson(req): ApiJson<ServerInput>,
) -> ApiResult<(StatusCode, Json<Server>)> {
    let row = service::create(&st, &p, &req).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// Replaces a server's definition.
#[utoipa::path(operation_id = "servers_update", put, path = "/api/v1/servers/{id}", tag = tags::SERVERS, params(("id" = String, Path)), request_body = ServerInput,
    responses((status = 200, body = Server), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<ServerInput>,
) -> ApiResult<Json<Server>> {
    let row = service::update(&st, &p, &id, &req, |what| {
        step_up::require(&st, &p, req.step_up.as_ref(), what)
    })
    .await?;
    Ok(Json(view(row)))
}

/// Deletes a server and its credential.
#[utoipa::path(operation_id = "servers_delete", delete, path = "/api/v1/servers/{id}", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    service::delete(&st, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
