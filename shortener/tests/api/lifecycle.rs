//! How a shortener starts and stops around a deploy: with `--migrate skip` it applies no migration and waits for
//! the migration Job's; told to stop, it keeps creating links through its drain delay, its worker ID still leased.

use std::time::Duration;

use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::cache::RedisArgs;
use plumbing::{drain::DrainArgs, shutdown::Shutdown};
use serde_json::json;
use shortener::config::{MigrateMode, ServeArgs};
use testkit::{eventually, TestDb};

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn a_shortener_told_to_stop_keeps_creating_links_through_its_drain_delay() {
    let app = spawn_app_with(|args| {
        args.drain = DrainArgs {
            drain_delay_ms: 1_000,
        };
    })
    .await;

    app.shutdown.trigger();

    let readyz = app
        .client
        .get(format!("{}/readyz", app.admin_address))
        .send()
        .await
        .expect("the admin port answers");
    assert_eq!(readyz.status(), 503);
    let created = app
        .create(json!({"long_url": "https://example.com/while-draining"}))
        .await;
    assert_eq!(
        created.status(),
        201,
        "a create during the drain delay still gets an ID"
    );
}

#[tokio::test]
async fn a_shortener_started_with_migrate_skip_applies_nothing_and_starts_once_the_job_has_migrated(
) {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let mut args = ServeArgs::for_tests(
        DatabaseArgs::new(&db.url),
        RedisArgs::new(redis_url, prefix),
        idgen,
    );
    args.migrate = MigrateMode::Skip;
    let shutdown = Shutdown::new();
    let starting = tokio::spawn(shortener::startup::build(args));
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);

    // It has looked at the schema once it has asked which migrations are applied.
    eventually(
        Duration::from_secs(10),
        "the shortener asked which migrations are applied",
        || async {
            client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name = 'snowlink-shortener'
                       AND query LIKE '%schema_migrations%'",
                    &[],
                )
                .await
                .expect("pg_stat_activity")
                .get::<_, i64>(0)
                > 0
        },
    )
    .await;
    let links: Option<String> = client
        .query_one("SELECT to_regclass('links')::text", &[])
        .await
        .expect("to_regclass")
        .get(0);
    assert_eq!(links, None, "no migration was applied");
    assert!(!starting.is_finished(), "it waits for the schema");

    // What the chart's migration Job runs.
    shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("migrated");

    let app = tokio::time::timeout(Duration::from_secs(30), starting)
        .await
        .expect("it starts once the schema is there")
        .expect("joins")
        .expect("the shortener starts");
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    shutdown.trigger();
}
