//! Migrations on a big, busy links table: an index built concurrently while links are created and looked up, an
//! INVALID index left by a failed build rebuilt, a statement that cannot get its lock retried instead of stalling
//! the table's readers, a constraint added `NOT VALID` then validated run again after dying half way, and no
//! request statement timeout on a migration.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use database::{
    migrate::{self, MigrateSettings},
    PoolOptions,
};
use links::{schema, store::Store};
use testkit::TestDb;

/// Rows in the links table while the index is built. The issue asks for 1M; loading them through the trigram
/// indexes of migration 0007 takes minutes on a 2-core CI machine, so 200k (a build of several seconds, longer
/// than any create's deadline).
const ROWS: i64 = 200_000;

/// A migration of the kind the rules ask for: an index on an existing table, built concurrently.
const CONCURRENT_INDEX: &str = "-- snowlink: no-transaction
-- Links by creation time (a test's migration).
CREATE INDEX CONCURRENTLY IF NOT EXISTS links_created_at_test_idx
    ON links (created_at, id);
";

/// The migrations this binary carries, then `extra`.
fn with(extra: &[(i64, &'static str, &'static str)]) -> Vec<(i64, &'static str, &'static str)> {
    schema::migrations()
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

/// A plain connection, without the pool's statement timeout.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

async fn index_is_valid(client: &tokio_postgres::Client, name: &str) -> Option<bool> {
    client
        .query_opt(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
            &[&name],
        )
        .await
        .expect("pg_index")
        .map(|row| row.get(0))
}

#[tokio::test]
async fn an_index_built_concurrently_on_a_big_links_table_fails_no_create_or_lookup_and_ends_valid()
{
    let test_db = TestDb::create().await;
    let pool = database::pool(&test_db.url, "links-tests", PoolOptions::default()).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    let admin = connect(&test_db.url).await;
    admin
        .execute(
            "INSERT INTO links (id, code, long_url, url_hash)
             SELECT n, 'c' || n, 'https://example.com/' || n, '\\x00' FROM generate_series(1, $1::bigint) n",
            &[&ROWS],
        )
        .await
        .expect("rows loaded");
    admin.batch_execute("ANALYZE links").await.expect("analyze");

    let store = Store::new(pool.clone());
    let (running, migrating) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(false)),
    );
    let (during, failures) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let next_id = Arc::new(AtomicU64::new(10_000_000));
    let mut traffic = tokio::task::JoinSet::new();
    for writer in 0..6 {
        let (store, running, migrating, during, failures, next_id) = (
            store.clone(),
            Arc::clone(&running),
            Arc::clone(&migrating),
            Arc::clone(&during),
            Arc::clone(&failures),
            Arc::clone(&next_id),
        );
        traffic.spawn(async move {
            while running.load(Ordering::SeqCst) {
                let counted = migrating.load(Ordering::SeqCst);
                let outcome = if writer % 2 == 0 {
                    let id = i64::try_from(next_id.fetch_add(1, Ordering::SeqCst)).expect("id");
                    let link = crate::new_link(id, &format!("n{id}"));
                    // The shortener's deadline for a create.
                    store
                        .insert_links(&[link], Duration::from_secs(2))
                        .await
                        .map(drop)
                } else {
                    let code = format!("c{}", (writer * 7919) % ROWS as usize + 1);
                    store.resolve(&code).await.map(drop)
                };
                match outcome {
                    Ok(()) if counted && migrating.load(Ordering::SeqCst) => {
                        during.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(()) => {}
                    Err(error) => failures
                        .lock()
                        .expect("lock")
                        .push(plumbing::chain::Chain(&error).to_string()),
                }
            }
        });
    }

    migrating.store(true, Ordering::SeqCst);
    let applied = migrate::apply(
        &pool,
        &with(&[(1000, "test_concurrent_index", CONCURRENT_INDEX)]),
        &MigrateSettings::default(),
    )
    .await
    .expect("the migration applies");
    migrating.store(false, Ordering::SeqCst);
    running.store(false, Ordering::SeqCst);
    while traffic.join_next().await.is_some() {}

    assert_eq!(applied, vec![1000]);
    let failures = std::mem::take(&mut *failures.lock().expect("lock"));
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        during.load(Ordering::SeqCst) > 0,
        "creates and lookups ran while the index was built"
    );
    assert_eq!(
        index_is_valid(&admin, "links_created_at_test_idx").await,
        Some(true)
    );
}

