//! Storing a run as it starts, in one transaction with its audit event: the run and its hosts
//! (pending), its secret parameter values sealed in the vault for as long as it goes (the
//! runner forgets the sealed copies when it ends), and the script version its user has now
//! reviewed by running it.
use std::collections::BTreeMap;

use steward_db::executions::{self, ExecutionRow};

use crate::Services;
use crate::audit::Event;
use crate::error::{ServiceError, ServiceResult};

/// A run about to start.
pub struct NewRun<'a> {
    pub row: &'a ExecutionRow,
    /// Each target server's id and name.
    pub hosts: &'a [(String, String)],
    /// The secret parameters' names and (non-empty) values.
    pub secrets: &'a [(&'a str, &'a str)],
    /// Who reviewed which script version by running it: the user, the script and its
    /// version, for a stored script.
    pub reviewed: Option<(&'a str, &'a str, i64)>,
}

/// Stores `run` and writes `event`, together.
pub async fn record_start(st: &Services, run: NewRun<'_>, event: Event) -> ServiceResult<()> {
    let now = run.row.created_at;
    let mut tx = st.db.begin().await?;
    executions::insert(&mut tx, run.row, run.hosts).await?;
    let mut sealed = BTreeMap::new();
    for (name, value) in run.secrets {
        let id = crate::bootstrap::store_secret(
            &mut *tx,
            &st.vault,
            "script_parameter",
            value.as_bytes(),
            now,
        )
        .await
        .map_err(ServiceError::internal)?;
        sealed.insert(name.to_string(), id);
    }
    if !sealed.is_empty() {
        executions::set_secret_parameters(
            &mut *tx,
            &run.row.id,
            &serde_json::to_string(&sealed).map_err(ServiceError::internal)?,
        )
        .await?;
    }
    if let Some((user_id, script_id, version)) = run.reviewed {
        steward_db::scripts::record_review(&mut *tx, user_id, script_id, version, now).await?;
    }
    event.write(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
