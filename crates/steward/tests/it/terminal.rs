//! Web terminals against a real OpenSSH server: step-up, a real PTY over a WebSocket (typing,
//! resizing, UTF-8), recordings in asciicast v2, sessions that belong to their user, ending by
//! closing, idling, an administrator or the user losing access (disabled, logged out, role
//! changed), and cross-origin upgrades refused.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::sshd::Sshd;
use steward_testkit::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Fleet {
    sshd: Sshd,
    app: TestApp,
    admin: Session,
    server: String,
}

async fn fleet_with(configure: impl FnOnce(&mut steward_api::ApiConfig)) -> Fleet {
    let sshd = Sshd::start();
    let app = TestApp::spawn_with(configure).await;
    let admin = app.admin().await;
    let server = admin
        .create_server(
            json!({ "name": "box-1", "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user }),
        )
        .await;
    sshd.authorize(&admin.generate_key(&server).await);
    Fleet {
        sshd,
        app,
        admin,
        server,
    }
}

async fn step_up(s: &Session) {
    let (st, b) = s
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

fn request(
    app: &TestApp,
    s: &Session,
    server: &str,
    query: &str,
) -> tungstenite::handshake::client::Request {
    let url = format!(
        "{}/api/v1/servers/{server}/terminal{query}",
        app.base.replace("http://", "ws://")
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", s.token).parse().unwrap(),
    );
    req
}

async fn open(app: &TestApp, s: &Session, server: &str, query: &str) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(request(app, s, server, query))
        .await
        .expect("upgrade");
    let ready = next_control(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    (ws, ready["session_id"].as_str().unwrap().to_string())
}

/// The next control message, skipping output.
async fn next_control(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no control message: {other:?}"),
        }
    }
}

/// Whether the output has `line` as a whole line (the shell may wrap it in control sequences).
fn has_line(output: &str, line: &str) -> bool {
    output.split(['\r', '\n']).any(|l| l == line)
}

/// Output until it has `line` as a whole line.
async fn read_line(ws: &mut Ws, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut out = String::new();
    while !has_line(&out, line) {
        assert!(Instant::now() < deadline, "{line:?} never came: {out:?}");
        out.push_str(&read_until(ws, "\n").await);
    }
    out
}

/// Output until it contains `needle`; returns all output read.
async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut out = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&out).to_string();
        if text.contains(needle) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
            Ok(Some(Ok(Message::Text(t)))) => panic!("unexpected control message {t} in {text:?}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("{needle:?} never came ({other:?}); output so far: {text:?}"),
        }
    }
}

async fn type_in(ws: &mut Ws, keys: &str) {
    ws.send(Message::Binary(keys.as_bytes().to_vec().into()))
        .await
        .unwrap();
}

async fn wait_ended(s: &Session, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (st, b) = s.get(&format!("/api/v1/terminal-sessions/{id}")).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        if !b["ended_at"].is_null() {
            return b;
        }
        assert!(Instant::now() < deadline, "session never ended: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit_details(app: &TestApp, action: &str) -> Vec<(String, Value)> {
    sqlx::query_as::<_, (String, String)>(
        "SELECT outcome, details FROM audit_events WHERE action = $1 ORDER BY at, id",
    )
    .bind(action)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(o, d)| (o, serde_json::from_str(&d).unwrap()))
    .collect()
}

