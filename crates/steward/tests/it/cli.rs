//! The `steward` binary itself: serve (setup token, file modes, graceful shutdown), migrate and
//! the refusal of a newer schema, key rotation under a running server, admin repairs.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::*;

fn steward(data_dir: &std::path::Path, db_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_steward"));
    c.env_remove("STEWARD_MASTER_KEY")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--database-url")
        .arg(db_url);
    c
}

fn run(c: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn steward");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn serve_prints_the_setup_url_keeps_secrets_private_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = TestDb::new(dir.path()).await;
    let mut child = steward(&data, &db.url)
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut logs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let v = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("server did not start");
        logs.push(v.clone());
        if v["message"] == "steward is listening" {
            break v["address"].as_str().unwrap().to_string();
        }
    };
    let setup_line = logs
        .iter()
        .find(|l| l["setup_url"].is_string())
        .expect("setup URL logged");
    let token = std::fs::read_to_string(data.join("setup-token"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        setup_line["setup_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/setup?token={token}"))
    );
    let mut private = vec![data.join("setup-token"), data.join("master.key")];
    if backend() == "sqlite" {
        private.push(dir.path().join("steward.db"));
    }
    for file in private {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700,
        "data directory"
    );

    let client = reqwest::Client::new();
    let (s, _) = send(
        &client,
        Method::GET,
        &format!("http://{addr}/readyz"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(
        &client,
        Method::POST,
        &format!("http://{addr}/api/v1/setup"),
        None,
        Some(json!({ "token": token, "username": "root", "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!data.join("setup-token").exists());
    // No secret reaches the log.
    let (s, _) = send(
        &client,
        Method::POST,
        &format!("http://{addr}/api/v1/auth/login"),
        None,
        Some(json!({ "username": "root", "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // SIGTERM: finish and exit 0.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "steward did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    while let Ok(v) = rx.recv_timeout(Duration::from_secs(2)) {
        logs.push(v);
    }
    assert!(logs.iter().any(|l| l["message"] == "steward stopped"));
    let all = logs.iter().map(Value::to_string).collect::<String>();
    assert!(!all.contains(PASSWORD), "a password reached the log");
    assert!(
        logs.iter()
            .any(|l| l["request_id"].is_string() || l["span"]["request_id"].is_string()),
        "requests are logged with ids"
    );
}

#[tokio::test]
async fn migrate_is_idempotent_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(dir.path()).await;
    for _ in 0..2 {
        let (ok, out, err) = run(steward(dir.path(), &db.url).arg("migrate"), None);
        assert!(ok, "{err}");
        // The latest version: the highest number among the migrations (numbers taken by work
        // on other branches may be missing in between).
        let latest = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../steward-db/migrations/sqlite"
        ))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next().and_then(|n| n.parse::<u32>().ok())
        })
        .max()
        .unwrap();
        assert!(
            out.contains(&format!("database schema is at version {latest}")),
            "{out}"
        );
    }
    let pool = steward_db::Db::connect(&db.url).await.unwrap();
    sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99990101000000, 'from the future', TRUE, $1, 0)")
        .bind(vec![0u8; 48])
        .execute(&pool.pool)
        .await
        .unwrap();
    let (ok, _, err) = run(steward(dir.path(), &db.url).arg("migrate"), None);
    assert!(!ok);
    assert!(err.contains("newer than this Steward knows"), "{err}");
    let (ok, _, err) = run(
        steward(dir.path(), &db.url).args(["serve", "--listen", "127.0.0.1:0"]),
        None,
    );
    assert!(!ok, "serve must refuse a newer schema");
    assert!(err.contains("newer than this Steward knows"), "{err}");
    pool.close().await;
}

#[tokio::test]
async fn rotating_the_master_key_while_the_server_runs() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let id = admin.server("web-1", &[]).await;
    admin
        .put(
            &format!("/api/v1/servers/{id}/credential"),
            json!({ "kind": "password", "password": "hunter2-but-longer" }),
        )
        .await;
    let old_key = app.vault.primary_key_id().unwrap();

    let (ok, out, err) = run(
        steward(&app.data_dir(), &app.test_db.url).args(["vault", "rotate-key", "--retire-old"]),
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("re-encrypted 2 secret(s)"),
        "the signing key and the credential: {out}"
    );
    assert!(out.contains("retired 1 old key(s)"), "{out}");

    // The running server picked up the new keyring: old secrets re-sealed, new ones use the new key.
    let new_key = app.vault.primary_key_id().unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(app.vault.key_ids().unwrap(), vec![new_key.clone()]);
    let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT key_id FROM secrets")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(keys, vec![new_key.to_string()]);
    let secret_id: String = sqlx::query_scalar("SELECT secret_id FROM credentials")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    let plain = steward_services::bootstrap::load_secret(&app.db, &app.vault, &secret_id)
        .await
        .unwrap();
    assert_eq!(plain.as_slice(), b"hunter2-but-longer");
    let other = admin.server("web-2", &[]).await;
    let (s, _) = admin
        .put(
            &format!("/api/v1/servers/{other}/credential"),
            json!({ "kind": "generate" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let newest: String = sqlx::query_scalar("SELECT s.key_id FROM secrets s JOIN credentials c ON c.secret_id = s.id WHERE c.server_id = $1")
        .bind(&other)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(newest, new_key.to_string());
    // Logins keep working (the signing key was re-sealed too).
    app.login(ADMIN, PASSWORD).await;

    let (ok, out, _) = run(
        steward(&app.data_dir(), &app.test_db.url).args(["vault", "status"]),
        None,
    );
    assert!(ok);
    assert!(
        out.contains(&format!("{new_key}  primary  3 secret(s)")),
        "{out}"
    );
    let (_, audit) = admin.get("/api/v1/audit?action=vault.rotate_key").await;
    assert_eq!(audit["items"][0]["actor_name"], "cli");
}

#[tokio::test]
async fn admin_commands_repair_accounts_from_the_console() {
    let app = TestApp::spawn().await;
    let cli = || steward(&app.data_dir(), &app.test_db.url);
    let (ok, out, err) = run(
        cli().args([
            "admin",
            "create-user",
            "--username",
            "Ops",
            "--email",
            "ops@example.com",
        ]),
        Some("a-console-made-passphrase\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("created user ops with roles admin"), "{out}");
    assert!(
        !app.data_dir().join("setup-token").exists(),
        "creating a user closes setup"
    );
    let ops = app.login("ops", "a-console-made-passphrase").await;
    let (_, me) = ops.get("/api/v1/auth/me").await;
    assert_eq!(me["roles"], json!(["admin"]));

    // Weak passwords are refused here too.
    let (ok, _, err) = run(
        cli().args(["admin", "reset-password", "--username", "ops"]),
        Some("password1\n"),
    );
    assert!(!ok && err.contains("password"), "{err}");

    // 2FA on, then a lost phone.
    let (_, enroll) = ops
        .call(Method::POST, "/api/v1/auth/totp/enroll", None)
        .await;
    ops.post(
        "/api/v1/auth/totp/confirm",
        json!({ "code": totp_code(enroll["secret"].as_str().unwrap(), 0) }),
    )
    .await;
    let (s, b) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "username": "ops", "password": "a-console-made-passphrase" })),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, "totp_required"));
    let (ok, _, err) = run(
        cli().args(["admin", "disable-2fa", "--username", "ops"]),
        None,
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run(
        cli().args(["admin", "reset-password", "--username", "ops"]),
        Some("brand-new-console-passphrase\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("session(s) ended"), "{out}");
    assert_eq!(
        ops.get("/api/v1/auth/me").await.0,
        StatusCode::UNAUTHORIZED,
        "old sessions end"
    );
    app.login("ops", "brand-new-console-passphrase").await;

    let (ok, _, err) = run(
        cli().args(["admin", "reset-password", "--username", "ghost"]),
        Some("whatever-long-enough\n"),
    );
    assert!(!ok && err.contains("no user named ghost"), "{err}");

    let actions = app.audit_actions().await;
    for a in ["user.create", "user.totp_reset", "user.password_reset"] {
        assert!(actions.iter().any(|(x, _)| x == a), "{a} not audited");
    }
}

#[test]
fn openapi_and_version() {
    let (ok, out, _) = run(
        Command::new(env!("CARGO_BIN_EXE_steward")).arg("openapi"),
        None,
    );
    assert!(ok);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let (ok, out, _) = run(
        Command::new(env!("CARGO_BIN_EXE_steward")).arg("--version"),
        None,
    );
    assert!(ok && out.starts_with("steward "), "{out}");
    let (ok, _, err) = run(
        Command::new(env!("CARGO_BIN_EXE_steward")).args(["serve", "--listen", "not-an-address"]),
        None,
    );
    assert!(!ok && err.contains("invalid value"), "{err}");
}

#[tokio::test]
async fn a_missing_keyring_is_not_silently_replaced_once_secrets_exist() {
    let app = TestApp::spawn().await;
    app.admin().await;
    std::fs::rename(
        app.data_dir().join("master.key"),
        app.data_dir().join("master.key.bak"),
    )
    .unwrap();
    let (ok, _, err) = run(
        steward(&app.data_dir(), &app.test_db.url).args(["serve", "--listen", "127.0.0.1:0"]),
        None,
    );
    assert!(
        !ok,
        "serve must refuse to start without the keyring that sealed the secrets"
    );
    assert!(
        err.contains("master keyring") && err.contains("not found"),
        "{err}"
    );
    assert!(
        !app.data_dir().join("master.key").exists(),
        "no stray keyring is created"
    );
    let (ok, _, err) = run(
        steward(&app.data_dir(), &app.test_db.url).args([
            "admin",
            "disable-2fa",
            "--username",
            "admin",
        ]),
        None,
    );
    assert!(!ok && err.contains("master keyring"), "{err}");
}
