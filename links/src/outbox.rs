//! The SQL of the invalidation outbox (`cache_invalidations`, migration 0005): a delete, disable or enable writes
//! the code it changed there in the same statement as the change, and the row goes once Redis has dropped the code
//! and every redirect replica has been told. So a change made while Redis is down is invalidated once it is back,
//! instead of a cached redirect outliving a 204.

use database::DbError;

use crate::store::Store;

/// Queues the code returned by the statement `changed` (a CTE that returns `code`) in the outbox; the whole
/// statement returns the queued code and its version. A macro so that `concat!` builds each statement once.
macro_rules! queue_changed {
    ($changed:expr) => {
        concat!(
            "WITH changed AS (",
            $changed,
            ") INSERT INTO cache_invalidations (code) SELECT code FROM changed
             ON CONFLICT (code) DO UPDATE
                 SET version = nextval('cache_invalidations_version'), queued_at = now()
             RETURNING code, version"
        )
    };
}
pub(crate) use queue_changed;

/// An invalidation owed to Redis and the redirect replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// The code to drop and announce.
    pub code: String,
    /// Its outbox row's version: a later change to the same code queues a new one.
    pub version: i64,
}

impl Owed {
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            code: row.get(0),
            version: row.get(1),
        }
    }
}

impl Store {
    /// Up to `limit` owed invalidations, oldest first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn owed_invalidations(&self, limit: i64) -> Result<Vec<Owed>, DbError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT code, version FROM cache_invalidations ORDER BY queued_at, code LIMIT $1",
            )
            .await?;
        let rows = client.query(&statement, &[&limit]).await?;
        Ok(rows.iter().map(Owed::from_row).collect())
    }

    /// Removes delivered invalidations from the outbox; a row whose code was changed again since (a newer
    /// version) stays, since that change is not delivered yet.
    ///
    /// # Errors
    /// When the database fails (the rows stay, and are delivered again: an invalidation is idempotent).
    pub async fn invalidations_delivered(&self, delivered: &[Owed]) -> Result<u64, DbError> {
        if delivered.is_empty() {
            return Ok(0);
        }
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "DELETE FROM cache_invalidations AS owed
                 USING unnest($1::text[], $2::bigint[]) AS done (code, version)
                 WHERE owed.code = done.code AND owed.version = done.version",
            )
            .await?;
        let codes: Vec<&str> = delivered.iter().map(|owed| owed.code.as_str()).collect();
        let versions: Vec<i64> = delivered.iter().map(|owed| owed.version).collect();
        Ok(client.execute(&statement, &[&codes, &versions]).await?)
    }
}
