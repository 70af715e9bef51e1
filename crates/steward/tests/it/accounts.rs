//! Account management under attack: API tokens narrowed to a few permissions cannot manage
//! tokens, sessions or the profile; users list and end their own sessions; administrators end
//! other users' sessions and tokens only where they cover the user; and two administrators
//! demoting, disabling or deleting each other at the same moment still leave one.

use futures_util::future::join;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::*;

/// Creates an API token for `s` and returns (id, secret) as a session that uses it.
async fn token(s: &Session, permissions: &[&str]) -> (String, Session) {
    let (st, t) = s
        .post(
            "/api/v1/api-tokens",
            json!({ "name": format!("t-{}", uuid::Uuid::new_v4().simple()), "permissions": permissions }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let secret = t["token"].as_str().unwrap().to_string();
    (
        t["api_token"]["id"].as_str().unwrap().to_string(),
        Session {
            token: secret,
            refresh: String::new(),
            ..s.clone()
        },
    )
}

async fn user_id(admin: &Session, name: &str) -> String {
    let (_, users) = admin.get("/api/v1/users").await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("no user {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_narrowed_token_cannot_manage_tokens_sessions_or_the_profile() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (other_id, other) = token(&admin, &["servers.read"]).await;
    let (_, narrow) = token(&admin, &["servers.read"]).await;
    admin.server("web-1", &["web"]).await;
    // It does what it was made for…
    assert_eq!(narrow.get("/api/v1/servers").await.0, StatusCode::OK);
    assert_eq!(narrow.get("/api/v1/auth/me").await.0, StatusCode::OK);

    // …and nothing to the account: no e-mail change, no token or session management.
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::PATCH,
            "/api/v1/auth/me".into(),
            Some(json!({ "email": "attacker@example.com" })),
        ),
        (Method::GET, "/api/v1/api-tokens".into(), None),
        (
            Method::POST,
            "/api/v1/api-tokens".into(),
            Some(json!({ "name": "more", "permissions": ["servers.read"] })),
        ),
        (
            Method::DELETE,
            format!("/api/v1/api-tokens/{other_id}"),
            None,
        ),
        (Method::GET, "/api/v1/auth/sessions".into(), None),
        (
            Method::POST,
            "/api/v1/auth/sessions/revoke-others".into(),
            None,
        ),
        (Method::POST, "/api/v1/auth/logout".into(), None),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            Some(
                json!({ "current_password": PASSWORD, "new_password": "taken-over-passphrase-9" }),
            ),
        ),
        (Method::POST, "/api/v1/auth/totp/enroll".into(), None),
        (
            Method::POST,
            "/api/v1/auth/step-up".into(),
            Some(json!({ "password": PASSWORD })),
        ),
    ];
    for (method, path, body) in attempts {
        let (st, b) = narrow.call(method.clone(), &path, body).await;
        assert_eq!(
            (st, code(&b)),
            (StatusCode::FORBIDDEN, "session_required"),
            "{method} {path}: {b}"
        );
    }
    let (_, me) = admin.get("/api/v1/auth/me").await;
    assert!(me["email"].is_null(), "{me}");
    assert_eq!(other.get("/api/v1/servers").await.0, StatusCode::OK);
    // The token's permissions are its own: even one holding users.manage cannot reach the
    // session and token routes of other users.
    let (_, manager) = token(&admin, &["users.manage"]).await;
    let admin_id = user_id(&admin, ADMIN).await;
    for path in [
        format!("/api/v1/users/{admin_id}/sessions"),
        format!("/api/v1/users/{admin_id}/api-tokens"),
    ] {
        let (st, b) = manager.get(&path).await;
        assert_eq!((st, code(&b)), (StatusCode::FORBIDDEN, "session_required"));
    }
}

