//! The uninstall flow: the uninstall script (stops the agent, removes its binary, token, unit
//! and logs), then the token revoked and agentless collection again, audited as
//! `agent.uninstall` with the outcome. Nothing is revoked unless the files are gone.
use serde_json::json;
use steward_db::agents;
use steward_db::servers::ServerRow;
use steward_proto::AgentUninstallResult;

use super::enrollment::{AgentConnections, info, revoke};
use super::flow::{Failure, audit, connect_and_probe, run_or_fail};
use super::progress::{Progress, Steps};
use super::{Busy, step, uninstall_script};
use crate::principal::Principal;
use crate::{ServiceError, Services};

/// Uninstalls the agent over SSH: stops it (system unit, user unit or detached process),
/// removes its files, then revokes its token (as [`revoke`] does, `via` the uninstall) and
/// goes back to agentless collection. Nothing is revoked if the server cannot be reached or
/// the files cannot all be removed; a failure carries the steps so far. Each step is sent to
/// `progress` (if given) as it ends. Audited as `agent.uninstall` with the outcome.
///
/// The caller has checked `servers.write` on the server and the step-up, and holds the
/// server's claim (`busy`, released when the uninstall ends).
pub async fn uninstall(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    busy: Busy,
    progress: Option<Progress>,
) -> Result<AgentUninstallResult, Failure> {
    let _busy = busy;
    let mut steps = Steps::reporting_to(progress);
    let result = run_uninstall(st, agents, p, server, &mut steps).await;
    audit(
        st,
        p,
        server,
        "agent.uninstall",
        result,
        |r| json!({ "steps": r.steps.iter().map(|s| &s.name).collect::<Vec<_>>() }),
        json!({}),
    )
    .await
}

async fn run_uninstall(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    steps: &mut Steps,
) -> Result<AgentUninstallResult, Failure> {
    let (conn, probe) = connect_and_probe(st, p, server, false, steps).await?;
    let script = uninstall_script(&probe);
    let out = run_or_fail(
        &conn,
        &script,
        "remove",
        "uninstall_failed",
        "uninstall",
        steps,
    )
    .await?;
    if out.failed() {
        if out.exit == Some(3) {
            return Err(Failure::with(
                ServiceError::conflict(
                    "no_permission",
                    "the agent was installed system-wide, and this login has neither root nor passwordless sudo to remove it; its token was not revoked",
                ),
                steps,
            ));
        }
        if out.steps.iter().all(|s| s.ok) {
            steps.push(step(
                "remove",
                false,
                format!("exit {:?}: {}", out.exit, out.stderr.trim()),
            ));
        }
        return Err(Failure::with(
            ServiceError::unreachable(
                "uninstall_failed",
                "uninstalling the agent failed; its token was not revoked",
            ),
            steps,
        ));
    }
    // Revoke, as DELETE …/agent does.
    let revoked = revoke(st, agents, p, server, Some(json!({ "via": "uninstall" })))
        .await
        .map_err(|e| Failure::with(e, steps))?;
    steps.push(step(
        "revoke",
        true,
        if revoked {
            "token revoked; metrics are collected agentless again"
        } else {
            "no token was enrolled"
        },
    ));
    let row = agents::get(&st.db.pool, &server.id)
        .await
        .map_err(|e| Failure::with(e, steps))?;
    let monitoring = if revoked {
        "agentless"
    } else {
        server.monitoring.as_str()
    };
    Ok(AgentUninstallResult {
        steps: steps.to_vec(),
        warnings: vec![],
        agent: info(monitoring, row, false, st.now_ms(), agents.silent_for()),
    })
}
