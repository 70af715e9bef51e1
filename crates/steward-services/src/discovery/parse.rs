//! Turns the discovery script's output into a [`ScanReport`]: pure functions, each tolerant of
//! missing, partial or garbled sections (what cannot be read is left out, and said so).
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use steward_proto::{
    CpuInfo, DetectedService, Disk, DockerContainer, DockerInfo, ListeningPort, MemoryInfo,
    NotVisible, OsInfo, ScanReport, SystemdInfo,
};

use super::script::marker;

/// The script's output, split at its markers.
#[derive(Debug, Default)]
pub struct Sections {
    /// Section name → its lines (without surrounding blank lines).
    pub text: BTreeMap<String, Vec<String>>,
    /// Notes printed by the script (`!code` lines), in order.
    pub notes: Vec<String>,
}

impl Sections {
    /// Splits `output` at the marker lines of `nonce`. Text before the first marker (a login
    /// banner, a shell's complaints) is ignored.
    pub fn split(output: &str, nonce: &str) -> Self {
        let m = marker(nonce);
        let mut s = Sections::default();
        let mut current: Option<String> = None;
        for line in output.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix(&m).and_then(|r| r.strip_prefix(' ')) {
                if let Some(note) = rest.strip_prefix('!') {
                    s.notes.push(note.trim().to_string());
                } else {
                    let name = rest.trim().to_string();
                    s.text.entry(name.clone()).or_default();
                    current = Some(name);
                }
                continue;
            }
            if let Some(name) = &current {
                s.text
                    .entry(name.clone())
                    .or_default()
                    .push(line.to_string());
            }
        }
        for lines in s.text.values_mut() {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            while lines.first().is_some_and(|l| l.trim().is_empty()) {
                lines.remove(0);
            }
        }
        s
    }

    fn lines(&self, name: &str) -> &[String] {
        self.text.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    fn first(&self, name: &str) -> Option<String> {
        self.lines(name)
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .map(str::to_string)
    }

    fn has(&self, name: &str) -> bool {
        self.text.contains_key(name)
    }
}

fn note(code: &str, message: impl Into<String>) -> NotVisible {
    NotVisible {
        code: code.into(),
        message: message.into(),
    }
}

/// Parses the whole output of a scan with `nonce`.
pub fn parse(output: &str, nonce: &str) -> ScanReport {
    let s = Sections::split(output, nonce);
    let mut r = ScanReport::default();
    let mut notes = Vec::new();

    let meta = key_values(s.lines("meta"));
    r.user = meta.get("user").filter(|u| !u.is_empty()).cloned();
    r.root = meta.get("uid").map(String::as_str) == Some("0");
    let ssh_port = meta
        .get("ssh_connection")
        .and_then(|c| c.split_whitespace().nth(3))
        .and_then(|p| p.parse::<u16>().ok());

    r.os = parse_os_release(s.lines("os_release"));
    if r.os.is_none() {
        notes.push(note(
            "os_release_missing",
            "/etc/os-release is missing or unreadable",
        ));
    }
    r.kernel = s.first("kernel");
    r.architecture = s.first("arch");
    r.hostname = s.first("hostname");
    r.cpu = parse_cpu(s.lines("cpu"));
    r.memory = parse_meminfo(s.lines("meminfo"));
    r.uptime_secs = parse_uptime(s.lines("uptime"));
    r.disks = parse_df(s.lines("df"));

    if s.has("proc_net_tcp") {
        r.ports = parse_proc_net_tcp(s.lines("proc_net_tcp"));
        notes.push(note(
            "ss_missing",
            "ss is not installed: listening ports were read from /proc/net/tcp, without their processes",
        ));
    } else if s.has("ss") {
        r.ports = parse_ss(s.lines("ss"));
        if !r.root && r.ports.iter().any(|p| p.process.is_none()) {
            notes.push(note(
                "port_processes_need_root",
                "the processes owning listening ports of other users are only visible to root",
            ));
        }
    }

    let processes: BTreeSet<String> = s
        .lines("processes")
        .iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace))
        .collect();

    if s.notes.iter().any(|n| n == "systemd_unavailable") {
        notes.push(note(
            "systemd_unavailable",
            "systemd is not the init system here (or systemctl is missing): no unit list",
        ));
    } else if s.has("systemd_running") {
        r.systemd = Some(SystemdInfo {
            running: parse_units(s.lines("systemd_running")),
            failed: parse_units(s.lines("systemd_failed")),
        });
    }

    if s.has("docker_version") {
        let (docker, docker_notes) = parse_docker(
            s.lines("docker_version"),
            s.lines("docker_ps"),
            s.lines("docker_volumes"),
        );
        r.docker = Some(docker);
        notes.extend(docker_notes);
    }

    r.services = detect_services(&s, &r.ports, &processes, r.docker.as_ref(), ssh_port);

    if !s.has("end") {
        notes.push(note(
            "output_truncated",
            "the scan's output ended early; later sections are missing",
        ));
    }
    for key in ["meta", "kernel", "uptime"] {
        if s.has("end") && s.first(key).is_none() {
            notes.push(note(
                "section_unreadable",
                format!("the {key} section was empty or unreadable"),
            ));
        }
    }
    r.not_visible = notes;
    r
}

