//! Test harness: starts the real Steward server on 127.0.0.1:0 with a fresh data directory and a
//! fresh database — an SQLite file, or (with `STEWARD_TEST_DB=postgres`) a new database on the
//! PostgreSQL at `STEWARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped when the test ends — and speaks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_core::{Clock, SystemClock};
use steward_db::Db;
use tempfile::TempDir;

pub mod docker;
pub mod sshd;
pub mod trap;

pub const ADMIN: &str = "admin";
pub const PASSWORD: &str = "violet-harbour-engine-42";

/// A database made for one test.
pub struct TestDb {
    pub url: String,
    pg_name: Option<(String, String)>,
}

fn postgres_admin_url() -> String {
    std::env::var("STEWARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn backend() -> String {
    std::env::var("STEWARD_TEST_DB").unwrap_or_else(|_| "sqlite".into())
}

impl TestDb {
    pub async fn new(dir: &std::path::Path) -> Self {
        match backend().as_str() {
            "sqlite" => Self {
                url: format!("sqlite://{}", dir.join("steward.db").display()),
                pg_name: None,
            },
            "postgres" => {
                let admin = postgres_admin_url();
                let name = format!("steward_test_{}", uuid::Uuid::new_v4().simple());
                let conn = Db::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin} ({e}); start it or set STEWARD_TEST_POSTGRES_URL"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&conn.pool)
                    .await
                    .expect("create test database");
                conn.close().await;
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("bad postgres url"),
                };
                Self {
                    url,
                    pg_name: Some((admin, name)),
                }
            }
            other => panic!("STEWARD_TEST_DB must be sqlite or postgres, not {other}"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_name.take() {
            // Drop runs outside async context: use a private runtime on a plain thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(conn) = Db::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&conn.pool)
                                .await;
                        conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A clock the test sets: it stands still unless told to move.
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    /// A clock stopped at the current wall-clock time.
    pub fn now() -> Arc<Self> {
        Arc::new(Self(std::sync::atomic::AtomicI64::new(
            SystemClock.now_ms(),
        )))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(
            i64::try_from(by.as_millis()).expect("duration"),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        steward_core::clock::from_ms(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// A running server.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub setup_token: String,
    pub db: Db,
    pub vault: Arc<steward_vault::Vault>,
    pub dir: TempDir,
    pub test_db: TestDb,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The server's own runtime (`spawn_isolated`).
    runtime: Option<tokio::runtime::Runtime>,
    metrics_stop: tokio_util::sync::CancellationToken,
    /// The running server's state (its metric store, registries), for tests that drive
    /// background work such as collection directly.
    pub state: steward_api::AppState,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut steward_api::ApiConfig)) -> Self {
        Self::start(|c, _| configure(c), false).await
    }

    /// Like [`TestApp::spawn_with`], with the server reading the time from `clock` (e.g. a
    /// [`ManualClock`] that stands still, so a burst of requests happens at one instant).
    pub async fn spawn_with_clock(
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut steward_api::ApiConfig),
    ) -> Self {
        Self::start_with_clock(|c, _| configure(c), false, clock).await
    }

    /// Like [`TestApp::spawn_with`], but `configure` also gets the base URL the server will
    /// listen at (`http://127.0.0.1:<port>`), e.g. for `public_url`.
    #[allow(dead_code)]
    pub async fn spawn_at(configure: impl FnOnce(&mut steward_api::ApiConfig, &str)) -> Self {
        Self::start(configure, false).await
    }

    /// The server on a runtime of its own (two worker threads), apart from the test's: for
    /// benchmarks, where the test's many clients must not queue on the server's workers (in
    /// production the browsers are other processes, on other machines).
    #[allow(dead_code)]
    pub async fn spawn_isolated(configure: impl FnOnce(&mut steward_api::ApiConfig)) -> Self {
        Self::start(|c, _| configure(c), true).await
    }

    async fn start(
        configure: impl FnOnce(&mut steward_api::ApiConfig, &str),
        isolated: bool,
    ) -> Self {
        Self::start_with_clock(configure, isolated, Arc::new(SystemClock)).await
    }

    async fn start_with_clock(
        configure: impl FnOnce(&mut steward_api::ApiConfig, &str),
        isolated: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let test_db = TestDb::new(dir.path()).await;
        let db = Db::connect(&test_db.url).await.expect("connect");
        db.migrate().await.expect("migrate");
        let (vault, _) =
            steward_vault::Vault::open_or_create(&dir.path().join("master.key")).expect("vault");
        let vault = Arc::new(vault);
        let mut config = steward_api::ApiConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        configure(&mut config, &format!("http://{addr}"));
        // Wired as `serve` wires it; the metric store's background work runs until the token
        // is cancelled (on drop).
        let app = steward::app::build(db.clone(), vault.clone(), clock, config)
            .await
            .expect("build the app");
        let setup_token = app
            .setup_token
            .clone()
            .expect("fresh instance has a setup token");
        let (state, metrics_stop) = app.detach();
        let app_state = state.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            steward_api::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        };
        let (task, runtime) = if isolated {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("steward-server")
                .enable_all()
                .build()
                .expect("server runtime");
            (rt.spawn(serving), Some(rt))
        } else {
            (tokio::spawn(serving), None)
        };
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder().build().expect("client"),
            setup_token,
            db,
            vault,
            dir,
            test_db,
            shutdown: Some(tx),
            task: Some(task),
            runtime,
            metrics_stop,
            state: app_state,
        }
    }

    /// Another instance's state over this app's database and keyring (as `serve` builds it),
    /// for tests of work several instances share.
    pub async fn second_instance(&self, config: steward_api::ApiConfig) -> steward_api::AppState {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let app = steward::app::build(self.db.clone(), self.vault.clone(), clock, config)
            .await
            .expect("build the second instance");
        // Its metric store's background work is not needed: the tests drive it.
        let (state, metrics_stop) = app.detach();
        metrics_stop.cancel();
        state
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request without credentials.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send(&self.client, method, &self.url(path), None, body).await
    }

    /// Completes first-run setup as `admin` and logs in.
    pub async fn admin(&self) -> Session {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/setup",
                Some(json!({ "token": self.setup_token, "username": ADMIN, "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "setup failed: {body}");
        self.login(ADMIN, PASSWORD).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Session {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username} failed: {body}");
        self.session(&body)
    }

    pub fn session(&self, tokens: &Value) -> Session {
        Session {
            base: self.base.clone(),
            client: self.client.clone(),
            token: tokens["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            refresh: tokens["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// Creates a user with `roles` (names) through the API and logs them in.
    pub async fn user_with_roles(
        &self,
        admin: &Session,
        username: &str,
        roles: &[&str],
    ) -> Session {
        let (status, body) = admin
            .post(
                "/api/v1/users",
                json!({ "username": username, "password": PASSWORD, "roles": roles, "password_change_required": false }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create user failed: {body}");
        self.login(username, PASSWORD).await
    }

    /// Whether the hub holds a latest value of metric `name` for `server`.
    pub async fn has_metric(&self, server: &str, name: &str) -> bool {
        self.state
            .metrics
            .latest(server)
            .await
            .unwrap()
            .iter()
            .any(|l| l.name == name)
    }

    /// Every audit event (newest first), read straight from the database.
    pub async fn audit_actions(&self) -> Vec<(String, String)> {
        sqlx::query_as::<_, (String, String)>(
            "SELECT action, outcome FROM audit_events ORDER BY at DESC, id DESC",
        )
        .fetch_all(&self.db.pool)
        .await
        .expect("audit")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.metrics_stop.cancel();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        // A runtime cannot be dropped from async code: let its threads wind down by themselves.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A logged-in client.
#[derive(Clone)]
pub struct Session {
    pub base: String,
    pub client: reqwest::Client,
    pub token: String,
    pub refresh: String,
}

impl Session {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send(
            &self.client,
            method,
            &format!("{}{}", self.base, path),
            Some(&self.token),
            body,
        )
        .await
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Proves the session's user again (password), for what needs a step-up.
    pub async fn step_up(&self) {
        let (status, body) = self
            .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(status, StatusCode::OK, "step-up failed: {body}");
    }

    /// Saves a script (after a step-up, which a new body needs) and returns it.
    pub async fn script(&self, body: Value) -> Value {
        self.step_up().await;
        let (status, script) = self.post("/api/v1/scripts", body).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "create script failed: {script}"
        );
        script
    }

    /// Creates a server and returns its id.
    pub async fn server(&self, name: &str, tags: &[&str]) -> String {
        self.create_server(
            json!({ "name": name, "host": "127.0.0.2", "ssh_user": "steward", "tags": tags }),
        )
        .await
    }

    /// Creates a server from a `POST /api/v1/servers` body and returns its id.
    pub async fn create_server(&self, body: Value) -> String {
        let (status, body) = self.post("/api/v1/servers", body).await;
        assert_eq!(status, StatusCode::CREATED, "create server failed: {body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Sets a server's credential (`{"kind": …}` as `PUT …/credential` takes it) and returns
    /// the answer, which holds the public key of a generated pair.
    pub async fn set_credential(&self, server: &str, body: Value) -> Value {
        let (status, body) = self
            .put(&format!("/api/v1/servers/{server}/credential"), body)
            .await;
        assert_eq!(status, StatusCode::OK, "set credential failed: {body}");
        body
    }

    /// Gives a server a private key to log in with.
    pub async fn set_private_key(&self, server: &str, private_key: &str) {
        self.set_credential(
            server,
            json!({ "kind": "private_key", "private_key": private_key }),
        )
        .await;
    }

    /// Lets health checks reach `networks` (refused by default: loopback, where the test
    /// servers run, among them), as an administrator does in Settings; keeps the other
    /// settings.
    pub async fn allow_check_targets(&self, networks: &[&str]) {
        let (status, settings) = self.get("/api/v1/settings").await;
        assert_eq!(status, StatusCode::OK, "read settings failed: {settings}");
        let (status, body) = self
            .put(
                "/api/v1/settings",
                json!({ "require_totp": settings["require_totp"], "check_allowed_networks": networks }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "allowing check targets failed: {body}"
        );
    }

    /// Generates a key pair for a server and returns its public half.
    pub async fn generate_key(&self, server: &str) -> String {
        let c = self
            .set_credential(server, json!({ "kind": "generate" }))
            .await;
        c["public_key"].as_str().expect("public key").to_string()
    }
}

pub async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// The error code of an error body.
/// Whether every step of an agent install or uninstall answer succeeded.
pub fn all_steps_ok(answer: &Value) -> bool {
    answer["steps"]
        .as_array()
        .is_some_and(|steps| steps.iter().all(|s| s["ok"] == true))
}

pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The TOTP code for a base32 secret at `now + offset_steps * 30 s`.
pub fn totp_code(secret_b32: &str, offset_steps: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .expect("base32");
    let t = totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes, None, "x".into())
        .expect("totp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    t.generate((now + offset_steps * 30) as u64)
}

/// Waits up to `secs` for `f` to hold, asking every 100 ms.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// The agent binary, built by the workspace test run (`cargo build -p steward-agent`):
/// target/<profile>/deps/<test>-… → target/<profile>/steward-agent.
#[allow(dead_code)]
pub fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let path = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("steward-agent"))
        .expect("target dir");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p steward-agent` (the workspace test run builds it)",
        path.display()
    );
    path
}
