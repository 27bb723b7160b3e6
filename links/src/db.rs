//! PostgreSQL connection pools with a timeout on every step, and the schema migrations.

use std::{str::FromStr, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// The migrations, in order: (version, name, SQL). Files are embedded so a binary carries its schema.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "links_and_api_keys",
        include_str!("../migrations/0001_links_and_api_keys.sql"),
    ),
    (
        2,
        "retired_codes",
        include_str!("../migrations/0002_retired_codes.sql"),
    ),
    (
        3,
        "api_key_changes",
        include_str!("../migrations/0003_api_key_changes.sql"),
    ),
];

/// Key of the transaction-level advisory lock that serialises migrations across instances starting together.
const MIGRATION_LOCK_KEY: i64 = 0x736e_6f77_6c69_6e6b; // "snowlink"

/// A database failure as callers need to see it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse.
    #[error("invalid database URL: {0}")]
    Config(String),
    /// The database cannot be reached in time (connect, pool wait, closed connection): a 503 for clients.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        // No server error code means the connection itself failed; a cancelled statement is our timeout.
        let timed_out = error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED);
        if error.as_db_error().is_none() || timed_out {
            Self::Unavailable(error.to_string())
        } else {
            Self::Query(error)
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub max_size: usize,
    /// Bound on connecting and on waiting for a free connection.
    pub connect_timeout: Duration,
    /// Server-side bound on every statement.
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// A pool for `url`. Creating it connects nothing (deadpool is lazy): call [`check`] to fail early.
///
/// # Errors
/// [`DbError::Config`] when the URL does not parse.
pub fn pool(url: &str, application_name: &str, options: PoolOptions) -> Result<Pool, DbError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|error| DbError::Config(error.to_string()))?;
    config
        .connect_timeout(options.connect_timeout)
        .application_name(application_name)
        .options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|error| DbError::Config(error.to_string()))
}

/// Takes one connection and runs `SELECT 1`: readiness, and the fail-early check at start.
///
/// # Errors
/// [`DbError::Unavailable`] when the database does not answer in time.
pub async fn check(pool: &Pool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// Applies the migrations not yet applied, in one transaction under an advisory lock, so instances starting at
/// once neither race nor apply half a schema. Returns the versions applied now.
///
/// # Errors
/// When the database is unreachable or a migration fails (nothing of it is kept).
pub async fn migrate(pool: &Pool) -> Result<Vec<i64>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<i64> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut now_applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        tracing::info!(version, name, "migration applied");
        now_applied.push(*version);
    }
    tx.commit().await?;
    Ok(now_applied)
}

/// PostgreSQL flags shared by the services.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL primary, `postgres://user:password@host:port/database` (writes, and reads without replicas).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Most connections per pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,
    /// Bound on connecting and on waiting for a pooled connection, in milliseconds.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT_MS", default_value_t = 2_000)]
    pub database_connect_timeout_ms: u64,
    /// Server-side bound on every statement, in milliseconds.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = 5_000)]
    pub database_statement_timeout_ms: u64,
}

impl DatabaseArgs {
    /// Defaults for `url` (tests build settings this way).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            database_url: url.into(),
            database_pool_size: 16,
            database_connect_timeout_ms: 2_000,
            database_statement_timeout_ms: 5_000,
        }
    }

    /// The pool settings.
    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.database_pool_size,
            connect_timeout: Duration::from_millis(self.database_connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.database_statement_timeout_ms),
        }
    }
}
