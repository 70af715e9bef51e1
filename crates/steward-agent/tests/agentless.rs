//! The agentless script, run by the shells a managed server may have, read back by
//! `parse_agentless`, agrees with the agent's own reading of the same host.

use std::process::Command;

use steward_agent::collect::Collector;
use steward_metrics::{AGENTLESS_SCRIPT, RawSnapshot, parse_agentless};

fn run_script(shell: &[&str]) -> String {
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .arg("-c")
        .arg(AGENTLESS_SCRIPT)
        .output()
        .unwrap_or_else(|e| {
            panic!("{shell:?} is needed for this test (apt-get install dash bash): {e}")
        });
    assert!(out.status.success(), "{shell:?} exited with {}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty(),
        "the script writes nothing to stderr: {stderr}"
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn compare(remote: &RawSnapshot, local: &RawSnapshot) {
    assert_eq!(remote.cores.len(), local.cores.len(), "same CPUs");
    let (r, l) = (remote.mem.expect("mem"), local.mem.expect("mem"));
    assert_eq!(r.total, l.total, "same memory");
    assert_eq!(r.swap_total, l.swap_total);
    let names = |s: &RawSnapshot| {
        (
            s.mounts.iter().map(|m| m.mount.clone()).collect::<Vec<_>>(),
            s.disks.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
            s.nets.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        names(remote),
        names(local),
        "same mounts, disks and interfaces"
    );
    for (a, b) in remote.mounts.iter().zip(&local.mounts) {
        assert_eq!(a.bytes_total, b.bytes_total, "{}: same size", a.mount);
        assert_eq!(a.inodes_total, b.inodes_total, "{}: same inodes", a.mount);
        let moved = a.bytes_free.abs_diff(b.bytes_free);
        assert!(moved < a.bytes_total / 100, "{}: free space close", a.mount);
    }
    let (ru, lu) = (
        remote.uptime_secs.expect("uptime"),
        local.uptime_secs.expect("uptime"),
    );
    assert!((ru - lu).abs() < 10.0, "uptime {ru} vs {lu}");
    let (rp, lp) = (remote.procs.expect("procs"), local.procs.expect("procs"));
    assert!(rp.abs_diff(lp) < 30 + lp / 5, "processes {rp} vs {lp}");
    assert_eq!(remote.load.is_some(), local.load.is_some());
    assert_eq!(
        remote.systemd_failed.is_some(),
        local.systemd_failed.is_some()
    );
    assert_eq!(remote.docker.is_some(), local.docker.is_some());
    let cpu = |s: &RawSnapshot| s.cpu.expect("cpu").total();
    assert!(cpu(remote) > 0 && cpu(local) > 0);
}

#[test]
fn the_script_fed_to_sh_on_stdin_runs_to_the_end() {
    use std::io::Write;
    let mut child = Command::new("sh")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(AGENTLESS_SCRIPT.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sh");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(text.ends_with("@@steward-metrics@@ end\n"), "{text}");
    compare(
        &parse_agentless(&text, 1).expect("parse"),
        &Collector::new().collect(2),
    );
}

#[test]
fn the_script_under_sh_dash_and_bash_agrees_with_the_agent() {
    for shell in [&["sh"][..], &["dash"], &["bash", "--posix"]] {
        let output = run_script(shell);
        let remote = parse_agentless(&output, 1).expect("parse");
        let local = Collector::new().collect(2);
        compare(&remote, &local);
        assert!(
            output.ends_with("@@steward-metrics@@ end\n"),
            "ran to the end under {shell:?}"
        );
    }
}

/// The Docker and systemd parts of the script, which this host may lack, run against a
/// made-up tree: the script's absolute paths are pointed into a temporary directory, and a
/// stand-in `systemctl` on PATH reports two failed units.
#[test]
fn the_script_reads_docker_cgroups_and_failed_units() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!("steward-agentless-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let id1 = "a".repeat(64);
    let id2 = "b".repeat(64);
    let mk = |rel: &str, content: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
    };
    let scope1 = format!("cgroup/system.slice/docker-{id1}.scope");
    mk(
        &format!("{scope1}/cpu.stat"),
        "usage_usec 123456\nuser_usec 100000\n",
    );
    mk(&format!("{scope1}/memory.current"), "1048576\n");
    mk(
        &format!("{scope1}/memory.stat"),
        "anon 1\ninactive_file 4096\n",
    );
    mk(
        &format!("docker/containers/{id1}/config.v2.json"),
        r#"{"State":{},"Config":{"Env":["A=1"]},"Name":"/web-1","Driver":"overlay2"}"#,
    );
    mk(&format!("cgroup/docker/{id2}/cpu.stat"), "usage_usec 7\n");
    mk(&format!("cgroup/docker/{id2}/memory.current"), "2048\n");
    mk("cgroup/docker/cgroup.procs", "");
    std::fs::create_dir_all(root.join("run/systemd/system")).expect("mkdir");
    let sock = root.join("docker.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("socket");
    mk(
        "bin/systemctl",
        "#!/bin/sh\nprintf 'a.service loaded failed failed A\\nb.timer loaded failed failed B\\n'\n",
    );
    let systemctl = root.join("bin/systemctl");
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let r = |p: &str| root.join(p).to_string_lossy().into_owned();
    let script = AGENTLESS_SCRIPT
        .replace("/sys/fs/cgroup", &r("cgroup"))
        .replace("/var/lib/docker", &r("docker"))
        .replace("/var/run/docker.sock", &r("docker.sock"))
        .replace("/run/systemd/system", &r("run/systemd/system"));
    let path = format!("{}:{}", r("bin"), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .output()
        .expect("sh");
    let _ = std::fs::remove_dir_all(&root);
    let snap = parse_agentless(&String::from_utf8_lossy(&out.stdout), 1).expect("parse");
    assert_eq!(snap.systemd_failed, Some(2));
    let docker = snap.docker.expect("docker present");
    let got: Vec<(&str, &str, u64, u64)> = docker
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.name.as_str(),
                c.cpu_usage_usec,
                c.memory_bytes,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (id1.as_str(), "web-1", 123_456, 1_048_576 - 4096),
            (id2.as_str(), "bbbbbbbbbbbb", 7, 2048),
        ]
    );
}
