//! Reaching managed servers over SSH: trust on first use, pinned keys, a changed key refused
//! and audited until a user accepts it, credentials that work and ones that do not — against
//! real OpenSSH servers on loopback.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::sshd::{OsUser, Sshd, closed_port, key_pair};
use steward_testkit::*;

fn fingerprint(public_key: &str) -> String {
    steward_ssh::client::HostKey::parse(public_key)
        .unwrap()
        .fingerprint
}

async fn server_on(admin: &Session, sshd: &Sshd, name: &str) -> String {
    admin
        .create_server(
            json!({ "name": name, "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user }),
        )
        .await
}

async fn test_connection(admin: &Session, id: &str) -> Value {
    let (s, b) = admin
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/servers/{id}/test-connection"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

#[tokio::test]
async fn first_contact_records_the_host_key_and_later_contacts_match_it() {
    let sshd = Sshd::start();
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = server_on(&admin, &sshd, "web-1").await;
    sshd.authorize(&admin.generate_key(&id).await);

    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (r["reachable"].as_bool(), r["authenticated"].as_bool()),
        (Some(true), Some(true)),
        "{r}"
    );
    assert_eq!(r["host_key"]["status"], "first_use");
    assert_eq!(r["host_key"]["fingerprint"], fingerprint(&sshd.host_key()));
    assert_eq!(r["host_key"]["algorithm"], "ssh-ed25519");
    assert!(r["latency_ms"].as_i64().unwrap() < 5_000, "{r}");
    assert_eq!(r["error"], Value::Null);

    let (_, key) = admin.get(&format!("/api/v1/servers/{id}/host-key")).await;
    assert_eq!(
        (key["source"].as_str(), key["fingerprint"].clone()),
        (Some("first_use"), r["host_key"]["fingerprint"].clone())
    );
    let r = test_connection(&admin, &id).await;
    assert_eq!(r["host_key"]["status"], "trusted", "{r}");
    assert_eq!(r["authenticated"], true);
    let actions = app.audit_actions().await;
    assert_eq!(
        actions
            .iter()
            .filter(|(a, _)| a == "host_key.first_use")
            .count(),
        1
    );
    assert_eq!(
        actions
            .iter()
            .filter(|(a, o)| a == "server.test_connection" && o == "success")
            .count(),
        2
    );
}

#[tokio::test]
async fn a_changed_host_key_is_refused_audited_and_only_accepted_by_name() {
    let mut sshd = Sshd::start();
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = server_on(&admin, &sshd, "db-1").await;
    sshd.authorize(&admin.generate_key(&id).await);
    let old = fingerprint(&sshd.host_key());
    assert_eq!(
        test_connection(&admin, &id).await["host_key"]["status"],
        "first_use"
    );

    sshd.restart_with_new_host_key();
    let new = fingerprint(&sshd.host_key());
    let r = test_connection(&admin, &id).await;
    assert_eq!(r["host_key"]["status"], "mismatch", "{r}");
    assert_eq!(
        (
            r["host_key"]["fingerprint"].as_str(),
            r["host_key"]["expected_fingerprint"].as_str()
        ),
        (Some(new.as_str()), Some(old.as_str()))
    );
    assert_eq!(
        r["authenticated"], false,
        "no credential is sent to a server with a changed key"
    );
    assert_eq!(r["error"]["code"], "host_key_mismatch");
    assert!(
        app.audit_actions()
            .await
            .contains(&("host_key.mismatch".into(), "denied".into()))
    );

    // Both fingerprints are on the server page; the trusted key is unchanged.
    let (_, key) = admin.get(&format!("/api/v1/servers/{id}/host-key")).await;
    assert_eq!(
        (
            key["fingerprint"].as_str(),
            key["mismatch"]["fingerprint"].as_str()
        ),
        (Some(old.as_str()), Some(new.as_str()))
    );
    // Still refused on every try.
    assert_eq!(
        test_connection(&admin, &id).await["host_key"]["status"],
        "mismatch"
    );

    // Only servers.write may accept, and only by naming the new fingerprint.
    let viewer = app.user_with_roles(&admin, "vic", &["viewer"]).await;
    let (s, _) = viewer
        .post(
            &format!("/api/v1/servers/{id}/host-key/accept"),
            json!({ "fingerprint": new }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{id}/host-key/accept"),
            json!({ "fingerprint": old }),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "fingerprint_mismatch")
    );
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{id}/host-key/accept"),
            json!({ "fingerprint": new }),
        )
        .await;
    assert_eq!(
        (s, b["source"].as_str(), b["mismatch"].clone()),
        (StatusCode::OK, Some("accepted"), Value::Null)
    );
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (
            r["host_key"]["status"].as_str(),
            r["authenticated"].as_bool()
        ),
        (Some("trusted"), Some(true)),
        "{r}"
    );
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{id}/host-key/accept"),
            json!({ "fingerprint": new }),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "no_pending_host_key"));
    assert!(
        app.audit_actions()
            .await
            .contains(&("host_key.accept".into(), "success".into()))
    );
}