fn key_values(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

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

fn parse_cpu(lines: &[String]) -> Option<CpuInfo> {
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

fn parse_meminfo(lines: &[String]) -> Option<MemoryInfo> {
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

fn parse_uptime(lines: &[String]) -> Option<u64> {
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

/// Splits `addr:port` as `ss` prints it (`0.0.0.0:22`, `[::]:22`, `*:22`, `127.0.0.53%lo:53`).
fn split_address(local: &str) -> Option<(String, u16)> {
    let (addr, port) = local.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = addr.split('%').next().unwrap_or(addr);
    if addr.is_empty() {
        return None;
    }
    Some((addr.to_string(), port))
}

/// The first `("name",pid=N,…)` of an `ss -p` process column.
fn ss_process(line: &str) -> (Option<String>, Option<u32>) {
    let Some(users) = line.find("users:((") else {
        return (None, None);
    };
    let rest = &line[users + "users:((".len()..];
    let name = rest
        .strip_prefix('"')
        .and_then(|r| r.split_once('"'))
        .map(|(n, _)| n.to_string())
        .filter(|n| !n.is_empty());
    let pid = rest
        .split_once("pid=")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok());
    (name, pid)
}

fn sort_ports(ports: &mut Vec<ListeningPort>) {
    ports.sort_by(|a, b| (a.port, &a.address).cmp(&(b.port, &b.address)));
    ports.dedup_by(|a, b| a.port == b.port && a.address == b.address);
}

/// `ss -ltnp` (with or without its header line).
pub fn parse_ss(lines: &[String]) -> Vec<ListeningPort> {
    let mut ports = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        // State Recv-Q Send-Q Local Peer [Process]; some versions omit the state with -l.
        let local = match f.first() {
            Some(&"LISTEN") => f.get(3),
            Some(s) if s.parse::<u64>().is_ok() => f.get(2),
            _ => None,
        };
        let Some((address, port)) = local.and_then(|l| split_address(l)) else {
            continue;
        };
        let (process, pid) = ss_process(line);
        ports.push(ListeningPort {
            address,
            port,
            process,
            pid,
        });
    }
    sort_ports(&mut ports);
    ports
}

fn hex_ipv4(h: &str) -> Option<String> {
    let n = u32::from_str_radix(h, 16).ok()?;
    Some(Ipv4Addr::from(n.swap_bytes()).to_string())
}

fn hex_ipv6(h: &str) -> Option<String> {
    if h.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for word in 0..4 {
        let w = u32::from_str_radix(h.get(word * 8..word * 8 + 8)?, 16).ok()?;
        bytes[word * 4..word * 4 + 4].copy_from_slice(&w.swap_bytes().to_be_bytes());
    }
    Some(Ipv6Addr::from(bytes).to_string())
}

/// `/proc/net/tcp` and `/proc/net/tcp6`: sockets in state `0A` (LISTEN).
pub fn parse_proc_net_tcp(lines: &[String]) -> Vec<ListeningPort> {
    let mut ports = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || f[3] != "0A" {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let address = if addr.len() == 8 {
            hex_ipv4(addr)
        } else {
            hex_ipv6(addr)
        };
        let (Some(address), Ok(port)) = (address, u16::from_str_radix(port, 16)) else {
            continue;
        };
        ports.push(ListeningPort {
            address,
            port,
            process: None,
            pid: None,
        });
    }
    sort_ports(&mut ports);
    ports
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

fn parse_docker(
    version: &[String],
    ps: &[String],
    volumes: &[String],
) -> (DockerInfo, Vec<NotVisible>) {
    let mut d = DockerInfo::default();
    let mut notes = Vec::new();
    let all = || version.iter().chain(ps).chain(volumes);
    if all().any(|l| l.to_lowercase().contains("permission denied")) {
        notes.push(note(
            "docker_socket_denied",
            "this account may not use the Docker socket: containers and volumes are not visible",
        ));
    } else if all().any(|l| l.contains("Cannot connect to the Docker daemon")) {
        notes.push(note(
            "docker_daemon_unreachable",
            "the Docker daemon is not running or not reachable",
        ));
    }
    let clean = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty() && !v.contains(' '));
    if let Some((client, server)) = version.iter().find_map(|l| l.split_once('|')) {
        d.client_version = clean(client);
        d.server_version = clean(server);
    }
    for line in ps {
        let f: Vec<&str> = line.splitn(4, '|').collect();
        if let [name, image, status, rest @ ..] = f.as_slice() {
            d.containers.push(DockerContainer {
                name: name.trim().to_string(),
                image: image.trim().to_string(),
                status: status.trim().to_string(),
                ports: rest.first().map(|p| published_ports(p)).unwrap_or_default(),
            });
        }
    }
    if d.server_version.is_some() {
        d.volumes = volumes
            .iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && !v.contains(' '))
            .collect();
    }
    (d, notes)
}

/// A version number at the start of `s` (`15.20`, `10.11.19`, `9.2p1`), without a leading `v`.
fn leading_version(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches(['v', 'V']);
    let v: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.').to_string();
    (v.starts_with(|c: char| c.is_ascii_digit())).then_some(v)
}

/// The version after `prefix` on the first line that has it.
fn version_after(lines: &[String], prefix: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        l.find(prefix)
            .and_then(|i| leading_version(&l[i + prefix.len()..]))
    })
}

