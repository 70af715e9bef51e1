//! What changed between two scans, and the next steps a scan proposes: pure functions.
use std::collections::BTreeMap;

use serde_json::{Value, json};
use steward_proto::{DetectedService, ScanChange, ScanReport};

use super::parse::DATABASES;

fn change(
    kind: &str,
    subject: impl Into<String>,
    before: Option<String>,
    after: Option<String>,
) -> ScanChange {
    ScanChange {
        kind: kind.into(),
        subject: subject.into(),
        before,
        after,
    }
}

fn os_label(r: &ScanReport) -> Option<String> {
    r.os.as_ref().and_then(|o| {
        o.pretty_name
            .clone()
            .or_else(|| match (&o.name, &o.version) {
                (Some(n), Some(v)) => Some(format!("{n} {v}")),
                (Some(n), None) => Some(n.clone()),
                _ => None,
            })
    })
}

/// `address:port`, with IPv6 addresses in brackets.
pub fn endpoint(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// A service as the subject of a change: its kind, and the container it runs in
/// (`postgresql`, `postgresql (db)`).
fn subject(s: &DetectedService) -> String {
    match &s.container {
        Some(c) => format!("{} ({c})", s.kind),
        None => s.kind.clone(),
    }
}

/// The changes from `before` to `after`: OS and kernel, services added, removed or with a
/// different version, ports opened or closed. Something one scan could not see (no OS
/// information, say) is not reported as a change.
pub fn changes(before: &ScanReport, after: &ScanReport) -> Vec<ScanChange> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (os_label(before), os_label(after))
        && a != b
    {
        out.push(change("os_changed", "os", Some(a), Some(b)));
    }
    if let (Some(a), Some(b)) = (&before.kernel, &after.kernel)
        && a != b
    {
        out.push(change(
            "kernel_changed",
            "kernel",
            Some(a.clone()),
            Some(b.clone()),
        ));
    }
    let old: BTreeMap<String, _> = before.services.iter().map(|s| (subject(s), s)).collect();
    let new: BTreeMap<String, _> = after.services.iter().map(|s| (subject(s), s)).collect();
    for (kind, s) in &new {
        match old.get(kind) {
            None => out.push(change("service_added", kind, None, s.version.clone())),
            Some(o) => {
                if let (Some(a), Some(b)) = (&o.version, &s.version)
                    && a != b
                {
                    out.push(change(
                        "service_version_changed",
                        kind,
                        Some(a.clone()),
                        Some(b.clone()),
                    ));
                }
            }
        }
    }
    for (kind, o) in &old {
        if !new.contains_key(kind) {
            out.push(change("service_removed", kind, o.version.clone(), None));
        }
    }
    let key = |r: &ScanReport| -> BTreeMap<String, Option<String>> {
        r.ports
            .iter()
            .map(|p| (endpoint(&p.address, p.port), p.process.clone()))
            .collect()
    };
    let (old_ports, new_ports) = (key(before), key(after));
    for (ep, process) in &new_ports {
        if !old_ports.contains_key(ep) {
            out.push(change("port_opened", ep.clone(), None, process.clone()));
        }
    }
    for (ep, process) in &old_ports {
        if !new_ports.contains_key(ep) {
            out.push(change("port_closed", ep.clone(), process.clone(), None));
        }
    }
    out
}

/// A proposal a scan makes: kind, service, dedupe key and spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposed {
    pub kind: &'static str,
    pub service: String,
    pub key: String,
    pub spec: Value,
}

