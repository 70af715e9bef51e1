//! Health checks through the API, against servers the test starts on loopback: one answering
//! 200, one 500, one that never answers, one with a self-signed certificate five days from
//! expiry; uptime from stored results; the scheduler; proposals accepted as checks; who sees
//! which checks. Loopback is refused by default, so these tests allow it as an administrator
//! would; the last tests are the attacks on the hub that the default refuses, the allow-list
//! setting, and the rate limit on manual runs.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Healthy,
    Broken,
    Hang,
}

async fn serve_http<S>(mut stream: S, answer: Answer)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let (status, body) = match answer {
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Answer::Healthy => ("200 OK", "status: all good"),
        Answer::Broken => ("500 Internal Server Error", "database unavailable"),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// An HTTP server on loopback whose answer can be switched while it runs.
async fn http_server(answer: Answer) -> (String, Arc<std::sync::Mutex<Answer>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mode = Arc::new(std::sync::Mutex::new(answer));
    let m = mode.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let answer = *m.lock().unwrap();
            tokio::spawn(serve_http(s, answer));
        }
    });
    (format!("http://{addr}/health"), mode)
}

/// An HTTPS server with a self-signed certificate for `localhost` that expires in 5 days.
async fn https_server() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(80);
    params.not_after = now + time::Duration::days(5) + time::Duration::hours(1);
    let cert = params.self_signed(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    serve_http(tls, Answer::Healthy).await;
                }
            });
        }
    });
    format!("https://localhost:{port}/")
}

async fn create(s: &Session, body: Value) -> Value {
    let (st, b) = s.post("/api/v1/checks", body).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    b
}

