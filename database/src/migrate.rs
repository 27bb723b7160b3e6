//! Applying schema migrations (the link schema's are `links/migrations/*.sql`, listed in `links::schema`)
//! without taking a large, busy database down: on 10M links an index build takes minutes and a DDL statement
//! queued behind a long transaction stalls every query on its table.
//!
//! How they run: on one connection taken out of the pool (its settings and its lock never go back to it), under a
//! session advisory lock (instances starting together take turns), with no statement timeout, and with a short
//! `lock_timeout` (2 s): a statement that cannot get its lock gives up instead of queueing every reader and writer
//! of the table behind itself, and its migration is rolled back and retried with backoff. Each migration commits
//! on its own, recorded in `schema_migrations` with it.
//!
//! Rules for a new migration (nothing checks them; review does):
//! - A file once released is never edited: the runner does not checksum files, it records versions, so an edit
//!   would never run where the file ran already. Change the schema with a new file.
//! - An index on an existing table is built `CREATE INDEX CONCURRENTLY IF NOT EXISTS`, in a file whose first line
//!   is `-- snowlink: no-transaction`. Such a file runs statement by statement, each committed on its own (a
//!   concurrent build cannot run in a transaction), so a run that died half way runs every statement again: each
//!   must be idempotent (`IF NOT EXISTS`; an `ADD CONSTRAINT` that finds its constraint there is taken as done).
//!   Each statement ends with a `;` at the end of a line (no `DO` blocks or functions in such a file). An INVALID
//!   index left by a failed concurrent build is dropped (concurrently) before the build is tried again.
//! - A constraint on an existing table is added `NOT VALID` (a brief lock, no scan), then checked by a later
//!   statement `ALTER TABLE … VALIDATE CONSTRAINT …` of a no-transaction file, which scans under a lock that lets
//!   reads and writes go on. No `SET NOT NULL`, type change or volatile default on a big table: each rewrites or
//!   scans it under an ACCESS EXCLUSIVE lock.
//! - Expand, then contract: during a rollout the previous release runs against the new schema.
//!
//! Files released before these rules (0001–0009; 0007 builds its trigram indexes in its transaction) stay as they
//! are: every database that has their tables has applied them already.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio_postgres::error::SqlState;

use crate::error::DbError;

/// Key of the session-level advisory lock that serialises migrations across instances starting together.
const MIGRATION_LOCK_KEY: i64 = 0x736e_6f77_6c69_6e6b; // "snowlink"

/// The first line of a migration that runs statement by statement, outside any transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- snowlink: no-transaction";

/// How migrations wait for locks.
#[derive(Debug, Clone, Copy)]
pub struct MigrateSettings {
    /// `lock_timeout` of each statement that would block others while it waits (not of concurrent builds).
    pub lock_timeout: Duration,
    /// Tries of one migration whose statements time out on a lock, before the run fails.
    pub attempts: u32,
    /// The wait after the first lock timeout; it doubles after each, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between tries.
    pub max_backoff: Duration,
}

