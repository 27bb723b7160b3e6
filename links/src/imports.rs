//! The SQL of imports (links brought over from another shortener's export file): which codes are taken and by
//! what, which URLs the owner already has a live link for, and one statement inserting a batch of imported links
//! with the creation time and visit total their export carried.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use database::DbError;
use sha2::{Digest, Sha256};

use crate::{
    model::Link,
    store::{link_columns, link_from_row, Store},
};

/// A link as an import file gave it, checked, with its ID and the key it is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedLink {
    /// The Snowflake ID.
    pub id: i64,
    /// The key it is stored under ([`crate::domain::link_key`] of its code).
    pub code: String,
    /// The normalised URL.
    pub long_url: String,
    /// When the other shortener created it; now when the file does not say.
    pub created_at: Option<DateTime<Utc>>,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Sorted, unique, checked tags.
    pub tags: Vec<String>,
    /// The visits the other shortener counted (0: none), kept as hits of the day it was created.
    pub hits: i64,
}

/// Who holds a taken code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The owner of the link holding it; `None` for a retired code (a purged link's tombstone) or a link without.
    pub owner_id: Option<i64>,
    /// The link's URL; `None` for a retired code.
    pub long_url: Option<String>,
}

/// Inserts a batch of imported links and, for those with visits, one `link_hits` row on their creation day; the
/// hits only for links actually inserted (a taken or retired code is skipped, as in `store::insert_links`). The
/// link rows' foreign keys are checked at the end of the statement, so the sibling insert may refer to them.
const INSERT_IMPORTED: &str = concat!(
    "WITH inserted AS (
         INSERT INTO links (id, code, long_url, url_hash, created_at, expires_at, owner_id, tags)
         SELECT id, code, long_url, url_hash, COALESCE(created_at, now()), expires_at, $7,
                string_to_array(tags, ' ')
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[], $6::timestamptz[],
                     $8::text[]) AS u(id, code, long_url, url_hash, created_at, expires_at, tags)
         WHERE NOT EXISTS (SELECT 1 FROM retired_codes r WHERE r.code = u.code)
         ON CONFLICT DO NOTHING
         RETURNING ",
    link_columns!(),
    "
     ), visits AS (
         INSERT INTO link_hits (link_id, day, hits)
         SELECT i.id, (i.created_at AT TIME ZONE 'UTC')::date, v.hits
         FROM inserted i JOIN unnest($1::bigint[], $9::bigint[]) AS v(id, hits) ON v.id = i.id
         WHERE v.hits > 0
     )
     SELECT * FROM inserted"
);

impl Store {
    /// Who holds each of `keys` that is taken (by a link, whatever its state, or a retired code's tombstone).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn code_holders(&self, keys: &[&str]) -> Result<HashMap<String, Holder>, DbError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT code, owner_id, long_url FROM links WHERE code = ANY($1)
                 UNION ALL
                 SELECT code, NULL, NULL FROM retired_codes WHERE code = ANY($1)",
            )
            .await?;
        let rows = client.query(&statement, &[&keys]).await?;
        let mut holders = HashMap::with_capacity(rows.len());
        for row in rows {
            let holder = Holder {
                owner_id: row.get(1),
                long_url: row.get(2),
            };
            // A link's row wins over a tombstone of the same code.
            let code: String = row.get(0);
            if holder.long_url.is_some() || !holders.contains_key(&code) {
                holders.insert(code, holder);
            }
        }
        Ok(holders)
    }

    /// The key of `owner_id`'s newest live link for each of `long_urls` that has one on the domain `host` (`None`:
    /// the default domain), by URL: a row without a code reuses it instead of making a second link.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn live_links_on(
        &self,
        owner_id: i64,
        host: Option<&str>,
        long_urls: &[&str],
    ) -> Result<HashMap<String, String>, DbError> {
        if long_urls.is_empty() {
            return Ok(HashMap::new());
        }
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT DISTINCT ON (long_url) long_url, code FROM links
                 WHERE owner_id = $1 AND url_hash = ANY($2) AND long_url = ANY($3)
                   AND deleted_at IS NULL AND disabled_at IS NULL AND (expires_at IS NULL OR expires_at > now())
                   AND CASE WHEN $4::text IS NULL THEN strpos(code, '/') = 0
                            ELSE starts_with(code, $4::text || '/') END
                 ORDER BY long_url, id DESC",
            )
            .await?;
        let hashes: Vec<Vec<u8>> = long_urls
            .iter()
            .map(|url| Sha256::digest(url.as_bytes()).to_vec())
            .collect();
        let rows = client
            .query(&statement, &[&owner_id, &hashes, &long_urls, &host])
            .await?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Inserts `links` of `owner_id` with their visits (see [`INSERT_IMPORTED`]) in one statement that PostgreSQL
    /// cancels after `within`, committed when this returns; returns the links inserted (a link whose code was
    /// taken meanwhile is absent).
    ///
    /// # Errors
    /// When the database fails or `within` passes (then nothing of the batch was inserted).
    pub async fn insert_imported(
        &self,
        owner_id: i64,
        links: &[ImportedLink],
        within: Duration,
    ) -> Result<Vec<Link>, DbError> {
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        database::bound_transaction(&tx, within).await?;
        let statement = tx.prepare_cached(INSERT_IMPORTED).await?;
        let ids: Vec<i64> = links.iter().map(|link| link.id).collect();
        let codes: Vec<&str> = links.iter().map(|link| link.code.as_str()).collect();
        let urls: Vec<&str> = links.iter().map(|link| link.long_url.as_str()).collect();
        let hashes: Vec<Vec<u8>> = urls
            .iter()
            .map(|url| Sha256::digest(url.as_bytes()).to_vec())
            .collect();
        let created: Vec<Option<DateTime<Utc>>> =
            links.iter().map(|link| link.created_at).collect();
        let expiries: Vec<Option<DateTime<Utc>>> =
            links.iter().map(|link| link.expires_at).collect();
        // One space-separated string per link, split in the statement (unnest flattens 2-D arrays).
        let tags: Vec<String> = links.iter().map(|link| link.tags.join(" ")).collect();
        let hits: Vec<i64> = links.iter().map(|link| link.hits).collect();
        let rows = tx
            .query(
                &statement,
                &[
                    &ids, &codes, &urls, &hashes, &created, &expiries, &owner_id, &tags, &hits,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(link_from_row).collect())
    }
}
