//! `parse_agentless` on hand-written output covering what this host lacks (Docker, systemd,
//! mount points with spaces) and on hostile output.

use super::*;

const ID: &str = "3f4e8c1d2b6a7e9f0c1d2b3a4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5";

fn sample_output() -> String {
    format!(
        "Welcome to host!\n\
@@steward-metrics@@ stat\ncpu  10 0 5 100 1 0 0 0 0 0\ncpu0 10 0 5 100 1 0 0 0 0 0\nctxt 5\n\
@@steward-metrics@@ loadavg\n0.10 0.20 0.30 1/99 123\n\
@@steward-metrics@@ meminfo\nMemTotal: 2048 kB\nMemAvailable: 1024 kB\n\
@@steward-metrics@@ uptime\n12.5 20.0\n\
@@steward-metrics@@ diskstats\n   8 0 sda 1 0 8 1 1 0 8 1 0 1 2\n\
@@steward-metrics@@ netdev\nInter-|\n face |\n  eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n\
@@steward-metrics@@ mounts\n\
m / /dev/sda1 ext4 4096 100 40 30 1000 900\n\
m /srv/my\\040data /dev/sdb1 xfs 4096 10 5 5 100 50\n\
m /srv/my\\040data/bind /dev/sdb1 xfs 4096 10 5 5 100 50\n\
m /mnt/broken /dev/sdc1 ext4 4096 x 5 5 100 50\n\
@@steward-metrics@@ procs\n77\n\
@@steward-metrics@@ systemd\n       3\n\
@@steward-metrics@@ docker\npresent\n\
c {ID} 2500 4096 1024 web-1\n\
c {ID} 2500 4096 - -\n\
c nothex 1 2 3 x\n\
@@steward-metrics@@ end\n"
    )
}

#[test]
fn every_section_is_read() {
    let s = parse_agentless(&sample_output(), 42).expect("parse");
    assert_eq!(s.ts_ms, 42);
    assert_eq!(s.cpu.map(|c| c.idle), Some(100));
    assert_eq!(s.cores.len(), 1);
    assert_eq!(s.load.map(|l| l.load15), Some(0.3));
    assert_eq!(s.mem.map(|m| m.total), Some(2048 * 1024));
    assert_eq!(s.uptime_secs, Some(12.5));
    assert_eq!(s.disks.len(), 1);
    assert_eq!(s.nets.len(), 1);
    let mounts: Vec<(&str, u64)> = s
        .mounts
        .iter()
        .map(|m| (m.mount.as_str(), m.bytes_total))
        .collect();
    assert_eq!(mounts, [("/", 409_600), ("/srv/my data", 40_960)]);
    assert_eq!(s.procs, Some(77));
    assert_eq!(s.systemd_failed, Some(3));
    let docker = s.docker.expect("docker present");
    assert_eq!(docker.len(), 2);
    assert_eq!(docker[0].name, "web-1");
    assert_eq!(docker[0].memory_bytes, 4096 - 1024);
    assert_eq!(docker[1].name, "3f4e8c1d2b6a");
    assert_eq!(docker[1].memory_bytes, 4096);
}

#[test]
fn missing_sections_stay_empty() {
    let out = "@@steward-metrics@@ stat\ncpu 1 2 3 4\n@@steward-metrics@@ systemd\n@@steward-metrics@@ docker\n";
    let s = parse_agentless(out, 1).expect("parse");
    assert!(s.mem.is_none() && s.load.is_none() && s.mounts.is_empty());
    assert_eq!(s.systemd_failed, None, "not a systemd host");
    assert_eq!(s.docker, None, "no Docker");
}

#[test]
fn output_without_proc_stat_is_an_error() {
    let err = parse_agentless("sh: 1: cat: not found\n", 1).expect_err("no stat");
    assert!(err.to_string().contains("not Linux"), "{err}");
    assert!(parse_agentless("", 1).is_err());
}

#[test]
fn markers_count_only_as_whole_lines() {
    // A mount line or a banner that contains the marker does not open a section.
    let out = "@@steward-metrics@@ stat\ncpu 1 2 3 4\n\
        x @@steward-metrics@@ meminfo\nMemTotal: 5 kB\n\
        @@steward-metrics@@ loadavg extra\n1 1 1 1/1 1\n";
    let s = parse_agentless(out, 1).expect("parse");
    assert!(s.mem.is_none());
    assert!(s.load.is_none());
}

#[test]
fn crlf_output_is_read() {
    let out = sample_output().replace('\n', "\r\n");
    let s = parse_agentless(&out, 1).expect("parse");
    assert_eq!(s.procs, Some(77));
    assert_eq!(s.mem.map(|m| m.total), Some(2048 * 1024));
}
