//! Shared application state, passed to handlers through axum's `State`.
use std::sync::Arc;

use steward_core::Clock;
use steward_db::Db;
use steward_services::Services;
use steward_services::auth::jwt::JwtKeys;
use steward_vault::Vault;

/// The hub's settings (see [`steward_services::config::Config`]).
pub type ApiConfig = steward_services::config::Config;

/// Everything a handler may need: the [`Services`] (reached through `Deref`: `state.db`,
/// `state.config` …) and what only this instance's HTTP side holds. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// The domain services' shared foundation.
    pub services: Services,
    /// Long-lived sockets each user holds on this instance.
    pub sockets: crate::sockets::PerUser,
    /// The HTTP connection cap and what the edge refused or closed.
    pub connections: Arc<crate::edge::Connections>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::Deref for Inner {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// Builds the state; `jwt` comes from [`steward_services::bootstrap::prepare`], `metrics`
    /// from [`steward_services::metrics::store::Store::open`]. Must be called within a Tokio
    /// runtime (the SSH pool starts its idle-connection reaper).
    pub fn new(
        db: Db,
        vault: Arc<Vault>,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
        jwt: JwtKeys,
        metrics: steward_services::metrics::store::Store,
    ) -> Self {
        let max_connections = config.max_connections;
        let services = Services::new(db, vault, clock, config, jwt, metrics);
        Self(Arc::new(Inner {
            services,
            sockets: Default::default(),
            connections: Arc::new(crate::edge::Connections::new(max_connections)),
        }))
    }
}