async fn run_now(s: &Session, check: &Value) -> Value {
    let (st, b) = s
        .post(
            &format!("/api/v1/checks/{}/run", check["id"].as_str().unwrap()),
            json!(null),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    b
}

#[tokio::test]
async fn http_checks_report_up_down_timeouts_and_certificate_days() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test servers run on loopback, which checks may reach only once allowed.
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let (ok_url, _) = http_server(Answer::Healthy).await;
    let (broken_url, _) = http_server(Answer::Broken).await;
    let (hang_url, _) = http_server(Answer::Hang).await;
    let tls_url = https_server().await;

    let ok = create(
        &admin,
        json!({ "name": "shop", "spec": { "type": "http", "url": ok_url, "keyword": "all good" } }),
    )
    .await;
    assert_eq!(ok["last"], Value::Null, "not run yet");
    assert_eq!(
        ok["uptime"],
        json!({ "h24": null, "d7": null, "d30": null })
    );
    let ok = run_now(&admin, &ok).await;
    assert_eq!(ok["last"]["status"], "up", "{ok}");
    assert_eq!(ok["last"]["http_status"], 200);
    assert!(ok["last"]["latency_ms"].as_i64().is_some());
    assert_eq!(ok["uptime"]["h24"], 100.0);

    let broken = create(
        &admin,
        json!({ "name": "api", "spec": { "type": "http", "url": broken_url } }),
    )
    .await;
    let broken = run_now(&admin, &broken).await;
    assert_eq!(broken["last"]["status"], "down", "{broken}");
    assert_eq!(broken["last"]["http_status"], 500);
    assert_eq!(broken["last"]["message"], "HTTP 500, expected 200-399");
    assert_eq!(broken["uptime"]["h24"], 0.0);

    let hang = create(
        &admin,
        json!({ "name": "stuck", "timeout_secs": 1, "spec": { "type": "http", "url": hang_url } }),
    )
    .await;
    let started = std::time::Instant::now();
    let hang = run_now(&admin, &hang).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timeout not honoured"
    );
    assert_eq!(hang["last"]["status"], "down", "{hang}");
    assert_eq!(hang["last"]["message"], "no answer within 1 s");
    assert_eq!(hang["last"]["latency_ms"], Value::Null);

    let tls = create(
        &admin,
        json!({ "name": "tls", "spec": { "type": "http", "url": tls_url, "verify_tls": false } }),
    )
    .await;
    let tls = run_now(&admin, &tls).await;
    assert_eq!(tls["last"]["status"], "degraded", "{tls}");
    assert_eq!(tls["last"]["cert_days_left"], 5);
    assert_eq!(
        tls["last"]["message"],
        "HTTP 200; the TLS certificate expires in 5 days"
    );

    // The list carries the same, by name; a filter by status narrows it.
    let (st, list) = admin.get("/api/v1/checks").await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "shop", "stuck", "tls"]);
    let (_, down) = admin.get("/api/v1/checks?status=down").await;
    assert_eq!(down.as_array().unwrap().len(), 2);
    let (_, found) = admin.get("/api/v1/checks?q=SHO").await;
    assert_eq!(found[0]["name"], "shop");

    // The history for the chart.
    let (st, results) = admin
        .get(&format!(
            "/api/v1/checks/{}/results?hours=1",
            broken["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(results["items"].as_array().unwrap().len(), 1);
    assert_eq!(results["items"][0]["status"], "down");
    assert_eq!(results["items"][0]["message"], "HTTP 500, expected 200-399");
    assert_eq!(results["truncated"], false);

    let actions = app.audit_actions().await;
    assert_eq!(
        actions.iter().filter(|(a, _)| a == "check.create").count(),
        4
    );
    assert!(actions.contains(&("check.run".into(), "failure".into())));
    assert!(actions.contains(&("check.run".into(), "success".into())));
}

#[tokio::test]
async fn edits_and_deletes_are_stored_and_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test servers run on loopback, which checks may reach only once allowed.
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let (url, mode) = http_server(Answer::Healthy).await;
    let check = create(
        &admin,
        json!({ "name": "site", "interval_secs": 30, "spec": { "type": "http", "url": url } }),
    )
    .await;
    let id = check["id"].as_str().unwrap().to_string();
    assert_eq!(run_now(&admin, &check).await["last"]["status"], "up");
    *mode.lock().unwrap() = Answer::Broken;
    assert_eq!(run_now(&admin, &check).await["last"]["status"], "down");
    let (st, b) = admin
        .put(&format!("/api/v1/checks/{id}"), json!({ "name": "site (500 ok)", "interval_secs": 30, "enabled": false, "spec": { "type": "http", "url": url, "expected_status": "200-299, 500" } }))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["enabled"], false);
    assert_eq!(b["spec"]["expected_status"], "200-299, 500");
    assert_eq!(b["uptime"]["h24"], 50.0, "{b}");
    // Run now works on a disabled check.
    assert_eq!(run_now(&admin, &b).await["last"]["status"], "up");
    let (st, _) = admin.delete(&format!("/api/v1/checks/{id}")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = admin.get(&format!("/api/v1/checks/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM check_results WHERE check_id = $1")
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "results go with the check");
    let actions = app.audit_actions().await;
    for a in ["check.create", "check.update", "check.delete"] {
        assert!(actions.iter().any(|(x, _)| x == a), "{a} not audited");
    }
}

#[tokio::test]
async fn uptime_is_computed_from_stored_results() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test servers run on loopback, which checks may reach only once allowed.
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let check = create(&admin, json!({ "name": "stored", "enabled": false, "spec": { "type": "tcp", "host": "127.0.0.1", "port": 9 } })).await;
    let id = check["id"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    let mut runs = Vec::new();
    // Last 24 hours: 3 up, 1 down → 75 %.
    runs.extend(
        [(1, "up"), (2, "up"), (3, "degraded"), (4, "down")].map(|(h, s)| (now - h * hour, s)),
    );
    // Three days ago: 4 down → 7 days: 3 of 8 = 37.5 %.
    runs.extend((0..4).map(|i| (now - 72 * hour - i * 60_000, "down")));
    // Twenty days ago: 8 up → 30 days: 11 of 16 = 68.75 %.
    runs.extend((0..8).map(|i| (now - 480 * hour - i * 60_000, "up")));
    // Forty days ago: outside every window.
    runs.extend((0..10).map(|i| (now - 960 * hour - i * 60_000, "down")));
    for (at, status) in &runs {
        let mut tx = app.db.begin().await.unwrap();
        steward_db::checks::record(
            &mut tx,
            id,
            &steward_db::checks::ResultRow {
                at: *at,
                status: status.to_string(),
                latency_ms: Some(10),
                http_status: None,
                cert_days: None,
                message: (*status != "up").then(|| "refused".to_string()),
            },
            "summary",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let (st, list) = admin.get("/api/v1/checks").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        list[0]["uptime"],
        json!({ "h24": 75.0, "d7": 37.5, "d30": 68.75 })
    );
    // The last run is the newest one, even though it was stored first.
    assert_eq!(list[0]["last"]["status"], "up");
    let (_, results) = admin.get(&format!("/api/v1/checks/{id}/results")).await;
    let items = results["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["status"], "down", "oldest first");
    assert_eq!(items[3]["message"], "");
    let (_, week) = admin
        .get(&format!("/api/v1/checks/{id}/results?hours=168"))
        .await;
    assert_eq!(week["items"].as_array().unwrap().len(), 8);
    // Pruning old results keeps the roll-ups, so the uptime stays.
    steward_db::checks::prune(&app.db.pool, now - 24 * hour, now - 400 * 24 * hour)
        .await
        .unwrap();
    let (_, week) = admin
        .get(&format!("/api/v1/checks/{id}/results?hours=168"))
        .await;
    assert_eq!(week["items"].as_array().unwrap().len(), 4);
    let (_, one) = admin.get(&format!("/api/v1/checks/{id}")).await;
    assert_eq!(one["uptime"]["d30"], 68.75);
}

#[tokio::test]
async fn the_scheduler_runs_enabled_checks_on_their_interval() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test servers run on loopback, which checks may reach only once allowed.
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let (url, _) = http_server(Answer::Healthy).await;
    let on = create(&admin, json!({ "name": "on", "interval_secs": 10, "timeout_secs": 2, "spec": { "type": "http", "url": url } })).await;
    let off = create(
        &admin,
        json!({ "name": "off", "enabled": false, "spec": { "type": "http", "url": url } }),
    )
    .await;
    // A second Steward instance on the same database runs the scheduler.
    let state = app.second_instance(Default::default()).await;
    let scheduler = steward_services::checks::spawn_scheduler(state.services.clone()).unwrap();
    let mut last = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, c) = admin
            .get(&format!("/api/v1/checks/{}", on["id"].as_str().unwrap()))
            .await;
        if c["last"] != Value::Null {
            last = c["last"].clone();
            break;
        }
    }
    scheduler.abort();
    assert_eq!(last["status"], "up", "the scheduler did not run the check");
    let next: i64 = sqlx::query_scalar("SELECT next_run_at FROM checks WHERE id = $1")
        .bind(on["id"].as_str().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        next > now + 5_000 && next <= now + 10_000,
        "next run in {} ms",
        next - now
    );
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM check_results WHERE check_id = $1")
        .bind(on["id"].as_str().unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(runs, 1, "one run per interval");
    let (_, off) = admin
        .get(&format!("/api/v1/checks/{}", off["id"].as_str().unwrap()))
        .await;
    assert_eq!(off["last"], Value::Null, "a disabled check does not run");
}

fn proposal(server_id: &str, kind: &str, spec: Value) -> steward_db::proposals::ProposalRow {
    steward_db::proposals::ProposalRow {
        id: steward_db::new_id(),
        org_id: steward_core::DEFAULT_ORG_ID.into(),
        server_id: server_id.into(),
        kind: kind.into(),
        service: "redis".into(),
        dedupe_key: format!("{kind}:redis"),
        spec: spec.to_string(),
        status: "proposed".into(),
        scan_id: None,
        created_at: 0,
        decided_at: None,
        decided_by: None,
    }
}

#[tokio::test]
async fn accepting_a_proposal_creates_a_check() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test servers run on loopback, which checks may reach only once allowed.
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    // The "redis" the scan found: a port on the server's own address (127.0.0.2).
    let redis = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = redis.local_addr().unwrap().port();
    let server = admin.server("cache-1", &["db"]).await;
    let health = proposal(
        &server,
        "health_check",
        json!({ "type": "tcp", "host": "127.0.0.1", "port": port }),
    );
    let backup = proposal(
        &server,
        "backup_job",
        json!({ "engine": "redis", "port": port }),
    );
    for p in [&health, &backup] {
        steward_db::proposals::insert_new(&app.db.pool, p)
            .await
            .unwrap();
    }
    let (st, check) = admin
        .post(
            &format!("/api/v1/proposals/{}/accept", health.id),
            json!(null),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{check}");
    assert_eq!(check["name"], "Redis on cache-1");
    assert_eq!(check["server_id"], server.as_str());
    assert_eq!(check["server_name"], "cache-1");
    assert_eq!(check["proposal_id"], health.id.as_str());
    // Checked from the hub, so the server's address replaces its loopback address.
    assert_eq!(
        check["spec"],
        json!({ "type": "tcp", "host": "127.0.0.2", "port": port })
    );
    assert_eq!(run_now(&admin, &check).await["last"]["status"], "up");
    let (_, proposals) = admin
        .get(&format!("/api/v1/servers/{server}/proposals"))
        .await;
    let accepted = proposals
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == health.id.as_str())
        .unwrap();
    assert_eq!(accepted["status"], "accepted");
    let (st, b) = admin
        .post(
            &format!("/api/v1/proposals/{}/accept", health.id),
            json!(null),
        )
        .await;
    assert_eq!((st, code(&b)), (StatusCode::CONFLICT, "proposal_accepted"));
    let (st, b) = admin
        .post(
            &format!("/api/v1/proposals/{}/accept", backup.id),
            json!(null),
        )
        .await;
    assert_eq!(
        (st, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "proposal_unsupported")
    );
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|(a, _)| a == "check.create")
    );
    // Accepted several times at once: one check, the other calls are told it was accepted.
    let mut again = proposal(
        &server,
        "health_check",
        json!({ "type": "tcp", "host": "0.0.0.0", "port": 6380 }),
    );
    again.dedupe_key = "health_check:redis:6380".into();
    steward_db::proposals::insert_new(&app.db.pool, &again)
        .await
        .unwrap();
    let path = format!("/api/v1/proposals/{}/accept", again.id);
    let answers =
        futures_util::future::join_all((0..4).map(|_| admin.post(&path, json!(null)))).await;
    let mut codes: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
    codes.sort_unstable();
    assert_eq!(codes, [201, 409, 409, 409], "{answers:?}");
    let (_, list) = admin
        .get(&format!("/api/v1/checks?server_id={server}"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // Deleting the server deletes its checks.
    let (st, _) = admin.delete(&format!("/api/v1/servers/{server}")).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, list) = admin.get("/api/v1/checks").await;
    assert_eq!(list, json!([]));
    drop(redis);
}

