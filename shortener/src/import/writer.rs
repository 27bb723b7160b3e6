//! Batches of parsed rows checked and written: each row passes the checks every link passes (the URL rules,
//! blocklist and own hosts; alias and tag rules), a code already held by the same link of the caller is skipped
//! silently (the file was imported before), one held by anything else is `alias_taken`, a row without a code
//! reuses the caller's live link for its URL, and the rest go to PostgreSQL in one statement per batch with their
//! creation time and visits. What a batch skips is reported by line; a dry run stops before taking IDs.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use idgen::Generator;
use links::{domain::DomainTable, imports::ImportedLink, store::Store, validate::Blocklist};
use serde::Serialize;

use super::row::{bad_line, Parsed, Row};
use crate::{
    codes::Minter,
    errors::{ApiError, ErrorCode},
    routes::{body::ErrorDetail, fields},
    state::AppState,
};

/// Skipped lines listed in the report, at most; `skipped_total` counts them all.
pub const MAX_LISTED: usize = 1000;

/// Longest PostgreSQL may spend on a batch's insert.
const INSERT_WITHIN: Duration = Duration::from_secs(30);

/// Longest a batch's lookups and insert may take in all before the import gives up (503).
const BATCH_WITHIN: Duration = Duration::from_secs(60);

/// What an import does with its rows, and for whom.
pub struct Target<'a> {
    /// Where links are looked up and written.
    pub store: &'a Store,
    /// The IDs of new links.
    pub ids: &'a Generator,
    /// The codes of rows without one.
    pub codes: &'a Minter,
    /// Hosts long URLs may not point at.
    pub own_hosts: &'a [String],
    /// Domains long URLs may not point at.
    pub blocklist: &'a Blocklist,
    /// The registered domains (a long URL to one would loop).
    pub domains: Arc<DomainTable>,
    /// Whose links they become.
    pub owner_id: i64,
    /// The domain they go on; `None`: the default one.
    pub domain: Option<String>,
    /// Check everything, write nothing.
    pub dry_run: bool,
    /// Now, for expiries.
    pub now: DateTime<Utc>,
    /// Where new links are written through to Redis (the API); `None` from the command line.
    pub announce: Option<&'a AppState>,
}

/// The answer of an import.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Links created (in a dry run: that would be created).
    pub imported: u64,
    /// Lines not imported and why, in file order, the first 1,000.
    pub skipped: Vec<SkippedLine>,
    /// Every line not imported (beyond the listed ones too). Lines already imported before are not counted.
    pub skipped_total: u64,
    /// Whether nothing was written.
    pub dry_run: bool,
}

/// A line that was not imported.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SkippedLine {
    /// The line of the file it starts on (1-based, as an editor shows it).
    pub line: u64,
    /// Why: `invalid_line` (does not parse), `alias_taken`, `invalid_url`, `invalid_alias`, `invalid_tags`,
    /// `expires_in_past`, …
    pub error: ErrorDetail,
}

/// A row that passed the checks.
struct Checked {
    line: u64,
    /// The key it would be stored under, when the file gave it a code.
    key: Option<String>,
    long_url: String,
    row: Row,
}

/// Writes batches for one import.
pub struct Writer<'a> {
    target: Target<'a>,
    report: ImportReport,
    /// The batch's skipped lines, found in several passes, reported in line order once it is done.
    skipped: Vec<SkippedLine>,
}

impl<'a> Writer<'a> {
    /// A writer to `target`.
    pub fn new(target: Target<'a>) -> Self {
        let report = ImportReport {
            dry_run: target.dry_run,
            ..ImportReport::default()
        };
        Self {
            target,
            report,
            skipped: Vec::new(),
        }
    }

    /// The report so far.
    pub fn finish(self) -> ImportReport {
        self.report
    }

    /// Checks and writes one batch of rows.
    ///
    /// # Errors
    /// 503 when PostgreSQL, the ID generator or the code counter fail (batches written before stay; running the
    /// import again carries on where this one stopped).
    pub async fn write(&mut self, batch: Vec<Parsed>) -> Result<(), ApiError> {
        tokio::time::timeout(BATCH_WITHIN, self.write_batch(batch))
            .await
            .map_err(|_| ApiError::unavailable("the database"))??;
        let mut skipped = std::mem::take(&mut self.skipped);
        skipped.sort_by_key(|line| line.line);
        self.report.skipped_total += skipped.len() as u64;
        let room = MAX_LISTED.saturating_sub(self.report.skipped.len());
        self.report.skipped.extend(skipped.into_iter().take(room));
        Ok(())
    }

    async fn write_batch(&mut self, batch: Vec<Parsed>) -> Result<(), ApiError> {
        let mut checked = Vec::with_capacity(batch.len());
        for (line, parsed) in batch {
            match parsed.and_then(|row| self.check(line, row)) {
                Ok(row) => checked.push(row),
                Err(error) => self.skip(line, &error),
            }
        }
        let fresh = self.first_of_each(checked);
        let fresh = self.not_taken(fresh).await?;
        let fresh = self.not_reusing(fresh).await?;
        if self.target.dry_run || fresh.is_empty() {
            self.report.imported += fresh.len() as u64;
            return Ok(());
        }
        self.insert(fresh).await
    }

