//! Steward's store: one sqlx `Any` pool that runs on SQLite (the embedded default) or
//! PostgreSQL, chosen by the URL at run time. Queries are portable SQL with `$n` placeholders
//! (both backends accept them); each backend owns its migration set under `migrations/`.
//! One function per query, grouped by table.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod agents;
pub mod api_tokens;
pub mod audit;
pub mod checks;
pub mod credentials;
pub mod executions;
pub mod host_keys;
pub mod maintenance;
pub mod metrics;
mod pool;
pub mod proposals;
pub mod rate_limits;
pub mod roles;
pub mod scans;
pub mod scripts;
pub mod secrets;
pub mod servers;
pub mod sessions;
pub mod settings;
pub mod state;
pub mod terminal_sessions;
pub mod throttle;
pub mod users;

pub use pool::{Backend, Db, MigrationStatus};
pub use sqlx::{Any, AnyConnection, Executor, Transaction};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique constraint refused the write; `field` names the clashing value.
    #[error("{field} is already taken")]
    Conflict {
        /// The request field that clashed.
        field: &'static str,
    },
    /// The database was migrated by a newer Steward.
    #[error(
        "the database schema is at version {database}, newer than this Steward knows ({binary}); \
         run the newer Steward release, or restore a backup taken before the upgrade"
    )]
    SchemaTooNew {
        /// Latest migration applied to the database.
        database: i64,
        /// Latest migration this binary carries.
        binary: i64,
    },
    /// The URL names no supported database.
    #[error("unsupported database URL (expected sqlite:… or postgres://…)")]
    UnsupportedUrl,
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else from the driver.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
}

/// Result alias for store functions.
pub type DbResult<T> = Result<T, DbError>;

/// Turns a unique-constraint violation into [`DbError::Conflict`] for `field`.
pub(crate) fn conflict_on(field: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict { field },
        _ => DbError::Sqlx(e),
    }
}

/// A bind value for dynamically built queries.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Builds SQL with numbered `$n` placeholders, for queries whose filters vary.
#[derive(Debug, Default)]
pub(crate) struct SqlBuilder {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl SqlBuilder {
    pub fn new(sql: &str) -> Self {
        Self {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.sql.push_str(&format!("${}", self.args.len()));
        self
    }

    /// Appends `(p1, p2, …)` bound to the texts.
    pub fn bind_list<'a>(&mut self, items: impl IntoIterator<Item = &'a String>) -> &mut Self {
        self.sql.push('(');
        for (i, t) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.bind(Arg::Text(t.clone()));
        }
        self.sql.push(')');
        self
    }

    pub fn query_as<'q, T>(
        &'q self,
    ) -> sqlx::query::QueryAs<'q, Any, T, sqlx::any::AnyArguments<'q>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut q = sqlx::query_as::<_, T>(&self.sql);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }

    pub fn query_scalar<'q, T>(
        &'q self,
    ) -> sqlx::query::QueryScalar<'q, Any, T, sqlx::any::AnyArguments<'q>>
    where
        T: sqlx::Type<Any> + sqlx::Decode<'q, Any> + Send + Unpin,
        (T,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut q = sqlx::query_scalar::<_, T>(&self.sql);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.as_str()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A fresh time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
