//! Steward's metric model, shared by the hub and the agent: [`RawSnapshot`] (one reading of a
//! host's raw counters), the parsers of the kernel files it comes from ([`parse`]), the
//! agentless collection script and its parser ([`agentless`]), the turning of counters into
//! rates and percentages ([`derive()`]) with its [`catalog()`], and the agent's wire protocol
//! ([`agent_proto`]).
//!
//! Pure functions on text and values: no I/O, no async, and no dependency but serde, so the
//! agent stays small.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod agent_proto;
pub mod agentless;
pub mod catalog;
pub mod derive;
pub mod parse;
pub mod snapshot;

pub use agentless::{AGENTLESS_SCRIPT, parse_agentless};
pub use catalog::{MetricInfo, Unit, catalog};
pub use derive::{Point, derive};
pub use parse::ParseError;
pub use snapshot::{
    ContainerStat, CoreTimes, CpuTimes, DiskStat, LoadAvg, MemInfo, MountStat, NetStat, RawSnapshot,
};
