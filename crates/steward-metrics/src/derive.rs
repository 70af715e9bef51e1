//! Turns raw snapshots into metric points: gauges straight from the latest snapshot, rates
//! and CPU percentages from the difference between two.
//!
//! A counter that went backwards (a reboot, a re-created device or container, a driver
//! reset) gives no point for that interval rather than a negative or huge one. Without a
//! usable previous snapshot (the first one, or one that is not older) only gauges come out.

use serde::Serialize;

use crate::snapshot::{CpuTimes, RawSnapshot};

/// One value of one metric at the snapshot's time. `name` is from [`crate::catalog()`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub name: &'static str,
    /// The series within the metric: mount point, device, interface, `cpuN`, container
    /// name, or `""`.
    pub label: String,
    pub value: f64,
}

fn round_to(v: f64, step: f64) -> f64 {
    (v / step).round() * step
}

/// Percentages and loads: two decimals.
fn hundredths(v: f64) -> f64 {
    // Dividing by 100 instead of multiplying by 0.01 keeps 12.34 exactly 12.34.
    (v * 100.0).round() / 100.0
}

struct Out {
    points: Vec<Point>,
}

impl Out {
    fn push(&mut self, name: &'static str, label: &str, value: f64) {
        if value.is_finite() {
            self.points.push(Point {
                name,
                label: label.to_owned(),
                value,
            });
        }
    }
    fn two(&mut self, name: &'static str, label: &str, value: f64) {
        self.push(name, label, hundredths(value));
    }
    fn whole(&mut self, name: &'static str, label: &str, value: f64) {
        self.push(name, label, round_to(value, 1.0));
    }
}

/// A per-second rate of a counter, or `None` when it went backwards.
fn rate(prev: u64, cur: u64, secs: f64) -> Option<f64> {
    (cur >= prev).then(|| (cur - prev) as f64 / secs)
}

/// Points for `cur`; rates against `prev` when there is one that is older.
///
/// Rounding: percentages and loads to 0.01, bytes and byte rates to whole numbers, event
/// rates (`per_s`) to 0.01, counts and seconds to whole numbers.
pub fn derive(prev: Option<&RawSnapshot>, cur: &RawSnapshot) -> Vec<Point> {
    let mut out = Out {
        points: Vec::with_capacity(64),
    };
    let prev = prev.filter(|p| p.ts_ms < cur.ts_ms && !rebooted_between(p, cur));
    gauges(&mut out, cur);
    if let Some(prev) = prev {
        let secs = (cur.ts_ms - prev.ts_ms) as f64 / 1000.0;
        rates(&mut out, prev, cur, secs);
    }
    out.points
}

/// Uptime going backwards means a reboot: every counter started again from zero.
fn rebooted_between(prev: &RawSnapshot, cur: &RawSnapshot) -> bool {
    matches!((prev.uptime_secs, cur.uptime_secs), (Some(a), Some(b)) if b < a)
}

/// Whether no counter of a device, interface or container went backwards; one that did was
/// re-created (hot-plugged disk, re-created interface, restarted container) and its rates
/// for this interval would mix two lives.
fn monotonic<const N: usize>(prev: [u64; N], cur: [u64; N]) -> bool {
    prev.iter().zip(&cur).all(|(a, b)| b >= a)
}

fn gauges(out: &mut Out, s: &RawSnapshot) {
    if let Some(l) = &s.load {
        out.two("load.1", "", l.load1);
        out.two("load.5", "", l.load5);
        out.two("load.15", "", l.load15);
    }
    if let Some(m) = &s.mem {
        let avail = m.available_or_estimate().min(m.total);
        let used = m.total - avail;
        out.whole("mem.total", "", m.total as f64);
        out.whole("mem.used", "", used as f64);
        out.whole("mem.available", "", avail as f64);
        if m.total > 0 {
            out.two("mem.used_pct", "", used as f64 * 100.0 / m.total as f64);
        }
        out.whole("swap.total", "", m.swap_total as f64);
        out.whole(
            "swap.used",
            "",
            m.swap_total.saturating_sub(m.swap_free) as f64,
        );
    }
    for d in &s.mounts {
        let used = d.bytes_total.saturating_sub(d.bytes_free);
        out.whole("disk.total", &d.mount, d.bytes_total as f64);
        out.whole("disk.used", &d.mount, used as f64);
        // As df: used over what users can have (root's reserve is not counted as room).
        let room = used.saturating_add(d.bytes_avail);
        if room > 0 {
            out.two("disk.used_pct", &d.mount, used as f64 * 100.0 / room as f64);
        }
        out.whole("disk.inodes_total", &d.mount, d.inodes_total as f64);
        out.whole(
            "disk.inodes_used",
            &d.mount,
            d.inodes_total.saturating_sub(d.inodes_free) as f64,
        );
    }
    if let Some(u) = s.uptime_secs {
        out.whole("uptime.seconds", "", u);
    }
    if let Some(p) = s.procs {
        out.whole("procs.count", "", p as f64);
    }
    if let Some(f) = s.systemd_failed {
        out.whole("systemd.failed_units", "", f as f64);
    }
    for c in s.docker.iter().flatten() {
        out.whole("docker.mem_bytes", &c.name, c.memory_bytes as f64);
    }
}

