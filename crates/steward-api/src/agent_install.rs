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
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use steward_proto::{AgentInstallMode, AgentInstallStep, AgentServiceKind};
use steward_ssh::client::{Connection, Output};

use crate::runner::shell_quote;

/// Where a system install puts things.
pub const SYSTEM_BINARY: &str = "/usr/local/bin/steward-agent";
pub const SYSTEM_TOKEN: &str = "/etc/steward-agent/token";
pub const SYSTEM_UNIT: &str = "/etc/systemd/system/steward-agent.service";
/// A user install, relative to the home directory.
pub const USER_BINARY: &str = ".local/bin/steward-agent";
pub const USER_TOKEN: &str = ".config/steward-agent/token";

/// Longest a probe or an install script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// The architecture a Linux binary is built for, from its ELF header (`e_machine`), named as
/// `uname -m` names it; `None` for anything that is not an ELF file.
pub fn elf_arch(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    let machine = match bytes[5] {
        1 => u16::from_le_bytes([bytes[18], bytes[19]]),
        2 => u16::from_be_bytes([bytes[18], bytes[19]]),
        _ => return None,
    };
    let class64 = bytes[4] == 2;
    Some(match machine {
        62 => "x86_64",
        183 => "aarch64",
        40 => "armv7l",
        3 => "i686",
        243 if class64 => "riscv64",
        21 if bytes[5] == 1 => "ppc64le",
        22 => "s390x",
        _ => "unknown",
    })
}

/// The `uname -m` answers a binary for `arch` runs on (as a shell `case` pattern, too).
pub fn uname_names(arch: &str) -> &'static [&'static str] {
    match arch {
        "x86_64" => &["x86_64", "amd64"],
        "aarch64" => &["aarch64", "arm64"],
        "armv7l" => &["armv7l", "armv8l"],
        "i686" => &["i386", "i486", "i586", "i686"],
        "riscv64" => &["riscv64"],
        "ppc64le" => &["ppc64le"],
        "s390x" => &["s390x"],
        _ => &[],
    }
}

/// Whether a binary for `binary_arch` runs on a server whose `uname -m` says `uname`.
pub fn arch_matches(binary_arch: &str, uname: &str) -> bool {
    uname_names(binary_arch).contains(&uname.trim())
}

/// One agent binary the hub hands out: the architecture it is built for and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubBinary {
    pub arch: &'static str,
    pub path: std::path::PathBuf,
}

/// The first bytes of a file (enough for an ELF header).
async fn head(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(64);
    tokio::fs::File::open(path)
        .await?
        .take(64)
        .read_to_end(&mut buf)
        .await?;
    Ok(buf)
}

/// The agent binaries `--agent-binary` offers, one per architecture, sorted by it: a file
/// (its ELF header names the architecture, else the hub's own is assumed), or a directory of
/// them (every ELF file directly in it, e.g. `steward-agent-x86_64` and
/// `steward-agent-aarch64`; for one architecture the first by file name counts). Empty when
/// nothing is configured or found.
pub async fn hub_binaries(path: Option<&std::path::Path>) -> std::io::Result<Vec<HubBinary>> {
    let Some(path) = path else {
        return Ok(vec![]);
    };
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(vec![HubBinary {
            arch: binary_arch(&head(path).await?),
            path: path.to_path_buf(),
        }]);
    }
    let mut files = Vec::new();
    let mut dir = tokio::fs::read_dir(path).await?;
    while let Some(entry) = dir.next_entry().await? {
        if tokio::fs::metadata(entry.path())
            .await
            .is_ok_and(|m| m.is_file())
        {
            files.push(entry.path());
        }
    }
    files.sort();
    let mut out: Vec<HubBinary> = Vec::new();
    for file in files {
        if let Some(arch) = elf_arch(&head(&file).await?)
            && arch != "unknown"
            && !out.iter().any(|b| b.arch == arch)
        {
            out.push(HubBinary { arch, path: file });
        }
    }
    out.sort_by_key(|b| b.arch);
    Ok(out)
}

