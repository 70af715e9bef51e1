//! The discovery script: one POSIX shell script, sent in a single exec, that prints sections
//! separated by marker lines carrying a per-scan nonce (so no command's output can fake one).
//! Every command is read-only, guarded (`command -v`, `2>/dev/null`) and, where it could hang,
//! run under `timeout`. What cannot be seen prints a note line instead of failing.

/// The marker prefix for a scan with this nonce: a section starts with `<prefix> <name>` on a
/// line of its own, and a note with `<prefix> !<code>`.
pub fn marker(nonce: &str) -> String {
    format!("@@STEWARD-SCAN-{nonce}")
}

const BODY: &str = r#"
export LC_ALL=C LANG=C
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH
S() { printf "\n%s %s\n" "$M" "$1"; }
N() { printf "\n%s !%s\n" "$M" "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }
if have timeout; then T() { timeout 10 "$@"; }; else T() { "$@"; }; fi

S meta
echo "uid=$(id -u 2>/dev/null)"
echo "user=$(id -un 2>/dev/null)"
echo "ssh_connection=$SSH_CONNECTION"

S os_release
cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || N os_release_missing

S kernel
uname -r 2>/dev/null

S arch
uname -m 2>/dev/null

S hostname
hostname 2>/dev/null || cat /proc/sys/kernel/hostname 2>/dev/null || uname -n 2>/dev/null

S cpu
grep -E "^(model name|Hardware|cpu model|Processor)[[:space:]]*:" /proc/cpuinfo 2>/dev/null | head -n 1
echo "cores=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo 2>/dev/null)"

S meminfo
grep -E "^(MemTotal|MemAvailable|SwapTotal|SwapFree):" /proc/meminfo 2>/dev/null

S uptime
cat /proc/uptime 2>/dev/null

S df
T df -PTk 2>/dev/null | head -n 200

S ss
if have ss; then
  T ss -ltnpH 2>/dev/null || T ss -ltnp 2>/dev/null
else
  N ss_missing
  S proc_net_tcp
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | head -n 2000
fi

S processes
cat /proc/[0-9]*/comm 2>/dev/null | sort -u | head -n 2000

S systemd_running
if [ -d /run/systemd/system ] && have systemctl; then
  T systemctl list-units --type=service --state=running --no-legend --plain --no-pager 2>/dev/null | head -n 1000
  S systemd_failed
  T systemctl list-units --state=failed --no-legend --plain --no-pager 2>/dev/null | head -n 1000
else
  N systemd_unavailable
fi

S v_nginx
have nginx && T nginx -v 2>&1 | head -n 2
S v_apache
if have apache2; then T apache2 -v 2>&1 | head -n 2; elif have httpd; then T httpd -v 2>&1 | head -n 2; fi
S v_caddy
have caddy && T caddy version 2>&1 | head -n 1
S v_postgresql
for b in $(command -v postgres 2>/dev/null) /usr/lib/postgresql/*/bin/postgres /usr/pgsql-*/bin/postgres; do
  [ -x "$b" ] && T "$b" --version 2>&1 | head -n 1
done
S v_mysql
for b in $(command -v mariadbd 2>/dev/null) $(command -v mysqld 2>/dev/null) /usr/libexec/mysqld; do
  if [ -x "$b" ]; then T "$b" --version 2>&1 | head -n 1; break; fi
done
S v_mongodb
have mongod && T mongod --version 2>&1 | head -n 1
S v_redis
have redis-server && T redis-server --version 2>&1 | head -n 1
S v_nodejs
have node && T node --version 2>&1 | head -n 1
S v_sshd
for b in $(command -v sshd 2>/dev/null) /usr/sbin/sshd; do
  if [ -x "$b" ]; then T "$b" -V 2>&1 | grep -m 1 OpenSSH; break; fi
done
S v_ssh
have ssh && T ssh -V 2>&1 | head -n 1

if have docker; then
  S docker_version
  T docker version --format "{{.Client.Version}}|{{.Server.Version}}" 2>&1 | head -n 5
  S docker_ps
  T docker ps -a --format "{{.Names}}|{{.Image}}|{{.Status}}|{{.Ports}}" 2>&1 | head -n 500
  S docker_volumes
  T docker volume ls --format "{{.Name}}" 2>&1 | head -n 500
fi

S end
"#;

/// The script for a scan with this nonce.
pub fn script(nonce: &str) -> String {
    format!("M=\"{}\"\n{BODY}", marker(nonce))
}

/// The command line that runs `script` with `sh`, whatever the account's login shell is.
pub fn command(script: &str) -> String {
    format!("exec sh -c '{}'", script.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_quoted_for_any_shell_and_only_reads() {
        let s = script("abc123");
        assert!(s.starts_with("M=\"@@STEWARD-SCAN-abc123\""));
        let c = command("echo 'x'");
        assert_eq!(c, r"exec sh -c 'echo '\''x'\'''");
        // Nothing that writes, deletes or restarts.
        for word in [" rm ", " kill ", "restart", " > /", "mkfs", " dd "] {
            assert!(!BODY.contains(word), "{word}");
        }
    }

    #[test]
    fn the_script_runs_in_a_plain_shell() {
        // Really run it here: every section is there and it ends.
        let nonce = "t0";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script(nonce))
            .output()
            .expect("sh");
        let text = String::from_utf8_lossy(&out.stdout);
        let m = marker(nonce);
        for section in [
            "meta",
            "os_release",
            "kernel",
            "cpu",
            "df",
            "processes",
            "end",
        ] {
            assert!(
                text.contains(&format!("{m} {section}\n")),
                "{section}: {text}"
            );
        }
        let report = super::super::parse::parse(&text, nonce);
        assert!(report.kernel.is_some(), "{report:?}");
        assert!(report.uptime_secs.is_some());
    }
}
