//! Parsers for the kernel's text files (`/proc/stat`, `/proc/meminfo`, …) and the cgroup v2
//! files of Docker containers, plus the rules that decide which mounts, disks and interfaces
//! count. Pure functions on text: the agent feeds them files it read, the hub feeds them the
//! agentless script's output.
//!
//! Every parser takes untrusted text. Line parsers skip lines they do not understand (a newer
//! kernel may add columns or lines) and fail only when nothing usable is left; none panics.

use std::fmt;

use crate::snapshot::{
    ContainerStat, CoreTimes, CpuTimes, DiskStat, LoadAvg, MemInfo, MountStat, NetStat,
};

/// Why a file could not be read as what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Which file or section (`"/proc/stat"`).
    pub source: &'static str,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(source: &'static str, message: impl Into<String>) -> ParseError {
        ParseError {
            source,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Reads a non-negative finite decimal (load averages, uptime).
fn parse_gauge(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// `/proc/stat`: the all-CPU line and each core's line.
pub fn parse_stat(text: &str) -> Result<(CpuTimes, Vec<CoreTimes>), ParseError> {
    let mut total = None;
    let mut cores = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(id) = name.strip_prefix("cpu") else {
            continue;
        };
        // At most 10 columns exist today (guest and guest_nice follow steal); we keep 8.
        let cols: Option<Vec<u64>> = fields.take(8).map(|f| f.parse::<u64>().ok()).collect();
        let Some(times) = cols.as_deref().and_then(CpuTimes::from_columns) else {
            continue;
        };
        if id.is_empty() {
            total.get_or_insert(times);
        } else if let Ok(id) = id.parse::<u32>()
            && cores.len() < MAX_CORES
        {
            cores.push(CoreTimes { id, times });
        }
    }
    let total = total.ok_or_else(|| ParseError::new("/proc/stat", "no \"cpu\" line"))?;
    Ok((total, cores))
}

/// More cores than any machine has; bounds what a garbled file can make us allocate.
pub const MAX_CORES: usize = 8192;

/// `/proc/loadavg`: `0.52 0.58 0.59 3/158 13512`.
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let err = || ParseError::new("/proc/loadavg", "expected \"l1 l5 l15 running/tasks pid\"");
    let mut f = text.split_ascii_whitespace();
    let load1 = f.next().and_then(parse_gauge).ok_or_else(err)?;
    let load5 = f.next().and_then(parse_gauge).ok_or_else(err)?;
    let load15 = f.next().and_then(parse_gauge).ok_or_else(err)?;
    let (running, tasks) = f
        .next()
        .and_then(|s| s.split_once('/'))
        .and_then(|(r, t)| Some((r.parse().ok()?, t.parse().ok()?)))
        .ok_or_else(err)?;
    Ok(LoadAvg {
        load1,
        load5,
        load15,
        running,
        tasks,
    })
}

/// `/proc/meminfo`, values converted from kB to bytes. `MemTotal` is required.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut total = None;
    let mut mem = MemInfo::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut f = rest.split_ascii_whitespace();
        let Some(value) = f.next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = match f.next() {
            Some("kB") => value.saturating_mul(1024),
            None => value,
            Some(_) => continue,
        };
        match key {
            "MemTotal" => total = Some(bytes),
            "MemAvailable" => mem.available = Some(bytes),
            "MemFree" => mem.free = bytes,
            "Buffers" => mem.buffers = bytes,
            "Cached" => mem.cached = bytes,
            "SwapTotal" => mem.swap_total = bytes,
            "SwapFree" => mem.swap_free = bytes,
            _ => {}
        }
    }
    mem.total = total.ok_or_else(|| ParseError::new("/proc/meminfo", "no MemTotal line"))?;
    Ok(mem)
}

/// `/proc/uptime`: seconds since boot (the first field).
pub fn parse_uptime(text: &str) -> Result<f64, ParseError> {
    text.split_ascii_whitespace()
        .next()
        .and_then(parse_gauge)
        .ok_or_else(|| ParseError::new("/proc/uptime", "expected seconds since boot"))
}

/// `/proc/diskstats`, whole devices only ([`is_counted_disk`]) that have seen any I/O.
pub fn parse_diskstats(text: &str) -> Vec<DiskStat> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        // major minor name, then at least the 11 classic counters.
        if f.len() < 14 || !is_counted_disk(f[2]) {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().ok();
        let (Some(reads), Some(read_sectors), Some(writes), Some(write_sectors), Some(io_ms)) =
            (n(3), n(5), n(7), n(9), n(12))
        else {
            continue;
        };
        if reads == 0 && writes == 0 && io_ms == 0 {
            continue;
        }
        if out.len() < MAX_ITEMS {
            out.push(DiskStat {
                name: f[2].to_owned(),
                reads,
                read_sectors,
                writes,
                write_sectors,
                io_ms,
            });
        }
    }
    out
}

/// Bounds the devices, interfaces, mounts and containers one snapshot keeps.
pub const MAX_ITEMS: usize = 1024;

