//! Changing the library: create, update (a new version, reviewed by its writer) and delete.
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
        crate::handlers::step_up::require(&st, &p, req.step_up.as_ref(), "changing a script")
            .await?;
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
