//! `RawSnapshot`: one reading of a host's raw counters and gauges, as the agent and the
//! agentless poll produce it. Counters stay counters here; the hub turns them into rates
//! with [`crate::derive`].

use serde::{Deserialize, Serialize};

/// One reading of a host. Every part is optional or may be empty: a host that hides a file
/// still gives the rest. Counters are cumulative since boot (or since the container started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RawSnapshot {
    /// When the reading was taken, Unix milliseconds (UTC), by the reader's clock.
    pub ts_ms: i64,
    /// `/proc/stat` "cpu" line: all CPUs together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuTimes>,
    /// `/proc/stat` "cpuN" lines, in file order (offline CPUs are absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cores: Vec<CoreTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadAvg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<MemInfo>,
    /// Real filesystems only (see [`crate::parse::is_pseudo_fs`]), one per device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountStat>,
    /// Whole block devices only (see [`crate::parse::is_counted_disk`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskStat>,
    /// Network interfaces except loopback and container veth ends
    /// (see [`crate::parse::is_counted_interface`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<NetStat>,
    /// `/proc/uptime`, first field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
    /// Number of processes (numeric entries of `/proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procs: Option<u64>,
    /// Failed systemd units; `None` when the host does not run systemd or it could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_failed: Option<u64>,
    /// Docker containers; `None` when Docker is not installed, `Some(empty)` when it is but
    /// nothing runs (or the cgroup v2 files are not readable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Vec<ContainerStat>>,
}

/// CPU time in clock ticks (USER_HZ, 100 per second on every common kernel) since boot.
/// Guest time is already part of `user` and `nice`, so it is not kept apart.
///
/// On the wire it is a JSON array in `/proc/stat` order, `[user, nice, system, idle, iowait,
/// irq, softirq, steal]`, because a many-core host sends one per core every second; an array
/// of 4 to 8 numbers is accepted (older kernels have fewer columns, the rest count as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// Sum of all the states: the ticks that passed (times the number of CPUs counted).
    pub fn total(&self) -> u64 {
        self.user
            .saturating_add(self.nice)
            .saturating_add(self.system)
            .saturating_add(self.idle)
            .saturating_add(self.iowait)
            .saturating_add(self.irq)
            .saturating_add(self.softirq)
            .saturating_add(self.steal)
    }
}

/// One CPU core's times; `id` is N of "cpuN".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CoreTimes {
    pub id: u32,
    pub times: CpuTimes,
}

impl CpuTimes {
    /// The columns in `/proc/stat` order.
    pub fn to_array(&self) -> [u64; 8] {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
    }

    /// From 4 to 8 columns in `/proc/stat` order; missing ones are 0. `None` for fewer than 4.
    pub fn from_columns(cols: &[u64]) -> Option<CpuTimes> {
        if cols.len() < 4 {
            return None;
        }
        let at = |i: usize| cols.get(i).copied().unwrap_or(0);
        Some(CpuTimes {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        })
    }
}

impl Serialize for CpuTimes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_array().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CpuTimes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let cols: Vec<u64> = Vec::deserialize(d)?;
        if cols.len() > 8 {
            return Err(serde::de::Error::invalid_length(
                cols.len(),
                &"4 to 8 columns",
            ));
        }
        CpuTimes::from_columns(&cols)
            .ok_or_else(|| serde::de::Error::invalid_length(cols.len(), &"4 to 8 columns"))
    }
}

/// `/proc/loadavg`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LoadAvg {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Runnable scheduling entities (threads) now.
    pub running: u64,
    /// All scheduling entities (threads, not processes).
    pub tasks: u64,
}

/// `/proc/meminfo`, converted to bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemInfo {
    pub total: u64,
    /// `MemAvailable` (kernels since 3.14); `None` on older ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    pub free: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// Memory a new workload could get without swapping: `MemAvailable`, or on kernels
    /// without it the old estimate free + buffers + page cache.
    pub fn available_or_estimate(&self) -> u64 {
        self.available.unwrap_or_else(|| {
            self.free
                .saturating_add(self.buffers)
                .saturating_add(self.cached)
        })
    }
}

/// A mounted filesystem with its statfs figures, in bytes and inodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MountStat {
    /// Mount point, unescaped (`/srv/my data`).
    pub mount: String,
    pub device: String,
    pub fstype: String,
    pub bytes_total: u64,
    /// Free for root (`f_bfree`).
    pub bytes_free: u64,
    /// Free for unprivileged users (`f_bavail`).
    pub bytes_avail: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

/// `/proc/diskstats` for one block device. Sectors are always 512 bytes there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DiskStat {
    pub name: String,
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    /// Milliseconds during which the device had I/O in flight.
    pub io_ms: u64,
}

/// `/proc/net/dev` for one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetStat {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    pub rx_drop: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
}

/// A running Docker container, from its cgroup files (v2, or v1 on older hosts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ContainerStat {
    /// Full container id (64 hex digits).
    pub id: String,
    /// Container name without the leading `/` when the reader may read Docker's
    /// `config.v2.json` (root), else the 12-digit short id.
    pub name: String,
    /// CPU time used since the container started (v2 `cpu.stat` `usage_usec`, v1
    /// `cpuacct.usage` / 1000).
    pub cpu_usage_usec: u64,
    /// Memory in use less inactive page cache (what `docker stats` shows).
    pub memory_bytes: u64,
}

impl ContainerStat {
    /// A container by id, named by `name` or else by its 12-digit short id.
    pub fn new(id: &str, name: Option<String>, cpu_usage_usec: u64, memory_bytes: u64) -> Self {
        Self {
            id: id.to_owned(),
            name: name.unwrap_or_else(|| id.chars().take(12).collect()),
            cpu_usage_usec,
            memory_bytes,
        }
    }
}
