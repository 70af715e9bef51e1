//! Steward's own metrics, for `GET /metrics`: HTTP requests (by route template, never by raw
//! path, and by method, with every method outside the standard ones counted as `other`, so
//! the label set is fixed whatever clients send), the HTTP connections (open, refused at the
//! cap, closed for stalling), the process (CPU, memory, file descriptors, threads,
//! from `/proc/self`), and gauges read at scrape time (SSH pool, live terminals and runs).
//!
//! The `metrics` facade is process-wide, like logging: one recorder is installed the first
//! time it is needed and every `AppState` in the process renders from it.
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder's handle (installed on first use; `None` if another recorder
/// was installed first, in which case only the scrape-time figures are exported).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "steward_http_request_duration_seconds".into(),
                    ),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            metrics::describe_counter!(
                "steward_http_requests_total",
                "HTTP requests answered, by method, route and status class"
            );
            metrics::describe_histogram!(
                "steward_http_request_duration_seconds",
                metrics::Unit::Seconds,
                "Time to answer HTTP requests, by method and route"
            );
            Some(handle)
        })
        .as_ref()
}

/// The `method` label: one of the standard methods, or `other` for any extension method a
/// client makes up (each would otherwise be a new series, without a login).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every request by its route template (`unmatched` for paths no route
/// matched, the web UI's included) and [`method_label`].
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    if handle().is_some() {
        let class = match response.status().as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        metrics::counter!("steward_http_requests_total", "method" => method, "route" => route.clone(), "status" => class).increment(1);
        metrics::histogram!("steward_http_request_duration_seconds", "method" => method, "route" => route)
            .record(started.elapsed().as_secs_f64());
    }
    response
}

/// The process figures Prometheus conventionally names `process_*`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub threads: u64,
    pub start_time_seconds: f64,
}

/// Parses `/proc/self/stat` (with the clock tick and page size of this machine), the uptime
/// and boot time; `None` when the text is not what Linux writes.
pub fn parse_stat(stat: &str, ticks: f64, page: u64, boot_time: f64) -> Option<ProcessStats> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime 15, threads 20, starttime 22,
    // vsize 23, rss 24.
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(ProcessStats {
        cpu_seconds: (num(11)? + num(12)?) as f64 / ticks,
        threads: num(17)?,
        start_time_seconds: boot_time + num(19)? as f64 / ticks,
        virtual_bytes: num(20)?,
        resident_bytes: num(21)? * page,
        open_fds: 0,
    })
}

fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    // Linux reports times in USER_HZ, 100 on every architecture Steward runs on, and pages of
    // 4 KiB on x86-64 and most arm64 kernels.
    let mut s = parse_stat(&stat, 100.0, 4096, boot_time)?;
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Some(s)
}

/// Appends one gauge or counter in the text exposition format.
pub fn write_metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[(String, f64)],
) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Escapes a label value (backslash, double quote and newline, as the format requires).
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Steward's own metrics in the text exposition format.
pub fn render_own(st: &AppState) -> String {
    let mut out = handle().map(|h| h.render()).unwrap_or_default();
    if let Some(p) = process_stats() {
        let one = |v: f64| vec![(String::new(), v)];
        write_metric(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            &one(p.cpu_seconds),
        );
        write_metric(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &one(p.resident_bytes as f64),
        );
        write_metric(
            &mut out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            &one(p.virtual_bytes as f64),
        );
        write_metric(
            &mut out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            &one(p.open_fds as f64),
        );
        write_metric(
            &mut out,
            "process_threads",
            "gauge",
            "Number of OS threads in the process.",
            &one(p.threads as f64),
        );
        write_metric(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            &one(p.start_time_seconds),
        );
    }
    let pool = st.ssh.stats();
    let one = |v: usize| vec![(String::new(), v as f64)];
    render_connections(st, &mut out);
    write_metric(
        &mut out,
        "steward_ssh_connections",
        "gauge",
        "SSH connections open to managed servers.",
        &one(pool.open),
    );
    write_metric(
        &mut out,
        "steward_ssh_connections_in_use",
        "gauge",
        "SSH connections somebody is using.",
        &one(pool.in_use),
    );
    write_metric(
        &mut out,
        "steward_terminal_sessions",
        "gauge",
        "Web terminal sessions open on this instance.",
        &one(st.terminals.count()),
    );
    write_metric(
        &mut out,
        "steward_executions_running",
        "gauge",
        "Script runs in progress on this instance.",
        &one(st.executions.running()),
    );
    render_fleet(st, &mut out);
    out
}

