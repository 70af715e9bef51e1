//! Terminal queries and ids.
use super::*;

#[tokio::test]
async fn terminal_queries_and_ids_are_validated() {
    let w = world().await;
    let (app, admin, server) = (&w.app, &w.admin, &w.server);
    let mut p = Probe::default();
    let before = stored(app).await;
    for query in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "offset=-1",
        "live=maybe",
        "live=1",
        "bogus=1",
        "user=a%00b",
        "server=a%07b",
    ] {
        let got = admin
            .get(&format!("/api/v1/terminal-sessions?{query}"))
            .await;
        p.invalid_query(&format!("GET /api/v1/terminal-sessions?{query}"), got);
    }
    for (query, total) in [
        ("limit=500", 0),
        ("offset=9223372036854775807", 0),
        ("live=true", 0),
        ("user=%27%3B%20DROP%20TABLE%20users%3B%20--", 0),
        ("server=%25", 0),
    ] {
        let got = admin
            .get(&format!("/api/v1/terminal-sessions?{query}"))
            .await;
        let page = p.ok(
            &format!("GET /api/v1/terminal-sessions?{query}"),
            got,
            StatusCode::OK,
        );
        p.check(
            &format!("total for ?{query}"),
            page["total"] == total,
            || format!("{page}"),
        );
    }
    for id in [
        "nope",
        "1",
        "%27%20OR%201%3D1",
        "0190b5e0-0000-7000-8000-000000000000",
    ] {
        for path in [
            format!("/api/v1/terminal-sessions/{id}"),
            format!("/api/v1/terminal-sessions/{id}/recording"),
        ] {
            let got = admin.get(&path).await;
            p.error(
                &format!("GET {path}"),
                got,
                StatusCode::NOT_FOUND,
                "not_found",
                None,
            );
        }
        let path = format!("/api/v1/terminal-sessions/{id}/terminate");
        let got = admin.post(&path, json!({})).await;
        p.error(
            &format!("POST {path}"),
            got,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    let (s, b) = admin
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for query in ["cols=0", "rows=1001", "cols=abc", "cols=-1", "bogus=1"] {
        let got = admin
            .get(&format!("/api/v1/servers/{server}/terminal?{query}"))
            .await;
        p.invalid_query(&format!("GET terminal?{query}"), got);
    }
    p.unchanged(app, &before, "after bad terminal queries")
        .await;
    p.alive(app, "bad terminal queries").await;
    p.finish();
}
