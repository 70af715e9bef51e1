//! The live view at fleet scale, in memory (no database, no sockets): the fleet summary for
//! 1,000 servers, `update` throughput, and hub ticks with 1,000 fleet subscribers while every
//! server reports each second. Results go to docs/PERFORMANCE.md.
//!
//! `cargo run --release -p steward-services --example live_hub`
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use steward_metrics::Point;
use steward_services::live::{Hub, Meta, Scope, Subscription};

const SERVERS: usize = 1_000;
const CLIENTS: usize = 1_000;

fn points(i: usize, t: usize) -> Vec<Point> {
    let v = ((i * 7 + t * 13) % 100) as f64;
    let p = |name: &'static str, label: &str, value: f64| Point {
        name,
        label: label.into(),
        value,
    };
    let mut out = vec![
        p("cpu.usage", "", v),
        p("cpu.user", "", v / 2.0),
        p("cpu.system", "", v / 4.0),
        p("load.1", "", v / 25.0),
        p("mem.used_pct", "", 40.0 + v / 5.0),
        p("disk.used_pct", "/", 60.0),
        p("disk.used_pct", "/var", 70.0),
        p("net.rx_bytes", "eth0", v * 1000.0),
        p("net.tx_bytes", "eth0", v * 300.0),
        p("systemd.failed_units", "", 0.0),
    ];
    // A typical agentless snapshot has ~40 points; pad with per-core CPU.
    for c in 0..30 {
        out.push(p("cpu.usage", &format!("cpu{c}"), v));
    }
    out
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let hub = Hub::default();
    let metas: HashMap<String, Meta> = (0..SERVERS)
        .map(|i| {
            (
                format!("server-{i:04}"),
                Meta {
                    org_id: "org".into(),
                    name: format!("host-{i:04}"),
                    tags: vec![
                        ["web", "db", "cache"][i % 3].into(),
                        format!("rack{}", i % 20),
                    ],
                    monitoring: "agentless".into(),
                    interval_secs: 10,
                    checks_down: 0,
                },
            )
        })
        .collect();
    hub.set_meta(metas);
    let now = || chrono::Utc::now().timestamp_millis();

    // update(): one snapshot per server.
    let started = Instant::now();
    for t in 0..10 {
        let ts = now() + t as i64;
        for i in 0..SERVERS {
            hub.update(&format!("server-{i:04}"), ts, &points(i, t));
        }
    }
    let per_update = started.elapsed().as_secs_f64() / (10 * SERVERS) as f64;
    hub.tick(now());

    // summary(): an admin (sees all) and a scoped user (a third).
    let all = Scope {
        org_id: "org".into(),
        visible_tags: None,
    };
    let web = Scope {
        org_id: "org".into(),
        visible_tags: Some(BTreeSet::from(["web".to_string()])),
    };
    for (label, scope) in [("all 1,000", &all), ("tag web (334)", &web)] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..200 {
            let s = Instant::now();
            let items = hub.summary(scope, now(), false);
            let json = serde_json::to_vec(&items).expect("json");
            times.push(s.elapsed().as_secs_f64() * 1000.0);
            bytes = json.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "summary {label}: p50 {:.2} ms, p95 {:.2} ms (in memory + JSON), {} KiB",
            pct(&times, 0.5),
            pct(&times, 0.95),
            bytes / 1024
        );
    }

    // Ticks: 1,000 fleet subscribers in three scopes, every server reported since the last
    // tick (the worst case: 1,000 servers at 1 s, ticks at 4/s would see a quarter of that).
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let scope = match c % 3 {
            0 => all.clone(),
            1 => web.clone(),
            _ => Scope {
                org_id: "org".into(),
                visible_tags: Some(BTreeSet::from(["db".to_string()])),
            },
        };
        let h = hub.connect(scope);
        hub.subscribe(h.id, Subscription::Fleet);
        clients.push(h);
    }
    let s = Instant::now();
    hub.tick(now());
    let snapshot_tick = s.elapsed().as_secs_f64() * 1000.0;
    let mut frame_bytes = 0;
    for c in &mut clients {
        while let Ok(batch) = c.rx.try_recv() {
            for f in batch.iter() {
                frame_bytes = frame_bytes.max(f.len());
            }
        }
    }
    let mut times = Vec::new();
    let mut update_bytes = 0;
    for t in 10..30 {
        let ts = now() + t as i64;
        for i in 0..SERVERS {
            hub.update(&format!("server-{i:04}"), ts, &points(i, t));
        }
        let s = Instant::now();
        hub.tick(now());
        times.push(s.elapsed().as_secs_f64() * 1000.0);
        for c in &mut clients {
            while let Ok(batch) = c.rx.try_recv() {
                for f in batch.iter() {
                    update_bytes = update_bytes.max(f.len());
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "update(): {:.2} µs per snapshot of 40 points",
        per_update * 1e6
    );
    println!(
        "tick, first (1,000 snapshots, one encoding per scope): {snapshot_tick:.1} ms, largest frame {} KiB",
        frame_bytes / 1024
    );
    println!(
        "tick, all 1,000 servers changed, 1,000 fleet clients in 3 scopes: p50 {:.2} ms, p95 {:.2} ms, largest frame {} KiB",
        pct(&times, 0.5),
        pct(&times, 0.95),
        update_bytes / 1024
    );
    println!(
        "clients still connected: {} (none dropped: {})",
        hub.clients(),
        hub.kicked_total() == 0
    );
}
