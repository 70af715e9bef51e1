//! Reading servers: the filtered, sorted, paged list; the tags in use; one server.
use super::*;

/// Servers the caller may see, filtered, sorted and paged.
#[utoipa::path(operation_id = "servers_list", get, path = "/api/v1/servers", tag = tags::SERVERS, params(ServerQuery),
    responses((status = 200, body = ServerPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    p: Principal,
    uri: axum::http::Uri,
) -> ApiResult<Json<ServerPage>> {
    p.require(Permission::ServersRead)?;
    let q: ServerQuery = ApiQuery::from_uri(&uri)?;
    let sort = match q.sort.as_deref().unwrap_or("name") {
        "name" => SortKey::Name,
        "host" => SortKey::Host,
        "created_at" => SortKey::CreatedAt,
        "updated_at" => SortKey::UpdatedAt,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "sort must be name, host, created_at or updated_at",
            ));
        }
    };
    let descending = match q.order.as_deref().unwrap_or("asc") {
        "asc" => false,
        "desc" => true,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "order must be asc or desc",
            ));
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "offset must not be negative",
        ));
    }
    let tag_filter: Vec<String> = match q.tag.as_deref() {
        Some(t) if !t.trim().is_empty() => {
            let list: Vec<String> = t.split(',').map(str::to_string).collect();
            Tag::parse_set("tag", &list)
                .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    };
    let query = clean_query_text("q", q.q.as_deref())?;
    let visible = p.visible_tags();
    let (rows, total) = servers::list(
        &st.db.pool,
        &ServerFilter {
            org_id: &p.user.org_id,
            query: query.as_deref(),
            tags: &tag_filter,
            visible_tags: visible.as_ref(),
            sort,
            descending,
            limit,
            offset,
        },
    )
    .await?;
    Ok(Json(ServerPage {
        items: rows.into_iter().map(view).collect(),
        total,
        limit,
        offset,
    }))
}

/// Tags on the servers the caller may see, with counts.
#[utoipa::path(operation_id = "servers_tag_list", get, path = "/api/v1/tags", tag = tags::SERVERS, responses((status = 200, body = [TagCount])))]
pub async fn tag_list(State(st): State<AppState>, p: Principal) -> ApiResult<Json<Vec<TagCount>>> {
    p.require(Permission::ServersRead)?;
    let visible = p.visible_tags();
    let counts = servers::tag_counts(&st.db.pool, &p.user.org_id, visible.as_ref()).await?;
    Ok(Json(
        counts
            .into_iter()
            .map(|(tag, count)| TagCount { tag, count })
            .collect(),
    ))
}

/// One server.
#[utoipa::path(operation_id = "servers_get", get, path = "/api/v1/servers/{id}", tag = tags::SERVERS, params(("id" = String, Path)),
    responses((status = 200, body = Server), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(st): State<AppState>,
    p: Principal,
    IdPath(id): IdPath,
) -> ApiResult<Json<Server>> {
    Ok(Json(view(visible(&st, &p, &id).await?)))
}
