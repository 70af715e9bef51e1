//! Installing the agent over SSH with real parts: the hub serves the real debug
//! `steward-agent`, a real sshd lets a throwaway non-root account log in, the install uploads
//! the binary by SFTP and starts it (detached: no systemd runs on the test machine), the agent
//! process runs as that account and pushes metrics; uninstall stops and removes it and revokes
//! the token. Also the refusals (no step-up, a viewer, wrong tokens, a wrong architecture, an
//! unreachable server) and the binary download.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::sshd::{OsUser, Sshd, closed_port, key_pair};
use steward_testkit::*;

/// A hub whose public URL is its own address and that serves `binary`.
async fn hub(binary: PathBuf) -> TestApp {
    TestApp::spawn_at(|c, base| {
        c.public_url = base.to_string();
        c.agent_binary = Some(binary);
    })
    .await
}

async fn step_up(s: &Session) {
    let (st, b) = s
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

async fn server(admin: &Session, name: &str, host: &str, port: u16, user: &str) -> String {
    admin.create_server(json!({ "name": name, "host": host, "port": port, "ssh_user": user, "metrics_interval_secs": 1 })).await
}

/// Every audit row's action, outcome and details, as stored.
async fn audit_rows(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT action, outcome, details FROM audit_events ORDER BY at, id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

async fn download(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/api/v1/agent/download"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

fn uid_of(name: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The real uid of a running process.
fn process_uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Installs with `Accept: application/x-ndjson`: every line, with when it arrived.
async fn install_streamed(session: &Session, path: &str, body: Value) -> Vec<(Duration, Value)> {
    let start = std::time::Instant::now();
    let mut resp = session
        .client
        .post(format!("{}{path}", session.base))
        .bearer_auth(&session.token)
        .header("accept", "application/x-ndjson")
        // As a browser asks; lines must still go out one by one, uncompressed (like SSE).
        .header("accept-encoding", "gzip, br")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    assert!(
        resp.headers().get("content-encoding").is_none(),
        "{:?}",
        resp.headers()
    );
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.extend_from_slice(&chunk);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            lines.push((start.elapsed(), serde_json::from_slice(&line).unwrap()));
        }
    }
    assert!(buf.is_empty(), "every line ends with a newline");
    lines
}

/// The account's crontab (empty when it has none). Needs `crontab` (Debian: `cron`).
fn crontab_of(user: &str) -> String {
    let out = std::process::Command::new("crontab")
        .args(["-l", "-u", user])
        .output()
        .expect("crontab is missing: install it with `apt-get install -y cron`");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The steward-agent process a detached launcher runs, if any.
fn agent_under(launcher: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"))
        .ok()?
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|c: &u32| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|l| String::from_utf8_lossy(&l).contains("bin/steward-agent"))
        })
}

