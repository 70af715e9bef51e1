//! `GET /metrics`: what an existing Prometheus scrapes — parsed with a Prometheus exposition
//! parser, refused without the token from an address that is not allowed.
mod common;

use common::*;
use reqwest::StatusCode;

const TOKEN: &str = "scrape-token-0123456789";

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String, Option<String>) {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("scrape");
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    (status, resp.text().await.expect("body"), ctype)
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[tokio::test]
async fn loopback_scrapes_the_process_and_request_metrics() {
    let app = TestApp::spawn().await;
    // Some traffic to count.
    let (s, _) = app.call(reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, text, ctype) = scrape(&app, None).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(
        ctype
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4")
    );
    let scrape = parse(&text);
    let rss = value(&scrape, "process_resident_memory_bytes").expect("rss");
    assert!(
        rss > 1_000_000.0,
        "a real process uses more than 1 MB: {rss}"
    );
    assert!(value(&scrape, "process_cpu_seconds_total").expect("cpu") > 0.0);
    assert!(value(&scrape, "process_open_fds").expect("fds") >= 3.0);
    assert_eq!(value(&scrape, "steward_terminal_sessions"), Some(0.0));
    assert!(value(&scrape, "steward_ssh_connections").is_some());
    // Requests are counted by route template, so ids in paths cannot blow up the label set.
    let healthz = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "steward_http_requests_total"
                && s.labels.get("route") == Some("/healthz")
                && s.labels.get("status") == Some("2xx")
        })
        .expect("the /healthz request is counted");
    assert!(matches!(healthz.value, prometheus_parse::Value::Counter(v) if v >= 1.0));
}

#[tokio::test]
async fn without_the_token_an_address_not_allowed_is_refused() {
    let app = TestApp::spawn_with(|c| {
        c.metrics_allow = Vec::new();
        c.metrics_token_sha256 = Some(sha256_hex(TOKEN));
    })
    .await;
    let (s, body, _) = scrape(&app, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("unauthenticated"), "{body}");
    assert!(!body.contains("process_"), "{body}");
    let (s, _, _) = scrape(&app, Some("wrong-token-wrong-token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, text, _) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    parse(&text);
    assert!(text.contains("process_resident_memory_bytes"));
}

#[tokio::test]
async fn an_allowed_address_does_not_need_the_token() {
    // Allowed network does not cover loopback: even with a token configured, no token → 401.
    let app = TestApp::spawn_with(|c| {
        c.metrics_allow = vec!["10.0.0.0/8".parse().expect("net")];
        c.metrics_token_sha256 = Some(sha256_hex(TOKEN));
    })
    .await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::UNAUTHORIZED);
    let app =
        TestApp::spawn_with(|c| c.metrics_allow = vec!["127.0.0.1/32".parse().expect("net")]).await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::OK);
}
