//! The script library: creating, changing (a new version, reviewed by its writer) and deleting scripts within the caller's owner scope, each change audited in its transaction.
//!
//! The caller has checked the definition, loaded the script and decided that the principal
//! may change it (and where it may run); these store the change with its audit event.
use std::future::Future;

use serde_json::json;
use steward_db::scripts::{self, ScriptRow};

use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

/// A stored owner (`None`: the whole organization) as its list of tags.
pub fn owner_tags_of(json: Option<&str>) -> ServiceResult<Option<Vec<String>>> {
    json.map(|j| serde_json::from_str(j).map_err(ServiceError::internal))
        .transpose()
}

/// 409 `version_conflict`: the script was saved by someone else meanwhile.
pub fn version_conflict() -> ServiceError {
    ServiceError::conflict(
        "version_conflict",
        "someone saved this script since you opened it; reload to see their change",
    )
}

/// Whether the caller wrote or ran this version of the script.
pub async fn reviewed(st: &Services, p: &Principal, r: &ScriptRow) -> ServiceResult<bool> {
    Ok(scripts::reviewed(&st.db.pool, &p.user.id, &r.id, r.version).await?)
}

/// Stores a new script (version 1; `row` as checked, with its owner), reviewed by its writer,
/// with its audit event; returns it as stored.
pub async fn create(st: &Services, p: &Principal, mut row: ScriptRow) -> ServiceResult<ScriptRow> {
    let now = st.now_ms();
    row.id = steward_db::new_id();
    row.created_by = Some(p.user.id.clone());
    row.updated_by = Some(p.user.username.clone());
    row.created_at = now;
    row.updated_at = now;
    let mut tx = st.db.begin().await?;
    scripts::insert(&mut tx, &row, &p.user.username).await?;
    scripts::record_review(&mut *tx, &p.user.id, &row.id, row.version, now).await?;
    Event::by(p, "script.create", now)
        .target("script", &row.id, &row.name)
        .details(json!({ "version": 1, "shell": row.shell, "body": row.body, "owner_tags": owner_tags_of(row.owner_tags.as_deref())? }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Saves `row` (as checked, with its owner) over `old`: 409 `version_conflict` if
/// `base_version` is not the stored one or someone saved meanwhile. Nothing changed: nothing
/// is stored. A new name or description makes a new version that keeps its reviews; a new
/// body, shell or parameters makes one reviewed only by its writer; a new owner alone changes
/// the owner. What runs (or where) changes only after `step_up(what)`, called then and only
/// then, before anything is stored; its error is returned as it is. Returns the script as
/// stored and whether the caller has reviewed that version.
pub async fn update<E, F, Fut>(
    st: &Services,
    p: &Principal,
    old: ScriptRow,
    row: ScriptRow,
    base_version: Option<i64>,
    step_up: F,
) -> Result<(ScriptRow, bool), E>
where
    E: From<ServiceError>,
    F: FnOnce(&'static str) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    if base_version.is_some_and(|v| v != old.version) {
        return Err(version_conflict().into());
    }
    // What runs (and where) changes only with a step-up; a new name or description does not.
    let runs_differently =
        row.shell != old.shell || row.body != old.body || row.parameters != old.parameters;
    let owner_changed = row.owner_tags != old.owner_tags;
    let content_changed =
        runs_differently || row.name != old.name || row.description != old.description;
    if !content_changed && !owner_changed {
        // Nothing changed: no new version.
        let seen = reviewed(st, p, &old).await?;
        return Ok((old, seen));
    }
    if runs_differently || owner_changed {
        step_up("changing a script").await?;
    }
    Ok(save(
        st,
        p,
        old,
        row,
        runs_differently,
        owner_changed,
        content_changed,
    )
    .await?)
}

/// Stores a decided update with its audit event.
async fn save(
    st: &Services,
    p: &Principal,
    old: ScriptRow,
    mut row: ScriptRow,
    runs_differently: bool,
    owner_changed: bool,
    content_changed: bool,
) -> ServiceResult<(ScriptRow, bool)> {
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
            return Err(version_conflict());
        }
        if !runs_differently {
            scripts::carry_reviews(&mut *tx, &row.id, old.version, row.version).await?;
        }
    } else {
        if !scripts::set_owner(&mut *tx, &old.id, old.version, row.owner_tags.as_deref()).await? {
            return Err(version_conflict());
        }
        row = ScriptRow {
            owner_tags: row.owner_tags.clone(),
            ..old.clone()
        };
    }
    let author_reviewed = if runs_differently {
        true
    } else {
        reviewed(st, p, &old).await?
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
    Event::by(p, "script.update", now)
        .target("script", &row.id, &row.name)
        .details(json!({ "version": row.version, "changes": changed }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((row, author_reviewed))
}

/// Deletes a script and its versions, with its audit event. Past runs keep its name and the
/// text that ran.
pub async fn delete(st: &Services, p: &Principal, old: &ScriptRow) -> ServiceResult<()> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    scripts::delete(&mut *tx, &old.id).await?;
    Event::by(p, "script.delete", now)
        .target("script", &old.id, &old.name)
        .details(json!({ "version": old.version }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
