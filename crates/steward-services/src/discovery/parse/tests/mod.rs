//! End-to-end tests of `parse` over whole script outputs: the fixtures here, the cases in
//! `host_scan` (a host's facts, ports and services) and `containers` (systemd and Docker).
mod containers;
mod host_scan;

use steward_proto::{DetectedService, ScanReport};

use crate::discovery::script::marker;

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
