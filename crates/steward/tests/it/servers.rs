//! The server inventory, credentials in the vault, and proof that no secret is stored in the
//! clear.

use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::*;

#[tokio::test]
async fn register_list_search_filter_sort_page_edit_delete() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (s, created) = admin
        .post(
            "/api/v1/servers",
            json!({ "name": "Web 1", "host": "Web1.Example.COM", "port": 2222, "ssh_user": "deploy", "auth_method": "password",
                    "tags": ["Prod", "web", "prod"], "notes": "behind the LB\nsecond line" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["host"], "web1.example.com");
    assert_eq!(created["port"], 2222);
    assert_eq!(created["auth_method"], "password");
    assert_eq!(created["tags"], json!(["prod", "web"]));
    assert_eq!(created["credential_kind"], Value::Null);
    let id = created["id"].as_str().unwrap().to_string();
    let (_, fetched) = admin.get(&format!("/api/v1/servers/{id}")).await;
    assert_eq!(fetched, created);

    for i in 0..12 {
        let tags: &[&str] = if i % 2 == 0 {
            &["db", "prod"]
        } else {
            &["db", "staging"]
        };
        admin.server(&format!("db-{i:02}"), tags).await;
    }
    let (_, page) = admin.get("/api/v1/servers?limit=5&offset=0").await;
    assert_eq!(
        (
            page["total"].as_i64(),
            page["items"].as_array().unwrap().len()
        ),
        (Some(13), 5)
    );
    assert_eq!(
        page["items"][0]["name"], "Web 1",
        "sorted by name, capitals first"
    );
    let (_, page2) = admin.get("/api/v1/servers?limit=5&offset=5").await;
    assert_eq!(page2["items"][0]["name"], "db-04");
    let (_, desc) = admin
        .get("/api/v1/servers?sort=name&order=desc&limit=1")
        .await;
    assert_eq!(desc["items"][0]["name"], "db-11");
    let (_, by_tag) = admin.get("/api/v1/servers?tag=prod,db").await;
    assert_eq!(by_tag["total"], 6, "both tags required");
    let (_, search) = admin.get("/api/v1/servers?q=EXAMPLE.com").await;
    assert_eq!(search["total"], 1, "case-insensitive search in host");
    let (_, search) = admin.get("/api/v1/servers?q=second%20line").await;
    assert_eq!(search["total"], 1, "search in notes");
    let (_, tags) = admin.get("/api/v1/tags").await;
    assert_eq!(
        tags,
        json!([{"tag":"db","count":12},{"tag":"prod","count":7},{"tag":"staging","count":6},{"tag":"web","count":1}])
    );

    let (s, updated) = admin
        .put(
            &format!("/api/v1/servers/{id}"),
            json!({ "name": "web-1", "host": "10.0.0.5", "ssh_user": "root", "tags": ["web"] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["port"].as_i64(), updated["notes"].as_str()),
        (Some(22), Some(""))
    );
    assert_eq!(updated["created_at"], created["created_at"]);

    let (s, b) = admin
        .post(
            "/api/v1/servers",
            json!({ "name": "web-1", "host": "x.example", "ssh_user": "root" }),
        )
        .await;
    assert_eq!(
        (s, code(&b), b["error"]["details"]["field"].as_str()),
        (StatusCode::CONFLICT, "conflict", Some("name"))
    );

    assert_eq!(
        admin.delete(&format!("/api/v1/servers/{id}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin.get(&format!("/api/v1/servers/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.delete(&format!("/api/v1/servers/{id}")).await.0,
        StatusCode::NOT_FOUND
    );

    let actions = app.audit_actions().await;
    for a in ["server.create", "server.update", "server.delete"] {
        assert!(actions.iter().any(|(x, _)| x == a), "{a} not audited");
    }
}

#[tokio::test]
async fn listing_five_thousand_servers_pages_quickly() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    // Insert through the store (the API path is covered above); 5,000 is the product's upper fleet size.
    let mut tx = app.db.begin().await.unwrap();
    for i in 0..5000 {
        let row = steward_db::servers::ServerRow {
            id: steward_db::new_id(),
            org_id: steward_core::DEFAULT_ORG_ID.into(),
            name: format!("srv-{i:04}"),
            host: format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
            port: 22,
            ssh_user: "root".into(),
            auth_method: "key".into(),
            notes: String::new(),
            created_by: None,
            created_at: i,
            updated_at: i,
            credential_kind: None,
            jump_server_id: None,
            monitoring: "agentless".into(),
            metrics_interval_secs: 10,
            endpoint_changed_at: None,
            endpoint_changed_by: None,
            endpoint_previous: None,
            tags: vec![if i % 3 == 0 {
                "db".into()
            } else {
                "web".into()
            }],
        };
        steward_db::servers::insert(&mut tx, &row).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (_, page) = admin
        .get("/api/v1/servers?tag=db&sort=host&order=desc&limit=100&offset=1600")
        .await;
    assert_eq!(page["total"], 1667);
    assert_eq!(page["items"].as_array().unwrap().len(), 67);
    let (_, page) = admin.get("/api/v1/servers?q=srv-49&limit=500").await;
    assert_eq!(page["total"], 100);
}

fn openssh_key_with_passphrase(passphrase: &str) -> (String, String) {
    use russh::keys::ssh_key::LineEnding;
    use russh::keys::{Algorithm, PrivateKey};
    let key = PrivateKey::random(&mut rand10::rng(), Algorithm::Ed25519).unwrap();
    let fp = key
        .public_key()
        .fingerprint(russh::keys::HashAlg::Sha256)
        .to_string();
    let encrypted = key.encrypt(&mut rand10::rng(), passphrase).unwrap();
    (
        encrypted.to_openssh(LineEnding::LF).unwrap().to_string(),
        fp,
    )
}

#[tokio::test]
async fn credentials_are_write_only_and_never_stored_in_the_clear() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let a = admin.server("a", &[]).await;
    let b = admin.server("b", &[]).await;
    let c = admin.server("c", &[]).await;
    let ssh_password = "Sup3r-Secret-SSH-password!";
    let passphrase = "key passphrase 7Q";
    let (pem, fingerprint) = openssh_key_with_passphrase(passphrase);

    // An encrypted key needs its passphrase, and the right one.
    let (s, e) = admin
        .put(
            &format!("/api/v1/servers/{a}/credential"),
            json!({ "kind": "private_key", "private_key": pem }),
        )
        .await;
    assert_eq!(
        (s, e["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("passphrase")),
        "{e}"
    );
    let (s, _) = admin
        .put(
            &format!("/api/v1/servers/{a}/credential"),
            json!({ "kind": "private_key", "private_key": pem, "passphrase": "nope" }),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, info) = admin
        .put(
            &format!("/api/v1/servers/{a}/credential"),
            json!({ "kind": "private_key", "private_key": pem, "passphrase": passphrase }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{info}");
    assert_eq!(
        (info["kind"].as_str(), info["fingerprint"].as_str()),
        (Some("private_key"), Some(fingerprint.as_str()))
    );
    assert_eq!(info["has_passphrase"], true);

    let (s, info) = admin
        .put(
            &format!("/api/v1/servers/{b}/credential"),
            json!({ "kind": "password", "password": ssh_password }),
        )
        .await;
    assert_eq!(
        (s, info["kind"].as_str()),
        (StatusCode::OK, Some("password"))
    );

    let (s, generated) = admin
        .put(
            &format!("/api/v1/servers/{c}/credential"),
            json!({ "kind": "generate" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let public = generated["public_key"].as_str().unwrap();
    assert!(
        public.starts_with("ssh-ed25519 ") && public.ends_with(" steward@c"),
        "{public}"
    );

    // Reading back gives metadata only.
    for id in [&a, &b, &c] {
        let (_, info) = admin.get(&format!("/api/v1/servers/{id}/credential")).await;
        let text = info.to_string();
        assert!(
            !text.contains("PRIVATE KEY")
                && !text.contains(ssh_password)
                && !text.contains(passphrase),
            "{text}"
        );
    }
    let (_, server) = admin.get(&format!("/api/v1/servers/{c}")).await;
    assert_eq!(server["credential_kind"], "generated_key");

    // The vault opens what was stored.
    let secret_id: String =
        sqlx::query_scalar("SELECT secret_id FROM credentials WHERE server_id = $1")
            .bind(&b)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let plain = steward_services::bootstrap::load_secret(&app.db, &app.vault, &secret_id)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), ssh_password.as_bytes());

    // The audit log knows who set what, but not the secret.
    let (_, audit) = admin.get("/api/v1/audit?action=credential.").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);
    assert!(!audit.to_string().contains(ssh_password));

    // No plaintext key material, password or passphrase anywhere in the database.
    let key_body: String = pem.lines().nth(2).unwrap().to_string();
    let generated_pk: String = sqlx::query_scalar("SELECT ciphertext FROM secrets s JOIN credentials c ON c.secret_id = s.id WHERE c.server_id = $1")
        .bind(&c)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(generated_pk.starts_with("stw1:"));
    let dump = database_dump(&app).await;
    for needle in [
        ssh_password,
        passphrase,
        key_body.as_str(),
        "OPENSSH PRIVATE KEY",
        "BEGIN",
    ] {
        assert!(
            !dump.contains(needle),
            "found {needle:?} in the database in plaintext"
        );
    }
    assert!(
        dump.contains("stw1:"),
        "the dump should contain the sealed values"
    );

    // Replacing and deleting credentials removes the old secrets.
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    admin
        .put(
            &format!("/api/v1/servers/{b}/credential"),
            json!({ "kind": "generate" }),
        )
        .await;
    assert_eq!(
        admin
            .delete(&format!("/api/v1/servers/{a}/credential"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin
            .get(&format!("/api/v1/servers/{a}/credential"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.delete(&format!("/api/v1/servers/{c}")).await.0,
        StatusCode::NO_CONTENT
    );
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        after,
        before - 3,
        "a's key and passphrase, c's key gone; b's replaced one for one"
    );
}

/// Every byte the database holds: the SQLite files, or every row of every table on PostgreSQL.
async fn database_dump(app: &TestApp) -> String {
    if backend() == "sqlite" {
        // Make sure the WAL is written out, then read the files raw.
        sqlx::query("PRAGMA wal_checkpoint(FULL)")
            .execute(&app.db.pool)
            .await
            .unwrap();
        let mut out = String::new();
        for f in ["steward.db", "steward.db-wal"] {
            if let Ok(bytes) = std::fs::read(app.data_dir().join(f)) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        assert!(out.len() > 10_000, "expected to read the database files");
        out
    } else {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
        let mut out = String::new();
        for t in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT CAST(x AS TEXT) FROM {t} x"))
                    .fetch_all(&app.db.pool)
                    .await
                    .unwrap();
            out.push_str(&rows.join("\n"));
        }
        out
    }
}
