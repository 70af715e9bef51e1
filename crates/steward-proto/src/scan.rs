//! Service discovery: what a scan of a server found, its history, what changed between two
//! scans, and the next steps proposed for the databases it found.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Everything one scan saw. Every part is optional: what the scan could not see is absent and
/// explained in `not_visible`, never a failure of the whole scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScanReport {
    /// The account the scan ran as.
    pub user: Option<String>,
    /// Whether that account is root (uid 0).
    pub root: bool,
    pub os: Option<OsInfo>,
    /// `uname -r`.
    pub kernel: Option<String>,
    /// `uname -m`.
    pub architecture: Option<String>,
    pub hostname: Option<String>,
    pub cpu: Option<CpuInfo>,
    pub memory: Option<MemoryInfo>,
    pub uptime_secs: Option<u64>,
    #[serde(default)]
    pub disks: Vec<Disk>,
    /// Listening TCP sockets.
    #[serde(default)]
    pub ports: Vec<ListeningPort>,
    /// Services recognised, with their versions.
    #[serde(default)]
    pub services: Vec<DetectedService>,
    /// Absent when systemd is not the init system or could not be asked.
    pub systemd: Option<SystemdInfo>,
    /// Absent when Docker is not installed.
    pub docker: Option<DockerInfo>,
    /// What the scan could not see, and why.
    #[serde(default)]
    pub not_visible: Vec<NotVisible>,
}

/// `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OsInfo {
    /// `ID` (`debian`, `ubuntu`, `rhel` …).
    pub id: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
    /// `VERSION_ID`.
    pub version: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CpuInfo {
    pub model: Option<String>,
    pub cores: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryInfo {
    pub total_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub swap_total_bytes: Option<u64>,
    pub swap_free_bytes: Option<u64>,
}

/// A mounted file system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Disk {
    pub mount: String,
    /// The device or source (`/dev/sda1`).
    pub source: String,
    pub fs_type: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
}

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListeningPort {
    /// The local address (`0.0.0.0`, `127.0.0.1`, `::`, `*` …).
    pub address: String,
    pub port: u16,
    /// The owning process's name, when visible (other users' processes need root).
    pub process: Option<String>,
    pub pid: Option<u32>,
}

/// A recognised service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DetectedService {
    /// Stable id: `nginx`, `apache`, `caddy`, `postgresql`, `mysql`, `mongodb`, `redis`,
    /// `docker`, `nodejs` or `sshd`.
    pub kind: String,
    /// Display name (`PostgreSQL`, `MariaDB` …).
    pub name: String,
    pub version: Option<String>,
    /// A process of it was seen running.
    pub running: bool,
    /// The TCP ports it listens on, as far as visible.
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Why it was recognised: `binary`, `process`, `port`, `version`, `connection`,
    /// `container` (a running Docker container of its image).
    #[serde(default)]
    pub evidence: Vec<String>,
    /// The Docker container it runs in (then `ports` are the ports the container publishes on
    /// the host, and `version` comes from the image tag); absent for a service of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SystemdInfo {
    /// Running service units.
    #[serde(default)]
    pub running: Vec<String>,
    /// Failed units.
    #[serde(default)]
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DockerInfo {
    /// The client version.
    pub client_version: Option<String>,
    /// The daemon version (needs access to the Docker socket).
    pub server_version: Option<String>,
    #[serde(default)]
    pub containers: Vec<DockerContainer>,
    #[serde(default)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DockerContainer {
    pub name: String,
    pub image: String,
    pub status: String,
    /// The TCP ports it publishes on the host (`docker ps` `127.0.0.1:15432->5432/tcp` → 15432).
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// Something the scan could not see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotVisible {
    /// Stable code, translated in the UI: `port_processes_need_root`, `ports_unavailable`,
    /// `systemd_unavailable`, `docker_socket_denied`, `docker_daemon_unreachable`,
    /// `os_release_missing`, `section_unreadable`, `output_truncated`.
    pub code: String,
    /// The same in English, with any detail.
    pub message: String,
}

/// Why a scan failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanError {
    /// `no_credential`, `auth_failed`, `host_key_mismatch`, `unreachable`, `timeout`,
    /// `bad_credential`, `ssh_error`, `scan_failed` or `internal`.
    pub code: String,
    pub message: String,
}

/// One scan.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Scan {
    pub id: String,
    pub server_id: String,
    /// `user` or `schedule`.
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub error: Option<ScanError>,
    /// The result (absent while running and for failed scans).
    pub report: Option<ScanReport>,
}

/// One scan in the history list (without its result).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanSummary {
    pub id: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: String,
    pub error: Option<ScanError>,
}

/// The latest scan of a server and what changed since the one before.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanOverview {
    /// The most recent scan, whatever its outcome (absent before the first scan).
    pub latest: Option<ScanSummary>,
    /// The most recent successful scan, with its result.
    pub current: Option<Scan>,
    /// When the successful scan before `current` started, if there was one.
    pub previous_at: Option<DateTime<Utc>>,
    /// What changed from that scan to `current`.
    pub changes: Vec<ScanChange>,
}

/// One difference between two scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScanChange {
    /// `service_added`, `service_removed`, `service_version_changed`, `port_opened`,
    /// `port_closed`, `os_changed` or `kernel_changed`.
    pub kind: String,
    /// What changed: a service kind, `address:port`, `os` or `kernel`.
    pub subject: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A page of scans, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ScanPage {
    pub items: Vec<ScanSummary>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Paging for the scan history.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScanQuery {
    /// 1–200, default 20.
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A next step proposed from a scan, for later features to act on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Proposal {
    pub id: String,
    pub server_id: String,
    /// `health_check` or `backup_job`.
    pub kind: String,
    /// The service it is for (`postgresql`, `mysql`, `mongodb`, `redis`).
    pub service: String,
    /// What to set up: `{"type":"tcp","host":…,"port":…}` for a health check,
    /// `{"engine":…,"port":…}` for a backup job.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// `proposed`, `accepted` or `dismissed`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}
