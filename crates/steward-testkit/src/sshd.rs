//! Real OpenSSH servers for tests: an `sshd` on 127.0.0.2 with its own generated host key,
//! its own config and authorized_keys file, stopped by pid when dropped.
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    /// The first address it listens on.
    pub host: String,
    /// Every address it listens on (all on `port`).
    pub hosts: Vec<String>,
    pub port: u16,
    pub user: String,
    /// Extra sshd_config lines.
    extra: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A port free on every loopback address.
pub fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `count` loopback addresses starting at 127.0.0.`first`.
pub fn addresses(first: u8, count: u8) -> Vec<String> {
    (0..count)
        .map(|i| format!("127.0.0.{}", first + i))
        .collect()
}

fn keygen(path: &Path, passphrase: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let ok = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "steward-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen (package openssh-client) is needed")
        .success();
    assert!(ok, "ssh-keygen failed");
}

/// A fresh ed25519 key pair: (private key text, public key line).
pub fn key_pair(passphrase: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id");
    keygen(&path, passphrase);
    (
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_string(),
    )
}

/// A port nobody listens on.
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    pub fn start() -> Self {
        Self::start_with(&["127.0.0.2".to_string()], "")
    }

    /// An sshd listening on each of `hosts` (sshd takes up to 16), with extra config lines.
    pub fn start_with(hosts: &[String], extra: &str) -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install it with `apt-get install -y openssh-server`"
        );
        // Debian's sshd needs its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        std::fs::File::create(dir.path().join("authorized_keys")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        keygen(&dir.path().join("host_key"), "");
        let mut s = Self {
            host: hosts[0].clone(),
            hosts: hosts.to_vec(),
            port: free_port(),
            extra: extra.to_string(),
            user,
            dir,
            child: None,
        };
        s.spawn();
        s
    }

    /// The config. The test account's sessions (root's, in CI) get `HOME` set to an empty
    /// directory of this sshd's, so login and interactive shells read none of its start-up
    /// files: the machine's ~/.bashrc can be slow, and a session killed halfway through it
    /// (the cancel and timeout tests kill sessions) can leave behind locks that stall every
    /// later login. `SHLVL=1` also keeps bash from reading ~/.bashrc for commands run by sshd.
    /// Throwaway accounts (`OsUser`) keep their own home. (`SetEnv` takes the first value that
    /// applies, hence one per `Match`.)
    fn config(&self) -> PathBuf {
        let d = self.dir.path().display();
        let path = self.dir.path().join("sshd_config");
        std::fs::write(
            &path,
            format!(
                "{extra}\nPort {port}\n{listen}HostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n\
                 MaxStartups 500\nMaxSessions 100\n\
                 Match User {user}\n  SetEnv SHLVL=1 HOME={d}/home\nMatch all\n  SetEnv SHLVL=1\n",
                user = self.user,
                port = self.port,
                extra = self.extra,
                listen = self
                    .hosts
                    .iter()
                    .map(|h| format!("ListenAddress {h}\n"))
                    .collect::<String>(),
            ),
        )
        .unwrap();
        path
    }

    fn spawn(&mut self) {
        let config = self.config();
        let log = std::fs::File::create(self.dir.path().join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((self.host.as_str(), self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The host key's public line.
    pub fn host_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Lets a public key log in.
    pub fn authorize(&self, public_key: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .unwrap();
        writeln!(f, "{}", public_key.trim()).unwrap();
    }

    /// Restarts with other extra config lines (same addresses, port and host key).
    pub fn restart_with_config(&mut self, extra: &str) {
        self.stop();
        self.extra = extra.to_string();
        self.spawn();
    }

    /// What sshd logged (at VERBOSE: every accepted login, every forwarding request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Restarts on the same address and port with a new host key (a reinstalled, or an
    /// impostor, server).
    pub fn restart_with_new_host_key(&mut self) {
        self.stop();
        keygen(&self.dir.path().join("host_key"), "");
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throwaway account on this machine (tests that need a password login or a non-root user).
/// Removed, with its home, when dropped. Creating accounts needs root: `None` otherwise.
pub struct OsUser {
    pub name: String,
    pub password: String,
}

impl OsUser {
    pub fn create() -> Option<Self> {
        let uid = String::from_utf8(Command::new("id").arg("-u").output().ok()?.stdout).ok()?;
        if uid.trim() != "0" {
            eprintln!("not root: skipping the part that needs a throwaway account");
            return None;
        }
        let suffix: u32 = rand10::random();
        let name = format!("stw{:08x}", suffix);
        let password = format!("pw-{suffix:x}-Correct-Horse");
        // Other tests may be editing /etc/passwd at the same moment: retry on a lock.
        let mut created = false;
        for _ in 0..50 {
            let ok = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", &name])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                created = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(created, "useradd {name} failed");
        let user = Self { name, password };
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        writeln!(
            chpasswd.stdin.take().unwrap(),
            "{}:{}",
            user.name,
            user.password
        )
        .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        Some(user)
    }
}

impl Drop for OsUser {
    fn drop(&mut self) {
        // Sessions still open as this user (pooled connections) would keep userdel from working.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        for _ in 0..50 {
            let ok = Command::new("userdel")
                .args(["-r", &self.name])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            let _ = Command::new("pkill")
                .args(["-KILL", "-u", &self.name])
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove the test account {}", self.name);
    }
}
