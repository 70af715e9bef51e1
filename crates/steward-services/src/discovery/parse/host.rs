//! The host's own facts: operating system, CPU, memory, uptime, disks and systemd units.
use steward_proto::{CpuInfo, Disk, MemoryInfo, OsInfo};

fn unquote(v: &str) -> String {
    let v = v.trim();
    let inner = if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    inner
        .replace("\\\"", "\"")
        .replace("\\$", "$")
        .replace("\\`", "`")
        .replace("\\\\", "\\")
}

/// `/etc/os-release`.
pub fn parse_os_release(lines: &[String]) -> Option<OsInfo> {
    let mut os = OsInfo::default();
    for line in lines {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = Some(unquote(v)).filter(|v| !v.is_empty());
        match k.trim() {
            "ID" => os.id = v,
            "NAME" => os.name = v,
            "VERSION_ID" => os.version = v,
            "PRETTY_NAME" => os.pretty_name = v,
            _ => {}
        }
    }
    (os != OsInfo::default()).then_some(os)
}

pub(super) fn parse_cpu(lines: &[String]) -> Option<CpuInfo> {
    let mut cpu = CpuInfo::default();
    for line in lines {
        if let Some(n) = line.trim().strip_prefix("cores=") {
            cpu.cores = n.trim().parse().ok().filter(|&n: &u32| n > 0);
        } else if let Some((_, model)) = line.split_once(':') {
            cpu.model = Some(model.trim().to_string()).filter(|m| !m.is_empty());
        }
    }
    (cpu != CpuInfo::default()).then_some(cpu)
}

pub(super) fn parse_meminfo(lines: &[String]) -> Option<MemoryInfo> {
    let mut m = MemoryInfo::default();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let mut parts = v.split_whitespace();
        let Some(n) = parts.next().and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = match parts.next() {
            Some("kB") => n.saturating_mul(1024),
            _ => n,
        };
        match k.trim() {
            "MemTotal" => m.total_bytes = Some(bytes),
            "MemAvailable" => m.available_bytes = Some(bytes),
            "SwapTotal" => m.swap_total_bytes = Some(bytes),
            "SwapFree" => m.swap_free_bytes = Some(bytes),
            _ => {}
        }
    }
    (m != MemoryInfo::default()).then_some(m)
}

pub(super) fn parse_uptime(lines: &[String]) -> Option<u64> {
    let first = lines.first()?.split_whitespace().next()?;
    let secs: f64 = first.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

/// File systems that are not disks.
const PSEUDO_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "overlay",
    "squashfs",
    "proc",
    "sysfs",
    "devpts",
    "ramfs",
    "nsfs",
    "efivarfs",
    "autofs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "pstore",
    "bpf",
    "binfmt_misc",
];

/// `df -PTk`: Filesystem, Type, blocks, Used, Available, Capacity, Mounted on.
pub fn parse_df(lines: &[String]) -> Vec<Disk> {
    let mut block = 1024u64;
    let mut disks: Vec<Disk> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"Filesystem") {
            if let Some(b) =
                f.get(2)
                    .and_then(|h| h.strip_suffix("-blocks"))
                    .and_then(|n| match n {
                        "1K" => Some(1024),
                        n => n.parse::<u64>().ok(),
                    })
            {
                block = b;
            }
            continue;
        }
        if f.len() < 7 {
            continue;
        }
        let (Ok(size), Ok(used)) = (f[2].parse::<u64>(), f[3].parse::<u64>()) else {
            continue;
        };
        let fs_type = f[1].to_string();
        if size == 0 || PSEUDO_FS.contains(&fs_type.as_str()) {
            continue;
        }
        let mount = f[6..].join(" ");
        if disks.iter().any(|d| d.mount == mount) {
            continue;
        }
        disks.push(Disk {
            mount,
            source: f[0].to_string(),
            fs_type,
            size_bytes: size.saturating_mul(block),
            used_bytes: used.saturating_mul(block),
        });
    }
    disks
}

/// `systemctl list-units --no-legend --plain`: the first column of each line.
pub fn parse_units(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        // `--plain` still prints a bullet on some versions.
        .filter_map(|l| {
            l.trim_start_matches(['●', '*', ' '])
                .split_whitespace()
                .next()
        })
        .map(str::to_string)
        .filter(|u| u.contains('.') && !u.is_empty())
        .collect()
}
