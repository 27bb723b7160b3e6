//! PostgreSQL connection pools with a timeout on every step, and the schema migrations.

use std::{fmt, sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::SecretString;

/// The migrations, in order: (version, name, SQL). Files are embedded so a binary carries its schema. A released
/// file is never edited; see [`crate::migrate`] for the rules a new one follows.
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
    (
        4,
        "api_key_inserts",
        include_str!("../migrations/0004_api_key_inserts.sql"),
    ),
    (
        5,
        "takedown",
        include_str!("../migrations/0005_takedown.sql"),
    ),
    (
        6,
        "idempotency_keys",
        include_str!("../migrations/0006_idempotency_keys.sql"),
    ),
    (
        7,
        "link_management",
        include_str!("../migrations/0007_link_management.sql"),
    ),
    (
        8,
        "hit_sources",
        include_str!("../migrations/0008_hit_sources.sql"),
    ),
    (
        9,
        "device_columns",
        include_str!("../migrations/0009_device_columns.sql"),
    ),
    (
        10,
        "retired_codes_by_age",
        include_str!("../migrations/0010_retired_codes_by_age.sql"),
    ),
];

/// The cause of a [`DbError`], kept for the logs. Shared rather than owned, because one failed group insert
/// answers every request in the group with the same failure.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A database failure as callers need to see it. Each message is short; the PostgreSQL or pool error that
/// caused it is its `source()`, so a log of the whole chain (see [`crate::chain`]) carries the server's words.
#[derive(Debug)]
pub enum DbError {
    /// The URL or the pool settings are invalid.
    Config(Cause),
    /// The database cannot be reached in time (connect, pool wait, closed connection): a 503 for clients.
    Unavailable(Cause),
    /// A statement failed on the server.
    Query(tokio_postgres::Error),
}

impl DbError {
    /// Whether the server refused a row as a duplicate (`unique_violation`).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION))
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Config(_) => "invalid database settings",
            Self::Unavailable(_) => "database unavailable",
            Self::Query(_) => "database query failed",
        })
    }
}

// By hand rather than derived: the source is the error inside the `Arc`, not the `Arc`, so that callers can
// downcast it (to a `tokio_postgres::Error`, say).
impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(cause) | Self::Unavailable(cause) => Some(&**cause),
            Self::Query(error) => Some(error),
        }
    }
}

impl DbError {
    /// [`DbError::Unavailable`] for a reason of our own (a timeout, a shutdown) or another error.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(Arc::from(cause.into()))
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        if unavailable(&error) {
            Self::Unavailable(Arc::new(error))
        } else {
            Self::Query(error)
        }
    }
}

/// Whether an error means "not now" rather than "not this": no server error code (the connection itself failed);
/// a cancelled statement (our timeout); or what a server says around a failover: a connection failure reported
/// by the server (class 08), shutting down or starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
/// cannot_connect_now), or a write refused because the server is now a replica (25006 read_only_sql_transaction).
/// The client gets a 503 with Retry-After, and a retry reaches the new primary.
fn unavailable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    let Some(code) = error.code() else {
        return true;
    };
    [
        SqlState::QUERY_CANCELED,
        SqlState::READ_ONLY_SQL_TRANSACTION,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ]
    .contains(code)
        || code.code().starts_with("08")
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(Arc::new(error))
    }
}

// Defaults, each written once for its flag, for `DatabaseArgs::new` and for `PoolOptions::default`.
const DEFAULT_POOL_SIZE: usize = 16;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 5_000;

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
            max_size: DEFAULT_POOL_SIZE,
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            statement_timeout: Duration::from_millis(DEFAULT_STATEMENT_TIMEOUT_MS),
        }
    }
}

/// A pool for `url`, over TLS when its `sslmode` asks (see [`crate::tls`]). Creating it connects nothing
/// (deadpool is lazy): call [`check`] to fail early.
///
/// # Errors
/// [`DbError::Config`] when the URL does not parse or its TLS settings cannot be met.
pub fn pool(url: &str, application_name: &str, options: PoolOptions) -> Result<Pool, DbError> {
    let crate::tls::PgTarget { mut config, tls } = crate::tls::postgres(url)?;
    config
        .connect_timeout(options.connect_timeout)
        .application_name(application_name)
        .options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
    let wants_primary = matches!(
        config.get_target_session_attrs(),
        tokio_postgres::config::TargetSessionAttrs::ReadWrite
    );
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            // Verified: a connection handed back while a statement still ran on it (its request was dropped)
            // answers the check only once that statement is done, or is replaced when the check times out,
            // instead of passing its wait on to the next request.
            recycling_method: RecyclingMethod::Verified,
        },
    );
    // A URL that asks for the primary (several hosts, target_session_attrs=read-write) gets its connections'
    // role checked, so that none outlives a demotion (see crate::failover).
    let mut builder = Pool::builder(manager);
    if wants_primary {
        builder = builder.post_recycle(crate::failover::primary_only_hook());
    }
    builder
        .max_size(options.max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|error| DbError::Config(Arc::new(error)))
}

