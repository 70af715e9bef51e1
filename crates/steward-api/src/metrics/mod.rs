//! The hub's side of the agent protocol ([`agent`]): the agent's WebSocket, batches stored
//! through `steward_services::metrics::record`. Storage, agentless collection and the live
//! view are services (`steward_services::metrics`, `steward_services::live`).
pub mod agent;
