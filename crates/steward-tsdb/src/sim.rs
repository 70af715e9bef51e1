//! Deterministic simulated series that look like what the agent reports, for tests, the codec
//! comparison and benchmarks: CPU percentages with noise, slowly growing memory bytes, bursty
//! network byte rates, load averages, constants. Values are rounded the way the hub rounds
//! them (percent and load to 0.01, bytes to integers); timestamps are regular with a few
//! milliseconds of jitter.

/// A small, seedable PRNG (SplitMix64): enough for test data, not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)` (`hi > lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    /// Roughly normal, mean 0 and deviation 1 (sum of uniforms).
    pub fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.unit()).sum::<f64>() * 3f64.sqrt() - 2.0 * 3f64.sqrt()
    }
}

/// The kinds of series the simulator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A CPU percentage: a daily wave plus noise, two decimals.
    CpuPercent,
    /// Memory in use, bytes (multiples of 1024), drifting slowly upwards.
    MemoryBytes,
    /// A network or disk byte rate, mostly quiet with bursts, integer bytes per second.
    ByteRate,
    /// A load average, two decimals, smooth.
    Load,
    /// A value that never changes (total memory, a zero error counter).
    Constant,
}

/// All kinds, for iterating.
pub const KINDS: [Kind; 5] = [
    Kind::CpuPercent,
    Kind::MemoryBytes,
    Kind::ByteRate,
    Kind::Load,
    Kind::Constant,
];

fn round_to(v: f64, step: f64) -> f64 {
    // Rounding through the integer count of steps gives the same f64 the hub produces
    // (`(v * 100).round() / 100`).
    (v / step).round() * step
}

/// Timestamps from `start_ms`, every `interval_ms`, each with up to `jitter_ms` of jitter
/// (strictly increasing as long as the jitter is less than half the interval).
pub fn timestamps(
    rng: &mut Rng,
    start_ms: i64,
    interval_ms: i64,
    jitter_ms: i64,
    n: usize,
) -> Vec<i64> {
    (0..n as i64)
        .map(|i| {
            let j = if jitter_ms > 0 {
                rng.range(-jitter_ms, jitter_ms + 1)
            } else {
                0
            };
            start_ms + i * interval_ms + j
        })
        .collect()
}

/// `n` values of `kind` sampled every `interval_ms`.
pub fn values(rng: &mut Rng, kind: Kind, interval_ms: i64, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    let secs = interval_ms as f64 / 1000.0;
    match kind {
        Kind::CpuPercent => {
            let base = 5.0 + rng.unit() * 30.0;
            let phase = rng.unit() * 6.3;
            for i in 0..n {
                let t = i as f64 * secs;
                let wave = (t / 86_400.0 * std::f64::consts::TAU + phase).sin() * base * 0.5;
                let v = (base + wave + rng.normal() * 3.0).clamp(0.0, 100.0);
                out.push(round_to(v, 0.01));
            }
        }
        Kind::MemoryBytes => {
            let mut v = (2_000_000 + rng.range(0, 6_000_000)) as f64 * 1024.0;
            for _ in 0..n {
                v += (rng.range(-400, 520) * 1024) as f64 * secs.sqrt();
                v = (v / 1024.0).round() * 1024.0;
                out.push(v.max(0.0));
            }
        }
        Kind::ByteRate => {
            let quiet = 200.0 + rng.unit() * 5_000.0;
            let mut burst = 0usize;
            for _ in 0..n {
                if burst == 0 && rng.unit() < 0.01 {
                    burst = 1 + rng.range(0, 30) as usize;
                }
                let v = if burst > 0 {
                    burst -= 1;
                    quiet * 50.0 + rng.unit() * 20_000_000.0
                } else {
                    quiet * (0.5 + rng.unit())
                };
                out.push(v.round());
            }
        }
        Kind::Load => {
            let mut v = rng.unit() * 2.0;
            let alpha = 1.0 - (-secs / 60.0f64).exp();
            for _ in 0..n {
                let target = (1.0 + rng.normal()).max(0.0) * 2.0;
                v += (target - v) * alpha;
                out.push(round_to(v, 0.01));
            }
        }
        Kind::Constant => {
            let c = (rng.range(1, 64) * 1024 * 1024 * 1024) as f64;
            out.resize(n, c);
        }
    }
    out
}

/// One simulated series of `kind`: `n` samples every `interval_ms` with ±5 ms jitter.
pub fn series(seed: u64, kind: Kind, start_ms: i64, interval_ms: i64, n: usize) -> Vec<(i64, f64)> {
    let mut rng = Rng::new(seed);
    let ts = timestamps(&mut rng, start_ms, interval_ms, 5, n);
    let vs = values(&mut rng, kind, interval_ms, n);
    ts.into_iter().zip(vs).collect()
}

