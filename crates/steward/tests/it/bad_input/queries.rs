//! Query parameters of the metrics and audit-log endpoints.
use super::*;

#[tokio::test]
async fn metrics_query_parameters_are_validated() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let base = format!("/api/v1/servers/{}/metrics", w.server);
    for query in [
        "names=cpu.usage&from=yesterday",
        "names=cpu.usage&to=2026-13-01T00:00:00Z",
        "names=cpu.usage&from=99999999999999999999",
        "names=cpu.usage&from=2&to=1",
        "names=cpu.usage&from=0&to=999999999999999",
        "names=cpu.usage&step=-1",
        "names=cpu.usage&step=abc",
        "names=cpu.usage&step=99999999",
        "names=cpu.usage&bogus=1",
        "names=cpu.usage&names=load.1",
    ] {
        let got = admin.get(&format!("{base}?{query}")).await;
        p.invalid_query(&format!("GET metrics?{}", short(query)), got);
    }
    for names in [
        "",
        "cpu",
        "cpu.",
        "*",
        ".*",
        "nope.*",
        "cpu.usage,%00",
        "%27%3B%20DROP%20TABLE%20metric_series%3B%20--",
        &chars(5000),
    ] {
        let got = admin.get(&format!("{base}?names={names}")).await;
        p.invalid(&format!("GET metrics?names={}", short(names)), got, "names");
    }
    let got = admin
        .get(&format!("{base}?names=cpu.*,load.1&step=0"))
        .await;
    p.ok("GET metrics?names=cpu.*,load.1", got, StatusCode::OK);
    for query in ["sparklines=maybe", "sparklines=1", "bogus=1"] {
        let got = admin.get(&format!("/api/v1/metrics/summary?{query}")).await;
        p.invalid_query(&format!("GET metrics/summary?{query}"), got);
    }
    p.unchanged(app, &before, "after bad metric queries").await;
    p.alive(app, "bad metric queries").await;
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn audit_query_parameters_are_validated() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    for query in [
        "from=garbage",
        "from=2026-13-45T99:00:00Z",
        "from=1700000000",
        "to=yesterday",
        "to=2026-02-30T00:00:00Z",
        "cursor=garbage",
        "cursor=abc_def",
        "cursor=_",
        "cursor=99999999999999999999_x",
        "cursor=%27%3B%20DROP%20TABLE%20audit_events%3B%20--",
        "outcome=bogus",
        "outcome=SUCCESS",
        "outcome=success%27%20OR%201%3D1%20--",
        "outcome=",
        "format=xml",
        "format=",
        "format=csv;",
        "limit=0",
        "limit=-1",
        "limit=501",
        "limit=abc",
        "limit=99999999999999999999",
        "format=json&limit=0",
        "format=csv&limit=100001",
        "limit=1&limit=2",
    ] {
        let got = admin.get(&format!("/api/v1/audit?{query}")).await;
        p.invalid_query(&format!("GET /api/v1/audit?{query}"), got);
    }

    // Filters are plain values: SQL text and wildcards match nothing.
    for query in [
        "actor=%27%3B%20DROP%20TABLE%20audit_events%3B%20--",
        "actor=%25",
        "target=%22%20OR%201%3D1%20--",
        "target=%5C",
        "action=%25",
        "action=%25*",
        "action=_uth.*",
        "cursor=1_x",
        "limit=500&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
    ] {
        let got = admin.get(&format!("/api/v1/audit?{query}")).await;
        let page = p.ok(&format!("GET /api/v1/audit?{query}"), got, StatusCode::OK);
        p.check(
            &format!("items for ?{query}"),
            page["items"] == json!([]),
            || short(&page.to_string()),
        );
    }
    for query in ["actor=%00", "target=a%00", "action=%00", "action=auth.%00*"] {
        let got = admin.get(&format!("/api/v1/audit?{query}")).await;
        p.no_match_or_invalid_query(&format!("GET /api/v1/audit?{query}"), got);
    }
    let got = admin.get("/api/v1/audit?action=auth.*").await;
    let page = p.ok("GET /api/v1/audit?action=auth.*", got, StatusCode::OK);
    p.check(
        "auth.* finds the logins",
        page["items"].as_array().is_some_and(|a| !a.is_empty()),
        || short(&page.to_string()),
    );
    let got = admin
        .get(&format!("/api/v1/audit?actor={}", chars(10_000)))
        .await;
    p.ok(
        "GET /api/v1/audit?actor=<10,000 characters>",
        got,
        StatusCode::OK,
    );

    p.unchanged(app, &before, "after bad audit queries").await;
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    p.check(
        "reading the audit log does not write to it",
        after == events,
        || format!("{events} events became {after}"),
    );
    p.alive(app, "bad audit queries").await;
    p.finish();
}
