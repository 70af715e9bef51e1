//! What the agent says about its host in the hello.

use steward_metrics::agent_proto::{Hello, PROTOCOL_VERSION};

pub fn hello() -> Hello {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: read("/proc/sys/kernel/hostname"),
        os: os_name(&read("/etc/os-release")).unwrap_or_else(|| "Linux".to_owned()),
        arch: std::env::consts::ARCH.to_owned(),
        kernel: read("/proc/sys/kernel/osrelease"),
    }
}

/// `PRETTY_NAME` of an os-release file.
fn os_name(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        let v = l
            .strip_prefix("PRETTY_NAME=")?
            .trim()
            .trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_release_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            super::os_name(text).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(super::os_name("ID=x\n"), None);
        let h = super::hello();
        assert!(!h.hostname.is_empty() && !h.kernel.is_empty());
    }
}
