//! Installing the agent on a server with a real systemd: Debian 12, built with `debootstrap`
//! (`.ci/run` installs it) and booted with systemd as PID 1 in a Docker container on the host
//! network, its sshd on a loopback port. The hub logs in as root, installs the binary and the
//! hardened unit, the agent runs as the `steward-agent` system account and connects, systemd
//! starts it again after a crash, and uninstall removes everything, the account included.
//! Then the copyable manual install command, run as root on the server, does the same. A login
//! account without root gets a `systemctl --user` service instead.
//!
//! This is the path most real servers take; the machine the other tests run on has no systemd
//! PID 1. It found that `DynamicUser=` with `LoadCredential=` left the agent unable to read its
//! token in a container (and needs systemd 247+).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use steward_testkit::docker::{Container, Dockerd, docker, docker_ok, import_dir};
use steward_testkit::sshd::closed_port;
use steward_testkit::*;

const IMAGE: &str = "steward-test/debian12-systemd:3";
const MIRROR: &str = "http://deb.debian.org/debian";

/// One test of this file at a time even under plain `cargo test` (threads in one process): they
/// share the Docker daemon and the bootstrapped image.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The image: Debian 12 with systemd and OpenSSH, bootstrapped once per target directory.
fn ensure_image() {
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return;
    }
    let target = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .expect("target dir");
    let root = target.join("test-rootfs/debian12-systemd-3");
    if !root.join(".complete").exists() {
        let building = target.join("test-rootfs/debian12-systemd-3.partial");
        let _ = std::fs::remove_dir_all(&building);
        std::fs::create_dir_all(&building).unwrap();
        let started = Instant::now();
        let out = Command::new("debootstrap")
            .args([
                "--variant=minbase",
                "--include=systemd,systemd-sysv,libpam-systemd,dbus,openssh-server,procps,curl",
                "bookworm",
            ])
            .arg(&building)
            .arg(MIRROR)
            .output()
            .expect("debootstrap is missing: apt-get install -y debootstrap (.ci/run does)");
        assert!(
            out.status.success(),
            "debootstrap: {}",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        eprintln!("debootstrap took {:?}", started.elapsed());
        let _ = std::fs::remove_dir_all(&root);
        std::fs::rename(&building, &root).unwrap();
        std::fs::write(root.join(".complete"), "").unwrap();
    }
    import_dir(&root, IMAGE);
}

/// The booted container (removed on drop) and its sshd's port.
struct Machine {
    container: Container,
    ssh_port: u16,
}

