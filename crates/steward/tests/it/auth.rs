//! Login, sessions, refresh-token rotation and theft detection, throttling, 2FA.

use reqwest::{Method, StatusCode};
use serde_json::json;
use steward_testkit::*;

#[tokio::test]
async fn login_refresh_rotation_reuse_detection_and_logout() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // Wrong password and unknown user look the same.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "admin", "password": "wrong-password-1" })),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "ghost", "password": "wrong-password-1" })),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );

    // Refresh rotates: the new pair works, the old refresh token is spent.
    let first_refresh = admin.refresh.clone();
    let (s, pair) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": first_refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_ne!(pair["refresh_token"].as_str().unwrap(), first_refresh);
    let rotated = app.session(&pair);
    assert_eq!(rotated.get("/api/v1/auth/me").await.0, StatusCode::OK);

    // Presenting the spent token again is theft: the whole family (session) dies.
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": first_refresh })),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "refresh_token_reused")
    );
    let (s, b) = rotated.get("/api/v1/auth/me").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "session_ended"),
        "access tokens of the family stop working"
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": rotated.refresh })),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the newest refresh token of the family is dead too"
    );
    assert!(
        app.audit_actions()
            .await
            .contains(&("auth.refresh_reuse".into(), "denied".into()))
    );

    // Logout ends a session.
    let other = app.login(ADMIN, PASSWORD).await;
    assert_eq!(
        other
            .call(Method::POST, "/api/v1/auth/logout", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        other.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": other.refresh })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let actions = app.audit_actions().await;
    assert!(actions.contains(&("auth.login".into(), "failure".into())));
    assert!(actions.contains(&("auth.login".into(), "success".into())));
    assert!(actions.contains(&("auth.logout".into(), "success".into())));

    // No credentials at all, or garbage ones.
    assert_eq!(
        app.call(Method::GET, "/api/v1/auth/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let forged = Session {
        token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.x".into(),
        ..admin.clone()
    };
    assert_eq!(
        forged.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn browser_cookies_are_httponly_strict_and_work_for_refresh_and_logout() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let res = browser
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies.len(), 2);
    for c in &cookies {
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("steward_refresh=") && c.contains("Path=/api/v1/auth"))
    );

    assert_eq!(
        browser
            .get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let res = browser
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "refresh with the cookie alone"
    );
    assert_eq!(
        browser
            .get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let res = browser
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        browser
            .get(app.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The `Set-Cookie` headers of a response, by cookie name.
fn set_cookies(res: &reqwest::Response) -> Vec<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap().to_string();
            (v.split('=').next().unwrap().to_string(), v)
        })
        .collect()
}

/// A cookie's value in a `Set-Cookie` header.
fn cookie_value(header: &str) -> String {
    header
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap()
}

#[tokio::test]
async fn over_https_the_session_cookies_are_host_prefixed() {
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
    assert_eq!(res.status(), StatusCode::OK);
    let cookies = set_cookies(&res);
    let names: Vec<&str> = cookies.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["__Host-steward_access", "__Host-steward_refresh"]);
    // What browsers require of a __Host- cookie: Secure, Path=/, no Domain.
    for (_, c) in &cookies {
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/;"] {
            assert!(format!("{c};").contains(part), "{part} missing: {c}");
        }
        assert!(!c.to_lowercase().contains("domain"), "{c}");
    }
    let access = cookie_value(&cookies[0].1);
    let refresh = cookie_value(&cookies[1].1);
    let with_cookie = |method: Method, path: &str, cookie: String| {
        app.client
            .request(method, app.url(path))
            .header("cookie", cookie)
            .send()
    };
    let me = with_cookie(
        Method::GET,
        "/api/v1/auth/me",
        format!("__Host-steward_access={access}"),
    )
    .await
    .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // An unprefixed cookie could have been planted by a sibling subdomain or a plain-HTTP page:
    // it is not read.
    let planted = with_cookie(
        Method::GET,
        "/api/v1/auth/me",
        format!("steward_access={access}"),
    )
    .await
    .unwrap();
    assert_eq!(planted.status(), StatusCode::UNAUTHORIZED);
    let planted = with_cookie(
        Method::POST,
        "/api/v1/auth/refresh",
        format!("steward_refresh={refresh}"),
    )
    .await
    .unwrap();
    assert_eq!(planted.status(), StatusCode::UNAUTHORIZED);
    // The prefixed refresh cookie refreshes (it is sent on every path now), and logout clears
    // the prefixed names.
    let res = with_cookie(
        Method::POST,
        "/api/v1/auth/refresh",
        format!("__Host-steward_refresh={refresh}"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let access = cookie_value(&set_cookies(&res)[0].1);
    let res = with_cookie(
        Method::POST,
        "/api/v1/auth/logout",
        format!("__Host-steward_access={access}"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(&res);
    assert_eq!(
        cleared.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["__Host-steward_access", "__Host-steward_refresh"]
    );
    assert!(cleared.iter().all(|(_, c)| c.contains("Max-Age=0")));
}

#[tokio::test]
async fn repeated_failures_are_throttled_and_audited() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let bad = json!({ "username": ADMIN, "password": "not-the-password" });
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            app.call(Method::POST, "/api/v1/auth/login", Some(bad.clone()))
                .await
                .0,
        );
    }
    assert_eq!(
        &statuses[..5],
        &[StatusCode::UNAUTHORIZED; 5],
        "{statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Even the right password waits while the delay runs.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    tokio::time::sleep(std::time::Duration::from_secs(retry as u64 + 1)).await;
    app.login(ADMIN, PASSWORD).await;
    assert!(
        app.audit_actions()
            .await
            .contains(&("auth.login".into(), "denied".into()))
    );
}

#[tokio::test]
async fn totp_enrollment_login_replay_and_recovery_codes() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let (s, b) = admin
        .post("/api/v1/auth/totp/confirm", json!({ "code": "123456" }))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "totp_not_enrolled")
    );
    let (s, enroll) = admin
        .call(Method::POST, "/api/v1/auth/totp/enroll", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{enroll}");
    let secret = enroll["secret"].as_str().unwrap().to_string();
    assert!(
        enroll["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Steward:admin?")
    );
    let (s, b) = admin
        .post("/api/v1/auth/totp/confirm", json!({ "code": "000000" }))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "invalid_totp"));
    let (s, codes) = admin
        .post(
            "/api/v1/auth/totp/confirm",
            json!({ "code": totp_code(&secret, 0) }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{codes}");
    let codes: Vec<String> = codes["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let (_, me) = admin.get("/api/v1/auth/me").await;
    assert_eq!(
        (
            me["totp_enabled"].as_bool(),
            me["recovery_codes_left"].as_i64()
        ),
        (Some(true), Some(10))
    );

    // The password alone is no longer enough, and says so only after the password was right.
    let login = |body: serde_json::Value| app.call(Method::POST, "/api/v1/auth/login", Some(body));
    let (s, b) = login(json!({ "username": ADMIN, "password": PASSWORD })).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "totp_required"));
    let (s, b) =
        login(json!({ "username": ADMIN, "password": "wrong-password-9", "totp_code": "000000" }))
            .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    let (s, b) =
        login(json!({ "username": ADMIN, "password": PASSWORD, "totp_code": "000000" })).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "invalid_totp"));

    let next = totp_code(&secret, 1);
    let (s, b) = login(json!({ "username": ADMIN, "password": PASSWORD, "totp_code": next })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The same code cannot be replayed.
    let (s, b) = login(json!({ "username": ADMIN, "password": PASSWORD, "totp_code": next })).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "invalid_totp"));

    // A recovery code works once, in any case and spacing.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let (s, b) =
        login(json!({ "username": ADMIN, "password": PASSWORD, "recovery_code": typed })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) =
        login(json!({ "username": ADMIN, "password": PASSWORD, "recovery_code": codes[0] })).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "invalid_recovery_code")
    );
    let (_, me) = admin.get("/api/v1/auth/me").await;
    assert_eq!(me["recovery_codes_left"], 9);

    // Turning it off needs the password.
    let (s, _) = admin
        .call(
            Method::DELETE,
            "/api/v1/auth/totp",
            Some(json!({ "password": "wrong-password-9" })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = admin
        .call(
            Method::DELETE,
            "/api/v1/auth/totp",
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.login(ADMIN, PASSWORD).await;

    let actions = app.audit_actions().await;
    for a in ["auth.totp_enroll", "auth.totp_enable", "auth.totp_disable"] {
        assert!(
            actions.iter().any(|(x, o)| x == a && o == "success"),
            "{a} missing: {actions:?}"
        );
    }
}

#[tokio::test]
async fn an_administrator_can_require_2fa_for_everyone() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let bob = app.user_with_roles(&admin, "bob", &["viewer"]).await;
    admin.server("web-1", &["web"]).await;
    assert_eq!(bob.get("/api/v1/servers").await.0, StatusCode::OK);

    let (s, b) = admin
        .put("/api/v1/settings", json!({ "require_totp": true }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // Bob's session still exists but can do nothing but set up 2FA.
    let (s, b) = bob.get("/api/v1/servers").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "totp_setup_required")
    );
    let (s, me) = bob.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["totp_setup_required"], true);
    let (_, enroll) = bob
        .call(Method::POST, "/api/v1/auth/totp/enroll", None)
        .await;
    let secret = enroll["secret"].as_str().unwrap();
    let (s, _) = bob
        .post(
            "/api/v1/auth/totp/confirm",
            json!({ "code": totp_code(secret, 0) }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(bob.get("/api/v1/servers").await.0, StatusCode::OK);
    // …and cannot turn it off while the policy stands.
    let (s, b) = bob
        .call(
            Method::DELETE,
            "/api/v1/auth/totp",
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "totp_required_by_policy")
    );
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_password_resets_force_a_change() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let bob = app.user_with_roles(&admin, "bob", &["operator"]).await;
    let (_, users) = admin.get("/api/v1/users").await;
    let bob_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, b) = admin
        .patch(
            &format!("/api/v1/users/{bob_id}"),
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!((s, b["disabled"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(bob.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "bob", "password": PASSWORD })),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "account_disabled"));

    admin
        .patch(
            &format!("/api/v1/users/{bob_id}"),
            json!({ "disabled": false }),
        )
        .await;
    let bob = app.login("bob", PASSWORD).await;
    let (_, token) = bob
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "cron", "permissions": ["servers.read"] }),
        )
        .await;
    let robot = Session {
        token: token["token"].as_str().unwrap().to_string(),
        ..bob.clone()
    };
    assert_eq!(robot.get("/api/v1/servers").await.0, StatusCode::OK);
    let (s, _) = admin
        .post(
            &format!("/api/v1/users/{bob_id}/password"),
            json!({ "new_password": "temporary-Passw0rd-7" }),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        robot.get("/api/v1/servers").await.0,
        StatusCode::UNAUTHORIZED,
        "an administrator's reset revokes API tokens"
    );
    let bob = app.login("bob", "temporary-Passw0rd-7").await;
    let (s, b) = bob.get("/api/v1/servers").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "password_change_required")
    );
    let (s, _) = bob.post("/api/v1/auth/password", json!({ "current_password": "temporary-Passw0rd-7", "new_password": "bobs-own-long-secret-1" })).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(bob.get("/api/v1/servers").await.0, StatusCode::OK);
    app.login("bob", "bobs-own-long-secret-1").await;

    // Admins cannot lock themselves out.
    let (_, me) = admin.get("/api/v1/auth/me").await;
    let (s, b) = admin
        .patch(
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "self_lockout"));
    let (s, b) = admin
        .patch(
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            json!({ "roles": ["viewer"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "last_admin"));
}

#[tokio::test]
async fn api_tokens_are_shown_once_scoped_and_revocable() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin.server("db-1", &["db"]).await;
    let (s, created) = admin
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "ci", "permissions": ["servers.read"], "expires_in_days": 30 }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("stw_"));
    let robot = Session {
        token: token.clone(),
        ..admin.clone()
    };
    let (s, page) = robot.get("/api/v1/servers").await;
    assert_eq!((s, page["total"].as_i64()), (StatusCode::OK, Some(1)));
    // Scoped: only what it was given.
    assert_eq!(
        robot
            .post(
                "/api/v1/servers",
                json!({ "name": "x", "host": "x.example", "ssh_user": "root" })
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(robot.get("/api/v1/users").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        robot
            .post(
                "/api/v1/api-tokens",
                json!({ "name": "child", "permissions": ["servers.read"] })
            )
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (_, me) = robot.get("/api/v1/auth/me").await;
    assert_eq!(
        (me["auth_method"].as_str(), me["permissions"].clone()),
        (Some("api_token"), json!(["servers.read"]))
    );

    // Listed without the secret; stored only as a hash.
    let (_, list) = admin.get("/api/v1/api-tokens").await;
    assert!(!list.to_string().contains(&token));
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h != &token && h.len() == 64));

    // Cannot grant what you do not hold.
    let viewer = app.user_with_roles(&admin, "vic", &["viewer"]).await;
    let (s, _) = viewer
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "x", "permissions": ["users.manage"] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let id = created["api_token"]["id"].as_str().unwrap();
    assert_eq!(
        admin.delete(&format!("/api/v1/api-tokens/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        robot.get("/api/v1/servers").await.0,
        StatusCode::UNAUTHORIZED
    );
    // Another user's token id is simply not found.
    assert_eq!(
        viewer.delete(&format!("/api/v1/api-tokens/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn housekeeping_forgets_expired_sessions_tokens_and_counters_but_not_live_ones() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let _ = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "x", "password": "wrong-password-1" })),
        )
        .await;
    let count = |table: &'static str| {
        let pool = app.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (sessions, tokens, counters) = (
        count("sessions").await,
        count("refresh_tokens").await,
        count("login_throttle").await,
    );
    assert_eq!((sessions, counters), (1, 2));

    // Nothing is due yet.
    let now = chrono::Utc::now().timestamp_millis();
    let p = steward_db::maintenance::prune(&app.db, now, now - 3_600_000)
        .await
        .unwrap();
    assert_eq!(p, steward_db::maintenance::Pruned::default());
    assert_eq!(admin.get("/api/v1/auth/me").await.0, StatusCode::OK);

    // Far in the future everything has expired.
    let later = now + 60 * 24 * 3_600_000;
    let p = steward_db::maintenance::prune(&app.db, later, later - 3_600_000)
        .await
        .unwrap();
    assert_eq!((p.sessions, p.throttle_counters), (1, 2));
    assert_eq!(
        (
            count("sessions").await,
            count("refresh_tokens").await,
            count("login_throttle").await
        ),
        (0, 0, 0)
    );
    assert!(tokens >= 1);
    assert_eq!(
        admin.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
}
