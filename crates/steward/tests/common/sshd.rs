//! Real OpenSSH servers for tests: an `sshd` on 127.0.0.2 with its own generated host key,
//! its own config and authorized_keys file, stopped by pid when dropped.
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub host: String,
    pub port: u16,
    pub user: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra sshd_config lines.
    extra: String,
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
        Self::start_with("")
    }

    /// Starts with extra sshd_config lines (e.g. `MaxSessions 200`).
    pub fn start_with(extra: &str) -> Self {
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
        keygen(&dir.path().join("host_key"), "");
        let mut s = Self {
            host: "127.0.0.2".into(),
            port: closed_port(),
            user,
            dir,
            child: None,
            extra: extra.to_string(),
        };
        s.spawn();
        s
    }

    fn config(&self) -> PathBuf {
        let d = self.dir.path().display();
        let path = self.dir.path().join("sshd_config");
        std::fs::write(
            &path,
            format!(
                "Port {port}\nListenAddress {host}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nLogLevel ERROR\nSubsystem sftp internal-sftp\n{extra}\n",
                port = self.port,
                host = self.host,
                extra = self.extra,
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
