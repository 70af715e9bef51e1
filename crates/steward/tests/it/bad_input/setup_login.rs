//! Setup and login, without a session: odd usernames, passwords and codes.
use super::*;

#[tokio::test]
async fn setup_refuses_bad_input_and_stays_open_for_the_real_administrator() {
    let app = TestApp::spawn().await;
    let mut p = Probe::default();
    let before = stored(&app).await;
    let setup = |body: Value| app.call(Method::POST, "/api/v1/setup", Some(body));
    let base = json!({ "token": app.setup_token, "username": ADMIN, "password": PASSWORD, "email": "ops@example.com" });

    let mut wrong_tokens: Vec<String> = vec![
        String::new(),
        " ".into(),
        chars(10_000),
        format!("{}x", app.setup_token),
    ];
    if app.setup_token.to_uppercase() != app.setup_token {
        wrong_tokens.push(app.setup_token.to_uppercase());
    }
    wrong_tokens.extend(CONTROLS.iter().map(|c| format!("{}{c}", app.setup_token)));
    wrong_tokens.extend(SQL_META.iter().map(|m| m.to_string()));
    wrong_tokens.push("' OR '1'='1".into());
    for t in &wrong_tokens {
        let got = setup(with(&base, "token", json!(t))).await;
        p.error(
            &format!("setup with token {}", short(t)),
            got,
            StatusCode::FORBIDDEN,
            "invalid_setup_token",
            None,
        );
    }
    for v in bad_identifiers(true)
        .into_iter()
        .chain([chars(65), "-admin".into()])
    {
        p.invalid(
            &format!("setup with username {}", short(&v)),
            setup(with(&base, "username", json!(v))).await,
            "username",
        );
    }
    let mut bad_emails: Vec<String> =
        vec![chars(10_000), "not an email".into(), "ops@localhost".into()];
    bad_emails.extend(CONTROLS.iter().map(|c| format!("op{c}s@example.com")));
    bad_emails.extend(["'; DROP TABLE users; --".to_string(), "\" OR 1=1 --".into()]);
    for v in &bad_emails {
        p.invalid(
            &format!("setup with email {}", short(v)),
            setup(with(&base, "email", json!(v))).await,
            "email",
        );
    }
    let mut bad_passwords: Vec<String> = vec![
        String::new(),
        "short".into(),
        chars(10_000),
        "password123".into(),
        "adminadmin1".into(),
    ];
    bad_passwords.extend(CONTROLS.iter().map(|c| format!("{PASSWORD}{c}")));
    for v in &bad_passwords {
        p.invalid(
            &format!("setup with password {}", short(v)),
            setup(with(&base, "password", json!(v))).await,
            "password",
        );
    }

    p.unchanged(&app, &before, "after bad setup attempts").await;
    let (_, status) = app.call(Method::GET, "/api/v1/setup", None).await;
    p.check(
        "setup is still open",
        status["setup_required"] == true,
        || format!("{status}"),
    );
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    p.check("no account was created", users == 0, || {
        format!("{users} users")
    });
    // The real administrator can still claim the instance with the token.
    app.admin().await;
    p.finish();
}

