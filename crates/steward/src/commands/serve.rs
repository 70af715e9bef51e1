//! `steward serve`.
use std::sync::Arc;

use anyhow::Context;
use steward_core::{Clock, SystemClock};

use crate::config::{FileConfig, Resolved, ServeOpts, api_config};

/// Prepares everything and serves until SIGTERM or Ctrl-C.
pub async fn run(r: &Resolved, opts: &ServeOpts, file: &FileConfig) -> anyhow::Result<()> {
    let (listen, mut config) = api_config(opts, file, &r.data_dir)?;
    open_files(&mut config);
    super::ensure_data_dir(&r.data_dir)?;
    let db = super::connect(r).await?;
    let status = db.migrate().await?;
    tracing::info!(
        backend = db.backend().name(),
        schema_version = status.applied,
        "database ready"
    );
    let vault = super::open_vault_for(r, &db).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    // Port 0 picks a free port: the URL derived from the listen address names the real one
    // (agents and install commands must reach it).
    if listen.port() == 0 && config.public_url == format!("http://{listen}") {
        config.public_url = format!("http://{local}");
    }
    let mut app = steward::app::build(db.clone(), vault, clock, config).await?;
    if let Some(token) = &app.setup_token {
        tracing::warn!(
            setup_url = %format!("{}/setup?token={token}", app.state.config.public_url.trim_end_matches('/')),
            token_file = %r.data_dir.join(steward_services::bootstrap::SETUP_TOKEN_FILE).display(),
            "Steward is not set up yet: open the setup URL to create the first administrator"
        );
    }
    tracing::info!(
        address = %local,
        version = env!("CARGO_PKG_VERSION"),
        max_connections = app.state.config.max_connections,
        "steward is listening"
    );
    app.recover().await?;
    app.start_background();
    app.serve(listener, shutdown_signal()).await?;
    db.close().await;
    tracing::info!("steward stopped");
    Ok(())
}

/// Raises the open-file limit (each HTTP connection, SSH connection and database connection
/// is a file descriptor) and keeps the HTTP connection cap below it.
fn open_files(config: &mut steward_api::ApiConfig) {
    let limit = match super::limits::raise_open_files() {
        Ok(l) if l.now > l.was => {
            tracing::info!(
                from = l.was,
                to = l.now,
                "raised the open-file limit to the hard limit"
            );
            l.now
        }
        Ok(l) => {
            tracing::info!(limit = l.now, "the open-file limit is at the hard limit");
            l.now
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            return;
        }
    };
    if let Some(cap) =
        super::limits::fitting_cap(config.max_connections, limit, config.ssh_max_connections)
    {
        tracing::warn!(
            max_connections = config.max_connections,
            open_file_limit = limit,
            lowered_to = cap,
            "--max-connections does not fit in the open-file limit; using less (raise the hard limit, e.g. LimitNOFILE= in the systemd unit)"
        );
        config.max_connections = cap;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
