//! Turns the discovery script's output into a [`ScanReport`]: pure functions, each tolerant of
//! missing, partial or garbled sections (what cannot be read is left out, and said so). The
//! output is split into [`Sections`]; `host` reads the host's facts, `ports` its listening
//! sockets, `docker` its containers, and `services` recognises the services among them.
mod docker;
mod host;
mod ports;
mod sections;
mod services;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use steward_proto::{NotVisible, ScanReport, SystemdInfo};

pub use docker::{image_kind, published_ports};
pub use host::{parse_df, parse_os_release, parse_units};
pub use ports::{parse_proc_net_tcp, parse_ss};
pub use sections::Sections;
pub use services::{DATABASES, parse_version, service_name};

use docker::parse_docker;
use host::{parse_cpu, parse_meminfo, parse_uptime};
use services::detect_services;

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