#[tokio::test]
async fn a_key_pinned_in_advance_is_the_only_one_accepted() {
    let sshd = Sshd::start();
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = server_on(&admin, &sshd, "pinned").await;
    sshd.authorize(&admin.generate_key(&id).await);

    let (_, other) = key_pair("");
    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{id}/host-key"),
            json!({ "public_key": other }),
        )
        .await;
    assert_eq!((s, b["source"].as_str()), (StatusCode::OK, Some("pinned")));
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (
            r["host_key"]["status"].as_str(),
            r["authenticated"].as_bool()
        ),
        (Some("mismatch"), Some(false)),
        "{r}"
    );

    let (s, _) = admin
        .put(
            &format!("/api/v1/servers/{id}/host-key"),
            json!({ "public_key": sshd.host_key() }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (
            r["host_key"]["status"].as_str(),
            r["authenticated"].as_bool()
        ),
        (Some("trusted"), Some(true)),
        "{r}"
    );

    let (s, b) = admin
        .put(
            &format!("/api/v1/servers/{id}/host-key"),
            json!({ "public_key": "not a key" }),
        )
        .await;
    assert_eq!(
        (s, b["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("public_key"))
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/servers/{id}/host-key"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        test_connection(&admin, &id).await["host_key"]["status"],
        "first_use"
    );
}

#[tokio::test]
async fn credentials_that_work_and_ones_that_do_not() {
    let sshd = Sshd::start();
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    // No credential: reachable, host key seen, not logged in.
    let id = server_on(&admin, &sshd, "bare").await;
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (
            r["reachable"].as_bool(),
            r["authenticated"].as_bool(),
            r["error"]["code"].as_str()
        ),
        (Some(true), Some(false), Some("no_credential")),
        "{r}"
    );

    // A key the server does not know.
    admin.generate_key(&id).await;
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (r["authenticated"].as_bool(), r["error"]["code"].as_str()),
        (Some(false), Some("auth_failed")),
        "{r}"
    );

    // An uploaded key with a passphrase.
    let (private, public) = key_pair("open sesame 42");
    admin
        .put(&format!("/api/v1/servers/{id}/credential"), json!({ "kind": "private_key", "private_key": private, "passphrase": "open sesame 42" }))
        .await;
    sshd.authorize(&public);
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (r["authenticated"].as_bool(), r["error"].clone()),
        (Some(true), Value::Null),
        "{r}"
    );
}