/// The binary for a server whose `uname -m` says `uname`.
pub fn binary_for<'a>(binaries: &'a [HubBinary], uname: &str) -> Option<&'a HubBinary> {
    binaries.iter().find(|b| arch_matches(b.arch, uname))
}

/// The architectures of `binaries`, for messages (`x86_64, aarch64`).
pub fn arch_list(binaries: &[HubBinary]) -> String {
    binaries
        .iter()
        .map(|b| b.arch)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The architecture of the hub's binary (the hub's own when the file is not ELF).
pub fn binary_arch(bytes: &[u8]) -> &'static str {
    elf_arch(bytes).unwrap_or(match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7l",
        "powerpc64" => "ppc64le",
        other => other,
    })
}

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

/// The unprivileged system account a systemd install runs the agent as.
pub const SYSTEM_ACCOUNT: &str = "steward-agent";

/// Creates [`SYSTEM_ACCOUNT`] when missing (`useradd`, or Debian's `adduser`), and gives it read
/// access to the token: directory 0750 and token 0640, owned by root, group the account.
const SYSTEM_ACCOUNT_SH: &str = r#"if ! id -u steward-agent >/dev/null 2>&1; then
  if command -v useradd >/dev/null 2>&1; then useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin steward-agent
  else adduser --system --group --no-create-home --home /nonexistent --shell /usr/sbin/nologin steward-agent; fi
fi
chgrp steward-agent /etc/steward-agent /etc/steward-agent/token && chmod 0750 /etc/steward-agent && chmod 0640 /etc/steward-agent/token"#;

