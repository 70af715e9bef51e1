//! Metric collection with real parts: agentless polling of a real sshd (this machine's /proc
//! read over SSH), and the real `steward-agent` binary pushing to the hub's agent endpoint.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::sshd::{Sshd, key_pair};
use steward_testkit::*;

async fn latest(app: &TestApp, server: &str) -> Vec<steward_services::metrics::store::Latest> {
    app.state.metrics.latest(server).await.expect("latest")
}

fn value(l: &[steward_services::metrics::store::Latest], name: &str, label: &str) -> Option<f64> {
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

/// Creates a server from `body` and enrolls its agent: the server id and the enrollment answer.
async fn server_with_agent(admin: &Session, body: Value) -> (String, Value) {
    let (s, b) = admin.post("/api/v1/servers", body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let (s, b) = admin
        .post(&format!("/api/v1/servers/{id}/agent"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    (id, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agentless_collection_reads_the_servers_proc_over_ssh() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let id = admin
        .create_server(
            json!({ "name": "web-1", "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user }),
        )
        .await;
    admin.set_private_key(&id, &private).await;

    // One poll, directly: this machine's /proc, read over SSH, parsed.
    let row = steward_db::servers::get(&app.db.pool, steward_core::DEFAULT_ORG_ID, &id)
        .await
        .unwrap()
        .unwrap();
    let snap = steward_services::metrics::collect::poll(&app.state, &row)
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
    let collector = steward_services::metrics::collect::spawn(app.state.services.clone())
        .expect("collection on");
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

/// A `steward serve` process on a fixed port (the agent keeps its hub URL across restarts).
struct Hub(Child);

impl Hub {
    fn start(data: &std::path::Path, db_url: &str, port: u16) -> Self {
        Hub(Command::new(env!("CARGO_BIN_EXE_steward"))
            .env_remove("STEWARD_MASTER_KEY")
            .env_remove("RUST_LOG")
            .arg("--data-dir")
            .arg(data)
            .args([
                "--database-url",
                db_url,
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start steward"))
    }

    /// SIGTERM, and wait for the graceful stop (the last metric flush included).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let status = self.0.wait().expect("wait");
        assert!(status.success(), "steward stopped with {status}");
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("steward did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_hub_restarts_the_agent_buffers_and_backfills_without_gaps_or_duplicates() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = TestDb::new(dir.path()).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let hub = Hub::start(&data, &db.url, port);
    wait_ready(&client, &base).await;

    let token = std::fs::read_to_string(data.join("setup-token")).unwrap();
    let r = client
        .post(format!("{base}/api/v1/setup"))
        .json(&json!({ "token": token.trim(), "username": "admin", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_string();
    let server: serde_json::Value = client
        .post(format!("{base}/api/v1/servers"))
        .bearer_auth(&access)
        .json(&json!({ "name": "db-1", "host": "127.0.0.9", "ssh_user": "root", "metrics_interval_secs": 1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = server["id"].as_str().unwrap().to_string();
    let enrollment: serde_json::Value = client
        .post(format!("{base}/api/v1/servers/{id}/agent"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token_file = dir.path().join("agent-token");
    std::fs::write(&token_file, enrollment["token"].as_str().unwrap()).unwrap();
    let agent = start_agent(&base, &token_file);

    let last_seq = |access: String, base: String, id: String| {
        let client = client.clone();
        async move {
            let r = client
                .get(format!("{base}/api/v1/servers/{id}/agent"))
                .bearer_auth(&access)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => r
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["last_seq"].as_i64())
                    .unwrap_or(0),
                _ => 0,
            }
        }
    };
    assert!(
        eventually(30, || async {
            last_seq(access.clone(), base.clone(), id.clone()).await >= 3
        })
        .await,
        "the agent pushes"
    );

    // The hub goes away for five seconds; the agent keeps sampling.
    hub.stop();
    let down_from = steward_core::Clock::now_ms(&steward_core::SystemClock);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let down_to = steward_core::Clock::now_ms(&steward_core::SystemClock);
    let hub = Hub::start(&data, &db.url, port);
    wait_ready(&client, &base).await;
    // Sessions survive a restart (they are in the database).
    let before = last_seq(access.clone(), base.clone(), id.clone()).await;
    assert!(
        eventually(40, || async {
            last_seq(access.clone(), base.clone(), id.clone()).await >= before + 3
        })
        .await,
        "the agent reconnects and backfills"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(agent);
    hub.stop();

    // Read what was stored, as a new hub would.
    let store_db = steward_db::Db::connect(&db.url).await.unwrap();
    let store = steward_services::metrics::store::Store::open(
        store_db,
        Default::default(),
        std::sync::Arc::new(steward_core::SystemClock),
    )
    .await
    .unwrap();
    let samples = store.raw(&id, "mem.total", "", 0, i64::MAX).await.unwrap();
    assert!(samples.len() >= 10, "{} samples", samples.len());
    assert!(
        samples.windows(2).all(|w| w[1].0 > w[0].0),
        "no duplicates: timestamps strictly increase"
    );
    let covered = samples
        .iter()
        .filter(|(ts, _)| *ts > down_from && *ts < down_to)
        .count();
    assert!(
        covered >= 3,
        "samples taken while the hub was down were backfilled: {covered}"
    );
    let gap = samples.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(gap <= 2_500, "no gap in the series (largest step {gap} ms)");
}

/// Makes the database refuse new metric series (as a full disk or a lost database would
/// refuse the write) until [`clear_series_fault`].
async fn refuse_new_series(db: &steward_db::Db) {
    let statements: &[&str] = match db.backend() {
        steward_db::Backend::Sqlite => &[
            "CREATE TRIGGER steward_test_fault BEFORE INSERT ON metric_series \
             BEGIN SELECT RAISE(ABORT, 'injected fault: the database refuses writes'); END",
        ],
        steward_db::Backend::Postgres => &[
            "CREATE FUNCTION steward_test_fault() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected fault: the database refuses writes'; END $$",
            "CREATE TRIGGER steward_test_fault BEFORE INSERT ON metric_series \
             FOR EACH ROW EXECUTE FUNCTION steward_test_fault()",
        ],
    };
    for s in statements {
        sqlx::raw_sql(s)
            .execute(&db.pool)
            .await
            .expect("install the fault");
    }
}

async fn clear_series_fault(db: &steward_db::Db) {
    let s = match db.backend() {
        steward_db::Backend::Sqlite => "DROP TRIGGER steward_test_fault",
        steward_db::Backend::Postgres => "DROP TRIGGER steward_test_fault ON metric_series",
    };
    sqlx::raw_sql(s)
        .execute(&db.pool)
        .await
        .expect("clear the fault");
}

/// A batch the hub fails to store is not acknowledged: the agent keeps it, and once the
/// database works again it is stored, with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_hub_fails_to_store_is_not_acknowledged_and_arrives_once_the_fault_clears() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (id, b) = server_with_agent(
        &admin,
        json!({ "name": "db-2", "host": "127.0.0.9", "ssh_user": "root", "metrics_interval_secs": 1 }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, b["token"].as_str().unwrap()).unwrap();

    // The server has no series yet, so storing its first snapshot needs the database.
    refuse_new_series(&app.db).await;
    let fault_from = steward_core::Clock::now_ms(&steward_core::SystemClock);
    let agent = start_agent(&app.base, &token_file);
    let agent_info = || async { admin.get(&format!("/api/v1/servers/{id}/agent")).await.1 };
    assert!(
        eventually(20, || async {
            agent_info().await["connected_at"].is_string()
        })
        .await,
        "the agent connects"
    );
    // Batches go out every second and fail; none may be acknowledged.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let info = agent_info().await;
    assert_eq!(
        info["last_seq"], 0,
        "no batch counts as stored while storing fails: {info}"
    );
    assert!(
        latest(&app, &id).await.is_empty(),
        "nothing was stored during the fault"
    );

    clear_series_fault(&app.db).await;
    assert!(
        eventually(40, || async {
            agent_info().await["last_seq"].as_i64().unwrap_or(0) >= 2
        })
        .await,
        "the agent reconnects and its batches are stored"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = app
        .state
        .metrics
        .raw(&id, "mem.total", "", 0, i64::MAX)
        .await
        .unwrap();
    drop(agent);
    assert!(
        samples.windows(2).all(|w| w[1].0 > w[0].0),
        "no duplicates: timestamps strictly increase"
    );
    let first = samples.first().expect("samples stored").0;
    assert!(
        first <= fault_from + 3_000,
        "the snapshots taken during the fault were kept by the agent and stored: first at +{} ms",
        first - fault_from
    );
    let gap = samples.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    assert!(gap <= 2_500, "no gap in the series (largest step {gap} ms)");
}

/// Several instances share one database, and only one of them holds an agent's connection.
/// An instance that starts leaves alone the agents another one serves (they keep reporting),
/// and a row left marked connected by an instance that died is not believed once the agent
/// has been silent longer than an agent may be.
#[tokio::test]
async fn connection_state_left_by_another_instance_is_believed_only_while_fresh() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (id, _) = server_with_agent(
        &admin,
        json!({ "name": "web-9", "host": "127.0.0.9", "ssh_user": "root" }),
    )
    .await;
    let silent = steward_services::agents::SILENT_FOR.as_millis() as i64;
    let mark = |last_seen: i64| {
        sqlx::query("UPDATE agents SET connected = 1, last_seen_at = $1 WHERE server_id = $2")
            .bind(last_seen)
            .bind(id.clone())
            .execute(&app.db.pool)
    };
    let connected = || async {
        let (s, b) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["connected"].as_bool().unwrap()
    };

    // Another instance holds the connection and heard from the agent a minute ago.
    let now = app.state.now_ms();
    mark(now - 60_000).await.unwrap();
    assert!(connected().await, "served by another instance");
    let reset = steward_db::agents::reset_connected(&app.db.pool, now - silent)
        .await
        .unwrap();
    assert_eq!(
        reset, 0,
        "a starting instance left the other one's agent alone"
    );
    assert!(connected().await);

    // That instance died four minutes ago and nobody has heard from the agent since.
    mark(now - silent - 60_000).await.unwrap();
    assert!(!connected().await, "a stale row is not believed");
    let reset = steward_db::agents::reset_connected(&app.db.pool, now - silent)
        .await
        .unwrap();
    assert_eq!(reset, 1);
    let (flag,): (i64,) = sqlx::query_as("SELECT connected FROM agents WHERE server_id = $1")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(flag, 0);
}

#[tokio::test]
async fn acknowledged_seqs_of_many_agents_at_once_are_all_recorded() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..24 {
        let (id, _) = server_with_agent(
            &admin,
            json!({ "name": format!("node-{i}"), "host": "127.0.0.9", "ssh_user": "root" }),
        )
        .await;
        ids.push(id);
    }
    // Every agent reports batches 1..=5 at the same moments, as a fleet on one clock does:
    // the writes are grouped, and each caller still learns that its own seq is recorded.
    let now = app.state.now_ms();
    for seq in 1..=5 {
        let calls = ids.iter().map(|id| {
            let st = app.state.clone();
            let id = id.clone();
            async move { st.agents.record_seq(&st.db, &id, seq, now + seq).await }
        });
        for r in futures_util::future::join_all(calls).await {
            r.expect("recorded");
        }
    }
    // An older seq arriving late never moves the counter back.
    app.state
        .agents
        .record_seq(&app.state.db, &ids[0], 2, now + 9)
        .await
        .unwrap();
    for id in &ids {
        let row = steward_db::agents::get(&app.db.pool, id)
            .await
            .unwrap()
            .expect("agent");
        assert_eq!(row.last_seq, 5, "{id}");
    }
}

/// An agent revoked through another instance (which changes only the shared database: this
/// instance's in-process signal never fires) is disconnected here too, and reconnecting is
/// refused; a re-enrollment elsewhere (new token) likewise ends the old connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_revoked_on_another_instance_is_disconnected_here() {
    let app = TestApp::spawn_with(|c| c.live_recheck = Duration::from_millis(300)).await;
    let admin = app.admin().await;
    let id = admin
        .create_server(json!({ "name": "db-1", "host": "127.0.0.9", "ssh_user": "root", "metrics_interval_secs": 1 }))
        .await;
    let (s, b) = admin
        .post(&format!("/api/v1/servers/{id}/agent"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", b["token"].as_str().unwrap())).unwrap();
    let _agent = start_agent(&app.base, &token_file);
    assert!(
        eventually(20, || async { app.state.agents.is_connected(&id) }).await,
        "connects"
    );

    // Re-enrolled on another instance: the stored token is another one now.
    sqlx::query("UPDATE agents SET token_sha256 = $1 WHERE server_id = $2")
        .bind("0".repeat(64))
        .bind(&id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert!(
        eventually(5, || async { !app.state.agents.is_connected(&id) }).await,
        "the replaced agent's socket ends on this instance"
    );
    // Revoked on another instance: the row is gone.
    steward_db::agents::delete(&app.db.pool, &id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!app.state.agents.is_connected(&id), "it cannot come back");
}
