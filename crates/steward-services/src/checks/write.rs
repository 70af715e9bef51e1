//! Changing checks: a definition checked ([`parse_input`]), a new check stored with its audit
//! event (also for an accepted proposal, [`insert`]), a definition replaced ([`update`]) and a
//! check deleted ([`delete`]). The caller has loaded the check and the servers and decided
//! that the principal may change them.
use serde_json::json;
use steward_core::ValidationError;
use steward_core::validate::Name;
use steward_db::checks::{self, CheckRow};
use steward_db::proposals::{self, ProposalRow};
use steward_db::servers::ServerRow;
use steward_proto::{CheckInput, CheckSpec};

use super::admit;
use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

/// Interval bounds (seconds).
const INTERVAL: (u32, u32) = (10, 86_400);
/// Timeout bounds (seconds).
const TIMEOUT: (u32, u32) = (1, 60);

/// A validated definition.
pub struct Definition {
    pub name: String,
    pub spec: CheckSpec,
    pub interval_secs: i64,
    pub timeout_secs: i64,
    pub enabled: bool,
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> ServiceError {
    ValidationError::new(field, why).into()
}

/// Checks a definition (422 naming the field) and returns it as it is stored (trimmed).
pub fn parse_input(req: &CheckInput) -> ServiceResult<Definition> {
    let name = Name::parse(&req.name)?.into_inner();
    steward_checks::validate(&req.spec).map_err(|e| invalid(e.field, e.message))?;
    let interval = req.interval_secs.unwrap_or(60);
    if !(INTERVAL.0..=INTERVAL.1).contains(&interval) {
        return Err(invalid(
            "interval_secs",
            format!("must be {} to {} seconds", INTERVAL.0, INTERVAL.1),
        ));
    }
    let timeout = req.timeout_secs.unwrap_or(10.min(interval - 1));
    if !(TIMEOUT.0..=TIMEOUT.1).contains(&timeout) || timeout >= interval {
        return Err(invalid(
            "timeout_secs",
            format!(
                "must be {} to {} seconds and shorter than the interval",
                TIMEOUT.0, TIMEOUT.1
            ),
        ));
    }
    let mut spec = req.spec.clone();
    // Stored trimmed, as checked.
    match &mut spec {
        CheckSpec::Http(h) => h.url = h.url.trim().to_string(),
        CheckSpec::Tcp(t) => t.host = t.host.trim().to_string(),
        CheckSpec::Dns(d) => {
            d.name = d.name.trim().to_string();
            d.resolver = d.resolver.as_ref().map(|r| r.trim().to_string());
        }
    }
    Ok(Definition {
        name,
        spec,
        interval_secs: i64::from(interval),
        timeout_secs: i64::from(timeout),
        enabled: req.enabled.unwrap_or(true),
    })
}

/// The stored form of a definition.
pub fn spec_json(spec: &CheckSpec) -> ServiceResult<String> {
    serde_json::to_string(spec).map_err(ServiceError::internal)
}

/// 409 `proposal_accepted`.
pub fn accepted_already() -> ServiceError {
    ServiceError::conflict("proposal_accepted", "this proposal was already accepted")
}

/// Stores a new check and its audit event (and marks `proposal` accepted, 409
/// `proposal_accepted` if someone else did meanwhile); returns it as stored.
pub async fn insert(
    st: &Services,
    p: &Principal,
    def: Definition,
    server: Option<&ServerRow>,
    proposal: Option<&ProposalRow>,
) -> ServiceResult<CheckRow> {
    admit(st, &p.user.org_id, &def.spec).await?;
    let now = st.now_ms();
    let row = CheckRow {
        id: steward_db::new_id(),
        org_id: p.user.org_id.clone(),
        server_id: server.map(|s| s.id.clone()),
        name: def.name,
        kind: def.spec.kind().into(),
        spec: spec_json(&def.spec)?,
        interval_secs: def.interval_secs,
        timeout_secs: def.timeout_secs,
        enabled: i64::from(def.enabled),
        proposal_id: proposal.map(|pr| pr.id.clone()),
        created_by: Some(p.user.id.clone()),
        created_at: now,
        updated_at: now,
        next_run_at: now,
        last_at: None,
        last_status: None,
        last_latency_ms: None,
        last_message: None,
        last_http_status: None,
        last_cert_days: None,
        server_name: server.map(|s| s.name.clone()),
    };
    let mut tx = st.db.begin().await?;
    checks::insert(&mut *tx, &row).await?;
    if let Some(pr) = proposal
        && !proposals::accept(&mut *tx, &pr.id, now, &p.user.id).await?
    {
        // Accepted by someone else meanwhile: dropping the transaction drops the check.
        return Err(accepted_already());
    }
    Event::by(p, "check.create", now)
        .target("check", &row.id, &row.name)
        .details(json!({
            "kind": row.kind,
            "spec": def.spec,
            "server_id": row.server_id,
            "interval_secs": row.interval_secs,
            "timeout_secs": row.timeout_secs,
            "enabled": def.enabled,
            "proposal_id": row.proposal_id,
        }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces the definition of `old` (to belong to `server` now) with its audit event naming
/// what changed; returns it as stored.
pub async fn update(
    st: &Services,
    p: &Principal,
    old: CheckRow,
    def: Definition,
    server: Option<&ServerRow>,
) -> ServiceResult<CheckRow> {
    admit(st, &p.user.org_id, &def.spec).await?;
    let now = st.now_ms();
    let spec = spec_json(&def.spec)?;
    let old_spec: serde_json::Value = serde_json::from_str(&old.spec).unwrap_or_default();
    let mut changes = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
        if from != to {
            changes.insert(field.into(), json!({ "from": from, "to": to }));
        }
    };
    note("name", json!(old.name), json!(def.name));
    note(
        "server_id",
        json!(old.server_id),
        json!(server.map(|s| &s.id)),
    );
    note(
        "spec",
        old_spec,
        serde_json::to_value(&def.spec).map_err(ServiceError::internal)?,
    );
    note(
        "interval_secs",
        json!(old.interval_secs),
        json!(def.interval_secs),
    );
    note(
        "timeout_secs",
        json!(old.timeout_secs),
        json!(def.timeout_secs),
    );
    note("enabled", json!(old.enabled != 0), json!(def.enabled));
    let row = CheckRow {
        server_id: server.map(|s| s.id.clone()),
        server_name: server.map(|s| s.name.clone()),
        name: def.name,
        kind: def.spec.kind().into(),
        spec,
        interval_secs: def.interval_secs,
        timeout_secs: def.timeout_secs,
        enabled: i64::from(def.enabled),
        updated_at: now,
        next_run_at: now,
        ..old
    };
    let mut tx = st.db.begin().await?;
    checks::update(&mut *tx, &row).await?;
    Event::by(p, "check.update", now)
        .target("check", &row.id, &row.name)
        .details(json!({ "changes": changes }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    // Enabling, disabling or moving a check can change a server's status.
    st.live.invalidate();
    Ok(row)
}

/// Deletes a check and its results, with its audit event.
pub async fn delete(st: &Services, p: &Principal, old: &CheckRow) -> ServiceResult<()> {
    let now = st.now_ms();
    let mut tx = st.db.begin().await?;
    checks::delete(&mut *tx, &old.id).await?;
    Event::by(p, "check.delete", now)
        .target("check", &old.id, &old.name)
        .details(json!({ "kind": old.kind, "server_id": old.server_id }))
        .write(&mut *tx)
        .await?;
    tx.commit().await?;
    st.live.invalidate();
    Ok(())
}
