//! Reading the script library: the list (filtered by owner scope) and one script.
use super::*;

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
