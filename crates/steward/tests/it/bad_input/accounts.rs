//! Users, roles, API tokens and the caller's own account (profile, password, TOTP).
use super::*;

#[tokio::test]
async fn user_fields_are_validated_and_duplicate_usernames_conflict() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;

    let base = json!({ "username": "carol", "password": PASSWORD, "email": "carol@example.com", "roles": ["viewer"] });
    let mut cases: Vec<(String, Value, String)> = Vec::new();
    for v in bad_identifiers(true).into_iter().chain([
        chars(65),
        "-carol".into(),
        "carol smith".into(),
        "carol:x".into(),
    ]) {
        cases.push((
            format!("username {}", short(&v)),
            with(&base, "username", json!(v)),
            "username".into(),
        ));
    }
    let mut bad_emails: Vec<String> = vec![
        chars(10_000),
        "not an email".into(),
        "carol@localhost".into(),
        "carol@@example.com".into(),
        "@example.com".into(),
    ];
    bad_emails.extend(CONTROLS.iter().map(|c| format!("car{c}ol@example.com")));
    bad_emails.extend([
        "'; DROP TABLE users; --@example.com".to_string(),
        "\" OR 1=1 --@example.com".into(),
    ]);
    for v in &bad_emails {
        cases.push((
            format!("email {}", short(v)),
            with(&base, "email", json!(v)),
            "email".into(),
        ));
    }
    let mut bad_passwords: Vec<String> = vec![
        String::new(),
        "short".into(),
        chars(10_000),
        "password123".into(),
        "carolcarol1".into(),
    ];
    bad_passwords.extend(CONTROLS.iter().map(|c| format!("{PASSWORD}{c}")));
    for v in &bad_passwords {
        cases.push((
            format!("password {}", short(v)),
            with(&base, "password", json!(v)),
            "password".into(),
        ));
    }
    let mut bad_roles: Vec<String> =
        vec![String::new(), "nope".into(), chars(10_000), "Admin".into()];
    bad_roles.extend(CONTROLS.iter().map(|c| format!("viewer{c}")));
    bad_roles.extend(SQL_META.iter().map(|m| format!("viewer{m}")));
    bad_roles.push(uuid::Uuid::new_v4().to_string());
    for v in &bad_roles {
        cases.push((
            format!("role {}", short(v)),
            with(&base, "roles", json!(["viewer", v])),
            "roles[1]".into(),
        ));
    }
    for (what, body, field) in &cases {
        let got = admin.post("/api/v1/users", body.clone()).await;
        p.invalid(&format!("POST /api/v1/users with {what}"), got, field);
    }

    // Changing a user validates the same way.
    let bob = format!("/api/v1/users/{}", w.bob);
    for v in &bad_emails {
        p.invalid(
            &format!("PATCH user with email {}", short(v)),
            admin.patch(&bob, json!({ "email": v })).await,
            "email",
        );
    }
    for v in &bad_roles {
        p.invalid(
            &format!("PATCH user with role {}", short(v)),
            admin.patch(&bob, json!({ "roles": [v] })).await,
            "roles[0]",
        );
    }
    for v in &bad_passwords {
        let got = admin
            .post(&format!("{bob}/password"), json!({ "new_password": v }))
            .await;
        p.invalid(
            &format!("reset password to {}", short(v)),
            got,
            "new_password",
        );
    }

    // Usernames are unique after normalization.
    for name in ["bob", "BOB", " bob ", "admin"] {
        let got = admin
            .post("/api/v1/users", with(&base, "username", json!(name)))
            .await;
        p.error(
            &format!("POST /api/v1/users with taken username {name:?}"),
            got,
            StatusCode::CONFLICT,
            "conflict",
            Some("username"),
        );
    }

    p.unchanged(app, &before, "after bad user input").await;
    app.login("bob", PASSWORD).await;
    p.alive(app, "bad user input").await;
    p.finish();
}

