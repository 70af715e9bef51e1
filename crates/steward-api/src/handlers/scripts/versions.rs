//! A script's versions: the list and one version's text.
use super::*;

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
