//! The open-file limit `serve` runs under: raised from the soft limit (often 1,024) to the
//! hard one at start-up, and the HTTP connection cap kept below what it leaves.
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// File descriptors kept apart from HTTP connections: the SSH pool's connections plus this
/// many for the database pool, the listener, log and data files, and agent binaries.
const OTHER_FILES: u64 = 256;

/// The soft open-file limit before and after [`raise_open_files`] and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub was: u64,
    pub now: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (an unlimited hard limit means the
/// kernel's `fs.nr_open`, the most a process may have).
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let hard = maximum.unwrap_or_else(nr_open);
    let was = current.unwrap_or(hard);
    if was >= hard {
        return Ok(OpenFiles {
            was,
            now: was,
            hard,
        });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum,
        },
    )?;
    Ok(OpenFiles {
        was,
        now: hard,
        hard,
    })
}

fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

/// The connection cap that fits in `open_files` next to `ssh_max_connections` and the other
/// files, if `wanted` does not (never below 16).
pub fn fitting_cap(wanted: usize, open_files: u64, ssh_max_connections: usize) -> Option<usize> {
    let room = open_files.saturating_sub(ssh_max_connections as u64 + OTHER_FILES);
    (wanted as u64 > room).then(|| usize::try_from(room).unwrap_or(usize::MAX).max(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_lowered_only_when_the_files_do_not_fit() {
        assert_eq!(fitting_cap(10_000, 1_048_576, 512), None);
        assert_eq!(fitting_cap(10_000, 20_000, 512), None);
        assert_eq!(fitting_cap(10_000, 4_096, 512), Some(4_096 - 512 - 256));
        assert_eq!(fitting_cap(100, 1_024, 512), None);
        assert_eq!(fitting_cap(10_000, 512, 512), Some(16));
    }
}
