//! Recognising services: the known kinds, their version commands, and combining the evidence
//! (versions, processes, listening ports, containers) into the services found.
use std::collections::BTreeSet;

use steward_proto::{DetectedService, DockerInfo, ListeningPort};

use super::Sections;
use super::docker::{image_kind, image_name_and_tag, tag_version};

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

/// The kinds of service that are databases (and get proposals).
pub const DATABASES: &[&str] = &["postgresql", "mysql", "mongodb", "redis"];

/// Combines the evidence (version commands, running processes, listening ports and their
/// owners) into the list of services found.
pub(super) fn detect_services(
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

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
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
