//! Metrics: storage of the samples servers report (see `steward-tsdb` for the engine).
pub mod store;
