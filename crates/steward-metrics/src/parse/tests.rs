//! Parsers on text captured from a real host (tests/fixtures), on hand-written text for the
//! cases that host lacks, and on garbled text.

use super::*;

const STAT: &str = include_str!("../../tests/fixtures/stat");
const LOADAVG: &str = include_str!("../../tests/fixtures/loadavg");
const MEMINFO: &str = include_str!("../../tests/fixtures/meminfo");
const UPTIME: &str = include_str!("../../tests/fixtures/uptime");
const DISKSTATS: &str = include_str!("../../tests/fixtures/diskstats");
const NET_DEV: &str = include_str!("../../tests/fixtures/net_dev");
const MOUNTS: &str = include_str!("../../tests/fixtures/mounts");

#[test]
fn stat_gives_the_total_and_each_core() {
    let (total, cores) = parse_stat(STAT).expect("stat");
    assert_eq!(
        total.to_array(),
        [37030, 0, 11888, 22871, 506, 0, 138, 78],
        "cpu line, guest columns left out"
    );
    assert_eq!(cores.iter().map(|c| c.id).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(cores[1].times.user, 18747);
    assert_eq!(cores[1].times.steal, 41);
}

#[test]
fn stat_of_an_old_kernel_with_four_columns_and_offline_cores() {
    let (total, cores) =
        parse_stat("cpu 10 2 3 40\ncpu0 5 1 1 20\ncpu3 5 1 2 20\nintr 5\n").expect("stat");
    assert_eq!(total.idle, 40);
    assert_eq!(total.steal, 0);
    assert_eq!(cores.iter().map(|c| c.id).collect::<Vec<_>>(), [0, 3]);
    assert!(parse_stat("intr 1 2 3\nctxt 5\n").is_err());
    assert!(parse_stat("cpu 1 2 3\n").is_err(), "fewer than 4 columns");
}

#[test]
fn loadavg_uptime_and_meminfo_from_a_real_host() {
    let l = parse_loadavg(LOADAVG).expect("loadavg");
    assert_eq!((l.load1, l.load5, l.load15), (3.19, 1.68, 0.7));
    assert_eq!((l.running, l.tasks), (8, 182));

    assert_eq!(parse_uptime(UPTIME).expect("uptime"), 366.56);

    let m = parse_meminfo(MEMINFO).expect("meminfo");
    assert_eq!(m.total, 24_684_084 * 1024);
    assert_eq!(m.available, Some(23_096_228 * 1024));
    assert_eq!(m.free, 17_954_024 * 1024);
    assert_eq!(m.buffers, 27_996 * 1024);
    assert_eq!(m.cached, 5_173_844 * 1024);
    assert_eq!((m.swap_total, m.swap_free), (0, 0));
}

#[test]
fn meminfo_without_memavailable_estimates_it() {
    let m = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n")
        .expect("meminfo");
    assert_eq!(m.available, None);
    assert_eq!(m.available_or_estimate(), 310 * 1024);
    assert!(parse_meminfo("MemFree: 100 kB\n").is_err());
}

#[test]
fn loadavg_and_uptime_refuse_nonsense() {
    assert!(parse_loadavg("").is_err());
    assert!(parse_loadavg("1 2 3").is_err());
    assert!(parse_loadavg("NaN 1 1 1/2 3").is_err());
    assert!(parse_loadavg("-1 1 1 1/2 3").is_err());
    assert!(parse_uptime("inf 3").is_err());
    assert!(parse_uptime("").is_err());
}

#[test]
fn diskstats_keep_whole_devices_that_did_io() {
    let real = parse_diskstats(DISKSTATS);
    assert_eq!(real.len(), 1, "idle loops and zram0 are left out: {real:?}");
    let vda = &real[0];
    assert_eq!(vda.name, "vda");
    assert_eq!(
        (
            vda.reads,
            vda.read_sectors,
            vda.writes,
            vda.write_sectors,
            vda.io_ms
        ),
        (52562, 3956794, 31394, 9819824, 12908)
    );

    let text = [
        "8 0 sda 10 0 80 5 20 0 160 7 0 30 12",
        "8 1 sda1 10 0 80 5 20 0 160 7 0 30 12",
        "259 0 nvme0n1 1 0 8 1 1 0 8 1 0 1 2 0 0 0 0 0 0",
        "259 1 nvme0n1p1 1 0 8 1 1 0 8 1 0 1 2",
        "253 0 dm-0 1 0 8 1 1 0 8 1 0 1 2",
        "9 0 md0 1 0 8 1 1 0 8 1 0 1 2",
        "9 1 md0p1 1 0 8 1 1 0 8 1 0 1 2",
        "179 0 mmcblk0 1 0 8 1 1 0 8 1 0 1 2",
        "179 1 mmcblk0p1 1 0 8 1 1 0 8 1 0 1 2",
        "202 0 xvda 1 0 8 1 1 0 8 1 0 1 2",
        "202 1 xvda1 1 0 8 1 1 0 8 1 0 1 2",
        "7 0 loop0 1 0 8 1 1 0 8 1 0 1 2",
        "11 0 sr0 1 0 8 1 1 0 8 1 0 1 2",
        "1 0 ram0 1 0 8 1 1 0 8 1 0 1 2",
        "8 16 sdb 1 0 8 1 x 0 8 1 0 1 2",
        "8 32 sdc 1 0 8",
    ]
    .join("\n");
    let names: Vec<String> = parse_diskstats(&text).into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["sda", "nvme0n1", "dm-0", "md0", "mmcblk0", "xvda"]);
}

