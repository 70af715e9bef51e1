//! The install flow: the hub's build for the server's architecture, the SFTP uploads into the
//! probe's private temporary directory, a new token, the install script, the wait for the agent
//! to connect, the temporary directory removed whatever happened, and the `agent.install`
//! audit event with the outcome.
use serde_json::json;
use steward_db::agents;
use steward_db::servers::ServerRow;
use steward_proto::{AgentInstallResult, AgentInstallWarning, AgentServiceKind};
use zeroize::Zeroizing;

use super::enrollment::{AgentConnections, info, new_token, wait_connected};
use super::flow::{
    Failure, audit, connect_and_probe, mode_name, run_or_fail, service_name, warning,
};
use super::progress::{Progress, Steps};
use super::{
    Busy, HubBinary, Probe, arch_list, binary_for, hub_binaries, install_script, step, system_unit,
    user_unit,
};
use crate::principal::Principal;
use crate::runner::shell_quote;
use crate::{ServiceError, Services};

/// Installs the agent on the server over its SSH connection: uploads the hub's binary by SFTP,
/// enrolls a new token (any previous one stops working) written to a 0600 file, installs a
/// systemd unit (system or user) or, without systemd, starts it detached, and waits briefly
/// for it to connect. Audited as `agent.install` with the outcome. Each step is sent to
/// `progress` (if given) as it ends; a failure carries the steps so far.
///
/// The caller has checked `servers.write` on the server and the step-up, and holds the
/// server's claim (`busy`, released when the install ends).
pub async fn install(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    busy: Busy,
    progress: Option<Progress>,
) -> Result<AgentInstallResult, Failure> {
    let _busy = busy;
    let mut steps = Steps::reporting_to(progress);
    let mut probe = None;
    let result = run_install(st, agents, p, server, &mut steps, &mut probe).await;
    let extra = json!({
        "mode": probe.as_ref().map(|p| mode_name(p.mode())),
        "service": probe.as_ref().map(|p| service_name(p.service())),
    });
    audit(
        st,
        p,
        server,
        "agent.install",
        result,
        |(r, replaced)| {
            json!({
                "mode": mode_name(r.mode),
                "service": service_name(r.service),
                "binary_path": r.binary_path,
                "replaced": replaced,
                "connected": r.agent.connected,
                "steps": r.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
                "warnings": r.warnings.len(),
            })
        },
        extra,
    )
    .await
    .map(|(r, _)| r)
}

