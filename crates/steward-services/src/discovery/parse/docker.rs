//! Docker: versions, containers and volumes, the host ports a container publishes, and the
//! service kind and version an image stands for.
use std::collections::BTreeSet;

use steward_proto::{DockerContainer, DockerInfo, NotVisible};

use super::note;

pub(super) fn parse_docker(
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
pub(super) fn image_name_and_tag(image: &str) -> (String, Option<&str>) {
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
pub(super) fn tag_version(image: &str) -> Option<String> {
    let v: String = image_name_and_tag(image)
        .1?
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v = v.trim_end_matches('.');
    (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