/// Makes PostgreSQL cancel any statement, lock wait or idle gap of the transaction `tx` that outlasts `within`
/// (at least 1 ms: PostgreSQL reads 0 as "no limit"). `SET LOCAL` through `set_config(…, true)`, so the bound
/// ends with the transaction and a pooled connection goes back with the pool's own settings.
///
/// # Errors
/// When the database fails.
pub async fn bound_transaction(
    tx: &deadpool_postgres::Transaction<'_>,
    within: Duration,
) -> Result<(), DbError> {
    let millis = within
        .as_millis()
        .clamp(1, u128::from(u32::MAX))
        .to_string();
    let statement = tx
        .prepare_cached(
            "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true),
                    set_config('idle_in_transaction_session_timeout', $1, true)",
        )
        .await?;
    tx.query_one(&statement, &[&millis]).await?;
    Ok(())
}

/// Runs `read` in a read-only transaction whose statements PostgreSQL itself cancels after `within` (see
/// [`bound_transaction`]). A request's reads go through here with what is left of its deadline: a read the
/// request stopped waiting for would otherwise run on for the pool's whole statement timeout, holding its pooled
/// connection, and the next request to get that connection would queue behind it.
///
/// # Errors
/// When the database fails or the bound passes.
pub async fn read_within<T>(
    pool: &Pool,
    within: Duration,
    read: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut client = pool.get().await?;
    let tx = client.build_transaction().read_only(true).start().await?;
    bound_transaction(&tx, within).await?;
    let value = read(&tx).await?;
    tx.commit().await?;
    Ok(value)
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

/// Applies the migrations not yet applied, each committed with its record, under an advisory lock so that
/// instances starting at once take turns; safe on a big, busy database (see [`crate::migrate`] for how, and for
/// the rules a new migration follows). Returns the versions applied now.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(pool: &Pool) -> Result<Vec<i64>, DbError> {
    crate::migrate::apply(
        pool,
        MIGRATIONS,
        &crate::migrate::MigrateSettings::default(),
    )
    .await
}

/// The migrations this binary knows that the database has not applied.
///
/// # Errors
/// When the database is unreachable.
pub async fn pending_migrations(pool: &Pool) -> Result<Vec<i64>, DbError> {
    crate::migrate::pending(pool, MIGRATIONS).await
}

/// The migrations this binary carries, for tests that apply them with more of their own.
pub fn migrations() -> &'static [(i64, &'static str, &'static str)] {
    MIGRATIONS
}

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

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::chain::Chain;

    #[test]
    fn a_bad_url_keeps_the_parser_error_as_its_source() {
        let error = pool(
            "postgres://localhost:notaport/db",
            "tests",
            PoolOptions::default(),
        )
        .expect_err("the port does not parse");

        assert!(matches!(error, DbError::Config(_)), "{error:?}");
        let source = error.source().expect("a source");
        assert!(source.is::<tokio_postgres::Error>(), "{source:?}");
        assert!(Chain(&error)
            .to_string()
            .starts_with("invalid database settings: "));
    }

    #[tokio::test]
    async fn a_server_error_keeps_the_servers_message() {
        let db = testkit::TestDb::create().await;
        let pool = pool(&db.url, "tests", PoolOptions::default()).expect("pool");
        let client = pool.get().await.expect("connection");

        let error = DbError::from(
            client
                .simple_query("SELECT * FROM no_such_table")
                .await
                .expect_err("no such table"),
        );

        assert!(matches!(error, DbError::Query(_)), "{error:?}");
        let logged = Chain(&error).to_string();
        assert!(
            logged.contains(r#"relation "no_such_table" does not exist"#),
            "{logged}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable_with_the_connect_error_as_source() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let url = format!("postgres://nobody@127.0.0.1:{closed}/none");
        let pool = pool(&url, "tests", PoolOptions::default()).expect("pool");

        let error = check(&pool).await.expect_err("nothing listens there");

        assert!(matches!(error, DbError::Unavailable(_)), "{error:?}");
        assert!(error.source().is_some());
        let logged = Chain(&error).to_string();
        assert!(logged.to_lowercase().contains("refused"), "{logged}");
    }
}
