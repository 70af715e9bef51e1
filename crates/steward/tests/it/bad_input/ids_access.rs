//! Unknown and malformed ids on every id route; callers without permission; hidden servers stay hidden.
use super::*;

#[tokio::test]
async fn unknown_and_malformed_ids_are_404_on_every_id_route() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;

    let routes: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/api/v1/servers/{id}", None),
        (
            Method::PUT,
            "/api/v1/servers/{id}",
            Some(json!({ "name": "x", "host": "10.0.0.1", "ssh_user": "root" })),
        ),
        (Method::DELETE, "/api/v1/servers/{id}", None),
        (Method::GET, "/api/v1/servers/{id}/credential", None),
        (
            Method::PUT,
            "/api/v1/servers/{id}/credential",
            Some(json!({ "kind": "generate" })),
        ),
        (Method::DELETE, "/api/v1/servers/{id}/credential", None),
        (Method::GET, "/api/v1/users/{id}", None),
        (
            Method::PATCH,
            "/api/v1/users/{id}",
            Some(json!({ "disabled": true })),
        ),
        (Method::DELETE, "/api/v1/users/{id}", None),
        (
            Method::POST,
            "/api/v1/users/{id}/password",
            Some(json!({ "new_password": "another-long-passphrase-9" })),
        ),
        (Method::DELETE, "/api/v1/users/{id}/totp", None),
        (Method::GET, "/api/v1/roles/{id}", None),
        (
            Method::PUT,
            "/api/v1/roles/{id}",
            Some(json!({ "name": "x", "permissions": ["servers.read"] })),
        ),
        (Method::DELETE, "/api/v1/roles/{id}", None),
        (Method::DELETE, "/api/v1/api-tokens/{id}", None),
        (Method::GET, "/api/v1/scripts/{id}", None),
        (
            Method::PUT,
            "/api/v1/scripts/{id}",
            Some(json!({ "name": "x", "body": "true" })),
        ),
        (Method::DELETE, "/api/v1/scripts/{id}", None),
        (Method::GET, "/api/v1/scripts/{id}/versions", None),
        (Method::GET, "/api/v1/scripts/{id}/versions/1", None),
        (Method::GET, "/api/v1/executions/{id}", None),
        (Method::POST, "/api/v1/executions/{id}/cancel", None),
        (Method::GET, "/api/v1/executions/{id}/stream", None),
        (Method::GET, "/api/v1/checks/{id}", None),
        (
            Method::PUT,
            "/api/v1/checks/{id}",
            Some(json!({ "name": "x", "spec": { "type": "tcp", "host": "10.0.0.1", "port": 22 } })),
        ),
        (Method::DELETE, "/api/v1/checks/{id}", None),
        (Method::GET, "/api/v1/checks/{id}/results", None),
        (Method::GET, "/api/v1/servers/{id}/metrics", None),
        (Method::POST, "/api/v1/checks/{id}/run", None),
        (Method::POST, "/api/v1/proposals/{id}/accept", None),
        (Method::GET, "/api/v1/servers/{id}/agent", None),
        (Method::POST, "/api/v1/servers/{id}/agent", None),
        (Method::DELETE, "/api/v1/servers/{id}/agent", None),
        (Method::POST, "/api/v1/servers/{id}/agent/install", None),
        (Method::POST, "/api/v1/servers/{id}/agent/uninstall", None),
    ];
    // Path segments as sent (already percent-encoded).
    let ids: Vec<String> = vec![
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::nil().to_string(),
        enc("../../etc/passwd"),
        enc("1 OR 1=1"),
        enc("' OR '1'='1"),
        enc("'; DROP TABLE servers; --"),
        enc("%"),
        enc("_"),
        enc("\\"),
        enc("*"),
        "%00".into(),
        "%07%1B".into(),
        "%FF%FE".into(),
        chars(1000),
        enc(ADMIN),
        "admin".into(),
        "viewer".into(),
        "web-1".into(),
        enc(&format!("{} ", w.server)),
        // (An upper-case spelling of a real UUID names the same object, as RFC 9562 says, so it
        // is not in this list.)
    ];
    for (method, template, body) in &routes {
        for id in &ids {
            let path = template.replace("{id}", id);
            let got = admin.call(method.clone(), &path, body.clone()).await;
            p.error(
                &format!("{method} {}", short(&path)),
                got,
                StatusCode::NOT_FOUND,
                "not_found",
                None,
            );
        }
    }
    // A server that exists but has no credential.
    let credential = format!("/api/v1/servers/{}/credential", w.server);
    p.error(
        "GET a credential never set",
        admin.get(&credential).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    p.error(
        "DELETE a credential never set",
        admin.delete(&credential).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    p.unchanged(app, &before, "after unknown ids").await;
    p.alive(app, "unknown ids").await;
    p.finish();
}

#[tokio::test]
async fn callers_without_permission_are_refused_and_hidden_servers_stay_hidden() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let db = admin.server("db-1", &["db"]).await;
    let (s, b) = admin
        .post("/api/v1/roles", json!({ "name": "web-ops", "permissions": ["servers.read", "servers.write", "credentials.write"], "server_tags": ["web"] }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let webop = app.user_with_roles(admin, "webop", &["web-ops"]).await;
    let viewer = app.login("bob", PASSWORD).await;
    let before = stored(app).await;

    let web = format!("/api/v1/servers/{}", w.server);
    let server_body =
        json!({ "name": "x", "host": "10.0.0.1", "ssh_user": "root", "tags": ["web"] });

    // A viewer can see but not change.
    for (what, got) in [
        (
            "viewer POST server",
            viewer.post("/api/v1/servers", server_body.clone()).await,
        ),
        (
            "viewer PUT server",
            viewer.put(&web, server_body.clone()).await,
        ),
        ("viewer DELETE server", viewer.delete(&web).await),
        (
            "viewer PUT credential",
            viewer
                .put(&format!("{web}/credential"), json!({ "kind": "generate" }))
                .await,
        ),
        (
            "viewer POST user",
            viewer
                .post(
                    "/api/v1/users",
                    json!({ "username": "eve", "password": PASSWORD }),
                )
                .await,
        ),
        (
            "viewer PATCH user",
            viewer
                .patch(
                    &format!("/api/v1/users/{}", w.bob),
                    json!({ "roles": ["admin"] }),
                )
                .await,
        ),
        (
            "viewer POST role",
            viewer
                .post(
                    "/api/v1/roles",
                    json!({ "name": "x", "permissions": ["servers.read"] }),
                )
                .await,
        ),
        (
            "viewer PUT settings",
            viewer
                .put("/api/v1/settings", json!({ "require_totp": true }))
                .await,
        ),
        ("viewer GET audit", viewer.get("/api/v1/audit").await),
        ("viewer GET users", viewer.get("/api/v1/users").await),
    ] {
        p.error(what, got, StatusCode::FORBIDDEN, "forbidden", None);
    }

    // A tag-scoped operator cannot reach, or move servers to, tags outside the role.
    let hidden = format!("/api/v1/servers/{db}");
    for (what, got) in [
        ("GET hidden server", webop.get(&hidden).await),
        (
            "PUT hidden server",
            webop.put(&hidden, server_body.clone()).await,
        ),
        ("DELETE hidden server", webop.delete(&hidden).await),
        (
            "GET hidden credential",
            webop.get(&format!("{hidden}/credential")).await,
        ),
        (
            "PUT hidden credential",
            webop
                .put(
                    &format!("{hidden}/credential"),
                    json!({ "kind": "generate" }),
                )
                .await,
        ),
        (
            "DELETE hidden credential",
            webop.delete(&format!("{hidden}/credential")).await,
        ),
    ] {
        p.error(
            &format!("web-ops: {what}"),
            got,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    let got = webop
        .post("/api/v1/servers", with(&server_body, "tags", json!(["db"])))
        .await;
    p.error(
        "web-ops: POST a server tagged db",
        got,
        StatusCode::FORBIDDEN,
        "forbidden",
        Some("tags"),
    );
    let got = webop
        .post("/api/v1/servers", with(&server_body, "tags", json!([])))
        .await;
    p.error(
        "web-ops: POST an untagged server",
        got,
        StatusCode::FORBIDDEN,
        "forbidden",
        Some("tags"),
    );
    let got = webop
        .put(&web, with(&server_body, "tags", json!(["db"])))
        .await;
    p.error(
        "web-ops: move web-1 to db",
        got,
        StatusCode::FORBIDDEN,
        "forbidden",
        Some("tags"),
    );
    let (_, page) = webop.get("/api/v1/servers?tag=db").await;
    p.check("web-ops cannot list db servers", page["total"] == 0, || {
        format!("{page}")
    });
    let (_, page) = webop.get("/api/v1/servers?q=db-1").await;
    p.check(
        "web-ops cannot find db servers by name",
        page["total"] == 0,
        || format!("{page}"),
    );

    p.unchanged(app, &before, "after refused callers").await;
    p.alive(app, "refused callers").await;
    p.finish();
}
