//! Whole scans of a host: as root and not, partial or garbled output, and ports read from
//! `/proc/net/tcp` without `ss`.
use steward_proto::{CpuInfo, MemoryInfo};

use super::super::parse;
use super::{N, SS_ROOT, SS_USER, full, out, service};

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
