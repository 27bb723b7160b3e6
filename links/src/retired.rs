//! Tombstones (`retired_codes`): the cleanup's purge of expired and deleted links, which keeps each code as a
//! tombstone so its short URL answers 410 and is never handed out again, and the freeing of tombstones past their
//! grace period. Both lock their rows `FOR UPDATE SKIP LOCKED`, so passes running at once take disjoint rows and
//! never wait on each other.

use database::DbError;

use crate::store::Store;

/// One batch, one statement, one transaction. `link_hits` rows go with their links by the foreign key's
/// `ON DELETE CASCADE`. The two branches of the filter match the two partial indexes (expiring links; deleted
/// links), so the planner combines them instead of scanning the table; `= ANY (ARRAY(…))` rather than `IN (…)`
/// makes the delete itself a primary-key lookup (with `IN`, the planner was seen hash-joining the whole table).
const RETIRE_BATCH: &str = "
    WITH gone AS (
        DELETE FROM links WHERE id = ANY (ARRAY(
            SELECT id FROM links
            WHERE (expires_at <= now() AND deleted_at IS NULL) OR deleted_at IS NOT NULL
            LIMIT $1
            FOR UPDATE SKIP LOCKED))
        RETURNING code
    ), retired AS (
        INSERT INTO retired_codes (code, retired_at) SELECT code, now() FROM gone
        ON CONFLICT (code) DO NOTHING
    )
    SELECT code FROM gone";

/// Frees up to `$1` codes retired more than `$2` days ago (see [`Store::free_retired_codes`]).
const FREE_RETIRED: &str = "
    WITH freed AS (
        DELETE FROM retired_codes WHERE code = ANY (ARRAY(
            SELECT code FROM retired_codes
            WHERE retired_at < now() - make_interval(days => $2)
            LIMIT $1
            FOR UPDATE SKIP LOCKED))
        RETURNING code
    )
    SELECT code FROM freed";

impl Store {
    /// Purges up to `batch` expired or deleted links (their hits go with them), keeping their codes as tombstones
    /// (see [`RETIRE_BATCH`]); returns their codes (for the caller to drop from caches).
    ///
    /// # Errors
    /// When the database fails (then nothing changed).
    pub async fn retire_expired_links(&self, batch: i64) -> Result<Vec<String>, DbError> {
        let client = self.pool().get().await?;
        let statement = client.prepare_cached(RETIRE_BATCH).await?;
        let rows = client.query(&statement, &[&batch]).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Drops up to `batch` tombstones older than `grace_days`, so an alias that expired long ago can be taken
    /// again; returns their codes (for the caller to drop from caches). Rows locked by a concurrent pass are
    /// skipped, as the purge does.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn free_retired_codes(
        &self,
        batch: i64,
        grace_days: i32,
    ) -> Result<Vec<String>, DbError> {
        let client = self.pool().get().await?;
        let statement = client.prepare_cached(FREE_RETIRED).await?;
        let rows = client.query(&statement, &[&batch, &grace_days]).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }
}
