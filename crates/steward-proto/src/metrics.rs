//! Host metrics as the UI reads them: range queries for charts, the fleet summary, the metric
//! store's disk use, and the messages of the live WebSocket (`/api/v1/live`).
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where a server stands, from the age of its last sample and its health signals (the rule is
/// in `docs/notes/monitoring-read.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Sampled recently, nothing wrong.
    Online,
    /// Sampled recently, but an attached health check is down, a filesystem is at least 95 %
    /// full, or systemd units failed.
    Degraded,
    /// The last sample is older than three intervals (at least 30 s).
    Offline,
    /// Never sampled (or monitoring is off).
    Unknown,
}

/// The unit of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricUnit {
    Percent,
    Bytes,
    BytesPerS,
    PerS,
    Seconds,
    Count,
    Load,
}

/// `GET /servers/{id}/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsQuery {
    /// Comma-separated metric names from the catalog (`cpu.usage,mem.used_pct`); `group.*`
    /// stands for every name of a group (`cpu.*`).
    pub names: Option<String>,
    /// RFC 3339 time or Unix milliseconds (default: an hour before `to`).
    pub from: Option<String>,
    /// RFC 3339 time or Unix milliseconds (default: now).
    pub to: Option<String>,
    /// Smallest width of a point in seconds; the store enlarges it so a series has at most
    /// 1,000 points.
    pub step: Option<i64>,
}

/// Options of the fleet summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MetricsSummaryQuery {
    /// Include each server's CPU sparkline (its last 60 values; default false). The live
    /// socket's snapshot carries them too.
    pub sparklines: Option<bool>,
}

/// One point of a series: the samples of one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricPoint {
    /// Start of the step, Unix milliseconds (kept numeric for charts).
    pub t: i64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// One series (a metric name and label) of a range answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricSeries {
    pub name: String,
    /// Mount point, device, interface, `cpuN`, container, or `""`.
    pub label: String,
    pub unit: MetricUnit,
    /// Oldest first.
    pub points: Vec<MetricPoint>,
}

/// The answer of `GET /servers/{id}/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The width of each point in seconds.
    pub step_secs: f64,
    /// The storage tier read: `raw`, `minute` or `hour`.
    pub tier: String,
    pub series: Vec<MetricSeries>,
}

/// The latest value of one series (live updates of a server subscribed to by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LivePoint {
    pub name: String,
    pub label: String,
    pub value: f64,
}

/// One server in the fleet summary and in live messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerMetrics {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    /// `agentless`, `agent` or `off`.
    pub monitoring: String,
    pub interval_secs: i64,
    pub status: HostStatus,
    pub last_sample_at: Option<DateTime<Utc>>,
    /// `cpu.usage` (all CPUs).
    pub cpu_pct: Option<f64>,
    /// `load.1`.
    pub load1: Option<f64>,
    /// `mem.used_pct`.
    pub mem_used_pct: Option<f64>,
    /// The fullest filesystem's `disk.used_pct`…
    pub disk_used_pct: Option<f64>,
    /// …and its mount point.
    pub disk_mount: Option<String>,
    /// Bytes received per second, summed over interfaces.
    pub net_rx_bps: Option<f64>,
    /// Bytes sent per second, summed over interfaces.
    pub net_tx_bps: Option<f64>,
    /// `systemd.failed_units`.
    pub failed_units: Option<f64>,
    /// Attached health checks that are down.
    pub checks_down: i64,
    /// The last (up to 60) `cpu.usage` values, oldest first, to two decimals. In the fleet
    /// summary only with `sparklines=true`; in live `update` messages it is left out: append
    /// `cpu_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparkline: Option<Vec<f64>>,
    /// Every value of the last sample; only for servers subscribed to by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<Vec<LivePoint>>,
}

/// `GET /metrics/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsSummary {
    pub at: DateTime<Utc>,
    /// Every server the caller may see, by name.
    pub items: Vec<ServerMetrics>,
}

/// Disk use of one server's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServerDiskUsage {
    pub server_id: String,
    pub server_name: String,
    /// Bytes stored now (all tiers).
    pub bytes: i64,
    /// Bytes added per day at the current rate.
    pub bytes_per_day: f64,
    /// What will be stored once every tier's retention is full.
    pub projected_bytes: f64,
}

/// `GET /metrics/disk-usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricsDiskUsage {
    /// When the figures were computed (they are cached for a minute).
    pub at: DateTime<Utc>,
    pub bytes: i64,
    pub bytes_per_day: f64,
    pub projected_bytes: f64,
    /// Servers the caller may see, largest first.
    pub items: Vec<ServerDiskUsage>,
}

/// What a live client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveClientMessage {
    /// Replaces the subscription: `fleet: true` for every visible server, or a list of ids
    /// (at most 100; live messages then carry every value of their last sample).
    Subscribe {
        #[serde(default)]
        fleet: bool,
        #[serde(default)]
        servers: Vec<String>,
    },
}

/// What the hub sends on `/api/v1/live` (text frames, at most four per second).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveServerMessage {
    /// Every subscribed server (with sparklines), after each subscribe. A large snapshot comes
    /// in `parts` messages back to back (at most 64 KiB of servers each, sorted by name across
    /// them): part 0 replaces what the client had, later parts add to it.
    Snapshot {
        /// This message's index, from 0.
        part: u32,
        /// How many messages the snapshot has.
        parts: u32,
        at: DateTime<Utc>,
        servers: Vec<ServerMetrics>,
    },
    /// Servers whose values or status changed since the previous message, newest values only;
    /// `removed`: servers that are gone or no longer visible.
    Update {
        at: DateTime<Utc>,
        servers: Vec<ServerMetrics>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed: Vec<String>,
    },
    /// A message the hub could not take; the connection stays open.
    Error { code: String, message: String },
}
