//! Bad input on every endpoint: malformed or mistyped JSON, wrong content types, oversized
//! bodies, empty, huge, control-character and SQL-looking strings, invalid query parameters
//! and unknown ids. Each must get a clear 4xx JSON error (never a 5xx, never a panic) and must
//! leave everything stored exactly as it was. Free-text fields that legitimately accept SQL
//! metacharacters must store and return them verbatim.
//!
//! Each test runs many cases and reports every case that went wrong at once (see [`Probe`]),
//! so one failure does not hide the others.
mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Control characters no single-line field may hold.
const CONTROLS: [&str; 3] = ["\u{0}", "\u{7}", "\u{1b}"];
/// SQL metacharacters that free text keeps verbatim and that no identifier may contain.
const SQL_META: [&str; 4] = ["'; DROP TABLE servers; --", "\" OR 1=1 --", "%", "\\"];
/// `_` is SQL's other wildcard; legal in usernames, tags and SSH users, not in host names.
const UNDERSCORE: &str = "_";

/// An unencrypted ed25519 key made for these tests only.
const PLAIN_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACA6IMGDGo+yDmV2rKHfY88oTcdnGqRRrwts/TOwkc519wAAAIhU0zUAVNM1
AAAAAAtzc2gtZWQyNTUxOQAAACA6IMGDGo+yDmV2rKHfY88oTcdnGqRRrwts/TOwkc519w
AAAEDKnqpgEsGIXPM3uckMoKhZJwD4BgUGF8piJYvfOcM6dTogwYMaj7IOZXasod9jzyhN
x2capFGvC2z9M7CRznX3AAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
";
/// An ed25519 key encrypted with [`KEY_PASSPHRASE`] (1 bcrypt round, to stay fast).
const ENCRYPTED_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABCdug9BwB
ZIsm6dybmSJHtpAAAAAQAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIJU/UzASIPX7jtcz
C9QFpJ1fO3KM83/P2LVshsa2/xicAAAAkCzfDIN7n8vTgTcyXmZlBfFD/JNr7YNcgW4Qtm
CJyLLsJxteCrNBZ/NydF/SneHEV9CpGYvStiERtRvKkEfY0AdwwGQws5dqJtmuHyThV/Mm
tjo7FWTPUMbDgl2owIv3v7mOGJ5cuDx/8iSEnNaCP4XT5BzyD3f8I1rdrX5KXMhc1OFI2y
X7zkYpAFbRdWUu2Q==
-----END OPENSSH PRIVATE KEY-----
";
const KEY_PASSPHRASE: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Collects every deviation of a test so they can be reported together.
#[derive(Default)]
struct Probe {
    failures: Vec<String>,
    checks: usize,
}

impl Probe {
    fn fail(&mut self, message: String) {
        self.failures.push(message);
    }

    /// Expects a JSON error envelope with `status`, the error `code` (unless empty) and, when
    /// given, `details.field`.
    fn error(
        &mut self,
        what: &str,
        got: (StatusCode, Value),
        status: StatusCode,
        code: &str,
        field: Option<&str>,
    ) {
        self.checks += 1;
        let (s, body) = got;
        let envelope_ok = body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
            && body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
            && body["error"]["details"].is_object();
        let mut wrong = Vec::new();
        if s != status {
            wrong.push(format!("status {s} (want {status})"));
        }
        if !envelope_ok {
            wrong.push("body is not a JSON error envelope".to_string());
        } else if !code.is_empty() && body["error"]["code"] != code {
            wrong.push(format!("code {} (want {code})", body["error"]["code"]));
        }
        if let Some(f) = field
            && envelope_ok
            && body["error"]["details"]["field"] != f
        {
            wrong.push(format!(
                "details.field {} (want {f:?})",
                body["error"]["details"]["field"]
            ));
        }
        if !wrong.is_empty() {
            self.fail(format!(
                "{what}: {} — body {}",
                wrong.join(", "),
                short(&body.to_string())
            ));
        }
    }

    /// Expects a 422 `validation_failed` naming `field`.
    fn invalid(&mut self, what: &str, got: (StatusCode, Value), field: &str) {
        self.error(
            what,
            got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some(field),
        );
    }

    /// Expects a 422 `invalid_body` (wrong type, missing or unknown field).
    fn invalid_body(&mut self, what: &str, got: (StatusCode, Value)) {
        self.error(
            what,
            got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            None,
        );
    }

    /// Expects a 400 `invalid_query`.
    fn invalid_query(&mut self, what: &str, got: (StatusCode, Value)) {
        self.error(what, got, StatusCode::BAD_REQUEST, "invalid_query", None);
    }

    /// For search text no value can contain (a NUL byte): either nothing matches, or the query
    /// is refused as invalid; both are fine, matching everything or failing is not.
    fn no_match_or_invalid_query(&mut self, what: &str, got: (StatusCode, Value)) {
        let (status, body) = got;
        if status == StatusCode::BAD_REQUEST {
            return self.invalid_query(what, (status, body));
        }
        self.checks += 1;
        let empty = body
            .get("total")
            .map_or(body["items"] == json!([]), |t| *t == 0);
        if status != StatusCode::OK || !empty {
            self.fail(format!(
                "{what}: status {status} (want 200 with no match, or 400 invalid_query) — body {}",
                short(&body.to_string())
            ));
        }
    }

    /// Expects success with `status`; returns the body (or `Null` after a failure).
    fn ok(&mut self, what: &str, got: (StatusCode, Value), status: StatusCode) -> Value {
        self.checks += 1;
        if got.0 != status {
            self.fail(format!(
                "{what}: status {} (want {status}) — body {}",
                got.0,
                short(&got.1.to_string())
            ));
            return Value::Null;
        }
        got.1
    }