/// The ~100 series of a typical server, as (name, label): per-CPU and total CPU
/// percentages, memory, load, per-interface network rates, per-disk I/O, filesystems.
pub fn server_series() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |name: &str, label: &str| out.push((name.to_string(), label.to_string()));
    for m in [
        "user", "system", "iowait", "steal", "idle", "nice", "irq", "softirq",
    ] {
        add(&format!("cpu.{m}"), "");
        for c in 0..4 {
            add(&format!("cpu.{m}"), &format!("cpu{c}"));
        }
    }
    for m in [
        "used",
        "free",
        "cached",
        "buffers",
        "available",
        "swap_used",
        "total",
        "swap_total",
    ] {
        add(&format!("mem.{m}"), "");
    }
    for m in ["load1", "load5", "load15"] {
        add(&format!("load.{m}"), "");
    }
    for nic in ["eth0", "eth1", "lo"] {
        for m in [
            "rx_bytes",
            "tx_bytes",
            "rx_packets",
            "tx_packets",
            "rx_errors",
            "tx_errors",
        ] {
            add(&format!("net.{m}"), nic);
        }
    }
    for disk in ["sda", "sdb", "nvme0n1"] {
        for m in ["read_bytes", "write_bytes", "reads", "writes", "busy"] {
            add(&format!("disk.{m}"), disk);
        }
    }
    for fs in ["/", "/var", "/home"] {
        for m in ["used", "size", "used_percent"] {
            add(&format!("fs.{m}"), fs);
        }
    }
    out
}

/// A CPU-like percentage around `base` with noise of deviation `sd`, two decimals.
fn percent(rng: &mut Rng, base: f64, sd: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| round_to((base + rng.normal() * sd).clamp(0.0, 100.0), 0.01))
        .collect()
}

/// Mostly exactly zero; a fraction `p` of samples carry a small two-decimal value.
fn sparse(rng: &mut Rng, p: f64, scale: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.unit() < p {
                round_to(rng.unit() * scale, 0.01)
            } else {
                0.0
            }
        })
        .collect()
}

/// A disk byte rate: zero while idle, writeback bursts in multiples of 4 KiB.
fn disk_rate(rng: &mut Rng, p: f64, scale: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            if rng.unit() < p {
                (rng.range(1, (scale / 4096.0) as i64 + 2) * 4096) as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// `n` samples of the metric `name`/`label` of [`server_series`], as a mostly idle server
/// reports them every `interval_ms` (±5 ms jitter): busy CPU metrics are noisy, the rare
/// ones (steal, nice, irq, iowait) are mostly 0.00, memory drifts by pages, error counters
/// and sizes never change, idle disks mostly read nothing.
pub fn server_metric(
    seed: u64,
    name: &str,
    label: &str,
    start_ms: i64,
    interval_ms: i64,
    n: usize,
) -> Vec<(i64, f64)> {
    let mut rng = Rng::new(seed);
    let ts = timestamps(&mut rng, start_ms, interval_ms, 5, n);
    let total = label.is_empty();
    // Totals average several CPUs, so they are smoother.
    let damp = if total { 0.5 } else { 1.0 };
    let base = rng.unit();
    let vs = match name {
        "cpu.user" => percent(&mut rng, 5.0 + base * 25.0, 3.0 * damp, n),
        "cpu.system" => percent(&mut rng, 1.0 + base * 5.0, 1.0 * damp, n),
        "cpu.idle" => percent(&mut rng, 60.0 + base * 30.0, 3.0 * damp, n),
        "cpu.softirq" => percent(&mut rng, 0.1 + base * 0.3, 0.1, n),
        "cpu.iowait" => sparse(&mut rng, 0.2, 3.0, n),
        "cpu.steal" | "cpu.nice" | "cpu.irq" => sparse(&mut rng, 0.05, 0.5, n),
        "mem.total" | "mem.swap_total" | "fs.size" => {
            values(&mut rng, Kind::Constant, interval_ms, n)
        }
        "mem.swap_used" => vec![(rng.range(0, 50_000) * 4096) as f64; n],
        n_ if n_.starts_with("mem.") || n_ == "fs.used" => {
            values(&mut rng, Kind::MemoryBytes, interval_ms, n)
        }
        "load.load1" | "load.load5" | "load.load15" | "fs.used_percent" => {
            values(&mut rng, Kind::Load, interval_ms, n)
        }
        "net.rx_errors" | "net.tx_errors" => vec![0.0; n],
        "net.rx_bytes" | "net.tx_bytes" if label == "eth0" => {
            values(&mut rng, Kind::ByteRate, interval_ms, n)
        }
        "net.rx_bytes" | "net.tx_bytes" => disk_rate(&mut rng, 0.3, 20_000.0, n),
        "net.rx_packets" | "net.tx_packets" => sparse(&mut rng, 0.5, 20_000.0, n)
            .into_iter()
            .map(f64::round)
            .collect(),
        "disk.read_bytes" => disk_rate(&mut rng, 0.05, 1_000_000.0, n),
        "disk.write_bytes" => disk_rate(&mut rng, 0.3, 400_000.0, n),
        "disk.reads" | "disk.writes" => sparse(&mut rng, 0.3, 100.0, n)
            .into_iter()
            .map(f64::round)
            .collect(),
        "disk.busy" => sparse(&mut rng, 0.3, 5.0, n),
        _ => values(&mut rng, Kind::CpuPercent, interval_ms, n),
    };
    ts.into_iter().zip(vs).collect()
}
