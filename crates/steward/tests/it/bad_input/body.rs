//! Body parsing on every JSON endpoint: malformed JSON, wrong content types, non-object bodies, wrong types, missing and unknown fields, oversized bodies.
use super::*;

#[tokio::test]
async fn malformed_json_wrong_content_type_and_non_object_bodies_on_every_json_endpoint() {
    let w = world().await;
    let (app, token) = (&w.app, Some(w.admin.token.as_str()));
    let mut p = Probe::default();
    let before = stored(app).await;
    let server_json = w
        .admin
        .get(&format!("/api/v1/servers/{}", w.server))
        .await
        .1;

    let not_objects = ["null", "[]", "\"servers\"", "42", "true"];

    for (method, path, valid) in json_endpoints(&w) {
        let at = format!("{method} {path}");
        for (what, body) in malformed(&valid) {
            let got = raw(
                app,
                token,
                method.clone(),
                &path,
                Some("application/json"),
                body,
            )
            .await;
            p.error(
                &format!("{at} with {what}"),
                got,
                StatusCode::BAD_REQUEST,
                "malformed_json",
                None,
            );
        }
        // 100,000 unclosed brackets: refused as malformed or as the wrong type, without
        // exhausting the stack.
        let got = raw(
            app,
            token,
            method.clone(),
            &path,
            Some("application/json"),
            "[".repeat(100_000).into_bytes(),
        )
        .await;
        let (status, want) = if code(&got.1) == "malformed_json" {
            (StatusCode::BAD_REQUEST, "malformed_json")
        } else {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        };
        p.error(
            &format!("{at} with 100,000 nested arrays"),
            got,
            status,
            want,
            None,
        );
        for body in not_objects {
            let got = raw(
                app,
                token,
                method.clone(),
                &path,
                Some("application/json"),
                body.as_bytes().to_vec(),
            )
            .await;
            p.invalid_body(&format!("{at} with body {body}"), got);
        }
        let got = raw(
            app,
            token,
            method.clone(),
            &path,
            Some("application/json"),
            duplicate_first_key(&valid),
        )
        .await;
        p.invalid_body(&format!("{at} with a duplicated key"), got);

        let valid_bytes = valid.to_string().into_bytes();
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
        ] {
            let got = raw(app, token, method.clone(), &path, ct, valid_bytes.clone()).await;
            p.error(
                &format!("{at} with a valid body and Content-Type {ct:?}"),
                got,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            );
        }
    }

    // The refresh endpoint takes an optional body (browsers send only the cookie), so it does
    // not insist on a Content-Type; a body that is there must still parse.
    let refresh = "/api/v1/auth/refresh";
    for (what, body) in malformed(&json!({ "refresh_token": "x" }))
        .into_iter()
        .filter(|(_, b)| !b.is_empty())
    {
        let got = raw(
            app,
            None,
            Method::POST,
            refresh,
            Some("application/json"),
            body,
        )
        .await;
        p.error(
            &format!("POST {refresh} with {what}"),
            got,
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        );
    }
    let got = raw(
        app,
        None,
        Method::POST,
        refresh,
        Some("application/json"),
        Vec::new(),
    )
    .await;
    p.error(
        &format!("POST {refresh} with no body and no cookie"),
        got,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
        None,
    );
    for body in not_objects {
        let got = raw(
            app,
            None,
            Method::POST,
            refresh,
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
        .await;
        p.invalid_body(&format!("POST {refresh} with body {body}"), got);
    }

    p.unchanged(app, &before, "after malformed bodies").await;
    let after = w
        .admin
        .get(&format!("/api/v1/servers/{}", w.server))
        .await
        .1;
    p.check(
        "server JSON after malformed bodies",
        after == server_json,
        || format!("{server_json} became {after}"),
    );
    p.alive(app, "malformed bodies").await;
    p.finish();
}

