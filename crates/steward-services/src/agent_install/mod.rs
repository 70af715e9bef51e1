//! Installing and uninstalling `steward-agent` on a managed server over its pooled SSH
//! connection, and the agent binary the hub hands out.
//!
//! Install: probe the server (architecture, user, root or passwordless sudo, systemd), check
//! the hub's binary is for that architecture, upload it by SFTP into a fresh private temporary
//! directory (`mktemp -d`, mode 0700), enroll (a new token), write the token by SFTP (mode
//! 0600 from its creation: it never travels on a command line and is never printed), then run
//! the install script with `sh -s` (the script on stdin, so the login shell may be anything).
//! The script prints one `@@step <name> ok|fail <detail>` line per step and `@@warn <code>`
//! lines; the hub turns them into [`AgentInstallStep`]s and warnings. The temporary directory
//! is removed whatever happens.
//!
//! Where it goes: as root, or as a user with passwordless `sudo -n`, a system install
//! (`/usr/local/bin/steward-agent`, `/etc/steward-agent/token`, the hardened systemd unit of
//! the manual install command); otherwise a user install (`~/.local/bin/steward-agent`,
//! `~/.config/steward-agent/token`, a `systemctl --user` unit when the user's systemd answers).
//! Without systemd (`/run/systemd/system` absent: containers, minimal hosts) the agent is
//! started detached (`setsid`, pid file, log file) and the result warns that it will not start
//! again after a reboot.
//!
//! The flows ([`install()`], [`uninstall()`]) take the caller's
//! [`Principal`](crate::principal::Principal) and the server, hold its claim ([`claim`]: one
//! install or uninstall per server at a time), report each step on an optional [`Progress`]
//! channel as it ends, audit the outcome (`agent.install`, `agent.uninstall`) and fail with a
//! [`Failure`] that carries the steps so far. Enrollment and revocation (tokens,
//! [`AgentConnections`]) are in `enrollment.rs`.
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use steward_proto::{AgentInstallMode, AgentInstallStep, AgentServiceKind};
use steward_ssh::client::{Connection, Output};

use crate::runner::shell_quote;

mod binary;
mod enrollment;
mod flow;
mod install;
mod progress;
mod scripts;
mod uninstall;

pub use binary::*;
pub use enrollment::{AgentConnections, TOKEN_PREFIX, by_token, enroll, info, revoke, status};
pub use flow::{Failure, claim};
pub use install::install;
pub use progress::{Progress, Steps};
pub use scripts::*;
pub use uninstall::uninstall;

/// Where a system install puts things.
pub const SYSTEM_BINARY: &str = "/usr/local/bin/steward-agent";
pub const SYSTEM_TOKEN: &str = "/etc/steward-agent/token";
pub const SYSTEM_UNIT: &str = "/etc/systemd/system/steward-agent.service";
/// A user install, relative to the home directory.
pub const USER_BINARY: &str = ".local/bin/steward-agent";
pub const USER_TOKEN: &str = ".config/steward-agent/token";

/// Longest a probe or an install script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// One install (or uninstall) per server at a time.
pub struct Busy(String);