#[test]
fn net_dev_leaves_out_loopback_and_veths() {
    let real = parse_net_dev(NET_DEV);
    let names: Vec<&str> = real.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["ifb0", "ifb1", "eth0"]);
    let eth0 = &real[2];
    assert_eq!((eth0.rx_bytes, eth0.rx_packets), (592_605_485, 19_935));
    assert_eq!((eth0.tx_bytes, eth0.tx_packets), (1_682_235, 12_755));

    let text = "Inter-|   Receive |  Transmit\n face |bytes\n\
        docker0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n\
        veth12ab: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n\
        eth1:99 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n\
        bad: 1 2 3\n";
    let nets = parse_net_dev(text);
    assert_eq!(nets.len(), 2);
    assert_eq!(nets[0].name, "docker0");
    assert_eq!(
        (
            nets[0].rx_errs,
            nets[0].rx_drop,
            nets[0].tx_errs,
            nets[0].tx_drop
        ),
        (3, 4, 7, 8)
    );
    assert_eq!((nets[1].name.as_str(), nets[1].rx_bytes), ("eth1", 99));
}

#[test]
fn mounts_of_a_real_host_keep_the_root_only() {
    let kept = select_mounts(parse_mounts(MOUNTS));
    assert_eq!(
        kept,
        [MountEntry {
            device: "/dev/vda".into(),
            mount: "/".into(),
            fstype: "ext4".into()
        }]
    );
}

#[test]
fn mounts_of_a_typical_server() {
    let text = "\
/dev/mapper/vg-root / ext4 rw,relatime 0 0
proc /proc proc rw 0 0
/dev/nvme0n1p1 /boot/efi vfat rw 0 0
/dev/mapper/vg-srv /srv/my\\040data xfs rw 0 0
/dev/mapper/vg-root /var/lib/bind-copy ext4 rw 0 0
tmpfs /tmp tmpfs rw 0 0
tmpfs /run tmpfs rw 0 0
/dev/loop3 /snap/core/123 squashfs ro 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
nas:/export /mnt/nas nfs4 rw 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw 0 0
";
    let kept: Vec<String> = select_mounts(parse_mounts(text))
        .into_iter()
        .map(|m| m.mount)
        .collect();
    assert_eq!(kept, ["/", "/boot/efi", "/srv/my data", "/tmp", "/mnt/nas"]);

    // A bind mount listed before the shorter original still ends up as the original.
    let text = "/dev/sdb1 /srv/data/bind ext4 rw 0 0\n/dev/sdb1 /srv ext4 rw 0 0\n";
    let kept = select_mounts(parse_mounts(text));
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].mount, "/srv");
    assert!(is_counted_mount("/", "overlay"));
}

#[test]
fn mount_fields_are_unescaped() {
    assert_eq!(unescape_mount_field("/a\\040b\\011c\\134d"), "/a b\tc\\d");
    assert_eq!(unescape_mount_field("/plain"), "/plain");
    assert_eq!(unescape_mount_field("/bad\\9\\"), "/bad\\9\\");
    assert_eq!(unescape_mount_field("/hi\\777"), "/hi\\777", "not a byte");
}

