//! Server fields and the server list: empty, huge, control-character and SQL-looking values; free text kept verbatim; list query parameters.
use super::*;

#[tokio::test]
async fn server_fields_refuse_empty_huge_control_and_sql_values_on_create_and_replace() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    // A second server, to have a name to collide with.
    let other = admin.server("db-1", &["db"]).await;
    let before = stored(app).await;
    let server_json = admin.get(&format!("/api/v1/servers/{}", w.server)).await.1;

    let base = json!({ "name": "new-1", "host": "10.0.0.1", "ssh_user": "root", "tags": ["web"], "notes": "" });
    let mut cases: Vec<(String, Value, String)> = Vec::new();
    for v in bad_names() {
        cases.push((
            format!("name {}", short(&v)),
            with(&base, "name", json!(v)),
            "name".into(),
        ));
    }
    for v in bad_identifiers(false).into_iter().chain([
        "bad host".into(),
        "-x.example".into(),
        "a..b".into(),
        "http://x.example".into(),
        "10.0.0.1:22".into(),
    ]) {
        cases.push((
            format!("host {}", short(&v)),
            with(&base, "host", json!(v)),
            "host".into(),
        ));
    }
    for v in bad_identifiers(true).into_iter().chain([
        chars(33),
        "-root".into(),
        ".root".into(),
        "root user".into(),
    ]) {
        cases.push((
            format!("ssh_user {}", short(&v)),
            with(&base, "ssh_user", json!(v)),
            "ssh_user".into(),
        ));
    }
    for v in bad_identifiers(true)
        .into_iter()
        .chain([chars(51), "no spaces".into(), "-web".into()])
    {
        cases.push((
            format!("tag {}", short(&v)),
            with(&base, "tags", json!(["web", v])),
            "tags[1]".into(),
        ));
    }
    let too_many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    cases.push((
        "33 tags".into(),
        with(&base, "tags", json!(too_many)),
        "tags".into(),
    ));
    cases.push((
        "33 copies of one tag".into(),
        with(&base, "tags", json!(vec!["web"; 33])),
        "tags".into(),
    ));
    for v in bad_free_text() {
        cases.push((
            format!("notes {}", short(&v)),
            with(&base, "notes", json!(v)),
            "notes".into(),
        ));
    }
    for port in [0, 70_000, -1, 65_536, i64::MAX, i64::MIN] {
        cases.push((
            format!("port {port}"),
            with(&base, "port", json!(port)),
            "port".into(),
        ));
    }

    for (what, body, field) in &cases {
        let got = admin.post("/api/v1/servers", body.clone()).await;
        p.invalid(&format!("POST /api/v1/servers with {what}"), got, field);
        let got = admin
            .put(&format!("/api/v1/servers/{}", w.server), body.clone())
            .await;
        p.invalid(
            &format!("PUT /api/v1/servers/{{id}} with {what}"),
            got,
            field,
        );
    }

    // Duplicate names conflict on `name`, also after trimming, on create and on rename.
    for name in ["web-1", " web-1 ", "db-1"] {
        let got = admin
            .post("/api/v1/servers", with(&base, "name", json!(name)))
            .await;
        p.error(
            &format!("POST /api/v1/servers with taken name {name:?}"),
            got,
            StatusCode::CONFLICT,
            "conflict",
            Some("name"),
        );
    }
    let got = admin
        .put(
            &format!("/api/v1/servers/{other}"),
            with(&base, "name", json!("web-1")),
        )
        .await;
    p.error(
        "PUT db-1 renamed to web-1",
        got,
        StatusCode::CONFLICT,
        "conflict",
        Some("name"),
    );

    p.unchanged(app, &before, "after bad server input").await;
    let after = admin.get(&format!("/api/v1/servers/{}", w.server)).await.1;
    p.check("web-1's JSON after bad PUTs", after == server_json, || {
        format!("{server_json} became {after}")
    });
    let (_, page) = admin.get("/api/v1/servers").await;
    p.check("server count after bad input", page["total"] == 2, || {
        format!("{page}")
    });
    p.alive(app, "bad server input").await;
    p.finish();
}