/// The system unit (also used by the manual install command): the agent runs as the
/// unprivileged `steward-agent` account, which may read the token but not change it, sandboxed
/// (no new privileges, read-only system, no home directories, a private /tmp). Plain `User=`
/// rather than `DynamicUser=` with `LoadCredential=`: those need systemd 247 or newer (RHEL 8
/// has 239, Ubuntu 20.04 245) and credentials fail in many containers (LXC, Docker).
pub fn system_unit(hub: &str, interval: i64) -> String {
    format!(
        "[Unit]\n\
         Description=Steward agent (pushes host metrics to {hub})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\n\
         [Service]\n\
         ExecStart={SYSTEM_BINARY} --hub {hub} --token-file {SYSTEM_TOKEN} --interval {interval}\n\
         User={SYSTEM_ACCOUNT}\n\
         Group={SYSTEM_ACCOUNT}\n\
         Restart=always\n\
         RestartSec=5\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The `systemctl --user` unit of a user install.
pub fn user_unit(hub: &str, interval: i64) -> String {
    format!(
        "[Unit]\n\
         Description=Steward agent (pushes host metrics to {hub})\n\n\
         [Service]\n\
         ExecStart=%h/{USER_BINARY} --hub {hub} --token-file %h/{USER_TOKEN} --interval {interval}\n\
         Restart=always\n\
         RestartSec=5\n\
         NoNewPrivileges=yes\n\n\
         [Install]\n\
         WantedBy=default.target\n"
    )
}

/// Shell functions both scripts share. `step` prints a step line with the detail on one line;
/// `stop_pidfile` stops the agent a pid file names (only if that process is a steward-agent),
/// TERM first, KILL after 5 s.
const COMMON: &str = r#"
step() { printf '@@step %s %s %s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n\r\t' '   ' | cut -c1-300)"; }
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
# The crontab line that starts a detached agent at boot ends with this mark.
CRONMARK='# steward-agent'
cron_drop() { $1 crontab -l 2>/dev/null | grep -v "$CRONMARK\$"; }
warn() { printf '@@warn %s\n' "$1"; }
stop_pidfile() {
  [ -f "$1" ] || return 1
  p=$($SUDO cat "$1" 2>/dev/null)
  case "$p" in ''|*[!0-9]*) return 1;; esac
  grep -q steward-agent "/proc/$p/cmdline" 2>/dev/null || return 1
  $SUDO kill "$p" 2>/dev/null
  i=0
  while [ $i -lt 50 ] && $SUDO kill -0 "$p" 2>/dev/null; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
  $SUDO kill -9 "$p" 2>/dev/null
  return 0
}
"#;

/// The install script: moves the uploaded files in `TMP` into place and starts the agent.
pub fn install_script(probe: &Probe, tmp: &str, hub: &str, interval: i64) -> String {
    let mode = match probe.mode() {
        AgentInstallMode::System => "system",
        AgentInstallMode::User => "user",
    };
    let service = match probe.service() {
        AgentServiceKind::Systemd => "systemd",
        AgentServiceKind::SystemdUser => "systemd-user",
        AgentServiceKind::Detached => "detached",
    };
    let mut s = format!(
        "TMP={}\nMODE={mode}\nSERVICE={service}\nHUB={}\nINTERVAL={interval}\nSUDO='{}'\nACCOUNT_SH={}\n",
        shell_quote(tmp),
        shell_quote(hub),
        probe.sudo_prefix(),
        shell_quote(SYSTEM_ACCOUNT_SH),
    );
    s.push_str(COMMON);
    s.push_str(
        r#"
if [ "$MODE" = system ]; then
  BIN=/usr/local/bin/steward-agent; CONF=/etc/steward-agent; TOKEN=$CONF/token
  PIDFILE=/run/steward-agent.pid; LOG=/var/log/steward-agent.log
  out=$( { $SUDO install -d -m 0755 /usr/local/bin && $SUDO install -d -m 0700 "$CONF" \
    && $SUDO install -m 0600 "$TMP/token" "$TOKEN" \
    && $SUDO install -m 0755 "$TMP/steward-agent" "$BIN.new" && $SUDO mv -f "$BIN.new" "$BIN"; } 2>&1 ) \
    || { step install fail "$out"; exit 1; }
  step install ok "$BIN, $TOKEN (0600)"
else
  BIN=$HOME/.local/bin/steward-agent; CONF=$HOME/.config/steward-agent; TOKEN=$CONF/token
  STATE=$HOME/.local/state/steward-agent; PIDFILE=$STATE/agent.pid; LOG=$STATE/agent.log
  out=$( { mkdir -p "$HOME/.local/bin" "$STATE" && chmod 700 "$STATE" && mkdir -p "$CONF" && chmod 700 "$CONF" \
    && install -m 0600 "$TMP/token" "$TOKEN" \
    && install -m 0755 "$TMP/steward-agent" "$BIN.new" && mv -f "$BIN.new" "$BIN"; } 2>&1 ) \
    || { step install fail "$out"; exit 1; }
  step install ok "$BIN, $TOKEN (0600)"
fi

# A detached agent of an earlier install (e.g. before systemd was there) stops first.
stop_pidfile "$PIDFILE" && old=" (the previous one stopped)" || old=""
$SUDO rm -f "$PIDFILE"

case "$SERVICE" in
systemd)
  out=$($SUDO sh -c "$ACCOUNT_SH" 2>&1) || { step install fail "the steward-agent account: $out"; exit 1; }
  step account ok "runs as the system account steward-agent; $TOKEN 0640 root:steward-agent"
  out=$( { $SUDO install -m 0644 "$TMP/steward-agent.service" /etc/systemd/system/steward-agent.service \
    && $SUDO systemctl daemon-reload && $SUDO systemctl enable steward-agent \
    && $SUDO systemctl restart steward-agent; } 2>&1 ) || { step start fail "$out"; exit 1; }
  step start ok "systemctl enable steward-agent; systemctl restart steward-agent"
  sleep 2
  if $SUDO systemctl is-active --quiet steward-agent; then step verify ok "steward-agent.service is active"
  else step verify fail "$($SUDO systemctl status --no-pager steward-agent 2>&1 | tail -n 5)"; exit 1; fi
  ;;
systemd-user)
  uid=$(id -u)
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { XDG_RUNTIME_DIR="/run/user/$uid"; export XDG_RUNTIME_DIR; }
  UNIT=$HOME/.config/systemd/user/steward-agent.service
  out=$( { mkdir -p "$HOME/.config/systemd/user" && install -m 0644 "$TMP/steward-agent.service" "$UNIT" \
    && systemctl --user daemon-reload && systemctl --user enable steward-agent \
    && systemctl --user restart steward-agent; } 2>&1 ) || { step start fail "$out"; exit 1; }
  step start ok "systemctl --user enable steward-agent; systemctl --user restart steward-agent"
  if ! loginctl enable-linger "$(id -un)" >/dev/null 2>&1; then
    [ -f "/var/lib/systemd/linger/$(id -un)" ] || warn no_linger
  fi
  sleep 2
  if systemctl --user is-active --quiet steward-agent; then step verify ok "steward-agent.service (user) is active"
  else step verify fail "$(systemctl --user status --no-pager steward-agent 2>&1 | tail -n 5)"; exit 1; fi
  ;;
detached)
  # A launcher next to the token keeps the agent running: it starts it, and starts it again
  # 5 s after it exits, as systemd's Restart=always would; TERM stops both. The install runs
  # it detached, and cron runs it at boot where it can.
  START=$CONF/start
  before=$($SUDO cat "$LOG" 2>/dev/null | grep -c '^steward-agent exited')
  out=$( { cat <<EOF
#!/bin/sh
# Written by Steward: runs steward-agent and starts it again 5 s after it exits (at install,
# and at boot from cron @reboot); its log is kept under 5 MiB (one older file, .1). TERM stops
# the agent and this script.
echo \$\$ > $(q "$PIDFILE")
agent=; nap=
trap 'kill \$agent \$nap 2>/dev/null; wait \$agent 2>/dev/null; exit 0' TERM INT HUP
while :; do
  size=\$(wc -c 2>/dev/null < $(q "$LOG") || echo 0)
  [ "\${size:-0}" -gt 5242880 ] && mv -f $(q "$LOG") $(q "$LOG.1")
  $(q "$BIN") --hub $(q "$HUB") --token-file $(q "$TOKEN") --interval $INTERVAL >>$(q "$LOG") 2>&1 </dev/null &
  agent=\$!
  wait \$agent; status=\$?; agent=
  echo "steward-agent exited (status \$status) at \$(date -u '+%Y-%m-%dT%H:%M:%SZ'); starting it again in 5 s" >>$(q "$LOG")
  sleep 5 & nap=\$!; wait \$nap; nap=
done
EOF
  } | $SUDO sh -c 'umask 077; cat > "$1"' steward-agent "$START" 2>&1 ) || { step start fail "writing $START: $out"; exit 1; }
  $SUDO sh -c '
    if command -v setsid >/dev/null 2>&1; then s=setsid; else s=nohup; fi
    ( $s /bin/sh "$1" </dev/null >/dev/null 2>&1 & )
  ' steward-agent "$START" </dev/null >/dev/null 2>&1
  i=0
  while [ $i -lt 50 ] && ! [ -s "$PIDFILE" ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
  pid=$($SUDO cat "$PIDFILE" 2>/dev/null)
  [ -n "$pid" ] || { step start fail "no pid file $PIDFILE after 5 s; log $LOG: $($SUDO tail -n 3 "$LOG" 2>/dev/null)"; exit 1; }
  step start ok "detached launcher $pid$old ($START starts the agent again when it exits); pid file $PIDFILE, log $LOG"
  sleep 2
  after=$($SUDO cat "$LOG" 2>/dev/null | grep -c '^steward-agent exited')
  if ! $SUDO kill -0 "$pid" 2>/dev/null; then step verify fail "launcher $pid exited: $($SUDO tail -n 3 "$LOG" 2>/dev/null)"; exit 1
  elif [ "$after" != "$before" ]; then
    $SUDO kill "$pid" 2>/dev/null
    step verify fail "the agent exited at once: $($SUDO tail -n 4 "$LOG" 2>/dev/null)"; exit 1
  else step verify ok "the agent is running under launcher $pid"; fi
  # Started again at boot where cron can: an @reboot line in the crontab of the account the
  # agent runs as (root's for a system install).
  if command -v crontab >/dev/null 2>&1 \
    && { cron_drop "$SUDO"; echo "@reboot /bin/sh $(q "$START") $CRONMARK"; } | $SUDO crontab - 2>/dev/null; then
    step boot ok "cron starts it at boot: @reboot /bin/sh $START"
  else
    warn no_boot_start
  fi
  [ "$MODE" = system ] && warn runs_as_root
  ;;
esac
exit 0
"#,
    );
    s
}