/// For every database found: a TCP health check of each port it listens on, and a backup job
/// (one per container for a database in a container, which the spec names).
pub fn proposals(r: &ScanReport) -> Vec<Proposed> {
    let mut out = Vec::new();
    for s in r
        .services
        .iter()
        .filter(|s| DATABASES.contains(&s.kind.as_str()))
    {
        for &port in &s.ports {
            // Where it listens; a wildcard address is checked on the server itself.
            let mut addrs: Vec<&str> = r
                .ports
                .iter()
                .filter(|p| p.port == port)
                .map(|p| p.address.as_str())
                .collect();
            addrs.sort_by_key(|a| (a.contains(':'), *a));
            let host = match addrs.first() {
                None | Some(&"0.0.0.0") | Some(&"*") => "127.0.0.1",
                Some(&"::") => "::1",
                Some(a) => a,
            };
            let mut spec = json!({ "type": "tcp", "host": host, "port": port });
            if let Some(c) = &s.container {
                spec["container"] = json!(c);
            }
            out.push(Proposed {
                kind: "health_check",
                service: s.kind.clone(),
                key: format!("health_check:{}:{port}", s.kind),
                spec,
            });
        }
        let port = s.ports.first().copied();
        let (key, spec) = match &s.container {
            Some(c) => (
                format!("backup_job:{}:container:{c}", s.kind),
                json!({ "engine": s.kind, "port": port, "container": c }),
            ),
            None => (
                format!("backup_job:{}", s.kind),
                json!({ "engine": s.kind, "port": port }),
            ),
        };
        out.push(Proposed {
            kind: "backup_job",
            service: s.kind.clone(),
            key,
            spec,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_proto::{DetectedService, ListeningPort, OsInfo};

    fn svc(kind: &str, version: Option<&str>, ports: &[u16]) -> DetectedService {
        DetectedService {
            kind: kind.into(),
            name: kind.into(),
            version: version.map(str::to_string),
            running: true,
            ports: ports.to_vec(),
            evidence: vec![],
            container: None,
        }
    }

    fn port(address: &str, port: u16) -> ListeningPort {
        ListeningPort {
            address: address.into(),
            port,
            process: None,
            pid: None,
        }
    }

    #[test]
    fn what_changed() {
        let before = ScanReport {
            os: Some(OsInfo {
                pretty_name: Some("Debian 11".into()),
                ..Default::default()
            }),
            kernel: Some("5.10".into()),
            services: vec![svc("redis", Some("6.0"), &[6379]), svc("nginx", None, &[])],
            ports: vec![port("127.0.0.1", 6379), port("0.0.0.0", 80)],
            ..Default::default()
        };
        let mut after = before.clone();
        after.os = Some(OsInfo {
            pretty_name: Some("Debian 12".into()),
            ..Default::default()
        });
        after.kernel = Some("6.1".into());
        after.services = vec![
            svc("redis", Some("7.0"), &[6379]),
            svc("postgresql", Some("15"), &[5432]),
        ];
        after.ports = vec![port("127.0.0.1", 6379), port("::1", 5432)];
        let c = changes(&before, &after);
        let got: Vec<(&str, &str)> = c
            .iter()
            .map(|c| (c.kind.as_str(), c.subject.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("os_changed", "os"),
                ("kernel_changed", "kernel"),
                ("service_added", "postgresql"),
                ("service_version_changed", "redis"),
                ("service_removed", "nginx"),
                ("port_opened", "[::1]:5432"),
                ("port_closed", "0.0.0.0:80"),
            ]
        );
        assert!(changes(&after, &after).is_empty());
        // A scan that saw less is not a change of OS.
        let blind = ScanReport {
            services: after.services.clone(),
            ports: after.ports.clone(),
            ..Default::default()
        };
        assert!(changes(&after, &blind).is_empty());
    }

    #[test]
    fn databases_get_a_health_check_per_port_and_a_backup_job() {
        let r = ScanReport {
            services: vec![
                svc("postgresql", Some("15"), &[5432]),
                svc("redis", None, &[6379]),
                svc("mongodb", None, &[]),
                svc("nginx", None, &[80]),
            ],
            ports: vec![
                port("::1", 6379),
                port("127.0.0.1", 6379),
                port("0.0.0.0", 5432),
            ],
            ..Default::default()
        };
        let p = proposals(&r);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "health_check:postgresql:5432",
                "backup_job:postgresql",
                "health_check:redis:6379",
                "backup_job:redis",
                "backup_job:mongodb"
            ]
        );
        assert_eq!(
            p[0].spec,
            json!({"type": "tcp", "host": "127.0.0.1", "port": 5432})
        );
        assert_eq!(p[2].spec["host"], "127.0.0.1");
        assert_eq!(p[1].spec, json!({"engine": "postgresql", "port": 5432}));
        assert_eq!(p[4].spec, json!({"engine": "mongodb", "port": null}));
    }

    #[test]
    fn a_database_in_a_container_is_its_own_subject_and_backup() {
        let in_db = DetectedService {
            container: Some("db".into()),
            ..svc("postgresql", Some("16"), &[15432])
        };
        let host = svc("postgresql", Some("15"), &[5432]);
        let before = ScanReport {
            services: vec![host.clone()],
            ..Default::default()
        };
        let after = ScanReport {
            services: vec![
                host,
                DetectedService {
                    version: Some("16.2".into()),
                    ..in_db.clone()
                },
            ],
            ports: vec![port("127.0.0.1", 15432)],
            ..Default::default()
        };
        let c = changes(&before, &after);
        assert_eq!(
            c[0],
            change(
                "service_added",
                "postgresql (db)",
                None,
                Some("16.2".into())
            )
        );
        assert_eq!(c[1].kind, "port_opened");
        let again = ScanReport {
            services: vec![in_db],
            ..Default::default()
        };
        let c = changes(&after, &again);
        assert!(c.contains(&change(
            "service_version_changed",
            "postgresql (db)",
            Some("16.2".into()),
            Some("16".into())
        )));
        assert!(c.contains(&change(
            "service_removed",
            "postgresql",
            Some("15".into()),
            None
        )));
        let p = proposals(&after);
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "health_check:postgresql:5432",
                "backup_job:postgresql",
                "health_check:postgresql:15432",
                "backup_job:postgresql:container:db"
            ]
        );
        assert_eq!(
            p[2].spec,
            json!({"type": "tcp", "host": "127.0.0.1", "port": 15432, "container": "db"})
        );
        assert_eq!(
            p[3].spec,
            json!({"engine": "postgresql", "port": 15432, "container": "db"})
        );
    }
}