    fn check(&mut self, what: &str, condition: bool, detail: impl FnOnce() -> String) {
        self.checks += 1;
        if !condition {
            self.fail(format!("{what}: {}", detail()));
        }
    }

    /// Fails with every deviation found.
    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n  - {}",
            self.failures.len(),
            self.checks,
            self.failures.join("\n  - ")
        );
    }
}

/// A value as it may appear in a message: control characters escaped, long ones shortened.
fn short(s: &str) -> String {
    let n = s.chars().count();
    let shown: String = s.chars().take(120).collect();
    let shown = format!("{shown:?}");
    if n > 120 {
        format!("{shown}…({n} chars)")
    } else {
        shown
    }
}

/// `s` percent-encoded as one path segment or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn chars(n: usize) -> String {
    "x".repeat(n)
}

/// `base` with `field` set to `value`.
fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut b = base.clone();
    b[field] = value;
    b
}

/// `base` without `field`.
fn without(base: &Value, field: &str) -> Value {
    let mut b = base.clone();
    if let Some(map) = b.as_object_mut() {
        map.remove(field);
    }
    b
}

/// Values no identifier (username, host, tag, SSH user) accepts: empty, blank, 10,000
/// characters, control characters and SQL metacharacters (plus `_` unless it is legal).
fn bad_identifiers(underscore_ok: bool) -> Vec<String> {
    let mut v = vec![String::new(), "   ".to_string(), chars(10_000)];
    v.extend(CONTROLS.iter().map(|c| format!("a{c}b")));
    v.extend(SQL_META.iter().map(|m| format!("a{m}")));
    if !underscore_ok {
        v.push(format!("a{UNDERSCORE}b"));
    }
    v
}

/// Values no display name (server, role, token) accepts: empty, blank, too long, control characters.
fn bad_names() -> Vec<String> {
    let mut v = vec![String::new(), "   ".to_string(), chars(101), chars(10_000)];
    v.extend(CONTROLS.iter().map(|c| format!("a{c}b")));
    v
}

/// Values no free-text field (notes, descriptions) accepts: over 10,000 characters, control characters.
fn bad_free_text() -> Vec<String> {
    let mut v = vec![chars(10_001)];
    v.extend(CONTROLS.iter().map(|c| format!("line one\nline{c}two")));
    v
}

/// Sends raw bytes with an optional Content-Type.
async fn raw(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app.client.request(method, app.url(path)).body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        // Report a dropped connection as a failure of the check rather than a panic here.
        Err(e) => (
            StatusCode::IM_A_TEAPOT,
            Value::String(format!("no answer: {e}")),
        ),
    }
}

/// Forgets every counted password or code attempt: every check of a password or a code is
/// throttled per account and address, and these tests judge each attempt on its input alone
/// (`auth_limits.rs` tests the throttle).
async fn forget_attempts(app: &TestApp) {
    sqlx::query("DELETE FROM login_throttle")
        .execute(&app.db.pool)
        .await
        .unwrap();
}

/// Every stored row that bad input could touch, as comparable lines (audit events, sessions
/// and login counters are left out: failed attempts are meant to be recorded there).
async fn stored(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    dump::<(String, String, String, i64, String, String, String, i64)>(
        app,
        &mut out,
        "SELECT id, name, host, port, ssh_user, auth_method, notes, updated_at FROM servers ORDER BY id",
    )
    .await;
    dump::<(String, String)>(
        app,
        &mut out,
        "SELECT server_id, tag FROM server_tags ORDER BY server_id, tag",
    )
    .await;
    dump::<(String, String, Option<String>, Option<String>, String, Option<i64>, i64, i64, Option<String>, Option<i64>, i64)>(
        app,
        &mut out,
        "SELECT id, username, email, locale, password_hash, disabled_at, require_totp, must_change_password, totp_secret_id, \
         totp_enabled_at, updated_at FROM users ORDER BY id",
    )
    .await;
    dump::<(String, String)>(
        app,
        &mut out,
        "SELECT user_id, role_id FROM user_roles ORDER BY user_id, role_id",
    )
    .await;
    dump::<(String, String, String, String, Option<String>, i64)>(
        app,
        &mut out,
        "SELECT id, name, description, permissions, server_tags, updated_at FROM roles ORDER BY id",
    )
    .await;
    dump::<(String, String, String, String, Option<i64>, Option<i64>)>(
        app,
        &mut out,
        "SELECT id, user_id, name, permissions, expires_at, revoked_at FROM api_tokens ORDER BY id",
    )
    .await;
    dump::<(String, String, String)>(
        app,
        &mut out,
        "SELECT id, purpose, ciphertext FROM secrets ORDER BY id",
    )
    .await;
    dump::<(String, String, String, Option<String>, Option<String>, Option<String>, i64)>(
        app,
        &mut out,
        "SELECT server_id, kind, secret_id, passphrase_secret_id, public_key, fingerprint, updated_at FROM credentials ORDER BY server_id",
    )
    .await;
    dump::<(String, String, Option<i64>)>(
        app,
        &mut out,
        "SELECT id, user_id, used_at FROM recovery_codes ORDER BY id",
    )
    .await;
    dump::<(String, String, String)>(
        app,
        &mut out,
        "SELECT org_id, key, value FROM settings ORDER BY org_id, key",
    )
    .await;
    dump::<(String, String)>(
        app,
        &mut out,
        "SELECT key, value FROM instance_state ORDER BY key",
    )
    .await;
    dump::<(String, String, String, String, String, i64)>(
        app,
        &mut out,
        "SELECT id, name, shell, body, parameters, version FROM scripts ORDER BY id",
    )
    .await;
    dump::<(String, i64, String)>(
        app,
        &mut out,
        "SELECT script_id, version, body FROM script_versions ORDER BY script_id, version",
    )
    .await;
    dump::<(String, String, String)>(
        app,
        &mut out,
        "SELECT id, command, status FROM executions ORDER BY id",
    )
    .await;
    dump::<(String, String, Option<String>, String, i64, i64, i64, i64)>(
        app,
        &mut out,
        "SELECT id, name, server_id, spec, interval_secs, timeout_secs, enabled, updated_at FROM checks ORDER BY id",
    )
    .await;
    dump::<(String, i64, String)>(
        app,
        &mut out,
        "SELECT check_id, at, status FROM check_results ORDER BY check_id, at",
    )
    .await;
    out
}

