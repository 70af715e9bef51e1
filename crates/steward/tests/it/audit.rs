//! The audit log: every privileged action recorded with actor, source, target and outcome;
//! filters; CSV and JSON export.

use reqwest::StatusCode;
use serde_json::json;
use steward_testkit::*;

#[tokio::test]
async fn actions_are_recorded_filterable_and_exportable() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let web = admin.server("web-1", &["web"]).await;
    admin
        .put(
            &format!("/api/v1/servers/{web}/credential"),
            json!({ "kind": "generate" }),
        )
        .await;
    admin
        .post(
            "/api/v1/roles",
            json!({ "name": "=cmd|' /C calc'!A0", "permissions": ["servers.read"] }),
        )
        .await;
    let bob = app.user_with_roles(&admin, "bob", &["viewer"]).await;
    bob.get("/api/v1/servers").await;
    let _ = app
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "bob", "password": "wrong-password-x" })),
        )
        .await;
    admin
        .put("/api/v1/settings", json!({ "require_totp": false }))
        .await;

    let (s, page) = admin.get("/api/v1/audit?limit=500").await;
    assert_eq!(s, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "setup.complete",
        "auth.login",
        "server.create",
        "credential.generate",
        "role.create",
        "user.create",
        "settings.update",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    // Newest first, with actor, source address and target.
    assert_eq!(actions[0], "settings.update");
    let create = items
        .iter()
        .find(|e| e["action"] == "server.create")
        .unwrap();
    assert_eq!(
        (create["actor_name"].as_str(), create["target_id"].as_str()),
        (Some("admin"), Some(web.as_str()))
    );
    assert_eq!(create["source_ip"], "127.0.0.1");
    assert_eq!(create["outcome"], "success");
    assert_eq!(create["details"]["tags"], json!(["web"]));
    let failed = items
        .iter()
        .find(|e| e["action"] == "auth.login" && e["outcome"] == "failure")
        .unwrap();
    assert_eq!(failed["actor_name"], "bob");

    // Filters.
    let (_, f) = admin.get("/api/v1/audit?actor=bob&outcome=failure").await;
    assert_eq!(f["items"].as_array().unwrap().len(), 1);
    let (_, f) = admin.get("/api/v1/audit?action=auth.").await;
    assert!(
        f["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("auth."))
    );
    let (_, f) = admin.get("/api/v1/audit?target=web-1").await;
    assert_eq!(
        f["items"].as_array().unwrap().len(),
        2,
        "create + credential"
    );
    let future = "2999-01-01T00:00:00Z";
    let (_, f) = admin.get(&format!("/api/v1/audit?from={future}")).await;
    assert_eq!(f["items"].as_array().unwrap().len(), 0);
    let (_, f) = admin
        .get(&format!("/api/v1/audit?to={future}&action=server.create"))
        .await;
    assert_eq!(f["items"].as_array().unwrap().len(), 1);

    // Paging with a cursor walks every event exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, p) = admin
            .get(&format!("/api/v1/audit?limit=3&cursor={cursor}"))
            .await;
        seen.extend(
            p["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match p["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    // Reading the log is not itself audited, so the walk sees exactly the events listed above.
    let listed: Vec<String> = items
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, listed);
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // CSV export: a download, one row per event, formula injection defused.
    let res = admin
        .client
        .get(app.url("/api/v1/audit?format=csv"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment; filename=\"steward-audit-")
    );
    let csv = res.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,time,actor_id,actor,source_ip,action,target_type,target_id,target,outcome,details"
    );
    assert_eq!(csv.lines().count() - 1, items.len());
    assert!(
        csv.contains("'=cmd|"),
        "cells starting with = must be quoted for spreadsheets"
    );
    assert!(!csv.contains(",=cmd|"));

    // JSON export.
    let res = admin
        .client
        .get(app.url("/api/v1/audit?format=json&action=server.create"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .ends_with(".json\"")
    );
    let exported: serde_json::Value = res.json().await.unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 1);
    assert_eq!(exported[0]["target_name"], "web-1");
}