#[tokio::test]
async fn an_invalid_index_left_by_a_failed_concurrent_build_is_built_again() {
    let test_db = TestDb::create().await;
    let pool = database::pool(&test_db.url, "links-tests", PoolOptions::default()).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    let admin = connect(&test_db.url).await;
    admin
        .batch_execute(
            "INSERT INTO links (id, code, long_url, url_hash) VALUES
                 (1, 'a', 'https://example.com/same', '\\x00'), (2, 'b', 'https://example.com/same', '\\x00')",
        )
        .await
        .expect("rows");
    let failed = admin
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY links_url_test_idx ON links (long_url)")
        .await;
    assert!(failed.is_err(), "a duplicate fails the build");
    assert_eq!(
        index_is_valid(&admin, "links_url_test_idx").await,
        Some(false)
    );
    admin
        .batch_execute("DELETE FROM links WHERE id = 2")
        .await
        .expect("duplicate gone");

    migrate::apply(
        &pool,
        &with(&[(
            1000,
            "test_unique_url",
            "-- snowlink: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS links_url_test_idx ON links (long_url);\n",
        )]),
        &MigrateSettings::default(),
    )
    .await
    .expect("the migration applies");

    assert_eq!(
        index_is_valid(&admin, "links_url_test_idx").await,
        Some(true)
    );
}

#[tokio::test]
async fn a_migration_that_cannot_get_its_lock_gives_way_to_readers_and_is_retried_until_it_can() {
    let test_db = TestDb::create().await;
    let pool = database::pool(&test_db.url, "links-tests", PoolOptions::default()).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    // A long transaction that read the table: an ALTER TABLE must wait for it, and every query after the ALTER
    // would wait behind the ALTER.
    let holder = connect(&test_db.url).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE links IN ACCESS SHARE MODE")
        .await
        .expect("lock held");
    let settings = MigrateSettings {
        lock_timeout: Duration::from_millis(200),
        attempts: 1_000,
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    };
    let migration = tokio::spawn({
        let pool = pool.clone();
        async move {
            migrate::apply(
                &pool,
                &with(&[(
                    1000,
                    "test_add_column",
                    "ALTER TABLE links ADD COLUMN note text;",
                )]),
                &settings,
            )
            .await
        }
    });

    let reader = connect(&test_db.url).await;
    reader
        .batch_execute("SET statement_timeout = 2000")
        .await
        .expect("set");
    for _ in 0..15 {
        reader
            .query("SELECT id FROM links WHERE id = 1", &[])
            .await
            .expect("a read is never stuck behind the waiting migration");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!migration.is_finished(), "the migration waits for the lock");
    holder.batch_execute("COMMIT").await.expect("lock released");

    let applied = migration
        .await
        .expect("joins")
        .expect("the migration applies");
    assert_eq!(applied, vec![1000]);
    reader
        .query("SELECT note FROM links LIMIT 1", &[])
        .await
        .expect("the column exists");
}

#[tokio::test]
async fn a_migration_runs_past_the_pools_statement_timeout() {
    let test_db = TestDb::create().await;
    let options = PoolOptions {
        statement_timeout: Duration::from_millis(100),
        ..PoolOptions::default()
    };
    let pool = database::pool(&test_db.url, "links-tests", options).expect("pool");

    let applied = migrate::apply(
        &pool,
        &with(&[(1000, "test_slow", "SELECT pg_sleep(0.5);")]),
        &MigrateSettings::default(),
    )
    .await
    .expect("the migrations apply");

    assert_eq!(applied.last(), Some(&1000));
    let client = pool.get().await.expect("a pooled connection");
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(
        timeout, "100ms",
        "the migration's settings stayed off the pool"
    );
}

#[tokio::test]
async fn a_constraint_added_not_valid_then_validated_survives_a_run_that_died_half_way() {
    let test_db = TestDb::create().await;
    let pool = database::pool(&test_db.url, "links-tests", PoolOptions::default()).expect("pool");
    let constraint = (
        1000,
        "test_url_length",
        "-- snowlink: no-transaction
ALTER TABLE links ADD CONSTRAINT links_url_length_test CHECK (length(long_url) <= 4096) NOT VALID;
ALTER TABLE links VALIDATE CONSTRAINT links_url_length_test;
",
    );
    migrate::apply(&pool, &with(&[constraint]), &MigrateSettings::default())
        .await
        .expect("the migration applies");
    // As if the process had died after the constraint's statements but before recording the migration.
    let admin = connect(&test_db.url).await;
    admin
        .batch_execute(
            "DELETE FROM schema_migrations WHERE version = 1000;
             ALTER TABLE links DROP CONSTRAINT links_url_length_test;
             ALTER TABLE links ADD CONSTRAINT links_url_length_test CHECK (length(long_url) <= 4096) NOT VALID",
        )
        .await
        .expect("half a run");

    let applied = migrate::apply(&pool, &with(&[constraint]), &MigrateSettings::default())
        .await
        .expect("the migration runs again");

    assert_eq!(applied, vec![1000]);
    let validated: bool = admin
        .query_one(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'links_url_length_test'",
            &[],
        )
        .await
        .expect("the constraint")
        .get(0);
    assert!(validated);
}