/// The HTTP edge's figures (`crate::edge`).
fn render_connections(st: &AppState, out: &mut String) {
    let c = &st.connections;
    write_metric(
        out,
        "steward_http_connections_open",
        "gauge",
        "HTTP connections open, WebSockets included.",
        &[(String::new(), c.open() as f64)],
    );
    write_metric(
        out,
        "steward_http_connections_max",
        "gauge",
        "Most HTTP connections open at once (--max-connections).",
        &[(String::new(), c.max() as f64)],
    );
    write_metric(
        out,
        "steward_http_connections_refused_total",
        "counter",
        "HTTP connections refused (503 and closed) because the cap was reached.",
        &[(String::new(), c.refused() as f64)],
    );
    let closed: Vec<(String, f64)> = crate::edge::conn::Stall::ALL
        .iter()
        .map(|s| (format!("reason=\"{}\"", s.as_str()), c.closed(*s) as f64))
        .collect();
    write_metric(
        out,
        "steward_http_connections_closed_total",
        "counter",
        "HTTP connections closed by Steward because the client stalled, by reason.",
        &closed,
    );
}

/// The fleet's latest host metrics, from the live view: `steward_host_up` for every server
/// that has reported (1 online or degraded, 0 offline), and its values only while it is up
/// (an offline server's last values would look current). Labels: `server` (name),
/// `server_id`, `tags` (comma-separated), plus `mount` or `interface`.
pub fn render_fleet(st: &AppState, out: &mut String) {
    use steward_proto::metrics::HostStatus;
    let hosts = st.live.hosts(st.now_ms());
    type Family = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    );
    // (exposed name, help, catalog name, label name for the catalog label)
    const FAMILIES: [Family; 9] = [
        (
            "steward_host_cpu_usage_percent",
            "CPU busy (user + system + steal), percent.",
            "cpu.usage",
            None,
        ),
        (
            "steward_host_memory_used_percent",
            "Memory in use, percent of total.",
            "mem.used_pct",
            None,
        ),
        (
            "steward_host_load1",
            "Load average over 1 minute.",
            "load.1",
            None,
        ),
        (
            "steward_host_load5",
            "Load average over 5 minutes.",
            "load.5",
            None,
        ),
        (
            "steward_host_disk_used_percent",
            "Filesystem space in use, percent.",
            "disk.used_pct",
            Some("mount"),
        ),
        (
            "steward_host_network_receive_bytes_per_second",
            "Bytes received per second.",
            "net.rx_bytes",
            Some("interface"),
        ),
        (
            "steward_host_network_transmit_bytes_per_second",
            "Bytes sent per second.",
            "net.tx_bytes",
            Some("interface"),
        ),
        (
            "steward_host_systemd_failed_units",
            "systemd units in the failed state.",
            "systemd.failed_units",
            None,
        ),
        (
            "steward_host_uptime_seconds",
            "Seconds since the host booted.",
            "uptime.seconds",
            None,
        ),
    ];
    // `tags` goes last: some simple parsers split label pairs at every comma.
    let labels = |h: &steward_services::live::HostLatest, extra: Option<(&str, &str)>| {
        let extra = extra
            .map(|(k, v)| format!("{k}=\"{}\",", label_value(v)))
            .unwrap_or_default();
        format!(
            "server=\"{}\",server_id=\"{}\",{extra}tags=\"{}\"",
            label_value(&h.meta.name),
            label_value(&h.id),
            label_value(&h.meta.tags.join(","))
        )
    };
    let up: Vec<(String, f64)> = hosts
        .iter()
        .filter(|h| h.status != HostStatus::Unknown)
        .map(|h| {
            let v = matches!(h.status, HostStatus::Online | HostStatus::Degraded);
            (labels(h, None), if v { 1.0 } else { 0.0 })
        })
        .collect();
    write_metric(
        out,
        "steward_host_up",
        "gauge",
        "1 when the server reported within three intervals, else 0.",
        &up,
    );
    let live: Vec<&steward_services::live::HostLatest> = hosts
        .iter()
        .filter(|h| matches!(h.status, HostStatus::Online | HostStatus::Degraded))
        .collect();
    for (name, help, metric, label) in FAMILIES {
        let samples: Vec<(String, f64)> = live
            .iter()
            .flat_map(|h| {
                h.points
                    .iter()
                    .filter(move |p| p.name == metric && p.value.is_finite())
                    .filter(move |p| label.is_some() || p.label.is_empty())
                    .map(move |p| (labels(h, label.map(|l| (l, p.label.as_str()))), p.value))
            })
            .collect();
        write_metric(out, name, "gauge", help, &samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_with_a_strange_command_name() {
        let stat = "4242 (we ird) (name)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 12345 104857600 2560 18446744073709551615 0 0 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(stat, 100.0, 4096, 1_700_000_000.0).expect("parses");
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.threads, 7);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.resident_bytes, 2560 * 4096);
        assert_eq!(s.start_time_seconds, 1_700_000_123.45);
        assert_eq!(parse_stat("garbage", 100.0, 4096, 0.0), None);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