#[tokio::test]
async fn free_text_keeps_sql_metacharacters_verbatim_and_search_matches_them_literally() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut p = Probe::default();

    // Names are free text: quotes, dashes, wildcards and backslashes are stored and returned as typed.
    let names = [
        "db'; --",
        "'; DROP TABLE servers; --",
        "\" OR 1=1 --",
        "a%b",
        "axb",
        "a_b",
        "ayb",
        "a\\b",
        "ab",
        "100%",
    ];
    let mut ids = std::collections::BTreeMap::new();
    for name in names {
        let (s, b) = admin
            .post(
                "/api/v1/servers",
                json!({ "name": name, "host": "10.0.0.1", "ssh_user": "root" }),
            )
            .await;
        let b = p.ok(
            &format!("POST server named {name:?}"),
            (s, b),
            StatusCode::CREATED,
        );
        p.check(&format!("{name:?} as created"), b["name"] == name, || {
            format!("returned {}", b["name"])
        });
        if let Some(id) = b["id"].as_str() {
            let (_, got) = admin.get(&format!("/api/v1/servers/{id}")).await;
            p.check(
                &format!("{name:?} as read back"),
                got["name"] == name,
                || format!("returned {}", got["name"]),
            );
            let row: Option<String> = sqlx::query_scalar("SELECT name FROM servers WHERE id = $1")
                .bind(id)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
            p.check(
                &format!("{name:?} as stored"),
                row.as_deref() == Some(name),
                || format!("stored {row:?}"),
            );
            ids.insert(name, id.to_string());
        }
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM servers")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    p.check(
        "the servers table survived",
        count == names.len() as i64,
        || format!("{count} rows"),
    );

    // Search text is matched literally: % _ and \ are not wildcards.
    for (q, expected) in [
        ("a%b", vec!["a%b"]),
        ("%", vec!["100%", "a%b"]),
        ("a_b", vec!["a_b"]),
        ("_", vec!["a_b"]),
        ("a\\b", vec!["a\\b"]),
        ("\\", vec!["a\\b"]),
        ("'; DROP", vec!["'; DROP TABLE servers; --"]),
        ("\" OR 1=1", vec!["\" OR 1=1 --"]),
        ("' OR '1'='1", vec![]),
    ] {
        let (s, page) = admin.get(&format!("/api/v1/servers?q={}", enc(q))).await;
        let page = p.ok(&format!("search q={q:?}"), (s, page), StatusCode::OK);
        let mut found: Vec<&str> = page["items"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default();
        found.sort_unstable();
        p.check(
            &format!("search q={q:?}"),
            found == expected && page["total"] == expected.len(),
            || {
                format!(
                    "found {found:?} (total {}), want {expected:?}",
                    page["total"]
                )
            },
        );
    }

    // Notes keep newlines, tabs and SQL text; renaming keeps the new name verbatim.
    let notes = "line one\n'; DROP TABLE servers; --\t\" OR 1=1 --\r\n%_\\";
    let id = ids["db'; --"].clone();
    let body = json!({ "name": "db'; -- renamed", "host": "10.0.0.1", "ssh_user": "root", "notes": notes });
    let (s, b) = admin.put(&format!("/api/v1/servers/{id}"), body).await;
    let b = p.ok("PUT notes with SQL text", (s, b), StatusCode::OK);
    p.check(
        "notes as returned",
        b["notes"] == notes && b["name"] == "db'; -- renamed",
        || format!("{b}"),
    );
    let (_, got) = admin.get(&format!("/api/v1/servers/{id}")).await;
    p.check("notes as read back", got["notes"] == notes, || {
        format!("{}", got["notes"])
    });

    // The longest values accepted are accepted in full.
    let (s, b) = admin
        .post("/api/v1/servers", json!({ "name": chars(100), "host": "10.0.0.1", "ssh_user": chars(32), "notes": chars(10_000), "tags": (0..32).map(|i| format!("t{i}")).collect::<Vec<_>>() }))
        .await;
    let b = p.ok(
        "POST server with 100-char name, 10,000-char notes and 32 tags",
        (s, b),
        StatusCode::CREATED,
    );
    p.check(
        "longest values",
        b["notes"].as_str().map(str::len) == Some(10_000)
            && b["tags"].as_array().map(Vec::len) == Some(32),
        || short(&b.to_string()),
    );
    // `_` is legal in SSH users and tags.
    let (s, b) = admin.post("/api/v1/servers", json!({ "name": "under", "host": "10.0.0.1", "ssh_user": "deploy_user", "tags": ["team_db"] })).await;
    let b = p.ok(
        "POST server with _ in ssh_user and tag",
        (s, b),
        StatusCode::CREATED,
    );
    p.check(
        "underscores kept",
        b["ssh_user"] == "deploy_user" && b["tags"] == json!(["team_db"]),
        || format!("{b}"),
    );

    // Roles, tokens and profiles keep SQL text verbatim too.
    let description = "ops'; DROP TABLE roles; --\n\" OR 1=1 -- 100% \\ _";
    let (s, b) = admin.post("/api/v1/roles", json!({ "name": "ops'; --", "description": description, "permissions": ["servers.read"] })).await;
    let b = p.ok("POST role with SQL text", (s, b), StatusCode::CREATED);
    p.check(
        "role as returned",
        b["name"] == "ops'; --" && b["description"] == description,
        || format!("{b}"),
    );
    let (s, b) = admin
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "'; DROP TABLE api_tokens; --", "permissions": ["servers.read"] }),
        )
        .await;
    let b = p.ok("POST API token with SQL text", (s, b), StatusCode::CREATED);
    p.check(
        "token name as returned",
        b["api_token"]["name"] == "'; DROP TABLE api_tokens; --",
        || format!("{b}"),
    );
    let (s, b) = admin
        .patch(
            "/api/v1/auth/me",
            json!({ "email": "o'brien%_@example.com" }),
        )
        .await;
    let b = p.ok(
        "PATCH me with a quote in the e-mail",
        (s, b),
        StatusCode::OK,
    );
    p.check(
        "e-mail as returned",
        b["email"] == "o'brien%_@example.com",
        || format!("{b}"),
    );

    // A password full of SQL text works; a username with _ is legal.
    let sql_password = "'; DROP TABLE users; -- \" OR 1=1 -- %_\\";
    let (s, b) = admin
        .post("/api/v1/users", json!({ "username": "a_b", "password": sql_password, "roles": ["viewer"], "password_change_required": false }))
        .await;
    p.ok(
        "POST user a_b with an SQL-looking password",
        (s, b),
        StatusCode::CREATED,
    );
    let got = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "a_b", "password": sql_password })),
        )
        .await;
    p.ok("login with the SQL-looking password", got, StatusCode::OK);
    let got = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "a_b", "password": "' OR '1'='1" })),
        )
        .await;
    p.error(
        "login with ' OR '1'='1",
        got,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        None,
    );

    for table in ["servers", "users", "roles", "api_tokens", "audit_events"] {
        let n: Result<i64, _> = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&app.db.pool)
            .await;
        p.check(
            &format!("table {table} still exists"),
            n.as_ref().is_ok_and(|n| *n > 0),
            || format!("{n:?}"),
        );
    }
    p.alive(&app, "verbatim free text").await;
    p.finish();
}

