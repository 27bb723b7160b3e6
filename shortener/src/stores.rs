//! The shortener's stores in PostgreSQL: the primary, connected and migrated (or waited for, under `--migrate skip`), and
//! where reads go. Below `startup`, so the CLI's commands (`migrate`, `keys`, `links`, `cleanup --once`) connect
//! the same way `serve` does without importing it.

use std::time::Duration;

use anyhow::Context as _;
use links::{schema, store::Store};
use secrecy::ExposeSecret as _;

use crate::config::{MigrateMode, ServeArgs};

/// How often `--migrate skip` looks whether the migration Job has applied what this binary needs.
const SCHEMA_POLL: Duration = Duration::from_secs(2);

/// Where search, stats and exports read: the first replica given (a pool of its own; deadpool connects lazily,
/// so a replica that is down fails those reads, not the start), else the primary's store.
///
/// # Errors
/// When the replica's URL does not parse.
pub fn reads_store(args: &ServeArgs, primary: &Store) -> anyhow::Result<Store> {
    let Some(url) = args.replica_urls.first() else {
        return Ok(primary.clone());
    };
    let pool = database::pool(
        url.expose_secret(),
        "snowlink-shortener-reads",
        args.database.pool_options(),
    )
    .context("invalid --replica-url (DATABASE_REPLICA_URL)")?;
    Ok(Store::new(pool))
}

/// Connects to PostgreSQL, failing early with a message naming the flag, and applies pending migrations.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn connect_and_migrate(database: &database::DatabaseArgs) -> anyhow::Result<Store> {
    connect(database, MigrateMode::Auto).await
}

/// Connects to PostgreSQL, failing early with a message naming the flag; then applies pending migrations
/// (`auto`), or waits until a migration Job has applied every one this binary knows (`skip`).
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn connect(
    database: &database::DatabaseArgs,
    migrate: MigrateMode,
) -> anyhow::Result<Store> {
    let pool = database::pool(
        database.database_url.expose_secret(),
        "snowlink-shortener",
        database.pool_options(),
    )
    .context("invalid --database-url (DATABASE_URL)")?;
    database::check(&pool)
        .await
        .context("cannot reach PostgreSQL at --database-url (DATABASE_URL)")?;
    match migrate {
        MigrateMode::Auto => {
            let applied = schema::migrate(&pool)
                .await
                .context("database migration failed")?;
            if !applied.is_empty() {
                tracing::info!(?applied, "migrations applied");
            }
        }
        MigrateMode::Skip => wait_for_schema(&pool).await?,
    }
    Ok(Store::new(pool))
}

/// Returns once the database has every migration this binary knows. On a first install the chart's Job runs
/// after the workloads start; on an upgrade it has run before.
async fn wait_for_schema(pool: &deadpool_postgres::Pool) -> anyhow::Result<()> {
    let mut told = false;
    loop {
        let pending = schema::pending_migrations(pool)
            .await
            .context("cannot read which migrations are applied")?;
        if pending.is_empty() {
            return Ok(());
        }
        if !told {
            tracing::info!(
                ?pending,
                "--migrate skip: waiting for the migration Job to apply these migrations"
            );
            told = true;
        }
        tokio::time::sleep(SCHEMA_POLL).await;
    }
}
