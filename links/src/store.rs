//! The way into the store ([`Store`], a pool; see the crate's doc for the convention) and the SQL on the hot
//! paths: the redirect's lookup of codes, and the create path's reuse lookup and multi-row insert. Every statement
//! is parameterised and prepared once per connection (`prepare_cached`), since the same few statements run on
//! every request.

use std::{borrow::Borrow, collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use database::DbError;
use deadpool_postgres::{GenericClient, Pool};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use crate::model::{Link, NewLink, RedirectStatus, Resolution};

/// Links, API keys and hits in one PostgreSQL database: callers run every statement through one of its methods
/// (each module of this crate adds those of its subject), or through a function of the same module when the
/// statement joins their own transaction.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

/// The columns [`link_from_row`] reads, in its order. A macro, not a `const`, so that `concat!` can build each
/// statement that names them once, at compile time, instead of a `format!` per call.
macro_rules! link_columns {
    () => {
        "id, code, long_url, created_at, expires_at, redirect_status, owner_id, tags, password_hash, max_hits, \
         routing::text"
    };
}
pub(crate) use link_columns;

/// How many columns [`link_columns`] names: a statement's own columns after them start at this index.
pub(crate) const LINK_COLUMN_COUNT: usize = 11;

/// The caller's newest live link for each of many URLs (see [`find_reusable`]): one statement for a whole
/// batch, `DISTINCT ON` keeping the newest per URL. `url_hash = ANY` keeps it on the (owner, url_hash) index.
const FIND_REUSABLE: &str = concat!(
    "SELECT DISTINCT ON (long_url) ",
    link_columns!(),
    " FROM links
     WHERE owner_id = $1 AND url_hash = ANY($2) AND long_url = ANY($3)
       AND deleted_at IS NULL AND disabled_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       AND password_hash IS NULL AND max_hits IS NULL AND routing IS NULL AND strpos(code, '/') = 0
     ORDER BY long_url, id DESC"
);

/// Many links in one statement (see [`insert_links`]).
const INSERT_LINKS: &str = concat!(
    "INSERT INTO links (id, code, long_url, url_hash, expires_at, redirect_status, owner_id, tags,
                        password_hash, max_hits, routing)
     SELECT id, code, long_url, url_hash, expires_at, redirect_status, owner_id,
            string_to_array(tags, ' '), password_hash, max_hits, routing::jsonb
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[],
                 $6::smallint[], $7::bigint[], $8::text[], $9::text[], $10::bigint[], $11::text[])
              AS u(id, code, long_url, url_hash, expires_at, redirect_status, owner_id, tags, password_hash,
                   max_hits, routing)
     WHERE NOT EXISTS (SELECT 1 FROM retired_codes r WHERE r.code = u.code)
     ON CONFLICT DO NOTHING
     RETURNING ",
    link_columns!()
);