async fn dump<T>(app: &TestApp, out: &mut Vec<String>, sql: &str)
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin + std::fmt::Debug,
{
    let rows: Vec<T> = sqlx::query_as(sql)
        .fetch_all(&app.db.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let table = sql
        .split(" FROM ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or(sql);
    out.push(format!("{table}: {} rows", rows.len()));
    out.extend(rows.iter().map(|r| format!("{table}: {r:?}")));
}

impl Probe {
    /// Records a failure if anything stored differs from `before`.
    async fn unchanged(&mut self, app: &TestApp, before: &[String], what: &str) {
        self.checks += 1;
        let after = stored(app).await;
        if after != before {
            let gone: Vec<String> = before
                .iter()
                .filter(|l| !after.contains(l))
                .map(|l| short(l))
                .collect();
            let new: Vec<String> = after
                .iter()
                .filter(|l| !before.contains(l))
                .map(|l| short(l))
                .collect();
            self.fail(format!(
                "{what}: stored data changed; before {gone:?}, after {new:?}"
            ));
        }
    }

    /// Records a failure unless the server still answers its health check.
    async fn alive(&mut self, app: &TestApp, what: &str) {
        let got = app.call(Method::GET, "/healthz", None).await;
        self.ok(&format!("{what}: /healthz afterwards"), got, StatusCode::OK);
    }
}

/// An instance with an administrator, a server, a second user and a custom role.
struct World {
    app: TestApp,
    admin: Session,
    server: String,
    bob: String,
    role: String,
    script: String,
    check: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let server = admin.server("web-1", &["web"]).await;
    let (s, b) = admin
        .post("/api/v1/users", json!({ "username": "bob", "password": PASSWORD, "roles": ["viewer"], "password_change_required": false }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let bob = b["id"].as_str().expect("user id").to_string();
    let (s, b) = admin
        .post(
            "/api/v1/roles",
            json!({ "name": "r1", "permissions": ["servers.read"], "server_tags": ["web"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let role = b["id"].as_str().expect("role id").to_string();
    // Saved by another session of the administrator's (a new script needs a step-up): the
    // tests' own session must stay without one.
    let other = app.login(ADMIN, PASSWORD).await;
    other.step_up().await;
    let (s, b) = other
        .post(
            "/api/v1/scripts",
            json!({ "name": "s1", "body": "echo \"$N\"", "parameters": [{ "name": "N", "type": "integer", "required": true }] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let script = b["id"].as_str().expect("script id").to_string();
    let (s, b) = admin
        .post(
            "/api/v1/checks",
            json!({ "name": "c1", "server_id": server, "enabled": false, "spec": { "type": "tcp", "host": "10.0.0.1", "port": 5432 } }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let check = b["id"].as_str().expect("check id").to_string();
    World {
        app,
        admin,
        server,
        bob,
        role,
        script,
        check,
    }
}

/// Every endpoint that takes a JSON body, with a valid body for it.
fn json_endpoints(w: &World) -> Vec<(Method, String, Value)> {
    let (server, bob, role) = (&w.server, &w.bob, &w.role);
    vec![
        (
            Method::POST,
            "/api/v1/setup".into(),
            json!({ "token": "x", "username": "root2", "password": PASSWORD }),
        ),
        (
            Method::POST,
            "/api/v1/auth/login".into(),
            json!({ "username": ADMIN, "password": PASSWORD }),
        ),
        (
            Method::PATCH,
            "/api/v1/auth/me".into(),
            json!({ "locale": "de" }),
        ),
        (
            Method::POST,
            "/api/v1/auth/password".into(),
            json!({ "current_password": PASSWORD, "new_password": "a-different-passphrase-77" }),
        ),
        (
            Method::POST,
            "/api/v1/auth/totp/confirm".into(),
            json!({ "code": "123456" }),
        ),
        (
            Method::DELETE,
            "/api/v1/auth/totp".into(),
            json!({ "password": PASSWORD }),
        ),
        (
            Method::POST,
            "/api/v1/auth/totp/recovery-codes".into(),
            json!({ "password": PASSWORD }),
        ),
        (
            Method::POST,
            "/api/v1/users".into(),
            json!({ "username": "carol", "password": PASSWORD }),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{bob}"),
            json!({ "disabled": true }),
        ),
        (
            Method::POST,
            format!("/api/v1/users/{bob}/password"),
            json!({ "new_password": "another-long-passphrase-9" }),
        ),
        (
            Method::POST,
            "/api/v1/roles".into(),
            json!({ "name": "r2", "permissions": ["servers.read"] }),
        ),
        (
            Method::PUT,
            format!("/api/v1/roles/{role}"),
            json!({ "name": "r1-renamed", "permissions": ["servers.read"] }),
        ),
        (
            Method::POST,
            "/api/v1/servers".into(),
            json!({ "name": "new-1", "host": "10.0.0.1", "ssh_user": "root" }),
        ),
        (
            Method::PUT,
            format!("/api/v1/servers/{server}"),
            json!({ "name": "web-1", "host": "10.0.0.9", "ssh_user": "root" }),
        ),
        (
            Method::PUT,
            format!("/api/v1/servers/{server}/credential"),
            json!({ "kind": "password", "password": "ssh-pass-1" }),
        ),
        (
            Method::POST,
            "/api/v1/api-tokens".into(),
            json!({ "name": "t", "permissions": ["servers.read"] }),
        ),
        (
            Method::PUT,
            "/api/v1/settings".into(),
            json!({ "require_totp": true }),
        ),
        (
            Method::POST,
            "/api/v1/auth/step-up".into(),
            json!({ "password": PASSWORD }),
        ),
        (
            Method::POST,
            "/api/v1/scripts".into(),
            json!({ "name": "s2", "body": "true" }),
        ),
        (
            Method::PUT,
            format!("/api/v1/scripts/{}", w.script),
            json!({ "name": "s1", "body": "echo changed" }),
        ),
        (
            Method::POST,
            "/api/v1/executions".into(),
            json!({ "script_id": w.script, "script_version": 1, "server_ids": [server], "parameters": { "N": 1 } }),
        ),
        (
            Method::POST,
            "/api/v1/checks".into(),
            json!({ "name": "c2", "spec": { "type": "http", "url": "http://10.0.0.1/" } }),
        ),
        (
            Method::PUT,
            format!("/api/v1/checks/{}", w.check),
            json!({ "name": "c1", "spec": { "type": "dns", "name": "example.com" } }),
        ),
    ]
}

/// The same JSON text with its first key repeated at the front.
fn duplicate_first_key(body: &Value) -> Vec<u8> {
    let text = body.to_string();
    let (k, v) = body
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_default();
    format!("{{{}:{},{}", json!(k), v, &text[1..]).into_bytes()
}

/// Syntactically broken variants of a valid body, each broken before anything could be read
/// from it (so the answer must be `malformed_json`, not a complaint about a field).
fn malformed(valid: &Value) -> Vec<(&'static str, Vec<u8>)> {
    let (key, value) = valid
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (json!(k).to_string(), v.to_string()))
        .unwrap_or_default();
    vec![
        ("an empty body", Vec::new()),
        ("only a brace", b"{".to_vec()),
        ("a truncated body", format!("{{{key}").into_bytes()),
        ("trailing garbage", format!("{valid} x").into_bytes()),
        ("two bodies", format!("{valid}{valid}").into_bytes()),
        (
            "single quotes",
            format!("{{{}: 1}}", key.replace('"', "'")).into_bytes(),
        ),
        ("a comment", format!("{{/* hi */ {key}: 1}}").into_bytes()),
        ("NaN", format!("{{{key}: NaN}}").into_bytes()),
        (
            "a trailing comma",
            format!("{{{key}: {value},}}").into_bytes(),
        ),
        ("invalid UTF-8", b"{\"\xff\xfe\": 1}".to_vec()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Body parsing, on every JSON endpoint
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_query_parameters_are_validated() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let base = format!("/api/v1/servers/{}/metrics", w.server);
    for query in [
        "names=cpu.usage&from=yesterday",
        "names=cpu.usage&to=2026-13-01T00:00:00Z",
        "names=cpu.usage&from=99999999999999999999",
        "names=cpu.usage&from=2&to=1",
        "names=cpu.usage&from=0&to=999999999999999",
        "names=cpu.usage&step=-1",
        "names=cpu.usage&step=abc",
        "names=cpu.usage&step=99999999",
        "names=cpu.usage&bogus=1",
        "names=cpu.usage&names=load.1",
    ] {
        let got = admin.get(&format!("{base}?{query}")).await;
        p.invalid_query(&format!("GET metrics?{}", short(query)), got);
    }
    for names in [
        "",
        "cpu",
        "cpu.",
        "*",
        ".*",
        "nope.*",
        "cpu.usage,%00",
        "%27%3B%20DROP%20TABLE%20metric_series%3B%20--",
        &chars(5000),
    ] {
        let got = admin.get(&format!("{base}?names={names}")).await;
        p.invalid(&format!("GET metrics?names={}", short(names)), got, "names");
    }
    let got = admin
        .get(&format!("{base}?names=cpu.*,load.1&step=0"))
        .await;
    p.ok("GET metrics?names=cpu.*,load.1", got, StatusCode::OK);
    for query in ["sparklines=maybe", "sparklines=1", "bogus=1"] {
        let got = admin.get(&format!("/api/v1/metrics/summary?{query}")).await;
        p.invalid_query(&format!("GET metrics/summary?{query}"), got);
    }
    p.unchanged(app, &before, "after bad metric queries").await;
    p.alive(app, "bad metric queries").await;
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn audit_query_parameters_are_validated() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();

    for query in [
        "from=garbage",
        "from=2026-13-45T99:00:00Z",
        "from=1700000000",
        "to=yesterday",
        "to=2026-02-30T00:00:00Z",
        "cursor=garbage",
        "cursor=abc_def",
        "cursor=_",
        "cursor=99999999999999999999_x",
        "cursor=%27%3B%20DROP%20TABLE%20audit_events%3B%20--",
        "outcome=bogus",
        "outcome=SUCCESS",
        "outcome=success%27%20OR%201%3D1%20--",
        "outcome=",
        "format=xml",
        "format=",
        "format=csv;",
        "limit=0",
        "limit=-1",
        "limit=501",
        "limit=abc",
        "limit=99999999999999999999",
        "format=json&limit=0",
        "format=csv&limit=100001",
        "limit=1&limit=2",
    ] {
        let got = admin.get(&format!("/api/v1/audit?{query}")).await;
        p.invalid_query(&format!("GET /api/v1/audit?{query}"), got);
    }

    // Filters are plain values: SQL text and wildcards match nothing.
    for query in [
        "actor=%27%3B%20DROP%20TABLE%20audit_events%3B%20--",
        "actor=%25",
        "target=%22%20OR%201%3D1%20--",
        "target=%5C",
        "action=%25",
        "action=%25*",
        "action=_uth.*",
        "cursor=1_x",
        "limit=500&from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
    ] {
        let got = admin.get(&format!("/api/v1/audit?{query}")).await;
        let page = p.ok(&format!("GET /api/v1/audit?{query}"), got, StatusCode::OK);
        p.check(
            &format!("items for ?{query}"),
            page["items"] == json!([]),
            || short(&page.to_string()),
        );
    }
    for query in ["actor=%00", "target=a%00", "action=%00", "action=auth.%00*"] {
        let got = admin.get(&format!("/api/v1/audit?{query}")).await;
        p.no_match_or_invalid_query(&format!("GET /api/v1/audit?{query}"), got);
    }
    let got = admin.get("/api/v1/audit?action=auth.*").await;
    let page = p.ok("GET /api/v1/audit?action=auth.*", got, StatusCode::OK);
    p.check(
        "auth.* finds the logins",
        page["items"].as_array().is_some_and(|a| !a.is_empty()),
        || short(&page.to_string()),
    );
    let got = admin
        .get(&format!("/api/v1/audit?actor={}", chars(10_000)))
        .await;
    p.ok(
        "GET /api/v1/audit?actor=<10,000 characters>",
        got,
        StatusCode::OK,
    );

    p.unchanged(app, &before, "after bad audit queries").await;
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    p.check(
        "reading the audit log does not write to it",
        after == events,
        || format!("{events} events became {after}"),
    );
    p.alive(app, "bad audit queries").await;
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// Users, roles, API tokens, the caller's own account
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn credential_input_is_validated_and_a_refused_one_never_replaces_the_stored_one() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let path = format!("/api/v1/servers/{}/credential", w.server);

    // First with no credential at all, then with one in place that must survive.
    for round in ["without a credential", "with a credential in place"] {
        if round.starts_with("with a") {
            let (s, b) = admin
                .put(
                    &path,
                    json!({ "kind": "private_key", "private_key": PLAIN_KEY }),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
        let before = stored(app).await;
        let credential_json = admin.get(&path).await;

        let mut cases: Vec<(String, Value, &str)> = Vec::new();
        let mut garbage_keys: Vec<String> = vec![
            String::new(),
            " ".into(),
            "not a key".into(),
            chars(10_000),
            chars(40 * 1024),
            "-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n"
                .into(),
            PLAIN_KEY.replace("b3Bl", "AAAA"),
            PLAIN_KEY.lines().take(3).collect::<Vec<_>>().join("\n"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJU/UzASIPX7jtczC9QFpJ1fO3KM83/P2LVshsa2/xic"
                .into(),
        ];
        garbage_keys.extend(CONTROLS.iter().map(|c| format!("{c}{PLAIN_KEY}")));
        garbage_keys.extend(SQL_META.iter().map(|m| m.to_string()));
        for key in &garbage_keys {
            cases.push((
                format!("private key {}", short(key)),
                json!({ "kind": "private_key", "private_key": key }),
                "private_key",
            ));
            cases.push((
                format!("private key {} with a passphrase", short(key)),
                json!({ "kind": "private_key", "private_key": key, "passphrase": "pp" }),
                "private_key",
            ));
        }
        let mut wrong_passphrases: Vec<Value> = vec![
            json!(null),
            json!(""),
            json!("wrong"),
            json!(chars(10_000)),
            json!(format!("{KEY_PASSPHRASE} ")),
        ];
        wrong_passphrases.extend(
            CONTROLS
                .iter()
                .map(|c| json!(format!("{KEY_PASSPHRASE}{c}"))),
        );
        wrong_passphrases.extend(SQL_META.iter().map(|m| json!(m)));
        for pp in wrong_passphrases {
            let mut body = json!({ "kind": "private_key", "private_key": ENCRYPTED_KEY });
            if !pp.is_null() {
                body["passphrase"] = pp.clone();
            }
            cases.push((
                format!("encrypted key with passphrase {}", short(&pp.to_string())),
                body,
                "passphrase",
            ));
        }
        let mut bad_passwords: Vec<String> = vec![String::new(), chars(10_000), chars(4097)];
        bad_passwords.extend(CONTROLS.iter().map(|c| format!("ssh{c}pass")));
        for pw in &bad_passwords {
            cases.push((
                format!("password {}", short(pw)),
                json!({ "kind": "password", "password": pw }),
                "password",
            ));
        }
        for (what, body, field) in &cases {
            p.invalid(
                &format!("{round}: PUT credential with {what}"),
                admin.put(&path, body.clone()).await,
                field,
            );
        }
        p.unchanged(app, &before, &format!("{round}: after bad credentials"))
            .await;
        let after = admin.get(&path).await;
        p.check(
            &format!("{round}: credential JSON"),
            after == credential_json,
            || format!("{credential_json:?} became {after:?}"),
        );
    }

    // What is valid is accepted: the encrypted key with its passphrase, a password with SQL text.
    let got = admin.put(&path, json!({ "kind": "private_key", "private_key": ENCRYPTED_KEY, "passphrase": KEY_PASSPHRASE })).await;
    let b = p.ok(
        "PUT the encrypted key with its passphrase",
        got,
        StatusCode::OK,
    );
    p.check(
        "encrypted key facts",
        b["has_passphrase"] == true && b["kind"] == "private_key",
        || format!("{b}"),
    );
    let got = admin.put(&path, json!({ "kind": "password", "password": "'; DROP TABLE secrets; -- \" OR 1=1 -- %_\\" })).await;
    p.ok("PUT an SSH password made of SQL text", got, StatusCode::OK);
    let (s, b) = admin.get(&path).await;
    p.check(
        "the password credential is in place",
        s == StatusCode::OK && b["kind"] == "password" && !b.to_string().contains("DROP"),
        || format!("{s} {b}"),
    );

    // A passphrase for a key that is not encrypted means nothing: it is refused, or ignored —
    // never stored as a secret nor reported as protecting the key.
    let (s, b) = admin
        .put(
            &path,
            json!({ "kind": "private_key", "private_key": PLAIN_KEY, "passphrase": "pointless" }),
        )
        .await;
    let passphrases: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE purpose = 'ssh_key_passphrase'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    if s == StatusCode::UNPROCESSABLE_ENTITY {
        p.invalid(
            "PUT an unencrypted key with a passphrase",
            (s, b),
            "passphrase",
        );
    } else {
        p.check(
            "PUT an unencrypted key with a passphrase",
            s == StatusCode::OK && b["has_passphrase"] == false && passphrases == 0,
            || format!("status {s}, {passphrases} passphrase secret(s) stored, body {b}"),
        );
    }
    p.alive(app, "bad credentials").await;
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// Setup and login (no session)
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Ids and access
// ---------------------------------------------------------------------------------------------

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

#[tokio::test]
async fn script_and_run_input_is_validated_and_nothing_runs() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // Script definitions.
    let script = json!({ "name": "s9", "body": "true" });
    let mut bad_scripts: Vec<(Value, &str)> = vec![
        (with(&script, "body", json!("")), "body"),
        (with(&script, "body", json!("   \n")), "body"),
        (with(&script, "body", json!("a\u{0}b")), "body"),
        (
            with(&script, "body", json!("x".repeat(256 * 1024 + 1))),
            "body",
        ),
        (with(&script, "name", json!("")), "name"),
        (with(&script, "name", json!(chars(101))), "name"),
        (
            with(&script, "description", json!("bell\u{7}")),
            "description",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "", "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A B", "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "X'; rm -rf /", "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": chars(65), "type": "string" }]),
            ),
            "parameters[0].name",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A", "type": "string", "choices": ["x"] }]),
            ),
            "parameters[0].choices",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A", "type": "boolean", "default": "yes" }]),
            ),
            "parameters[0].default",
        ),
        (
            with(
                &script,
                "parameters",
                json!([{ "name": "A", "type": "choice", "choices": ["a"], "default": "b" }]),
            ),
            "parameters[0].default",
        ),
    ];
    let many: Vec<Value> = (0..33)
        .map(|i| json!({ "name": format!("P{i}"), "type": "string" }))
        .collect();
    bad_scripts.push((with(&script, "parameters", json!(many)), "parameters"));
    for (body, field) in bad_scripts {
        let got = admin.post("/api/v1/scripts", body.clone()).await;
        p.error(
            &format!("script {field}"),
            got,
            unprocessable,
            "validation_failed",
            Some(field),
        );
    }
    for kind in [json!("float"), json!(1), json!(null)] {
        let body = with(
            &script,
            "parameters",
            json!([{ "name": "A", "type": kind }]),
        );
        let got = admin.post("/api/v1/scripts", body).await;
        p.error("parameter type", got, unprocessable, "invalid_body", None);
    }
    let got = admin
        .post("/api/v1/scripts", with(&script, "shell", json!("zsh")))
        .await;
    p.error("unknown shell", got, unprocessable, "invalid_body", None);
    // (From another session with a step-up: this one must stay without, for the runs below.)
    let other = w.app.login(ADMIN, PASSWORD).await;
    other.step_up().await;
    let got = other
        .post("/api/v1/scripts", with(&script, "name", json!("s1")))
        .await;
    p.error("taken name", got, StatusCode::CONFLICT, "", Some("name"));

    // Runs.
    let run = json!({ "script_id": w.script, "script_version": 1, "server_ids": [w.server], "parameters": { "N": 5 } });
    let runs: Vec<(Value, StatusCode, &str, Option<&str>)> = vec![
        (
            with(&run, "command", json!("id")),
            unprocessable,
            "validation_failed",
            Some("script_id"),
        ),
        (
            without(&run, "script_id"),
            unprocessable,
            "validation_failed",
            Some("script_id"),
        ),
        (
            with(&run, "timeout_secs", json!(0)),
            unprocessable,
            "validation_failed",
            Some("timeout_secs"),
        ),
        (
            with(&run, "timeout_secs", json!(86_401)),
            unprocessable,
            "validation_failed",
            Some("timeout_secs"),
        ),
        (
            with(&run, "concurrency", json!(0)),
            unprocessable,
            "validation_failed",
            Some("concurrency"),
        ),
        (
            with(&run, "concurrency", json!(201)),
            unprocessable,
            "validation_failed",
            Some("concurrency"),
        ),
        (
            with(&run, "parameters", json!({ "N": "five" })),
            unprocessable,
            "validation_failed",
            Some("parameters.N"),
        ),
        (
            with(&run, "parameters", json!({ "N": [1] })),
            unprocessable,
            "validation_failed",
            Some("parameters.N"),
        ),
        (
            with(&run, "parameters", json!({})),
            unprocessable,
            "validation_failed",
            Some("parameters.N"),
        ),
        (
            with(&run, "parameters", json!({ "N": 1, "M": 2 })),
            unprocessable,
            "validation_failed",
            Some("parameters.M"),
        ),
        (
            with(&run, "shell", json!("bash")),
            unprocessable,
            "validation_failed",
            Some("shell"),
        ),
        (
            with(&run, "server_ids", json!([])),
            unprocessable,
            "no_targets",
            None,
        ),
        (
            with(
                &run,
                "server_ids",
                json!([uuid::Uuid::new_v4().to_string()]),
            ),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(&run, "server_ids", json!(["'; DROP TABLE servers; --"])),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(&run, "tags", json!(["BAD TAG!"])),
            unprocessable,
            "validation_failed",
            Some("tags[0]"),
        ),
        (
            with(&run, "script_id", json!(uuid::Uuid::new_v4().to_string())),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            with(&run, "script_id", json!("../../etc/passwd")),
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        ),
        (
            json!({ "command": "", "server_ids": [w.server] }),
            unprocessable,
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "command": "a\u{0}b", "server_ids": [w.server] }),
            unprocessable,
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "command": "x".repeat(64 * 1024 + 1), "server_ids": [w.server] }),
            unprocessable,
            "validation_failed",
            Some("command"),
        ),
        (
            json!({ "command": "id", "server_ids": [w.server], "parameters": { "A": 1 } }),
            unprocessable,
            "validation_failed",
            Some("parameters"),
        ),
        // A valid ad-hoc command without a step-up, and with a wrong one.
        (
            json!({ "command": "id", "server_ids": [w.server] }),
            StatusCode::FORBIDDEN,
            "step_up_required",
            None,
        ),
        (
            json!({ "command": "id", "server_ids": [w.server], "step_up": { "password": "wrong-password-1" } }),
            StatusCode::FORBIDDEN,
            "step_up_failed",
            None,
        ),
        (
            json!({ "command": "id", "server_ids": [w.server], "step_up": {} }),
            unprocessable,
            "step_up_missing",
            None,
        ),
    ];
    for (body, status, code, field) in runs {
        let got = admin.post("/api/v1/executions", body.clone()).await;
        p.error(
            &format!("run {}", short(&body.to_string())),
            got,
            status,
            code,
            field,
        );
    }

    // History filters.
    for q in [
        "status=done",
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=nope",
        "script_id=1",
        "server_id=%27",
        "mine=maybe",
        "bogus=1",
    ] {
        let got = admin.get(&format!("/api/v1/executions?{q}")).await;
        p.error(
            &format!("history ?{q}"),
            got,
            StatusCode::BAD_REQUEST,
            "",
            None,
        );
    }
    // Script versions that do not exist.
    for v in ["0", "2", "-1", "x", "99999999999999999999"] {
        let got = admin
            .get(&format!("/api/v1/scripts/{}/versions/{v}", w.script))
            .await;
        p.error(
            &format!("version {v}"),
            got,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }

    p.unchanged(app, &before, "after bad script and run input")
        .await;
    p.alive(app, "bad script and run input").await;
    p.finish();
}

// ---------------------------------------------------------------------------------------------
// Terminals
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn terminal_queries_and_ids_are_validated() {
    let w = world().await;
    let (app, admin, server) = (&w.app, &w.admin, &w.server);
    let mut p = Probe::default();
    let before = stored(app).await;
    for query in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "offset=-1",
        "live=maybe",
        "live=1",
        "bogus=1",
        "user=a%00b",
        "server=a%07b",
    ] {
        let got = admin
            .get(&format!("/api/v1/terminal-sessions?{query}"))
            .await;
        p.invalid_query(&format!("GET /api/v1/terminal-sessions?{query}"), got);
    }
    for (query, total) in [
        ("limit=500", 0),
        ("offset=9223372036854775807", 0),
        ("live=true", 0),
        ("user=%27%3B%20DROP%20TABLE%20users%3B%20--", 0),
        ("server=%25", 0),
    ] {
        let got = admin
            .get(&format!("/api/v1/terminal-sessions?{query}"))
            .await;
        let page = p.ok(
            &format!("GET /api/v1/terminal-sessions?{query}"),
            got,
            StatusCode::OK,
        );
        p.check(
            &format!("total for ?{query}"),
            page["total"] == total,
            || format!("{page}"),
        );
    }
    for id in [
        "nope",
        "1",
        "%27%20OR%201%3D1",
        "0190b5e0-0000-7000-8000-000000000000",
    ] {
        for path in [
            format!("/api/v1/terminal-sessions/{id}"),
            format!("/api/v1/terminal-sessions/{id}/recording"),
        ] {
            let got = admin.get(&path).await;
            p.error(
                &format!("GET {path}"),
                got,
                StatusCode::NOT_FOUND,
                "not_found",
                None,
            );
        }
        let path = format!("/api/v1/terminal-sessions/{id}/terminate");
        let got = admin.post(&path, json!({})).await;
        p.error(
            &format!("POST {path}"),
            got,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    let (s, b) = admin
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for query in ["cols=0", "rows=1001", "cols=abc", "cols=-1", "bogus=1"] {
        let got = admin
            .get(&format!("/api/v1/servers/{server}/terminal?{query}"))
            .await;
        p.invalid_query(&format!("GET terminal?{query}"), got);
    }
    p.unchanged(app, &before, "after bad terminal queries")
        .await;
    p.alive(app, "bad terminal queries").await;
    p.finish();
}

#[tokio::test]
async fn check_definitions_and_queries_are_validated_and_nothing_is_stored() {
    let w = world().await;
    let (app, admin) = (&w.app, &w.admin);
    let mut p = Probe::default();
    let before = stored(app).await;
    let tcp = json!({ "type": "tcp", "host": "10.0.0.1", "port": 22 });
    let http = |extra: Value| {
        let mut spec = json!({ "type": "http", "url": "https://example.com/health" });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let dns = |extra: Value| {
        let mut spec = json!({ "type": "dns", "name": "example.com" });
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for name in bad_names() {
        cases.push((json!({ "name": name, "spec": tcp }), "name"));
    }
    for (interval, timeout, field) in [
        (json!(0), json!(null), "interval_secs"),
        (json!(9), json!(null), "interval_secs"),
        (json!(86_401), json!(null), "interval_secs"),
        (json!(60), json!(0), "timeout_secs"),
        (json!(60), json!(61), "timeout_secs"),
        (json!(10), json!(10), "timeout_secs"),
    ] {
        cases.push((
            json!({ "name": "c", "interval_secs": interval, "timeout_secs": timeout, "spec": tcp }),
            field,
        ));
    }
    let mut spec = |s: Value, field: &'static str| {
        cases.push((json!({ "name": "c", "spec": s }), field));
    };
    for host in [
        "",
        "bad host",
        "a..b",
        "-x.example.com",
        "'; DROP TABLE checks; --",
        "\u{0}",
    ] {
        spec(
            json!({ "type": "tcp", "host": host, "port": 22 }),
            "spec.host",
        );
    }
    spec(
        json!({ "type": "tcp", "host": "10.0.0.1", "port": 0 }),
        "spec.port",
    );
    for url in [
        "",
        "example.com",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:secret@example.com/",
        "http://",
        "http://exa mple.com/",
        "http://example.com/\u{7}",
    ] {
        spec(http(json!({ "url": url })), "spec.url");
    }
    spec(
        http(json!({ "url": format!("https://example.com/{}", chars(2100)) })),
        "spec.url",
    );
    for status in [
        "", "2xx", "200-", "299-200", "600", "0", "200;300", "200,,300",
    ] {
        spec(
            http(json!({ "expected_status": status })),
            "spec.expected_status",
        );
    }
    spec(http(json!({ "keyword": "" })), "spec.keyword");
    spec(http(json!({ "keyword": chars(201) })), "spec.keyword");
    spec(http(json!({ "keyword": "a\u{0}b" })), "spec.keyword");
    spec(
        http(json!({ "keyword": "ok", "method": "HEAD" })),
        "spec.keyword",
    );
    spec(
        http(json!({ "keyword_absent": true })),
        "spec.keyword_absent",
    );
    spec(
        http(json!({ "max_response_ms": 0 })),
        "spec.max_response_ms",
    );
    spec(
        http(json!({ "cert_warn_days": 366 })),
        "spec.cert_warn_days",
    );
    for name in [
        "",
        "bad name",
        "a..b",
        ".",
        "%",
        "'; DROP TABLE checks; --",
        &chars(254),
    ] {
        spec(dns(json!({ "name": name })), "spec.name");
    }
    for resolver in [
        "dns.example.com",
        "127.0.0.1:0",
        "127.0.0.1:99999",
        "1.2.3",
        "",
    ] {
        spec(dns(json!({ "resolver": resolver })), "spec.resolver");
    }
    spec(dns(json!({ "expected": "" })), "spec.expected");
    // Addresses checks may not reach by default (the hub itself, link-local metadata).
    for url in [
        "http://127.0.0.1:8080/metrics",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
    ] {
        spec(http(json!({ "url": url })), "spec.url");
    }
    for host in ["127.0.0.1", "::ffff:127.0.0.1", "fe80::1"] {
        spec(
            json!({ "type": "tcp", "host": host, "port": 22 }),
            "spec.host",
        );
    }
    spec(dns(json!({ "resolver": "127.0.0.53" })), "spec.resolver");
    spec(dns(json!({ "expected": chars(501) })), "spec.expected");
    for (body, field) in &cases {
        p.invalid(
            &format!("POST /checks with {}", short(&body.to_string())),
            admin.post("/api/v1/checks", body.clone()).await,
            field,
        );
        p.invalid(
            &format!("PUT /checks/… with {}", short(&body.to_string())),
            admin
                .put(&format!("/api/v1/checks/{}", w.check), body.clone())
                .await,
            field,
        );
    }
    // A server that does not exist (or is not a server id at all).
    for id in [
        uuid::Uuid::now_v7().to_string(),
        "web-1".into(),
        "'; --".into(),
    ] {
        p.error(
            &format!("POST /checks for server {id}"),
            admin
                .post(
                    "/api/v1/checks",
                    json!({ "name": "c", "server_id": id, "spec": tcp }),
                )
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    for q in [
        "status=unknown",
        "status=UP",
        "status=",
        "server_id=web-1",
        "server_id=%27%3B%20--",
        "bogus=1",
        "q=%00",
        "q=a&q=b",
    ] {
        p.invalid_query(
            &format!("GET /checks?{q}"),
            admin.get(&format!("/api/v1/checks?{q}")).await,
        );
    }
    for q in [
        "hours=0",
        "hours=721",
        "hours=-1",
        "hours=abc",
        "hours=1.5",
        "limit=5",
    ] {
        p.invalid_query(
            &format!("GET /checks/…/results?{q}"),
            admin
                .get(&format!("/api/v1/checks/{}/results?{q}", w.check))
                .await,
        );
    }
    // Text with SQL meta-characters is a literal search.
    for q in SQL_META {
        let got = admin.get(&format!("/api/v1/checks?q={}", enc(q))).await;
        let body = p.ok(&format!("GET /checks?q={q}"), got, StatusCode::OK);
        p.check(
            &format!("GET /checks?q={q} matches nothing"),
            body == json!([]),
            || body.to_string(),
        );
    }
    let got = admin
        .get(&format!("/api/v1/checks?q={}", enc(UNDERSCORE)))
        .await;
    let body = p.ok("GET /checks?q=_", got, StatusCode::OK);
    p.check("`_` is not a wildcard", body == json!([]), || {
        body.to_string()
    });

    p.unchanged(app, &before, "after bad check input").await;
    p.alive(app, "bad check input").await;
    p.finish();
}

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
