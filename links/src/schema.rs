//! The link schema: its migrations in order, applied with `database::migrate`.

use database::DbError;
use deadpool_postgres::Pool;

/// The migrations, in order: (version, name, SQL). Files are embedded so a binary carries its schema. A released
/// file is never edited; see `database::migrate` for the rules a new one follows.
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
    (
        11,
        "code_key",
        include_str!("../migrations/0011_code_key.sql"),
    ),
    (
        12,
        "domains_and_routing",
        include_str!("../migrations/0012_domains_and_routing.sql"),
    ),
    (
        13,
        "webhooks",
        include_str!("../migrations/0013_webhooks.sql"),
    ),
];

/// Applies the migrations not yet applied, each committed with its record, under an advisory lock so that
/// instances starting at once take turns; safe on a big, busy database (see `database::migrate` for how, and
/// for the rules a new migration follows). Returns the versions applied now.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn migrate(pool: &Pool) -> Result<Vec<i64>, DbError> {
    database::migrate::apply(
        pool,
        MIGRATIONS,
        &database::migrate::MigrateSettings::default(),
    )
    .await
}

/// The migrations this binary knows that the database has not applied.
///
/// # Errors
/// When the database is unreachable.
pub async fn pending_migrations(pool: &Pool) -> Result<Vec<i64>, DbError> {
    database::migrate::pending(pool, MIGRATIONS).await
}

/// The migrations this binary carries, for tests that apply them with more of their own.
pub fn migrations() -> &'static [(i64, &'static str, &'static str)] {
    MIGRATIONS
}
