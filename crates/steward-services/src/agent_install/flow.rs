//! What the install and uninstall flows share: the per-server claim, [`Failure`] (the error
//! with the steps so far), connecting and probing, running a script, and the words the audit
//! log and the warnings use.
use serde_json::json;
use steward_core::Permission;
use steward_db::servers::ServerRow;
use steward_proto::{AgentInstallMode, AgentInstallStep, AgentInstallWarning, AgentServiceKind};

use super::progress::Steps;
use super::{Busy, Probe, ScriptOutput, probe_script, run_script, run_script_live, step};
use crate::audit::{Event, Outcome};
use crate::fleet::{self, Actor, ReachError};
use crate::principal::Principal;
use crate::{ServiceError, Services};

/// Claims the server for an install or uninstall: 409 `agent_busy` when one is already
/// running on it. The claim ends when the returned guard is dropped.
pub fn claim(server_id: &str) -> Result<Busy, ServiceError> {
    Busy::claim(server_id).ok_or_else(|| {
        ServiceError::conflict(
            "agent_busy",
            "an install or uninstall is already running on this server",
        )
    })
}

/// A failed install or uninstall: why, and the steps so far (which a caller shows with the
/// error, unless it is a fault).
#[derive(Debug)]
pub struct Failure {
    pub error: ServiceError,
    pub steps: Vec<AgentInstallStep>,
}

impl Failure {
    /// `error`, with the steps so far.
    pub(super) fn with(error: impl Into<ServiceError>, steps: &[AgentInstallStep]) -> Self {
        Self {
            error: error.into(),
            steps: steps.to_vec(),
        }
    }

    /// The error's stable code, as the API answers it (and the audit log records it).
    pub fn code(&self) -> &'static str {
        match &self.error {
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::Validation(_) => "validation_failed",
            ServiceError::Internal(_) => "internal_error",
            ServiceError::Conflict { code, .. }
            | ServiceError::Forbidden { code, .. }
            | ServiceError::Invalid { code, .. }
            | ServiceError::Unreachable { code, .. }
            | ServiceError::Busy { code, .. } => code,
        }
    }

    /// The name of the step that failed, if one did.
    pub(super) fn failed_step(&self) -> Option<String> {
        self.steps.iter().find(|s| !s.ok).map(|s| s.name.clone())
    }
}

/// A fault that is not about the steps (the audit log could not be written …).
impl From<ServiceError> for Failure {
    fn from(error: ServiceError) -> Self {
        Self {
            error,
            steps: Vec::new(),
        }
    }
}

/// The failure for a server that cannot be reached.
fn reach_failure(e: &ReachError, steps: &[AgentInstallStep]) -> Failure {
    let message = e.to_string();
    let error = match e.code() {
        "no_credential" => ServiceError::conflict("no_credential", message),
        "host_key_mismatch" => ServiceError::conflict("host_key_mismatch", message),
        "bad_credential" => ServiceError::conflict("bad_credential", message),
        "auth_failed" => ServiceError::unreachable("auth_failed", message),
        "unreachable" => ServiceError::unreachable("unreachable", message),
        "timeout" => ServiceError::unreachable("timeout", message),
        _ => ServiceError::unreachable("ssh_error", message),
    };
    Failure::with(error, steps)
}

/// Connects to the server (for a `servers.write` action of the user) and probes it; with
/// `make_tmp` the probe also makes the private temporary directory.
pub(super) async fn connect_and_probe(
    st: &Services,
    p: &Principal,
    server: &ServerRow,
    make_tmp: bool,
    steps: &mut Steps,
) -> Result<(steward_ssh::pool::Shared, Probe), Failure> {
    let target = format!("{}@{}:{}", server.ssh_user, server.host, server.port);
    let conn = match fleet::connect(st, server, &Actor::user(p, Permission::ServersWrite)).await {
        Ok(c) => c,
        Err(ReachError::Internal(e)) => return Err(Failure::with(e, steps)),
        Err(e) => {
            steps.push(step("connect", false, format!("{target}: {e}")));
            return Err(reach_failure(&e, steps));
        }
    };
    steps.push(step("connect", true, target));
    let out = run_script(&conn, &probe_script(make_tmp)).await;
    let probe = out.as_ref().ok().and_then(Probe::from);
    let Some(probe) = probe else {
        let detail = match out {
            Ok(o) => format!("unexpected answer (exit {:?}): {}", o.exit, o.stderr.trim()),
            Err(e) => e,
        };
        steps.push(step("probe", false, detail.clone()));
        return Err(Failure::with(
            ServiceError::unreachable(
                "probe_failed",
                format!("could not find out what the server is: {detail}"),
            ),
            steps,
        ));
    };
    steps.push(step("probe", true, probe.summary()));
    Ok((conn, probe))
}

