//! Reads this host's counters into a [`RawSnapshot`]: the kernel files through
//! `steward_metrics::parse`, statfs through rustix, Docker's cgroup files (v2 or v1), and (every 30 s at
//! most) the failed systemd units. Needs no root. Runs on its own thread because statfs of a
//! hung network filesystem can block.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use steward_metrics::parse;
use steward_metrics::{ContainerStat, RawSnapshot};

/// How often the failed-unit count is asked of systemctl (it is a process start).
const SYSTEMD_EVERY: Duration = Duration::from_secs(30);
/// How long systemctl may take before it is killed.
const SYSTEMD_TIMEOUT: Duration = Duration::from_secs(5);
/// How often container names are read again (a container can be renamed).
const NAMES_EVERY: Duration = Duration::from_secs(300);

/// Where one cgroup layout keeps the containers' directories (the systemd driver's
/// `system.slice/docker-<id>.scope`, the cgroupfs driver's `docker/<id>`) and the files with
/// their CPU and memory figures.
struct DockerLayout {
    cpu_dir: &'static str,
    memory_dir: &'static str,
    cpu_file: &'static str,
    memory_file: &'static str,
    /// cgroup v1 (`cpuacct.usage` in ns, `total_inactive_file`) rather than v2.
    v1: bool,
}

const fn v2(dir: &'static str) -> DockerLayout {
    DockerLayout {
        cpu_dir: dir,
        memory_dir: dir,
        cpu_file: "cpu.stat",
        memory_file: "memory.current",
        v1: false,
    }
}

const fn v1(cpu_dir: &'static str, memory_dir: &'static str) -> DockerLayout {
    DockerLayout {
        cpu_dir,
        memory_dir,
        cpu_file: "cpuacct.usage",
        memory_file: "memory.usage_in_bytes",
        v1: true,
    }
}

/// cgroup v2 first; cgroup v1 (older hosts), whose CPU and memory hierarchies are apart.
const DOCKER_LAYOUTS: [DockerLayout; 4] = [
    v2("/sys/fs/cgroup/system.slice"),
    v2("/sys/fs/cgroup/docker"),
    v1(
        "/sys/fs/cgroup/cpuacct/system.slice",
        "/sys/fs/cgroup/memory/system.slice",
    ),
    v1(
        "/sys/fs/cgroup/cpuacct/docker",
        "/sys/fs/cgroup/memory/docker",
    ),
];
const DOCKER_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

/// Reads snapshots, keeping what is worth keeping between them.
pub struct Collector {
    text: String,
    extra: String,
    systemd: Option<(Instant, Option<u64>)>,
    names: HashMap<String, String>,
    names_read: Option<Instant>,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    pub fn new() -> Collector {
        Collector {
            text: String::with_capacity(16 * 1024),
            extra: String::with_capacity(4 * 1024),
            systemd: None,
            names: HashMap::new(),
            names_read: None,
        }
    }

    /// One reading, stamped `ts_ms`. What cannot be read is left out.
    pub fn collect(&mut self, ts_ms: i64) -> RawSnapshot {
        let mut s = RawSnapshot {
            ts_ms,
            ..RawSnapshot::default()
        };
        if read(Path::new("/proc/stat"), &mut self.text)
            && let Ok((cpu, cores)) = parse::parse_stat(&self.text)
        {
            s.cpu = Some(cpu);
            s.cores = cores;
        }
        if read(Path::new("/proc/loadavg"), &mut self.text) {
            s.load = parse::parse_loadavg(&self.text).ok();
        }
        if read(Path::new("/proc/meminfo"), &mut self.text) {
            s.mem = parse::parse_meminfo(&self.text).ok();
        }
        if read(Path::new("/proc/uptime"), &mut self.text) {
            s.uptime_secs = parse::parse_uptime(&self.text).ok();
        }
        if read(Path::new("/proc/diskstats"), &mut self.text) {
            s.disks = parse::parse_diskstats(&self.text);
        }
        if read(Path::new("/proc/net/dev"), &mut self.text) {
            s.nets = parse::parse_net_dev(&self.text);
        }
        if read(Path::new("/proc/self/mounts"), &mut self.text) {
            s.mounts = parse::select_mounts(parse::parse_mounts(&self.text))
                .iter()
                .filter_map(|m| {
                    let v = rustix::fs::statvfs(m.mount.as_str()).ok()?;
                    parse::mount_stat(
                        m, v.f_frsize, v.f_blocks, v.f_bfree, v.f_bavail, v.f_files, v.f_ffree,
                    )
                })
                .collect();
        }
        s.procs = count_processes();
        s.systemd_failed = self.systemd_failed();
        s.docker = self.docker();
        s
    }