    /// The checks every link passes.
    fn check(&self, line: u64, row: Row) -> Result<Checked, ApiError> {
        if row.long_url.is_empty() {
            return Err(bad_line("the line has no long URL"));
        }
        let target = &self.target;
        let long_url = fields::long_url_within(
            &row.long_url,
            target.own_hosts,
            &target.domains,
            target.blocklist,
        )?;
        if let Some(code) = &row.code {
            fields::alias(code)?;
        }
        if row.expires_at.is_some_and(|at| at <= target.now) {
            return Err(ApiError::InvalidField {
                code: ErrorCode::ExpiresInPast,
                message: "the link has expired already".into(),
            });
        }
        let tags = fields::tags(row.tags)?;
        let key = row
            .code
            .as_deref()
            .map(|code| links::domain::link_key(target.domain.as_deref(), code));
        Ok(Checked {
            line,
            key,
            long_url,
            row: Row { tags, ..row },
        })
    }

    /// Each code and each URL without a code once per batch: a repeat of the same link is skipped silently, a
    /// code repeated for another URL is taken.
    fn first_of_each(&mut self, checked: Vec<Checked>) -> Vec<Checked> {
        let mut codes: HashMap<String, String> = HashMap::new();
        let mut urls: HashSet<String> = HashSet::new();
        let mut fresh = Vec::with_capacity(checked.len());
        for row in checked {
            let first = match &row.key {
                Some(key) => match codes.get(key) {
                    Some(url) if *url == row.long_url => false,
                    Some(_) => {
                        self.alias_taken(&row);
                        false
                    }
                    None => {
                        codes.insert(key.clone(), row.long_url.clone());
                        true
                    }
                },
                None => urls.insert(row.long_url.clone()),
            };
            if first {
                fresh.push(row);
            }
        }
        fresh
    }

    /// The rows whose code nothing holds yet; the caller's same link already there is skipped silently.
    async fn not_taken(&mut self, rows: Vec<Checked>) -> Result<Vec<Checked>, ApiError> {
        let keys: Vec<&str> = rows.iter().filter_map(|row| row.key.as_deref()).collect();
        let holders = self.target.store.code_holders(&keys).await?;
        let mut fresh = Vec::with_capacity(rows.len());
        for row in rows {
            match row.key.as_ref().and_then(|key| holders.get(key)) {
                None => fresh.push(row),
                Some(holder)
                    if holder.owner_id == Some(self.target.owner_id)
                        && holder.long_url.as_deref() == Some(row.long_url.as_str()) => {}
                Some(_) => self.alias_taken(&row),
            }
        }
        Ok(fresh)
    }

    /// The rows still to create: a row without a code whose URL the caller has a live link for is skipped
    /// silently (no duplicate).
    async fn not_reusing(&mut self, rows: Vec<Checked>) -> Result<Vec<Checked>, ApiError> {
        let urls: Vec<&str> = rows
            .iter()
            .filter(|row| row.key.is_none())
            .map(|row| row.long_url.as_str())
            .collect();
        let live = self
            .target
            .store
            .live_links_on(self.target.owner_id, self.target.domain.as_deref(), &urls)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|row| row.key.is_some() || !live.contains_key(&row.long_url))
            .collect())
    }

    /// Takes IDs and codes for `rows` and inserts them; a code taken meanwhile is reported.
    async fn insert(&mut self, rows: Vec<Checked>) -> Result<(), ApiError> {
        let target = &self.target;
        let ids = target
            .ids
            .next_ids(rows.len())
            .map_err(|error| ApiError::unavailable_because("the ID generator", error))?;
        let ids: Vec<i64> = ids
            .into_iter()
            .map(|id| {
                i64::try_from(id)
                    .map_err(|_| ApiError::Internal(anyhow::anyhow!("ID {id} exceeds 63 bits")))
            })
            .collect::<Result<_, _>>()?;
        let without_code: Vec<i64> = rows
            .iter()
            .zip(&ids)
            .filter(|(row, _)| row.key.is_none())
            .map(|(_, id)| *id)
            .collect();
        let mut generated = target.codes.mint(&without_code).await?.into_iter();
        let mut links = Vec::with_capacity(rows.len());
        for (row, id) in rows.iter().zip(&ids) {
            let key = match &row.key {
                Some(key) => key.clone(),
                None => {
                    let code = generated.next().ok_or_else(|| {
                        ApiError::Internal(anyhow::anyhow!("fewer codes minted than asked"))
                    })?;
                    links::domain::link_key(target.domain.as_deref(), &code)
                }
            };
            links.push(ImportedLink {
                id: *id,
                code: key,
                long_url: row.long_url.clone(),
                created_at: row.row.created_at,
                expires_at: row.row.expires_at,
                tags: row.row.tags.clone(),
                hits: row.row.hits,
            });
        }
        let inserted = target
            .store
            .insert_imported(target.owner_id, &links, INSERT_WITHIN)
            .await?;
        let inserted_ids: HashSet<i64> = inserted.iter().map(|link| link.id).collect();
        self.report.imported += inserted.len() as u64;
        for (row, id) in rows.iter().zip(&ids) {
            match (inserted_ids.contains(id), &row.key) {
                (true, _) => {}
                (false, Some(_)) => self.alias_taken(row),
                // A generated code equal to an alias (rare): the next run gives the line a new one.
                (false, None) => self.skip(row.line, &ApiError::unavailable("the code counter")),
            }
        }
        if let Some(state) = self.target.announce {
            crate::routes::create_links::write_through(state, &inserted).await;
        }
        Ok(())
    }

    fn alias_taken(&mut self, row: &Checked) {
        let code = row.row.code.clone().unwrap_or_default();
        self.skip(row.line, &ApiError::AliasTaken(code));
    }

    fn skip(&mut self, line: u64, error: &ApiError) {
        self.skipped.push(SkippedLine {
            line,
            error: ErrorDetail::from(error),
        });
    }
}