/// Parses one service's version command output.
pub fn parse_version(kind: &str, lines: &[String]) -> Option<String> {
    match kind {
        "nginx" => version_after(lines, "nginx/"),
        "apache" => version_after(lines, "Apache/"),
        "caddy" => lines.first().and_then(|l| leading_version(l)),
        // Several installed major versions: the newest (the glob lists them in order).
        "postgresql" => lines
            .iter()
            .rev()
            .find_map(|l| version_after(std::slice::from_ref(l), "(PostgreSQL) ")),
        "mysql" => version_after(lines, "Ver ").map(|v| {
            // `10.11.19-MariaDB-0+deb12u1` → `10.11.19`
            v.split('-').next().unwrap_or(&v).to_string()
        }),
        "mongodb" => {
            version_after(lines, "db version ").or_else(|| version_after(lines, "version v"))
        }
        "redis" => version_after(lines, "v="),
        "nodejs" => lines.first().and_then(|l| leading_version(l)),
        "sshd" | "ssh" => version_after(lines, "OpenSSH_"),
        _ => None,
    }
}

struct Def {
    kind: &'static str,
    name: &'static str,
    processes: &'static [&'static str],
    /// Well-known ports: a listening socket there whose process is not visible counts.
    ports: &'static [u16],
}

const SERVICES: &[Def] = &[
    Def {
        kind: "nginx",
        name: "nginx",
        processes: &["nginx"],
        ports: &[],
    },
    Def {
        kind: "apache",
        name: "Apache",
        processes: &["apache2", "httpd"],
        ports: &[],
    },
    Def {
        kind: "caddy",
        name: "Caddy",
        processes: &["caddy"],
        ports: &[],
    },
    Def {
        kind: "postgresql",
        name: "PostgreSQL",
        processes: &["postgres", "postmaster"],
        ports: &[5432],
    },
    Def {
        kind: "mysql",
        name: "MySQL",
        processes: &["mariadbd", "mysqld"],
        ports: &[3306],
    },
    Def {
        kind: "mongodb",
        name: "MongoDB",
        processes: &["mongod"],
        ports: &[27017],
    },
    Def {
        kind: "redis",
        name: "Redis",
        processes: &["redis-server"],
        ports: &[6379],
    },
    Def {
        kind: "docker",
        name: "Docker",
        processes: &["dockerd"],
        ports: &[],
    },
    Def {
        kind: "nodejs",
        name: "Node.js",
        processes: &["node", "nodejs"],
        ports: &[],
    },
    Def {
        kind: "sshd",
        name: "sshd (OpenSSH)",
        processes: &["sshd"],
        ports: &[22],
    },
];

/// The display name of a service kind (`postgresql` → `PostgreSQL`).
pub fn service_name(kind: &str) -> Option<&'static str> {
    SERVICES.iter().find(|d| d.kind == kind).map(|d| d.name)
}

/// The host ports a container publishes, from `docker ps`'s Ports column:
/// `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:15432->5432/tcp, 6379/tcp` →
/// `[8080, 15432]` (a port only exposed, not published, is not reachable from the host).
/// Ranges (`0.0.0.0:8000-8002->8000-8002/tcp`) count up to 100 ports.
pub fn published_ports(column: &str) -> Vec<u16> {
    let mut out = BTreeSet::new();
    for entry in column.split(',') {
        let Some((host, container)) = entry.trim().split_once("->") else {
            continue;
        };
        if !container.ends_with("/tcp") {
            continue;
        }
        let Some((_, ports)) = host.rsplit_once(':') else {
            continue;
        };
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        if let (Ok(first), Ok(last)) = (first.parse::<u16>(), last.parse::<u16>())
            && first <= last
        {
            out.extend((first..=last).take(100));
        }
    }
    out.into_iter().collect()
}

/// An image reference's repository name (its last path component, lower case) and tag:
/// `registry:5000/team/Postgres:16.2@sha256:…` → (`postgres`, `Some("16.2")`).
fn image_name_and_tag(image: &str) -> (String, Option<&str>) {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    let (name, tag) = match last.split_once(':') {
        Some((name, tag)) => (name, Some(tag)),
        None => (last, None),
    };
    (name.to_ascii_lowercase(), tag)
}

