//! Hits: written by the redirect in batched flushes (per link and day, and where they came from: referrer
//! domain, device class, country), and read for the API and the web page (hits per day with zero days filled in
//! by the database, so a chart needs no gaps logic; the sources of a link's hits over N days).

use std::{borrow::Cow, collections::HashSet, time::Duration};

use chrono::NaiveDate;
use database::DbError;

use crate::{
    outbox::{queue_changed, Owed},
    store::Store,
};

/// What a source row counts by (the `kind` column of `link_hit_sources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i16)]
pub enum SourceKind {
    /// The referrer's domain, `direct` or `other`.
    Referrer = 1,
    /// `desktop`, `mobile`, `tablet` or `bot`: columns of `link_hits` since migration 0009; rows of this kind are
    /// those written before it, still read (summed with the columns).
    Device = 2,
    /// Two letters, or `unknown`.
    Country = 3,
    /// The index of the link's variant the visitor was sent to (people only, as every source but devices).
    Variant = 4,
}

impl SourceKind {
    fn of(kind: i16) -> Option<Self> {
        [Self::Referrer, Self::Device, Self::Country, Self::Variant]
            .into_iter()
            .find(|known| *known as i16 == kind)
    }
}

/// Source rows for the flush's upsert, as parallel columns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceRows {
    /// Links.
    pub link_ids: Vec<i64>,
    /// Days (UTC).
    pub days: Vec<NaiveDate>,
    /// [`SourceKind`] as stored.
    pub kinds: Vec<i16>,
    /// The domain, device or country.
    pub keys: Vec<String>,
    /// Counted visits.
    pub hits: Vec<i64>,
}

impl SourceRows {
    /// Adds a row.
    pub fn push(&mut self, link_id: i64, day: NaiveDate, kind: SourceKind, key: String, hits: i64) {
        self.link_ids.push(link_id);
        self.days.push(day);
        self.kinds.push(kind as i16);
        self.keys.push(key);
        self.hits.push(hits);
    }

    /// The rows of `links` only.
    fn of_links(&self, links: &HashSet<i64>) -> Self {
        let mut kept = Self::default();
        for (i, link_id) in self.link_ids.iter().enumerate() {
            if links.contains(link_id) {
                kept.link_ids.push(*link_id);
                kept.days.push(self.days[i]);
                kept.kinds.push(self.kinds[i]);
                kept.keys.push(self.keys[i].clone());
                kept.hits.push(self.hits[i]);
            }
        }
        kept
    }
}

/// People's hits per (link, day) for the flush's upsert, as parallel columns, each pair at most once, with the
/// visits by device class (written by the paced write only: see [`Store::record_sources`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HitRows {
    /// Links.
    pub link_ids: Vec<i64>,
    /// Days (UTC).
    pub days: Vec<NaiveDate>,
    /// Counted visits (people's).
    pub hits: Vec<i64>,
    /// Visits by device class: desktop, mobile, tablet, bot.
    pub devices: [Vec<i64>; 4],
}

impl HitRows {
    /// Adds a row.
    pub fn push(&mut self, link_id: i64, day: NaiveDate, hits: i64, devices: [i64; 4]) {
        self.link_ids.push(link_id);
        self.days.push(day);
        self.hits.push(hits);
        for (column, count) in self.devices.iter_mut().zip(devices) {
            column.push(count);
        }
    }

    /// The visits of all rows.
    pub fn total(&self) -> i64 {
        self.hits.iter().sum()
    }

    /// The rows of `links` only.
    fn of_links(&self, links: &HashSet<i64>) -> Self {
        let mut kept = Self::default();
        for (i, link_id) in self.link_ids.iter().enumerate() {
            if links.contains(link_id) {
                let devices = std::array::from_fn(|device| self.devices[device][i]);
                kept.push(*link_id, self.days[i], self.hits[i], devices);
            }
        }
        kept
    }
}

/// Referrer domains kept per link and day before new ones are counted as `other`.
pub const MAX_REFERRERS_PER_DAY: i64 = 50;

