//! Agent install bodies and download tokens: nothing changes on refused input.
use super::*;

#[tokio::test]
async fn agent_install_bodies_and_download_tokens_are_checked_and_nothing_changes() {
    let w = world().await;
    let (app, admin, server) = (&w.app, &w.admin, &w.server);
    let mut p = Probe::default();
    let before = stored(app).await;
    let agent_rows = || async {
        sqlx::query_as::<_, (String, String)>("SELECT server_id, token_sha256 FROM agents")
            .fetch_all(&app.db.pool)
            .await
            .expect("agents")
    };
    let agents_before = agent_rows().await;
    for action in ["install", "uninstall"] {
        let path = format!("/api/v1/servers/{server}/agent/{action}");
        for body in [
            json!({ "bogus": 1 }),
            json!({ "step_up": "x" }),
            json!({ "step_up": { "password": 1 } }),
            json!({ "step_up": { "password": PASSWORD, "extra": true } }),
            json!([]),
            json!("step_up"),
            json!(null),
        ] {
            let got = admin.post(&path, body.clone()).await;
            p.invalid_body(&format!("POST {action} {body}"), got);
        }
        for (what, bytes) in [("not JSON", &b"{"[..]), ("garbage", &b"\xff\xfe"[..])] {
            let got = raw(
                app,
                Some(&admin.token),
                Method::POST,
                &path,
                Some("application/json"),
                bytes.to_vec(),
            )
            .await;
            p.error(
                &format!("POST {action} {what}"),
                got,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                None,
            );
        }
        // A wrong inline proof is a failed step-up, not an install.
        let got = admin
            .post(
                &path,
                json!({ "step_up": { "password": "not-the-password-1" } }),
            )
            .await;
        p.error(
            &format!("POST {action} wrong proof"),
            got,
            StatusCode::FORBIDDEN,
            "step_up_failed",
            None,
        );
        // Without a step-up (the empty body is allowed).
        let got = admin.call(Method::POST, &path, None).await;
        p.error(
            &format!("POST {action} without step-up"),
            got,
            StatusCode::FORBIDDEN,
            "step_up_required",
            None,
        );
    }
    // The download takes only an enrollment token in the Authorization header.
    for auth in [
        None,
        Some("Bearer".to_string()),
        Some("Bearer ".to_string()),
        Some("Bearer stwa_".to_string()),
        Some("Bearer stwa_' OR '1'='1".to_string()),
        Some(format!("Bearer stwa_{}", "a".repeat(5000))),
        Some("Basic c3R3YV94Onk=".to_string()),
        Some(format!("Bearer {}", admin.token)),
    ] {
        let mut req = app.client.get(app.url("/api/v1/agent/download"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        p.error(
            &format!("download with {:?}", auth.as_deref().map(short)),
            (status, body),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            None,
        );
    }
    p.check(
        "no agent enrolled",
        agent_rows().await == agents_before,
        || "the agents table changed".into(),
    );
    p.unchanged(app, &before, "after bad agent installs").await;
    p.alive(app, "bad agent installs").await;
    p.finish();
}
