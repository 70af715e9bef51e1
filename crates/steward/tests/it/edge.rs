//! The HTTP edge under attack, each test the attack and its refusal: thousands of half-open
//! connections, a flood past the connection cap, a declared 10 GiB body, a body that never
//! arrives, idle kept-alive connections (but not WebSockets), made-up methods and paths that
//! would grow `/metrics`, and the real binary's open-file limit and cap warning.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use steward_testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const TOKEN: &str = "scrape-token-0123456789";

/// Longest wait for something that must happen; only a broken edge ever reaches it.
const BOUND: Duration = Duration::from_secs(60);

fn token_hash() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
}

/// This process holds both ends of every connection: make room for thousands.
fn raise_fd_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: maximum,
            maximum,
        },
    )
    .expect("raise the test's open-file limit");
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        now >= 8192,
        "the test needs 8192 open files; the hard limit is {now} (ulimit -Hn)"
    );
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// `n` connections that each send half a request line and then nothing, opened 100 at a
/// time; each is watched by a task that ends with what the server sent once it closes.
async fn half_open(addr: &str, n: usize) -> Vec<JoinHandle<Vec<u8>>> {
    let mut watchers = Vec::with_capacity(n);
    for batch in 0..n.div_ceil(100) {
        let opened = futures_util::future::join_all((0..100.min(n - batch * 100)).map(|_| async {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(b"GET /hea").await.expect("half a request line");
            s
        }))
        .await;
        watchers.extend(opened.into_iter().map(|s| tokio::spawn(until_closed(s))));
    }
    watchers
}