#[tokio::test]
async fn server_list_query_parameters_are_validated() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;

    for query in [
        "sort=bogus",
        "sort=NAME",
        "sort=name;DROP%20TABLE%20servers",
        "sort=name%20desc",
        "order=up",
        "order=DESC",
        "order=asc;--",
        "limit=0",
        "limit=-1",
        "limit=501",
        "limit=100000",
        "limit=abc",
        "limit=1.5",
        "limit=99999999999999999999",
        "limit=",
        "limit=1&limit=2",
        "offset=-1",
        "offset=abc",
        "offset=99999999999999999999",
        "tag=a%20b",
        "tag=web,a%20b",
        "tag=web,,db",
        "tag=-web",
        "tag=%27%3B%20DROP%20TABLE%20servers%3B%20--",
        "tag=%25",
        "tag=a%00b",
        &format!("tag={}", chars(51)),
    ] {
        let got = admin.get(&format!("/api/v1/servers?{query}")).await;
        p.invalid_query(&format!("GET /api/v1/servers?{}", short(query)), got);
    }

    // Odd but valid values are answered normally.
    for (query, total) in [
        ("limit=500", 1),
        ("limit=1&offset=0", 1),
        ("offset=9223372036854775807", 1),
        ("q=", 1),
        ("q=%27%3B%20DROP%20TABLE%20servers%3B%20--", 0),
        ("tag=WEB", 1),
        ("tag=web,db", 0),
    ] {
        let got = admin.get(&format!("/api/v1/servers?{query}")).await;
        let page = p.ok(&format!("GET /api/v1/servers?{query}"), got, StatusCode::OK);
        p.check(
            &format!("total for ?{query}"),
            page["total"] == total,
            || format!("{page}"),
        );
    }
    // Stored names cannot contain control characters, so a search for one finds nothing or is
    // refused as meaningless.
    for q in ["%00", "a%00b", "%00%25", "a%07b%1B"] {
        let got = admin.get(&format!("/api/v1/servers?q={q}")).await;
        p.no_match_or_invalid_query(&format!("GET /api/v1/servers?q={q}"), got);
    }
    let got = admin
        .get(&format!("/api/v1/servers?q={}", chars(10_000)))
        .await;
    p.ok(
        "GET /api/v1/servers?q=<10,000 characters>",
        got,
        StatusCode::OK,
    );

    p.unchanged(app, &before, "after bad server queries").await;
    p.alive(app, "bad server queries").await;
    p.finish();
}
