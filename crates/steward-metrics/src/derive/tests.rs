//! `derive` against values worked out by hand.

use super::*;
use crate::snapshot::*;

fn before() -> RawSnapshot {
    RawSnapshot {
        ts_ms: 10_000,
        cpu: CpuTimes::from_columns(&[100, 10, 50, 800, 20, 5, 5, 10]),
        cores: vec![CoreTimes {
            id: 0,
            times: CpuTimes::from_columns(&[50, 5, 25, 400, 10, 2, 3, 5]).expect("cpu0"),
        }],
        uptime_secs: Some(1000.0),
        disks: vec![
            DiskStat {
                name: "sda".into(),
                reads: 10,
                read_sectors: 1000,
                writes: 5,
                write_sectors: 80,
                io_ms: 100,
            },
            DiskStat {
                name: "sdc".into(),
                reads: 500,
                read_sectors: 9000,
                writes: 50,
                write_sectors: 800,
                io_ms: 1000,
            },
        ],
        nets: vec![NetStat {
            name: "eth0".into(),
            rx_bytes: 1000,
            rx_packets: 10,
            tx_bytes: 0,
            ..NetStat::default()
        }],
        docker: Some(vec![ContainerStat {
            id: "a".repeat(64),
            name: "web-1".into(),
            cpu_usage_usec: 1_000_000,
            memory_bytes: 100,
        }]),
        ..RawSnapshot::default()
    }
}

fn after() -> RawSnapshot {
    RawSnapshot {
        ts_ms: 12_000,
        cpu: CpuTimes::from_columns(&[160, 20, 70, 1000, 30, 5, 15, 20]),
        cores: vec![
            CoreTimes {
                id: 0,
                // +30 user, +10 idle over 40 ticks: 75 % busy.
                times: CpuTimes::from_columns(&[80, 5, 25, 410, 10, 2, 3, 5]).expect("cpu0"),
            },
            CoreTimes {
                id: 1,
                times: CpuTimes::from_columns(&[1, 1, 1, 1]).expect("cpu1"),
            },
        ],
        load: Some(LoadAvg {
            load1: 0.5,
            load5: 1.234,
            load15: 2.0,
            running: 1,
            tasks: 100,
        }),
        mem: Some(MemInfo {
            total: 8_000_000_000,
            available: Some(2_000_000_000),
            free: 1,
            buffers: 1,
            cached: 1,
            swap_total: 1000,
            swap_free: 250,
        }),
        mounts: vec![MountStat {
            mount: "/".into(),
            device: "/dev/sda1".into(),
            fstype: "ext4".into(),
            bytes_total: 1000,
            bytes_free: 300,
            bytes_avail: 200,
            inodes_total: 100,
            inodes_free: 40,
        }],
        disks: vec![
            DiskStat {
                name: "sda".into(),
                reads: 15,
                read_sectors: 3000,
                writes: 5,
                write_sectors: 80,
                io_ms: 600,
            },
            DiskStat {
                name: "sdb".into(),
                reads: 1,
                read_sectors: 1,
                writes: 1,
                write_sectors: 1,
                io_ms: 1,
            },
            // Re-created: reads went backwards, so nothing for sdc this time.
            DiskStat {
                name: "sdc".into(),
                reads: 3,
                read_sectors: 9999,
                writes: 60,
                write_sectors: 900,
                io_ms: 1100,
            },
        ],
        nets: vec![NetStat {
            name: "eth0".into(),
            rx_bytes: 5000,
            rx_packets: 14,
            rx_errs: 1,
            tx_bytes: 3,
            ..NetStat::default()
        }],
        uptime_secs: Some(1002.4),
        procs: Some(150),
        systemd_failed: Some(2),
        docker: Some(vec![ContainerStat {
            id: "a".repeat(64),
            name: "web-1".into(),
            cpu_usage_usec: 1_500_000,
            memory_bytes: 123,
        }]),
    }
}

fn value(points: &[Point], name: &str, label: &str) -> Option<f64> {
    let found: Vec<f64> = points
        .iter()
        .filter(|p| p.name == name && p.label == label)
        .map(|p| p.value)
        .collect();
    assert!(found.len() <= 1, "{name}{{{label}}} twice");
    found.first().copied()
}