#[tokio::test]
async fn role_fields_are_validated_and_duplicate_or_builtin_roles_conflict() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let (s, r2) = admin
        .post(
            "/api/v1/roles",
            json!({ "name": "r2", "permissions": ["servers.read"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r2}");
    let before = stored(app).await;
    let role_json = admin.get(&format!("/api/v1/roles/{}", w.role)).await.1;

    let base = json!({ "name": "r3", "description": "", "permissions": ["servers.read"], "server_tags": ["web"] });
    let mut cases: Vec<(String, Value, String)> = Vec::new();
    for v in bad_names() {
        cases.push((
            format!("name {}", short(&v)),
            with(&base, "name", json!(v)),
            "name".into(),
        ));
    }
    for v in bad_free_text() {
        cases.push((
            format!("description {}", short(&v)),
            with(&base, "description", json!(v)),
            "description".into(),
        ));
    }
    cases.push((
        "no permissions".into(),
        with(&base, "permissions", json!([])),
        "permissions".into(),
    ));
    cases.push((
        "no server tags".into(),
        with(&base, "server_tags", json!([])),
        "server_tags".into(),
    ));
    for v in bad_identifiers(true)
        .into_iter()
        .chain(["no spaces".to_string()])
    {
        cases.push((
            format!("server tag {}", short(&v)),
            with(&base, "server_tags", json!(["web", v])),
            "server_tags[1]".into(),
        ));
    }
    let too_many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    cases.push((
        "33 server tags".into(),
        with(&base, "server_tags", json!(too_many)),
        "server_tags".into(),
    ));
    cases.push((
        "an organization-wide permission limited to tags".into(),
        with(
            &base,
            "permissions",
            json!(["servers.read", "users.manage"]),
        ),
        "permissions".into(),
    ));

    let role = format!("/api/v1/roles/{}", w.role);
    for (what, body, field) in &cases {
        p.invalid(
            &format!("POST /api/v1/roles with {what}"),
            admin.post("/api/v1/roles", body.clone()).await,
            field,
        );
        p.invalid(
            &format!("PUT /api/v1/roles/{{id}} with {what}"),
            admin.put(&role, body.clone()).await,
            field,
        );
    }

    // Names are unique, built-in ones included; built-in roles cannot change.
    for name in ["r1", " r1 ", "r2", "admin", "viewer"] {
        let got = admin
            .post("/api/v1/roles", with(&base, "name", json!(name)))
            .await;
        p.error(
            &format!("POST /api/v1/roles with taken name {name:?}"),
            got,
            StatusCode::CONFLICT,
            "conflict",
            Some("name"),
        );
    }
    for name in ["r2", "operator"] {
        let got = admin.put(&role, with(&base, "name", json!(name))).await;
        p.error(
            &format!("PUT r1 renamed to {name:?}"),
            got,
            StatusCode::CONFLICT,
            "conflict",
            Some("name"),
        );
    }
    let (_, roles) = admin.get("/api/v1/roles").await;
    let builtin = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "viewer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = admin
        .put(
            &format!("/api/v1/roles/{builtin}"),
            with(&base, "name", json!("viewer")),
        )
        .await;
    p.error(
        "PUT on the built-in viewer role",
        got,
        StatusCode::CONFLICT,
        "builtin_role",
        None,
    );
    let got = admin.delete(&format!("/api/v1/roles/{builtin}")).await;
    p.error(
        "DELETE the built-in viewer role",
        got,
        StatusCode::CONFLICT,
        "builtin_role",
        None,
    );

    p.unchanged(app, &before, "after bad role input").await;
    let after = admin.get(&role).await.1;
    p.check("r1's JSON after bad PUTs", after == role_json, || {
        format!("{role_json} became {after}")
    });
    p.alive(app, "bad role input").await;
    p.finish();
}

#[tokio::test]
async fn api_token_fields_are_validated_and_another_users_token_is_not_found() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let bob = app.login("bob", PASSWORD).await;
    let (s, bobs) = bob
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "bob-ci", "permissions": ["servers.read"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{bobs}");
    let (s, admins) = admin
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "admin-ci", "permissions": ["servers.read"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{admins}");
    let before = stored(app).await;

    let base = json!({ "name": "t", "permissions": ["servers.read"], "expires_in_days": 30 });
    for v in bad_names() {
        p.invalid(
            &format!("POST token named {}", short(&v)),
            admin
                .post("/api/v1/api-tokens", with(&base, "name", json!(v)))
                .await,
            "name",
        );
    }
    p.invalid(
        "POST token without permissions",
        admin
            .post("/api/v1/api-tokens", with(&base, "permissions", json!([])))
            .await,
        "permissions",
    );
    for days in [0, -1, 3651, i64::MAX, i64::MIN] {
        let got = admin
            .post(
                "/api/v1/api-tokens",
                with(&base, "expires_in_days", json!(days)),
            )
            .await;
        p.invalid(
            &format!("POST token expiring in {days} days"),
            got,
            "expires_in_days",
        );
    }
    // Permissions the caller does not hold cannot be granted.
    let got = bob
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "x", "permissions": ["servers.read", "users.manage"] }),
        )
        .await;
    p.error(
        "bob asks for users.manage",
        got,
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
    );

    // Someone else's token id is simply not found, whoever asks — even an administrator.
    let bob_token = bobs["api_token"]["id"].as_str().unwrap();
    let admin_token = admins["api_token"]["id"].as_str().unwrap();
    p.error(
        "admin revokes bob's token",
        admin
            .delete(&format!("/api/v1/api-tokens/{bob_token}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    p.error(
        "bob revokes admin's token",
        bob.delete(&format!("/api/v1/api-tokens/{admin_token}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let (_, list) = admin.get("/api/v1/api-tokens").await;
    p.check(
        "admin's list holds only admin's token",
        list.as_array().map(Vec::len) == Some(1) && list[0]["id"] == admin_token,
        || format!("{list}"),
    );

    p.unchanged(app, &before, "after bad token input").await;
    let robot = Session {
        token: bobs["token"].as_str().unwrap().to_string(),
        ..bob.clone()
    };
    p.ok(
        "bob's token still works",
        robot.get("/api/v1/servers").await,
        StatusCode::OK,
    );
    // An API token cannot mint tokens, whatever the body.
    let got = robot
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "child", "permissions": ["servers.read"] }),
        )
        .await;
    p.error(
        "a token creating a token",
        got,
        StatusCode::FORBIDDEN,
        "session_required",
        None,
    );
    p.alive(app, "bad token input").await;
    p.finish();
}

#[tokio::test]
async fn profile_password_and_totp_changes_validate_their_input() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    // 2FA enrollment in progress, so confirmation codes are actually checked.
    let (s, enroll) = admin
        .call(Method::POST, "/api/v1/auth/totp/enroll", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{enroll}");
    let (s, me) = admin
        .patch(
            "/api/v1/auth/me",
            json!({ "email": "ops@example.com", "locale": "en" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let before = stored(app).await;

    let mut bad_emails: Vec<String> = vec![
        chars(10_000),
        "not an email".into(),
        "ops@localhost".into(),
        "a b@example.com".into(),
    ];
    bad_emails.extend(CONTROLS.iter().map(|c| format!("op{c}s@example.com")));
    bad_emails.extend([
        "'; DROP TABLE users; --".to_string(),
        "\" OR 1=1 --".into(),
        "%".into(),
        "\\".into(),
    ]);
    for v in &bad_emails {
        p.invalid(
            &format!("PATCH me with email {}", short(v)),
            admin.patch("/api/v1/auth/me", json!({ "email": v })).await,
            "email",
        );
    }
    let mut bad_locales: Vec<String> = vec![
        String::new(),
        " ".into(),
        chars(10_000),
        "xx".into(),
        "EN".into(),
        "en ".into(),
        "pt-br".into(),
        "en_US".into(),
    ];
    bad_locales.extend(CONTROLS.iter().map(|c| format!("en{c}")));
    bad_locales.extend(SQL_META.iter().map(|m| format!("en{m}")));
    for v in &bad_locales {
        p.invalid(
            &format!("PATCH me with locale {}", short(v)),
            admin.patch("/api/v1/auth/me", json!({ "locale": v })).await,
            "locale",
        );
    }

    // Changing the password: a wrong current one is refused before the new one is looked at.
    let mut wrong_current: Vec<String> = vec![String::new(), chars(10_000), format!("{PASSWORD} ")];
    wrong_current.extend(CONTROLS.iter().map(|c| format!("{PASSWORD}{c}")));
    wrong_current.extend(SQL_META.iter().map(|m| m.to_string()));
    for v in &wrong_current {
        forget_attempts(app).await;
        let got = admin
            .post(
                "/api/v1/auth/password",
                json!({ "current_password": v, "new_password": "a-different-passphrase-77" }),
            )
            .await;
        p.error(
            &format!("change password with current {}", short(v)),
            got,
            StatusCode::FORBIDDEN,
            "invalid_password",
            None,
        );
    }
    let mut bad_new: Vec<String> = vec![
        String::new(),
        "short".into(),
        chars(10_000),
        "password123".into(),
    ];
    bad_new.extend(
        CONTROLS
            .iter()
            .map(|c| format!("a-different-passphrase-77{c}")),
    );
    for v in &bad_new {
        let got = admin
            .post(
                "/api/v1/auth/password",
                json!({ "current_password": PASSWORD, "new_password": v }),
            )
            .await;
        p.invalid(
            &format!("change password to {}", short(v)),
            got,
            "new_password",
        );
    }

    // Confirming 2FA with junk codes.
    let mut bad_codes: Vec<String> = vec![
        String::new(),
        "12345".into(),
        "1234567".into(),
        "abcdef".into(),
        chars(10_000),
    ];
    bad_codes.extend(CONTROLS.iter().map(|c| format!("123{c}45")));
    bad_codes.extend(SQL_META.iter().map(|m| m.to_string()));
    for v in &bad_codes {
        forget_attempts(app).await;
        let got = admin
            .post("/api/v1/auth/totp/confirm", json!({ "code": v }))
            .await;
        p.error(
            &format!("confirm 2FA with {}", short(v)),
            got,
            StatusCode::BAD_REQUEST,
            "invalid_totp",
            None,
        );
    }
    // Turning 2FA off or renewing recovery codes with a wrong password changes nothing.
    for v in &wrong_current {
        forget_attempts(app).await;
        let got = admin
            .call(
                Method::DELETE,
                "/api/v1/auth/totp",
                Some(json!({ "password": v })),
            )
            .await;
        p.error(
            &format!("disable 2FA with password {}", short(v)),
            got,
            StatusCode::FORBIDDEN,
            "invalid_password",
            None,
        );
    }
    let got = admin
        .post(
            "/api/v1/auth/totp/recovery-codes",
            json!({ "password": "'; DROP TABLE recovery_codes; --" }),
        )
        .await;
    p.error(
        "renew recovery codes while 2FA is off",
        got,
        StatusCode::CONFLICT,
        "totp_not_enabled",
        None,
    );

    forget_attempts(app).await;
    p.unchanged(app, &before, "after bad profile input").await;
    let (_, me) = admin.get("/api/v1/auth/me").await;
    p.check(
        "profile unchanged",
        me["email"] == "ops@example.com" && me["locale"] == "en",
        || format!("{me}"),
    );
    app.login(ADMIN, PASSWORD).await;
    p.alive(app, "bad profile input").await;
    p.finish();
}