impl Busy {
    /// Claims the server, or `None` when an install or uninstall is already running on it.
    pub fn claim(server_id: &str) -> Option<Self> {
        let mut set = busy().lock().unwrap_or_else(|e| e.into_inner());
        set.insert(server_id.to_string())
            .then(|| Self(server_id.to_string()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        busy()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

fn busy() -> &'static Mutex<HashSet<String>> {
    static BUSY: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    BUSY.get_or_init(Default::default)
}

/// A step of the result.
pub fn step(name: &str, ok: bool, detail: impl Into<String>) -> AgentInstallStep {
    AgentInstallStep {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// What a script printed: its steps, warnings, other output and exit status.
#[derive(Debug, Default)]
pub struct ScriptOutput {
    pub steps: Vec<AgentInstallStep>,
    pub warnings: Vec<String>,
    pub values: Vec<(String, String)>,
    pub stderr: String,
    pub exit: Option<u32>,
}

impl ScriptOutput {
    pub fn value(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn failed(&self) -> bool {
        self.exit != Some(0) || self.steps.iter().any(|s| !s.ok)
    }
}

/// Parses `@@step name ok|fail detail`, `@@warn code` and `key=value` lines.
pub fn parse_output(stdout: &str) -> ScriptOutput {
    let mut out = ScriptOutput::default();
    for line in stdout.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("@@step ") {
            let mut parts = rest.splitn(3, ' ');
            let name = parts.next().unwrap_or_default();
            let ok = parts.next() == Some("ok");
            let detail = parts.next().unwrap_or_default().trim();
            out.steps.push(step(name, ok, detail));
        } else if let Some(code) = line.strip_prefix("@@warn ") {
            out.warnings.push(code.trim().to_string());
        } else if let Some((k, v)) = line.split_once('=')
            && !k.is_empty()
            && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            out.values.push((k.to_string(), v.to_string()));
        }
    }
    out
}

/// Runs `script` with `sh -s` (fed on stdin), within [`SCRIPT_TIMEOUT`].
pub async fn run_script(conn: &Connection, script: &str) -> Result<ScriptOutput, String> {
    run_script_live(conn, script, |_| {}).await
}

/// [`run_script`], handing each `@@step` line to `on_step` as soon as the script prints it
/// (the output still lists every step).
pub async fn run_script_live(
    conn: &Connection,
    script: &str,
    mut on_step: impl FnMut(AgentInstallStep),
) -> Result<ScriptOutput, String> {
    let run = async {
        let mut p = conn.start("sh -s").await.map_err(|e| e.to_string())?;
        p.write(script.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        p.eof().await.map_err(|e| e.to_string())?;
        let (mut stdout, mut stderr, mut exit) = (Vec::new(), Vec::new(), None);
        // Where the next line of stdout starts.
        let mut line_start = 0;
        while let Some(o) = p.next().await {
            match o {
                Output::Stdout(b) => {
                    stdout.extend_from_slice(&b);
                    while let Some(end) = stdout[line_start..].iter().position(|c| *c == b'\n') {
                        let line = String::from_utf8_lossy(&stdout[line_start..line_start + end]);
                        if let Some(s) = parse_output(&line).steps.pop() {
                            on_step(s);
                        }
                        line_start += end + 1;
                    }
                }
                Output::Stderr(b) => stderr.extend_from_slice(&b),
                Output::Exit(c) => exit = Some(c),
                Output::Signal(s) => {
                    stderr.extend_from_slice(format!("killed by {s}").as_bytes());
                }
            }
        }
        p.close().await;
        // A last step line without its newline.
        if let Some(s) = parse_output(&String::from_utf8_lossy(&stdout[line_start..]))
            .steps
            .pop()
        {
            on_step(s);
        }
        let mut out = parse_output(&String::from_utf8_lossy(&stdout));
        out.stderr = String::from_utf8_lossy(&stderr)
            .chars()
            .take(2000)
            .collect();
        out.exit = exit;
        Ok(out)
    };
    tokio::time::timeout(SCRIPT_TIMEOUT, run)
        .await
        .map_err(|_| format!("timed out after {} s", SCRIPT_TIMEOUT.as_secs()))?
}

/// Read-only facts about the server; also makes the private temporary directory (`tmp=`)
/// when `make_tmp` is set.
pub fn probe_script(make_tmp: bool) -> String {
    let mut s = String::from(
        r#"uid=$(id -u 2>/dev/null)
echo "arch=$(uname -m 2>/dev/null)"
echo "uid=$uid"
echo "user=$(id -un 2>/dev/null)"
echo "home=$HOME"
sudo=0
if [ "$uid" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true </dev/null >/dev/null 2>&1; then sudo=1; fi
echo "sudo=$sudo"
systemd=0
[ -d /run/systemd/system ] && systemd=1
echo "systemd=$systemd"
user_systemd=0
if [ "$systemd" = 1 ] && [ "$uid" != 0 ] && command -v systemctl >/dev/null 2>&1; then
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { [ -d "/run/user/$uid" ] && XDG_RUNTIME_DIR="/run/user/$uid" && export XDG_RUNTIME_DIR; }
  systemctl --user show-environment >/dev/null 2>&1 && user_systemd=1
fi
echo "user_systemd=$user_systemd"
"#,
    );
    if make_tmp {
        s.push_str(
            r#"t=$(umask 077 && mktemp -d "${TMPDIR:-/tmp}/steward-agent.XXXXXXXX" 2>/dev/null) && chmod 700 "$t" && echo "tmp=$t"
"#,
        );
    }
    s
}

/// What the probe found.
#[derive(Debug, Clone)]
pub struct Probe {
    pub arch: String,
    pub root: bool,
    pub sudo: bool,
    pub user: String,
    pub home: String,
    pub systemd: bool,
    pub user_systemd: bool,
    pub tmp: Option<String>,
}

impl Probe {
    pub fn from(out: &ScriptOutput) -> Option<Self> {
        let flag = |k: &str| out.value(k) == Some("1");
        let uid = out.value("uid")?;
        Some(Self {
            arch: out.value("arch")?.trim().to_string(),
            root: uid.trim() == "0",
            sudo: flag("sudo"),
            user: out.value("user").unwrap_or_default().to_string(),
            home: out.value("home").unwrap_or_default().to_string(),
            systemd: flag("systemd"),
            user_systemd: flag("user_systemd"),
            tmp: out
                .value("tmp")
                .map(str::to_string)
                .filter(|t| !t.is_empty()),
        })
    }

    /// May write system files (root, or passwordless sudo).
    pub fn privileged(&self) -> bool {
        self.root || self.sudo
    }

    pub fn mode(&self) -> AgentInstallMode {
        if self.privileged() {
            AgentInstallMode::System
        } else {
            AgentInstallMode::User
        }
    }

    pub fn service(&self) -> AgentServiceKind {
        match (self.mode(), self.systemd, self.user_systemd) {
            (AgentInstallMode::System, true, _) => AgentServiceKind::Systemd,
            (AgentInstallMode::User, true, true) => AgentServiceKind::SystemdUser,
            _ => AgentServiceKind::Detached,
        }
    }

    /// `sudo -n` for a non-root user with passwordless sudo; nothing for root.
    fn sudo_prefix(&self) -> &'static str {
        if self.root || !self.sudo {
            ""
        } else {
            "sudo -n"
        }
    }

    /// One line for the `probe` step.
    pub fn summary(&self) -> String {
        format!(
            "{} as {}{}; {}",
            self.arch,
            if self.user.is_empty() {
                "?"
            } else {
                &self.user
            },
            if self.root {
                " (root)"
            } else if self.sudo {
                " (passwordless sudo)"
            } else {
                " (no root)"
            },
            match (self.systemd, self.user_systemd) {
                (false, _) => "no systemd running",
                (true, true) => "systemd, user manager reachable",
                (true, false) => "systemd",
            }
        )
    }

    /// Where the binary ends up.
    pub fn binary_path(&self) -> String {
        match self.mode() {
            AgentInstallMode::System => SYSTEM_BINARY.into(),
            AgentInstallMode::User => format!("{}/{USER_BINARY}", self.home.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers_name_their_architecture() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 62;
        assert_eq!(elf_arch(&h), Some("x86_64"));
        h[18] = 183;
        assert_eq!(elf_arch(&h), Some("aarch64"));
        assert_eq!(elf_arch(b"#!/bin/sh\necho hi\n"), None);
        assert_eq!(elf_arch(b"\x7fELF"), None);
        let me = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        assert!(uname_names(binary_arch(&me)).contains(&std::env::consts::ARCH));
    }

    #[test]
    fn uname_answers_match_the_binary() {
        assert!(arch_matches("x86_64", "x86_64\n"));
        assert!(arch_matches("aarch64", "arm64"));
        assert!(!arch_matches("x86_64", "aarch64"));
        assert!(!arch_matches("unknown", "x86_64"));
    }

    #[test]
    fn script_output_is_parsed_and_other_lines_ignored() {
        let out = parse_output(
            "arch=x86_64\nuid=1000\nnoise line\n@@step install ok /x/y (0600)\n@@step start fail boom  here\n@@warn no_boot_start\nBAD KEY=1\n",
        );
        assert_eq!(out.value("arch"), Some("x86_64"));
        assert_eq!(out.value("BAD KEY"), None);
        assert_eq!(out.steps.len(), 2);
        assert!(out.steps[0].ok && !out.steps[1].ok);
        assert_eq!(out.steps[1].detail, "boom  here");
        assert_eq!(out.warnings, ["no_boot_start"]);
    }

    #[test]
    fn modes_follow_privilege_and_systemd() {
        let p = |root, sudo, systemd, user_systemd| Probe {
            arch: "x86_64".into(),
            root,
            sudo,
            user: "u".into(),
            home: "/home/u".into(),
            systemd,
            user_systemd,
            tmp: None,
        };
        assert_eq!(
            p(true, false, true, false).service(),
            AgentServiceKind::Systemd
        );
        assert_eq!(p(false, true, true, false).mode(), AgentInstallMode::System);
        assert_eq!(p(false, true, true, false).sudo_prefix(), "sudo -n");
        assert_eq!(
            p(false, false, true, true).service(),
            AgentServiceKind::SystemdUser
        );
        assert_eq!(
            p(false, false, true, false).service(),
            AgentServiceKind::Detached
        );
        assert_eq!(p(false, false, false, false).mode(), AgentInstallMode::User);
        assert_eq!(
            p(true, false, false, false).service(),
            AgentServiceKind::Detached
        );
        assert_eq!(
            p(false, false, false, false).binary_path(),
            "/home/u/.local/bin/steward-agent"
        );
    }

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[tokio::test]
    async fn a_directory_offers_one_binary_per_architecture() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(d.join("steward-agent-x86_64"), elf(62)).expect("write");
        std::fs::write(d.join("steward-agent-aarch64"), elf(183)).expect("write");
        // A second build for an architecture already offered (the first by name counts), a
        // file that is no binary, an unknown machine and a subdirectory are passed over.
        std::fs::write(d.join("zz-steward-agent-x86_64"), elf(62)).expect("write");
        std::fs::write(d.join("README"), "binaries for the hub").expect("write");
        std::fs::write(d.join("odd"), elf(9999)).expect("write");
        std::fs::create_dir(d.join("old")).expect("mkdir");
        let bins = hub_binaries(Some(d)).await.expect("read");
        assert_eq!(
            bins,
            vec![
                HubBinary {
                    arch: "aarch64",
                    path: d.join("steward-agent-aarch64")
                },
                HubBinary {
                    arch: "x86_64",
                    path: d.join("steward-agent-x86_64")
                },
            ]
        );
        assert_eq!(arch_list(&bins), "aarch64, x86_64");
        assert_eq!(
            binary_for(&bins, "arm64\n").map(|b| b.arch),
            Some("aarch64")
        );
        assert_eq!(binary_for(&bins, "amd64").map(|b| b.arch), Some("x86_64"));
        assert_eq!(binary_for(&bins, "riscv64"), None);
        // A single file still works, and nothing configured or missing offers nothing.
        let one = hub_binaries(Some(&d.join("steward-agent-aarch64")))
            .await
            .expect("read");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].arch, "aarch64");
        assert!(hub_binaries(None).await.expect("none").is_empty());
        assert!(
            hub_binaries(Some(&d.join("missing")))
                .await
                .expect("missing")
                .is_empty()
        );
    }

    #[test]
    fn the_manual_command_keeps_the_hardening_and_checks_the_architecture() {
        let c = manual_command(
            "https://hub.example",
            "stwa_x",
            10,
            &[("aarch64", "aa".repeat(32)), ("x86_64", "bb".repeat(32))],
        );
        for needle in [
            "User=steward-agent",
            "--token-file /etc/steward-agent/token",
            "useradd --system",
            "chmod 0640 /etc/steward-agent/token",
            "ProtectSystem=strict",
            "--hub https://hub.example",
            "sha256sum -c -",
            "the hub has agents for aarch64, x86_64",
            "\"https://hub.example/api/v1/agent/download?arch=$(uname -m)\"",
            "-H @/etc/steward-agent/download-header",
        ] {
            assert!(c.contains(needle), "{needle} missing from\n{c}");
        }
        let sums = format!(
            "aarch64|arm64) sum={};; x86_64|amd64) sum={};;",
            "aa".repeat(32),
            "bb".repeat(32)
        );
        assert!(c.contains(&sums), "{sums} missing from\n{c}");
        // The token is not on curl's command line.
        let curl = c.lines().find(|l| l.starts_with("curl")).expect("curl");
        assert!(!curl.contains("stwa_x"));
    }
}
