//! Service discovery against a real OpenSSH server on loopback: the scan finds the PostgreSQL,
//! MariaDB and Redis servers that really run on this machine, and the sshd itself; proposals
//! are made once; a change between two scans is reported; a scan as a non-root account says
//! what it could not see; failures are stored with their error code.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::sshd::{OsUser, Sshd, closed_port};
use steward_testkit::*;

async fn server_as(admin: &Session, sshd: &Sshd, name: &str, user: &str, tags: &[&str]) -> String {
    admin.create_server(json!({ "name": name, "host": sshd.host, "port": sshd.port, "ssh_user": user, "tags": tags })).await
}

async fn scan(session: &Session, id: &str) -> Value {
    let (s, b) = session
        .call(Method::POST, &format!("/api/v1/servers/{id}/scan"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

fn service<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} not found in {}", report["services"]))
}

fn ports_of(service: &Value) -> Vec<u64> {
    service["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

fn os_release() -> BTreeMap<String, String> {
    std::fs::read_to_string("/etc/os-release")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A throwaway listener, killed when dropped.
struct Listener(Child);

impl Listener {
    fn start(host: &str, port: u16) -> Self {
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", host, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_scan_finds_the_databases_and_sshd_and_proposes_next_steps_once() {
    let sshd = Sshd::start();
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = server_as(&admin, &sshd, "db-host", &sshd.user, &["db"]).await;
    sshd.authorize(&admin.generate_key(&id).await);

    // Before any scan: nothing yet, not an error.
    let (s, b) = admin.get(&format!("/api/v1/servers/{id}/scan")).await;
    assert_eq!(
        (s, b["latest"].clone(), b["current"].clone()),
        (StatusCode::OK, Value::Null, Value::Null)
    );

    let first = scan(&admin, &id).await;
    assert_eq!(first["latest"]["status"], "succeeded", "{first}");
    assert_eq!(first["latest"]["trigger"], "user");
    let report = &first["current"]["report"];

    // The OS, as /etc/os-release says.
    let os = os_release();
    assert_eq!(
        report["os"]["id"].as_str(),
        os.get("ID").map(String::as_str)
    );
    assert_eq!(
        report["os"]["pretty_name"].as_str(),
        os.get("PRETTY_NAME").map(String::as_str)
    );
    let uname =
        String::from_utf8(Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    assert_eq!(report["kernel"].as_str(), Some(uname.trim()));
    assert!(report["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(report["cpu"]["cores"].as_u64().unwrap() >= 1);
    assert!(report["uptime_secs"].as_u64().is_some());
    assert!(
        report["disks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["mount"] == "/"),
        "{}",
        report["disks"]
    );

    // The databases really running here, with their versions.
    for (kind, port) in [("postgresql", 5432u16), ("mysql", 3306), ("redis", 6379)] {
        assert!(
            listening(port),
            "this test needs {kind} listening on 127.0.0.1:{port}"
        );
        let s = service(report, kind);
        assert!(ports_of(s).contains(&u64::from(port)), "{kind}: {s}");
        let v = s["version"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} has no version: {s}"));
        assert!(v.starts_with(|c: char| c.is_ascii_digit()), "{kind}: {v}");
    }
    let pg = Command::new("sh")
        .arg("-c")
        .arg("/usr/lib/postgresql/*/bin/postgres --version || postgres --version")
        .output()
        .unwrap();
    let pg = String::from_utf8_lossy(&pg.stdout);
    assert!(
        pg.contains(service(report, "postgresql")["version"].as_str().unwrap()),
        "{pg}"
    );
    // The sshd the scan came in through, on its port.
    let ssh = service(report, "sshd");
    assert!(ports_of(ssh).contains(&u64::from(sshd.port)), "{ssh}");
    assert!(ssh["version"].as_str().is_some(), "{ssh}");
    let port = report["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == sshd.port)
        .unwrap();
    assert_eq!(
        (port["address"].as_str(), port["process"].as_str()),
        (Some("127.0.0.2"), Some("sshd"))
    );
    assert_eq!(report["root"], true);

    // Proposals: a TCP health check and a backup job for each database.
    let (_, proposals) = admin.get(&format!("/api/v1/servers/{id}/proposals")).await;
    let list = proposals.as_array().unwrap().clone();
    for engine in ["postgresql", "mysql", "redis"] {
        for kind in ["health_check", "backup_job"] {
            assert!(
                list.iter().any(|p| p["service"] == engine
                    && p["kind"] == kind
                    && p["status"] == "proposed"),
                "{engine} {kind}: {proposals}"
            );
        }
    }
    let pg_check = list
        .iter()
        .find(|p| p["service"] == "postgresql" && p["kind"] == "health_check")
        .unwrap();
    assert_eq!(
        pg_check["spec"],
        json!({ "type": "tcp", "host": "127.0.0.1", "port": 5432 })
    );
    let pg_backup = list
        .iter()
        .find(|p| p["service"] == "postgresql" && p["kind"] == "backup_job")
        .unwrap();
    assert_eq!(
        pg_backup["spec"],
        json!({ "engine": "postgresql", "port": 5432 })
    );
    assert!(list.iter().all(|p| p["service"] != "sshd"));

    // Something new listens; the second scan reports it and proposes nothing twice.
    let new_port = closed_port();
    let listener = Listener::start("127.0.0.93", new_port);
    let second = scan(&admin, &id).await;
    drop(listener);
    assert_eq!(second["latest"]["status"], "succeeded", "{second}");
    assert_eq!(second["previous_at"], first["current"]["started_at"]);
    let changes = second["changes"].as_array().unwrap();
    let opened = format!("127.0.0.93:{new_port}");
    assert!(
        changes
            .iter()
            .any(|c| c["kind"] == "port_opened" && c["subject"] == opened),
        "{changes:?}"
    );
    assert!(
        changes.iter().all(|c| c["kind"] != "service_removed"),
        "{changes:?}"
    );
    let (_, again) = admin.get(&format!("/api/v1/servers/{id}/proposals")).await;
    assert_eq!(again.as_array().unwrap().len(), list.len(), "{again}");

    // GET shows the same as the POST answered.
    let (_, latest) = admin.get(&format!("/api/v1/servers/{id}/scan")).await;
    assert_eq!(latest["changes"], second["changes"]);
    assert_eq!(latest["current"]["id"], second["current"]["id"]);

    // A dismissed proposal stays dismissed through a re-scan.
    let pid = pg_check["id"].as_str().unwrap();
    let viewer = app.user_with_roles(&admin, "vic", &["viewer"]).await;
    let (s, _) = viewer
        .call(
            Method::POST,
            &format!("/api/v1/proposals/{pid}/dismiss"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = admin
        .call(
            Method::POST,
            &format!("/api/v1/proposals/{pid}/dismiss"),
            None,
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("dismissed")),
        "{b}"
    );
    let third = scan(&admin, &id).await;
    // The listener is gone again.
    assert!(
        third["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "port_closed" && c["subject"] == opened),
        "{third}"
    );
    let (_, after) = admin.get(&format!("/api/v1/servers/{id}/proposals")).await;
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), list.len());
    assert_eq!(
        after.iter().find(|p| p["id"] == pid).unwrap()["status"],
        "dismissed"
    );

    // History, newest first, paged.
    let (_, page) = admin
        .get(&format!("/api/v1/servers/{id}/scans?limit=2"))
        .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["id"], third["current"]["id"]);
    let (s, _) = admin
        .get(&format!("/api/v1/servers/{id}/scans?limit=0"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Each past scan, with what changed since the successful one before it: the newest is
    // what the overview showed, the first has nothing before it.
    let one = |scan: &Value| {
        format!(
            "/api/v1/servers/{id}/scans/{}",
            scan["current"]["id"].as_str().unwrap()
        )
    };
    let (s, back) = viewer.get(&one(&third)).await;
    assert_eq!(s, StatusCode::OK, "{back}");
    assert_eq!(back["changes"], third["changes"]);
    assert_eq!(back["current"]["report"], third["current"]["report"]);
    assert_eq!(back["previous_at"], second["current"]["started_at"]);
    let (_, back) = viewer.get(&one(&second)).await;
    assert_eq!(back["changes"], second["changes"]);
    assert_eq!(back["latest"]["id"], second["current"]["id"]);
    let (_, back) = viewer.get(&one(&first)).await;
    assert_eq!(back["previous_at"], Value::Null);
    assert_eq!(back["changes"], json!([]));
    assert_eq!(back["current"]["report"], first["current"]["report"]);
    for missing in [
        format!("/api/v1/servers/{id}/scans/{}", uuid::Uuid::new_v4()),
        format!("/api/v1/servers/{id}/scans/not-a-uuid"),
    ] {
        let (s, b) = viewer.get(&missing).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}: {b}");
    }
    // A viewer reads scans but may not run one.
    let (s, _) = viewer.get(&format!("/api/v1/servers/{id}/scan")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = viewer
        .call(Method::POST, &format!("/api/v1/servers/{id}/scan"), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let actions = app.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|(a, o)| a == "server.scan" && o == "success")
            .count(),
        3
    );
    assert!(actions.contains(&("proposal.dismiss".into(), "success".into())));
}

#[tokio::test]
async fn failures_are_stored_with_their_code_and_invisible_servers_are_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // Nothing listens there.
    let (_, b) = admin
        .post(
            "/api/v1/servers",
            json!({ "name": "gone", "host": "127.0.0.2", "port": closed_port(), "ssh_user": "root", "tags": ["db"] }),
        )
        .await;
    let id = b["id"].as_str().unwrap().to_string();
    let r = scan(&admin, &id).await;
    assert_eq!(r["latest"]["status"], "failed", "{r}");
    assert_eq!(r["latest"]["error"]["code"], "no_credential");
    admin.generate_key(&id).await;
    let r = scan(&admin, &id).await;
    assert_eq!(
        (
            r["latest"]["status"].as_str(),
            r["latest"]["error"]["code"].as_str()
        ),
        (Some("failed"), Some("unreachable")),
        "{r}"
    );
    assert!(
        r["latest"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.2")
    );
    assert_eq!(r["current"], Value::Null, "no successful scan yet");
    let (_, page) = admin.get(&format!("/api/v1/servers/{id}/scans")).await;
    assert_eq!(page["total"], 2);
    // A failed scan on its own: its error, no report, nothing compared.
    let failed = page["items"][0]["id"].as_str().unwrap();
    let (s, back) = admin
        .get(&format!("/api/v1/servers/{id}/scans/{failed}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{back}");
    assert_eq!(back["latest"]["error"]["code"], "unreachable");
    assert_eq!(back["current"], Value::Null);
    assert_eq!(back["changes"], json!([]));
    assert!(
        app.audit_actions()
            .await
            .contains(&("server.scan".into(), "failure".into()))
    );

    // A role that sees only `web` servers does not learn this one exists.
    admin
        .post("/api/v1/roles", json!({ "name": "web-ops", "permissions": ["servers.read", "servers.write"], "server_tags": ["web"] }))
        .await;
    let scoped = app.user_with_roles(&admin, "wo", &["web-ops"]).await;
    for (method, path) in [
        (Method::POST, format!("/api/v1/servers/{id}/scan")),
        (Method::GET, format!("/api/v1/servers/{id}/scan")),
        (Method::GET, format!("/api/v1/servers/{id}/scans")),
        (Method::GET, format!("/api/v1/servers/{id}/scans/{failed}")),
        (Method::GET, format!("/api/v1/servers/{id}/proposals")),
        (Method::POST, "/api/v1/servers/not-a-uuid/scan".to_string()),
        (
            Method::POST,
            format!("/api/v1/proposals/{}/dismiss", uuid::Uuid::new_v4()),
        ),
    ] {
        let (s, b) = scoped.call(method.clone(), &path, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {b}");
    }
}

#[tokio::test]
async fn a_scan_as_a_normal_user_reports_what_it_could_not_see() {
    // Created first, so it is removed last (after the pooled connections are gone).
    let Some(user) = OsUser::create() else {
        eprintln!("skipped: creating a throwaway OS account needs root");
        return;
    };
    let sshd = Sshd::start_with(&["127.0.0.2".to_string()], "PasswordAuthentication yes");
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let name = user.name.clone();
    let id = server_as(&admin, &sshd, "plain-user", &name, &[]).await;
    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{id}/credential"),
            json!({ "kind": "password", "password": user.password }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let r = scan(&admin, &id).await;
    assert_eq!(r["latest"]["status"], "succeeded", "{r}");
    let report = &r["current"]["report"];
    assert_eq!(
        (report["root"].as_bool(), report["user"].as_str()),
        (Some(false), Some(name.as_str()))
    );
    let notes: Vec<&str> = report["not_visible"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["code"].as_str())
        .collect();
    assert!(notes.contains(&"port_processes_need_root"), "{notes:?}");
    // Still found: the databases by their well-known ports and versions, sshd by the
    // connection the scan came in on.
    for kind in ["postgresql", "mysql", "redis"] {
        let s = service(report, kind);
        assert!(!ports_of(s).is_empty(), "{kind}: {s}");
    }
    assert!(ports_of(service(report, "sshd")).contains(&u64::from(sshd.port)));
    assert!(
        report["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["port"] == 5432 && p["process"].is_null()),
        "{}",
        report["ports"]
    );
}

#[tokio::test]
async fn scheduled_scans_cover_servers_with_a_credential_and_skip_recent_ones() {
    let sshd = Sshd::start();
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = server_as(&admin, &sshd, "nightly", &sshd.user, &[]).await;
    sshd.authorize(&admin.generate_key(&id).await);
    // No credential: never due.
    admin.server("no-credential", &[]).await;

    // The scheduler's own state over the same database, as `serve` builds it.
    let state = app.second_instance(steward_api::ApiConfig::default()).await;
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(steward_services::discovery::run_due(&state, day).await, 1);
    // Scanned recently: skipped.
    assert_eq!(steward_services::discovery::run_due(&state, day).await, 0);

    let (_, latest) = admin.get(&format!("/api/v1/servers/{id}/scan")).await;
    assert_eq!(
        (
            latest["latest"]["trigger"].as_str(),
            latest["latest"]["status"].as_str()
        ),
        (Some("schedule"), Some("succeeded")),
        "{latest}"
    );
    let (who,): (Option<String>,) = sqlx::query_as(
        "SELECT actor_name FROM audit_events WHERE action = 'server.scan' ORDER BY at DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(who.as_deref(), Some("steward"));
}
