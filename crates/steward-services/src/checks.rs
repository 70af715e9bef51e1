//! Running health checks from the hub: which addresses they may reach ([`policy`]), one run
//! stored with its roll-up ([`run_and_store`]), and the scheduler that runs every enabled check
//! on its own interval, a bounded number at a time ([`spawn_scheduler`]); and the writes
//! (create, accept a proposal, replace, delete) with their audit events ([`write`]).
mod write;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use steward_checks::{CheckResult, CheckSpec, CheckStatus, TargetPolicy};
use steward_db::checks::{self, CheckRow, ResultRow};
use steward_db::settings::{self, CHECK_ALLOWED_NETWORKS};

use crate::Services;
use crate::error::{ServiceError, ServiceResult};

pub use write::{Definition, accepted_already, delete, insert, parse_input, spec_json, update};

/// How often the scheduler looks for due checks.
const TICK: Duration = Duration::from_secs(1);

/// The stored definition of a check.
pub fn spec_of(row: &CheckRow) -> ServiceResult<CheckSpec> {
    serde_json::from_str(&row.spec).map_err(ServiceError::internal)
}

/// The stored form of a run that started at `at`.
pub fn result_row(at: i64, r: &CheckResult) -> ResultRow {
    ResultRow {
        at,
        status: r.status.as_str().into(),
        latency_ms: r.latency_ms.and_then(|l| i64::try_from(l).ok()),
        http_status: r.http_status.map(i64::from),
        cert_days: r.cert_days_left,
        // An up run needs no explanation; keeping none keeps the table small.
        message: (r.status != CheckStatus::Up).then(|| r.message.clone()),
    }
}

/// The networks an organization's settings allow checks to reach (beyond the defaults), as
/// stored: canonical CIDR strings.
pub async fn allowed_networks(st: &Services, org_id: &str) -> ServiceResult<Vec<String>> {
    let stored = settings::get(&st.db.pool, org_id, CHECK_ALLOWED_NETWORKS).await?;
    Ok(stored
        .and_then(|json| serde_json::from_str::<Vec<String>>(&json).ok())
        .unwrap_or_default())
}

/// What an organization's checks may reach now: everything but loopback, link-local, the
/// hub's own addresses and the like, unless the organization's settings or the hub's
/// configuration (`--check-allow`) allow them.
pub async fn policy(st: &Services, org_id: &str) -> ServiceResult<TargetPolicy> {
    let mut allow: Vec<IpNet> = st.config.check_allow.clone();
    allow.extend(
        allowed_networks(st, org_id)
            .await?
            .iter()
            .filter_map(|n| steward_checks::parse_network(n).ok()),
    );
    Ok(TargetPolicy::new(allow, st.hub_addresses.current()))
}

/// Refuses (422, naming the field) a definition whose URL, host or name server is an address
/// the organization's checks may not reach. Names are judged when a run resolves them.
pub async fn admit(st: &Services, org_id: &str, spec: &CheckSpec) -> ServiceResult<()> {
    policy(st, org_id)
        .await?
        .check_spec(spec)
        .map_err(|e| steward_core::ValidationError::new(e.field, e.message).into())
}

/// Runs a check once now and stores the result; returns it.
pub async fn run_and_store(st: &Services, row: &CheckRow) -> ServiceResult<CheckResult> {
    let spec = spec_of(row)?;
    let timeout = Duration::from_secs(u64::try_from(row.timeout_secs).unwrap_or(10).max(1));
    let policy = policy(st, &row.org_id).await?;
    let at = st.now_ms();
    let result = steward_checks::run(&spec, timeout, &policy).await;
    let mut tx = st.db.begin().await?;
    checks::record(&mut tx, &row.id, &result_row(at, &result), &result.message).await?;
    tx.commit().await?;
    // A server's check going down (or coming back) changes the server's status at once.
    let down = result.status == CheckStatus::Down;
    if row.server_id.is_some() && (row.last_status.as_deref() == Some("down")) != down {
        st.live.invalidate();
    }
    Ok(result)
}

/// Starts the scheduler (none when `check_concurrency` is 0).
pub fn spawn_scheduler(st: Services) -> Option<tokio::task::JoinHandle<()>> {
    let concurrency = st.config.check_concurrency;
    if concurrency == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        tracing::info!(concurrency, "health checks are on");
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
        // Aborting the scheduler drops the set, which aborts the runs in flight.
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.try_join_next().is_some() {}
            start_due(&st, &limit, &mut running).await;
            tokio::time::sleep(TICK).await;
        }
    }))
}

/// Starts the due checks there is room for; returns how many were started.
pub async fn start_due(
    st: &Services,
    limit: &Arc<tokio::sync::Semaphore>,
    running: &mut tokio::task::JoinSet<()>,
) -> usize {
    let room = limit.available_permits();
    if room == 0 {
        return 0;
    }
    let now = st.now_ms();
    let due = match checks::due(&st.db.pool, now, i64::try_from(room).unwrap_or(1)).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "listing due health checks failed");
            return 0;
        }
    };
    let mut started = 0;
    for row in due {
        // The next run counts from now, so a hub that was down does not catch up in a burst.
        let next = now.saturating_add(row.interval_secs.saturating_mul(1000));
        match checks::claim(&st.db.pool, &row.id, row.next_run_at, next).await {
            Ok(true) => {}
            // Another instance took it, or it was edited meanwhile.
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, check = %row.name, "claiming a health check failed");
                continue;
            }
        }
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            break;
        };
        let st = st.clone();
        running.spawn(async move {
            let _permit = permit;
            match run_and_store(&st, &row).await {
                Ok(r) => tracing::debug!(check = %row.name, status = r.status.as_str(), "health check"),
                // Deleted while it ran, most likely.
                Err(e) => tracing::debug!(check = %row.name, error = ?e, "storing a health check result failed"),
            }
        });
        started += 1;
    }
    started
}