#[test]
fn mount_stat_multiplies_blocks() {
    let e = MountEntry {
        device: "/dev/vda".into(),
        mount: "/".into(),
        fstype: "ext4".into(),
    };
    let s = mount_stat(&e, 4096, 100, 40, 30, 1000, 900).expect("stat");
    assert_eq!(
        (s.bytes_total, s.bytes_free, s.bytes_avail),
        (409_600, 163_840, 122_880)
    );
    assert_eq!((s.inodes_total, s.inodes_free), (1000, 900));
    assert_eq!(mount_stat(&e, 4096, 0, 0, 0, 0, 0), None);
}

#[test]
fn docker_cgroup_files() {
    let id = "3f4e8c1d2b6a7e9f0c1d2b3a4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5";
    assert_eq!(
        container_id_from_cgroup(&format!("docker-{id}.scope")),
        Some(id)
    );
    assert_eq!(container_id_from_cgroup(id), Some(id));
    assert_eq!(container_id_from_cgroup("docker-abc.scope"), None);
    assert_eq!(container_id_from_cgroup("cgroup.procs"), None);

    let cpu = "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n";
    let mem_stat = "anon 100\nfile 5000\ninactive_file 4096\nactive_file 904\n";
    let c = container_stat(id, None, cpu, "10000\n", Some(mem_stat)).expect("container");
    assert_eq!(c.name, "3f4e8c1d2b6a", "short id without a readable config");
    assert_eq!(
        (c.cpu_usage_usec, c.memory_bytes),
        (1_500_000, 10_000 - 4096)
    );
    assert!(container_stat(id, None, "user_usec 5\n", "1", None).is_none());
    assert!(container_stat(id, None, cpu, "max", None).is_none());

    // cgroup v1: nanoseconds, and the hierarchical inactive_file (a v1 memory.stat also has
    // the group's own `inactive_file`, which is not the one docker subtracts).
    let v1_stat = "cache 8192\ninactive_file 1\ntotal_cache 8192\ntotal_inactive_file 6000\n";
    let c = container_stat_v1(
        id,
        Some("web-1".into()),
        "2500000000\n",
        "20000\n",
        Some(v1_stat),
    )
    .expect("container");
    assert_eq!(
        (c.name.as_str(), c.cpu_usage_usec, c.memory_bytes),
        ("web-1", 2_500_000, 20_000 - 6000)
    );
    assert!(container_stat_v1(id, None, "", "1", None).is_none());
    assert!(container_stat_v1(id, None, "5", "x", None).is_none());

    let config = r#"{"StreamConfig":{},"State":{"Running":true},"ID":"3f4e","MountPoints":{"/data":{"Name":"vol1"}},"Config":{"Env":["SECRET=x"]},"Name":"/web-1","Driver":"overlay2"}"#;
    assert_eq!(docker_name_from_config(config).as_deref(), Some("web-1"));
    assert_eq!(docker_name_from_config(r#"{"Name":"/bad name"}"#), None);
    assert_eq!(docker_name_from_config(r#"{"Name":"/unterminated"#), None);
}

/// A deterministic stream of bytes that looks enough like /proc text to reach deep into
/// the parsers: digits, separators, newlines, keywords.
fn garble(seed: u64, len: usize) -> String {
    const PIECES: [&str; 16] = [
        "0",
        "7",
        "18446744073709551616",
        " ",
        "  ",
        "\n",
        ":",
        "/",
        "cpu",
        "kB",
        "\\040",
        "-",
        ".",
        "é",
        "lo",
        "MemTotal",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut s = String::new();
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(PIECES[(x % 16) as usize]);
    }
    s
}

fn every_parser(text: &str) {
    let _ = parse_stat(text);
    let _ = parse_loadavg(text);
    let _ = parse_meminfo(text);
    let _ = parse_uptime(text);
    let _ = parse_diskstats(text);
    let _ = parse_net_dev(text);
    let _ = select_mounts(parse_mounts(text));
    let _ = parse_flat_keyed(text, "usage_usec");
    let _ = docker_name_from_config(text);
    let _ = container_id_from_cgroup(text);
    let _ = crate::parse_agentless(text, 0);
}

#[test]
fn garbled_and_truncated_input_never_panics() {
    for seed in 0..2000 {
        every_parser(&garble(seed, (seed % 300) as usize));
    }
    for fixture in [STAT, LOADAVG, MEMINFO, UPTIME, DISKSTATS, NET_DEV, MOUNTS] {
        for cut in (0..fixture.len()).filter(|&i| fixture.is_char_boundary(i)) {
            every_parser(&fixture[..cut]);
            every_parser(&fixture[cut..]);
        }
    }
}