/// The uninstall script: stops the agent (system unit, user unit, detached process) and removes
/// its files, wherever they are. System files without root or sudo are reported, not skipped
/// silently.
pub fn uninstall_script(probe: &Probe) -> String {
    let mut s = format!(
        "PRIV={}\nSUDO='{}'\nSYSTEMD={}\n",
        u8::from(probe.privileged()),
        probe.sudo_prefix(),
        u8::from(probe.systemd),
    );
    s.push_str(COMMON);
    s.push_str(
        r#"
stopped=""; removed=""; failed=""
SYS_FILES="/usr/local/bin/steward-agent /etc/steward-agent /etc/systemd/system/steward-agent.service /run/steward-agent.pid /var/log/steward-agent.log /var/log/steward-agent.log.1"
if [ "$PRIV" = 1 ]; then
  if [ -f /etc/systemd/system/steward-agent.service ] && [ "$SYSTEMD" = 1 ]; then
    $SUDO systemctl disable --now steward-agent >/dev/null 2>&1 && stopped="$stopped steward-agent.service"
  fi
  stop_pidfile /run/steward-agent.pid && stopped="$stopped process (/run/steward-agent.pid)"
  for f in $SYS_FILES; do
    if [ -e "$f" ]; then
      if $SUDO rm -rf "$f" 2>/dev/null; then removed="$removed $f"; else failed="$failed $f"; fi
    fi
  done
  [ "$SYSTEMD" = 1 ] && $SUDO systemctl daemon-reload >/dev/null 2>&1
  if id -u steward-agent >/dev/null 2>&1; then
    if { command -v userdel >/dev/null 2>&1 && $SUDO userdel steward-agent >/dev/null 2>&1; } \
      || { command -v deluser >/dev/null 2>&1 && $SUDO deluser --system steward-agent >/dev/null 2>&1; }; then
      removed="$removed account:steward-agent"
    else failed="$failed account:steward-agent"; fi
  fi
else
  for f in $SYS_FILES; do [ -e "$f" ] && failed="$failed $f"; done
fi
# The login user's own install.
UNIT=$HOME/.config/systemd/user/steward-agent.service
if [ -f "$UNIT" ] && [ "$SYSTEMD" = 1 ]; then
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { XDG_RUNTIME_DIR="/run/user/$(id -u)"; export XDG_RUNTIME_DIR; }
  systemctl --user disable --now steward-agent >/dev/null 2>&1 && stopped="$stopped steward-agent.service (user)"
fi
stop_pidfile "$HOME/.local/state/steward-agent/agent.pid" && stopped="$stopped process (~/.local/state/steward-agent/agent.pid)"
for f in "$HOME/.local/bin/steward-agent" "$HOME/.config/steward-agent" "$UNIT" "$HOME/.local/state/steward-agent"; do
  if [ -e "$f" ]; then
    if rm -rf "$f" 2>/dev/null; then removed="$removed $f"; else failed="$failed $f"; fi
  fi
done
[ "$SYSTEMD" = 1 ] && systemctl --user daemon-reload >/dev/null 2>&1
# The @reboot lines of a detached install (the login user's, and root's when privileged).
if command -v crontab >/dev/null 2>&1; then
  for who in "" "$SUDO"; do
    [ -z "$who" ] || [ "$PRIV" = 1 ] || continue
    if $who crontab -l 2>/dev/null | grep -q "$CRONMARK\$"; then
      if cron_drop "$who" | $who crontab - 2>/dev/null; then removed="$removed crontab@reboot${who:+(root)}"
      else failed="$failed crontab@reboot"; fi
    fi
  done
fi
if [ -n "$stopped" ]; then step stop ok "stopped:$stopped"; else step stop ok "no running agent found"; fi
if [ -n "$failed" ]; then
  step remove fail "no permission to remove:$failed"
  exit 3
fi
if [ -n "$removed" ]; then step remove ok "removed:$removed"; else step remove ok "nothing installed"; fi
exit 0
"#,
    );
    s
}