    fn systemd_failed(&mut self) -> Option<u64> {
        if let Some((at, value)) = self.systemd
            && at.elapsed() < SYSTEMD_EVERY
        {
            return value;
        }
        let value = if Path::new("/run/systemd/system").is_dir() {
            failed_units()
        } else {
            None
        };
        self.systemd = Some((Instant::now(), value));
        value
    }

    fn docker(&mut self) -> Option<Vec<ContainerStat>> {
        if !DOCKER_SOCKETS.iter().any(|p| Path::new(p).exists()) {
            return None;
        }
        let refresh_names = self.names_read.is_none_or(|at| at.elapsed() >= NAMES_EVERY);
        if refresh_names {
            self.names.clear();
            self.names_read = Some(Instant::now());
        }
        let mut out: Vec<ContainerStat> = Vec::new();
        for layout in &DOCKER_LAYOUTS {
            for (id, cpu) in container_dirs(Path::new(layout.cpu_dir)) {
                let Some(leaf) = cpu.file_name() else {
                    continue;
                };
                let memory = Path::new(layout.memory_dir).join(leaf);
                if out.iter().any(|c| c.id == id)
                    || !read(&cpu.join(layout.cpu_file), &mut self.text)
                    || !read(&memory.join(layout.memory_file), &mut self.extra)
                {
                    continue;
                }
                let memory_now = self.extra.clone();
                let name = self.name(&id);
                let memory_stat = read(&memory.join("memory.stat"), &mut self.extra)
                    .then_some(self.extra.as_str());
                let stat = if layout.v1 {
                    parse::container_stat_v1
                } else {
                    parse::container_stat
                };
                if let Some(c) = stat(&id, name, &self.text, &memory_now, memory_stat)
                    && out.len() < parse::MAX_ITEMS
                {
                    out.push(c);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Some(out)
    }
}

impl Collector {
    /// A container's name from Docker's config (readable by root), kept for [`NAMES_EVERY`].
    fn name(&mut self, id: &str) -> Option<String> {
        if let Some(n) = self.names.get(id) {
            return Some(n.clone());
        }
        let name = fs::read_to_string(format!("/var/lib/docker/containers/{id}/config.v2.json"))
            .ok()
            .and_then(|t| parse::docker_name_from_config(&t))?;
        self.names.insert(id.to_owned(), name.clone());
        Some(name)
    }
}

/// The containers' cgroup directories below `dir`: (id, path).
fn container_dirs(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let id = e
                .file_name()
                .to_str()
                .and_then(parse::container_id_from_cgroup)?
                .to_owned();
            Some((id, e.path()))
        })
        .collect()
}

/// Reads a small file into `buf` (reused, so a reading allocates little).
fn read(path: &Path, buf: &mut String) -> bool {
    buf.clear();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_string(buf))
        .is_ok()
}

/// Processes: the numeric entries of `/proc`.
fn count_processes() -> Option<u64> {
    let entries = fs::read_dir("/proc").ok()?;
    let n = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .count();
    u64::try_from(n).ok()
}

/// `systemctl list-units --state=failed`, counted; `None` if it fails or hangs.
fn failed_units() -> Option<u64> {
    let mut child = Command::new("systemctl")
        .args([
            "list-units",
            "--state=failed",
            "--no-legend",
            "--plain",
            "--no-pager",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < SYSTEMD_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let lines = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count();
    u64::try_from(lines).ok()
}
