//! The subcommands.
mod admin;
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
            println!(
                "{}",
                serde_json::to_string_pretty(steward_api::openapi::openapi())?
            );
            Ok(())
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
    Db::connect(&r.database_url)
        .await
        .context("cannot connect to the database")
}

/// Connects and refuses to go on unless the schema is current.
pub async fn connect_migrated(r: &Resolved) -> anyhow::Result<Db> {
    let db = connect(r).await?;
    db.migrate().await?;
    Ok(db)
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
            "master keyring {} not found (set --data-dir or --master-key-file, or STEWARD_MASTER_KEY)",
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

/// Reads one line (a password) from standard input.
pub fn read_secret_line(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        anyhow::bail!("no password given on standard input");
    }
    Ok(line)
}
