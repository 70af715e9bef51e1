//! [`build`]: the one place a Steward instance is wired together — the services over a
//! database, keyring and clock, the API state, the metric store's background work — used by
//! `steward serve` and by the tests (through `steward-testkit`), so start-up is written once.
//! [`App::recover`] and [`App::start_background`] are what `serve` adds for a real instance:
//! tidying what a stopped process left behind, housekeeping, and the schedulers.
use std::sync::Arc;

use anyhow::Context;
use steward_api::{ApiConfig, AppState};
use steward_core::Clock;
use steward_db::Db;
use steward_vault::Vault;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod housekeeping;

/// A wired instance, not yet serving.
pub struct App {
    /// What handlers and services share.
    pub state: AppState,
    /// The one-time setup token, while no account exists (also written to the data directory).
    pub setup_token: Option<String>,
    metrics_stop: CancellationToken,
    metrics_task: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// Builds an instance over a migrated database: built-in roles and the signing key
/// (`bootstrap::prepare`), the setup token while nobody can log in (in `config.data_dir`, when
/// set), the metric store with its flush, rollups and pruning running, and the API state.
/// Must be called within a Tokio runtime.
pub async fn build(
    db: Db,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    config: ApiConfig,
) -> anyhow::Result<App> {
    let jwt = steward_services::bootstrap::prepare(&db, &vault, clock.as_ref()).await?;
    let setup_token = match &config.data_dir {
        Some(dir) => steward_services::bootstrap::setup_token(&db, clock.as_ref(), dir).await?,
        None => None,
    };
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
    let metrics_stop = CancellationToken::new();
    let metrics_task = Some(metrics.spawn_background(metrics_stop.clone()));
    let state = AppState::new(db, vault, clock, config, jwt, metrics);
    Ok(App {
        state,
        setup_token,
        metrics_stop,
        metrics_task,
        background: Vec::new(),
    })
}

impl App {
    /// Tidies what a stopped process left behind: runs and terminal sessions it was serving
    /// are marked interrupted, agents it served are no longer shown connected (those another
    /// running instance serves keep reporting and are left alone), and the sealed secret
    /// parameter values of runs that ended are deleted.
    pub async fn recover(&self) -> anyhow::Result<()> {
        let st = &self.state;
        let now = st.now_ms();
        let interrupted = steward_db::executions::interrupt_running(&st.db.pool, now).await?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "marked runs left over from the last process as interrupted"
            );
        }
        let ended = steward_db::terminal_sessions::end_interrupted(&st.db.pool, now).await?;
        if ended > 0 {
            tracing::info!(
                sessions = ended,
                "terminal sessions interrupted by the restart marked ended"
            );
        }
        let silent =
            i64::try_from(steward_services::agents::SILENT_FOR.as_millis()).unwrap_or(i64::MAX);
        steward_db::agents::reset_connected(&st.db.pool, now.saturating_sub(silent)).await?;
        for id in steward_db::executions::with_leftover_secrets(&st.db.pool).await? {
            steward_services::runner::forget_secrets(st, &id).await?;
        }
        Ok(())
    }

    /// Starts the hourly housekeeping and the schedulers (scans, agentless collection, health
    /// checks), each as its settings allow.
    pub fn start_background(&mut self) {
        let st = &self.state;
        self.background.push(tokio::spawn(housekeeping::run(
            st.db.clone(),
            st.clock.clone(),
            housekeeping::Retention {
                recording_days: st.config.recording_retention_days,
                execution_days: st.config.execution_retention_days,
                check_days: st.config.check_retention_days,
            },
        )));
        let services = st.services.clone();
        self.background
            .extend(steward_services::discovery::spawn_scheduler(
                services.clone(),
            ));
        self.background
            .extend(steward_services::metrics::collect::spawn(services.clone()));
        self.background
            .extend(steward_services::checks::spawn_scheduler(services));
    }

    /// Serves the API on `listener` until `shutdown` completes, then [`stop`](Self::stop)s.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        steward_api::serve(listener, self.state.clone(), shutdown).await?;
        self.stop().await;
        Ok(())
    }

    /// Stops the background work, cancels the runs still going on managed servers (waiting up
    /// to 5 s for them to end) and lets the metric store write its last samples.
    pub async fn stop(mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        let st = &self.state;
        st.executions.cancel_all();
        for _ in 0..50 {
            if !st.executions.any_running() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.metrics_stop.cancel();
        if let Some(task) = self.metrics_task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "the metric store did not stop cleanly");
        }
    }

    /// Leaves the metric store's background work running until the returned token is
    /// cancelled (for a harness that serves the state elsewhere).
    pub fn detach(mut self) -> (AppState, CancellationToken) {
        drop(self.metrics_task.take());
        (self.state.clone(), self.metrics_stop.clone())
    }
}
