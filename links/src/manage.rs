//! The SQL behind an owner managing their links: read with hits, list and search newest first by keyset, export
//! in pages of bounded size, change, soft delete (each change with its invalidation queued), and whether a caller
//! may see a link.

use std::time::Duration;

use chrono::{DateTime, Utc};
use database::DbError;
use sha2::{Digest, Sha256};

use crate::{
    model::{Link, RedirectStatus},
    outbox::{queue_changed, Owed},
    store::{link_columns, link_from_row, Store, LINK_COLUMN_COUNT},
};

/// A link with its total hits.
#[derive(Debug, Clone)]
pub struct LinkWithHits {
    /// The link.
    pub link: Link,
    /// Redirects counted so far (flushed by the redirect service every interval).
    pub hits: i64,
}

/// A link's columns and its total hits after them (read back by [`with_hits`]). A macro so that `concat!` builds
/// each statement once (see [`link_columns`]).
macro_rules! link_with_hits_columns {
    () => {
        concat!(
            link_columns!(),
            ", COALESCE((SELECT sum(hits) FROM link_hits WHERE link_id = links.id), 0)::bigint"
        )
    };
}

/// The owner's live link by code (see [`Store::find_owned`]).
const FIND_OWNED: &str = concat!(
    "SELECT ",
    link_with_hits_columns!(),
    " FROM links WHERE code = $1 AND owner_id = $2 AND deleted_at IS NULL"
);

/// A page of the owner's live links (see [`Store::list_owned`]).
const LIST_OWNED: &str = concat!(
    "SELECT ",
    link_with_hits_columns!(),
    " FROM links
     WHERE owner_id = $1 AND id < $2 AND deleted_at IS NULL
     ORDER BY id DESC LIMIT $3"
);

/// A page of the owner's live links with a tag and/or whose code or URL matches an `ILIKE` pattern (see
/// [`Store::list_owned`]); `$4` or `$5` null means no such filter.
const SEARCH_OWNED: &str = concat!(
    "SELECT ",
    link_with_hits_columns!(),
    " FROM links
     WHERE owner_id = $1 AND id < $2 AND deleted_at IS NULL
       AND ($4::text IS NULL OR tags @> ARRAY[$4::text])
       AND ($5::text IS NULL OR code ILIKE $5 OR long_url ILIKE $5)
     ORDER BY id DESC LIMIT $3"
);

/// What a link's row costs in memory, roughly, in bytes: its text columns plus a fixed share for the rest. An
/// export page stops at a budget of these, so a page of 2 KB URLs holds a bounded number of bytes, not 1,000 rows'
/// worth.
macro_rules! row_bytes {
    () => {
        "(octet_length(code) + octet_length(long_url) + COALESCE(octet_length(array_to_string(tags, ' ')), 0)
          + COALESCE(octet_length(password_hash), 0) + 64)"
    };
}

/// A page of an export (see [`Store::export_page`]): at most `$3` rows and, past the first row, none that starts
/// beyond `$4` bytes. The running sum is a window over the keyset scan, which the inner `LIMIT` stops early; the
/// hits are summed only for the rows kept. `$5` (a tag) and `$6` (an `ILIKE` pattern) filter when not null.
macro_rules! export_page {
    ($filter:literal) => {
        concat!(
            "SELECT ",
            link_columns!(),
            ", COALESCE((SELECT sum(hits) FROM link_hits WHERE link_id = page.id), 0)::bigint, page_bytes
             FROM (SELECT ",
            link_columns!(),
            ", ",
            row_bytes!(),
            " AS row_bytes, sum(",
            row_bytes!(),
            ") OVER (ORDER BY id DESC) AS page_bytes
                   FROM links
                   WHERE owner_id = $1 AND id < $2 AND deleted_at IS NULL",
            $filter,
            " ORDER BY id DESC LIMIT $3) page
             WHERE page_bytes - row_bytes < $4
             ORDER BY id DESC"
        )
    };
}

/// An unfiltered export page.
const EXPORT_PAGE: &str = export_page!("");

/// A filtered export page (planned for its values, as [`SEARCH_OWNED`]).
const EXPORT_PAGE_FILTERED: &str = export_page!(
    " AND ($5::text IS NULL OR tags @> ARRAY[$5::text])
      AND ($6::text IS NULL OR code ILIKE $6 OR long_url ILIKE $6)"
);

/// One page of an export.
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// The links, newest first.
    pub links: Vec<LinkWithHits>,
    /// Whether links may follow: the page was cut by its row or byte budget rather than by the end of the set.
    pub more: bool,
}

/// Which of an owner's links a list or an export shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkFilter {
    /// Only links with this tag.
    pub tag: Option<String>,
    /// Only links whose code or URL contains this, case-insensitively.
    pub contains: Option<String>,
}

impl LinkFilter {
    /// Whether it filters anything.
    pub fn is_empty(&self) -> bool {
        self.tag.is_none() && self.contains.is_none()
    }