#[tokio::test]
async fn login_with_odd_usernames_passwords_and_codes_is_a_plain_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut p = Probe::default();
    // An account with 2FA on, to try odd codes against.
    let tina = app.user_with_roles(&admin, "tina", &["viewer"]).await;
    let (s, enroll) = tina
        .call(Method::POST, "/api/v1/auth/totp/enroll", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{enroll}");
    let (s, codes) = tina
        .post(
            "/api/v1/auth/totp/confirm",
            json!({ "code": totp_code(enroll["secret"].as_str().expect("secret"), 0) }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{codes}");
    let before = stored(&app).await;

    let mut odd: Vec<String> = vec![
        String::new(),
        " ".into(),
        chars(10_000),
        "admin ' --".into(),
        "admin' OR '1'='1".into(),
        "%".into(),
        "_dmin".into(),
        "adm_n".into(),
        "a%".into(),
    ];
    odd.extend(CONTROLS.iter().map(|c| format!("admin{c}")));
    odd.extend(SQL_META.iter().map(|m| format!("admin{m}")));
    let mut attempts: Vec<(String, Value)> = Vec::new();
    for u in &odd {
        attempts.push((
            format!("username {}", short(u)),
            json!({ "username": u, "password": PASSWORD }),
        ));
    }
    let mut odd_passwords = odd.clone();
    odd_passwords.push(format!("{PASSWORD}\u{0}"));
    odd_passwords.push(format!("{PASSWORD} "));
    for pw in &odd_passwords {
        attempts.push((
            format!("admin with password {}", short(pw)),
            json!({ "username": ADMIN, "password": pw }),
        ));
    }
    for (what, body) in attempts {
        // Failures are throttled per account and address; start every attempt from a clean slate
        // so each one is judged on its input alone.
        sqlx::query("DELETE FROM login_throttle")
            .execute(&app.db.pool)
            .await
            .unwrap();
        let got = app
            .call(Method::POST, "/api/v1/auth/login", Some(body))
            .await;
        p.error(
            &format!("login with {what}"),
            got,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            None,
        );
    }
    sqlx::query("DELETE FROM login_throttle")
        .execute(&app.db.pool)
        .await
        .unwrap();

    // Odd second factors: a blank one is a missing one; anything else is simply wrong.
    let mut odd_codes: Vec<String> = vec![
        String::new(),
        "   ".into(),
        chars(10_000),
        "12345".into(),
        "1234567".into(),
        "abcdef".into(),
        "12345-".into(),
    ];
    odd_codes.extend(CONTROLS.iter().map(|c| format!("123{c}45")));
    odd_codes.extend(SQL_META.iter().map(|m| m.to_string()));
    odd_codes.push("' OR '1'='1".into());
    for c in &odd_codes {
        let blank = c.trim().is_empty();
        for (field, wrong) in [
            ("totp_code", "invalid_totp"),
            ("recovery_code", "invalid_recovery_code"),
        ] {
            sqlx::query("DELETE FROM login_throttle")
                .execute(&app.db.pool)
                .await
                .unwrap();
            let got = app
                .call(
                    Method::POST,
                    "/api/v1/auth/login",
                    Some(json!({ "username": "tina", "password": PASSWORD, field: c })),
                )
                .await;
            let want = if blank { "totp_required" } else { wrong };
            p.error(
                &format!("tina's login with {field} {}", short(c)),
                got,
                StatusCode::UNAUTHORIZED,
                want,
                None,
            );
        }
    }
    sqlx::query("DELETE FROM login_throttle")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let unused = codes["recovery_codes"][0].as_str().expect("recovery code");
    let got = app.call(Method::POST, "/api/v1/auth/login", Some(json!({ "username": "tina", "password": "wrong-password-1", "recovery_code": unused }))).await;
    p.error(
        "tina's login with a real recovery code but the wrong password",
        got,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        None,
    );
    sqlx::query("DELETE FROM login_throttle")
        .execute(&app.db.pool)
        .await
        .unwrap();

    // Refresh tokens that were never issued.
    for t in ["", " ", "'; DROP TABLE refresh_tokens; --", "\u{0}", "%"] {
        let got = app
            .call(
                Method::POST,
                "/api/v1/auth/refresh",
                Some(json!({ "refresh_token": t })),
            )
            .await;
        p.error(
            &format!("refresh with {}", short(t)),
            got,
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            None,
        );
    }
    let got = app
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": chars(10_000) })),
        )
        .await;
    p.error(
        "refresh with 10,000 characters",
        got,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
        None,
    );

    p.unchanged(&app, &before, "after odd logins").await;
    app.login(ADMIN, PASSWORD).await;
    p.alive(&app, "odd logins").await;
    p.finish();
}
