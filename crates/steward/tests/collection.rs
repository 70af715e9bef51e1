//! Metric collection with real parts: agentless polling of a real sshd (this machine's /proc
//! read over SSH), and the real `steward-agent` binary pushing to the hub's agent endpoint.
mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::sshd::{Sshd, key_pair};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

async fn latest(app: &TestApp, server: &str) -> Vec<steward_api::metrics::store::Latest> {
    app.state.metrics.latest(server).await.expect("latest")
}

fn value(l: &[steward_api::metrics::store::Latest], name: &str, label: &str) -> Option<f64> {
    l.iter()
        .find(|x| x.name == name && x.label == label)
        .map(|x| x.value)
}

fn mem_total_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kb: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal");
    kb * 1024.0
}

/// Waits up to `secs` for `f` to hold.
async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agentless_collection_reads_the_servers_proc_over_ssh() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let (s, b) = admin
        .post(
            "/api/v1/servers",
            json!({ "name": "web-1", "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{id}/credential"),
            json!({ "kind": "private_key", "private_key": private }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // One poll, directly: this machine's /proc, read over SSH, parsed.
    let row = steward_db::servers::get(&app.db.pool, steward_core::DEFAULT_ORG_ID, &id)
        .await
        .unwrap()
        .unwrap();
    let snap = steward_api::metrics::collect::poll(&app.state, &row)
        .await
        .expect("poll");
    let mem = snap.mem.as_ref().expect("memory figures");
    assert_eq!(
        mem.total as f64,
        mem_total_bytes(),
        "MemTotal read over SSH is this machine's"
    );
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        snap.cores.len() >= cores,
        "{} cores seen, {cores} here",
        snap.cores.len()
    );

    // The scheduler: two polls (the second gives rates), stored and queryable.
    let collector = steward_api::metrics::collect::spawn(app.state.clone()).expect("collection on");
    let got = eventually(20, || async {
        value(&latest(&app, &id).await, "cpu.usage", "").is_some()
    })
    .await;
    collector.abort();
    assert!(
        got,
        "cpu.usage arrives after two polls: {:?}",
        latest(&app, &id)
            .await
            .iter()
            .map(|l| &l.name)
            .collect::<Vec<_>>()
    );
    let l = latest(&app, &id).await;
    let cpu = value(&l, "cpu.usage", "").unwrap();
    assert!((0.0..=100.0).contains(&cpu), "cpu.usage {cpu}");
    assert_eq!(value(&l, "mem.total", ""), Some(mem_total_bytes()));
    let used = value(&l, "mem.used_pct", "").expect("mem.used_pct");
    assert!(used > 0.0 && used < 100.0, "mem.used_pct {used}");
    let load = value(&l, "load.1", "").expect("load.1");
    let here: f64 = std::fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((load - here).abs() < 3.0, "load {load} vs {here} here");
    assert!(
        value(&l, "disk.used_pct", "/").is_some(),
        "the root filesystem is measured"
    );
    assert!(value(&l, "uptime.seconds", "").unwrap() > 0.0);
}

/// The agent binary, built by the workspace test run (`cargo build -p steward-agent`).
fn agent_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    // target/<profile>/deps/collection-… → target/<profile>/steward-agent
    let path = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("steward-agent"))
        .expect("target dir");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p steward-agent` (the workspace test run builds it)",
        path.display()
    );
    path
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(hub: &str, token_file: &std::path::Path) -> Agent {
    Agent(
        Command::new(agent_binary())
            .args(["--hub", hub, "--interval", "1", "--token-file"])
            .arg(token_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start steward-agent"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_agent_enrolls_and_pushes_and_a_wrong_token_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (s, b) = admin
        .post("/api/v1/servers", json!({ "name": "db-1", "host": "127.0.0.9", "ssh_user": "root", "tags": ["db"], "metrics_interval_secs": 1 }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["metrics_interval_secs"], 1);
    let id = b["id"].as_str().unwrap().to_string();

    // Without enrollment: nothing to connect with.
    let (s, b) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["enrolled"], false);
    assert_eq!(b["monitoring"], "agentless");

    let (s, b) = admin
        .post(&format!("/api/v1/servers/{id}/agent"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let token = b["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("stwa_"));
    assert!(
        b["install_command"]
            .as_str()
            .unwrap()
            .contains("steward-agent")
    );
    assert_eq!(b["agent"]["monitoring"], "agent");
    // The token is stored only as a hash.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_sha256 FROM agents")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(h,)| !h.contains(&token) && h.len() == 64)
    );

    // A wrong token is refused before the upgrade.
    let resp = app
        .client
        .get(app.url("/api/v1/agent/connect"))
        .bearer_auth("stwa_not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let agent = start_agent(&app.base, &token_file);
    let connected = eventually(20, || async {
        admin.get(&format!("/api/v1/servers/{id}/agent")).await.1["connected"] == true
    })
    .await;
    assert!(connected, "the agent connects");
    let (_, info) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    assert!(
        info["agent_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{info}"
    );
    assert!(info["hostname"].as_str().is_some(), "{info}");
    let pushed = eventually(20, || async {
        value(&latest(&app, &id).await, "cpu.usage", "").is_some()
    })
    .await;
    assert!(pushed, "samples arrive and become rates");
    let l = latest(&app, &id).await;
    assert_eq!(value(&l, "mem.total", ""), Some(mem_total_bytes()));
    let (_, info) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    assert!(info["last_seq"].as_i64().unwrap() >= 1, "{info}");

    // Samples keep arriving once a second, each stored once.
    let before = app
        .state
        .metrics
        .raw(&id, "mem.total", "", 0, i64::MAX)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = app
        .state
        .metrics
        .raw(&id, "mem.total", "", 0, i64::MAX)
        .await
        .unwrap();
    assert!(
        after.len() > before.len(),
        "{} then {}",
        before.len(),
        after.len()
    );
    assert!(
        after.windows(2).all(|w| w[1].0 > w[0].0),
        "timestamps strictly increase"
    );

    // Revoking disconnects it and its token stops working.
    let (s, _) = admin.delete(&format!("/api/v1/servers/{id}/agent")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let gone = eventually(10, || async { !app.state.agents.is_connected(&id) }).await;
    assert!(gone, "a revoked agent is disconnected");
    let resp = app
        .client
        .get(app.url("/api/v1/agent/connect"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert!(actions.contains(&"agent.enroll".to_string()), "{actions:?}");
    assert!(actions.contains(&"agent.revoke".to_string()), "{actions:?}");
    drop(agent);
}
