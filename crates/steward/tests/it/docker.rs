//! Docker for real: a Docker daemon on this machine (the test starts one when none runs;
//! `.ci/run` installs Debian's `docker.io`) runs a container capped at half a core that spins.
//! Agentless polling over SSH and the real `steward-agent` both report its CPU and memory by
//! name, and a scan lists it with its volume. A second container, of an image named like
//! PostgreSQL's and publishing a port on 127.0.0.1, is found by the scan as a database in a
//! container, with its own proposals. Whatever cgroup version this machine has (v1
//! here, v2 on current distributions) is the one under test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use steward_testkit::docker::{Container, Dockerd, docker, docker_ok, import_dir};
use steward_testkit::sshd::{Sshd, closed_port, key_pair};
use steward_testkit::*;

const IMAGE: &str = "steward-test/shell:1";

/// A one-layer image of this machine's `sh` and `sleep` with their libraries (no registry
/// needed).
fn ensure_image() {
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    std::fs::copy(&sh, bin.join("sh")).unwrap();
    std::fs::copy("/bin/sleep", bin.join("sleep")).unwrap();
    let ldd = Command::new("ldd")
        .arg(&sh)
        .arg("/bin/sleep")
        .output()
        .unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/') && !w.ends_with(':'))
    {
        let to = root.path().join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(std::fs::canonicalize(lib).unwrap(), &to).unwrap();
    }
    import_dir(root.path(), IMAGE);
}

/// A container spinning on half a core, with a named volume (its name): removed on drop.
fn start_spinner() -> (Container, String) {
    let volume = format!("steward-vol-{}", std::process::id());
    let c = Container::run(
        format!("steward-spin-{}", std::process::id()),
        &[
            "--network",
            "none",
            "--cpus",
            "0.5",
            "-v",
            &format!("{volume}:/data"),
            IMAGE,
            "/bin/sh",
            "-c",
            "while :; do :; done",
        ],
    )
    .removing_volume(&volume);
    (c, volume)
}

/// A container of an image named like PostgreSQL's (`…/postgres:16.2`: the scan goes by the
/// image) that publishes the port it returns on 127.0.0.1; removed on drop.
fn start_looks_like_postgres() -> (Container, u16) {
    let port = closed_port();
    docker_ok(&["tag", IMAGE, "steward-test/postgres:16.2"]);
    let c = Container::run(
        format!("steward-pg-{}", std::process::id()),
        &[
            "-p",
            &format!("127.0.0.1:{port}:5432"),
            "steward-test/postgres:16.2",
            "/bin/sleep",
            "3600",
        ],
    );
    (c, port)
}

async fn latest(app: &TestApp, server: &str, name: &str, label: &str) -> Option<f64> {
    app.state
        .metrics
        .latest(server)
        .await
        .expect("latest")
        .into_iter()
        .find(|l| l.name == name && l.label == label)
        .map(|l| l.value)
}

/// The container's CPU (% of one core) and memory as the hub stored them, once both are in.
async fn container_figures(app: &TestApp, server: &str, name: &str) -> (f64, f64) {
    let mut figures = None;
    for _ in 0..400 {
        let cpu = latest(app, server, "docker.cpu_pct", name).await;
        let mem = latest(app, server, "docker.mem_bytes", name).await;
        figures = cpu.zip(mem);
        if figures.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = figures.is_some();
    let all: Vec<(String, String)> = app
        .state
        .metrics
        .latest(server)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.name.starts_with("docker."))
        .map(|l| (l.name, l.label))
        .collect();
    assert!(
        got,
        "no CPU and memory for container {name}; docker series: {all:?}"
    );
    figures.unwrap()
}

