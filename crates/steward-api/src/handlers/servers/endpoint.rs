//! Confirming a changed endpoint (host, port, SSH user, jump server), which gives the server
//! its trust back; what a change does to that trust is `steward_services::servers::endpoint`.
use super::*;

/// Confirms a changed endpoint: the credential is offered to it again, and the next contact
/// records its host key (pin the key first where that contact could be intercepted).
#[utoipa::path(operation_id = "servers_confirm_endpoint", post, path = "/api/v1/servers/{id}/endpoint/confirm", tag = tags::SERVERS, params(("id" = String, Path)), request_body = ConfirmEndpointRequest,
    responses((status = 200, body = Server), (status = 403, body = ErrorBody, description = "no `credentials.write`, or `step_up_required` / `step_up_failed`"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`nothing_to_confirm`")))]
pub async fn confirm_endpoint(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
    ApiJson(req): ApiJson<ConfirmEndpointRequest>,
) -> ApiResult<Json<Server>> {
    let fresh = service::confirm_endpoint(&st, &p, &id, |what| {
        step_up::require(&st, &p, req.step_up.as_ref(), what)
    })
    .await?;
    Ok(Json(view(fresh)))
}