    /// `contains` as an `ILIKE` pattern: its own `%`, `_` and `\` escaped, so they match themselves.
    fn pattern(&self) -> Option<String> {
        self.contains.as_ref().map(|text| {
            let mut pattern = String::with_capacity(text.len() + 4);
            pattern.push('%');
            for character in text.chars() {
                if matches!(character, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(character);
            }
            pattern.push('%');
            pattern
        })
    }
}

/// The owner's soft delete, with its invalidation queued (see [`Store::delete_owned`]).
const DELETE_OWNED: &str = queue_changed!(
    "UPDATE links SET deleted_at = now()
     WHERE code = $1 AND owner_id = $2 AND deleted_at IS NULL RETURNING code"
);

/// The owner's change to a live link, its invalidation queued in the same statement, read back with its hits
/// (see [`Store::patch_owned`]). A `$n` flag says whether a nullable field was sent at all, so `null` (clear) and
/// absent (keep) differ. A new visit limit is compared with the visits counted toward it so far (people's hits
/// and bots' visits, as the redirect's flush counts them): at or under them the link is exhausted at once (410),
/// above them (or none) it is live again.
const PATCH_OWNED: &str = concat!(
    "WITH changed AS (
        UPDATE links SET
            long_url = COALESCE($3, long_url),
            url_hash = COALESCE($4, url_hash),
            redirect_status = COALESCE($5, redirect_status),
            expires_at = CASE WHEN $6 THEN $7 ELSE expires_at END,
            tags = COALESCE($8, tags),
            password_hash = CASE WHEN $9 THEN $10 ELSE password_hash END,
            max_hits = CASE WHEN $11 THEN $12 ELSE max_hits END,
            routing = CASE WHEN $13::text IS NULL THEN routing
                ELSE NULLIF(jsonb_strip_nulls(COALESCE(routing, '{}'::jsonb) || $13::jsonb), '{}'::jsonb) END,
            exhausted_at = CASE
                WHEN NOT $11 THEN exhausted_at
                WHEN $12::bigint IS NOT NULL
                     AND COALESCE((SELECT sum(hits + bots) FROM link_hits WHERE link_id = links.id), 0) >= $12
                    THEN COALESCE(exhausted_at, now())
                ELSE NULL
            END
        WHERE code = $1 AND owner_id = $2 AND deleted_at IS NULL
        RETURNING ",
    link_with_hits_columns!(),
    "
     ), queued AS (
        INSERT INTO cache_invalidations (code) SELECT code FROM changed
        ON CONFLICT (code) DO UPDATE
            SET version = nextval('cache_invalidations_version'), queued_at = now()
        RETURNING code, version
     )
     SELECT changed.*, queued.version FROM changed JOIN queued USING (code)"
);

/// A change to a link: `None` keeps a field; for nullable ones `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch<'a> {
    /// A new normalised target.
    pub long_url: Option<&'a str>,
    /// A new status.
    pub redirect: Option<RedirectStatus>,
    /// A new expiry, or none.
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// New tags (checked, sorted), replacing the old ones.
    pub tags: Option<&'a [String]>,
    /// A new password hash, or none.
    pub password_hash: Option<Option<&'a str>>,
    /// A new visit limit, or none.
    pub max_hits: Option<Option<i64>>,
    /// Changed parts of the stored rules and variants: a JSON object of the keys sent (`"rules"`, `"variants"`),
    /// each a new value or `null` to clear it; merged into what the link has (no key left: none).
    pub routing: Option<&'a str>,
}

fn with_hits(row: &tokio_postgres::Row) -> LinkWithHits {
    LinkWithHits {
        link: link_from_row(row),
        hits: row.get(LINK_COLUMN_COUNT),
    }
}

impl Store {
    /// The owner's live (not deleted) link `code` and its total hits, read within `within` (see
    /// [`database::read_within`]).
    ///
    /// # Errors
    /// When the database fails or the bound passes.
    pub async fn find_owned(
        &self,
        owner_id: i64,
        code: &str,
        within: Duration,
    ) -> Result<Option<LinkWithHits>, DbError> {
        database::read_within(self.pool(), within, async |tx| {
            let statement = tx.prepare_cached(FIND_OWNED).await?;
            let row = tx.query_opt(&statement, &[&code, &owner_id]).await?;
            Ok(row.as_ref().map(with_hits))
        })
        .await
    }

