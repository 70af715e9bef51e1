//! Docker for the tests: the `docker` command, a daemon (the one running, or one the test
//! starts and stops), and images built without a registry. `.ci/run` installs `docker.io`.
//! The tests that use Docker take turns (nextest group `machine-docker`).
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker command is missing: apt-get install -y docker.io (.ci/run does)")
}

/// Runs `docker args`, failing the test with its stderr; its stdout, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The daemon: the one already running, or one this test starts and stops.
pub struct Dockerd(Option<Child>);

impl Dockerd {
    pub fn ensure() -> Self {
        if docker(&["info"]).status.success() {
            return Self(None);
        }
        let log = std::fs::File::create(std::env::temp_dir().join("steward-test-dockerd.log"))
            .expect("dockerd log");
        // No iptables rules: published ports go through docker-proxy on the host.
        let child = Command::new("dockerd")
            .args(["--iptables=false"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd is missing: apt-get install -y docker.io (.ci/run does)");
        let me = Self(Some(child));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker(&["info"]).status.success() {
            assert!(Instant::now() < deadline, "dockerd did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        me
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// Imports the directory `root` as the image `tag` (a file first, then `docker import`).
pub fn import_dir(root: &std::path::Path, tag: &str) {
    let archive = root.with_extension("import.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(tar.success());
    let import = Command::new("docker")
        .args(["import", &archive.display().to_string(), tag])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&archive);
    assert!(
        import.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&import.stderr)
    );
}

/// A container a test runs (`docker run -d --name <name> …`), removed on drop together with
/// the named volume it was given, if any.
pub struct Container {
    pub name: String,
    pub id: String,
    volume: Option<String>,
}

impl Container {
    /// Runs `docker run -d --name <name> <args>`, removing a leftover of that name first.
    pub fn run(name: String, args: &[&str]) -> Self {
        let _ = docker(&["rm", "-f", &name]);
        let mut all = vec!["run", "-d", "--name", name.as_str()];
        all.extend_from_slice(args);
        let id = docker_ok(&all);
        Self {
            name,
            id,
            volume: None,
        }
    }

    /// Removes the named volume `volume` too, after the container.
    pub fn removing_volume(mut self, volume: &str) -> Self {
        self.volume = Some(volume.to_string());
        self
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
        if let Some(v) = &self.volume {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
    }
}