#[test]
fn rates_and_percentages_over_two_seconds() {
    let p = derive(Some(&before()), &after());
    let v = |n: &str, l: &str| value(&p, n, l);
    // CPU: 320 ticks passed; idle 200, iowait 10, user 60 + nice 10, system 20 + softirq 10,
    // steal 10.
    assert_eq!(v("cpu.usage", ""), Some(34.38));
    assert_eq!(v("cpu.user", ""), Some(21.88));
    assert_eq!(v("cpu.system", ""), Some(9.38));
    assert_eq!(v("cpu.iowait", ""), Some(3.13));
    assert_eq!(v("cpu.steal", ""), Some(3.13));
    assert_eq!(v("cpu.usage", "cpu0"), Some(75.0));
    assert_eq!(v("cpu.user", "cpu0"), Some(75.0));
    assert_eq!(v("cpu.usage", "cpu1"), None, "no earlier reading of cpu1");

    assert_eq!(v("load.1", ""), Some(0.5));
    assert_eq!(v("load.5", ""), Some(1.23));
    assert_eq!(v("load.15", ""), Some(2.0));

    assert_eq!(v("mem.total", ""), Some(8e9));
    assert_eq!(v("mem.used", ""), Some(6e9));
    assert_eq!(v("mem.available", ""), Some(2e9));
    assert_eq!(v("mem.used_pct", ""), Some(75.0));
    assert_eq!(v("swap.total", ""), Some(1000.0));
    assert_eq!(v("swap.used", ""), Some(750.0));

    assert_eq!(v("disk.total", "/"), Some(1000.0));
    assert_eq!(v("disk.used", "/"), Some(700.0));
    assert_eq!(v("disk.used_pct", "/"), Some(77.78), "700 / (700 + 200)");
    assert_eq!(v("disk.inodes_total", "/"), Some(100.0));
    assert_eq!(v("disk.inodes_used", "/"), Some(60.0));

    // sda: 2000 sectors × 512 B in 2 s; 5 reads; 500 ms busy in 2000 ms.
    assert_eq!(v("diskio.read_bytes", "sda"), Some(512_000.0));
    assert_eq!(v("diskio.write_bytes", "sda"), Some(0.0));
    assert_eq!(v("diskio.read_ops", "sda"), Some(2.5));
    assert_eq!(v("diskio.write_ops", "sda"), Some(0.0));
    assert_eq!(v("diskio.busy_pct", "sda"), Some(25.0));
    assert!(p.iter().all(|x| x.label != "sdb" && x.label != "sdc"));

    assert_eq!(v("net.rx_bytes", "eth0"), Some(2000.0));
    assert_eq!(v("net.tx_bytes", "eth0"), Some(2.0), "1.5 B/s rounds to 2");
    assert_eq!(v("net.rx_packets", "eth0"), Some(2.0));
    assert_eq!(v("net.tx_packets", "eth0"), Some(0.0));
    assert_eq!(v("net.rx_errors", "eth0"), Some(0.5));
    assert_eq!(v("net.tx_errors", "eth0"), Some(0.0));

    assert_eq!(v("uptime.seconds", ""), Some(1002.0));
    assert_eq!(v("procs.count", ""), Some(150.0));
    assert_eq!(v("systemd.failed_units", ""), Some(2.0));
    // 500 000 µs of CPU in 2 s: a quarter of one core.
    assert_eq!(v("docker.cpu_pct", "web-1"), Some(25.0));
    assert_eq!(v("docker.mem_bytes", "web-1"), Some(123.0));

    for point in &p {
        assert!(
            crate::catalog::info(point.name).is_some(),
            "{} is in the catalog",
            point.name
        );
    }
}

#[test]
fn first_snapshot_gives_gauges_only() {
    let cur = after();
    for prev in [None, Some(&cur)] {
        let p = derive(prev, &cur);
        assert_eq!(value(&p, "mem.used", ""), Some(6e9));
        assert_eq!(value(&p, "disk.used", "/"), Some(700.0));
        assert!(
            p.iter()
                .all(|x| crate::catalog::info(x.name).is_some_and(|i| !i.rate)),
            "no rate without an older snapshot: {p:?}"
        );
    }
}

#[test]
fn a_reboot_gives_no_rates() {
    let prev = before();
    let mut cur = after();
    cur.uptime_secs = Some(3.0);
    let p = derive(Some(&prev), &cur);
    assert!(
        p.iter()
            .all(|x| !x.name.starts_with("cpu.") && !x.name.starts_with("net."))
    );
    assert_eq!(value(&p, "uptime.seconds", ""), Some(3.0));
}

#[test]
fn counters_going_backwards_give_nothing_rather_than_nonsense() {
    let mut prev = after();
    prev.ts_ms = 1_000;
    prev.uptime_secs = None;
    let mut cur = before();
    cur.ts_ms = 2_000;
    cur.uptime_secs = None;
    let p = derive(Some(&prev), &cur);
    assert!(p.iter().all(|x| x.value >= 0.0 && x.value.is_finite()));
    assert_eq!(value(&p, "cpu.usage", ""), None);
    assert_eq!(value(&p, "net.rx_bytes", "eth0"), None);
    assert_eq!(value(&p, "diskio.read_bytes", "sda"), None);
    assert_eq!(value(&p, "docker.cpu_pct", "web-1"), None);
}

#[test]
fn catalog_names_are_unique_and_complete() {
    let names: Vec<&str> = crate::catalog().iter().map(|m| m.name).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert_eq!(names.len(), 35);
    let json = serde_json::to_value(crate::catalog::info("net.rx_bytes")).expect("json");
    assert_eq!(json["unit"], "bytes_per_s");
}
