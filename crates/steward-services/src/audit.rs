//! Recording audit events. Services and handlers build an [`Event`] and write it, ideally in the same
//! transaction as the change it describes, so a change is never stored without its record.
use serde_json::{Value, json};
use steward_db::audit::AuditRow;
use steward_db::{Any, Executor};

use crate::error::ServiceResult;
use crate::principal::{AuthMethod, ClientInfo, Principal};

/// The result of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An audit event being built.
#[derive(Debug, Clone)]
pub struct Event {
    row: AuditRow,
}

impl Event {
    /// A successful `action` (`server.create`) by nobody yet, from `client`.
    pub fn new(action: &str, client: &ClientInfo, at: i64) -> Self {
        Self {
            row: AuditRow {
                id: steward_db::new_id(),
                org_id: steward_core::DEFAULT_ORG_ID.to_string(),
                at,
                actor_id: None,
                actor_name: None,
                source_ip: client.ip.map(|i| i.to_string()),
                action: action.to_string(),
                target_type: None,
                target_id: None,
                target_name: None,
                outcome: Outcome::Success.as_str().to_string(),
                details: "{}".to_string(),
                request_id: client.request_id.clone(),
            },
        }
    }

    /// The same, acted by `principal` (who is also the source of the client facts).
    pub fn by(principal: &Principal, action: &str, at: i64) -> Self {
        let mut e = Self::new(action, &principal.client, at);
        e.row.org_id = principal.user.org_id.clone();
        e.row.actor_id = Some(principal.user.id.clone());
        e.row.actor_name = Some(principal.user.username.clone());
        if let AuthMethod::ApiToken { token_id } = &principal.method {
            e = e.details(json!({ "api_token": token_id }));
        }
        e
    }

    /// Sets the actor.
    pub fn actor(mut self, id: Option<&str>, name: &str) -> Self {
        self.row.actor_id = id.map(str::to_string);
        self.row.actor_name = Some(name.to_string());
        self
    }

    /// Sets what was acted on.
    pub fn target(mut self, kind: &str, id: &str, name: &str) -> Self {
        self.row.target_type = Some(kind.to_string());
        self.row.target_id = Some(id.to_string());
        self.row.target_name = Some(name.to_string());
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.row.outcome = outcome.as_str().to_string();
        self
    }

    /// Merges facts into the details object. Never put secrets here.
    pub fn details(mut self, extra: Value) -> Self {
        let mut current: Value =
            serde_json::from_str(&self.row.details).unwrap_or_else(|_| json!({}));
        if let (Some(obj), Value::Object(more)) = (current.as_object_mut(), extra) {
            obj.extend(more);
        }
        self.row.details = current.to_string();
        self
    }

    /// Writes the event.
    pub async fn write<'e>(self, ex: impl Executor<'e, Database = Any>) -> ServiceResult<()> {
        steward_db::audit::insert(ex, &self.row).await?;
        Ok(())
    }
}
