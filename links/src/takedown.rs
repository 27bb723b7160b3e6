//! The SQL behind the operator's takedown commands (`shortener links show|disable|enable CODE`): a link with its
//! owner and state, and disabling or enabling it with its invalidation queued in the same statement.

use chrono::{DateTime, Utc};

use crate::{
    db::DbError,
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

impl Store {
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
