//! What the web page reads about one link besides the link itself: its hits per day (zero days filled in by
//! the database, so a chart needs no gaps logic) and whether a caller may see it at all.

use chrono::NaiveDate;

use crate::{db::DbError, store::Store};

/// Hits on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayHits {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Redirects counted on that day.
    pub hits: i64,
}

impl Store {
    /// The hits of the owner's live link `code` on each of the `days` days ending with `today`, oldest first,
    /// with days without hits as 0; `None` when there is no such live link of theirs. One statement: the days
    /// come from `generate_series`, the counts from the `(link_id, day)` primary key of `link_hits`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn daily_hits(
        &self,
        owner_id: i64,
        code: &str,
        today: NaiveDate,
        days: i32,
    ) -> Result<Option<Vec<DayHits>>, DbError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT $3::date - g.back AS day, COALESCE(h.hits, 0)::bigint
                 FROM links l
                 CROSS JOIN generate_series($4::int - 1, 0, -1) AS g(back)
                 LEFT JOIN link_hits h ON h.link_id = l.id AND h.day = $3::date - g.back
                 WHERE l.code = $1 AND l.owner_id = $2 AND l.deleted_at IS NULL
                 ORDER BY day",
            )
            .await?;
        let rows = client
            .query(&statement, &[&code, &owner_id, &today, &days])
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .map(|row| DayHits {
                    day: row.get(0),
                    hits: row.get(1),
                })
                .collect(),
        ))
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