fn alive(pid: u32) -> bool {
    // A zombie has no command line any more.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_over_ssh_as_a_normal_user_runs_detached_and_uninstalls() {
    // Created first, so it is removed last (after the pooled connections are gone).
    let Some(user) = OsUser::create() else {
        eprintln!("skipped: creating a throwaway OS account needs root");
        return;
    };
    let sshd = Sshd::start_with(&["127.0.0.2".to_string()], "PasswordAuthentication yes");
    // The hub offers builds for two architectures; the install picks the server's.
    let bins = tempfile::tempdir().unwrap();
    let app = hub(agent_dir(bins.path())).await;
    let admin = app.admin().await;
    let id = server(&admin, "agent-host", &sshd.host, sshd.port, &user.name).await;
    admin
        .set_credential(
            &id,
            json!({ "kind": "password", "password": user.password }),
        )
        .await;
    let install = format!("/api/v1/servers/{id}/agent/install");
    let uninstall = format!("/api/v1/servers/{id}/agent/uninstall");

    // A viewer may not; an administrator must step up first. Both refusals change nothing.
    let viewer = app.user_with_roles(&admin, "vera", &["viewer"]).await;
    step_up(&viewer).await;
    let (s, b) = viewer.post(&install, json!({})).await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, "forbidden"), "{b}");
    let (s, b) = admin.post(&install, json!({})).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    let (s, b) = admin.post(&uninstall, json!({})).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_required"),
        "{b}"
    );
    let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    assert_eq!(a["enrolled"], false, "{a}");
    assert!(
        app.audit_actions()
            .await
            .contains(&("agent.install".into(), "denied".into()))
    );

    // Installed over SSH: a user install (no root), started detached (no systemd here).
    step_up(&admin).await;
    let (s, r) = admin.post(&install, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["mode"], "user", "{r}");
    assert_eq!(r["service"], "detached", "{r}");
    let home = PathBuf::from(format!("/home/{}", user.name));
    assert_eq!(
        r["binary_path"],
        home.join(".local/bin/steward-agent").display().to_string()
    );
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in [
        "connect",
        "probe",
        "architecture",
        "upload",
        "enroll",
        "token",
        "install",
        "start",
        "verify",
        "boot",
        "cleanup",
    ] {
        assert!(steps.contains(&name), "step {name} missing: {r}");
    }
    let arch_step = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "architecture")
        .unwrap();
    assert!(
        arch_step["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("steward-agent-{}", std::env::consts::ARCH)),
        "the build for the server's architecture was chosen: {arch_step}"
    );
    assert!(all_steps_ok(&r), "{r}");
    assert!(
        !r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "no_boot_start"),
        "cron is there: {r}"
    );
    // Without systemd, cron starts it at boot: one @reboot line in the account's crontab.
    let start = home.join(".config/steward-agent/start");
    let reboot_line = format!("@reboot /bin/sh '{}' # steward-agent", start.display());
    assert_eq!(crontab_of(&user.name), format!("{reboot_line}\n"));

    // The real agent runs as that account and connects; its metrics arrive.
    let connected = eventually(30, || async {
        let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
        a["connected"] == true
    })
    .await;
    let log = std::fs::read_to_string(home.join(".local/state/steward-agent/agent.log"))
        .unwrap_or_default();
    assert!(connected, "the agent never connected; its log:\n{log}");
    let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    assert_eq!(a["monitoring"], "agent");
    let got = eventually(30, || app.has_metric(&id, "cpu.usage")).await;
    assert!(got, "metrics from the installed agent arrive");
    let pid: u32 = std::fs::read_to_string(home.join(".local/state/steward-agent/agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The pid file holds the launcher, which runs the agent.
    assert!(alive(pid));
    let launcher = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .replace('\0', " ");
    assert!(
        launcher.contains(".config/steward-agent/start"),
        "{launcher}"
    );
    let agent = agent_under(pid).expect("the launcher runs the agent");
    for p in [pid, agent] {
        assert_eq!(
            process_uid(p),
            Some(uid_of(&user.name)),
            "runs as the login user"
        );
    }
    let cmdline =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{agent}/cmdline")).unwrap())
            .replace('\0', " ");
    assert!(
        cmdline.contains(".local/bin/steward-agent --hub"),
        "{cmdline}"
    );

    // Outside journald the agent's own lines carry the time: `2026-12-06T23:24:09Z steward-agent: …`.
    let log_path = home.join(".local/state/steward-agent/agent.log");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("steward-agent: "))
        .unwrap_or_else(|| panic!("no line of the agent in {log}"));
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{line}"
    );
    assert!(rest.starts_with("steward-agent: "), "{line}");

    // A crash: the launcher starts the agent again (after 5 s, as the systemd unit would), and
    // it connects again. The log has grown past 5 MiB: it becomes agent.log.1 at the restart.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .unwrap();
        let filler = "x".repeat(1023) + "\n";
        for _ in 0..(5 * 1024 + 16) {
            f.write_all(filler.as_bytes()).unwrap();
        }
    }
    let (_, before) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &agent.to_string()])
        .status();
    let restarted = eventually(20, || async {
        agent_under(pid).is_some_and(|a| a != agent && alive(a))
    })
    .await;
    let rotated = std::fs::read_to_string(log_path.with_extension("log.1")).unwrap_or_default();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        restarted,
        "the agent was not started again; its log:\n{log}"
    );
    assert!(
        rotated.contains("steward-agent exited (status 137)"),
        "not rotated"
    );
    assert!(rotated.len() > 5 * 1024 * 1024);
    assert!(log.len() < 64 * 1024, "{} bytes after rotation", log.len());
    assert!(
        eventually(30, || async {
            let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
            a["connected"] == true && a["connected_at"] != before["connected_at"]
        })
        .await,
        "the restarted agent connects again"
    );

    // The token: a 0600 file of the account, never on a command line, never in the audit log.
    let token_path = home.join(".config/steward-agent/token");
    let meta = std::fs::metadata(&token_path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), uid_of(&user.name));
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("stwa_"), "{token}");
    assert!(!cmdline.contains(&token));
    assert_eq!(
        std::fs::metadata(home.join(".config/steward-agent"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let rows = audit_rows(&app).await;
    assert!(rows.iter().all(|(_, _, d)| !d.contains(&token)));
    assert!(
        !r.to_string().contains(&token),
        "the response does not carry the token"
    );
    let install_row = rows.iter().rfind(|(a, _, _)| a == "agent.install").unwrap();
    assert_eq!(install_row.1, "success", "{install_row:?}");
    let details: Value = serde_json::from_str(&install_row.2).unwrap();
    assert_eq!(
        (details["mode"].as_str(), details["service"].as_str()),
        (Some("user"), Some("detached"))
    );
    // The temporary upload directory is gone.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("steward-agent.")
                && e.metadata().is_ok_and(|m| m.uid() == uid_of(&user.name))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The token downloads the binary the hub serves; the hub names its architecture.
    let resp = download(&app, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-steward-agent-arch"));
    let served = resp.bytes().await.unwrap();
    assert_eq!(
        served.as_ref(),
        std::fs::read(agent_binary()).unwrap().as_slice()
    );

    // Installing again replaces the token and the process. This time streamed, as the page
    let old_agent = agent_under(pid).unwrap();
    // asks for it: each step as it ends, then the result.
    let lines = install_streamed(&admin, &install, json!({})).await;
    let (last_at, last) = lines.last().unwrap().clone();
    assert_eq!(last["type"], "result", "{lines:?}");
    let r2 = last["result"].clone();
    let streamed: Vec<&Value> = lines[..lines.len() - 1]
        .iter()
        .map(|(_, l)| {
            assert_eq!(l["type"], "step", "{l}");
            &l["step"]
        })
        .collect();
    assert_eq!(
        streamed,
        r2["steps"].as_array().unwrap().iter().collect::<Vec<_>>(),
        "the streamed steps are the result's"
    );
    assert_eq!(streamed[0]["name"], "connect");
    // The first steps arrived while the install went on, and so did the install script's
    // own: `start`, then `verify` 2 s later (the script waits before checking).
    assert!(
        last_at - lines[0].0 >= Duration::from_millis(1500),
        "connect at {:?}, result at {last_at:?}",
        lines[0].0
    );
    let at = |name: &str| {
        lines
            .iter()
            .find(|(_, l)| l["step"]["name"] == name)
            .map(|(t, _)| *t)
            .unwrap()
    };
    assert!(
        at("verify") - at("start") >= Duration::from_millis(1500),
        "start at {:?}, verify at {:?}",
        at("start"),
        at("verify")
    );
    let token2 = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(token, token2);
    assert_eq!(
        download(&app, Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let pid2: u32 = std::fs::read_to_string(home.join(".local/state/steward-agent/agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(pid, pid2);
    assert!(
        eventually(10, || async { !alive(pid) && !alive(old_agent) }).await,
        "the old launcher and agent stopped"
    );
    assert!(
        eventually(30, || async {
            let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
            a["connected"] == true
        })
        .await
    );

    // Installing again kept one @reboot line. A "reboot": the agent is stopped and the line's
    // command, run as the account as cron runs it, brings it back.
    assert_eq!(crontab_of(&user.name), format!("{reboot_line}\n"));
    let agent2 = agent_under(pid2).unwrap();
    let _ = std::process::Command::new("kill")
        .arg(pid2.to_string())
        .status();
    assert!(
        eventually(10, || async { !alive(pid2) && !alive(agent2) }).await,
        "TERM to the launcher stops it and its agent"
    );
    let boot_cmd = reboot_line
        .strip_prefix("@reboot ")
        .and_then(|l| l.strip_suffix(" # steward-agent"))
        .unwrap()
        .to_string();
    let mut booted = std::process::Command::new("runuser")
        .args(["-u", &user.name, "--", "/bin/sh", "-c", &boot_cmd])
        .current_dir("/")
        .spawn()
        .expect("runuser runs the @reboot command");
    let pidfile = home.join(".local/state/steward-agent/agent.pid");
    let started_again = eventually(10, || async {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|p| p != pid2 && alive(p))
    })
    .await;
    assert!(started_again, "the @reboot command starts the agent again");
    let pid2: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(eventually(5, || async { agent_under(pid2).is_some() }).await);
    let agent2 = agent_under(pid2).unwrap();
    assert!(
        eventually(30, || async {
            let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
            a["connected"] == true
        })
        .await,
        "the agent started at boot connects"
    );

    // Uninstall: the process is gone, its files and its @reboot line are removed, the token is
    // revoked.
    let (s, u) = admin.post(&uninstall, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert!(all_steps_ok(&u), "{u}");
    assert_eq!(u["agent"]["enrolled"], false, "{u}");
    assert!(
        eventually(10, || async { !alive(pid2) && !alive(agent2) }).await,
        "the launcher and the agent stopped"
    );
    for gone in [
        ".local/bin/steward-agent",
        ".config/steward-agent",
        ".local/state/steward-agent",
    ] {
        assert!(!home.join(gone).exists(), "{gone} is still there");
    }
    assert_eq!(crontab_of(&user.name), "", "the @reboot line is removed");
    let _ = booted.wait();
    assert_eq!(
        download(&app, Some(&token2)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, a) = admin.get(&format!("/api/v1/servers/{id}/agent")).await;
    assert_eq!(
        (a["enrolled"].as_bool(), a["monitoring"].as_str()),
        (Some(false), Some("agentless"))
    );
    let actions = app.audit_actions().await;
    assert!(actions.contains(&("agent.uninstall".into(), "success".into())));
    assert!(actions.contains(&("agent.revoke".into(), "success".into())));
    let rows = audit_rows(&app).await;
    assert!(
        rows.iter()
            .all(|(_, _, d)| !d.contains(&token) && !d.contains(&token2))
    );

    // Uninstalling again finds nothing and still succeeds.
    let (s, u) = admin.post(&uninstall, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{u}");
}

#[tokio::test]
async fn the_binary_is_served_only_to_an_enrolled_agent() {
    let app = hub(agent_binary()).await;
    let (admin, token, b) = enrolled(&app).await;
    // The manual command downloads with the token (never on curl's command line) and checks
    // the architecture.
    let command = b["install_command"].as_str().unwrap();
    assert!(
        command.contains(&format!("{}/api/v1/agent/download", app.base)),
        "{command}"
    );
    assert!(command.contains("uname -m"), "{command}");
    assert!(command.contains("User=steward-agent"), "{command}");
    let curl = command.lines().find(|l| l.contains("curl ")).unwrap();
    assert!(!curl.contains(&token), "{curl}");

    let resp = download(&app, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let len = std::fs::metadata(agent_binary()).unwrap().len();
    assert_eq!(resp.content_length(), Some(len));
    assert_eq!(
        resp.headers()["x-steward-agent-arch"].to_str().unwrap(),
        std::env::consts::ARCH
    );
    assert_eq!(resp.bytes().await.unwrap().len() as u64, len);

    for bad in [
        None,
        Some("stwa_wrong"),
        Some(admin.token.as_str()),
        Some(""),
    ] {
        let resp = download(&app, bad).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(code(&body), "unauthenticated");
    }

    // A hub without a binary says so.
    let none = hub(app.data_dir().join("no-such-agent")).await;
    let admin2 = none.admin().await;
    let id2 = admin2.server("web-2", &[]).await;
    let (_, b) = admin2
        .post(&format!("/api/v1/servers/{id2}/agent"), json!({}))
        .await;
    let resp = download(&none, b["token"].as_str()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "agent_binary_missing");
    // …and refuses to install before touching the server or the enrollment.
    step_up(&admin2).await;
    let (s, b) = admin2
        .post(&format!("/api/v1/servers/{id2}/agent/install"), json!({}))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "agent_binary_missing"),
        "{b}"
    );
}

/// A file that looks like an aarch64 (or, on aarch64, x86_64) Linux binary.
fn foreign_binary(dir: &Path) -> PathBuf {
    let mut h = vec![0u8; 256];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[18] = if std::env::consts::ARCH == "aarch64" {
        62
    } else {
        183
    };
    let path = dir.join("foreign-agent");
    std::fs::write(&path, h).unwrap();
    path
}

/// The name `uname -m` gives the foreign binary's architecture.
fn foreign_uname() -> &'static str {
    if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    }
}

/// A directory of agent builds, as `--agent-binary` may name one: the real agent (linked) and
/// a foreign-architecture build.
fn agent_dir(dir: &Path) -> PathBuf {
    let d = dir.join("agents");
    std::fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::symlink(
        agent_binary(),
        d.join(format!("steward-agent-{}", std::env::consts::ARCH)),
    )
    .unwrap();
    foreign_binary(&d);
    d
}

/// A server `web-1` enrolled by an admin: the admin, the enrollment token and the enrollment
/// answer.
async fn enrolled(app: &TestApp) -> (Session, String, Value) {
    let admin = app.admin().await;
    let id = admin.server("web-1", &[]).await;
    let (s, b) = admin
        .post(&format!("/api/v1/servers/{id}/agent"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let token = b["token"].as_str().unwrap().to_string();
    (admin, token, b)
}

async fn download_arch(app: &TestApp, token: &str, arch: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/agent/download?arch={arch}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_hub_with_builds_for_several_architectures_serves_each_server_its_own() {
    let bins = tempfile::tempdir().unwrap();
    let app = hub(agent_dir(bins.path())).await;
    let (_admin, token, b) = enrolled(&app).await;
    // The manual command accepts both architectures and asks for its own.
    let command = b["install_command"].as_str().unwrap();
    assert!(command.contains(foreign_uname()), "{command}");
    assert!(command.contains(std::env::consts::ARCH), "{command}");
    assert!(command.contains("download?arch=$(uname -m)"), "{command}");

    let own = std::fs::read(agent_binary()).unwrap();
    let foreign = std::fs::read(foreign_binary(bins.path())).unwrap();
    for (arch, want, served_as) in [
        (std::env::consts::ARCH, &own, std::env::consts::ARCH),
        (foreign_uname(), &foreign, foreign_uname()),
        // `uname -m` spellings of the same machines.
        (
            if std::env::consts::ARCH == "x86_64" {
                "amd64"
            } else {
                "arm64"
            },
            &own,
            std::env::consts::ARCH,
        ),
    ] {
        let resp = download_arch(&app, &token, arch).await;
        assert_eq!(resp.status(), StatusCode::OK, "{arch}");
        assert_eq!(
            resp.headers()["x-steward-agent-arch"].to_str().unwrap(),
            served_as
        );
        assert_eq!(&resp.bytes().await.unwrap().to_vec(), want, "{arch}");
    }
    // Without `arch`: the hub's own architecture.
    let resp = download(&app, Some(&token)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), own);
    // One it has no build for: 404 naming what it has.
    let resp = download_arch(&app, &token, "riscv64").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "agent_binary_missing");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("riscv64") && message.contains(foreign_uname()),
        "{message}"
    );
    // Unknown parameters are refused like everywhere else.
    let resp = app
        .client
        .get(app.url("/api/v1/agent/download?arch=x86_64&bogus=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_wrong_architecture_or_an_unreachable_server_changes_nothing() {
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);
    let bin_dir = tempfile::tempdir().unwrap();
    let app = hub(foreign_binary(bin_dir.path())).await;
    let admin = app.admin().await;
    let id = server(&admin, "agent-host", &sshd.host, sshd.port, &sshd.user).await;
    admin.set_private_key(&id, &private).await;
    // An agent enrolled by hand keeps working through a refused install.
    let (_, e) = admin
        .post(&format!("/api/v1/servers/{id}/agent"), json!({}))
        .await;
    let token = e["token"].as_str().unwrap().to_string();

    // Inline proof (as an API token would give it) instead of a session step-up.
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{id}/agent/install"),
            json!({ "step_up": { "password": "wrong-password-123" } }),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, "step_up_failed"),
        "{b}"
    );
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{id}/agent/install"),
            json!({ "step_up": { "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "wrong_architecture"),
        "{b}"
    );
    let steps = b["error"]["details"]["steps"].as_array().unwrap();
    let failed: Vec<&str> = steps
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["architecture"], "{b}");
    assert_eq!(steps.last().unwrap()["name"], "cleanup", "{b}");
    assert!(
        steps
            .iter()
            .all(|s| s["name"] != "upload" && s["name"] != "enroll")
    );
    // Nothing was enrolled anew: the old token still works.
    assert_eq!(download(&app, Some(&token)).await.status(), StatusCode::OK);
    let rows = audit_rows(&app).await;
    let (_, outcome, details) = rows.iter().rfind(|(a, _, _)| a == "agent.install").unwrap();
    assert_eq!(outcome, "failure");
    assert!(details.contains("wrong_architecture"), "{details}");

    // Streamed, the same refusal comes as the last line, after the steps that ran.
    let lines = install_streamed(
        &admin,
        &format!("/api/v1/servers/{id}/agent/install"),
        json!({ "step_up": { "password": PASSWORD } }),
    )
    .await;
    let last = &lines.last().unwrap().1;
    assert_eq!(last["type"], "error", "{lines:?}");
    assert_eq!(last["status"], 409);
    assert_eq!(last["error"]["code"], "wrong_architecture");
    let names: Vec<&str> = lines[..lines.len() - 1]
        .iter()
        .map(|(_, l)| l["step"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["connect", "probe", "architecture", "cleanup"]);
    // A refusal before anything starts is a plain error answer.
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/servers/{id}/agent/install")))
        .bearer_auth(&admin.token)
        .header("accept", "application/x-ndjson")
        .json(&json!({ "step_up": { "password": "wrong-password-123" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // An unreachable server: 502 `unreachable`, the step that failed is named.
    let down = server(&admin, "down", "127.0.0.2", closed_port(), "root").await;
    admin.generate_key(&down).await;
    let (s, b) = admin
        .post(&format!("/api/v1/servers/{down}/agent/install"), json!({}))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_GATEWAY, "unreachable"),
        "{b}"
    );
    assert_eq!(b["error"]["details"]["steps"][0]["name"], "connect", "{b}");
    let (s, b) = admin
        .post(
            &format!("/api/v1/servers/{down}/agent/uninstall"),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_GATEWAY, "unreachable"),
        "{b}"
    );
    // A server without a credential.
    let bare = admin.server("bare", &[]).await;
    let (s, b) = admin
        .post(&format!("/api/v1/servers/{bare}/agent/install"), json!({}))
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, "no_credential"),
        "{b}"
    );
    let (_, a) = admin.get(&format!("/api/v1/servers/{bare}/agent")).await;
    assert_eq!(a["enrolled"], false);
}

/// The units the installer writes, checked by systemd's own parser (`systemd-analyze verify`,
/// system and user managers): no unknown key, no bad value, an executable `ExecStart`. The
/// binary path is pointed at the real agent, since the install location does not exist here;
/// nothing else of the generated text changes. (This machine runs no systemd, so the units are
/// verified rather than started.)
#[test]
fn the_generated_systemd_units_pass_systemd_analyze_verify() {
    use steward_services::agent_install::{SYSTEM_BINARY, USER_BINARY, system_unit, user_unit};
    let agent = agent_binary().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let hub = "wss://steward.example.com:8443";
    let cases = [
        (
            "system",
            system_unit(hub, 10).replace(SYSTEM_BINARY, &agent),
            SYSTEM_BINARY.to_string(),
        ),
        (
            "user",
            user_unit(hub, 10).replace(&format!("%h/{USER_BINARY}"), &agent),
            format!("%h/{USER_BINARY}"),
        ),
    ];
    for (manager, unit, installed_at) in cases {
        assert!(
            unit.contains(&format!("ExecStart={agent} ")),
            "{manager}: the unit runs the binary from {installed_at}: {unit}"
        );
        let path = dir.path().join("steward-agent.service");
        std::fs::write(&path, &unit).unwrap();
        let mut cmd = std::process::Command::new("systemd-analyze");
        if manager == "user" {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
        }
        let out = cmd
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (Debian package systemd; .ci/run installs it)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{manager} unit refused by systemd-analyze ({}):\n{stderr}\n{unit}",
            out.status
        );
    }
    // The check itself catches a mistake: an unknown key is reported.
    let path = dir.path().join("steward-agent.service");
    std::fs::write(
        &path,
        system_unit(hub, 10)
            .replace(SYSTEM_BINARY, &agent)
            .replace("Restart=always", "Restart=always\nRestartEvery=5"),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("RestartEvery"),
        "an unknown key is reported"
    );
}

/// The manual install checks what it downloaded against the SHA-256 the hub put in the
/// command: the hub's own binary passes; a different one (a proxy or mirror in the way, here a
/// binary replaced after enrollment) is deleted and the install stops. The command's own
/// download lines run here with `sh`, against the real hub.
#[tokio::test]
async fn the_manual_install_refuses_a_binary_that_is_not_the_hubs() {
    let bins = tempfile::tempdir().unwrap();
    let served = bins.path().join("steward-agent");
    std::fs::copy(agent_binary(), &served).unwrap();
    let app = hub(served.clone()).await;
    let (_admin, token, b) = enrolled(&app).await;
    use sha2::Digest;
    let sum = hex::encode(sha2::Sha256::digest(std::fs::read(&served).unwrap()));
    let command = b["install_command"].as_str().unwrap();
    assert!(command.contains(&format!("sum={sum};;")), "{command}");

    let work = tempfile::tempdir().unwrap();
    let header = work.path().join("header");
    let dest = work.path().join("agent.new");
    let run = |builds: Vec<(&'static str, String)>| {
        std::fs::write(&header, format!("Authorization: Bearer {token}\n")).unwrap();
        let script = format!(
            "set -e\n{}echo verified",
            steward_services::agent_install::download_and_verify(
                &app.base,
                &dest.display().to_string(),
                &header.display().to_string(),
                &builds,
            )
        );
        // Asynchronously: the hub answers curl on this test's own runtime.
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
    };
    let arch = steward_services::agent_install::binary_arch(&std::fs::read(&served).unwrap());
    let ok = run(vec![(arch, sum.clone())]).await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(&served).unwrap()
    );
    std::fs::remove_file(&dest).unwrap();

    // The hub's file changes after the command was made (same size, one byte flipped).
    let mut bytes = std::fs::read(&served).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&served, &bytes).unwrap();
    let bad = run(vec![(arch, sum)]).await.unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("is not the one the hub serves"), "{err}");
    assert!(!dest.exists(), "the download is deleted");
    assert!(!header.exists(), "the token header is deleted");
}