fn assert_plausible(cpu: f64, mem: f64, how: &str) {
    // Capped at 50 % of a core; on a busy CI machine it may get less, never nothing.
    assert!((10.0..=65.0).contains(&cpu), "{how}: docker.cpu_pct {cpu}");
    // A shell: some hundreds of KiB, far below a gigabyte.
    assert!(
        (64.0 * 1024.0..1024.0 * 1024.0 * 1024.0).contains(&mem),
        "{how}: docker.mem_bytes {mem}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_is_measured_agentless_and_by_the_agent_and_found_by_a_scan() {
    let _daemon = Dockerd::ensure();
    ensure_image();
    let (spinner, spinner_volume) = start_spinner();
    let (pg, pg_port) = start_looks_like_postgres();
    let cgroup = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else {
        "v1"
    };
    eprintln!("container {} on cgroup {cgroup}", spinner.id);

    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let sshd = Sshd::start();
    let (private, public) = key_pair("");
    sshd.authorize(&public);

    // Agentless: polled over SSH every second as this machine's account (root in CI, which
    // may read the containers' names).
    let id = admin.create_server(json!({ "name": "docker-host", "host": sshd.host, "port": sshd.port, "ssh_user": sshd.user, "metrics_interval_secs": 1 })).await;
    admin.set_private_key(&id, &private).await;
    let collector = steward_services::metrics::collect::spawn(app.state.services.clone())
        .expect("collection on");
    let (cpu, mem) = container_figures(&app, &id, &spinner.name).await;
    collector.abort();
    assert_plausible(cpu, mem, "agentless");

    // The scan lists the daemon, the container (running) and its volume.
    let (s, r) = admin
        .call(Method::POST, &format!("/api/v1/servers/{id}/scan"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let report = &r["current"]["report"];
    let docker_info = &report["docker"];
    assert!(docker_info["server_version"].is_string(), "{docker_info}");
    let container = docker_info["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == spinner.name.as_str())
        .unwrap_or_else(|| panic!("{} not listed: {docker_info}", spinner.name));
    assert_eq!(container["image"], IMAGE);
    assert!(
        container["status"].as_str().unwrap().starts_with("Up"),
        "{container}"
    );
    assert!(
        docker_info["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == spinner_volume.as_str()),
        "{docker_info}"
    );
    let services = report["services"].as_array().unwrap();
    assert!(
        services.iter().any(|s| s["kind"] == "docker"),
        "{services:?}"
    );
    // The database in a container: on the port it publishes, with the image's version.
    let listed = docker_info["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == pg.name.as_str())
        .unwrap();
    assert_eq!(listed["ports"], json!([pg_port]), "{listed}");
    let in_container = services
        .iter()
        .find(|s| s["container"] == pg.name.as_str())
        .unwrap_or_else(|| panic!("no service in {}: {services:?}", pg.name));
    assert_eq!(
        (
            &in_container["kind"],
            &in_container["version"],
            &in_container["ports"]
        ),
        (&json!("postgresql"), &json!("16.2"), &json!([pg_port]))
    );
    let (_, proposals) = admin.get(&format!("/api/v1/servers/{id}/proposals")).await;
    let ours: Vec<(&Value, &Value)> = proposals
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["spec"]["container"] == pg.name.as_str())
        .map(|p| (&p["kind"], &p["spec"]))
        .collect();
    assert_eq!(
        ours,
        vec![
            (
                &json!("health_check"),
                &json!({ "type": "tcp", "host": "127.0.0.1", "port": pg_port, "container": pg.name })
            ),
            (
                &json!("backup_job"),
                &json!({ "engine": "postgresql", "port": pg_port, "container": pg.name })
            ),
        ],
        "{proposals}"
    );

    // The real agent, run as root on this machine, reports the same container.
    let agent_id = admin.create_server(json!({ "name": "docker-agent", "host": "127.0.0.9", "ssh_user": "root", "metrics_interval_secs": 1 })).await;
    let (s, b) = admin
        .post(&format!("/api/v1/servers/{agent_id}/agent"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", b["token"].as_str().unwrap())).unwrap();
    let mut agent = Command::new(agent_binary())
        .args(["--hub", &app.base, "--interval", "1", "--token-file"])
        .arg(&token_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start steward-agent");
    let (cpu, mem) = container_figures(&app, &agent_id, &spinner.name).await;
    let _ = agent.kill();
    let _ = agent.wait();
    assert_plausible(cpu, mem, "agent");

    // The container's memory as Docker itself reports it, give or take what changed between
    // the readings (a spinning shell hardly changes).
    let stats = docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}",
        &spinner.name,
    ]);
    eprintln!("docker stats: {stats}; steward: {mem} bytes, {cpu:.1} % of a core");
    let theirs = docker_bytes(stats.split('/').next().unwrap());
    assert!(
        (mem - theirs).abs() <= (256.0 * 1024.0_f64).max(theirs / 2.0),
        "steward {mem} bytes, docker stats {stats}"
    );
}

/// `632KiB`, `1.5MiB`, `512B` as `docker stats` prints them.
fn docker_bytes(text: &str) -> f64 {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: f64 = n
        .parse()
        .unwrap_or_else(|_| panic!("docker stats memory {text:?}"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" | "kB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {text:?}"),
    };
    n * scale
}
