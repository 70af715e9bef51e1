//! The metric catalog: every name [`crate::derive`] can produce, with its unit, what its
//! label holds and what it means. The UI and the storage layer read names from here.

use serde::Serialize;

/// The unit of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// 0–100 (a container's CPU may exceed 100: 100 per core).
    Percent,
    Bytes,
    BytesPerS,
    /// Events (operations, packets, errors) per second.
    PerS,
    Seconds,
    Count,
    /// Run-queue load average.
    Load,
}

/// One entry of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricInfo {
    pub name: &'static str,
    pub unit: Unit,
    /// What the point's label holds (`""` when the metric has no label).
    pub label: &'static str,
    pub description: &'static str,
    /// A rate, so the first snapshot after a start or a counter reset gives none.
    pub rate: bool,
}

const fn m(
    name: &'static str,
    unit: Unit,
    label: &'static str,
    rate: bool,
    description: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        unit,
        label,
        description,
        rate,
    }
}

const CPU_LABEL: &str = "\"\" for all CPUs, \"cpuN\" per core";

static CATALOG: [MetricInfo; 35] = [
    m(
        "cpu.usage",
        Unit::Percent,
        CPU_LABEL,
        true,
        "CPU busy: everything but idle and iowait (user + system + steal)",
    ),
    m(
        "cpu.user",
        Unit::Percent,
        CPU_LABEL,
        true,
        "CPU in user space, niced processes included",
    ),
    m(
        "cpu.system",
        Unit::Percent,
        CPU_LABEL,
        true,
        "CPU in the kernel, interrupt handling included",
    ),
    m(
        "cpu.iowait",
        Unit::Percent,
        CPU_LABEL,
        true,
        "CPU idle while disk I/O was outstanding",
    ),
    m(
        "cpu.steal",
        Unit::Percent,
        CPU_LABEL,
        true,
        "CPU time the hypervisor gave to other guests",
    ),
    m(
        "load.1",
        Unit::Load,
        "",
        false,
        "Load average over 1 minute",
    ),
    m(
        "load.5",
        Unit::Load,
        "",
        false,
        "Load average over 5 minutes",
    ),
    m(
        "load.15",
        Unit::Load,
        "",
        false,
        "Load average over 15 minutes",
    ),
    m("mem.total", Unit::Bytes, "", false, "Physical memory"),
    m(
        "mem.used",
        Unit::Bytes,
        "",
        false,
        "Memory in use: total minus available",
    ),
    m(
        "mem.available",
        Unit::Bytes,
        "",
        false,
        "Memory available to new work without swapping (MemAvailable)",
    ),
    m(
        "mem.used_pct",
        Unit::Percent,
        "",
        false,
        "Memory in use, percent of total",
    ),
    m("swap.total", Unit::Bytes, "", false, "Swap space"),
    m("swap.used", Unit::Bytes, "", false, "Swap in use"),
    m(
        "disk.total",
        Unit::Bytes,
        "mount point",
        false,
        "Filesystem size",
    ),
    m(
        "disk.used",
        Unit::Bytes,
        "mount point",
        false,
        "Filesystem space in use",
    ),
    m(
        "disk.used_pct",
        Unit::Percent,
        "mount point",
        false,
        "Space in use, percent of what users can have (as df shows it)",
    ),
    m(
        "disk.inodes_total",
        Unit::Count,
        "mount point",
        false,
        "Inodes on the filesystem",
    ),
    m(
        "disk.inodes_used",
        Unit::Count,
        "mount point",
        false,
        "Inodes in use",
    ),
    m(
        "diskio.read_bytes",
        Unit::BytesPerS,
        "device",
        true,
        "Bytes read from the device",
    ),
    m(
        "diskio.write_bytes",
        Unit::BytesPerS,
        "device",
        true,
        "Bytes written to the device",
    ),
    m(
        "diskio.read_ops",
        Unit::PerS,
        "device",
        true,
        "Reads completed",
    ),
    m(
        "diskio.write_ops",
        Unit::PerS,
        "device",
        true,
        "Writes completed",
    ),
    m(
        "diskio.busy_pct",
        Unit::Percent,
        "device",
        true,
        "Time the device had I/O in flight (utilisation)",
    ),
    m(
        "net.rx_bytes",
        Unit::BytesPerS,
        "interface",
        true,
        "Bytes received",
    ),
    m(
        "net.tx_bytes",
        Unit::BytesPerS,
        "interface",
        true,
        "Bytes sent",
    ),
    m(
        "net.rx_packets",
        Unit::PerS,
        "interface",
        true,
        "Packets received",
    ),
    m(
        "net.tx_packets",
        Unit::PerS,
        "interface",
        true,
        "Packets sent",
    ),
    m(
        "net.rx_errors",
        Unit::PerS,
        "interface",
        true,
        "Receive errors (bad frames, CRC, overruns)",
    ),
    m(
        "net.tx_errors",
        Unit::PerS,
        "interface",
        true,
        "Send errors",
    ),
    m(
        "uptime.seconds",
        Unit::Seconds,
        "",
        false,
        "Time since boot",
    ),
    m("procs.count", Unit::Count, "", false, "Processes"),
    m(
        "systemd.failed_units",
        Unit::Count,
        "",
        false,
        "systemd units in the failed state (systemd hosts only)",
    ),
    m(
        "docker.cpu_pct",
        Unit::Percent,
        "container name",
        true,
        "Container CPU, 100 per fully used core",
    ),
    m(
        "docker.mem_bytes",
        Unit::Bytes,
        "container name",
        false,
        "Container memory without inactive page cache (as docker stats)",
    ),
];

/// Every metric, in a stable order.
pub fn catalog() -> &'static [MetricInfo] {
    &CATALOG
}

/// The catalog entry of `name`.
pub fn info(name: &str) -> Option<&'static MetricInfo> {
    CATALOG.iter().find(|i| i.name == name)
}
