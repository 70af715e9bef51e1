//! Service discovery: scanning a server over its pooled SSH connection with one read-only
//! script ([`script`]), parsing the output on the hub ([`parse`]), storing each scan as
//! history with the proposals it makes ([`diff`]), and re-scanning every server on a schedule.
pub mod diff;
pub mod parse;
pub mod script;

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use serde_json::json;
use steward_db::proposals::{self, ProposalRow};
use steward_db::scans::{self, ScanRow};
use steward_db::servers::{self, ServerRow};
use steward_proto::{ScanError, ScanReport};

use crate::Services;
use crate::audit::Outcome;
use crate::error::ServiceError;
use crate::fleet::{self, Actor};

/// Longest a scan's script may run.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Most output kept from the script.
const OUTPUT_CAP: usize = 4 * 1024 * 1024;

/// Servers being scanned right now (in this process).
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// Holds a server's place in [`RUNNING`] for the length of a scan.
struct Running(String);

impl Running {
    fn claim(server_id: &str) -> Option<Self> {
        let mut set = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(server_id.to_string())
            .then(|| Running(server_id.to_string()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

fn failure(code: &str, message: impl Into<String>) -> ScanError {
    ScanError {
        code: code.into(),
        message: message.into(),
    }
}

/// Connects, runs the script and parses its output.
async fn run_remote(
    st: &Services,
    server: &ServerRow,
    actor: &Actor,
) -> Result<ScanReport, ScanError> {
    let conn = fleet::connect(st, server, actor)
        .await
        .map_err(|e| failure(e.code(), e.to_string()))?;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let command = script::command(&script::script(&nonce));
    let out = match conn.exec(&command, SCRIPT_TIMEOUT).await {
        Ok(out) => out,
        Err(steward_ssh::client::SshError::Timeout(d)) => {
            return Err(failure(
                "timeout",
                format!("the scan did not finish within {} s", d.as_secs()),
            ));
        }
        Err(e) => {
            // A broken pooled connection: the next attempt makes a new one.
            st.ssh.invalidate(&server.id);
            return Err(failure("ssh_error", e.to_string()));
        }
    };
    let mut stdout = out.stdout;
    stdout.truncate(OUTPUT_CAP);
    let text = String::from_utf8_lossy(&stdout);
    if !text.contains(&script::marker(&nonce)) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail: String = stderr.trim().chars().take(300).collect();
        return Err(failure(
            "scan_failed",
            format!(
                "the scan script did not run (exit status {}){}{detail}",
                out.exit_code.map_or("none".to_string(), |c| c.to_string()),
                if detail.is_empty() { "" } else { ": " },
            ),
        ));
    }
    Ok(parse::parse(&text, &nonce))
}

/// Scans a server now and stores the outcome (a failed scan is stored too); returns the row.
/// `Err` only for a scan already running on the server (409) or a store failure.
pub async fn scan(
    st: &Services,
    server: &ServerRow,
    actor: &Actor,
    trigger: &str,
) -> Result<ScanRow, ServiceError> {
    let Some(_running) = Running::claim(&server.id) else {
        return Err(ServiceError::conflict(
            "scan_in_progress",
            "a scan of this server is already running",
        ));
    };
    let mut row = ScanRow {
        id: steward_db::new_id(),
        org_id: server.org_id.clone(),
        server_id: server.id.clone(),
        trigger_kind: trigger.into(),
        actor_id: actor.user_id.clone(),
        started_at: st.now_ms(),
        finished_at: None,
        status: "running".into(),
        error_code: None,
        error_message: None,
        result: None,
    };
    scans::insert(&st.db.pool, &row).await?;

    let outcome = run_remote(st, server, actor).await;
    let now = st.now_ms();
    row.finished_at = Some(now);
    let mut tx = st.db.begin().await?;
    let mut added = 0;
    let details = match &outcome {
        Ok(report) => {
            row.status = "succeeded".into();
            row.result = Some(serde_json::to_string(report).map_err(ServiceError::internal)?);
            for p in diff::proposals(report) {
                let fresh = proposals::insert_new(
                    &mut *tx,
                    &ProposalRow {
                        id: steward_db::new_id(),
                        org_id: server.org_id.clone(),
                        server_id: server.id.clone(),
                        kind: p.kind.into(),
                        service: p.service,
                        dedupe_key: p.key,
                        spec: p.spec.to_string(),
                        status: "proposed".into(),
                        scan_id: Some(row.id.clone()),
                        created_at: now,
                        decided_at: None,
                        decided_by: None,
                    },
                )
                .await?;
                added += usize::from(fresh);
            }
            json!({
                "trigger": trigger,
                "scan_id": row.id,
                "services": report.services.iter().map(|s| &s.kind).collect::<Vec<_>>(),
                "proposals_added": added,
            })
        }
        Err(e) => {
            row.status = "failed".into();
            row.error_code = Some(e.code.clone());
            row.error_message = Some(e.message.clone());
            json!({ "trigger": trigger, "scan_id": row.id, "error": e.code })
        }
    };
    scans::finish(
        &mut *tx,
        &row.id,
        now,
        &row.status,
        row.error_code.as_deref().zip(row.error_message.as_deref()),
        row.result.as_deref(),
    )
    .await?;
    actor
        .event("server.scan", now)
        .target("server", &server.id, &server.name)
        .outcome(if outcome.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        })
        .details(details)
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    if let Err(e) = scans::prune(&st.db.pool, &server.id).await {
        tracing::warn!(error = %e, server = %server.name, "pruning old scans failed");
    }
    Ok(row)
}

/// How often the scheduler looks for servers due for a scan.
const CHECK_EVERY: Duration = Duration::from_secs(600);
/// Scans still `running` after this long were interrupted (Steward stopped).
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);

/// Starts the scheduled re-scan of every server with a credential that has not been scanned
/// for `scan_interval` (none when the interval is off).
pub fn spawn_scheduler(st: Services) -> Option<tokio::task::JoinHandle<()>> {
    let interval = st.config.scan_interval?;
    Some(tokio::spawn(async move {
        tracing::info!(
            every_hours = interval.as_secs() / 3600,
            "scheduled scans are on"
        );
        // Let startup settle first.
        tokio::time::sleep(st.config.scan_first_delay).await;
        loop {
            run_due(&st, interval).await;
            tokio::time::sleep(CHECK_EVERY.min(interval)).await;
        }
    }))
}

/// Scans every server due, a few at a time; returns how many were scanned.
pub async fn run_due(st: &Services, interval: Duration) -> usize {
    let now = st.now_ms();
    if let Err(e) =
        scans::fail_abandoned(&st.db.pool, now - ABANDONED_AFTER.as_millis() as i64, now).await
    {
        tracing::warn!(error = %e, "marking interrupted scans failed");
    }
    let due = match scans::due(&st.db.pool, now - interval.as_millis() as i64).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "listing servers due for a scan failed");
            return 0;
        }
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(
        st.config.scan_concurrency.max(1),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (org_id, id) in due {
        let st = st.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let Ok(_permit) = limit.acquire().await else {
                return false;
            };
            let server = match servers::get(&st.db.pool, &org_id, &id).await {
                Ok(Some(s)) => s,
                _ => return false,
            };
            match scan(&st, &server, &Actor::system(), "schedule").await {
                Ok(row) => {
                    tracing::info!(server = %server.name, status = %row.status, error = ?row.error_code, "scheduled scan");
                    true
                }
                Err(e) => {
                    tracing::debug!(server = %server.name, error = ?e, "scheduled scan skipped");
                    false
                }
            }
        });
    }
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        done += usize::from(r.unwrap_or(false));
    }
    done
}