fn rates(out: &mut Out, p: &RawSnapshot, c: &RawSnapshot, secs: f64) {
    if let (Some(a), Some(b)) = (&p.cpu, &c.cpu) {
        cpu(out, "", a, b);
    }
    for core in &c.cores {
        if let Some(before) = p.cores.iter().find(|x| x.id == core.id) {
            cpu(out, &format!("cpu{}", core.id), &before.times, &core.times);
        }
    }
    for d in &c.disks {
        let Some(a) = p.disks.iter().find(|x| x.name == d.name) else {
            continue;
        };
        let counters = |x: &crate::snapshot::DiskStat| {
            [x.reads, x.read_sectors, x.writes, x.write_sectors, x.io_ms]
        };
        if !monotonic(counters(a), counters(d)) {
            continue;
        }
        let l = d.name.as_str();
        // diskstats sectors are 512 bytes whatever the device's sector size.
        let bytes = |x: u64| x.saturating_mul(512);
        if let Some(r) = rate(bytes(a.read_sectors), bytes(d.read_sectors), secs) {
            out.whole("diskio.read_bytes", l, r);
        }
        if let Some(r) = rate(bytes(a.write_sectors), bytes(d.write_sectors), secs) {
            out.whole("diskio.write_bytes", l, r);
        }
        if let Some(r) = rate(a.reads, d.reads, secs) {
            out.two("diskio.read_ops", l, r);
        }
        if let Some(r) = rate(a.writes, d.writes, secs) {
            out.two("diskio.write_ops", l, r);
        }
        if let Some(r) = rate(a.io_ms, d.io_ms, secs) {
            // ms busy per second of wall time; clock skew between the two reads can push
            // it slightly past 100.
            out.two("diskio.busy_pct", l, (r / 10.0).min(100.0));
        }
    }
    for n in &c.nets {
        let Some(a) = p.nets.iter().find(|x| x.name == n.name) else {
            continue;
        };
        let counters = |x: &crate::snapshot::NetStat| {
            [
                x.rx_bytes,
                x.rx_packets,
                x.rx_errs,
                x.tx_bytes,
                x.tx_packets,
                x.tx_errs,
            ]
        };
        if !monotonic(counters(a), counters(n)) {
            continue;
        }
        let l = n.name.as_str();
        if let Some(r) = rate(a.rx_bytes, n.rx_bytes, secs) {
            out.whole("net.rx_bytes", l, r);
        }
        if let Some(r) = rate(a.tx_bytes, n.tx_bytes, secs) {
            out.whole("net.tx_bytes", l, r);
        }
        if let Some(r) = rate(a.rx_packets, n.rx_packets, secs) {
            out.two("net.rx_packets", l, r);
        }
        if let Some(r) = rate(a.tx_packets, n.tx_packets, secs) {
            out.two("net.tx_packets", l, r);
        }
        if let Some(r) = rate(a.rx_errs, n.rx_errs, secs) {
            out.two("net.rx_errors", l, r);
        }
        if let Some(r) = rate(a.tx_errs, n.tx_errs, secs) {
            out.two("net.tx_errors", l, r);
        }
    }
    if let (Some(before), Some(now)) = (&p.docker, &c.docker) {
        for k in now {
            let Some(a) = before.iter().find(|x| x.id == k.id) else {
                continue;
            };
            if let Some(r) = rate(a.cpu_usage_usec, k.cpu_usage_usec, secs) {
                // µs of CPU per second of wall time / 10 000 = percent of one core.
                out.two("docker.cpu_pct", &k.name, r / 10_000.0);
            }
        }
    }
}

/// CPU percentages of the ticks that passed between two readings. A reading where any
/// state went backwards (a CPU taken offline and back) gives nothing.
fn cpu(out: &mut Out, label: &str, a: &CpuTimes, b: &CpuTimes) {
    let (a, b) = (a.to_array(), b.to_array());
    if a.iter().zip(&b).any(|(x, y)| y < x) {
        return;
    }
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (y - x) as f64).collect();
    let total: f64 = d.iter().sum();
    if total <= 0.0 {
        return;
    }
    let pct = |v: f64| v * 100.0 / total;
    let [user, nice, system, idle, iowait, irq, softirq, steal] =
        [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]];
    out.two("cpu.usage", label, pct(total - idle - iowait));
    out.two("cpu.user", label, pct(user + nice));
    out.two("cpu.system", label, pct(system + irq + softirq));
    out.two("cpu.iowait", label, pct(iowait));
    out.two("cpu.steal", label, pct(steal));
}

#[cfg(test)]
mod tests;
