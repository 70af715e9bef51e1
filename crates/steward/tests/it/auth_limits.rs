//! Limits on guessing and on the cost of guessing: the throttle reserves each attempt in the
//! database before a password or code is checked (whatever the concurrency), every
//! re-confirmation of a password or code shares the login counters, IPv6 clients are counted
//! per /64, and password hashing runs under a bounded number of slots.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::*;

const LOGIN: &str = "/api/v1/auth/login";

/// How many answers had each status.
fn tally(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn burst(app: &TestApp, n: usize, body: Value) -> Vec<StatusCode> {
    join_all((0..n).map(|_| app.call(Method::POST, LOGIN, Some(body.clone()))))
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// Audit rows of `auth.login` with this outcome and reason.
async fn login_audits(app: &TestApp, outcome: &str, reason: &str) -> i64 {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'auth.login' AND outcome = $1",
    )
    .bind(outcome)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    rows.iter()
        .filter(|d| serde_json::from_str::<Value>(d).unwrap()["reason"] == reason)
        .count() as i64
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_verifies_only_the_free_allowance() {
    // The clock stands still: the whole burst happens at one instant, so the documented
    // allowance (5 free failures per account, then 1 s, 2 s, 4 s …) is exact.
    let clock = ManualClock::now();
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    app.admin().await;
    let wrong = json!({ "username": ADMIN, "password": "not-the-password-at-all" });

    let statuses = burst(&app, 300, wrong.clone()).await;
    assert_eq!(
        (
            tally(&statuses, StatusCode::UNAUTHORIZED),
            tally(&statuses, StatusCode::TOO_MANY_REQUESTS)
        ),
        (5, 295),
        "300 simultaneous wrong passwords: only 5 may be verified"
    );
    assert_eq!(login_audits(&app, "failure", "bad credentials").await, 5);
    assert_eq!(login_audits(&app, "denied", "throttled").await, 295);

    // The right password waits as well.
    let (s, b) = app
        .call(
            Method::POST,
            LOGIN,
            Some(json!({ "username": ADMIN, "password": PASSWORD })),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
    );
    assert_eq!(b["error"]["details"]["retry_after"], 1);

    // One second later exactly one more guess is checked, however many arrive together.
    clock.advance(Duration::from_secs(1));
    let statuses = burst(&app, 50, wrong).await;
    assert_eq!(
        tally(&statuses, StatusCode::UNAUTHORIZED),
        1,
        "{statuses:?}"
    );
    assert_eq!(tally(&statuses, StatusCode::TOO_MANY_REQUESTS), 49);

    // After the next delay (2 s) the owner gets in, and that clears the account's count.
    clock.advance(Duration::from_secs(2));
    app.login(ADMIN, PASSWORD).await;
    let (s, _) = app
        .call(
            Method::POST,
            LOGIN,
            Some(json!({ "username": ADMIN, "password": "not-the-password-at-all" })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
    let clock = ManualClock::now();
    let app = TestApp::spawn_with_clock(clock.clone(), |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.admin().await;
    let from = |addr: &str, user: &str| {
        app.client
            .post(app.url(LOGIN))
            .header("x-forwarded-for", addr.to_string())
            .json(&json!({ "username": user, "password": "not-the-password-at-all" }))
            .send()
    };
    // 20 failures (the address allowance), each from another address of one /64 and for
    // another (unknown) account, so only the address counter can stop them.
    for i in 0..20 {
        let res = from(&format!("2001:db8:1:2::{:x}", i + 1), &format!("ghost{i}"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Any other address of that /64 now waits; a neighbouring /64 does not.
    let res = from("2001:db8:1:2:ffff:ffff:ffff:fffe", "ghost-x")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = from("2001:db8:1:3::1", "ghost-y").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // An IPv4-mapped IPv6 address is the IPv4 client it maps.
    for i in 0..20 {
        let res = from("192.0.2.7", &format!("v4ghost{i}")).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = from("::ffff:192.0.2.7", "v4ghost-x").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = from("192.0.2.8", "v4ghost-y").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn password_reconfirmations_share_the_login_throttle() {
    // A stolen session guessing the password through the routes that ask for it again.
    let clock = ManualClock::now();
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let admin = app.admin().await;
    let wrong = "not-the-password-at-all";

    let (s, b) = admin
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": wrong, "new_password": "a-brand-new-passphrase-7" }),
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "invalid_password"));
    let (s, _) = admin
        .call(
            Method::DELETE,
            "/api/v1/auth/totp",
            Some(json!({ "password": wrong })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = admin
        .post("/api/v1/auth/step-up", json!({ "password": wrong }))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "step_up_failed"));
    // Concurrent guesses through every route at once: 2 more are checked, the rest refused.
    let guesses = (0..40).map(|i| {
        let admin = admin.clone();
        async move {
            match i % 3 {
                0 => {
                    admin
                        .post(
                            "/api/v1/auth/password",
                            json!({ "current_password": wrong, "new_password": "a-brand-new-passphrase-7" }),
                        )
                        .await
                }
                1 => {
                    admin
                        .call(
                            Method::DELETE,
                            "/api/v1/auth/totp",
                            Some(json!({ "password": wrong })),
                        )
                        .await
                }
                _ => {
                    admin
                        .post("/api/v1/auth/step-up", json!({ "password": wrong }))
                        .await
                }
            }
        }
    });
    let statuses: Vec<StatusCode> = join_all(guesses)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        (
            tally(&statuses, StatusCode::FORBIDDEN),
            tally(&statuses, StatusCode::TOO_MANY_REQUESTS)
        ),
        (2, 38),
        "{statuses:?}"
    );

    // The right password is refused too while the delay runs: the guesser cannot take the
    // account, and neither a login nor a step-up gets through.
    let (s, b) = admin
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": PASSWORD, "new_password": "a-brand-new-passphrase-7" }),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
    );
    let (s, _) = admin
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let (s, _) = app
        .call(
            Method::POST,
            LOGIN,
            Some(json!({ "username": ADMIN, "password": PASSWORD })),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);

    // Throttled re-confirmations are audited under their own action.
    let actions = app.audit_actions().await;
    for action in ["user.change_password", "auth.totp_disable", "auth.step_up"] {
        assert!(
            actions.contains(&(action.to_string(), "denied".to_string())),
            "{action} denied missing: {actions:?}"
        );
    }

    // After the delay the owner's own confirmation works and clears the count.
    clock.advance(Duration::from_secs(1));
    let (s, b) = admin
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = admin
        .post("/api/v1/auth/step-up", json!({ "password": wrong }))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn recovery_code_regeneration_and_totp_codes_share_the_throttle() {
    let clock = ManualClock::now();
    let app = TestApp::spawn_with_clock(clock.clone(), |_| {}).await;
    let admin = app.admin().await;
    let (_, enroll) = admin
        .call(Method::POST, "/api/v1/auth/totp/enroll", None)
        .await;
    let secret = enroll["secret"].as_str().unwrap().to_string();
    let (s, _) = admin
        .post(
            "/api/v1/auth/totp/confirm",
            json!({ "code": totp_code(&secret, 0) }),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Wrong TOTP codes at step-up and wrong passwords at regeneration count together.
    for _ in 0..3 {
        let (s, _) = admin
            .post("/api/v1/auth/step-up", json!({ "totp_code": "000000" }))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    for _ in 0..2 {
        let (s, _) = admin
            .post(
                "/api/v1/auth/totp/recovery-codes",
                json!({ "password": "not-the-password-at-all" }),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, b) = admin
        .post(
            "/api/v1/auth/totp/recovery-codes",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
    );
    let (s, _) = admin
        .post(
            "/api/v1/auth/step-up",
            json!({ "totp_code": totp_code(&secret, 1) }),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        app.audit_actions()
            .await
            .contains(&("auth.recovery_codes_regenerate".into(), "denied".into()))
    );
}

/// A line of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The real `steward serve`, stopped when dropped.
struct Served {
    child: std::process::Child,
    base: String,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(args: &[&str]) -> (Served, String) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = TestDb::new(dir.path()).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .env_remove("STEWARD_MASTER_KEY")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(&data)
        .arg("--database-url")
        .arg(&db.url)
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if v["message"] == "steward is listening" {
                let _ = tx.send(v["address"].as_str().unwrap_or_default().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("steward serve did not start");
    let token = std::fs::read_to_string(data.join("setup-token")).unwrap();
    let served = Served {
        child,
        base: format!("http://{addr}"),
        _db: db,
        _dir: dir,
    };
    (served, token.trim().to_string())
}

#[tokio::test]
async fn a_burst_of_unknown_user_logins_stays_under_the_memory_ceiling() {
    const SLOTS: u64 = 2;
    const BURST: usize = 400;
    // What the burst may add to the server's resident memory at its peak: the working memory
    // of SLOTS hashes (19 MiB each), plus 64 MiB for 400 connections, their requests and the
    // database pool.
    const CEILING_KIB: u64 = SLOTS * 19 * 1024 + 64 * 1024;
    let (served, token) = serve(&[
        "--password-hash-concurrency",
        &SLOTS.to_string(),
        "--trusted-proxy",
        "127.0.0.1",
    ])
    .await;
    let pid = served.child.id();
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", served.base);
    let (s, _) = send(
        &client,
        Method::POST,
        &url("/api/v1/setup"),
        None,
        Some(json!({ "token": token, "username": ADMIN, "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    // One login first, so the baseline includes what any login needs.
    let (s, _) = send(
        &client,
        Method::POST,
        &url(LOGIN),
        None,
        Some(json!({ "username": ADMIN, "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let before = status_kib(pid, "VmRSS");
    // Start the peak (VmHWM) afresh, so it measures the burst.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();

    // Every attempt from another address and for another (unknown) name, as a distributed
    // attacker would: the throttle does not stop them, each costs a hash.
    let attempts = (0..BURST).map(|i| {
        client
            .post(url(LOGIN))
            .header("x-forwarded-for", format!("10.{}.{}.1", i / 250, i % 250))
            .json(&json!({ "username": format!("nobody-{i}"), "password": "some-guess-or-other" }))
            .send()
    });
    let answers = join_all(attempts).await;
    let mut refused_busy = 0;
    for answer in answers {
        let res = answer.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                refused_busy += 1;
                assert!(res.headers().contains_key("retry-after"));
                let b: Value = res.json().await.unwrap();
                assert_eq!(code(&b), "busy");
            }
            other => panic!("unexpected answer {other}"),
        }
    }
    let peak = status_kib(pid, "VmHWM");
    let after = status_kib(pid, "VmRSS");
    eprintln!(
        "RSS before {before} KiB, peak {peak} KiB (+{} KiB), after {after} KiB; {refused_busy} of {BURST} answered busy",
        peak.saturating_sub(before)
    );
    assert!(
        peak <= before + CEILING_KIB,
        "the burst raised resident memory by {} KiB, over the {CEILING_KIB} KiB ceiling",
        peak - before
    );

    // Still answering, and the owner still gets in.
    let (s, _) = send(&client, Method::GET, &url("/readyz"), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = send(
        &client,
        Method::POST,
        &url(LOGIN),
        None,
        Some(json!({ "username": ADMIN, "password": PASSWORD })),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}
