//! Scans with systemd units and Docker: containers, the services inside them, and a Docker
//! socket this account may not use.
use steward_proto::DetectedService;

use super::super::parse;
use super::{N, out, service};

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
