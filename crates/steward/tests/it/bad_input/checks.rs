//! Health-check definitions and queries: nothing is stored on refused input.
use super::*;

#[tokio::test]
async fn check_definitions_and_queries_are_validated_and_nothing_is_stored() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let tcp = json!({ "type": "tcp", "host": "10.0.0.1", "port": 22 });
    let http = |extra: Value| {
        let mut spec = json!({ "type": "http", "url": "https://example.com/health" });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let dns = |extra: Value| {
        let mut spec = json!({ "type": "dns", "name": "example.com" });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for name in bad_names() {
        cases.push((json!({ "name": name, "spec": tcp }), "name"));
    }
    for (interval, timeout, field) in [
        (json!(0), json!(null), "interval_secs"),
        (json!(9), json!(null), "interval_secs"),
        (json!(86_401), json!(null), "interval_secs"),
        (json!(60), json!(0), "timeout_secs"),
        (json!(60), json!(61), "timeout_secs"),
        (json!(10), json!(10), "timeout_secs"),
    ] {
        cases.push((
            json!({ "name": "c", "interval_secs": interval, "timeout_secs": timeout, "spec": tcp }),
            field,
        ));
    }
    let mut spec = |s: Value, field: &'static str| {
        cases.push((json!({ "name": "c", "spec": s }), field));
    };
    for host in [
        "",
        "bad host",
        "a..b",
        "-x.example.com",
        "'; DROP TABLE checks; --",
        "\u{0}",
    ] {
        spec(
            json!({ "type": "tcp", "host": host, "port": 22 }),
            "spec.host",
        );
    }
    spec(
        json!({ "type": "tcp", "host": "10.0.0.1", "port": 0 }),
        "spec.port",
    );
    for url in [
        "",
        "example.com",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:secret@example.com/",
        "http://",
        "http://exa mple.com/",
        "http://example.com/\u{7}",
    ] {
        spec(http(json!({ "url": url })), "spec.url");
    }
    spec(
        http(json!({ "url": format!("https://example.com/{}", chars(2100)) })),
        "spec.url",
    );
    for status in [
        "", "2xx", "200-", "299-200", "600", "0", "200;300", "200,,300",
    ] {
        spec(
            http(json!({ "expected_status": status })),
            "spec.expected_status",
        );
    }
    spec(http(json!({ "keyword": "" })), "spec.keyword");
    spec(http(json!({ "keyword": chars(201) })), "spec.keyword");
    spec(http(json!({ "keyword": "a\u{0}b" })), "spec.keyword");
    spec(
        http(json!({ "keyword": "ok", "method": "HEAD" })),
        "spec.keyword",
    );
    spec(
        http(json!({ "keyword_absent": true })),
        "spec.keyword_absent",
    );
    spec(
        http(json!({ "max_response_ms": 0 })),
        "spec.max_response_ms",
    );
    spec(
        http(json!({ "cert_warn_days": 366 })),
        "spec.cert_warn_days",
    );
    for name in [
        "",
        "bad name",
        "a..b",
        ".",
        "%",
        "'; DROP TABLE checks; --",
        &chars(254),
    ] {
        spec(dns(json!({ "name": name })), "spec.name");
    }
    for resolver in [
        "dns.example.com",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "1.2.3",
        "",
    ] {
        spec(dns(json!({ "resolver": resolver })), "spec.resolver");
    }
    spec(dns(json!({ "expected": "" })), "spec.expected");
    // Addresses checks may not reach by default (the hub itself, link-local metadata).
    for url in [
        "http://127.0.0.1:8080/metrics",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
    ] {
        spec(http(json!({ "url": url })), "spec.url");
    }
    for host in ["127.0.0.1", "::ffff:127.0.0.1", "fe80::1"] {
        spec(
            json!({ "type": "tcp", "host": host, "port": 22 }),
            "spec.host",
        );
    }
    spec(dns(json!({ "resolver": "127.0.0.53" })), "spec.resolver");
    spec(dns(json!({ "expected": chars(501) })), "spec.expected");
    for (body, field) in &cases {
        p.invalid(
            &format!("POST /checks with {}", short(&body.to_string())),
            admin.post("/api/v1/checks", body.clone()).await,
            field,
        );
        p.invalid(
            &format!("PUT /checks/… with {}", short(&body.to_string())),
            admin
                .put(&format!("/api/v1/checks/{}", w.check), body.clone())
                .await,
            field,
        );
    }
    // A server that does not exist (or is not a server id at all).
    for id in [
        uuid::Uuid::now_v7().to_string(),
        "web-1".into(),
        "'; --".into(),
    ] {
        p.error(
            &format!("POST /checks for server {id}"),
            admin
                .post(
                    "/api/v1/checks",
                    json!({ "name": "c", "server_id": id, "spec": tcp }),
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    for q in [
        "status=unknown",
        "status=UP",
        "status=",
        "server_id=web-1",
        "server_id=%27%3B%20--",
        "bogus=1",
        "q=%00",
        "q=a&q=b",
    ] {
        p.invalid_query(
            &format!("GET /checks?{q}"),
            admin.get(&format!("/api/v1/checks?{q}")).await,
        );
    }
    for q in [
        "hours=0",
        "hours=721",
        "hours=-1",
        "hours=abc",
        "hours=1.5",
        "limit=5",
    ] {
        p.invalid_query(
            &format!("GET /checks/…/results?{q}"),
            admin
                .get(&format!("/api/v1/checks/{}/results?{q}", w.check))
                .await,
        );
    }
    // Text with SQL meta-characters is a literal search.
    for q in SQL_META {
        let got = admin.get(&format!("/api/v1/checks?q={}", enc(q))).await;
        let body = p.ok(&format!("GET /checks?q={q}"), got, StatusCode::OK);
        p.check(
            &format!("GET /checks?q={q} matches nothing"),
            body == json!([]),
            || body.to_string(),
        );
    }
    let got = admin
        .get(&format!("/api/v1/checks?q={}", enc(UNDERSCORE)))
        .await;
    let body = p.ok("GET /checks?q=_", got, StatusCode::OK);
    p.check("`_` is not a wildcard", body == json!([]), || {
        body.to_string()
    });

    p.unchanged(app, &before, "after bad check input").await;
    p.alive(app, "bad check input").await;
    p.finish();
}
