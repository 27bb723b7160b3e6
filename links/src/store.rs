//! The SQL for links and API keys. Every statement is parameterised and prepared once per connection
//! (`prepare_cached`), since the same few statements run on every request.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use database::DbError;

use crate::{
    apikey,
    model::{Link, RedirectStatus, Resolution},
};

/// A link to insert.
#[derive(Debug, Clone)]
pub struct NewLink<'a> {
    /// The Snowflake ID.
    pub id: i64,
    /// base62 of the ID, or the alias.
    pub code: &'a str,
    /// The normalised URL.
    pub long_url: &'a str,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The redirect status.
    pub redirect: RedirectStatus,
    /// The creating API key.
    pub owner_id: Option<i64>,
    /// Sorted, unique, checked tags.
    pub tags: &'a [String],
    /// The Argon2id hash of its password, if any.
    pub password_hash: Option<&'a str>,
    /// Its visit limit, if any.
    pub max_hits: Option<i64>,
}

/// Links and API keys in one PostgreSQL database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

/// The columns [`link_from_row`] reads, in its order. A macro, not a `const`, so that `concat!` can build each
/// statement that names them once, at compile time, instead of a `format!` per call.
macro_rules! link_columns {
    () => {
        "id, code, long_url, created_at, expires_at, redirect_status, owner_id, tags, password_hash, max_hits"
    };
}
pub(crate) use link_columns;

/// How many columns [`link_columns`] names: a statement's own columns after them start at this index.
pub(crate) const LINK_COLUMN_COUNT: usize = 10;

/// The caller's newest live link for each of many URLs (see [`find_reusable`]): one statement for a whole
/// batch, `DISTINCT ON` keeping the newest per URL. `url_hash = ANY` keeps it on the (owner, url_hash) index.
const FIND_REUSABLE: &str = concat!(
    "SELECT DISTINCT ON (long_url) ",
    link_columns!(),
    " FROM links
     WHERE owner_id = $1 AND url_hash = ANY($2) AND long_url = ANY($3)
       AND deleted_at IS NULL AND disabled_at IS NULL AND (expires_at IS NULL OR expires_at > now())
       AND password_hash IS NULL AND max_hits IS NULL
     ORDER BY long_url, id DESC"
);

impl Store {
    /// A store on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The pool, for readiness checks and migrations.
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
                        password_hash, max_hits
                 FROM links WHERE code = ANY($1)
                 UNION ALL
                 SELECT code, NULL, NULL, NULL, NULL, true, NULL, NULL FROM retired_codes WHERE code = ANY($1)",
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

    /// The owner ID of the live API key whose hash ([`apikey::hash`]) is `key_hash`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn owner_of_key_hash(&self, key_hash: &[u8]) -> Result<Option<i64>, DbError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached("SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .await?;
        let row = client.query_opt(&statement, &[&key_hash]).await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Creates an API key named `name`; returns its ID and the key, which is not stored and cannot be shown again.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn create_api_key(&self, name: &str) -> Result<(i64, String), DbError> {
        let client = self.pool.get().await?;
        let key = apikey::generate();
        let row = client
            .query_one(
                "INSERT INTO api_keys (name, key_hash) VALUES ($1, $2) RETURNING id",
                &[&name, &apikey::hash(&key)],
            )
            .await?;
        Ok((row.get(0), key))
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

/// Hit counts, written by the redirect in batches and read by the shortener.
impl Store {
    /// All hits of a link so far (as flushed by the redirects; the last flush interval is not in yet).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn total_hits(&self, link_id: i64) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT COALESCE(sum(hits), 0)::bigint FROM link_hits WHERE link_id = $1",
            )
            .await?;
        Ok(client.query_one(&statement, &[&link_id]).await?.get(0))
    }
}
