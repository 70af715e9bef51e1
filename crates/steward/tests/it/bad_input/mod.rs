//! Bad input on every endpoint: malformed or mistyped JSON, wrong content types, oversized
//! bodies, empty, huge, control-character and SQL-looking strings, invalid query parameters
//! and unknown ids. Each must get a clear 4xx JSON error (never a 5xx, never a panic) and must
//! leave everything stored exactly as it was. Free-text fields that legitimately accept SQL
//! metacharacters must store and return them verbatim.
//!
//! Each test runs many cases and reports every case that went wrong at once (see [`Probe`]),
//! so one failure does not hide the others.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::*;

mod accounts;
mod agents;
mod body;
mod checks;
mod credentials;
mod ids_access;
mod queries;
mod scripts;
mod servers;
mod setup_login;
mod terminals;

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
