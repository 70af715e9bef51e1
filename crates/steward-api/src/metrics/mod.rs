//! Metrics: storage of the samples servers report (see `steward-tsdb` for the engine), and
//! how they arrive: polled over SSH ([`collect`]) or pushed by `steward-agent` ([`agent`]).
pub mod agent;
pub mod collect;
pub mod store;

use crate::state::AppState;

/// Takes one snapshot's derived values for a server: the single entry point of every
/// collector.
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
    Ok(())
}
