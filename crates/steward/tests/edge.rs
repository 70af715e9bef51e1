//! The HTTP edge under attack, each test the attack and its refusal: made-up methods and paths
//! that would grow `/metrics`.
mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::{Method, StatusCode};

const TOKEN: &str = "scrape-token-0123456789";

fn token_hash() -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(TOKEN.as_bytes()))
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