#[tokio::test]
async fn wrong_types_missing_fields_and_unknown_fields_are_invalid_body() {
    let w = world().await;
    let app = &w.app;
    let mut p = Probe::default();
    let before = stored(app).await;

    // A valid body plus a field nobody knows, or a misspelt one, is refused on every endpoint.
    let mut cases: Vec<(Method, String, String)> = Vec::new();
    for (method, path, valid) in json_endpoints(&w) {
        for extra in ["bogus", "Name", "nmae"] {
            cases.push((
                method.clone(),
                path.clone(),
                with(&valid, extra, json!("x")).to_string(),
            ));
        }
    }

    let (server, bob, role) = (&w.server, &w.bob, &w.role);
    let mut add = |method: &Method, path: &str, body: Value| {
        cases.push((method.clone(), path.to_string(), body.to_string()))
    };
    let server_body = json!({ "name": "new-1", "host": "10.0.0.1", "ssh_user": "root" });
    let server_paths = [
        (Method::POST, "/api/v1/servers".to_string()),
        (Method::PUT, format!("/api/v1/servers/{server}")),
    ];
    for (m, path) in &server_paths {
        for field in ["name", "host", "ssh_user"] {
            add(m, path, without(&server_body, field));
            add(m, path, with(&server_body, field, json!(5)));
            add(m, path, with(&server_body, field, json!(null)));
            add(m, path, with(&server_body, field, json!(["x"])));
        }
        for port in [
            json!("22"),
            json!(22.5),
            json!(true),
            json!([22]),
            json!(-1.0),
        ] {
            add(m, path, with(&server_body, "port", port));
        }
        for tags in [
            json!("web"),
            json!([1]),
            json!([null]),
            json!({ "web": true }),
        ] {
            add(m, path, with(&server_body, "tags", tags));
        }
        for notes in [json!(5), json!(null), json!(["x"])] {
            add(m, path, with(&server_body, "notes", notes));
        }
        for auth_method in [json!("telnet"), json!("KEY"), json!(1), json!("")] {
            add(m, path, with(&server_body, "auth_method", auth_method));
        }
        add(m, path, json!({}));
        // Fields by position instead of by name are not a server definition either.
        add(
            m,
            path,
            json!([format!("sneaky-{m}"), "10.0.0.1", 22, "root", "key", [], ""]),
        );
    }

    let user_body = json!({ "username": "carol", "password": PASSWORD });
    for body in [
        json!({}),
        without(&user_body, "username"),
        without(&user_body, "password"),
        with(&user_body, "username", json!(5)),
        with(&user_body, "password", json!(null)),
        with(&user_body, "email", json!(5)),
        with(&user_body, "roles", json!("admin")),
        with(&user_body, "roles", json!([1])),
        with(&user_body, "require_totp", json!("yes")),
        with(&user_body, "password_change_required", json!(1)),
    ] {
        add(&Method::POST, "/api/v1/users", body);
    }
    for body in [
        json!({ "disabled": "yes" }),
        json!({ "roles": "admin" }),
        json!({ "email": 5 }),
        json!({ "require_totp": 1 }),
        json!([true]),
    ] {
        add(&Method::PATCH, &format!("/api/v1/users/{bob}"), body);
    }
    for body in [
        json!({}),
        json!({ "new_password": 5 }),
        json!({ "new_password": "another-long-passphrase-9", "password_change_required": "no" }),
    ] {
        add(
            &Method::POST,
            &format!("/api/v1/users/{bob}/password"),
            body,
        );
    }

    let role_body = json!({ "name": "r2", "permissions": ["servers.read"] });
    for (m, path) in [
        (Method::POST, "/api/v1/roles".to_string()),
        (Method::PUT, format!("/api/v1/roles/{role}")),
    ] {
        for body in [
            json!({}),
            without(&role_body, "name"),
            without(&role_body, "permissions"),
            with(&role_body, "name", json!(1)),
            with(&role_body, "description", json!(null)),
            with(&role_body, "permissions", json!("servers.read")),
            with(&role_body, "permissions", json!([1])),
            // Unknown permission names are refused, not silently dropped.
            with(&role_body, "permissions", json!(["servers.nuke"])),
            with(
                &role_body,
                "permissions",
                json!(["servers.read", "everything"]),
            ),
            with(&role_body, "permissions", json!(["SERVERS.READ"])),
            with(&role_body, "permissions", json!(["*"])),
            with(&role_body, "permissions", json!([""])),
            with(&role_body, "permissions", json!(["servers.read\u{0}"])),
            with(
                &role_body,
                "permissions",
                json!(["'; DROP TABLE roles; --"]),
            ),
            with(&role_body, "server_tags", json!("web")),
            with(&role_body, "server_tags", json!([1])),
        ] {
            add(&m, &path, body);
        }
    }

    let token_body = json!({ "name": "t", "permissions": ["servers.read"] });
    for body in [
        json!({}),
        without(&token_body, "name"),
        without(&token_body, "permissions"),
        with(&token_body, "name", json!(null)),
        with(&token_body, "permissions", json!("servers.read")),
        with(&token_body, "permissions", json!(["everything"])),
        with(
            &token_body,
            "permissions",
            json!(["servers.read", "servers.nuke"]),
        ),
        with(&token_body, "permissions", json!(["Servers.Read"])),
        with(&token_body, "permissions", json!(["%"])),
        with(&token_body, "expires_in_days", json!("30")),
        with(&token_body, "expires_in_days", json!(1.5)),
    ] {
        add(&Method::POST, "/api/v1/api-tokens", body);
    }

    for body in [
        json!({ "email": 5 }),
        json!({ "locale": ["en"] }),
        json!({ "locale": 1 }),
        json!([]),
    ] {
        add(&Method::PATCH, "/api/v1/auth/me", body);
    }
    for body in [
        json!({}),
        json!({ "current_password": PASSWORD }),
        json!({ "current_password": PASSWORD, "new_password": 5 }),
    ] {
        add(&Method::POST, "/api/v1/auth/password", body);
    }
    for body in [json!({}), json!({ "code": 123_456 })] {
        add(&Method::POST, "/api/v1/auth/totp/confirm", body);
    }
    for body in [json!({}), json!({ "password": null })] {
        add(&Method::POST, "/api/v1/auth/totp/recovery-codes", body);
    }
    for body in [json!({}), json!({ "password": 5 })] {
        add(&Method::DELETE, "/api/v1/auth/totp", body);
    }
    for body in [
        json!({}),
        json!({ "require_totp": "true" }),
        json!({ "require_totp": 1 }),
        json!({ "require_totp": null }),
        json!({ "require_totp": false, "check_allowed_networks": "127.0.0.0/8" }),
        json!({ "require_totp": false, "check_allowed_networks": [1] }),
        json!({ "require_totp": false, "check_allowed_networks": [["127.0.0.1"]] }),
    ] {
        add(&Method::PUT, "/api/v1/settings", body);
    }
    let credential = format!("/api/v1/servers/{server}/credential");
    for body in [
        json!({}),
        json!({ "password": "ssh-pass-1" }),
        json!({ "kind": "ssh_key" }),
        json!({ "kind": "Password", "password": "ssh-pass-1" }),
        json!({ "kind": null }),
        json!({ "kind": 1 }),
        json!({ "kind": "password" }),
        json!({ "kind": "private_key" }),
        json!({ "kind": "password", "password": 5 }),
        json!({ "kind": "private_key", "private_key": PLAIN_KEY, "passphrase": 5 }),
        // Fields of another kind are unknown fields of this one.
        json!({ "kind": "password", "password": "ssh-pass-1", "private_key": PLAIN_KEY }),
        json!({ "kind": "private_key", "private_key": PLAIN_KEY, "password": "ssh-pass-1" }),
        json!({ "kind": "generate", "password": "ssh-pass-1" }),
        json!({ "kind": "generate", "private_key": PLAIN_KEY }),
        json!({ "kind": "generate", "bogus": 1 }),
    ] {
        add(&Method::PUT, &credential, body);
    }
    for body in [
        json!({}),
        json!({ "username": ADMIN }),
        json!({ "password": PASSWORD }),
        json!({ "username": 1, "password": PASSWORD }),
        json!({ "username": ADMIN, "password": null }),
        json!({ "username": ADMIN, "password": PASSWORD, "totp_code": 123_456 }),
        json!({ "username": ADMIN, "password": PASSWORD, "recovery_code": ["x"] }),
    ] {
        add(&Method::POST, "/api/v1/auth/login", body);
    }
    for body in [
        json!({}),
        json!({ "token": 1, "username": "root2", "password": PASSWORD }),
        json!({ "token": "x", "username": null, "password": PASSWORD }),
        json!({ "token": "x", "username": "root2" }),
        json!({ "token": "x", "username": "root2", "password": PASSWORD, "email": 5 }),
    ] {
        add(&Method::POST, "/api/v1/setup", body);
    }
    let check_body =
        json!({ "name": "c2", "spec": { "type": "tcp", "host": "10.0.0.1", "port": 22 } });
    for (m, path) in [
        (Method::POST, "/api/v1/checks".to_string()),
        (Method::PUT, format!("/api/v1/checks/{}", w.check)),
    ] {
        for body in [
            json!({}),
            without(&check_body, "name"),
            without(&check_body, "spec"),
            with(&check_body, "name", json!(1)),
            with(&check_body, "server_id", json!(5)),
            with(&check_body, "interval_secs", json!("60")),
            with(&check_body, "interval_secs", json!(-1)),
            with(&check_body, "interval_secs", json!(1.5)),
            with(&check_body, "timeout_secs", json!(99_999_999_999_i64)),
            with(&check_body, "enabled", json!("yes")),
            with(&check_body, "spec", json!("tcp")),
            with(
                &check_body,
                "spec",
                json!({ "host": "10.0.0.1", "port": 22 }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "ping", "host": "10.0.0.1" }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "TCP", "host": "10.0.0.1", "port": 22 }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "tcp", "host": "10.0.0.1", "port": 70000 }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "tcp", "host": "10.0.0.1", "port": "22" }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "tcp", "host": "10.0.0.1" }),
            ),
            // Fields of another kind are unknown fields of this one.
            with(
                &check_body,
                "spec",
                json!({ "type": "tcp", "host": "10.0.0.1", "port": 22, "url": "http://x/" }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "http", "url": "http://x/", "method": "POST" }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "http", "url": "http://x/", "verify_tls": "no" }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "http", "url": "http://x/", "max_response_ms": -5 }),
            ),
            with(&check_body, "spec", json!({ "type": "http" })),
            with(
                &check_body,
                "spec",
                json!({ "type": "dns", "name": "example.com", "record_type": "SOA" }),
            ),
            with(
                &check_body,
                "spec",
                json!({ "type": "dns", "name": "example.com", "record_type": "a" }),
            ),
        ] {
            add(&m, &path, body);
        }
    }
    // Numbers beyond 64 bits.
    let huge = "99999999999999999999";
    cases.push((
        Method::POST,
        "/api/v1/servers".into(),
        format!(r#"{{"name":"n","host":"10.0.0.1","ssh_user":"root","port":{huge}}}"#),
    ));
    cases.push((
        Method::POST,
        "/api/v1/api-tokens".into(),
        format!(r#"{{"name":"t","permissions":["servers.read"],"expires_in_days":{huge}}}"#),
    ));

    let token = Some(w.admin.token.as_str());
    for (method, path, body) in cases {
        let what = format!("{method} {path} with {}", short(&body));
        let got = raw(
            app,
            token,
            method,
            &path,
            Some("application/json"),
            body.into_bytes(),
        )
        .await;
        p.invalid_body(&what, got);
    }

    // The refresh endpoint's body follows the same rules.
    for body in [
        json!({ "refresh_token": 5 }),
        json!({ "refresh_token": "x", "bogus": 1 }),
        json!({ "token": "x" }),
    ] {
        let got = app
            .call(Method::POST, "/api/v1/auth/refresh", Some(body.clone()))
            .await;
        p.invalid_body(&format!("POST /api/v1/auth/refresh with {body}"), got);
    }

    p.unchanged(app, &before, "after wrongly typed bodies")
        .await;
    // Nothing was half-applied either: bob can still log in.
    let bob = app.login("bob", PASSWORD).await;
    p.ok(
        "bob after the bad PATCHes",
        bob.get("/api/v1/auth/me").await,
        StatusCode::OK,
    );
    p.alive(app, "wrongly typed bodies").await;
    p.finish();
}

#[tokio::test]
async fn a_ten_megabyte_body_is_refused_with_413_and_the_server_keeps_answering() {
    let w = world().await;
    let (app, token) = (&w.app, Some(w.admin.token.as_str()));
    let mut p = Probe::default();
    let before = stored(app).await;

    let huge = json!({ "notes": chars(10 * 1024 * 1024), "name": "big", "host": "10.0.0.1", "ssh_user": "root" }).to_string().into_bytes();
    let targets: Vec<(Method, String, Option<&str>)> = vec![
        (Method::POST, "/api/v1/servers".into(), token),
        (Method::PUT, format!("/api/v1/servers/{}", w.server), token),
        (
            Method::PUT,
            format!("/api/v1/servers/{}/credential", w.server),
            token,
        ),
        (Method::POST, "/api/v1/users".into(), token),
        (Method::POST, "/api/v1/roles".into(), token),
        (Method::POST, "/api/v1/api-tokens".into(), token),
        (Method::PATCH, "/api/v1/auth/me".into(), token),
        (Method::POST, "/api/v1/auth/login".into(), None),
        (Method::POST, "/api/v1/setup".into(), None),
        (Method::POST, "/api/v1/auth/refresh".into(), None),
    ];
    for (method, path, token) in &targets {
        let got = raw(
            app,
            *token,
            method.clone(),
            path,
            Some("application/json"),
            huge.clone(),
        )
        .await;
        p.error(
            &format!("{method} {path} with a 10 MB body"),
            got,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            None,
        );
        // …and the server is still there for the next request.
        p.ok(
            &format!("GET /api/v1/servers after the 10 MB {method} {path}"),
            w.admin.get("/api/v1/servers").await,
            StatusCode::OK,
        );
    }

    // Just over the documented 1 MiB limit is refused too; just under it is read and validated.
    let over = json!({ "name": "big", "host": "10.0.0.1", "ssh_user": "root", "notes": chars(1024 * 1024) });
    let got = raw(
        app,
        token,
        Method::POST,
        "/api/v1/servers",
        Some("application/json"),
        over.to_string().into_bytes(),
    )
    .await;
    p.error(
        "POST /api/v1/servers with a body just over 1 MiB",
        got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    let under = json!({ "name": "big", "host": "10.0.0.1", "ssh_user": "root", "notes": chars(1000 * 1000) });
    let got = w.admin.post("/api/v1/servers", under).await;
    p.invalid(
        "POST /api/v1/servers with 1,000,000 characters of notes",
        got,
        "notes",
    );

    p.unchanged(app, &before, "after oversized bodies").await;
    p.alive(app, "oversized bodies").await;
    p.finish();
}