/// The SHA-256 (hex) of a binary the hub serves, for the manual install to check what it
/// downloaded.
pub async fn binary_sha256(path: &std::path::Path) -> std::io::Result<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use sha2::Digest;
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The shell lines that download the agent for this machine's `uname -m` into `dest` (with
/// the `Authorization` header in `header_file`) and check it against the hub's SHA-256 for
/// that architecture: a binary that differs (a proxy or mirror in the way, a truncated
/// download) is deleted and the install stops. `builds` pairs each architecture the hub serves
/// with its SHA-256. Runs under `set -e`.
pub fn download_and_verify(
    hub: &str,
    dest: &str,
    header_file: &str,
    builds: &[(&str, String)],
) -> String {
    let cases: String = builds
        .iter()
        .map(|(arch, sum)| {
            let names = match uname_names(arch) {
                [] => arch.to_string(),
                names => names.join("|"),
            };
            format!("{names}) sum={sum};; ")
        })
        .collect();
    let built_for = builds
        .iter()
        .map(|(a, _)| *a)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "case \"$(uname -m)\" in {cases}*) echo \"steward-agent: this server is $(uname -m); the hub has agents for {built_for}\" >&2; exit 1;; esac\n\
         command -v sha256sum >/dev/null 2>&1 || {{ echo 'steward-agent: sha256sum is needed to check the download' >&2; exit 1; }}\n\
         curl -fsSL -H @{header_file} -o {dest} \"{hub}/api/v1/agent/download?arch=$(uname -m)\" || {{ rm -f {header_file} {dest}; exit 1; }}\n\
         printf '%s  %s\\n' \"$sum\" {dest} | sha256sum -c - >/dev/null 2>&1 || {{ rm -f {header_file} {dest}; echo \"steward-agent: the downloaded binary is not the one the hub serves (SHA-256 $sum); nothing was installed\" >&2; exit 1; }}\n"
    )
}

