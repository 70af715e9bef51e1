//! The script library and runs across servers, against real OpenSSH servers on loopback:
//! output kept apart and capped, exit codes, timeouts and cancellation that really stop the
//! remote process, step-up for wide and ad-hoc runs, a 50-host fan-out with one host down,
//! live output over the WebSocket, jump hosts and the connection pool.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::sshd::{Sshd, addresses, closed_port, key_pair};
use steward_testkit::*;

/// A server on `host:port` using the uploaded private key; returns its id.
async fn add_server(
    admin: &Session,
    name: &str,
    host: &str,
    port: u16,
    user: &str,
    private_key: &str,
    tags: &[&str],
) -> String {
    let id = admin
        .create_server(
            json!({ "name": name, "host": host, "port": port, "ssh_user": user, "tags": tags }),
        )
        .await;
    admin.set_private_key(&id, private_key).await;
    id
}

/// One sshd on 127.0.0.2 with a server for it.
async fn one_server(admin: &Session) -> (Sshd, String) {
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let id = add_server(
        admin,
        "web-1",
        &sshd.host,
        sshd.port,
        &sshd.user,
        &private,
        &["web"],
    )
    .await;
    (sshd, id)
}

/// Starts a run and returns its id.
async fn start(session: &Session, body: Value) -> String {
    let (s, b) = session.post("/api/v1/executions", body).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_string()
}