/// Dismisses a proposal: it is kept (so a re-scan does not propose it again) but set aside.
/// Needs `servers.write` on its server; a proposal of a server the caller cannot see is not
/// found. Dismissing a dismissed one changes nothing.
pub async fn dismiss_proposal(
    st: &Services,
    p: &crate::principal::Principal,
    id: &str,
) -> Result<ProposalRow, ServiceError> {
    let row = proposals::get(&st.db.pool, &p.user.org_id, id)
        .await?
        .ok_or_else(|| ServiceError::not_found("proposal"))?;
    let server = crate::fleet::visible_server(st, p, &row.server_id)
        .await
        .map_err(|_| ServiceError::not_found("proposal"))?;
    p.require_on_server(steward_core::Permission::ServersWrite, &server.tags)?;
    if row.status == "dismissed" {
        return Ok(row);
    }
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    proposals::decide(&mut *tx, &row.id, "dismissed", now, Some(&p.user.id)).await?;
    crate::audit::Event::by(p, "proposal.dismiss", now)
        .target("server", &server.id, &server.name)
        .details(json!({ "proposal_id": row.id, "kind": row.kind, "service": row.service }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ProposalRow {
        status: "dismissed".into(),
        decided_at: Some(now),
        decided_by: Some(p.user.id.clone()),
        ..row
    })
}
