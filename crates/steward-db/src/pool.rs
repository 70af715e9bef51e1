//! Connecting, configuring and migrating the pool.
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::{DbError, DbResult};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// Detects the backend from a URL.
    pub fn from_url(url: &str) -> DbResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The backend's name, as shown in logs.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Where the schema stands relative to this binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Latest migration applied to the database (0 for none).
    pub applied: i64,
    /// Latest migration this binary carries.
    pub latest: i64,
}

/// The store handle: a connection pool and its backend.
#[derive(Clone, Debug)]
pub struct Db {
    /// The pool; use the query functions rather than raw SQL elsewhere.
    pub pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects to the database at `url`. SQLite files are created when missing and run in
    /// WAL mode with foreign keys and a busy timeout.
    pub async fn connect(url: &str) -> DbResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool_options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            });
        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                         PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let options = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                AnyConnectOptions::from_str(&format!("{url}{sep}mode=rwc"))?
                    .disable_statement_logging()
            }
            _ => options,
        };
        let pool = pool_options.connect_with(options).await?;
        Ok(Self { pool, backend })
    }

    /// The engine behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applied versus known migrations, without changing anything.
    pub async fn migration_status(&self) -> DbResult<MigrationStatus> {
        let latest = self
            .backend
            .migrator()
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let exists: Option<i64> = match self.backend {
            Backend::Sqlite => {
                sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .fetch_optional(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                )
                .fetch_optional(&self.pool)
                .await?
            }
        };
        let applied = if exists.unwrap_or(0) > 0 {
            sqlx::query_scalar::<_, i64>(
                "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success = TRUE",
            )
            .fetch_one(&self.pool)
            .await?
        } else {
            0
        };
        Ok(MigrationStatus { applied, latest })
    }

    /// Applies pending migrations; refuses a schema newer than this binary knows.
    pub async fn migrate(&self) -> DbResult<MigrationStatus> {
        let status = self.migration_status().await?;
        if status.applied > status.latest {
            return Err(DbError::SchemaTooNew {
                database: status.applied,
                binary: status.latest,
            });
        }
        self.backend.migrator().run(&self.pool).await?;
        self.migration_status().await
    }

    /// Fails unless the database answers and every known migration is applied.
    pub async fn ready(&self) -> DbResult<bool> {
        let status = self.migration_status().await?;
        Ok(status.applied == status.latest)
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> DbResult<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin().await?)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
