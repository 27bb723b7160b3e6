//! PostgreSQL connection pools with a timeout on every step, and the check that one answers.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::error::DbError;

// Defaults, each written once for its flag, for `DatabaseArgs::new` and for `PoolOptions::default`.
pub(crate) const DEFAULT_POOL_SIZE: usize = 16;
pub(crate) const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
pub(crate) const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 5_000;

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

/// Takes one connection and runs `SELECT 1`: readiness, and the fail-early check at start.
///
/// # Errors
/// [`DbError::Unavailable`] when the database does not answer in time.
pub async fn check(pool: &Pool) -> Result<(), DbError> {
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use plumbing::chain::Chain;

    use super::*;

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

    async fn read_only(client: &deadpool_postgres::Client) -> String {
        let answer = client
            .simple_query("SHOW transaction_read_only")
            .await
            .expect("SHOW");
        answer
            .iter()
            .find_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .expect("a row")
    }

    #[tokio::test]
    async fn a_pooled_connection_that_became_read_only_is_dropped_and_a_writable_one_handed_out() {
        let db = testkit::TestDb::create().await;
        let separator = if db.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}target_session_attrs=read-write", db.url);
        let pool = pool(&url, "tests", PoolOptions::default()).expect("pool");
        let client = pool.get().await.expect("a connection");
        // What a demoted server answers, on this connection only.
        client
            .simple_query("SET default_transaction_read_only = on")
            .await
            .expect("SET");
        drop(client);
        tokio::time::sleep(crate::failover::ROLE_CHECK_IDLE + Duration::from_millis(100)).await;

        let client = pool.get().await.expect("a connection");

        assert_eq!(read_only(&client).await, "off");
    }
}
