//! Agentless collection: the one read-only POSIX `sh` script the hub runs over the pooled SSH
//! connection each interval, and [`parse_agentless`], which turns its output into the same
//! [`RawSnapshot`] the agent sends.
//!
//! The script prints sections between whole-line markers (`@@steward-metrics@@ <name>`).
//! Every value that a user of the host could influence (mount points, device names) is
//! printed after a fixed prefix on its own line, so it can never form a marker line. A file
//! or command that is missing leaves its section empty and never stops the script.

use crate::parse::{self, MountEntry, ParseError};
use crate::snapshot::RawSnapshot;

/// The marker that starts a section; the section name follows after a space.
pub const MARKER: &str = "@@steward-metrics@@";

/// The script the hub runs (`sh -c`, or fed to `sh -s`). Read-only: it reads `/proc`,
/// `/sys/fs/cgroup` and Docker's container configs, calls `stat -f` once per watched mount
/// (under `timeout 5` when available, against hung network filesystems) and, on systemd
/// hosts, `systemctl list-units --state=failed`. It needs no root; as root it also reports
/// Docker container names.
pub const AGENTLESS_SCRIPT: &str = r#"LC_ALL=C; export LC_ALL
m() { printf '@@steward-metrics@@ %s\n' "$1"; }
for f in stat loadavg meminfo uptime diskstats; do m "$f"; cat "/proc/$f" 2>/dev/null; done
m netdev; cat /proc/net/dev 2>/dev/null
m mounts
T=; command -v timeout >/dev/null 2>&1 && T='timeout 5'
if [ -r /proc/mounts ]; then
  while read -r dev mnt fs rest; do
    case "$fs" in proc|sysfs|devtmpfs|devpts|cgroup|cgroup2|securityfs|pstore|bpf|debugfs|tracefs|configfs|fusectl|mqueue|hugetlbfs|autofs|binfmt_misc|nsfs|rpc_pipefs|squashfs|ramfs|efivarfs|selinuxfs|nfsd) continue;; esac
    case "$mnt" in /proc/*|/sys/*|/dev/*|/run/credentials/*|/var/lib/docker/*|/var/lib/containers/*|/var/lib/kubelet/*|/snap/*) continue;; esac
    case "$fs" in tmpfs) [ "$mnt" = /tmp ] || continue;; overlay) [ "$mnt" = / ] || continue;; esac
    s=$($T stat -f -c '%S %b %f %a %c %d' "$(printf '%b' "$mnt")" 2>/dev/null) || continue
    printf 'm %s %s %s %s\n' "$mnt" "$dev" "$fs" "$s"
  done < /proc/mounts
fi
m procs
set -- /proc/[0-9]*; [ -e "$1" ] && echo "$#"
m systemd
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  u=$(systemctl list-units --state=failed --no-legend --plain 2>/dev/null) && if [ -n "$u" ]; then printf '%s\n' "$u" | wc -l; else echo 0; fi
fi
m docker
if [ -S /var/run/docker.sock ] || [ -S /run/docker.sock ]; then
  echo present
  cid() { id=${1##*/}; id=${id#docker-}; id=${id%.scope}; case "$id" in *[!0-9a-f]*|'') return 1;; esac; }
  kv() { v=-; [ -r "$2" ] && while read -r k x; do [ "$k" = "$1" ] && v=$x; done < "$2"; }
  cname() {
    n=-; j=/var/lib/docker/containers/$id/config.v2.json
    if [ -r "$j" ]; then n=$(grep -o '"Name":"/[^"]*"' "$j" 2>/dev/null | head -n 1); n=${n#*:\"/}; n=${n%\"}; [ -n "$n" ] || n=-; fi
  }
  for d in /sys/fs/cgroup/system.slice/docker-*.scope /sys/fs/cgroup/docker/*; do
    [ -r "$d/cpu.stat" ] && [ -r "$d/memory.current" ] && cid "$d" || continue
    kv usage_usec "$d/cpu.stat"; u=$v
    c=-; read -r c < "$d/memory.current"
    kv inactive_file "$d/memory.stat"; cname
    echo "c $id $u $c $v $n"
  done
  # cgroup v1 (older hosts): CPU in nanoseconds and memory in their own hierarchies.
  for d in /sys/fs/cgroup/cpuacct/system.slice/docker-*.scope /sys/fs/cgroup/cpuacct/docker/*; do
    md=/sys/fs/cgroup/memory/${d#/sys/fs/cgroup/cpuacct/}
    [ -r "$d/cpuacct.usage" ] && [ -r "$md/memory.usage_in_bytes" ] && cid "$d" || continue
    u=-; read -r u < "$d/cpuacct.usage"; case "$u" in ''|*[!0-9]*) u=-;; *) u=$((u / 1000));; esac
    c=-; read -r c < "$md/memory.usage_in_bytes"
    kv total_inactive_file "$md/memory.stat"; cname
    echo "c $id $u $c $v $n"
  done
fi
m end
"#;

/// Parses the script's output into a snapshot taken at `ts_ms` (the caller's clock: the
/// hub's when it polled). Sections that are missing or garbled stay empty; the only error is
/// output without a readable `/proc/stat` section (not Linux, or not our script).
pub fn parse_agentless(output: &str, ts_ms: i64) -> Result<RawSnapshot, ParseError> {
    let mut snap = RawSnapshot {
        ts_ms,
        ..RawSnapshot::default()
    };
    let mut stat = None;
    for (name, body) in sections(output) {
        match name {
            "stat" => stat = Some(parse::parse_stat(body)),
            "loadavg" => snap.load = parse::parse_loadavg(body).ok(),
            "meminfo" => snap.mem = parse::parse_meminfo(body).ok(),
            "uptime" => snap.uptime_secs = parse::parse_uptime(body).ok(),
            "diskstats" => snap.disks = parse::parse_diskstats(body),
            "netdev" => snap.nets = parse::parse_net_dev(body),
            "mounts" => snap.mounts = parse_mount_lines(body),
            "procs" => snap.procs = body.trim().parse().ok(),
            "systemd" => snap.systemd_failed = body.trim().parse().ok(),
            "docker" => snap.docker = parse_docker_lines(body),
            _ => {}
        }
    }
    let (cpu, cores) = stat.unwrap_or_else(|| {
        Err(ParseError::new(
            "agentless output",
            "no /proc/stat section: the host is not Linux or the output is not the script's",
        ))
    })?;
    snap.cpu = Some(cpu);
    snap.cores = cores;
    Ok(snap)
}

/// Splits the output at marker lines into `(name, body)` pairs; text before the first
/// marker (a login banner, say) is ignored.
fn sections(output: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    let mut pos = 0;
    for line in output.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let Some(name) = line
            .trim_end_matches(['\n', '\r'])
            .strip_prefix(MARKER)
            .and_then(|rest| rest.strip_prefix(' '))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase()))
        else {
            continue;
        };
        if let Some((prev, body_start)) = current.take() {
            out.push((prev, &output[body_start..start]));
        }
        current = Some((name, pos));
    }
    if let Some((prev, body_start)) = current {
        out.push((prev, &output[body_start..]));
    }
    out
}

/// `m <mount> <device> <fstype> <frsize> <blocks> <bfree> <bavail> <files> <ffree>`, mount
/// and device still escaped as in `/proc/mounts`.
fn parse_mount_lines(body: &str) -> Vec<crate::snapshot::MountStat> {
    let mut entries = Vec::new();
    let mut figures = Vec::new();
    for line in body.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() != 10 || f[0] != "m" {
            continue;
        }
        let nums: Option<Vec<u64>> = f[4..].iter().map(|v| v.parse().ok()).collect();
        let Some(nums) = nums else { continue };
        entries.push(MountEntry {
            mount: parse::unescape_mount_field(f[1]),
            device: parse::unescape_mount_field(f[2]),
            fstype: f[3].to_owned(),
        });
        figures.push(nums);
    }
    // The same selection as the agent's.
    parse::select_mount_indices(&entries)
        .into_iter()
        .filter_map(|i| {
            let n = &figures[i];
            parse::mount_stat(&entries[i], n[0], n[1], n[2], n[3], n[4], n[5])
        })
        .collect()
}

/// `present`, then `c <id> <usage_usec> <memory> <inactive_file> <name>` per container (`-`
/// for a value that could not be read); on cgroup v1 the script has already turned
/// `cpuacct.usage` into microseconds, and its memory figures are `memory.usage_in_bytes` and
/// `total_inactive_file`.
fn parse_docker_lines(body: &str) -> Option<Vec<crate::snapshot::ContainerStat>> {
    let mut lines = body.lines();
    if lines.next()?.trim() != "present" {
        return None;
    }
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() != 6 || f[0] != "c" || out.len() >= parse::MAX_ITEMS {
            continue;
        }
        let Some(id) = parse::container_id_from_cgroup(f[1]) else {
            continue;
        };
        let name = parse::docker_name_from_config(&format!("\"Name\":\"/{}\"", f[5]))
            .filter(|_| f[5] != "-");
        let inactive = (f[4] != "-").then(|| format!("inactive_file {}", f[4]));
        if let Some(c) = parse::container_stat(
            id,
            name,
            &format!("usage_usec {}", f[2]),
            f[3],
            inactive.as_deref(),
        ) {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