/// Whether a block device counts for disk I/O: whole disks, device-mapper (LVM, LUKS) and
/// software RAID; not partitions (their I/O is already in their disk), loop, RAM and
/// compressed-RAM devices, floppies or optical drives.
pub fn is_counted_disk(name: &str) -> bool {
    const SKIP_PREFIXES: [&str; 5] = ["loop", "ram", "zram", "fd", "sr"];
    if name.is_empty() || SKIP_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    !is_partition(name)
}

/// sda1, vdb2, xvda1, hdc3; nvme0n1p2, mmcblk0p1, md0p1, nbd0p1.
fn is_partition(name: &str) -> bool {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return false;
    }
    let stem = &name[..name.len() - digits];
    for p in ["sd", "vd", "xvd", "hd"] {
        if let Some(letters) = stem.strip_prefix(p) {
            return !letters.is_empty() && letters.bytes().all(|b| b.is_ascii_lowercase());
        }
    }
    // "<device with a number>p<N>"
    stem.strip_suffix('p')
        .is_some_and(|dev| dev.ends_with(|c: char| c.is_ascii_digit()))
}

/// `/proc/net/dev`, counted interfaces only ([`is_counted_interface`]).
pub fn parse_net_dev(text: &str) -> Vec<NetStat> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) || !is_counted_interface(name) {
            continue;
        }
        let cols: Option<Vec<u64>> = rest
            .split_ascii_whitespace()
            .take(16)
            .map(|f| f.parse::<u64>().ok())
            .collect();
        let Some(c) = cols.filter(|c| c.len() == 16) else {
            continue;
        };
        if out.len() < MAX_ITEMS {
            out.push(NetStat {
                name: name.to_owned(),
                rx_bytes: c[0],
                rx_packets: c[1],
                rx_errs: c[2],
                rx_drop: c[3],
                tx_bytes: c[8],
                tx_packets: c[9],
                tx_errs: c[10],
                tx_drop: c[11],
            });
        }
    }
    out
}

/// Whether an interface counts: everything but loopback (its traffic never leaves the host)
/// and the host ends of container veth pairs (their traffic is already counted on the bridge,
/// and there is one per container).
pub fn is_counted_interface(name: &str) -> bool {
    name != "lo" && !name.starts_with("veth")
}

/// One line of `/proc/mounts` (or `/proc/self/mounts`), unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub device: String,
    pub mount: String,
    pub fstype: String,
}

/// `/proc/mounts`, every entry, fields unescaped (`\040` is a space).
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_ascii_whitespace();
            Some(MountEntry {
                device: unescape_mount_field(f.next()?),
                mount: unescape_mount_field(f.next()?),
                fstype: f.next()?.to_owned(),
            })
        })
        .take(MAX_MOUNT_LINES)
        .collect()
}

/// Bounds how much of a mount table is read (containers hosts can have thousands).
const MAX_MOUNT_LINES: usize = 65_536;

