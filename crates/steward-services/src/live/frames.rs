//! The frames a tick sends a subscriber: a snapshot (in parts when large) or an update with
//! only the newest values of the servers it may see.
use super::*;

/// A client's snapshot: `{"type":"snapshot","part":i,"parts":n,…}` messages of at most
/// [`SNAPSHOT_PART_BYTES`] of servers each (at least one message, sorted by name throughout).
pub(super) fn snapshot_frames(
    views: &HashMap<String, View>,
    c: &Client,
    now_ms: i64,
    at: &str,
) -> Batch {
    let mut items: Vec<ServerMetrics> = views
        .iter()
        .filter(|(id, v)| {
            v.meta.as_ref().is_some_and(|m| c.scope.sees(m))
                && match &c.sub {
                    Subscription::None => false,
                    Subscription::Fleet => true,
                    Subscription::Servers(ids) => ids.contains(*id),
                }
        })
        .filter_map(|(id, v)| {
            v.summary(id, now_ms, true, matches!(c.sub, Subscription::Servers(_)))
        })
        .collect();
    items.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    let mut parts: Vec<String> = vec![String::new()];
    for item in &items {
        let Ok(json) = serde_json::to_string(item) else {
            continue;
        };
        let last = parts.last_mut().expect("one part at least");
        if !last.is_empty() && last.len() + json.len() > SNAPSHOT_PART_BYTES {
            parts.push(json);
        } else {
            if !last.is_empty() {
                last.push(',');
            }
            last.push_str(&json);
        }
    }
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, servers)| {
            Frame::new(format!(
                r#"{{"type":"snapshot","part":{i},"parts":{n},"at":{at},"servers":[{servers}]}}"#
            ))
        })
        .collect()
}

#[expect(
    clippy::too_many_arguments,
    reason = "the per-tick state shared by both subscription kinds"
)]
pub(super) fn update_frame(
    views: &HashMap<String, View>,
    changed: &[&String],
    old_meta: &HashMap<&str, &Option<Meta>>,
    scope: &Scope,
    wanted: impl Fn(&str) -> bool,
    detail: bool,
    at: &str,
    encode: &mut impl FnMut(&str, bool) -> Option<Arc<str>>,
) -> Option<Batch> {
    let mut servers = String::new();
    let mut removed = String::new();
    for id in changed {
        if !wanted(id) {
            continue;
        }
        let now_visible = views
            .get(id.as_str())
            .and_then(|v| v.meta.as_ref())
            .is_some_and(|m| scope.sees(m));
        if now_visible {
            if let Some(json) = encode(id, detail) {
                if !servers.is_empty() {
                    servers.push(',');
                }
                servers.push_str(&json);
            }
        } else if let Some(Some(before)) = old_meta.get(id.as_str())
            && scope.sees(before)
        {
            if !removed.is_empty() {
                removed.push(',');
            }
            removed.push_str(&serde_json::to_string(id).unwrap_or_default());
        }
    }
    if servers.is_empty() && removed.is_empty() {
        return None;
    }
    Some(Arc::from([Frame::new(format!(
        r#"{{"type":"update","at":{at},"servers":[{servers}],"removed":[{removed}]}}"#
    ))]))
}