    /// Up to `limit` of the owner's live links that pass `filter`, newest first, older than the link with ID
    /// `before` if given (keyset pagination on the `(owner_id, id DESC)` index: every page costs the same).
    /// A filtered page is planned for its own values (an unnamed statement, not a cached one), so PostgreSQL
    /// picks the trigram or tag index when the pattern or tag is rare and the owner's index when it is common.
    ///
    /// Read within `within` (see [`database::read_within`]).
    ///
    /// # Errors
    /// When the database fails or the bound passes.
    pub async fn list_owned(
        &self,
        owner_id: i64,
        filter: &LinkFilter,
        before: Option<i64>,
        limit: i64,
        within: Duration,
    ) -> Result<Vec<LinkWithHits>, DbError> {
        let before = before.unwrap_or(i64::MAX);
        database::read_within(self.pool(), within, async |tx| {
            let rows = if filter.is_empty() {
                let statement = tx.prepare_cached(LIST_OWNED).await?;
                tx.query(&statement, &[&owner_id, &before, &limit]).await?
            } else {
                let pattern = filter.pattern();
                tx.query(
                    SEARCH_OWNED,
                    &[&owner_id, &before, &limit, &filter.tag, &pattern],
                )
                .await?
            };
            Ok(rows.iter().map(with_hits).collect())
        })
        .await
    }

    /// Up to `rows` of the owner's live links that pass `filter`, newest first, older than `before` if given (as
    /// [`Store::list_owned`]), cut short once they hold `bytes` (see [`row_bytes`]; the first link always comes,
    /// whatever its size). An export reads with it, so a page's memory has a bound whatever the links hold.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn export_page(
        &self,
        owner_id: i64,
        filter: &LinkFilter,
        before: Option<i64>,
        rows: i64,
        bytes: i64,
        within: Duration,
    ) -> Result<ExportPage, DbError> {
        let before = before.unwrap_or(i64::MAX);
        let found = database::read_within(self.pool(), within, async |client| {
            Ok(if filter.is_empty() {
                let statement = client.prepare_cached(EXPORT_PAGE).await?;
                client
                    .query(&statement, &[&owner_id, &before, &rows, &bytes])
                    .await?
            } else {
                let pattern = filter.pattern();
                client
                    .query(
                        EXPORT_PAGE_FILTERED,
                        &[&owner_id, &before, &rows, &bytes, &filter.tag, &pattern],
                    )
                    .await?
            })
        })
        .await?;
        // Cut by bytes: the last row kept ends at or past the budget (a set that ends exactly there costs one
        // more, empty, page).
        let through: i64 = found.last().map_or(0, |row| row.get(LINK_COLUMN_COUNT + 1));
        let more = usize::try_from(rows).is_ok_and(|full| found.len() >= full) || through >= bytes;
        Ok(ExportPage {
            links: found.iter().map(with_hits).collect(),
            more,
        })
    }

    /// Marks the owner's link `code` deleted and queues its invalidation in the same statement; `None` when there
    /// is no such live link of theirs.
    ///
    /// # Errors
    /// When the database fails (then nothing changed).
    pub async fn delete_owned(&self, owner_id: i64, code: &str) -> Result<Option<Owed>, DbError> {
        let client = self.pool().get().await?;
        let statement = client.prepare_cached(DELETE_OWNED).await?;
        let row = client.query_opt(&statement, &[&code, &owner_id]).await?;
        Ok(row.as_ref().map(Owed::from_row))
    }

    /// Applies `patch` to the owner's live link `code` and queues its invalidation in the same statement (the
    /// redirect replicas must drop their copies, as after a delete); `None` when there is no such live link of
    /// theirs. Returns the changed link with its hits.
    ///
    /// # Errors
    /// When the database fails (then nothing changed).
    pub async fn patch_owned(
        &self,
        owner_id: i64,
        code: &str,
        patch: &LinkPatch<'_>,
    ) -> Result<Option<(LinkWithHits, Owed)>, DbError> {
        let client = self.pool().get().await?;
        let statement = client.prepare_cached(PATCH_OWNED).await?;
        let url_hash = patch
            .long_url
            .map(|url| Sha256::digest(url.as_bytes()).to_vec());
        let status = patch
            .redirect
            .map(|redirect| i16::try_from(redirect.code()).unwrap_or(302));
        let tags = patch.tags.map(<[String]>::to_vec);
        let row = client
            .query_opt(
                &statement,
                &[
                    &code,
                    &owner_id,
                    &patch.long_url,
                    &url_hash,
                    &status,
                    &patch.expires_at.is_some(),
                    &patch.expires_at.flatten(),
                    &tags,
                    &patch.password_hash.is_some(),
                    &patch.password_hash.flatten(),
                    &patch.max_hits.is_some(),
                    &patch.max_hits.flatten(),
                    &patch.routing,
                ],
            )
            .await?;
        Ok(row.map(|row| {
            let owed = Owed {
                code: row.get(1),
                version: row.get(LINK_COLUMN_COUNT + 1),
            };
            (with_hits(&row), owed)
        }))
    }

    /// Whether `code` is a live link of `owner_id`, or of nobody (an anonymous link) when `owner_id` is `None`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn is_live_link_of(
        &self,
        owner_id: Option<i64>,
        code: &str,
    ) -> Result<bool, DbError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM links
                 WHERE code = $1 AND owner_id IS NOT DISTINCT FROM $2 AND deleted_at IS NULL)",
            )
            .await?;
        Ok(client
            .query_one(&statement, &[&code, &owner_id])
            .await?
            .get(0))
    }
}