/// Polls a run until it is no longer running.
async fn wait_done(session: &Session, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (s, b) = session.get(&format!("/api/v1/executions/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        if b["status"] != "running" {
            return b;
        }
        assert!(Instant::now() < deadline, "run still going: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn host<'a>(run: &'a Value, server_id: &str) -> &'a Value {
    run["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["server_id"] == server_id)
        .unwrap_or_else(|| panic!("no host {server_id} in {run}"))
}

/// Whether a process whose command line contains `marker` runs on this machine (the test
/// sshd runs here, as this user).
fn process_running(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// An upgrade request for a run's live stream, as `session`.
fn stream_request(
    app: &TestApp,
    session: &Session,
    id: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = app
        .url(&format!("/api/v1/executions/{id}/stream"))
        .replace("http://", "ws://");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", session.token).parse().unwrap(),
    );
    req
}

async fn step_up(session: &Session) {
    let (s, b) = session
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn scripts_keep_every_version_and_refuse_a_stale_save() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin.step_up().await;
    let (s, v1) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "Disk usage", "description": "df for a mount", "body": "df -h \"$MOUNT\"",
                    "parameters": [{ "name": "MOUNT", "type": "string", "required": true, "default": "/" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    let id = v1["id"].as_str().unwrap();

    let (s, v2) = admin
        .put(
            &format!("/api/v1/scripts/{id}"),
            json!({ "name": "Disk usage", "body": "df -hT \"$MOUNT\"", "base_version": 1,
                    "parameters": [{ "name": "MOUNT", "type": "string", "required": true, "default": "/" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);

    // Somebody who opened version 1 cannot overwrite version 2.
    let (s, b) = admin
        .put(
            &format!("/api/v1/scripts/{id}"),
            json!({ "name": "Disk usage", "body": "rm -rf /tmp/x", "base_version": 1 }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(code(&b), "version_conflict");

    let (_, versions) = admin.get(&format!("/api/v1/scripts/{id}/versions")).await;
    let bodies: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["df -hT \"$MOUNT\"", "df -h \"$MOUNT\""]);
    let (s, old) = admin.get(&format!("/api/v1/scripts/{id}/versions/1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(old["changed_by"], "admin");

    // Bad definitions are refused with the field named.
    for (body, field) in [
        (json!({ "name": "x", "body": "" }), "body"),
        (
            json!({ "name": "x", "body": "true", "parameters": [{ "name": "1BAD", "type": "string" }] }),
            "parameters[0].name",
        ),
        (
            json!({ "name": "x", "body": "true", "parameters": [{ "name": "A", "type": "choice" }] }),
            "parameters[0].choices",
        ),
        (
            json!({ "name": "x", "body": "true", "parameters": [{ "name": "A", "type": "integer", "default": "ten" }] }),
            "parameters[0].default",
        ),
        (
            json!({ "name": "x", "body": "true", "parameters": [{ "name": "A", "type": "string" }, { "name": "A", "type": "string" }] }),
            "parameters[1].name",
        ),
    ] {
        let (s, b) = admin.post("/api/v1/scripts", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["details"]["field"], field, "{b}");
    }

    // Who changed what is audited, with the text.
    let actions = app.audit_actions().await;
    assert!(actions.iter().any(|(a, _)| a == "script.create"));
    assert!(actions.iter().any(|(a, _)| a == "script.update"));

    // A viewer can neither read nor change the library.
    let viewer = app.user_with_roles(&admin, "vera", &["viewer"]).await;
    assert_eq!(viewer.get("/api/v1/scripts").await.0, StatusCode::FORBIDDEN);
    viewer.step_up().await;
    let (s, _) = viewer
        .post("/api/v1/scripts", json!({ "name": "y", "body": "true" }))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, _) = admin.delete(&format!("/api/v1/scripts/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&format!("/api/v1/scripts/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_script_runs_with_its_parameters_and_keeps_stdout_stderr_and_the_exit_code_apart() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "Greet", "shell": "bash",
                    "body": "echo \"hello $WHO\"\necho \"level=$LEVEL dry=$DRY\" >&2\necho \"ünïcödé ✓\"\nexit 3",
                    "parameters": [
                        { "name": "WHO", "type": "string", "required": true },
                        { "name": "LEVEL", "type": "choice", "choices": ["low", "high"], "default": "low" },
                        { "name": "DRY", "type": "boolean", "default": "true" }
                    ] }),
        )
        .await;
    let script_id = script["id"].as_str().unwrap();

    // A missing required parameter, an unknown one and a bad choice are refused.
    for (params, field) in [
        (json!({}), "parameters.WHO"),
        (json!({ "WHO": "x", "NOPE": 1 }), "parameters.NOPE"),
        (
            json!({ "WHO": "x", "LEVEL": "extreme" }),
            "parameters.LEVEL",
        ),
    ] {
        let (s, b) = admin
            .post(
                "/api/v1/executions",
                json!({ "script_id": script_id, "script_version": 1, "server_ids": [server], "parameters": params }),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["error"]["details"]["field"], field);
    }

    // Quotes, `$(…)` and spaces reach the script as data, not code.
    let who = "O'Brien $(touch /tmp/steward-pwned) `id`";
    let id = start(
        &admin,
        json!({ "script_id": script_id, "script_version": 1, "server_ids": [server], "parameters": { "WHO": who, "LEVEL": "high" } }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(20)).await;
    let h = host(&run, &server);
    assert_eq!(h["status"], "failed", "{run}");
    assert_eq!(h["exit_code"], 3);
    assert_eq!(h["stdout"], format!("hello {who}\nünïcödé ✓\n"));
    assert_eq!(h["stderr"], "level=high dry=true\n");
    assert_eq!(h["truncated"], false);
    assert!(h["duration_ms"].as_i64().unwrap() >= 0);
    assert!(!std::path::Path::new("/tmp/steward-pwned").exists());
    assert_eq!(run["script_name"], "Greet");
    assert_eq!(run["script_version"], 1);
    assert_eq!(run["summary"]["failed"], 1);

    // The history lists it, filterable by server and script.
    let (_, page) = admin
        .get(&format!(
            "/api/v1/executions?server_id={server}&script_id={script_id}"
        ))
        .await;
    assert_eq!(page["items"][0]["id"], id.as_str());
    let (_, none) = admin.get("/api/v1/executions?status=cancelled").await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_timeout_and_a_cancel_stop_the_remote_processes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "Sleepy", "body": "echo started\nsleep \"$SECONDS_TO_SLEEP\" &\nwait\necho never" ,
                    "parameters": [{ "name": "SECONDS_TO_SLEEP", "type": "integer", "required": true }] }),
        )
        .await;
    let script_id = script["id"].as_str().unwrap();

    // Timeout: the host is marked and the `sleep` (a child of the script) is gone.
    let started = Instant::now();
    let id = start(
        &admin,
        json!({ "script_id": script_id, "script_version": 1, "server_ids": [server], "parameters": { "SECONDS_TO_SLEEP": 31337 }, "timeout_secs": 1 }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(15)).await;
    let h = host(&run, &server);
    assert_eq!(h["status"], "timed_out", "{run}");
    assert_eq!(h["error_code"], "timeout");
    assert_eq!(h["stdout"], "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let gone = Instant::now() + Duration::from_secs(5);
    while process_running("sleep 31337") {
        assert!(
            Instant::now() < gone,
            "the remote sleep outlived its timeout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Cancel: likewise, and the run says who cancelled it.
    let id = start(
        &admin,
        json!({ "script_id": script_id, "script_version": 1, "server_ids": [server], "parameters": { "SECONDS_TO_SLEEP": 31338 } }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_running("sleep 31338") {
        assert!(Instant::now() < deadline, "the script never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = admin
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let run = wait_done(&admin, &id, Duration::from_secs(15)).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["cancelled_by"], "admin");
    assert_eq!(host(&run, &server)["status"], "cancelled");
    let gone = Instant::now() + Duration::from_secs(5);
    while process_running("sleep 31338") {
        assert!(
            Instant::now() < gone,
            "the remote sleep outlived the cancel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, b) = admin
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(code(&b), "not_running");
    assert!(
        app.audit_actions()
            .await
            .iter()
            .any(|(a, _)| a == "execution.cancel")
    );
}

#[tokio::test]
async fn output_over_the_cap_is_cut_and_marked() {
    let app = TestApp::spawn_with(|c| c.execution_output_cap = 1000).await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;
    let id = start(
        &admin,
        json!({ "command": "head -c 5000 /dev/zero | tr '\\0' a; echo tail >&2", "server_ids": [server] }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(20)).await;
    let h = host(&run, &server);
    assert_eq!(h["status"], "ok", "{run}");
    assert_eq!(h["stdout"].as_str().unwrap(), "a".repeat(1000));
    assert_eq!(h["stdout_bytes"], 5000);
    assert_eq!(h["stderr"], "tail\n");
    assert_eq!(h["truncated"], true);
}

#[tokio::test]
async fn ad_hoc_commands_and_wide_runs_need_a_step_up_which_is_audited() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;

    // Ad-hoc without a step-up: refused, and the attempt is audited.
    let (s, b) = admin
        .post(
            "/api/v1/executions",
            json!({ "command": "id", "server_ids": [server] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(code(&b), "step_up_required");

    // A wrong password is refused and audited.
    let (s, b) = admin
        .post(
            "/api/v1/auth/step-up",
            json!({ "password": "not-my-password" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(code(&b), "step_up_failed");

    // Inline proof works for one request…
    let id = start(
        &admin,
        json!({ "command": "echo inline", "server_ids": [server], "step_up": { "password": PASSWORD } }),
    )
    .await;
    assert_eq!(
        host(
            &wait_done(&admin, &id, Duration::from_secs(20)).await,
            &server
        )["stdout"],
        "inline\n"
    );

    // …and a session step-up works for the next ones.
    step_up(&admin).await;
    let id = start(
        &admin,
        json!({ "command": "echo session", "server_ids": [server] }),
    )
    .await;
    assert_eq!(
        host(
            &wait_done(&admin, &id, Duration::from_secs(20)).await,
            &server
        )["stdout"],
        "session\n"
    );

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, outcome, details FROM audit_events WHERE action IN ('execution.start', 'auth.step_up') ORDER BY at, id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|(a, o, _)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("execution.start", "denied"),
            ("auth.step_up", "failure"),
            ("auth.step_up", "success"),
            ("execution.start", "success"),
            ("auth.step_up", "success"),
            ("execution.start", "success"),
        ]
    );
    // The full command text is in the audit log.
    assert!(rows[3].2.contains("echo inline"), "{}", rows[3].2);
    // Saved scripts on few servers need no step-up: covered by the other tests (they never step up).
}

#[tokio::test]
async fn fan_out_to_fifty_hosts_with_one_down_streams_live_output() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    // 49 live targets on 127.0.0.10–58 (sshd takes 16 addresses each), one that is down.
    let mut daemons = Vec::new();
    let mut ids = Vec::new();
    for (first, count) in [(10u8, 16u8), (26, 16), (42, 16), (58, 1)] {
        let sshd = Sshd::start_with(&addresses(first, count), "");
        sshd.authorize(&public);
        for h in &sshd.hosts {
            ids.push(
                add_server(
                    &admin,
                    &format!("node-{h}"),
                    h,
                    sshd.port,
                    &sshd.user,
                    &private,
                    &["fleet"],
                )
                .await,
            );
        }
        daemons.push(sshd);
    }
    let down = add_server(
        &admin,
        "node-down",
        "127.0.0.2",
        closed_port(),
        "root",
        &private,
        &["fleet"],
    )
    .await;
    assert_eq!(ids.len(), 49);

    // More than ten servers: a step-up first.
    let body = json!({ "command": "echo \"$(hostname) ok\"; echo warn >&2", "tags": ["fleet"], "concurrency": 50, "timeout_secs": 30 });
    let (s, b) = admin.post("/api/v1/executions", body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    step_up(&admin).await;

    let started = Instant::now();
    let id = start(&admin, body).await;
    // Follow it live over the WebSocket.
    let req = stream_request(&app, &admin, &id);
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket");
    let mut stdout_seen = std::collections::BTreeMap::<String, String>::new();
    let mut finished = None;
    let mut last_seq = 0;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("stream stalled")
    {
        let msg = msg.expect("frame");
        let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        let seq = event["seq"].as_u64().unwrap();
        match event["type"].as_str().unwrap() {
            "snapshot" => {
                for h in event["execution"]["hosts"].as_array().unwrap() {
                    stdout_seen.insert(
                        h["server_id"].as_str().unwrap().into(),
                        h["stdout"].as_str().unwrap().into(),
                    );
                }
            }
            "output" => {
                assert!(seq > last_seq, "events out of order");
                if event["stream"] == "stdout" {
                    stdout_seen
                        .entry(event["server_id"].as_str().unwrap().into())
                        .or_default()
                        .push_str(event["data"].as_str().unwrap());
                }
            }
            "finished" => {
                finished = Some(event.clone());
            }
            _ => {}
        }
        last_seq = seq.max(last_seq);
    }
    let elapsed = started.elapsed();
    eprintln!("cold fan-out to 50 hosts: {elapsed:?}");
    let finished = finished.expect("a finished message");
    assert_eq!(finished["summary"]["ok"], 49, "{finished}");
    assert_eq!(finished["summary"]["error"], 1, "{finished}");
    assert_eq!(finished["summary"]["total"], 50);
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    for server in &ids {
        assert!(
            stdout_seen[server].ends_with(" ok\n"),
            "{server}: {:?}",
            stdout_seen[server]
        );
    }

    let run = wait_done(&admin, &id, Duration::from_secs(5)).await;
    let d = host(&run, &down);
    assert_eq!(d["status"], "error");
    assert_eq!(d["error_code"], "unreachable");
    for server in &ids {
        let h = host(&run, server);
        assert_eq!(h["status"], "ok", "{h}");
        assert_eq!(h["stderr"], "warn\n");
    }

    // Warm: the pool keeps one connection per server, so a second run logs in nowhere again.
    let logins = |d: &Vec<Sshd>| {
        d.iter()
            .map(|s| s.log().matches("Accepted publickey").count())
            .sum::<usize>()
    };
    let before = logins(&daemons);
    assert_eq!(before, 49);
    let warm = Instant::now();
    let id = start(
        &admin,
        json!({ "command": "true", "tags": ["fleet"], "concurrency": 50 }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(30)).await;
    eprintln!("warm fan-out to 50 hosts: {:?}", warm.elapsed());
    assert_eq!(run["summary"]["ok"], 49, "{run}");
    assert_eq!(
        logins(&daemons),
        49,
        "the second run opened new connections"
    );

    // A stream of a finished run gives its stored state and the end.
    let req = stream_request(&app, &admin, &id);
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket");
    let mut kinds = Vec::new();
    while let Some(Ok(msg)) = ws.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            kinds.push(v["type"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(kinds, ["snapshot", "finished"]);
    let _ = ws.close(None).await;
}

#[tokio::test]
async fn stop_on_failure_skips_the_hosts_not_started() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    let sshd = Sshd::start_with(&addresses(60, 3), "");
    sshd.authorize(&public);
    let mut ids = Vec::new();
    for (i, h) in sshd.hosts.iter().enumerate() {
        ids.push(
            add_server(
                &admin,
                &format!("a{i}"),
                h,
                sshd.port,
                &sshd.user,
                &private,
                &["batch"],
            )
            .await,
        );
    }
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "fail", "body": "exit 1" }),
        )
        .await;
    let id = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "tags": ["batch"], "concurrency": 1, "stop_on_failure": true }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(20)).await;
    let statuses: Vec<&str> = ids
        .iter()
        .map(|i| host(&run, i)["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "skipped", "skipped"], "{run}");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["summary"]["cancelled"], 2);
}

#[tokio::test]
async fn runs_respect_server_scopes_and_are_private_to_their_author() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, web) = one_server(&admin).await;
    let db = admin.server("db-1", &["db"]).await;
    let (s, b) = admin
        .post(
            "/api/v1/roles",
            json!({ "name": "web runner", "permissions": ["servers.read", "scripts.run"], "server_tags": ["web"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "hello", "body": "echo hello" }),
        )
        .await;
    let webby = app.user_with_roles(&admin, "webby", &["web runner"]).await;
    // The administrator's script is new to them: running it needs a step-up first.
    webby.step_up().await;

    // Another group's server does not exist for them; a tag of it selects nothing.
    let (s, _) = webby
        .post(
            "/api/v1/executions",
            json!({ "script_id": script["id"], "script_version": 1, "server_ids": [db] }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = webby
        .post(
            "/api/v1/executions",
            json!({ "script_id": script["id"], "script_version": 1, "tags": ["db"] }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(code(&b), "no_targets");
    let id = start(
        &webby,
        json!({ "script_id": script["id"], "script_version": 1, "tags": ["web", "db"] }),
    )
    .await;
    let run = wait_done(&webby, &id, Duration::from_secs(20)).await;
    assert_eq!(run["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(host(&run, &web)["stdout"], "hello\n");

    // A viewer cannot run anything; another runner cannot see webby's run.
    let viewer = app.user_with_roles(&admin, "vic", &["viewer"]).await;
    let (s, _) = viewer
        .post(
            "/api/v1/executions",
            json!({ "script_id": script["id"], "script_version": 1, "server_ids": [web] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let other = app.user_with_roles(&admin, "otto", &["web runner"]).await;
    assert_eq!(
        other.get(&format!("/api/v1/executions/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, page) = other.get("/api/v1/executions").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    // Administrators (audit.read) see everyone's.
    let (_, page) = admin.get("/api/v1/executions").await;
    assert_eq!(page["items"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_server_behind_a_jump_host_is_reached_through_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    let mut bastion = Sshd::start_with(&["127.0.0.70".to_string()], "AllowTcpForwarding no");
    bastion.authorize(&public);
    let target = Sshd::start_with(&["127.0.0.71".to_string()], "");
    target.authorize(&public);
    let jump = add_server(
        &admin,
        "bastion",
        &bastion.host,
        bastion.port,
        &bastion.user,
        &private,
        &[],
    )
    .await;
    let inner = add_server(
        &admin,
        "inner",
        &target.host,
        target.port,
        &target.user,
        &private,
        &[],
    )
    .await;
    // Routing a server with a credential through a jump server is an endpoint change: the
    // administrator keeps the credential by proving themselves again.
    admin.step_up().await;
    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{inner}"),
            json!({ "name": "inner", "host": target.host, "port": target.port, "ssh_user": target.user, "jump_server_id": jump }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["jump_server_id"], jump.as_str());
    // A server cannot jump through itself, nor through one that jumps.
    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{jump}"),
            json!({ "name": "bastion", "host": bastion.host, "port": bastion.port, "ssh_user": bastion.user, "jump_server_id": inner }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");

    admin.step_up().await;

    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "where", "body": "echo reached" }),
        )
        .await;
    // The bastion refuses forwarding: the run fails at the jump, so it really goes through it.
    let id = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "server_ids": [inner] }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(20)).await;
    assert_eq!(host(&run, &inner)["status"], "error", "{run}");
    assert_eq!(host(&run, &inner)["error_code"], "unreachable", "{run}");

    bastion.restart_with_config("AllowTcpForwarding yes");
    // The pooled connection to the bastion predates the change; saving the server drops it.
    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{jump}"),
            json!({ "name": "bastion", "host": bastion.host, "port": bastion.port, "ssh_user": bastion.user }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "server_ids": [inner] }),
    )
    .await;
    let run = wait_done(&admin, &id, Duration::from_secs(20)).await;
    assert_eq!(host(&run, &inner)["stdout"], "reached\n", "{run}");
    // Both host keys were recorded: the target's is checked end to end, not the bastion's.
    let (_, key) = admin
        .get(&format!("/api/v1/servers/{inner}/host-key"))
        .await;
    assert_eq!(
        key["fingerprint"],
        steward_ssh::client::HostKey::parse(&target.host_key())
            .unwrap()
            .fingerprint
    );
    // (That the route goes through the bastion is shown by the refusal above.)
}

#[tokio::test]
async fn the_stream_refuses_other_sites_and_plain_requests() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "hi", "body": "echo hi" }),
        )
        .await;
    let id = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "server_ids": [server] }),
    )
    .await;
    let (s, b) = admin.get(&format!("/api/v1/executions/{id}/stream")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(code(&b), "websocket_required");

    let mut req = stream_request(&app, &admin, &id);
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req)
        .await
        .expect_err("cross-site refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            assert_eq!(r.status(), 403);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(code(&body), "cross_origin");
        }
        other => panic!("unexpected {other}"),
    }
    let mut ws_ok = false;
    let mut req = stream_request(&app, &admin, &id);
    let host = req.uri().authority().unwrap().to_string();
    req.headers_mut()
        .insert("origin", format!("http://{host}").parse().unwrap());
    if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(req).await {
        ws_ok = ws.next().await.is_some();
        let _ = ws
            .send(tokio_tungstenite::tungstenite::Message::Close(None))
            .await;
    }
    assert!(ws_ok, "same-origin stream refused");
}

#[tokio::test]
async fn old_runs_are_pruned_with_their_output_and_running_ones_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "hi", "body": "echo hi" }),
        )
        .await;
    let old = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "server_ids": [server] }),
    )
    .await;
    wait_done(&admin, &old, Duration::from_secs(20)).await;
    let recent = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "server_ids": [server] }),
    )
    .await;
    wait_done(&admin, &recent, Duration::from_secs(20)).await;
    // The first one is 100 days old.
    let hundred_days = 100 * 24 * 3600 * 1000_i64;
    sqlx::query("UPDATE executions SET created_at = created_at - $1 WHERE id = $2")
        .bind(hundred_days)
        .bind(&old)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let pruned = steward_db::executions::prune(&app.db.pool, now - 90 * 24 * 3600 * 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(
        admin.get(&format!("/api/v1/executions/{old}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.get(&format!("/api/v1/executions/{recent}")).await.0,
        StatusCode::OK
    );
    let hosts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM execution_hosts WHERE execution_id = $1")
            .bind(&old)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(hosts, 0, "the pruned run's output is gone too");
}

/// Runs an ad-hoc `sh` command on one server and waits for it; returns its host entry.
async fn run_one(admin: &Session, server: &str, command: &str, timeout_secs: u64) -> Value {
    let id = start(
        admin,
        json!({ "command": command, "server_ids": [server], "timeout_secs": timeout_secs }),
    )
    .await;
    let run = wait_done(admin, &id, Duration::from_secs(30)).await;
    host(&run, server).clone()
}

/// The pid of the shell that runs a command (`$$`: the runner shell's when one is used).
async fn shell_pid(admin: &Session, server: &str) -> u32 {
    let h = run_one(admin, server, "echo $$", 20).await;
    assert_eq!(h["status"], "ok", "{h}");
    h["stdout"].as_str().unwrap().trim().parse().unwrap()
}

/// Commands whose output must be the same, byte for byte, on a runner shell and on a
/// channel of their own.
const EDGE_CASES: &[&str] = &[
    "printf 'no newline at the end'",
    "printf 'err without newline' >&2; printf out",
    // Control bytes, invalid UTF-8, a fake marker and the record separator the runner uses.
    "printf '\\036\\001\\002\\377abc\\036deadbeef:go\\n\\036'; printf '\\036x:end\\n' >&2",
    "echo \"it's\" 'quoted '\\'' twice'; echo \"$((6*7))\" >&2; exit 3",
    "cat; echo \"cat=$?\"; read line; echo \"read=$?\"",
    "cd /; x=1; export Y=2; trap 'echo bye' EXIT; pwd",
    "echo \"x=${x:-unset} Y=${Y:-unset}\"; pwd",
    "head -c 100000 /dev/zero | tr '\\0' z; echo; seq 1 3 >&2",
    "set -e; false; echo never",
    "exit 300",
    // A background job: a channel of its own, which waits for its output.
    "(sleep 0.3; echo late) & echo now",
];

#[tokio::test]
async fn warm_runs_use_a_runner_shell_with_the_same_output_as_a_channel_of_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;
    let plain = TestApp::spawn_with(|c| c.execution_runners = false).await;
    let plain_admin = plain.admin().await;
    let (_plain_sshd, plain_server) = one_server(&plain_admin).await;
    step_up(&plain_admin).await;

    // The same shell runs one command after another: its pid stays.
    let runner = shell_pid(&admin, &server).await;
    assert_eq!(shell_pid(&admin, &server).await, runner);
    // Without runners every command has a shell of its own.
    assert_ne!(
        shell_pid(&plain_admin, &plain_server).await,
        shell_pid(&plain_admin, &plain_server).await
    );

    for command in EDGE_CASES {
        let a = run_one(&admin, &server, command, 20).await;
        let b = run_one(&plain_admin, &plain_server, command, 20).await;
        for field in [
            "status",
            "exit_code",
            "exit_signal",
            "stdout",
            "stderr",
            "stdout_bytes",
            "stderr_bytes",
            "truncated",
        ] {
            assert_eq!(a[field], b[field], "{field} of `{command}`: {a} vs {b}");
        }
    }
    // A syntax error stops the command with status 2 on both; the shell's message says
    // `eval:` on a runner.
    let syntax = "echo one\necho \"two";
    let a = run_one(&admin, &server, syntax, 20).await;
    let b = run_one(&plain_admin, &plain_server, syntax, 20).await;
    assert_eq!(
        (&a["exit_code"], &a["stdout"]),
        (&b["exit_code"], &b["stdout"])
    );
    assert_eq!(a["exit_code"], 2);
    assert_eq!(
        a["stderr"].as_str().unwrap().replace("eval: ", ""),
        b["stderr"].as_str().unwrap()
    );
    // What the edge cases print, to be sure both paths are right (not just equal).
    let h = run_one(&admin, &server, EDGE_CASES[2], 20).await;
    assert_eq!(h["stdout_bytes"], 21);
    assert_eq!(
        h["stdout"],
        "\u{1e}\u{1}\u{2}\u{fffd}abc\u{1e}deadbeef:go\n\u{1e}"
    );
    assert_eq!(h["stderr"], "\u{1e}x:end\n");
    let h = run_one(&admin, &server, EDGE_CASES[3], 20).await;
    assert_eq!(
        (h["status"].as_str(), h["exit_code"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert_eq!(h["stdout"], "it's quoted ' twice\n");
    assert_eq!(h["stderr"], "42\n");
    let h = run_one(&admin, &server, EDGE_CASES[4], 20).await;
    assert_eq!(h["stdout"], "cat=0\nread=1\n", "standard input is empty");
    let h = run_one(&admin, &server, EDGE_CASES[6], 20).await;
    assert_eq!(
        h["stdout"],
        "x=unset Y=unset\n/root\n".replace("/root", &home()),
        "{h}"
    );

    // `exit`, `cd`, variables and traps stayed in their commands: still the same runner.
    assert_eq!(shell_pid(&admin, &server).await, runner);
}

/// This user's home directory (where sshd starts the test account's commands).
fn home() -> String {
    std::env::var("HOME").unwrap_or_else(|_| "/root".into())
}

#[tokio::test]
async fn a_runner_shell_killed_from_outside_is_not_reused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;
    let first = shell_pid(&admin, &server).await;
    assert_eq!(shell_pid(&admin, &server).await, first);

    // Killed while idle, and the next command sent at once (it may reach the dead runner
    // before its end is seen): it still runs, elsewhere.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let h = run_one(&admin, &server, "echo $$; echo fine", 20).await;
    assert_eq!(h["status"], "ok", "{h}");
    let second: u32 = h["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(second, first);
    assert_eq!(h["stdout"], format!("{second}\nfine\n"));

    // Killed after a while (its end seen while idle): a new runner takes over and is reused.
    let third = shell_pid(&admin, &server).await;
    std::process::Command::new("kill")
        .args(["-KILL", &third.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fourth = shell_pid(&admin, &server).await;
    assert_ne!(fourth, third);
    assert_eq!(shell_pid(&admin, &server).await, fourth);

    // A command that kills its own runner (`$$` is the runner's pid, not the command's
    // subshell's) fails like a shell killed by a signal, and the next command runs elsewhere.
    let h = run_one(&admin, &server, "echo before; kill -KILL $$; sleep 0.2", 20).await;
    assert_eq!(h["status"], "failed", "{h}");
    assert_eq!(h["exit_signal"], "KILL", "{h}");
    assert_eq!(h["stdout"], "before\n");
    assert_ne!(shell_pid(&admin, &server).await, fourth);
}

#[tokio::test]
async fn timeout_and_cancel_on_a_warm_runner_kill_every_process_of_the_command() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;

    // Timeout, on a warm runner: both sleeps go, not only the one the shell waits for. (A
    // pipeline: a script with a background job `&` gets a channel of its own.)
    let runner = shell_pid(&admin, &server).await;
    assert_eq!(shell_pid(&admin, &server).await, runner);
    let h = run_one(&admin, &server, "echo go; sleep 31340 | sleep 31341", 1).await;
    assert_eq!(h["status"], "timed_out", "{h}");
    assert_eq!(h["stdout"], "go\n");
    for marker in ["sleep 31340", "sleep 31341"] {
        let gone = Instant::now() + Duration::from_secs(5);
        while process_running(marker) {
            assert!(Instant::now() < gone, "{marker} outlived the timeout");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Cancel, likewise (the killed runner is not reused; a new one is warmed first).
    let runner = shell_pid(&admin, &server).await;
    assert_eq!(shell_pid(&admin, &server).await, runner);
    let id = start(
        &admin,
        json!({ "command": "sleep 31342 | sleep 31343", "server_ids": [server] }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(process_running("sleep 31342") && process_running("sleep 31343")) {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = admin
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let run = wait_done(&admin, &id, Duration::from_secs(15)).await;
    assert_eq!(host(&run, &server)["status"], "cancelled", "{run}");
    for marker in ["sleep 31342", "sleep 31343"] {
        let gone = Instant::now() + Duration::from_secs(5);
        while process_running(marker) {
            assert!(Instant::now() < gone, "{marker} outlived the cancel");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // And the next command runs.
    let h = run_one(&admin, &server, "echo after", 20).await;
    assert_eq!(
        (h["status"].as_str(), h["stdout"].as_str()),
        (Some("ok"), Some("after\n"))
    );
}

#[tokio::test]
async fn concurrent_runs_on_one_host_never_share_a_runner_shell() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;
    for _ in 0..2 {
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(
                start(
                    &admin,
                    json!({ "command": format!("sleep 0.5; echo \"$$ {i}\""), "server_ids": [server] }),
                )
                .await,
            );
        }
        let mut pids = std::collections::BTreeSet::new();
        for (i, id) in ids.iter().enumerate() {
            let run = wait_done(&admin, id, Duration::from_secs(20)).await;
            let h = host(&run, &server);
            assert_eq!(h["status"], "ok", "{run}");
            let out = h["stdout"].as_str().unwrap();
            let (pid, n) = out.trim().split_once(' ').unwrap();
            assert_eq!(n, i.to_string(), "each run got its own output: {out}");
            pids.insert(pid.to_string());
        }
        assert_eq!(pids.len(), 4, "four shells at once: {pids:?}");
    }
}

#[tokio::test]
async fn a_runner_whose_command_left_a_background_job_is_not_reused() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;
    let first = shell_pid(&admin, &server).await;
    assert_eq!(shell_pid(&admin, &server).await, first);
    // A background job the `&` check cannot see (the `&` is made at run time): the runner
    // notices `$!` and is dropped, so the job's late output reaches no later command.
    let h = run_one(
        &admin,
        &server,
        "eval \"(sleep 0.5; echo late; echo late >&2) $(printf '\\046')\"; echo now",
        20,
    )
    .await;
    assert_eq!(
        (h["status"].as_str(), h["stdout"].as_str()),
        (Some("ok"), Some("now\n"))
    );
    let second = shell_pid(&admin, &server).await;
    assert_ne!(second, first, "the runner was reused");
    tokio::time::sleep(Duration::from_millis(700)).await;
    for _ in 0..3 {
        let h = run_one(&admin, &server, "echo $$; sleep 0.1", 20).await;
        assert_eq!(h["stdout"], format!("{second}\n"), "{h}");
        assert_eq!(h["stderr"], "", "{h}");
    }
}

/// A runner shell is reused only for runs of the user whose commands it ran: a process a
/// command leaves behind could write into the next command's output, which must not be
/// another user's run.
#[tokio::test]
async fn runner_shells_are_not_shared_between_users() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    step_up(&admin).await;
    let otto = app.user_with_roles(&admin, "otto", &["admin"]).await;
    step_up(&otto).await;

    let admins = shell_pid(&admin, &server).await;
    assert_eq!(
        shell_pid(&admin, &server).await,
        admins,
        "reused for the same user"
    );
    let ottos = shell_pid(&otto, &server).await;
    assert_ne!(ottos, admins, "another user got a shell of their own");
    assert_eq!(shell_pid(&otto, &server).await, ottos);
    assert_eq!(shell_pid(&admin, &server).await, admins);
}

/// A run's live output stops for a caller who is disabled (or logs out, or loses sight of the
/// run), within the re-check interval, while the run itself goes on.
#[tokio::test]
async fn the_stream_ends_when_its_caller_loses_access() {
    let app = TestApp::spawn_with(|c| c.live_recheck = Duration::from_millis(300)).await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    let alice = app.user_with_roles(&admin, "alice", &["operator"]).await;
    alice.step_up().await;
    let id = start(
        &alice,
        json!({ "command": "for i in $(seq 1 100); do echo tick $i; sleep 0.2; done", "server_ids": [server] }),
    )
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(stream_request(&app, &alice, &id))
        .await
        .expect("upgrade");
    // Output flows…
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
    assert!(matches!(first, Ok(Some(Ok(_)))), "{first:?}");
    let (_, users) = admin.get("/api/v1/users").await;
    let alice_id = users["items"]
        .as_array()
        .or(users.as_array())
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = admin
        .patch(
            &format!("/api/v1/users/{alice_id}"),
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // …until she is disabled: the stream closes with `access_revoked`.
    let reason = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                    return Some(f.reason.to_string());
                }
                None
                | Some(Err(_))
                | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(None))) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the stream closes within the re-check interval");
    assert_eq!(reason.as_deref(), Some("access_revoked"));
    // The run itself was not stopped.
    let (_, run) = admin.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(run["status"], "running", "{run}");
    admin
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
}

#[tokio::test]
async fn a_narrowed_api_token_cannot_see_or_cancel_its_owners_runs() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (_sshd, server) = one_server(&admin).await;
    let script = admin
        .script(json!({ "name": "Sleepy", "body": "echo started\nsleep 31339 &\nwait" }))
        .await;
    let id = start(
        &admin,
        json!({ "script_id": script["id"], "script_version": 1, "server_ids": [server] }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_running("sleep 31339") {
        assert!(Instant::now() < deadline, "the script never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = |permissions: Value| {
        let admin = admin.clone();
        async move {
            let (s, t) = admin
                .post(
                    "/api/v1/api-tokens",
                    json!({ "name": format!("t-{permissions}"), "permissions": permissions }),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{t}");
            Session {
                token: t["token"].as_str().unwrap().to_string(),
                ..admin.clone()
            }
        }
    };

    // A token the administrator made for reading the inventory: the run is not there.
    let reader = token(json!(["servers.read"])).await;
    assert_eq!(reader.get("/api/v1/servers").await.0, StatusCode::OK);
    for (status, path) in [
        (
            reader.get(&format!("/api/v1/executions/{id}")).await.0,
            "get",
        ),
        (
            reader
                .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
                .await
                .0,
            "cancel",
        ),
        (
            reader
                .get(&format!("/api/v1/executions/{id}/stream"))
                .await
                .0,
            "stream",
        ),
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(process_running("sleep 31339"), "the run kept going");

    // A token made for running scripts may follow and cancel its owner's runs.
    let runner = token(json!(["servers.read", "scripts.run"])).await;
    let (s, _) = runner.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = runner
        .post(&format!("/api/v1/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let run = wait_done(&admin, &id, Duration::from_secs(15)).await;
    assert_eq!(run["status"], "cancelled");
}
