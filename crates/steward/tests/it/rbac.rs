//! The authorization matrix: every route of the API, called by every kind of principal, must
//! answer exactly as the table says. The table must list every route of the OpenAPI document —
//! adding a route without deciding who may call it fails this test.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::*;

/// What a principal should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    /// 2xx.
    A,
    /// Authorized, but the request itself is refused (4xx other than 401/403/404).
    N,
    /// 401.
    U,
    /// 403.
    F,
    /// 404: the object is invisible to this principal.
    H,
}
use E::*;

/// A host key pinned on every fixture server.
const HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJU/UzASIPX7jtczC9QFpJ1fO3KM83/P2LVshsa2/xic";

/// Principals, in column order. `token` is an API token of the administrator narrowed to
/// `servers.read`: it must get what its own permissions allow, not what its owner may do
/// (runs and recordings the administrator owns stay hidden from it), and never manage
/// tokens, sessions or the profile.
const WHO: [&str; 7] = [
    "anonymous",
    "nobody",
    "viewer",
    "scoped",
    "operator",
    "admin",
    "token",
];

struct Route {
    method: Method,
    /// As in the OpenAPI document.
    path: &'static str,
    /// With placeholders: {web} {db} {user} {role} {token} {proposal} {scan} {check} {solo} {script}
    /// {exec} {n} {p}, {own_session} (another session of the caller), {user_session} and
    /// {user_token} (a session and an API token of {user}).
    concrete: &'static str,
    body: Option<Value>,
    expect: [E; 7],
}

fn r(
    method: Method,
    path: &'static str,
    concrete: &'static str,
    body: Option<Value>,
    expect: [E; 7],
) -> Route {
    Route {
        method,
        path,
        concrete,
        body,
        expect,
    }
}

