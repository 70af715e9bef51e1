//! `steward vault …`: master-key rotation. Rotation works while servers run: they reload the
//! keyring file when it changes, and old keys stay readable until every secret is re-sealed.
use steward_api::extract::ClientInfo;
use steward_core::{Clock, SystemClock};
use steward_db::{Db, secrets};
use steward_services::audit::Event;
use steward_services::bootstrap::secret_context;
use steward_vault::Vault;

use crate::config::{Resolved, VaultCommand};

/// Runs a vault command.
pub async fn run(r: &Resolved, cmd: VaultCommand) -> anyhow::Result<()> {
    let db = super::connect_migrated(r).await?;
    let vault = super::open_vault(r, false)?;
    let clock = SystemClock;
    match cmd {
        VaultCommand::Status => {
            let ids = vault.key_ids()?;
            let counts = secrets::count_by_key(&db.pool).await?;
            for (i, id) in ids.iter().enumerate() {
                let n = counts
                    .iter()
                    .find(|(k, _)| k == id.as_str())
                    .map_or(0, |(_, n)| *n);
                println!(
                    "{id}  {}  {n} secret(s)",
                    if i == 0 { "primary" } else { "old    " }
                );
            }
            for (k, n) in counts
                .iter()
                .filter(|(k, _)| !ids.iter().any(|id| id.as_str() == k))
            {
                println!("{k}  MISSING  {n} secret(s) sealed with a key not in the keyring");
            }
        }
        VaultCommand::RotateKey { retire_old } => {
            let old = vault.primary_key_id()?;
            let new = vault.add_primary_key()?;
            println!("new primary key {new} (was {old})");
            let n = reencrypt(&db, &vault, &clock).await?;
            println!("re-encrypted {n} secret(s)");
            let mut details = serde_json::json!({ "old_key": old.as_str(), "new_key": new.as_str(), "reencrypted": n });
            if retire_old {
                let left: i64 = secrets::count_by_key(&db.pool)
                    .await?
                    .iter()
                    .filter(|(k, _)| k != new.as_str())
                    .map(|(_, n)| n)
                    .sum();
                if left > 0 {
                    anyhow::bail!(
                        "{left} secret(s) are still sealed with old keys; old keys were kept"
                    );
                }
                let retired = vault.retire_old_keys()?;
                println!("retired {} old key(s)", retired.len());
                details["retired"] =
                    serde_json::json!(retired.iter().map(|k| k.as_str()).collect::<Vec<_>>());
            }
            audit(&db, &clock, "vault.rotate_key", details).await?;
        }
        VaultCommand::Reencrypt => {
            let n = reencrypt(&db, &vault, &clock).await?;
            println!(
                "re-encrypted {n} secret(s) under key {}",
                vault.primary_key_id()?
            );
            audit(
                &db,
                &clock,
                "vault.reencrypt",
                serde_json::json!({ "reencrypted": n }),
            )
            .await?;
        }
    }
    Ok(())
}

/// Re-seals every secret not under the primary key; returns how many.
pub async fn reencrypt(db: &Db, vault: &Vault, clock: &dyn Clock) -> anyhow::Result<u64> {
    let primary = vault.primary_key_id()?;
    let mut total = 0u64;
    loop {
        let batch = secrets::list_not_under_key(&db.pool, primary.as_str(), 200).await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            let context = secret_context(&row.id, &row.purpose);
            let plain = vault.open(&row.ciphertext, &context)?;
            let sealed = vault.seal(&plain, &context)?;
            secrets::update_ciphertext(
                &db.pool,
                &row.id,
                sealed.key_id.as_str(),
                &sealed.text,
                clock.now_ms(),
            )
            .await?;
            total += 1;
        }
    }
    Ok(total)
}

async fn audit(
    db: &Db,
    clock: &dyn Clock,
    action: &str,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    Event::new(action, &ClientInfo::default(), clock.now_ms())
        .actor(None, "cli")
        .details(details)
        .write(&db.pool)
        .await
        .map_err(anyhow::Error::from)
}
