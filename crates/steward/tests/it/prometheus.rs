//! `GET /metrics`: what an existing Prometheus scrapes — parsed with a Prometheus exposition
//! parser — with the metrics token; refused to everyone else by default, loopback and local
//! proxies included, and to relayed requests even when an address allow-list is opted into.

use reqwest::StatusCode;
use steward_testkit::*;

const TOKEN: &str = "scrape-token-0123456789";

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String, Option<String>) {
    scrape_with(app, token, &[]).await
}

/// A scrape carrying extra headers (what a reverse proxy adds).
async fn scrape_with(
    app: &TestApp,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
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
async fn the_token_scrapes_the_process_and_request_metrics() {
    let app = TestApp::spawn_with(|c| c.metrics_token_sha256 = Some(sha256_hex(TOKEN))).await;
    // Some traffic to count.
    let (s, _) = app.call(reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, text, ctype) = scrape(&app, Some(TOKEN)).await;
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

/// Headers with which a proxy on the same host says whom it relays for — or says nothing.
const RELAYED: [&[(&str, &str)]; 4] = [
    &[("x-real-ip", "127.0.0.1")],
    &[("forwarded", "for=127.0.0.1")],
    &[("x-forwarded-for", "127.0.0.1")],
    &[],
];

#[tokio::test]
async fn by_default_nobody_scrapes_not_loopback_nor_through_a_local_proxy() {
    // Nothing configured: the route is off, and says how to turn it on.
    let app = TestApp::spawn().await;
    for headers in RELAYED {
        let (s, body, _) = scrape_with(&app, None, headers).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert!(body.contains("--metrics-token"), "{body}");
        assert!(!body.contains("steward_host_"), "{body}");
    }
    // A token configured: loopback without it is refused, whatever a proxy adds, with or
    // without the proxy trusted.
    for trusted in [false, true] {
        let app = TestApp::spawn_with(|c| {
            c.metrics_token_sha256 = Some(sha256_hex(TOKEN));
            if trusted {
                c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
            }
        })
        .await;
        for headers in RELAYED {
            let (s, body, _) = scrape_with(&app, None, headers).await;
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{headers:?} trusted={trusted}: {body}"
            );
        }
        assert_eq!(scrape(&app, Some(TOKEN)).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn an_opted_in_address_scrapes_without_the_token_but_never_through_a_proxy() {
    // Allowed loopback and no trusted proxy: a direct scrape passes; a request a proxy relayed
    // (it names a client) is not the scraper's own.
    let app =
        TestApp::spawn_with(|c| c.metrics_allow = vec!["127.0.0.1/32".parse().expect("net")]).await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::OK);
    for headers in &RELAYED[..3] {
        let (s, body, _) = scrape_with(&app, None, headers).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
    }
    // Behind a trusted proxy, only X-Forwarded-For names the scraper (right-most untrusted
    // entry); a proxy that does not say, or says it another way, gets nothing.
    let app = TestApp::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
        c.metrics_allow = vec!["10.0.0.0/8".parse().expect("net")];
    })
    .await;
    for (headers, expected) in [
        (&[][..], StatusCode::UNAUTHORIZED),
        (&[("x-real-ip", "10.1.2.3")][..], StatusCode::UNAUTHORIZED),
        (
            &[("forwarded", "for=10.1.2.3")][..],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("x-forwarded-for", "203.0.113.9")][..],
            StatusCode::UNAUTHORIZED,
        ),
        (
            &[("x-forwarded-for", "10.1.2.3, 203.0.113.9")][..],
            StatusCode::UNAUTHORIZED,
        ),
        (&[("x-forwarded-for", "10.1.2.3")][..], StatusCode::OK),
    ] {
        let (s, body, _) = scrape_with(&app, None, headers).await;
        assert_eq!(s, expected, "{headers:?}: {body}");
    }
    // An allowed network that does not cover the scraper: refused, even with a token set.
    let app = TestApp::spawn_with(|c| {
        c.metrics_allow = vec!["10.0.0.0/8".parse().expect("net")];
        c.metrics_token_sha256 = Some(sha256_hex(TOKEN));
    })
    .await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&app, Some(TOKEN)).await.0, StatusCode::OK);
}