#[tokio::test]
async fn users_list_and_end_their_own_sessions() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let bob = app.user_with_roles(&admin, "bob", &["viewer"]).await;
    // Bob logs in from a second browser.
    let phone = reqwest::Client::builder()
        .user_agent("Bob's phone")
        .build()
        .unwrap();
    let (st, body) = send(
        &phone,
        Method::POST,
        &app.url("/api/v1/auth/login"),
        None,
        Some(json!({ "username": "bob", "password": PASSWORD })),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let bob_phone = Session {
        client: phone,
        ..app.session(&body)
    };

    let (st, list) = bob.get("/api/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_session = list
        .iter()
        .find(|s| s["user_agent"] == "Bob's phone")
        .expect("the phone's session, with its user agent");
    assert_eq!(phone_session["current"], false);
    assert_eq!(phone_session["source_ip"], "127.0.0.1");
    for field in ["created_at", "last_seen_at", "expires_at"] {
        assert!(phone_session[field].is_string(), "{field}: {phone_session}");
    }
    let phone_id = phone_session["id"].as_str().unwrap().to_string();

    // Someone else's session id is not Bob's to end (and is not revealed).
    let (_, admin_sessions) = admin.get("/api/v1/auth/sessions").await;
    let admin_session = admin_sessions[0]["id"].as_str().unwrap().to_string();
    let (st, _) = bob
        .delete(&format!("/api/v1/auth/sessions/{admin_session}"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(admin.get("/api/v1/auth/me").await.0, StatusCode::OK);

    // Bob ends the phone's session: its access token and refresh token stop working.
    let (st, _) = bob
        .delete(&format!("/api/v1/auth/sessions/{phone_id}"))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, b) = bob_phone.get("/api/v1/auth/me").await;
    assert_eq!((st, code(&b)), (StatusCode::UNAUTHORIZED, "session_ended"));
    let (st, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": bob_phone.refresh })),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = bob
        .delete(&format!("/api/v1/auth/sessions/{phone_id}"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "already ended");

    // "Sign out everywhere else" keeps the current one.
    let third = app.login("bob", PASSWORD).await;
    let (st, b) = bob
        .post("/api/v1/auth/sessions/revoke-others", json!({}))
        .await;
    assert_eq!(
        (st, b["revoked"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{b}"
    );
    assert_eq!(
        third.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bob.get("/api/v1/auth/me").await.0, StatusCode::OK);
    let (_, list) = bob.get("/api/v1/auth/sessions").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let actions = app.audit_actions().await;
    assert!(actions.contains(&("session.revoke".into(), "success".into())));
    assert!(actions.contains(&("session.revoke_all".into(), "success".into())));
}

#[tokio::test]
async fn administrators_end_sessions_and_tokens_only_of_users_they_cover() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .post(
            "/api/v1/roles",
            json!({ "name": "people", "permissions": ["users.manage", "servers.read"] }),
        )
        .await;
    let hr = app.user_with_roles(&admin, "hr", &["people"]).await;
    let bob = app.user_with_roles(&admin, "bob", &["viewer"]).await;
    let (bob_token_id, bob_token) = token(&bob, &["servers.read"]).await;
    let bob_id = user_id(&admin, "bob").await;
    let admin_id = user_id(&admin, ADMIN).await;

    // The user manager covers a viewer: sees and ends Bob's sessions and tokens.
    let (st, sessions) = hr.get(&format!("/api/v1/users/{bob_id}/sessions")).await;
    assert_eq!(st, StatusCode::OK, "{sessions}");
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    let bob_session = sessions[0]["id"].as_str().unwrap().to_string();
    let (st, tokens) = hr.get(&format!("/api/v1/users/{bob_id}/api-tokens")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(tokens[0]["id"], bob_token_id.as_str());
    assert_eq!(bob_token.get("/api/v1/servers").await.0, StatusCode::OK);
    let (st, _) = hr
        .delete(&format!("/api/v1/users/{bob_id}/api-tokens/{bob_token_id}"))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        bob_token.get("/api/v1/servers").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _) = hr
        .delete(&format!("/api/v1/users/{bob_id}/sessions/{bob_session}"))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(bob.get("/api/v1/auth/me").await.0, StatusCode::UNAUTHORIZED);
    let bob_again = app.login("bob", PASSWORD).await;
    let (st, b) = hr
        .post(
            &format!("/api/v1/users/{bob_id}/sessions/revoke-all"),
            json!({}),
        )
        .await;
    assert_eq!((st, b["revoked"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(
        bob_again.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A session id of another user, named under Bob, is not found.
    let (_, hr_sessions) = hr.get("/api/v1/auth/sessions").await;
    let hr_session = hr_sessions[0]["id"].as_str().unwrap();
    let (st, _) = hr
        .delete(&format!("/api/v1/users/{bob_id}/sessions/{hr_session}"))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // But not the administrator's: they hold more than the user manager.
    let (admin_token_id, admin_token) = token(&admin, &["servers.read"]).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/users/{admin_id}/sessions")),
        (Method::GET, format!("/api/v1/users/{admin_id}/api-tokens")),
        (
            Method::POST,
            format!("/api/v1/users/{admin_id}/sessions/revoke-all"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{admin_id}/api-tokens/{admin_token_id}"),
        ),
    ] {
        let (st, b) = hr.call(method.clone(), &path, Some(json!({}))).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}: {b}");
    }
    assert_eq!(admin.get("/api/v1/auth/me").await.0, StatusCode::OK);
    assert_eq!(admin_token.get("/api/v1/servers").await.0, StatusCode::OK);
    // Nor may a viewer look at anyone's.
    let (st, _) = app
        .login("bob", PASSWORD)
        .await
        .get(&format!("/api/v1/users/{admin_id}/sessions"))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let revokes: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, details FROM audit_events WHERE action IN ('session.revoke', 'session.revoke_all', 'api_token.revoke') AND outcome = 'success' ORDER BY at, id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let actions: Vec<&str> = revokes.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["api_token.revoke", "session.revoke", "session.revoke_all"]
    );
}

/// How many active holders of the admin role there are.
async fn active_admins(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
         JOIN users u ON u.id = ur.user_id WHERE r.name = 'admin' AND u.disabled_at IS NULL",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_admins_removing_each_other_at_once_leave_one() {
    let app = TestApp::spawn().await;
    let mut a = app.admin().await;
    let (st, b) = a
        .post(
            "/api/v1/users",
            json!({ "username": "admin2", "password": PASSWORD, "roles": ["admin"], "password_change_required": false }),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let mut b = app.login("admin2", PASSWORD).await;
    let mut names = (ADMIN.to_string(), "admin2".to_string());
    let mut outcomes = Vec::new();

    for round in 0..24 {
        let a_id = user_id(&a, &names.0).await;
        let b_id = user_id(&a, &names.1).await;
        // Each removes the other at the same moment: demote, disable or delete.
        let remove = |s: &Session, id: &str| {
            let s = s.clone();
            let path = format!("/api/v1/users/{id}");
            async move {
                match round % 3 {
                    0 => s.patch(&path, json!({ "roles": [] })).await,
                    1 => s.patch(&path, json!({ "disabled": true })).await,
                    _ => s.delete(&path).await,
                }
            }
        };
        let ((sa, ba), (sb, bb)) = join(remove(&a, &b_id), remove(&b, &a_id)).await;
        assert_eq!(
            active_admins(&app).await,
            1,
            "round {round}: {sa} {ba} / {sb} {bb}"
        );
        outcomes.push((sa, code(&ba).to_string(), sb, code(&bb).to_string()));
        // The refused one got a clear answer.
        for (s, body) in [(sa, &ba), (sb, &bb)] {
            assert!(
                s.is_success()
                    || (s == StatusCode::CONFLICT && code(body) == "last_admin")
                    || s == StatusCode::FORBIDDEN
                    || s == StatusCode::UNAUTHORIZED,
                "round {round}: {s} {body}"
            );
        }

        // The survivor brings the other back as an administrator, with a fresh session.
        let (survivor, survivor_name, gone_name, gone_id) = if sa.is_success() {
            (a.clone(), names.0.clone(), names.1.clone(), b_id)
        } else {
            (b.clone(), names.1.clone(), names.0.clone(), a_id)
        };
        let gone_name = match round % 3 {
            0 => {
                let (st, _) = survivor
                    .patch(
                        &format!("/api/v1/users/{gone_id}"),
                        json!({ "roles": ["admin"] }),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK);
                gone_name
            }
            1 => {
                let (st, _) = survivor
                    .patch(
                        &format!("/api/v1/users/{gone_id}"),
                        json!({ "disabled": false }),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK);
                gone_name
            }
            _ => {
                let name = format!("admin-r{round}");
                let (st, body) = survivor
                    .post("/api/v1/users", json!({ "username": name, "password": PASSWORD, "roles": ["admin"], "password_change_required": false }))
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{body}");
                name
            }
        };
        let revived = app.login(&gone_name, PASSWORD).await;
        a = survivor;
        b = revived;
        names = (survivor_name, gone_name);
        assert_eq!(active_admins(&app).await, 2);
    }
    // Both requests really raced: in some rounds both passed authorization and the store
    // refused the second.
    assert!(
        outcomes.iter().any(
            |(sa, ca, sb, cb)| (*sa == StatusCode::CONFLICT && ca == "last_admin")
                || (*sb == StatusCode::CONFLICT && cb == "last_admin")
        ),
        "{outcomes:?}"
    );
}