#[tokio::test]
async fn a_terminal_is_a_real_shell_and_is_recorded() {
    let f = fleet_with(|_| {}).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);

    // Without a step-up: refused, audited, and nothing is opened.
    let (st, b) = admin
        .get(&format!("/api/v1/servers/{server}/terminal"))
        .await;
    assert_eq!((st, code(&b)), (StatusCode::FORBIDDEN, "step_up_required"));
    let err = tokio_tungstenite::connect_async(request(app, admin, server, ""))
        .await
        .expect_err("no upgrade without a step-up");
    match err {
        tungstenite::Error::Http(r) => assert_eq!(r.status(), 403),
        other => panic!("{other:?}"),
    }
    let denied = audit_details(app, "terminal.open").await;
    assert!(
        denied.len() == 2
            && denied
                .iter()
                .all(|(o, d)| o == "denied" && d["reason"] == "step_up_required"),
        "{denied:?}"
    );

    step_up(admin).await;
    // Allowed but not a WebSocket: 426, so the UI can ask before upgrading.
    let (st, b) = admin
        .get(&format!("/api/v1/servers/{server}/terminal"))
        .await;
    assert_eq!(
        (st, code(&b)),
        (StatusCode::UPGRADE_REQUIRED, "websocket_required")
    );
    let (st, _) = admin
        .get(&format!("/api/v1/servers/{server}/terminal?cols=0"))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (mut ws, id) = open(app, admin, server, "?cols=90&rows=20").await;
    type_in(&mut ws, "echo hi\r").await;
    read_line(&mut ws, "hi").await;

    ws.send(Message::Text(
        json!({ "type": "resize", "cols": 100, "rows": 30 })
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    type_in(&mut ws, "stty size\r").await;
    read_until(&mut ws, "30 100").await;

    // UTF-8 through the PTY both ways (cat echoes the line back).
    type_in(&mut ws, "cat\r").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    type_in(&mut ws, "ünïcödé ✓\r").await;
    let out = read_until(&mut ws, "ünïcödé ✓\r\nünïcödé ✓").await;
    assert!(!out.contains('\u{FFFD}'), "{out:?}");
    type_in(&mut ws, "\u{4}").await;

    // A large paste in one frame (far over the socket's initial 16 KiB read buffer) arrives
    // whole: 4,000 lines of 64 bytes counted by `wc -c` on the server.
    type_in(&mut ws, "stty -echo; wc -c; stty echo\r").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paste = format!("{}\r", "p".repeat(63)).repeat(4_000);
    type_in(&mut ws, &paste).await;
    type_in(&mut ws, "\u{4}").await;
    read_line(&mut ws, "256000").await;

    // A bad control message is answered, not fatal.
    ws.send(Message::Text("{\"type\":\"dance\"}".into()))
        .await
        .unwrap();
    let m = next_control(&mut ws).await;
    assert_eq!(
        (m["type"].as_str(), m["code"].as_str()),
        (Some("error"), Some("bad_message"))
    );

    let (_, live) = admin.get(&format!("/api/v1/terminal-sessions/{id}")).await;
    assert_eq!(live["live"], true, "{live}");
    assert_eq!(
        (live["cols"].as_i64(), live["rows"].as_i64()),
        (Some(90), Some(20))
    );

    // Closing the socket ends the session.
    ws.close(None).await.unwrap();
    let ended = wait_ended(admin, &id).await;
    assert_eq!(ended["end_reason"], "closed", "{ended}");
    assert_eq!(ended["live"], false);
    assert!(ended["duration_ms"].as_i64().unwrap() > 0, "{ended}");
    assert!(ended["bytes"].as_i64().unwrap() > 0, "{ended}");
    let closes = audit_details(app, "terminal.close").await;
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].1["session_id"], id.as_str());
    assert!(closes[0].1["duration_ms"].as_i64().unwrap() > 0);
    let opens = audit_details(app, "terminal.open").await;
    assert_eq!(opens.last().unwrap().0, "success");

    // The recording replays: asciicast v2 with the output and the resize, and no input.
    let res = admin
        .client
        .get(app.url(&format!("/api/v1/terminal-sessions/{id}/recording")))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"steward-terminal-box-1-")
            && disposition.ends_with(".cast\""),
        "{disposition}"
    );
    let cast = res.text().await.unwrap();
    let mut lines = cast.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        (
            header["version"].as_i64(),
            header["width"].as_i64(),
            header["height"].as_i64()
        ),
        (Some(2), Some(90), Some(20))
    );
    assert_eq!(header["env"]["TERM"], "xterm-256color");
    // As a browser asks for it (compressed): the whole file arrives, and the server survives
    // the end of the stream (a bare stream panicked when polled once more after its end).
    let res = admin
        .client
        .get(app.url(&format!("/api/v1/terminal-sessions/{id}/recording")))
        .bearer_auth(&admin.token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let compressed = res
        .bytes()
        .await
        .expect("the compressed recording arrives whole");
    let mut unpacked = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut unpacked,
    )
    .unwrap();
    assert_eq!(unpacked, cast);
    assert!(header["timestamp"].as_i64().unwrap() > 1_600_000_000);
    let events: Vec<Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut last = 0.0;
    for e in &events {
        let t = e[0].as_f64().unwrap();
        assert!(t >= last, "events out of order: {e}");
        last = t;
        assert!(["o", "r"].contains(&e[1].as_str().unwrap()), "{e}");
    }
    let output: String = events
        .iter()
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert!(has_line(&output, "hi"), "{output:?}");
    assert!(output.contains("30 100"), "{output:?}");
    assert!(output.contains("ünïcödé ✓"), "{output:?}");
    assert!(
        events.iter().any(|e| e[1] == "r" && e[2] == "100x30"),
        "{events:?}"
    );
    drop(f.sshd);
}