impl Default for MigrateSettings {
    /// 2 s lock timeouts, retried for about five minutes: a deploy's migration Job waits out a long report or
    /// vacuum, and no query waits more than 2 s behind it.
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            attempts: 30,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Applies those of `migrations` (version, name, SQL; in order) not yet applied. Returns the versions applied now.
///
/// # Errors
/// When the database is unreachable, or a migration fails (a transactional one leaves nothing behind; a
/// no-transaction one leaves the statements before the failing one, which its next run finds done).
pub async fn apply(
    pool: &Pool,
    migrations: &[(i64, &str, &str)],
    settings: &MigrateSettings,
) -> Result<Vec<i64>, DbError> {
    let mut client = deadpool_postgres::Object::take(pool.get().await?);
    // The pool's statement timeout is for requests; an index build on a big table takes minutes. The advisory lock
    // is taken before the lock timeout is set: waiting for another instance's migrations is expected.
    client.batch_execute("SET statement_timeout = 0").await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let lock_timeout = format!(
        "SET lock_timeout = {}",
        settings.lock_timeout.as_millis().max(1)
    );
    client.batch_execute(&lock_timeout).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let applied: Vec<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut now_applied = Vec::new();
    for (version, name, sql) in migrations {
        if applied.contains(version) {
            continue;
        }
        let mut attempt = 1;
        loop {
            let outcome = if is_no_transaction(sql) {
                apply_statements(&client, *version, name, sql, &lock_timeout).await
            } else {
                apply_in_transaction(&mut client, *version, name, sql).await
            };
            match outcome {
                Ok(()) => break,
                Err(error) if waited_too_long(&error) && attempt < settings.attempts => {
                    let wait = backoff(settings, attempt);
                    tracing::warn!(
                        version,
                        name,
                        attempt,
                        wait_ms = wait.as_millis(),
                        %error,
                        "a migration could not get its lock in time; it is rolled back and tried again"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
        tracing::info!(version, name, "migration applied");
        now_applied.push(*version);
    }
    // The connection closes when `client` drops, which would release the lock too; said aloud for the reader.
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    Ok(now_applied)
}

/// The versions among `migrations` that the database has not applied (all of them when it has no schema yet).
///
/// # Errors
/// When the database is unreachable.
pub async fn pending(pool: &Pool, migrations: &[(i64, &str, &str)]) -> Result<Vec<i64>, DbError> {
    let client = pool.get().await?;
    let applied: Vec<i64> = match client
        .query("SELECT version FROM schema_migrations", &[])
        .await
    {
        Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
        Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => Vec::new(),
        Err(error) => return Err(error.into()),
    };
    Ok(migrations
        .iter()
        .map(|(version, _, _)| *version)
        .filter(|version| !applied.contains(version))
        .collect())
}

/// Records a migration as applied.
const RECORD: &str =
    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT DO NOTHING";

async fn apply_in_transaction(
    client: &mut deadpool_postgres::ClientWrapper,
    version: i64,
    name: &str,
    sql: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(sql).await?;
    tx.execute(RECORD, &[&version, &name]).await?;
    tx.commit().await
}

/// A no-transaction migration: each statement committed on its own (one statement a query: several in one
/// query would make an implicit transaction, which a concurrent build refuses), then the version recorded.
async fn apply_statements(
    client: &tokio_postgres::Client,
    version: i64,
    name: &str,
    sql: &str,
    lock_timeout: &str,
) -> Result<(), tokio_postgres::Error> {
    for statement in statements(sql) {
        if let Some(index) = concurrent_index(&statement) {
            drop_if_invalid(client, &index, lock_timeout).await?;
        }
        // A concurrent build or a validation waits for older transactions, but its lock lets reads and writes go
        // on: no reason to give up after the lock timeout (and leave an INVALID index behind).
        let harmless = waits_harmlessly(&statement);
        if harmless {
            client.batch_execute("SET lock_timeout = 0").await?;
        }
        let outcome = client.batch_execute(&statement).await;
        if harmless {
            client.batch_execute(lock_timeout).await?;
        }
        match outcome {
            Ok(()) => {}
            Err(error) if error.code() == Some(&SqlState::DUPLICATE_OBJECT) => {
                tracing::info!(version, name, %error, "a statement found its work done by an earlier run");
            }
            Err(error) => return Err(error),
        }
    }
    client.execute(RECORD, &[&version, &name]).await.map(drop)
}

/// Drops the index `name` if a failed concurrent build left it INVALID: `IF NOT EXISTS` would otherwise keep it,
/// unused by every query and still paid for by every write.
async fn drop_if_invalid(
    client: &tokio_postgres::Client,
    name: &str,
    lock_timeout: &str,
) -> Result<(), tokio_postgres::Error> {
    let invalid: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid)",
            &[&name],
        )
        .await?
        .get(0);
    if invalid {
        tracing::warn!(
            index = name,
            "dropping an invalid index a failed concurrent build left behind"
        );
        client.batch_execute("SET lock_timeout = 0").await?;
        let dropped = client
            .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            .await;
        client.batch_execute(lock_timeout).await?;
        dropped?;
    }
    Ok(())
}

/// Whether a failure means "not now": a lock timeout, or a deadlock with the traffic.
fn waited_too_long(error: &tokio_postgres::Error) -> bool {
    [
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_DEADLOCK_DETECTED,
    ]
    .iter()
    .any(|code| error.code() == Some(code))
}

/// `first_backoff` doubled for each earlier try, at most `max_backoff`.
fn backoff(settings: &MigrateSettings, attempt: u32) -> Duration {
    settings
        .first_backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(settings.max_backoff)
}

fn is_no_transaction(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .is_some_and(|first| first == NO_TRANSACTION_MARKER)
}

/// The statements of a no-transaction file: each ends with a `;` at the end of a line; lines that are only
/// comments are left out.
fn statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let statement = current.trim().trim_end_matches(';').trim().to_owned();
            if !statement.is_empty() {
                statements.push(statement);
            }
            current.clear();
        }
    }
    let rest = current.trim().trim_end_matches(';').trim();
    if !rest.is_empty() {
        statements.push(rest.to_owned());
    }
    statements
}