/// Runs an install or uninstall script; a script that could not run at all is a failed
/// `name` step and a failure `code` (502 in the API).
pub(super) async fn run_or_fail(
    conn: &steward_ssh::client::Connection,
    script: &str,
    name: &str,
    code: &'static str,
    what: &str,
    steps: &mut Steps,
) -> Result<ScriptOutput, Failure> {
    // The script's steps join `steps` (and any progress channel) as it prints them.
    match run_script_live(conn, script, |s| steps.push(s)).await {
        Ok(o) => Ok(o),
        Err(e) => {
            steps.push(step(name, false, e.clone()));
            Err(Failure::with(
                ServiceError::unreachable(code, format!("the {what} script failed: {e}")),
                steps,
            ))
        }
    }
}

/// Audits `action` on the server: `details` on success; on failure, the failure's code and
/// failed step with `extra`. The caller's failure is returned unless the audit itself fails.
pub(super) async fn audit<T>(
    st: &Services,
    p: &Principal,
    server: &ServerRow,
    action: &str,
    result: Result<T, Failure>,
    details: impl FnOnce(&T) -> serde_json::Value,
    extra: serde_json::Value,
) -> Result<T, Failure> {
    let event = Event::by(p, action, st.now_ms()).target("server", &server.id, &server.name);
    match result {
        Ok(r) => {
            event.details(details(&r)).write(&st.db.pool).await?;
            Ok(r)
        }
        Err(f) => {
            let mut d = json!({ "code": f.code(), "failed_step": f.failed_step() });
            if let (Some(d), serde_json::Value::Object(extra)) = (d.as_object_mut(), extra) {
                d.extend(extra);
            }
            event
                .outcome(Outcome::Failure)
                .details(d)
                .write(&st.db.pool)
                .await?;
            Err(f)
        }
    }
}

/// A warning the scripts printed (by code), with its English text.
pub(super) fn warning(code: &str, probe: &Probe) -> AgentInstallWarning {
    AgentInstallWarning {
        code: code.into(),
        message: warning_text(code, probe),
    }
}

fn warning_text(code: &str, probe: &Probe) -> String {
    match code {
        "no_boot_start" => "No systemd and no cron on this server: a detached launcher runs the agent and starts it again when it exits, but nothing starts it after a reboot. Install it again after a reboot, or have the server's own init system run the launcher (`start`, next to the token).".into(),
        "runs_as_root" => "Without systemd the agent runs as root; with systemd it would run as the unprivileged steward-agent account.".into(),
        "no_linger" => format!("Lingering could not be enabled for {}: the user service stops when their last session ends and does not start at boot until an administrator runs `loginctl enable-linger {}`.", probe.user, probe.user),
        other => other.to_string(),
    }
}

/// The audit log's name of an install mode.
pub(super) fn mode_name(m: AgentInstallMode) -> &'static str {
    match m {
        AgentInstallMode::System => "system",
        AgentInstallMode::User => "user",
    }
}

/// The audit log's name of a service kind.
pub(super) fn service_name(s: AgentServiceKind) -> &'static str {
    match s {
        AgentServiceKind::Systemd => "systemd",
        AgentServiceKind::SystemdUser => "systemd-user",
        AgentServiceKind::Detached => "detached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_their_steps_and_name_the_failed_one() {
        let steps = [step("connect", true, "x"), step("probe", false, "y")];
        let f = Failure::with(ServiceError::unreachable("probe_failed", "no"), &steps);
        assert_eq!(f.code(), "probe_failed");
        assert_eq!(f.failed_step().as_deref(), Some("probe"));
        assert!(matches!(f.error, ServiceError::Unreachable { .. }));
        let f = Failure::with(
            ServiceError::conflict("wrong_architecture", "no"),
            &steps[..1],
        );
        assert_eq!(f.code(), "wrong_architecture");
        assert_eq!(f.failed_step(), None);
        let f = Failure::from(ServiceError::internal(std::io::Error::other("disk")));
        assert_eq!(f.code(), "internal_error");
        assert!(f.steps.is_empty());
    }

    #[test]
    fn reach_errors_keep_their_codes() {
        let f = reach_failure(&ReachError::NoCredential, &[]);
        assert!(matches!(
            f.error,
            ServiceError::Conflict {
                code: "no_credential",
                ..
            }
        ));
        let f = reach_failure(&ReachError::AuthFailed("root".into()), &[]);
        assert!(matches!(
            f.error,
            ServiceError::Unreachable {
                code: "auth_failed",
                ..
            }
        ));
        let f = reach_failure(&ReachError::EndpointUnconfirmed, &[]);
        assert!(matches!(
            f.error,
            ServiceError::Unreachable {
                code: "ssh_error",
                ..
            }
        ));
    }
}
