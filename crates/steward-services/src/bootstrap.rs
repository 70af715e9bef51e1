//! Start-up preparation shared by every instance: built-in roles, the access-token signing
//! key, and — while no account exists — the one-time setup token.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use steward_core::rbac::builtin;
use steward_core::{Clock, DEFAULT_ORG_ID};
use steward_db::{Db, roles, secrets, state, users};
use steward_vault::Vault;

use crate::auth::jwt::JwtKeys;
use crate::auth::tokens;

/// The file, inside the data directory, that holds the setup token.
pub const SETUP_TOKEN_FILE: &str = "setup-token";

/// Seals `plaintext` as a new secret row and returns its id.
pub async fn store_secret<'e>(
    ex: impl steward_db::Executor<'e, Database = steward_db::Any>,
    vault: &Vault,
    purpose: &str,
    plaintext: &[u8],
    now: i64,
) -> anyhow::Result<String> {
    let id = steward_db::new_id();
    let sealed = vault.seal(plaintext, &secret_context(&id, purpose))?;
    let row = secrets::SecretRow {
        id: id.clone(),
        purpose: purpose.into(),
        key_id: sealed.key_id.to_string(),
        ciphertext: sealed.text,
    };
    secrets::insert(ex, DEFAULT_ORG_ID, &row, now).await?;
    Ok(id)
}

/// Reads and opens a secret row.
pub async fn load_secret(
    db: &Db,
    vault: &Vault,
    id: &str,
) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    let row = secrets::get(&db.pool, id)
        .await?
        .with_context(|| format!("secret {id} is missing"))?;
    Ok(vault.open(&row.ciphertext, &secret_context(&row.id, &row.purpose))?)
}

/// The associated data a secret is bound to: its row id and purpose.
pub fn secret_context(id: &str, purpose: &str) -> String {
    format!("steward-secret:{id}:{purpose}")
}

/// Ensures the built-in roles and the signing key exist; returns the signing key.
pub async fn prepare(db: &Db, vault: &Vault, clock: &dyn Clock) -> anyhow::Result<JwtKeys> {
    let now = clock.now_ms();
    for name in [builtin::ADMIN, builtin::OPERATOR, builtin::VIEWER] {
        let perms: Vec<&str> = builtin::permissions(name)
            .unwrap_or_default()
            .iter()
            .map(|p| p.as_str())
            .collect();
        roles::upsert_builtin(
            &db.pool,
            DEFAULT_ORG_ID,
            name,
            builtin::description(name),
            &serde_json::to_string(&perms)?,
            now,
        )
        .await?;
    }
    let secret_id = match state::get(&db.pool, state::JWT_SECRET_ID).await? {
        Some(id) => id,
        None => {
            let mut tx = db.begin().await?;
            let key = tokens::random_token(48);
            let id = store_secret(&mut *tx, vault, "jwt_signing_key", key.as_bytes(), now).await?;
            // Another instance may have won the race: keep whichever was stored first.
            if !state::set_if_absent(&mut *tx, state::JWT_SECRET_ID, &id, now).await? {
                tx.rollback().await?;
            } else {
                tx.commit().await?;
            }
            state::get(&db.pool, state::JWT_SECRET_ID)
                .await?
                .context("signing key id vanished")?
        }
    };
    let key = load_secret(db, vault, &secret_id)
        .await
        .context("cannot open the token-signing key (wrong master key?)")?;
    Ok(JwtKeys::from_secret(&key))
}

/// While no account exists, makes sure a setup token is on record and in
/// `<data_dir>/setup-token` (mode 0600), and returns it. Once set up, removes any stale file
/// and returns `None`.
pub async fn setup_token(
    db: &Db,
    clock: &dyn Clock,
    data_dir: &Path,
) -> anyhow::Result<Option<String>> {
    let path = data_dir.join(SETUP_TOKEN_FILE);
    if users::count_all(&db.pool).await? > 0 {
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        return Ok(None);
    }
    // Reuse the token in the file if it is the one on record (a restart before setup).
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if state::get(&db.pool, state::SETUP_TOKEN_HASH)
            .await?
            .as_deref()
            == Some(tokens::hash_token(&existing).as_str())
        {
            return Ok(Some(existing));
        }
    }
    let token = tokens::random_token(24);
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    writeln!(f, "{token}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    state::set(
        &db.pool,
        state::SETUP_TOKEN_HASH,
        &tokens::hash_token(&token),
        clock.now_ms(),
    )
    .await?;
    Ok(Some(token))
}