fn matrix() -> Vec<Route> {
    use Method as M;
    // Loopback and a port nobody listens on: test-connection really connects.
    let srv = |name: &str| json!({ "name": name, "host": "127.0.0.2", "port": "{closed}", "ssh_user": "root", "tags": ["web"] });
    // A TCP check of the web server's discard port (closed: a run is refused at once).
    let check_body = |name: &str| json!({ "name": name, "server_id": "{web}", "spec": { "type": "tcp", "host": "127.0.0.2", "port": 9 } });
    vec![
        r(M::GET, "/healthz", "/healthz", None, [A, A, A, A, A, A, A]),
        r(M::GET, "/readyz", "/readyz", None, [A, A, A, A, A, A, A]),
        // Organization-wide data, decided by the scrape token (or an opted-in address), never
        // by role: nobody by default, loopback included. tests/prometheus.rs covers the rest.
        r(M::GET, "/metrics", "/metrics", None, [U, U, U, U, U, U, U]),
        r(
            M::GET,
            "/api/v1/openapi.json",
            "/api/v1/openapi.json",
            None,
            [A, A, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/setup",
            "/api/v1/setup",
            None,
            [A, A, A, A, A, A, A],
        ),
        r(
            M::POST,
            "/api/v1/setup",
            "/api/v1/setup",
            Some(json!({ "token": "x", "username": "x", "password": PASSWORD })),
            [N, N, N, N, N, N, N],
        ),
        r(
            M::POST,
            "/api/v1/auth/login",
            "/api/v1/auth/login",
            Some(json!({ "username": ADMIN, "password": PASSWORD })),
            [A, A, A, A, A, A, A],
        ),
        r(
            M::POST,
            "/api/v1/auth/refresh",
            "/api/v1/auth/refresh",
            Some(json!({ "refresh_token": "{refresh}" })),
            [U, A, A, A, A, A, U],
        ),
        r(
            M::GET,
            "/api/v1/auth/me",
            "/api/v1/auth/me",
            None,
            [U, A, A, A, A, A, A],
        ),
        // Before the password change below, which ends the caller's other sessions.
        r(
            M::DELETE,
            "/api/v1/auth/sessions/{id}",
            "/api/v1/auth/sessions/{own_session}",
            None,
            [U, A, A, A, A, A, F],
        ),
        r(
            M::PATCH,
            "/api/v1/auth/me",
            "/api/v1/auth/me",
            Some(json!({ "locale": "de" })),
            [U, A, A, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/password",
            "/api/v1/auth/password",
            Some(json!({ "current_password": PASSWORD, "new_password": PASSWORD })),
            [U, A, A, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/totp/enroll",
            "/api/v1/auth/totp/enroll",
            None,
            [U, A, A, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/totp/confirm",
            "/api/v1/auth/totp/confirm",
            Some(json!({ "code": "000000" })),
            [U, N, N, N, N, N, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/totp/recovery-codes",
            "/api/v1/auth/totp/recovery-codes",
            Some(json!({ "password": PASSWORD })),
            [U, N, N, N, N, N, F],
        ),
        r(
            M::GET,
            "/api/v1/users",
            "/api/v1/users",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::POST,
            "/api/v1/users",
            "/api/v1/users",
            Some(json!({ "username": "u-{p}-{n}", "password": PASSWORD, "roles": ["viewer"] })),
            [U, F, F, F, F, A, F],
        ),
        r(
            M::GET,
            "/api/v1/users/{id}",
            "/api/v1/users/{user}",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::PATCH,
            "/api/v1/users/{id}",
            "/api/v1/users/{user}",
            Some(json!({ "email": "t@example.com" })),
            [U, F, F, F, F, A, F],
        ),
        // Before the password reset below, which ends the user's sessions.
        r(
            M::DELETE,
            "/api/v1/users/{id}/sessions/{session_id}",
            "/api/v1/users/{user}/sessions/{user_session}",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::POST,
            "/api/v1/users/{id}/password",
            "/api/v1/users/{user}/password",
            Some(json!({ "new_password": "another-long-passphrase-5" })),
            [U, F, F, F, F, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/users/{id}/totp",
            "/api/v1/users/{user}/totp",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::GET,
            "/api/v1/roles",
            "/api/v1/roles",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::POST,
            "/api/v1/roles",
            "/api/v1/roles",
            Some(json!({ "name": "r-{p}-{n}", "permissions": ["servers.read"] })),
            [U, F, F, F, F, A, F],
        ),
        r(
            M::GET,
            "/api/v1/roles/{id}",
            "/api/v1/roles/{role}",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::PUT,
            "/api/v1/roles/{id}",
            "/api/v1/roles/{role}",
            Some(json!({ "name": "role-{p}", "permissions": ["servers.read", "servers.write"] })),
            [U, F, F, F, F, A, F],
        ),
        r(
            M::GET,
            "/api/v1/permissions",
            "/api/v1/permissions",
            None,
            [U, A, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/servers",
            "/api/v1/servers",
            None,
            [U, F, A, A, A, A, A],
        ),
        r(
            M::POST,
            "/api/v1/servers",
            "/api/v1/servers",
            Some(srv("new-{p}-{n}")),
            [U, F, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}",
            "/api/v1/servers/{web}",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::PUT,
            "/api/v1/servers/{id}",
            "/api/v1/servers/{web}",
            Some(srv("web-{p}")),
            [U, H, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/tags",
            "/api/v1/tags",
            None,
            [U, F, A, A, A, A, A],
        ),
        r(
            M::PUT,
            "/api/v1/servers/{id}/credential",
            "/api/v1/servers/{web}/credential",
            Some(json!({ "kind": "generate" })),
            [U, H, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/credential",
            "/api/v1/servers/{web}/credential",
            None,
            [U, H, A, A, A, A, A],
        ),
        // The agent's own socket takes an enrollment token, never a user's credentials.
        r(
            M::GET,
            "/api/v1/agent/connect",
            "/api/v1/agent/connect",
            None,
            [U, U, U, U, U, U, U],
        ),
        // The binary is for enrolled agents only (their token), not for users.
        r(
            M::GET,
            "/api/v1/agent/download",
            "/api/v1/agent/download",
            None,
            [U, U, U, U, U, U, U],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/agent",
            "/api/v1/servers/{web}/agent",
            None,
            [U, H, A, A, A, A, A],
        ),
        // Before any step-up row: allowed writers still need the step-up.
        r(
            M::POST,
            "/api/v1/servers/{id}/agent/install",
            "/api/v1/servers/{web}/agent/install",
            None,
            [U, H, F, F, F, F, F],
        ),
        r(
            M::POST,
            "/api/v1/servers/{id}/agent/uninstall",
            "/api/v1/servers/{web}/agent/uninstall",
            None,
            [U, H, F, F, F, F, F],
        ),
        r(
            M::POST,
            "/api/v1/servers/{id}/agent",
            "/api/v1/servers/{web}/agent",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/servers/{id}/agent",
            "/api/v1/servers/{web}/agent",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/host-key",
            "/api/v1/servers/{web}/host-key",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::PUT,
            "/api/v1/servers/{id}/host-key",
            "/api/v1/servers/{web}/host-key",
            Some(json!({ "public_key": HOST_KEY })),
            [U, H, F, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/servers/{id}/host-key/accept",
            "/api/v1/servers/{web}/host-key/accept",
            Some(json!({ "fingerprint": "SHA256:x" })),
            [U, H, F, N, N, N, F],
        ),
        // Nothing pending on the fixture: whoever may confirm gets 409 `nothing_to_confirm`.
        r(
            M::POST,
            "/api/v1/servers/{id}/endpoint/confirm",
            "/api/v1/servers/{web}/endpoint/confirm",
            Some(json!({})),
            [U, H, F, N, N, N, F],
        ),
        r(
            M::POST,
            "/api/v1/servers/{id}/test-connection",
            "/api/v1/servers/{web}/test-connection",
            None,
            [U, H, F, A, A, A, F],
        ),
        // Plain GETs (no upgrade): authorization runs first; even admins lack the step-up.
        r(
            M::GET,
            "/api/v1/servers/{id}/terminal",
            "/api/v1/servers/{web}/terminal",
            None,
            [U, H, F, F, F, F, F],
        ),
        r(
            M::GET,
            "/api/v1/terminal-sessions",
            "/api/v1/terminal-sessions",
            None,
            [U, A, A, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/terminal-sessions/{id}",
            "/api/v1/terminal-sessions/0190b5e0-0000-7000-8000-000000000000",
            None,
            [U, H, H, H, H, H, H],
        ),
        r(
            M::GET,
            "/api/v1/terminal-sessions/{id}/recording",
            "/api/v1/terminal-sessions/0190b5e0-0000-7000-8000-000000000000/recording",
            None,
            [U, H, H, H, H, H, H],
        ),
        r(
            M::POST,
            "/api/v1/terminal-sessions/{id}/terminate",
            "/api/v1/terminal-sessions/0190b5e0-0000-7000-8000-000000000000/terminate",
            None,
            [U, F, F, F, F, H, F],
        ),
        r(
            M::POST,
            "/api/v1/servers/{id}/scan",
            "/api/v1/servers/{web}/scan",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/scan",
            "/api/v1/servers/{web}/scan",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/scans",
            "/api/v1/servers/{web}/scans",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/scans/{scan_id}",
            "/api/v1/servers/{web}/scans/{scan}",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/proposals",
            "/api/v1/servers/{web}/proposals",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::POST,
            "/api/v1/proposals/{id}/dismiss",
            "/api/v1/proposals/{proposal}/dismiss",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/step-up",
            "/api/v1/auth/step-up",
            Some(json!({ "password": PASSWORD })),
            [U, A, A, A, A, A, F],
        ),
        // Checks on the web server follow its tags; the standalone one needs every server.
        r(
            M::GET,
            "/api/v1/checks",
            "/api/v1/checks",
            None,
            [U, F, A, A, A, A, A],
        ),
        r(
            M::POST,
            "/api/v1/checks",
            "/api/v1/checks",
            Some(check_body("new-{p}-{n}")),
            [U, F, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/checks/{id}",
            "/api/v1/checks/{check}",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/checks/{id}",
            "/api/v1/checks/{solo}",
            None,
            [U, H, A, H, A, A, A],
        ),
        r(
            M::PUT,
            "/api/v1/checks/{id}",
            "/api/v1/checks/{check}",
            Some(check_body("renamed-{p}")),
            [U, H, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/checks/{id}/results",
            "/api/v1/checks/{check}/results",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::POST,
            "/api/v1/checks/{id}/run",
            "/api/v1/checks/{check}/run",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/checks/{id}/run",
            "/api/v1/checks/{solo}/run",
            None,
            [U, H, F, H, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/proposals/{id}/accept",
            "/api/v1/proposals/{proposal}/accept",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/scripts",
            "/api/v1/scripts",
            None,
            [U, F, F, F, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/scripts",
            "/api/v1/scripts",
            Some(
                json!({ "name": "s-{p}-{n}", "body": "true", "step_up": { "password": PASSWORD } }),
            ),
            [U, F, F, F, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/scripts/{id}",
            "/api/v1/scripts/{script}",
            None,
            [U, F, F, F, A, A, F],
        ),
        r(
            M::PUT,
            "/api/v1/scripts/{id}",
            "/api/v1/scripts/{script}",
            Some(
                json!({ "name": "renamed-{p}", "body": "echo changed", "step_up": { "password": PASSWORD } }),
            ),
            [U, F, F, F, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/scripts/{id}/versions",
            "/api/v1/scripts/{script}/versions",
            None,
            [U, F, F, F, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/scripts/{id}/versions/{version}",
            "/api/v1/scripts/{script}/versions/1",
            None,
            [U, F, F, F, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/executions",
            "/api/v1/executions",
            None,
            [U, F, F, F, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/executions",
            "/api/v1/executions",
            // (An ad-hoc command: the script's version has moved on by now, see the PUT above.)
            Some(
                json!({ "command": "true", "server_ids": ["{web}"], "step_up": { "password": PASSWORD } }),
            ),
            [U, F, F, F, A, A, F],
        ),
        // Runs are private to who started them (and auditors): the fixture run is the admin's.
        r(
            M::GET,
            "/api/v1/executions/{id}",
            "/api/v1/executions/{exec}",
            None,
            [U, H, H, H, H, A, H],
        ),
        r(
            M::POST,
            "/api/v1/executions/{id}/cancel",
            "/api/v1/executions/{exec}/cancel",
            None,
            [U, H, H, H, H, N, H],
        ),
        r(
            M::GET,
            "/api/v1/executions/{id}/stream",
            "/api/v1/executions/{exec}/stream",
            None,
            [U, H, H, H, H, N, H],
        ),
        r(
            M::GET,
            "/api/v1/servers/{id}/metrics",
            "/api/v1/servers/{web}/metrics?names=cpu.usage",
            None,
            [U, H, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/metrics/summary",
            "/api/v1/metrics/summary",
            None,
            [U, F, A, A, A, A, A],
        ),
        r(
            M::GET,
            "/api/v1/metrics/disk-usage",
            "/api/v1/metrics/disk-usage",
            None,
            [U, F, A, A, A, A, A],
        ),
        // A plain GET (no upgrade): allowed callers get 400 `websocket_required`.
        r(
            M::GET,
            "/api/v1/live",
            "/api/v1/live",
            None,
            [U, F, N, N, N, N, N],
        ),
        r(
            M::GET,
            "/api/v1/audit",
            "/api/v1/audit",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::GET,
            "/api/v1/api-tokens",
            "/api/v1/api-tokens",
            None,
            [U, A, A, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/api-tokens",
            "/api/v1/api-tokens",
            Some(json!({ "name": "t-{n}", "permissions": ["servers.read"] })),
            [U, F, A, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/settings",
            "/api/v1/settings",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::PUT,
            "/api/v1/settings",
            "/api/v1/settings",
            Some(json!({ "require_totp": false })),
            [U, F, F, F, F, A, F],
        ),
        // After the terminal rows, which expect no step-up yet.
        r(
            M::POST,
            "/api/v1/auth/step-up",
            "/api/v1/auth/step-up",
            Some(json!({ "password": PASSWORD })),
            [U, A, A, A, A, A, F],
        ),
        // Sessions and tokens: one's own (login sessions only), and other users' for user
        // managers who cover them.
        r(
            M::GET,
            "/api/v1/auth/sessions",
            "/api/v1/auth/sessions",
            None,
            [U, A, A, A, A, A, F],
        ),
        r(
            M::GET,
            "/api/v1/users/{id}/sessions",
            "/api/v1/users/{user}/sessions",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::GET,
            "/api/v1/users/{id}/api-tokens",
            "/api/v1/users/{user}/api-tokens",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/users/{id}/api-tokens/{token_id}",
            "/api/v1/users/{user}/api-tokens/{user_token}",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::POST,
            "/api/v1/users/{id}/sessions/revoke-all",
            "/api/v1/users/{user}/sessions/revoke-all",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/sessions/revoke-others",
            "/api/v1/auth/sessions/revoke-others",
            None,
            [U, A, A, A, A, A, F],
        ),
        // Destructive routes last.
        r(
            M::DELETE,
            "/api/v1/checks/{id}",
            "/api/v1/checks/{check}",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/checks/{id}",
            "/api/v1/checks/{solo}",
            None,
            [U, H, F, H, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/servers/{id}/host-key",
            "/api/v1/servers/{web}/host-key",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/servers/{id}/credential",
            "/api/v1/servers/{web}/credential",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/servers/{id}",
            "/api/v1/servers/{web}",
            None,
            [U, H, F, A, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/scripts/{id}",
            "/api/v1/scripts/{script}",
            None,
            [U, F, F, F, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/users/{id}",
            "/api/v1/users/{user}",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/roles/{id}",
            "/api/v1/roles/{role}",
            None,
            [U, F, F, F, F, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/api-tokens/{id}",
            "/api/v1/api-tokens/{token}",
            None,
            [U, H, A, A, A, A, F],
        ),
        r(
            M::DELETE,
            "/api/v1/auth/totp",
            "/api/v1/auth/totp",
            Some(json!({ "password": PASSWORD })),
            [U, A, A, A, A, A, F],
        ),
        r(
            M::POST,
            "/api/v1/auth/logout",
            "/api/v1/auth/logout",
            None,
            [U, A, A, A, A, A, F],
        ),
    ]
}

/// Puts the closed port (a number) where the body says "{closed}".
fn with_port(mut body: Value, port: u16) -> Value {
    if body.get("port").and_then(Value::as_str) == Some("{closed}") {
        body["port"] = json!(port);
    }
    body
}

/// The id of the session `s` was made with.
async fn current_session(s: &Session) -> String {
    let (st, list) = s.get("/api/v1/auth/sessions").await;
    assert_eq!(st, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .expect("the current session is listed")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn classify(status: StatusCode) -> Option<E> {
    match status.as_u16() {
        200..=299 => Some(A),
        401 => Some(U),
        403 => Some(F),
        404 => Some(H),
        400..=499 => Some(N),
        _ => None,
    }
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(template.to_string(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), v)
    })
}

fn fill_json(v: &Value, vars: &[(&str, String)]) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(x, vars)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_json(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn every_route_for_every_role() {
    let app = TestApp::spawn().await;
    let mut admin_setup = app.admin().await;
    // The fixture's checks and proposals aim at loopback (where the test servers run), which
    // checks may reach only once allowed.
    admin_setup.allow_check_targets(&["127.0.0.0/8"]).await;

    // The matrix covers exactly the documented routes.
    let (_, doc) = app.call(Method::GET, "/api/v1/openapi.json", None).await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let table: BTreeSet<(String, String)> = matrix()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&table).collect();
    let stale: Vec<_> = table.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without an RBAC matrix entry (add them to tests/rbac.rs): {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix entries for routes that no longer exist: {stale:?}"
    );

    // A custom role limited to servers tagged `web`.
    let (s, b) = admin_setup
        .post("/api/v1/roles", json!({ "name": "web-operators", "permissions": ["servers.read", "servers.write", "credentials.write", "checks.write"], "server_tags": ["web"] }))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    let mut n = 0;
    for (col, who) in WHO.iter().enumerate() {
        // The administrator's "sign out everywhere else" ended this session: a fresh one.
        admin_setup = app.login(ADMIN, PASSWORD).await;
        let username = match *who {
            "nobody" => "nobody",
            "viewer" => "viewer1",
            "scoped" => "scoped1",
            "operator" => "operator1",
            _ => ADMIN,
        };
        let session = match *who {
            "anonymous" => None,
            "nobody" => Some(app.user_with_roles(&admin_setup, "nobody", &[]).await),
            "viewer" => Some(
                app.user_with_roles(&admin_setup, "viewer1", &["viewer"])
                    .await,
            ),
            "scoped" => Some(
                app.user_with_roles(&admin_setup, "scoped1", &["web-operators"])
                    .await,
            ),
            "operator" => Some(
                app.user_with_roles(&admin_setup, "operator1", &["operator"])
                    .await,
            ),
            "token" => {
                let (st, t) = admin_setup
                    .post(
                        "/api/v1/api-tokens",
                        json!({ "name": "narrow", "permissions": ["servers.read"] }),
                    )
                    .await;
                assert_eq!(st, StatusCode::CREATED, "{t}");
                Some(Session {
                    token: t["token"].as_str().unwrap().to_string(),
                    refresh: String::new(),
                    ..admin_setup.clone()
                })
            }
            _ => Some(app.login(ADMIN, PASSWORD).await),
        };
        // Another session of the same user, for ending one's own session.
        let own_session = match *who {
            "anonymous" | "token" => uuid::Uuid::new_v4().to_string(),
            _ => current_session(&app.login(username, PASSWORD).await).await,
        };
        // Fresh objects for each principal, so destructive calls do not disturb the next one.
        let closed = steward_testkit::sshd::closed_port();
        let mut fixture = Vec::new();
        for (name, tag) in [(format!("web-{who}"), "web"), (format!("db-{who}"), "db")] {
            let (st, b) = admin_setup
                .post("/api/v1/servers", json!({ "name": name, "host": "127.0.0.2", "port": closed, "ssh_user": "root", "tags": [tag] }))
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
            fixture.push(b["id"].as_str().unwrap().to_string());
        }
        let (web, db) = (fixture[0].clone(), fixture[1].clone());
        for id in [&web, &db] {
            let (st, _) = admin_setup
                .put(
                    &format!("/api/v1/servers/{id}/host-key"),
                    json!({ "public_key": HOST_KEY }),
                )
                .await;
            assert_eq!(st, StatusCode::OK);
            let (st, _) = admin_setup
                .put(
                    &format!("/api/v1/servers/{id}/credential"),
                    json!({ "kind": "generate" }),
                )
                .await;
            assert_eq!(st, StatusCode::OK);
        }
        // A (failed) scan of the web server.
        let scan = steward_db::new_id();
        steward_db::scans::insert(
            &app.db.pool,
            &steward_db::scans::ScanRow {
                id: scan.clone(),
                org_id: steward_core::DEFAULT_ORG_ID.into(),
                server_id: web.clone(),
                trigger_kind: "user".into(),
                actor_id: None,
                started_at: 0,
                finished_at: Some(1),
                status: "failed".into(),
                error_code: Some("unreachable".into()),
                error_message: Some("connection refused".into()),
                result: None,
            },
        )
        .await
        .unwrap();
        // A proposal on the web server (as a scan that found a database would make).
        let proposal = steward_db::new_id();
        steward_db::proposals::insert_new(
            &app.db.pool,
            &steward_db::proposals::ProposalRow {
                id: proposal.clone(),
                org_id: steward_core::DEFAULT_ORG_ID.into(),
                server_id: web.clone(),
                kind: "health_check".into(),
                service: "redis".into(),
                dedupe_key: "health_check:redis:6379".into(),
                spec: json!({ "type": "tcp", "host": "127.0.0.1", "port": 6379 }).to_string(),
                status: "proposed".into(),
                scan_id: None,
                created_at: 0,
                decided_at: None,
                decided_by: None,
            },
        )
        .await
        .unwrap();
        let mut fixture_checks = Vec::new();
        for server_id in [Some(&web), None] {
            let (st, b) = admin_setup
                .post("/api/v1/checks", json!({ "name": format!("check-{who}"), "server_id": server_id, "spec": { "type": "tcp", "host": "127.0.0.2", "port": 9 } }))
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
            fixture_checks.push(b["id"].as_str().unwrap().to_string());
        }
        let (_, user) = admin_setup
            .post("/api/v1/users", json!({ "username": format!("target-{who}"), "password": PASSWORD, "roles": ["viewer"], "password_change_required": false }))
            .await;
        let target = app.login(&format!("target-{who}"), PASSWORD).await;
        let user_session = current_session(&target).await;
        let (st, t) = target
            .post(
                "/api/v1/api-tokens",
                json!({ "name": "target's", "permissions": ["servers.read"] }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let user_token = t["api_token"]["id"].as_str().unwrap().to_string();
        admin_setup.step_up().await;
        let (st, script) = admin_setup
            .post(
                "/api/v1/scripts",
                json!({ "name": format!("script-{who}"), "body": "true" }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{script}");
        let (st, exec) = admin_setup
            .post(
                "/api/v1/executions",
                json!({ "script_id": script["id"], "script_version": 1, "server_ids": [web] }),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{exec}");
        // Let it finish (the server's port is closed), so cancelling answers the same each time.
        for _ in 0..200 {
            let (_, e) = admin_setup
                .get(&format!(
                    "/api/v1/executions/{}",
                    exec["id"].as_str().unwrap()
                ))
                .await;
            if e["status"] != "running" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let (_, role) = admin_setup
            .post(
                "/api/v1/roles",
                json!({ "name": format!("role-{who}"), "permissions": ["servers.read"] }),
            )
            .await;
        let own_token = match &session {
            Some(s) => {
                let (st, t) = s
                    .post(
                        "/api/v1/api-tokens",
                        json!({ "name": "mine", "permissions": ["servers.read"] }),
                    )
                    .await;
                if st == StatusCode::CREATED {
                    t["api_token"]["id"].as_str().unwrap().to_string()
                } else {
                    uuid::Uuid::new_v4().to_string()
                }
            }
            None => uuid::Uuid::new_v4().to_string(),
        };

        let mut failures = Vec::new();
        for route in matrix() {
            n += 1;
            let vars = [
                ("web", web.clone()),
                ("db", db.clone()),
                ("user", user["id"].as_str().unwrap_or_default().to_string()),
                ("role", role["id"].as_str().unwrap_or_default().to_string()),
                ("token", own_token.clone()),
                ("proposal", proposal.clone()),
                ("scan", scan.clone()),
                ("check", fixture_checks[0].clone()),
                ("solo", fixture_checks[1].clone()),
                (
                    "script",
                    script["id"].as_str().unwrap_or_default().to_string(),
                ),
                ("exec", exec["id"].as_str().unwrap_or_default().to_string()),
                (
                    "refresh",
                    session
                        .as_ref()
                        .map(|s| s.refresh.clone())
                        .unwrap_or_default(),
                ),
                ("own_session", own_session.clone()),
                ("user_session", user_session.clone()),
                ("user_token", user_token.clone()),
                ("n", n.to_string()),
                ("p", who.to_string()),
            ];
            let path = fill(route.concrete, &vars);
            let body = route
                .body
                .as_ref()
                .map(|b| fill_json(b, &vars))
                .map(|b| with_port(b, closed));
            let (status, resp) = match &session {
                Some(s) => s.call(route.method.clone(), &path, body.clone()).await,
                None => app.call(route.method.clone(), &path, body.clone()).await,
            };
            let want = route.expect[col];
            if classify(status) != Some(want) {
                failures.push(format!(
                    "{who}: {} {} -> {status} (want {want:?}): {resp}",
                    route.method, route.path
                ));
            }
            // The scoped role must not even learn that servers outside its tag exist.
            if *who == "scoped" && route.concrete.contains("{web}") {
                let other = fill(&route.concrete.replace("{web}", "{db}"), &vars);
                let (status, resp) = session
                    .as_ref()
                    .unwrap()
                    .call(route.method.clone(), &other, body)
                    .await;
                if status != StatusCode::NOT_FOUND {
                    failures.push(format!(
                        "scoped: {} {} on an untagged server -> {status} (want 404): {resp}",
                        route.method, route.path
                    ));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "authorization matrix violations:\n{}",
            failures.join("\n")
        );
    }
}

#[tokio::test]
async fn a_scoped_role_sees_only_its_group_everywhere() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    admin
        .post("/api/v1/roles", json!({ "name": "web-viewers", "permissions": ["servers.read"], "server_tags": ["web"] }))
        .await;
    for i in 0..3 {
        admin.server(&format!("web-{i}"), &["web", "eu"]).await;
        admin.server(&format!("db-{i}"), &["db", "eu"]).await;
    }
    let web_viewer = app.user_with_roles(&admin, "wv", &["web-viewers"]).await;
    let (_, page) = web_viewer.get("/api/v1/servers?limit=500").await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    assert_eq!(page["total"], 3);
    // Filtering or searching for the hidden group reveals nothing.
    let (_, page) = web_viewer.get("/api/v1/servers?tag=db").await;
    assert_eq!(page["total"], 0);
    let (_, page) = web_viewer.get("/api/v1/servers?q=db").await;
    assert_eq!(page["total"], 0);
    // Tag counts only count visible servers, and never list the hidden group's tag.
    let (_, tags) = web_viewer.get("/api/v1/tags").await;
    assert_eq!(
        tags,
        json!([{ "tag": "eu", "count": 3 }, { "tag": "web", "count": 3 }])
    );

    // Scoped writers may only create servers inside their scope.
    admin
        .post("/api/v1/roles", json!({ "name": "web-writers", "permissions": ["servers.read", "servers.write"], "server_tags": ["web"] }))
        .await;
    let writer = app.user_with_roles(&admin, "ww", &["web-writers"]).await;
    let (s, _) = writer
        .post(
            "/api/v1/servers",
            json!({ "name": "sneaky", "host": "10.1.1.1", "ssh_user": "root", "tags": ["db"] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let id = writer.server("web-new", &["web"]).await;
    // Tags are access decisions: a web writer cannot hand a server to the db group, nor add a
    // tag no role uses yet (someone's run on that tag, or a future role, would select it).
    admin
        .post(
            "/api/v1/roles",
            json!({ "name": "db-viewers", "permissions": ["servers.read"], "server_tags": ["db"] }),
        )
        .await;
    let (s, b) = writer.post("/api/v1/servers", json!({ "name": "both", "host": "10.1.1.2", "ssh_user": "root", "tags": ["web", "db"] })).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("tags")),
        "{b}"
    );
    let (s, _) = writer.put(&format!("/api/v1/servers/{id}"), json!({ "name": "web-new", "host": "10.1.1.1", "ssh_user": "root", "tags": ["web", "db"] })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = writer.put(&format!("/api/v1/servers/{id}"), json!({ "name": "web-new", "host": "10.1.1.1", "ssh_user": "root", "tags": ["web", "eu"] })).await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("tags")),
        "{b}"
    );
    // …and cannot move one out of it.
    let (s, _) = writer
        .put(
            &format!("/api/v1/servers/{id}"),
            json!({ "name": "web-new", "host": "10.1.1.1", "ssh_user": "root", "tags": ["db"] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Global permissions cannot be limited to tags.
    let (s, b) = admin
        .post(
            "/api/v1/roles",
            json!({ "name": "odd", "permissions": ["users.manage"], "server_tags": ["web"] }),
        )
        .await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("permissions"))
    );
}

#[tokio::test]
async fn nobody_can_hand_out_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // A user manager who is not an admin.
    admin
        .post(
            "/api/v1/roles",
            json!({ "name": "people", "permissions": ["users.manage", "servers.read"] }),
        )
        .await;
    let hr = app.user_with_roles(&admin, "hr", &["people"]).await;
    let (s, b) = hr
        .post(
            "/api/v1/users",
            json!({ "username": "evil", "password": PASSWORD, "roles": ["admin"] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = hr
        .post(
            "/api/v1/users",
            json!({ "username": "fine", "password": PASSWORD, "roles": ["viewer"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (_, me) = hr.get("/api/v1/auth/me").await;
    let (s, _) = hr
        .patch(
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            json!({ "roles": ["people", "admin"] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "cannot promote oneself");
    // Nor take over an admin by resetting their password.
    let (_, users) = hr.get("/api/v1/users").await;
    let admin_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == ADMIN)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = hr
        .post(
            &format!("/api/v1/users/{admin_id}/password"),
            json!({ "new_password": "taken-over-passphrase-1" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Nor disable, demote or otherwise edit them.
    let (s, _) = hr
        .patch(
            &format!("/api/v1/users/{admin_id}"),
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = hr
        .patch(
            &format!("/api/v1/users/{admin_id}"),
            json!({ "email": "hijack@example.com" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = hr.delete(&format!("/api/v1/users/{admin_id}/totp")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    app.login(ADMIN, PASSWORD).await;

    // Built-in roles are fixed.
    let (_, roles) = admin.get("/api/v1/roles").await;
    let admin_role = roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = admin
        .put(
            &format!("/api/v1/roles/{admin_role}"),
            json!({ "name": "admin", "permissions": ["servers.read"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "builtin_role"));
    let (s, _) = admin.delete(&format!("/api/v1/roles/{admin_role}")).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn role_changes_take_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = admin.server("db-1", &["db"]).await;
    let bob = app.user_with_roles(&admin, "bob", &["viewer"]).await;
    assert_eq!(
        bob.get(&format!("/api/v1/servers/{id}")).await.0,
        StatusCode::OK
    );
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
    let (s, _) = admin
        .patch(&format!("/api/v1/users/{bob_id}"), json!({ "roles": [] }))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        bob.get(&format!("/api/v1/servers/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(bob.get("/api/v1/servers").await.0, StatusCode::FORBIDDEN);
}