impl Machine {
    fn boot() -> Self {
        // systemd as PID 1 needs most capabilities; this machine's root lacks CAP_SYS_RESOURCE,
        // so not --privileged.
        let container = Container::run(
            format!("steward-systemd-{}", std::process::id()),
            &[
                "--cap-add",
                "ALL",
                "--cap-drop",
                "SYS_RESOURCE",
                "--security-opt",
                "seccomp=unconfined",
                "--network",
                "host",
                "-v",
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/run/lock",
                "-e",
                "container=docker",
                IMAGE,
                "/lib/systemd/systemd",
            ],
        );
        let me = Self {
            container,
            ssh_port: closed_port(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = me.sh("systemctl is-system-running 2>&1 || true");
            if state == "running" || state == "degraded" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "systemd did not finish booting: {state}; {}",
                me.sh("systemctl --failed --no-pager 2>&1 || true")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        // Its sshd on a loopback port of its own (the network is the host's).
        me.sh(&format!(
            "sed -i 's/^#\\?Port .*/Port {}/; s/^#\\?ListenAddress 0.0.0.0/ListenAddress 127.0.0.1/' /etc/ssh/sshd_config && systemctl restart ssh",
            me.ssh_port
        ));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", me.ssh_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the container's sshd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    /// Runs `script` as root in the container: its stdout, trimmed.
    fn sh(&self, script: &str) -> String {
        docker_ok(&["exec", &self.container.name, "sh", "-c", script])
    }
}

async fn agent(admin: &Session, id: &str) -> Value {
    admin.get(&format!("/api/v1/servers/{id}/agent")).await.1
}

/// A hub that serves the agent, an admin who stepped up, and the machine as a server logged
/// into as `user` with a generated key: (hub, admin, server id).
async fn hub_and_server(machine: &Machine, user: &str, home: &str) -> (TestApp, Session, String) {
    let app = TestApp::spawn_at(|c, base| {
        c.public_url = base.to_string();
        c.agent_binary = Some(agent_binary());
    })
    .await;
    let admin = app.admin().await;
    let id = admin.create_server(json!({ "name": "debian12", "host": "127.0.0.1", "port": machine.ssh_port, "ssh_user": user, "metrics_interval_secs": 1 })).await;
    let public_key = admin.generate_key(&id).await;
    machine.sh(&format!(
        "mkdir -p -m 700 {home}/.ssh && echo '{public_key}' > {home}/.ssh/authorized_keys && chown -R {user}: {home}/.ssh"
    ));
    let (s, b) = admin
        .post("/api/v1/auth/step-up", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    (app, admin, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_as_a_systemd_service_on_debian_12_restarts_after_a_crash_and_uninstalls() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let _daemon = Dockerd::ensure();
    ensure_image();
    let machine = Machine::boot();
    let (app, admin, id) = hub_and_server(&machine, "root", "/root").await;

    // The install: a system install under systemd, running as the steward-agent account.
    let (s, r) = admin
        .post(&format!("/api/v1/servers/{id}/agent/install"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["mode"].as_str(), r["service"].as_str()),
        (Some("system"), Some("systemd")),
        "{r}"
    );
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for name in ["account", "start", "verify", "connected"] {
        assert!(steps.contains(&name), "step {name} missing: {r}");
    }
    assert!(all_steps_ok(&r), "{r}");
    assert!(r["warnings"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["agent"]["connected"], true, "{r}");

    assert_eq!(machine.sh("systemctl is-active steward-agent"), "active");
    assert_eq!(
        machine.sh("systemctl show -p User --value steward-agent"),
        "steward-agent"
    );
    let pid = machine.sh("systemctl show -p MainPID --value steward-agent");
    assert_eq!(
        machine.sh(&format!("stat -c %U /proc/{pid}")),
        "steward-agent"
    );
    assert_eq!(
        machine.sh("stat -c '%a %U %G' /etc/steward-agent /etc/steward-agent/token"),
        "750 root steward-agent\n640 root steward-agent"
    );
    // The token is nowhere on the command line.
    let cmdline = machine.sh(&format!("tr '\\0' ' ' < /proc/{pid}/cmdline"));
    assert!(
        cmdline.contains("--token-file /etc/steward-agent/token"),
        "{cmdline}"
    );
    assert!(!cmdline.contains("stwa_"), "{cmdline}");
    let got = eventually(30, || app.has_metric(&id, "cpu.usage")).await;
    assert!(got, "metrics from the agent arrive");

    // A crash: systemd starts it again (Restart=always, 5 s later) and it connects again.
    let before = agent(&admin, &id).await["connected_at"].clone();
    machine.sh("systemctl kill -s KILL steward-agent");
    let again = eventually(30, || async {
        let a = agent(&admin, &id).await;
        a["connected"] == true && a["connected_at"] != before
    })
    .await;
    assert!(
        again,
        "not connected again after a crash: {}",
        machine.sh("journalctl -u steward-agent --no-pager -n 20 2>&1 || true")
    );
    assert_ne!(
        machine.sh("systemctl show -p MainPID --value steward-agent"),
        pid
    );

    // Uninstall: the service, its files and the account are gone.
    let (s, u) = admin
        .post(&format!("/api/v1/servers/{id}/agent/uninstall"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert!(all_steps_ok(&u), "{u}");
    assert_eq!(
        machine.sh("systemctl is-active steward-agent 2>&1 || true"),
        "inactive"
    );
    assert_eq!(
        machine.sh(
            "for f in /etc/steward-agent /usr/local/bin/steward-agent /etc/systemd/system/steward-agent.service; do [ -e $f ] && echo $f; done; id steward-agent 2>/dev/null || true"
        ),
        ""
    );

    // The manual install command, as the server page shows it to copy, run as root there: it
    // downloads the binary with the token and ends with the same service, connected.
    let (s, e) = admin
        .post(&format!("/api/v1/servers/{id}/agent"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    let command = e["install_command"].as_str().unwrap();
    let out = docker(&["exec", &machine.container.name, "sh", "-c", command]);
    assert!(
        out.status.success(),
        "the manual command failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let connected = eventually(30, || async {
        agent(&admin, &id).await["connected"] == true
    })
    .await;
    assert!(
        connected,
        "the manually installed agent did not connect: {}",
        machine.sh("journalctl -u steward-agent --no-pager -n 20 2>&1 || true")
    );
    let pid = machine.sh("systemctl show -p MainPID --value steward-agent");
    assert_eq!(
        machine.sh(&format!("stat -c %U /proc/{pid}")),
        "steward-agent"
    );
    assert_eq!(
        machine.sh("stat -c '%a %U %G' /etc/steward-agent/token; ls /etc/steward-agent"),
        "640 root steward-agent\ntoken",
        "the token is readable by the account only, and the download header is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_account_without_root_gets_a_systemd_user_service() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let _daemon = Dockerd::ensure();
    ensure_image();
    let machine = Machine::boot();
    machine.sh("useradd -m -s /bin/bash deploy && loginctl enable-linger deploy");
    let (app, admin, id) = hub_and_server(&machine, "deploy", "/home/deploy").await;

    let install = format!("/api/v1/servers/{id}/agent/install");
    let (s, r) = admin.post(&install, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["mode"].as_str(), r["service"].as_str()),
        (Some("user"), Some("systemd-user")),
        "{r}"
    );
    assert!(
        r["warnings"].as_array().unwrap().is_empty(),
        "lingering is on: {r}"
    );
    assert_eq!(r["agent"]["connected"], true, "{r}");
    let user_ctl =
        "runuser -u deploy -- env XDG_RUNTIME_DIR=/run/user/$(id -u deploy) systemctl --user";
    assert_eq!(
        machine.sh(&format!("{user_ctl} is-active steward-agent")),
        "active"
    );
    let pid = machine.sh(&format!("{user_ctl} show -p MainPID --value steward-agent"));
    assert_eq!(machine.sh(&format!("stat -c %U /proc/{pid}")), "deploy");
    assert_eq!(
        machine.sh("stat -c '%a %U' /home/deploy/.config/steward-agent/token"),
        "600 deploy"
    );
    let got = eventually(30, || app.has_metric(&id, "cpu.usage")).await;
    assert!(got, "metrics from the agent arrive");

    // Uninstall stops the user service and removes its files.
    let (s, u) = admin
        .post(&format!("/api/v1/servers/{id}/agent/uninstall"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert!(all_steps_ok(&u), "{u}");
    assert_eq!(
        machine.sh(
            "for f in /home/deploy/.local/bin/steward-agent /home/deploy/.config/steward-agent /home/deploy/.config/systemd/user/steward-agent.service; do [ -e $f ] && echo $f; done; true"
        ),
        ""
    );

    // Without lingering (which only an administrator may turn on here), the install says the
    // service stops with the account's last session.
    machine.sh("loginctl disable-linger deploy");
    let (s, r) = admin.post(&install, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let codes: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert_eq!(codes, ["no_linger"], "{r}");
}