/// The service kind a container image is of, by its repository's last path component
/// (`docker.io/library/postgres:16` and `bitnami/postgresql` → `postgresql`).
pub fn image_kind(image: &str) -> Option<&'static str> {
    Some(match image_name_and_tag(image).0.as_str() {
        "postgres" | "postgresql" | "postgis" | "timescaledb" | "timescaledb-ha" => "postgresql",
        "mysql" | "mariadb" | "percona" | "percona-server" | "mysql-server" => "mysql",
        "mongo" | "mongodb" | "mongodb-community-server" => "mongodb",
        "redis" | "redis-stack" | "redis-stack-server" | "valkey" => "redis",
        "nginx" => "nginx",
        "httpd" | "apache" => "apache",
        "caddy" => "caddy",
        "node" => "nodejs",
        _ => return None,
    })
}

/// The version in an image tag, when it starts with one (`16.2-alpine` → `16.2`; `latest` →
/// none).
fn tag_version(image: &str) -> Option<String> {
    let v: String = image_name_and_tag(image)
        .1?
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
}

/// The kinds of service that are databases (and get proposals).
pub const DATABASES: &[&str] = &["postgresql", "mysql", "mongodb", "redis"];

/// Combines the evidence (version commands, running processes, listening ports and their
/// owners) into the list of services found.
fn detect_services(
    s: &Sections,
    ports: &[ListeningPort],
    processes: &BTreeSet<String>,
    docker: Option<&DockerInfo>,
    ssh_port: Option<u16>,
) -> Vec<DetectedService> {
    let mut found = Vec::new();
    for def in SERVICES {
        let mut evidence = Vec::new();
        let version_lines = s.lines(&format!("v_{}", def.kind));
        let mut version = parse_version(def.kind, version_lines);
        if def.kind == "sshd" && version.is_none() {
            version = parse_version("ssh", s.lines("v_ssh"));
        }
        if def.kind == "docker" {
            version = docker.and_then(|d| d.server_version.clone().or(d.client_version.clone()));
        }
        if version.is_some() {
            evidence.push("version".to_string());
        } else if version_lines.iter().any(|l| !l.trim().is_empty())
            || (def.kind == "docker" && docker.is_some())
        {
            evidence.push("binary".to_string());
        }
        let running = def.processes.iter().any(|p| processes.contains(*p));
        if running {
            evidence.push("process".to_string());
        }
        let mut own: BTreeSet<u16> = BTreeSet::new();
        for p in ports {
            match &p.process {
                Some(name) if def.processes.contains(&name.as_str()) => {
                    own.insert(p.port);
                }
                None if def.ports.contains(&p.port) => {
                    own.insert(p.port);
                }
                _ => {}
            }
        }
        if def.kind == "sshd"
            && let Some(port) = ssh_port
            && ports.iter().any(|p| p.port == port && p.process.is_none())
        {
            own.insert(port);
        }
        if !own.is_empty() {
            evidence.push("port".to_string());
        }
        if def.kind == "sshd" && ssh_port.is_some() {
            // The scan itself came in over SSH.
            evidence.push("connection".to_string());
        }
        if evidence.is_empty() {
            continue;
        }
        let name = if def.kind == "mysql"
            && (version_lines.iter().any(|l| l.contains("MariaDB"))
                || processes.contains("mariadbd")
                || ports
                    .iter()
                    .any(|p| p.process.as_deref() == Some("mariadbd")))
        {
            "MariaDB"
        } else {
            def.name
        };
        found.push(DetectedService {
            kind: def.kind.to_string(),
            name: name.to_string(),
            version,
            running: running || !own.is_empty(),
            ports: own.into_iter().collect(),
            evidence,
            container: None,
        });
    }
    // Services in running containers, one per container, by their image.
    for c in docker.map(|d| d.containers.as_slice()).unwrap_or_default() {
        let Some(kind) = image_kind(&c.image) else {
            continue;
        };
        if !c.status.starts_with("Up") {
            continue;
        }
        let name = if image_name_and_tag(&c.image).0 == "mariadb" {
            "MariaDB"
        } else {
            service_name(kind).unwrap_or(kind)
        };
        found.push(DetectedService {
            kind: kind.to_string(),
            name: name.to_string(),
            version: tag_version(&c.image),
            running: true,
            ports: c.ports.clone(),
            evidence: vec!["container".to_string()],
            container: Some(c.name.clone()),
        });
    }
    // A container's processes show on the host too: a host service seen only by its process
    // name, while a container of that kind runs, is that container.
    let in_containers: BTreeSet<String> = found
        .iter()
        .filter(|f| f.container.is_some())
        .map(|f| f.kind.clone())
        .collect();
    found.retain(|f| {
        f.container.is_some()
            || !in_containers.contains(&f.kind)
            || f.evidence.iter().any(|e| e != "process")
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "n1";

    fn out(sections: &[(&str, &str)]) -> String {
        let m = marker(N);
        let mut s = String::from("Welcome to the server!\n");
        for (name, body) in sections {
            if let Some(code) = name.strip_prefix('!') {
                s.push_str(&format!("\n{m} !{code}\n"));
            } else {
                s.push_str(&format!("\n{m} {name}\n{body}\n"));
            }
        }
        s
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    const SS_ROOT: &str = "\
LISTEN 0      100    127.0.0.1:1883  0.0.0.0:* users:((\"mosquitto\",pid=2971,fd=5))
LISTEN 0      80     127.0.0.1:3306  0.0.0.0:* users:((\"mariadbd\",pid=3787,fd=19))
LISTEN 0      244    127.0.0.1:5432  0.0.0.0:* users:((\"postgres\",pid=2210,fd=5))
LISTEN 0      511    127.0.0.1:6379  0.0.0.0:* users:((\"redis-server\",pid=2230,fd=6))
LISTEN 0      128      0.0.0.0:22    0.0.0.0:* users:((\"sshd\",pid=700,fd=3),(\"sshd\",pid=1,fd=3))
LISTEN 0      511        [::1]:6379     [::]:* users:((\"redis-server\",pid=2230,fd=7))
LISTEN 0      4096   127.0.0.53%lo:53    0.0.0.0:* users:((\"systemd-resolve\",pid=5,fd=14))
LISTEN 0      128      0.0.0.0:2024  0.0.0.0:*";

    const SS_USER: &str = "\
LISTEN 0      80     127.0.0.1:3306  0.0.0.0:*
LISTEN 0      244    127.0.0.1:5432  0.0.0.0:*
LISTEN 0      511    127.0.0.1:6379  0.0.0.0:*
LISTEN 0      128  127.0.0.2:40022   0.0.0.0:*
LISTEN 0      511          *:8080          *:* users:((\"node\",pid=4242,fd=20))";

    fn full(ss: &str, uid: &str) -> String {
        out(&[
            (
                "meta",
                &format!("uid={uid}\nuser=deploy\nssh_connection=127.0.0.1 50000 127.0.0.2 40022"),
            ),
            (
                "os_release",
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian",
            ),
            ("kernel", "6.1.0-18-amd64"),
            ("arch", "x86_64"),
            ("hostname", "db-1"),
            (
                "cpu",
                "model name\t: AMD EPYC 7763 64-Core Processor\ncores=2",
            ),
            (
                "meminfo",
                "MemTotal:       24684096 kB\nMemAvailable:   23970988 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB",
            ),
            ("uptime", "93784.12 180000.50"),
            (
                "df",
                "Filesystem     Type     1024-blocks     Used Available Capacity Mounted on\n\
                 /dev/vda       ext4       264211108 23894092  71391796      26% /\n\
                 tmpfs          tmpfs       24684096     1052  24683044       1% /dev/shm\n\
                 /dev/vdb1      xfs          1048576   524288    524288      50% /srv/my data",
            ),
            ("ss", ss),
            (
                "processes",
                "bash\nmariadbd\nnode\npostgres\nredis-server\nsshd\n",
            ),
            ("!systemd_unavailable", ""),
            ("systemd_running", ""),
            ("v_nginx", ""),
            ("v_apache", ""),
            ("v_caddy", ""),
            (
                "v_postgresql",
                "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)",
            ),
            (
                "v_mysql",
                "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)",
            ),
            ("v_mongodb", ""),
            (
                "v_redis",
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d7c971a948f0",
            ),
            ("v_nodejs", "v20.20.2"),
            ("v_sshd", "OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026"),
            (
                "v_ssh",
                "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026",
            ),
            (
                "docker_version",
                "28.2.2|\nCannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            ),
            (
                "docker_ps",
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            ),
            ("docker_volumes", ""),
            ("end", ""),
        ])
    }

    fn service<'a>(r: &'a ScanReport, kind: &str) -> &'a DetectedService {
        r.services
            .iter()
            .find(|s| s.kind == kind)
            .unwrap_or_else(|| panic!("{kind} not found in {:?}", r.services))
    }

    #[test]
    fn a_full_scan_as_root() {
        let r = parse(&full(SS_ROOT, "0"), N);
        assert!(r.root);
        assert_eq!(r.user.as_deref(), Some("deploy"));
        let os = r.os.as_ref().unwrap();
        assert_eq!(
            (
                os.id.as_deref(),
                os.version.as_deref(),
                os.pretty_name.as_deref()
            ),
            (
                Some("debian"),
                Some("12"),
                Some("Debian GNU/Linux 12 (bookworm)")
            )
        );
        assert_eq!(r.kernel.as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(r.architecture.as_deref(), Some("x86_64"));
        assert_eq!(r.hostname.as_deref(), Some("db-1"));
        assert_eq!(
            r.cpu,
            Some(CpuInfo {
                model: Some("AMD EPYC 7763 64-Core Processor".into()),
                cores: Some(2)
            })
        );
        let mem = r.memory.as_ref().unwrap();
        assert_eq!(mem.total_bytes, Some(24684096 * 1024));
        assert_eq!(mem.swap_total_bytes, Some(0));
        assert_eq!(r.uptime_secs, Some(93784));
        assert_eq!(r.disks.len(), 2, "{:?}", r.disks);
        assert_eq!(r.disks[0].mount, "/");
        assert_eq!(r.disks[0].used_bytes, 23894092 * 1024);
        assert_eq!(r.disks[1].mount, "/srv/my data");
        assert_eq!(r.disks[1].fs_type, "xfs");

        assert_eq!(r.ports.len(), 8);
        let resolver = r.ports.iter().find(|p| p.port == 53).unwrap();
        assert_eq!(resolver.address, "127.0.0.53");
        assert_eq!(resolver.process.as_deref(), Some("systemd-resolve"));
        let redis6 = r.ports.iter().find(|p| p.address == "::1").unwrap();
        assert_eq!((redis6.port, redis6.pid), (6379, Some(2230)));

        let pg = service(&r, "postgresql");
        assert_eq!(pg.version.as_deref(), Some("15.20"));
        assert_eq!(pg.ports, vec![5432]);
        assert!(pg.running);
        let my = service(&r, "mysql");
        assert_eq!(
            (my.name.as_str(), my.version.as_deref()),
            ("MariaDB", Some("10.11.19"))
        );
        assert_eq!(my.ports, vec![3306]);
        let redis = service(&r, "redis");
        assert_eq!(
            (redis.version.as_deref(), redis.ports.clone()),
            (Some("7.0.15"), vec![6379])
        );
        let ssh = service(&r, "sshd");
        assert_eq!(ssh.version.as_deref(), Some("9.2"));
        assert_eq!(ssh.ports, vec![22]);
        assert_eq!(service(&r, "nodejs").version.as_deref(), Some("20.20.2"));
        let docker = service(&r, "docker");
        assert_eq!(docker.version.as_deref(), Some("28.2.2"));
        assert!(!docker.running);
        assert!(
            r.services
                .iter()
                .all(|s| s.kind != "nginx" && s.kind != "mongodb")
        );
        assert_eq!(r.docker.as_ref().unwrap().server_version, None);

        let codes: Vec<&str> = r.not_visible.iter().map(|n| n.code.as_str()).collect();
        assert_eq!(
            codes,
            vec!["systemd_unavailable", "docker_daemon_unreachable"]
        );
        assert_eq!(r.systemd, None);
    }

    #[test]
    fn a_scan_without_root_says_what_it_could_not_see() {
        let r = parse(&full(SS_USER, "1000"), N);
        assert!(!r.root);
        assert!(
            r.not_visible
                .iter()
                .any(|n| n.code == "port_processes_need_root"),
            "{:?}",
            r.not_visible
        );
        // Well-known ports still count, and the port the scan came in on is sshd's.
        assert_eq!(service(&r, "postgresql").ports, vec![5432]);
        assert_eq!(service(&r, "redis").ports, vec![6379]);
        let ssh = service(&r, "sshd");
        assert_eq!(ssh.ports, vec![40022]);
        assert!(ssh.evidence.contains(&"connection".to_string()));
        assert_eq!(service(&r, "nodejs").ports, vec![8080]);
        let star = r.ports.iter().find(|p| p.port == 8080).unwrap();
        assert_eq!(star.address, "*");
    }

    #[test]
    fn partial_and_garbled_output() {
        // Cut off in the middle of the ports; junk in several sections; a fake marker from a
        // different nonce is just text.
        let text = out(&[
            ("meta", "uid=\nuser=\ngarbage"),
            ("os_release", "this is not os-release\n=\nID"),
            ("kernel", ""),
            ("cpu", "model name: \ncores=abc"),
            ("meminfo", "MemTotal: lots kB\nSwapTotal: 1024 kB"),
            ("uptime", "NaN"),
            (
                "df",
                "Filesystem 1K-blocks\n/dev/sda1 ext4 100 x 50 50% /\nshort line",
            ),
            (
                "ss",
                "@@STEWARD-SCAN-other end\nLISTEN 0 128 0.0.0.0:notaport 0.0.0.0:*\nLISTEN 0 128 0.0.0.0:5432 0.0.0.0:* users:((\"postgres\",pid=",
            ),
        ]);
        let r = parse(&text, N);
        assert_eq!(r.os, None);
        assert_eq!(r.kernel, None);
        assert_eq!(r.cpu, None);
        assert_eq!(
            r.memory,
            Some(MemoryInfo {
                swap_total_bytes: Some(1024 * 1024),
                ..Default::default()
            })
        );
        assert_eq!(r.uptime_secs, None);
        assert!(r.disks.is_empty());
        assert_eq!(r.ports.len(), 1);
        assert_eq!(r.ports[0].process.as_deref(), Some("postgres"));
        assert_eq!(r.ports[0].pid, None);
        let codes: Vec<&str> = r.not_visible.iter().map(|n| n.code.as_str()).collect();
        assert!(codes.contains(&"os_release_missing"), "{codes:?}");
        assert!(codes.contains(&"output_truncated"), "{codes:?}");
        assert_eq!(service(&r, "postgresql").version, None);
        // Nothing at all: an empty report, not a panic.
        let empty = parse("", N);
        assert!(empty.services.is_empty());
        assert!(
            empty
                .not_visible
                .iter()
                .any(|n| n.code == "output_truncated")
        );
    }

    #[test]
    fn ports_from_proc_net_tcp_when_ss_is_missing() {
        let text = out(&[
            ("meta", "uid=1000"),
            ("ss", ""),
            ("!ss_missing", ""),
            (
                "proc_net_tcp",
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                 0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 1\n\
                 1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2\n\
                 2: 0100007F:9C40 0200007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 3\n\
                 sl  local_address                         remote_address                        st\n\
                 0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 0",
            ),
            ("end", ""),
        ]);
        let r = parse(&text, N);
        let got: Vec<(String, u16)> = r
            .ports
            .iter()
            .map(|p| (p.address.clone(), p.port))
            .collect();
        assert_eq!(
            got,
            vec![
                ("0.0.0.0".into(), 22),
                ("127.0.0.1".into(), 5432),
                ("::1".into(), 6379)
            ]
        );
        assert!(r.not_visible.iter().any(|n| n.code == "ss_missing"));
        assert_eq!(service(&r, "redis").ports, vec![6379]);
    }

    #[test]
    fn systemd_units_and_docker_with_containers() {
        let text = out(&[
            ("meta", "uid=0"),
            (
                "systemd_running",
                "cron.service   loaded active running Regular background program processing daemon\n\
                 nginx.service  loaded active running A high performance web server",
            ),
            (
                "systemd_failed",
                "● backup.service loaded failed failed Nightly backup\nlogrotate.timer loaded failed failed x",
            ),
            ("v_nginx", "nginx version: nginx/1.22.1"),
            (
                "v_apache",
                "Server version: Apache/2.4.57 (Debian)\nServer built:   2023-04-13",
            ),
            (
                "v_caddy",
                "v2.7.6 h1:w0NymbG2m9PcvKWsrXO6EEkY9Ru4FJK8uQbYcev1p3A=",
            ),
            ("v_mongodb", "db version v7.0.4"),
            ("docker_version", "24.0.7|24.0.7"),
            (
                "docker_ps",
                "web|nginx:1.25|Up 3 hours\ndb|postgres:16|Exited (0) 2 days ago",
            ),
            ("docker_volumes", "pgdata\nweb-static"),
            ("end", ""),
        ]);
        let r = parse(&text, N);
        let sd = r.systemd.as_ref().unwrap();
        assert_eq!(sd.running, vec!["cron.service", "nginx.service"]);
        assert_eq!(sd.failed, vec!["backup.service", "logrotate.timer"]);
        assert_eq!(service(&r, "nginx").version.as_deref(), Some("1.22.1"));
        assert_eq!(service(&r, "apache").version.as_deref(), Some("2.4.57"));
        assert_eq!(service(&r, "caddy").version.as_deref(), Some("2.7.6"));
        assert_eq!(service(&r, "mongodb").version.as_deref(), Some("7.0.4"));
        let d = r.docker.as_ref().unwrap();
        assert_eq!(d.containers.len(), 2);
        assert_eq!(d.containers[1].status, "Exited (0) 2 days ago");
        assert_eq!(d.volumes, vec!["pgdata", "web-static"]);
        assert!(
            r.not_visible
                .iter()
                .all(|n| !n.code.starts_with("docker") && n.code != "systemd_unavailable"),
            "{:?}",
            r.not_visible
        );
    }

    #[test]
    fn databases_in_containers_are_services_of_their_own_on_their_published_ports() {
        let text = out(&[
            ("meta", "uid=0"),
            (
                "ss",
                "LISTEN 0 4096 127.0.0.1:15432 0.0.0.0:* users:((\"docker-proxy\",pid=10,fd=4))\n\
                 LISTEN 0 4096 0.0.0.0:8080 0.0.0.0:* users:((\"docker-proxy\",pid=11,fd=4))",
            ),
            // The container's postgres processes show on the host; no postgres is installed.
            ("processes", "dockerd\npostgres\npostgres\nnginx"),
            ("docker_version", "24.0.7|24.0.7"),
            (
                "docker_ps",
                "db|docker.io/library/postgres:16.2-alpine|Up 3 hours|127.0.0.1:15432->5432/tcp\n\
                 cache|redis:latest|Exited (0) 2 days ago|\n\
                 web|nginx|Up 2 minutes|0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp\n\
                 sql|mariadb:11|Up 1 second|",
            ),
            ("docker_volumes", "pgdata"),
            ("end", ""),
        ]);
        let r = parse(&text, N);
        let d = r.docker.as_ref().unwrap();
        assert_eq!(d.containers[0].ports, vec![15432]);
        assert_eq!(d.containers[2].ports, vec![8080]);
        let pg: Vec<&DetectedService> = r
            .services
            .iter()
            .filter(|s| s.kind == "postgresql")
            .collect();
        assert_eq!(
            pg.len(),
            1,
            "the host's postgres processes are the container's: {pg:?}"
        );
        assert_eq!(pg[0].container.as_deref(), Some("db"));
        assert_eq!(pg[0].version.as_deref(), Some("16.2"));
        assert_eq!(pg[0].ports, vec![15432]);
        assert_eq!(pg[0].evidence, vec!["container"]);
        assert!(
            r.services.iter().all(|s| s.kind != "redis"),
            "a stopped container runs nothing"
        );
        let sql = r.services.iter().find(|s| s.kind == "mysql").unwrap();
        assert_eq!(
            (sql.name.as_str(), sql.version.as_deref()),
            ("MariaDB", Some("11"))
        );
        assert!(sql.ports.is_empty());
        let web: Vec<&DetectedService> = r.services.iter().filter(|s| s.kind == "nginx").collect();
        assert_eq!(web.len(), 1, "{web:?}");
        assert_eq!(
            (web[0].container.as_deref(), web[0].version.as_deref()),
            (Some("web"), None)
        );

        // A service of the host keeps its own entry beside a container of the same kind.
        let text = out(&[
            ("meta", "uid=0"),
            (
                "ss",
                "LISTEN 0 244 127.0.0.1:5432 0.0.0.0:* users:((\"postgres\",pid=2210,fd=5))",
            ),
            ("processes", "postgres"),
            ("v_postgresql", "postgres (PostgreSQL) 15.5"),
            ("docker_version", "24.0.7|24.0.7"),
            (
                "docker_ps",
                "db|postgres:16|Up 3 hours|0.0.0.0:15432->5432/tcp",
            ),
            ("end", ""),
        ]);
        let r = parse(&text, N);
        let pg: Vec<(Option<&str>, Vec<u16>)> = r
            .services
            .iter()
            .filter(|s| s.kind == "postgresql")
            .map(|s| (s.container.as_deref(), s.ports.clone()))
            .collect();
        assert_eq!(pg, vec![(None, vec![5432]), (Some("db"), vec![15432])]);
    }

    #[test]
    fn docker_ports_images_and_tags() {
        assert_eq!(
            published_ports(
                "0.0.0.0:8000-8002->8000-8002/tcp, :::53->53/udp, 127.0.0.1:5433->5432/tcp"
            ),
            vec![5433, 8000, 8001, 8002]
        );
        assert_eq!(published_ports("6379/tcp"), Vec::<u16>::new());
        assert_eq!(
            published_ports("garbage->, x:y->1/tcp, 1.2.3.4:99999->1/tcp"),
            Vec::<u16>::new()
        );
        assert_eq!(published_ports("0.0.0.0:1-65535->1-65535/tcp").len(), 100);
        for (image, kind) in [
            ("postgres", Some("postgresql")),
            ("postgis/postgis:16-3.4", Some("postgresql")),
            ("registry.example.com:5000/team/mysql:8.0", Some("mysql")),
            ("bitnami/mongodb@sha256:abc", Some("mongodb")),
            ("valkey/valkey:8", Some("redis")),
            ("httpd:2.4", Some("apache")),
            ("myapp:postgres", None),
            ("grafana/grafana", None),
        ] {
            assert_eq!(image_kind(image), kind, "{image}");
        }
        assert_eq!(tag_version("postgres:16.2-alpine").as_deref(), Some("16.2"));
        assert_eq!(tag_version("registry:5000/redis:7").as_deref(), Some("7"));
        assert_eq!(tag_version("redis:latest"), None);
        assert_eq!(tag_version("registry:5000/redis"), None);
    }

    #[test]
    fn docker_socket_denied() {
        let text = out(&[
            (
                "docker_version",
                "24.0.7|\npermission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
            ),
            ("docker_ps", "permission denied while trying to connect"),
            (
                "docker_volumes",
                "permission denied while trying to connect",
            ),
            ("end", ""),
        ]);
        let r = parse(&text, N);
        assert!(
            r.not_visible
                .iter()
                .any(|n| n.code == "docker_socket_denied")
        );
        let d = r.docker.unwrap();
        assert_eq!(d.client_version.as_deref(), Some("24.0.7"));
        assert!(d.containers.is_empty() && d.volumes.is_empty());
    }

    #[test]
    fn versions() {
        let v = |kind: &str, text: &str| parse_version(kind, &lines(text));
        assert_eq!(
            v(
                "mysql",
                "/usr/sbin/mysqld  Ver 8.0.35-0ubuntu0.22.04.1 for Linux on x86_64 ((Ubuntu))"
            )
            .as_deref(),
            Some("8.0.35")
        );
        assert_eq!(
            v(
                "postgresql",
                "postgres (PostgreSQL) 13.4\npostgres (PostgreSQL) 16.1 (Ubuntu 16.1-1)"
            )
            .as_deref(),
            Some("16.1")
        );
        assert_eq!(
            v(
                "sshd",
                "unknown option -- V\nOpenSSH_8.2p1 Ubuntu-4ubuntu0.5, OpenSSL 1.1.1f"
            )
            .as_deref(),
            Some("8.2p1")
        );
        assert_eq!(
            v("redis", "Redis server v=6.0.16 sha=0").as_deref(),
            Some("6.0.16")
        );
        assert_eq!(v("nginx", "bash: nginx: command not found"), None);
    }
}