#[tokio::test]
async fn unreachable_and_silent_servers_fail_fast_with_a_clear_reason() {
    let app = TestApp::spawn_with(|c| c.ssh_connect_timeout = Duration::from_secs(1)).await;
    let admin = app.admin().await;
    let (_, b) = admin.post("/api/v1/servers", json!({ "name": "closed", "host": "127.0.0.2", "port": closed_port(), "ssh_user": "root" })).await;
    let r = test_connection(&admin, b["id"].as_str().unwrap()).await;
    assert_eq!(
        (r["reachable"].as_bool(), r["error"]["code"].as_str()),
        (Some(false), Some("unreachable")),
        "{r}"
    );

    // A port that accepts connections but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (_, b) = admin
        .post(
            "/api/v1/servers",
            json!({ "name": "silent", "host": "127.0.0.2", "port": port, "ssh_user": "root" }),
        )
        .await;
    let started = Instant::now();
    let r = test_connection(&admin, b["id"].as_str().unwrap()).await;
    assert_eq!(
        (r["reachable"].as_bool(), r["error"]["code"].as_str()),
        (Some(false), Some("timeout")),
        "{r}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn a_password_logs_in_and_a_wrong_one_is_a_clear_error() {
    let Some(user) = OsUser::create() else {
        return;
    };
    let sshd = Sshd::start_with(&["127.0.0.3".to_string()], "PasswordAuthentication yes");
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = admin.create_server(json!({ "name": "pw", "host": sshd.host, "port": sshd.port, "ssh_user": user.name, "auth_method": "password" })).await;

    // A wrong password: reachable, refused, said plainly.
    admin
        .put(
            &format!("/api/v1/servers/{id}/credential"),
            json!({ "kind": "password", "password": "not-the-password" }),
        )
        .await;
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (
            r["reachable"].as_bool(),
            r["authenticated"].as_bool(),
            r["error"]["code"].as_str()
        ),
        (Some(true), Some(false), Some("auth_failed")),
        "{r}"
    );
    assert!(
        r["error"]["message"].as_str().unwrap().contains(&user.name),
        "{r}"
    );

    // The right one logs in, and a script runs as that user.
    admin
        .put(
            &format!("/api/v1/servers/{id}/credential"),
            json!({ "kind": "password", "password": user.password }),
        )
        .await;
    let r = test_connection(&admin, &id).await;
    assert_eq!(
        (r["authenticated"].as_bool(), r["error"].clone()),
        (Some(true), Value::Null),
        "{r}"
    );
    admin.step_up().await;
    let (_, script) = admin
        .post(
            "/api/v1/scripts",
            json!({ "name": "who", "body": "id -un" }),
        )
        .await;
    let (s, run) = admin
        .post(
            "/api/v1/executions",
            json!({ "script_id": script["id"], "script_version": 1, "server_ids": [id] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let (_, r) = admin.get(&format!("/api/v1/executions/{run_id}")).await;
        if r["status"] != "running" {
            break r;
        }
        assert!(Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        run["hosts"][0]["stdout"],
        format!("{}\n", user.name),
        "{run}"
    );
    drop(sshd);
}

#[tokio::test]
async fn files_travel_over_sftp_on_the_same_connection_as_commands() {
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let target = steward_ssh::client::Target {
        host: sshd.host.clone(),
        port: sshd.port,
        user: sshd.user.clone(),
    };
    let auth = steward_ssh::client::Auth::Key {
        private_key: private.into(),
        passphrase: None,
    };
    let conn = steward_ssh::client::connect(
        &target,
        Some(&auth),
        Some(&sshd.host_key()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uploaded.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let sftp = conn.sftp().await.unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut file = sftp.create(path.to_str().unwrap()).await.unwrap();
        file.write_all(&payload).await.unwrap();
        file.shutdown().await.unwrap();
    }
    // The file is really there (the sshd runs on this machine) and reads back the same.
    assert_eq!(std::fs::read(&path).unwrap(), payload);
    assert_eq!(sftp.read(path.to_str().unwrap()).await.unwrap(), payload);
    // Commands share the connection meanwhile.
    let out = conn
        .exec(
            &format!("wc -c < {}", path.display()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "300000");
    drop(sftp);
    conn.close().await;
}

#[tokio::test]
async fn upload_creates_a_new_file_with_its_mode_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let target = steward_ssh::client::Target {
        host: sshd.host.clone(),
        port: sshd.port,
        user: sshd.user.clone(),
    };
    let auth = steward_ssh::client::Auth::Key {
        private_key: private.into(),
        passphrase: None,
    };
    let conn = steward_ssh::client::connect(
        &target,
        Some(&auth),
        Some(&sshd.host_key()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    let p = path.to_str().unwrap();
    conn.upload(p, b"stwa_secret\n", 0o600).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"stwa_secret\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file (a planted symlink, a file of someone else) is not written through.
    let err = conn.upload(p, b"other", 0o600).await.unwrap_err();
    assert!(err.to_string().contains("create"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"stwa_secret\n");
    let exe = dir.path().join("exe");
    conn.upload(exe.to_str().unwrap(), &[0u8; 70_000], 0o755)
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(&exe).unwrap().permissions().mode() & 0o777,
        0o755
    );
    conn.close().await;
}

#[tokio::test]
async fn a_busy_server_gets_another_pooled_connection_instead_of_refused_channels() {
    // This sshd allows 2 channels per connection, like a stricter MaxSessions.
    let sshd = Sshd::start_with(&["127.0.0.4".to_string()], "MaxSessions 2");
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let pool = steward_ssh::pool::Pool::new(steward_ssh::pool::PoolConfig {
        channels_per_connection: 2,
        ..Default::default()
    });
    let target = steward_ssh::client::Target {
        host: sshd.host.clone(),
        port: sshd.port,
        user: sshd.user.clone(),
    };
    let host_key = sshd.host_key();
    let mut held = Vec::new();
    for _ in 0..5 {
        let conn = pool
            .get("server", "v1", || async {
                let auth = steward_ssh::client::Auth::Key {
                    private_key: private.clone().into(),
                    passphrase: None,
                };
                steward_ssh::client::connect(
                    &target,
                    Some(&auth),
                    Some(&host_key),
                    Duration::from_secs(10),
                )
                .await
            })
            .await
            .expect("a connection");
        // Each user keeps a command running on its connection.
        let process = conn.start("sleep 5").await.expect("a channel");
        held.push((conn, process));
    }
    assert_eq!(pool.stats().open, 3, "5 users at 2 per connection");
    assert_eq!(pool.stats().in_use, 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sshd.log().matches("Accepted publickey").count() < 3 {
        assert!(Instant::now() < deadline, "{}", sshd.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once they let go, the next user reuses a connection rather than opening a fourth.
    for (_, p) in &held {
        p.close().await;
    }
    held.clear();
    let again = pool
        .get("server", "v1", || async {
            Err::<steward_ssh::client::Connection, ()>(())
        })
        .await
        .expect("reused");
    assert!(!again.is_closed());
    assert_eq!(pool.stats().open, 3);
}
