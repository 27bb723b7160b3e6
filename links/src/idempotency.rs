//! The SQL behind `Idempotency-Key`: claiming a key inside the transaction that creates the links, reading a
//! stored answer back, recording the new one, and purging answers past their 24 hours.
//!
//! Claim and record run in the caller's transaction, with the links: a crash or a failure anywhere before the
//! commit leaves neither links nor answer, so a retry really retries; after it, the retry gets the answer.

use database::DbError;
use deadpool_postgres::Transaction;
use sha2::{Digest, Sha256};

use crate::store::Store;

/// How long an answer is replayed: a retry a day later is a new request.
pub const KEEP_ANSWERS_HOURS: i32 = 24;

/// A stored answer, replayed as it was first sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, if it had one.
    pub location: Option<String>,
    /// The JSON body, byte for byte.
    pub body: Vec<u8>,
}

/// What a claimed key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nothing yet: this transaction owns the key until it ends.
    Fresh,
    /// The answer to the same request.
    Replay(StoredAnswer),
    /// An answer to a different request (another body or route).
    Reused,
    /// Another transaction holds the key right now: its request is still being answered.
    InFlight,
}

/// Claims `key` of `owner_id` for a request whose fingerprint is `request_hash`, in `tx`.
///
/// The transaction-scoped advisory lock is what tells a concurrent duplicate (in flight) from a retry: it is
/// taken without waiting, and held until the transaction that creates the links and records the answer ends.
/// The stored answer is read by a second statement, after the lock: a single statement would read with a
/// snapshot taken before the lock was granted and miss an answer committed in between.
///
/// # Errors
/// When the database fails.
pub async fn claim(
    tx: &Transaction<'_>,
    owner_id: i64,
    key: &str,
    request_hash: &[u8],
) -> Result<Claim, DbError> {
    let lock = tx
        .prepare_cached("SELECT pg_try_advisory_xact_lock($1)")
        .await?;
    let locked: bool = tx
        .query_one(&lock, &[&lock_key(owner_id, key)])
        .await?
        .get(0);
    if !locked {
        return Ok(Claim::InFlight);
    }
    let statement = tx
        .prepare_cached(
            "SELECT request_hash, status, location, body FROM idempotency_keys
             WHERE owner_id = $1 AND key = $2 AND created_at > now() - make_interval(hours => $3)",
        )
        .await?;
    let Some(row) = tx
        .query_opt(&statement, &[&owner_id, &key, &KEEP_ANSWERS_HOURS])
        .await?
    else {
        return Ok(Claim::Fresh);
    };
    if row.get::<_, &[u8]>(0) != request_hash {
        return Ok(Claim::Reused);
    }
    Ok(Claim::Replay(StoredAnswer {
        status: u16::try_from(row.get::<_, i16>(1)).unwrap_or(500),
        location: row.get(2),
        body: row.get(3),
    }))
}

/// Records `answer` for the key claimed in `tx` (overwriting an answer past its 24 hours not yet purged).
///
/// # Errors
/// When the database fails.
pub async fn record(
    tx: &Transaction<'_>,
    owner_id: i64,
    key: &str,
    request_hash: &[u8],
    answer: &StoredAnswer,
) -> Result<(), DbError> {
    let statement = tx
        .prepare_cached(
            "INSERT INTO idempotency_keys (owner_id, key, request_hash, status, location, body)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (owner_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,
                 status = EXCLUDED.status, location = EXCLUDED.location, body = EXCLUDED.body,
                 created_at = now()",
        )
        .await?;
    let status = i16::try_from(answer.status).unwrap_or(i16::MAX);
    tx.execute(
        &statement,
        &[
            &owner_id,
            &key,
            &request_hash,
            &status,
            &answer.location,
            &answer.body,
        ],
    )
    .await?;
    Ok(())
}

impl Store {
    /// Deletes up to `batch` answers past their 24 hours; returns how many. `SKIP LOCKED` keeps concurrent passes
    /// apart, as the link purge does.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn purge_expired_answers(&self, batch: i64) -> Result<u64, DbError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "DELETE FROM idempotency_keys WHERE (owner_id, key) IN (
                 SELECT owner_id, key FROM idempotency_keys
                 WHERE created_at <= now() - make_interval(hours => $2)
                 LIMIT $1 FOR UPDATE SKIP LOCKED)",
            )
            .await?;
        Ok(client
            .execute(&statement, &[&batch, &KEEP_ANSWERS_HOURS])
            .await?)
    }
}

/// The advisory lock of one (owner, key): 64 bits of a SHA-256, so two keys share a lock (and one of them sees
/// a spurious 409 for a moment) with negligible odds.
fn lock_key(owner_id: i64, key: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(owner_id.to_be_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use database::{pool, PoolOptions};

    use crate::schema;

    #[tokio::test]
    async fn a_second_transaction_sees_the_key_in_flight_then_the_recorded_answer() {
        let test_db = testkit::TestDb::create().await;
        let pool = pool(&test_db.url, "tests", PoolOptions::default()).expect("pool");
        schema::migrate(&pool).await.expect("migrations");
        let store = crate::store::Store::new(pool.clone());
        let (owner, _) = store.create_api_key("tests").await.expect("key");
        let answer = StoredAnswer {
            status: 201,
            location: Some("http://s/x".into()),
            body: b"{}".to_vec(),
        };
        let (mut first, mut second) = (pool.get().await.expect("c"), pool.get().await.expect("c"));

        let first_tx = first.transaction().await.expect("tx");
        assert_eq!(
            claim(&first_tx, owner, "k", b"h").await.expect("claim"),
            Claim::Fresh
        );
        let second_tx = second.transaction().await.expect("tx");
        assert_eq!(
            claim(&second_tx, owner, "k", b"h").await.expect("claim"),
            Claim::InFlight
        );
        second_tx.rollback().await.expect("rollback");
        record(&first_tx, owner, "k", b"h", &answer)
            .await
            .expect("record");
        first_tx.commit().await.expect("commit");

        let retry = second.transaction().await.expect("tx");
        assert_eq!(
            claim(&retry, owner, "k", b"h").await.expect("claim"),
            Claim::Replay(answer)
        );
        assert_eq!(
            claim(&retry, owner, "k", b"other").await.expect("claim"),
            Claim::Reused
        );
    }
}