impl Store {
    /// A store on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The pool, for readiness checks, migrations and a caller's own transaction (see the crate's doc).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// What a redirect needs for `code`, whatever its state (expiry is left to [`Resolution::at`]). The code of a
    /// link purged by the cleanup is a tombstone in `retired_codes`: gone, never unknown. One round trip.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn resolve(&self, code: &str) -> Result<Resolution, DbError> {
        let mut found = self.resolve_many(&[code]).await?;
        Ok(found.pop().unwrap_or(Resolution::Unknown))
    }

    /// The owners with a click webhook that is not paused: the redirect takes click events for their links.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn click_webhook_owners(&self) -> Result<Vec<i64>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT DISTINCT owner_id FROM webhooks WHERE paused_at IS NULL AND 'click' = ANY(events)",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// [`resolve`](Self::resolve) for each of `codes`, in order, in one statement: the redirect batches the
    /// lookups its requests make at the same moment, so the round trip, the statement's overhead and the wake-ups
    /// on both ends are paid once per batch instead of once per code (most of a database miss's cost).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn resolve_many<S: AsRef<str> + Sync>(
        &self,
        codes: &[S],
    ) -> Result<Vec<Resolution>, DbError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT code, id, long_url, redirect_status, expires_at,
                        (deleted_at IS NOT NULL OR disabled_at IS NOT NULL OR exhausted_at IS NOT NULL),
                        password_hash, max_hits, routing::text, owner_id
                 FROM links WHERE code = ANY($1)
                 UNION ALL
                 SELECT code, NULL, NULL, NULL, NULL, true, NULL, NULL, NULL, NULL FROM retired_codes
                 WHERE code = ANY($1)",
            )
            .await?;
        let asked: Vec<&str> = codes.iter().map(AsRef::as_ref).collect();
        let rows = client.query(&statement, &[&asked]).await?;
        let mut found: HashMap<String, Resolution> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let is_link = row.get::<_, Option<i64>>(1).is_some();
            let resolution = resolution_from_row(row);
            // A live link's row wins over a tombstone of the same code, whatever order the rows came in.
            match found.entry(row.get(0)) {
                std::collections::hash_map::Entry::Occupied(mut entry) if is_link => {
                    entry.insert(resolution);
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(resolution);
                }
            }
        }
        Ok(asked
            .iter()
            .map(|code| found.get(*code).cloned().unwrap_or(Resolution::Unknown))
            .collect())
    }

    /// The caller's newest live link for each of `long_urls` that has one (see [`find_reusable`]), on a pooled
    /// connection.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn find_reusable(
        &self,
        owner_id: i64,
        long_urls: &[&str],
    ) -> Result<HashMap<String, Link>, DbError> {
        let client = self.pool.get().await?;
        find_reusable(&client, owner_id, long_urls).await
    }

    /// Inserts many links with one multi-row statement (see [`insert_links`]) in a transaction of its own whose
    /// statements and lock waits PostgreSQL itself cancels after `within`, committed when this returns. The
    /// server-side bound is what keeps a caller's deadline honest: a statement abandoned by the client alone
    /// would go on waiting for its lock and commit after the caller was told it failed.
    ///
    /// # Errors
    /// When the database fails or `within` passes (then nothing was inserted).
    pub async fn insert_links<L: Borrow<NewLink> + Sync>(
        &self,
        links: &[L],
        within: Duration,
    ) -> Result<Vec<Link>, DbError> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        // `ON CONFLICT DO NOTHING` and the `retired_codes` filter skip every taken code, but the filter reads the
        // statement's snapshot: an insert that waited on the cleanup purging the same code (deleted link →
        // tombstone, one transaction) is refused by the trigger instead, with unique_violation. Run again, the
        // statement sees the tombstone and skips that code; the cleanup purges a code only once.
        let mut connection = InFlight(Some(self.pool().get().await?));
        let mut attempts_left = 2;
        loop {
            let Some(client) = connection.0.as_ref() else {
                return Err(DbError::unavailable("the insert's connection is gone"));
            };
            match insert_in_own_transaction(client, links, within).await {
                Ended::RolledBack(error) if attempts_left > 0 && error.is_unique_violation() => {
                    attempts_left -= 1;
                }
                Ended::RolledBack(error) => {
                    connection.settled();
                    return Err(error);
                }
                Ended::Committed(inserted) => {
                    connection.settled();
                    return Ok(inserted);
                }
                // Dropped with `connection`: closed, not pooled.
                Ended::Unknown(error) => return Err(error),
            }
        }
    }
}

/// How [`insert_in_own_transaction`] left its connection.
enum Ended {
    Committed(Vec<Link>),
    /// Failed, and rolled back: the connection is out of any transaction.
    RolledBack(DbError),
    /// The COMMIT or ROLLBACK itself failed: what the connection holds is unknown.
    Unknown(DbError),
}

/// `links` inserted in a transaction of their own on `client`, PostgreSQL bounding it by `within`. BEGIN, the bound
/// and the insert leave in one write (tokio-postgres pipelines requests polled together); the COMMIT leaves only
/// once the insert has answered, so an insert PostgreSQL cut short at its bound never commits; after a failure a
/// ROLLBACK. Two round trips where a `Transaction` takes four, on every create (measured: PostgreSQL spent ~0.9
/// ms of CPU per single create, most of it per round trip rather than in the insert).
async fn insert_in_own_transaction<L: Borrow<NewLink> + Sync>(
    client: &deadpool_postgres::Client,
    links: &[L],
    within: Duration,
) -> Ended {
    let (begun, bound, inserted) = tokio::join!(
        client.batch_execute("BEGIN"),
        database::bound_transaction(client, within),
        insert_links(client, links),
    );
    let outcome = begun.map_err(DbError::from).and(bound).and(inserted);
    let end = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    match (client.batch_execute(end).await, outcome) {
        (Err(error), _) => Ended::Unknown(error.into()),
        (Ok(()), Ok(inserted)) => Ended::Committed(inserted),
        (Ok(()), Err(error)) => Ended::RolledBack(error),
    }
}

/// A pooled connection with a transaction in flight. Dropped before [`settled`](Self::settled) (its request was
/// abandoned midway, or the COMMIT or ROLLBACK failed) it is closed rather than given back to the pool, whose next
/// user would find itself inside this transaction; PostgreSQL rolls back what the closed session had open.
struct InFlight(Option<deadpool_postgres::Object>);

impl InFlight {
    /// The transaction ended: the connection goes back to the pool.
    fn settled(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(deadpool_postgres::Object::take(object));
        }
    }
}