#[tokio::test]
async fn scoped_users_see_and_change_only_their_groups_checks() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // The test servers run on loopback, which checks may reach only once allowed.
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let (st, b) = admin
        .post("/api/v1/roles", json!({ "name": "web-ops", "permissions": ["servers.read", "checks.write"], "server_tags": ["web"] }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let web = admin.server("web-1", &["web"]).await;
    let db = admin.server("db-1", &["db"]).await;
    let tcp = json!({ "type": "tcp", "host": "127.0.0.1", "port": 9 });
    let web_check = create(
        &admin,
        json!({ "name": "web port", "server_id": web, "spec": tcp }),
    )
    .await;
    let db_check = create(
        &admin,
        json!({ "name": "db port", "server_id": db, "spec": tcp }),
    )
    .await;
    let solo = create(&admin, json!({ "name": "standalone", "spec": tcp })).await;
    let id = |c: &Value| c["id"].as_str().unwrap().to_string();

    let scoped = app.user_with_roles(&admin, "webop", &["web-ops"]).await;
    let (_, list) = scoped.get("/api/v1/checks").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web port"]);
    for c in [&db_check, &solo] {
        let (st, _) = scoped.get(&format!("/api/v1/checks/{}", id(c))).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = scoped
            .get(&format!("/api/v1/checks/{}/results", id(c)))
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = scoped.delete(&format!("/api/v1/checks/{}", id(c))).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
    let (st, _) = scoped
        .post(
            &format!("/api/v1/checks/{}/run", id(&web_check)),
            json!(null),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, b) = scoped
        .post("/api/v1/checks", json!({ "name": "mine", "spec": tcp }))
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a standalone check needs every server: {b}"
    );
    let (st, _) = scoped
        .post(
            "/api/v1/checks",
            json!({ "name": "theirs", "server_id": db, "spec": tcp }),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = scoped
        .post(
            "/api/v1/checks",
            json!({ "name": "ours", "server_id": web, "spec": tcp }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // Moving a check to a server outside the group is refused.
    let (st, _) = scoped
        .put(
            &format!("/api/v1/checks/{}", id(&web_check)),
            json!({ "name": "moved", "server_id": db, "spec": tcp }),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // A viewer sees everything but changes nothing.
    let viewer = app.user_with_roles(&admin, "watcher", &["viewer"]).await;
    let (_, list) = viewer.get("/api/v1/checks").await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    let (st, _) = viewer
        .post(&format!("/api/v1/checks/{}/run", id(&solo)), json!(null))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = viewer
        .post("/api/v1/checks", json!({ "name": "x", "spec": tcp }))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------------------------
// Requests from the hub: what checks may not reach, the allow-list, and manual-run limits.
// ---------------------------------------------------------------------------------------------

/// The end of every refusal's text.
const REFUSED: &str = "is not allowed for checks; an administrator can allow it in Settings";

/// A server on `ip` that answers every request with a redirect to `location`; its URL.
async fn redirector(ip: &str, location: String) -> String {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}/")
}

/// The attack of issue 13 (item 12): a user with `checks.write` on the `web` servers only
/// searched the hub's own `/metrics` for keywords (which server names it mentions) with
/// keyword checks. Every way there is refused: the hub's address in the definition (at once),
/// a name that resolves to it and a redirect to it (when the check runs). Once an
/// administrator allows loopback, the same checks run.
#[tokio::test]
async fn a_scoped_user_cannot_read_the_hubs_own_metrics_through_a_check() {
    // `/metrics` opened to loopback without the token (the opt-in allow-list), as on the
    // deployment the attack was made against: what the hub answers itself is what a check
    // could read.
    let app = TestApp::spawn_with(|c| {
        c.metrics_allow = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    })
    .await;
    let admin = app.admin().await;
    let (st, b) = admin
        .post("/api/v1/roles", json!({ "name": "web-ops", "permissions": ["servers.read", "checks.write"], "server_tags": ["web"] }))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let web = admin.server("web-1", &["web"]).await;
    let attacker = app.user_with_roles(&admin, "webop", &["web-ops"]).await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let keyword = |url: &str| json!({ "name": "probe", "server_id": web, "spec": { "type": "http", "url": url, "keyword": "steward_http_requests_total" } });

    // The hub's address in the definition: refused when the check is saved.
    for url in [
        app.url("/metrics"),
        format!("http://127.1:{port}/metrics"),
        format!("http://[::ffff:127.0.0.1]:{port}/metrics"),
    ] {
        let (st, b) = attacker.post("/api/v1/checks", keyword(&url)).await;
        assert_eq!(
            (st, code(&b)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{url}: {b}"
        );
        assert_eq!(b["error"]["details"]["field"], "spec.url", "{b}");
        assert_eq!(
            b["error"]["details"]["reason"],
            format!(
                "target address {} (loopback) {REFUSED}",
                if url.contains("ffff") {
                    "::ffff:127.0.0.1"
                } else {
                    "127.0.0.1"
                }
            ),
            "{b}"
        );
    }
    for (spec, field) in [
        (
            json!({ "type": "tcp", "host": "127.0.0.1", "port": port }),
            "spec.host",
        ),
        (
            json!({ "type": "tcp", "host": "[::1]", "port": port }),
            "spec.host",
        ),
        (
            json!({ "type": "tcp", "host": "169.254.169.254", "port": 80 }),
            "spec.host",
        ),
        (
            json!({ "type": "dns", "name": "db.internal", "resolver": "127.0.0.53" }),
            "spec.resolver",
        ),
    ] {
        let (st, b) = attacker
            .post(
                "/api/v1/checks",
                json!({ "name": "probe", "server_id": web, "spec": spec }),
            )
            .await;
        assert_eq!(
            (st, b["error"]["details"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{b}"
        );
        assert!(
            b["error"]["details"]["reason"]
                .as_str()
                .is_some_and(|r| r.ends_with(REFUSED)),
            "{b}"
        );
    }

    // A name that resolves to the hub, and a redirect to it from a server checks may reach
    // (127.0.0.5 stands for a server on the LAN, allowed here because the test has no LAN):
    // saved, but refused when they run, before any request reaches the hub.
    admin.allow_check_targets(&["127.0.0.5"]).await;
    let front = redirector("127.0.0.5", app.url("/metrics")).await;
    let mut probes = Vec::new();
    for spec in [
        json!({ "type": "http", "url": format!("http://localhost:{port}/metrics"), "keyword": "steward_http_requests_total" }),
        json!({ "type": "http", "url": front, "keyword": "steward_http_requests_total" }),
        json!({ "type": "tcp", "host": "localhost", "port": port }),
    ] {
        let (st, c) = attacker
            .post(
                "/api/v1/checks",
                json!({ "name": "probe", "server_id": web, "spec": spec }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        let c = run_now(&attacker, &c).await;
        let last = &c["last"];
        assert_eq!(last["status"], "down", "{c}");
        assert_eq!(last["http_status"], Value::Null, "no answer came back: {c}");
        let message = last["message"].as_str().unwrap();
        assert!(
            message.starts_with("target address ") && message.ends_with(REFUSED),
            "{message}"
        );
        probes.push(c);
    }

    // The allow-list is the administrators' (settings.manage).
    let (st, _) = attacker
        .put(
            "/api/v1/settings",
            json!({ "require_totp": false, "check_allowed_networks": ["127.0.0.0/8"] }),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Allowed by an administrator, the same checks run, and the keyword is found.
    admin.allow_check_targets(&["127.0.0.0/8", "::1"]).await;
    for c in &probes {
        let c = run_now(&attacker, c).await;
        assert_eq!(c["last"]["status"], "up", "{c}");
    }
    let (st, c) = attacker
        .post("/api/v1/checks", keyword(&app.url("/metrics")))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    let c = run_now(&attacker, &c).await;
    assert_eq!(
        (&c["last"]["status"], &c["last"]["http_status"]),
        (&json!("up"), &json!(200)),
        "{c}"
    );
}

/// The allow-list: an organization setting, each entry checked and stored in its canonical
/// form, kept when a change leaves it out, and audited.
#[tokio::test]
async fn the_allow_list_is_checked_kept_and_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (st, s) = admin.get("/api/v1/settings").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s,
        json!({ "require_totp": false, "check_allowed_networks": [] })
    );
    let (st, s) = admin
        .put("/api/v1/settings", json!({ "require_totp": false, "check_allowed_networks": ["10.1.2.3/8", " 127.0.0.1 ", "::1", "127.0.0.1/32"] }))
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let stored = json!(["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    assert_eq!(s["check_allowed_networks"], stored);
    let (_, s) = admin
        .put("/api/v1/settings", json!({ "require_totp": false }))
        .await;
    assert_eq!(
        s["check_allowed_networks"], stored,
        "left out, the list stays"
    );
    for (list, field) in [
        (
            json!(["10.0.0.0/8", "localhost"]),
            "check_allowed_networks[1]",
        ),
        (json!(["10.0.0.0/33"]), "check_allowed_networks[0]"),
        (json!([""]), "check_allowed_networks[0]"),
        (json!(vec!["10.0.0.1"; 101]), "check_allowed_networks"),
    ] {
        let (st, b) = admin
            .put(
                "/api/v1/settings",
                json!({ "require_totp": false, "check_allowed_networks": list }),
            )
            .await;
        assert_eq!(
            (st, code(&b), b["error"]["details"]["field"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some(field)
            ),
            "{b}"
        );
    }
    let (_, s) = admin.get("/api/v1/settings").await;
    assert_eq!(
        s["check_allowed_networks"], stored,
        "refused changes change nothing"
    );
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'settings.update' ORDER BY at, id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let first: Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(
        first["check_allowed_networks"],
        json!({ "from": [], "to": stored })
    );
    let second: Value = serde_json::from_str(&details[1]).unwrap();
    assert_eq!(second.get("check_allowed_networks"), None, "{second}");
}

/// The hub's configuration (`--check-allow`) allows networks too, for every organization.
#[tokio::test]
async fn the_configuration_can_allow_networks() {
    let app = TestApp::spawn_with(|c| c.check_allow = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let admin = app.admin().await;
    let (url, _) = http_server(Answer::Healthy).await;
    let check = create(
        &admin,
        json!({ "name": "local", "spec": { "type": "http", "url": url } }),
    )
    .await;
    assert_eq!(run_now(&admin, &check).await["last"]["status"], "up");
    let (st, b) = admin
        .post(
            "/api/v1/checks",
            json!({ "name": "v6", "spec": { "type": "tcp", "host": "::1", "port": 9 } }),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "::1 is not in 127.0.0.0/8: {b}"
    );
}

/// Manual runs: at most 5 a minute per check and 10 a minute per user, counted in the
/// database so another instance refuses them too; 429 with Retry-After, audited.
#[tokio::test]
async fn manual_runs_are_rate_limited_per_check_and_per_user_on_every_instance() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let open = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp =
        json!({ "type": "tcp", "host": "127.0.0.1", "port": open.local_addr().unwrap().port() });
    let a = create(
        &admin,
        json!({ "name": "a", "enabled": false, "spec": tcp }),
    )
    .await;
    let b = create(
        &admin,
        json!({ "name": "b", "enabled": false, "spec": tcp }),
    )
    .await;
    let path = |c: &Value| format!("/api/v1/checks/{}/run", c["id"].as_str().unwrap());
    let runs = |c: &Value| {
        let id = c["id"].as_str().unwrap().to_string();
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM check_results WHERE check_id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    for _ in 0..5 {
        assert_eq!(run_now(&admin, &a).await["last"]["status"], "up");
    }
    // The sixth run of the check within the minute is refused, saying when to try again.
    let res = app
        .client
        .post(app.url(&path(&a)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");
    assert_eq!(body["error"]["details"]["retry_after"], retry);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("this check was run too often"),
        "{body}"
    );
    assert_eq!(runs(&a).await, 5, "the refused run did not run");

    // Another instance on the same database refuses it too.
    let second = app.second_instance(Default::default()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(steward_api::serve(listener, second, std::future::pending()));
    let (st, body) = send(
        &app.client,
        Method::POST,
        &format!("{other}{}", path(&a)),
        Some(&admin.token),
        None,
    )
    .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{body}"
    );

    // Per user: the refused runs counted too (7 so far), so three more runs of another check
    // are allowed, and the next is refused.
    for _ in 0..3 {
        assert_eq!(run_now(&admin, &b).await["last"]["status"], "up");
    }
    let (st, body) = admin.post(&path(&b), json!(null)).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("you started too many check runs"),
        "{body}"
    );
    assert_eq!(runs(&b).await, 3);
    // Another user is not held back by the first one's runs.
    let operator = app.user_with_roles(&admin, "op", &["operator"]).await;
    assert_eq!(run_now(&operator, &b).await["last"]["status"], "up");
    assert_eq!(runs(&b).await, 4);

    // A minute after a window opened, runs are allowed again (the minute passes in the
    // database rather than in the test).
    sqlx::query("UPDATE rate_limits SET window_start = window_start - 61000")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(run_now(&admin, &a).await["last"]["status"], "up");
    assert_eq!(runs(&a).await, 6);
    let denied = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|(a, o)| a == "check.run" && o == "denied")
        .count();
    assert_eq!(denied, 3, "every refused run is audited");
    serving.abort();
    drop(open);
}
