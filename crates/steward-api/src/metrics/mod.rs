//! Metrics: storage of the samples servers report (see `steward-tsdb` for the engine), how they
//! arrive (polled over SSH by [`collect`] or pushed by `steward-agent` through [`agent`]), and the
//! live view of the fleet ([`live`]). Collectors hand every snapshot to [`record`].
pub mod agent;
pub mod collect;
pub mod live;

use crate::state::AppState;
use steward_services::metrics::store;

/// The one entry point of every collector (agentless poller, agent socket), once per
/// snapshot: stores the points, updates the live view (fleet summary, sparklines, status) and
/// lets the live hub push them to subscribers. Points at or before a series' last time are
/// dropped by the store; a snapshot older than the newest seen does not move the live view.
pub async fn record(
    st: &AppState,
    server_id: &str,
    ts_ms: i64,
    points: &[steward_metrics::Point],
) -> store::StoreResult<()> {
    let samples: Vec<(&str, &str, f64)> = points
        .iter()
        .map(|p| (p.name, p.label.as_str(), p.value))
        .collect();
    st.metrics.ingest(server_id, ts_ms, &samples).await?;
    st.live.update(server_id, ts_ms, points);
    Ok(())
}

/// The status of a server now (see [`live::status`] for the rule).
pub fn status(st: &AppState, server_id: &str) -> steward_proto::metrics::HostStatus {
    st.live.status_of(server_id, st.now_ms())
}