/// Everything the server sends until it closes the connection (or resets it).
async fn until_closed(mut s: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn closed_count(watchers: &[JoinHandle<Vec<u8>>]) -> usize {
    watchers.iter().filter(|w| w.is_finished()).count()
}

async fn scrape(app: &TestApp) -> String {
    let resp = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("body")
}

fn samples(text: &str) -> Vec<prometheus_parse::Sample> {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses")
        .samples
}

fn value(text: &str, name: &str, label: Option<(&str, &str)>) -> f64 {
    samples(text)
        .into_iter()
        .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
            _ => f64::NAN,
        })
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// A raw request (`head` without the blank line; `None` sends nothing): the status line and
/// body of the answer, which must be followed by the server closing the connection.
async fn raw(addr: &str, head: Option<&str>) -> (String, Value) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    if let Some(head) = head {
        s.write_all(format!("{head}\r\n\r\n").as_bytes())
            .await
            .expect("send");
    }
    let got = tokio::time::timeout(BOUND, until_closed(s))
        .await
        .unwrap_or_else(|_| panic!("no answer, connection held open: {head:?}"));
    let text = String::from_utf8_lossy(&got).to_string();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn thousands_of_half_open_connections_are_closed_after_the_header_timeout_and_healthz_keeps_answering()
 {
    raise_fd_limit();
    let app = TestApp::spawn_with(|c| {
        c.http_header_timeout = Duration::from_secs(1);
        c.metrics_token_sha256 = Some(token_hash());
    })
    .await;
    let n = 3000;
    let held = half_open(&addr(&app), n).await;
    // The server still answers while they hang.
    let (s, body) = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Every one of them is closed by the server, without an answer to the half request.
    assert!(
        eventually(BOUND.as_secs(), || async { closed_count(&held) == n }).await,
        "{} of {n} half-open connections are still held",
        n - closed_count(&held)
    );
    for w in held {
        assert_eq!(
            w.await.expect("watcher"),
            b"",
            "no answer to half a request"
        );
    }
    let text = scrape(&app).await;
    assert!(
        value(
            &text,
            "steward_http_connections_closed_total",
            Some(("reason", "header_timeout"))
        ) >= n as f64
    );
    assert!(value(&text, "steward_http_connections_open", None) < 10.0);
    let (s, _) = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_get_503_and_are_closed_at_once() {
    raise_fd_limit();
    let cap = 50;
    let app = TestApp::spawn_with(|c| {
        c.max_connections = cap;
        c.http_header_timeout = Duration::from_secs(3600);
        c.metrics_token_sha256 = Some(token_hash());
    })
    .await;
    let n = 1000;
    let mut flood = half_open(&addr(&app), n).await;
    // All but `cap` are closed at once; the first `cap` hold their slots.
    assert!(
        eventually(BOUND.as_secs(), || async {
            closed_count(&flood) >= n - cap
        })
        .await,
        "only {} of {n} connections past the cap of {cap} were closed",
        closed_count(&flood)
    );
    assert_eq!(app.state.connections.open(), cap);
    assert!(app.state.connections.refused() >= (n - cap) as u64);
    // A newcomer is told why before the close, and /healthz cannot get in either.
    let (status, body) = raw(&addr(&app), None).await;
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    assert_eq!(code(&body), "too_many_connections", "{body}");
    assert!(
        !reqwest::get(app.url("/healthz"))
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK),
        "no slot for /healthz while the cap is held"
    );
    // Clients that leave give their slots back: the server answers again.
    flood.retain(|w| !w.is_finished());
    assert_eq!(flood.len(), cap);
    for w in flood.drain(..10) {
        w.abort();
    }
    assert!(
        eventually(BOUND.as_secs(), || async {
            reqwest::get(app.url("/healthz"))
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await,
        "/healthz never answered after slots were freed"
    );
    let text = scrape(&app).await;
    assert!(value(&text, "steward_http_connections_refused_total", None) >= (n - cap) as f64);
    assert_eq!(
        value(&text, "steward_http_connections_max", None),
        cap as f64
    );
    assert!(value(&text, "steward_http_connections_open", None) <= cap as f64);
}

#[tokio::test]
async fn a_declared_ten_gib_body_is_refused_with_413_before_it_is_read() {
    let app = TestApp::spawn().await;
    let a = addr(&app);
    let ten_gib = 10u64 << 30;
    for head in [
        format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: {ten_gib}"
        ),
        format!(
            "POST /api/v1/setup HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: {ten_gib}\r\nExpect: 100-continue"
        ),
        format!(
            "PUT /api/v1/settings HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: {ten_gib}"
        ),
        format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\nContent-Length: {ten_gib}"),
        format!("POST /no/such/route HTTP/1.1\r\nHost: {a}\r\nContent-Length: {ten_gib}"),
        // One byte over the limit is refused the same way.
        format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: {}",
            1024 * 1024 + 1
        ),
    ] {
        let (status, body) = raw(&a, Some(&head)).await;
        assert!(status.starts_with("HTTP/1.1 413"), "{head}: {status}");
        assert_eq!(code(&body), "payload_too_large", "{head}: {body}");
    }
    let (s, _) = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_request_body_that_trickles_in_is_cut_off_after_the_idle_timeout() {
    let app = TestApp::spawn_with(|c| c.http_idle_timeout = Duration::from_secs(1)).await;
    let a = addr(&app);
    let mut s = TcpStream::connect(&a).await.expect("connect");
    // A login body declared at 1,000 bytes, sent one byte every 50 ms: 50 s for the whole.
    s.write_all(
        format!("POST /api/v1/auth/login HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("head");
    let mut sent = 0;
    let mut buf = [0u8; 1024];
    let cut = loop {
        if sent == 1000 {
            break false;
        }
        match tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(_)) => panic!("an answer before the body was complete"),
            Err(_) => {}
        }
        if s.write_all(b" ").await.is_err() {
            break true;
        }
        sent += 1;
    };
    assert!(cut, "the whole trickled body was accepted");
    assert!(sent < 1000);
    let (st, _) = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn kept_alive_connections_outlive_the_header_timeout_then_close_when_idle() {
    // Idle 30 s: a kept-alive connection is not cut by the 1 s header timeout.
    let app = TestApp::spawn_with(|c| c.http_header_timeout = Duration::from_secs(1)).await;
    let a = addr(&app);
    let mut s = TcpStream::connect(&a).await.expect("connect");
    let get = format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n\r\n");
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 {
        s.write_all(get.as_bytes()).await.expect("request");
        let n = tokio::time::timeout(BOUND, s.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // Idle 1 s: after its answer, a connection that sends nothing more is closed.
    let app = TestApp::spawn_with(|c| c.http_idle_timeout = Duration::from_secs(1)).await;
    let a = addr(&app);
    let mut s = TcpStream::connect(&a).await.expect("connect");
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let got = tokio::time::timeout(BOUND, until_closed(s))
        .await
        .expect("an idle kept-alive connection was never closed");
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert_eq!(
        app.state
            .connections
            .closed(steward_api::edge::conn::Stall::Idle),
        1
    );
}

#[tokio::test]
async fn websockets_are_not_cut_by_the_idle_or_header_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.http_header_timeout = Duration::from_secs(1);
        c.http_idle_timeout = Duration::from_secs(1);
    })
    .await;
    let admin = app.admin().await;
    let url = app.url("/api/v1/live").replace("http://", "ws://");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", admin.token).parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");
    // Three idle timeouts without a byte either way.
    tokio::time::sleep(Duration::from_secs(3)).await;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .expect("the socket is still open");
    let pong = tokio::time::timeout(BOUND, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(p))) => return Some(p),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("an answer");
    assert_eq!(pong.as_deref(), Some(&b"still there?"[..]));
    // The client's kept-alive connection (the login) was closed as idle; the WebSocket is the
    // one connection left, and holds its slot until it closes.
    assert!(
        eventually(BOUND.as_secs(), || async {
            app.state.connections.open() == 1
        })
        .await
    );
    assert!(
        app.state
            .connections
            .closed(steward_api::edge::conn::Stall::Idle)
            >= 1
    );
    drop(ws);
    assert!(
        eventually(BOUND.as_secs(), || async {
            app.state.connections.open() == 0
        })
        .await
    );
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metric_labels() {
    let app = TestApp::spawn_with(|c| c.metrics_token_sha256 = Some(token_hash())).await;
    let n = 300;
    let mut made_up = BTreeSet::new();
    for i in 0..n {
        let method = format!("BREW{i:04}");
        let path = if i % 2 == 0 {
            let path = format!("/nope/{i}/{}", uuid::Uuid::new_v4());
            made_up.insert(path.clone());
            path
        } else {
            "/healthz".to_string()
        };
        let resp = app
            .client
            .request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                app.url(&path),
            )
            .send()
            .await
            .expect("request");
        assert!(!resp.status().is_server_error());
        made_up.insert(method);
        let resp = app
            .client
            .get(app.url(&format!("/api/v1/no-such-thing/{i}")))
            .send()
            .await
            .expect("request");
        assert!(!resp.status().is_server_error());
    }
    let text = scrape(&app).await;
    let routes: BTreeSet<String> = steward_api::openapi::openapi()
        .paths
        .paths
        .keys()
        .cloned()
        .chain(["unmatched".to_string()])
        .collect();
    let known = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
    ];
    let series: Vec<_> = samples(&text)
        .into_iter()
        .filter(|s| s.metric.starts_with("steward_http_request"))
        .collect();
    for s in &series {
        let method = s.labels.get("method").unwrap_or_default();
        let route = s.labels.get("route").unwrap_or_default();
        assert!(known.contains(&method), "method label {method:?}");
        assert!(routes.contains(route), "route label {route:?}");
        assert!(!made_up.contains(method) && !made_up.contains(route));
    }
    // Every made-up method was counted, as `other`.
    let other: f64 = series
        .iter()
        .filter(|s| {
            s.metric == "steward_http_requests_total" && s.labels.get("method") == Some("other")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(other >= n as f64, "{other} requests counted as other");
    assert!(!text.contains("BREW0"), "a made-up method reached /metrics");
    assert!(!text.contains("/nope/"), "a made-up path reached /metrics");
}

/// `steward serve` under `prlimit`, with JSON logs: its log lines as they come.
fn serve_limited(
    nofile: &str,
    data: &std::path::Path,
    db_url: &str,
    extra: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<Value>) {
    let prlimit = ["/usr/bin/prlimit", "/bin/prlimit"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("prlimit is missing: install util-linux (apt-get install util-linux)");
    let mut child = Command::new(prlimit)
        .arg(format!("--nofile={nofile}"))
        .arg(env!("CARGO_BIN_EXE_steward"))
        .env_remove("STEWARD_MASTER_KEY")
        .env_remove("RUST_LOG")
        .args(["--log-format", "json", "--data-dir"])
        .arg(data)
        .args(["--database-url", db_url, "serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn steward under prlimit");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Log lines until `message`, which is returned last.
fn logs_until(rx: &std::sync::mpsc::Receiver<Value>, message: &str) -> Vec<Value> {
    let mut logs = Vec::new();
    loop {
        let v = rx
            .recv_timeout(BOUND)
            .unwrap_or_else(|_| panic!("no {message:?} in the log: {logs:?}"));
        let done = v["message"] == message;
        logs.push(v);
        if done {
            return logs;
        }
    }
}

fn stop(mut child: std::process::Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    // Half-open connections do not hold the shutdown up for their header timeout.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(started.elapsed() < BOUND, "steward did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn serve_raises_its_open_file_limit_and_warns_about_the_cap_without_flooding_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let (child, rx) = serve_limited(
        "1024:4096",
        &dir.path().join("data"),
        &db.url,
        &["--max-connections", "20", "--http-header-timeout", "600"],
    );
    let logs = logs_until(&rx, "steward is listening");
    let raised = logs
        .iter()
        .find(|l| l["message"] == "raised the open-file limit to the hard limit")
        .unwrap_or_else(|| panic!("no open-file limit line: {logs:?}"));
    assert_eq!(
        (raised["from"].as_u64(), raised["to"].as_u64()),
        (Some(1024), Some(4096))
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).expect("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"]
    );
    let listening = logs.last().expect("listening");
    assert_eq!(listening["max_connections"], 20);
    let address = listening["address"].as_str().expect("address").to_string();

    // 20 held connections fill the cap; 200 more are refused with a single warning line.
    let flood = half_open(&address, 220).await;
    assert!(
        eventually(BOUND.as_secs(), || async { closed_count(&flood) >= 200 }).await,
        "connections past the cap were not closed"
    );
    drop(flood);
    stop(child);
    let after: Vec<Value> = rx.iter().collect();
    let warnings: Vec<&Value> = after
        .iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("connection limit reached"))
        })
        .collect();
    assert!(
        !warnings.is_empty() && warnings.len() <= 3,
        "one warning per 10 s, not one per refusal: {warnings:?}"
    );
    assert_eq!(warnings[0]["max_connections"], 20);

    // A hard limit too low for the cap: the cap is lowered, and says so.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new(dir.path()).await;
    let (child, rx) = serve_limited("1024:1024", &dir.path().join("data"), &db.url, &[]);
    let logs = logs_until(&rx, "steward is listening");
    let lowered = logs
        .iter()
        .find(|l| l["lowered_to"].is_u64())
        .unwrap_or_else(|| panic!("no warning about the cap: {logs:?}"));
    assert_eq!(lowered["max_connections"], 10_000);
    assert_eq!(lowered["lowered_to"], 1024 - 512 - 256);
    let listening = logs.last().expect("listening");
    assert_eq!(listening["max_connections"], 256);
    let healthz = format!(
        "http://{}/healthz",
        listening["address"].as_str().expect("address")
    );
    assert!(
        eventually(BOUND.as_secs(), || async {
            reqwest::get(&healthz)
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await
    );
    stop(child);
}
