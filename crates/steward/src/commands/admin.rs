//! `steward admin …`: account repairs from the console, audited as the CLI.
use serde_json::json;
use steward_api::extract::ClientInfo;
use steward_core::validate::Username;
use steward_core::{Clock, DEFAULT_ORG_ID, SystemClock};
use steward_db::{roles, sessions, users};
use steward_proto::Sensitive;
use steward_services::accounts::{self, NewAccount};
use steward_services::audit::Event;
use steward_services::auth::password;
use steward_services::auth::password::Hasher;

use crate::config::{AdminCommand, Resolved};

const ACTOR: &str = "cli";

/// Runs an admin command.
pub async fn run(r: &Resolved, cmd: AdminCommand) -> anyhow::Result<()> {
    let db = super::connect_migrated(r).await?;
    let vault = super::open_vault_for(r, &db).await?;
    let clock = SystemClock;
    steward_services::bootstrap::prepare(&db, &vault, &clock).await?;
    let now = clock.now_ms();
    let client = ClientInfo::default();
    match cmd {
        AdminCommand::CreateUser {
            username,
            email,
            roles: role_names,
        } => {
            let mut assigned = Vec::new();
            for name in &role_names {
                let role = roles::get_by_name(&db.pool, DEFAULT_ORG_ID, name)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no role named {name}"))?;
                assigned.push(role);
            }
            let pw = super::read_secret_line("Password")?;
            let account = NewAccount::check(
                &Hasher::new(1),
                &username,
                email.as_deref(),
                Sensitive::new(pw.to_string()),
            )
            .await?;
            let username = account.username.clone();
            let mut tx = db.begin().await?;
            accounts::create(
                &mut tx,
                DEFAULT_ORG_ID,
                &account,
                &assigned,
                |_| {
                    Event::new("user.create", &client, now)
                        .actor(None, ACTOR)
                        .details(json!({ "roles": role_names }))
                },
                now,
            )
            .await?;
            tx.commit().await?;
            // Creating a user closes first-run setup, so the setup token must go.
            steward_services::bootstrap::setup_token(&db, &clock, &r.data_dir).await?;
            println!(
                "created user {username} with roles {}",
                role_names.join(", ")
            );
        }
        AdminCommand::ResetPassword { username } => {
            let user = find(&db, &username).await?;
            let pw = super::read_secret_line("New password")?;
            steward_core::password::check_policy("password", &pw, &[&user.username])?;
            let hash = password::hash(&pw).map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            let mut tx = db.begin().await?;
            users::set_password(&mut *tx, &user.id, &hash, false, now).await?;
            let ended =
                sessions::revoke_all_for_user(&mut *tx, &user.id, None, "password reset", now)
                    .await?;
            let tokens =
                steward_db::api_tokens::revoke_all_for_user(&mut *tx, &user.id, now).await?;
            Event::new("user.password_reset", &client, now)
                .actor(None, ACTOR)
                .target("user", &user.id, &user.username)
                .write(&mut *tx)
                .await
                .map_err(anyhow::Error::from)?;
            tx.commit().await?;
            println!(
                "password of {} changed; {ended} session(s) ended, {tokens} API token(s) revoked",
                user.username
            );
        }
        AdminCommand::Disable2fa { username } => {
            let user = find(&db, &username).await?;
            let mut tx = db.begin().await?;
            users::clear_totp(&mut *tx, &user.id, now).await?;
            users::delete_recovery_codes(&mut *tx, &user.id).await?;
            if let Some(secret) = &user.totp_secret_id {
                steward_db::secrets::delete(&mut *tx, secret).await?;
            }
            Event::new("user.totp_reset", &client, now)
                .actor(None, ACTOR)
                .target("user", &user.id, &user.username)
                .write(&mut *tx)
                .await
                .map_err(anyhow::Error::from)?;
            tx.commit().await?;
            println!("two-factor authentication of {} is off", user.username);
        }
    }
    Ok(())
}

async fn find(db: &steward_db::Db, username: &str) -> anyhow::Result<users::UserRow> {
    let name = Username::parse(username)?;
    users::get_by_username(&db.pool, DEFAULT_ORG_ID, name.as_str())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name}"))
}
