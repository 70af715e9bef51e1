//! Host metrics on the hub: the time-series store ([`store`]) over `steward-tsdb` and the
//! database, agentless collection over SSH ([`collect`]), and [`record`], the one entry point
//! of every collector (the agentless poller here, the agent socket in steward-api).
pub mod collect;
pub mod store;

use crate::Services;

/// The one entry point of every collector (agentless poller, agent socket), once per
/// snapshot: stores the points, updates the live view (fleet summary, sparklines, status) and
/// lets the live hub push them to subscribers. Points at or before a series' last time are
/// dropped by the store; a snapshot older than the newest seen does not move the live view.
pub async fn record(
    st: &Services,
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
pub fn status(st: &Services, server_id: &str) -> steward_proto::metrics::HostStatus {
    st.live.status_of(server_id, st.now_ms())
}
