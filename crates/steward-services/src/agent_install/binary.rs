//! The agent binary the hub hands out: which architecture a build is for (its ELF header),
//! the builds a `--agent-binary` file or directory holds, the one that fits a server's
//! `uname -m`, and the SHA-256 the manual install checks.
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