/// The people's hits and the bots' visits per (link, day) of links with a visit limit (see
/// [`Store::record_hits`]); each row's link is looked up, since it may have gone meanwhile.
const UPSERT_HITS: &str = "INSERT INTO link_hits (link_id, day, hits, bots)
     SELECT batch.link_id, batch.day, batch.hits, batch.bots
     FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::bigint[]) AS batch (link_id, day, hits, bots)
     JOIN links ON links.id = batch.link_id
     ORDER BY batch.link_id, batch.day
     ON CONFLICT (link_id, day) DO UPDATE SET hits = link_hits.hits + EXCLUDED.hits,
         bots = link_hits.bots + EXCLUDED.bots";

/// The people's hits and the visits by device class per (link, day), of links seen to exist in the same
/// transaction ([`EXISTING_LINKS`]): one lookup per link rather than one per row of each statement (EXPLAIN
/// ANALYZE, 1,000 links with a referrer each: 35 ms instead of 44 ms).
const UPSERT_HITS_AND_DEVICES: &str =
    "INSERT INTO link_hits (link_id, day, hits, desktop, mobile, tablet, bots)
     SELECT * FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                          $7::bigint[]) AS batch (link_id, day, hits, desktop, mobile, tablet, bots)
     ORDER BY 1, 2
     ON CONFLICT (link_id, day) DO UPDATE SET hits = link_hits.hits + EXCLUDED.hits,
         desktop = link_hits.desktop + EXCLUDED.desktop, mobile = link_hits.mobile + EXCLUDED.mobile,
         tablet = link_hits.tablet + EXCLUDED.tablet, bots = link_hits.bots + EXCLUDED.bots";

/// Which of the given links still exist.
const EXISTING_LINKS: &str = "SELECT id FROM links WHERE id = ANY($1)";

/// The sources per (link, day, kind, key); a referrer domain the link has not had that day is counted as `other`
/// once it has [`MAX_REFERRERS_PER_DAY`]; only for links seen to exist in the same transaction (rows of one statement do not see each other: one flush may add up to
/// its own bound more, so a link and day holds at most twice the bound).
const UPSERT_SOURCES: &str = "INSERT INTO link_hit_sources (link_id, day, kind, key, hits)
     SELECT link_id, day, kind, key, sum(hits) FROM (
         SELECT b.link_id, b.day, b.kind,
                CASE WHEN b.kind <> 1
                       OR EXISTS (SELECT 1 FROM link_hit_sources s
                                  WHERE s.link_id = b.link_id AND s.day = b.day AND s.kind = 1 AND s.key = b.key)
                       OR (SELECT count(*) FROM link_hit_sources s
                           WHERE s.link_id = b.link_id AND s.day = b.day AND s.kind = 1) < $6
                     THEN left(b.key, 100) ELSE 'other' END AS key,
                b.hits
         FROM unnest($1::bigint[], $2::date[], $3::smallint[], $4::text[], $5::bigint[])
              AS b (link_id, day, kind, key, hits)
     ) AS folded
     GROUP BY link_id, day, kind, key
     ORDER BY link_id, day, kind, key
     ON CONFLICT (link_id, day, kind, key) DO UPDATE SET hits = link_hit_sources.hits + EXCLUDED.hits";

/// Links of a flush that reached their visit limit, marked exhausted with their invalidations queued. Every
/// answer that showed the target counts toward the limit, bots' included (a link previewer or a script that
/// follows a one-time link has used it up): people's hits and bots' visits together.
const EXHAUST: &str = queue_changed!(
    "UPDATE links SET exhausted_at = now()
     WHERE max_hits IS NOT NULL AND exhausted_at IS NULL AND id = ANY($1)
       AND (SELECT COALESCE(sum(hits + bots), 0) FROM link_hits WHERE link_id = links.id) >= max_hits
     RETURNING code"
);

/// Where a link's hits came from over some days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// People's hits (bots not included).
    pub total: i64,
    /// `(kind, key, hits)`, most hits first within each kind.
    pub rows: Vec<(SourceKind, String, i64)>,
}

/// Hits on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayHits {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Redirects counted on that day.
    pub hits: i64,
}

