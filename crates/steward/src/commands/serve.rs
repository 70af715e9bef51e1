//! `steward serve`.
use std::sync::Arc;

use anyhow::Context;
use steward_api::AppState;
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
    let jwt = steward_services::bootstrap::prepare(&db, &vault, clock.as_ref()).await?;
    if let Some(token) =
        steward_services::bootstrap::setup_token(&db, clock.as_ref(), &r.data_dir).await?
    {
        tracing::warn!(
            setup_url = %format!("{}/setup?token={token}", config.public_url.trim_end_matches('/')),
            token_file = %r.data_dir.join(steward_services::bootstrap::SETUP_TOKEN_FILE).display(),
            "Steward is not set up yet: open the setup URL to create the first administrator"
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    // Port 0 picks a free port: the URL derived from the listen address names the real one
    // (agents and install commands must reach it).
    if listen.port() == 0 && config.public_url == format!("http://{listen}") {
        config.public_url = format!("http://{local}");
    }
    tracing::info!(
        address = %local,
        version = env!("CARGO_PKG_VERSION"),
        max_connections = config.max_connections,
        "steward is listening"
    );
    let interrupted = steward_db::executions::interrupt_running(&db.pool, clock.now_ms()).await?;
    if interrupted > 0 {
        tracing::warn!(
            runs = interrupted,
            "marked runs left over from the last process as interrupted"
        );
    }
    let ended = steward_db::terminal_sessions::end_interrupted(&db.pool, clock.now_ms()).await?;
    if ended > 0 {
        tracing::info!(
            sessions = ended,
            "terminal sessions interrupted by the restart marked ended"
        );
    }
    // Agents marked connected by a previous process are not (they reconnect); those another
    // running instance serves keep reporting and are left alone.
    let silent = steward_api::metrics::agent::SILENT_FOR.as_millis() as i64;
    steward_db::agents::reset_connected(&db.pool, clock.now_ms() - silent).await?;
    let housekeeping = tokio::spawn(housekeeping(
        db.clone(),
        clock.clone(),
        config.recording_retention_days,
        config.execution_retention_days,
        config.check_retention_days,
    ));
    let metrics = steward_services::metrics::store::Store::open(
        db.clone(),
        steward_services::metrics::store::StoreConfig {
            retention: config.metrics_retention,
            ..Default::default()
        },
        clock.clone(),
    )
    .await
    .context("cannot open the metric store")?;
    let metrics_stop = tokio_util::sync::CancellationToken::new();
    let metrics_task = metrics.spawn_background(metrics_stop.clone());
    let state = AppState::new(db.clone(), vault, clock, config, jwt, metrics);
    // Secret parameter values sealed for runs that a stopped process left behind.
    for id in steward_db::executions::with_leftover_secrets(&db.pool).await? {
        steward_services::runner::forget_secrets(&state, &id).await?;
    }
    let scans = steward_services::discovery::spawn_scheduler(state.services.clone());
    let collection = steward_services::metrics::collect::spawn(state.services.clone());
    let checks = steward_services::checks::spawn_scheduler(state.services.clone());
    steward_api::serve(listener, state.clone(), shutdown_signal()).await?;
    housekeeping.abort();
    if let Some(scans) = scans {
        scans.abort();
    }
    if let Some(collection) = collection {
        collection.abort();
    }
    if let Some(checks) = checks {
        checks.abort();
    }
    // Stop what still runs on managed servers rather than leave it behind.
    state.executions.cancel_all();
    for _ in 0..50 {
        if !state.executions.any_running() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The last samples reach the database before it closes.
    metrics_stop.cancel();
    if let Err(e) = metrics_task.await {
        tracing::warn!(error = %e, "the metric store did not stop cleanly");
    }
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

/// Prunes expired sessions, refresh tokens, throttle counters and rate-limit windows, and
/// terminal recordings, script runs and health-check results older than their retention, now
/// and then every hour.
async fn housekeeping(
    db: steward_db::Db,
    clock: Arc<dyn Clock>,
    recording_retention_days: i64,
    execution_retention_days: i64,
    check_retention_days: i64,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let now = clock.now_ms();
        let forget = now - steward_core::throttle::FORGET_AFTER_SECS * 1000;
        match steward_db::maintenance::prune(&db, now, forget).await {
            Ok(p) => tracing::debug!(
                sessions = p.sessions,
                refresh_tokens = p.refresh_tokens,
                throttle = p.throttle_counters,
                "pruned"
            ),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry in an hour"),
        }
        // Rate-limit windows last minutes; an hour-old one is over.
        if let Err(e) = steward_db::rate_limits::prune(&db.pool, now - 3_600_000).await {
            tracing::warn!(error = %e, "pruning rate limits failed; will retry in an hour");
        }
        let before = now.saturating_sub(recording_retention_days.saturating_mul(24 * 3600 * 1000));
        match steward_db::terminal_sessions::prune(&db.pool, before).await {
            Ok(n) => tracing::debug!(recordings = n, "pruned terminal recordings"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning terminal recordings failed; will retry in an hour")
            }
        }
        let before = now.saturating_sub(execution_retention_days.saturating_mul(24 * 3600 * 1000));
        match steward_db::executions::prune(&db.pool, before).await {
            Ok(n) => tracing::debug!(runs = n, "pruned script runs"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning script runs failed; will retry in an hour")
            }
        }
        let before = now.saturating_sub(check_retention_days.saturating_mul(24 * 3600 * 1000));
        let rollups_before = now.saturating_sub(400 * 24 * 3600 * 1000);
        match steward_db::checks::prune(&db.pool, before, rollups_before).await {
            Ok(n) => tracing::debug!(results = n, "pruned health-check results"),
            Err(e) => {
                tracing::warn!(error = %e, "pruning health-check results failed; will retry in an hour")
            }
        }
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
