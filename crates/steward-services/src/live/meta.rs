//! The fleet's metadata, loaded from the database for the whole fleet at once.
use super::*;

/// The fleet's metadata, from the database: every server with its tags, and the number of
/// enabled checks attached to it that are down.
pub(super) async fn load_meta(st: &Services) -> steward_db::DbResult<HashMap<String, Meta>> {
    use steward_db::{checks, servers};
    let org = steward_core::DEFAULT_ORG_ID;
    let (rows, _) = servers::list(
        &st.db.pool,
        &servers::ServerFilter {
            org_id: org,
            query: None,
            tags: &[],
            visible_tags: None,
            sort: servers::SortKey::Name,
            descending: false,
            limit: i64::MAX / 2,
            offset: 0,
        },
    )
    .await?;
    let down = checks::list(
        &st.db.pool,
        &checks::CheckFilter {
            org_id: org,
            server_id: None,
            status: Some("down"),
            query: None,
            visible_tags: None,
        },
    )
    .await?;
    let mut down_by_server: HashMap<String, i64> = HashMap::new();
    for c in down.into_iter().filter(|c| c.enabled != 0) {
        if let Some(s) = c.server_id {
            *down_by_server.entry(s).or_default() += 1;
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let meta = Meta {
                org_id: r.org_id,
                name: r.name,
                tags: r.tags,
                monitoring: r.monitoring,
                interval_secs: r.metrics_interval_secs,
                checks_down: down_by_server.get(&r.id).copied().unwrap_or(0),
            };
            (r.id, meta)
        })
        .collect())
}
