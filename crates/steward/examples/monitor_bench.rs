//! Monitoring benchmarks against a real `steward serve` (release build), results in
//! docs/PERFORMANCE.md:
//!
//! - `ingest` (`make bench-ingest`): simulated agents speaking the real agent protocol
//!   (`steward_metrics::agent_proto`, one WebSocket each, enrolled through the API) push one
//!   snapshot a second (100 series each after the hub's `derive`). Measured: the hub
//!   process's CPU per sample stored (utime + stime from `/proc/<pid>/stat` over a steady
//!   window ÷ samples acknowledged), ingest-to-queryable latency (a batch sent → its sample
//!   returned by `GET /servers/{id}/metrics`, on a subset of servers), the API while
//!   ingesting, from a client on its own thread (fleet summary; a 24 h chart of a server whose 24 h of history was pushed
//!   through the same protocol with past timestamps, as an agent backfills), and bytes per
//!   sample on disk after the hub's last flush.
//! - `live` (`make bench-live`): the same fleet feeding Steward, and in the same run a
//!   minimal Node `ws` hub (`bench/live-node/hub.js`) fed the same points; live clients
//!   subscribed to the fleet on each hub in turn. Measured: hub CPU per delivered frame,
//!   sample-to-client delay, RSS per connected idle client.
//! - `idle`: only the memory per connected idle client, against a Steward with no fleet and
//!   no agents (quick; for finding where a connection's memory goes, e.g. with
//!   `STEWARD_BIN` set to a script that runs steward under `heaptrack`).
//!
//! ```sh
//! cargo build --release -p steward --bin steward --example monitor_bench
//! target/release/examples/monitor_bench ingest
//! target/release/examples/monitor_bench live
//! ```
//!
//! Settings (environment): `BENCH_AGENTS` (1000), `BENCH_WARMUP` (seconds, 70),
//! `BENCH_WINDOW` (seconds, 60), `BENCH_PROBE_SECS` (30), `BENCH_API_SECS` (30),
//! `BENCH_PREFILL_HOURS` (24), `BENCH_CLIENTS` (1000), `BENCH_SETTLE` (seconds after the live
//! clients subscribed, before measuring: 15), `BENCH_DATABASE` (`sqlite` or a
//! PostgreSQL server URL such as `postgres://postgres@127.0.0.1:5432/postgres`, in which a
//! new database is created), `STEWARD_BIN` (`target/release/steward`), `BENCH_NODE_HUB`
//! (`bench/live-node/hub.js`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use steward_metrics::agent_proto::{AgentMessage, Hello, HubMessage, PROTOCOL_VERSION, Samples};
use steward_metrics::{
    ContainerStat, CoreTimes, CpuTimes, DiskStat, LoadAvg, MemInfo, MountStat, NetStat, RawSnapshot,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const PASSWORD: &str = "violet-harbour-engine-42";
/// The names the server page's charts ask for (web/src/pages/ServerMetrics.tsx).
const CHART_NAMES: &str = "cpu.user,cpu.system,cpu.iowait,cpu.steal,load.1,load.5,load.15,mem.used,swap.used,disk.used_pct,diskio.read_bytes,diskio.write_bytes,net.rx_bytes,net.tx_bytes";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---------------------------------------------------------------- process figures

/// utime and stime of a process, seconds (USER_HZ = 100).
fn cpu_split(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |x| x.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    (field(11) / 100.0, field(12) / 100.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn summarize(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "n {}, p50 {:.1}, p95 {:.1}, p99 {:.1}, max {:.1}",
        v.len(),
        pct(&v, 0.5),
        pct(&v, 0.95),
        pct(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// CPU of a process over a window.
struct CpuWindow {
    pid: u32,
    cpu: (f64, f64),
    at: Instant,
}

impl CpuWindow {
    fn start(pid: u32) -> Self {
        Self {
            pid,
            cpu: cpu_split(pid),
            at: Instant::now(),
        }
    }
    /// (CPU seconds used, wall seconds).
    fn end(&self) -> (f64, f64) {
        let (u, s, wall) = self.end_split();
        (u + s, wall)
    }
    /// (user CPU seconds, system CPU seconds, wall seconds).
    fn end_split(&self) -> (f64, f64, f64) {
        let (u, s) = cpu_split(self.pid);
        (
            u - self.cpu.0,
            s - self.cpu.1,
            self.at.elapsed().as_secs_f64(),
        )
    }
}

// ---------------------------------------------------------------- the hub under test

struct Steward {
    child: Mutex<Child>,
    pid: u32,
    base: String,
    ws_base: String,
    db_url: String,
    /// An API token with servers.read and servers.write.
    token: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn database_url(dir: &Path) -> String {
    let which = std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "sqlite".into());
    if which == "sqlite" {
        return format!("sqlite://{}", dir.join("steward.db").display());
    }
    let name = format!("steward_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = steward_db::Db::connect(&which)
        .await
        .expect("reach PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin.pool)
        .await
        .expect("create the bench database");
    admin.close().await;
    let (base, _) = which.rsplit_once('/').expect("postgres url");
    format!("{base}/{name}")
}

impl Steward {
    async fn start() -> Steward {
        let bin = std::env::var("STEWARD_BIN").unwrap_or_else(|_| "target/release/steward".into());
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let db_url = database_url(dir.path()).await;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let log = std::fs::File::create(dir.path().join("steward.log")).unwrap();
        let child = Command::new(&bin)
            .env_remove("STEWARD_MASTER_KEY")
            .env("RUST_LOG", "warn")
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--database-url",
                &db_url,
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                // Every live client of the benchmark is the same account: above the
                // per-user socket cap (50).
                "--max-sockets-per-user",
                "10000",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let pid = child.id();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap();
        let mut ready = false;
        for _ in 0..600 {
            if http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "steward did not become ready");
        let setup = std::fs::read_to_string(data.join("setup-token")).unwrap();
        let r = http
            .post(format!("{base}/api/v1/setup"))
            .json(&json!({ "token": setup.trim(), "username": "admin", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "setup: {}",
            r.text().await.unwrap()
        );
        let login: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": "admin", "password": PASSWORD }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = login["access_token"].as_str().expect("access token");
        let created: Value = http
            .post(format!("{base}/api/v1/api-tokens"))
            .bearer_auth(access)
            .json(&json!({ "name": "bench", "permissions": ["servers.read", "servers.write"] }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = created["token"]
            .as_str()
            .unwrap_or_else(|| panic!("api token: {created}"))
            .to_string();
        Steward {
            child: Mutex::new(child),
            pid,
            ws_base: base.replace("http://", "ws://"),
            base,
            db_url,
            token,
            http,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        )
    }

    /// SIGTERM and wait for the graceful stop (the last metric flush included).
    fn stop(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let status = self.child.lock().unwrap().wait().expect("wait");
        assert!(status.success(), "steward stopped with {status}");
    }
}

/// A server of the fleet with its agent's enrollment token.
#[derive(Clone)]
struct Member {
    id: String,
    name: String,
    tags: Vec<String>,
    agent_token: String,
}

async fn create_fleet(st: &Steward, n: usize) -> Vec<Member> {
    let started = Instant::now();
    let members: Vec<Member> = futures_util::stream::iter(0..n)
        .map(|i| async move {
            let name = format!("bench-{i:04}");
            let tags = vec![["web", "db", "cache"][i % 3].to_string()];
            let r: Value = st
                .http
                .post(format!("{}/api/v1/servers", st.base))
                .bearer_auth(&st.token)
                .json(&json!({
                    "name": name, "host": format!("10.1.{}.{}", i / 250, i % 250 + 1),
                    "ssh_user": "root", "metrics_interval_secs": 1, "tags": tags,
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = r["id"]
                .as_str()
                .unwrap_or_else(|| panic!("server: {r}"))
                .to_string();
            let e: Value = st
                .http
                .post(format!("{}/api/v1/servers/{id}/agent", st.base))
                .bearer_auth(&st.token)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let agent_token = e["token"]
                .as_str()
                .unwrap_or_else(|| panic!("enrollment: {e}"))
                .to_string();
            Member {
                id,
                name,
                tags,
                agent_token,
            }
        })
        .buffered(8)
        .collect()
        .await;
    eprintln!(
        "fleet: {n} servers created and enrolled through the API in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    members
}

// ---------------------------------------------------------------- simulated host

/// A host whose counters move plausibly: 8 cores, 3 filesystems, 2 disks, 2 interfaces,
/// 3 containers — 100 series once the hub has derived rates.
struct Sim {
    rng: u64,
    snap: RawSnapshot,
    busy: f64,
    /// Probe hosts report their batch count as `procs.count`, so a query can tell whether a
    /// given sample is there.
    probe: bool,
    count: u64,
}

impl Sim {
    fn new(i: usize, ts_ms: i64, probe: bool) -> Sim {
        let core = CpuTimes {
            user: 1_000_000,
            nice: 1_000,
            system: 300_000,
            idle: 50_000_000,
            iowait: 10_000,
            irq: 0,
            softirq: 5_000,
            steal: 0,
        };
        let mut sim = Sim {
            rng: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            busy: 0.05 + (i % 10) as f64 * 0.03,
            probe,
            count: 0,
            snap: RawSnapshot {
                ts_ms,
                cpu: None,
                cores: (0..8).map(|id| CoreTimes { id, times: core }).collect(),
                load: Some(LoadAvg {
                    load1: 0.5,
                    load5: 0.4,
                    load15: 0.3,
                    running: 1,
                    tasks: 320,
                }),
                mem: Some(MemInfo {
                    total: 16 << 30,
                    available: Some(10 << 30),
                    free: 2 << 30,
                    buffers: 200 << 20,
                    cached: 6 << 30,
                    swap_total: 2 << 30,
                    swap_free: (2 << 30) - (10 << 20),
                }),
                mounts: ["/", "/var", "/data"]
                    .iter()
                    .enumerate()
                    .map(|(k, m)| MountStat {
                        mount: (*m).into(),
                        device: format!("/dev/sda{}", k + 1),
                        fstype: "ext4".into(),
                        bytes_total: 100 << 30,
                        bytes_free: (40 + 10 * k as u64) << 30,
                        bytes_avail: (35 + 10 * k as u64) << 30,
                        inodes_total: 6_553_600,
                        inodes_free: 6_000_000,
                    })
                    .collect(),
                disks: ["sda", "sdb"]
                    .iter()
                    .map(|d| DiskStat {
                        name: (*d).into(),
                        reads: 1_000_000,
                        read_sectors: 80_000_000,
                        writes: 2_000_000,
                        write_sectors: 160_000_000,
                        io_ms: 3_000_000,
                    })
                    .collect(),
                nets: ["eth0", "eth1"]
                    .iter()
                    .map(|n| NetStat {
                        name: (*n).into(),
                        rx_bytes: 10_000_000_000,
                        rx_packets: 12_000_000,
                        rx_errs: 0,
                        rx_drop: 0,
                        tx_bytes: 4_000_000_000,
                        tx_packets: 8_000_000,
                        tx_errs: 0,
                        tx_drop: 0,
                    })
                    .collect(),
                uptime_secs: Some(1_000_000.0 + i as f64),
                procs: Some(250),
                systemd_failed: Some(0),
                docker: Some(
                    (0..3)
                        .map(|k| ContainerStat {
                            id: format!("{:064x}", i * 3 + k),
                            name: format!("app-{k}"),
                            cpu_usage_usec: 5_000_000_000,
                            memory_bytes: 300 << 20,
                        })
                        .collect(),
                ),
            },
        };
        sim.sum_cpu();
        sim
    }

    fn rand(&mut self) -> f64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sum_cpu(&mut self) {
        let mut t = CpuTimes::default();
        for c in &self.snap.cores {
            let c = c.times;
            t.user += c.user;
            t.nice += c.nice;
            t.system += c.system;
            t.idle += c.idle;
            t.iowait += c.iowait;
            t.irq += c.irq;
            t.softirq += c.softirq;
            t.steal += c.steal;
        }
        self.snap.cpu = Some(t);
    }

    /// The next reading, taken at `ts_ms`.
    fn step(&mut self, ts_ms: i64) -> RawSnapshot {
        let dt = ((ts_ms - self.snap.ts_ms).max(1) as f64) / 1000.0;
        self.snap.ts_ms = ts_ms;
        self.busy = (self.busy + (self.rand() - 0.5) * 0.02).clamp(0.01, 0.9);
        let ticks = (100.0 * dt).round() as u64;
        for k in 0..self.snap.cores.len() {
            let b = (self.busy + (self.rand() - 0.5) * 0.1).clamp(0.0, 1.0);
            let busy = (ticks as f64 * b) as u64;
            let user = busy * 7 / 10;
            let system = busy - user;
            let iowait = u64::from(self.rand() < 0.2);
            let c = &mut self.snap.cores[k].times;
            c.user += user;
            c.system += system;
            c.iowait += iowait;
            c.idle += ticks.saturating_sub(busy + iowait);
        }
        self.sum_cpu();
        let (r1, r2, r3) = (self.rand(), self.rand(), self.rand());
        if let Some(l) = &mut self.snap.load {
            l.load1 = ((l.load1 + (r1 - 0.5) * 0.2).max(0.0) * 100.0).round() / 100.0;
            l.load5 = ((l.load5 * 0.95 + l.load1 * 0.05) * 100.0).round() / 100.0;
            l.load15 = ((l.load15 * 0.98 + l.load1 * 0.02) * 100.0).round() / 100.0;
        }
        if let Some(m) = &mut self.snap.mem {
            let a = m.available.unwrap_or(0) as f64 + (r2 - 0.5) * 8.0 * 1048576.0;
            let a = a.clamp(1.0 * 1073741824.0, 15.0 * 1073741824.0) as u64;
            m.available = Some(a & !4095);
            if r3 < 0.02 {
                m.swap_free = m.swap_free.saturating_sub(4096);
            }
        }
        for k in 0..self.snap.mounts.len() {
            let used = (self.rand() * 65536.0) as u64 & !4095;
            let inode = u64::from(self.rand() < 0.1);
            let m = &mut self.snap.mounts[k];
            m.bytes_free = m.bytes_free.saturating_sub(used);
            m.bytes_avail = m.bytes_avail.saturating_sub(used);
            m.inodes_free = m.inodes_free.saturating_sub(inode);
        }
        for k in 0..self.snap.disks.len() {
            let (a, b, c) = (self.rand(), self.rand(), self.rand());
            let d = &mut self.snap.disks[k];
            let reads = (a * 20.0 * dt) as u64;
            let writes = (b * 60.0 * dt) as u64;
            d.reads += reads;
            d.read_sectors += reads * 16;
            d.writes += writes;
            d.write_sectors += writes * 24;
            d.io_ms += (c * 40.0 * dt) as u64;
        }
        for k in 0..self.snap.nets.len() {
            let (a, b, e) = (self.rand(), self.rand(), self.rand());
            let n = &mut self.snap.nets[k];
            let rx = (a * 400_000.0 * dt) as u64;
            let tx = (b * 150_000.0 * dt) as u64;
            n.rx_bytes += rx;
            n.rx_packets += rx / 900 + 1;
            n.tx_bytes += tx;
            n.tx_packets += tx / 700 + 1;
            n.rx_errs += u64::from(e < 0.001);
        }
        if let Some(u) = &mut self.snap.uptime_secs {
            *u += dt;
        }
        self.count += 1;
        let walk = self.rand();
        if let Some(p) = &mut self.snap.procs {
            *p = if self.probe {
                self.count
            } else {
                (*p as i64 + (walk * 5.0) as i64 - 2).clamp(150, 400) as u64
            };
        }
        let n = self.snap.docker.as_ref().map_or(0, Vec::len);
        for k in 0..n {
            let (a, b) = (self.rand(), self.rand());
            if let Some(c) = self.snap.docker.as_mut().and_then(|d| d.get_mut(k)) {
                c.cpu_usage_usec += (a * 80_000.0 * dt) as u64;
                c.memory_bytes =
                    (c.memory_bytes as f64 + (b - 0.5) * 1048576.0).max(1048576.0) as u64 & !4095;
            }
        }
        self.snap.clone()
    }
}

// ---------------------------------------------------------------- simulated agents

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    /// Samples (derived points) of acknowledged batches sent live.
    acked_samples: AtomicU64,
    acked_batches: AtomicU64,
    prefill_samples: AtomicU64,
    lost: AtomicU64,
}

/// A batch sent by a probe host: its sample should become queryable.
struct Probe {
    server_id: String,
    ts_ms: i64,
    value: u64,
    sent: Instant,
}

struct AgentPlan {
    member: Member,
    index: usize,
    of: usize,
    probe: Option<mpsc::UnboundedSender<Probe>>,
    /// Points of every snapshot, to the Node hub (live benchmark).
    feed: Option<mpsc::UnboundedSender<String>>,
    /// Push this many hours of past snapshots at 1 s first.
    prefill_hours: u64,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_agent(ws_base: &str, token: &str) -> (Ws, u64) {
    let mut req = format!("{ws_base}{}", steward_metrics::agent_proto::CONNECT_PATH)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true)
        .await
        .expect("agent connects");
    let hello = AgentMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: "bench".into(),
        hostname: "bench".into(),
        os: "Bench Linux".into(),
        arch: "x86_64".into(),
        kernel: "6.0.0".into(),
    });
    ws.send(Message::text(serde_json::to_string(&hello).unwrap()))
        .await
        .unwrap();
    while let Some(Ok(m)) = ws.next().await {
        if let Message::Text(t) = m
            && let Ok(HubMessage::Welcome { last_seq, .. }) = serde_json::from_str(&t)
        {
            return (ws, last_seq);
        }
    }
    panic!("no welcome");
}

fn samples_frame(seq: u64, snapshots: Vec<RawSnapshot>) -> Message {
    Message::text(
        serde_json::to_string(&AgentMessage::Samples(Samples {
            seq,
            dropped: 0,
            snapshots,
        }))
        .unwrap(),
    )
}

fn feed_message(id: &str, ts: i64, points: &[steward_metrics::Point]) -> String {
    let pts: Vec<Value> = points
        .iter()
        .map(|p| json!([p.name, p.label, p.value]))
        .collect();
    json!({ "type": "sample", "id": id, "ts": ts, "points": pts }).to_string()
}

async fn run_agent(
    ws_base: String,
    plan: AgentPlan,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let (mut ws, last_seq) = connect_agent(&ws_base, &plan.member.agent_token).await;
    counters.connected.fetch_add(1, Ordering::Relaxed);
    let mut seq = last_seq;
    let start = now_ms() - plan.prefill_hours as i64 * 3_600_000;
    let mut sim = Sim::new(plan.index, start - 1000, plan.probe.is_some());
    let mut prev: Option<RawSnapshot> = None;
    let mut inflight: VecDeque<(u64, u64)> = VecDeque::new();

    if plan.prefill_hours > 0 {
        // Past snapshots at 1 s, 120 a batch, 4 batches in flight (as the agent backfills).
        let end = now_ms() - 2_000;
        let mut ts = start;
        let mut done = 0u64;
        while ts < end || !inflight.is_empty() {
            while ts < end && inflight.len() < 4 {
                let mut batch = Vec::with_capacity(120);
                let mut points = 0;
                while ts < end && batch.len() < 120 {
                    let s = sim.step(ts);
                    points += steward_metrics::derive(prev.as_ref(), &s).len() as u64;
                    prev = Some(s.clone());
                    batch.push(s);
                    ts += 1000;
                }
                seq += 1;
                ws.send(samples_frame(seq, batch)).await.unwrap();
                inflight.push_back((seq, points));
            }
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(HubMessage::Ack { seq: a }) = serde_json::from_str(&t) {
                        while inflight.front().is_some_and(|(s, _)| *s <= a) {
                            done += inflight.pop_front().unwrap().1;
                        }
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("prefill connection ended: {other:?}"),
            }
        }
        counters.prefill_samples.fetch_add(done, Ordering::Relaxed);
    }

    // Live: one snapshot a second, agents spread over the second.
    tokio::time::sleep(Duration::from_millis(
        (plan.index * 1000 / plan.of.max(1)) as u64,
    ))
    .await;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let ts = now_ms();
                let s = sim.step(ts);
                let points = steward_metrics::derive(prev.as_ref(), &s);
                if let Some(feed) = &plan.feed {
                    let _ = feed.send(feed_message(&plan.member.id, ts, &points));
                }
                let value = s.procs.unwrap_or(0);
                prev = Some(s.clone());
                seq += 1;
                if ws.send(samples_frame(seq, vec![s])).await.is_err() {
                    counters.lost.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                inflight.push_back((seq, points.len() as u64));
                if let Some(p) = &plan.probe {
                    let _ = p.send(Probe { server_id: plan.member.id.clone(), ts_ms: ts, value, sent: Instant::now() });
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(HubMessage::Ack { seq: a }) = serde_json::from_str(&t) {
                        while inflight.front().is_some_and(|(s, _)| *s <= a) {
                            let (_, n) = inflight.pop_front().unwrap();
                            counters.acked_samples.fetch_add(n, Ordering::Relaxed);
                            counters.acked_batches.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    counters.lost.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

fn spawn_fleet(
    st: &Steward,
    fleet: &[Member],
    counters: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
    probe: Option<&mpsc::UnboundedSender<Probe>>,
    feed: Option<&mpsc::UnboundedSender<String>>,
    skip_first: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let n = fleet.len();
    let probe_every = (n / 20).max(1);
    fleet
        .iter()
        .enumerate()
        .skip(usize::from(skip_first))
        .map(|(i, m)| {
            let plan = AgentPlan {
                member: m.clone(),
                index: i,
                of: n,
                probe: (i % probe_every == probe_every / 2)
                    .then(|| probe.cloned())
                    .flatten(),
                feed: feed.cloned(),
                prefill_hours: 0,
            };
            tokio::spawn(run_agent(
                st.ws_base.clone(),
                plan,
                counters.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

async fn wait_connected(counters: &Counters, n: u64) {
    let t = Instant::now();
    while counters.connected.load(Ordering::Relaxed) < n && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{} of {n} agents connected in {:.1} s",
        counters.connected.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- ingest

async fn prober(
    st: Arc<Steward>,
    mut rx: mpsc::UnboundedReceiver<Probe>,
    active: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<f64>>>,
) {
    while let Some(p) = rx.recv().await {
        // Only fresh sends, one at a time.
        if !active.load(Ordering::Relaxed) || p.sent.elapsed() > Duration::from_millis(50) {
            continue;
        }
        let path = format!(
            "/api/v1/servers/{}/metrics?names=procs.count&from={}&to={}&step=1",
            p.server_id,
            p.ts_ms - 5_000,
            p.ts_ms + 1_000
        );
        loop {
            let (status, body) = st.get(&path).await;
            let found = status == 200
                && serde_json::from_slice::<Value>(&body).is_ok_and(|v| {
                    v["series"][0]["points"].as_array().is_some_and(|ps| {
                        ps.iter()
                            .any(|x| x["max"].as_f64().unwrap_or(0.0) >= p.value as f64)
                    })
                });
            let ms = p.sent.elapsed().as_secs_f64() * 1000.0;
            if found || ms > 10_000.0 {
                out.lock().unwrap().push(ms);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn disk_figures(db_url: &str) {
    let db = steward_db::Db::connect(db_url)
        .await
        .expect("reopen the database");
    let pool = &db.pool;
    let scalar = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap_or(0)
    };
    let raw_samples = scalar(
        "SELECT CAST(COALESCE(SUM(samples), 0) AS BIGINT) FROM metric_chunks WHERE tier = 0",
    )
    .await;
    let raw_data = scalar(
        "SELECT CAST(COALESCE(SUM(LENGTH(data)), 0) AS BIGINT) FROM metric_chunks WHERE tier = 0",
    )
    .await;
    let raw_chunks =
        scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM metric_chunks WHERE tier = 0").await;
    let rollup_chunks =
        scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM metric_chunks WHERE tier > 0").await;
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT data FROM metric_head_log")
        .fetch_all(pool)
        .await
        .unwrap();
    let log_samples: usize = rows
        .iter()
        .map(|(d,)| steward_tsdb::codec::decode_log(d).map_or(0, |v| v.len()))
        .sum();
    let log_data: usize = rows.iter().map(|(d,)| d.len()).sum();
    let sqlite = db_url.starts_with("sqlite");
    let table_bytes = || async move {
        if sqlite {
            sqlx::query_scalar::<_, i64>("SELECT CAST(SUM(pgsize) AS BIGINT) FROM dbstat WHERE name IN ('metric_chunks', 'sqlite_autoindex_metric_chunks_1')")
                .fetch_one(pool).await.unwrap_or(0)
        } else {
            sqlx::query("VACUUM ANALYZE metric_chunks")
                .execute(pool)
                .await
                .unwrap();
            sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size('metric_chunks')")
                .fetch_one(pool)
                .await
                .unwrap_or(0)
        }
    };
    let with_rollups = table_bytes().await;
    let log_bytes = if sqlite {
        sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(SUM(pgsize), 0) AS BIGINT) FROM dbstat WHERE name = 'metric_head_log'")
            .fetch_one(pool).await.unwrap_or(0)
    } else {
        sqlx::query("VACUUM ANALYZE metric_head_log")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size('metric_head_log')")
            .fetch_one(pool)
            .await
            .unwrap_or(0)
    };
    // The raw tier alone: drop the rollups from this throwaway copy and compact.
    sqlx::query("DELETE FROM metric_chunks WHERE tier > 0")
        .execute(pool)
        .await
        .unwrap();
    if sqlite {
        sqlx::query("VACUUM").execute(pool).await.unwrap();
    } else {
        sqlx::query("VACUUM FULL metric_chunks")
            .execute(pool)
            .await
            .unwrap();
    }
    let raw_only = table_bytes().await;
    let per = |b: i64, n: i64| b as f64 / n.max(1) as f64;
    println!("\n## Disk (after the hub's final flush)");
    println!("| what | samples | bytes | B/sample |");
    println!("|---|---:|---:|---:|");
    println!(
        "| raw chunks, data only ({raw_chunks} chunks) | {raw_samples} | {raw_data} | {:.3} |",
        per(raw_data, raw_samples)
    );
    println!(
        "| raw tier, table + index as the database counts it | {raw_samples} | {raw_only} | {:.3} |",
        per(raw_only, raw_samples)
    );
    println!(
        "| with the rollups ({rollup_chunks} rollup chunks), per raw sample | {raw_samples} | {with_rollups} | {:.3} |",
        per(with_rollups, raw_samples)
    );
    println!(
        "| head log (samples not yet in a sealed chunk), data | {log_samples} | {log_data} | {:.3} |",
        per(log_data as i64, log_samples as i64)
    );
    println!(
        "| head log, table as the database counts it | {log_samples} | {log_bytes} | {:.3} |",
        per(log_bytes, log_samples as i64)
    );
    db.close().await;
}

async fn ingest() {
    let n = env_num("BENCH_AGENTS", 1000) as usize;
    let warmup = env_num("BENCH_WARMUP", 70);
    let window = env_num("BENCH_WINDOW", 60);
    let probe_secs = env_num("BENCH_PROBE_SECS", 30);
    let api_secs = env_num("BENCH_API_SECS", 30);
    let prefill_hours = env_num("BENCH_PREFILL_HOURS", 24);
    println!(
        "# Hub ingest: {n} agents × 100 series at 1 s; {} cores; load average {} at start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let st = Arc::new(Steward::start().await);
    println!("database: {}", st.db_url.split('/').next().unwrap_or(""));
    let fleet = create_fleet(&st, n).await;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();

    // The chart server's history: 24 h pushed at full speed with past timestamps.
    if prefill_hours > 0 {
        let cpu = CpuWindow::start(st.pid);
        let plan = AgentPlan {
            member: fleet[0].clone(),
            index: 0,
            of: n,
            probe: None,
            feed: None,
            prefill_hours,
        };
        let c = counters.clone();
        tasks.push(tokio::spawn(run_agent(
            st.ws_base.clone(),
            plan,
            c,
            stop.clone(),
        )));
        while counters.prefill_samples.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (cpu_s, wall) = cpu.end();
        let samples = counters.prefill_samples.load(Ordering::Relaxed);
        println!(
            "prefill: {prefill_hours} h of one server ({samples} samples) through the agent protocol in {wall:.1} s: {:.0} samples/s, hub CPU {cpu_s:.1} s ({:.0} samples per CPU-second)",
            samples as f64 / wall,
            samples as f64 / cpu_s
        );
    }

    let (probe_tx, probe_rx) = mpsc::unbounded_channel();
    let probing = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(prober(
        st.clone(),
        probe_rx,
        probing.clone(),
        latencies.clone(),
    ));
    tasks.extend(spawn_fleet(
        &st,
        &fleet,
        &counters,
        &stop,
        Some(&probe_tx),
        None,
        prefill_hours > 0,
    ));
    wait_connected(&counters, n as u64).await;
    eprintln!("warming up {warmup} s");
    tokio::time::sleep(Duration::from_secs(warmup)).await;

    // Phase 1: ingest alone.
    let la0 = loadavg();
    let cpu = CpuWindow::start(st.pid);
    let me = CpuWindow::start(std::process::id());
    let s0 = counters.acked_samples.load(Ordering::Relaxed);
    let b0 = counters.acked_batches.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let (cpu_s, wall) = cpu.end();
    let (gen_cpu, _) = me.end();
    let samples = counters.acked_samples.load(Ordering::Relaxed) - s0;
    let batches = counters.acked_batches.load(Ordering::Relaxed) - b0;
    println!(
        "\n## Ingest, steady window of {wall:.0} s (load average {la0} → {})",
        loadavg()
    );
    println!("| figure | value |");
    println!("|---|---:|");
    println!(
        "| batches acknowledged | {batches} ({:.0}/s) |",
        batches as f64 / wall
    );
    println!(
        "| samples stored (acknowledged) | {samples} ({:.0}/s) |",
        samples as f64 / wall
    );
    println!(
        "| hub CPU (utime+stime) | {cpu_s:.2} s = {:.1} % of one core |",
        cpu_s / wall * 100.0
    );
    println!(
        "| **samples per second per core of hub CPU** | **{:.0}** |",
        samples as f64 / cpu_s
    );
    println!("| hub RSS | {} MiB |", rss_kib(st.pid) / 1024);
    println!(
        "| load generator CPU | {:.1} % of one core |",
        gen_cpu / wall * 100.0
    );
    println!(
        "| connections lost | {} |",
        counters.lost.load(Ordering::Relaxed)
    );

    // Phase 2: ingest-to-queryable on a subset.
    probing.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(probe_secs)).await;
    probing.store(false, Ordering::Relaxed);
    let lat = std::mem::take(&mut *latencies.lock().unwrap());
    let timeouts = lat.iter().filter(|v| **v > 10_000.0).count();
    println!(
        "\n## Ingest → queryable (20 probe servers, polled every 20 ms; ms)\n{} (timeouts > 10 s: {timeouts})",
        summarize(lat)
    );

    // Phase 3: the API while ingesting, from a client on a thread and runtime of its own (as a
    // browser is its own process): on the load generator's runtime, its requests would wait
    // behind 1,000 agent tasks and the figures would be the generator's.
    let chart_id = fleet[0].id.clone();
    let (base, token) = (st.base.clone(), st.token.clone());
    let api = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let http = reqwest::Client::new();
            let get = |path: String| {
                let req = http.get(format!("{base}{path}")).bearer_auth(&token).send();
                async move {
                    let t = Instant::now();
                    let r = req.await.unwrap();
                    assert_eq!(r.status().as_u16(), 200, "{path}");
                    let body = r.bytes().await.unwrap();
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    (ms, body.len(), v)
                }
            };
            let mut summary_ms = Vec::new();
            let mut chart_ms = Vec::new();
            let (mut summary_bytes, mut chart_bytes, mut servers_seen, mut tier, mut points) =
                (0, 0, 0, String::new(), 0usize);
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(api_secs) {
                let (ms, len, v) = get("/api/v1/metrics/summary".into()).await;
                summary_ms.push(ms);
                summary_bytes = len;
                servers_seen = v["items"].as_array().map_or(0, Vec::len);
                let to = now_ms();
                let from = to - 86_400_000;
                let (ms, len, v) = get(format!(
                    "/api/v1/servers/{chart_id}/metrics?names={CHART_NAMES}&from={from}&to={to}"
                ))
                .await;
                chart_ms.push(ms);
                chart_bytes = len;
                tier = v["tier"].as_str().unwrap_or("").to_string();
                points = v["series"].as_array().map_or(0, |s| {
                    s.iter()
                        .map(|x| x["points"].as_array().map_or(0, Vec::len))
                        .sum()
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (
                summary_ms,
                chart_ms,
                summary_bytes,
                chart_bytes,
                servers_seen,
                tier,
                points,
            )
        })
    });
    let (summary_ms, chart_ms, summary_bytes, chart_bytes, servers_seen, tier, points) =
        tokio::task::spawn_blocking(move || api.join().unwrap())
            .await
            .unwrap();
    println!("\n## API while ingesting (client-side, HTTP + API token auth; ms)");
    println!(
        "fleet summary ({servers_seen} servers, {} KiB): {}",
        summary_bytes / 1024,
        summarize(summary_ms)
    );
    println!(
        "24 h chart of one server (tier {tier}, {points} points, {} KiB): {}",
        chart_bytes / 1024,
        summarize(chart_ms)
    );

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    st.stop();
    disk_figures(&st.db_url).await;
}

// ---------------------------------------------------------------- live fan-out

#[derive(Default)]
struct LiveStats {
    snapshots: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicU64,
    connected: AtomicU64,
    recording: AtomicBool,
    delays: Mutex<Vec<f64>>,
}

/// Delays (ms) from each server's `last_sample_at` in a frame to now.
fn frame_delays(text: &str, now: i64, out: &mut Vec<f64>) {
    const KEY: &str = "\"last_sample_at\":\"";
    let mut rest = text;
    while let Some(i) = rest.find(KEY) {
        rest = &rest[i + KEY.len()..];
        let Some(end) = rest.find('"') else { break };
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&rest[..end]) {
            out.push((now - t.timestamp_millis()) as f64);
        }
        rest = &rest[end..];
    }
}

/// One live client. Like a browser, it offers permessage-deflate when `deflate`; the Node hub
/// (minimal, as `ws` is by default) declines it. Only probes inflate whole frames to read the
/// delays; the others read the first bytes, which say whether a frame is a snapshot.
async fn live_client(
    url: String,
    bearer: Option<String>,
    deflate: bool,
    subscribe: bool,
    probe: bool,
    stats: Arc<LiveStats>,
    stop: tokio_util::sync::CancellationToken,
) {
    use steward_api::ws_deflate::{self, Incoming};
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| ("Authorization", a))
        .into_iter()
        .collect();
    let Ok(mut ws) = ws_deflate::connect(&url, &headers, deflate, 1 << 24).await else {
        stats.closed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    if subscribe {
        ws.send_text(r#"{"type":"subscribe","fleet":true}"#)
            .await
            .unwrap();
    }
    let mut delays = Vec::new();
    loop {
        tokio::select! {
            msg = ws.recv_encoded() => {
                let now = now_ms();
                let (head, wire, data) = match msg {
                    Some(Ok(Incoming::Text(t))) => {
                        let n = t.len();
                        (t.as_bytes()[..n.min(64)].to_vec(), n, Some(t))
                    }
                    Some(Ok(Incoming::Deflated { data, .. })) => {
                        let head = ws_deflate::inflate_prefix(&data, 64).unwrap_or_default();
                        let text = if probe {
                            ws_deflate::inflate(&data, 1 << 24)
                                .ok()
                                .and_then(|t| String::from_utf8(t).ok())
                        } else {
                            None
                        };
                        (head, data.len(), text)
                    }
                    Some(Ok(_)) => continue,
                    _ => {
                        stats.closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
                if head.starts_with(b"{\"type\":\"snapshot\"") {
                    // A snapshot in parts counts once, at its first part.
                    if head.starts_with(b"{\"type\":\"snapshot\",\"part\":0,") {
                        stats.snapshots.fetch_add(1, Ordering::Relaxed);
                    }
                } else if stats.recording.load(Ordering::Relaxed) {
                    stats.frames.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(wire as u64, Ordering::Relaxed);
                    if let (true, Some(t)) = (probe, data) {
                        frame_delays(&t, now, &mut delays);
                    }
                }
            }
            () = stop.cancelled() => break,
        }
    }
    stats.delays.lock().unwrap().extend(delays);
    let _ = ws.close(1000, "").await;
}

struct LiveHubUnderTest {
    label: &'static str,
    pid: u32,
    /// Whether its clients offer permessage-deflate (browsers do).
    deflate: bool,
    url: String,
    bearer: Option<String>,
}

async fn connect_clients(
    hub: &LiveHubUnderTest,
    n: usize,
    subscribe: bool,
    stats: &Arc<LiveStats>,
    stop: &tokio_util::sync::CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(tokio::spawn(live_client(
            hub.url.clone(),
            hub.bearer.clone(),
            hub.deflate,
            subscribe,
            i % 20 == 0,
            stats.clone(),
            stop.clone(),
        )));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let t = Instant::now();
    let want = n as u64;
    loop {
        let done = if subscribe {
            stats.snapshots.load(Ordering::Relaxed)
        } else {
            stats.connected.load(Ordering::Relaxed)
        } + stats.closed.load(Ordering::Relaxed);
        if done >= want || t.elapsed() > Duration::from_secs(120) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tasks
}

/// The hub's RSS (KiB) before and with `n` clients connected (and subscribed to the fleet if
/// `subscribe`), read `settle_secs` after they connected; and how many connected. The clients
/// leave before it returns.
async fn client_rss(
    hub: &LiveHubUnderTest,
    n: usize,
    subscribe: bool,
    settle_secs: u64,
) -> (u64, u64, u64) {
    let before = rss_kib(hub.pid);
    let stats = Arc::new(LiveStats::default());
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = connect_clients(hub, n, subscribe, &stats, &cancel).await;
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;
    let with = rss_kib(hub.pid);
    let connected = stats.connected.load(Ordering::Relaxed);
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    (before, with, connected)
}

async fn live() {
    let n = env_num("BENCH_AGENTS", 1000) as usize;
    let clients = env_num("BENCH_CLIENTS", 1000) as usize;
    let window = env_num("BENCH_WINDOW", 60);
    let warmup = env_num("BENCH_WARMUP", 20);
    println!(
        "# Live fan-out: {n} hosts at 1 s, {clients} clients; {} cores; load average {} at start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let st = Steward::start().await;
    let fleet = create_fleet(&st, n).await;

    // The Node hub, fed the points of the same snapshots.
    let node_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let script =
        std::env::var("BENCH_NODE_HUB").unwrap_or_else(|_| "bench/live-node/hub.js".into());
    let mut node = Command::new("node")
        .arg(PathBuf::from(&script))
        .arg(node_port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("start node");
    let node_url = format!("ws://127.0.0.1:{node_port}");
    let mut feed_ws = None;
    for _ in 0..100 {
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(format!("{node_url}/feed")).await {
            feed_ws = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut feed_ws = feed_ws.expect("the Node hub listens");
    let meta: Vec<Value> = fleet
        .iter()
        .map(|m| json!({ "id": m.id, "name": m.name, "tags": m.tags }))
        .collect();
    feed_ws
        .send(Message::text(
            json!({ "type": "meta", "servers": meta }).to_string(),
        ))
        .await
        .unwrap();
    let (feed_tx, mut feed_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(m) = feed_rx.recv().await {
            if feed_ws.send(Message::text(m)).await.is_err() {
                break;
            }
        }
    });

    // Clients offer permessage-deflate as browsers do; `BENCH_PLAIN=1` adds a Steward run whose
    // clients do not (the uncompressed path, in the same run).
    let mut hubs = vec![LiveHubUnderTest {
        label: "Steward",
        pid: st.pid,
        deflate: true,
        url: format!("{}/api/v1/live", st.ws_base),
        bearer: Some(st.token.clone()),
    }];
    if env_num("BENCH_PLAIN", 0) == 1 {
        hubs.push(LiveHubUnderTest {
            label: "Steward, clients without deflate",
            pid: st.pid,
            deflate: false,
            url: format!("{}/api/v1/live", st.ws_base),
            bearer: Some(st.token.clone()),
        });
    }
    hubs.push(LiveHubUnderTest {
        label: "Node ws",
        pid: node.id(),
        deflate: true,
        url: node_url.clone(),
        bearer: None,
    });

    // Idle clients first, on hubs that have not served any client yet: connected, not
    // subscribed. Measured before the agents start, so the hub's memory does not also grow
    // with the samples arriving meanwhile (100,000 a second fill the metric store's head).
    println!("\n## Memory per idle client ({clients} connected, not subscribed)");
    println!("| hub | RSS before | RSS with clients | per client |");
    println!("|---|---:|---:|---:|");
    for h in hubs.iter().filter(|h| h.deflate) {
        let (before, with, connected) = client_rss(h, clients, false, 5).await;
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} KiB ({connected} connected) |",
            h.label,
            before as f64 / 1024.0,
            with as f64 / 1024.0,
            (with as f64 - before as f64) / connected.max(1) as f64
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let agents = spawn_fleet(&st, &fleet, &counters, &stop, None, Some(&feed_tx), false);
    wait_connected(&counters, n as u64).await;
    tokio::time::sleep(Duration::from_secs(warmup)).await;

    // Baseline: both hubs fed, no clients.
    let base: Vec<CpuWindow> = hubs.iter().map(|h| CpuWindow::start(h.pid)).collect();
    tokio::time::sleep(Duration::from_secs(window.min(30))).await;
    let base_split: Vec<(f64, f64, f64)> = base.iter().map(CpuWindow::end_split).collect();
    let base: Vec<(f64, f64)> = base_split.iter().map(|(u, s, w)| (u + s, *w)).collect();

    println!("\n## Fan-out ({clients} clients subscribed to the fleet, {window} s window each)");
    println!(
        "| hub | frames delivered | frames/s | MiB/s | hub CPU % (of one core) | of which fan-out (minus no-client baseline) | CPU µs per frame (fan-out) | delay p50 / p99 / max (ms) | clients dropped |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|");
    let mut per_frame = Vec::new();
    let mut splits = Vec::new();
    for (h, (bcpu, bwall)) in hubs.iter().zip(&base) {
        let stats = Arc::new(LiveStats::default());
        let cancel = tokio_util::sync::CancellationToken::new();
        let tasks = connect_clients(h, clients, true, &stats, &cancel).await;
        tokio::time::sleep(Duration::from_secs(env_num("BENCH_SETTLE", 15))).await;
        let la0 = loadavg();
        let closed0 = stats.closed.load(Ordering::Relaxed);
        stats.recording.store(true, Ordering::Relaxed);
        let cpu = CpuWindow::start(h.pid);
        tokio::time::sleep(Duration::from_secs(window)).await;
        let (user_s, sys_s, wall) = cpu.end_split();
        let cpu_s = user_s + sys_s;
        splits.push((user_s / wall * 100.0, sys_s / wall * 100.0));
        stats.recording.store(false, Ordering::Relaxed);
        let frames = stats.frames.load(Ordering::Relaxed);
        let bytes = stats.bytes.load(Ordering::Relaxed);
        let dropped = stats.closed.load(Ordering::Relaxed) - closed0;
        cancel.cancel();
        for t in tasks {
            let _ = t.await;
        }
        let mut d = std::mem::take(&mut *stats.delays.lock().unwrap());
        d.sort_by(f64::total_cmp);
        let fanout = cpu_s - bcpu / bwall * wall;
        let us = fanout / frames.max(1) as f64 * 1e6;
        per_frame.push(us);
        println!(
            "| {} | {frames} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} / {:.0} / {:.0} | {dropped} |",
            h.label,
            frames as f64 / wall,
            bytes as f64 / wall / 1048576.0,
            cpu_s / wall * 100.0,
            fanout / wall * 100.0,
            us,
            pct(&d, 0.5),
            pct(&d, 0.99),
            d.last().copied().unwrap_or(f64::NAN),
        );
        eprintln!(
            "{}: {} subscribed, load average {la0} → {}",
            h.label,
            stats.snapshots.load(Ordering::Relaxed),
            loadavg()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let last = base.len() - 1;
    println!(
        "no-client baseline (feed only): Steward {:.1} %, Node {:.1} % of one core",
        base[0].0 / base[0].1 * 100.0,
        base[last].0 / base[last].1 * 100.0
    );
    for ((h, (u, s)), (bu, bs, bw)) in hubs.iter().zip(&splits).zip(&base_split) {
        println!(
            "{}: user / system CPU {u:.1} % / {s:.1} % of one core with clients, {:.1} % / {:.1} % without",
            h.label,
            bu / bw * 100.0,
            bs / bw * 100.0
        );
    }
    if let (Some(first), Some(node)) = (per_frame.first(), per_frame.last()) {
        println!(
            "Steward / Node CPU per frame (fan-out part): {:.2}",
            first / node
        );
        if per_frame.len() == 3 {
            println!(
                "Steward with clients without deflate / Node: {:.2}",
                per_frame[1] / node
            );
        }
    }

    stop.store(true, Ordering::Relaxed);
    for t in agents {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = node.kill();
    let _ = node.wait();
    st.stop();
}

/// RSS per idle live client on a Steward with no fleet: `BENCH_CLIENTS` clients connect
/// (authenticated, not subscribed), then the same number subscribe to the (empty) fleet.
async fn idle() {
    let clients = env_num("BENCH_CLIENTS", 1000) as usize;
    let st = Steward::start().await;
    let hub = LiveHubUnderTest {
        label: "Steward",
        pid: st.pid,
        deflate: true,
        url: format!("{}/api/v1/live", st.ws_base),
        bearer: Some(st.token.clone()),
    };
    println!("| clients | RSS before | RSS with clients | per client |");
    println!("|---|---:|---:|---:|");
    // A first round warms the allocator and the runtime; the second is measured.
    for (round, subscribe) in [(0, false), (1, false), (2, true)] {
        let (before, with, connected) = client_rss(&hub, clients, subscribe, 3).await;
        println!(
            "| {connected} {} (round {round}) | {:.1} MiB | {:.1} MiB | {:.1} KiB |",
            if subscribe { "subscribed" } else { "idle" },
            before as f64 / 1024.0,
            with as f64 / 1024.0,
            (with as f64 - before as f64) / connected.max(1) as f64
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    st.stop();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match std::env::args().nth(1).as_deref() {
        Some("ingest") => rt.block_on(ingest()),
        Some("live") => rt.block_on(live()),
        Some("idle") => rt.block_on(idle()),
        _ => {
            eprintln!("usage: monitor_bench ingest|live|idle");
            std::process::exit(2);
        }
    }
}