#[tokio::test]
async fn sessions_belong_to_their_user_and_administrators_can_end_them() {
    let f = fleet_with(|_| {}).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);
    let alice = app.user_with_roles(admin, "alice", &["operator"]).await;
    let bob = app.user_with_roles(admin, "bob", &["operator"]).await;
    step_up(&alice).await;
    step_up(&bob).await;
    let (mut ws, id) = open(app, &alice, server, "").await;
    type_in(&mut ws, "echo secret-$((6*7))\r").await;
    read_until(&mut ws, "secret-42").await;

    // Bob (who may open terminals too) cannot see, read, end or attach to it.
    let (st, _) = bob.get(&format!("/api/v1/terminal-sessions/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = bob
        .get(&format!("/api/v1/terminal-sessions/{id}/recording"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = bob
        .post(
            &format!("/api/v1/terminal-sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (_, page) = bob.get("/api/v1/terminal-sessions").await;
    assert_eq!(page["total"], 0, "{page}");
    let (_, page) = bob
        .get(&format!("/api/v1/terminal-sessions?user={}", "alice"))
        .await;
    assert_eq!(page["total"], 0, "{page}");
    // Alice cannot end sessions either, not even her own.
    let (st, _) = alice
        .post(
            &format!("/api/v1/terminal-sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Alice sees hers; the administrator sees everyone's, live.
    let (_, page) = alice.get("/api/v1/terminal-sessions").await;
    assert_eq!(page["total"], 1, "{page}");
    let (_, page) = admin
        .get("/api/v1/terminal-sessions?live=true&user=alice&server=box-1")
        .await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(
        (
            page["items"][0]["id"].as_str(),
            page["items"][0]["live"].as_bool(),
            page["items"][0]["username"].as_str(),
            page["items"][0]["server_name"].as_str()
        ),
        (Some(id.as_str()), Some(true), Some("alice"), Some("box-1"))
    );
    let (_, page) = admin.get("/api/v1/terminal-sessions?live=false").await;
    assert_eq!(page["total"], 0, "{page}");
    let (st, _) = admin.get("/api/v1/terminal-sessions?limit=0").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = admin.get("/api/v1/terminal-sessions?live=maybe").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // The administrator ends it: Alice's terminal says why and closes.
    let (st, b) = admin
        .post(
            &format!("/api/v1/terminal-sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let m = next_control(&mut ws).await;
    assert_eq!(m, json!({ "type": "closed", "reason": "terminated" }));
    let ended = wait_ended(&alice, &id).await;
    assert_eq!(ended["end_reason"], "terminated");
    let (st, b) = admin
        .post(
            &format!("/api/v1/terminal-sessions/{id}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!((st, code(&b)), (StatusCode::CONFLICT, "session_not_live"));
    let terminated = audit_details(app, "terminal.terminate").await;
    assert_eq!(terminated.len(), 1);
    assert_eq!(terminated[0].1["session_id"], id.as_str());

    // Alice reads her own recording.
    let (st, _) = alice
        .get(&format!("/api/v1/terminal-sessions/{id}/recording"))
        .await;
    assert_eq!(st, StatusCode::OK);
    drop(f.sshd);
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let f = fleet_with(|c| c.terminal_idle_timeout = Duration::from_secs(1)).await;
    step_up(&f.admin).await;
    let (mut ws, id) = open(&f.app, &f.admin, &f.server, "").await;
    let m = next_control(&mut ws).await;
    assert_eq!(m, json!({ "type": "closed", "reason": "idle_timeout" }));
    let ended = wait_ended(&f.admin, &id).await;
    assert_eq!(ended["end_reason"], "idle_timeout");
    drop(f.sshd);
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused() {
    let f = fleet_with(|_| {}).await;
    step_up(&f.admin).await;
    let mut req = request(&f.app, &f.admin, &f.server, "");
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 403);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(code(&body), "cross_origin");
        }
        other => panic!("cross-origin upgrade not refused: {other:?}"),
    }
    // The same origin is fine (any scheme).
    let mut req = request(&f.app, &f.admin, &f.server, "");
    let host = f.app.base.trim_start_matches("http://").to_string();
    req.headers_mut()
        .insert("origin", format!("https://{host}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("same origin");
    assert_eq!(next_control(&mut ws).await["type"], "ready");
    drop(f.sshd);
}

#[tokio::test]
async fn old_recordings_are_pruned() {
    let f = fleet_with(|_| {}).await;
    step_up(&f.admin).await;
    let (mut ws, id) = open(&f.app, &f.admin, &f.server, "").await;
    ws.close(None).await.unwrap();
    wait_ended(&f.admin, &id).await;
    let pool = &f.app.db.pool;
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        steward_db::terminal_sessions::prune(pool, now - 3_600_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        steward_db::terminal_sessions::prune(pool, now + 1)
            .await
            .unwrap(),
        1
    );
    let (st, _) = f
        .admin
        .get(&format!("/api/v1/terminal-sessions/{id}"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM terminal_recording_chunks")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(chunks, 0);
    drop(f.sshd);
}

/// How often terminals re-check their user in the access tests (30 s in production).
const RECHECK: Duration = Duration::from_millis(300);

/// A user's open terminal, with the shell answering.
struct Open {
    ws: Ws,
    id: String,
}

async fn open_working(app: &TestApp, s: &Session, server: &str, tag: &str) -> Open {
    let (mut ws, id) = open(app, s, server, "").await;
    type_in(&mut ws, &format!("echo {tag}-$((6*7))\r")).await;
    read_line(&mut ws, &format!("{tag}-42")).await;
    Open { ws, id }
}

/// The terminal says its access was revoked, then the socket closes; soon, not at a timeout.
async fn assert_revoked(t: &mut Open, since: Instant) {
    let m = next_control(&mut t.ws).await;
    assert_eq!(m, json!({ "type": "closed", "reason": "access_revoked" }));
    assert!(
        since.elapsed() < Duration::from_secs(5),
        "ended only after {:?}",
        since.elapsed()
    );
    match tokio::time::timeout(Duration::from_secs(5), t.ws.next()).await {
        Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {}
        other => panic!("the socket did not close: {other:?}"),
    }
}

/// The session ended `access_revoked` in its row and in the audit trail.
async fn assert_ended_revoked(app: &TestApp, admin: &Session, id: &str) {
    let ended = wait_ended(admin, id).await;
    assert_eq!(ended["end_reason"], "access_revoked", "{ended}");
    assert_eq!(ended["live"], false, "{ended}");
    let closes = audit_details(app, "terminal.close").await;
    let close = closes
        .iter()
        .find(|(_, d)| d["session_id"] == id)
        .unwrap_or_else(|| panic!("no terminal.close for {id}: {closes:?}"));
    assert_eq!(
        (close.0.as_str(), close.1["reason"].as_str()),
        ("success", Some("access_revoked")),
        "{close:?}"
    );
}

/// Someone else's terminal outlives several re-checks and still answers.
async fn assert_unaffected(admin: &Session, t: &mut Open, tag: &str) {
    tokio::time::sleep(RECHECK * 3).await;
    type_in(&mut t.ws, &format!("echo {tag}-$((6*8))\r")).await;
    read_line(&mut t.ws, &format!("{tag}-48")).await;
    let (_, s) = admin
        .get(&format!("/api/v1/terminal-sessions/{}", t.id))
        .await;
    assert_eq!(
        (s["live"].as_bool(), s["ended_at"].is_null()),
        (Some(true), true),
        "{s}"
    );
}

async fn user_id(admin: &Session, username: &str) -> String {
    let (_, users) = admin.get("/api/v1/users").await;
    users
        .as_array()
        .or(users["items"].as_array())
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn disabling_a_user_ends_their_terminal() {
    let f = fleet_with(|c| c.live_recheck = RECHECK).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);
    let alice = app.user_with_roles(admin, "alice", &["operator"]).await;
    let bob = app.user_with_roles(admin, "bob", &["operator"]).await;
    step_up(&alice).await;
    step_up(&bob).await;
    let mut a = open_working(app, &alice, server, "alice").await;
    let mut b = open_working(app, &bob, server, "bob").await;

    let alice_id = user_id(admin, "alice").await;
    let since = Instant::now();
    let (st, body) = admin
        .patch(
            &format!("/api/v1/users/{alice_id}"),
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_revoked(&mut a, since).await;
    assert_ended_revoked(app, admin, &a.id).await;
    // The recording was finished normally: it holds what the shell printed.
    let res = admin
        .client
        .get(app.url(&format!("/api/v1/terminal-sessions/{}/recording", a.id)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("alice-42"));

    assert_unaffected(admin, &mut b, "bob").await;
    b.ws.close(None).await.unwrap();
    assert_eq!(wait_ended(admin, &b.id).await["end_reason"], "closed");
    drop(f.sshd);
}

#[tokio::test]
async fn logging_out_ends_the_terminals_of_that_session_only() {
    let f = fleet_with(|c| c.live_recheck = RECHECK).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);
    let alice = app.user_with_roles(admin, "alice", &["operator"]).await;
    step_up(&alice).await;
    // Alice in a second browser: another session, which stays logged in.
    let elsewhere = app.login("alice", PASSWORD).await;
    step_up(&elsewhere).await;
    let mut a = open_working(app, &alice, server, "first").await;
    let mut other = open_working(app, &elsewhere, server, "second").await;

    let since = Instant::now();
    let (st, _) = alice
        .call(reqwest::Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_revoked(&mut a, since).await;
    assert_ended_revoked(app, admin, &a.id).await;

    assert_unaffected(admin, &mut other, "second").await;
    drop(f.sshd);
}

#[tokio::test]
async fn losing_terminal_open_on_the_server_ends_the_terminal() {
    let f = fleet_with(|c| c.live_recheck = RECHECK).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);
    let (st, body) = admin
        .put(
            &format!("/api/v1/servers/{server}"),
            json!({ "name": "box-1", "host": f.sshd.host, "port": f.sshd.port, "ssh_user": f.sshd.user, "tags": ["prod"] }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let role_body = |permissions: &[&str], tags: &[&str]| json!({ "name": "prod-shell", "permissions": permissions, "server_tags": tags });
    let (st, role) = admin
        .post(
            "/api/v1/roles",
            role_body(&["servers.read", "terminal.open"], &["prod"]),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{role}");
    let role = role["id"].as_str().unwrap().to_string();
    let alice = app.user_with_roles(admin, "alice", &["prod-shell"]).await;
    let bob = app.user_with_roles(admin, "bob", &["operator"]).await;
    step_up(&alice).await;
    step_up(&bob).await;
    let mut b = open_working(app, &bob, server, "bob").await;

    // The role keeps the server in sight but no longer gives terminal.open.
    let mut a = open_working(app, &alice, server, "alice").await;
    let since = Instant::now();
    let (st, body) = admin
        .put(
            &format!("/api/v1/roles/{role}"),
            role_body(&["servers.read"], &["prod"]),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_revoked(&mut a, since).await;
    assert_ended_revoked(app, admin, &a.id).await;

    // Given back, then the role's tag scope moves off the server.
    let (st, body) = admin
        .put(
            &format!("/api/v1/roles/{role}"),
            role_body(&["servers.read", "terminal.open"], &["prod"]),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let mut a = open_working(app, &alice, server, "again").await;
    let since = Instant::now();
    let (st, body) = admin
        .put(
            &format!("/api/v1/roles/{role}"),
            role_body(&["servers.read", "terminal.open"], &["staging"]),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_revoked(&mut a, since).await;
    assert_ended_revoked(app, admin, &a.id).await;

    assert_unaffected(admin, &mut b, "bob").await;
    drop(f.sshd);
}

#[tokio::test]
async fn a_recording_stops_at_its_size_cap_and_the_shell_goes_on() {
    let f = fleet_with(|c| c.terminal_recording_cap = 64 * 1024).await;
    let (app, admin) = (&f.app, &f.admin);
    step_up(admin).await;
    let (mut ws, id) = open(app, admin, &f.server, "").await;
    // Far more output than the cap.
    type_in(
        &mut ws,
        "head -c 300000 /dev/zero | tr '\\000' x; echo; echo big-done\n",
    )
    .await;
    let mut stopped = None;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !has_line(&String::from_utf8_lossy(&out), "big-done") {
        assert!(Instant::now() < deadline, "output never finished");
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => out.extend_from_slice(&b),
            Ok(Some(Ok(Message::Text(t)))) => {
                stopped = Some(serde_json::from_str::<Value>(&t).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }
    let stopped = stopped.expect("the user is told the recording stopped");
    assert_eq!(stopped["type"], "recording_stopped", "{stopped}");
    assert_eq!(stopped["limit_bytes"], 64 * 1024);
    // The shell is still there.
    type_in(&mut ws, "echo still-$((40+2))\n").await;
    read_line(&mut ws, "still-42").await;
    let (_, s) = admin.get(&format!("/api/v1/terminal-sessions/{id}")).await;
    assert!(s["recording_capped_at"].is_string(), "{s}");
    assert!(s["bytes"].as_i64().unwrap() <= 64 * 1024, "{s}");
    ws.close(None).await.unwrap();
    wait_ended(admin, &id).await;
    // The recording ends with a marker saying why.
    let cast = app
        .client
        .get(app.url(&format!("/api/v1/terminal-sessions/{id}/recording")))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last = cast.lines().rfind(|l| l.contains("\"m\"")).expect("marker");
    assert!(last.contains("recording stopped"), "{last}");
    assert!(
        !cast.contains("still-42"),
        "nothing after the cap is recorded"
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&("terminal.recording_capped".into(), "success".into()))
    );
}

/// Resident memory of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn parallel_downloads_of_a_large_recording_stream_in_bounded_memory() {
    let f = fleet_with(|_| {}).await;
    let (app, admin) = (&f.app, &f.admin);
    // A 200 MiB session, stored as the recorder stores it: 800 compressed chunks of 256 KiB
    // of asciicast text.
    let id = steward_db::new_id();
    sqlx::query(
        "INSERT INTO terminal_sessions (id, org_id, user_id, username, server_id, server_name, started_at, ended_at, duration_ms, bytes, end_reason, width, height) \
         SELECT $1, org_id, id, username, $2, 'box-1', 0, 1, 1, 209715200, 'exited', 80, 24 FROM users WHERE username = 'admin'",
    )
    .bind(&id)
    .bind(&f.server)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let line = format!("[0.5,\"o\",\"{}\"]\n", "y".repeat(1000));
    let chunk_text: String = line.repeat(256 * 1024 / line.len());
    let chunk = zstd::bulk::compress(chunk_text.as_bytes(), 1).unwrap();
    for seq in 0..800_i64 {
        sqlx::query(
            "INSERT INTO terminal_recording_chunks (session_id, seq, data) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(seq)
        .bind(&chunk)
        .execute(&app.db.pool)
        .await
        .unwrap();
    }
    let expected = chunk_text.len() as u64 * 800;
    let before = rss();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let watch = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut downloads = Vec::new();
    for _ in 0..4 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/terminal-sessions/{id}/recording")),
            admin.token.clone(),
        );
        downloads.push(tokio::spawn(async move {
            let resp = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let mut stream = resp.bytes_stream();
            let mut n = 0u64;
            while let Some(b) = stream.next().await {
                n += b.unwrap().len() as u64;
            }
            n
        }));
    }
    for d in downloads {
        assert_eq!(d.await.unwrap(), expected, "every download is complete");
    }
    watch.abort();
    let grew = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    eprintln!(
        "4 parallel downloads of a {} MiB recording: peak RSS grew by {} MiB",
        expected / (1024 * 1024),
        grew / (1024 * 1024)
    );
    // Four 200 MiB recordings held in memory would be 800 MiB; streamed, a few chunks each.
    assert!(
        grew < 96 * 1024 * 1024,
        "RSS grew by {} MiB",
        grew / (1024 * 1024)
    );
}

/// Creates an API token for `s` limited to `permissions`, as a session that uses it.
async fn api_token(s: &Session, permissions: &[&str]) -> Session {
    let (st, t) = s
        .post(
            "/api/v1/api-tokens",
            json!({ "name": format!("t-{}", permissions.join("-")), "permissions": permissions }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    Session {
        token: t["token"].as_str().unwrap().to_string(),
        refresh: String::new(),
        ..s.clone()
    }
}

#[tokio::test]
async fn a_narrowed_api_token_cannot_read_its_owners_recordings() {
    let f = fleet_with(|_| {}).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);
    let alice = app.user_with_roles(admin, "alice", &["operator"]).await;
    step_up(&alice).await;
    // Alice types a password into her terminal: it is in the recording.
    let (mut ws, id) = open(app, &alice, server, "").await;
    type_in(&mut ws, "echo pw=hunter2-$((6*7))\r").await;
    read_until(&mut ws, "pw=hunter2-42").await;
    type_in(&mut ws, "exit\r").await;
    wait_ended(&alice, &id).await;
    let (st, cast) = alice
        .get(&format!("/api/v1/terminal-sessions/{id}/recording"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(cast.to_string().contains("hunter2-42"));

    // A token she made for reading the inventory does not reach it, nor the session list.
    let reader = api_token(&alice, &["servers.read"]).await;
    assert_eq!(reader.get("/api/v1/servers").await.0, StatusCode::OK);
    let (st, b) = reader
        .get(&format!("/api/v1/terminal-sessions/{id}/recording"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");
    let (st, _) = reader.get(&format!("/api/v1/terminal-sessions/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = reader.get("/api/v1/terminal-sessions").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // A token made for terminals does.
    let shell = api_token(&alice, &["servers.read", "terminal.open"]).await;
    let (st, _) = shell
        .get(&format!("/api/v1/terminal-sessions/{id}/recording"))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, page) = shell.get("/api/v1/terminal-sessions").await;
    assert_eq!(page["total"], 1);
    drop(f.sshd);
}

#[tokio::test]
async fn a_user_manager_cannot_end_an_administrators_terminal() {
    let f = fleet_with(|_| {}).await;
    let (app, admin, server) = (&f.app, &f.admin, &f.server);
    // A user manager who may also open terminals, and a user with just a shell.
    for (name, permissions) in [
        (
            "people",
            json!(["users.manage", "servers.read", "terminal.open"]),
        ),
        ("shell", json!(["servers.read", "terminal.open"])),
    ] {
        let (st, b) = admin
            .post(
                "/api/v1/roles",
                json!({ "name": name, "permissions": permissions }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
    }
    let hr = app.user_with_roles(admin, "hr", &["people"]).await;
    let carol = app.user_with_roles(admin, "carol", &["shell"]).await;
    step_up(admin).await;
    step_up(&carol).await;
    let (mut admin_ws, admin_term) = open(app, admin, server, "").await;
    let (mut carol_ws, carol_term) = open(app, &carol, server, "").await;

    // The administrator holds more than the user manager: their shell stays.
    let (st, b) = hr
        .post(
            &format!("/api/v1/terminal-sessions/{admin_term}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    type_in(&mut admin_ws, "echo still-$((40+2))\r").await;
    read_until(&mut admin_ws, "still-42").await;
    // A user the manager covers can be ended.
    let (st, b) = hr
        .post(
            &format!("/api/v1/terminal-sessions/{carol_term}/terminate"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let m = next_control(&mut carol_ws).await;
    assert_eq!(m, json!({ "type": "closed", "reason": "terminated" }));
    drop(f.sshd);
}