/// A row of [`Store::resolve_many`]'s statement as what a redirect needs.
fn resolution_from_row(row: &Row) -> Resolution {
    if row.get::<_, bool>(5) {
        return Resolution::Gone;
    }
    let max_hits: Option<i64> = row.get(7);
    Resolution::Live {
        id: row.get(1),
        long_url: row.get(2),
        redirect: redirect_from_row(row, 3),
        expires_at: row.get(4),
        password_hash: row.get(6),
        limited: max_hits.is_some(),
        max_hits,
        routing: crate::model::routing_of(row.get(8)),
        owner: row.get(9),
    }
}

fn redirect_from_row(row: &Row, index: usize) -> RedirectStatus {
    // The CHECK constraint allows only the four codes; the default covers a row edited by hand.
    u16::try_from(row.get::<_, i16>(index))
        .ok()
        .and_then(RedirectStatus::from_code)
        .unwrap_or_default()
}

pub(crate) fn link_from_row(row: &Row) -> Link {
    Link {
        id: row.get(0),
        code: row.get(1),
        long_url: row.get(2),
        created_at: row.get(3),
        expires_at: row.get(4),
        redirect: redirect_from_row(row, 5),
        owner_id: row.get(6),
        tags: row.get(7),
        password_hash: row.get(8),
        max_hits: row.get(9),
        routing: row.get(10),
    }
}

/// The caller's newest live link for each of `long_urls` that has one (the "reuse" lookup), by URL, in one
/// statement on `client` (the pool's, or a transaction's).
///
/// # Errors
/// When the database fails.
pub async fn find_reusable(
    client: &impl GenericClient,
    owner_id: i64,
    long_urls: &[&str],
) -> Result<HashMap<String, Link>, DbError> {
    if long_urls.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = client.prepare_cached(FIND_REUSABLE).await?;
    let hashes: Vec<Vec<u8>> = long_urls
        .iter()
        .map(|url| Sha256::digest(url.as_bytes()).to_vec())
        .collect();
    let rows = client
        .query(&statement, &[&owner_id, &hashes, &long_urls])
        .await?;
    Ok(rows
        .iter()
        .map(link_from_row)
        .map(|link| (link.long_url.clone(), link))
        .collect())
}

/// Inserts many links with one multi-row statement on `client` (the caller commits). A link whose code or ID is
/// taken (by an existing link, a retired code, or an earlier one in the same batch) is skipped: the result holds
/// the links that were inserted, and the caller tells the others apart by ID. `links` are owned or borrowed (the
/// shortener's group insert borrows them from the requests it groups).
///
/// # Errors
/// When the database fails (then nothing was inserted).
pub async fn insert_links<L: Borrow<NewLink> + Sync>(
    client: &impl GenericClient,
    links: &[L],
) -> Result<Vec<Link>, DbError> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let links: Vec<&NewLink> = links.iter().map(Borrow::borrow).collect();
    let statement = client.prepare_cached(INSERT_LINKS).await?;
    let ids: Vec<i64> = links.iter().map(|link| link.id).collect();
    let codes: Vec<&str> = links.iter().map(|link| link.code.as_str()).collect();
    let urls: Vec<&str> = links.iter().map(|link| link.long_url.as_str()).collect();
    let hashes: Vec<Vec<u8>> = links
        .iter()
        .map(|link| Sha256::digest(link.long_url.as_bytes()).to_vec())
        .collect();
    let expiries: Vec<Option<DateTime<Utc>>> = links.iter().map(|link| link.expires_at).collect();
    let statuses: Vec<i16> = links
        .iter()
        .map(|link| i16::try_from(link.redirect.code()).unwrap_or(302))
        .collect();
    let owners: Vec<Option<i64>> = links.iter().map(|link| link.owner_id).collect();
    // unnest() flattens a two-dimensional array, so each link's tags travel as one space-separated string
    // (a tag holds no space) and are split back in the statement.
    let tags: Vec<String> = links.iter().map(|link| link.tags.join(" ")).collect();
    let passwords: Vec<Option<&str>> = links
        .iter()
        .map(|link| link.password_hash.as_deref())
        .collect();
    let limits: Vec<Option<i64>> = links.iter().map(|link| link.max_hits).collect();
    let routings: Vec<Option<&str>> = links.iter().map(|link| link.routing.as_deref()).collect();
    let rows = client
        .query(
            &statement,
            &[
                &ids, &codes, &urls, &hashes, &expiries, &statuses, &owners, &tags, &passwords,
                &limits, &routings,
            ],
        )
        .await?;
    Ok(rows.iter().map(link_from_row).collect())
}
