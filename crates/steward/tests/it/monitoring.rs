//! The read side of monitoring: samples fed through `metrics::record` (as collectors do) come
//! back from the range API, the fleet summary, the live WebSocket and `/metrics`.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_metrics::Point;
use steward_testkit::{Session, TestApp, code};
use tokio_tungstenite::tungstenite::Message;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One real snapshot of this machine, read by the agentless script under `sh`.
fn snapshot() -> steward_metrics::snapshot::RawSnapshot {
    let out = std::process::Command::new("sh")
        .args(["-c", steward_metrics::AGENTLESS_SCRIPT])
        .output()
        .expect("sh runs the agentless script");
    let text = String::from_utf8_lossy(&out.stdout);
    steward_metrics::parse_agentless(&text, now_ms()).expect("the script's output parses")
}

fn pt(name: &'static str, label: &str, value: f64) -> Point {
    Point {
        name,
        label: label.into(),
        value,
    }
}

async fn record(app: &TestApp, id: &str, ts: i64, points: &[Point]) {
    steward_services::metrics::record(&app.state, id, ts, points)
        .await
        .expect("record");
}

/// An admin, a server tagged `a` and one tagged `b`, and a viewer of tag `a` only.
async fn fleet(app: &TestApp) -> (Session, String, String, Session) {
    let admin = app.admin().await;
    let a = admin.server("alpha", &["a", "web"]).await;
    let b = admin.server("bravo", &["b"]).await;
    let (status, body) = admin
        .post(
            "/api/v1/roles",
            json!({ "name": "a-viewer", "permissions": ["servers.read"], "server_tags": ["a"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let viewer = app.user_with_roles(&admin, "viewer-a", &["a-viewer"]).await;
    (admin, a, b, viewer)
}

fn item<'a>(summary: &'a Value, id: &str) -> Option<&'a Value> {
    summary["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id)
}

#[tokio::test]
async fn real_snapshots_recorded_come_back_from_the_range_query() {
    let app = TestApp::spawn().await;
    let (admin, a, b, viewer) = fleet(&app).await;
    let first = snapshot();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = snapshot();
    let p1 = steward_metrics::derive(None, &first);
    let p2 = steward_metrics::derive(Some(&first), &second);
    assert!(
        p2.iter().any(|p| p.name == "cpu.usage"),
        "rates from two snapshots"
    );
    record(&app, &a, first.ts_ms, &p1).await;
    record(&app, &a, second.ts_ms, &p2).await;

    let (status, body) = viewer
        .get(&format!(
            "/api/v1/servers/{a}/metrics?names=cpu.usage,mem.used_pct,disk.*&step=1"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series = body["series"].as_array().expect("series");
    let find = |name: &str| {
        series
            .iter()
            .find(|s| s["name"] == name && (s["label"] == "" || name.starts_with("disk")))
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    let mem = find("mem.used_pct");
    assert_eq!(mem["unit"], "percent");
    let mem_values: Vec<f64> = [&p1, &p2]
        .iter()
        .filter_map(|ps| {
            ps.iter()
                .find(|p| p.name == "mem.used_pct")
                .map(|p| p.value)
        })
        .collect();
    let points = mem["points"].as_array().expect("points");
    assert!(!points.is_empty());
    let lo = points
        .iter()
        .map(|p| p["min"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    let hi = points
        .iter()
        .map(|p| p["max"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let want_lo = mem_values.iter().copied().fold(f64::MAX, f64::min);
    let want_hi = mem_values.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(
        (lo, hi),
        (want_lo, want_hi),
        "the stored values come back exactly"
    );
    let cpu = find("cpu.usage");
    let cpu_now = p2
        .iter()
        .find(|p| p.name == "cpu.usage" && p.label.is_empty())
        .unwrap()
        .value;
    assert!(
        cpu["points"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["max"].as_f64() == Some(cpu_now))
    );
    assert_eq!(find("disk.used_pct")["unit"], "percent");
    assert_eq!(body["tier"], "raw");

    // RFC 3339 and millisecond bounds; an empty range before the samples.
    let (status, body) = admin
        .get(&format!(
            "/api/v1/servers/{a}/metrics?names=mem.used_pct&from=2020-01-01T00:00:00Z&to=1577840400000"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["series"][0]["points"]
            .as_array()
            .is_none_or(|p| p.is_empty())
    );

    // Unknown names, bad times, invisible servers.
    let (status, body) = admin
        .get(&format!("/api/v1/servers/{a}/metrics?names=cpu.bogus"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(code(&body), "validation_failed");
    let (status, _) = admin.get(&format!("/api/v1/servers/{a}/metrics")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = admin
        .get(&format!(
            "/api/v1/servers/{a}/metrics?names=cpu.usage&from=yesterday"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = viewer
        .get(&format!("/api/v1/servers/{b}/metrics?names=cpu.usage"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a server the caller cannot see"
    );
}

#[tokio::test]
async fn the_summary_lists_visible_servers_with_status_transitions() {
    let app = TestApp::spawn().await;
    let (admin, a, b, viewer) = fleet(&app).await;

    let (status, body) = admin.get("/api/v1/metrics/summary").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, &a).expect("alpha")["status"], "unknown");
    assert_eq!(item(&body, &a).unwrap()["last_sample_at"], Value::Null);

    // A sample 29 s old: online for about a second more (interval 10 s → 30 s window).
    let ts = now_ms() - 29_000;
    let points = [
        pt("cpu.usage", "", 12.5),
        pt("load.1", "", 0.5),
        pt("mem.used_pct", "", 40.0),
        pt("disk.used_pct", "/", 50.0),
        pt("disk.used_pct", "/var", 80.0),
        pt("net.rx_bytes", "eth0", 1000.0),
        pt("net.rx_bytes", "eth1", 24.0),
        pt("net.tx_bytes", "eth0", 10.0),
    ];
    record(&app, &a, ts, &points).await;
    record(&app, &b, now_ms(), &[pt("cpu.usage", "", 99.0)]).await;
    let (_, body) = admin.get("/api/v1/metrics/summary").await;
    assert_eq!(
        item(&body, &a).expect("alpha").get("sparkline"),
        None,
        "sparklines only when asked: {body}"
    );
    let (_, body) = admin.get("/api/v1/metrics/summary?sparklines=true").await;
    let alpha = item(&body, &a).expect("alpha");
    assert_eq!(alpha["status"], "online", "{alpha}");
    assert_eq!(alpha["cpu_pct"], 12.5);
    assert_eq!(alpha["load1"], 0.5);
    assert_eq!(alpha["mem_used_pct"], 40.0);
    assert_eq!(alpha["disk_used_pct"], 80.0);
    assert_eq!(alpha["disk_mount"], "/var");
    assert_eq!(alpha["net_rx_bps"], 1024.0);
    assert_eq!(alpha["net_tx_bps"], 10.0);
    assert_eq!(alpha["sparkline"], json!([12.5]));
    assert_eq!(alpha["tags"], json!(["a", "web"]));
    assert!(item(&body, &b).is_some(), "the admin sees every server");

    let (_, body) = viewer.get("/api/v1/metrics/summary").await;
    assert!(item(&body, &a).is_some());
    assert!(
        item(&body, &b).is_none(),
        "a tag-a viewer never sees bravo: {body}"
    );
    assert_eq!(body["items"].as_array().unwrap().len(), 1);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, body) = admin.get("/api/v1/metrics/summary").await;
    assert_eq!(item(&body, &a).unwrap()["status"], "offline");
    assert_eq!(item(&body, &b).unwrap()["status"], "online");

    // A full disk makes an online server degraded.
    record(&app, &a, now_ms(), &[pt("disk.used_pct", "/", 96.0)]).await;
    let (_, body) = admin.get("/api/v1/metrics/summary?sparklines=true").await;
    assert_eq!(item(&body, &a).unwrap()["status"], "degraded");
    assert_eq!(
        item(&body, &a).unwrap()["sparkline"],
        json!([12.5]),
        "no cpu, no new spark"
    );

    // So does a health check of the server that is down (a TCP port nobody listens on; on
    // loopback, which checks may reach only once allowed).
    admin.allow_check_targets(&["127.0.0.0/8"]).await;
    let closed = steward_testkit::sshd::closed_port();
    let (status, check) = admin
        .post(
            "/api/v1/checks",
            json!({ "name": "port", "server_id": b, "spec": { "type": "tcp", "host": "127.0.0.1", "port": closed } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{check}");
    let (status, ran) = admin
        .post(
            &format!("/api/v1/checks/{}/run", check["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    record(&app, &b, now_ms(), &[pt("cpu.usage", "", 1.0)]).await;
    let (_, body) = admin.get("/api/v1/metrics/summary").await;
    let bravo = item(&body, &b).unwrap();
    assert_eq!(bravo["checks_down"], 1, "{bravo}");
    assert_eq!(bravo["status"], "degraded", "{bravo}");
}

/// An upgrade request to `/api/v1/live` as `session`.
fn live_request(
    app: &TestApp,
    session: &Session,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = app.url("/api/v1/live").replace("http://", "ws://");
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", session.token).parse().unwrap(),
    );
    req
}

/// A WebSocket to `/api/v1/live` as `session`.
async fn live(
    app: &TestApp,
    session: &Session,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let (ws, _) = tokio_tungstenite::connect_async(live_request(app, session))
        .await
        .expect("upgrade");
    ws
}

async fn next_json<S>(ws: &mut S, within: Duration) -> Option<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn live_updates_are_batched_and_never_show_invisible_servers() {
    let app = TestApp::spawn().await;
    let (admin, a, b, viewer) = fleet(&app).await;

    // The viewer asks for both by id, and another connection for the whole fleet.
    let mut by_id = live(&app, &viewer).await;
    by_id
        .send(Message::text(
            json!({"type":"subscribe","servers":[a, b]}).to_string(),
        ))
        .await
        .unwrap();
    let mut whole = live(&app, &viewer).await;
    whole
        .send(Message::text(
            json!({"type":"subscribe","fleet":true}).to_string(),
        ))
        .await
        .unwrap();
    let mut admin_ws = live(&app, &admin).await;
    admin_ws
        .send(Message::text(
            json!({"type":"subscribe","fleet":true}).to_string(),
        ))
        .await
        .unwrap();
    for ws in [&mut by_id, &mut whole, &mut admin_ws] {
        let snap = next_json(ws, Duration::from_secs(2))
            .await
            .expect("snapshot");
        assert_eq!(snap["type"], "snapshot", "{snap}");
    }

    // Bad messages get an error and the connection stays.
    by_id
        .send(Message::text("{\"type\":\"nope\"}"))
        .await
        .unwrap();
    let err = next_json(&mut by_id, Duration::from_secs(2))
        .await
        .expect("error");
    assert_eq!(err["type"], "error");

    // Samples every 20 ms for 2.5 s, on both servers.
    let started = Instant::now();
    let feeder = {
        let state = app.state.clone();
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let mut i = 0.0;
            while started.elapsed() < Duration::from_millis(2500) {
                let ts = now_ms();
                for id in [&a, &b] {
                    steward_services::metrics::record(&state, id, ts, &[pt("cpu.usage", "", i)])
                        .await
                        .unwrap();
                }
                i += 1.0;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut first_update = None;
    let mut frames: Vec<(Duration, Value)> = Vec::new();
    let mut fleet_frames = Vec::new();
    let mut admin_saw_b = false;
    let deadline = Instant::now() + Duration::from_millis(3000);
    while Instant::now() < deadline {
        tokio::select! {
            Some(Ok(Message::Text(t))) = by_id.next() => {
                let v: Value = serde_json::from_str(&t).unwrap();
                first_update.get_or_insert(started.elapsed());
                frames.push((started.elapsed(), v));
            }
            Some(Ok(Message::Text(t))) = whole.next() => {
                fleet_frames.push(serde_json::from_str::<Value>(&t).unwrap());
            }
            Some(Ok(Message::Text(t))) = admin_ws.next() => {
                admin_saw_b |= t.contains(&b);
            }
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    feeder.await.unwrap();
    assert!(first_update.expect("updates arrived") < Duration::from_secs(1));
    assert!(admin_saw_b, "the admin's fleet subscription carries bravo");
    for (_, f) in &frames {
        assert_eq!(f["type"], "update");
        assert!(
            !f.to_string().contains(&b),
            "bravo leaked to the viewer: {f}"
        );
        // Subscribed by id: every value of the last sample.
        assert!(f["servers"][0]["points"].is_array(), "{f}");
    }
    for f in &fleet_frames {
        assert!(
            !f.to_string().contains(&b),
            "bravo leaked to the viewer's fleet: {f}"
        );
        assert!(
            f["servers"][0].get("points").is_none(),
            "fleet updates stay small"
        );
    }
    assert!(!fleet_frames.is_empty());
    // At most four frames a second: the hub sends on a 250 ms tick, so any five frames span
    // at least a second when sent (900 ms here, for scheduling jitter on arrival).
    for w in frames.windows(5) {
        let span = w[4].0 - w[0].0;
        assert!(
            span >= Duration::from_millis(900),
            "five frames within {span:?}"
        );
    }
    assert!(frames.len() >= 6, "updates kept coming: {}", frames.len());
    // Coalesced: the last frame carries the newest value.
    let last = &frames.last().unwrap().1["servers"][0]["cpu_pct"];
    assert!(last.as_f64().unwrap() > 50.0, "{last}");
}

/// Another site's page cannot open the live view with the user's cookies: the same origin
/// check, and error code, as terminals and run streams.
#[tokio::test]
async fn a_cross_site_live_connection_is_refused() {
    let app = TestApp::spawn().await;
    let (admin, _, _, _) = fleet(&app).await;
    let request = |origin: &str| {
        let mut req = live_request(&app, &admin);
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    match tokio_tungstenite::connect_async(request("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 403);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(code(&body), "cross_origin", "{body}");
        }
        other => panic!("cross-site live connection not refused: {other:?}"),
    }
    let host = app.base.trim_start_matches("http://").to_string();
    let (mut ws, _) = tokio_tungstenite::connect_async(request(&format!("http://{host}")))
        .await
        .expect("same origin accepted");
    ws.send(Message::text(
        json!({"type":"subscribe","fleet":true}).to_string(),
    ))
    .await
    .unwrap();
    assert!(next_json(&mut ws, Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_others_keep_receiving() {
    let app = TestApp::spawn().await;
    let (admin, a, _, _) = fleet(&app).await;

    // The slow client: a tiny receive window and it never reads.
    let req = live_request(&app, &admin);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("upgrade");
    slow.send(Message::text(
        json!({"type":"subscribe","servers":[a]}).to_string(),
    ))
    .await
    .unwrap();
    let mut fast = live(&app, &admin).await;
    fast.send(Message::text(
        json!({"type":"subscribe","servers":[a]}).to_string(),
    ))
    .await
    .unwrap();

    // Big samples (1,000 series with long labels) so frames are large.
    let pad = "x".repeat(200);
    let labels: Vec<String> = (0..1000).map(|i| format!("eth{i}-{pad}")).collect();
    let started = Instant::now();
    let mut received_after_kick = 0;
    let mut kicked_at = None;
    let mut v = 0.0;
    while started.elapsed() < Duration::from_secs(60) {
        let points: Vec<Point> = labels.iter().map(|l| pt("net.rx_bytes", l, v)).collect();
        record(&app, &a, now_ms(), &points).await;
        v += 1.0;
        // The fast client reads everything there is.
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_millis(20), fast.next()).await
        {
            if matches!(msg, Message::Text(_)) && kicked_at.is_some() {
                received_after_kick += 1;
            }
        }
        if kicked_at.is_none() && app.state.live.kicked_total() > 0 {
            kicked_at = Some(started.elapsed());
        }
        if received_after_kick >= 3 {
            break;
        }
    }
    assert!(
        kicked_at.is_some(),
        "the client that never reads was dropped"
    );
    assert!(
        received_after_kick >= 3,
        "the reading client kept receiving"
    );
    assert_eq!(
        app.state.live.clients(),
        1,
        "only the reading client is left"
    );
    // What the slow client still has buffered ends: its connection was closed.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match slow.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the slow connection was closed");
}

#[tokio::test]
async fn prometheus_exposes_the_fleet_with_server_and_tag_labels() {
    use sha2::Digest;
    const SCRAPE_TOKEN: &str = "scrape-token-0123456789";
    let app = TestApp::spawn_with(|c| {
        c.metrics_token_sha256 = Some(hex::encode(sha2::Sha256::digest(SCRAPE_TOKEN)));
    })
    .await;
    let (admin, a, b, _) = fleet(&app).await;
    let silent = admin.server("charlie", &["c"]).await;
    record(
        &app,
        &a,
        now_ms(),
        &[
            pt("cpu.usage", "", 33.0),
            pt("mem.used_pct", "", 44.0),
            pt("load.1", "", 1.5),
            pt("disk.used_pct", "/", 55.0),
            pt("net.rx_bytes", "eth0", 2048.0),
        ],
    )
    .await;
    record(&app, &b, now_ms() - 120_000, &[pt("cpu.usage", "", 1.0)]).await;
    // The live view loads names and tags on its next refresh.
    let (status, _) = admin.get("/api/v1/metrics/summary").await;
    assert_eq!(status, StatusCode::OK);
    let text = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(SCRAPE_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses");
    let sample = |name: &str, id: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get("server_id") == Some(id))
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => (v, s.labels.clone()),
                _ => panic!("{name} is a gauge"),
            })
    };
    let (cpu, labels) = sample("steward_host_cpu_usage_percent", &a).expect("alpha's cpu");
    assert_eq!(cpu, 33.0);
    assert_eq!(labels.get("server"), Some("alpha"));
    // prometheus-parse splits labels at every comma, so the tags are checked on the text.
    let line = text
        .lines()
        .find(|l| l.starts_with("steward_host_cpu_usage_percent{") && l.contains(&a))
        .expect("alpha's line");
    assert!(line.contains(r#"tags="a,web""#), "{line}");
    assert_eq!(
        sample("steward_host_memory_used_percent", &a).unwrap().0,
        44.0
    );
    assert_eq!(sample("steward_host_load1", &a).unwrap().0, 1.5);
    let (disk, labels) = sample("steward_host_disk_used_percent", &a).unwrap();
    assert_eq!((disk, labels.get("mount")), (55.0, Some("/")));
    let (rx, labels) = sample("steward_host_network_receive_bytes_per_second", &a).unwrap();
    assert_eq!((rx, labels.get("interface")), (2048.0, Some("eth0")));
    assert_eq!(sample("steward_host_up", &a).unwrap().0, 1.0);
    assert_eq!(
        sample("steward_host_up", &b).unwrap().0,
        0.0,
        "bravo is offline"
    );
    assert!(
        sample("steward_host_cpu_usage_percent", &b).is_none(),
        "no stale values"
    );
    assert!(
        sample("steward_host_up", &silent).is_none(),
        "never sampled: not exported"
    );
}

#[tokio::test]
async fn disk_use_is_reported_per_visible_server() {
    let app = TestApp::spawn().await;
    let (admin, a, b, viewer) = fleet(&app).await;
    // 800 samples seal a chunk (720) that a flush stores.
    let t0 = now_ms() - 800_000;
    for i in 0..800 {
        for id in [&a, &b] {
            record(
                &app,
                id,
                t0 + i * 1000,
                &[pt("mem.used_pct", "", (i % 50) as f64)],
            )
            .await;
        }
    }
    app.state.metrics.flush().await.expect("flush");
    let (status, body) = admin.get("/api/v1/metrics/disk-usage").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    assert!(items.iter().all(|i| i["bytes"].as_i64().unwrap() > 0 && i["bytes_per_day"].as_f64().unwrap() > 0.0));
    let (_, body) = viewer.get("/api/v1/metrics/disk-usage").await;
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["server_name"], "alpha");
}

#[tokio::test]
async fn a_server_retagged_out_of_sight_is_removed_from_live_views() {
    let app = TestApp::spawn().await;
    let (admin, a, _, viewer) = fleet(&app).await;
    record(&app, &a, now_ms(), &[pt("cpu.usage", "", 5.0)]).await;
    let mut ws = live(&app, &viewer).await;
    ws.send(Message::text(
        json!({"type":"subscribe","fleet":true}).to_string(),
    ))
    .await
    .unwrap();
    let snap = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("snapshot");
    assert_eq!(snap["servers"][0]["id"], a.as_str(), "{snap}");

    // Alpha moves to tag b: the viewer is told it is gone, and hears nothing more of it.
    let (status, body) = admin
        .put(
            &format!("/api/v1/servers/{a}"),
            json!({ "name": "alpha", "host": "127.0.0.2", "ssh_user": "steward", "tags": ["b"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gone = next_json(&mut ws, Duration::from_secs(3))
        .await
        .expect("an update");
    assert_eq!(gone["type"], "update", "{gone}");
    assert_eq!(gone["removed"], json!([a]), "{gone}");
    assert_eq!(gone["servers"], json!([]), "{gone}");
    record(&app, &a, now_ms(), &[pt("cpu.usage", "", 6.0)]).await;
    assert!(
        next_json(&mut ws, Duration::from_millis(1500))
            .await
            .is_none(),
        "nothing about a server out of sight"
    );

    // Back to tag a: it comes back in an update.
    let (status, _) = admin
        .put(
            &format!("/api/v1/servers/{a}"),
            json!({ "name": "alpha", "host": "127.0.0.2", "ssh_user": "steward", "tags": ["a"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let back = next_json(&mut ws, Duration::from_secs(3))
        .await
        .expect("an update");
    assert_eq!(back["servers"][0]["id"], a.as_str(), "{back}");
    assert_eq!(back["servers"][0]["cpu_pct"], 6.0, "{back}");
}

#[tokio::test]
async fn live_connections_follow_role_changes_and_end_with_the_session() {
    let app = TestApp::spawn_with(|c| c.live_recheck = Duration::from_millis(500)).await;
    let (admin, a, b, viewer) = fleet(&app).await;
    let mut ws = live(&app, &viewer).await;
    ws.send(Message::text(
        json!({"type":"subscribe","fleet":true}).to_string(),
    ))
    .await
    .unwrap();
    let snap = next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("snapshot");
    assert_eq!(snap["servers"].as_array().unwrap().len(), 1, "{snap}");
    assert_eq!(snap["servers"][0]["id"], a.as_str());

    // The role now covers tag b instead: a fresh snapshot with bravo only.
    let role = id_named(&admin, "/api/v1/roles", "name", "a-viewer").await;
    let (status, body) = admin
        .put(
            &format!("/api/v1/roles/{role}"),
            json!({ "name": "a-viewer", "permissions": ["servers.read"], "server_tags": ["b"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let snap = loop {
        let m = next_json(&mut ws, Duration::from_secs(3))
            .await
            .expect("a new snapshot");
        if m["type"] == "snapshot" {
            break m;
        }
    };
    let ids: Vec<&str> = snap["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b.as_str()], "{snap}");

    // Logging out ends the session, and the socket with it.
    let (status, _) = viewer
        .call(reqwest::Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        close_reason(&mut ws).await.as_deref(),
        Some("session ended")
    );
}

/// The id of the item of a list (`GET path`, a page or a plain array) whose `field` is `value`.
async fn id_named(session: &Session, path: &str, field: &str, value: &str) -> String {
    let (_, list) = session.get(path).await;
    list["items"]
        .as_array()
        .or(list.as_array())
        .expect("a list")
        .iter()
        .find(|i| i[field] == value)
        .unwrap_or_else(|| panic!("no {field} {value} in {path}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The next close reason of a live socket (`None`: closed without one), within 3 s.
async fn close_reason<S>(ws: &mut S) -> Option<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return Some(frame.reason.to_string()),
                None | Some(Err(_)) | Some(Ok(Message::Close(None))) => return None,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the socket closes")
}

/// An administrator who requires 2FA of a user without it ends their live sockets, as their
/// next request would be refused. (A password reset revokes the sessions themselves.)
#[tokio::test]
async fn live_connections_end_when_2fa_becomes_required() {
    let app = TestApp::spawn_with(|c| c.live_recheck = Duration::from_millis(300)).await;
    let (admin, _a, _b, viewer) = fleet(&app).await;
    let viewer_id = id_named(&admin, "/api/v1/users", "username", "viewer-a").await;
    let mut ws = live(&app, &viewer).await;
    ws.send(Message::text(
        json!({"type":"subscribe","fleet":true}).to_string(),
    ))
    .await
    .unwrap();
    next_json(&mut ws, Duration::from_secs(2))
        .await
        .expect("snapshot");
    // The admin's own socket is not affected by anything done to the viewer.
    let mut admin_ws = live(&app, &admin).await;
    let (s, b) = admin
        .patch(
            &format!("/api/v1/users/{viewer_id}"),
            json!({ "require_totp": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        close_reason(&mut ws).await.as_deref(),
        Some("session ended")
    );
    let (s, b) = viewer.get("/api/v1/servers").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "totp_setup_required")
    );
    admin_ws
        .send(Message::text(
            json!({"type":"subscribe","fleet":true}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut admin_ws, Duration::from_secs(2))
            .await
            .expect("the admin's socket still works")["type"],
        "snapshot"
    );
}

/// A live socket of our own codec as `session`, offering permessage-deflate when `deflate`
/// (as every browser does).
async fn live_deflate(
    app: &TestApp,
    session: &Session,
    deflate: bool,
) -> steward_api::ws_deflate::Socket<tokio::net::TcpStream> {
    let url = app.url("/api/v1/live").replace("http://", "ws://");
    let bearer = format!("Bearer {}", session.token);
    steward_api::ws_deflate::connect(&url, &[("Authorization", &bearer)], deflate, 1 << 22)
        .await
        .expect("upgrade")
}

/// The next message, its JSON and its size on the wire.
async fn next_wire(
    ws: &mut steward_api::ws_deflate::Socket<tokio::net::TcpStream>,
) -> (Value, usize) {
    use steward_api::ws_deflate::{Incoming, inflate};
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.recv_encoded())
            .await
            .expect("a message within 5 s")
            .expect("connection open")
            .expect("valid frames");
        match msg {
            Incoming::Deflated { text: true, data } => {
                let json = inflate(&data, 1 << 22).expect("inflates");
                return (serde_json::from_slice(&json).unwrap(), data.len());
            }
            Incoming::Text(t) => return (serde_json::from_str(&t).unwrap(), t.len()),
            _ => {}
        }
    }
}

/// The next update with `n` servers, and its bytes on the wire: samples recorded across a
/// tick boundary come in two updates, which are merged.
async fn update_of(
    ws: &mut steward_api::ws_deflate::Socket<tokio::net::TcpStream>,
    n: usize,
) -> (Value, usize) {
    let (mut update, mut bytes) = next_wire(ws).await;
    while update["servers"].as_array().unwrap().len() < n {
        let (more, more_bytes) = next_wire(ws).await;
        let more = more["servers"].as_array().unwrap().clone();
        update["servers"].as_array_mut().unwrap().extend(more);
        bytes += more_bytes;
    }
    (update, bytes)
}

/// Without the batch's time, which differs between two connections' snapshots.
fn servers_of(msg: &Value) -> Value {
    msg["servers"].clone()
}

#[tokio::test]
async fn clients_offering_permessage_deflate_get_the_same_frames_compressed() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(admin.server(&format!("web-{i:02}"), &["web"]).await);
    }
    let s = snapshot();
    let points = steward_metrics::derive(None, &s);
    let t0 = now_ms();
    for id in &ids {
        record(&app, id, t0, &points).await;
    }

    let mut plain = live_deflate(&app, &admin, false).await;
    assert!(!plain.deflate(), "not offered, not used");
    let mut zipped = live_deflate(&app, &admin, true).await;
    assert!(zipped.deflate(), "the server agrees to permessage-deflate");
    let subscribe = json!({"type":"subscribe","fleet":true}).to_string();
    plain.send_text(&subscribe).await.unwrap();
    // Sent compressed, as a browser sends it once the extension is agreed.
    zipped.send_text(&subscribe).await.unwrap();

    let (snap_plain, _) = next_wire(&mut plain).await;
    let (snap_zipped, _) = next_wire(&mut zipped).await;
    assert_eq!(snap_plain["type"], "snapshot");
    assert_eq!(snap_zipped["type"], "snapshot");
    assert_eq!(servers_of(&snap_plain), servers_of(&snap_zipped));
    assert_eq!(snap_zipped["servers"].as_array().unwrap().len(), 30);

    // One sample for every server: one update each, the same content, a fraction of the bytes.
    let t1 = now_ms();
    for id in &ids {
        record(&app, id, t1, &points).await;
    }
    let (up_plain, plain_bytes) = update_of(&mut plain, 30).await;
    let (up_zipped, zipped_bytes) = update_of(&mut zipped, 30).await;
    assert_eq!(up_plain["type"], "update");
    assert_eq!(servers_of(&up_plain), servers_of(&up_zipped));
    assert!(
        zipped_bytes * 3 < plain_bytes,
        "update of 30 servers: {zipped_bytes} bytes compressed vs {plain_bytes} plain"
    );

    // A compressed message that is not a subscription is answered like a plain one.
    zipped.send_text("{\"type\":\"nonsense\"}").await.unwrap();
    loop {
        let (msg, _) = next_wire(&mut zipped).await;
        if msg["type"] == "error" {
            assert_eq!(msg["code"], "invalid_message");
            break;
        }
    }
}

/// One user cannot hold more live sockets than `--max-sockets-per-user`; closing one frees its
/// place, and other users are not affected.
#[tokio::test]
async fn one_users_live_sockets_are_capped() {
    let app = TestApp::spawn_with(|c| c.max_sockets_per_user = 3).await;
    let (admin, _a, _b, viewer) = fleet(&app).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(live(&app, &viewer).await);
    }
    match tokio_tungstenite::connect_async(live_request(&app, &viewer)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            let body: Value =
                serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(code(&body), "too_many_sockets", "{body}");
        }
        other => panic!("a fourth socket was not refused: {:?}", other.map(|_| ())),
    }
    // Another user still gets theirs.
    let _admins = live(&app, &admin).await;
    // Closing one gives its place back.
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    drop(first);
    assert!(
        steward_testkit::eventually(5, || async {
            tokio_tungstenite::connect_async(live_request(&app, &viewer))
                .await
                .is_ok()
        })
        .await,
        "a closed socket's place comes back"
    );
}
