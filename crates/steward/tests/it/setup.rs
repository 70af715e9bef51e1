//! First-run setup: only the holder of the setup token can claim a fresh instance, once.

use std::os::unix::fs::PermissionsExt;

use reqwest::{Method, StatusCode};
use serde_json::json;
use steward_testkit::*;

#[tokio::test]
async fn setup_requires_the_token_and_closes_for_good() {
    let app = TestApp::spawn().await;
    let token_file = app.data_dir().join("setup-token");
    let mode = std::fs::metadata(&token_file)
        .expect("token file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "setup token file must be private");
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        app.setup_token
    );

    let (s, b) = app.call(Method::GET, "/api/v1/setup", None).await;
    assert_eq!(
        (s, b["setup_required"].as_bool()),
        (StatusCode::OK, Some(true))
    );

    // Someone who merely reaches the port cannot claim the instance.
    let body = |token: &str| json!({ "token": token, "username": "mallory", "password": PASSWORD });
    let (s, b) = app
        .call(Method::POST, "/api/v1/setup", Some(body("not-the-token")))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(code(&b), "invalid_setup_token");
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "mallory", "password": PASSWORD })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Weak passwords are refused even at setup.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/setup",
            Some(
                json!({ "token": app.setup_token, "username": "admin", "password": "password123" }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["details"]["field"], "password");

    let (s, b) = app
        .call(Method::POST, "/api/v1/setup", Some(json!({ "token": app.setup_token, "username": "Admin", "password": PASSWORD, "email": "ops@example.com" })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["username"], "admin");
    assert_eq!(b["roles"][0]["name"], "admin");
    assert!(
        !token_file.exists(),
        "the used setup token file must be removed"
    );

    // Replaying the same token, or any token, is refused now.
    let (s, b) = app
        .call(Method::POST, "/api/v1/setup", Some(body(&app.setup_token)))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(code(&b), "already_set_up");
    let (_, b) = app.call(Method::GET, "/api/v1/setup", None).await;
    assert_eq!(b["setup_required"], false);

    let admin = app.login("admin", PASSWORD).await;
    let (s, me) = admin.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["roles"], json!(["admin"]));
    assert!(me["permissions"].as_array().unwrap().len() >= 12);

    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&("setup.complete".into(), "denied".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("setup.complete".into(), "success".into())),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_restart_before_setup_keeps_the_same_token_and_a_restart_after_setup_offers_none() {
    let app = TestApp::spawn().await;
    let clock = steward_core::SystemClock;
    let again = steward_services::bootstrap::setup_token(&app.db, &clock, &app.data_dir())
        .await
        .unwrap();
    assert_eq!(again.as_deref(), Some(app.setup_token.as_str()));
    app.admin().await;
    let after = steward_services::bootstrap::setup_token(&app.db, &clock, &app.data_dir())
        .await
        .unwrap();
    assert_eq!(after, None);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let (s, b) = app.call(Method::GET, "/healthz", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, b) = app.call(Method::GET, "/readyz", None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn every_response_carries_security_headers_and_unknown_routes_are_json() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/api/v1/setup", "/api/v1/nope", "/somewhere"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert!(h.get("x-request-id").is_some(), "{path} has no request id");
    }
    let (s, b) = app.call(Method::GET, "/api/v1/nope", None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "not_found"));
    let (s, b) = app.call(Method::DELETE, "/api/v1/setup", None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn openapi_document_is_served_and_describes_the_api() {
    let app = TestApp::spawn().await;
    let (s, doc) = app.call(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/setup",
        "/api/v1/auth/login",
        "/api/v1/servers/{id}/credential",
        "/api/v1/audit",
        "/api/v1/api-tokens",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(doc["components"]["schemas"].get("ServerInput").is_some());
    // Generated clients key operations by id: every one must be unique.
    let mut ids = std::collections::BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            if let Some(id) = op.get("operationId").and_then(|v| v.as_str()) {
                assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            }
        }
    }
    assert!(ids.len() >= 40, "{ids:?}");
    // Public routes say so; everything else requires a bearer token or the session cookie.
    assert_eq!(
        doc["paths"]["/api/v1/auth/login"]["post"]["security"],
        serde_json::json!([{}])
    );
    assert_eq!(
        doc["security"],
        serde_json::json!([{ "bearer": [] }, { "cookie": [] }])
    );
}

#[tokio::test]
async fn https_deployments_get_hsts_and_secure_cookies() {
    let app = TestApp::spawn_with(|c| {
        c.public_url = "https://steward.example.com".into();
        c.secure_cookies = true;
    })
    .await;
    app.admin().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    for c in res.headers().get_all("set-cookie") {
        assert!(c.to_str().unwrap().contains("; Secure"), "{c:?}");
    }
    let plain = TestApp::spawn().await;
    let res = plain
        .client
        .get(plain.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
}