/// The install itself, up to the result and whether it replaced a token; the caller audits.
async fn run_install(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    steps: &mut Steps,
    probe_out: &mut Option<Probe>,
) -> Result<(AgentInstallResult, bool), Failure> {
    let bins = hub_binaries(st.config.agent_binary.as_deref())
        .await
        .map_err(|e| Failure::from(ServiceError::internal(e)))?;
    if bins.is_empty() {
        return Err(Failure::with(
            ServiceError::conflict(
                "agent_binary_missing",
                "this hub has no steward-agent binary to hand out (see --agent-binary)",
            ),
            &[],
        ));
    }
    let (conn, probe) = connect_and_probe(st, p, server, true, steps).await?;
    *probe_out = Some(probe.clone());
    let tmp = probe.tmp.clone();
    let result = install_on(st, agents, p, server, &conn, &probe, &bins, steps).await;
    // The temporary directory (binary, token copy, unit) goes whatever happened.
    if let Some(tmp) = tmp {
        let rm = format!("rm -rf {}", shell_quote(&tmp));
        match conn.exec(&rm, std::time::Duration::from_secs(30)).await {
            Ok(o) if o.exit_code == Some(0) => {
                steps.push(step("cleanup", true, format!("removed {tmp}")))
            }
            Ok(o) => steps.push(step(
                "cleanup",
                false,
                format!(
                    "could not remove {tmp}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            )),
            Err(e) => steps.push(step(
                "cleanup",
                false,
                format!("could not remove {tmp}: {e}"),
            )),
        }
    }
    match result {
        Ok((mut result, replaced)) => {
            result.steps = steps.to_vec();
            Ok((result, replaced))
        }
        Err(mut f) => {
            // The failure's steps, with the cleanup after it.
            f.steps = steps.to_vec();
            Err(f)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn install_on(
    st: &Services,
    agents: &dyn AgentConnections,
    p: &Principal,
    server: &ServerRow,
    conn: &steward_ssh::client::Connection,
    probe: &Probe,
    bins: &[HubBinary],
    steps: &mut Steps,
) -> Result<(AgentInstallResult, bool), Failure> {
    let available = arch_list(bins);
    let Some(chosen) = binary_for(bins, &probe.arch) else {
        steps.push(step(
            "architecture",
            false,
            format!(
                "the server is {}, the hub has agents for {available}",
                probe.arch
            ),
        ));
        return Err(Failure::with(
            ServiceError::conflict(
                "wrong_architecture",
                format!(
                    "the server is {} but the hub has steward-agent builds for {available} only; add a build for {} to --agent-binary (a directory may hold one per architecture)",
                    probe.arch, probe.arch
                ),
            ),
            steps,
        ));
    };
    let binary = match tokio::fs::read(&chosen.path).await {
        Ok(b) => b,
        Err(e) => return Err(Failure::with(ServiceError::internal(e), steps)),
    };
    let binary = binary.as_slice();
    steps.push(step(
        "architecture",
        true,
        format!(
            "{} runs the hub's {} build ({})",
            probe.arch,
            chosen.arch,
            chosen.path.display()
        ),
    ));
    let Some(tmp) = probe.tmp.clone() else {
        steps.push(step(
            "upload",
            false,
            "could not make a private temporary directory (mktemp -d)",
        ));
        return Err(Failure::with(
            ServiceError::unreachable(
                "upload_failed",
                "could not make a private temporary directory on the server",
            ),
            steps,
        ));
    };
    let hub = st.config.public_url.trim_end_matches('/').to_string();
    let interval = server.metrics_interval_secs.clamp(1, 60);
    let unit = match probe.service() {
        AgentServiceKind::Systemd => system_unit(&hub, interval),
        _ => user_unit(&hub, interval),
    };
    let upload = async {
        conn.upload(&format!("{tmp}/steward-agent"), binary, 0o700)
            .await?;
        conn.upload(
            &format!("{tmp}/steward-agent.service"),
            unit.as_bytes(),
            0o600,
        )
        .await
    };
    if let Err(e) = upload.await {
        steps.push(step("upload", false, e.to_string()));
        return Err(Failure::with(
            ServiceError::unreachable("upload_failed", format!("uploading the agent failed: {e}")),
            steps,
        ));
    }
    steps.push(step(
        "upload",
        true,
        format!("{} bytes by SFTP to {tmp}", binary.len()),
    ));

    // From here on the server's old token no longer works.
    let (token, replaced) = new_token(st, agents, p, server, "install")
        .await
        .map_err(|e| Failure::with(e, steps))?;
    steps.push(step(
        "enroll",
        true,
        if replaced {
            "new token; the previous one no longer works"
        } else {
            "new token"
        },
    ));
    let mut line = Zeroizing::new(String::with_capacity(token.len() + 1));
    line.push_str(&token);
    line.push('\n');
    drop(token);
    if let Err(e) = conn
        .upload(&format!("{tmp}/token"), line.as_bytes(), 0o600)
        .await
    {
        steps.push(step("token", false, e.to_string()));
        return Err(Failure::with(
            ServiceError::unreachable("upload_failed", format!("writing the token failed: {e}")),
            steps,
        ));
    }
    drop(line);
    steps.push(step("token", true, "written by SFTP, mode 0600"));

    let script = install_script(probe, &tmp, &hub, interval);
    let out = run_or_fail(conn, &script, "install", "install_failed", "install", steps).await?;
    if out.failed() {
        let failed = out.steps.iter().find(|s| !s.ok);
        let detail = match failed {
            Some(s) => format!("{}: {}", s.name, s.detail),
            None => format!("exit {:?}: {}", out.exit, out.stderr.trim()),
        };
        if failed.is_none() {
            steps.push(step("install", false, detail.clone()));
        }
        let no_permission = detail.contains("ermission denied") || detail.contains("not permitted");
        return Err(Failure::with(
            ServiceError::unreachable(
                if no_permission {
                    "no_permission"
                } else {
                    "install_failed"
                },
                format!("installing the agent failed at {detail}"),
            ),
            steps,
        ));
    }
    let mut warnings: Vec<AgentInstallWarning> =
        out.warnings.iter().map(|w| warning(w, probe)).collect();
    if wait_connected(st, agents, &server.id, 10).await {
        steps.push(step(
            "connected",
            true,
            format!("the agent connected to {hub}"),
        ));
    } else {
        warnings.push(AgentInstallWarning {
            code: "not_connected".into(),
            message: format!(
                "The agent runs but has not connected yet: check that the server can reach {hub}."
            ),
        });
    }
    let row = agents::get(&st.db.pool, &server.id)
        .await
        .map_err(|e| Failure::with(e, steps))?;
    Ok((
        AgentInstallResult {
            mode: probe.mode(),
            service: probe.service(),
            binary_path: probe.binary_path(),
            hub_url: hub.clone(),
            steps: vec![],
            warnings,
            agent: info(
                "agent",
                row,
                agents.is_connected(&server.id),
                st.now_ms(),
                agents.silent_for(),
            ),
        },
        replaced,
    ))
}