/// The manual install command shown at enrollment: run as root, it writes the token (0600),
/// downloads the binary from the hub with that token (refusing a server of another
/// architecture, and a download whose SHA-256 is not the hub's), installs the hardened systemd
/// unit and starts it. It runs in a subshell so `set -e` and `exit` do not end the user's own
/// shell. `builds` pairs each architecture the hub serves with its binary's SHA-256.
pub fn manual_command(hub: &str, token: &str, interval: i64, builds: &[(&str, String)]) -> String {
    let unit = system_unit(hub, interval);
    let download = download_and_verify(
        hub,
        &format!("{SYSTEM_BINARY}.new"),
        "/etc/steward-agent/download-header",
        builds,
    );
    format!(
        "( set -e\n\
         install -d -m 0700 /etc/steward-agent\n\
         ( umask 077; printf '%s\\n' '{token}' > {SYSTEM_TOKEN}; printf 'Authorization: Bearer %s\\n' \"$(cat {SYSTEM_TOKEN})\" > /etc/steward-agent/download-header )\n\
         {download}\
         {SYSTEM_ACCOUNT_SH}\n\
         rm -f /etc/steward-agent/download-header\n\
         chmod 0755 {SYSTEM_BINARY}.new && mv -f {SYSTEM_BINARY}.new {SYSTEM_BINARY}\n\
         cat > {SYSTEM_UNIT} <<'UNIT'\n\
         {unit}\
         UNIT\n\
         systemctl daemon-reload && systemctl enable steward-agent && systemctl restart steward-agent )"
    )
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
