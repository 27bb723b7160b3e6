//! The SQL behind the operator's takedown commands (`shortener links show|disable|enable|free CODE`): a link with
//! its owner and state, disabling or enabling it, and freeing the code of an expired or deleted one, each with its
//! invalidation queued in the same statement.

use chrono::{DateTime, Utc};

use database::DbError;

use crate::{
    model::Link,
    outbox::{queue_changed, Owed},
    store::{link_columns, link_from_row, Store, LINK_COLUMN_COUNT},
};

/// A link as an operator sees it.
#[derive(Debug, Clone)]
pub struct LinkReport {
    /// The link.
    pub link: Link,
    /// The name of the API key that created it (`None` for anonymous links).
    pub owner_name: Option<String>,
    /// When its owner deleted it.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When an operator disabled it.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Why.
    pub disabled_reason: Option<String>,
    /// Redirects counted so far.
    pub hits: i64,
    /// When the flushed hits reached its visit limit.
    pub exhausted_at: Option<DateTime<Utc>>,
}

/// What an operator finds for a code.
#[derive(Debug, Clone)]
pub enum Found {
    /// A link, in whatever state.
    Link(Box<LinkReport>),
    /// A link purged by the cleanup; its code stays taken and answers 410.
    Retired(DateTime<Utc>),
    /// No link ever had this code.
    Unknown,
}

const SHOW: &str = concat!(
    "SELECT ",
    link_columns!(),
    ", (SELECT name FROM api_keys WHERE api_keys.id = links.owner_id),
       deleted_at, disabled_at, disabled_reason,
       COALESCE((SELECT sum(hits) FROM link_hits WHERE link_id = links.id), 0)::bigint, exhausted_at
     FROM links WHERE code = $1"
);

const DISABLE: &str = queue_changed!(
    "UPDATE links SET disabled_at = COALESCE(disabled_at, now()), disabled_reason = $2
     WHERE code = $1 RETURNING code"
);

const ENABLE: &str = queue_changed!(
    "UPDATE links SET disabled_at = NULL, disabled_reason = NULL WHERE code = $1 RETURNING code"
);

/// Frees `$1` for a new link: purges the link that has it if that link is expired or deleted (its hits go with
/// it), drops its tombstone, and queues its invalidation, since replicas may hold it as gone. A live link keeps
/// its code: nothing is returned then. Data-modifying CTEs must sit at the top level, so this spells out what
/// `queue_changed!` would wrap.
const FREE: &str = "
    WITH purged AS (
        DELETE FROM links
        WHERE code = $1 AND (expires_at <= now() OR deleted_at IS NOT NULL)
        RETURNING code
    ), unretired AS (
        DELETE FROM retired_codes WHERE code = $1 RETURNING code
    ), changed AS (
        SELECT code FROM purged UNION SELECT code FROM unretired
    )
    INSERT INTO cache_invalidations (code) SELECT code FROM changed
    ON CONFLICT (code) DO UPDATE SET version = nextval('cache_invalidations_version'), queued_at = now()
    RETURNING code, version";

impl Store {
    /// Frees `code` for a new link when its link is expired, deleted or already purged (see [`FREE`]); `None`
    /// when no such link or tombstone has it, or its link is live.
    ///
    /// # Errors
    /// When the database fails (then nothing changed).
    pub async fn free_code(&self, code: &str) -> Result<Option<Owed>, DbError> {
        let client = self.pool().get().await?;
        let row = client.query_opt(FREE, &[&code]).await?;
        Ok(row.as_ref().map(Owed::from_row))
    }

    /// The link `code` with its owner and state, a tombstone, or nothing.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn find_for_operator(&self, code: &str) -> Result<Found, DbError> {
        let client = self.pool().get().await?;
        if let Some(row) = client.query_opt(SHOW, &[&code]).await? {
            return Ok(Found::Link(Box::new(LinkReport {
                link: link_from_row(&row),
                owner_name: row.get(LINK_COLUMN_COUNT),
                deleted_at: row.get(LINK_COLUMN_COUNT + 1),
                disabled_at: row.get(LINK_COLUMN_COUNT + 2),
                disabled_reason: row.get(LINK_COLUMN_COUNT + 3),
                hits: row.get(LINK_COLUMN_COUNT + 4),
                exhausted_at: row.get(LINK_COLUMN_COUNT + 5),
            })));
        }
        let retired = client
            .query_opt(
                "SELECT retired_at FROM retired_codes WHERE code = $1",
                &[&code],
            )
            .await?;
        Ok(retired.map_or(Found::Unknown, |row| Found::Retired(row.get(0))))
    }

    /// Disables the link `code` (keeping the time of an earlier disable, replacing the reason) and queues its
    /// invalidation; `None` when there is no such link.
    ///
    /// # Errors
    /// When the database fails (then nothing changed).
    pub async fn disable_link(&self, code: &str, reason: &str) -> Result<Option<Owed>, DbError> {
        let client = self.pool().get().await?;
        let row = client.query_opt(DISABLE, &[&code, &reason]).await?;
        Ok(row.as_ref().map(Owed::from_row))
    }

    /// Enables the link `code` again and queues its invalidation (replicas cached it as gone); `None` when there
    /// is no such link.
    ///
    /// # Errors
    /// When the database fails (then nothing changed).
    pub async fn enable_link(&self, code: &str) -> Result<Option<Owed>, DbError> {
        let client = self.pool().get().await?;
        let row = client.query_opt(ENABLE, &[&code]).await?;
        Ok(row.as_ref().map(Owed::from_row))
    }
}
