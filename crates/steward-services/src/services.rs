//! [`Services`]: what every service needs, built once at start-up and cheap to clone — the
//! database, the vault, the clock, the settings, the signing keys, password hashing, the SSH
//! connection pool, the metrics store and the addresses health checks may not reach.
use std::sync::Arc;

use steward_core::Clock;
use steward_db::Db;
use steward_vault::Vault;

use crate::auth::jwt::JwtKeys;
use crate::auth::password::{self, Hasher};
use crate::config::Config;
use crate::metrics::store::Store;

/// The shared foundation of the services. Cheap to clone.
#[derive(Clone)]
pub struct Services(Arc<Inner>);

/// The contents of [`Services`].
pub struct Inner {
    pub db: Db,
    pub vault: Arc<Vault>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    pub jwt: JwtKeys,
    /// A hash verified against when a login names no account, so timing does not tell.
    pub dummy_password_hash: String,
    /// Password hashing and checking, with a bounded number at once.
    pub passwords: Hasher,
    /// One SSH connection per managed server, shared.
    pub ssh: steward_ssh::pool::Pool,
    /// Host metrics: the time-series store.
    pub metrics: Store,
    /// The addresses this instance is known by, which health checks may not reach by default.
    pub hub_addresses: steward_checks::HubAddresses,
    /// Script runs in progress on this instance.
    pub executions: crate::runner::Registry,
    /// The latest values of every server and the live-update hub.
    pub live: crate::live::Hub,
    /// The web terminal sessions running on this instance.
    pub terminals: crate::terminal::Registry,
    /// Agents connected to this instance.
    pub agents: crate::agents::Registry,
}

impl std::ops::Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Services {
    /// Builds the services; `jwt` comes from [`crate::bootstrap::prepare`], `metrics` from
    /// [`Store::open`]. Must be called within a Tokio runtime (the SSH pool starts its
    /// idle-connection reaper).
    pub fn new(
        db: Db,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        config: Config,
        jwt: JwtKeys,
        metrics: Store,
    ) -> Self {
        let dummy_password_hash =
            password::hash(&uuid::Uuid::new_v4().to_string()).unwrap_or_default();
        let passwords = Hasher::new(config.password_hash_concurrency);
        let ssh = steward_ssh::pool::Pool::new(steward_ssh::pool::PoolConfig {
            max_connections: config.ssh_max_connections,
            idle_timeout: config.ssh_idle_timeout,
            ..Default::default()
        });
        let services = Self(Arc::new(Inner {
            db,
            vault,
            clock,
            config,
            jwt,
            dummy_password_hash,
            passwords,
            ssh,
            metrics,
            hub_addresses: Default::default(),
            executions: Default::default(),
            live: Default::default(),
            terminals: Default::default(),
            agents: Default::default(),
        }));
        services.live.spawn_ticker(Arc::downgrade(&services.0));
        services
    }

    /// The services behind a weak reference, if they still exist (for background tasks that
    /// must not keep them alive).
    pub fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(Self)
    }

    /// Now, in stored form (Unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