impl Store {
    /// All hits of a link so far (as flushed by the redirects; the last flush interval is not in yet).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn total_hits(&self, link_id: i64) -> Result<i64, DbError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached(
                "SELECT COALESCE(sum(hits), 0)::bigint FROM link_hits WHERE link_id = $1",
            )
            .await?;
        Ok(client.query_one(&statement, &[&link_id]).await?.get(0))
    }

    /// Writes the people's hits and the bots' visits per (link, day) of links with a visit limit (see
    /// [`HitRows`]; its bot column only). Rows for links that no longer exist are skipped, so a link deleted
    /// between two flushes cannot fail the whole batch; rows are written in key order, so redirect replicas
    /// flushing overlapping batches lock rows in the same order and cannot deadlock. Then the links of the batch
    /// that reached their visit limit are marked exhausted with their invalidations queued; returns those (for
    /// the caller to deliver). Both statements commit together: when the second fails (a lock it waited on past
    /// the statement timeout, a lost connection), the hits are not kept either, so the caller's retry of the
    /// batch never counts them twice.
    ///
    /// # Errors
    /// When the database fails; nothing of the batch is kept then.
    pub async fn record_hits(&self, hits: &HitRows) -> Result<Vec<Owed>, DbError> {
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        let upsert_hits = tx.prepare_cached(UPSERT_HITS).await?;
        let bots = &hits.devices[3];
        tx.execute(
            &upsert_hits,
            &[&hits.link_ids, &hits.days, &hits.hits, bots],
        )
        .await?;
        let exhaust = tx.prepare_cached(EXHAUST).await?;
        let rows = tx.query(&exhaust, &[&hits.link_ids]).await?;
        tx.commit().await?;
        Ok(rows.iter().map(Owed::from_row).collect())
    }

    /// Writes where a flush's visits came from and the hits of links without a visit limit (which wait for this
    /// slower write, see the redirect's `hits` module), in one transaction, so a retry never counts twice; in key
    /// order and skipping links that no longer exist, as [`Store::record_hits`] does.
    ///
    /// # Errors
    /// When the database fails; nothing of the batch is kept then.
    pub async fn record_sources(
        &self,
        hits: &HitRows,
        sources: &SourceRows,
    ) -> Result<(), DbError> {
        if hits.link_ids.is_empty() && sources.link_ids.is_empty() {
            return Ok(());
        }
        let mut client = self.pool().get().await?;
        let tx = client.transaction().await?;
        // Links deleted since they were counted are left out here rather than looked up by every row; one
        // deleted between this and the upserts fails the foreign key, and the caller's retry leaves it out.
        let mut link_ids: Vec<i64> = hits
            .link_ids
            .iter()
            .chain(&sources.link_ids)
            .copied()
            .collect();
        link_ids.sort_unstable();
        link_ids.dedup();
        let existing = tx.prepare_cached(EXISTING_LINKS).await?;
        let existing: HashSet<i64> = tx
            .query(&existing, &[&link_ids])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let (hits, sources) = if existing.len() == link_ids.len() {
            (Cow::Borrowed(hits), Cow::Borrowed(sources))
        } else {
            (
                Cow::Owned(hits.of_links(&existing)),
                Cow::Owned(sources.of_links(&existing)),
            )
        };
        if !hits.link_ids.is_empty() {
            let upsert = tx.prepare_cached(UPSERT_HITS_AND_DEVICES).await?;
            let [desktop, mobile, tablet, bots] = &hits.devices;
            tx.execute(
                &upsert,
                &[
                    &hits.link_ids,
                    &hits.days,
                    &hits.hits,
                    desktop,
                    mobile,
                    tablet,
                    bots,
                ],
            )
            .await?;
        }
        if !sources.link_ids.is_empty() {
            let upsert_sources = tx.prepare_cached(UPSERT_SOURCES).await?;
            tx.execute(
                &upsert_sources,
                &[
                    &sources.link_ids,
                    &sources.days,
                    &sources.kinds,
                    &sources.keys,
                    &sources.hits,
                    &MAX_REFERRERS_PER_DAY,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Where the hits of the owner's live link `code` came from over the `days` days ending with `today`; `None`
    /// when there is no such live link of theirs.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn hit_sources(
        &self,
        owner_id: i64,
        code: &str,
        today: NaiveDate,
        days: i32,
        within: Duration,
    ) -> Result<Option<Sources>, DbError> {
        database::read_within(self.pool(), within, async |client| {
        let find = client
            .prepare_cached(
                "SELECT id FROM links WHERE code = $1 AND owner_id = $2 AND deleted_at IS NULL",
            )
            .await?;
        let Some(link) = client.query_opt(&find, &[&code, &owner_id]).await? else {
            return Ok(None);
        };
        let link_id: i64 = link.get(0);
        let read = client
            .prepare_cached(
                "SELECT 0::smallint, '', COALESCE(sum(hits), 0)::bigint FROM link_hits
                 WHERE link_id = $1 AND day > $2::date - $3::int
                 UNION ALL
                 (SELECT kind, key, sum(hits)::bigint FROM (
                      SELECT kind, key, hits FROM link_hit_sources
                      WHERE link_id = $1 AND day > $2::date - $3::int
                      UNION ALL
                      SELECT 2::smallint, device.key, device.hits
                      FROM link_hits h,
                           LATERAL (VALUES ('desktop', h.desktop), ('mobile', h.mobile), ('tablet', h.tablet),
                                           ('bot', h.bots)) AS device (key, hits)
                      WHERE h.link_id = $1 AND h.day > $2::date - $3::int AND device.hits > 0
                  ) AS all_sources
                  GROUP BY kind, key ORDER BY kind, 3 DESC, key)",
            )
            .await?;
        let mut sources = Sources::default();
        for row in client.query(&read, &[&link_id, &today, &days]).await? {
            let kind: i16 = row.get(0);
            let hits: i64 = row.get(2);
            match SourceKind::of(kind) {
                None => sources.total = hits,
                Some(kind) => sources.rows.push((kind, row.get(1), hits)),
            }
        }
        Ok(Some(sources))
        })
        .await
    }

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
        within: Duration,
    ) -> Result<Option<Vec<DayHits>>, DbError> {
        database::read_within(self.pool(), within, async |client| {
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
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use database::{pool, PoolOptions};

    use crate::schema;

    #[tokio::test]
    async fn a_paced_write_keeps_the_rows_of_links_that_exist_and_leaves_out_the_rest() {
        let test_db = testkit::TestDb::create().await;
        let pool = pool(&test_db.url, "tests", PoolOptions::default()).expect("pool");
        schema::migrate(&pool).await.expect("migrations");
        let store = Store::new(pool.clone());
        let (owner, _) = store.create_api_key("tests").await.expect("an owner");
        let client = pool.get().await.expect("client");
        client
            .execute(
                "INSERT INTO links (id, code, long_url, url_hash, owner_id)
                 VALUES (7, 'seven', 'https://example.com/', '\\x00'::bytea, $1)",
                &[&owner],
            )
            .await
            .expect("a link");
        let day = NaiveDate::from_ymd_opt(2026, 12, 4).expect("a day");
        let mut hits = HitRows::default();
        let mut sources = SourceRows::default();
        for (link_id, count) in [(7, 3), (8, 5)] {
            hits.push(link_id, day, count, [count, 0, 0, 1]);
            sources.push(
                link_id,
                day,
                SourceKind::Referrer,
                "news.example.com".into(),
                count,
            );
        }

        for _ in 0..2 {
            store
                .record_sources(&hits, &sources)
                .await
                .expect("written without link 8, which does not exist");
        }

        let read = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .query(sql, &[])
                    .await
                    .expect("rows")
                    .iter()
                    .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1)))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            read("SELECT link_id, hits FROM link_hits").await,
            vec![(7, 6)]
        );
        assert_eq!(
            read("SELECT link_id, hits FROM link_hit_sources").await,
            vec![(7, 6)]
        );

        // Device rows written before device classes were columns still count, summed with the columns.
        client
            .execute(
                "INSERT INTO link_hit_sources (link_id, day, kind, key, hits) VALUES (7, $1, 2, 'desktop', 4)",
                &[&day],
            )
            .await
            .expect("a device row of the previous version");
        let sources = store
            .hit_sources(owner, "seven", day, 1, std::time::Duration::from_secs(5))
            .await
            .expect("read")
            .expect("the owner's link");
        assert_eq!(sources.total, 6);
        let devices: Vec<_> = sources
            .rows
            .iter()
            .filter(|(kind, _, _)| *kind == SourceKind::Device)
            .map(|(_, key, hits)| (key.as_str(), *hits))
            .collect();
        assert_eq!(devices, vec![("desktop", 10), ("bot", 2)]);
    }
}
