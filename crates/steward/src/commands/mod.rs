//! The subcommands.
mod admin;
mod limits;
mod serve;
mod vault;

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use steward_db::Db;
use steward_vault::Vault;

use crate::config::{Cli, Command, Resolved, load_file};

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = load_file(cli.global.config.as_deref())?;
    let resolved = Resolved::new(&cli.global, &file);
    crate::logging::init(resolved.log_format, &resolved.log_level);
    match cli.command {
        Command::Serve(opts) => serve::run(&resolved, &opts, &file).await,
        Command::Migrate => {
            let db = connect(&resolved).await?;
            let status = db.migrate().await?;
            println!(
                "database schema is at version {} ({} backend)",
                status.applied,
                db.backend().name()
            );
            Ok(())
        }
        Command::Admin(cmd) => admin::run(&resolved, cmd).await,
        Command::Vault(cmd) => vault::run(&resolved, cmd).await,
        Command::Openapi => {
            use std::io::Write;
            let doc = serde_json::to_string_pretty(steward_api::openapi::openapi())?;
            // A closed pipe (`steward openapi | head`) is not an error worth a panic.
            match writeln!(std::io::stdout().lock(), "{doc}") {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

/// Creates the data directory (owner-only) when missing.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Connects to the configured database (creating the SQLite file's directory if needed).
pub async fn connect(r: &Resolved) -> anyhow::Result<Db> {
    if r.database_url.starts_with("sqlite:") {
        ensure_data_dir(&r.data_dir)?;
    }
    let db = Db::connect(&r.database_url)
        .await
        .context("cannot connect to the database")?;
    if let Some(rest) = r.database_url.strip_prefix("sqlite://") {
        restrict_sqlite_files(Path::new(rest.split('?').next().unwrap_or(rest)));
    }
    Ok(db)
}

/// Makes the SQLite database and its journal files readable by the owner only (they hold
/// password hashes and sealed secrets), whatever the umask was when they were created.
fn restrict_sqlite_files(db: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = Path::new(&name);
        if path.exists()
            && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot make the database file private");
        }
    }
}

/// Connects and refuses to go on unless the schema is current.
pub async fn connect_migrated(r: &Resolved) -> anyhow::Result<Db> {
    let db = connect(r).await?;
    db.migrate().await?;
    Ok(db)
}

/// Opens the master keyring for a database: `STEWARD_MASTER_KEY` if set, else the keyring
/// file. A missing file is created only for a database that holds no secrets yet (a fresh
/// install); otherwise the operator pointed at the wrong place, and a new key would not help.
pub async fn open_vault_for(r: &Resolved, db: &Db) -> anyhow::Result<Arc<Vault>> {
    let fresh = steward_db::secrets::count_by_key(&db.pool)
        .await?
        .is_empty();
    open_vault(r, fresh)
}

/// Opens the master keyring: `STEWARD_MASTER_KEY` if set, else the keyring file (created when
/// `create` and missing).
pub fn open_vault(r: &Resolved, create: bool) -> anyhow::Result<Arc<Vault>> {
    if let Ok(value) = std::env::var("STEWARD_MASTER_KEY") {
        return Ok(Arc::new(
            Vault::from_env(&value).context("STEWARD_MASTER_KEY is not valid")?,
        ));
    }
    if !create && !r.master_key_file.exists() {
        anyhow::bail!(
            "master keyring {} not found, but the database holds sealed secrets: point --data-dir or \
             --master-key-file at the keyring, or set STEWARD_MASTER_KEY",
            r.master_key_file.display()
        );
    }
    if let Some(parent) = r.master_key_file.parent() {
        ensure_data_dir(parent)?;
    }
    let (vault, created) = Vault::open_or_create(&r.master_key_file)?;
    if created {
        tracing::warn!(
            path = %r.master_key_file.display(),
            "created a new master keyring; back it up with the database: without it stored credentials cannot be read"
        );
    }
    Ok(Arc::new(vault))
}

/// Reads a password: typed without echo at a terminal, or one line of piped standard input.
pub fn read_secret_line(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{prompt}: ")).context("reading the password")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if line.is_empty() {
        anyhow::bail!("no password given on standard input");
    }
    Ok(line)
}