/// Undoes the kernel's octal escapes of space, tab, newline and backslash.
pub fn unescape_mount_field(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (u32::from(b[i + 1] - b'0') << 6)
                | (u32::from(b[i + 2] - b'0') << 3)
                | u32::from(b[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Filesystem types that hold no user data (kernel interfaces, RAM-backed or read-only images).
pub fn is_pseudo_fs(fstype: &str) -> bool {
    const PSEUDO: [&str; 30] = [
        "proc",
        "sysfs",
        "devtmpfs",
        "devpts",
        "tmpfs",
        "ramfs",
        "cgroup",
        "cgroup2",
        "securityfs",
        "pstore",
        "bpf",
        "debugfs",
        "tracefs",
        "configfs",
        "fusectl",
        "mqueue",
        "hugetlbfs",
        "autofs",
        "binfmt_misc",
        "nsfs",
        "rpc_pipefs",
        "squashfs",
        "efivarfs",
        "selinuxfs",
        "overlay",
        "nfsd",
        "fuse.lxcfs",
        "fuse.gvfsd-fuse",
        "fuse.portal",
        "iso9660",
    ];
    PSEUDO.contains(&fstype)
}

/// Whether a mount is worth watching: real filesystems, plus `/tmp` on tmpfs (filling it
/// breaks programs) and `/` on overlay (the root of a container host). Mounts below kernel
/// trees and container runtimes' private directories are left out.
pub fn is_counted_mount(mount: &str, fstype: &str) -> bool {
    const SKIP_UNDER: [&str; 8] = [
        "/proc/",
        "/sys/",
        "/dev/",
        "/run/credentials/",
        "/var/lib/docker/",
        "/var/lib/containers/",
        "/var/lib/kubelet/",
        "/snap/",
    ];
    if SKIP_UNDER.iter().any(|p| mount.starts_with(p)) {
        return false;
    }
    match fstype {
        "tmpfs" => mount == "/tmp",
        "overlay" => mount == "/",
        _ => !is_pseudo_fs(fstype),
    }
}

/// Counted mounts ([`is_counted_mount`]), one per device: a device mounted twice (bind mounts,
/// btrfs subvolumes) shows the same space, so only its shortest mount point is kept.
pub fn select_mounts(entries: Vec<MountEntry>) -> Vec<MountEntry> {
    let keep = select_mount_indices(&entries);
    let mut entries: Vec<Option<MountEntry>> = entries.into_iter().map(Some).collect();
    keep.into_iter()
        .filter_map(|i| entries.get_mut(i).and_then(Option::take))
        .collect()
}

/// [`select_mounts`] as indices into `entries`, in mount-table order.
pub fn select_mount_indices(entries: &[MountEntry]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if !is_counted_mount(&e.mount, &e.fstype) {
            continue;
        }
        // tmpfs and overlay devices are arbitrary names, never shared storage.
        let shared = !matches!(e.fstype.as_str(), "tmpfs" | "overlay");
        let same_device = out
            .iter()
            .position(|&o| shared && entries[o].device == e.device);
        match same_device {
            Some(k) if e.mount.len() < entries[out[k]].mount.len() => out[k] = i,
            Some(_) => {}
            None if out.len() < MAX_ITEMS => out.push(i),
            None => {}
        }
    }
    out
}

/// statfs figures for a mount (`f_frsize`, `f_blocks`, `f_bfree`, `f_bavail`, `f_files`,
/// `f_ffree`). `None` for a filesystem without blocks (nothing to watch).
pub fn mount_stat(
    entry: &MountEntry,
    block_size: u64,
    blocks: u64,
    blocks_free: u64,
    blocks_avail: u64,
    inodes: u64,
    inodes_free: u64,
) -> Option<MountStat> {
    if blocks == 0 || block_size == 0 {
        return None;
    }
    Some(MountStat {
        mount: entry.mount.clone(),
        device: entry.device.clone(),
        fstype: entry.fstype.clone(),
        bytes_total: blocks.saturating_mul(block_size),
        bytes_free: blocks_free.min(blocks).saturating_mul(block_size),
        bytes_avail: blocks_avail.min(blocks).saturating_mul(block_size),
        inodes_total: inodes,
        inodes_free: inodes_free.min(inodes),
    })
}

/// The value of `key` in a flat-keyed cgroup file (`cpu.stat`, `memory.stat`).
pub fn parse_flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The container id in a cgroup directory name: `docker-<id>.scope` (systemd driver) or
/// `<id>` (cgroupfs driver, under `docker/`).
pub fn container_id_from_cgroup(dir_name: &str) -> Option<&str> {
    let id = dir_name.strip_prefix("docker-").unwrap_or(dir_name);
    let id = id.strip_suffix(".scope").unwrap_or(id);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// The name in Docker's `config.v2.json` (`"Name":"/web-1"` → `web-1`). Only the top-level
/// name starts with `/`, so the first such match is it; the file is not parsed as a whole
/// because it also holds the container's environment.
pub fn docker_name_from_config(text: &str) -> Option<String> {
    const KEY: &str = "\"Name\":\"/";
    let start = text.find(KEY)? + KEY.len();
    let rest = &text[start..];
    let name = &rest[..rest.find('"')?];
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    valid.then(|| name.to_owned())
}

/// A container from its cgroup v1 files (older hosts: Debian 10, Ubuntu 20.04, RHEL 8):
/// `cpuacct.usage` (nanoseconds), `memory.usage_in_bytes` and `memory.stat`. Memory is the
/// usage minus `total_inactive_file`, as `docker stats` shows it on cgroup v1.
pub fn container_stat_v1(
    id: &str,
    name: Option<String>,
    cpuacct_usage: &str,
    memory_usage: &str,
    memory_stat: Option<&str>,
) -> Option<ContainerStat> {
    let nanos: u64 = cpuacct_usage.trim().parse().ok()?;
    let usage: u64 = memory_usage.trim().parse().ok()?;
    let inactive = memory_stat
        .and_then(|s| parse_flat_keyed(s, "total_inactive_file"))
        .unwrap_or(0);
    Some(ContainerStat::new(
        id,
        name,
        nanos / 1000,
        usage.saturating_sub(inactive),
    ))
}

/// A container from its cgroup v2 files: `cpu.stat`, `memory.current` and `memory.stat`.
/// Memory is `memory.current` minus `inactive_file`, as `docker stats` shows it.
pub fn container_stat(
    id: &str,
    name: Option<String>,
    cpu_stat: &str,
    memory_current: &str,
    memory_stat: Option<&str>,
) -> Option<ContainerStat> {
    let cpu_usage_usec = parse_flat_keyed(cpu_stat, "usage_usec")?;
    let current: u64 = memory_current.trim().parse().ok()?;
    let inactive = memory_stat
        .and_then(|s| parse_flat_keyed(s, "inactive_file"))
        .unwrap_or(0);
    Some(ContainerStat::new(
        id,
        name,
        cpu_usage_usec,
        current.saturating_sub(inactive),
    ))
}

#[cfg(test)]
mod tests;