/// The index a `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name …` statement builds.
fn concurrent_index(statement: &str) -> Option<String> {
    let is = |word: &&str, expected: &str| word.eq_ignore_ascii_case(expected);
    let words: Vec<&str> = statement.split_whitespace().collect();
    let words = match words.as_slice() {
        [create, rest @ ..] if is(create, "CREATE") => rest,
        _ => return None,
    };
    let words = match words {
        [unique, rest @ ..] if is(unique, "UNIQUE") => rest,
        rest => rest,
    };
    let words = match words {
        [index, concurrently, rest @ ..]
            if is(index, "INDEX") && is(concurrently, "CONCURRENTLY") =>
        {
            rest
        }
        _ => return None,
    };
    let words = match words {
        [r#if, not, exists, rest @ ..]
            if is(r#if, "IF") && is(not, "NOT") && is(exists, "EXISTS") =>
        {
            rest
        }
        rest => rest,
    };
    words
        .first()
        .filter(|name| !is(name, "ON"))
        .map(|name| (*name).to_owned())
}

/// Statements whose lock waits block nobody's reads or writes: concurrent index builds and drops, validations.
fn waits_harmlessly(statement: &str) -> bool {
    let words: Vec<String> = statement
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    words.iter().any(|word| word == "CONCURRENTLY")
        || words
            .windows(2)
            .any(|pair| pair[0] == "VALIDATE" && pair[1] == "CONSTRAINT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_no_transaction_file_is_split_at_semicolons_ending_lines() {
        let sql = "-- snowlink: no-transaction\n-- why\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx\n    ON links (a);\n\nALTER TABLE links VALIDATE CONSTRAINT c;\n";
        assert!(is_no_transaction(sql));
        assert_eq!(
            statements(sql),
            vec![
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx\n    ON links (a)".to_owned(),
                "ALTER TABLE links VALIDATE CONSTRAINT c".to_owned(),
            ]
        );
        assert!(!is_no_transaction("ALTER TABLE links ADD COLUMN x int;"));
    }

    #[test]
    fn the_index_of_a_concurrent_build_is_named() {
        let named = |statement: &str| concurrent_index(statement);
        assert_eq!(
            named("CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON links (a)").as_deref(),
            Some("a_idx")
        );
        assert_eq!(
            named("create unique index concurrently b_idx on links (b)").as_deref(),
            Some("b_idx")
        );
        assert_eq!(named("CREATE INDEX a_idx ON links (a)"), None);
        assert_eq!(named("CREATE INDEX CONCURRENTLY ON links (a)"), None);
        assert_eq!(named("ALTER TABLE links ADD COLUMN x int"), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_bound() {
        let settings = MigrateSettings::default();
        assert_eq!(backoff(&settings, 1), Duration::from_millis(500));
        assert_eq!(backoff(&settings, 2), Duration::from_secs(1));
        assert_eq!(backoff(&settings, 30), Duration::from_secs(10));
    }
}
