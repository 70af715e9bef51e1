//! What the hub keeps per server: the newest values (`Main`), their encoded JSON (`Encoded`)
//! and the sparkline and status (`View`).
use super::*;

/// The main values of a server's last sample, worked out once per sample (not per summary
/// request and tick): the fleet summary and every live frame read them.
#[derive(Debug, Default, Clone)]
pub(super) struct Main {
    pub(super) cpu: Option<f64>,
    load1: Option<f64>,
    pub(super) mem: Option<f64>,
    /// The fullest filesystem: mount and percent used.
    pub(super) disk: Option<(String, f64)>,
    pub(super) rx: Option<f64>,
    pub(super) tx: Option<f64>,
    pub(super) failed_units: Option<f64>,
}

impl Main {
    pub(super) fn of(points: &[Point]) -> Main {
        let mut m = Main::default();
        let add = |acc: &mut Option<f64>, v: f64| *acc = Some(acc.unwrap_or(0.0) + v);
        for p in points.iter().filter(|p| p.value.is_finite()) {
            let v = p.value;
            match p.name {
                "cpu.usage" if p.label.is_empty() => m.cpu = Some(v),
                "load.1" if p.label.is_empty() => m.load1 = Some(v),
                "mem.used_pct" if p.label.is_empty() => m.mem = Some(v),
                "systemd.failed_units" if p.label.is_empty() => m.failed_units = Some(v),
                "net.rx_bytes" => add(&mut m.rx, v),
                "net.tx_bytes" => add(&mut m.tx, v),
                "disk.used_pct" if m.disk.as_ref().is_none_or(|(_, best)| v > *best) => {
                    m.disk = Some((p.label.clone(), v));
                }
                _ => {}
            }
        }
        m
    }
}

/// A server's summary JSON as last encoded, and what it was encoded from.
#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) version: u64,
    pub(super) status: HostStatus,
    pub(super) json: Arc<str>,
}

/// The latest view of one server.
#[derive(Debug, Default)]
pub(super) struct View {
    pub(super) meta: Option<Meta>,
    pub(super) last_ts: Option<i64>,
    pub(super) points: Vec<Point>,
    pub(super) main: Main,
    pub(super) spark: VecDeque<f32>,
    /// The status last sent to clients.
    pub(super) published: Option<HostStatus>,
    /// Bumped by every accepted sample and metadata change.
    pub(super) version: u64,
    /// The summary JSON (no sparkline, no points) for the fleet summary and live frames,
    /// encoded again only when the version or the status moved.
    pub(super) encoded: Mutex<Option<Encoded>>,
}

impl View {
    /// The summary JSON without sparkline and points, from the cache when nothing changed.
    pub(super) fn summary_json(&self, id: &str, now_ms: i64) -> Option<Arc<str>> {
        let status = self.status(now_ms);
        let mut cached = lock(&self.encoded);
        if let Some(e) = cached.as_ref()
            && e.version == self.version
            && e.status == status
        {
            return Some(e.json.clone());
        }
        let json: Arc<str> = serde_json::to_string(&self.summary(id, now_ms, false, false)?)
            .ok()?
            .into();
        *cached = Some(Encoded {
            version: self.version,
            status,
            json: json.clone(),
        });
        Some(json)
    }

    pub(super) fn problems(&self) -> bool {
        let checks = self.meta.as_ref().is_some_and(|m| m.checks_down > 0);
        checks
            || self
                .main
                .disk
                .as_ref()
                .is_some_and(|(_, v)| *v >= DISK_FULL_PCT)
            || self.main.failed_units.is_some_and(|v| v > 0.0)
    }

    pub(super) fn status(&self, now_ms: i64) -> HostStatus {
        match &self.meta {
            Some(m) => status(
                now_ms,
                m.interval_secs,
                &m.monitoring,
                self.last_ts,
                self.problems(),
            ),
            None => HostStatus::Unknown,
        }
    }

    pub(super) fn summary(
        &self,
        id: &str,
        now_ms: i64,
        spark: bool,
        points: bool,
    ) -> Option<ServerMetrics> {
        let meta = self.meta.as_ref()?;
        let main = &self.main;
        Some(ServerMetrics {
            id: id.to_string(),
            name: meta.name.clone(),
            tags: meta.tags.clone(),
            monitoring: meta.monitoring.clone(),
            interval_secs: meta.interval_secs,
            status: self.status(now_ms),
            last_sample_at: self.last_ts.map(time),
            cpu_pct: main.cpu,
            load1: main.load1,
            mem_used_pct: main.mem,
            disk_used_pct: main.disk.as_ref().map(|d| d.1),
            disk_mount: main.disk.as_ref().map(|d| d.0.clone()),
            net_rx_bps: main.rx,
            net_tx_bps: main.tx,
            failed_units: main.failed_units,
            checks_down: meta.checks_down,
            // Two decimals: an f32 widened to f64 would print 17 digits for a line 60 px high.
            sparkline: spark.then(|| {
                self.spark
                    .iter()
                    .map(|v| (f64::from(*v) * 100.0).round() / 100.0)
                    .collect()
            }),
            points: points.then(|| {
                self.points
                    .iter()
                    .filter(|p| p.value.is_finite())
                    .map(|p| LivePoint {
                        name: p.name.to_string(),
                        label: p.label.clone(),
                        value: p.value,
                    })
                    .collect()
            }),
        })
    }
}
