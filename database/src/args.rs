//! The PostgreSQL flags every service shares (`--database-url` and the pool's bounds).

use std::time::Duration;

use secrecy::SecretString;

use crate::pool::{
    PoolOptions, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_POOL_SIZE, DEFAULT_STATEMENT_TIMEOUT_MS,
};

/// PostgreSQL flags shared by the services.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL primary, `postgres://user:password@host:port/database` (writes, and reads without replicas).
    /// TLS: `?sslmode=require|verify-ca|verify-full`, a private CA with `&sslrootcert=PATH` (as libpq).
    /// Secret: it carries the password, so a `Debug` print shows `[REDACTED]`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: SecretString,
    /// Most connections per pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE)]
    pub database_pool_size: usize,
    /// Bound on connecting and on waiting for a pooled connection, in milliseconds.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT_MS", default_value_t = DEFAULT_CONNECT_TIMEOUT_MS)]
    pub database_connect_timeout_ms: u64,
    /// Server-side bound on every statement, in milliseconds.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = DEFAULT_STATEMENT_TIMEOUT_MS)]
    pub database_statement_timeout_ms: u64,
}

impl DatabaseArgs {
    /// Defaults for `url` (tests build settings this way).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            database_url: SecretString::from(url.into()),
            database_pool_size: DEFAULT_POOL_SIZE,
            database_connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            database_statement_timeout_ms: DEFAULT_STATEMENT_TIMEOUT_MS,
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
